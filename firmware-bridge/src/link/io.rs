//! The link task: opening sockets and devices, the receive/send loops, and the reconnect loop.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mavlink::MAVLinkV2MessageRaw;
use mavlink::dialects::ardupilotmega::{HEARTBEAT_DATA, MavAutopilot, MavModeFlag, MavState, MavType};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{LinkAddress, LinkConfig, LinkState, Outgoing};
use crate::error::BridgeError;
use crate::frame::{Frame, FrameDecoder, FrameEncoder, LinkCounters, MAX_FRAME_LEN, MavMessage};
use crate::signing::LinkSigning;

/// A server socket bound before the task starts.
pub(super) enum Bound {
    Udp(UdpSocket),
    Tcp(TcpListener),
    None,
}

impl Bound {
    /// The local address of a bound server socket.
    pub(super) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Bound::Udp(socket) => socket.local_addr().ok(),
            Bound::Tcp(listener) => listener.local_addr().ok(),
            Bound::None => None,
        }
    }
}

pub(super) async fn bind_server(address: &LinkAddress) -> Result<Bound, BridgeError> {
    let bind_err = |a: &str, source| BridgeError::Bind { address: a.to_string(), source };
    match address {
        LinkAddress::UdpIn(a) => Ok(Bound::Udp(UdpSocket::bind(a.as_str()).await.map_err(|e| bind_err(a, e))?)),
        LinkAddress::TcpIn(a) => Ok(Bound::Tcp(TcpListener::bind(a.as_str()).await.map_err(|e| bind_err(a, e))?)),
        _ => Ok(Bound::None),
    }
}

/// Why a session ended.
enum End {
    Cancelled,
    /// The bridge dropped the inbound receiver.
    BridgeGone,
    Failed(io::Error),
}

pub(super) struct LinkTask {
    config: LinkConfig,
    bound: Bound,
    counters: Arc<LinkCounters>,
    signing: Option<Arc<LinkSigning>>,
    inbound: mpsc::Sender<Frame>,
    outgoing: mpsc::Receiver<Outgoing>,
    state: watch::Sender<LinkState>,
    cancel: CancellationToken,
    encoder: FrameEncoder,
    raw: MAVLinkV2MessageRaw,
}

fn gcs_heartbeat() -> MavMessage {
    MavMessage::HEARTBEAT(HEARTBEAT_DATA {
        custom_mode: 0,
        mavtype: MavType::MAV_TYPE_GCS,
        autopilot: MavAutopilot::MAV_AUTOPILOT_INVALID,
        base_mode: MavModeFlag::empty(),
        system_status: MavState::MAV_STATE_ACTIVE,
        mavlink_version: 3,
    })
}

