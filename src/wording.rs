//! How the library's messages and hints name an input or a way to fix something.
//!
//! The library never names a front end's options or commands: a message about the key size
//! says [`Input::KeySize`], a hint that a certificate must be registered says
//! [`Action::AddToManifest`]. Each prints in the library's own neutral words ("the key size"),
//! unless the front end installed its [`Wording`] once at start (as `color-eyre` installs its
//! hook), which names its own option (`--key-size`) or command (`keycred manifest add ...`).
//! So an error keeps one message for a program and a person, and the command line, the only
//! place that knows its flags, says which one to change.

use std::fmt;
use std::sync::OnceLock;

/// A front end's names for the inputs and actions the library's messages mention.
pub trait Wording: Send + Sync {
    /// The front end's name for `input` (an option such as `--key-size`), if it has one.
    fn input(&self, input: Input) -> Option<&'static str>;
    /// The front end's way to do `action` (a command such as `keycred new`), if it has one.
    fn action(&self, action: &Action) -> Option<String>;
}

static WORDING: OnceLock<&'static dyn Wording> = OnceLock::new();

/// Installs the front end's wording for the rest of the process; the first call wins.
pub fn install(wording: &'static dyn Wording) {
    let _ = WORDING.set(wording);
}

fn installed() -> Option<&'static dyn Wording> {
    WORDING.get().copied()
}

macro_rules! inputs {
    ($($(#[$doc:meta])* $name:ident => $neutral:literal,)*) => {
        /// An input the library's messages name: an option of a command, a parameter of a call.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Input {
            $($(#[$doc])* $name,)*
        }
        impl Input {
            /// The library's own name for the input, used when no front end named it.
            pub fn neutral(self) -> &'static str {
                match self {
                    $(Input::$name => $neutral,)*
                }
            }
        }
    };
}

inputs! {
    /// The certificate file.
    Cert => "the certificate",
    /// The private key file.
    Key => "the private key",
    /// The variable holding a private key's or PFX's passphrase.
    PasswordEnv => "the passphrase variable",
    /// The start date of a manifest entry.
    Start => "the entry's start date",
    /// The end date of a manifest entry.
    End => "the entry's end date",
    /// A credential's keyId.
    KeyId => "the keyId",
    /// A certificate's thumbprint.
    Thumbprint => "the thumbprint",
    /// A new certificate's validity in days.
    Days => "the validity in days",
    /// A new certificate's RSA key size.
    KeySize => "the key size",
    /// A new certificate's first day of validity.
    NotBefore => "the notBefore date",
    /// A new certificate's last day of validity.
    NotAfter => "the notAfter date",
    /// A new certificate's subject.
    Subject => "the subject",
    /// The API a permission belongs to.
    Api => "the API",
    /// An application permission (app role).
    Role => "the role",
    /// A delegated permission (scope) or a token's scope.
    Scope => "the scope",
    /// The token's resource or scope, whichever names it.
    Target => "the scope or resource",
    /// The tenant.
    Tenant => "the tenant",
    /// The application (client) id.
    ClientId => "the client id",
    /// A reply (redirect) URI.
    RedirectUri => "the redirect URI",
    /// The state a sign-in request carried.
    State => "the state",
    /// The authorization code, or the redirect URL carrying it.
    Code => "the authorization code",
    /// The command run after a rotation.
    Deploy => "the deploy command",
    /// How many applications are worked on at a time.
    Concurrency => "the concurrency",
    /// The directory new certificates are written to.
    OutDir => "the output directory",
    /// The name of a new certificate's files.
    Name => "the name",
    /// The window within which a credential counts as expiring.
    ExpiringWithin => "the expiring window",
    /// A fleet run's journal.
    Journal => "the journal",
    /// The removal of chosen certificates in a rotation.
    Remove => "the removal",
    /// The removal of expired certificates in a rotation.
    RemoveExpired => "the removal of expired certificates",
    /// The permission to leave no valid certificate.
    AllowLockout => "the lock-out permission",
    /// An emulator grant of roles to a resource.
    Grant => "the grant",
    /// The emulator's Graph request rate.
    Throttle => "the throttle",
    /// The emulator's listening address.
    Listen => "the listening address",
    /// The emulator's permission to listen beyond loopback.
    AllowRemote => "the remote-listening permission",
    /// A verified domain of the emulated tenant.
    Domain => "the domain",
    /// A user of the emulated tenant.
    User => "the user",
    /// The size of a generated tenant.
    GenerateTenant => "the number of generated applications",
    /// Where a generated tenant is written.
    Out => "the output path",
    /// An application consented in the emulated tenant.
    Consented => "the consented application",
    /// An application's manifest file.
    Manifest => "the manifest",
    /// A directory of manifests.
    AppsDir => "the apps directory",
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(installed().and_then(|w| w.input(*self)).unwrap_or(self.neutral()))
    }
}

/// A way to fix something that the library's hints point to, done through a front end.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Create a new key and certificate, with an RSA key of `key_size` bits when given.
    NewCertificate {
        /// The key size to ask for.
        key_size: Option<u32>,
    },
    /// Start a new manifest.
    InitManifest,
    /// List a manifest's keyCredentials (the manifest's path, when known).
    ListEntries {
        /// The manifest.
        manifest: Option<String>,
    },
    /// List the certificates of an application registered through Graph.
    ListGraphCertificates,
    /// Add the certificate `cert` to the manifest `manifest` (placeholders when unknown).
    AddToManifest {
        /// The manifest.
        manifest: Option<String>,
        /// The certificate file.
        cert: Option<String>,
    },
    /// Add the certificate `new_cert` through Graph, signing with a certificate still
    /// registered (`registered`, a placeholder when `None`; left out when `false`).
    AddThroughGraph {
        /// The certificate to add.
        new_cert: Option<String>,
        /// Whether the proof of possession is named.
        proof: bool,
    },
    /// Rotate the application's certificate (manifest or Graph).
    Rotate,
    /// Ask the manifest for application permissions of `api` (placeholders when unknown).
    AddPermission {
        /// The API's catalogue name.
        api: Option<String>,
        /// The roles.
        roles: Vec<String>,
    },
    /// Ask a Graph-registered application for a permission.
    AddGraphPermission,
    /// List the permissions keycred knows (of one API when given).
    ListPermissions {
        /// The API's catalogue name.
        api: Option<String>,
    },
    /// Show the admin-consent URL.
    ConsentUrl,
    /// Audit the tenant's credentials.
    Audit,
    /// Rotate the certificates of many applications (a run resumes from its journal).
    RotateFleet,
    /// Retire the older certificates of many applications after their rotation.
    RetireFleet,
    /// Serve the emulator.
    Emulate,
}

