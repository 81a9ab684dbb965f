//! Interop with MAVLink implementations we did not write: pymavlink and MAVSDK fly `patrol sim`'s drones.
//!
//! Each test starts the simulator in-process (its drones send udpout-style to a free local port) and a Python
//! peer from the test virtual environment that listens there; the peer exits non-zero with a `FAIL:` line on
//! any deviation, and prints one `OK ...` line with what it saw.

use std::process::Stdio;
use std::time::Duration;

use firmware_bridge::sim::{PersonalityMix, SimConfig, SimFleet, SimLink};
use mission_planner::geo::GeoPoint;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// A UDP port that was free a moment ago, for the peer to listen on.
fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    socket.local_addr().expect("local address").port()
}

/// Runs a peer script to completion (bounded) and returns its stdout; fails the test with its stderr otherwise.
async fn run_peer(script: &str, args: &[String], limit: Duration) -> String {
    let mut command = Command::new(e2e::python());
    command.arg(e2e::peer_script(script)).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = command.spawn().expect("start the Python peer");
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} ran past {limit:?}"))
        .expect("wait for the Python peer");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    stdout
}

async fn start_sim(
    mix: PersonalityMix,
    port: u16,
    speedup: f64,
    position_estimate_after: Duration,
) -> (SimFleet, CancellationToken) {
    let link = SimLink::UdpOut { gcs: ([127, 0, 0, 1], port).into() };
    let mut config = SimConfig::fleet(1, mix, &[GeoPoint::new(22.55, 113.88)], &link).expect("fleet config");
    config.speedup = speedup;
    config.drones[0].vehicle.position_estimate_after = position_estimate_after;
    config.seed = 7;
    let token = CancellationToken::new();
    let fleet = SimFleet::spawn(config, token.clone()).await.expect("start the simulator");
    (fleet, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymavlink_gcs_flies_a_ten_item_mission_on_the_ardupilot_personality() {
    let port = free_udp_port();
    // 100 sim seconds (4 s wall) without a position estimate: the GCS must wait out the pre-arm refusals.
    let (fleet, token) = start_sim(PersonalityMix::ArduPilot, port, 25.0, Duration::from_secs(100)).await;
    let args = ["--listen".to_string(), format!("127.0.0.1:{port}"), "--timeout".into(), "60".into()];
    let stdout = run_peer("pymavlink_gcs.py", &args, Duration::from_secs(90)).await;
    println!("{stdout}");
    assert!(stdout.contains("OK reached=[1, 2, 3, 4, 5, 6, 7, 8, 9]"), "{stdout}");
    assert!(stdout.contains("request=MISSION_REQUEST"), "{stdout}");
    assert!(stdout.contains("prearm_text=['PreArm: Need Position Estimate']"), "{stdout}");
    assert!(!stdout.contains("prearm_refusals=0 "), "{stdout}");
    let stats = fleet.drones()[0].stats.snapshot();
    assert!(stats.rx_messages > 20, "{stats:?}");
    token.cancel();
    fleet.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mavsdk_mission_raw_uploads_and_flies_on_the_px4_personality() {
    let port = free_udp_port();
    let (fleet, token) = start_sim(PersonalityMix::Px4, port, 20.0, Duration::from_secs(2)).await;
    let args = ["--listen".to_string(), port.to_string(), "--timeout".into(), "60".into()];
    let stdout = run_peer("mavsdk_mission_raw.py", &args, Duration::from_secs(90)).await;
    println!("{stdout}");
    assert!(stdout.contains("OK items=5"), "{stdout}");
    token.cancel();
    fleet.wait().await;
}
