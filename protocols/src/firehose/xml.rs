//! The XML subset Firehose and rawprogram/patch packages use: a prolog, comments, elements with
//! quoted attributes (either quote, the five named entities and numeric character references),
//! and text that carries no meaning. Sans-io: bytes in, elements out, and command documents out.
//!
//! Real programmers and package generators emit plain, machine-written XML, but device bytes are
//! untrusted, so every malformed input is an error with a line number, never a panic; nesting
//! depth and document size are bounded by the caller's buffer.

use std::fmt::{self, Display, Write as _};

/// Elements nested deeper than this are refused (a Firehose message is `<data>` plus one level).
const MAX_DEPTH: usize = 16;

/// Attributes one element may carry (a rawprogram `<program>` line has about 15). Bounds the
/// duplicate-attribute check, which compares each new attribute with the earlier ones.
const MAX_ATTRIBUTES: usize = 64;

/// One element with its attributes in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// 1-based line of the element's `<`, for error messages naming a package line.
    pub line: usize,
}

impl Element {
    /// The value of attribute `name` (exact match, as real programmers and qdl compare).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Malformed XML, with the 1-based line where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML at line {line}: {message}")]
pub struct XmlError {
    pub line: usize,
    pub message: String,
}

/// Parse a whole document and return its root element.
pub fn parse_document(text: &str) -> Result<Element, XmlError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    if p.s.starts_with(b"\xEF\xBB\xBF") {
        p.pos = 3;
    }
    p.skip_misc()?;
    if p.pos >= p.s.len() {
        return Err(p.error("no root element"));
    }
    let root = p.element(0)?;
    p.skip_misc()?;
    if p.pos < p.s.len() {
        return Err(p.error("content after the root element"));
    }
    Ok(root)
}

