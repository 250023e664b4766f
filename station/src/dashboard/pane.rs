//! Under the slots: why units failed (each reason once, for every unit that shares it, wrapped
//! so nothing is cut) and the newest warnings; above them, the stop-line banner when one code
//! keeps failing.

use crate::events::SlotNumber;
use crate::verdict::{NextStep, Verdict};

use super::state::{DashboardState, SlotStatus};
use super::text::{wrap, Line, Tone};
use super::RenderStyle;

impl DashboardState {
    /// After K failures in a row with one code (station.yaml `stop_line_after`): the line
    /// should stop, because one cause failing every unit is the set-up, not the phones. Short
    /// (two lines at 80 columns): the reason is in the pane with the others.
    pub(super) fn stop_line_banner(&self, width: usize, style: RenderStyle) -> Vec<String> {
        let Some((code, streak)) = self.stop_line() else {
            return Vec::new();
        };
        let text = format!(
            "STOP THE LINE: {} in a row failed {code}: likely a config or image problem, not \
             the phones. Stop loading units, call engineer.",
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

    /// How many lines the pane needs to show every entry whole at `width`.
    pub(super) fn reasons_pane_height(&self, width: usize, steps: PaneSteps) -> usize {
        self.pane_entries()
            .iter()
            .map(|entry| wrap(&entry.text(steps), width, "    ").len())
            .sum()
    }

    /// Why units failed, wrapped so nothing is cut: one entry per distinct reason (units that
    /// failed the same way share it), newest first; then the newest warnings. When an entry
    /// does not fit whole, as much of it as fits is shown (its last line marked as cut), and
    /// the entries after it are named on a last line.
    pub(super) fn reasons_pane(
        &self,
        width: usize,
        rows: usize,
        steps: PaneSteps,
        style: RenderStyle,
    ) -> Vec<String> {
        let entries = self.pane_entries();
        let mut out = Vec::new();
        let mut left_out: Vec<String> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let lines = wrap(&entry.text(steps), width, "    ");
            let after = entries.len() - index - 1;
            let free = rows.saturating_sub(out.len());
            if !left_out.is_empty() || free == 0 {
                left_out.push(entry.short());
                continue;
            }
            // Keep a line for naming what is left out, unless nothing is.
            let whole = lines.len() + usize::from(after > 0) <= free;
            // A cut reason takes the room left; a line naming what else is hidden only when
            // that leaves the reason two lines or more.
            let shown = match whole {
                true => lines.len(),
                false if free >= 3 => free - 1,
                false => free,
            };
            for (i, piece) in lines.iter().take(shown).enumerate() {
                let mut line = Line::new();
                let cut_here = !whole && i + 1 == shown;
                match piece.strip_prefix(&entry.label) {
                    Some(rest) if i == 0 => {
                        line.push(&entry.label, entry.tone, style)
                            .push(rest, Tone::Normal, style);
                    }
                    _ => {
                        line.push(piece, Tone::Normal, style);
                    }
                }
                if cut_here {
                    line.push(if style.unicode { " …" } else { " >" }, Tone::Warn, style);
                }
                out.push(line.finish(width, style));
            }
            if !whole {
                left_out.push(format!("the rest of {}", entry.short()));
            }
        }
        if !left_out.is_empty() && out.len() < rows {
            let mut line = Line::new();
            line.push(
                &format!(
                    "not shown: {}; enlarge the window (`flashgate history SERIAL` has every \
                     reason)",
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
            let (label, tone, detail, at, next_step) = match &row.status {
                SlotStatus::Occupied(unit) => match &unit.verdict {
                    Some(verdict @ Verdict::Fail(failure)) => (
                        failure.code().as_str().to_owned(),
                        Tone::Bad,
                        failure.detail(),
                        unit.verdict_ms.unwrap_or(0),
                        verdict.next_step(),
                    ),
                    Some(verdict @ Verdict::Aborted(interruption)) => (
                        "ABORTED".to_owned(),
                        Tone::Warn,
                        interruption.detail(),
                        unit.verdict_ms.unwrap_or(0),
                        verdict.next_step(),
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
                    NextStep::ReseatCable,
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
                    next_step: Some(next_step),
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
            next_step: None,
        });
        reasons.extend(warnings);
        reasons
    }
}

/// Whether a reason names the units' next step: when slot cells are too narrow to show it
/// (the compact grid of a small screen), the pane says it once for the units that share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PaneSteps {
    OnSlotRows,
    InPane { arrow: &'static str },
}

/// The most lines the stop-line banner takes.
const MAX_BANNER_LINES: usize = 3;

/// One reason (or warning) in the pane under the slots.
struct PaneEntry {
    /// `ACTIVATION_CLIENT_WRONG_REGION`, `ABORTED`, `GONE`, `WARNING`.
    label: String,
    tone: Tone,
    slots: Vec<SlotNumber>,
    detail: String,
    at_ms: u64,
    /// What to do with the units (none for a warning).
    next_step: Option<NextStep>,
}

impl PaneEntry {
    fn slot_list(&self) -> String {
        let names: Vec<String> = self.slots.iter().map(|n| format!("S{n:02}")).collect();
        names.join(" ")
    }

    /// `CODE S03 S05: detail` — the code first, so it is never the part that wraps away; with
    /// `PaneSteps::InPane`, `CODE S03 S05 → call engineer: detail`.
    fn text(&self, steps: PaneSteps) -> String {
        let step = match (steps, self.next_step) {
            (PaneSteps::InPane { arrow }, Some(step)) => format!("{arrow}{step}"),
            _ => String::new(),
        };
        match self.slots.is_empty() {
            true => format!("{}{step}: {}", self.label, self.detail),
            false => format!("{} {}{step}: {}", self.label, self.slot_list(), self.detail),
        }
    }

    fn short(&self) -> String {
        match self.slots.is_empty() {
            true => self.label.clone(),
            false => format!("{} {}", self.label, self.slot_list()),
        }
    }
}
