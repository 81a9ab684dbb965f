//! The task that runs one simulated drone: its UDP socket, the sim clock ticks, and the camera render jobs.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use mavlink::consts::v2::IFLAG_SIGNED;
use mavlink::dialects::ardupilotmega::{CAMERA_IMAGE_CAPTURED_DATA, MavBool, MavMessage};
use mavlink::error::MessageReadError;
use mavlink::{MAVLinkMessageRaw, MavHeader, MavlinkReader, Message, SigningConfig, SigningData};
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, trace, warn};

use super::autopilot::{Autopilot, CaptureJob, Outgoing};
use super::camera::{self, CameraConfig, ImageStore, WorldRaster};
use super::{SimClock, SimStats};
use crate::signing::SigningKey;

/// Most peers a drone answers at once (the configured GCS plus whoever talked to it last).
const MAX_PEERS: usize = 8;
/// Renders in flight per drone; a capture beyond that is reported as failed (a busy camera misses shots).
const RENDERS_IN_FLIGHT: usize = 2;
/// Largest sim step per physics update.
const MAX_STEP_S: f64 = 0.1;
/// Most sim time one tick catches up (so a stalled process does not replay minutes at once).
const MAX_CATCH_UP_S: f64 = 30.0;

/// What a drone renders with.
#[derive(Debug, Clone)]
pub(crate) struct RenderContext {
    pub(crate) world: Option<Arc<WorldRaster>>,
    pub(crate) store: ImageStore,
    /// `http://127.0.0.1:PORT`, or `None` when the image server is off.
    pub(crate) http_base: Option<String>,
    pub(crate) camera: CameraConfig,
}

/// One drone's task state.
pub(crate) struct DroneTask {
    pub(crate) system_id: u8,
    pub(crate) autopilot: Autopilot,
    pub(crate) socket: UdpSocket,
    pub(crate) peers: Vec<SocketAddr>,
    pub(crate) clock: SimClock,
    pub(crate) tick: Duration,
    pub(crate) render: RenderContext,
    pub(crate) tracker: TaskTracker,
    pub(crate) stats: Arc<SimStats>,
    pub(crate) signing: Option<SigningData>,
    pub(crate) sequences: [u8; 256],
}

impl DroneTask {
    /// Builds the signing state from a key: outgoing packets signed, unsigned incoming refused.
    pub(crate) fn signing_from_key(key: Option<&SigningKey>, link_id: u8) -> Option<SigningData> {
        key.map(|k| SigningData::from_config(SigningConfig::new(*k.as_bytes(), link_id, true, false)))
    }

