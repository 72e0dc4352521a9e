//! `keycred fleet audit`: every credential of the tenant's applications as a table, JSON lines
//! or CSV, streamed as Graph's pages arrive, with each one's last sign-in.

use super::{Auth, Select};
use crate::output::{json_safe, out_line, printable};
use crate::{Ctx, OutputFormat};
use keycred::fleet::audit::{self, CredStatus, Filters, Row};
use keycred::fleet::parse_duration;
use keycred::graph::GraphClient;
use keycred::{Error, Result};

/// Arguments of `fleet audit`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    auth: Auth,
    #[command(flatten)]
    select: Select,
    /// Only credentials with this status (repeatable, or comma-separated)
    #[arg(long, value_enum, value_delimiter = ',')]
    status: Vec<StatusArg>,
    /// Also service principals' credentials (SAML signing certificates live there)
    #[arg(long)]
    include_service_principals: bool,
    /// Only credentials that have not signed in for this long, or never (Entra's "remove
    /// unused credentials"); needs the sign-in report (AuditLog.Read.All)
    #[arg(long, value_name = "DURATION")]
    unused: Option<String>,
    /// Exit 4 when a reported credential is expiring, expired or unusable (repeatable)
    #[arg(long, value_enum, value_delimiter = ',')]
    fail_on: Vec<FailOn>,
}

impl Args {
    /// Runs `fleet audit`.
    pub fn run(&self, ctx: &Ctx) -> Result<u8> {
        let window = self.select.window()?;
        let filters = Filters {
            window,
            only_expiring: window.is_some(),
            statuses: self.status.iter().map(|s| CredStatus::from(*s)).collect(),
            app_ids: self.select.apps.ids()?,
            service_principals: self.include_service_principals,
            unused: self.unused.as_deref().map(|d| parse_duration(d, "--unused")).transpose()?,
        };
        let tokens = self.auth.tokens()?;
        let rt = super::runtime()?;
        let g = self.auth.graph(&tokens)?;
        run_audit(ctx, &rt, &g, &filters, &self.fail_on)
    }
}

/// `--status` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    /// Usable and not ending within the window.
    Valid,
    /// Usable and ending within the window.
    Expiring,
    /// Past its end.
    Expired,
    /// Before its start.
    #[value(name = "not_yet_valid")]
    NotYetValid,
    /// Entra cannot verify with it.
    Unusable,
}

impl From<StatusArg> for CredStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Valid => CredStatus::Valid,
            StatusArg::Expiring => CredStatus::Expiring,
            StatusArg::Expired => CredStatus::Expired,
            StatusArg::NotYetValid => CredStatus::NotYetValid,
            StatusArg::Unusable => CredStatus::Unusable,
        }
    }
}

/// `--fail-on` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A credential ends within the window.
    Expiring,
    /// A credential has ended.
    Expired,
    /// A certificate Entra cannot verify with.
    Unusable,
}

const TABLE_HEADER: [&str; 10] =
    ["APP ID", "KIND", "STATUS", "DAYS", "END", "LAST SIGN-IN", "THUMBPRINT", "KEY ID", "NAME", "REASON"];

fn table_line(cols: [&str; 10]) -> String {
    format!(
        "{:<36}  {:<11}  {:<13}  {:>5}  {:<20}  {:<20}  {:<40}  {:<36}  {:<24}  {}",
        cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9]
    )
    .trim_end()
    .to_string()
}

fn table_row(r: &Row) -> String {
    // Escaped before padding (and cutting the name), so that an escape cannot push the columns
    // after it; `out_line` then finds nothing more to escape.
    let cell = |v: Option<&str>, none: &str| printable(v.unwrap_or(none)).into_owned();
    let days = r.days_left.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
    let name: String = cell(r.display_name.as_deref(), "-").chars().take(24).collect();
    table_line([
        &cell(Some(&r.app_id), ""),
        r.kind.name(),
        r.status.name(),
        &days,
        &cell(r.end.as_deref(), "-"),
        &cell(r.last_sign_in.as_deref(), "-"),
        &cell(r.thumbprint.as_deref(), "-"),
        &cell(r.key_id.as_deref(), "-"),
        &name,
        &cell(r.reason.as_deref(), ""),
    ])
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
        ..r.clone()
    }
}

