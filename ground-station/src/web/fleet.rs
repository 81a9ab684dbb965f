//! Fleet, district and missions: read by everyone, planned and flown by operators.

use axum::Json;
use axum::extract::{Path, State};

use super::api::{CommandOutcome, CommandRequest, District, FleetSnapshot, MissionStatus, PlanRequest, PlanSummary};
use super::error::ErrorBody;
use super::extract::{AnyRole, ApiJson, Authed, OperatorRole};
use super::{ApiError, AppState};

/// Every drone's latest state.
#[utoipa::path(get, path = "/api/fleet", tag = "fleet",
    responses((status = 200, body = FleetSnapshot), (status = 401, body = ErrorBody)))]
pub(crate) async fn fleet(
    State(state): State<AppState>,
    _user: Authed<AnyRole>,
) -> Result<Json<FleetSnapshot>, ApiError> {
    Ok(Json(state.backend.fleet().await?))
}

/// Grid cells with today's coverage, no-fly zones, launch points and cameras.
#[utoipa::path(get, path = "/api/district", tag = "fleet", responses((status = 200, body = District)))]
pub(crate) async fn district(
    State(state): State<AppState>,
    _user: Authed<AnyRole>,
) -> Result<Json<District>, ApiError> {
    Ok(Json(state.backend.district().await?))
}

/// Missions with their routes and progress.
#[utoipa::path(get, path = "/api/missions", tag = "missions", responses((status = 200, body = Vec<MissionStatus>)))]
pub(crate) async fn missions(
    State(state): State<AppState>,
    _user: Authed<AnyRole>,
) -> Result<Json<Vec<MissionStatus>>, ApiError> {
    Ok(Json(state.backend.missions().await?))
}

/// Plan a patrol over cells (operator). Nothing is sent to the drones.
#[utoipa::path(post, path = "/api/missions/plan", tag = "missions", request_body = PlanRequest,
    responses((status = 200, body = PlanSummary), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn plan(
    State(state): State<AppState>,
    user: Authed<OperatorRole>,
    ApiJson(request): ApiJson<PlanRequest>,
) -> Result<Json<PlanSummary>, ApiError> {
    if request.cell_ids.is_empty() {
        return Err(ApiError::BadRequest("pick at least one grid cell".to_owned()));
    }
    if !(request.gsd_cm_per_px.is_finite() && (0.1..=50.0).contains(&request.gsd_cm_per_px)) {
        return Err(ApiError::BadRequest("gsd_cm_per_px must be between 0.1 and 50".to_owned()));
    }
    let summary = state.backend.plan(request).await?;
    tracing::info!(operator = user.session.username, plan_id = summary.plan_id, "Mission planned.");
    Ok(Json(summary))
}

/// Upload a plan to its drones (operator).
#[utoipa::path(post, path = "/api/missions/{plan_id}/upload", tag = "missions",
    params(("plan_id" = String, Path, description = "Plan id from /api/missions/plan")),
    responses((status = 200, body = Vec<CommandOutcome>), (status = 404, body = ErrorBody)))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    user: Authed<OperatorRole>,
    Path(plan_id): Path<String>,
) -> Result<Json<Vec<CommandOutcome>>, ApiError> {
    let outcomes = state.backend.upload(&plan_id).await?;
    tracing::info!(operator = user.session.username, plan_id, "Mission upload requested.");
    Ok(Json(outcomes))
}

/// Arm, take off, start, pause, resume, RTL or land, per drone or all (operator). Returns each autopilot's
/// answer; a refusal is a 200 with `accepted: false` and the reason.
#[utoipa::path(post, path = "/api/commands", tag = "missions", request_body = CommandRequest,
    responses((status = 200, body = Vec<CommandOutcome>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn command(
    State(state): State<AppState>,
    user: Authed<OperatorRole>,
    ApiJson(request): ApiJson<CommandRequest>,
) -> Result<Json<Vec<CommandOutcome>>, ApiError> {
    if let super::api::VehicleCommand::Takeoff { altitude_rel_m } = request.command
        && !(altitude_rel_m.is_finite() && (2.0..=500.0).contains(&altitude_rel_m))
    {
        return Err(ApiError::BadRequest("takeoff altitude_rel_m must be between 2 and 500".to_owned()));
    }
    tracing::info!(operator = user.session.username, command = ?request.command, drones = ?request.drone_ids,
        "Vehicle command.");
    Ok(Json(state.backend.command(request).await?))
}
