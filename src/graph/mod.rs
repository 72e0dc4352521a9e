//! Microsoft Graph's application endpoints (PROTOCOL.md sections 7 and 8), client side.
//!
//! It sits on [`crate::http`] and never imports what is built on it ([`crate::fleet`]):
//!
//! - [`call`]: requests and answers as plain values (one application's calls, the list calls,
//!   what an answer means), no I/O;
//! - [`client`]: [`GraphClient`], which sends them through the transport seam, waits out
//!   throttling and renews an expired token;
//! - [`limiter`]: the adaptive concurrency shared by every request of a run;
//! - [`pager`]: streams a collection page by page, so memory stays flat however large the tenant;
//! - [`keys`]: adding and removing an application's certificates, by `addKey`/`removeKey` with a
//!   proof of possession or by `PATCH` of the whole `keyCredentials` array.

pub mod call;
pub mod client;
pub mod keys;
pub mod limiter;
pub mod pager;

pub use call::{interpret, GraphCall};
pub use client::{GraphClient, Renew, MAX_ATTEMPTS, MAX_GRAPH_PAGE};
pub use keys::{
    add_certificate, can_prove, credentials_of, ensure_not_locked_out, key_id_of, proof_of_possession,
    remove_certificate, Application, Change, Method,
};

use crate::ids::well_known;
use crate::{Error, Result};

/// Public cloud Graph.
pub const GRAPH_URL: &str = "https://graph.microsoft.com";
/// The resource Graph tokens are issued for.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Proof `aud` in the addKey/removeKey documentation (Azure AD Graph's id).
pub const PROOF_AUD_AAD_GRAPH: &str = well_known::AZURE_AD_GRAPH;
/// Proof `aud` in newer documentation (Microsoft Graph's id).
pub const PROOF_AUD_MS_GRAPH: &str = well_known::MICROSOFT_GRAPH;
/// Lifetime of a proof, seconds (the documentation's nbf + 10 minutes).
pub const PROOF_LIFETIME: i64 = 600;

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
