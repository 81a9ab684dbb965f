//! Request extractors: the logged-in user with a minimum role (and the CSRF check on state-changing methods),
//! and JSON bodies whose rejections become [`ApiError`]s.

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use serde::de::DeserializeOwned;

use super::{ApiError, AppState, blocking};
use crate::auth::{Role, Session, constant_time_eq};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "patrol_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A minimum role, as a type so handlers state it in their signature.
pub trait MinRole {
    /// The least role allowed.
    const ROLE: Role;
}

/// Any logged-in user.
#[derive(Debug)]
pub struct AnyRole;
/// Reviewers and above.
#[derive(Debug)]
pub struct ReviewerRole;
/// Operators and above.
#[derive(Debug)]
pub struct OperatorRole;
/// Admins only.
#[derive(Debug)]
pub struct AdminRole;

impl MinRole for AnyRole {
    const ROLE: Role = Role::Viewer;
}
impl MinRole for ReviewerRole {
    const ROLE: Role = Role::Reviewer;
}
impl MinRole for OperatorRole {
    const ROLE: Role = Role::Operator;
}
impl MinRole for AdminRole {
    const ROLE: Role = Role::Admin;
}

/// The logged-in user, checked to hold at least role `R`. On POST, PUT, PATCH and DELETE the `X-CSRF-Token`
/// header must match the session's token.
#[derive(Debug)]
pub struct Authed<R> {
    /// The session.
    pub session: Session,
    /// The cookie value (for logout).
    pub session_id: String,
    _role: PhantomData<R>,
}

impl<R: MinRole> FromRequestParts<AppState> for Authed<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session_id = cookie(&parts.headers, SESSION_COOKIE).ok_or(ApiError::Unauthenticated)?;
        let auth = state.auth.clone();
        let id = session_id.clone();
        let session = blocking(move || auth.session(&id)).await?.ok_or(ApiError::Unauthenticated)?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            if !constant_time_eq(sent, &session.csrf_token) {
                return Err(ApiError::Csrf);
            }
        }
        if !session.role.includes(R::ROLE) {
            return Err(ApiError::Forbidden { have: session.role, need: R::ROLE });
        }
        Ok(Self { session, session_id, _role: PhantomData })
    }
}

/// The value of cookie `name`, from every `Cookie` header.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// The client's address (from the socket; unspecified when served without connection info).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(ip))
    }
}

/// A JSON body. Malformed or mistyped JSON is a 400 with serde's message, a body over the limit a 413, a
/// missing `Content-Type: application/json` a 415.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                let status = match rejection.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    other => other,
                };
                Err(ApiError::Rejected { status, message: rejection.body_text() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn finds_a_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; patrol_session=abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
