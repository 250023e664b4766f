//! Lines built from styled spans, so truncation counts only visible columns and colour codes
//! are added last. Everything that reaches the screen passes through [`sanitize`]: a device's
//! log line or serial may carry escape sequences that would move the cursor and garble the bars.

use std::borrow::Cow;

use unicode_width::UnicodeWidthChar;

use super::RenderStyle;

/// How a span should look; mapped to ANSI colours only when the style allows colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Normal,
    Dim,
    Bold,
    Good,
    Bad,
    Warn,
}

impl Tone {
    fn ansi(self) -> Option<&'static str> {
        match self {
            Tone::Normal => None,
            Tone::Dim => Some("\x1b[2m"),
            Tone::Bold => Some("\x1b[1m"),
            Tone::Good => Some("\x1b[1;32m"),
            Tone::Bad => Some("\x1b[1;31m"),
            Tone::Warn => Some("\x1b[33m"),
        }
    }
}

const RESET: &str = "\x1b[0m";

#[derive(Debug, Clone, Default)]
pub struct Line {
    spans: Vec<(String, Tone)>,
}

impl Line {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `text` (sanitized for `style`) in `tone`.
    pub fn push(&mut self, text: &str, tone: Tone, style: RenderStyle) -> &mut Self {
        let clean = sanitize(text, style.unicode);
        if !clean.is_empty() {
            self.spans.push((clean.into_owned(), tone));
        }
        self
    }

    /// Appends `text` padded or cut to exactly `cols` columns.
    pub fn push_fixed(
        &mut self,
        text: &str,
        cols: usize,
        tone: Tone,
        style: RenderStyle,
    ) -> &mut Self {
        let clean = sanitize(text, style.unicode);
        let fitted = fit(&clean, cols, style);
        self.spans.push((fitted, tone));
        self
    }

    pub fn width(&self) -> usize {
        self.spans.iter().map(|(text, _)| str_width(text)).sum()
    }

    /// Appends another line's spans (for slot cells laid out side by side).
    pub fn append(&mut self, other: Line) -> &mut Self {
        self.spans.extend(other.spans);
        self
    }

    /// This line in exactly `cols` columns: cut (an ellipsis marks the cut) or padded.
    pub fn fitted(&self, cols: usize, style: RenderStyle) -> Line {
        let mut line = Line {
            spans: self.cut_spans(cols, style),
        };
        let short = cols.saturating_sub(line.width());
        if short > 0 {
            line.spans.push((" ".repeat(short), Tone::Normal));
        }
        line
    }

    /// The finished text: at most `max_cols` visible columns (an ellipsis marks a cut), coloured
    /// only when `style.color`.
    pub fn finish(&self, max_cols: usize, style: RenderStyle) -> String {
        let mut out = String::new();
        for (piece, tone) in self.cut_spans(max_cols, style) {
            match tone
                .ansi()
                .filter(|_| style.color && !piece.trim().is_empty())
            {
                Some(code) => {
                    out.push_str(code);
                    out.push_str(&piece);
                    out.push_str(RESET);
                }
                None => out.push_str(&piece),
            }
        }
        out
    }

    fn cut_spans(&self, max_cols: usize, style: RenderStyle) -> Vec<(String, Tone)> {
        let overflow = self.width() > max_cols;
        let budget = if overflow {
            max_cols.saturating_sub(1)
        } else {
            max_cols
        };
        let mut spans = Vec::with_capacity(self.spans.len() + 1);
        let mut used = 0;
        for (text, tone) in &self.spans {
            if used >= budget {
                break;
            }
            let piece = cut(text, budget - used);
            used += str_width(&piece);
            spans.push((piece.into_owned(), *tone));
        }
        if overflow && max_cols > 0 {
            let marker = if style.unicode { "…" } else { ">" };
            spans.push((marker.to_owned(), Tone::Normal));
        }
        spans
    }
}

/// Visible width of already-sanitized text.
pub fn str_width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// The longest prefix of `text` that fits in `cols` columns.
fn cut(text: &str, cols: usize) -> Cow<'_, str> {
    let mut used = 0;
    for (i, c) in text.char_indices() {
        let w = c.width().unwrap_or(0);
        if used + w > cols {
            return Cow::Owned(text[..i].to_owned());
        }
        used += w;
    }
    Cow::Borrowed(text)
}

