//! `POST /api/frames`: a companion computer pushes a photo with its capture metadata (see
//! [`crate::ingest::push`] for the two request shapes). Authorised by `Authorization: Bearer <web.push_token>`;
//! without a configured token the endpoint is off.

use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::config::Secret;
use crate::ingest::push::{PushLimits, parse_push};

use super::fleet::Fleet;
use super::frames::{FrameRejected, FrameSource, Frames, PendingFrame};
use super::patrols::Patrols;

/// What the endpoint needs.
#[derive(Clone)]
pub struct PushState {
    /// Where frames go.
    pub frames: Frames,
    /// Drone ids and cameras.
    pub fleet: Fleet,
    /// The bearer token; `None` turns the endpoint off.
    pub token: Option<Secret>,
    /// Which mission a drone flies.
    pub missions_of: Patrols,
}

/// The push route, with its own body limit.
pub fn router(state: PushState) -> Router {
    let limits = PushLimits::default();
    Router::new()
        .route("/api/frames", post(push_frame))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

fn answer(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn authorised(headers: &HeaderMap, token: &Secret) -> bool {
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some(given) = given.strip_prefix("Bearer ") else { return false };
    // Constant time in the token's length: no early exit on the first differing byte.
    let (a, b) = (given.trim().as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn push_frame(
    State(state): State<PushState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(token) = &state.token else {
        return answer(StatusCode::NOT_FOUND, "the push endpoint is off: set web.push_token (or GS__WEB__PUSH_TOKEN)");
    };
    if !authorised(&headers, token) {
        return answer(StatusCode::UNAUTHORIZED, "send the push token as `Authorization: Bearer <token>`");
    }
    let received = SystemTime::now();
    let pushed = match parse_push(&headers, query.as_deref(), body, &PushLimits::default()) {
        Ok(pushed) => pushed,
        Err(error) => return answer(StatusCode::BAD_REQUEST, error.to_string()),
    };
    let drone_id = pushed.metadata.drone_id.clone();
    let Some(drone) = state.fleet.drone(&drone_id) else {
        return answer(
            StatusCode::BAD_REQUEST,
            format!("drone `{drone_id}` is not configured ([[drones]] in the config)"),
        );
    };
    let camera = match &pushed.metadata.camera {
        Some(name) => drone.camera.as_ref().filter(|c| &c.name == name),
        None => None,
    };
    let pose = match pushed.capture_pose(camera) {
        Ok(pose) => pose,
        Err(error) => return answer(StatusCode::BAD_REQUEST, error.to_string()),
    };
    let frame = PendingFrame {
        mission_id: state.missions_of.active_mission(&drone_id),
        drone_id,
        taken: pushed.metadata.capture_time,
        pose,
        image: pushed.image.to_vec(),
        source: FrameSource::Pushed,
        received,
    };
    match state.frames.submit(frame) {
        Ok(()) => (StatusCode::ACCEPTED, axum::Json(json!({ "queued": true }))).into_response(),
        Err(error @ FrameRejected::Busy) => {
            let mut response = answer(StatusCode::SERVICE_UNAVAILABLE, error.to_string());
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
            response
        }
        Err(error) => answer(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}
