//! `fleet audit` lists each application's federated identity credentials beside its
//! certificates and secrets, read through Graph's paged list, in json, csv and the table; an
//! application whose list Graph refuses (403) gets a row saying so and the audit goes on.

use crate::fleet_support::*;
use serde_json::{json, Value};

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const AUDIENCE: &str = "api://AzureADTokenExchange";

/// Three apps: the first trusts two subjects (one a claims-matching expression), the second's
/// list is refused, the third has none.
fn start() -> (FakeTenant, Vec<Value>) {
    let apps = tenant(3);
    let t = FakeTenant::start(apps.clone(), 999);
    {
        let mut s = t.state.lock().unwrap();
        let first = apps[0]["id"].as_str().unwrap().to_string();
        s.fics.insert(
            first,
            vec![
                json!({"id": "f1000000-0000-4000-8000-000000000001", "name": "deploy-prod", "issuer": GITHUB,
                       "subject": "repo:octo-org/octo-repo:environment:Production", "audiences": [AUDIENCE],
                       "description": null}),
                json!({"id": "f1000000-0000-4000-8000-000000000002", "name": "any-branch", "issuer": GITHUB,
                       "subject": null, "audiences": [AUDIENCE], "description": null,
                       "claimsMatchingExpression": {"value": "claims['sub'] matches 'repo:octo-org/octo-repo:ref:refs/heads/*'",
                                                    "languageVersion": 1}}),
            ],
        );
        s.fics_refused.push(apps[1]["id"].as_str().unwrap().to_string());
    }
    (t, apps)
}

fn federated(rows: &[Value]) -> Vec<&Value> {
    rows.iter().filter(|r| r["kind"] == "federated").collect()
}

#[test]
fn json_lists_federated_credentials_beside_certificates_and_a_refused_list_as_unknown() {
    let (t, apps) = start();
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "json".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let rows = v["credentials"].as_array().unwrap();
    let fics = federated(rows);
    assert_eq!(fics.len(), 3, "{fics:#?}");
    // Followed over two pages (one credential per page), in Graph's order.
    let (a, b) = (fics[0], fics[1]);
    assert_eq!(a["appId"], apps[0]["appId"]);
    assert_eq!(a["keyId"], "f1000000-0000-4000-8000-000000000001");
    assert_eq!(a["name"], "deploy-prod");
    assert_eq!(a["issuer"], GITHUB);
    assert_eq!(a["subject"], "repo:octo-org/octo-repo:environment:Production");
    assert_eq!(a["audience"], AUDIENCE);
    assert_eq!(a["status"], "valid");
    assert_eq!(
        (&a["thumbprint"], &a["start"], &a["end"], &a["daysLeft"]),
        (&Value::Null, &Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(b["name"], "any-branch");
    assert_eq!(b["subject"], "claims['sub'] matches 'repo:octo-org/octo-repo:ref:refs/heads/*'");
    let refused = fics[2];
    assert_eq!(refused["appId"], apps[1]["appId"]);
    assert_eq!(refused["status"], "unknown");
    assert_eq!(refused["name"], Value::Null);
    let why = refused["reason"].as_str().unwrap();
    assert!(why.contains("could not be read") && why.contains("403"), "{why}");
    // The refused app's certificates and secrets are still audited.
    assert!(rows.iter().any(|r| r["appId"] == apps[1]["appId"] && r["kind"] == "secret"));
    assert_eq!(v["summary"]["unknown"], 1);
    assert_eq!(v["summary"]["credentials"].as_u64().unwrap() as usize, rows.len());
    // Not read when nothing could keep them: expiring credentials only.
    let out = run_fleet(
        &[fleet_args(&t, "audit"), vec!["--expiring-within".into(), "30d".into(), "-o".into(), "json".into()]].concat(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(federated(stdout_json(&out)["credentials"].as_array().unwrap()).is_empty());
}

#[test]
fn csv_adds_the_federated_columns_at_the_end_and_the_table_shows_the_trust() {
    let (t, _) = start();
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "csv".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = csv_rows(&out.stdout);
    let fields: Vec<&str> = rows[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(&fields[..13], &keycred::fleet::audit::CSV_HEADER[..13]);
    assert_eq!(&fields[13..], ["name", "issuer", "subject", "audience"]);
    let fics = federated(&rows);
    assert_eq!(fics.len(), 3);
    assert_eq!(fics[0]["subject"], "repo:octo-org/octo-repo:environment:Production");
    assert_eq!(fics[0]["audience"], AUDIENCE);
    assert_eq!(fics[0]["start"], "");
    assert_eq!(fics[2]["status"], "unknown");
    // Certificates keep their columns, the new ones empty.
    let cert = rows.iter().find(|r| r["kind"] == "certificate").unwrap();
    assert_eq!((&cert["name"], &cert["issuer"]), (&json!(""), &json!("")));
    assert_eq!(cert["thumbprint"].as_str().unwrap().len(), 40);

    let out = run_fleet(&fleet_args(&t, "audit"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("deploy-prod")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("federated") && line.contains("valid"), "{line}");
    assert!(
        line.ends_with(&format!("deploy-prod: {GITHUB} repo:octo-org/octo-repo:environment:Production ({AUDIENCE})")),
        "{line}"
    );
    assert!(text.lines().last().unwrap().ends_with(", 1 unknown"), "{text}");
}
