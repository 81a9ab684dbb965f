//! Translation between MAVLink messages and the bridge's domain types. The only place (with `frame` and
//! `link`) that names `mavlink` types.

// ArduPilot still asks with MISSION_REQUEST, and older firmware needs REQUEST_DATA_STREAM and
// MISSION_SET_CURRENT: interop requires these deprecated messages.
#![allow(deprecated)]

use mavlink::dialects::ardupilotmega::{
    COMMAND_INT_DATA, COMMAND_LONG_DATA, MISSION_ACK_DATA, MISSION_CLEAR_ALL_DATA, MISSION_COUNT_DATA,
    MISSION_ITEM_INT_DATA, MISSION_REQUEST_INT_DATA, MISSION_REQUEST_LIST_DATA, MISSION_SET_CURRENT_DATA, MavAutopilot,
    MavCmd, MavFrame, MavMissionResult, MavMissionType, MavSeverity, REQUEST_DATA_STREAM_DATA,
};
use mavlink::types::CharArray;
use mission_planner::mission_item::{MissionFrame, MissionItem, MissionKind};
use num_traits::FromPrimitive;

use super::{CommandSpec, GpsFix, Severity, VehicleType};
use crate::error::{CommandResult, MissionAckError};
use crate::frame::MavMessage;
use crate::mission::MissionMessage;
use crate::mode::AutopilotKind;

pub(super) fn autopilot(a: MavAutopilot) -> AutopilotKind {
    match a {
        MavAutopilot::MAV_AUTOPILOT_ARDUPILOTMEGA => AutopilotKind::ArduPilot,
        MavAutopilot::MAV_AUTOPILOT_PX4 => AutopilotKind::Px4,
        _ => AutopilotKind::Other,
    }
}

pub(super) fn vehicle_type(t: u8) -> VehicleType {
    match t {
        1 => VehicleType::FixedWing,
        2 => VehicleType::Quadrotor,
        4 => VehicleType::Helicopter,
        10 => VehicleType::GroundRover,
        13 => VehicleType::Hexarotor,
        14 => VehicleType::Octorotor,
        15 => VehicleType::Tricopter,
        19..=25 => VehicleType::Vtol,
        other => VehicleType::Other(other),
    }
}

pub(super) fn severity(s: MavSeverity) -> Severity {
    match s {
        MavSeverity::MAV_SEVERITY_EMERGENCY => Severity::Emergency,
        MavSeverity::MAV_SEVERITY_ALERT => Severity::Alert,
        MavSeverity::MAV_SEVERITY_CRITICAL => Severity::Critical,
        MavSeverity::MAV_SEVERITY_ERROR => Severity::Error,
        MavSeverity::MAV_SEVERITY_WARNING => Severity::Warning,
        MavSeverity::MAV_SEVERITY_NOTICE => Severity::Notice,
        MavSeverity::MAV_SEVERITY_INFO => Severity::Info,
        MavSeverity::MAV_SEVERITY_DEBUG => Severity::Debug,
    }
}

pub(super) fn gps_fix(n: u8) -> GpsFix {
    match n {
        0 => GpsFix::NoGps,
        2 => GpsFix::Fix2d,
        3 => GpsFix::Fix3d,
        4 => GpsFix::Dgps,
        5 => GpsFix::RtkFloat,
        6 => GpsFix::RtkFixed,
        7 => GpsFix::Static,
        8 => GpsFix::Ppp,
        _ => GpsFix::NoFix,
    }
}

