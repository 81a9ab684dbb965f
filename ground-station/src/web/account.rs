//! Login, logout, the current session and (for admins) user management.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::{LoginRequest, NewUserRequest, SessionInfo, UserList};
use super::error::ErrorBody;
use super::extract::{AdminRole, AnyRole, ApiJson, Authed, ClientIp, SESSION_COOKIE};
use super::{ApiError, AppState, blocking};
use crate::auth::Session;

fn session_info(state: &AppState, session: Session) -> SessionInfo {
    SessionInfo {
        username: session.username,
        role: session.role,
        csrf_token: session.csrf_token,
        map: state.settings.map.clone(),
    }
}

fn session_cookie(state: &AppState, value: &str, max_age_s: u64) -> String {
    let secure = if state.auth.config().secure_cookie { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

/// Log in: sets the session cookie and returns the CSRF token.
#[utoipa::path(post, path = "/api/login", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let auth = state.auth.clone();
    let new = blocking(move || auth.login(&request.username, &request.password, client)).await?;
    let cookie = session_cookie(&state, &new.id, state.auth.config().absolute_timeout.as_secs());
    Ok(([(header::SET_COOKIE, cookie)], Json(session_info(&state, new.session))).into_response())
}

/// Log out: ends the session and clears the cookie.
#[utoipa::path(post, path = "/api/logout", tag = "session", responses((status = 204)))]
pub(crate) async fn logout(State(state): State<AppState>, user: Authed<AnyRole>) -> Result<Response, ApiError> {
    let auth = state.auth.clone();
    let id = user.session_id;
    blocking(move || auth.logout(&id)).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, session_cookie(&state, "", 0))]).into_response())
}

/// The logged-in user, their CSRF token and the page settings.
#[utoipa::path(get, path = "/api/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub(crate) async fn session(State(state): State<AppState>, user: Authed<AnyRole>) -> Json<SessionInfo> {
    Json(session_info(&state, user.session))
}

/// All users (admin).
#[utoipa::path(get, path = "/api/users", tag = "users", responses((status = 200, body = UserList)))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    _user: Authed<AdminRole>,
) -> Result<Json<UserList>, ApiError> {
    let auth = state.auth.clone();
    Ok(Json(UserList { users: blocking(move || auth.list_users()).await? }))
}

/// Add a user (admin).
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUserRequest,
    responses((status = 201), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn add_user(
    State(state): State<AppState>,
    user: Authed<AdminRole>,
    ApiJson(request): ApiJson<NewUserRequest>,
) -> Result<StatusCode, ApiError> {
    let auth = state.auth.clone();
    let (name, role) = (request.username.clone(), request.role);
    blocking(move || auth.add_user(&request.username, &request.password, request.role)).await?;
    tracing::info!(admin = user.session.username, username = name, %role, "User added.");
    Ok(StatusCode::CREATED)
}

/// Remove a user and end their sessions (admin).
#[utoipa::path(delete, path = "/api/users/{username}", tag = "users",
    params(("username" = String, Path, description = "Login name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn remove_user(
    State(state): State<AppState>,
    user: Authed<AdminRole>,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let auth = state.auth.clone();
    let name = username.clone();
    blocking(move || auth.remove_user(&name)).await?;
    tracing::info!(admin = user.session.username, username, "User removed.");
    Ok(StatusCode::NO_CONTENT)
}
