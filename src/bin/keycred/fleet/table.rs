//! `fleet audit`'s table, fitted to the terminal's width.
//!
//! Whole, the table is about 240 columns wide. On a narrower terminal (or `COLUMNS`) the
//! thumbprint and key id give way first, cut with an ellipsis and then left out, then the name is
//! cut, the dates cut to the day, the last sign-in, the policy and the name left out, and only
//! then (under 100 columns) the app id cut; `-o json` and `-o csv` always hold whole values,
//! and so does the table when stdout is not a terminal (a file, a pipe).

use crate::output::printable;
use keycred::fleet::audit::Row;

/// The columns before REASON: header, whole width, narrowest width.
const COLUMNS: [(&str, usize, usize); 10] = [
    ("APP ID", 36, 9),
    ("KIND", 11, 11),
    ("STATUS", 13, 13),
    ("POLICY", 13, 13),
    ("DAYS", 5, 5),
    ("END", 20, 10),
    ("LAST SIGN-IN", 20, 10),
    ("THUMBPRINT", 40, 12),
    ("KEY ID", 36, 12),
    ("NAME", 24, 10),
];
/// How the columns give way when the terminal is narrow, in order: the thumbprint and the key id
/// (which the portal shows too, and json and csv hold whole) are cut, then left out; then the
/// name is cut, the dates cut to the day, the last sign-in left out; then the policy standing and
/// the name are left out; the app id, what a setup engineer acts on, is cut only when nothing
/// else can give way (under about 100 columns).
const GIVE_WAY: [(usize, bool); 11] = [
    (7, false),
    (8, false),
    (8, true),
    (7, true),
    (9, false),
    (5, false),
    (6, false),
    (6, true),
    (3, true),
    (9, true),
    (0, false),
];
/// END and LAST SIGN-IN: dates, cut to the day rather than with an ellipsis.
const DATES: [usize; 2] = [5, 6];
/// A date's day, `2027-12-08`.
const DAY: usize = 10;
/// DAYS, a number: right-aligned.
const DAYS: usize = 4;
/// REASON keeps this much room while the others shrink; at worst it gets what is left.
const REASON_MIN: usize = 14;
/// Between two columns.
const GAP: &str = "  ";

/// The widths of the table's columns (0: left out), REASON last (`None`: whole).
pub struct Table {
    widths: [usize; 10],
    reason: Option<usize>,
}

impl Table {
    /// The layout for a terminal of `columns` (`None`: not a terminal, every value whole).
    pub fn new(columns: Option<usize>) -> Self {
        let mut widths = COLUMNS.map(|(_, w, _)| w);
        let Some(total) = columns else { return Table { widths, reason: None } };
        let used = |w: &[usize; 10]| w.iter().filter(|&&w| w > 0).map(|w| w + GAP.len()).sum::<usize>();
        let over = |w: &[usize; 10]| (used(w) + REASON_MIN).saturating_sub(total);
        for (i, leave_out) in GIVE_WAY {
            match leave_out {
                true if over(&widths) > 0 => widths[i] = 0,
                true => {}
                false => widths[i] -= over(&widths).min(widths[i] - COLUMNS[i].2),
            }
        }
        Table { widths, reason: Some(total.saturating_sub(used(&widths)).max(1)) }
    }

    /// The width of the terminal stdout is: `COLUMNS` when set, else the terminal's own; `None`
    /// when stdout is not a terminal.
    pub fn for_stdout() -> Self {
        let from_env = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|&c| c > 0);
        // A terminal that reports no width (a pty nobody sized) is taken as 80 columns, as most
        // tools do, rather than as no terminal at all.
        let terminal = || {
            terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| match usize::from(w.0) {
                0 => 80,
                w => w,
            })
        };
        Table::new(from_env.or_else(terminal))
    }

    /// The header line.
    pub fn header(&self) -> String {
        self.line(COLUMNS.map(|(h, _, _)| h.to_string()), "REASON".to_string())
    }

    /// One credential's line; values escaped (see [`printable`]) before they are cut and padded,
    /// so that an escape cannot push the columns after it.
    pub fn row(&self, r: &Row) -> String {
        let cell = |v: Option<&str>, none: &str| printable(v.unwrap_or(none)).into_owned();
        let cells = [
            cell(Some(&r.app_id), ""),
            r.kind.name().to_string(),
            r.status.name().to_string(),
            r.policy.map_or("-", |p| p.name()).to_string(),
            r.days_left.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            cell(r.end.as_deref(), "-"),
            cell(r.last_sign_in.as_deref(), "-"),
            cell(r.thumbprint.as_deref(), "-"),
            cell(r.key_id.as_deref(), "-"),
            cell(r.display_name.as_deref(), "-"),
        ];
        self.line(cells, cell(r.reason.as_deref().or(trust(r).as_deref()), ""))
    }

    fn line(&self, cells: [String; 10], reason: String) -> String {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate().filter(|(i, _)| self.widths[*i] > 0) {
            let c = match DATES.contains(&i) && self.widths[i] >= DAY && c.chars().count() > self.widths[i] {
                true => c.chars().take(DAY).collect(),
                false => fit(c, self.widths[i]),
            };
            if i == DAYS {
                out.push_str(&format!("{c:>w$}{GAP}", w = self.widths[i]));
            } else {
                out.push_str(&format!("{c:<w$}{GAP}", w = self.widths[i]));
            }
        }
        out.push_str(&match self.reason {
            Some(w) => fit(&reason, w),
            None => reason,
        });
        out.trim_end().to_string()
    }
}

