//! Behaviour of the simulated autopilot, driven message by message with a fake clock.

#![allow(deprecated)]

use mavlink::dialects::ardupilotmega::{
    COMMAND_LONG_DATA, MISSION_COUNT_DATA, MavDataStream, MavMissionType, REQUEST_DATA_STREAM_DATA,
};

use super::*;
use crate::sim::gas::GasWorld;

const GCS: (u8, u8) = (255, 190);
const HOME: GeoPoint = GeoPoint::new(22.55, 113.88);

fn autopilot(personality: Personality) -> Autopilot {
    let camera = CameraConfig::default();
    let vehicle = VehicleParams { position_estimate_after: Duration::from_secs(3), ..VehicleParams::default() };
    Autopilot::new(AutopilotConfig {
        system_id: 1,
        personality,
        home: HOME,
        home_amsl_m: 50.0,
        vehicle,
        intrinsics: camera.intrinsics().unwrap(),
        camera,
        seed: 42,
        timings: ProtocolTimings::default(),
        gas: GasWorld::default().local(&LocalFrame::new(HOME)),
    })
}

fn header() -> MavHeader {
    MavHeader { system_id: u32::from(GCS.0), component_id: GCS.1, sequence: 0 }
}

fn send(ap: &mut Autopilot, msg: MavMessage) -> Vec<MavMessage> {
    ap.handle(&header(), &msg, Duration::ZERO);
    ap.take_output().0.into_iter().map(|o| o.message).collect()
}

fn command(ap: &mut Autopilot, command: MavCmd, params: [f32; 7]) -> (MavResult, Vec<MavMessage>) {
    let out = send(
        ap,
        MavMessage::COMMAND_LONG(COMMAND_LONG_DATA {
            command,
            param1: params[0],
            param2: params[1],
            param3: params[2],
            param4: params[3],
            param5: params[4],
            param6: params[5],
            param7: params[6],
            target_system: 1,
            target_component: 1,
            confirmation: 0,
        }),
    );
    let result = out
        .iter()
        .find_map(|m| match m {
            MavMessage::COMMAND_ACK(a) if a.command == command => Some(a.result),
            _ => None,
        })
        .expect("every command is acknowledged");
    (result, out)
}

/// Runs `seconds` of sim time in 0.1 s steps, ticking streams every step; returns what was sent and the jobs.
fn run(ap: &mut Autopilot, seconds: f64) -> (Vec<MavMessage>, Vec<CaptureJob>) {
    let mut messages = Vec::new();
    let mut jobs = Vec::new();
    let steps = (seconds / 0.1).round() as usize;
    for _ in 0..steps {
        ap.step(0.1);
        ap.tick(Duration::ZERO);
        let (out, j) = ap.take_output();
        messages.extend(out.into_iter().map(|o| o.message));
        jobs.extend(j);
    }
    (messages, jobs)
}

fn upload(ap: &mut Autopilot, kind: MavMissionType, items: &[MISSION_ITEM_INT_DATA]) {
    let n = u16::try_from(items.len()).unwrap();
    let mut out =
        send(ap, MavMessage::MISSION_COUNT(MISSION_COUNT_DATA { count: n, mission_type: kind, ..Default::default() }));
    for (seq, item) in items.iter().enumerate() {
        let mut item = item.clone();
        item.seq = u16::try_from(seq).unwrap();
        item.mission_type = kind;
        assert!(
            out.iter().any(|m| matches!(m, MavMessage::MISSION_REQUEST(r) if usize::from(r.seq) == seq)
                || matches!(m, MavMessage::MISSION_REQUEST_INT(r) if usize::from(r.seq) == seq)),
            "seq {seq} not requested: {out:?}"
        );
        out = send(ap, MavMessage::MISSION_ITEM_INT(item));
    }
    assert!(
        out.iter().any(|m| matches!(m, MavMessage::MISSION_ACK(a) if a.mavtype == mavlink::dialects::ardupilotmega::MavMissionResult::MAV_MISSION_ACCEPTED)),
        "{out:?}"
    );
}

fn at(command: MavCmd, east_m: f64, north_m: f64, alt_m: f32) -> MISSION_ITEM_INT_DATA {
    let p = LocalFrame::new(HOME).to_geo(LocalPoint::new(east_m, north_m));
    MISSION_ITEM_INT_DATA {
        command,
        frame: MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
        x: p.lat_e7(),
        y: p.lon_e7(),
        z: alt_m,
        autocontinue: 1,
        ..Default::default()
    }
}

