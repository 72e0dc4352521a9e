//! A local emulator of the Entra ID token endpoint, for tests, `keycred demo` and users' CI.
//!
//! Applications are manifest files (their `appId` and `keyCredentials`), re-read when they change
//! on disk, so a rotation script sees its additions and removals at the next request. Client
//! assertions are validated with Entra's error codes, statuses and texts ([`errors`]); tokens are
//! signed RS256 with a key generated at start and published in the JWKS.
//!
//! ```no_run
//! use keycred::emulator::{start_blocking, EmulatorConfig};
//! let emu = start_blocking(EmulatorConfig::new(vec!["app.json".into()]))?;
//! println!("{}", emu.info().token_endpoint(keycred::authority::EndpointVersion::V2));
//! # Ok::<(), keycred::Error>(())
//! ```

mod apps;
mod authorize;
mod config;
mod discovery;
pub mod errors;
mod generate;
mod graph;
mod handle;
mod issuers;
mod middleware;
mod router;
mod serve;
mod signins;
mod state;
mod tenant;
mod throttle;
mod tls;
mod token;
mod vault;

pub use generate::{generate_tenant, write_default_policy, TenantSummary};
pub use graph::objects::query_matches as graph_query_matches;
pub use graph::odata::QueryError as GraphQueryError;

pub use crate::authority::EndpointVersion;
pub use apps::{AccessKind, Api, App, IdTyp, Permission, RequiredAccess, TokenVersion};
pub use serve::{READ_TIMEOUT, SHUTDOWN_GRACE};
pub use tenant::User;
pub use vault::{parse_vault, VaultSpec, VAULT_DOMAIN};

pub use config::{initial_domain, parse_grant, EmulatorConfig, BLOCKING_THREADS, MAX_BODY, MAX_RESOURCE};
pub use handle::{start, start_blocking, BlockingEmulator, EmulatorHandle, EmulatorInfo};
pub use router::router;
use router::{blocking, blocking_or};
use state::{is_multi_tenant, SharedState};
pub use state::{verify_client_assertion, AppState};

pub use apps::Registry;
