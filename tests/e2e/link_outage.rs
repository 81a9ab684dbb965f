//! Issue 8: a drone's link silent for 30 s mid-mission, and back. A UDP relay sits between the station's bridge
//! and a simulated ArduPilot drone flying an AUTO mission; in the middle of the mission it drops every datagram,
//! both ways, for a real 30 s, then forwards again. The bridge must mark the vehicle lost during the silence and
//! recovered after it; the drone must fly on by itself (its progress reports, dropped by the relay, say so) and
//! the station must see the progress again after the silence; nothing is commanded again: the relay counts every
//! command and mission-protocol packet from the station, and none is sent twice or after the mission started.

// Helpers outside #[test] functions panic on purpose: a panic is how a test reports failure.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use firmware_bridge::link::LinkConfig;
use firmware_bridge::mode::FlightMode;
use firmware_bridge::sim::{PersonalityMix, SimConfig, SimFleet, SimLink};
use firmware_bridge::vehicle::VehicleConfig;
use firmware_bridge::{BridgeConfig, BridgeHandle, VehicleEventKind};
use mavlink::MavlinkReader;
use mavlink::dialects::ardupilotmega::{MavCmd, MavMessage};
use mission_planner::geo::{GeoPoint, LocalFrame, LocalPoint};
use mission_planner::mission_item::{MissionFrame, MissionItem, MissionKind, cmd};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the link is silent: a real 30 s, six times the bridge's link-loss threshold (5 s).
const SILENCE: Duration = Duration::from_secs(30);
/// Sim time runs this much faster than wall time, so the mission outlasts the silence without a long test.
const SPEEDUP: f64 = 2.0;
const WAIT: Duration = Duration::from_secs(30);

fn home() -> GeoPoint {
    GeoPoint::new(22.5395, 113.8795)
}

/// Where the test is: the relay forwards before and after the silence, and drops everything during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Before = 0,
    Silence = 1,
    After = 2,
}

impl Phase {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Phase::Before,
            1 => Phase::Silence,
            _ => Phase::After,
        }
    }
}

/// Which way a datagram went through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToDrone,
    ToStation,
}

/// Every MAVLink message that reached the relay, with the phase it came in (forwarded or not).
#[derive(Debug, Default)]
struct Seen {
    messages: Vec<(Phase, Direction, MavMessage)>,
}

/// A UDP relay: the drone sends to `drone_side`, the station is reached from `station_side`.
struct Relay {
    drone_side: SocketAddr,
    phase: Arc<AtomicU8>,
    seen: Arc<Mutex<Seen>>,
}

impl Relay {
    async fn start(station: SocketAddr, tracker: &TaskTracker, cancel: CancellationToken) -> Self {
        let drone_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let station_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        station_socket.connect(station).await.unwrap();
        let drone_side = drone_socket.local_addr().unwrap();
        let phase = Arc::new(AtomicU8::new(Phase::Before as u8));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (task_phase, task_seen) = (Arc::clone(&phase), Arc::clone(&seen));
        tracker.spawn(async move {
            let mut drone: Option<SocketAddr> = None;
            let (mut from_drone, mut from_station) = (vec![0u8; 65_536], vec![0u8; 65_536]);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    received = drone_socket.recv_from(&mut from_drone) => {
                        let (n, from) = received.unwrap();
                        drone = Some(from);
                        let phase = Phase::from_u8(task_phase.load(Ordering::SeqCst));
                        record(&task_seen, phase, Direction::ToStation, &from_drone[..n]);
                        if phase != Phase::Silence {
                            station_socket.send(&from_drone[..n]).await.unwrap();
                        }
                    }
                    received = station_socket.recv(&mut from_station) => {
                        let n = match received {
                            Ok(n) => n,
                            // ICMP port unreachable before the bridge answers: not a datagram.
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                            Err(e) => panic!("relay: {e}"),
                        };
                        let phase = Phase::from_u8(task_phase.load(Ordering::SeqCst));
                        record(&task_seen, phase, Direction::ToDrone, &from_station[..n]);
                        if let (Some(drone), true) = (drone, phase != Phase::Silence) {
                            drone_socket.send_to(&from_station[..n], drone).await.unwrap();
                        }
                    }
                }
            }
        });
        Self { drone_side, phase, seen }
    }

    fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    fn seen(&self) -> Vec<(Phase, Direction, MavMessage)> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).messages.clone()
    }
}

fn record(seen: &Mutex<Seen>, phase: Phase, direction: Direction, datagram: &[u8]) {
    let mut reader = MavlinkReader::new(datagram);
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    while let Ok((_, message)) = reader.read_any_message::<MavMessage>() {
        seen.messages.push((phase, direction, message));
    }
}

