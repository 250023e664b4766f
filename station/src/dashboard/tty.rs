//! The terminal front end: indicatif's `MultiProgress` owns the cursor; the whole screen is one
//! multi-line message rendered by [`DashboardState::render`], so a refresh is one redraw of
//! rows that already fit the terminal. Warnings are shown inside the screen (the pane under the
//! slots); only when the operator asks with `-v` are device log lines and warnings also printed
//! above the rows with `MultiProgress::println`, never through them.

use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{now_unix_ms, Event, EventKind};

use super::text::{Line, Tone};
use super::{DashboardState, RenderStyle};

/// Screen refreshes per second; progress arrives at about 10 Hz per slot, faster redraws would
/// only cost CPU.
pub const DEFAULT_REFRESH: Duration = Duration::from_millis(200);
/// Above this many device lines between two refreshes, the rest are summarised (they are all in
/// the unit's log file); a chatty programmer must not scroll the operator's screen away.
const MAX_PRINTED_PER_REFRESH: usize = 40;

pub struct TtyDashboard {
    multi: MultiProgress,
    screen: ProgressBar,
    state: DashboardState,
    style: RenderStyle,
    size: Box<dyn Fn() -> (u16, u16) + Send>,
    pending: Vec<String>,
    not_printed: usize,
    /// Clear the whole screen when the terminal size changes (see [`TtyDashboard::refresh`]).
    clear_on_resize: bool,
    last_size: Option<(u16, u16)>,
    /// Print device lines (fastboot INFO/TEXT, Firehose `<log>`) and warnings above the rows.
    /// Off by default (warnings are in the screen's pane): a programmer's start-up chatter from 32 phones buries the warnings an operator
    /// must act on; the lines are always in the unit log files and the plain/JSON streams.
    device_lines: bool,
}

impl TtyDashboard {
    /// Draws on stderr, sized from the terminal at every refresh (so resizing just works).
    pub fn stderr(style: RenderStyle) -> Self {
        let term = console::Term::stderr();
        let mut dashboard = Self::with_target(
            ProgressDrawTarget::stderr_with_hz(20),
            move || {
                let (rows, cols) = term.size();
                (cols, rows)
            },
            style,
        );
        dashboard.clear_on_resize = true;
        dashboard
    }

    /// `size` returns (columns, rows) of the drawing area.
    pub fn with_target(
        target: ProgressDrawTarget,
        size: impl Fn() -> (u16, u16) + Send + 'static,
        style: RenderStyle,
    ) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let template = ProgressStyle::with_template("{msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let screen = multi.add(ProgressBar::new_spinner().with_style(template));
        Self {
            multi,
            screen,
            state: DashboardState::new(),
            style,
            size: Box::new(size),
            pending: Vec::new(),
            not_printed: 0,
            clear_on_resize: false,
            last_size: None,
            device_lines: false,
        }
    }

    /// Also print device lines and warnings above the rows (`flashgate run -v`).
    pub fn with_device_lines(mut self, show: bool) -> Self {
        self.device_lines = show;
        self
    }

    /// For the console log layer, so its lines also go above the rows.
    pub fn multi_progress(&self) -> &MultiProgress {
        &self.multi
    }

    pub fn state(&self) -> &DashboardState {
        &self.state
    }

    pub fn apply(&mut self, event: &Event) {
        self.state.apply(event);
        let (tone, text) = match &event.kind {
            EventKind::DeviceLog { slot, line } if self.device_lines => (
                Tone::Normal,
                format!("S{slot:02} {}: {line}", self.serial(*slot)),
            ),
            EventKind::Warning {
                slot: Some(slot),
                message,
            } if self.device_lines => (
                Tone::Warn,
                format!("WARNING S{slot:02} {}: {message}", self.serial(*slot)),
            ),
            EventKind::Warning {
                slot: None,
                message,
            } if self.device_lines => (Tone::Warn, format!("WARNING: {message}")),
            _ => return,
        };
        if self.pending.len() >= MAX_PRINTED_PER_REFRESH {
            self.not_printed += 1;
            return;
        }
        let (width, _) = (self.size)();
        let mut line = Line::new();
        line.push(&text, tone, self.style);
        self.pending
            .push(line.finish(usize::from(width), self.style));
    }

    fn serial(&self, slot: u16) -> String {
        match self.state.slot(slot).map(|row| &row.status) {
            Some(super::SlotStatus::Occupied(unit) | super::SlotStatus::Vanished(unit)) => {
                unit.serial.clone().unwrap_or_else(|| "-".to_owned())
            }
            _ => "-".to_owned(),
        }
    }

    /// Prints pending log lines above the rows and redraws the rows for the current time and
    /// terminal size.
    pub fn refresh(&mut self) {
        self.state.tick(now_unix_ms());
        let (width, height) = (self.size)();
        if self.clear_on_resize && self.last_size.is_some_and(|last| last != (width, height)) {
            // The terminal re-wrapped what we drew for the old size, so indicatif's count of
            // lines to move back over is wrong; start from a clean screen instead of leaving
            // fragments of old rows behind.
            self.multi.suspend(|| {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(b"\x1b[H\x1b[2J").and_then(|()| err.flush());
            });
        }
        self.last_size = Some((width, height));
        if self.not_printed > 0 {
            self.pending.push(format!(
                "... {} more device lines not shown here (they are in the unit log files)",
                self.not_printed
            ));
            self.not_printed = 0;
        }
        if !self.pending.is_empty() {
            // One println for the lot: each println is a full redraw.
            let _ = self.multi.println(self.pending.join("\n"));
            self.pending.clear();
        }
        // One spare row: drawing on the terminal's last line would scroll it.
        let lines = self
            .state
            .render(width, height.saturating_sub(1), self.style);
        self.screen.set_message(lines.join("\n"));
    }

    /// Consumes events until every sender is dropped, refreshing every `every`; leaves the final
    /// screen in place and returns the final state.
    pub fn run(mut self, events: Receiver<Event>, every: Duration) -> DashboardState {
        let mut next_refresh = Instant::now();
        loop {
            let wait = next_refresh.saturating_duration_since(Instant::now());
            match events.recv_timeout(wait) {
                Ok(event) => self.apply(&event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= next_refresh {
                self.refresh();
                next_refresh = Instant::now() + every;
            }
        }
        self.finish()
    }

    /// [`TtyDashboard::run`] on its own thread.
    pub fn spawn(
        self,
        events: Receiver<Event>,
        every: Duration,
    ) -> std::io::Result<JoinHandle<DashboardState>> {
        std::thread::Builder::new()
            .name("dashboard".into())
            .spawn(move || self.run(events, every))
    }

    /// Final redraw; the screen stays on the terminal after the program moves on.
    pub fn finish(mut self) -> DashboardState {
        self.refresh();
        self.screen.finish();
        self.state
    }
}
