//! Phase 2 of a rotation, the decision: which of an application's older certificates may be
//! retired, on what evidence, and why the others are kept. No I/O: the credentials and the
//! sign-in report come in as values, so every rule is tested on plain values.
//!
//! The newest certificate is the usable, currently valid one that started last; it is never
//! retired. The older ones are the usable certificates that started before it (expired ones
//! included); certificates that are not yet valid, unusable entries and secrets are left alone.
//! An older certificate goes when there is evidence that nothing needs it any more:
//! - [`Evidence::SignIns`]: the sign-in report shows the application switched to the newest
//!   certificate (it signed in since it was added, and no older one signed in after it: while
//!   one still does, every older certificate of the application stays), and the older one has
//!   not signed in for the quiet period (the report lags sign-ins by hours, so a quiet period,
//!   not "unused right now");
//! - [`Evidence::After`]: the newest certificate started at least that long ago;
//! - [`Evidence::Force`]: no evidence asked for.
//!
//! An expired certificate cannot be in use and goes on any evidence. Without evidence the
//! certificate is kept, with the reason.

use crate::graph::signins::SignIns;
use crate::manifest::{KeyCredential, ListRow};
use crate::{dates, thumbprint};
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;

/// Default quiet period: an older certificate that has not signed in for a day is unused.
pub const DEFAULT_QUIET_FOR: Duration = Duration::from_secs(24 * 3600);

/// What counts as evidence that an older certificate is no longer needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// The sign-in report: the newest certificate in use, the older one quiet for this long.
    SignIns {
        /// How long an older certificate must not have signed in.
        quiet_for: Duration,
    },
    /// The newest certificate started at least this long ago.
    After(Duration),
    /// None needed.
    Force,
}

impl Default for Evidence {
    fn default() -> Self {
        Evidence::SignIns { quiet_for: DEFAULT_QUIET_FOR }
    }
}

/// An older certificate kept, and why. JSON field names are a contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kept {
    /// Its keyId.
    pub key_id: Option<String>,
    /// Its thumbprint.
    pub thumbprint: Option<String>,
    /// Why it stays.
    pub reason: String,
}

/// The decision for one application.
#[derive(Clone, Debug, Default)]
pub struct Decision {
    /// The newest certificate (kept), when there is one.
    pub newest: Option<KeyCredential>,
    /// The older certificates to retire.
    pub retire: Vec<KeyCredential>,
    /// The older certificates kept, each with its reason.
    pub keep: Vec<Kept>,
    /// Why there is nothing to decide (no valid certificate, or none older than the newest).
    pub nothing: Option<String>,
}

impl Decision {
    /// The rows of the certificates to retire, at `now`.
    pub fn retire_rows(&self, now: OffsetDateTime) -> Vec<ListRow> {
        self.retire.iter().map(|c| ListRow::of(c, now)).collect()
    }
}

fn start_of(c: &KeyCredential) -> OffsetDateTime {
    c.effective_start().unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn label(c: &KeyCredential) -> String {
    match (&c.key_id, c.sha1()) {
        (Some(k), _) => format!("keyId {k}"),
        (None, Some(t)) => format!("thumbprint {}", thumbprint::hex_upper(&t)),
        (None, None) => format!("entry {}", c.index),
    }
}

/// The newest certificate of `creds` at `now` and the older ones, or why there is nothing to
/// retire. Of two certificates starting the same second (dates have second precision), the one
/// ending later is the newer, and of two alike the one later in `keyCredentials` (Graph and
/// keycred append).
fn split(creds: &[KeyCredential], now: OffsetDateTime) -> Result<(KeyCredential, Vec<KeyCredential>), String> {
    let newest = creds
        .iter()
        .filter(|c| c.counts_as_valid_at(now))
        .max_by_key(|c| (start_of(c), c.effective_end(), c.index))
        .ok_or("no currently valid certificate: nothing can replace the older ones")?;
    let older: Vec<KeyCredential> = creds
        .iter()
        .filter(|c| c.is_usable() && c.index != newest.index && start_of(c) <= start_of(newest))
        .cloned()
        .collect();
    if older.is_empty() {
        return Err(format!("nothing to retire: no certificate older than the newest ({})", label(newest)));
    }
    Ok((newest.clone(), older))
}

/// Decides what to retire among `creds` (an application's `keyCredentials`, read as entries).
/// `sign_ins` is the report for the application, or why it could not be read; it is looked at
/// only for [`Evidence::SignIns`].
pub fn decide(
    creds: &[KeyCredential],
    evidence: &Evidence,
    sign_ins: Option<&std::result::Result<SignIns, String>>,
    now: OffsetDateTime,
) -> Decision {
    let (newest, older) = match split(creds, now) {
        Ok(v) => v,
        Err(why) => return Decision { nothing: Some(why), ..Decision::default() },
    };
    let expired = |c: &KeyCredential| c.effective_end().is_some_and(|e| e < now);
    // Whether the application as a whole has switched to the newest certificate: while any
    // older one is still used, none goes (but expired ones, which cannot be).
    let switched = match evidence {
        Evidence::SignIns { .. } => switched_over(&newest, older.iter().filter(|c| !expired(c)), sign_ins),
        _ => Ok(None),
    };
    let mut d = Decision { newest: Some(newest.clone()), ..Decision::default() };
    for c in older {
        let verdict = match (&switched, expired(&c)) {
            (_, true) => Ok(()),
            (Err(why), false) => Err(why.clone()),
            (Ok(new_last), false) => judge(&newest, &c, evidence, *new_last, sign_ins, now),
        };
        match verdict {
            Ok(()) => d.retire.push(c),
            Err(reason) => d.keep.push(Kept {
                key_id: c.key_id.clone(),
                thumbprint: c.sha1().map(|t| thumbprint::hex_upper(&t)),
                reason,
            }),
        }
    }
    d
}

fn last_of(report: &SignIns, c: &KeyCredential) -> Option<OffsetDateTime> {
    c.key_id.as_deref().and_then(|k| report.last(k))
}

/// With sign-in evidence: the newest certificate's last sign-in, once the report shows the
/// application switched to it (it signed in since it was added, and no older certificate
/// after it); else why the application has not.
fn switched_over<'a>(
    newest: &KeyCredential,
    mut older: impl Iterator<Item = &'a KeyCredential>,
    sign_ins: Option<&std::result::Result<SignIns, String>>,
) -> std::result::Result<Option<OffsetDateTime>, String> {
    let report = match sign_ins {
        Some(Ok(r)) => r,
        Some(Err(why)) => return Err(format!("no evidence: the sign-in report could not be read ({why})")),
        None => return Err("no evidence: no sign-in report was read".to_string()),
    };
    let Some(new_last) = last_of(report, newest).filter(|t| *t >= start_of(newest)) else {
        return Err(format!(
            "the newest certificate ({}) has not signed in since it was added: deploy it first",
            label(newest)
        ));
    };
    if let Some((c, t)) = older.find_map(|c| last_of(report, c).filter(|t| *t > new_last).map(|t| (c, t))) {
        return Err(format!(
            "still in use: {} signed in at {}, after the newest certificate's last sign-in ({})",
            label(c),
            dates::format(t),
            dates::format(new_last)
        ));
    }
    Ok(Some(new_last))
}

