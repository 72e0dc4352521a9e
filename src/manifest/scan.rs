//! Where the top-level members and the array elements of a manifest sit in its text, as byte spans.
//!
//! The format-preserving edits in `edit` cut and insert bytes at these spans instead of
//! re-serialising. The text has already been validated by serde_json, so this scanner only needs
//! to skip strings and balance brackets; it is apart so that the splicing reads as edits, not as
//! byte arithmetic.

use crate::{Error, Result};

/// A top-level member: its decoded name, and the byte span of its value.
pub(super) struct Member {
    pub(super) key: String,
    pub(super) value: (usize, usize),
}

/// The spans of the top-level object.
pub(super) struct Layout {
    /// Index of the `{`.
    pub(super) open: usize,
    /// Index of the matching `}`.
    pub(super) close: usize,
    pub(super) members: Vec<Member>,
}

/// The spans of an array: the brackets and each element.
pub(super) struct ArraySpans {
    pub(super) open: usize,
    pub(super) close: usize,
    pub(super) elements: Vec<(usize, usize)>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// `b[i]` is `"`; returns the index after the closing quote.
pub(super) fn scan_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Returns the index after the value starting at `i`. Strings are skipped whole so brackets
/// inside them do not count.
fn scan_value(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => scan_string(b, i),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = scan_string(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            j
        }
        _ => {
            let mut j = i;
            while j < b.len() && !is_ws(b[j]) && !matches!(b[j], b',' | b'}' | b']') {
                j += 1;
            }
            j
        }
    }
}

pub(super) fn layout(text: &str) -> Result<Layout> {
    let b = text.as_bytes();
    let open = skip_ws(b, if text.starts_with('\u{feff}') { 3 } else { 0 });
    if b.get(open) != Some(&b'{') {
        return Err(Error::internal("manifest text does not start with an object"));
    }
    let mut members = Vec::new();
    let mut i = skip_ws(b, open + 1);
    while b.get(i) == Some(&b'"') {
        let key_end = scan_string(b, i);
        let key: String = serde_json::from_str(&text[i..key_end])
            .map_err(|e| Error::internal(format!("member name at byte {i}")).caused_by(e))?;
        let colon = skip_ws(b, key_end);
        let vstart = skip_ws(b, colon + 1);
        let vend = scan_value(b, vstart);
        members.push(Member { key, value: (vstart, vend) });
        i = skip_ws(b, vend);
        if b.get(i) == Some(&b',') {
            i = skip_ws(b, i + 1);
        }
    }
    if b.get(i) != Some(&b'}') {
        return Err(Error::internal(format!("unexpected byte at {i} while scanning the manifest")));
    }
    Ok(Layout { open, close: i, members })
}

pub(super) fn array_spans(text: &str, open: usize) -> ArraySpans {
    let b = text.as_bytes();
    let mut elements = Vec::new();
    let mut i = skip_ws(b, open + 1);
    while i < b.len() && b[i] != b']' {
        let end = scan_value(b, i);
        elements.push((i, end));
        i = skip_ws(b, end);
        if b.get(i) == Some(&b',') {
            i = skip_ws(b, i + 1);
        }
    }
    ArraySpans { open, close: i, elements }
}

/// The leading whitespace of the line holding byte `pos`.
pub(super) fn line_indent(text: &str, pos: usize) -> &str {
    let start = text[..pos].rfind('\n').map_or(0, |n| n + 1);
    let line = &text[start..];
    let len = line.bytes().take_while(|b| *b == b' ' || *b == b'\t').count();
    &line[..len]
}

/// The indentation given by whitespace `ws` that ends a line, or `None` when `ws` has no newline.
pub(super) fn indent_after_newline(ws: &str) -> Option<&str> {
    ws.rfind('\n').map(|n| ws[n + 1..].trim_start_matches('\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_skips_brackets_and_quotes_inside_strings() {
        let t = r#"{"x": "a]}\"[{", "keyCredentials": [{"k": "]"}, 1], "y": [[]]}"#;
        let l = layout(t).unwrap();
        let names: Vec<&str> = l.members.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(names, ["x", "keyCredentials", "y"]);
        let (s, e) = l.members[1].value;
        assert_eq!(&t[s..e], r#"[{"k": "]"}, 1]"#);
        assert_eq!(array_spans(t, s).elements.len(), 2);
    }
}