    /// Runs until `token` is cancelled.
    ///
    /// Cancel safety: cancellation is checked between events; a datagram being handled is finished first.
    pub(crate) async fn run(mut self, token: CancellationToken) {
        let (done_tx, mut done_rx) = mpsc::channel::<CAMERA_IMAGE_CAPTURED_DATA>(16);
        let permits = Arc::new(Semaphore::new(RENDERS_IN_FLIGHT));
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut buf = vec![0u8; 4096];
        info!(system_id = self.system_id, local = %self.socket.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "Simulated drone up.");
        loop {
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) => {
                        self.remember_peer(from);
                        self.on_datagram(n, &buf);
                    }
                    Err(error) => self.on_recv_error(&error),
                },
                Some(done) = done_rx.recv() => self.autopilot.captured(done),
                _ = ticker.tick() => {
                    let wall = self.clock.wall();
                    let target_s = self.clock.sim_s();
                    let mut behind = (target_s - self.autopilot.sim_time_s()).min(MAX_CATCH_UP_S);
                    while behind > 1e-9 {
                        let dt = behind.min(MAX_STEP_S);
                        self.autopilot.step(dt);
                        behind -= dt;
                    }
                    self.autopilot.tick(wall);
                }
            }
            let (outgoing, jobs) = self.autopilot.take_output();
            for job in jobs {
                self.start_render(job, &permits, &done_tx);
            }
            self.send_all(&outgoing).await;
        }
        debug!(system_id = self.system_id, "Simulated drone stopped.");
    }

    fn remember_peer(&mut self, from: SocketAddr) {
        if !self.peers.contains(&from) {
            if self.peers.len() >= MAX_PEERS {
                // Keep the configured GCS (first); forget the oldest other peer.
                self.peers.remove(1.min(self.peers.len() - 1));
            }
            debug!(system_id = self.system_id, peer = %from, "New peer.");
            self.peers.push(from);
        }
    }

    fn on_datagram(&mut self, n: usize, buf: &[u8]) {
        let wall = self.clock.wall();
        let mut reader = MavlinkReader::new(&buf[..n]);
        // A datagram holds a handful of frames at most; the bound guards against a parser that stops consuming.
        for _ in 0..64 {
            // Read without verifying, so that each frame a signed link refuses is counted by why: the reader's
            // own verification drops unsigned, forged and replayed frames alike, and silently.
            let raw = match reader.read_any_raw_message::<MavMessage>() {
                Ok(raw) => raw,
                Err(MessageReadError::Io(error)) if error.kind() == ErrorKind::UnexpectedEof => break,
                Err(MessageReadError::Io(error)) => {
                    warn!(system_id = self.system_id, %error, "Reading a datagram failed.");
                    break;
                }
                Err(MessageReadError::Parse(error)) => {
                    self.stats.rx_malformed.fetch_add(1, Ordering::Relaxed);
                    trace!(system_id = self.system_id, %error, "Undecodable MAVLink frame.");
                    continue;
                }
            };
            if !self.signature_accepted(&raw) {
                continue;
            }
            let header =
                MavHeader { system_id: raw.system_id(), component_id: raw.component_id(), sequence: raw.sequence() };
            match MavMessage::parse(raw.version(), raw.message_id(), raw.payload()) {
                Ok(msg) => {
                    self.stats.rx_messages.fetch_add(1, Ordering::Relaxed);
                    trace!(system_id = self.system_id, from = header.system_id, msg = ?msg, "Received.");
                    self.autopilot.handle(&header, &msg, wall);
                }
                Err(error) => {
                    self.stats.rx_malformed.fetch_add(1, Ordering::Relaxed);
                    trace!(system_id = self.system_id, %error, "Undecodable MAVLink frame.");
                }
            }
        }
    }

    /// Whether a frame may be handled: always without a key; with one, only a MAVLink 2 frame whose signature
    /// verifies and whose timestamp is newer than the last one of its stream. Refusals are counted as unsigned
    /// (MAVLink 1 cannot be signed) or as a bad signature (wrong key, tampered, replayed or stale).
    fn signature_accepted(&self, raw: &MAVLinkMessageRaw) -> bool {
        let Some(signing) = &self.signing else { return true };
        let counter = match raw {
            MAVLinkMessageRaw::V2(frame) if frame.incompatibility_flags() & IFLAG_SIGNED != 0 => {
                if signing.verify_signature(frame) {
                    return true;
                }
                &self.stats.rx_bad_signature_dropped
            }
            MAVLinkMessageRaw::V1(_) | MAVLinkMessageRaw::V2(_) => &self.stats.rx_unsigned_dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        trace!(system_id = self.system_id, from = raw.system_id(), "Frame refused by signing.");
        false
    }

    fn on_recv_error(&self, error: &std::io::Error) {
        match error.kind() {
            // ICMP port unreachable from an earlier send to a GCS that is not listening (yet).
            ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => {
                trace!(system_id = self.system_id, %error, "Peer not listening.");
            }
            _ => warn!(system_id = self.system_id, %error, "UDP receive failed."),
        }
    }

    async fn send_all(&mut self, outgoing: &[Outgoing]) {
        if outgoing.is_empty() || self.peers.is_empty() {
            return;
        }
        let mut frame = Vec::with_capacity(300);
        for out in outgoing {
            frame.clear();
            let sequence = &mut self.sequences[usize::from(out.component_id)];
            let header =
                MavHeader { system_id: u32::from(self.system_id), component_id: out.component_id, sequence: *sequence };
            *sequence = sequence.wrapping_add(1);
            if let Err(error) = mavlink::write_v2_msg_signed(&mut frame, header, &out.message, self.signing.as_ref()) {
                warn!(system_id = self.system_id, %error, "Encoding a MAVLink message failed.");
                continue;
            }
            for peer in &self.peers {
                match self.socket.send_to(&frame, peer).await {
                    Ok(_) => {
                        self.stats.tx_messages.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
                        trace!(system_id = self.system_id, peer = %peer, %error, "UDP send failed.");
                    }
                }
            }
        }
    }

    fn start_render(
        &mut self,
        job: CaptureJob,
        permits: &Arc<Semaphore>,
        done_tx: &mpsc::Sender<CAMERA_IMAGE_CAPTURED_DATA>,
    ) {
        let Some(base) = self.render.http_base.clone() else {
            // No image server: announce the capture without a file.
            self.autopilot.captured(job.announce);
            return;
        };
        let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
            self.stats.captures_dropped.fetch_add(1, Ordering::Relaxed);
            let mut failed = job.announce;
            failed.capture_result = MavBool::MAV_BOOL_FALSE;
            self.autopilot.captured(failed);
            return;
        };
        let ctx = self.render.clone();
        let intrinsics = self.autopilot.intrinsics();
        let system_id = self.system_id;
        let done_tx = done_tx.clone();
        let stats = Arc::clone(&self.stats);
        self.tracker.spawn_blocking(move || {
            let _permit = permit;
            let frame = camera::render(ctx.world.as_deref(), &intrinsics, &job.pose, ctx.camera.ground_rgb);
            let mut announce = job.announce;
            match camera::encode_jpeg(&frame, ctx.camera.jpeg_quality) {
                Ok(jpeg) => {
                    ctx.store.insert(system_id, job.image_index, Bytes::from(jpeg));
                    let url = format!("{base}{}", camera::image_path(system_id, job.image_index));
                    announce.file_url = url.as_str().into();
                    stats.captures_rendered.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    warn!(system_id, %error, "Encoding a camera frame failed.");
                    announce.capture_result = MavBool::MAV_BOOL_FALSE;
                }
            }
            if done_tx.blocking_send(announce).is_err() {
                debug!(system_id, "Drone stopped before its capture was announced.");
            }
        });
    }
}
