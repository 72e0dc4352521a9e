//! Which requests go to a vault: those addressed to a vault's host name. Apart from the vaults'
//! types ([`super::Vaults`]), which the emulator's state holds, so that the state does not
//! depend on the handlers that read it.

use super::ops;
use crate::emulator::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Routes requests addressed to a vault host to the vault; every other request goes on to the
/// tenant's endpoints.
pub(in crate::emulator) async fn dispatch(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| req.headers().get(HOST).and_then(|h| h.to_str().ok()).map(str::to_string))
        .unwrap_or_default();
    match st.vaults.vault_of_host(&host) {
        None => next.run(req).await,
        Some(None) => ops::no_such_vault(&host),
        Some(Some(vault)) => ops::serve(st, vault, req).await,
    }
}
