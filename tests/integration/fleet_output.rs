//! `fleet`'s text for people: the audit table fitted to the terminal (whole values in JSON and
//! CSV), and the rotation's lines naming each application and what it would remove.

use crate::fleet_support::*;

/// The dry run's text names each application and says which keyIds are the certificates it would
/// remove (here the expired ones, as asked; nothing for the others): the new certificate's keyId
/// does not exist until it is added. The real run then removes exactly those keyIds.
#[test]
fn dry_run_text_names_the_apps_and_the_key_ids_it_would_remove() {
    let apps = tenant(5);
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-dry-text");
    let args = [rotate_args(&t, &dir.0.display().to_string()), vec!["--remove-expired".into()]].concat();
    let out = run_fleet(&[args.clone(), vec!["--dry-run".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let selected = selected_indices(&apps);
    let real = run_fleet(&[args, vec!["-o".into(), "json".into()]].concat());
    let report = stdout_json(&real);
    for i in selected {
        let (id, name) = (apps[i]["appId"].as_str().unwrap(), apps[i]["displayName"].as_str().unwrap());
        let line = text.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{id}: {text}"));
        assert!(line.contains(name) && line.contains("would rotate"), "{line}");
        assert!(line.contains("(its keyId is given when it is added)"), "{line}");
        let o = report["apps"].as_array().unwrap().iter().find(|o| o["appId"] == id).unwrap();
        let removed: Vec<&str> = o["removed"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
        let expired = MIXES[i % MIXES.len()] == Mix::Expired;
        assert_eq!(removed.is_empty(), !expired, "{o}");
        let then =
            if expired { format!("then remove keyId {}", removed.join(", ")) } else { "then remove nothing".into() };
        assert!(line.ends_with(&then), "{line}\n{o}");
    }
}

/// On a terminal of 100 columns (`COLUMNS`) the table fits, long values cut with an ellipsis;
/// piped without `COLUMNS`, and in JSON, the values are whole.
#[test]
fn the_audit_table_fits_the_terminal_and_json_keeps_whole_values() {
    let apps = tenant(5);
    let t = FakeTenant::start(apps, 999);
    let run = |columns: Option<&str>| {
        let mut env = vec![("FLEET_GRAPH_TOKEN", GRAPH_TOKEN)];
        if let Some(c) = columns {
            env.push(("COLUMNS", c));
        }
        let out = keycred_command(&fleet_args(&t, "audit"), &env).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let narrow = run(Some("100"));
    let rows: Vec<&str> = narrow.lines().filter(|l| !l.contains(" applications, ")).collect();
    assert!(rows.iter().all(|l| l.chars().count() <= 100), "{narrow}");
    assert!(narrow.contains('…'), "{narrow}");
    let whole = run(None);
    assert!(whole.lines().next().unwrap().contains("THUMBPRINT") && !whole.contains('…'), "{whole}");
    assert!(whole.lines().any(|l| l.chars().count() > 200), "{whole}");
}
