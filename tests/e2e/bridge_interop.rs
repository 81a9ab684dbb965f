//! Interop 3 of issue 2: our bridge drives a vehicle scripted in pymavlink that answers as ArduPilot does
//! (`tests/peers/scripted_ardupilot.py`): telemetry only after a rate request (and the old-ArduPilot way:
//! SET_MESSAGE_INTERVAL ignored, REQUEST_DATA_STREAM honoured), MISSION_REQUEST (not _INT) with home at seq 0,
//! arming refused with a STATUSTEXT until the EKF is ready, takeoff only in GUIDED.

use std::process::Stdio;
use std::time::Duration;

use firmware_bridge::error::CommandError;
use firmware_bridge::link::LinkConfig;
use firmware_bridge::mode::{AutopilotKind, FlightMode};
use firmware_bridge::vehicle::VehicleEvent;
use firmware_bridge::{BridgeConfig, BridgeHandle, VehicleEventKind};
use mission_planner::mission_item::{MissionItem, MissionKind, cmd};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const WAIT: Duration = Duration::from_secs(20);

/// The next event matching `pred`, within `WAIT`.
async fn next_event(
    events: &mut broadcast::Receiver<VehicleEvent>,
    mut pred: impl FnMut(&VehicleEventKind) -> bool,
) -> VehicleEventKind {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event.kind) => return event.kind,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event stream closed"),
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.expect("timed out waiting for an event")
}

fn mission() -> Vec<MissionItem> {
    let mut items = vec![MissionItem::command(cmd::NAV_TAKEOFF, [0.0; 4])];
    items[0].z = 20.0;
    for i in 0..8 {
        items.push(MissionItem::at(cmd::NAV_WAYPOINT, [0.0; 4], 473_977_000 + i * 1000, 85_456_000 + i * 500, 30.0));
    }
    items.push(MissionItem::command(cmd::NAV_RETURN_TO_LAUNCH, [0.0; 4]));
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_flies_a_scripted_ardupilot() {
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let link = LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap());
    let bridge = BridgeHandle::start(BridgeConfig::new(link), &tracker, cancel.clone()).await.unwrap();
    let port = bridge.local_addr().unwrap().port();
    let mut events = bridge.subscribe();

    let mut peer = tokio::process::Command::new(e2e::python())
        .arg(e2e::peer_script("scripted_ardupilot.py"))
        .args(["--connect", &format!("udpout:127.0.0.1:{port}"), "--legacy-streams", "--ekf-delay", "1.0"])
        .args(["--max-seconds", "60"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the pymavlink peer");

    let drone = bridge.wait_for_vehicle(1, WAIT).await.unwrap();
    assert_eq!(drone.state().autopilot, AutopilotKind::ArduPilot);

    // Telemetry flows only after REQUEST_DATA_STREAM: the peer ignores SET_MESSAGE_INTERVAL.
    let mut state = drone.watch();
    let with_position = tokio::time::timeout(WAIT, state.wait_for(|s| s.position.is_some() && s.gps.is_some()))
        .await
        .expect("no telemetry: REQUEST_DATA_STREAM fallback failed")
        .unwrap()
        .clone();
    assert!((with_position.position.unwrap().point.lat_deg - 47.3977).abs() < 1e-6);

    // Upload (the bridge prepends ArduPilot's home item), download (and strips it), compare.
    let items = mission();
    drone.upload(MissionKind::Mission, items.clone()).await.unwrap();
    let downloaded = drone.download(MissionKind::Mission).await.unwrap();
    assert_eq!(downloaded, items);

    // Arming is refused with the autopilot's reason until its EKF is ready.
    match drone.arm().await {
        Err(CommandError::Refused { reason: Some(reason), .. }) => assert!(reason.contains("PreArm"), "{reason}"),
        other => panic!("expected a refusal with a reason, got {other:?}"),
    }
    next_event(&mut events, |k| matches!(k, VehicleEventKind::StatusText { text, .. } if text.contains("using GPS")))
        .await;
    drone.arm().await.unwrap();
    tokio::time::timeout(WAIT, state.wait_for(|s| s.armed)).await.unwrap().unwrap();

    // Takeoff on ArduPilot goes through GUIDED (the peer refuses NAV_TAKEOFF in any other mode).
    drone.takeoff(20.0).await.unwrap();
    tokio::time::timeout(WAIT, state.wait_for(|s| s.mode == FlightMode::Guided)).await.unwrap().unwrap();

    // Fly: every item (seq 1..=10, after home at 0) reached.
    drone.start_mission().await.unwrap();
    let mut reached = Vec::new();
    while reached.len() < items.len() {
        if let VehicleEventKind::MissionItemReached { seq } =
            next_event(&mut events, |k| matches!(k, VehicleEventKind::MissionItemReached { .. })).await
        {
            reached.push(seq);
        }
    }
    assert_eq!(reached, (1..=u16::try_from(items.len()).unwrap()).collect::<Vec<_>>());

    drone.return_to_launch().await.unwrap();
    tokio::time::timeout(WAIT, state.wait_for(|s| !s.armed)).await.expect("never landed and disarmed").unwrap();

    let stats = bridge.link_stats();
    assert_eq!((stats.crc_errors, stats.parse_errors), (0, 0), "{stats:?}");

    cancel.cancel();
    tracker.close();
    tokio::time::timeout(WAIT, tracker.wait()).await.unwrap();
    peer.kill().await.ok();
}
