//! Five vehicles share one `udpin` port; each must get its own command replies.
//!
//! The fake vehicles are plain UDP sockets speaking MAVLink through the `mavlink` crate directly, so this
//! tests the bridge against an implementation that shares none of its framing or routing code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use firmware_bridge::link::LinkConfig;
use firmware_bridge::mode::AutopilotKind;
use firmware_bridge::{BridgeConfig, BridgeHandle, VehicleEventKind};
use mavlink::dialects::ardupilotmega::{
    COMMAND_ACK_DATA, HEARTBEAT_DATA, MavAutopilot, MavMessage, MavModeFlag, MavResult, MavType,
};
use mavlink::{MavHeader, MavlinkReader};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const VEHICLES: u8 = 5;
const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Tally {
    /// COMMAND_LONGs addressed to this vehicle.
    mine: AtomicU32,
    /// COMMAND_LONGs addressed to another vehicle that reached this socket: routing bugs.
    misrouted: AtomicU32,
}

fn encode(sysid: u8, seq: u8, msg: &MavMessage) -> Vec<u8> {
    let mut out = Vec::new();
    let header = MavHeader { system_id: u32::from(sysid), component_id: 1, sequence: seq };
    mavlink::write_v2_msg(&mut out, header, msg).expect("encode");
    out
}

/// A vehicle: heartbeats at 10 Hz, ACKs every COMMAND_LONG addressed to it, counts the ones that are not.
async fn fake_vehicle(sysid: u8, bridge: SocketAddr, tally: Arc<Tally>, cancel: CancellationToken) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let heartbeat = MavMessage::HEARTBEAT(HEARTBEAT_DATA {
        custom_mode: 5,
        mavtype: MavType::MAV_TYPE_QUADROTOR,
        autopilot: MavAutopilot::MAV_AUTOPILOT_ARDUPILOTMEGA,
        base_mode: MavModeFlag::MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
        ..HEARTBEAT_DATA::default()
    });
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut buf = vec![0u8; 2048];
    let mut seq = 0u8;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {
                seq = seq.wrapping_add(1);
                socket.send_to(&encode(sysid, seq, &heartbeat), bridge).await.expect("send");
            }
            received = socket.recv_from(&mut buf) => {
                let (n, _) = received.expect("recv");
                let mut reader = MavlinkReader::new(&buf[..n]);
                while let Ok((_, msg)) = reader.read_any_message::<MavMessage>() {
                    let MavMessage::COMMAND_LONG(cmd) = msg else { continue };
                    if cmd.target_system != sysid {
                        tally.misrouted.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    tally.mine.fetch_add(1, Ordering::Relaxed);
                    let ack = MavMessage::COMMAND_ACK(COMMAND_ACK_DATA {
                        command: cmd.command,
                        result: MavResult::MAV_RESULT_ACCEPTED,
                        target_system: 255,
                        target_component: 190,
                        ..COMMAND_ACK_DATA::default()
                    });
                    seq = seq.wrapping_add(1);
                    socket.send_to(&encode(sysid, seq, &ack), bridge).await.expect("send");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_vehicles_on_one_udp_port_each_get_their_own_acks() {
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let link = LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap());
    let bridge = BridgeHandle::start(BridgeConfig::new(link), &tracker, cancel.clone()).await.unwrap();
    let bridge_addr = bridge.local_addr().unwrap();
    let mut events = bridge.subscribe();

    let tallies: Vec<Arc<Tally>> = (0..VEHICLES).map(|_| Arc::new(Tally::default())).collect();
    for (i, tally) in tallies.iter().enumerate() {
        let sysid = u8::try_from(i).unwrap() + 1;
        tracker.spawn(fake_vehicle(sysid, bridge_addr, tally.clone(), cancel.clone()));
    }

    let mut handles = Vec::new();
    for sysid in 1..=VEHICLES {
        handles.push(bridge.wait_for_vehicle(sysid, WAIT).await.unwrap());
    }
    // Every vehicle armed at the same time: each ACK must reach the right actor.
    let results = futures::future::join_all(handles.iter().map(|v| v.arm())).await;
    for (v, result) in handles.iter().zip(&results) {
        assert!(result.is_ok(), "vehicle {}: {result:?}", v.system_id());
        assert_eq!(v.state().autopilot, AutopilotKind::ArduPilot);
    }
    // And a second round, sequential, for good measure.
    for v in &handles {
        v.disarm().await.unwrap();
    }
    let mut discovered = Vec::new();
    while discovered.len() < usize::from(VEHICLES) {
        let event = tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap();
        if matches!(event.kind, VehicleEventKind::Discovered { .. }) {
            discovered.push(event.system_id);
        }
    }
    discovered.sort_unstable();
    assert_eq!(discovered, (1..=VEHICLES).collect::<Vec<_>>());

    for (i, tally) in tallies.iter().enumerate() {
        assert_eq!(tally.misrouted.load(Ordering::Relaxed), 0, "vehicle {} got another's commands", i + 1);
        // At least arm + disarm (plus the telemetry-rate requests).
        assert!(tally.mine.load(Ordering::Relaxed) >= 2, "vehicle {}", i + 1);
    }
    let stats = bridge.link_stats();
    assert_eq!((stats.crc_errors, stats.parse_errors, stats.unroutable), (0, 0, 0));

    cancel.cancel();
    tracker.close();
    tokio::time::timeout(WAIT, tracker.wait()).await.unwrap();
}
