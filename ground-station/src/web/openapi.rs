//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{account, fleet, hazards, live, review};

#[derive(OpenApi)]
#[openapi(
    info(title = "Patrol ground station console API",
         description = "Log in with POST /api/login; the session cookie then authenticates every call. Send the \
                        returned csrf_token in the X-CSRF-Token header on every POST, PUT and DELETE. Roles: \
                        viewer (read), reviewer (+ review queue), operator (+ plan and fly), admin (+ users)."),
    paths(
        account::login, account::logout, account::session, account::list_users, account::add_user,
        account::remove_user, fleet::fleet, fleet::district, fleet::missions, fleet::plan, fleet::upload,
        fleet::command, hazards::list, hazards::get_one, hazards::evidence, hazards::export_csv,
        hazards::export_geojson, review::claim, review::verdict, review::undo, live::live,
    ),
    modifiers(&SessionCookie),
    security(("session" = [])),
)]
struct ApiDoc;

struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(super::extract::SESSION_COOKIE))),
        );
    }
}

/// The console API's OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api/openapi.json` (public).
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
