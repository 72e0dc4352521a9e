//! Format-preserving edits of `keyCredentials`: the original text is spliced, never re-serialised.
//!
//! Re-serialising a downloaded manifest would reorder nothing (serde_json keeps order) but would
//! still rewrite large numbers, escapes, indentation and line endings, turning a one-entry change
//! into a whole-file diff the portal then rejects or a reviewer cannot read. So edits locate the
//! byte spans of the top-level members and of the array elements in the text (found by `scan`)
//! and insert or cut only those bytes.
//! Inserted text follows the file's own style: indentation unit, `:` spacing, CRLF, compact.

use super::scan::{array_spans, indent_after_newline, layout, line_indent, scan_string, skip_ws, ArraySpans, Layout};
use super::{Manifest, Selector};
use crate::wording::Action;
use crate::{Error, Result};
use serde_json::{Map, Value};

/// Name of the member edited here.
const MEMBER: &str = "keyCredentials";

/// How the file writes JSON, so inserted text looks like the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Style {
    /// `\n` or `\r\n`.
    pub newline: &'static str,
    /// One indentation level (`"  "`, `"    "`, `"\t"`); `None` for single-line (compact) files.
    pub unit: Option<String>,
    /// What separates a member name from its value (`": "`, `":"`, `" : "`).
    pub colon: String,
}

impl Style {
    /// Reads the style of `text`: line endings, the indentation unit of top-level members, and the
    /// spacing around `:` of the first member.
    pub(crate) fn detect(text: &str) -> Style {
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let mut colon = ": ".to_string();
        let mut unit = None;
        if let Ok(l) = layout(text) {
            let b = text.as_bytes();
            let first_key = skip_ws(b, l.open + 1);
            if let Some(m) = l.members.first() {
                let key_end = scan_string(b, first_key);
                colon = text[key_end..m.value.0].to_string();
                unit = indent_after_newline(&text[l.open + 1..first_key]).map(str::to_string);
            } else if text[l.open..l.close].contains('\n') {
                unit = Some("  ".to_string());
            }
        } else if text.contains('\n') {
            unit = Some("  ".to_string());
        }
        // A file with line breaks but unindented members still gets readable entries.
        let unit = unit.map(|u| if u.is_empty() { "  ".to_string() } else { u });
        Style { newline, unit, colon }
    }

    /// Writes `v` in this style; nested lines start with `base` plus units.
    pub(crate) fn write(&self, v: &Value, base: &str) -> String {
        let mut out = String::new();
        self.write_into(&mut out, v, base);
        out
    }

