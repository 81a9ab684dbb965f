//! Flight modes and how ArduPilot copter and PX4 encode them in `HEARTBEAT.custom_mode` and `DO_SET_MODE`.
//!
//! ArduPilot copter uses plain mode numbers (`custom_mode = 3` is AUTO). PX4 packs a main mode and a sub mode:
//! `custom_mode = main << 16 | sub << 24`, and `MAV_CMD_DO_SET_MODE` takes them as param2 and param3.

use serde::{Deserialize, Serialize};

/// Which autopilot firmware a vehicle runs; decides mode numbers and protocol quirks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutopilotKind {
    /// ArduPilot (ArduCopter mode table).
    ArduPilot,
    /// PX4.
    Px4,
    /// Anything else that speaks MAVLink; modes are shown by number.
    Other,
}

/// The flight modes the ground station uses and shows, named the same for both autopilots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlightMode {
    /// Manual stick control (ArduPilot STABILIZE, PX4 MANUAL/STABILIZED).
    Manual,
    /// Altitude hold (ArduPilot ALT_HOLD, PX4 ALTCTL).
    AltitudeHold,
    /// Position hold (ArduPilot POSHOLD, PX4 POSCTL).
    PositionHold,
    /// Hover in place under automatic control (ArduPilot LOITER, PX4 AUTO.LOITER "Hold").
    Loiter,
    /// Fly the uploaded mission (ArduPilot AUTO, PX4 AUTO.MISSION).
    Mission,
    /// Fly to points the ground station sends (ArduPilot GUIDED, PX4 OFFBOARD is not the same; PX4 uses
    /// AUTO.LOITER plus reposition commands).
    Guided,
    /// Automatic take-off (PX4 AUTO.TAKEOFF; ArduPilot takes off in GUIDED).
    Takeoff,
    /// Return to launch (ArduPilot RTL, PX4 AUTO.RTL).
    ReturnToLaunch,
    /// Land where it is (ArduPilot LAND, PX4 AUTO.LAND).
    Land,
    /// Brake to a stop (ArduPilot BRAKE).
    Brake,
    /// Ready on the ground (PX4 AUTO.READY).
    Ready,
    /// Offboard control (PX4 OFFBOARD).
    Offboard,
    /// Acro (rate) mode.
    Acro,
    /// A mode this table does not know; the raw `custom_mode` is kept.
    Unknown(u32),
}

const PX4_MAIN_MANUAL: u8 = 1;
const PX4_MAIN_ALTCTL: u8 = 2;
const PX4_MAIN_POSCTL: u8 = 3;
const PX4_MAIN_AUTO: u8 = 4;
const PX4_MAIN_ACRO: u8 = 5;
const PX4_MAIN_OFFBOARD: u8 = 6;
const PX4_MAIN_STABILIZED: u8 = 7;
const PX4_AUTO_READY: u8 = 1;
const PX4_AUTO_TAKEOFF: u8 = 2;
const PX4_AUTO_LOITER: u8 = 3;
const PX4_AUTO_MISSION: u8 = 4;
const PX4_AUTO_RTL: u8 = 5;
const PX4_AUTO_LAND: u8 = 6;

/// ArduCopter mode numbers (`ArduCopter/mode.h`) and their names.
const ARDUCOPTER_MODES: &[(u32, &str, FlightMode)] = &[
    (0, "STABILIZE", FlightMode::Manual),
    (1, "ACRO", FlightMode::Acro),
    (2, "ALT_HOLD", FlightMode::AltitudeHold),
    (3, "AUTO", FlightMode::Mission),
    (4, "GUIDED", FlightMode::Guided),
    (5, "LOITER", FlightMode::Loiter),
    (6, "RTL", FlightMode::ReturnToLaunch),
    (7, "CIRCLE", FlightMode::Unknown(7)),
    (9, "LAND", FlightMode::Land),
    (11, "DRIFT", FlightMode::Unknown(11)),
    (13, "SPORT", FlightMode::Unknown(13)),
    (14, "FLIP", FlightMode::Unknown(14)),
    (15, "AUTOTUNE", FlightMode::Unknown(15)),
    (16, "POSHOLD", FlightMode::PositionHold),
    (17, "BRAKE", FlightMode::Brake),
    (18, "THROW", FlightMode::Unknown(18)),
    (19, "AVOID_ADSB", FlightMode::Unknown(19)),
    (20, "GUIDED_NOGPS", FlightMode::Unknown(20)),
    (21, "SMART_RTL", FlightMode::Unknown(21)),
    (22, "FLOWHOLD", FlightMode::Unknown(22)),
    (23, "FOLLOW", FlightMode::Unknown(23)),
    (24, "ZIGZAG", FlightMode::Unknown(24)),
    (25, "SYSTEMID", FlightMode::Unknown(25)),
    (26, "AUTOROTATE", FlightMode::Unknown(26)),
    (27, "AUTO_RTL", FlightMode::Unknown(27)),
    (28, "TURTLE", FlightMode::Unknown(28)),
];

