//! `fleet audit -o csv`: every text cell is kept from being a spreadsheet formula, not only the
//! display name. Ids are whatever the Graph answering said (a proxy, a test double, a tampered
//! export), so a `keyId` or an `appId` starting with `=`, `+`, `-` or `@` gets the leading `'`
//! too (OWASP's CSV injection advice), read back here with Python's csv module.

use crate::fleet_support::*;
use serde_json::json;

#[test]
fn every_text_cell_of_the_audit_csv_is_kept_from_being_a_formula() {
    let mut apps = tenant(3);
    let formulas = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"];
    apps[0]["keyCredentials"][0]["keyId"] = json!(formulas[0]);
    apps[0]["passwordCredentials"][0]["keyId"] = json!(formulas[1]);
    apps[1]["appId"] = json!(formulas[2]);
    apps[2]["keyCredentials"][0]["keyId"] = json!(formulas[3]);
    let t = FakeTenant::start(apps, 999);
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "csv".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = csv_rows(&out.stdout);
    let cells: Vec<&str> = rows.iter().flat_map(|r| ["appId", "keyId"].map(|k| r[k].as_str().unwrap())).collect();
    for f in formulas {
        assert!(cells.contains(&format!("'{f}").as_str()), "{f} not neutralised: {cells:?}");
    }
    // No text cell of any row starts a formula; daysLeft stays a number.
    for r in &rows {
        for (k, v) in r.as_object().unwrap() {
            let v = v.as_str().unwrap();
            if k == "daysLeft" {
                assert!(v.is_empty() || v.parse::<i64>().is_ok(), "{r}");
            } else {
                assert!(!v.starts_with(['=', '+', '-', '@']), "{k}: {r}");
            }
        }
    }
}
