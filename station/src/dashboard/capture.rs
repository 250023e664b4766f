//! A terminal that keeps, as text, everything indicatif draws on it: what the operator would
//! have seen, for tests of the dashboard and the console, and for scripted replays.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use indicatif::TermLike;

#[derive(Debug, Clone)]
pub struct CaptureTerm {
    text: Arc<Mutex<String>>,
    width: u16,
    height: u16,
}

impl CaptureTerm {
    /// A terminal of `width` columns and `height` rows (clones share what is drawn).
    pub fn new(width: u16, height: u16) -> CaptureTerm {
        CaptureTerm {
            text: Arc::default(),
            width,
            height,
        }
    }

    /// Everything drawn so far.
    pub fn text(&self) -> String {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, s: &str) {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_str(s);
    }
}

impl TermLike for CaptureTerm {
    fn width(&self) -> u16 {
        self.width
    }
    fn height(&self) -> u16 {
        self.height
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.push(s);
        self.push("\n");
        Ok(())
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.push(s);
        Ok(())
    }
    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}