/// How to ask an autopilot for a mode with `MAV_CMD_DO_SET_MODE`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetModeParams {
    /// param1: base mode (`MAV_MODE_FLAG_CUSTOM_MODE_ENABLED`).
    pub base_mode: f32,
    /// param2: ArduPilot mode number, or PX4 main mode.
    pub custom_mode: f32,
    /// param3: PX4 sub mode (0 for ArduPilot).
    pub custom_sub_mode: f32,
}

/// `MAV_MODE_FLAG_CUSTOM_MODE_ENABLED`.
pub const MAV_MODE_FLAG_CUSTOM_MODE_ENABLED: u8 = 1;

impl AutopilotKind {
    /// Decodes `HEARTBEAT.custom_mode` into a mode.
    pub fn decode_mode(self, custom_mode: u32) -> FlightMode {
        match self {
            AutopilotKind::ArduPilot => ARDUCOPTER_MODES
                .iter()
                .find(|(number, _, _)| *number == custom_mode)
                .map_or(FlightMode::Unknown(custom_mode), |(_, _, mode)| *mode),
            AutopilotKind::Px4 => {
                let [_, _, main, sub] = custom_mode.to_le_bytes();
                match (main, sub) {
                    (PX4_MAIN_MANUAL | PX4_MAIN_STABILIZED, _) => FlightMode::Manual,
                    (PX4_MAIN_ALTCTL, _) => FlightMode::AltitudeHold,
                    (PX4_MAIN_POSCTL, _) => FlightMode::PositionHold,
                    (PX4_MAIN_ACRO, _) => FlightMode::Acro,
                    (PX4_MAIN_OFFBOARD, _) => FlightMode::Offboard,
                    (PX4_MAIN_AUTO, PX4_AUTO_READY) => FlightMode::Ready,
                    (PX4_MAIN_AUTO, PX4_AUTO_TAKEOFF) => FlightMode::Takeoff,
                    (PX4_MAIN_AUTO, PX4_AUTO_LOITER) => FlightMode::Loiter,
                    (PX4_MAIN_AUTO, PX4_AUTO_MISSION) => FlightMode::Mission,
                    (PX4_MAIN_AUTO, PX4_AUTO_RTL) => FlightMode::ReturnToLaunch,
                    (PX4_MAIN_AUTO, PX4_AUTO_LAND) => FlightMode::Land,
                    _ => FlightMode::Unknown(custom_mode),
                }
            }
            AutopilotKind::Other => FlightMode::Unknown(custom_mode),
        }
    }

