//! Errors of the firmware bridge.

use std::path::PathBuf;
use std::time::Duration;

use mission_planner::mission_item::MissionKind;

use crate::mode::{AutopilotKind, FlightMode};

/// Errors opening links and finding vehicles.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A link address that is not one of the supported forms.
    #[error(
        "invalid link address {address:?}: {reason} (expected udpin:HOST:PORT, udpout:HOST:PORT, tcpin:HOST:PORT, \
         tcpout:HOST:PORT or serial:DEVICE:BAUD, e.g. udpin:0.0.0.0:14550 or serial:/dev/ttyUSB0:57600)"
    )]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A signing key that is not 32 bytes.
    #[error("invalid signing key: {reason}")]
    InvalidSigningKey {
        /// What is wrong with it.
        reason: String,
    },
    /// A UDP or TCP server socket could not be bound.
    #[error("cannot listen on {address}: {source} (is another ground station or MAVProxy using the port?)")]
    Bind {
        /// The address we tried to bind.
        address: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A host name could not be resolved.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host:port.
        host: String,
        /// The resolver error.
        #[source]
        source: std::io::Error,
    },
    /// A serial device could not be opened.
    #[error("cannot open serial device {}: {source}", path.display())]
    Serial {
        /// The device path.
        path: PathBuf,
        /// The driver error.
        #[source]
        source: tokio_serial::Error,
    },
    /// No vehicle with this system id was heard in time.
    #[error("no vehicle with system id {system_id} heard within {waited:?}")]
    VehicleNotFound {
        /// The system id waited for.
        system_id: u8,
        /// How long we waited.
        waited: Duration,
    },
    /// The bridge has stopped (cancelled or its tasks ended).
    #[error("the bridge has stopped")]
    Stopped,
}

/// What a `COMMAND_ACK` said (`MAV_RESULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommandResult {
    /// `MAV_RESULT_TEMPORARILY_REJECTED`: try again later.
    TemporarilyRejected,
    /// `MAV_RESULT_DENIED`.
    Denied,
    /// `MAV_RESULT_UNSUPPORTED`.
    Unsupported,
    /// `MAV_RESULT_FAILED`.
    Failed,
    /// `MAV_RESULT_CANCELLED`.
    Cancelled,
    /// `MAV_RESULT_COMMAND_LONG_ONLY`.
    CommandLongOnly,
    /// `MAV_RESULT_COMMAND_INT_ONLY`.
    CommandIntOnly,
    /// `MAV_RESULT_COMMAND_UNSUPPORTED_MAV_FRAME`.
    UnsupportedFrame,
    /// `MAV_RESULT_NOT_IN_CONTROL`.
    NotInControl,
    /// Another value.
    Other(u8),
}

/// Errors of vehicle commands.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The autopilot answered with a refusal. `reason` is its most recent STATUSTEXT, e.g.
    /// "PreArm: EKF attitude is bad".
    #[error("{name} refused by the vehicle ({result:?}){}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Refused {
        /// `MAV_CMD` number.
        command: u16,
        /// A readable name of the command.
        name: String,
        /// The `MAV_RESULT`.
        result: CommandResult,
        /// The autopilot's most recent STATUSTEXT when it refused.
        reason: Option<String>,
    },
    /// No `COMMAND_ACK` after every retry.
    #[error("{name} got no answer after {attempts} attempts (link down or vehicle busy?)")]
    Timeout {
        /// `MAV_CMD` number.
        command: u16,
        /// A readable name of the command.
        name: String,
        /// How many times it was sent.
        attempts: u32,
    },
    /// The vehicle's autopilot has no such mode.
    #[error("{autopilot:?} has no {mode:?} mode")]
    UnsupportedMode {
        /// The autopilot.
        autopilot: AutopilotKind,
        /// The mode asked for.
        mode: FlightMode,
    },
    /// A parameter out of range (e.g. a non-finite altitude).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// The vehicle's actor has stopped (bridge shut down).
    #[error("the vehicle is no longer tracked (bridge stopped)")]
    VehicleGone,
}

impl CommandError {
    /// Whether trying again later may succeed (timeouts and temporary rejections).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CommandError::Timeout { .. }
                | CommandError::Refused { result: CommandResult::TemporarilyRejected, .. }
                | CommandError::Refused { result: CommandResult::Denied, .. }
        )
    }
}