fn plain(command: MavCmd, params: [f32; 4]) -> MISSION_ITEM_INT_DATA {
    MISSION_ITEM_INT_DATA {
        command,
        frame: MavFrame::MAV_FRAME_MISSION,
        param1: params[0],
        param2: params[1],
        param3: params[2],
        param4: params[3],
        autocontinue: 1,
        ..Default::default()
    }
}

fn texts(messages: &[MavMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            MavMessage::STATUSTEXT(t) => Some(t.text.to_str().unwrap_or_default().trim_end_matches('\0').to_string()),
            _ => None,
        })
        .collect()
}

fn reached(messages: &[MavMessage]) -> Vec<u16> {
    messages
        .iter()
        .filter_map(|m| match m {
            MavMessage::MISSION_ITEM_REACHED(r) => Some(r.seq),
            _ => None,
        })
        .collect()
}

fn set_mode(ap: &mut Autopilot, mode: FlightMode) -> MavResult {
    let p = ap.cfg.personality.kind().set_mode_params(mode).unwrap();
    command(ap, MavCmd::MAV_CMD_DO_SET_MODE, [p.base_mode, p.custom_mode, p.custom_sub_mode, 0.0, 0.0, 0.0, 0.0]).0
}

#[test]
fn ardupilot_streams_only_heartbeat_and_sys_status_until_asked() {
    let mut ap = autopilot(Personality::ArduPilot);
    let (out, _) = run(&mut ap, 3.0);
    assert!(
        out.iter().all(|m| matches!(
            m,
            MavMessage::HEARTBEAT(_) | MavMessage::SYS_STATUS(_) | MavMessage::MISSION_CURRENT(_)
        )),
        "{out:?}"
    );
    assert!(out.iter().any(|m| matches!(m, MavMessage::HEARTBEAT(h) if h.autopilot == MavAutopilot::MAV_AUTOPILOT_ARDUPILOTMEGA && h.custom_mode == 0)));
    send(
        &mut ap,
        MavMessage::REQUEST_DATA_STREAM(REQUEST_DATA_STREAM_DATA {
            req_message_rate: 4,
            target_system: 1,
            target_component: 1,
            req_stream_id: MavDataStream::MAV_DATA_STREAM_ALL,
            start_stop: 1,
        }),
    );
    let (out, _) = run(&mut ap, 2.0);
    let positions = out.iter().filter(|m| matches!(m, MavMessage::GLOBAL_POSITION_INT(_))).count();
    assert!((7..=9).contains(&positions), "{positions} GLOBAL_POSITION_INT in 2 s at 4 Hz");
    assert!(out.iter().any(
        |m| matches!(m, MavMessage::NAMED_VALUE_FLOAT(n) if n.name.to_str().unwrap_or_default().starts_with("CH4"))
    ));
}

