//! `keycred fleet audit`'s output: every reported credential (with its last sign-in) streamed as its page arrives, never
//! gathered (a tenant may hold millions), as a table, as CSV for spreadsheets, or as one JSON
//! document that serde writes while the audit runs. A reader that closes stdout ends the audit
//! at the next row, and the command exits 0, as every command does.

use super::table::Table;
use super::FailOn;
use crate::output::{count, ensure_open, out_line, printable, write_failed, JsonSafe, Stdout};
use crate::{Ctx, OutputFormat};
use keycred::fleet::audit::{self, CredStatus, Filters, Kind, Row, Summary};
use keycred::graph::GraphClient;
use keycred::{Error, Result};
use serde::ser::{Error as _, SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use std::cell::RefCell;
use std::io::Write;

/// What the audit hands each reported row to.
type Sink<'s> = &'s mut dyn FnMut(&Row) -> Result<()>;
/// The audit, run with a sink for its rows.
type Audit<'a> = dyn FnMut(Sink<'_>) -> Result<Summary> + 'a;

/// Runs `fleet audit` and prints its report; exit 4 when `--fail-on` finds what it names.
pub(super) fn run_audit(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    g: &GraphClient,
    filters: &Filters,
    fail_on: &[FailOn],
) -> Result<u8> {
    let spinner = ctx.stderr_is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    let mut seen = 0u64;
    let failing_statuses: Vec<CredStatus> = fail_on.iter().map(|f| f.status()).collect();
    let mut failing = Failing::default();
    let mut audit = |sink: Sink<'_>| {
        rt.block_on(audit::run(g, filters, |r| {
            seen += 1;
            if failing_statuses.contains(&r.status) {
                failing.count(r);
            }
            if let Some(pb) = &spinner {
                pb.set_message(format!("{seen} credentials, {} throttled waits", g.limiter().throttled_count()));
            }
            sink(r)?;
            // Stdout closed by its reader: nothing more is wanted, so no more pages are read.
            ensure_open()
        }))
    };
    let summary = match ctx.format {
        OutputFormat::Text => text(&mut audit, filters),
        OutputFormat::Json => json(&mut audit),
        OutputFormat::Csv => csv(&mut audit),
    };
    if let Some(pb) = &spinner {
        pb.finish_and_clear();
    }
    let summary = summary?;
    if let Some(why) = &summary.sign_ins_unavailable {
        eprintln!(
            "keycred: warning: the sign-in report could not be read, so lastSignIn is empty: {} \
             (it needs AuditLog.Read.All)",
            printable(why)
        );
    }
    fail_on_check(&summary, fail_on, &failing)
}

/// Exit 4 when a reported credential has a status `--fail-on` names, the hint saying what fixes
/// each kind of credential found.
fn fail_on_check(summary: &Summary, fail_on: &[FailOn], found: &Failing) -> Result<u8> {
    let failing: Vec<String> = fail_on
        .iter()
        .map(|f| f.status())
        .filter(|s| summary.with_status(*s) > 0)
        .map(|s| {
            let n = summary.with_status(s);
            format!("{n} {} credential{}", s.name(), if n == 1 { "" } else { "s" })
        })
        .collect();
    if !failing.is_empty() {
        return Err(Error::check(format!("--fail-on: {}", failing.join(", "))).with_hint(found.hint()));
    }
    Ok(keycred::error::exit::OK)
}

/// The credentials `--fail-on` matched, by what can be done about them: the hint names what
/// fixes each kind, and `fleet rotate` only for what it rotates.
#[derive(Default)]
struct Failing {
    /// Applications' certificates ending or ended: `fleet rotate` replaces them.
    app_certificates: u64,
    /// Certificates Entra cannot verify with: nothing to rotate, they are to be removed.
    unusable: u64,
    /// Client secrets: never rotated by `fleet`.
    secrets: u64,
    /// Service principals' certificates (SAML signing): not rotated by `fleet`.
    sp_certificates: u64,
}

impl Failing {
    /// Counts a credential `--fail-on` matched.
    fn count(&mut self, r: &Row) {
        let counter = match (r.kind, r.object_type, r.status) {
            // Never expiring, expired or unusable: `--fail-on` has nothing to say about them.
            (Kind::Federated, _, _) => return,
            (Kind::Secret, _, _) => &mut self.secrets,
            (Kind::Certificate, "servicePrincipal", _) => &mut self.sp_certificates,
            (Kind::Certificate, _, CredStatus::Unusable) => &mut self.unusable,
            (Kind::Certificate, _, _) => &mut self.app_certificates,
        };
        *counter += 1;
    }

    /// What to do about them, kind by kind.
    fn hint(&self) -> String {
        let mut hints = Vec::new();
        if self.app_certificates > 0 {
            hints.push(format!(
                "rotate the {} with `keycred fleet rotate --expiring-within ... --out-dir DIR` (--dry-run first)",
                count(self.app_certificates, "application certificate", "application certificates")
            ));
        }
        if self.unusable > 0 {
            hints.push(format!(
                "remove the {} (the reason column says why Entra cannot use them)",
                count(self.unusable, "unusable certificate", "unusable certificates")
            ));
        }
        if self.secrets > 0 {
            hints.push(format!(
                "`fleet rotate` never rotates secrets ({} here): add a new one (portal, or `az ad app credential \
                 reset --append`), give it to its consumers, then remove the old one",
                count(self.secrets, "secret", "secrets")
            ));
        }
        if self.sp_certificates > 0 {
            hints.push(format!(
                "{} (SAML signing) renewed in the portal (Enterprise applications, Single sign-on), not by \
                 `fleet rotate`",
                match self.sp_certificates {
                    1 => "the service principal certificate is".to_string(),
                    n => format!("the {n} service principal certificates are"),
                }
            ));
        }
        hints.join("; ")
    }
}