/// Whether the evidence allows retiring `old` beside `newest` (for sign-ins, the application
/// having switched at `new_last`), or why not.
fn judge(
    newest: &KeyCredential,
    old: &KeyCredential,
    evidence: &Evidence,
    new_last: Option<OffsetDateTime>,
    sign_ins: Option<&std::result::Result<SignIns, String>>,
    now: OffsetDateTime,
) -> std::result::Result<(), String> {
    match evidence {
        Evidence::Force => Ok(()),
        Evidence::After(grace) => {
            let from = start_of(newest) + *grace;
            if now >= from {
                return Ok(());
            }
            Err(format!(
                "the newest certificate ({}) started {}; the grace period allows retiring from {}",
                label(newest),
                dates::format(start_of(newest)),
                dates::format(from)
            ))
        }
        Evidence::SignIns { quiet_for } => {
            let report = match (sign_ins, new_last) {
                (Some(Ok(r)), Some(_)) => r,
                _ => return Err("no evidence: the application has not switched to the newest certificate".into()),
            };
            let Some(old_last) = last_of(report, old) else { return Ok(()) };
            let quiet_from = old_last + *quiet_for;
            if now < quiet_from {
                return Err(format!(
                    "it last signed in at {}; it must be quiet for {} (until {})",
                    dates::format(old_last),
                    duration_text(*quiet_for),
                    dates::format(quiet_from)
                ));
            }
            Ok(())
        }
    }
}