#[test]
fn px4_streams_by_default_and_set_message_interval_changes_a_rate() {
    let mut ap = autopilot(Personality::Px4);
    let (out, _) = run(&mut ap, 1.0);
    assert!(
        out.iter().any(|m| matches!(m, MavMessage::HEARTBEAT(h) if h.autopilot == MavAutopilot::MAV_AUTOPILOT_PX4))
    );
    assert!(out.iter().any(|m| matches!(m, MavMessage::GLOBAL_POSITION_INT(_))));
    let (result, _) =
        command(&mut ap, MavCmd::MAV_CMD_SET_MESSAGE_INTERVAL, [33.0, 1_000_000.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(result, MavResult::MAV_RESULT_ACCEPTED);
    let (out, _) = run(&mut ap, 3.0);
    let positions = out.iter().filter(|m| matches!(m, MavMessage::GLOBAL_POSITION_INT(_))).count();
    assert!((3..=4).contains(&positions), "{positions}");
    let (result, _) = command(&mut ap, MavCmd::MAV_CMD_SET_MESSAGE_INTERVAL, [33.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(result, MavResult::MAV_RESULT_ACCEPTED);
    let (out, _) = run(&mut ap, 2.0);
    assert!(!out.iter().any(|m| matches!(m, MavMessage::GLOBAL_POSITION_INT(_))));
}

#[test]
fn ardupilot_refuses_to_arm_until_its_position_estimate_is_ready() {
    let mut ap = autopilot(Personality::ArduPilot);
    assert_eq!(set_mode(&mut ap, FlightMode::Guided), MavResult::MAV_RESULT_ACCEPTED);
    let (result, out) = command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(result, MavResult::MAV_RESULT_FAILED);
    assert_eq!(texts(&out), ["PreArm: Need Position Estimate"]);
    run(&mut ap, 3.0);
    let (result, _) = command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(result, MavResult::MAV_RESULT_ACCEPTED);
    assert!(ap.armed());
}

#[test]
fn ardupilot_takeoff_needs_guided_and_climbs_then_auto_disarm_does_not_fire_in_the_air() {
    let mut ap = autopilot(Personality::ArduPilot);
    run(&mut ap, 3.0);
    assert_eq!(
        command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]).0,
        MavResult::MAV_RESULT_ACCEPTED
    );
    let (result, out) = command(&mut ap, MavCmd::MAV_CMD_NAV_TAKEOFF, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 20.0]);
    assert_eq!(result, MavResult::MAV_RESULT_FAILED);
    assert!(texts(&out)[0].contains("GUIDED"));
    set_mode(&mut ap, FlightMode::Guided);
    assert_eq!(
        command(&mut ap, MavCmd::MAV_CMD_NAV_TAKEOFF, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 20.0]).0,
        MavResult::MAV_RESULT_ACCEPTED
    );
    run(&mut ap, 20.0);
    assert!((ap.up_m() - 20.0).abs() < 0.3, "{}", ap.up_m());
    assert!(ap.armed());
    // Disarming in the air is refused.
    assert_eq!(command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [0.0; 7]).0, MavResult::MAV_RESULT_FAILED);
}

#[test]
fn armed_and_idle_on_the_ground_disarms_after_ten_seconds() {
    let mut ap = autopilot(Personality::Px4);
    run(&mut ap, 3.0);
    command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    run(&mut ap, 9.0);
    assert!(ap.armed());
    run(&mut ap, 2.0);
    assert!(!ap.armed());
}

fn survey_mission() -> Vec<MISSION_ITEM_INT_DATA> {
    vec![
        at(MavCmd::MAV_CMD_NAV_WAYPOINT, 0.0, 0.0, 0.0), // ArduPilot's home slot
        at(MavCmd::MAV_CMD_NAV_TAKEOFF, 0.0, 0.0, 25.0),
        plain(MavCmd::MAV_CMD_DO_CHANGE_SPEED, [1.0, 8.0, -1.0, 0.0]),
        plain(MavCmd::MAV_CMD_DO_SET_CAM_TRIGG_DIST, [20.0, 0.0, 1.0, 0.0]),
        at(MavCmd::MAV_CMD_NAV_WAYPOINT, 100.0, 0.0, 25.0),
        at(MavCmd::MAV_CMD_NAV_WAYPOINT, 100.0, 100.0, 30.0),
        plain(MavCmd::MAV_CMD_DO_SET_CAM_TRIGG_DIST, [0.0, 0.0, 0.0, 0.0]),
        at(MavCmd::MAV_CMD_NAV_WAYPOINT, 0.0, 100.0, 30.0),
        at(MavCmd::MAV_CMD_NAV_RETURN_TO_LAUNCH, 0.0, 0.0, 0.0),
    ]
}

#[test]
fn ardupilot_flies_an_auto_mission_item_by_item_and_lands_home() {
    let mut ap = autopilot(Personality::ArduPilot);
    upload(&mut ap, MavMissionType::MAV_MISSION_TYPE_MISSION, &survey_mission());
    run(&mut ap, 3.0);
    set_mode(&mut ap, FlightMode::Guided);
    command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    // Arming in AUTO is refused by ArduPilot, but switching to AUTO once armed starts the mission.
    assert_eq!(set_mode(&mut ap, FlightMode::Mission), MavResult::MAV_RESULT_ACCEPTED);
    let (out, jobs) = run(&mut ap, 200.0);
    assert_eq!(reached(&out), [1, 4, 5, 7, 8]);
    assert!(!ap.armed(), "disarms after landing");
    assert!(ap.distance_from_home_m() < 1.5, "{}", ap.distance_from_home_m());
    assert_eq!(ap.up_m(), 0.0);
    // Distance trigger every 20 m over the 200 m between the two trigger items, plus the immediate shot.
    assert!((9..=12).contains(&jobs.len()), "{} captures", jobs.len());
    let feedback = out.iter().filter(|m| matches!(m, MavMessage::CAMERA_FEEDBACK(_))).count();
    assert_eq!(feedback, jobs.len());
    assert!(!out.iter().any(|m| matches!(m, MavMessage::CAMERA_TRIGGER(_))));
    assert!(texts(&out).iter().any(|t| t == "Landed"));
}

