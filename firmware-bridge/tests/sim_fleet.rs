//! The simulated fleet over real UDP sockets: distinct system ids on one GCS port, replies to the right drone,
//! camera images served at the announced URL, and signing (spoofed, forged, stale and replayed commands refused).

#![allow(deprecated)]
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use firmware_bridge::signing::SigningKey;
use firmware_bridge::sim::{PersonalityMix, SimConfig, SimFleet, SimLink};
use mavlink::dialects::ardupilotmega::{COMMAND_LONG_DATA, MavCmd, MavMessage, MavModeFlag, MavResult};
use mavlink::{MAVLinkV2MessageRaw, MavHeader, MavlinkReader, SigningConfig, SigningData};
use mission_planner::geo::GeoPoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

async fn gcs_socket() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// Receives until `pick` returns `Some`, or fails after `WAIT`.
async fn recv_until<T>(
    socket: &UdpSocket,
    mut pick: impl FnMut(&MavHeader, &MavMessage, SocketAddr) -> Option<T>,
) -> T {
    let mut buf = vec![0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.unwrap();
            let mut reader = MavlinkReader::new(&buf[..n]);
            while let Ok((header, msg)) = reader.read_any_message::<MavMessage>() {
                if let Some(found) = pick(&header, &msg, from) {
                    return found;
                }
            }
        }
    })
    .await
    .expect("timed out waiting for a message")
}

fn command(target: u8, command: MavCmd, param1: f32) -> MavMessage {
    MavMessage::COMMAND_LONG(COMMAND_LONG_DATA {
        command,
        param1,
        target_system: target,
        target_component: 1,
        ..Default::default()
    })
}

fn frame(msg: &MavMessage, signing: Option<&SigningData>) -> Vec<u8> {
    let mut out = Vec::new();
    let header = MavHeader { system_id: 255, component_id: 190, sequence: 0 };
    mavlink::write_v2_msg_signed(&mut out, header, msg, signing).unwrap();
    out
}

