//! `keycred permissions` and `keycred manifest permission add|remove|list`, end to end: the ids
//! written are the ones Microsoft publishes, both manifest shapes are edited with the rest of the
//! file byte for byte, refusals exit 2 with the file untouched and name the nearest known names.

use crate::common::{keycred_command, TempDir};
use serde_json::Value;
use std::process::Output;

const MS_GRAPH: &str = include_str!("../../templates/manifest-ms-graph.json");
const AAD_GRAPH: &str = include_str!("../../templates/manifest-aad-graph.json");
const O365: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";

fn run(args: &[&str]) -> Output {
    keycred_command(args, &[]).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn access_of(text: &str, resource: &str) -> Vec<(String, String)> {
    let m: Value = serde_json::from_str(text).unwrap();
    m["requiredResourceAccess"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["resourceAppId"] == resource)
        .flat_map(|b| b["resourceAccess"].as_array().unwrap().clone())
        .map(|a| (a["id"].as_str().unwrap().to_string(), a["type"].as_str().unwrap().to_string()))
        .collect()
}

/// ActivityFeed.Read is 594c1fb6-... as an application permission: the id the Office 365
/// Management API's setup grants and public Terraform `requiredResourceAccess` blocks carry.
#[test]
fn permission_add_writes_the_published_id_in_both_shapes_and_keeps_the_rest_of_the_file() {
    let t = TempDir::new("perm-add");
    for (name, template) in [("graph.json", MS_GRAPH), ("legacy.json", AAD_GRAPH)] {
        let path = t.path(name);
        std::fs::write(&path, template).unwrap();
        let p = path.display().to_string();
        let o = run(&[
            "manifest",
            "permission",
            "add",
            &p,
            "--api",
            "https://manage.office.com/",
            "--role",
            "activityfeed.read",
        ]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(access_of(&after, O365), [("594c1fb6-4f81-4475-ae41-0c394909246c".to_string(), "Role".to_string())]);
        // Every other member keeps its bytes: the text before requiredResourceAccess is unchanged.
        let at = template.find("\"requiredResourceAccess\"").unwrap();
        assert_eq!(&after[..at], &template[..at], "{name}");
        // Adding again changes nothing; removing gives back the original members.
        run(&["manifest", "permission", "add", &p, "--api", "office365", "--role", "ActivityFeed.Read"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), after, "{name}");
        let o = run(&[
            "manifest",
            "permission",
            "remove",
            &p,
            "--api",
            O365,
            "--role",
            "594c1fb6-4f81-4475-ae41-0c394909246c",
        ]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let orig: Value = serde_json::from_str(template).unwrap();
        assert_eq!(back, orig, "{name}");
        let o = run(&["manifest", "permission", "list", &p, "-o", "json"]);
        let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
        // The templates ask for Graph's Directory.Read.All (ms-graph) and Azure AD Graph's User.Read
        // (legacy): listed by name.
        let want = if name == "graph.json" {
            ("Microsoft Graph", "Directory.Read.All", "Role")
        } else {
            ("Windows Azure Active Directory", "User.Read", "Scope")
        };
        assert_eq!(
            (rows[0]["api"].as_str(), rows[0]["name"].as_str(), rows[0]["type"].as_str()),
            (Some(want.0), Some(want.1), Some(want.2)),
            "{rows}"
        );
    }
}

#[test]
fn unknown_permission_names_are_refused_with_the_nearest_names_and_the_file_untouched() {
    let t = TempDir::new("perm-refuse");
    let path = t.path("m.json");
    std::fs::write(&path, MS_GRAPH).unwrap();
    let p = path.display().to_string();
    let o = run(&["manifest", "permission", "add", &p, "--api", "threat-protection", "--role", "Incident.Reed.All"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did you mean Incident.Read.All"), "{}", stderr(&o));
    let o = run(&["manifest", "permission", "add", &p, "--api", "ofice365", "--role", "ActivityFeed.Read"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did you mean office365"), "{}", stderr(&o));
    let o = run(&["manifest", "permission", "remove", &p, "--api", "office365", "--role", "ActivityFeed.Read"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), MS_GRAPH);
    // `manifest init` resolves before writing: an unknown name leaves no file.
    let o = run(&["manifest", "init", &t.s("new.json"), "--api", "office365", "--role", "ActivityFeed.Reed"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!t.path("new.json").exists());
}

/// The catalogue an installed binary shows: Incident.Read.All is a9790345-... as Microsoft 365
/// Defender's API documents grant it.
#[test]
fn permissions_lists_the_catalogue_as_json() {
    let o = run(&["permissions", "--api", "threat-protection", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = rows.as_array().unwrap().iter().find(|r| r["name"] == "Incident.Read.All").unwrap();
    assert_eq!(row["id"], "a9790345-4595-42e4-971a-ccdc79f19b7c");
    assert_eq!(row["type"], "Role");
    assert_eq!(row["resourceAppId"], "8ee8fdad-f234-4243-8f3b-15c294843740");
    assert!(rows.as_array().unwrap().iter().all(|r| r["api"] == "Microsoft Threat Protection"));
}

#[test]
fn a_token_lacking_a_role_hints_at_the_permission_commands() {
    // An unsigned token with roles A: decode --expect-role B fails with exit 4.
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    let token = format!("{}.{}.{}", b64(r#"{"alg":"RS256"}"#), b64(r#"{"roles":["A"]}"#), b64("sig"));
    let o = run(&["decode", &token, "--expect-role", "B"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("keycred manifest permission add MANIFEST --api API --role NAME"), "{}", stderr(&o));
}
