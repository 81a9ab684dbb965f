//! The web console: an axum router serving the embedded page (`assets/`), the JSON API under `/api` (OpenAPI at
//! `/api/openapi.json`) and the live WebSocket `/api/live`.
//!
//! The router runs on [`AppState`]: a [`ConsoleBackend`] (the fleet, planner, hazards and review queue), the
//! [`AuthService`] and the page settings. Every `/api` endpoint except login and the OpenAPI document needs a
//! session, and each states its least role in its signature ([`extract::Authed`]); the role is checked on the
//! server, the page only hides what the user may not do.
//!
//! ```no_run
//! # async fn demo(backend: std::sync::Arc<dyn ground_station::web::ConsoleBackend>,
//! #               auth: ground_station::auth::AuthService) -> std::io::Result<()> {
//! use ground_station::web::{AppState, ConsoleSettings, serve};
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let state = AppState::new(backend, auth, ConsoleSettings::default(), shutdown.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, state).await
//! # }
//! ```

mod account;
pub mod api;
mod assets;
mod backend;
#[cfg(feature = "test-util")]
mod demo;
mod error;
pub mod extract;
mod fleet;
mod hazards;
mod live;
mod openapi;
mod review;
pub mod review_queue;
pub mod station_backend;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{delete, get, post};
use tokio_util::sync::CancellationToken;

pub use api::MapSettings;
pub use backend::{BackendError, ConsoleBackend, EvidenceImage};
#[cfg(feature = "test-util")]
pub use demo::DemoBackend;
pub use error::ApiError;
pub use openapi::openapi;

use crate::auth::{AuthError, AuthService};

/// Page and API settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSettings {
    /// Base map tiles.
    pub map: MapSettings,
    /// Largest request body accepted, bytes (larger ones get 413).
    pub max_body_bytes: usize,
    /// How long a reviewer's claim on a queue item lasts.
    pub review_lease: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self { map: MapSettings::default(), max_body_bytes: 256 * 1024, review_lease: Duration::from_secs(5 * 60) }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The fleet, planner, hazards and review queue.
    pub backend: Arc<dyn ConsoleBackend>,
    /// Users and sessions.
    pub auth: AuthService,
    /// Page settings.
    pub settings: Arc<ConsoleSettings>,
    /// Cancelled at shutdown: ends the live WebSockets so the server can drain.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl AppState {
    /// Bundles the parts.
    pub fn new(
        backend: Arc<dyn ConsoleBackend>,
        auth: AuthService,
        settings: ConsoleSettings,
        shutdown: CancellationToken,
    ) -> Self {
        Self { backend, auth, settings: Arc::new(settings), shutdown }
    }
}

/// The console's routes: the page, the API and the WebSocket.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/login", post(account::login))
        .route("/logout", post(account::logout))
        .route("/session", get(account::session))
        .route("/users", get(account::list_users).post(account::add_user))
        .route("/users/{username}", delete(account::remove_user))
        .route("/fleet", get(fleet::fleet))
        .route("/district", get(fleet::district))
        .route("/missions", get(fleet::missions))
        .route("/missions/plan", post(fleet::plan))
        .route("/missions/{plan_id}/upload", post(fleet::upload))
        .route("/commands", post(fleet::command))
        .route("/hazards", get(hazards::list))
        .route("/hazards/{id}", get(hazards::get_one))
        .route("/evidence/{id}", get(hazards::evidence))
        .route("/export/hazards.csv", get(hazards::export_csv))
        .route("/export/hazards.geojson", get(hazards::export_geojson))
        .route("/review/claim", post(review::claim))
        .route("/review/undo", post(review::undo))
        .route("/review/{hazard_id}/verdict", post(review::verdict))
        .route("/live", get(live::live))
        .fallback(|| async { ApiError::NotFound("no such API endpoint".to_owned()) });
    let csp = content_security_policy(state.settings.map.tile_url.as_deref());
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .nest("/api", api)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(axum::middleware::map_response(move |response: Response| {
            let csp = csp.clone();
            async move { security_headers(response, csp) }
        }))
        .with_state(state)
}

/// Serves the console on `listener` until `state.shutdown` is cancelled, then drains the open requests.
/// Logs how to create the first admin when none exists.
///
/// # Errors
/// An accept error from the listener.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "Web console listening.");
    }
    let shutdown = state.shutdown.clone();
    serve_router(listener, router(state.clone()), state, shutdown).await
}

/// Serves `app` (the console's [`router`] merged with other routes) until `shutdown` is cancelled, then drains
/// the open requests. Logs how to create the first admin when none exists.
///
/// # Errors
/// An accept error from the listener.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let auth = state.auth.clone();
    match blocking(move || auth.has_admin()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("{}", crate::auth::no_admin_hint(state.auth.database_path())),
        Err(error) => tracing::error!(%error, "Cannot read the user database."),
    }
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Runs a blocking auth call (SQLite, Argon2) off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|error| ApiError::Internal(format!("auth task failed: {error}")))?
        .map_err(ApiError::from)
}

fn content_security_policy(tile_url: Option<&str>) -> HeaderValue {
    // Tiles may come from another host; allow exactly that origin for images.
    let tile_origin = tile_url
        .and_then(|url| {
            let (scheme, rest) = url.split_once("://")?;
            let host = rest.split('/').next()?;
            // `{s}` subdomain templates: allow the parent domain's subdomains.
            let host = host.replace("{s}", "*");
            Some(format!(" {scheme}://{host}"))
        })
        .unwrap_or_default();
    let policy = format!(
        "default-src 'self'; img-src 'self' data: blob:{tile_origin}; style-src 'self'; script-src 'self'; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

fn security_headers(mut response: Response, csp: HeaderValue) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_allows_the_tile_host_only() {
        let csp = content_security_policy(Some("https://{s}.tile.example.org/{z}/{x}/{y}.png"));
        let csp = csp.to_str().unwrap();
        assert!(csp.contains("img-src 'self' data: blob: https://*.tile.example.org;"), "{csp}");
        let none = content_security_policy(None);
        assert!(none.to_str().unwrap().contains("img-src 'self' data: blob:;"));
    }
}
