//! Issue 2: several drones on one UDP port each receive their own replies. Five simulated drones (ArduPilot and
//! PX4 personalities) send from their own sockets to one `udpin` port of the bridge; each is commanded into a
//! different mode and each must end up in exactly the mode it was sent, acknowledged by itself.

use std::time::Duration;

use firmware_bridge::link::LinkConfig;
use firmware_bridge::mode::{AutopilotKind, FlightMode};
use firmware_bridge::sim::{PersonalityMix, SimConfig, SimFleet, SimLink};
use firmware_bridge::{BridgeConfig, BridgeHandle};
use mission_planner::geo::GeoPoint;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const DRONES: u8 = 5;
const WAIT: Duration = Duration::from_secs(20);

/// The mode each drone is sent: all different, so a reply or command routed to the wrong drone shows.
fn mode_for(system_id: u8) -> FlightMode {
    [
        FlightMode::Loiter,
        FlightMode::ReturnToLaunch,
        FlightMode::Land,
        FlightMode::PositionHold,
        FlightMode::AltitudeHold,
    ][usize::from(system_id - 1) % 5]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_simulated_drones_on_one_udp_port_each_get_their_own_replies() {
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let link = LinkConfig::new("udpin:127.0.0.1:0".parse().expect("address"));
    let bridge = BridgeHandle::start(BridgeConfig::new(link), &tracker, cancel.clone()).await.expect("bridge");
    let gcs = bridge.local_addr().expect("bound");

    let homes = [GeoPoint::new(22.5395, 113.8795)];
    let config = SimConfig::fleet(usize::from(DRONES), PersonalityMix::Mixed, &homes, &SimLink::UdpOut { gcs })
        .expect("fleet config");
    let fleet = SimFleet::spawn(config, cancel.child_token()).await.expect("fleet");
    let ports: std::collections::BTreeSet<_> = fleet.drones().iter().map(|d| d.local_addr).collect();
    assert_eq!(ports.len(), usize::from(DRONES), "each simulated drone has its own socket");

    let mut vehicles = Vec::new();
    for id in 1..=DRONES {
        vehicles.push(bridge.wait_for_vehicle(id, WAIT).await.expect("vehicle discovered"));
    }
    let kinds: Vec<_> = vehicles.iter().map(|v| v.state().autopilot).collect();
    assert!(kinds.contains(&AutopilotKind::ArduPilot) && kinds.contains(&AutopilotKind::Px4), "{kinds:?}");

    // Command all five at once: every ACK must come back to the command that asked for it.
    let results = futures::future::join_all(vehicles.iter().map(|v| v.set_mode(mode_for(v.state().system_id)))).await;
    for (vehicle, result) in vehicles.iter().zip(&results) {
        assert!(result.is_ok(), "drone {}: {result:?}", vehicle.state().system_id);
    }
    for vehicle in &vehicles {
        let id = vehicle.state().system_id;
        let mut state = vehicle.watch();
        tokio::time::timeout(WAIT, state.wait_for(|s| s.mode == mode_for(id)))
            .await
            .unwrap_or_else(|_| panic!("drone {id} never reported {:?}", mode_for(id)))
            .expect("state channel open");
    }

    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}