    /// The `HEARTBEAT.custom_mode` value for `mode`, or `None` when this autopilot has no such mode.
    pub fn encode_mode(self, mode: FlightMode) -> Option<u32> {
        match self {
            AutopilotKind::ArduPilot => match mode {
                FlightMode::Unknown(raw) => Some(raw),
                // ArduCopter takes off in GUIDED.
                FlightMode::Takeoff => Some(4),
                _ => ARDUCOPTER_MODES.iter().find(|(_, _, m)| *m == mode).map(|(number, _, _)| *number),
            },
            AutopilotKind::Px4 => {
                let (main, sub) = match mode {
                    FlightMode::Manual => (PX4_MAIN_MANUAL, 0),
                    FlightMode::AltitudeHold => (PX4_MAIN_ALTCTL, 0),
                    FlightMode::PositionHold => (PX4_MAIN_POSCTL, 0),
                    FlightMode::Acro => (PX4_MAIN_ACRO, 0),
                    FlightMode::Offboard => (PX4_MAIN_OFFBOARD, 0),
                    FlightMode::Ready => (PX4_MAIN_AUTO, PX4_AUTO_READY),
                    FlightMode::Takeoff => (PX4_MAIN_AUTO, PX4_AUTO_TAKEOFF),
                    // PX4 "Hold" is also where guided repositioning happens.
                    FlightMode::Loiter | FlightMode::Guided | FlightMode::Brake => (PX4_MAIN_AUTO, PX4_AUTO_LOITER),
                    FlightMode::Mission => (PX4_MAIN_AUTO, PX4_AUTO_MISSION),
                    FlightMode::ReturnToLaunch => (PX4_MAIN_AUTO, PX4_AUTO_RTL),
                    FlightMode::Land => (PX4_MAIN_AUTO, PX4_AUTO_LAND),
                    FlightMode::Unknown(raw) => return Some(raw),
                };
                Some(u32::from_le_bytes([0, 0, main, sub]))
            }
            AutopilotKind::Other => match mode {
                FlightMode::Unknown(raw) => Some(raw),
                _ => None,
            },
        }
    }

    /// The `MAV_CMD_DO_SET_MODE` parameters that select `mode`, or `None` when this autopilot has no such mode.
    pub fn set_mode_params(self, mode: FlightMode) -> Option<SetModeParams> {
        let custom = self.encode_mode(mode)?;
        let base_mode = f32::from(MAV_MODE_FLAG_CUSTOM_MODE_ENABLED);
        Some(match self {
            AutopilotKind::Px4 => {
                let [_, _, main, sub] = custom.to_le_bytes();
                SetModeParams { base_mode, custom_mode: f32::from(main), custom_sub_mode: f32::from(sub) }
            }
            AutopilotKind::ArduPilot | AutopilotKind::Other => {
                // Mode numbers are small; the cast is exact below 2^24.
                #[allow(clippy::cast_precision_loss)]
                let custom_mode = custom as f32;
                SetModeParams { base_mode, custom_mode, custom_sub_mode: 0.0 }
            }
        })
    }

    /// The mode `DO_SET_MODE` params select (the inverse of [`AutopilotKind::set_mode_params`]), as a vehicle
    /// decodes the command. `None` for values that are not whole mode numbers.
    pub fn mode_from_set_mode_params(self, custom_mode: f32, custom_sub_mode: f32) -> Option<FlightMode> {
        let whole = |v: f32| (v.fract() == 0.0 && (0.0..=f32::from(u16::MAX)).contains(&v)).then_some(v);
        let main = whole(custom_mode)?;
        let sub = whole(custom_sub_mode)?;
        // Checked whole and in range above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (main, sub) = (main as u32, sub as u32);
        let raw = match self {
            AutopilotKind::Px4 => (main << 16) | (sub << 24),
            AutopilotKind::ArduPilot | AutopilotKind::Other => main,
        };
        Some(self.decode_mode(raw))
    }

