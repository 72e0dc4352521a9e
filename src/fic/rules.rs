//! What Graph refuses when a federated identity credential is created or updated, as one list of
//! checks that the emulator's Graph answers with and that clients run before sending.
//!
//! From Graph's `federatedIdentityCredential` reference (v1.0): `name` at most 120 characters,
//! URL-friendly, unique per application, immutable; `issuer`, `subject` and the one audience at
//! most 600 characters each; `audiences` a single value; issuer and subject unique together on the
//! application; `subject` and `claimsMatchingExpression` mutually exclusive; at most 20 per
//! application. Graph answers each with 400 `InvalidFederatedIdentityCredentialValue` (the code
//! seen in public threads, e.g. Azure/azure-workload-identity issue 434 for a repeated issuer and
//! subject, whose message is reproduced here word for word).

use super::{FederatedIdentityCredential, MAX_PER_APP};

/// Graph's error code for a federated identity credential it refuses.
pub const INVALID_VALUE: &str = "InvalidFederatedIdentityCredentialValue";
/// Longest `name`.
pub const MAX_NAME: usize = 120;
/// Longest `issuer`, `subject`, audience and `description`.
pub const MAX_VALUE: usize = 600;

/// One broken rule: Graph's error code and message (the library's callers word their own
/// hints; this text is what Graph would answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// Graph's `error.code`.
    pub code: &'static str,
    /// Graph's `error.message`.
    pub message: String,
}

fn broken(message: impl Into<String>) -> Broken {
    Broken { code: INVALID_VALUE, message: message.into() }
}

/// Whether `name` is URL-friendly: letters, digits, `-` and `_` (what the portal allows; a
/// stricter reading of Graph's "URL friendly" than percent-encoding would permit).
pub fn name_is_url_friendly(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks one credential on its own: required fields, lengths, one audience, subject or
/// expression (not both).
pub fn check_shape(c: &FederatedIdentityCredential) -> Result<(), Broken> {
    if c.name.trim().is_empty() {
        return Err(broken("Federated Identity Credential must specify 'name'."));
    }
    if c.name.chars().count() > MAX_NAME {
        return Err(broken(format!("The name '{}' is longer than {MAX_NAME} characters.", c.name)));
    }
    if !name_is_url_friendly(&c.name) {
        return Err(broken(format!(
            "The name '{}' is not URL friendly: use letters, digits, '-' and '_' only.",
            c.name
        )));
    }
    if c.issuer.trim().is_empty() {
        return Err(broken("Federated Identity Credential must specify 'issuer', 'subject' and 'audience'."));
    }
    let subject = c.subject.as_deref().filter(|s| !s.is_empty());
    match (subject, &c.claims_matching_expression) {
        (None, None) => {
            return Err(broken("Federated Identity Credential must specify 'issuer', 'subject' and 'audience'."))
        }
        (Some(_), Some(e)) if !e.is_null() => {
            return Err(broken("Only one of 'subject' and 'claimsMatchingExpression' may be specified."))
        }
        _ => {}
    }
    match c.audiences.len() {
        0 => return Err(broken("Federated Identity Credential must specify 'issuer', 'subject' and 'audience'.")),
        1 => {}
        n => return Err(broken(format!("The 'audiences' field can only accept a single value; {n} were given."))),
    }
    let long = [("issuer", Some(c.issuer.as_str())), ("subject", subject), ("audiences", Some(&c.audiences[0]))]
        .into_iter()
        .chain([("description", c.description.as_deref())])
        .find(|(_, v)| v.is_some_and(|v| v.chars().count() > MAX_VALUE));
    if let Some((field, _)) = long {
        return Err(broken(format!("The value of '{field}' is longer than {MAX_VALUE} characters.")));
    }
    Ok(())
}

/// Checks `new` against the application's `existing` credentials: its shape, then the limit of
/// 20, the unique name and the unique issuer and subject. `replacing` names the credential an
/// update replaces (it does not count against itself).
pub fn check_against(
    existing: &[FederatedIdentityCredential],
    new: &FederatedIdentityCredential,
    replacing: Option<&str>,
) -> Result<(), Broken> {
    check_shape(new)?;
    let others: Vec<&FederatedIdentityCredential> =
        existing.iter().filter(|c| replacing.is_none_or(|r| !c.name.eq_ignore_ascii_case(r))).collect();
    if replacing.is_none() && others.len() >= MAX_PER_APP {
        return Err(broken(format!(
            "The application already has {MAX_PER_APP} federated identity credentials, the maximum allowed."
        )));
    }
    if others.iter().any(|c| c.name.eq_ignore_ascii_case(&new.name)) {
        return Err(broken(format!(
            "A federated identity credential named '{}' already exists on the application.",
            new.name
        )));
    }
    if let Some(subject) = new.subject.as_deref() {
        if others.iter().any(|c| c.issuer == new.issuer && c.subject.as_deref() == Some(subject)) {
            return Err(broken(format!(
                "The combination of issuer and subject must be unique for the application. Issuer {} and Subject: \
                 {subject} already exist. paramName: FederatedIdentityCredential.Subject, paramValue: {subject}, \
                 objectType: Microsoft.Online.DirectoryServices.Application",
                new.issuer
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fic(name: &str, subject: &str) -> FederatedIdentityCredential {
        FederatedIdentityCredential::new(name, "https://token.actions.githubusercontent.com", subject)
    }

    #[test]
    fn refuses_what_graph_refuses() {
        let ok = fic("main", "repo:o/r:ref:refs/heads/main");
        assert_eq!(check_shape(&ok), Ok(()));
        let mut two = ok.clone();
        two.audiences.push("api://other".into());
        assert!(check_shape(&two).unwrap_err().message.contains("single value"));
        let mut none = ok.clone();
        none.audiences.clear();
        assert!(check_shape(&none).is_err());
        assert!(check_shape(&fic("has space", "s")).unwrap_err().message.contains("URL friendly"));
        assert!(check_shape(&fic(&"n".repeat(121), "s")).unwrap_err().message.contains("120"));
        let mut both = ok.clone();
        both.claims_matching_expression = Some(serde_json::json!({"value": "x", "languageVersion": 1}));
        assert!(check_shape(&both).unwrap_err().message.contains("Only one"));
        let mut long = ok.clone();
        long.subject = Some("s".repeat(601));
        assert!(check_shape(&long).unwrap_err().message.contains("'subject'"));
    }

    #[test]
    fn enforces_the_limit_and_uniqueness() {
        let twenty: Vec<_> = (0..20).map(|i| fic(&format!("n{i}"), &format!("s{i}"))).collect();
        let e = check_against(&twenty, &fic("n20", "s20"), None).unwrap_err();
        assert!(e.message.contains("20"), "{e:?}");
        // An update of one of the twenty is not a twenty-first.
        assert_eq!(check_against(&twenty, &fic("n3", "changed"), Some("n3")), Ok(()));
        let e = check_against(&twenty[..2], &fic("N1", "other"), None).unwrap_err();
        assert!(e.message.contains("already exists"), "{e:?}");
        let e = check_against(&twenty[..2], &fic("new", "s1"), None).unwrap_err();
        assert!(e.message.starts_with("The combination of issuer and subject must be unique"), "{e:?}");
        assert_eq!(e.code, "InvalidFederatedIdentityCredentialValue");
        // Subjects differing in letter case are different subjects (matching is case-sensitive).
        assert_eq!(check_against(&twenty[..2], &fic("new", "S1"), None), Ok(()));
    }
}