/// A MAVLink fixed-size string up to its first NUL, lossily decoded.
pub(super) fn text<const N: usize>(chars: &CharArray<N>) -> String {
    let bytes: &[u8] = &chars[..];
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

pub(super) fn command_result(n: u8) -> Option<CommandResult> {
    Some(match n {
        0 | 5 => return None,
        1 => CommandResult::TemporarilyRejected,
        2 => CommandResult::Denied,
        3 => CommandResult::Unsupported,
        4 => CommandResult::Failed,
        6 => CommandResult::Cancelled,
        7 => CommandResult::CommandLongOnly,
        8 => CommandResult::CommandIntOnly,
        9 => CommandResult::UnsupportedFrame,
        10 => CommandResult::NotInControl,
        other => CommandResult::Other(other),
    })
}

/// A readable name for a `MAV_CMD` number ("MAV_CMD_COMPONENT_ARM_DISARM" for 400).
pub(super) fn command_name(command: u16) -> String {
    match MavCmd::from_u16(command) {
        Some(c) => format!("{c:?}"),
        None => format!("MAV_CMD {command}"),
    }
}

fn mission_kind(t: MavMissionType) -> Option<MissionKind> {
    match t {
        MavMissionType::MAV_MISSION_TYPE_MISSION => Some(MissionKind::Mission),
        MavMissionType::MAV_MISSION_TYPE_FENCE => Some(MissionKind::Fence),
        MavMissionType::MAV_MISSION_TYPE_RALLY => Some(MissionKind::Rally),
        MavMissionType::MAV_MISSION_TYPE_ALL => None,
    }
}

fn mission_type(k: MissionKind) -> MavMissionType {
    match k {
        MissionKind::Mission => MavMissionType::MAV_MISSION_TYPE_MISSION,
        MissionKind::Fence => MavMissionType::MAV_MISSION_TYPE_FENCE,
        MissionKind::Rally => MavMissionType::MAV_MISSION_TYPE_RALLY,
    }
}

#[allow(clippy::cast_possible_truncation)]
fn deg_to_e7(deg: f32) -> i32 {
    (f64::from(deg) * 1e7).round() as i32
}

/// Translates a received mission-protocol message addressed to `gcs_system` (or broadcast).
pub(super) fn mission_in(message: &MavMessage, gcs_system: u8) -> Option<MissionMessage> {
    let for_us = |target: u8| target == 0 || target == gcs_system;
    Some(match message {
        MavMessage::MISSION_COUNT(d) if for_us(d.target_system) => {
            MissionMessage::Count { kind: mission_kind(d.mission_type)?, count: d.count }
        }
        MavMessage::MISSION_REQUEST(d) if for_us(d.target_system) => {
            MissionMessage::Request { kind: mission_kind(d.mission_type)?, seq: d.seq, int: false }
        }
        MavMessage::MISSION_REQUEST_INT(d) if for_us(d.target_system) => {
            MissionMessage::Request { kind: mission_kind(d.mission_type)?, seq: d.seq, int: true }
        }
        MavMessage::MISSION_ITEM_INT(d) if for_us(d.target_system) => MissionMessage::Item {
            kind: mission_kind(d.mission_type)?,
            seq: d.seq,
            item: MissionItem {
                command: d.command as u16,
                frame: MissionFrame::from_number(d.frame as u8),
                current: d.current != 0,
                autocontinue: d.autocontinue != 0,
                params: [d.param1, d.param2, d.param3, d.param4],
                x: d.x,
                y: d.y,
                z: d.z,
            },
        },
        MavMessage::MISSION_ITEM(d) if for_us(d.target_system) => MissionMessage::Item {
            kind: mission_kind(d.mission_type)?,
            seq: d.seq,
            item: MissionItem {
                command: d.command as u16,
                frame: MissionFrame::from_number(d.frame as u8),
                current: d.current != 0,
                autocontinue: d.autocontinue != 0,
                params: [d.param1, d.param2, d.param3, d.param4],
                x: deg_to_e7(d.x),
                y: deg_to_e7(d.y),
                z: d.z,
            },
        },
        MavMessage::MISSION_ACK(d) if for_us(d.target_system) => MissionMessage::Ack {
            kind: mission_kind(d.mission_type)?,
            error: MissionAckError::from_number(d.mavtype as u8),
        },
        MavMessage::MISSION_CURRENT(d) => MissionMessage::Current { seq: d.seq },
        _ => return None,
    })
}

/// Why an outgoing mission message cannot be expressed in this dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Untranslatable {
    Command(u16),
    Frame(u8),
}

/// Translates an outgoing mission-protocol message for `target`.
pub(super) fn mission_out(m: &MissionMessage, target: (u8, u8)) -> Result<MavMessage, Untranslatable> {
    let (target_system, target_component) = target;
    Ok(match m {
        MissionMessage::Count { kind, count } => MavMessage::MISSION_COUNT(MISSION_COUNT_DATA {
            count: *count,
            target_system,
            target_component,
            mission_type: mission_type(*kind),
            ..MISSION_COUNT_DATA::default()
        }),
        MissionMessage::RequestList { kind } => MavMessage::MISSION_REQUEST_LIST(MISSION_REQUEST_LIST_DATA {
            target_system,
            target_component,
            mission_type: mission_type(*kind),
        }),
        MissionMessage::Request { kind, seq, .. } => MavMessage::MISSION_REQUEST_INT(MISSION_REQUEST_INT_DATA {
            seq: *seq,
            target_system,
            target_component,
            mission_type: mission_type(*kind),
        }),
        MissionMessage::Item { kind, seq, item } => {
            let command = MavCmd::from_u16(item.command).ok_or(Untranslatable::Command(item.command))?;
            let frame_number = item.frame.number();
            let frame = MavFrame::from_u8(frame_number).ok_or(Untranslatable::Frame(frame_number))?;
            MavMessage::MISSION_ITEM_INT(MISSION_ITEM_INT_DATA {
                param1: item.params[0],
                param2: item.params[1],
                param3: item.params[2],
                param4: item.params[3],
                x: item.x,
                y: item.y,
                z: item.z,
                seq: *seq,
                command,
                target_system,
                target_component,
                frame,
                current: u8::from(item.current),
                autocontinue: u8::from(item.autocontinue),
                mission_type: mission_type(*kind),
            })
        }
        MissionMessage::Ack { kind, error } => {
            let result = error.map_or(0, MissionAckError::number);
            MavMessage::MISSION_ACK(MISSION_ACK_DATA {
                target_system,
                target_component,
                mavtype: MavMissionResult::from_u8(result).unwrap_or(MavMissionResult::MAV_MISSION_ERROR),
                mission_type: mission_type(*kind),
                ..MISSION_ACK_DATA::default()
            })
        }
        MissionMessage::ClearAll { kind } => MavMessage::MISSION_CLEAR_ALL(MISSION_CLEAR_ALL_DATA {
            target_system,
            target_component,
            mission_type: mission_type(*kind),
        }),
        MissionMessage::SetCurrent { seq } => {
            MavMessage::MISSION_SET_CURRENT(MISSION_SET_CURRENT_DATA { seq: *seq, target_system, target_component })
        }
        // Vehicle-to-GCS only; never sent by the bridge.
        MissionMessage::Current { seq } => {
            MavMessage::MISSION_CURRENT(mavlink::dialects::ardupilotmega::MISSION_CURRENT_DATA {
                seq: *seq,
                ..Default::default()
            })
        }
    })
}

