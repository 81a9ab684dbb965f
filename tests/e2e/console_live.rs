//! The web console over the real station (`StationBackend`) in headless Chromium: one simulated ArduPilot drone
//! over the demo world, a scripted detector that flags a fire in the first photo, and a private Mosquitto as the
//! external broker. The operator sees the drone marker move, plans two cells, uploads, starts and sees the
//! progress; the reviewer confirms the hazard with `Y` and the verdict arrives on `patrol/reviews` at the broker;
//! a viewer is refused every operator action, in the page and by direct API call, and sees a station alarm as a
//! banner until it clears. Screenshots go to
//! `docs/screenshots/station-*.png`.

// Helpers outside #[test] functions panic on purpose: a panic is how a test reports failure.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use e2e::{Mosquitto, free_port, subscribe, wait_subscribed, workspace_root};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use firmware_bridge::sim::{CameraConfig, PersonalityMix, SimConfig, SimFleet, SimLink, WorldRaster};
use ground_station::auth::Role;
use ground_station::config::BrokerSettings;
use ground_station::demo::{self, DemoOptions};
use ground_station::hazard::{AlarmKind, ReviewEvent, Verdict};
use ground_station::station::patrols::PlannerInputs;
use ground_station::station::{StartOptions, Station};
use ground_station::web::station_backend::hazard_token;
use inference::{BoxPx, HazardKind, ScriptedDetector};
use mission_planner::patrol;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::console::{
    answer_is, browser, chromedriver, confirmed_click, find, log_in, log_out, password, screenshot, wait_js,
};

