//! Laying the slots out: one per line, or in columns (full rows side by side on a wide
//! screen, compact cells on a small one) so that the reasons under them stay whole.

use crate::events::SlotNumber;
use crate::verdict::{NextStep, Verdict};

use super::render::{arrow, clock, phase_text, slot_head};
use super::state::{DashboardState, SlotRow, SlotStatus};
use super::text::{str_width, Line, Tone};
use super::RenderStyle;

/// Narrowest column worth drawing when slots are laid out side by side.
const MIN_COLUMN_WIDTH: usize = 56;
const COLUMN_GAP: &str = " | ";
/// A slot row this wide loses nothing (the serial and the bar are whole).
const ROOMY_COLUMN_WIDTH: usize = 80;
/// Two compact cells side by side at 80 columns, each wide enough for the slot, `FAIL ` and the
/// longest failure code.
const MIN_COMPACT_WIDTH: usize = 39;
const COMPACT_GAP: &str = "  ";
const COMPACT_PHASE: usize = 18;
const COMPACT_MIN_SERIAL: usize = 4;
const COMPACT_MAX_SERIAL: usize = 14;

impl DashboardState {
    /// The slots in `grid`, column by column; when its rows do not fit `rows_free`, the last
    /// line names the hidden slots' failures.
    pub(super) fn slot_lines(
        &self,
        width: usize,
        rows_free: usize,
        grid: Grid,
        style: RenderStyle,
    ) -> Vec<String> {
        let slots: Vec<(SlotNumber, &SlotRow)> = self.slots().collect();
        let gap = grid.cell.gap();
        let column_width = match grid.columns {
            1 => width,
            n => width.saturating_sub((n - 1) * gap.len()) / n,
        };
        let rows_needed = slots.len().div_ceil(grid.columns);
        let (rows, shown) = match rows_needed <= rows_free {
            true => (rows_needed, slots.len()),
            false => {
                let rows = rows_free - 1;
                (rows, rows * grid.columns)
            }
        };
        let mut out = Vec::with_capacity(rows_free);
        for r in 0..rows {
            let mut line = Line::new();
            for c in 0..grid.columns {
                let Some((n, row)) = slots[..shown].get(c * rows + r) else {
                    break;
                };
                let cell = match grid.cell {
                    Cell::Full => self.slot_line(*n, row, column_width, style),
                    Cell::Compact => self.compact_cell(*n, row, column_width, style),
                };
                match grid.columns {
                    1 => line = cell,
                    _ => {
                        if c > 0 {
                            line.push(gap, Tone::Dim, style);
                        }
                        line.append(cell.fitted(column_width, style));
                    }
                }
            }
            out.push(line.finish(width, style));
        }
        if shown < slots.len() {
            out.push(hidden_slots_line(&slots[shown..], style).finish(width, style));
        }
        out
    }

    /// A slot in a column of a small screen: `S07 FG000107 FAIL VERIFY_MISMATCH`. The verdict
    /// or phase comes whole first; the serial takes what room is left; a failure's next step is
    /// said once in the pane, with its reason (`PaneSteps::InPane`).
    fn compact_cell(
        &self,
        number: SlotNumber,
        row: &SlotRow,
        width: usize,
        style: RenderStyle,
    ) -> Line {
        let (mut line, unit) = match slot_head(number, row, "empty", style) {
            Ok(head) => head,
            Err(empty) => return empty,
        };
        let arrow = arrow(style);
        let mut status = Line::new();
        match (&row.status, &unit.verdict) {
            (SlotStatus::Vanished(_), _) => {
                status.push("GONE", Tone::Warn, style);
            }
            (_, Some(Verdict::Pass)) => {
                status
                    .push("PASS", Tone::Good, style)
                    .push(arrow, Tone::Normal, style)
                    .push(&NextStep::PassTray.to_string(), Tone::Bold, style);
            }
            (_, Some(Verdict::Fail(failure))) => {
                status.push("FAIL ", Tone::Bad, style).push(
                    failure.code().as_str(),
                    Tone::Bad,
                    style,
                );
            }
            (_, Some(Verdict::Aborted(_))) => {
                status.push("ABORTED", Tone::Warn, style);
            }
            (_, None) => {
                let progress = match &unit.progress {
                    Some(progress) => progress
                        .fraction()
                        .map_or_else(String::new, |f| format!(" {:>3.0}%", f * 100.0)),
                    None => {
                        let in_phase = self.now_ms.saturating_sub(unit.phase_since_ms) / 1000;
                        format!(" ({})", clock(in_phase))
                    }
                };
                let phase_room = width
                    .saturating_sub(line.width() + str_width(&progress))
                    .min(COMPACT_PHASE);
                let phase = phase_text(unit);
                status
                    .push_fixed(
                        &phase,
                        str_width(&phase).min(phase_room),
                        Tone::Normal,
                        style,
                    )
                    .push(&progress, Tone::Normal, style);
            }
        }
        let room = width.saturating_sub(line.width() + status.width());
        if room > COMPACT_MIN_SERIAL {
            let serial = unit.serial.as_deref().unwrap_or("-");
            let cols = str_width(serial).min(room - 1).min(COMPACT_MAX_SERIAL);
            line.push_fixed(serial, cols, Tone::Normal, style)
                .push(" ", Tone::Normal, style);
        }
        line.append(status);
        line
    }
}