/// Parse one Firehose message (`<?xml …?><data>…</data>`) and return the children of `<data>`.
/// Invalid UTF-8 inside (seen in some programmers' log text) is replaced, not refused.
pub fn parse_message(bytes: &[u8]) -> Result<Vec<Element>, XmlError> {
    let text = String::from_utf8_lossy(bytes);
    let root = parse_document(&text)?;
    if root.name != "data" {
        return Err(XmlError {
            line: root.line,
            message: format!("root element is <{}>, expected <data>", root.name),
        });
    }
    Ok(root.children)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> XmlError {
        XmlError {
            line: self.line,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn starts_with(&self, lit: &[u8]) -> bool {
        self.s
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(lit))
    }

    fn advance(&mut self, n: usize) {
        let end = (self.pos + n).min(self.s.len());
        self.line += self.s[self.pos..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.pos = end;
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if !b.is_ascii_whitespace() {
                break;
            }
            self.advance(1);
        }
    }

    /// Advance past the next `end`, or fail naming `what`.
    fn skip_past(&mut self, end: &[u8], what: &str) -> Result<(), XmlError> {
        let rest = &self.s[self.pos..];
        match rest.windows(end.len()).position(|w| w == end) {
            Some(i) => {
                self.advance(i + end.len());
                Ok(())
            }
            None => Err(self.error(format!("unterminated {what}"))),
        }
    }

    /// Whitespace, comments, processing instructions and a DOCTYPE outside the root.
    fn skip_misc(&mut self) -> Result<(), XmlError> {
        loop {
            self.skip_ws();
            if self.starts_with(b"<?") {
                self.skip_past(b"?>", "processing instruction")?;
            } else if self.starts_with(b"<!--") {
                self.skip_past(b"-->", "comment")?;
            } else if self.starts_with(b"<!DOCTYPE") {
                self.skip_past(b">", "DOCTYPE")?;
            } else {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<String, XmlError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') {
                self.advance(1);
            } else {
                break;
            }
        }
        if start == self.pos {
            return Err(self.error("expected a name"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn element(&mut self, depth: usize) -> Result<Element, XmlError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("elements nested too deeply"));
        }
        let line = self.line;
        if self.peek() != Some(b'<') {
            return Err(self.error("expected `<`"));
        }
        self.advance(1);
        let name = self.name()?;
        let mut element = Element {
            name,
            attributes: Vec::new(),
            children: Vec::new(),
            line,
        };
        loop {
            let had_space = self.peek().is_some_and(|b| b.is_ascii_whitespace());
            self.skip_ws();
            match self.peek() {
                Some(b'/') => {
                    self.advance(1);
                    if self.peek() != Some(b'>') {
                        return Err(self.error("expected `>` after `/`"));
                    }
                    self.advance(1);
                    return Ok(element);
                }
                Some(b'>') => {
                    self.advance(1);
                    break;
                }
                Some(_) if had_space => {
                    if element.attributes.len() >= MAX_ATTRIBUTES {
                        return Err(self.error(format!(
                            "<{}> has more than {MAX_ATTRIBUTES} attributes",
                            element.name
                        )));
                    }
                    let key = self.name()?;
                    if element.attributes.iter().any(|(k, _)| *k == key) {
                        return Err(self.error(format!("attribute `{key}` given twice")));
                    }
                    self.skip_ws();
                    if self.peek() != Some(b'=') {
                        return Err(self.error(format!("attribute `{key}` has no value")));
                    }
                    self.advance(1);
                    self.skip_ws();
                    let value = self.quoted_value()?;
                    element.attributes.push((key, value));
                }
                Some(_) => return Err(self.error("expected whitespace between attributes")),
                None => return Err(self.error(format!("unterminated <{}> tag", element.name))),
            }
        }
        self.content(&mut element, depth)?;
        Ok(element)
    }

    fn content(&mut self, element: &mut Element, depth: usize) -> Result<(), XmlError> {
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!("<{}> is never closed", element.name)));
                }
                Some(b'<') => {
                    if self.starts_with(b"</") {
                        self.advance(2);
                        let close = self.name()?;
                        if close != element.name {
                            return Err(self.error(format!(
                                "</{close}> closes <{}> (opened on line {})",
                                element.name, element.line
                            )));
                        }
                        self.skip_ws();
                        if self.peek() != Some(b'>') {
                            return Err(self.error("expected `>`"));
                        }
                        self.advance(1);
                        return Ok(());
                    } else if self.starts_with(b"<!--") {
                        self.skip_past(b"-->", "comment")?;
                    } else if self.starts_with(b"<![CDATA[") {
                        self.skip_past(b"]]>", "CDATA section")?;
                    } else if self.starts_with(b"<?") {
                        self.skip_past(b"?>", "processing instruction")?;
                    } else {
                        let child = self.element(depth + 1)?;
                        element.children.push(child);
                    }
                }
                Some(b'&') => {
                    // Text carries no meaning here, but a broken reference is still malformed.
                    self.entity()?;
                }
                Some(_) => self.advance(1),
            }
        }
    }

    fn quoted_value(&mut self) -> Result<String, XmlError> {
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return Err(self.error("attribute value is not quoted")),
        };
        self.advance(1);
        let mut raw = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated attribute value")),
                Some(b) if b == quote => {
                    self.advance(1);
                    break;
                }
                Some(b'<') => return Err(self.error("`<` inside an attribute value")),
                Some(b'&') => {
                    let c = self.entity()?;
                    let mut tmp = [0u8; 4];
                    raw.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                Some(b) => {
                    raw.push(b);
                    self.advance(1);
                }
            }
        }
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }

    /// Decode `&…;` at the cursor.
    fn entity(&mut self) -> Result<char, XmlError> {
        let rest = &self.s[self.pos..];
        let end = rest
            .iter()
            .take(12)
            .position(|&b| b == b';')
            .ok_or_else(|| self.error("`&` not followed by an entity reference"))?;
        let body = String::from_utf8_lossy(&rest[1..end]).into_owned();
        let c = match body.as_str() {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = body.strip_prefix("#x").or(body.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = body.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| self.error(format!("unknown entity `&{body};`")))?
            }
        };
        self.advance(end + 1);
        Ok(c)
    }
}

/// Escape text for a double-quoted attribute value.
pub fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// A one-element Firehose document: `<?xml version="1.0" ?><data><TAG a="v" … /></data>`.
/// The host sends commands with it and the simulated programmer answers with it.
#[derive(Debug, Clone)]
pub struct Document {
    tag: String,
    attributes: Vec<(String, String)>,
}

impl Document {
    pub fn new(tag: &str) -> Self {
        Document {
            tag: tag.to_owned(),
            attributes: Vec::new(),
        }
    }

    pub fn attr(mut self, name: &str, value: impl Display) -> Self {
        self.attributes.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(64 + self.attributes.len() * 32);
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<data>\n<");
        s.push_str(&self.tag);
        for (k, v) in &self.attributes {
            let _ = write!(s, " {k}=\"{}\"", escape_attribute(v));
        }
        s.push_str(" />\n</data>");
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_with_too_many_attributes_is_refused() {
        let many: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
        let error = parse_document(&format!("<data>\n<program{many}/>\n</data>")).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("more than 64 attributes"), "{error}");
        let enough: String = (0..64).map(|i| format!(" a{i}=\"\"")).collect();
        assert!(parse_document(&format!("<data{enough}/>")).is_ok());
    }

