//! The command line's names for what the library's messages mention: its options (`--key-size`)
//! and commands (`keycred manifest add ...`), installed once at start
//! ([`keycred::wording::install`]), so a hint says which flag to change or which command to run.
//! The library itself only ever names inputs and actions in its own words.

use keycred::wording::{Action, Input, Wording};

/// The `keycred` command line's wording.
pub struct Cli;

impl Wording for Cli {
    fn input(&self, input: Input) -> Option<&'static str> {
        Some(match input {
            Input::Cert => "--cert",
            Input::Key => "--key",
            Input::PasswordEnv => "--password-env",
            Input::Start => "--start",
            Input::End => "--end",
            Input::KeyId => "--key-id",
            Input::Thumbprint => "--thumbprint",
            Input::Days => "--days",
            Input::KeySize => "--key-size",
            Input::NotBefore => "--not-before",
            Input::NotAfter => "--not-after",
            Input::Subject => "--subject",
            Input::Api => "--api",
            Input::Role => "--role",
            Input::Scope => "--scope",
            Input::Target => "--scope/--resource",
            Input::Tenant => "--tenant",
            Input::ClientId => "--client-id",
            Input::RedirectUri => "--redirect-uri",
            Input::State => "--state",
            Input::Code => "--code",
            Input::Deploy => "--deploy",
            Input::Concurrency => "--concurrency",
            Input::OutDir => "--out-dir",
            Input::Name => "--name",
            Input::ExpiringWithin => "--expiring-within",
            Input::Journal => "--journal",
            Input::Remove => "--remove",
            Input::RemoveExpired => "--remove-expired",
            Input::AllowLockout => "--allow-lockout",
            Input::Grant => "--grant",
            Input::Throttle => "--throttle",
            Input::Listen => "--listen",
            Input::AllowRemote => "--allow-remote",
            Input::Domain => "--domain",
            Input::User => "--user",
            Input::GenerateTenant => "--generate-tenant",
            Input::Out => "--out",
            Input::Consented => "--consented",
            Input::Manifest => "--manifest",
            Input::AppsDir => "--apps-dir",
            _ => return None,
        })
    }

    fn action(&self, action: &Action) -> Option<String> {
        let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        Some(match action {
            Action::NewCertificate { key_size: None } => "`keycred new`".into(),
            Action::NewCertificate { key_size: Some(b) } => format!("`keycred new --key-size {b}`"),
            Action::InitManifest => "`keycred manifest init`".into(),
            Action::ListEntries { manifest: None } => "`keycred manifest list`".into(),
            Action::ListEntries { manifest: Some(m) } => format!("`keycred manifest list {m}`"),
            Action::ListGraphCertificates => "`keycred graph list`".into(),
            Action::AddToManifest { manifest, cert } => {
                format!("`keycred manifest add {} --cert {}`", or(manifest, "MANIFEST"), or(cert, "CERT"))
            }
            Action::AddThroughGraph { new_cert, proof } => format!(
                "`keycred graph add{} --new-cert {}`",
                if *proof { " --cert REGISTERED.pem" } else { "" },
                or(new_cert, "FILE")
            ),
            Action::Rotate => "`keycred rotate` or `keycred graph rotate`".into(),
            Action::AddPermission { api, roles } if roles.is_empty() => {
                format!("`keycred manifest permission add MANIFEST --api {} --role NAME`", or(api, "API"))
            }
            Action::AddPermission { api, roles } => {
                let roles: String = roles.iter().map(|r| format!(" --role {r}")).collect();
                format!("`keycred manifest permission add MANIFEST --api {}{roles}`", or(api, "API"))
            }
            Action::AddGraphPermission => "`keycred graph permission add`".into(),
            Action::ListPermissions { api: None } => "`keycred permissions`".into(),
            Action::ListPermissions { api: Some(a) } => format!("`keycred permissions --api {a}`"),
            Action::ConsentUrl => "`keycred consent-url`".into(),
            Action::Audit => "`keycred fleet audit`".into(),
            Action::RotateFleet => "`keycred fleet rotate`".into(),
            Action::RetireFleet => "`keycred fleet retire`".into(),
            Action::Emulate => "`keycred emulate`".into(),
            _ => return None,
        })
    }
}