#[test]
fn px4_starts_a_mission_with_its_custom_mode_and_holds_at_the_end() {
    let mut ap = autopilot(Personality::Px4);
    let mission: Vec<_> = survey_mission().into_iter().skip(1).take(7).collect();
    upload(&mut ap, MavMissionType::MAV_MISSION_TYPE_MISSION, &mission);
    run(&mut ap, 3.0);
    assert_eq!(
        command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]).0,
        MavResult::MAV_RESULT_ACCEPTED
    );
    // AUTO.MISSION = main 4, sub 4.
    let (result, _) = command(&mut ap, MavCmd::MAV_CMD_DO_SET_MODE, [1.0, 4.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(result, MavResult::MAV_RESULT_ACCEPTED);
    let (out, jobs) = run(&mut ap, 150.0);
    assert_eq!(reached(&out), [0, 3, 4, 6]);
    assert_eq!(ap.mode(), FlightMode::Loiter);
    assert!(ap.armed() && ap.up_m() > 29.0);
    assert!(out.iter().any(|m| matches!(m, MavMessage::HEARTBEAT(h) if h.custom_mode == (4 << 16) | (3 << 24))));
    assert_eq!(out.iter().filter(|m| matches!(m, MavMessage::CAMERA_TRIGGER(_))).count(), jobs.len());
    let last = out.iter().rev().find_map(|m| match m {
        MavMessage::MISSION_CURRENT(c) => Some((c.seq, c.total, c.mission_state)),
        _ => None,
    });
    assert_eq!(last, Some((7, 7, MissionState::MISSION_STATE_COMPLETE)));
}

#[test]
fn fence_breach_triggers_return_to_launch() {
    let mut ap = autopilot(Personality::Px4);
    let frame = LocalFrame::new(HOME);
    let fence: Vec<_> = [(-50.0, -50.0), (50.0, -50.0), (50.0, 50.0), (-50.0, 50.0)]
        .iter()
        .map(|&(e, n)| {
            let p = frame.to_geo(LocalPoint::new(e, n));
            MISSION_ITEM_INT_DATA {
                command: MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
                frame: MavFrame::MAV_FRAME_GLOBAL_INT,
                param1: 4.0,
                x: p.lat_e7(),
                y: p.lon_e7(),
                ..Default::default()
            }
        })
        .collect();
    upload(&mut ap, MavMissionType::MAV_MISSION_TYPE_FENCE, &fence);
    upload(
        &mut ap,
        MavMissionType::MAV_MISSION_TYPE_MISSION,
        &[at(MavCmd::MAV_CMD_NAV_TAKEOFF, 0.0, 0.0, 20.0), at(MavCmd::MAV_CMD_NAV_WAYPOINT, 200.0, 0.0, 20.0)],
    );
    run(&mut ap, 3.0);
    command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    set_mode(&mut ap, FlightMode::Mission);
    let (out, _) = run(&mut ap, 120.0);
    assert!(texts(&out).iter().any(|t| t.starts_with("Fence Breached")), "{:?}", texts(&out));
    assert_eq!(reached(&out), [0]);
    assert!(!ap.armed() && ap.distance_from_home_m() < 1.5);
}

#[test]
fn low_battery_triggers_return_to_launch() {
    let mut ap = autopilot(Personality::ArduPilot);
    ap.cfg.vehicle.hover_endurance_s = 60.0;
    ap.cfg.vehicle.low_battery_pct = 50.0;
    run(&mut ap, 3.0);
    set_mode(&mut ap, FlightMode::Guided);
    command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    command(&mut ap, MavCmd::MAV_CMD_NAV_TAKEOFF, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0]);
    let (out, _) = run(&mut ap, 60.0);
    assert!(texts(&out).iter().any(|t| t.starts_with("Battery failsafe")), "{:?}", texts(&out));
    assert!(!ap.armed());
    assert!(ap.battery_pct() < 50.0);
}