    #[test]
    fn parses_a_real_programmer_log_message() {
        let msg = b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<data>\n<log value=\"INFO: Binary build date: Jun 25 2021 @ 23:36:59\" /></data>";
        let elems = parse_message(msg).unwrap();
        assert_eq!(elems.len(), 1);
        assert_eq!(elems[0].name, "log");
        assert_eq!(
            elems[0].attr("value"),
            Some("INFO: Binary build date: Jun 25 2021 @ 23:36:59")
        );
    }

    #[test]
    fn parses_configure_ack_with_every_attribute() {
        let msg = br#"<?xml version="1.0" encoding="UTF-8" ?><data><response value="ACK" MinVersionSupported="1" MemoryName="UFS" MaxPayloadSizeFromTargetInBytes="4096" MaxPayloadSizeToTargetInBytes="1048576" MaxPayloadSizeToTargetInBytesSupported="1048576" MaxXMLSizeInBytes="4096" Version="1" TargetName="8180" /></data>"#;
        let e = &parse_message(msg).unwrap()[0];
        assert_eq!(e.name, "response");
        assert_eq!(e.attr("value"), Some("ACK"));
        assert_eq!(e.attr("MaxPayloadSizeToTargetInBytes"), Some("1048576"));
        assert_eq!(e.attr("TargetName"), Some("8180"));
        assert_eq!(e.attr("missing"), None);
    }

    #[test]
    fn decodes_entities_and_single_quotes() {
        let msg = b"<?xml version='1.0'?><data><log value='a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#65;&#x42;' /></data>";
        let e = &parse_message(msg).unwrap()[0];
        assert_eq!(e.attr("value"), Some("a <b> & \"c\" 'd' AB"));
        // A double quote inside single quotes needs no escaping.
        let msg = b"<data><log value='say \"hi\"'/></data>";
        assert_eq!(
            parse_message(msg).unwrap()[0].attr("value"),
            Some("say \"hi\"")
        );
    }

    #[test]
    fn several_children_comments_and_explicit_close_tags() {
        let msg = b"<?xml version=\"1.0\" ?>\n<!-- c -->\n<data>\n  <log value=\"x\"></log>\n  <response value=\"NAK\" rawmode=\"false\"/>\n</data>\n";
        let elems = parse_message(msg).unwrap();
        assert_eq!(elems.len(), 2);
        assert_eq!(elems[1].attr("rawmode"), Some("false"));
        assert_eq!(elems[1].line, 5);
    }

    #[test]
    fn malformed_input_is_an_error_with_a_line() {
        let cases: &[&[u8]] = &[
            b"",
            b"<data>",
            b"<data><log value=\"x\" /></dat>",
            b"<data><log value=\"x /></data>",
            b"<data><log value=x /></data>",
            b"<data><log value=\"&bogus;\" /></data>",
            b"<data><log value=\"a<b\" /></data>",
            b"<data><log value=\"1\" value=\"2\" /></data>",
            b"<data><log value=\"1\"value=\"2\" /></data>",
            b"<data></data><data></data>",
            b"<response value=\"ACK\" />",
            b"<data>\n\n<log value=\"&#xFFFFFFFF;\"/></data>",
        ];
        for case in cases {
            assert!(
                parse_message(case).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(case)
            );
        }
        let err = parse_message(b"<data>\n\n<log value=\"&nope;\"/></data>").unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion_blowup() {
        let mut doc = String::new();
        for _ in 0..10_000 {
            doc.push_str("<a>");
        }
        assert!(parse_document(&doc).is_err());
    }

    #[test]
    fn non_utf8_log_text_is_replaced_not_refused() {
        let msg = b"<data><log value=\"caf\xe9\" /></data>";
        assert_eq!(
            parse_message(msg).unwrap()[0].attr("value"),
            Some("caf\u{fffd}")
        );
    }

    #[test]
    fn writes_command_documents_with_escaped_attributes() {
        let doc = Document::new("program")
            .attr("SECTOR_SIZE_IN_BYTES", 4096)
            .attr("start_sector", "NUM_DISK_SECTORS-5.")
            .attr("filename", "a&b \"c\" <d>.img");
        assert_eq!(
            doc.to_string(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<data>\n<program SECTOR_SIZE_IN_BYTES=\"4096\" start_sector=\"NUM_DISK_SECTORS-5.\" filename=\"a&amp;b &quot;c&quot; &lt;d&gt;.img\" />\n</data>"
        );
        // Round trip through the reader.
        let e = &parse_message(&doc.to_bytes()).unwrap()[0];
        assert_eq!(e.attr("filename"), Some("a&b \"c\" <d>.img"));
    }
}