/// `d` as the flags take it: `24h`, `30d`, `90m`, `45s` (one day is `24h`, as people say it).
pub fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_string(),
        _ if s.is_multiple_of(86_400) && s > 86_400 => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::signins::CredentialActivity;
    use serde_json::json;

    fn at(s: &str) -> OffsetDateTime {
        dates::parse(s, "t").unwrap()
    }

    /// A usable entry (with a certificate body) valid over `[start, end]`.
    fn cert(index: usize, key_id: &str, start: &str, end: &str) -> KeyCredential {
        let (c, _) = crate::cert::generate(&crate::cert::NewCertificate {
            subject: format!("CN=evidence {index}"),
            key_size: crate::cert::KeySize::Rsa2048,
            validity: crate::cert::Validity::Range(at("2020-01-01"), at("2030-01-01")),
        })
        .unwrap();
        let mut e = crate::manifest::entry_for(&c, crate::manifest::Format::MsGraph, &Default::default()).unwrap();
        e.insert("keyId".into(), json!(key_id));
        e.insert("startDateTime".into(), json!(format!("{start}T00:00:00Z")));
        e.insert("endDateTime".into(), json!(format!("{end}T00:00:00Z")));
        crate::manifest::read_entry(index, &e)
    }

    fn report(rows: &[(&str, &str)]) -> std::result::Result<SignIns, String> {
        let rows: Vec<CredentialActivity> = rows
            .iter()
            .map(|(k, t)| {
                serde_json::from_value(json!({"keyId": k, "credentialOrigin": "application",
                    "signInActivity": {"lastSignInDateTime": t}}))
                .unwrap()
            })
            .collect();
        Ok(SignIns::from_rows(&rows))
    }

    #[test]
    fn the_newest_valid_certificate_stays_and_only_usable_started_older_ones_are_candidates() {
        let now = at("2026-06-01");
        let creds = [
            cert(0, "old", "2025-01-01", "2026-06-20"),
            cert(1, "new", "2026-05-30", "2027-05-30"),
            cert(2, "future", "2026-07-01", "2027-07-01"),
            cert(3, "gone", "2024-01-01", "2025-01-01"),
        ];
        let d = decide(&creds, &Evidence::Force, None, now);
        assert_eq!(d.newest.unwrap().key_id.as_deref(), Some("new"));
        let retired: Vec<_> = d.retire.iter().map(|c| c.key_id.clone().unwrap()).collect();
        assert_eq!(retired, ["old", "gone"]);
        let one = decide(&creds[1..3], &Evidence::Force, None, now);
        assert!(one.nothing.unwrap().starts_with("nothing to retire"), "{:?}", one.retire);
        // Started the same second: the one appended later is the newer.
        let twins = [cert(0, "first", "2026-05-30", "2027-05-30"), cert(1, "second", "2026-05-30", "2027-05-30")];
        let d = decide(&twins, &Evidence::Force, None, now);
        assert_eq!(d.newest.unwrap().key_id.as_deref(), Some("second"));
        assert_eq!(d.retire[0].key_id.as_deref(), Some("first"));
        let none = decide(&creds[2..], &Evidence::Force, None, now);
        assert!(none.nothing.unwrap().starts_with("no currently valid certificate"));
    }

    #[test]
    fn sign_ins_retire_an_older_certificate_only_once_the_newest_is_used_and_the_old_one_is_quiet() {
        let now = at("2026-06-10");
        let creds = [cert(0, "old", "2025-01-01", "2026-06-20"), cert(1, "new", "2026-06-01", "2027-06-01")];
        let quiet = Evidence::SignIns { quiet_for: DEFAULT_QUIET_FOR };
        let reason = |r: std::result::Result<SignIns, String>, e: &Evidence| {
            let d = decide(&creds, e, Some(&r), now);
            (d.retire.len(), d.keep.first().map(|k| k.reason.clone()).unwrap_or_default())
        };
        // The new one has never signed in: not deployed.
        let (n, why) = reason(report(&[("old", "2026-06-09T23:00:00Z")]), &quiet);
        assert_eq!(n, 0);
        assert!(why.contains("has not signed in since it was added: deploy it first"), "{why}");
        // Both used, the old one after the new one: something still holds it.
        let (n, why) = reason(report(&[("new", "2026-06-02T00:00:00Z"), ("old", "2026-06-09T00:00:00Z")]), &quiet);
        assert_eq!(
            (n, why.starts_with("still in use: keyId old signed in at 2026-06-09T00:00:00Z")),
            (0, true),
            "{why}"
        );
        // Switched over, but the old one was used within the quiet period.
        let (n, why) = reason(report(&[("new", "2026-06-09T12:00:00Z"), ("old", "2026-06-09T11:00:00Z")]), &quiet);
        assert_eq!(n, 0);
        assert!(why.contains("must be quiet for 24h (until 2026-06-10T11:00:00Z)"), "{why}");
        // Quiet for a day after the switch, or never used at all: retired.
        assert_eq!(reason(report(&[("new", "2026-06-09T12:00:00Z"), ("old", "2026-06-08T11:00:00Z")]), &quiet).0, 1);
        assert_eq!(reason(report(&[("new", "2026-06-09T12:00:00Z")]), &quiet).0, 1);
        // A sign-in of the new one before its start (another credential's record) is no evidence.
        assert_eq!(reason(report(&[("new", "2026-05-01T00:00:00Z")]), &quiet).0, 0);
        // One older certificate still used keeps every older one, however quiet the others.
        let three = [creds[0].clone(), creds[1].clone(), cert(2, "unused", "2025-06-01", "2026-12-01")];
        let r = report(&[("new", "2026-06-02T00:00:00Z"), ("old", "2026-06-09T00:00:00Z")]);
        let d = decide(&three, &quiet, Some(&r), now);
        assert_eq!((d.retire.len(), d.keep.len()), (0, 2));
        assert!(d.keep.iter().all(|k| k.reason.starts_with("still in use: keyId old")), "{:?}", d.keep);
        // No report: kept, saying why; other evidence does not need one.
        let (n, why) = reason(Err("HTTP 403".into()), &quiet);
        assert_eq!((n, why.as_str()), (0, "no evidence: the sign-in report could not be read (HTTP 403)"));
        assert_eq!(reason(Err("HTTP 403".into()), &Evidence::After(Duration::from_secs(9 * 86_400))).0, 1);
        let (n, why) = reason(Err("x".into()), &Evidence::After(Duration::from_secs(10 * 86_400)));
        assert_eq!(n, 0);
        assert!(why.ends_with("the grace period allows retiring from 2026-06-11T00:00:00Z"), "{why}");
    }
}
