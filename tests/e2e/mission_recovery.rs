//! The station dies mid-sortie while the drone flies on, and the next start takes the sortie back from storage.
//!
//! Station 1 runs on its own Tokio runtime, which is torn down with no shutdown once the sortie is under way:
//! from then on it writes nothing, as after SIGKILL or a power cut (what it committed before stays; the daemon
//! test, `daemon.rs`, kills a real process for the event outbox). The simulated ArduPilot drone keeps flying its
//! uploaded mission. Station 2 opens the same database: the sortie is listed again as running under its id, its
//! drone's frames are tagged with it, it is followed to the landing and stored as completed, and the next plan
//! does not reuse its id.

// Test helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use e2e::{Mosquitto, free_port, workspace_root};
use firmware_bridge::sim::{CameraConfig, PersonalityMix, SimConfig, SimFleet, SimLink, WorldRaster};
use ground_station::config::BrokerSettings;
use ground_station::demo::{self, DemoOptions};
use ground_station::hazard::MissionState;
use ground_station::station::patrols::PlannerInputs;
use ground_station::station::{StartOptions, Station};
use inference::ScriptedDetector;
use mission_planner::patrol;
use tokio_util::sync::CancellationToken;

/// Longest wait for the drone, the sortie's progress and its landing (the sim runs 8x faster than wall time).
const FLIGHT_WAIT: Duration = Duration::from_secs(300);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A station whose detector sees nothing (this test is about the sortie, not the pictures).
async fn start_station(settings: ground_station::config::Settings) -> Station {
    let detector = ScriptedDetector::new(Vec::new());
    Station::start(settings, StartOptions { detector: Some(Box::new(detector)), web: false }).await.unwrap()
}

#[test]
fn a_sortie_running_when_the_station_died_is_resumed_and_completed_by_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Mosquitto::start(dir.path(), port);
    let udp_port = free_port();
    let options = DemoOptions {
        data_dir: workspace_root().join("data"),
        work_dir: dir.path().join("station"),
        drones: 1,
        speedup: 8.0,
        broker: None,
        web: None,
        cells: Vec::new(),
        time_limit: FLIGHT_WAIT,
        progress: false,
        model: None,
    };
    let broker = BrokerSettings::External { host: "127.0.0.1".into(), port, tls: None };
    let settings = demo::settings(&options, &format!("udpin:127.0.0.1:{udp_port}"), &broker).unwrap();
    let planner = settings.planner.clone().unwrap();
    let inputs = PlannerInputs::load(&planner, settings.district.cells.as_ref().unwrap()).unwrap();
    let cell = inputs.cells.iter().find(|c| c.demo).unwrap().id.clone();
    let dry = patrol::plan_patrol(&inputs.request(std::slice::from_ref(&cell), 1, None).unwrap()).unwrap();
    let home = inputs.launch_points.iter().find(|l| l.id == dry.sorties[0].launch_id).unwrap().point;

    // The drone lives on the test's runtime, through both stations.
    let main = runtime();
    let sim_cancel = CancellationToken::new();
    let sim_fleet = main.block_on(async {
        let world_dir = workspace_root().join("data/demo-world");
        let link: SimLink = format!("udpout:127.0.0.1:{udp_port}").parse().unwrap();
        let mut sim = SimConfig::fleet(1, PersonalityMix::ArduPilot, &[home], &link).unwrap();
        sim.drones[0].camera = CameraConfig::load(&world_dir.join("sim-camera.toml")).unwrap();
        sim.speedup = 8.0;
        sim.seed = 11;
        sim.http_bind = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        sim.world = Some(Arc::new(WorldRaster::load(&world_dir.join("world.jpg")).unwrap()));
        SimFleet::spawn(sim, sim_cancel.clone()).await.unwrap()
    });

    // Station 1: plan one cell, fly it, and die once the drone is a few items into the mission.
    let doomed = runtime();
    let (mission_id, drone_id, station) = doomed.block_on(async {
        let station = start_station(settings.clone()).await;
        let drone = station.fleet.drones()[0].clone();
        let bridge = &station.fleet.bridges()[drone.bridge];
        let vehicle = bridge.wait_for_vehicle(drone.system_id, FLIGHT_WAIT).await.unwrap();
        let mut state = vehicle.watch();
        tokio::time::timeout(FLIGHT_WAIT, state.wait_for(|s| s.home.is_some() && s.position.is_some()))
            .await
            .unwrap()
            .unwrap();
        let plan = station.patrols.plan(std::slice::from_ref(&cell), &[], None).unwrap();
        assert_eq!(plan.plan_id, "p1");
        station.patrols.fly(&plan.plan_id).unwrap();
        let mission_id = plan.sorties[0].mission_id.clone();
        let under_way = async {
            loop {
                let runs = station.patrols.runs();
                let run = runs.iter().find(|r| r.mission_id == mission_id).unwrap();
                if run.state == MissionState::Running && run.current_item >= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(FLIGHT_WAIT, under_way).await.expect("the sortie never got under way");
        (mission_id, drone.id, station)
    });
    // No shutdown: every task of station 1 stops where it is.
    doomed.shutdown_background();
    drop(station);

    main.block_on(async {
        // Station 2 on the same database.
        let station = start_station(settings).await;
        let runs = station.patrols.runs();
        let run = runs.iter().find(|r| r.mission_id == mission_id).expect("the running sortie was not resumed");
        assert_eq!(
            (run.state, run.drone_id.as_str(), run.plan_id.as_str()),
            (MissionState::Running, drone_id.as_str(), "p1")
        );
        assert!(run.total_items > 2 && run.route.len() > 2, "resumed without its plan: {run:?}");
        assert_eq!(station.patrols.active_mission(&drone_id), Some(mission_id.clone()), "frames not tagged");

        tokio::time::timeout(FLIGHT_WAIT, station.patrols.wait_done(&mission_id))
            .await
            .expect("the resumed sortie never ended")
            .expect("the resumed sortie was aborted");
        let id = mission_id.clone();
        let stored = station.storage.call(move |db| db.mission(&id)).await.unwrap().unwrap();
        assert_eq!(stored.state, MissionState::Completed);
        assert_eq!(station.patrols.active_mission(&drone_id), None);

        // The next plan gets a new id, not the stored one's.
        let plan = station.patrols.plan(std::slice::from_ref(&cell), &[], None).unwrap();
        assert_eq!(plan.plan_id, "p2");

        station.shutdown().await;
        sim_cancel.cancel();
        sim_fleet.wait().await;
    });
}