impl Action {
    /// The library's own words for the action, used when no front end named it.
    pub fn neutral(&self) -> String {
        let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        match self {
            Action::NewCertificate { key_size: Some(b) } => format!("a new certificate with an RSA key of {b} bits"),
            Action::NewCertificate { key_size: None } => "a new certificate and key".into(),
            Action::InitManifest => "a new manifest".into(),
            Action::ListEntries { manifest } => format!("the keyCredentials of {}", or(manifest, "the manifest")),
            Action::ListGraphCertificates => "the application's keyCredentials in Graph".into(),
            Action::AddToManifest { manifest, cert } => format!(
                "a keyCredentials entry for {} in {}",
                or(cert, "the certificate"),
                or(manifest, "the manifest")
            ),
            Action::AddThroughGraph { new_cert, .. } => {
                format!("a Graph addKey call for {}", or(new_cert, "the certificate"))
            }
            Action::Rotate => "a rotation".into(),
            Action::AddPermission { api, roles } if !roles.is_empty() => {
                format!("{} of {} in the manifest's requiredResourceAccess", roles.join(", "), or(api, "the API"))
            }
            Action::AddPermission { .. } => "the permission in the manifest's requiredResourceAccess".into(),
            Action::AddGraphPermission => "the permission in the application's requiredResourceAccess".into(),
            Action::ListPermissions { api: Some(a) } => format!("the catalogue of {a}"),
            Action::ListPermissions { api: None } => "the catalogue of permissions".into(),
            Action::ConsentUrl => "the admin-consent URL".into(),
            Action::Audit => "an audit of the tenant's credentials".into(),
            Action::RotateFleet => "the fleet rotation".into(),
            Action::RetireFleet => "a fleet retirement".into(),
            Action::Emulate => "the emulator".into(),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match installed().and_then(|w| w.action(self)) {
            Some(s) => f.write_str(&s),
            None => f.write_str(&self.neutral()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_words_name_no_option_or_command() {
        // The unit tests never install a wording: what a library caller reads.
        assert_eq!(Input::KeySize.to_string(), "the key size");
        let add = Action::AddToManifest { manifest: Some("app.json".into()), cert: None };
        assert_eq!(add.to_string(), "a keyCredentials entry for the certificate in app.json");
        for a in [add, Action::NewCertificate { key_size: Some(2048) }, Action::Emulate] {
            assert!(!a.to_string().contains("keycred") && !a.to_string().contains("--"), "{a}");
        }
    }
}
