//! Drawing the state as text lines that fit a given screen. The same lines feed the TTY front
//! end and the tests. Every line is cut to the width (a wrapped line would push the bars around
//! on the next redraw) and there are never more lines than the height.

use crate::events::SlotNumber;
use crate::verdict::Verdict;

use super::grid::{Cell, Grid};
use super::pane::PaneSteps;
use super::state::{DashboardState, Progress, SlotRow, SlotStatus, Unit};
use super::text::{fit, str_width, Line, Tone};
use super::RenderStyle;

const MIN_BAR: usize = 6;
const MAX_BAR: usize = 30;

/// Column widths of a slot row; narrower screens drop the mode and shrink serial and phase.
#[derive(Clone, Copy)]
struct Layout {
    serial: usize,
    mode: usize,
    phase: usize,
}

impl Layout {
    fn for_width(width: usize) -> Self {
        match width {
            110.. => Layout {
                serial: 16,
                mode: 9,
                phase: 26,
            },
            80.. => Layout {
                serial: 14,
                mode: 9,
                phase: 20,
            },
            _ => Layout {
                serial: 11,
                mode: 0,
                phase: 14,
            },
        }
    }
}

impl DashboardState {
    /// The screen: header (and the stop-line banner when one code keeps failing), then one line
    /// per slot in slot order, then why units failed, as far as the height allows. At most
    /// `height` lines, each at most `width` columns. When the slots do not fit under each other
    /// they are laid out in columns; when even that does not fit, the last line names the hidden
    /// slots' failures.
    pub fn render(&self, width: u16, height: u16, style: RenderStyle) -> Vec<String> {
        let (width, height) = (usize::from(width), usize::from(height));
        let mut out: Vec<String> = self.header(width, style);
        out.extend(self.stop_line_banner(width, style));
        out.truncate(height);
        let rows_free = height.saturating_sub(out.len());
        if rows_free == 0 || self.slots.is_empty() {
            return out;
        }
        let pane_need = self.reasons_pane_height(width, PaneSteps::OnSlotRows);
        let grid = Grid::choose(self.slots.len(), width, rows_free, pane_need);
        out.extend(self.slot_lines(width, rows_free, grid, style));
        let pane_free = height.saturating_sub(out.len());
        let steps = match grid.cell {
            Cell::Full => PaneSteps::OnSlotRows,
            Cell::Compact => PaneSteps::InPane {
                arrow: arrow(style),
            },
        };
        out.extend(self.reasons_pane(width, pane_free, steps, style));
        out
    }

    /// Three lines, the most important first on each so a narrow screen cuts the least: who and
    /// how long; the counters; the rates (ending in the rule above the slots).
    fn header(&self, width: usize, style: RenderStyle) -> Vec<String> {
        let mut first = Line::new();
        first.push("FLASHGATE ", Tone::Bold, style).push(
            &format!("elapsed {} ", clock(self.elapsed_ms() / 1000)),
            Tone::Bold,
            style,
        );
        let fleet_complete = self
            .summary
            .as_ref()
            .and_then(|s| s.fleet_complete.as_ref());
        if let Some(why) = fleet_complete {
            first.push(&format!("[BATCH FINISHED: {why}] "), Tone::Bold, style);
        } else if self.is_finished() {
            first.push("[BATCH FINISHED] ", Tone::Bold, style);
        } else if self.stopping().is_some() {
            first.push("[STOPPING: units finish their step] ", Tone::Warn, style);
        } else if let Some(why) = self.holding() {
            first.push(&format!("[HOLDING: {why}] "), Tone::Warn, style);
        }
        match &self.batch {
            Some(b) => {
                first
                    .push(&format!("| WO {} ", b.work_order), Tone::Bold, style)
                    .push(&format!("| {} {} ", b.product, b.region), Tone::Bold, style)
                    .push(&format!("| station {} ", b.station_id), Tone::Normal, style);
                if let Some(operator) = &b.operator {
                    first.push(&format!("| operator {operator} "), Tone::Normal, style);
                }
                first.push(&format!("| build {}", b.build_id), Tone::Normal, style);
            }
            None => {
                first.push("waiting for the batch to start", Tone::Dim, style);
            }
        }
        let counts = self.counts();
        let good = if counts.passed > 0 {
            Tone::Good
        } else {
            Tone::Normal
        };
        let bad = if counts.failed > 0 {
            Tone::Bad
        } else {
            Tone::Normal
        };
        let mut second = Line::new();
        match &self.batch {
            Some(b) => second.push(
                &format!(
                    "passed {} of {} ordered (this run {})",
                    counts.units_passed, b.quantity, counts.passed
                ),
                good,
                style,
            ),
            None => second.push(&format!("passed {}", counts.passed), good, style),
        };
        second
            .push(" | ", Tone::Normal, style)
            .push(&format!("failed {}", counts.failed), bad, style)
            .push(
                &format!(" | in progress {}", counts.in_progress),
                Tone::Normal,
                style,
            );
        let yield_text = match self.yield_percent() {
            Some(y) => format!(" | yield {y:.1}%"),
            None => " | yield -".to_owned(),
        };
        second.push(&yield_text, Tone::Normal, style);
        if counts.aborted > 0 {
            second.push(&format!(" | aborted {}", counts.aborted), Tone::Warn, style);
        }
        second.push(
            &format!(" | waiting {}", counts.waiting),
            Tone::Normal,
            style,
        );
        if let Some(fleet) = &self.fleet {
            let (text, tone) = match (fleet.reachable, fleet.backlog) {
                (true, 0) => (" | fleet synced".to_owned(), Tone::Normal),
                (true, n) => (format!(" | fleet backlog {n}"), Tone::Normal),
                (false, n) => (format!(" | FLEET OFFLINE backlog {n}"), Tone::Warn),
            };
            second.push(&text, tone, style);
        }
        let mut third = Line::new();
        let per_hour = self
            .units_per_hour()
            .map_or_else(|| "-".to_owned(), |n| format!("{n:.1}"));
        let cycle = self.cycle_secs().map_or_else(|| "-".to_owned(), clock);
        third.push(
            &format!(
                "avg {} | {per_hour} units/h | cycle {cycle} | now {} ",
                rate(self.average_rate()),
                rate(self.throughput())
            ),
            Tone::Normal,
            style,
        );
        let rule = if style.unicode { "─" } else { "-" };
        third.push(
            &rule.repeat(width.saturating_sub(third.width())),
            Tone::Dim,
            style,
        );
        vec![
            first.finish(width, style),
            second.finish(width, style),
            third.finish(width, style),
        ]
    }