/// The audit as a table, then a summary line.
fn text(audit: &mut Audit<'_>, filters: &Filters) -> Result<Summary> {
    let mut first = true;
    let table = Table::for_stdout();
    let summary = audit(&mut |r| {
        if std::mem::take(&mut first) {
            out_line(&table.header());
        }
        out_line(&table.row(r));
        Ok(())
    })?;
    if first {
        out_line("no credential matches");
    }
    let sps = if filters.service_principals {
        format!(" and {} service principals", summary.service_principals)
    } else {
        String::new()
    };
    out_line(&format!(
        "{} applications{sps}, {} credentials: {} valid, {} expiring, {} expired, {} not yet valid, {} unusable{}",
        summary.applications,
        summary.credentials,
        summary.valid,
        summary.expiring,
        summary.expired,
        summary.not_yet_valid,
        summary.unusable,
        match summary.unknown {
            0 => String::new(),
            n => format!(", {n} unknown"),
        }
    ));
    Ok(summary)
}

/// The audit as CSV: the header, then a record per row, each written out as it comes.
fn csv(audit: &mut Audit<'_>) -> Result<Summary> {
    let mut w = csv::Writer::from_writer(Stdout);
    let summary = audit(&mut |r| {
        w.serialize(csv_row(r)).map_err(|e| write_failed("the CSV", e))?;
        w.flush().map_err(|e| write_failed("the CSV", e))
    })?;
    if summary.credentials == 0 {
        // No row: the header alone, so that a spreadsheet still gets the columns.
        w.write_record(audit::CSV_HEADER).map_err(|e| write_failed("the CSV", e))?;
    }
    w.flush().map_err(|e| write_failed("the CSV", e))?;
    Ok(summary)
}

/// The audit as one JSON document, `{"credentials": [...], "summary": {...}}`, written by serde
/// as the rows come.
fn json(audit: &mut Audit<'_>) -> Result<Summary> {
    let doc = Document { audit: RefCell::new(audit), outcome: RefCell::new(None) };
    let mut out = serde_json::Serializer::pretty(JsonSafe(Stdout));
    let written = doc.serialize(&mut out);
    match (doc.outcome.into_inner(), written) {
        // The audit's own failure first (a closed stdout is one: the command then exits 0).
        (Some(Err(e)), _) => Err(e),
        (_, Err(e)) => Err(write_failed("the audit", e)),
        (Some(Ok(summary)), Ok(())) => {
            out.into_inner().write_all(b"\n").map_err(|e| write_failed("the audit", e))?;
            Ok(summary)
        }
        (None, Ok(())) => Err(Error::internal("the audit's JSON was written without running the audit")),
    }
}

/// The JSON document: serialising it runs the audit (once), its rows going straight to the
/// serializer; the outcome is kept for the caller.
struct Document<'a> {
    audit: RefCell<&'a mut Audit<'a>>,
    outcome: RefCell<Option<Result<Summary>>>,
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut doc = s.serialize_map(Some(2))?;
        doc.serialize_entry("credentials", &Rows(self))?;
        let summary = match &*self.outcome.borrow() {
            Some(Ok(summary)) => summary.clone(),
            _ => return Err(S::Error::custom("the audit stopped")),
        };
        doc.serialize_entry("summary", &summary)?;
        doc.end()
    }
}

/// The `credentials` array: the audit's rows, as it reports them.
struct Rows<'d, 'a>(&'d Document<'a>);

impl Serialize for Rows<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let mut failed = None;
        let outcome = (self.0.audit.borrow_mut())(&mut |r| {
            seq.serialize_element(r).map_err(|e| {
                let stop =
                    ensure_open().err().unwrap_or_else(|| Error::internal(format!("cannot write the audit: {e}")));
                failed = Some(e);
                stop
            })
        });
        let stopped = outcome.is_err();
        *self.0.outcome.borrow_mut() = Some(outcome);
        match failed {
            Some(e) => Err(e),
            None if stopped => Err(S::Error::custom("the audit stopped")),
            None => seq.end(),
        }
    }
}

/// A text CSV cell: control characters escaped as in the text output, and a leading `=`, `+`,
/// `-` or `@`, which spreadsheets take for a formula, neutralised the OWASP way with a leading
/// `'`.
fn csv_text(s: &str) -> String {
    let s = printable(s);
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.into_owned()
    }
}

/// `r` for a spreadsheet: every text cell escaped and kept from being a formula. Ids come from
/// whatever Graph (or a stand-in for it) answered, so they are free text too; a well-formed id,
/// thumbprint or date never starts with a formula character and is unchanged. `daysLeft` is a
/// number, and a spreadsheet reads `-5` as one.
fn csv_row(r: &Row) -> Row {
    let text = |v: &Option<String>| v.as_deref().map(csv_text);
    Row {
        app_id: csv_text(&r.app_id),
        display_name: text(&r.display_name),
        key_id: text(&r.key_id),
        thumbprint: text(&r.thumbprint),
        start: text(&r.start),
        end: text(&r.end),
        last_sign_in: text(&r.last_sign_in),
        reason: text(&r.reason),
        name: text(&r.name),
        issuer: text(&r.issuer),
        subject: text(&r.subject),
        audience: text(&r.audience),
        ..r.clone()
    }
}