/// `text` in exactly `cols` columns: padded with spaces, or cut with an ellipsis.
pub fn fit(text: &str, cols: usize, style: RenderStyle) -> String {
    let width = str_width(text);
    if width <= cols {
        let mut s = text.to_owned();
        s.push_str(&" ".repeat(cols - width));
        return s;
    }
    if cols == 0 {
        return String::new();
    }
    let mut s = cut(text, cols - 1).into_owned();
    s.push(if style.unicode { '…' } else { '>' });
    let short = cols - str_width(&s);
    s.push_str(&" ".repeat(short));
    s
}

/// `text` word-wrapped into lines of at most `cols` columns; lines after the first start with
/// `indent`. A word longer than a line is split. Nothing is cut: every character is on a line.
pub fn wrap(text: &str, cols: usize, indent: &str) -> Vec<String> {
    let indent_width = str_width(indent);
    let cols = cols.max(indent_width + 8);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    // No word on the current line yet (only its indent).
    let mut empty = true;
    for mut word in text.split(' ').filter(|w| !w.is_empty()) {
        loop {
            let width = str_width(word);
            let gap = usize::from(!empty);
            if used + gap + width <= cols {
                if !empty {
                    line.push(' ');
                }
                line.push_str(word);
                used += gap + width;
                empty = false;
                break;
            }
            if empty {
                // A word wider than a whole line: split it where the line ends.
                let head = cut(word, cols - used);
                line.push_str(&head);
                word = &word[head.len()..];
            }
            lines.push(std::mem::replace(&mut line, indent.to_owned()));
            used = indent_width;
            empty = true;
            if word.is_empty() {
                break;
            }
        }
    }
    if !empty || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Makes untrusted text safe to draw: control characters (ESC, CR, BS …) and bidi overrides
/// become `?` (a tab becomes a space); in ASCII mode anything outside printable ASCII does too.
pub fn sanitize(text: &str, unicode: bool) -> Cow<'_, str> {
    let bad =
        |c: char| c.is_control() || is_bidi_control(c) || (!unicode && !(' '..='~').contains(&c));
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\t' => ' ',
                c if bad(c) => '?',
                c => c,
            })
            .collect(),
    )
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: RenderStyle = RenderStyle {
        color: false,
        unicode: false,
    };
    const FANCY: RenderStyle = RenderStyle {
        color: true,
        unicode: true,
    };

    #[test]
    fn sanitize_removes_escapes_and_controls() {
        assert_eq!(sanitize("ok\x1b[2Jboom\r\n", true), "ok?[2Jboom??");
        assert_eq!(sanitize("a\tb", true), "a b");
        assert_eq!(sanitize("caf\u{e9} \u{202e}x", true), "caf\u{e9} ?x");
        assert_eq!(sanitize("caf\u{e9}", false), "caf?");
        assert!(matches!(sanitize("plain", false), Cow::Borrowed(_)));
    }

    #[test]
    fn finish_truncates_by_columns_not_bytes_and_colours_last() {
        let mut line = Line::new();
        line.push("PASS", Tone::Good, FANCY)
            .push(" 日本語テキスト", Tone::Normal, FANCY);
        assert_eq!(line.width(), 4 + 1 + 14);
        let cut = line.finish(10, FANCY);
        assert_eq!(cut, "\x1b[1;32mPASS\x1b[0m 日本…");
        let plain = line.finish(
            9,
            RenderStyle {
                color: false,
                unicode: true,
            },
        );
        assert_eq!(
            plain, "PASS 日…",
            "a wide char that does not fit is dropped, never split"
        );
        assert_eq!(str_width(&plain), 8);
        assert_eq!(
            line.finish(
                100,
                RenderStyle {
                    color: false,
                    unicode: true
                }
            ),
            "PASS 日本語テキスト"
        );
    }

    #[test]
    fn wrap_keeps_every_word_and_indents_continuations() {
        let lines = wrap("alpha beta gamma delta", 12, "  ");
        assert_eq!(lines, ["alpha beta", "  gamma", "  delta"]);
        let long = wrap("x ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10, "  ");
        assert_eq!(
            long,
            ["x", "  ABCDEFGH", "  IJKLMNOP", "  QRSTUVWX", "  YZ"]
        );
        assert!(long.iter().all(|l| str_width(l) <= 10));
        assert_eq!(wrap("", 10, "  "), [""]);
    }

    #[test]
    fn fit_pads_and_cuts() {
        assert_eq!(fit("abc", 5, PLAIN), "abc  ");
        assert_eq!(fit("abcdef", 4, PLAIN), "abc>");
        assert_eq!(fit("abcdef", 4, FANCY), "abc…");
        assert_eq!(fit("abc", 0, PLAIN), "");
    }
}