    pub(super) fn slot_line(
        &self,
        number: SlotNumber,
        row: &SlotRow,
        width: usize,
        style: RenderStyle,
    ) -> Line {
        let layout = Layout::for_width(width);
        let (mut line, unit) = match slot_head(number, row, "empty - waiting for a unit", style) {
            Ok(head) => head,
            Err(empty) => return empty,
        };
        let serial = unit.serial.as_deref().unwrap_or("-");
        line.push_fixed(serial, layout.serial, Tone::Normal, style)
            .push(" ", Tone::Normal, style);
        if layout.mode > 0 {
            line.push_fixed(&unit.mode.to_string(), layout.mode - 1, Tone::Normal, style)
                .push(" ", Tone::Normal, style);
        }
        let arrow = arrow(style);
        if let SlotStatus::Vanished(_) = row.status {
            line.push("GONE", Tone::Warn, style)
                .push(arrow, Tone::Normal, style)
                .push(
                    &crate::verdict::NextStep::ReseatCable.to_string(),
                    Tone::Bold,
                    style,
                );
            return line;
        }
        // A verdict replaces the phase: the code and the next step must fit 80 columns.
        if let Some(verdict) = &unit.verdict {
            self.verdict_tail(&mut line, unit, verdict, arrow, style);
            return line;
        }
        line.push_fixed(&phase_text(unit), layout.phase, Tone::Normal, style)
            .push(" ", Tone::Normal, style);
        let used = line.width();
        match &unit.progress {
            Some(progress) => {
                let tail = self.progress_tail(progress, width.saturating_sub(used), style);
                line.append(tail);
            }
            None => {
                let in_phase = self.now_ms.saturating_sub(unit.phase_since_ms) / 1000;
                line.push(&format!("({})", clock(in_phase)), Tone::Dim, style);
            }
        }
        line
    }

    /// `PASS → to pass tray (1:23)`, `FAIL CODE → to reject bin`: the code and the physical
    /// next step; the reason is in the pane below the slots.
    fn verdict_tail(
        &self,
        line: &mut Line,
        unit: &Unit,
        verdict: &Verdict,
        arrow: &str,
        style: RenderStyle,
    ) {
        let took = unit
            .verdict_ms
            .unwrap_or(self.now_ms)
            .saturating_sub(unit.detected_ms)
            / 1000;
        let step = verdict.next_step().to_string();
        match verdict {
            Verdict::Pass => {
                line.push("PASS", Tone::Good, style)
                    .push(arrow, Tone::Normal, style)
                    .push(&step, Tone::Bold, style)
                    .push(&format!(" ({})", clock(took)), Tone::Dim, style);
            }
            Verdict::Fail(failure) => {
                line.push("FAIL", Tone::Bad, style)
                    .push(" ", Tone::Normal, style)
                    .push(failure.code().as_str(), Tone::Bad, style)
                    .push(arrow, Tone::Normal, style)
                    .push(&step, Tone::Bold, style);
            }
            Verdict::Aborted(_) => {
                line.push("ABORTED", Tone::Warn, style)
                    .push(arrow, Tone::Normal, style)
                    .push(&step, Tone::Bold, style);
            }
        }
        if let Some(other) = &unit.also_known_as {
            line.push(&format!(" (also {other})"), Tone::Dim, style);
        }
    }

