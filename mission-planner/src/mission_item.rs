//! The raw mission item: one row of a mission as autopilots, `.plan` and `QGC WPL 110` files hold it.
//!
//! This is the exchange format between the planner (which builds typed missions and reads/writes files) and
//! the firmware bridge (which uploads and downloads items). It mirrors `MISSION_ITEM_INT` without depending on
//! any MAVLink library: command and frame numbers are the MAVLink ones.

use serde::{Deserialize, Serialize};

/// Which of the three mission lists an item belongs to (`MAV_MISSION_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissionKind {
    /// Waypoints and actions.
    Mission,
    /// Geofence polygons and circles.
    Fence,
    /// Rally (safe landing) points.
    Rally,
}

/// The coordinate frame of an item's position (`MAV_FRAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissionFrame {
    /// `MAV_FRAME_GLOBAL` (0): altitude above mean sea level.
    Global,
    /// `MAV_FRAME_MISSION` (2): the item has no position (commands such as `DO_SET_CAM_TRIGG_DIST`).
    Mission,
    /// `MAV_FRAME_GLOBAL_RELATIVE_ALT` (3): altitude above home.
    GlobalRelativeAlt,
    /// `MAV_FRAME_GLOBAL_TERRAIN_ALT` (10): altitude above terrain.
    GlobalTerrainAlt,
    /// Any other frame number, kept as is.
    Other(u8),
}

impl MissionFrame {
    /// The `MAV_FRAME` number. The `*_INT` variants (5, 6, 11) are folded into the plain ones on reading.
    pub fn number(self) -> u8 {
        match self {
            MissionFrame::Global => 0,
            MissionFrame::Mission => 2,
            MissionFrame::GlobalRelativeAlt => 3,
            MissionFrame::GlobalTerrainAlt => 10,
            MissionFrame::Other(n) => n,
        }
    }

    /// The frame for a `MAV_FRAME` number.
    pub fn from_number(number: u8) -> Self {
        match number {
            0 | 5 => MissionFrame::Global,
            2 => MissionFrame::Mission,
            3 | 6 => MissionFrame::GlobalRelativeAlt,
            10 | 11 => MissionFrame::GlobalTerrainAlt,
            n => MissionFrame::Other(n),
        }
    }
}

/// Well-known `MAV_CMD` numbers used by patrols.
pub mod cmd {
    /// `MAV_CMD_NAV_WAYPOINT`.
    pub const NAV_WAYPOINT: u16 = 16;
    /// `MAV_CMD_NAV_LOITER_UNLIM`.
    pub const NAV_LOITER_UNLIM: u16 = 17;
    /// `MAV_CMD_NAV_LOITER_TIME`.
    pub const NAV_LOITER_TIME: u16 = 19;
    /// `MAV_CMD_NAV_RETURN_TO_LAUNCH`.
    pub const NAV_RETURN_TO_LAUNCH: u16 = 20;
    /// `MAV_CMD_NAV_LAND`.
    pub const NAV_LAND: u16 = 21;
    /// `MAV_CMD_NAV_TAKEOFF`.
    pub const NAV_TAKEOFF: u16 = 22;
    /// `MAV_CMD_DO_CHANGE_SPEED`.
    pub const DO_CHANGE_SPEED: u16 = 178;
    /// `MAV_CMD_DO_SET_CAM_TRIGG_DIST`.
    pub const DO_SET_CAM_TRIGG_DIST: u16 = 206;
    /// `MAV_CMD_DO_MOUNT_CONTROL`.
    pub const DO_MOUNT_CONTROL: u16 = 205;
    /// `MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW`.
    pub const DO_GIMBAL_MANAGER_PITCHYAW: u16 = 1000;
    /// `MAV_CMD_IMAGE_START_CAPTURE`.
    pub const IMAGE_START_CAPTURE: u16 = 2000;
    /// `MAV_CMD_IMAGE_STOP_CAPTURE`.
    pub const IMAGE_STOP_CAPTURE: u16 = 2001;
    /// `MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION`.
    pub const NAV_FENCE_POLYGON_VERTEX_INCLUSION: u16 = 5001;
    /// `MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION`.
    pub const NAV_FENCE_POLYGON_VERTEX_EXCLUSION: u16 = 5002;
    /// `MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION`.
    pub const NAV_FENCE_CIRCLE_INCLUSION: u16 = 5003;
    /// `MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION`.
    pub const NAV_FENCE_CIRCLE_EXCLUSION: u16 = 5004;
    /// `MAV_CMD_NAV_RALLY_POINT`.
    pub const NAV_RALLY_POINT: u16 = 5100;
}

/// One mission item, as `MISSION_ITEM_INT` carries it (without sequence number and target ids: an item's
/// sequence is its index in the list).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MissionItem {
    /// `MAV_CMD` number.
    pub command: u16,
    /// Coordinate frame.
    pub frame: MissionFrame,
    /// Whether this is the current item (only meaningful when downloaded).
    pub current: bool,
    /// Whether the vehicle continues to the next item by itself.
    pub autocontinue: bool,
    /// param1..param4, meaning depends on `command`.
    pub params: [f32; 4],
    /// param5: latitude in degrees * 1e7 for global frames, else a local x.
    pub x: i32,
    /// param6: longitude in degrees * 1e7 for global frames, else a local y.
    pub y: i32,
    /// param7: altitude in metres (meaning given by `frame`).
    pub z: f32,
}

impl MissionItem {
    /// An item with no position (`MAV_FRAME_MISSION`) and the given parameters.
    pub fn command(command: u16, params: [f32; 4]) -> Self {
        Self { command, frame: MissionFrame::Mission, current: false, autocontinue: true, params, x: 0, y: 0, z: 0.0 }
    }

    /// An item at a position, altitude relative to home.
    pub fn at(command: u16, params: [f32; 4], lat_e7: i32, lon_e7: i32, rel_alt_m: f32) -> Self {
        Self {
            command,
            frame: MissionFrame::GlobalRelativeAlt,
            current: false,
            autocontinue: true,
            params,
            x: lat_e7,
            y: lon_e7,
            z: rel_alt_m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_frames_fold_into_plain_ones() {
        assert_eq!(MissionFrame::from_number(6), MissionFrame::GlobalRelativeAlt);
        assert_eq!(MissionFrame::from_number(5), MissionFrame::Global);
        assert_eq!(MissionFrame::from_number(3).number(), 3);
        assert_eq!(MissionFrame::from_number(7), MissionFrame::Other(7));
    }
}
