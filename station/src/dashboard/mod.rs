//! The operator dashboard: what every slot is doing and what to do next.
//!
//! - [`DashboardState`]: a pure state machine; `apply(&Event)` then `render(width, height,
//!   style)` gives the screen as lines, testable without a terminal.
//! - [`TtyDashboard`]: the terminal front end on indicatif's `MultiProgress`; nothing is
//!   printed above the rows unless the operator asks with `-v` (device lines and warnings):
//!   failure reasons and warnings are in the pane under the slots.
//! - [`LineSink`] / [`PlainLines`]: without a terminal, one plain line per event, or one JSON
//!   object per event (`--json`).
//! - [`script`]: a scripted batch for demos, tests and the rendering benchmark.

mod capture;
mod grid;
mod lines;
mod pane;
mod render;
pub mod script;
mod state;
mod text;
mod tty;

pub use capture::CaptureTerm;
pub use lines::{json_line, LineFormat, LineSink, PlainLines};
pub use state::{
    Counts, DashboardState, FailureStreak, Notice, Progress, SlotRow, SlotStatus, Unit,
};
pub use text::sanitize;
pub use tty::{TtyDashboard, DEFAULT_REFRESH};

/// How lines are drawn: colour and non-ASCII glyphs can each be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderStyle {
    pub color: bool,
    pub unicode: bool,
}

impl RenderStyle {
    pub const PLAIN: RenderStyle = RenderStyle {
        color: false,
        unicode: false,
    };
    pub const FULL: RenderStyle = RenderStyle {
        color: true,
        unicode: true,
    };

    /// From this process's environment; see [`RenderStyle::from_env`].
    pub fn detect() -> Self {
        Self::from_env(|key| std::env::var(key).ok())
    }

    /// `NO_COLOR` (set and non-empty, per no-color.org) or `TERM=dumb` give plain ASCII without
    /// colour. Otherwise glyphs need a UTF-8 locale (the first of `LC_ALL`, `LC_CTYPE`, `LANG`
    /// that is set); without one the screen stays ASCII but keeps colour.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let no_color = var("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = var("TERM").is_some_and(|t| t == "dumb");
        if no_color || dumb {
            return Self::PLAIN;
        }
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
            .iter()
            .find_map(|key| var(key).filter(|v| !v.is_empty()))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let unicode = locale.contains("utf-8") || locale.contains("utf8");
        RenderStyle {
            color: true,
            unicode,
        }
    }
}

/// Which consumer `flashgate run` should put on the operator's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Live dashboard (a terminal that can move its cursor).
    Tty,
    /// One plain line per event.
    Plain,
    /// One JSON object per event.
    Json,
}

impl OutputMode {
    /// `--json` wins; otherwise the dashboard needs a terminal that is not `TERM=dumb` (a dumb
    /// terminal cannot move the cursor back over the rows, so it gets plain lines).
    pub fn choose(json: bool, is_terminal: bool, var: impl Fn(&str) -> Option<String>) -> Self {
        if json {
            OutputMode::Json
        } else if !is_terminal || var("TERM").is_some_and(|t| t == "dumb") {
            OutputMode::Plain
        } else {
            OutputMode::Tty
        }
    }

    /// For this process, drawing on stderr (where indicatif draws).
    pub fn detect(json: bool) -> Self {
        use std::io::IsTerminal;
        Self::choose(json, std::io::stderr().is_terminal(), |key| {
            std::env::var(key).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn style_from_environment() {
        let utf8 = [("TERM", "xterm-256color"), ("LANG", "en_US.UTF-8")];
        assert_eq!(RenderStyle::from_env(env(&utf8)), RenderStyle::FULL);
        let no_color = [("TERM", "xterm"), ("LANG", "C.UTF-8"), ("NO_COLOR", "1")];
        assert_eq!(RenderStyle::from_env(env(&no_color)), RenderStyle::PLAIN);
        let empty_no_color = [("LANG", "C.UTF-8"), ("NO_COLOR", "")];
        assert_eq!(
            RenderStyle::from_env(env(&empty_no_color)),
            RenderStyle::FULL
        );
        let dumb = [("TERM", "dumb"), ("LANG", "C.UTF-8")];
        assert_eq!(RenderStyle::from_env(env(&dumb)), RenderStyle::PLAIN);
        let c_locale = [("TERM", "xterm"), ("LC_ALL", "C"), ("LANG", "en_US.UTF-8")];
        assert_eq!(
            RenderStyle::from_env(env(&c_locale)),
            RenderStyle {
                color: true,
                unicode: false
            }
        );
    }

    #[test]
    fn output_mode_choice() {
        let xterm = [("TERM", "xterm")];
        assert_eq!(
            OutputMode::choose(false, true, env(&xterm)),
            OutputMode::Tty
        );
        assert_eq!(
            OutputMode::choose(false, false, env(&xterm)),
            OutputMode::Plain
        );
        assert_eq!(
            OutputMode::choose(true, true, env(&xterm)),
            OutputMode::Json
        );
        assert_eq!(
            OutputMode::choose(false, true, env(&[("TERM", "dumb")])),
            OutputMode::Plain
        );
    }
}
