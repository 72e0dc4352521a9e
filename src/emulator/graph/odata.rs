//! The OData query options Graph reads on directory collections (`$select`, `$filter`, `$top`,
//! `$skiptoken`), parsed into values the handlers apply to the entities they render.
//!
//! Only what Graph supports on applications and service principals *by default* (without
//! `ConsistencyLevel: eventual`) is accepted: equality on a few string properties,
//! `startswith`, `any` over string collections, date comparisons on `createdDateTime`, joined
//! with `and`/`or`. Anything else is refused with the code and text Graph answers, so a script
//! that works here does not rely on a query the real service would refuse (filtering on
//! credential dates, notably, answers 400 `Request_UnsupportedQuery` on Graph too).
//!
//! A filter is also bounded as Graph bounds it, so that no query can exhaust the parser's stack:
//! parentheses nest at most [`MAX_NESTING`] deep (the OData library Graph parses with stops
//! recursing at a limit of its own), and the expression tree, `and`/`or` chains counted as one
//! node each, is at most [`MAX_HEIGHT`] high (the directory's "excessive height" rule).

use serde_json::{Map, Value};

/// Graph's default page size for directory collections, and its largest `$top`.
pub const DEFAULT_TOP: usize = 100;
pub const MAX_TOP: usize = 999;

/// A refusal of a query option: Graph's error code and message, answered with 400.
#[derive(Debug, PartialEq, Eq)]
pub struct QueryError {
    /// Graph's `error.code`: `BadRequest` or `Request_UnsupportedQuery`.
    pub code: &'static str,
    /// Graph's `error.message`.
    pub message: String,
}

fn bad(message: impl Into<String>) -> QueryError {
    QueryError { code: "BadRequest", message: message.into() }
}

fn unsupported(message: impl Into<String>) -> QueryError {
    QueryError { code: "Request_UnsupportedQuery", message: message.into() }
}

/// What an entity type allows: its property names (for `$select`), and which of them `$filter`
/// accepts by default, with which operators.
pub struct EntityType {
    /// `microsoft.graph.application`.
    pub odata_name: &'static str,
    /// `Application`, as Graph names the resource in filter errors.
    pub resource: &'static str,
    pub properties: &'static [&'static str],
    /// String properties that accept `eq` (and `startswith` when in `prefix`).
    pub eq: &'static [&'static str],
    pub prefix: &'static [&'static str],
    /// String collections that accept `any(x:x eq '...')`.
    pub any: &'static [&'static str],
    /// Date properties that accept `ge`/`le`.
    pub dates: &'static [&'static str],
}

impl EntityType {
    fn property(&self, name: &str) -> Option<&'static str> {
        self.properties.iter().copied().find(|p| p.eq_ignore_ascii_case(name))
    }
    fn not_a_property(&self, name: &str) -> QueryError {
        bad(format!("Could not find a property named '{name}' on type '{}'.", self.odata_name))
    }
    fn unsupported_clause(&self, name: &str) -> QueryError {
        unsupported(format!(
            "Unsupported or invalid query filter clause specified for property '{name}' of resource '{}'.",
            self.resource
        ))
    }
}

/// The query options of one collection or entity request.
#[derive(Debug, Default)]
pub struct Query {
    /// Property names as the entity spells them, in the order asked.
    pub select: Option<Vec<&'static str>>,
    pub filter: Option<Filter>,
    pub top: usize,
    /// Position of the first entity of this page.
    pub skip: usize,
}

