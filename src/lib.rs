//! keycred: certificate credentials for Microsoft Entra ID app registrations, end to end.
//!
//! Generate or load an RSA certificate ([`cert`]), compute its Entra values ([`thumbprint`]),
//! write it into an app manifest ([`manifest`]), sign client assertions ([`jwt`]), request tokens
//! ([`token`]), and test it all offline against a local emulator of the Entra token endpoint
//! ([`emulator`]).
//!
//! ```no_run
//! use keycred::cert::{generate, KeySize, NewCertificate, Validity};
//! let (cert, key) = generate(&NewCertificate {
//!     subject: "CN=my-daemon".into(),
//!     key_size: KeySize::Rsa2048,
//!     validity: Validity::Days(365),
//! })?;
//! println!("{} {}", cert.thumbprint(), cert.custom_key_identifier());
//! # Ok::<(), keycred::Error>(())
//! ```

#![warn(missing_docs)]

pub mod authority;
pub mod cert;
pub mod check;
pub mod consent;
pub mod dates;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod error;
pub mod fleet;
pub mod fsio;
pub mod graph;
pub mod http;
pub mod ids;
pub mod jwks;
pub mod jwt;
pub mod keystore;
pub mod lock;
pub mod manifest;
pub mod permissions;
pub mod policy;
pub mod rotate;
pub mod secret;
pub mod thumbprint;
pub mod token;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
pub use ids::{ClientId, TenantId};