    fn write_into(&self, out: &mut String, v: &Value, base: &str) {
        let Some(unit) = &self.unit else {
            out.push_str(&compact(v, &self.colon));
            return;
        };
        let inner = format!("{base}{unit}");
        match v {
            Value::Object(o) if !o.is_empty() => {
                out.push('{');
                for (n, (k, val)) in o.iter().enumerate() {
                    out.push_str(if n == 0 { "" } else { "," });
                    out.push_str(self.newline);
                    out.push_str(&inner);
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push_str(&self.colon);
                    self.write_into(out, val, &inner);
                }
                out.push_str(self.newline);
                out.push_str(base);
                out.push('}');
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('[');
                for (n, val) in a.iter().enumerate() {
                    out.push_str(if n == 0 { "" } else { "," });
                    out.push_str(self.newline);
                    out.push_str(&inner);
                    self.write_into(out, val, &inner);
                }
                out.push_str(self.newline);
                out.push_str(base);
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
}

/// Single-line JSON with the file's own `:` spacing (serde_json's compact form uses `:`).
fn compact(v: &Value, colon: &str) -> String {
    match v {
        Value::Object(o) => {
            let parts: Vec<String> = o
                .iter()
                .map(|(k, val)| format!("{}{colon}{}", Value::String(k.clone()), compact(val, colon)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(|x| compact(x, colon)).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The text of a `keyCredentials` array holding `entries`, opened on a line indented `line`.
fn new_array(style: &Style, line: &str, entries: &[String]) -> String {
    if entries.is_empty() {
        return "[]".to_string();
    }
    match &style.unit {
        None => format!("[{}]", entries.join(",")),
        Some(unit) => {
            let sep = format!(",{}{line}{unit}", style.newline);
            format!("[{nl}{line}{unit}{}{nl}{line}]", entries.join(&sep), nl = style.newline)
        }
    }
}

fn member_span(l: &Layout, origin: &str) -> Result<Option<(usize, usize)>> {
    named_member_span(l, origin, MEMBER)
}

fn named_member_span(l: &Layout, origin: &str, name: &str) -> Result<Option<(usize, usize)>> {
    let mut found = l.members.iter().filter(|m| m.key == name);
    let first = found.next();
    if found.next().is_some() {
        return Err(Error::input(format!("{origin}: {name} appears more than once"))
            .with_hint(format!("keep a single {name} member in the manifest")));
    }
    Ok(first.map(|m| m.value))
}

fn splice(text: &str, from: usize, to: usize, with: &str) -> String {
    let mut s = String::with_capacity(text.len() + with.len());
    s.push_str(&text[..from]);
    s.push_str(with);
    s.push_str(&text[to..]);
    s
}

impl Manifest {
    fn reparse(&self, text: String) -> Result<Manifest> {
        Manifest::parse(&text, &self.origin).map_err(|e| {
            Error::internal(format!("editing produced invalid JSON ({}); nothing was written", e.message()))
        })
    }

    /// The span of the `keyCredentials` value, refusing a duplicated member (which one Entra would
    /// read is undefined).
    fn member_span(&self, l: &Layout) -> Result<Option<(usize, usize)>> {
        member_span(l, &self.origin)
    }

    /// Writes `entries` (already rendered) as the whole array where there was none or `null`.
    fn create_array(&self, l: &Layout, span: Option<(usize, usize)>, style: &Style, entries: &[String]) -> String {
        let text = &self.text;
        if let Some((s, e)) = span {
            let line = line_indent(text, s);
            return splice(text, s, e, &new_array(style, line, entries));
        }
        let name = Value::String(MEMBER.into()).to_string();
        match (&style.unit, l.members.last()) {
            (None, Some(last)) => {
                let arr = new_array(style, "", entries);
                splice(text, last.value.1, last.value.1, &format!(",{name}{}{arr}", style.colon))
            }
            (None, None) => {
                let arr = new_array(style, "", entries);
                splice(text, l.open + 1, l.close, &format!("{name}{}{arr}", style.colon))
            }
            (Some(_), Some(last)) => {
                let line = line_indent(text, last.value.0).to_string();
                let arr = new_array(style, &line, entries);
                let member = format!(",{}{line}{name}{}{arr}", style.newline, style.colon);
                splice(text, last.value.1, last.value.1, &member)
            }
            (Some(unit), None) => {
                let line = line_indent(text, l.open);
                let inner = format!("{line}{unit}");
                let arr = new_array(style, &inner, entries);
                let member = format!("{nl}{inner}{name}{}{arr}{nl}{line}", style.colon, nl = style.newline);
                splice(text, l.open + 1, l.close, &member)
            }
        }
    }

    /// Inserts rendered entries after the last element of an existing array.
    fn append_to_array(&self, arr: &ArraySpans, style: &Style, values: &[&Value]) -> String {
        let text = &self.text;
        let Some(&(last_start, last_end)) = arr.elements.last() else {
            let line = line_indent(text, arr.open);
            let indent = style.unit.as_ref().map(|u| format!("{line}{u}")).unwrap_or_default();
            let rendered: Vec<String> = values.iter().map(|v| style.write(v, &indent)).collect();
            return splice(text, arr.open, arr.close + 1, &new_array(style, line, &rendered));
        };
        // Follow the layout of the existing elements: one per line at their indentation, or
        // side by side when they share a line.
        let prev_end = if arr.elements.len() >= 2 { arr.elements[arr.elements.len() - 2].1 } else { arr.open + 1 };
        let lead = text[prev_end..last_start].rsplit(',').next().unwrap_or_default();
        let (sep, indent) = match indent_after_newline(lead) {
            Some(ind) => (format!(",{}{ind}", style.newline), ind.to_string()),
            None => (format!(",{lead}"), line_indent(text, last_start).to_string()),
        };
        let mut insert = String::new();
        for v in values {
            insert.push_str(&sep);
            insert.push_str(&style.write(v, &indent));
        }
        splice(text, last_end, last_end, &insert)
    }

    /// Appends entries to `keyCredentials`, creating the array when missing.
    pub(crate) fn splice_append(&self, values: &[&Value]) -> Result<Manifest> {
        if values.is_empty() {
            return Ok(self.clone());
        }
        let l = layout(&self.text)?;
        let style = Style::detect(&self.text);
        let span = self.member_span(&l)?;
        let text = match span {
            Some((s, _)) if self.text.as_bytes()[s] == b'[' => {
                self.append_to_array(&array_spans(&self.text, s), &style, values)
            }
            _ => {
                let indent = match (&style.unit, span, l.members.last()) {
                    (None, ..) => String::new(),
                    (Some(u), Some((s, _)), _) => format!("{}{u}", line_indent(&self.text, s)),
                    (Some(u), None, Some(last)) => format!("{}{u}", line_indent(&self.text, last.value.0)),
                    (Some(u), None, None) => format!("{}{u}{u}", line_indent(&self.text, l.open)),
                };
                let rendered: Vec<String> = values.iter().map(|v| style.write(v, &indent)).collect();
                self.create_array(&l, span, &style, &rendered)
            }
        };
        self.reparse(text)
    }

    /// Removes the elements at `indices` (positions in the array) with their separators, so that
    /// removing what [`Manifest::add_entry`] added gives back the original bytes.
    pub fn remove_indices(&self, indices: &[usize]) -> Result<Manifest> {
        let mut idx: Vec<usize> = indices.to_vec();
        idx.sort_unstable();
        idx.dedup();
        let mut text = self.text.clone();
        // From the highest index down, so earlier spans stay where they were.
        for &i in idx.iter().rev() {
            let l = layout(&text)?;
            let Some((s, _)) = member_span(&l, &self.origin)? else {
                return Err(Error::internal("no keyCredentials to remove from"));
            };
            if text.as_bytes()[s] != b'[' {
                return Err(Error::internal("keyCredentials is not an array"));
            }
            let arr = array_spans(&text, s);
            let n = arr.elements.len();
            if i >= n {
                return Err(Error::internal(format!("keyCredentials has no element {i}")));
            }
            let (from, to) = if n == 1 {
                (arr.open + 1, arr.close)
            } else if i == n - 1 {
                (arr.elements[i - 1].1, arr.elements[i].1)
            } else {
                (arr.elements[i].0, arr.elements[i + 1].0)
            };
            text = splice(&text, from, to, "");
        }
        self.reparse(text)
    }

    /// Removes every entry matched by `selectors`. Each selector must match at least one entry:
    /// asking to remove something absent is an input error, and nothing is changed.
    pub fn remove_entries(&self, selectors: &[Selector]) -> Result<Manifest> {
        self.remove_indices(&self.select(selectors)?)
    }

    /// The positions of the entries `selectors` match, sorted; an error naming the first selector
    /// that matches nothing.
    pub fn select(&self, selectors: &[Selector]) -> Result<Vec<usize>> {
        let mut indices = Vec::new();
        for sel in selectors {
            let found = self.find(sel);
            if found.is_empty() {
                return Err(Error::input(format!(
                    "{}: no keyCredentials entry with {sel}; nothing was changed",
                    self.origin
                ))
                .with_hint(format!("{} shows the entries", Action::ListEntries { manifest: None })));
            }
            indices.extend(found.iter().map(|c| c.index));
        }
        indices.sort_unstable();
        indices.dedup();
        Ok(indices)
    }

    /// Replaces the whole `keyCredentials` collection (what Graph's PATCH does), preserving the
    /// rest of the file. When the new collection keeps the old entries in order and only appends
    /// or drops some, the kept entries keep their exact bytes.
    pub fn replace_key_credentials(&self, entries: &[Value]) -> Result<Manifest> {
        let old = self.raw_entries();
        if old == entries {
            return Ok(self.clone());
        }
        // Drop the old entries that are gone, if the survivors stay in order and lead the new list.
        let mut keep = Vec::new();
        let mut drop = Vec::new();
        let mut next = 0;
        for (i, e) in old.iter().enumerate() {
            if next < entries.len() && entries[next] == *e {
                keep.push(i);
                next += 1;
            } else {
                drop.push(i);
            }
        }
        let has_array = matches!(self.root.get(MEMBER), Some(Value::Array(_)));
        if has_array && !keep.is_empty() && entries[..next].iter().zip(&keep).all(|(n, &k)| old[k] == *n) {
            let trimmed = if drop.is_empty() { self.clone() } else { self.remove_indices(&drop)? };
            let rest: Vec<&Value> = entries[next..].iter().collect();
            return trimmed.splice_append(&rest);
        }
        // Otherwise rebuild the array text, reusing the original bytes of unchanged entries.
        let l = layout(&self.text)?;
        let style = Style::detect(&self.text);
        let span = self.member_span(&l)?;
        let old_spans = match span {
            Some((s, _)) if self.text.as_bytes()[s] == b'[' => array_spans(&self.text, s).elements,
            _ => Vec::new(),
        };
        let indent = match (&style.unit, span, l.members.last()) {
            (None, ..) => String::new(),
            (Some(u), Some((s, _)), _) => format!("{}{u}", line_indent(&self.text, s)),
            (Some(u), None, Some(last)) => format!("{}{u}", line_indent(&self.text, last.value.0)),
            (Some(u), None, None) => format!("{}{u}{u}", line_indent(&self.text, l.open)),
        };
        let mut used = vec![false; old.len()];
        let rendered: Vec<String> = entries
            .iter()
            .map(|e| {
                let reuse = (0..old.len().min(old_spans.len())).find(|&i| !used[i] && old[i] == *e);
                match reuse {
                    Some(i) => {
                        used[i] = true;
                        self.text[old_spans[i].0..old_spans[i].1].to_string()
                    }
                    None => style.write(e, &indent),
                }
            })
            .collect();
        let text = self.create_array(&l, span, &style, &rendered);
        self.reparse(text)
    }

    /// Sets the top-level member `name` (other than `keyCredentials`, which has its own edits) to
    /// `value`, written in the file's style: its value is replaced where the member exists, else
    /// the member is added after the last one. The rest of the file keeps its bytes. The
    /// emulator's Graph uses it for `passwordCredentials`.
    pub fn set_member(&self, name: &str, value: &Value) -> Result<Manifest> {
        let text = &self.text;
        let l = layout(text)?;
        let style = Style::detect(text);
        let key = Value::String(name.into()).to_string();
        let text = match (named_member_span(&l, &self.origin, name)?, &style.unit, l.members.last()) {
            (Some((s, e)), _, _) => splice(text, s, e, &style.write(value, line_indent(text, s))),
            (None, None, Some(last)) => {
                splice(text, last.value.1, last.value.1, &format!(",{key}{}{}", style.colon, style.write(value, "")))
            }
            (None, None, None) => {
                splice(text, l.open + 1, l.close, &format!("{key}{}{}", style.colon, style.write(value, "")))
            }
            (None, Some(_), Some(last)) => {
                let line = line_indent(text, last.value.0).to_string();
                let member = format!(",{}{line}{key}{}{}", style.newline, style.colon, style.write(value, &line));
                splice(text, last.value.1, last.value.1, &member)
            }
            (None, Some(unit), None) => {
                let line = line_indent(text, l.open);
                let inner = format!("{line}{unit}");
                let member = format!(
                    "{nl}{inner}{key}{}{}{nl}{line}",
                    style.colon,
                    style.write(value, &inner),
                    nl = style.newline
                );
                splice(text, l.open + 1, l.close, &member)
            }
        };
        self.reparse(text)
    }

    /// Appends one entry as rendered by the file's style, unchecked. See [`Manifest::add_entry`].
    pub(crate) fn append_unchecked(&self, entry: &Map<String, Value>) -> Result<Manifest> {
        self.splice_append(&[&Value::Object(entry.clone())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(text: &str) -> Manifest {
        Manifest::parse(text, "test").unwrap()
    }

    #[test]
    fn set_member_replaces_or_adds_in_style() {
        let v = json!([{"keyId": "p"}]);
        let t = "{\n  \"a\": 1,\n  \"passwordCredentials\": [],\n  \"b\": 2\n}";
        let out = m(t).set_member("passwordCredentials", &v).unwrap();
        assert_eq!(
            out.text(),
            "{\n  \"a\": 1,\n  \"passwordCredentials\": [\n    {\n      \"keyId\": \"p\"\n    }\n  ],\n  \"b\": 2\n}"
        );
        let out = m("{\n  \"a\": 1\n}").set_member("passwordCredentials", &json!([])).unwrap();
        assert_eq!(out.text(), "{\n  \"a\": 1,\n  \"passwordCredentials\": []\n}");
        assert_eq!(m("{\"a\":1}").set_member("p", &v).unwrap().text(), "{\"a\":1,\"p\":[{\"keyId\":\"p\"}]}");
        assert_eq!(m("{}").set_member("p", &json!(1)).unwrap().root()["p"], json!(1));
    }

    #[test]
    fn style_detection() {
        let s = Style::detect("{\r\n\t\"a\": 1\r\n}");
        assert_eq!((s.newline, s.unit.as_deref(), s.colon.as_str()), ("\r\n", Some("\t"), ": "));
        let s = Style::detect("{\"a\":1}");
        assert_eq!((s.unit, s.colon.as_str()), (None, ":"));
        let s = Style::detect("{\n    \"a\" : 1\n}");
        assert_eq!((s.unit.as_deref(), s.colon.as_str()), (Some("    "), " : "));
    }

    #[test]
    fn append_then_remove_round_trips_in_every_layout() {
        let entry = json!({"keyId": "k", "key": null});
        for t in [
            "{\n  \"a\": 1,\n  \"keyCredentials\": []\n}\n",
            "{\n  \"keyCredentials\": [\n    {\"keyId\": \"x\"}\n  ]\n}",
            "{\"keyCredentials\":[{\"keyId\":\"x\"}]}",
            "{\"keyCredentials\":[]}",
            "{\"keyCredentials\": [1, 2]}",
            "\u{feff}{\r\n\t\"keyCredentials\": [\r\n\t\t{\r\n\t\t\t\"keyId\": \"x\"\r\n\t\t}\r\n\t]\r\n}\r\n",
        ] {
            let added = m(t).splice_append(&[&entry]).unwrap();
            assert_eq!(added.raw_entries().last().unwrap(), &entry, "{t}");
            let n = added.raw_entries().len();
            assert_eq!(added.remove_indices(&[n - 1]).unwrap().text(), t);
        }
    }

    #[test]
    fn missing_and_null_arrays_are_created_in_style() {
        let e = json!({"keyId": "k"});
        let out = m("{\n    \"a\": 1\n}").splice_append(&[&e]).unwrap();
        assert_eq!(
            out.text(),
            "{\n    \"a\": 1,\n    \"keyCredentials\": [\n        {\n            \"keyId\": \"k\"\n        }\n    ]\n}"
        );
        let out = m("{\"keyCredentials\":null}").splice_append(&[&e]).unwrap();
        assert_eq!(out.text(), "{\"keyCredentials\":[{\"keyId\":\"k\"}]}");
        let out = m("{}").splice_append(&[&e]).unwrap();
        assert_eq!(out.text(), "{\"keyCredentials\": [{\"keyId\": \"k\"}]}");
    }

    #[test]
    fn removing_middle_and_first_elements_keeps_neighbours() {
        let t = "{\n  \"keyCredentials\": [\n    1,\n    2,\n    3\n  ]\n}";
        assert_eq!(m(t).remove_indices(&[0]).unwrap().text(), "{\n  \"keyCredentials\": [\n    2,\n    3\n  ]\n}");
        assert_eq!(m(t).remove_indices(&[1]).unwrap().text(), "{\n  \"keyCredentials\": [\n    1,\n    3\n  ]\n}");
        assert_eq!(m(t).remove_indices(&[0, 1, 2]).unwrap().text(), "{\n  \"keyCredentials\": []\n}");
    }

    #[test]
    fn replace_keeps_unchanged_entries_byte_for_byte() {
        let t = "{\n  \"keyCredentials\": [\n    {\"keyId\": \"a\",   \"key\": null},\n    {\"keyId\": \"b\"}\n  ]\n}";
        let man = m(t);
        let mut entries = man.raw_entries().to_vec();
        entries.push(json!({"keyId": "c"}));
        let out = man.replace_key_credentials(&entries).unwrap();
        assert!(out.text().starts_with("{\n  \"keyCredentials\": [\n    {\"keyId\": \"a\",   \"key\": null},"));
        assert_eq!(out.raw_entries(), entries.as_slice());
        // Reordered: rebuilt, still reusing the original bytes of each entry.
        let rev: Vec<Value> = entries.iter().rev().cloned().collect();
        let out = man.replace_key_credentials(&rev).unwrap();
        assert!(out.text().contains("{\"keyId\": \"a\",   \"key\": null}"));
        assert_eq!(out.raw_entries(), rev.as_slice());
        assert_eq!(man.replace_key_credentials(&[]).unwrap().text(), "{\n  \"keyCredentials\": []\n}");
        let dup = m("{\"keyCredentials\": [1], \"keyCredentials\": [2]}");
        assert!(dup.remove_indices(&[0]).unwrap_err().message().contains("more than once"));
        assert!(dup.splice_append(&[&json!(3)]).is_err());
    }
}
