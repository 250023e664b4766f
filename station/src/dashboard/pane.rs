//! Under the slots: why units failed (each reason once, for every unit that shares it, wrapped
//! so nothing is cut) and the newest warnings; above them, the stop-line banner when one code
//! keeps failing.

use crate::events::SlotNumber;
use crate::verdict::Verdict;

use super::state::{DashboardState, SlotStatus};
use super::text::{wrap, Line, Tone};
use super::RenderStyle;

impl DashboardState {
    /// After K failures in a row with one code (station.yaml `stop_line_after`): the line
    /// should stop, because one cause failing every unit is the set-up, not the phones. The
    /// newest reason with that code is in the banner (and so not repeated in the pane).
    pub(super) fn stop_line_banner(&self, width: usize, style: RenderStyle) -> Vec<String> {
        let Some((code, streak)) = self.stop_line() else {
            return Vec::new();
        };
        let reason = self
            .pane_entries()
            .into_iter()
            .find(|entry| entry.label == code.as_str())
            .map_or_else(String::new, |entry| format!(": {}", entry.detail));
        let text = format!(
            "STOP THE LINE: {} units in a row failed {code}{reason}. Likely a config or image \
             problem, not the phones: stop loading units, call the line engineer.",
            streak.count
        );
        wrap(&text, width, "  ")
            .into_iter()
            .take(MAX_BANNER_LINES)
            .map(|piece| {
                let mut line = Line::new();
                line.push(&piece, Tone::Bad, style);
                line.finish(width, style)
            })
            .collect()
    }

    /// Why units failed, wrapped so nothing is cut: one entry per distinct reason (units that
    /// failed the same way share it), newest first; then the newest warnings. Entries that do
    /// not fit are named on a last line.
    pub(super) fn reasons_pane(
        &self,
        width: usize,
        rows: usize,
        style: RenderStyle,
    ) -> Vec<String> {
        let mut entries = self.pane_entries();
        if let Some((code, _)) = self.stop_line() {
            // The banner carries the newest reason of the code it stops the line for.
            if let Some(at) = entries.iter().position(|e| e.label == code.as_str()) {
                entries.remove(at);
            }
        }
        let mut out = Vec::new();
        let mut left_out: Vec<String> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let lines = wrap(&entry.text(), width, "    ");
            let after = entries.len() - index - 1;
            // Keep a line for naming what is left out, unless this is the last entry.
            let reserve = usize::from(after > 0 || !left_out.is_empty());
            if left_out.is_empty() && out.len() + lines.len() + reserve <= rows {
                for (i, piece) in lines.iter().enumerate() {
                    let mut line = Line::new();
                    match piece.strip_prefix(&entry.label) {
                        Some(rest) if i == 0 => {
                            line.push(&entry.label, entry.tone, style).push(
                                rest,
                                Tone::Normal,
                                style,
                            );
                        }
                        _ => {
                            line.push(piece, Tone::Normal, style);
                        }
                    }
                    out.push(line.finish(width, style));
                }
            } else {
                left_out.push(entry.short());
            }
        }
        if !left_out.is_empty() && out.len() < rows {
            let mut line = Line::new();
            line.push(
                &format!(
                    "+{} more not shown ({}): enlarge the window; `flashgate history SERIAL` has \
                     every reason",
                    left_out.len(),
                    left_out.join(", ")
                ),
                Tone::Warn,
                style,
            );
            out.push(line.finish(width, style));
        }
        out
    }

    fn pane_entries(&self) -> Vec<PaneEntry> {
        let mut reasons: Vec<PaneEntry> = Vec::new();
        for (number, row) in self.slots() {
            let (label, tone, detail, at) = match &row.status {
                SlotStatus::Occupied(unit) => match &unit.verdict {
                    Some(Verdict::Fail(failure)) => (
                        failure.code().as_str().to_owned(),
                        Tone::Bad,
                        failure.detail(),
                        unit.verdict_ms.unwrap_or(0),
                    ),
                    Some(Verdict::Aborted(interruption)) => (
                        "ABORTED".to_owned(),
                        Tone::Warn,
                        interruption.detail(),
                        unit.verdict_ms.unwrap_or(0),
                    ),
                    _ => continue,
                },
                SlotStatus::Vanished(unit) => (
                    "GONE".to_owned(),
                    Tone::Warn,
                    format!(
                        "the unit left the slot during {} before a verdict; re-seat it to flash \
                         it again",
                        unit.phase
                            .as_ref()
                            .map_or_else(|| "identification".to_owned(), |p| p.to_string())
                    ),
                    unit.phase_since_ms,
                ),
                SlotStatus::Empty => continue,
            };
            match reasons
                .iter_mut()
                .find(|e| e.label == label && e.detail == detail)
            {
                Some(entry) => {
                    entry.slots.push(number);
                    entry.at_ms = entry.at_ms.max(at);
                }
                None => reasons.push(PaneEntry {
                    label,
                    tone,
                    slots: vec![number],
                    detail,
                    at_ms: at,
                }),
            }
        }
        reasons.sort_by_key(|entry| std::cmp::Reverse(entry.at_ms));
        let warnings = self.warnings().rev().map(|notice| PaneEntry {
            label: "WARNING".to_owned(),
            tone: Tone::Warn,
            slots: notice.slot.into_iter().collect(),
            detail: notice.message.clone(),
            at_ms: notice.at_ms,
        });
        reasons.extend(warnings);
        reasons
    }
}

/// The most lines the stop-line banner takes.
const MAX_BANNER_LINES: usize = 4;

/// One reason (or warning) in the pane under the slots.
struct PaneEntry {
    /// `ACTIVATION_CLIENT_WRONG_REGION`, `ABORTED`, `GONE`, `WARNING`.
    label: String,
    tone: Tone,
    slots: Vec<SlotNumber>,
    detail: String,
    at_ms: u64,
}

impl PaneEntry {
    fn slot_list(&self) -> String {
        let names: Vec<String> = self.slots.iter().map(|n| format!("S{n:02}")).collect();
        names.join(" ")
    }

    /// `CODE S03 S05: detail` — the code first, so it is never the part that wraps away.
    fn text(&self) -> String {
        match self.slots.is_empty() {
            true => format!("{}: {}", self.label, self.detail),
            false => format!("{} {}: {}", self.label, self.slot_list(), self.detail),
        }
    }

    fn short(&self) -> String {
        match self.slots.is_empty() {
            true => self.label.clone(),
            false => format!("{} {}", self.label, self.slot_list()),
        }
    }
}
