//! Many applications at once (`keycred fleet audit|rotate|retire`), with the identity of an
//! automation app that holds `Application.ReadWrite.All` (PROTOCOL.md section 8).
//!
//! It sits on [`crate::graph`] (calls, paging, the adaptive limiter shared by every request of a
//! run), which never imports it:
//!
//! - [`audit`]: every credential of every application (and service principal), classified;
//! - [`journal`]: the append-only record that makes a rotation resumable after any crash;
//! - [`workers`]: the listing and worker pool every run shares;
//! - [`rotate`] (and `rotate_steps`): phase 1, a new certificate added by PATCH, verified with
//!   a token and handed over by the deploy hook, app by app, several at a time;
//! - [`retire`]: phase 2, the older certificates removed on evidence.

pub mod audit;
pub mod journal;
pub mod retire;
pub mod rotate;
mod rotate_model;
mod rotate_steps;
pub mod workers;

use crate::{ClientId, Error, Result};
use std::path::Path;
use std::time::Duration;

/// Parses a duration as `30d`, `12h`, `90m` or `45s` (a whole number and one unit); `what`
/// names the input in the error.
pub fn parse_duration(s: &str, what: &str) -> Result<Duration> {
    let t = s.trim();
    let bad = || {
        Error::input(format!("{what} '{t}': not a duration"))
            .with_hint("give a whole number and a unit: 30d (days), 12h (hours), 90m (minutes) or 45s")
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

/// The application ids `given` and those of `file` (one id a line; blank lines and lines
/// starting with `#` are skipped, each checked to be a GUID), duplicates dropped, order kept.
pub fn app_ids(given: &[ClientId], file: Option<&Path>) -> Result<Vec<ClientId>> {
    let mut out: Vec<ClientId> = Vec::new();
    let mut push = |id: ClientId| {
        if !out.contains(&id) {
            out.push(id);
        }
    };
    for g in given {
        push(g.clone());
    }
    if let Some(path) = file {
        let bytes = crate::fsio::read(path)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::file(path, "not UTF-8 text"))?;
        for (i, line) in text.lines().enumerate() {
            let l = line.trim().trim_start_matches('\u{feff}');
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            push(ClientId::guid(l, &format!("{} line {}", path.display(), i + 1))?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("30d", "--expiring-within").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_duration(" 12h", "x").unwrap(), Duration::from_secs(43_200));
        assert_eq!(parse_duration("0s", "x").unwrap(), Duration::ZERO);
        for bad in ["30", "d", "1.5d", "30days", "-1d", "99999999999999999999d", ""] {
            let e = parse_duration(bad, "--expiring-within").unwrap_err();
            assert!(e.to_string().starts_with("--expiring-within '"), "{bad}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn app_ids_come_from_flags_and_a_file_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("apps.txt");
        let a = "11111111-1111-1111-1111-111111111111";
        let b = "22222222-2222-2222-2222-222222222222";
        std::fs::write(&f, format!("# tonight\n{b}\n\n  {}  \n{a}\n", a.to_uppercase())).unwrap();
        let ids = app_ids(&[ClientId::guid(a, "test").unwrap()], Some(&f)).unwrap();
        assert_eq!(ids.iter().map(ClientId::as_str).collect::<Vec<_>>(), vec![a, b]);
        std::fs::write(&f, format!("{a}\nnot-an-id\n")).unwrap();
        let e = app_ids(&[], Some(&f)).unwrap_err();
        assert!(e.to_string().contains("apps.txt line 2: 'not-an-id'"), "{e}");
    }
}
