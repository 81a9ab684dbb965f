//! The review queue: claim the next item, give a verdict, undo (reviewers and above).

use axum::Json;
use axum::extract::{Path, State};

use super::api::{ReviewItem, ReviewRecord, VerdictRequest};
use super::error::ErrorBody;
use super::extract::{ApiJson, Authed, ReviewerRole};
use super::hazards::check_id;
use super::{ApiError, AppState};

/// Longest note accepted, characters.
const MAX_NOTE_CHARS: usize = 2000;

/// Claim the next pending hazard (most severe, then oldest) under a lease; `null` when the queue is empty.
#[utoipa::path(post, path = "/api/review/claim", tag = "review",
    responses((status = 200, body = Option<ReviewItem>), (status = 403, body = ErrorBody)))]
pub(crate) async fn claim(
    State(state): State<AppState>,
    user: Authed<ReviewerRole>,
) -> Result<Json<Option<ReviewItem>>, ApiError> {
    Ok(Json(state.backend.claim_next(&user.session.username, state.settings.review_lease).await?))
}

/// Confirm, reject or skip a claimed hazard, with an optional note. Attributed to the logged-in user.
#[utoipa::path(post, path = "/api/review/{hazard_id}/verdict", tag = "review", request_body = VerdictRequest,
    params(("hazard_id" = String, Path, description = "The claimed hazard")),
    responses((status = 200, body = ReviewRecord), (status = 409, body = ErrorBody)))]
pub(crate) async fn verdict(
    State(state): State<AppState>,
    user: Authed<ReviewerRole>,
    Path(hazard_id): Path<String>,
    ApiJson(request): ApiJson<VerdictRequest>,
) -> Result<Json<ReviewRecord>, ApiError> {
    check_id(&hazard_id)?;
    let note = request.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(ApiError::BadRequest(format!("the note is longer than {MAX_NOTE_CHARS} characters")));
    }
    let record = state.backend.verdict(&user.session.username, &hazard_id, request.verdict, note).await?;
    tracing::info!(reviewer = record.reviewer, hazard_id, verdict = ?record.verdict, "Review verdict.");
    Ok(Json(record))
}

/// Undo the caller's latest verdict; `null` when there is none.
#[utoipa::path(post, path = "/api/review/undo", tag = "review", responses((status = 200, body = Option<ReviewRecord>)))]
pub(crate) async fn undo(
    State(state): State<AppState>,
    user: Authed<ReviewerRole>,
) -> Result<Json<Option<ReviewRecord>>, ApiError> {
    Ok(Json(state.backend.undo(&user.session.username).await?))
}
