//! `/api/live`: a WebSocket pushing [`LiveUpdate`]s as JSON text messages.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use tokio::sync::broadcast::error::RecvError;

use super::api::LiveUpdate;
use super::extract::{AnyRole, Authed};
use super::{AppState, blocking};

/// How often an open socket re-checks that its session is still valid (logout, expiry, user removed).
const SESSION_RECHECK: Duration = Duration::from_secs(30);

/// Live updates (drones, missions, hazards, reviews) as JSON text messages, each with a `type` tag.
#[utoipa::path(get, path = "/api/live", tag = "fleet", responses((status = 101, body = LiveUpdate)))]
pub(crate) async fn live(State(state): State<AppState>, user: Authed<AnyRole>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| pump(socket, state, user.session_id))
}

/// Forwards updates until the client leaves, the session ends or the server shuts down.
async fn pump(mut socket: WebSocket, state: AppState, session_id: String) {
    let mut updates = state.backend.subscribe();
    let mut recheck = tokio::time::interval(SESSION_RECHECK);
    recheck.tick().await;
    let mut lagged_total: u64 = 0;
    loop {
        let update = tokio::select! {
            () = state.shutdown.cancelled() => break,
            _ = recheck.tick() => {
                let auth = state.auth.clone();
                let id = session_id.clone();
                if !matches!(blocking(move || auth.session(&id)).await, Ok(Some(_))) {
                    break;
                }
                continue;
            }
            incoming = socket.recv() => match incoming {
                // The client only listens; pings are answered by axum. Anything else is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            update = updates.recv() => match update {
                Ok(update) => update,
                Err(RecvError::Lagged(skipped)) => {
                    lagged_total += skipped;
                    tracing::debug!(skipped, lagged_total, "Live client lagged; asking it to resync.");
                    LiveUpdate::Resync
                }
                Err(RecvError::Closed) => break,
            },
        };
        let text = match serde_json::to_string(&update) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "Cannot encode a live update.");
                continue;
            }
        };
        if socket.send(Message::Text(text.into())).await.is_err() {
            break;
        }
    }
    // Best effort: the peer may already be gone.
    drop(socket.send(Message::Close(None)).await);
}
