//! Changing an application's certificates (PROTOCOL.md section 7), two ways:
//! - self-rotation, `addKey`/`removeKey`, authorised by a proof-of-possession JWT signed with a
//!   certificate the application already has; it needs no directory permission, but Graph refuses
//!   it when the application has no valid certificate left;
//! - `PATCH /applications/{id}` with the **whole** `keyCredentials` array, which needs
//!   Application.ReadWrite.*: sending only the new entry would wipe the others, so the array is
//!   always read, extended, re-read to detect a concurrent change, and only then written.

use super::call::PROOF_LIFETIME;
use super::client::GraphClient;
use super::objects::{Application, KeyCredential};
use crate::cert::{Certificate, LoadedCredential, SignatureAlg};
use crate::secret::SecretString;
use crate::{jwt, Error, Result};
use serde_json::{json, Map};

/// Builds the proof-of-possession JWT for addKey/removeKey: RS256 with `x5t`, `aud`, `iss` = the
/// application's **object id**, `nbf`, `exp` = nbf + 10 min.
pub fn proof_of_possession(cred: &LoadedCredential, object_id: &str, aud: &str) -> Result<SecretString> {
    let mut header = Map::new();
    header.insert("typ".into(), json!("JWT"));
    header.insert("x5t".into(), json!(cred.cert.x5t()));
    let now = jwt::now_secs();
    let claims = json!({ "aud": aud, "iss": object_id, "nbf": now, "exp": now + PROOF_LIFETIME });
    Ok(SecretString::new(jwt::sign(&*cred.key, SignatureAlg::Rs256, header, &claims)?))
}

/// The keyId of the application's certificate that `sel` picks, if any.
pub fn key_id_of(app: &Application, sel: &crate::manifest::Selector) -> Option<String> {
    credentials_of(app).into_iter().find(|c| sel.matches(c)).and_then(|c| c.key_id)
}

/// How to change an application's certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// addKey/removeKey with a proof, falling back to PATCH when the application has no valid
    /// certificate left (Graph refuses addKey then).
    Auto,
    /// Always PATCH the whole array (needs Application.ReadWrite.*).
    Patch,
}

/// What was done, for reports.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// `addKey`, `removeKey` or `PATCH`.
    pub method: &'static str,
    /// The keyCredential added or removed.
    pub key_credential: KeyCredential,
}

/// The entries of an application, read like a manifest's.
pub fn credentials_of(app: &Application) -> Vec<crate::manifest::KeyCredential> {
    read_credentials(&app.key_credentials)
}

/// Graph's entries, read like a manifest's (`index` is the position in `entries`).
pub fn read_credentials(entries: &[KeyCredential]) -> Vec<crate::manifest::KeyCredential> {
    entries.iter().enumerate().map(|(i, c)| crate::manifest::read_entry(i, &c.to_map())).collect()
}

/// Whether `cred`'s certificate is a currently valid credential of `app` (so it can sign a proof).
pub fn can_prove(app: &Application, cred: Option<&LoadedCredential>) -> bool {
    let now = crate::dates::now();
    let Some(cred) = cred else { return false };
    credentials_of(app).iter().any(|c| c.sha1() == Some(cred.cert.sha1()) && c.counts_as_valid_at(now))
}

/// Adds `new` to the application, by addKey (proof signed by `cred`) or PATCH.
pub async fn add_certificate(
    g: &GraphClient,
    app: &Application,
    cred: Option<&LoadedCredential>,
    new: &Certificate,
    display_name: Option<&str>,
    method: Method,
    proof_aud: &str,
) -> Result<Change> {
    new.ensure_usable("the new certificate", crate::dates::now())?;
    if credentials_of(app).iter().any(|c| c.sha1() == Some(new.sha1())) {
        return Err(Error::input(format!(
            "the certificate {} is already registered on application {}",
            new.thumbprint(),
            app.app_id
        )));
    }
    if method == Method::Auto && can_prove(app, cred) {
        let cred = cred.expect("can_prove checked it");
        let proof = proof_of_possession(cred, &app.id, proof_aud)?;
        let kc = g.add_key(&app.id, new, display_name, &proof).await?;
        return Ok(Change { method: "addKey", key_credential: kc });
    }
    let opts = crate::manifest::EntryOptions { display_name: display_name.map(str::to_string), ..Default::default() };
    let entry = KeyCredential::from_map(crate::manifest::entry_for(new, crate::manifest::Format::MsGraph, &opts)?)?;
    let sha1 = new.sha1();
    g.update_key_credentials(&app.id, |before| {
        let mut after = before.to_vec();
        let present = read_credentials(before).iter().any(|c| c.sha1() == Some(sha1));
        if !present {
            after.push(entry.clone());
        }
        Ok(after)
    })
    .await?;
    Ok(Change { method: "PATCH", key_credential: entry })
}

/// Refuses removing `key_id` when it is the application's last currently valid certificate: the
/// app could no longer sign in, and Graph's addKey needs a valid one to recover.
pub fn ensure_not_locked_out(app: &Application, key_id: &str, now: time::OffsetDateTime) -> Result<()> {
    let creds = credentials_of(app);
    let is_target =
        |c: &crate::manifest::KeyCredential| c.key_id.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key_id));
    let target_valid = creds.iter().any(|c| is_target(c) && c.counts_as_valid_at(now));
    let others_valid = creds.iter().any(|c| !is_target(c) && c.counts_as_valid_at(now));
    if target_valid && !others_valid {
        return Err(Error::input(format!(
            "keyId {key_id} is the last currently valid certificate of application {}; removing it would lock the app out",
            app.app_id
        ))
        .with_hint("add the new certificate first, or allow the lock-out if that is intended"));
    }
    Ok(())
}

/// Removes the entry `key_id`, by removeKey (proof signed by `cred`) or PATCH. Refuses to remove
/// the last currently valid certificate unless `force`.
pub async fn remove_certificate(
    g: &GraphClient,
    app: &Application,
    cred: Option<&LoadedCredential>,
    key_id: &str,
    method: Method,
    proof_aud: &str,
    force: bool,
) -> Result<Change> {
    let now = crate::dates::now();
    let creds = credentials_of(app);
    let target = creds
        .iter()
        .find(|c| c.key_id.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key_id)))
        .ok_or_else(|| {
            Error::input(format!(
                "application {} has no keyCredential with keyId {key_id}; nothing was changed",
                app.app_id
            ))
            .with_hint("list the application's certificates to see their keyIds")
        })?;
    let removed = app.key_credentials[target.index].clone();
    if !force {
        ensure_not_locked_out(app, key_id, now)?;
    }
    if method == Method::Auto && can_prove(app, cred) {
        let proof = proof_of_possession(cred.expect("can_prove checked it"), &app.id, proof_aud)?;
        g.remove_key(&app.id, key_id, &proof).await?;
        return Ok(Change { method: "removeKey", key_credential: removed });
    }
    let key_id = key_id.to_string();
    g.update_key_credentials(&app.id, |before| {
        Ok(before
            .iter()
            .filter(|c| !c.key_id.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(&key_id)))
            .cloned()
            .collect())
    })
    .await?;
    Ok(Change { method: "PATCH", key_credential: removed })
}