/// Writes to stdout; a closed pipe ends the process quietly, as [`out_line`] does.
fn write_stdout(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// What follows the rows: a warning when the sign-in report could not be read, then the
/// summary line (text), the summary object closing the document (JSON), or the header alone
/// when no row was written (CSV).
fn finish_output(ctx: &Ctx, summary: &audit::Summary, first: bool, filters: &Filters) -> Result<()> {
    if let Some(why) = &summary.sign_ins_unavailable {
        eprintln!(
            "keycred: warning: the sign-in report could not be read, so lastSignIn is empty: {} \
             (it needs AuditLog.Read.All)",
            printable(why)
        );
    }
    match ctx.format {
        OutputFormat::Text => {
            if first {
                out_line("no credential matches");
            }
            out_line(&format!(
                "{} applications{}, {} credentials: {} valid, {} expiring, {} expired, {} not yet valid, {} unusable",
                summary.applications,
                if filters.service_principals {
                    format!(" and {} service principals", summary.service_principals)
                } else {
                    String::new()
                },
                summary.credentials,
                summary.valid,
                summary.expiring,
                summary.expired,
                summary.not_yet_valid,
                summary.unusable
            ));
        }
        OutputFormat::Json => {
            let s = serde_json::to_string(summary).map_err(|e| Error::internal(e.to_string()))?;
            let open = if first { "{\n\"credentials\": [" } else { "\n" };
            write_stdout(format!("{open}],\n\"summary\": {s}\n}}\n").as_bytes());
        }
        OutputFormat::Csv => {
            if first {
                // No row: the header alone, so that a spreadsheet still gets the columns.
                write_stdout(format!("{}\n", audit::CSV_HEADER.join(",")).as_bytes());
            }
        }
    }
    Ok(())
}

fn run_audit(
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
    let mut first = true;
    let mut seen = 0u64;
    // Streamed as pages arrive: rows are printed, never gathered.
    let summary = rt.block_on(audit::run(g, filters, |r| {
        seen += 1;
        if let Some(pb) = &spinner {
            pb.set_message(format!("{seen} credentials, {} throttled waits", g.limiter().throttled_count()));
        }
        match ctx.format {
            OutputFormat::Text => {
                if first {
                    out_line(&table_line(TABLE_HEADER));
                }
                out_line(&table_row(r));
            }
            OutputFormat::Json => {
                let row = serde_json::to_string(r).map_err(|e| Error::internal(e.to_string()))?;
                let row = json_safe(&row);
                write_stdout(format!("{}{row}", if first { "{\n\"credentials\": [\n" } else { ",\n" }).as_bytes());
            }
            OutputFormat::Csv => {
                let mut w = csv::WriterBuilder::new().has_headers(first).from_writer(Vec::new());
                w.serialize(csv_row(r)).map_err(|e| Error::internal(format!("CSV: {e}")))?;
                write_stdout(&w.into_inner().map_err(|e| Error::internal(format!("CSV: {e}")))?);
            }
        }
        first = false;
        Ok(())
    }));
    if let Some(pb) = &spinner {
        pb.finish_and_clear();
    }
    let summary = summary?;
    finish_output(ctx, &summary, first, filters)?;
    let failing: Vec<String> = fail_on
        .iter()
        .map(|f| match f {
            FailOn::Expiring => CredStatus::Expiring,
            FailOn::Expired => CredStatus::Expired,
            FailOn::Unusable => CredStatus::Unusable,
        })
        .filter(|s| summary.with_status(*s) > 0)
        .map(|s| format!("{} {}", summary.with_status(s), s.name()))
        .collect();
    if !failing.is_empty() {
        return Err(Error::check(format!("--fail-on: {} credentials", failing.join(", ")))
            .with_hint("rotate them with `keycred fleet rotate --expiring-within ...`"));
    }
    Ok(keycred::error::exit::OK)
}