#[test]
fn reposition_flies_to_the_point_and_request_message_resends_a_capture() {
    let mut ap = autopilot(Personality::Px4);
    run(&mut ap, 3.0);
    command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(
        command(&mut ap, MavCmd::MAV_CMD_NAV_TAKEOFF, [0.0, 0.0, 0.0, 0.0, f32::NAN, f32::NAN, 15.0]).0,
        MavResult::MAV_RESULT_ACCEPTED
    );
    run(&mut ap, 10.0);
    let target = LocalFrame::new(HOME).to_geo(LocalPoint::new(60.0, -40.0));
    #[allow(clippy::cast_possible_truncation)]
    let (result, _) = command(
        &mut ap,
        MavCmd::MAV_CMD_DO_REPOSITION,
        [-1.0, 0.0, 0.0, f32::NAN, target.lat_deg as f32, target.lon_deg as f32, 50.0 + 20.0],
    );
    assert_eq!(result, MavResult::MAV_RESULT_ACCEPTED);
    run(&mut ap, 30.0);
    assert!((ap.up_m() - 20.0).abs() < 0.5, "{}", ap.up_m());
    assert!((ap.distance_from_home_m() - 72.1).abs() < 1.5, "{}", ap.distance_from_home_m());
    // Interval 0: one photo now.
    let start = COMMAND_LONG_DATA {
        command: MavCmd::MAV_CMD_IMAGE_START_CAPTURE,
        param3: 1.0,
        target_system: 1,
        ..Default::default()
    };
    ap.handle(&header(), &MavMessage::COMMAND_LONG(start), Duration::ZERO);
    let (out, jobs) = ap.take_output();
    assert!(
        out.iter()
            .any(|o| matches!(&o.message, MavMessage::COMMAND_ACK(a) if a.result == MavResult::MAV_RESULT_ACCEPTED))
    );
    assert_eq!(jobs.len(), 1);
    ap.captured(jobs[0].announce.clone());
    ap.take_output();
    let (result, out) = command(&mut ap, MavCmd::MAV_CMD_REQUEST_MESSAGE, [263.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(result, MavResult::MAV_RESULT_ACCEPTED);
    assert!(out.iter().any(|m| matches!(m, MavMessage::CAMERA_IMAGE_CAPTURED(c) if c.image_index == 0)));
    let (result, _) = command(&mut ap, MavCmd::MAV_CMD_REQUEST_MESSAGE, [263.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(result, MavResult::MAV_RESULT_FAILED);
}

#[test]
fn same_seed_same_flight_with_gps_noise() {
    let fly = || {
        let mut ap = autopilot(Personality::Px4);
        ap.cfg.vehicle.gps_noise_m = 2.0;
        ap.cfg.vehicle.wind_speed_mps = 4.0;
        upload(&mut ap, MavMissionType::MAV_MISSION_TYPE_MISSION, &survey_mission()[1..6]);
        run(&mut ap, 3.0);
        command(&mut ap, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        set_mode(&mut ap, FlightMode::Mission);
        let (out, _) = run(&mut ap, 30.0);
        out.into_iter()
            .filter_map(|m| match m {
                MavMessage::GLOBAL_POSITION_INT(p) => Some((p.lat, p.lon, p.relative_alt)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let a = fly();
    assert!(a.len() > 100);
    assert_eq!(a, fly());
}

#[test]
fn unknown_commands_are_acknowledged_unsupported_and_other_targets_ignored() {
    let mut ap = autopilot(Personality::ArduPilot);
    let (result, _) = command(&mut ap, MavCmd::MAV_CMD_DO_FENCE_ENABLE, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(result, MavResult::MAV_RESULT_UNSUPPORTED);
    let out = send(
        &mut ap,
        MavMessage::COMMAND_LONG(COMMAND_LONG_DATA {
            command: MavCmd::MAV_CMD_COMPONENT_ARM_DISARM,
            param1: 1.0,
            target_system: 7,
            ..Default::default()
        }),
    );
    assert!(out.is_empty());
}
