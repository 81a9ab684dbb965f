//! Router tests over the in-memory `DemoBackend`, with no socket (`router(state).oneshot(request)`): every role
//! against every endpoint, CSRF, session expiry, login rate limits, path traversal, body limits and bad JSON.
//! One test opens a real socket to check the live WebSocket.

// Helpers outside #[test] functions panic on purpose: a panic is how a test reports failure.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use ground_station::auth::{AuthConfig, AuthService, Clock, Role};
use ground_station::web::{AppState, ConsoleBackend, ConsoleSettings, DemoBackend, router};
use http_body_util::BodyExt;
use rusqlite::Connection;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn password(role: Role) -> String {
    format!("{role}-password-123")
}

struct Harness {
    app: Router,
    backend: Arc<DemoBackend>,
    auth: AuthService,
    clock_s: Arc<AtomicU64>,
    shutdown: CancellationToken,
}

fn harness_with(config: AuthConfig) -> Harness {
    let clock_s = Arc::new(AtomicU64::new(1_800_000_000));
    let seconds = clock_s.clone();
    let clock: Clock = Arc::new(move || SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.load(Ordering::SeqCst)));
    let auth = AuthService::with_clock(Connection::open_in_memory().unwrap(), config, clock).unwrap();
    for role in Role::ALL {
        auth.add_user(role.as_str(), &password(role), role).unwrap();
    }
    let backend = Arc::new(DemoBackend::new());
    let shutdown = CancellationToken::new();
    let state = AppState::new(backend.clone(), auth.clone(), ConsoleSettings::default(), shutdown.clone());
    Harness { app: router(state), backend, auth, clock_s, shutdown }
}

fn harness() -> Harness {
    harness_with(AuthConfig::default())
}

struct Login {
    cookie: String,
    csrf: String,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send_raw(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, body }
}

async fn send(app: &Router, method: Method, uri: &str, login: Option<&Login>, body: Option<Value>) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(login) = login {
        request = request.header(header::COOKIE, &login.cookie).header("x-csrf-token", &login.csrf);
    }
    let request = match body {
        Some(body) => request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    };
    send_raw(app, request.unwrap()).await
}