/// Every error a `MISSION_ACK` can carry (`MAV_MISSION_RESULT`), one variant each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissionAckError {
    /// `MAV_MISSION_ERROR`: generic error.
    Error,
    /// `MAV_MISSION_UNSUPPORTED_FRAME`.
    UnsupportedFrame,
    /// `MAV_MISSION_UNSUPPORTED`: command not supported.
    Unsupported,
    /// `MAV_MISSION_NO_SPACE`: too many items.
    NoSpace,
    /// `MAV_MISSION_INVALID`: a parameter is invalid.
    Invalid,
    /// `MAV_MISSION_INVALID_PARAM1`.
    InvalidParam1,
    /// `MAV_MISSION_INVALID_PARAM2`.
    InvalidParam2,
    /// `MAV_MISSION_INVALID_PARAM3`.
    InvalidParam3,
    /// `MAV_MISSION_INVALID_PARAM4`.
    InvalidParam4,
    /// `MAV_MISSION_INVALID_PARAM5_X`.
    InvalidParam5X,
    /// `MAV_MISSION_INVALID_PARAM6_Y`.
    InvalidParam6Y,
    /// `MAV_MISSION_INVALID_PARAM7`.
    InvalidParam7,
    /// `MAV_MISSION_INVALID_SEQUENCE`: item received out of sequence.
    InvalidSequence,
    /// `MAV_MISSION_DENIED`: not accepting mission commands now.
    Denied,
    /// `MAV_MISSION_OPERATION_CANCELLED`.
    OperationCancelled,
    /// A value this table does not know.
    Other(u8),
}

impl MissionAckError {
    /// The error for a `MAV_MISSION_RESULT` number, `None` for 0 (accepted).
    pub fn from_number(n: u8) -> Option<Self> {
        Some(match n {
            0 => return None,
            1 => Self::Error,
            2 => Self::UnsupportedFrame,
            3 => Self::Unsupported,
            4 => Self::NoSpace,
            5 => Self::Invalid,
            6 => Self::InvalidParam1,
            7 => Self::InvalidParam2,
            8 => Self::InvalidParam3,
            9 => Self::InvalidParam4,
            10 => Self::InvalidParam5X,
            11 => Self::InvalidParam6Y,
            12 => Self::InvalidParam7,
            13 => Self::InvalidSequence,
            14 => Self::Denied,
            15 => Self::OperationCancelled,
            other => Self::Other(other),
        })
    }

    /// The `MAV_MISSION_RESULT` number.
    pub fn number(self) -> u8 {
        match self {
            Self::Error => 1,
            Self::UnsupportedFrame => 2,
            Self::Unsupported => 3,
            Self::NoSpace => 4,
            Self::Invalid => 5,
            Self::InvalidParam1 => 6,
            Self::InvalidParam2 => 7,
            Self::InvalidParam3 => 8,
            Self::InvalidParam4 => 9,
            Self::InvalidParam5X => 10,
            Self::InvalidParam6Y => 11,
            Self::InvalidParam7 => 12,
            Self::InvalidSequence => 13,
            Self::Denied => 14,
            Self::OperationCancelled => 15,
            Self::Other(n) => n,
        }
    }
}

/// Which step of a mission transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissionStage {
    /// Waiting for the vehicle to request the first item after `MISSION_COUNT`.
    Count,
    /// Waiting for the vehicle to request the next item (or ack) after sending item `seq`.
    Item {
        /// The last item sent.
        seq: u16,
    },
    /// Waiting for `MISSION_COUNT` after `MISSION_REQUEST_LIST`.
    RequestList,
    /// Waiting for item `seq` after requesting it.
    Download {
        /// The item requested.
        seq: u16,
    },
    /// Waiting for the ack of `MISSION_CLEAR_ALL`.
    Clear,
    /// Waiting for `MISSION_CURRENT` after `MISSION_SET_CURRENT`.
    SetCurrent,
}

/// Errors of mission, fence and rally transfers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MissionError {
    /// The vehicle refused with a `MISSION_ACK` error.
    #[error("{kind:?} rejected by the vehicle at {stage:?}: {error:?} ({items_sent} of {total} items sent)")]
    Rejected {
        /// Which list.
        kind: MissionKind,
        /// The ack error.
        error: MissionAckError,
        /// Where the transfer was.
        stage: MissionStage,
        /// How many distinct items had been sent (uploads) or received (downloads).
        items_sent: u16,
        /// How many items the transfer had.
        total: u16,
    },
    /// No answer after every retry.
    #[error("{kind:?} transfer timed out at {stage:?} after {attempts} attempts ({items_sent} of {total} items done)")]
    Timeout {
        /// Which list.
        kind: MissionKind,
        /// Where the transfer was.
        stage: MissionStage,
        /// How many times the last message was sent.
        attempts: u32,
        /// How many distinct items had been transferred.
        items_sent: u16,
        /// How many items the transfer had (0 when unknown).
        total: u16,
    },
    /// More items than the protocol can number.
    #[error("{count} items do not fit a MAVLink mission (at most 65535)")]
    TooManyItems {
        /// The item count.
        count: usize,
    },
    /// An item the MAVLink dialect cannot carry (unknown command or frame number); nothing was sent.
    #[error("item {index} cannot be sent: {reason}")]
    UnsupportedItem {
        /// Index in the list given.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Another transfer is running on this vehicle.
    #[error("another mission transfer is running on this vehicle")]
    Busy,
    /// The vehicle's actor has stopped (bridge shut down).
    #[error("the vehicle is no longer tracked (bridge stopped)")]
    VehicleGone,
}