impl LinkTask {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: LinkConfig,
        bound: Bound,
        counters: Arc<LinkCounters>,
        signing: Option<Arc<LinkSigning>>,
        inbound: mpsc::Sender<Frame>,
        outgoing: mpsc::Receiver<Outgoing>,
        state: watch::Sender<LinkState>,
        cancel: CancellationToken,
    ) -> Self {
        let encoder = FrameEncoder::new(config.system_id, config.component_id, signing.clone());
        Self {
            config,
            bound,
            counters,
            signing,
            inbound,
            outgoing,
            state,
            cancel,
            encoder,
            raw: MAVLinkV2MessageRaw::new(),
        }
    }

    /// Runs until cancelled. Cancel safety: not applicable (a task body).
    pub(super) async fn run(mut self) {
        let address = self.config.address.clone();
        let mut attempt = 0u32;
        let cancel = self.cancel.clone();
        loop {
            self.state.send_replace(LinkState::Connecting);
            let started = Instant::now();
            let end = tokio::select! {
                () = cancel.cancelled() => End::Cancelled,
                end = self.session() => end,
            };
            let error = match end {
                End::Cancelled | End::BridgeGone => break,
                End::Failed(error) => error,
            };
            // A session that ran a while was a success: start the backoff afresh.
            if started.elapsed() > self.config.reconnect.max {
                attempt = 0;
            }
            attempt = attempt.saturating_add(1);
            let retry_in = self.config.reconnect.delay(attempt, rand::rng().random::<f64>());
            if attempt == 1 {
                tracing::warn!(link = %address, %error, ?retry_in, "Link down, reconnecting.");
            } else {
                tracing::debug!(link = %address, %error, attempt, ?retry_in, "Reconnect failed.");
            }
            self.state.send_replace(LinkState::Reconnecting { attempt, retry_in, error: error.to_string() });
            tokio::select! {
                () = self.cancel.cancelled() => break,
                () = tokio::time::sleep(retry_in) => {}
            }
        }
        self.state.send_replace(LinkState::Stopped);
        tracing::info!(link = %address, "Link stopped.");
    }

    fn connected(&self) {
        if *self.state.borrow() != LinkState::Connected {
            tracing::info!(link = %self.config.address, "Link up.");
        }
        self.state.send_replace(LinkState::Connected);
    }

    async fn session(&mut self) -> End {
        match self.config.address.clone() {
            LinkAddress::UdpIn(a) => {
                let socket = match std::mem::replace(&mut self.bound, Bound::None) {
                    Bound::Udp(socket) => socket,
                    _ => match UdpSocket::bind(a.as_str()).await {
                        Ok(socket) => socket,
                        Err(e) => return End::Failed(e),
                    },
                };
                self.connected();
                self.run_udp(socket, None).await
            }
            LinkAddress::UdpOut(a) => {
                let peer = match tokio::net::lookup_host(a.as_str()).await.map(|mut it| it.next()) {
                    Ok(Some(peer)) => peer,
                    Ok(None) => return End::Failed(io::Error::new(io::ErrorKind::NotFound, format!("{a} not found"))),
                    Err(e) => return End::Failed(e),
                };
                let local = if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let socket = match UdpSocket::bind(local).await {
                    Ok(socket) => socket,
                    Err(e) => return End::Failed(e),
                };
                self.connected();
                self.run_udp(socket, Some(peer)).await
            }
            LinkAddress::TcpIn(a) => {
                let listener = match std::mem::replace(&mut self.bound, Bound::None) {
                    Bound::Tcp(listener) => listener,
                    _ => match TcpListener::bind(a.as_str()).await {
                        Ok(listener) => listener,
                        Err(e) => return End::Failed(e),
                    },
                };
                let accepted = listener.accept().await;
                // Keep listening on the same port for the next client.
                self.bound = Bound::Tcp(listener);
                match accepted {
                    Ok((stream, peer)) => {
                        tracing::info!(link = %self.config.address, %peer, "TCP client connected.");
                        self.connected();
                        self.run_stream(stream).await
                    }
                    Err(e) => End::Failed(e),
                }
            }
            LinkAddress::TcpOut(a) => match TcpStream::connect(a.as_str()).await {
                Ok(stream) => {
                    self.connected();
                    self.run_stream(stream).await
                }
                Err(e) => End::Failed(e),
            },
            LinkAddress::Serial { path, baud } => {
                use tokio_serial::SerialPortBuilderExt;
                match tokio_serial::new(path.to_string_lossy(), baud).open_native_async() {
                    Ok(stream) => {
                        self.connected();
                        self.run_stream(stream).await
                    }
                    Err(e) => End::Failed(io::Error::other(e)),
                }
            }
        }
    }

    fn encode(&mut self, message: &MavMessage) -> &[u8] {
        self.encoder.encode(message, &mut self.raw)
    }

    async fn run_udp(&mut self, socket: UdpSocket, fixed_peer: Option<SocketAddr>) -> End {
        let mut decoder = FrameDecoder::with_signing(self.counters.clone(), self.signing.clone(), true);
        let mut peers: HashMap<u8, SocketAddr> = HashMap::new();
        let mut buf = vec![0u8; 65_536];
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let heartbeat_msg = gcs_heartbeat();
        loop {
            tokio::select! {
                received = socket.recv_from(&mut buf) => {
                    let (n, src) = match received {
                        Ok(v) => v,
                        // ICMP port unreachable from an earlier send surfaces here on Linux: not fatal.
                        Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => continue,
                        Err(e) => return End::Failed(e),
                    };
                    decoder.push(&buf[..n]);
                    while let Some(frame) = decoder.next_frame() {
                        peers.insert(frame.system_id, src);
                        if self.inbound.send(frame).await.is_err() {
                            return End::BridgeGone;
                        }
                    }
                }
                out = self.outgoing.recv() => {
                    let Some(out) = out else { return End::BridgeGone };
                    let targets: Vec<SocketAddr> = match (fixed_peer, out.target_system) {
                        (Some(peer), _) => vec![peer],
                        (None, 0) => distinct(peers.values().copied()),
                        (None, sysid) => peers.get(&sysid).copied().into_iter().collect(),
                    };
                    if targets.is_empty() {
                        self.counters.unroutable();
                        continue;
                    }
                    let counters = self.counters.clone();
                    let bytes = self.encode(&out.message).to_vec();
                    send_udp(&socket, &bytes, &targets, &counters).await;
                }
                _ = heartbeat.tick() => {
                    let targets = match fixed_peer {
                        Some(peer) => vec![peer],
                        None => distinct(peers.values().copied()),
                    };
                    if targets.is_empty() {
                        continue;
                    }
                    let counters = self.counters.clone();
                    let bytes = self.encode(&heartbeat_msg).to_vec();
                    send_udp(&socket, &bytes, &targets, &counters).await;
                }
            }
        }
    }

    async fn run_stream<S: AsyncRead + AsyncWrite + Unpin>(&mut self, stream: S) -> End {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut decoder = FrameDecoder::with_signing(self.counters.clone(), self.signing.clone(), false);
        let mut buf = vec![0u8; 4 * MAX_FRAME_LEN];
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let heartbeat_msg = gcs_heartbeat();
        loop {
            let to_send = tokio::select! {
                read = reader.read(&mut buf) => {
                    match read {
                        Ok(0) => {
                            decoder.end_datagram();
                            return End::Failed(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by peer"));
                        }
                        Ok(n) => decoder.push(&buf[..n]),
                        Err(e) => return End::Failed(e),
                    }
                    while let Some(frame) = decoder.next_frame() {
                        if self.inbound.send(frame).await.is_err() {
                            return End::BridgeGone;
                        }
                    }
                    continue;
                }
                out = self.outgoing.recv() => match out {
                    Some(out) => out.message,
                    None => return End::BridgeGone,
                },
                _ = heartbeat.tick() => heartbeat_msg.clone(),
            };
            let bytes = self.encode(&to_send).to_vec();
            match writer.write_all(&bytes).await {
                Ok(()) => self.counters.tx_ok(),
                Err(e) => {
                    self.counters.tx_error();
                    return End::Failed(e);
                }
            }
        }
    }
}

fn distinct(addrs: impl Iterator<Item = SocketAddr>) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in addrs {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

async fn send_udp(socket: &UdpSocket, bytes: &[u8], targets: &[SocketAddr], counters: &LinkCounters) {
    for target in targets {
        match socket.send_to(bytes, target).await {
            Ok(_) => counters.tx_ok(),
            Err(error) => {
                // A UDP send error (no route, buffer full) loses one packet; the protocols above retry.
                counters.tx_error();
                tracing::trace!(%target, %error, "UDP send failed.");
            }
        }
    }
}