    /// Bar, bytes, rate and ETA in fixed widths, so the bar keeps its width for the whole
    /// transfer.
    fn progress_tail(&self, progress: &Progress, avail: usize, style: RenderStyle) -> Line {
        let bytes = match progress.total {
            0 => size(progress.done),
            total => sizes(progress.done, total),
        };
        let bytes = fit(&bytes, 17, style);
        let rate_text = format!("{:>11}", rate(progress.rate(self.now_ms)));
        let eta = progress
            .eta_secs(self.now_ms)
            .map_or_else(|| "-".to_owned(), clock);
        let eta_text = format!(" ETA {eta:>7}");
        let percent = progress.fraction().map(|f| format!("{:>3.0}% ", f * 100.0));
        let mut parts_width = 1 + 17 + str_width(&rate_text) + str_width(&eta_text);
        let mut show_rate = true;
        let mut show_eta = true;
        let bar_for = |parts: usize| avail.saturating_sub(parts + 2).min(MAX_BAR);
        if bar_for(parts_width) < MIN_BAR {
            show_eta = false;
            parts_width -= str_width(&eta_text);
        }
        if bar_for(parts_width) < MIN_BAR {
            show_rate = false;
            parts_width -= str_width(&rate_text);
        }
        let bar_width = bar_for(parts_width);
        let mut tail = Line::new();
        match progress.fraction() {
            Some(fraction) if bar_width >= MIN_BAR => {
                let filled = ((fraction * bar_width as f64).round() as usize).min(bar_width);
                let (full, empty) = if style.unicode {
                    ("█", "░")
                } else {
                    ("#", ".")
                };
                tail.push("[", Tone::Dim, style)
                    .push(&full.repeat(filled), Tone::Good, style)
                    .push(&empty.repeat(bar_width - filled), Tone::Dim, style)
                    .push("] ", Tone::Dim, style);
            }
            _ => {
                tail.push(percent.as_deref().unwrap_or(""), Tone::Normal, style);
            }
        }
        tail.push(&bytes, Tone::Normal, style);
        if show_rate {
            tail.push(&rate_text, Tone::Normal, style);
        }
        if show_eta {
            tail.push(&eta_text, Tone::Dim, style);
        }
        tail
    }
}

/// `S07 ` and the slot's unit; for an empty slot, its whole line (`S07 ` and `empty`).
pub(super) fn slot_head<'r>(
    number: SlotNumber,
    row: &'r SlotRow,
    empty: &str,
    style: RenderStyle,
) -> Result<(Line, &'r Unit), Line> {
    let mut line = Line::new();
    line.push(&format!("S{number:02} "), Tone::Bold, style);
    match &row.status {
        SlotStatus::Empty => {
            line.push(empty, Tone::Dim, style);
            Err(line)
        }
        SlotStatus::Occupied(unit) | SlotStatus::Vanished(unit) => Ok((line, unit)),
    }
}

pub(super) fn arrow(style: RenderStyle) -> &'static str {
    if style.unicode {
        " → "
    } else {
        " -> "
    }
}

/// `flash system_a`, `flash system_a #2` for a second copy, `detected` before the first step.
pub(super) fn phase_text(unit: &Unit) -> String {
    match (&unit.phase, unit.transfers_in_phase) {
        (Some(phase), n) if n >= 2 => format!("{phase} #{n}"),
        (Some(phase), _) => phase.to_string(),
        (None, _) => "detected".to_owned(),
    }
}

/// `m:ss`, or `h:mm:ss` from one hour.
pub(crate) fn clock(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// Decimal megabytes per second (what USB and storage people quote).
pub(crate) fn rate(bytes_per_second: f64) -> String {
    format!("{:.1} MB/s", bytes_per_second / 1e6)
}

/// The decimal unit a figure of `bytes` reads best in: GB from 10 GB, kB below 1 MB (a boot or
/// vbmeta image would otherwise show as "0.0 MB").
fn unit_for(bytes: u64) -> (&'static str, f64, usize) {
    if bytes >= 10_000_000_000 {
        ("GB", 1e9, 2)
    } else if bytes >= 1_000_000 {
        ("MB", 1e6, 1)
    } else {
        ("kB", 1e3, 1)
    }
}

fn size(bytes: u64) -> String {
    let (unit, scale, decimals) = unit_for(bytes);
    format!("{:.*} {unit}", decimals, bytes as f64 / scale)
}

/// `done/total` in the unit of `total`.
pub(crate) fn sizes(done: u64, total: u64) -> String {
    let (unit, scale, decimals) = unit_for(total);
    format!(
        "{:.*}/{:.*} {unit}",
        decimals,
        done as f64 / scale,
        decimals,
        total as f64 / scale
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(754), "12:34");
        assert_eq!(clock(3_725), "1:02:05");
        assert_eq!(rate(45_200_000.0), "45.2 MB/s");
        assert_eq!(sizes(812_300_000, 2_048_000_000), "812.3/2048.0 MB");
        assert_eq!(sizes(1_000_000_000, 12_000_000_000), "1.00/12.00 GB");
        assert_eq!(sizes(0, 12_288), "0.0/12.3 kB");
        assert_eq!(sizes(256, 256), "0.3/0.3 kB");
        assert_eq!(size(282_708), "282.7 kB");
        assert_eq!(size(4_294_967_296), "4295.0 MB");
        assert_eq!(size(12_000_000_000), "12.00 GB");
    }
}