/// What a federated identity credential trusts, in the REASON column (it has no reason to be
/// unusable): `NAME: ISSUER SUBJECT (AUDIENCE)`; `None` for the other kinds.
fn trust(r: &Row) -> Option<String> {
    let name = r.name.as_deref()?;
    let s = |v: &Option<String>| v.as_deref().unwrap_or("-").to_string();
    Some(format!("{name}: {} {} ({})", s(&r.issuer), s(&r.subject), s(&r.audience)))
}

/// `s` cut to `width` characters, the last one an ellipsis when anything was cut.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_fits_the_terminal_and_cuts_with_an_ellipsis() {
        let whole = Table::new(None);
        assert!(whole.header().starts_with("APP ID                                KIND  "), "{}", whole.header());
        for columns in [80, 100, 120, 160, 215, 300] {
            let t = Table::new(Some(columns));
            let h = t.header();
            assert!(h.chars().count() <= columns, "{columns}: {h}");
            assert!(h.starts_with("APP ID") && h.contains("STATUS") && h.contains("END"), "{columns}: {h}");
            assert_eq!(h.contains("NAME"), columns >= 120, "{columns}: {h}");
        }
        // At 100 columns the app id is whole (the policy and the name give way), and a date is
        // cut to its day, not with an ellipsis.
        let t = Table::new(Some(100));
        assert_eq!(t.widths[0], 36);
        assert!(!t.header().contains("POLICY"));
        let row = Row {
            object_type: "application",
            app_id: "6731de76-14a6-49ae-97bc-6eba6914391e".into(),
            display_name: Some("daemon".into()),
            key_id: None,
            kind: keycred::fleet::audit::Kind::Certificate,
            thumbprint: None,
            start: None,
            end: Some("2027-12-08T10:11:12Z".into()),
            days_left: Some(365),
            status: keycred::fleet::audit::CredStatus::Valid,
            reason: None,
            policy: None,
            last_sign_in: None,
            name: None,
            issuer: None,
            subject: None,
            audience: None,
        };
        let line = t.row(&row);
        assert!(line.starts_with("6731de76-14a6-49ae-97bc-6eba6914391e  "), "{line}");
        assert!(line.contains("2027-12-08") && !line.contains("2027-12-08T") && !line.contains('…'), "{line}");
        // Narrow: the key id and thumbprint left out (json and csv keep them), the app id whole
        // as long as it can be.
        let h = Table::new(Some(130)).header();
        assert!(!h.contains("KEY ID") && !h.contains("THUMBPRINT") && h.contains("POLICY"), "{h}");
        assert_eq!(Table::new(Some(130)).widths[0], 36);
        assert!(Table::new(Some(80)).widths[0] < 36);
        assert!(Table::new(Some(190)).header().contains("THUMBPRINT"));
        // The last sign-in is cut before it is left out, and left out before the app id is cut.
        assert!(Table::new(Some(150)).header().contains("LAST SIGN-IN"), "{}", Table::new(Some(150)).header());
        assert!(!Table::new(Some(130)).header().contains("LAST SIGN-IN"));
        // Wide enough: nothing cut.
        assert_eq!(Table::new(Some(300)).widths, COLUMNS.map(|(_, w, _)| w));
        assert_eq!(fit("6731de76-14a6-49ae-97bc-6eba6914391e", 13), "6731de76-14a…");
        assert_eq!(fit("short", 13), "short");
    }
}