/// How the slots are laid out: one per line when they and every reason fit; otherwise in as
/// many columns as it takes to leave the reasons whole, as far as the width allows: full rows
/// side by side on a wide screen, compact cells (verdict or phase, serial) on a small one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid {
    columns: usize,
    pub(super) cell: Cell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cell {
    Full,
    Compact,
}

impl Cell {
    fn min_width(self) -> usize {
        match self {
            Cell::Full => MIN_COLUMN_WIDTH,
            Cell::Compact => MIN_COMPACT_WIDTH,
        }
    }

    fn gap(self) -> &'static str {
        match self {
            Cell::Full => COLUMN_GAP,
            Cell::Compact => COMPACT_GAP,
        }
    }

    fn columns_fitting(self, width: usize) -> usize {
        columns_of(width, self.min_width(), self.gap())
    }
}

/// How many columns at least `column_width` wide, `gap` between them, fit `width` (at least one).
fn columns_of(width: usize, column_width: usize, gap: &str) -> usize {
    ((width + gap.len()) / (column_width + gap.len())).max(1)
}

impl Grid {
    pub(super) fn choose(slots: usize, width: usize, rows_free: usize, pane_need: usize) -> Grid {
        if slots + pane_need <= rows_free {
            return Grid {
                columns: 1,
                cell: Cell::Full,
            };
        }
        let rows_wanted = rows_free.saturating_sub(pane_need).max(1);
        let columns_wanted = slots.div_ceil(rows_wanted);
        let columns_needed = slots.div_ceil(rows_free);
        let full = Cell::Full.columns_fitting(width);
        if full >= 2 {
            // A wide screen keeps the bars: more columns for the reasons only while each keeps
            // the serial whole; narrower ones only to show every slot.
            let roomy = columns_of(width, ROOMY_COLUMN_WIDTH, COLUMN_GAP);
            return Grid {
                columns: columns_wanted.min(roomy).max(columns_needed).min(full),
                cell: Cell::Full,
            };
        }
        match Cell::Compact.columns_fitting(width) {
            compact if compact >= 2 => Grid {
                columns: columns_wanted.min(compact),
                cell: Cell::Compact,
            },
            _ => Grid {
                columns: 1,
                cell: Cell::Full,
            },
        }
    }
}

fn hidden_slots_line(hidden: &[(SlotNumber, &SlotRow)], style: RenderStyle) -> Line {
    let (Some((first, _)), Some((last, _))) = (hidden.first(), hidden.last()) else {
        return Line::new();
    };
    let failed: Vec<String> = hidden
        .iter()
        .filter(|(_, row)| match &row.status {
            SlotStatus::Occupied(unit) => matches!(unit.verdict, Some(Verdict::Fail { .. })),
            SlotStatus::Vanished(_) => true,
            SlotStatus::Empty => false,
        })
        .map(|(n, _)| format!("S{n:02}"))
        .collect();
    let mut line = Line::new();
    line.push(
        &format!(
            "+{} slots S{first:02}-S{last:02} hidden: enlarge the window",
            hidden.len()
        ),
        Tone::Warn,
        style,
    );
    if !failed.is_empty() {
        line.push(
            &format!(" | FAIL on {}", failed.join(" ")),
            Tone::Bad,
            style,
        );
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(slots: usize, width: usize, rows_free: usize, pane_need: usize) -> (usize, Cell) {
        let grid = Grid::choose(slots, width, rows_free, pane_need);
        (grid.columns, grid.cell)
    }

    #[test]
    fn the_reasons_decide_when_the_slots_go_into_columns() {
        // Everything fits: one slot per line, with its bar.
        assert_eq!(chosen(16, 80, 21, 5), (1, Cell::Full));
        // 80x24 with the stop-line banner: two compact columns leave the reasons whole.
        assert_eq!(chosen(16, 80, 19, 6), (2, Cell::Compact));
        // A wide screen keeps full rows; a third column only if each keeps 80 columns.
        assert_eq!(chosen(32, 200, 21, 6), (2, Cell::Full));
        assert_eq!(chosen(32, 260, 21, 12), (3, Cell::Full));
        // Too narrow for two compact cells: one column, the hidden slots named.
        assert_eq!(chosen(16, 70, 10, 0), (1, Cell::Full));
    }
}
