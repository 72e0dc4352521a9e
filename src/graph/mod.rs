//! Microsoft Graph's application endpoints (PROTOCOL.md sections 7 and 8), client side.
//!
//! It sits on [`crate::http`] and never imports what is built on it (`fleet`):
//!
//! - [`objects`]: an application and its credentials as Graph answers them, typed;
//! - [`call`]: Graph as plain values, no I/O: its well-known URLs and ids, one application's calls, the list calls, what an answer means;
//! - [`client`]: [`GraphClient`], which sends them through the transport seam, waits out
//!   throttling and renews an expired token;
//! - [`limiter`]: the adaptive concurrency shared by every request of a run;
//! - [`pager`]: streams a collection page by page, so memory stays flat however large the tenant;
//! - [`keys`]: adding and removing an application's certificates, by `addKey`/`removeKey` with a
//!   proof of possession or by `PATCH` of the whole `keyCredentials` array;
//! - [`federated`]: an application's federated identity credentials;
//! - [`access`]: an application's API permissions (`requiredResourceAccess`);
//! - [`policy`]: the app management policy in force for an application;
//! - [`signins`]: the credential sign-in report (when each credential last signed in).

pub mod access;
pub mod call;
pub mod client;
pub mod federated;
pub mod keys;
pub mod limiter;
pub mod objects;
pub mod pager;
pub mod policy;
pub mod signins;

pub use call::{
    interpret, GraphCall, GRAPH_RESOURCE, GRAPH_URL, PROOF_AUD_AAD_GRAPH, PROOF_AUD_MS_GRAPH, PROOF_LIFETIME,
};
pub use client::{GraphClient, Renew, MAX_ATTEMPTS, MAX_GRAPH_PAGE};
pub use keys::{
    add_certificate, can_prove, credentials_of, ensure_not_locked_out, key_id_of, proof_of_possession,
    read_credentials, remove_certificate, Change, Method,
};
pub use objects::{Application, KeyCredential, PasswordCredential};

use crate::{Error, Result};

/// The resource a Graph token is requested for when Graph is at `graph_url`: that URL for a
/// national cloud (`https://graph.microsoft.us`), but Graph itself for a loopback URL, where the
/// emulator serves Graph and issues tokens for it.
pub fn token_resource(graph_url: &str) -> Result<String> {
    let url = url::Url::parse(graph_url.trim())
        .map_err(|e| Error::input(format!("Graph URL '{graph_url}' is not a URL")).caused_by(e))?;
    Ok(if crate::authority::is_loopback_host(&url) {
        GRAPH_RESOURCE.to_string()
    } else {
        graph_url.trim().trim_end_matches('/').to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_tokens_are_for_the_cloud_s_graph_or_graph_itself_on_loopback() {
        assert_eq!(token_resource("https://graph.microsoft.us/").unwrap(), "https://graph.microsoft.us");
        assert_eq!(token_resource("http://127.0.0.1:8080").unwrap(), GRAPH_RESOURCE);
        assert_eq!(token_resource("http://localhost:1/").unwrap(), GRAPH_RESOURCE);
        let e = token_resource("not a url").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.find_source::<url::ParseError>().is_some(), "the parse error is kept: {e}");
    }
}
