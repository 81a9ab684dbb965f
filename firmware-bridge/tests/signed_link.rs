//! MAVLink 2 signing on a real `udpin` link: a vehicle signing with the right key is discovered and answered
//! with signed packets; unsigned and wrongly signed vehicles are dropped and counted, never discovered.
//! The vehicles sign with the `mavlink` crate's own writer, not the bridge's code.

use std::time::Duration;

use firmware_bridge::link::LinkConfig;
use firmware_bridge::signing::SigningKey;
use firmware_bridge::{BridgeConfig, BridgeHandle};
use mavlink::dialects::ardupilotmega::{HEARTBEAT_DATA, MavAutopilot, MavMessage, MavType};
use mavlink::{MavHeader, MavlinkReader, SigningConfig, SigningData};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const WAIT: Duration = Duration::from_secs(10);

fn heartbeat() -> MavMessage {
    MavMessage::HEARTBEAT(HEARTBEAT_DATA {
        mavtype: MavType::MAV_TYPE_QUADROTOR,
        autopilot: MavAutopilot::MAV_AUTOPILOT_PX4,
        ..HEARTBEAT_DATA::default()
    })
}

fn encode(sysid: u8, seq: u8, signing: Option<&SigningData>) -> Vec<u8> {
    let mut out = Vec::new();
    let header = MavHeader { system_id: u32::from(sysid), component_id: 1, sequence: seq };
    mavlink::write_v2_msg_signed(&mut out, header, &heartbeat(), signing).expect("encode");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_correctly_signed_vehicles_get_through() {
    let key = SigningKey::from_passphrase("patrol squad 7");
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let mut link = LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap());
    link.signing_key = Some(key.clone());
    let bridge = BridgeHandle::start(BridgeConfig::new(link), &tracker, cancel.clone()).await.unwrap();
    let target = bridge.local_addr().unwrap();

    let good = SigningData::from_config(SigningConfig::new(*key.as_bytes(), 3, true, false));
    let wrong_key = SigningKey::from_passphrase("guess");
    let bad = SigningData::from_config(SigningConfig::new(*wrong_key.as_bytes(), 3, true, false));

    let unsigned_vehicle = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let forged_vehicle = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let signed_vehicle = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    unsigned_vehicle.send_to(&encode(2, 0, None), target).await.unwrap();
    forged_vehicle.send_to(&encode(3, 0, Some(&bad)), target).await.unwrap();
    let replayed = encode(1, 0, Some(&good));
    signed_vehicle.send_to(&replayed, target).await.unwrap();

    let drone = bridge.wait_for_vehicle(1, WAIT).await.unwrap();
    assert_eq!(drone.state().autopilot, firmware_bridge::mode::AutopilotKind::Px4);
    // The same signed packet again is a replay.
    signed_vehicle.send_to(&replayed, target).await.unwrap();

    // Everything the bridge sends the signed vehicle (rate requests, its own heartbeat) verifies with the key.
    let mut buf = vec![0u8; 512];
    let verifier = SigningData::from_config(SigningConfig::new(*key.as_bytes(), 0, false, false));
    loop {
        let (n, _) = tokio::time::timeout(WAIT, signed_vehicle.recv_from(&mut buf)).await.unwrap().unwrap();
        let mut reader = MavlinkReader::new(&buf[..n]);
        let (_, msg) = reader.read_any_message_signed::<MavMessage>(Some(&verifier)).expect("signed by the bridge");
        if matches!(msg, MavMessage::HEARTBEAT(h) if h.mavtype == MavType::MAV_TYPE_GCS) {
            break;
        }
    }

    // Wait until all four packets are accounted for: 1 accepted, 1 unsigned, 2 bad (forged + replay).
    let counters = bridge.link_counters();
    let wait = async {
        loop {
            let s = counters.snapshot();
            if s.rx_packets + s.unsigned_dropped + s.bad_signature_dropped >= 4 {
                return s;
            }
            tokio::task::yield_now().await;
        }
    };
    let stats = tokio::time::timeout(WAIT, wait).await.unwrap();
    assert_eq!((stats.rx_packets, stats.unsigned_dropped, stats.bad_signature_dropped), (1, 1, 2), "{stats:?}");
    assert!(bridge.vehicle(2).is_none() && bridge.vehicle(3).is_none());

    cancel.cancel();
    tracker.close();
    tokio::time::timeout(WAIT, tracker.wait()).await.unwrap();
}