/// Waits this long for the drone, the sortie and the first hazard (the sim runs 4x faster than wall time).
const FLIGHT_WAIT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_over_the_running_station() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Mosquitto::start(dir.path(), port);
    let (mut reviews, subscriber) = subscribe(port, "command-center", "patrol/reviews");
    wait_subscribed(port, "patrol/reviews", &mut reviews).await;

    // The station's settings are the demo's: the sample district, its planner and one drone on a UDP link.
    let udp_port = free_port();
    let web = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let options = DemoOptions {
        data_dir: workspace_root().join("data"),
        work_dir: dir.path().join("station"),
        drones: 1,
        speedup: 4.0,
        broker: None,
        web: Some(web),
        cells: Vec::new(),
        time_limit: FLIGHT_WAIT,
        progress: false,
        model: None,
    };
    let broker = BrokerSettings::External { host: "127.0.0.1".into(), port, tls: None };
    let mut settings = demo::settings(&options, &format!("udpin:127.0.0.1:{udp_port}"), &broker).unwrap();
    // The scripted detector flags a single photo: announce at the first sighting.
    settings.tracker.confirm_photos = 1;
    let planner = settings.planner.clone().unwrap();
    let inputs = PlannerInputs::load(&planner, settings.district.cells.as_ref().unwrap()).unwrap();
    let cells: Vec<String> = inputs.cells.iter().filter(|c| c.demo).take(2).map(|c| c.id.clone()).collect();
    assert_eq!(cells.len(), 2, "the sample district marks demo cells");

    // The simulated drone stands at the launch point the planner picks for these cells.
    let dry = patrol::plan_patrol(&inputs.request(&cells, 1, None).unwrap()).unwrap();
    let launch = &dry.sorties[0].launch_id;
    let home = inputs.launch_points.iter().find(|l| &l.id == launch).unwrap().point;
    let world_dir = workspace_root().join("data/demo-world");
    let sim_link: SimLink = format!("udpout:127.0.0.1:{udp_port}").parse().unwrap();
    let mut sim = SimConfig::fleet(1, PersonalityMix::ArduPilot, &[home], &sim_link).unwrap();
    sim.drones[0].camera = CameraConfig::load(&world_dir.join("sim-camera.toml")).unwrap();
    sim.speedup = 4.0;
    sim.seed = 7;
    sim.http_bind = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    sim.world = Some(Arc::new(WorldRaster::load(&world_dir.join("world.jpg")).unwrap()));
    let sim_cancel = CancellationToken::new();
    let sim_fleet = SimFleet::spawn(sim, sim_cancel.clone()).await.unwrap();

    // The first photo shows a fire (scripted); the others show nothing.
    let fire = ScriptedDetector::detection(
        "fire",
        HazardKind::Fire,
        0.9,
        BoxPx { x1: 280.0, y1: 280.0, x2: 360.0, y2: 360.0 },
    );
    let detector = ScriptedDetector::new(vec![vec![fire]]);
    let station =
        Station::start(settings, StartOptions { detector: Some(Box::new(detector)), web: true }).await.unwrap();
    for role in [Role::Operator, Role::Reviewer, Role::Viewer] {
        station.auth.add_user(role.as_str(), &password(role), role).unwrap();
    }
    let drone = station.fleet.drones()[0].clone();
    let vehicle = station.fleet.bridges()[drone.bridge].wait_for_vehicle(drone.system_id, FLIGHT_WAIT).await.unwrap();
    let mut state = vehicle.watch();
    tokio::time::timeout(FLIGHT_WAIT, state.wait_for(|s| s.home.is_some() && s.position.is_some()))
        .await
        .unwrap()
        .unwrap();
    let base = format!("http://{}/", station.web_addr.unwrap());

    let (_driver, driver_port) = chromedriver().await;
    let client = browser(driver_port, &dir.path().join("chromium-profile")).await;
    let marker = format!(".drone-icon[data-drone-id='{}']", drone.id);

    // Operator: the drone on the live map, from the station's own fleet.
    log_in(&client, &base, Role::Operator).await;
    find(&client, "#live-map .grid-cell").await;
    let start_lat = find(&client, &marker).await.attr("data-lat").await.unwrap().unwrap();

    // Plan two cells, upload, start; the progress shows up.
    client.goto(&format!("{base}#/plan")).await.unwrap();
    for cell in &cells {
        // The sample cells are small at this zoom and the drone marker may cover one: click the cell itself.
        let css = format!("path.grid-cell[data-cell-id='{cell}']");
        find(&client, &css).await;
        let click = "document.querySelector(arguments[0]).dispatchEvent(new MouseEvent('click', { bubbles: true }));";
        client.execute(click, vec![json!(css)]).await.unwrap();
    }
    wait_js(&client, &format!("document.getElementById('plan-cells').textContent === '{}'", cells.join(", "))).await;
    find(&client, "#plan-submit").await.click().await.unwrap();
    find(&client, "#plan-summary p").await;
    find(&client, "path.plan-route").await;
    confirmed_click(&client, "#plan-upload").await;
    find(&client, &format!("#fly-answers li.ok[data-drone-id='{}']", drone.id)).await;
    find(&client, "#fly-target").await.select_by_value(&drone.id).await.unwrap();
    confirmed_click(&client, "#cmd-start").await;
    // Starting arms first, and the autopilot refuses until its position estimate settles: wait for the answer.
    wait_until(&client, &answer_is(&drone.id, "mission started")).await;
    let flying = format!("#mission-progress p.mission-flying[data-drone-id='{}']", drone.id);
    client.wait().at_most(FLIGHT_WAIT).for_element(fantoccini::Locator::Css(&flying)).await.unwrap();
    let progressed = format!(
        "!/ 0\\//.test(document.querySelector(\"#mission-progress p[data-drone-id='{}']\").textContent)",
        drone.id
    );
    wait_until(&client, &progressed).await;
    screenshot(&client, "station-planner.png").await;

    // The live map: the marker has left its launch point.
    client.goto(&format!("{base}#/map")).await.unwrap();
    find(&client, "#live-map .grid-cell").await;
    let moved = format!("{marker}:not([data-lat='{start_lat}'])");
    client.wait().at_most(FLIGHT_WAIT).for_element(fantoccini::Locator::Css(&moved)).await.unwrap();
    screenshot(&client, "station-live-map.png").await;
    log_out(&client).await;

    // The scripted fire becomes a hazard once the first photo is through the pipeline.
    let hazard = tokio::time::timeout(FLIGHT_WAIT, async {
        loop {
            if let Some(hazard) = station.hazards.open_hazards().await.unwrap().into_iter().next() {
                break hazard;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .expect("the scripted fire never became a hazard");
    let token = hazard_token(&hazard.id).unwrap();

    // Reviewer: the hazard with its photo; Y confirms it and the verdict reaches the broker.
    log_in(&client, &base, Role::Reviewer).await;
    client.goto(&format!("{base}#/review")).await.unwrap();
    find(&client, &format!("#rq-panel[data-hazard-id='{token}'] #rq-image img")).await;
    find(&client, "#rq-image .box").await;
    wait_js(
        &client,
        "document.querySelector('#rq-image img').complete && document.querySelector('#rq-image img').naturalWidth > 0",
    )
    .await;
    screenshot(&client, "station-review-queue.png").await;
    let y =
        KeyActions::new("keyboard".to_owned()).then(KeyAction::Down { value: 'y' }).then(KeyAction::Up { value: 'y' });
    client.perform_actions(y).await.unwrap();
    // It was the only pending hazard: the queue is empty now.
    find(&client, "#rq-empty:not([hidden])").await;
    let verdict = tokio::time::timeout(FLIGHT_WAIT, async {
        loop {
            let (payload, _) = reviews.recv().await.expect("the subscriber stopped");
            if let Ok(review) = serde_json::from_slice::<ReviewEvent>(&payload) {
                break review;
            }
        }
    })
    .await
    .expect("no verdict on patrol/reviews");
    assert_eq!(
        (verdict.hazard_id.as_str(), verdict.verdict, verdict.reviewer.as_str()),
        (hazard.id.as_str(), Verdict::Confirmed, "reviewer")
    );
    log_out(&client).await;

    // Viewer: no planner in the page, and every operator action refused by the server.
    log_in(&client, &base, Role::Viewer).await;
    find(&client, "#nav a[data-page='plan'][hidden]").await;
    let statuses = client
        .execute_async(
            "const [cells, done] = [arguments[0], arguments[arguments.length - 1]];
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
               out.push(await post('/api/missions/plan', { cell_ids: cells, gsd_cm_per_px: 2 }));
               out.push(await post('/api/missions/p1/upload'));
               out.push(await post('/api/review/claim'));
               done(out);
             })();",
            vec![json!(cells)],
        )
        .await
        .unwrap();
    assert_eq!(statuses, json!([403, 403, 403, 403, 403, 403, 403, 403, 403, 403]));

    // A station alarm (the evidence disk): a banner on every page, with the translated title, live and after a
    // reload (from the fleet snapshot); gone when the alarm clears.
    station.alarms.raise(AlarmKind::EvidenceStorage, "Cannot save evidence images (test).").await;
    let banner = "#alarms:not([hidden]) p[data-alarm='evidence_storage']";
    let title = find(&client, &format!("{banner} strong")).await.text().await.unwrap();
    let titles: Vec<String> = ["en", "zh-CN"]
        .iter()
        .map(|lang| {
            let path = workspace_root().join(format!("ground-station/assets/i18n/{lang}.json"));
            let strings: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            strings["alarm.evidence_storage"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(titles.contains(&title), "banner title {title:?} is not a translation");
    client.refresh().await.unwrap();
    find(&client, &format!("{banner} .detail")).await;
    station.alarms.clear(AlarmKind::EvidenceStorage, "Evidence images are saved again.").await;
    find(&client, "#alarms[hidden]").await;

    client.close().await.unwrap();
    subscriber.abort();
    station.shutdown().await;
    sim_cancel.cancel();
    sim_fleet.wait().await;
}

/// Polls a JavaScript expression for up to [`FLIGHT_WAIT`].
async fn wait_until(client: &fantoccini::Client, expression: &str) {
    let script = format!("return Boolean({expression});");
    let check = async {
        loop {
            if client.execute(&script, vec![]).await.unwrap() == serde_json::Value::Bool(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(FLIGHT_WAIT, check).await.unwrap_or_else(|_| panic!("timed out waiting for {expression}"));
}
