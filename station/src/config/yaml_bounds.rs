//! Bounds checked on a YAML document before the parser sees it: its size, and how deeply it
//! nests. libyaml's scanner slows down quadratically with nesting, so a hostile file must be
//! refused by a linear pass of our own, not by the parser's recursion limit.

use std::path::Path;

use super::error::{ConfigError, KeyPath};

/// Largest configuration file accepted. A product manifest with hundreds of files is tens of
/// KiB; anything near this is not a flashgate config, and parsing time and memory stay bounded.
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;

/// Deepest nesting of mappings and sequences accepted. flashgate's configs nest five or six
/// levels; libyaml's scanner slows down quadratically with nesting (100,000 levels took 35 s
/// to refuse), so deeper documents are refused before they reach it.
pub const MAX_NESTING: usize = 64;

pub(super) fn check_size(file: &Path, len: usize) -> Result<(), ConfigError> {
    if len <= MAX_DOCUMENT_BYTES {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        file: file.to_path_buf(),
        line: None,
        key: KeyPath::root(),
        problem: format!("the file is larger than {} MiB", MAX_DOCUMENT_BYTES >> 20),
        fix: "flashgate configs are a few KiB; check that the path names the right file".into(),
    })
}

/// The 1-based line where `text` nests mappings and sequences deeper than `limit`, if it does.
///
/// One linear pass that over-estimates YAML's nesting without parsing it: indentation levels
/// of block collections, compact `- - x` / `? ` entries, and `[`/`{` flow collections (outside
/// quotes and comments) all count; block scalars (`|`, `>`) are skipped. Brackets inside a plain
/// scalar of block context (`a[b]`) are not counted, since they do not open a collection.
pub(super) fn nesting_beyond(text: &str, limit: usize) -> Option<usize> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<u8> = None;
    let mut block_scalar_parent: Option<usize> = None;
    for (index, line) in text.split('\n').enumerate() {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        let rest = &bytes[indent..];
        let blank = rest.iter().all(|b| b.is_ascii_whitespace());
        if let Some(parent) = block_scalar_parent {
            if blank || indent > parent {
                continue;
            }
            block_scalar_parent = None;
        }
        let mut depth_here = 0;
        let mut at = indent;
        if quote.is_none() && flow == 0 {
            if blank || rest.first() == Some(&b'#') {
                continue;
            }
            while indents.last().is_some_and(|&top| top > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
            // Compact nested entries on one line: `- - - x`, `? - x`.
            while let Some(&b) = bytes.get(at) {
                let next = bytes.get(at + 1).copied();
                if (b == b'-' || b == b'?') && next.is_none_or(|n| n == b' ' || n == b'\t') {
                    depth_here += 1;
                    at += 1;
                    while bytes.get(at).is_some_and(|&b| b == b' ' || b == b'\t') {
                        at += 1;
                    }
                } else {
                    break;
                }
            }
            if indents.len() + depth_here > limit {
                return Some(index + 1);
            }
        }
        let block_depth = indents.len() + depth_here;
        let mut previous: Option<u8> = None;
        let mut content_end = bytes.len();
        while let Some(&b) = bytes.get(at) {
            match quote {
                Some(b'\'') if b == b'\'' => {
                    if bytes.get(at + 1) == Some(&b'\'') {
                        at += 1; // `''` is a quote inside the scalar
                    } else {
                        quote = None;
                    }
                }
                Some(b'"') if b == b'\\' => at += 1,
                Some(b'"') if b == b'"' => quote = None,
                Some(_) => {}
                None => {
                    let token_start = previous.is_none_or(|p| {
                        p == b' '
                            || p == b'\t'
                            || (flow > 0 && matches!(p, b'[' | b'{' | b',' | b':'))
                    });
                    match b {
                        b'#' if previous.is_none_or(|p| p == b' ' || p == b'\t') => {
                            content_end = at;
                            break;
                        }
                        b'\'' | b'"' if token_start => quote = Some(b),
                        b'[' | b'{' if flow > 0 || token_start => {
                            flow += 1;
                            if block_depth + flow > limit {
                                return Some(index + 1);
                            }
                        }
                        b']' | b'}' if flow > 0 => flow -= 1,
                        _ => {}
                    }
                }
            }
            previous = Some(b);
            at += 1;
        }
        if quote.is_none() && flow == 0 {
            let content = String::from_utf8_lossy(&bytes[..content_end]);
            let last_token = content.split_whitespace().last().unwrap_or("");
            let is_block_scalar = last_token.starts_with(['|', '>'])
                && last_token[1..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'+' || b == b'-');
            if is_block_scalar {
                block_scalar_parent = Some(indent);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_that_open_nothing_do_not_count() {
        let deep = "[".repeat(100);
        let text = format!(
            "# {deep}\nname: \"{deep}\" # {deep}\nitems: []\ntable: {{a: {{size: 1}}}}\n\
             b: x\nnote: 'it''s {deep}'\nplain: a{deep}\nlong: |\n  {deep}\n   {deep}\n"
        );
        let count = nesting_beyond(&text, MAX_NESTING);
        assert_eq!(count, None, "{text}");
        let config = "name: x\nitems:\n  - size: 1\n  - {size: 2}\ntable:\n  a:\n    size: 3\n";
        assert_eq!(nesting_beyond(config, 4), None);
        assert_eq!(nesting_beyond(config, 3), Some(4));
    }
}