impl Query {
    /// Parses the query string's options for `entity`. Unknown `$` options are refused as Graph
    /// does; other parameters are ignored.
    pub fn parse(raw_query: Option<&str>, entity: &EntityType) -> Result<Query, QueryError> {
        let mut q = Query { top: DEFAULT_TOP, ..Query::default() };
        for (k, v) in url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
            // Graph accepts the options with or without `$`, case-insensitively.
            let name = k.trim_start_matches('$').to_ascii_lowercase();
            match name.as_str() {
                "select" => q.select = Some(parse_select(&v, entity)?),
                "filter" => q.filter = Some(parse_filter(&v, entity)?),
                "top" => {
                    let n: usize = v.trim().parse().map_err(|_| bad(format!("Invalid value '{v}' for $top.")))?;
                    if n == 0 || n > MAX_TOP {
                        return Err(bad(format!(
                            "Invalid page size specified: '{n}'. Must be between 1 and {MAX_TOP} inclusive."
                        )));
                    }
                    q.top = n;
                }
                "skiptoken" => q.skip = decode_skiptoken(&v).ok_or_else(|| bad("Invalid $skiptoken value."))?,
                "count" | "orderby" | "search" => {
                    return Err(unsupported(format!(
                        "${name} is an advanced query: it needs the ConsistencyLevel: eventual header, which this \
                         emulator does not serve."
                    )))
                }
                "expand" | "skip" | "format" => {
                    return Err(bad(format!("Query option '${name}' is not supported by this emulator.")))
                }
                _ if k.starts_with('$') => return Err(bad(format!("Query option '{k}' is not allowed."))),
                _ => {}
            }
        }
        Ok(q)
    }

    /// Whether `entity` (rendered in full) passes `$filter`.
    pub fn matches(&self, entity: &Map<String, Value>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.eval(entity))
    }

    /// `(appId,displayName)` for the `@odata.context` of a selection, or empty.
    pub fn context_suffix(&self) -> String {
        self.select.as_ref().map(|s| format!("({})", s.join(","))).unwrap_or_default()
    }

    /// Keeps only the selected properties (all when nothing was selected).
    pub fn project(&self, entity: Map<String, Value>) -> Map<String, Value> {
        match &self.select {
            None => entity,
            Some(sel) => {
                let mut out = Map::new();
                for p in sel {
                    out.insert((*p).to_string(), entity.get(*p).cloned().unwrap_or(Value::Null));
                }
                out
            }
        }
    }

    /// The properties an entity must be rendered with to answer this query: all (`None`) without
    /// `$select`, else the selected ones and those `$filter` reads.
    pub fn needed(&self) -> Option<Vec<&'static str>> {
        let mut out = self.select.clone()?;
        if let Some(f) = &self.filter {
            f.properties(&mut out);
        }
        Some(out)
    }

    /// Whether a property was named in `$select` (certificate bodies are returned only then).
    pub fn selects(&self, name: &str) -> bool {
        self.select.as_ref().is_some_and(|s| s.iter().any(|p| p.eq_ignore_ascii_case(name)))
    }
}

fn parse_select(v: &str, entity: &EntityType) -> Result<Vec<&'static str>, QueryError> {
    let mut out = Vec::new();
    for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let prop = entity.property(p).ok_or_else(|| {
            bad(format!(
                "Parsing OData Select and Expand failed: Could not find a property named '{p}' on type '{}'.",
                entity.odata_name
            ))
        })?;
        if !out.contains(&prop) {
            out.push(prop);
        }
    }
    Ok(out)
}

/// `$skiptoken` values are opaque to clients (they follow `@odata.nextLink` as given); this one
/// carries the position of the next page.
pub fn encode_skiptoken(skip: usize) -> String {
    crate::thumbprint::b64url(format!("keycred-emulator:{skip}").as_bytes())
}

fn decode_skiptoken(v: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v.trim()).ok()?;
    std::str::from_utf8(&bytes).ok()?.strip_prefix("keycred-emulator:")?.parse().ok()
}

/// How deep parentheses may nest in a `$filter`. Graph parses with the OData library, whose
/// parser counts its recursive calls and refuses past a limit (`FilterLimit`, 800 calls by
/// default, several calls per parenthesis) with "Recursion depth exceeded allowed limit.";
/// the exact depth at which Graph stops is not documented, this is of the same order.
pub const MAX_NESTING: usize = 100;

/// Graph's limit on the height of a directory filter's expression tree, a comparison counting
/// 1 and an `and`/`or` chain one more than its highest member: Graph refuses `((A or (B and C))
/// and D)` (height 4) with "Search filter expression has excessive height: 4. Max allowed: 3."
/// and accepts `(A and D) or (B and C and D)` (microsoftgraph/microsoft-graph-docs#3641).
pub const MAX_HEIGHT: usize = 3;

