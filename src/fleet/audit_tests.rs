//! Unit tests of the audit's classification and filters.

use super::*;
use serde_json::json;

fn at(s: &str) -> OffsetDateTime {
    dates::parse(s, "t").unwrap()
}

fn cert_entry(days: u32) -> (crate::cert::Certificate, Value) {
    let (c, _) = crate::cert::generate(&crate::cert::NewCertificate {
        subject: "CN=audit".into(),
        key_size: crate::cert::KeySize::Rsa2048,
        validity: crate::cert::Validity::Days(days),
    })
    .unwrap();
    let e = crate::manifest::entry_for(&c, crate::manifest::Format::MsGraph, &Default::default()).unwrap();
    (c, Value::Object(e))
}

#[test]
fn statuses_follow_the_dates_and_the_window() {
    let w = Duration::from_secs(30 * 86_400);
    let now = at("2026-12-01T00:00:00Z");
    let s = |a: &str, b: &str| by_dates(Some(at(a)), Some(at(b)), now, w);
    assert_eq!(s("2026-01-01", "2027-06-01"), CredStatus::Valid);
    assert_eq!(s("2026-01-01", "2026-12-20"), CredStatus::Expiring);
    assert_eq!(s("2026-01-01", "2026-11-30"), CredStatus::Expired);
    assert_eq!(s("2026-12-02", "2027-12-01"), CredStatus::NotYetValid);
    assert_eq!(
        by_dates(Some(at("2026-01-01")), Some(at("2026-12-20")), now, Duration::from_secs(3600)),
        CredStatus::Valid
    );
}

#[test]
fn an_application_reports_certificates_secrets_and_unusable_entries_with_reasons() {
    let (c, good) = cert_entry(365);
    let mut bad_usage = good.clone();
    bad_usage["usage"] = json!("Sign");
    bad_usage["keyId"] = json!("7d1b7b4e-0000-4000-8000-000000000001");
    let app = json!({
        "id": "obj", "appId": "app-1", "displayName": "Payroll",
        "keyCredentials": [good, bad_usage],
        "passwordCredentials": [{"keyId": "p1", "hint": "abc", "startDateTime": "2026-01-01T00:00:00Z",
                                  "endDateTime": "2026-12-10T00:00:00Z", "customKeyIdentifier": null, "secretText": null}],
        "web": {"redirectUris": []}
    });
    let rows = rows_of(&app, Collection::Applications, dates::now(), DEFAULT_WINDOW, None);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0].thumbprint.as_deref(), Some(c.thumbprint().as_str()));
    assert_eq!(rows[0].status, CredStatus::Valid);
    assert_eq!(rows[0].kind, Kind::Certificate);
    assert!(rows[0].days_left.unwrap() >= 364);
    assert_eq!(rows[1].status, CredStatus::Unusable);
    assert!(rows[1].reason.as_deref().unwrap().contains("usage is \"Sign\""), "{:?}", rows[1].reason);
    assert_eq!(rows[2].kind, Kind::Secret);
    assert_eq!(rows[2].key_id.as_deref(), Some("p1"));
    assert_eq!(rows[2].thumbprint, None);
    assert_eq!(rows[2].display_name.as_deref(), Some("Payroll"));
}

#[test]
fn a_saml_triple_is_one_certificate_and_its_password_is_no_secret() {
    let (c, verify) = cert_entry(365);
    let cki = c.custom_key_identifier();
    let sign_id = "5a1e0000-0000-4000-8000-00000000000a";
    let mut sign = verify.clone();
    sign["usage"] = json!("Sign");
    sign["keyId"] = json!(sign_id);
    sign["key"] = Value::Null;
    let sp = json!({
        "id": "sp", "appId": "app-2", "displayName": "SAML app",
        "preferredTokenSigningKeyThumbprint": c.thumbprint().to_lowercase(),
        "keyCredentials": [sign, verify],
        "passwordCredentials": [
            {"keyId": sign_id, "customKeyIdentifier": cki, "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"},
            {"keyId": "other", "customKeyIdentifier": null, "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}
        ]
    });
    let rows = rows_of(&sp, Collection::ServicePrincipals, dates::now(), DEFAULT_WINDOW, None);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].kind, Kind::Certificate);
    assert_eq!(rows[0].status, CredStatus::Valid);
    assert_eq!(rows[0].object_type, "servicePrincipal");
    assert_eq!(rows[1].kind, Kind::Secret);
    assert_eq!(rows[1].key_id.as_deref(), Some("other"));
}

#[test]
fn filters_keep_what_ends_within_the_window_and_the_statuses_asked_for() {
    let row = |status| Row {
        object_type: "application",
        app_id: "a".into(),
        display_name: None,
        key_id: None,
        kind: Kind::Certificate,
        thumbprint: None,
        start: None,
        end: None,
        days_left: None,
        status,
        reason: None,
        policy: None,
        last_sign_in: None,
        name: None,
        issuer: None,
        subject: None,
        audience: None,
    };
    let f = Filters { only_expiring: true, ..Default::default() };
    assert!(f.keeps(&row(CredStatus::Expiring)) && f.keeps(&row(CredStatus::Expired)));
    assert!(!f.keeps(&row(CredStatus::Valid)) && !f.keeps(&row(CredStatus::Unusable)));
    let f = Filters { statuses: vec![CredStatus::Unusable], ..Default::default() };
    assert!(f.keeps(&row(CredStatus::Unusable)) && !f.keeps(&row(CredStatus::Expired)));
}

#[test]
fn federated_credentials_are_read_only_when_a_row_of_them_could_be_kept() {
    assert!(Filters::default().wants_federated());
    assert!(Filters { statuses: vec![CredStatus::Valid], ..Default::default() }.wants_federated());
    assert!(!Filters { only_expiring: true, ..Default::default() }.wants_federated());
    assert!(!Filters { unused: Some(Duration::from_secs(86_400)), ..Default::default() }.wants_federated());
    assert!(!Filters { statuses: vec![CredStatus::Expired], ..Default::default() }.wants_federated());
}