async fn login_from(app: &Router, username: &str, password: &str, ip: IpAddr) -> Reply {
    let mut request = Request::post("/api/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "username": username, "password": password }).to_string()))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip, 40000)));
    send_raw(app, request).await
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn login(app: &Router, role: Role) -> Login {
    let reply = login_from(app, role.as_str(), &password(role), LOCAL).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let set_cookie = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    Login { cookie, csrf: reply.json()["csrf_token"].as_str().unwrap().to_owned() }
}

/// What a row needs set up before the request, given the caller's role: returns the path to call.
type Setup = fn(&Harness, Role) -> futures::future::BoxFuture<'_, String>;

struct Row {
    method: Method,
    setup: Setup,
    body: Option<fn(Role) -> Value>,
    least: Role,
    ok: StatusCode,
}

fn fixed(path: &'static str) -> Setup {
    // A non-capturing closure per path would need a macro; a leaked table of paths is simpler in a test.
    match path {
        "/api/session" => |_, _| Box::pin(async { "/api/session".to_owned() }),
        "/api/logout" => |_, _| Box::pin(async { "/api/logout".to_owned() }),
        "/api/users" => |_, _| Box::pin(async { "/api/users".to_owned() }),
        "/api/fleet" => |_, _| Box::pin(async { "/api/fleet".to_owned() }),
        "/api/district" => |_, _| Box::pin(async { "/api/district".to_owned() }),
        "/api/missions" => |_, _| Box::pin(async { "/api/missions".to_owned() }),
        "/api/missions/plan" => |_, _| Box::pin(async { "/api/missions/plan".to_owned() }),
        "/api/commands" => |_, _| Box::pin(async { "/api/commands".to_owned() }),
        "/api/hazards" => |_, _| Box::pin(async { "/api/hazards?kind=fire&min_severity=B".to_owned() }),
        "/api/hazards/h-1" => |_, _| Box::pin(async { "/api/hazards/h-1".to_owned() }),
        "/api/evidence/h-1-f0" => |_, _| Box::pin(async { "/api/evidence/h-1-f0".to_owned() }),
        "/api/export/hazards.csv" => |_, _| Box::pin(async { "/api/export/hazards.csv".to_owned() }),
        "/api/export/hazards.geojson" => |_, _| Box::pin(async { "/api/export/hazards.geojson".to_owned() }),
        "/api/review/claim" => |_, _| Box::pin(async { "/api/review/claim".to_owned() }),
        "/api/review/undo" => |_, _| Box::pin(async { "/api/review/undo".to_owned() }),
        other => panic!("no fixed setup for {other}"),
    }
}

fn rows() -> Vec<Row> {
    use Role::{Admin, Operator, Reviewer, Viewer};
    let get = |path, least| Row { method: Method::GET, setup: fixed(path), body: None, least, ok: StatusCode::OK };
    vec![
        get("/api/session", Viewer),
        Row {
            method: Method::POST,
            setup: fixed("/api/logout"),
            body: None,
            least: Viewer,
            ok: StatusCode::NO_CONTENT,
        },
        get("/api/users", Admin),
        Row {
            method: Method::POST,
            setup: fixed("/api/users"),
            body: Some(
                |role| json!({ "username": format!("new-{role}"), "password": "a long new password", "role": "viewer" }),
            ),
            least: Admin,
            ok: StatusCode::CREATED,
        },
        Row {
            method: Method::DELETE,
            setup: |h, role| {
                Box::pin(async move {
                    let name = format!("victim-{role}");
                    h.auth.add_user(&name, "a long victim password", Role::Viewer).unwrap();
                    format!("/api/users/{name}")
                })
            },
            body: None,
            least: Admin,
            ok: StatusCode::NO_CONTENT,
        },
        get("/api/fleet", Viewer),
        get("/api/district", Viewer),
        get("/api/missions", Viewer),
        Row {
            method: Method::POST,
            setup: fixed("/api/missions/plan"),
            body: Some(|_| json!({ "cell_ids": ["G-01", "G-02"], "gsd_cm_per_px": 2.0 })),
            least: Operator,
            ok: StatusCode::OK,
        },
        Row {
            method: Method::POST,
            setup: |h, _| {
                Box::pin(async move {
                    let request =
                        serde_json::from_value(json!({ "cell_ids": ["G-01"], "gsd_cm_per_px": 2.0 })).unwrap();
                    let plan = h.backend.plan(request).await.unwrap();
                    format!("/api/missions/{}/upload", plan.plan_id)
                })
            },
            body: None,
            least: Operator,
            ok: StatusCode::OK,
        },
        Row {
            method: Method::POST,
            setup: fixed("/api/commands"),
            body: Some(|_| json!({ "command": "arm", "drone_ids": ["d1"] })),
            least: Operator,
            ok: StatusCode::OK,
        },
        get("/api/hazards", Viewer),
        get("/api/hazards/h-1", Viewer),
        get("/api/evidence/h-1-f0", Viewer),
        get("/api/export/hazards.csv", Viewer),
        get("/api/export/hazards.geojson", Viewer),
        Row {
            method: Method::POST,
            setup: fixed("/api/review/claim"),
            body: None,
            least: Reviewer,
            ok: StatusCode::OK,
        },
        Row {
            method: Method::POST,
            setup: |h, role| {
                Box::pin(async move {
                    let item = h.backend.claim_next(role.as_str(), Duration::from_secs(60)).await.unwrap().unwrap();
                    format!("/api/review/{}/verdict", item.hazard.id)
                })
            },
            body: Some(|_| json!({ "verdict": "confirm", "note": "seen it" })),
            least: Reviewer,
            ok: StatusCode::OK,
        },
        Row { method: Method::POST, setup: fixed("/api/review/undo"), body: None, least: Reviewer, ok: StatusCode::OK },
    ]
}

#[tokio::test]
async fn every_role_against_every_endpoint() {
    for row in rows() {
        let h = harness();
        for role in Role::ALL {
            let session = login(&h.app, role).await;
            let path = (row.setup)(&h, role).await;
            if role == Role::Viewer {
                let anonymous = send(&h.app, row.method.clone(), &path, None, row.body.map(|b| b(role))).await;
                assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "anonymous {} {path}", row.method);
            }
            let reply = send(&h.app, row.method.clone(), &path, Some(&session), row.body.map(|b| b(role))).await;
            let expected = if role.includes(row.least) { row.ok } else { StatusCode::FORBIDDEN };
            assert_eq!(reply.status, expected, "{role} {} {path}: {}", row.method, reply.text());
        }
    }
}

#[tokio::test]
async fn the_live_socket_needs_a_session_and_any_role_may_open_it() {
    let h = harness();
    let upgrade = |login: Option<&Login>| {
        let mut request = Request::get("/api/live")
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
        if let Some(login) = login {
            request = request.header(header::COOKIE, &login.cookie);
        }
        request.body(Body::empty()).unwrap()
    };
    assert_eq!(send_raw(&h.app, upgrade(None)).await.status, StatusCode::UNAUTHORIZED);
    let viewer = login(&h.app, Role::Viewer).await;
    // Without a real connection there is nothing to upgrade: past authentication, axum answers 426.
    assert_eq!(send_raw(&h.app, upgrade(Some(&viewer))).await.status, StatusCode::UPGRADE_REQUIRED);
}

#[tokio::test]
async fn a_viewer_is_refused_every_operator_action_and_nothing_changes() {
    let h = harness();
    let viewer = login(&h.app, Role::Viewer).await;
    for command in ["arm", "start", "pause", "resume", "rtl", "land"] {
        let reply =
            send(&h.app, Method::POST, "/api/commands", Some(&viewer), Some(json!({ "command": command }))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{command}");
        assert!(reply.json()["error"].as_str().unwrap().contains("operator"), "{}", reply.text());
    }
    let takeoff = json!({ "command": "takeoff", "altitude_rel_m": 30.0 });
    assert_eq!(
        send(&h.app, Method::POST, "/api/commands", Some(&viewer), Some(takeoff)).await.status,
        StatusCode::FORBIDDEN
    );
    let fleet = h.backend.fleet().await.unwrap();
    assert!(fleet.drones.iter().all(|d| !d.armed), "no command reached the backend");
}

#[tokio::test]
async fn state_changing_requests_need_the_csrf_token() {
    let h = harness();
    let operator = login(&h.app, Role::Operator).await;
    let body = json!({ "command": "arm", "drone_ids": ["d1"] });
    let no_token = Request::post("/api/commands")
        .header(header::COOKIE, &operator.cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let reply = send_raw(&h.app, no_token).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.text().contains("X-CSRF-Token"), "{}", reply.text());
    let wrong = Login { cookie: operator.cookie.clone(), csrf: "0".repeat(64) };
    assert_eq!(
        send(&h.app, Method::POST, "/api/commands", Some(&wrong), Some(body.clone())).await.status,
        StatusCode::FORBIDDEN
    );
    // Another user's token does not fit this session either.
    let other = login(&h.app, Role::Admin).await;
    let swapped = Login { cookie: operator.cookie.clone(), csrf: other.csrf };
    assert_eq!(
        send(&h.app, Method::POST, "/api/commands", Some(&swapped), Some(body.clone())).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!h.backend.fleet().await.unwrap().drones[0].armed, "refused requests did nothing");
    let reply = send(&h.app, Method::POST, "/api/commands", Some(&operator), Some(body)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()[0]["accepted"], json!(true));
    // Logout is state-changing too.
    let no_token = Request::post("/api/logout").header(header::COOKIE, &operator.cookie).body(Body::empty()).unwrap();
    assert_eq!(send_raw(&h.app, no_token).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send(&h.app, Method::GET, "/api/session", Some(&operator), None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_after_the_absolute_lifetime() {
    let config = AuthConfig {
        idle_timeout: Duration::from_secs(600),
        absolute_timeout: Duration::from_secs(3600),
        ..AuthConfig::default()
    };
    let h = harness_with(config);
    let session = login(&h.app, Role::Viewer).await;
    h.clock_s.fetch_add(590, Ordering::SeqCst);
    assert_eq!(send(&h.app, Method::GET, "/api/fleet", Some(&session), None).await.status, StatusCode::OK);
    h.clock_s.fetch_add(601, Ordering::SeqCst);
    assert_eq!(send(&h.app, Method::GET, "/api/fleet", Some(&session), None).await.status, StatusCode::UNAUTHORIZED);

    let session = login(&h.app, Role::Viewer).await;
    for _ in 0..7 {
        h.clock_s.fetch_add(500, Ordering::SeqCst);
        assert_eq!(send(&h.app, Method::GET, "/api/fleet", Some(&session), None).await.status, StatusCode::OK);
    }
    h.clock_s.fetch_add(200, Ordering::SeqCst);
    assert_eq!(send(&h.app, Method::GET, "/api/fleet", Some(&session), None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let h = harness();
    let session = login(&h.app, Role::Reviewer).await;
    let reply = send(&h.app, Method::POST, "/api/logout", Some(&session), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(send(&h.app, Method::GET, "/api/session", Some(&session), None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_session_cookie_is_httponly_strict_and_secure_when_configured() {
    let plain = harness();
    let reply = login_from(&plain.app, "viewer", &password(Role::Viewer), LOCAL).await;
    let cookie = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert!(!reply.text().contains(cookie.split(['=', ';']).nth(1).unwrap()), "the session id is not in the body");
    let tls = harness_with(AuthConfig { secure_cookie: true, ..AuthConfig::default() });
    let reply = login_from(&tls.app, "viewer", &password(Role::Viewer), LOCAL).await;
    assert!(reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().contains("; Secure"));
}

#[tokio::test]
async fn logins_are_rate_limited_per_user_and_per_address() {
    let h = harness();
    for _ in 0..5 {
        assert_eq!(login_from(&h.app, "operator", "not the password", LOCAL).await.status, StatusCode::UNAUTHORIZED);
    }
    let reply = login_from(&h.app, "operator", &password(Role::Operator), LOCAL).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(reply.headers.get(header::RETRY_AFTER).is_some());
    h.clock_s.fetch_add(15 * 60, Ordering::SeqCst);
    assert_eq!(login_from(&h.app, "operator", &password(Role::Operator), LOCAL).await.status, StatusCode::OK);

    let attacker = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66));
    for i in 0..20 {
        login_from(&h.app, &format!("guess{i}"), "not the password", attacker).await;
    }
    assert_eq!(
        login_from(&h.app, "viewer", &password(Role::Viewer), attacker).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(login_from(&h.app, "viewer", &password(Role::Viewer), LOCAL).await.status, StatusCode::OK);
}

#[tokio::test]
async fn image_and_asset_routes_take_ids_never_paths() {
    let h = harness();
    let viewer = login(&h.app, Role::Viewer).await;
    for path in [
        "/api/evidence/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/evidence/%2e%2e",
        "/api/evidence/..%5C..%5Cwindows",
        "/api/evidence/h-1-f0%00.png",
        "/api/hazards/..%2Fh-1",
    ] {
        let reply = send(&h.app, Method::GET, path, Some(&viewer), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}: {}", reply.text());
    }
    for path in [
        "/api/evidence/../../etc/passwd",
        "/api/evidence/a/b",
        "/assets/../Cargo.toml",
        "/assets/..%2F..%2FCargo.toml",
        "/assets/%2e%2e/src/web.rs",
    ] {
        let reply = send(&h.app, Method::GET, path, Some(&viewer), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {}", reply.text());
        assert!(!reply.text().contains("root:") && !reply.text().contains("[package]"));
    }
    let image = send(&h.app, Method::GET, "/api/evidence/h-1-f0", Some(&viewer), None).await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.headers.get(header::CONTENT_TYPE).unwrap(), "image/png");
    assert!(image.body.starts_with(b"\x89PNG"));
    assert_eq!(
        send(&h.app, Method::GET, "/api/evidence/nope", Some(&viewer), None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let h = harness();
    let operator = login(&h.app, Role::Operator).await;
    let many_cells: Vec<String> = (0..100_000).map(|i| format!("G-{i:06}")).collect();
    let reply = send(
        &h.app,
        Method::POST,
        "/api/missions/plan",
        Some(&operator),
        Some(json!({ "cell_ids": many_cells, "gsd_cm_per_px": 2.0 })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text());
    assert!(reply.json()["error"].is_string());
    let huge_note = json!({ "username": "x".repeat(400_000), "password": "y" });
    assert_eq!(
        send(&h.app, Method::POST, "/api/login", None, Some(huge_note)).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn bad_json_gets_400_with_a_message() {
    let h = harness();
    let operator = login(&h.app, Role::Operator).await;
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = Request::post("/api/missions/plan")
            .header(header::COOKIE, &operator.cookie)
            .header("x-csrf-token", &operator.csrf);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        request.body(Body::from(body)).unwrap()
    };
    for body in [
        "{\"cell_ids\": [",
        "not json",
        "{\"cell_ids\": \"G-01\", \"gsd_cm_per_px\": 2}",
        "{\"cell_ids\": [\"G-01\"]}",
        "{\"cell_ids\": [\"G-01\"], \"gsd_cm_per_px\": 2, \"extra\": 1}",
    ] {
        let reply = send_raw(&h.app, raw(body, Some("application/json"))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.text());
        assert!(!reply.json()["error"].as_str().unwrap().is_empty());
    }
    let reply = send_raw(&h.app, raw("{}", None)).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Valid JSON with values the planner cannot use.
    let reply = send(
        &h.app,
        Method::POST,
        "/api/missions/plan",
        Some(&operator),
        Some(json!({ "cell_ids": ["NOPE"], "gsd_cm_per_px": 2 })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("NOPE"));
    let reply = send(&h.app, Method::GET, "/api/hazards?kind=volcano", Some(&operator), None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn review_verdicts_are_attributed_and_claims_are_exclusive() {
    let h = harness();
    let reviewer = login(&h.app, Role::Reviewer).await;
    let operator = login(&h.app, Role::Operator).await;
    let first = send(&h.app, Method::POST, "/api/review/claim", Some(&reviewer), None).await.json();
    let second = send(&h.app, Method::POST, "/api/review/claim", Some(&operator), None).await.json();
    assert_eq!(first["hazard"]["id"], json!("h-1"), "most severe first");
    assert_ne!(first["hazard"]["id"], second["hazard"]["id"]);
    let stolen =
        send(&h.app, Method::POST, "/api/review/h-1/verdict", Some(&operator), Some(json!({ "verdict": "reject" })))
            .await;
    assert_eq!(stolen.status, StatusCode::CONFLICT);
    let record = send(
        &h.app,
        Method::POST,
        "/api/review/h-1/verdict",
        Some(&reviewer),
        Some(json!({ "verdict": "confirm", "note": " flames " })),
    )
    .await;
    assert_eq!(record.status, StatusCode::OK);
    assert_eq!(record.json()["reviewer"], json!("reviewer"));
    assert_eq!(record.json()["note"], json!("flames"));
    let reviews = h.backend.reviews();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].reviewer, "reviewer");
}

#[tokio::test]
async fn exports_follow_the_filter() {
    let h = harness();
    let viewer = login(&h.app, Role::Viewer).await;
    let csv = send(&h.app, Method::GET, "/api/export/hazards.csv?min_severity=B", Some(&viewer), None).await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.text();
    assert_eq!(text.lines().count(), 1 + 3, "header plus the A and two B hazards:\n{text}");
    assert!(text.contains("h-1,fire,fire,A,0.910"));
    let geo = send(&h.app, Method::GET, "/api/export/hazards.geojson?kind=gas", Some(&viewer), None).await.json();
    assert_eq!(geo["type"], json!("FeatureCollection"));
    assert_eq!(geo["features"].as_array().unwrap().len(), 1);
    assert_eq!(geo["features"][0]["properties"]["kind"], json!("gas"));
    assert_eq!(geo["features"][0]["geometry"]["type"], json!("Point"));
}

#[tokio::test]
async fn openapi_is_public_and_documents_every_endpoint() {
    let h = harness();
    let doc = send(&h.app, Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/login",
        "/api/logout",
        "/api/session",
        "/api/users",
        "/api/users/{username}",
        "/api/fleet",
        "/api/district",
        "/api/missions",
        "/api/missions/plan",
        "/api/missions/{plan_id}/upload",
        "/api/commands",
        "/api/hazards",
        "/api/hazards/{id}",
        "/api/evidence/{id}",
        "/api/export/hazards.csv",
        "/api/export/hazards.geojson",
        "/api/review/claim",
        "/api/review/{hazard_id}/verdict",
        "/api/review/undo",
        "/api/live",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the OpenAPI document");
    }
    assert!(doc["components"]["schemas"]["LiveUpdate"].is_object());
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
}

#[tokio::test]
async fn the_page_is_served_with_security_headers() {
    let h = harness();
    let page = send(&h.app, Method::GET, "/", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("/assets/app.js"));
    let csp = page.headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
    for asset in ["/assets/app.js", "/assets/vendor/leaflet/leaflet.js", "/assets/i18n/zh-CN.json"] {
        assert_eq!(send(&h.app, Method::GET, asset, None, None).await.status, StatusCode::OK, "{asset}");
    }
    let zh: Value =
        serde_json::from_slice(&send(&h.app, Method::GET, "/assets/i18n/zh-CN.json", None, None).await.body).unwrap();
    let en: Value =
        serde_json::from_slice(&send(&h.app, Method::GET, "/assets/i18n/en.json", None, None).await.body).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(keys(&zh), keys(&en), "both languages have the same strings");
}

/// A real socket: the WebSocket handshake, then a pushed update as a JSON text frame.
#[tokio::test]
async fn the_live_socket_pushes_updates_as_json() {
    let h = harness();
    let viewer = login(&h.app, Role::Viewer).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    let shutdown = h.shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let handshake = format!(
        "GET /api/live HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {}\r\n\r\n",
        viewer.cookie
    );
    stream.write_all(handshake.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed during the handshake");
        head.extend_from_slice(&buf[..n]);
    }
    let head_text = String::from_utf8_lossy(&head).into_owned();
    assert!(head_text.starts_with("HTTP/1.1 101"), "{head_text}");
    let split = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut frame = head[split..].to_vec();
    // The subscription exists once the upgrade completed; publish until the frame arrives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        h.backend.set_link("d2", ground_station::web::api::LinkState::Lost).unwrap();
        if frame.len() >= 4 {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => frame.extend_from_slice(&buf[..n]),
            Ok(_) => panic!("socket closed"),
            Err(_) => assert!(tokio::time::Instant::now() < deadline, "no live update arrived"),
        }
    }
    assert_eq!(frame[0], 0x81, "a final text frame");
    let (len, start) = match frame[1] & 0x7f {
        126 => (usize::from(u16::from_be_bytes([frame[2], frame[3]])), 4),
        n => (usize::from(n), 2),
    };
    while frame.len() < start + len {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
        frame.extend_from_slice(&buf[..n]);
    }
    let update: Value = serde_json::from_slice(&frame[start..start + len]).unwrap();
    assert_eq!(update["type"], json!("drone"));
    assert_eq!(update["id"], json!("d2"));
    assert_eq!(update["link"], json!("lost"));
    h.shutdown.cancel();
    drop(stream);
    tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
}
