//! Dates as users type them and as Entra writes them.
//!
//! Input accepts `YYYY-MM-DD` (midnight UTC, like makecert's `-b`/`-e`) or RFC 3339;
//! output is always RFC 3339 in UTC with a `Z`, second precision, as the portal's manifests hold.

use crate::{Error, Result};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

/// Parses `YYYY-MM-DD` or an RFC 3339 timestamp. `what` names the input in the error.
pub fn parse(s: &str, what: &str) -> Result<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.to_offset(UtcOffset::UTC));
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(s, &fmt) {
        return Ok(d.midnight().assume_utc());
    }
    Err(Error::input(format!("{what}: '{s}' is not a date"))
        .with_hint("use YYYY-MM-DD or RFC 3339, for example 2027-01-31 or 2027-01-31T12:00:00Z"))
}

/// Formats as RFC 3339 UTC with second precision (`2027-01-31T12:00:00Z`).
pub fn format(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Parses a timestamp from a manifest (`2027-01-31T12:00:00Z`, `2027-01-31T12:00:00.123Z` or
/// Graph's `2027-01-31T12:00:00.0000000Z`).
pub fn parse_manifest(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok().map(|t| t.to_offset(UtcOffset::UTC))
}

/// The current time in UTC.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
pub fn days_between(from: OffsetDateTime, to: OffsetDateTime) -> i64 {
    (to - from).whole_days()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_formats_utc() {
        assert_eq!(format(parse("2027-01-31", "d").unwrap()), "2027-01-31T00:00:00Z");
        assert_eq!(format(parse("2027-01-31T12:30:00+02:00", "d").unwrap()), "2027-01-31T10:30:00Z");
        let e = parse("31/01/2027", "--not-after").unwrap_err();
        assert!(e.to_string().contains("--not-after"));
        assert_eq!(format(parse_manifest("2027-01-31T12:00:00.0000000Z").unwrap()), "2027-01-31T12:00:00Z");
    }
}