    /// The name the autopilot's own tools show for `HEARTBEAT.custom_mode` (e.g. "AUTO", "AUTO.MISSION").
    pub fn mode_name(self, custom_mode: u32) -> String {
        match self {
            AutopilotKind::ArduPilot => ARDUCOPTER_MODES
                .iter()
                .find(|(number, _, _)| *number == custom_mode)
                .map_or_else(|| format!("MODE({custom_mode})"), |(_, name, _)| (*name).to_string()),
            AutopilotKind::Px4 => {
                let [_, _, main, sub] = custom_mode.to_le_bytes();
                let name = match (main, sub) {
                    (PX4_MAIN_MANUAL, _) => "MANUAL",
                    (PX4_MAIN_ALTCTL, _) => "ALTCTL",
                    (PX4_MAIN_POSCTL, _) => "POSCTL",
                    (PX4_MAIN_ACRO, _) => "ACRO",
                    (PX4_MAIN_OFFBOARD, _) => "OFFBOARD",
                    (PX4_MAIN_STABILIZED, _) => "STABILIZED",
                    (PX4_MAIN_AUTO, PX4_AUTO_READY) => "AUTO.READY",
                    (PX4_MAIN_AUTO, PX4_AUTO_TAKEOFF) => "AUTO.TAKEOFF",
                    (PX4_MAIN_AUTO, PX4_AUTO_LOITER) => "AUTO.LOITER",
                    (PX4_MAIN_AUTO, PX4_AUTO_MISSION) => "AUTO.MISSION",
                    (PX4_MAIN_AUTO, PX4_AUTO_RTL) => "AUTO.RTL",
                    (PX4_MAIN_AUTO, PX4_AUTO_LAND) => "AUTO.LAND",
                    _ => return format!("MODE({main}.{sub})"),
                };
                name.to_string()
            }
            AutopilotKind::Other => format!("MODE({custom_mode})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMED: [FlightMode; 9] = [
        FlightMode::Manual,
        FlightMode::AltitudeHold,
        FlightMode::PositionHold,
        FlightMode::Loiter,
        FlightMode::Mission,
        FlightMode::ReturnToLaunch,
        FlightMode::Land,
        FlightMode::Acro,
        FlightMode::Guided,
    ];

    #[test]
    fn arducopter_numbers_are_the_firmware_ones() {
        let ap = AutopilotKind::ArduPilot;
        assert_eq!(ap.decode_mode(3), FlightMode::Mission);
        assert_eq!(ap.decode_mode(4), FlightMode::Guided);
        assert_eq!(ap.decode_mode(5), FlightMode::Loiter);
        assert_eq!(ap.decode_mode(6), FlightMode::ReturnToLaunch);
        assert_eq!(ap.decode_mode(9), FlightMode::Land);
        assert_eq!(ap.decode_mode(99), FlightMode::Unknown(99));
        assert_eq!(ap.mode_name(16), "POSHOLD");
        assert_eq!(ap.mode_name(99), "MODE(99)");
        assert_eq!(ap.encode_mode(FlightMode::Takeoff), Some(4));
    }

    #[test]
    fn px4_packs_main_and_sub_mode_in_the_high_bytes() {
        let px4 = AutopilotKind::Px4;
        // AUTO.MISSION = 4 << 16 | 4 << 24, as PX4's px4_custom_mode.h defines it.
        assert_eq!(px4.encode_mode(FlightMode::Mission), Some((4 << 16) | (4 << 24)));
        assert_eq!(px4.encode_mode(FlightMode::Loiter), Some((4 << 16) | (3 << 24)));
        assert_eq!(px4.encode_mode(FlightMode::PositionHold), Some(3 << 16));
        assert_eq!(px4.decode_mode((4 << 16) | (5 << 24)), FlightMode::ReturnToLaunch);
        assert_eq!(px4.mode_name((4 << 16) | (4 << 24)), "AUTO.MISSION");
        let params = px4.set_mode_params(FlightMode::Land).unwrap();
        assert_eq!((params.base_mode, params.custom_mode, params.custom_sub_mode), (1.0, 4.0, 6.0));
    }

    #[test]
    fn every_named_mode_round_trips_through_each_table() {
        for kind in [AutopilotKind::ArduPilot, AutopilotKind::Px4] {
            for mode in NAMED {
                let raw = kind.encode_mode(mode).unwrap_or_else(|| panic!("{kind:?} lacks {mode:?}"));
                let decoded = kind.decode_mode(raw);
                // PX4 has one hold mode for loiter and guided.
                let expected =
                    if kind == AutopilotKind::Px4 && mode == FlightMode::Guided { FlightMode::Loiter } else { mode };
                assert_eq!(decoded, expected, "{kind:?} {mode:?}");
                let params = kind.set_mode_params(mode).unwrap();
                assert_eq!(kind.mode_from_set_mode_params(params.custom_mode, params.custom_sub_mode), Some(expected));
            }
        }
    }

    #[test]
    fn fractional_set_mode_params_are_rejected() {
        assert_eq!(AutopilotKind::ArduPilot.mode_from_set_mode_params(3.5, 0.0), None);
        assert_eq!(AutopilotKind::Px4.mode_from_set_mode_params(-1.0, 0.0), None);
    }
}