/// Whether a message from the station tells the drone to do something: a command, a mode change, or any part
/// of the mission protocol.
#[allow(deprecated)] // The superseded messages too: a station sending one would still be commanding.
fn is_command(message: &MavMessage) -> bool {
    matches!(
        message,
        MavMessage::COMMAND_LONG(_)
            | MavMessage::COMMAND_INT(_)
            | MavMessage::SET_MODE(_)
            | MavMessage::SET_POSITION_TARGET_GLOBAL_INT(_)
            | MavMessage::MISSION_COUNT(_)
            | MavMessage::MISSION_ITEM(_)
            | MavMessage::MISSION_ITEM_INT(_)
            | MavMessage::MISSION_SET_CURRENT(_)
            | MavMessage::MISSION_CLEAR_ALL(_)
            | MavMessage::MISSION_REQUEST_LIST(_)
            | MavMessage::MISSION_REQUEST(_)
            | MavMessage::MISSION_REQUEST_INT(_)
            | MavMessage::MISSION_ACK(_)
    )
}

/// Takeoff to 20 m, then four laps of a 100 m square (16 legs, about 80 s of wall time at the speed-up), then
/// home. On ArduPilot the takeoff is seq 1 and waypoint `i` (from 1) is seq `i + 1`.
fn mission() -> Vec<MissionItem> {
    let frame = LocalFrame::new(home());
    let mut items = vec![MissionItem::command(cmd::NAV_TAKEOFF, [0.0; 4])];
    items[0].frame = MissionFrame::GlobalRelativeAlt;
    items[0].z = 20.0;
    for _lap in 0..4 {
        for (east, north) in [(100.0, 0.0), (100.0, 100.0), (0.0, 100.0), (0.0, 0.0)] {
            let point = frame.to_geo(LocalPoint::new(east, north));
            items.push(MissionItem::at(cmd::NAV_WAYPOINT, [0.0; 4], point.lat_e7(), point.lon_e7(), 20.0));
        }
    }
    items.push(MissionItem::command(cmd::NAV_RETURN_TO_LAUNCH, [0.0; 4]));
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_silent_for_30_s_mid_mission_is_lost_then_recovered_and_the_mission_flies_on() {
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let link = LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap());
    let bridge = BridgeHandle::start(BridgeConfig::new(link), &tracker, cancel.clone()).await.unwrap();
    let link_lost_after = VehicleConfig::default().link_lost_after;
    let relay = Relay::start(bridge.local_addr().unwrap(), &tracker, cancel.clone()).await;

    let sim_link = SimLink::UdpOut { gcs: relay.drone_side };
    let mut config = SimConfig::fleet(1, PersonalityMix::ArduPilot, &[home()], &sim_link).unwrap();
    config.speedup = SPEEDUP;
    config.http_bind = None;
    config.drones[0].vehicle.position_estimate_after = Duration::ZERO;
    let fleet = SimFleet::spawn(config, cancel.child_token()).await.unwrap();

    // Every vehicle event from now on, with its arrival time (the bridge's broadcast is read at once).
    let mut events_rx = bridge.subscribe();
    let events: Arc<Mutex<Vec<(Instant, VehicleEventKind)>>> = Arc::default();
    let lagged = Arc::new(AtomicU64::new(0));
    let collector = tokio::spawn({
        let (events, lagged) = (Arc::clone(&events), Arc::clone(&lagged));
        async move {
            loop {
                match events_rx.recv().await {
                    Ok(event) => events.lock().unwrap().push((Instant::now(), event.kind)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });

    let drone = bridge.wait_for_vehicle(1, WAIT).await.unwrap();
    drone.upload(MissionKind::Mission, mission()).await.unwrap();
    drone.arm().await.unwrap();
    drone.start_mission().await.unwrap();

    // Mid-mission: airborne, flying to the second waypoint.
    let mut state = drone.watch();
    tokio::time::timeout(WAIT, state.wait_for(|s| s.mission.current_seq >= Some(3) && s.armed))
        .await
        .expect("the drone never got to its second waypoint")
        .unwrap();
    let seq_before = drone.state().mission.current_seq.unwrap();
    assert!(drone.state().link.connected, "marked lost before the silence");

    // The silence.
    relay.set(Phase::Silence);
    let silence_started = Instant::now();
    tokio::time::timeout(WAIT, state.wait_for(|s| !s.link.connected)).await.expect("never marked lost").unwrap();
    let lost_after = silence_started.elapsed();
    // The last heartbeat came about a heartbeat period (1 s of sim time) before the silence began; the margin
    // is for a loaded machine.
    assert!(
        lost_after + Duration::from_secs(2) >= link_lost_after && lost_after < SILENCE,
        "marked lost after {lost_after:?} of silence"
    );
    tokio::time::sleep_until(silence_started + SILENCE).await;
    assert!(!drone.state().link.connected, "marked connected again during the silence");
    relay.set(Phase::After);
    let resumed = Instant::now();

    // Back: recovered, still flying the mission, and the station sees its progress advance.
    tokio::time::timeout(WAIT, state.wait_for(|s| s.link.connected)).await.expect("never recovered").unwrap();
    let seen = relay.seen();
    let reached_in_silence: Vec<u16> = seen
        .iter()
        .filter_map(|(phase, direction, message)| match (phase, direction, message) {
            (Phase::Silence, Direction::ToStation, MavMessage::MISSION_ITEM_REACHED(r)) => Some(r.seq),
            _ => None,
        })
        .collect();
    assert!(
        reached_in_silence.len() >= 2 && reached_in_silence.iter().all(|seq| *seq >= seq_before),
        "the drone did not fly on during the silence: reached {reached_in_silence:?}, was at {seq_before}"
    );
    let last_in_silence = *reached_in_silence.iter().max().unwrap();
    let reached_after = tokio::time::timeout(WAIT, async {
        loop {
            let found = events.lock().unwrap().iter().find_map(|(at, kind)| match kind {
                VehicleEventKind::MissionItemReached { seq } if *at >= resumed && *seq > last_in_silence => Some(*seq),
                _ => None,
            });
            if let Some(seq) = found {
                return seq;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("no mission progress reached the station after the silence");
    let after = tokio::time::timeout(WAIT, state.wait_for(|s| s.mission.current_seq > Some(last_in_silence)))
        .await
        .expect("the station's mission progress never moved past the silence")
        .unwrap()
        .clone();
    assert_eq!(after.mode, FlightMode::Mission, "the drone left its mission");
    assert!(after.armed && after.link.connected);
    assert_eq!(lagged.load(Ordering::Relaxed), 0, "vehicle events lost");

    // One LinkLost during the silence, one LinkRecovered after it, nothing else about the link.
    let link_events: Vec<(Instant, VehicleEventKind)> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, k)| matches!(k, VehicleEventKind::LinkLost { .. } | VehicleEventKind::LinkRecovered))
        .cloned()
        .collect();
    assert_eq!(link_events.len(), 2, "{link_events:?}");
    assert!(matches!(link_events[0].1, VehicleEventKind::LinkLost { .. }));
    assert!(link_events[0].0 > silence_started && link_events[0].0 < resumed, "{link_events:?}");
    assert_eq!(link_events[1].1, VehicleEventKind::LinkRecovered);
    assert!(link_events[1].0 >= resumed);

    // Nothing commanded again: every command and mission packet went before the silence, each once.
    let seen = relay.seen();
    let commands: Vec<(Phase, MavMessage)> = seen
        .iter()
        .filter(|(_, direction, message)| *direction == Direction::ToDrone && is_command(message))
        .map(|(phase, _, message)| (*phase, message.clone()))
        .collect();
    let late: Vec<&(Phase, MavMessage)> = commands.iter().filter(|(phase, _)| *phase != Phase::Before).collect();
    assert!(late.is_empty(), "commands sent during or after the silence: {late:?}");
    let command_longs: Vec<(MavCmd, u8, u32)> = commands
        .iter()
        .filter_map(|(_, message)| match message {
            // param1 tells the telemetry-rate requests (one per message id) apart.
            MavMessage::COMMAND_LONG(c) => Some((c.command, c.confirmation, c.param1 as u32)),
            _ => None,
        })
        .collect();
    assert!(
        command_longs.iter().all(|(_, confirmation, _)| *confirmation == 0),
        "a re-sent command: {command_longs:?}"
    );
    for (i, a) in command_longs.iter().enumerate() {
        assert!(!command_longs[..i].contains(a), "{a:?} sent twice: {command_longs:?}");
    }
    for once in [MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, MavCmd::MAV_CMD_MISSION_START] {
        assert_eq!(command_longs.iter().filter(|(c, _, _)| *c == once).count(), 1, "{once:?}: {command_longs:?}");
    }
    let counts = commands.iter().filter(|(_, m)| matches!(m, MavMessage::MISSION_COUNT(_))).count();
    assert_eq!(counts, 1, "the mission was uploaded once");
    println!(
        "link lost after {lost_after:?} of silence; {} items reached during the {SILENCE:?} silence; seq {reached_after} \
         reached {:?} after it; {} command/mission packets, all before the silence",
        reached_in_silence.len(),
        resumed.elapsed(),
        commands.len()
    );

    cancel.cancel();
    tracker.close();
    tokio::time::timeout(WAIT, tracker.wait()).await.unwrap();
    fleet.wait().await;
    collector.abort();
}
