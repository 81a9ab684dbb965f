//! The web console in headless Chromium (Debian `chromium` + `chromium-driver`, installed by
//! `scripts/setup-test-deps.sh`), driven over WebDriver, against the router on 127.0.0.1:0 with the in-memory
//! demo backend: log in, plan two cells, upload, arm (one drone refuses and says why), take off, start and see
//! the drone marker move and the mission progress; a lost link turns stale; review a hazard with the keyboard
//! and see the verdict reach the backend; filter the incident list; a viewer is refused operator actions, also by direct API call.
//! Screenshots of the live map, the planner and the review queue go to `docs/screenshots/`.

// Helpers outside #[test] functions panic on purpose: a panic is how a test reports failure.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use e2e::workspace_root;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use ground_station::auth::{AuthConfig, AuthService, Role};
use ground_station::web::api::{LinkState, Verdict};
use ground_station::web::{AppState, ConsoleSettings, DemoBackend, serve};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn executable(name: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-test-deps.sh (it installs chromium and chromium-driver)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    StdListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).unwrap()
}

/// Starts chromedriver on a free port and waits until it accepts connections.
pub(crate) async fn chromedriver() -> (tokio::process::Child, u16) {
    let port = free_port();
    let child = tokio::process::Command::new(executable("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let ready = async {
        loop {
            if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, ready).await.expect("chromedriver did not start listening");
    (child, port)
}

pub(crate) async fn browser(driver_port: u16, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": executable("chromium"),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1400,900", "--lang=en-US",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("open a Chromium session")
}

pub(crate) fn password(role: Role) -> String {
    format!("{role}-browser-password")
}

pub(crate) async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Polls a JavaScript expression until it is true.
pub(crate) async fn wait_js(client: &Client, expression: &str) {
    let script = format!("return Boolean({expression});");
    let check = async {
        loop {
            if client.execute(&script, vec![]).await.unwrap() == Value::Bool(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(WAIT, check).await.unwrap_or_else(|_| panic!("timed out waiting for {expression}"));
}

/// A JavaScript test that drone `id`'s latest autopilot answer was accepted and says `text`.
pub(crate) fn answer_is(id: &str, text: &str) -> String {
    format!(
        "(() => {{ const li = document.querySelector(\"#fly-answers li[data-drone-id='{id}']\"); \
         return li && li.classList.contains('ok') && li.textContent.includes('{text}'); }})()"
    )
}

pub(crate) async fn log_in(client: &Client, base: &str, role: Role) {
    client.goto(base).await.unwrap();
    find(client, "#login-username").await.send_keys(role.as_str()).await.unwrap();
    find(client, "#login-password").await.send_keys(&password(role)).await.unwrap();
    find(client, "#login-submit").await.click().await.unwrap();
    find(client, "header#top:not([hidden])").await;
}

pub(crate) async fn log_out(client: &Client) {
    find(client, "#logout").await.click().await.unwrap();
    find(client, "#login-form").await;
}

/// Clicks a button that opens the confirmation dialog, then confirms.
pub(crate) async fn confirmed_click(client: &Client, css: &str) {
    find(client, css).await.click().await.unwrap();
    find(client, "dialog#confirm[open] #confirm-ok").await.click().await.unwrap();
    wait_js(client, "!document.getElementById('confirm').open").await;
}

pub(crate) async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let dir = workspace_root().join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

async fn drone_lat(client: &Client) -> String {
    let marker = find(client, ".drone-icon[data-drone-id='d1']").await;
    marker.attr("data-lat").await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let auth = AuthService::open(&dir.path().join("users.db"), AuthConfig::default()).unwrap();
    for role in [Role::Operator, Role::Reviewer, Role::Viewer] {
        auth.add_user(role.as_str(), &password(role), role).unwrap();
    }
    let backend = Arc::new(DemoBackend::new());
    let shutdown = CancellationToken::new();
    let state = AppState::new(backend.clone(), auth, ConsoleSettings::default(), shutdown.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(serve(listener, state));

    let (_driver, driver_port) = chromedriver().await;
    let client = browser(driver_port, &dir.path().join("chromium-profile")).await;

    // Operator: the live map shows the fleet.
    log_in(&client, &base, Role::Operator).await;
    find(&client, "#live-map .grid-cell").await;
    let start_lat = drone_lat(&client).await;

    // The language switch turns the UI Chinese and back.
    find(&client, "#lang-switch").await.select_by_value("zh-CN").await.unwrap();
    wait_js(&client, "document.querySelector(\"#nav a[data-page='map']\").textContent === '实时地图'").await;
    find(&client, "#lang-switch").await.select_by_value("en").await.unwrap();
    wait_js(&client, "document.querySelector(\"#nav a[data-page='map']\").textContent === 'Live map'").await;

    // Plan two cells, upload, arm (d2's low battery refuses), take off and start.
    client.goto(&format!("{base}#/plan")).await.unwrap();
    find(&client, "path.grid-cell[data-cell-id='G-01']").await.click().await.unwrap();
    find(&client, "path.grid-cell[data-cell-id='G-02']").await.click().await.unwrap();
    wait_js(&client, "document.getElementById('plan-cells').textContent === 'G-01, G-02'").await;
    find(&client, "#plan-submit").await.click().await.unwrap();
    find(&client, "#plan-summary p").await;
    find(&client, "path.plan-route").await;
    confirmed_click(&client, "#plan-upload").await;
    find(&client, "#fly-answers li.ok").await;
    confirmed_click(&client, "#cmd-arm").await;
    let refused = find(&client, "#fly-answers li.refused[data-drone-id='d2']").await.text().await.unwrap();
    assert!(refused.contains("Battery"), "a refused arm says why: {refused}");
    find(&client, "#fly-target").await.select_by_value("d1").await.unwrap();
    // Each answer replaces the last: wait for this command's own answer before going on.
    confirmed_click(&client, "#cmd-takeoff").await;
    wait_js(&client, &answer_is("d1", "taking off")).await;
    confirmed_click(&client, "#cmd-start").await;
    wait_js(&client, &answer_is("d1", "mission started")).await;
    for _ in 0..90 {
        backend.step(Duration::from_secs(1));
    }
    find(&client, "#mission-progress p.mission-flying[data-drone-id='d1']").await;
    wait_js(&client, "!/ 0\\//.test(document.querySelector(\"#mission-progress p[data-drone-id='d1']\").textContent)")
        .await;
    screenshot(&client, "planner.png").await;

    // Back on the live map the marker has moved, and a lost link turns the other drone stale.
    client.goto(&format!("{base}#/map")).await.unwrap();
    find(&client, "#live-map .grid-cell").await;
    for _ in 0..10 {
        backend.step(Duration::from_secs(1));
    }
    find(&client, &format!(".drone-icon[data-drone-id='d1']:not([data-lat='{start_lat}'])")).await;
    backend.set_link("d2", LinkState::Lost).unwrap();
    find(&client, ".drone-icon.stale[data-drone-id='d2']").await;
    find(&client, "path.route-done").await;
    screenshot(&client, "live-map.png").await;
    log_out(&client).await;

    // Reviewer: the most severe hazard first; Y confirms it, the verdict reaches the backend, the next comes up.
    log_in(&client, &base, Role::Reviewer).await;
    client.goto(&format!("{base}#/review")).await.unwrap();
    find(&client, "#rq-panel[data-hazard-id='h-1'] #rq-image img").await;
    find(&client, "#rq-image .box").await;
    wait_js(&client, "document.querySelector('#rq-image img').complete && document.querySelector('#rq-crop').complete")
        .await;
    screenshot(&client, "review-queue.png").await;
    let y =
        KeyActions::new("keyboard".to_owned()).then(KeyAction::Down { value: 'y' }).then(KeyAction::Up { value: 'y' });
    client.perform_actions(y).await.unwrap();
    find(&client, "#rq-panel:not([data-hazard-id='h-1'])").await;
    let reviews = backend.reviews();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!((reviews[0].hazard_id.as_str(), reviews[0].reviewer.as_str()), ("h-1", "reviewer"));
    assert_eq!(reviews[0].verdict, Verdict::Confirm);

    // Incidents: filter by kind; the confirmed fire is listed and the exports carry the same filter.
    client.goto(&format!("{base}#/incidents")).await.unwrap();
    find(&client, "#inc-rows tr").await;
    find(&client, "select#kind").await.select_by_value("fire").await.unwrap();
    find(&client, "#inc-filters button[type='submit']").await.click().await.unwrap();
    wait_js(&client, "document.querySelectorAll('#inc-rows tr').length === 1").await;
    find(&client, "#inc-rows tr.review-confirmed[data-hazard-id='h-1']").await;
    let csv = find(&client, "#export-csv").await.attr("href").await.unwrap().unwrap();
    assert_eq!(csv, "/api/export/hazards.csv?kind=fire");
    log_out(&client).await;

    // Viewer: no planner link, the planner route falls back to the map, and direct API calls are refused.
    log_in(&client, &base, Role::Viewer).await;
    find(&client, "#nav a[data-page='plan'][hidden]").await;
    client.goto(&format!("{base}#/plan")).await.unwrap();
    find(&client, "main#view[data-page='map'] #live-map").await;
    let statuses = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             (async () => {
               const session = await (await fetch('/api/session')).json();
               const post = (path, body) => fetch(path, { method: 'POST', headers: {
                 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token }, body: JSON.stringify(body) })
                 .then((r) => r.status);
               const out = [];
               for (const command of ['arm', 'start', 'pause', 'resume', 'rtl', 'land']) {
                 out.push(await post('/api/commands', { command }));
               }
               out.push(await post('/api/commands', { command: 'takeoff', altitude_rel_m: 20 }));
               out.push(await post('/api/missions/plan', { cell_ids: ['G-01'], gsd_cm_per_px: 2 }));
               out.push(await post('/api/missions/plan-1/upload'));
               out.push(await post('/api/review/claim'));
               done(out);
             })();",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(statuses, json!([403, 403, 403, 403, 403, 403, 403, 403, 403, 403]));

    client.close().await.unwrap();
    shutdown.cancel();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
}
