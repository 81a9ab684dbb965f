//! The simulated fleet over real UDP sockets: distinct system ids on one GCS port, replies to the right drone,
//! camera images served at the announced URL, and signing.

#![allow(deprecated)]
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use firmware_bridge::sim::{PersonalityMix, SimConfig, SimFleet, SimLink};
use mavlink::dialects::ardupilotmega::{COMMAND_LONG_DATA, MavCmd, MavMessage, MavResult};
use mavlink::{MavHeader, MavlinkReader, SigningConfig, SigningData};
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

async fn spawn(count: usize, gcs: SocketAddr, signing_key: Option<[u8; 32]>) -> (SimFleet, CancellationToken) {
    let link = SimLink::UdpOut { gcs };
    let mut config = SimConfig::fleet(count, PersonalityMix::Mixed, &[GeoPoint::new(22.55, 113.88)], &link).unwrap();
    config.speedup = 20.0;
    for drone in &mut config.drones {
        drone.signing_key = signing_key;
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
    let (fleet, token) = spawn(5, addr, None).await;
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
    let (fleet, token) = spawn(1, addr, None).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_signing_unsigned_commands_are_ignored_and_counted() {
    let key = [7u8; 32];
    let (gcs, addr) = gcs_socket().await;
    let (fleet, token) = spawn(1, addr, Some(key)).await;
    let drone = &fleet.drones()[0];
    let ours = SigningData::from_config(SigningConfig::new(key, 1, true, false));
    // Its heartbeats are signed: our signing state accepts them.
    recv_until(&gcs, |_, m, _| matches!(m, MavMessage::HEARTBEAT(_)).then_some(())).await;

    // A spoofed, unsigned arm command gets no answer and is counted.
    gcs.send_to(&frame(&command(1, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, 1.0), None), drone.local_addr).await.unwrap();
    // A signed request is answered.
    gcs.send_to(&frame(&command(1, MavCmd::MAV_CMD_REQUEST_MESSAGE, 148.0), Some(&ours)), drone.local_addr)
        .await
        .unwrap();
    let mut acks = Vec::new();
    recv_until(&gcs, |_, m, _| {
        if let MavMessage::COMMAND_ACK(a) = m {
            acks.push(a.command);
        }
        (acks.contains(&MavCmd::MAV_CMD_REQUEST_MESSAGE)).then_some(())
    })
    .await;
    assert_eq!(acks, [MavCmd::MAV_CMD_REQUEST_MESSAGE], "the unsigned arm command must not be acknowledged");
    assert_eq!(drone.stats.snapshot().rx_unsigned_dropped, 1);
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