async fn spawn(count: usize, gcs: SocketAddr) -> (SimFleet, CancellationToken) {
    let link = SimLink::UdpOut { gcs };
    let mut config = SimConfig::fleet(count, PersonalityMix::Mixed, &[GeoPoint::new(22.55, 113.88)], &link).unwrap();
    config.speedup = 20.0;
    for drone in &mut config.drones {
        drone.camera.spec.image_width_px = 320;
        drone.camera.spec.image_height_px = 240;
    }
    let token = CancellationToken::new();
    let fleet = SimFleet::spawn(config, token.clone()).await.unwrap();
    (fleet, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_drones_on_one_gcs_port_each_answer_their_own_commands() {
    let (gcs, addr) = gcs_socket().await;
    let (fleet, token) = spawn(5, addr).await;
    let mut seen = BTreeSet::new();
    recv_until(&gcs, |h, m, _| {
        if matches!(m, MavMessage::HEARTBEAT(_)) {
            seen.insert(h.system_id);
        }
        (seen.len() == 5).then_some(())
    })
    .await;
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);

    // Each drone has its own socket; a command to drone 3 is answered by drone 3 only.
    let three = fleet.drones().iter().find(|d| d.system_id == 3).unwrap().local_addr;
    gcs.send_to(&frame(&command(3, MavCmd::MAV_CMD_REQUEST_MESSAGE, 148.0), None), three).await.unwrap();
    let (sys, result) = recv_until(&gcs, |h, m, _| match m {
        MavMessage::COMMAND_ACK(a) if a.command == MavCmd::MAV_CMD_REQUEST_MESSAGE => Some((h.system_id, a.result)),
        _ => None,
    })
    .await;
    assert_eq!((sys, result), (3, MavResult::MAV_RESULT_ACCEPTED));
    token.cancel();
    fleet.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_is_served_over_http_at_the_announced_url() {
    let (gcs, addr) = gcs_socket().await;
    let (fleet, token) = spawn(1, addr).await;
    let drone = fleet.drones()[0].local_addr;
    gcs.send_to(&frame(&command(1, MavCmd::MAV_CMD_DO_DIGICAM_CONTROL, 0.0), None), drone).await.unwrap();
    let (index, url) = recv_until(&gcs, |h, m, _| match m {
        MavMessage::CAMERA_IMAGE_CAPTURED(c) if h.component_id == 100 => {
            Some((c.image_index, c.file_url.to_str().unwrap().trim_end_matches('\0').to_string()))
        }
        _ => None,
    })
    .await;
    assert_eq!(index, 0);
    let http = fleet.http_addr().unwrap();
    let path = url.strip_prefix(&format!("http://{http}")).unwrap_or_else(|| panic!("{url} is not on {http}"));
    assert_eq!(path, "/images/1/0.jpg");
    let mut stream = tokio::net::TcpStream::connect(http).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await.unwrap().unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: image/jpeg"), "{head}");
    assert_eq!(&response[split + 4..split + 6], &[0xFF, 0xD8], "JPEG magic");
    token.cancel();
    fleet.wait().await;
}

/// The MAVLink signing clock: 10 µs units since 2015-01-01 00:00 UTC.
fn signing_clock_now() -> u64 {
    let since_unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let since_2015 = since_unix - Duration::from_secs(1_420_070_400);
    u64::try_from(since_2015.as_micros() / 10).unwrap()
}

/// A frame signed with `key` by hand, with a timestamp of our choosing (the `mavlink` crate's writer always
/// stamps the current time): what an attacker holding an old capture, or a peer with a wrong clock, sends.
fn signed_at(msg: &MavMessage, key: &[u8; 32], link_id: u8, timestamp: u64) -> Vec<u8> {
    let mut raw = MAVLinkV2MessageRaw::new();
    raw.serialize_message_for_signing(MavHeader { system_id: 255, component_id: 190, sequence: 0 }, msg);
    raw.signature_timestamp_bytes_mut().copy_from_slice(&timestamp.to_le_bytes()[..6]);
    *raw.signature_link_id_mut() = link_id;
    let mut signature = [0u8; 6];
    raw.calculate_signature(key, &mut signature);
    raw.signature_value_mut().copy_from_slice(&signature);
    raw.raw_bytes().to_vec()
}

fn arm(param1: f32) -> MavMessage {
    command(1, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, param1)
}

/// A peer that holds the key: sends a signed `REQUEST_MESSAGE` and returns the `COMMAND_ACK`s that came before
/// its own. The drone handles datagrams in order and acknowledges every command it handles, so these are the
/// acks of everything sent before, and a command without one here was dropped unhandled.
async fn acks_before_barrier(gcs: &UdpSocket, drone: SocketAddr, signing: &SigningData) -> Vec<(MavCmd, MavResult)> {
    gcs.send_to(&frame(&command(1, MavCmd::MAV_CMD_REQUEST_MESSAGE, 148.0), Some(signing)), drone).await.unwrap();
    let mut acks = Vec::new();
    recv_until(gcs, |_, m, _| match m {
        MavMessage::COMMAND_ACK(a) if a.command == MavCmd::MAV_CMD_REQUEST_MESSAGE => Some(()),
        MavMessage::COMMAND_ACK(a) => {
            acks.push((a.command, a.result));
            None
        }
        _ => None,
    })
    .await;
    acks
}

/// Whether the next autopilot HEARTBEAT says armed.
async fn next_heartbeat_armed(gcs: &UdpSocket) -> bool {
    recv_until(gcs, |h, m, _| match m {
        MavMessage::HEARTBEAT(hb) if h.component_id == 1 => {
            Some(hb.base_mode.contains(MavModeFlag::MAV_MODE_FLAG_SAFETY_ARMED))
        }
        _ => None,
    })
    .await
}

/// Issue 8: with signing on, a spoofed `COMMAND_LONG` (an arm) is ignored by the drone whether it comes unsigned,
/// signed with a wrong key, signed with the right key but a stale timestamp, or as a replay of a correctly
/// signed packet captured earlier; each is counted. The attacker is a plain UDP socket using the `mavlink`
/// crate, not the bridge. Controls: the same arm correctly signed is accepted, and so is a hand-signed packet
/// with a fresh timestamp (so the stale one was refused for its timestamp, not for how it was built).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_signing_spoofed_commands_are_ignored_and_counted() {
    let key = [7u8; 32];
    let (gcs, addr) = gcs_socket().await;
    let link = SimLink::UdpOut { gcs: addr };
    let mut config = SimConfig::fleet(1, PersonalityMix::ArduPilot, &[GeoPoint::new(22.55, 113.88)], &link).unwrap();
    config.http_bind = None;
    // Real time: the auto-disarm on the ground (10 s) stays out of the way. Armable at once.
    config.drones[0].signing_key = Some(SigningKey::from_bytes(key));
    config.drones[0].vehicle.position_estimate_after = Duration::ZERO;
    let token = CancellationToken::new();
    let fleet = SimFleet::spawn(config, token.clone()).await.unwrap();
    let drone = &fleet.drones()[0];
    let ours = SigningData::from_config(SigningConfig::new(key, 1, true, false));
    // Its heartbeats are signed: our signing state accepts them.
    let verifier = SigningData::from_config(SigningConfig::new(key, 0, false, false));
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(WAIT, gcs.recv_from(&mut buf)).await.unwrap().unwrap();
    MavlinkReader::new(&buf[..n]).read_any_message_signed::<MavMessage>(Some(&verifier)).expect("signed by the drone");

    // The spoofs: unsigned, a wrong key, the right key two minutes ago (a new stream: link id 2).
    let wrong = SigningData::from_config(SigningConfig::new([8u8; 32], 1, true, false));
    let two_minutes = 120 * 100_000;
    for spoof in [
        frame(&arm(1.0), None),
        frame(&arm(1.0), Some(&wrong)),
        signed_at(&arm(1.0), &key, 2, signing_clock_now() - two_minutes),
    ] {
        gcs.send_to(&spoof, drone.local_addr).await.unwrap();
    }
    let acks = acks_before_barrier(&gcs, drone.local_addr, &ours).await;
    assert!(acks.is_empty(), "a spoofed arm was handled: {acks:?}");
    assert!(!next_heartbeat_armed(&gcs).await, "a spoofed arm armed the drone");
    let stats = drone.stats.snapshot();
    assert_eq!((stats.rx_unsigned_dropped, stats.rx_bad_signature_dropped), (1, 2), "{stats:?}");

    // Control: the same arm, hand-signed like the stale one but with the current time, is accepted.
    let captured = signed_at(&arm(1.0), &key, 2, signing_clock_now());
    gcs.send_to(&captured, drone.local_addr).await.unwrap();
    let accepted = [(MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, MavResult::MAV_RESULT_ACCEPTED)];
    assert_eq!(acks_before_barrier(&gcs, drone.local_addr, &ours).await, accepted);
    assert!(next_heartbeat_armed(&gcs).await, "the correctly signed arm did not arm the drone");

    // The operator disarms (signed by the writer); then the attacker replays the arm it captured.
    gcs.send_to(&frame(&arm(0.0), Some(&ours)), drone.local_addr).await.unwrap();
    assert_eq!(acks_before_barrier(&gcs, drone.local_addr, &ours).await, accepted);
    assert!(!next_heartbeat_armed(&gcs).await);
    gcs.send_to(&captured, drone.local_addr).await.unwrap();
    let acks = acks_before_barrier(&gcs, drone.local_addr, &ours).await;
    assert!(acks.is_empty(), "the replayed arm was handled: {acks:?}");
    assert!(!next_heartbeat_armed(&gcs).await, "the replayed arm armed the drone");
    let stats = drone.stats.snapshot();
    assert_eq!((stats.rx_unsigned_dropped, stats.rx_bad_signature_dropped), (1, 3), "{stats:?}");

    token.cancel();
    fleet.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_drone_answers_whoever_talks_to_it() {
    let link = SimLink::UdpIn { bind: "127.0.0.1:0".parse().unwrap() };
    let mut config = SimConfig::fleet(1, PersonalityMix::Px4, &[GeoPoint::new(22.55, 113.88)], &link).unwrap();
    config.http_bind = None;
    let token = CancellationToken::new();
    let fleet = SimFleet::spawn(config, token.clone()).await.unwrap();
    let (gcs, _) = gcs_socket().await;
    // Silent until we talk; then it streams to us.
    let heartbeat = MavMessage::HEARTBEAT(mavlink::dialects::ardupilotmega::HEARTBEAT_DATA::default());
    gcs.send_to(&frame(&heartbeat, None), fleet.drones()[0].local_addr).await.unwrap();
    let (sys, from) =
        recv_until(&gcs, |h, m, from| matches!(m, MavMessage::HEARTBEAT(_)).then_some((h.system_id, from))).await;
    assert_eq!((sys, from), (1, fleet.drones()[0].local_addr));
    token.cancel();
    fleet.wait().await;
}