/// A parsed `$filter`. `and`/`or` chains are one node each, as Graph counts them.
#[derive(Debug, PartialEq)]
pub enum Filter {
    Eq(&'static str, String),
    StartsWith(&'static str, String),
    Any(&'static str, String),
    Date(&'static str, Cmp, time::OffsetDateTime),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Ge,
    Le,
}

impl Filter {
    /// Adds the properties the filter reads to `out`.
    fn properties(&self, out: &mut Vec<&'static str>) {
        match self {
            Filter::Eq(p, _) | Filter::StartsWith(p, _) | Filter::Any(p, _) | Filter::Date(p, ..) => {
                if !out.contains(p) {
                    out.push(p)
                }
            }
            Filter::And(all) | Filter::Or(all) => all.iter().for_each(|f| f.properties(out)),
        }
    }

    /// The height of the expression tree: 1 for a comparison, one more than the highest member
    /// for a chain. Called only on trees the parser built, at most [`MAX_NESTING`] deep.
    pub fn height(&self) -> usize {
        match self {
            Filter::And(all) | Filter::Or(all) => 1 + all.iter().map(Filter::height).max().unwrap_or(0),
            _ => 1,
        }
    }

    fn eval(&self, e: &Map<String, Value>) -> bool {
        // Graph compares directory strings case-insensitively.
        let text = |p: &str| e.get(p).and_then(Value::as_str).map(str::to_lowercase);
        match self {
            Filter::Eq(p, v) => text(p).is_some_and(|t| t == v.to_lowercase()),
            Filter::StartsWith(p, v) => text(p).is_some_and(|t| t.starts_with(&v.to_lowercase())),
            Filter::Any(p, v) => e
                .get(*p)
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().filter_map(Value::as_str).any(|s| s.eq_ignore_ascii_case(v))),
            Filter::Date(p, cmp, at) => {
                e.get(*p).and_then(Value::as_str).and_then(crate::dates::parse_manifest).is_some_and(|t| match cmp {
                    Cmp::Ge => t >= *at,
                    Cmp::Le => t <= *at,
                })
            }
            Filter::And(all) => all.iter().all(|f| f.eval(e)),
            Filter::Or(all) => all.iter().any(|f| f.eval(e)),
        }
    }
}

/// Tokens of a filter expression.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    Comma,
    Colon,
    Slash,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, QueryError> {
    let invalid = || bad(format!("Invalid filter clause: syntax error in '{s}'."));
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' | ')' | ',' | ':' | '/' => {
                chars.next();
                out.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    ',' => Tok::Comma,
                    ':' => Tok::Colon,
                    _ => Tok::Slash,
                });
            }
            '\'' => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        // OData escapes a quote inside a string by doubling it.
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            v.push('\'');
                        }
                        Some('\'') => break,
                        Some(ch) => v.push(ch),
                        None => return Err(invalid()),
                    }
                }
                out.push(Tok::Str(v));
            }
            _ => {
                let mut w = String::new();
                // A literal that starts with a digit is a date (`2024-01-01T00:00:00Z`): its
                // colons belong to it.
                let literal = c.is_ascii_digit();
                while let Some(&ch) = chars.peek() {
                    if ch.is_alphanumeric() || matches!(ch, '_' | '.' | '-' | '+') || (literal && ch == ':') {
                        w.push(ch);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if w.is_empty() {
                    return Err(invalid());
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    entity: &'a EntityType,
    text: &'a str,
    /// Parentheses open around the current position.
    nesting: usize,
}

/// Parses a `$filter` for `entity`: Graph's refusal when it is not one Graph accepts by default,
/// nested too deep or too high (see [`MAX_NESTING`], [`MAX_HEIGHT`]).
pub fn parse_filter(s: &str, entity: &EntityType) -> Result<Filter, QueryError> {
    let mut p = Parser { toks: tokenize(s)?, pos: 0, entity, text: s, nesting: 0 };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.invalid());
    }
    let height = f.height();
    if height > MAX_HEIGHT {
        return Err(unsupported(format!(
            "Search filter expression has excessive height: {height}. Max allowed: {MAX_HEIGHT}."
        )));
    }
    Ok(f)
}

impl Parser<'_> {
    fn invalid(&self) -> QueryError {
        bad(format!("Invalid filter clause: syntax error in '{}'.", self.text))
    }
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), QueryError> {
        if self.next() == Some(t) {
            Ok(())
        } else {
            Err(self.invalid())
        }
    }
    fn string(&mut self) -> Result<String, QueryError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => Err(self.invalid()),
        }
    }
    /// `a or b or ...`, one node however long the chain (a chain nested pair by pair would be
    /// as deep as it is long).
    fn or(&mut self) -> Result<Filter, QueryError> {
        let mut all = vec![self.and()?];
        while self.peek_word("or") {
            self.pos += 1;
            all.push(self.and()?);
        }
        Ok(if all.len() == 1 { all.remove(0) } else { Filter::Or(all) })
    }
    fn and(&mut self) -> Result<Filter, QueryError> {
        let mut all = vec![self.atom()?];
        while self.peek_word("and") {
            self.pos += 1;
            all.push(self.atom()?);
        }
        Ok(if all.len() == 1 { all.remove(0) } else { Filter::And(all) })
    }
    /// `( expression )`: the only place the parser recurses, so bounding the nesting bounds the
    /// stack whatever the input.
    fn parenthesized(&mut self) -> Result<Filter, QueryError> {
        if self.nesting == MAX_NESTING {
            return Err(bad("Invalid filter clause: Recursion depth exceeded allowed limit."));
        }
        self.nesting += 1;
        let f = self.or()?;
        self.expect(Tok::Close)?;
        self.nesting -= 1;
        Ok(f)
    }
    /// The property a name refers to; an unknown name is Graph's "Could not find a property".
    fn property(&self, name: &str) -> Result<&'static str, QueryError> {
        self.entity.property(name).ok_or_else(|| self.entity.not_a_property(name))
    }
    fn atom(&mut self) -> Result<Filter, QueryError> {
        match self.next() {
            Some(Tok::Open) => self.parenthesized(),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("startswith") => {
                self.expect(Tok::Open)?;
                let Some(Tok::Word(name)) = self.next() else { return Err(self.invalid()) };
                let prop = self.property(&name)?;
                self.expect(Tok::Comma)?;
                let v = self.string()?;
                self.expect(Tok::Close)?;
                if !self.entity.prefix.contains(&prop) {
                    return Err(self.entity.unsupported_clause(prop));
                }
                Ok(Filter::StartsWith(prop, v))
            }
            Some(Tok::Word(name)) => {
                let prop = self.property(&name)?;
                if self.toks.get(self.pos) == Some(&Tok::Slash) {
                    // coll/any(x:x eq 'v')
                    self.pos += 1;
                    let Some(Tok::Word(any)) = self.next() else { return Err(self.invalid()) };
                    if !any.eq_ignore_ascii_case("any") {
                        return Err(self.entity.unsupported_clause(prop));
                    }
                    self.expect(Tok::Open)?;
                    let Some(Tok::Word(var)) = self.next() else { return Err(self.invalid()) };
                    self.expect(Tok::Colon)?;
                    let Some(Tok::Word(var2)) = self.next() else { return Err(self.invalid()) };
                    if var2 != var {
                        // `keyCredentials/any(k:k/endDateTime ...)` and the like.
                        return Err(self.entity.unsupported_clause(prop));
                    }
                    if self.toks.get(self.pos) == Some(&Tok::Slash) || !self.peek_word("eq") {
                        return Err(self.entity.unsupported_clause(prop));
                    }
                    self.pos += 1;
                    let v = self.string()?;
                    self.expect(Tok::Close)?;
                    if !self.entity.any.contains(&prop) {
                        return Err(self.entity.unsupported_clause(prop));
                    }
                    return Ok(Filter::Any(prop, v));
                }
                let Some(Tok::Word(op)) = self.next() else { return Err(self.invalid()) };
                let op = op.to_ascii_lowercase();
                match op.as_str() {
                    "eq" if self.entity.eq.contains(&prop) => Ok(Filter::Eq(prop, self.string()?)),
                    "ge" | "le" if self.entity.dates.contains(&prop) => {
                        let Some(Tok::Word(d)) = self.next() else { return Err(self.invalid()) };
                        let at = crate::dates::parse_manifest(&d).ok_or_else(|| self.invalid())?;
                        Ok(Filter::Date(prop, if op == "ge" { Cmp::Ge } else { Cmp::Le }, at))
                    }
                    "eq" | "ne" | "ge" | "le" | "gt" | "lt" => Err(self.entity.unsupported_clause(prop)),
                    _ => Err(self.invalid()),
                }
            }
            _ => Err(self.invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: EntityType = EntityType {
        odata_name: "microsoft.graph.application",
        resource: "Application",
        properties: &["appId", "displayName", "identifierUris", "keyCredentials", "createdDateTime"],
        eq: &["appId", "displayName"],
        prefix: &["displayName"],
        any: &["identifierUris"],
        dates: &["createdDateTime"],
    };

    fn entity() -> Map<String, Value> {
        json!({"appId": "A1", "displayName": "Payroll O'Neil", "identifierUris": ["api://pay"],
               "createdDateTime": "2024-05-01T00:00:00Z"})
        .as_object()
        .unwrap()
        .clone()
    }

    fn eval(f: &str) -> bool {
        parse_filter(f, &T).unwrap().eval(&entity())
    }

    #[test]
    fn the_documented_forms_match_as_graph_does() {
        assert!(eval("appId eq 'a1'"));
        assert!(!eval("appId eq 'a2'"));
        assert!(eval("displayName eq 'Payroll O''Neil'"));
        assert!(eval("startswith(displayName,'pay')"));
        assert!(eval("identifierUris/any(s:s eq 'api://pay')"));
        assert!(eval("appId eq 'x' or (startswith(displayName, 'Pay') and appId eq 'A1')"));
        assert!(eval("createdDateTime ge 2024-01-01T00:00:00Z"));
        assert!(!eval("createdDateTime le 2024-01-01T00:00:00Z"));
    }

    #[test]
    fn unsupported_filters_are_refused_with_graphs_codes() {
        let e = parse_filter("keyCredentials/any(k:k/endDateTime le 2025-01-01T00:00:00Z)", &T).unwrap_err();
        assert_eq!(e.code, "Request_UnsupportedQuery");
        assert!(e.message.contains("property 'keyCredentials' of resource 'Application'"), "{}", e.message);
        let e = parse_filter("nosuch eq 'x'", &T).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("BadRequest", "Could not find a property named 'nosuch' on type 'microsoft.graph.application'.")
        );
        assert_eq!(parse_filter("appId ne 'x'", &T).unwrap_err().code, "Request_UnsupportedQuery");
        assert_eq!(parse_filter("appId eq 'x", &T).unwrap_err().code, "BadRequest");
        assert_eq!(parse_filter("appId eq 'x' extra", &T).unwrap_err().code, "BadRequest");
    }

    #[test]
    fn nesting_is_bounded_before_the_stack_is() {
        let nested = |n: usize| format!("{}appId eq 'a1'{}", "(".repeat(n), ")".repeat(n));
        assert!(eval(&nested(MAX_NESTING)));
        let too_deep = ("BadRequest", "Invalid filter clause: Recursion depth exceeded allowed limit.");
        for n in [MAX_NESTING + 1, 100_000] {
            let e = parse_filter(&nested(n), &T).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), too_deep, "{n} levels");
        }
        // Unbalanced: refused at the limit too, never recursing further.
        assert_eq!(parse_filter(&"(".repeat(100_000), &T).unwrap_err().message, too_deep.1);
    }

    #[test]
    fn chains_are_one_node_and_the_height_is_graphs() {
        // 100,000 alternatives: one `or` node, parsed, evaluated and dropped without recursing
        // once per clause.
        let chain = vec!["appId eq 'zz'"; 100_000].join(" or ") + " or appId eq 'a1'";
        let f = parse_filter(&chain, &T).unwrap();
        assert_eq!(f.height(), 2);
        assert!(f.eval(&entity()));
        // microsoftgraph/microsoft-graph-docs#3641: height 4 refused, the same as an `or` of
        // `and`s (height 3) accepted.
        let e = parse_filter(
            "((identifierUris/any(c:c eq 'api://pay') or (appId eq 'x' and displayName eq 'y')) and \
             startswith(displayName,'pay'))",
            &T,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("Request_UnsupportedQuery", "Search filter expression has excessive height: 4. Max allowed: 3.")
        );
        assert!(eval(
            "(identifierUris/any(c:c eq 'api://pay') and startswith(displayName,'pay')) or \
             (appId eq 'x' and displayName eq 'y' and startswith(displayName,'pay'))"
        ));
    }

    #[test]
    fn select_top_and_skiptoken() {
        let q = Query::parse(Some("$select=APPID,displayName&$top=999"), &T).unwrap();
        assert_eq!(q.select, Some(vec!["appId", "displayName"]));
        assert_eq!((q.top, q.skip), (999, 0));
        assert_eq!(q.context_suffix(), "(appId,displayName)");
        assert!(Query::parse(Some("$top=1000"), &T).is_err());
        assert!(Query::parse(Some("$select=nosuch"), &T).unwrap_err().message.contains("'nosuch'"));
        let q = Query::parse(Some(&format!("$skiptoken={}", encode_skiptoken(300))), &T).unwrap();
        assert_eq!((q.top, q.skip), (DEFAULT_TOP, 300));
        assert!(Query::parse(Some("$skiptoken=garbage"), &T).is_err());
    }
}