/// `MISSION_ITEM` is only needed by peers that cannot take `_INT`; kept for symmetry in tests.
#[cfg(test)]
fn mission_item_float(seq: u16, item: &MissionItem) -> MavMessage {
    use mavlink::dialects::ardupilotmega::MISSION_ITEM_DATA;
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    MavMessage::MISSION_ITEM(MISSION_ITEM_DATA {
        target_system: 255,
        param1: item.params[0],
        x: (f64::from(item.x) / 1e7) as f32,
        y: (f64::from(item.y) / 1e7) as f32,
        z: item.z,
        seq,
        command: MavCmd::from_u16(item.command).unwrap_or_default(),
        frame: MavFrame::from_u8(item.frame.number()).unwrap_or_default(),
        autocontinue: 1,
        ..MISSION_ITEM_DATA::default()
    })
}

/// Builds `COMMAND_LONG` (with `confirmation`) or `COMMAND_INT` for `spec`.
pub(super) fn command_out(spec: &CommandSpec, confirmation: u8, target: (u8, u8)) -> Option<MavMessage> {
    let command = MavCmd::from_u16(spec.command)?;
    let [p1, p2, p3, p4, p5, p6, p7] = spec.params;
    let (target_system, target_component) = target;
    Some(match spec.int {
        None => MavMessage::COMMAND_LONG(COMMAND_LONG_DATA {
            param1: p1,
            param2: p2,
            param3: p3,
            param4: p4,
            param5: p5,
            param6: p6,
            param7: p7,
            command,
            target_system,
            target_component,
            confirmation,
        }),
        Some(int) => MavMessage::COMMAND_INT(COMMAND_INT_DATA {
            param1: p1,
            param2: p2,
            param3: p3,
            param4: p4,
            x: int.lat_e7,
            y: int.lon_e7,
            z: p7,
            command,
            target_system,
            target_component,
            frame: MavFrame::from_u8(int.frame)?,
            current: 0,
            autocontinue: 0,
        }),
    })
}

/// `REQUEST_DATA_STREAM` (the pre-`SET_MESSAGE_INTERVAL` way ArduPilot streams telemetry).
pub(super) fn request_data_stream(stream: u8, rate_hz: u16, target: (u8, u8)) -> Option<MavMessage> {
    Some(MavMessage::REQUEST_DATA_STREAM(REQUEST_DATA_STREAM_DATA {
        req_message_rate: rate_hz,
        target_system: target.0,
        target_component: target.1,
        req_stream_id: FromPrimitive::from_u8(stream)?,
        start_stop: 1,
    }))
}

#[cfg(test)]
mod tests {
    use mission_planner::mission_item::cmd;

    use super::*;

    #[test]
    fn mission_items_round_trip_through_mavlink() {
        let item = MissionItem::at(cmd::NAV_WAYPOINT, [1.0, 2.0, 3.0, 4.0], 473_977_123, 85_456_789, 30.5);
        // Addressed to the GCS, as the vehicle sends it.
        let out = mission_out(&MissionMessage::Item { kind: MissionKind::Fence, seq: 3, item }, (255, 190)).unwrap();
        let back = mission_in(&out, 255).unwrap();
        assert_eq!(back, MissionMessage::Item { kind: MissionKind::Fence, seq: 3, item });
        // Addressed to another GCS: not ours.
        assert_eq!(mission_in(&out, 254), None);
        // The float MISSION_ITEM is scaled back to 1e7 integers.
        let MissionMessage::Item { item: from_float, .. } = mission_in(&mission_item_float(3, &item), 255).unwrap()
        else {
            panic!("not an item");
        };
        assert!((from_float.x - item.x).abs() < 20, "{} vs {}", from_float.x, item.x);
    }

    #[test]
    fn unknown_commands_cannot_be_sent() {
        let item = MissionItem::command(65_000, [0.0; 4]);
        assert_eq!(
            mission_out(&MissionMessage::Item { kind: MissionKind::Mission, seq: 0, item }, (1, 1)),
            Err(Untranslatable::Command(65_000))
        );
        assert_eq!(command_name(400), "MAV_CMD_COMPONENT_ARM_DISARM");
    }

    #[test]
    fn accepted_and_in_progress_are_not_refusals() {
        assert_eq!(command_result(0), None);
        assert_eq!(command_result(5), None);
        assert_eq!(command_result(4), Some(CommandResult::Failed));
    }
}
