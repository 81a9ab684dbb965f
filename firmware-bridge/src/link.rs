//! Links: the socket or serial I/O of one MAVLink connection, with reconnects, signing and counters.
//!
//! A link is one tracked task that owns its socket. It decodes received bytes with
//! [`FrameDecoder`](crate::frame::FrameDecoder) and hands frames to the bridge; it encodes outgoing messages and
//! sends them to the right peer. On a `udpin` link every system id is answered at the address it was last
//! heard from, so several vehicles sharing one port each get their own replies. The link also sends the ground
//! station's own HEARTBEAT once a second (vehicles use it for their GCS failsafe, and a `udpout` peer learns our
//! address from it).
//!
//! When the connection fails the link retries with capped exponential backoff and jitter; its [`LinkState`]
//! is on a `watch`, and state transitions (not every retry) are logged.

mod address;
mod io;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use address::LinkAddress;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::BridgeError;
use crate::frame::{Frame, LinkCounters, MavMessage};
use crate::signing::{LinkSigning, SigningKey};

/// `MAV_COMP_ID_MISSIONPLANNER`: the component id ground stations use.
pub const GCS_COMPONENT_ID: u8 = 190;

/// How a link connects and identifies itself.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Where to connect.
    pub address: LinkAddress,
    /// MAVLink 2 signing key: with it, outgoing packets are signed and unsigned or wrongly signed incoming
    /// packets are dropped (and counted).
    pub signing_key: Option<SigningKey>,
    /// The signing link id of our packets.
    pub signing_link_id: u8,
    /// Our system id (255 is the usual ground station id).
    pub system_id: u8,
    /// Our component id.
    pub component_id: u8,
    /// Interval of our own GCS HEARTBEAT.
    pub heartbeat_interval: Duration,
    /// Reconnect delays.
    pub reconnect: Backoff,
}

impl LinkConfig {
    /// Defaults for `address`: GCS system id 255, no signing, 1 s heartbeat, 0.5 s to 30 s backoff.
    pub fn new(address: LinkAddress) -> Self {
        Self {
            address,
            signing_key: None,
            signing_link_id: 0,
            system_id: 255,
            component_id: GCS_COMPONENT_ID,
            heartbeat_interval: Duration::from_secs(1),
            reconnect: Backoff::default(),
        }
    }
}

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1-based): `initial * 2^(attempt-1)` capped at `max`, then
    /// scaled into `[50%, 100%]` by `jitter` (a number in `[0, 1)`) so many links do not retry in lockstep.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << exp).min(self.max);
        base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// The state of a link, as shown to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Opening the socket or device.
    Connecting,
    /// Open (for UDP: bound; for TCP: connected; for serial: the device is open).
    Connected,
    /// The last attempt failed; retrying after a delay.
    Reconnecting {
        /// How many attempts failed in a row.
        attempt: u32,
        /// The delay before the next attempt.
        retry_in: Duration,
        /// Why the last attempt failed.
        error: String,
    },
    /// Stopped (cancelled).
    Stopped,
}

/// A message for the link to send to `target_system` (0: every peer).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) target_system: u8,
    pub(crate) message: MavMessage,
}

/// The bridge's side of a running link.
#[derive(Debug, Clone)]
pub(crate) struct LinkParts {
    pub(crate) outgoing: mpsc::Sender<Outgoing>,
    pub(crate) state: watch::Receiver<LinkState>,
    pub(crate) counters: Arc<LinkCounters>,
    pub(crate) local_addr: Option<SocketAddr>,
}

/// Outgoing queue: bounded; senders use `try_send` and a full queue counts as a lost packet (the protocols
/// retry), so a stalled socket never blocks a vehicle actor.
const OUTGOING_CAPACITY: usize = 512;

/// Starts the link task. Server addresses (`udpin`, `tcpin`) are bound before this returns, so a port in use
/// is an error here; client links keep retrying in the background and show failures in [`LinkState`].
///
/// # Errors
/// [`BridgeError::Bind`] when a server address cannot be bound.
pub(crate) async fn spawn_link(
    config: &LinkConfig,
    inbound: mpsc::Sender<Frame>,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) -> Result<LinkParts, BridgeError> {
    let bound = io::bind_server(&config.address).await?;
    let local_addr = bound.local_addr();
    let counters = Arc::new(LinkCounters::default());
    let signing = config.signing_key.as_ref().map(|key| Arc::new(LinkSigning::new(key, config.signing_link_id)));
    let (out_tx, out_rx) = mpsc::channel(OUTGOING_CAPACITY);
    let (state_tx, state_rx) = watch::channel(LinkState::Connecting);
    let task = io::LinkTask::new(config.clone(), bound, counters.clone(), signing, inbound, out_rx, state_tx, cancel);
    tracker.spawn(task.run());
    Ok(LinkParts { outgoing: out_tx, state: state_rx, counters, local_addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_down_to_half() {
        let b = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2) };
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(b.delay(4, 1.0), Duration::from_millis(800));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(10, 0.5), Duration::from_millis(1500));
    }
}
