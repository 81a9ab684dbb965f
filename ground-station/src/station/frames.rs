//! The frame pipeline: every frame, however it arrived (downloaded after a live capture, pushed over HTTP,
//! offloaded from an SD card), becomes a [`PendingFrame`] (the JPEG and the pose it was taken at), runs through
//! the detector on its own thread, and each detection is georeferenced, saved as evidence and handed to the
//! hazard service, which stores it and its MQTT event in one transaction.
//!
//! Channels: frames wait in a bounded queue ([`FRAME_QUEUE`]); when it is full a frame is refused and counted
//! ([`FrameStats::dropped`]), never lost silently. Results come back over a bounded channel; the detector thread
//! waits when the result handler is behind.
//!
//! Gas: `NAMED_VALUE_FLOAT` readings with the configured name at or above the threshold become `gas`
//! observations at the drone's position at that moment.

use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use firmware_bridge::capture::Capture;
use firmware_bridge::vehicle::{VehicleEvent, VehicleEventKind};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use inference::{Detector, DetectorJob, DetectorOutput, DetectorThread, ImageDetections, ImageInput};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{GasSensorSettings, InferenceSettings};
use crate::district::District;
use crate::georef::{BoxPx, CapturePose, Georeferencer};
use crate::hazard::{AlarmKind, HazardKind, Position};
use crate::hazard_service::HazardHandle;
use crate::storage::{CaptureRecord, DetectionRecord, EvidenceStore, StorageError, StorageHandle};
use crate::tracking::{Locate, Observation, Picture};

use super::ActiveMissions;
use super::alarms::Alarms;
use super::fleet::Fleet;

/// Frames waiting for the detector.
pub const FRAME_QUEUE: usize = 64;
/// Results waiting for the handler.
const RESULT_QUEUE: usize = 8;
/// Frames the detector thread holds (the rest wait in the frame queue).
const DETECTOR_QUEUE: usize = 2;
/// Image downloads at once.
const DOWNLOADS: usize = 4;
/// Download attempts per image.
const DOWNLOAD_ATTEMPTS: u32 = 4;
/// Largest image downloaded.
const MAX_IMAGE_BYTES: usize = 64 * 1024 * 1024;
/// Crop margin around a box, as a share of its size (at least [`CROP_MIN_MARGIN_PX`]).
const CROP_MARGIN: f32 = 0.5;
const CROP_MIN_MARGIN_PX: f32 = 24.0;
/// Capture receive times kept for latency figures.
const RECEIVED_KEPT: usize = 10_000;
/// Extra one-sigma uncertainty of a gas reading's position: a TDLAS beam reads the column under the drone, and
/// the drone is anywhere over a plume that spreads about ten metres from its source. (Readings over one plume are
/// not independent, so they must not outweigh one photo of the leaking cylinder when fused.)
const GAS_EXTRA_UNCERTAINTY_M: f64 = 10.0;

/// How a frame reached the station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameSource {
    /// Downloaded from the `file_url` a drone's camera announced.
    Live,
    /// Posted by a companion computer.
    Pushed,
    /// Read from an SD card folder.
    Offloaded,
}

/// A frame and the pose it was taken at: what every way in produces.
#[derive(Debug, Clone)]
pub struct PendingFrame {
    /// Drone id.
    pub drone_id: String,
    /// Mission flown, if known (live frames look it up).
    pub mission_id: Option<String>,
    /// When the photo was taken.
    pub taken: SystemTime,
    /// The pose (intrinsics at any resolution: they are scaled to the decoded image).
    pub pose: CapturePose,
    /// The JPEG or PNG.
    pub image: Vec<u8>,
    /// How it came.
    pub source: FrameSource,
    /// When the station first heard of it (capture message or request), for latency figures.
    pub received: SystemTime,
}

/// Counters of the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Photos drones announced with a file URL to download (`CAMERA_IMAGE_CAPTURED`).
    pub captures_announced: u64,
    /// Capture messages without an image to download (`CAMERA_FEEDBACK`, `CAMERA_TRIGGER`: the photo stays on
    /// the camera and comes later by SD card or push).
    pub captures_without_image: u64,
    /// Frames accepted into the queue.
    pub queued: u64,
    /// Frames run through the detector (with or without detections).
    pub processed: u64,
    /// Frames refused because the queue was full.
    pub dropped: u64,
    /// Announced photos that never reached the queue: no pose, no camera profile, no file URL, download failed.
    pub failed: u64,
    /// Queued frames the detector could not read (corrupt image) or whose results could not be stored.
    pub detect_failed: u64,
    /// Detections that passed their threshold.
    pub detections: u64,
    /// Gas readings over the threshold.
    pub gas_readings: u64,
}

#[derive(Debug, Default)]
struct Counters {
    captures_announced: AtomicU64,
    captures_without_image: AtomicU64,
    queued: AtomicU64,
    processed: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    detect_failed: AtomicU64,
    detections: AtomicU64,
    gas_readings: AtomicU64,
}

/// Why a frame was not queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameRejected {
    /// The queue is full (counted as dropped); try again later.
    #[error("the detector is busy ({FRAME_QUEUE} frames waiting); try again later")]
    Busy,
    /// The station is shutting down.
    #[error("the station is shutting down")]
    Stopped,
}

/// What the pipeline needs to know.
#[derive(Debug, Clone)]
pub struct FramesConfig {
    /// Labels, kinds and thresholds.
    pub inference: InferenceSettings,
    /// Box anchor and pose errors.
    pub georef: Georeferencer,
    /// The methane sensor.
    pub gas: GasSensorSettings,
    /// Base of evidence URLs.
    pub public_url: String,
}

/// Handle to the pipeline. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Frames {
    queue: mpsc::Sender<PendingFrame>,
    counters: Arc<Counters>,
    received: Arc<Mutex<ReceivedTimes>>,
    next_capture: Arc<AtomicU64>,
}

/// When each capture's frame reached the station, for the frame -> alert latency.
#[derive(Debug, Default)]
struct ReceivedTimes {
    order: VecDeque<String>,
    at: BTreeMap<String, SystemTime>,
}

impl Frames {
    /// Queues a frame without waiting.
    ///
    /// # Errors
    /// [`FrameRejected::Busy`] (counted) or [`FrameRejected::Stopped`].
    pub fn submit(&self, frame: PendingFrame) -> Result<(), FrameRejected> {
        match self.queue.try_send(frame) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(frame)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(drone = %frame.drone_id, "Frame dropped: the detector queue is full.");
                Err(FrameRejected::Busy)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(FrameRejected::Stopped),
        }
    }

    /// Queues a frame, waiting while the queue is full (for offloaded photos, which are not perishable).
    ///
    /// # Errors
    /// [`FrameRejected::Stopped`].
    pub async fn submit_wait(&self, frame: PendingFrame) -> Result<(), FrameRejected> {
        self.queue.send(frame).await.map_err(|_| FrameRejected::Stopped)?;
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The counters now.
    pub fn stats(&self) -> FrameStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FrameStats {
            captures_announced: get(&c.captures_announced),
            captures_without_image: get(&c.captures_without_image),
            queued: get(&c.queued),
            processed: get(&c.processed),
            dropped: get(&c.dropped),
            failed: get(&c.failed),
            detect_failed: get(&c.detect_failed),
            detections: get(&c.detections),
            gas_readings: get(&c.gas_readings),
        }
    }

    /// When the frame of `capture_id` reached the station (kept for the latest captures only).
    pub fn received_at(&self, capture_id: &str) -> Option<SystemTime> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner).at.get(capture_id).copied()
    }

    fn new_capture_id(&self, received: SystemTime) -> String {
        let n = self.next_capture.fetch_add(1, Ordering::Relaxed);
        let ms = received.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let id = format!("c{ms}-{n}");
        let mut times = self.received.lock().unwrap_or_else(PoisonError::into_inner);
        if times.order.len() == RECEIVED_KEPT
            && let Some(old) = times.order.pop_front()
        {
            times.at.remove(&old);
        }
        times.order.push_back(id.clone());
        times.at.insert(id.clone(), received);
        id
    }
}

/// The parts the pipeline works with.
#[derive(Clone)]
pub struct FrameDeps {
    /// Stores captures and detections.
    pub storage: StorageHandle,
    /// Evidence images.
    pub evidence: EvidenceStore,
    /// Tracks hazards.
    pub hazards: HazardHandle,
    /// Grid cells and addresses.
    pub district: Arc<District>,
    /// The drones (live captures and gas readings).
    pub fleet: Fleet,
    /// Which mission each drone flies.
    pub missions: ActiveMissions,
    /// Raised when evidence cannot be saved, cleared when it can again.
    pub alarms: Alarms,
}

/// Starts the pipeline: the detector thread, the result handler and one listener per drone link. `cancel` stops
/// the listeners (frame intake); `stop`, cancelled once the queued frames are through, stops the pipeline.
///
/// # Errors
/// The detector thread cannot be started.
pub fn start(
    detector: Box<dyn Detector>,
    config: FramesConfig,
    deps: FrameDeps,
    tasks: &TaskTracker,
    cancel: CancellationToken,
    stop: CancellationToken,
) -> Result<Frames, inference::InferenceError> {
    let (results_tx, results_rx) = mpsc::channel::<DetectorOutput<FrameTag>>(RESULT_QUEUE);
    let thread = DetectorThread::spawn(BoxedDetector(detector), DETECTOR_QUEUE, move |output| {
        match results_tx.blocking_send(output) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    })?;
    let (queue, queue_rx) = mpsc::channel(FRAME_QUEUE);
    let frames = Frames {
        queue,
        counters: Arc::new(Counters::default()),
        received: Arc::new(Mutex::new(ReceivedTimes::default())),
        next_capture: Arc::new(AtomicU64::new(0)),
    };
    let config = Arc::new(config);
    tasks.spawn(feed(Arc::new(thread), queue_rx, frames.clone(), stop));
    tasks.spawn(handle_results(results_rx, frames.clone(), config.clone(), deps.clone()));
    let downloads = Arc::new(Semaphore::new(DOWNLOADS));
    for (index, bridge) in deps.fleet.bridges().iter().enumerate() {
        let listener = LinkListener {
            bridge: index,
            frames: frames.clone(),
            config: config.clone(),
            deps: deps.clone(),
            downloads: downloads.clone(),
            tasks: tasks.clone(),
            cancel: cancel.clone(),
        };
        tasks.spawn(listener.run(bridge.subscribe()));
    }
    Ok(frames)
}

/// `Box<dyn Detector>` as a sized detector for the thread.
struct BoxedDetector(Box<dyn Detector>);

impl Detector for BoxedDetector {
    fn model_info(&self) -> &inference::ModelInfo {
        self.0.model_info()
    }

    fn decode_target(&self) -> inference::DecodeTarget {
        self.0.decode_target()
    }

    fn detect(&mut self, frame: &inference::Frame<'_>) -> Result<Vec<inference::Detection>, inference::InferenceError> {
        self.0.detect(frame)
    }

    fn detect_input(&mut self, input: &ImageInput) -> Result<ImageDetections, inference::InferenceError> {
        self.0.detect_input(input)
    }
}

/// What travels with a frame through the detector.
#[derive(Debug)]
struct FrameTag {
    capture_id: String,
    frame: PendingFrame,
}

/// Moves frames from the async queue into the detector thread, waiting (on a blocking thread) while it is busy.
/// Ends when every sender is gone (shutdown drains the queue) or the detector stopped.
/// Hands queued frames to the detector thread until `stop` (the station keeps a sender of the queue until it is
/// gone, so the queue alone never ends at shutdown). Dropping the thread's handle then closes its input: it
/// finishes the frames it holds and stops, which ends `handle_results`.
async fn feed(
    thread: Arc<DetectorThread<FrameTag>>,
    mut queue: mpsc::Receiver<PendingFrame>,
    frames: Frames,
    stop: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            () = stop.cancelled() => return,
            frame = queue.recv() => match frame {
                Some(frame) => frame,
                None => return,
            },
        };
        let capture_id = frames.new_capture_id(frame.received);
        // The detector decodes its copy; the frame keeps the JPEG for the evidence.
        let image = ImageInput::Encoded(frame.image.clone());
        let job = DetectorJob { tag: FrameTag { capture_id, frame }, image };
        let detector = thread.clone();
        // Only whether the thread took the job matters here; a refused job comes back and is dropped.
        match tokio::task::spawn_blocking(move || detector.submit(job).is_ok()).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                tracing::error!("The detector thread has stopped; frames are no longer processed.");
                return;
            }
        }
    }
}

async fn handle_results(
    mut results: mpsc::Receiver<DetectorOutput<FrameTag>>,
    frames: Frames,
    config: Arc<FramesConfig>,
    deps: FrameDeps,
) {
    while let Some(output) = results.recv().await {
        let FrameTag { capture_id, frame } = output.tag;
        frames.counters.processed.fetch_add(1, Ordering::Relaxed);
        let detections = match output.result {
            Ok(detections) => detections,
            Err(error) => {
                frames.counters.detect_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(capture = %capture_id, drone = %frame.drone_id, error = %error, "Frame skipped.");
                continue;
            }
        };
        if let Err(error) = process(&capture_id, frame, &detections, &config, &deps, &frames).await {
            frames.counters.detect_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(capture = %capture_id, error = format!("{error:#}"), "Cannot record the frame's detections.");
        }
    }
}

/// One kept detection.
struct Kept {
    kind: HazardKind,
    label: String,
    confidence: f64,
    bbox: BoxPx,
}

async fn process(
    capture_id: &str,
    frame: PendingFrame,
    detections: &ImageDetections,
    config: &FramesConfig,
    deps: &FrameDeps,
    frames: &Frames,
) -> anyhow::Result<()> {
    let kept: Vec<Kept> = detections
        .detections
        .iter()
        .filter_map(|d| {
            let (kind, threshold) = config.inference.classify(&d.label)?;
            let confidence = f64::from(d.score);
            (confidence >= threshold).then(|| Kept {
                kind,
                label: d.label.clone(),
                confidence,
                bbox: BoxPx {
                    x_min: f64::from(d.bbox.x1),
                    y_min: f64::from(d.bbox.y1),
                    x_max: f64::from(d.bbox.x2),
                    y_max: f64::from(d.bbox.y2),
                },
            })
        })
        .collect();
    let mut pose = frame.pose;
    pose.intrinsics = pose.intrinsics.scaled_to(detections.width_px, detections.height_px);
    let pose_json = serde_json::json!({
        "lat_deg": pose.position.lat_deg,
        "lon_deg": pose.position.lon_deg,
        "relative_alt_m": pose.relative_alt_m,
        "quaternion_wxyz": pose.orientation.to_quaternion(),
        "width_px": pose.intrinsics.width_px,
        "height_px": pose.intrinsics.height_px,
        "fx_px": pose.intrinsics.fx_px,
        "fy_px": pose.intrinsics.fy_px,
        "cx_px": pose.intrinsics.cx_px,
        "cy_px": pose.intrinsics.cy_px,
    })
    .to_string();
    let model_sha256 = detections.detections.first().map(|d| d.model_sha256.to_string());
    let mut capture = CaptureRecord {
        id: capture_id.to_owned(),
        drone_id: frame.drone_id.clone(),
        mission_id: frame.mission_id.clone(),
        taken: frame.taken,
        pose_json,
        image_path: None,
    };
    if kept.is_empty() {
        deps.storage.call(move |db| db.insert_capture(&capture)).await?;
        return Ok(());
    }
    frames.counters.detections.fetch_add(kept.len() as u64, Ordering::Relaxed);

    // Evidence: the full frame and one crop per detection, written off the runtime.
    let boxes: Vec<BoxPx> = kept.iter().map(|k| k.bbox).collect();
    let evidence = deps.evidence.clone();
    let id = capture_id.to_owned();
    let image = frame.image;
    let saved = tokio::task::spawn_blocking(move || {
        let crops = crops_jpeg(&image, &boxes);
        evidence.save(&id, &image, &crops)
    })
    .await?;
    let pictures = match saved {
        Ok(saved) => {
            capture.image_path = Some(saved.frame);
            deps.alarms.clear(AlarmKind::EvidenceStorage, "Evidence images are saved again.").await;
            Some(saved.crops.len())
        }
        Err(error) => {
            // Detection goes on without pictures (disk full, for example): the alarm tells the operator.
            tracing::warn!(capture = %capture_id, %error, "Cannot save the evidence images; the hazard is reported without them.");
            deps.alarms.raise(AlarmKind::EvidenceStorage, evidence_alarm_message(&error)).await;
            None
        }
    };
    let stored = capture.clone();
    deps.storage.call(move |db| db.insert_capture(&stored)).await?;

    let mut records = Vec::with_capacity(kept.len());
    for (index, detection) in kept.iter().enumerate() {
        let fix = config.georef.locate(&pose, &detection.bbox, deps.district.as_ref() as &dyn Locate);
        let mut hazard_id = None;
        if let Some(fix) = fix {
            let share = (detection.bbox.x_max - detection.bbox.x_min) * (detection.bbox.y_max - detection.bbox.y_min)
                / (pose.intrinsics.width_px * pose.intrinsics.height_px).max(1.0);
            let picture = pictures.filter(|n| index < *n).map(|_| Picture {
                image_url: format!("{}/api/evidence/{}", config.public_url, evidence_id(capture_id, None)),
                crop_url: format!("{}/api/evidence/{}", config.public_url, evidence_id(capture_id, Some(index))),
                score: detection.confidence * share.sqrt(),
            });
            let observation = Observation {
                kind: detection.kind,
                label: detection.label.clone(),
                confidence: detection.confidence,
                position: fix.position,
                seen_at: frame.taken,
                drone_id: frame.drone_id.clone(),
                mission_id: frame.mission_id.clone(),
                capture_id: Some(capture_id.to_owned()),
                picture,
                model_sha256: model_sha256.clone(),
            };
            hazard_id = Some(deps.hazards.observe_traced(observation).await?.hazard_id);
        } else {
            tracing::warn!(capture = %capture_id, label = %detection.label, "Detection above the horizon: not georeferenced.");
        }
        records.push(DetectionRecord {
            capture_id: capture_id.to_owned(),
            label: detection.label.clone(),
            confidence: detection.confidence,
            box_px: [detection.bbox.x_min, detection.bbox.y_min, detection.bbox.x_max, detection.bbox.y_max],
            hazard_id,
        });
    }
    deps.storage.call(move |db| db.insert_detections(&records)).await?;
    Ok(())
}

/// The alarm text for an evidence write that failed: what happened, what goes on, what to do.
pub fn evidence_alarm_message(error: &StorageError) -> String {
    format!(
        "Cannot save evidence images ({error}). Detection goes on and hazards are still reported, without pictures. \
         Free space on that disk, or lower storage.retention / storage.max_evidence_bytes."
    )
}

/// The evidence id of a capture's full frame (`None`) or of crop `n`: letters, digits, `-` and `_` only, as the
/// image route requires.
pub fn evidence_id(capture_id: &str, crop: Option<usize>) -> String {
    match crop {
        None => format!("{capture_id}_frame"),
        Some(n) => format!("{capture_id}_crop{n}"),
    }
}

/// The capture id and crop index (`None` for the frame) an evidence id names.
pub fn parse_evidence_id(id: &str) -> Option<(&str, Option<usize>)> {
    let (capture, what) = id.rsplit_once('_')?;
    if what == "frame" {
        return Some((capture, None));
    }
    what.strip_prefix("crop")?.parse().ok().map(|n| (capture, Some(n)))
}

/// JPEG crops around each box, with a margin; an image that cannot be decoded gives no crops.
fn crops_jpeg(image: &[u8], boxes: &[BoxPx]) -> Vec<Vec<u8>> {
    let Ok(decoded) = image::load_from_memory(image) else { return Vec::new() };
    let rgb = decoded.to_rgb8();
    let (width, height) = rgb.dimensions();
    boxes
        .iter()
        .filter_map(|b| {
            #[allow(clippy::cast_possible_truncation)]
            let (x1, y1, x2, y2) = (b.x_min as f32, b.y_min as f32, b.x_max as f32, b.y_max as f32);
            let margin_x = ((x2 - x1) * CROP_MARGIN).max(CROP_MIN_MARGIN_PX);
            let margin_y = ((y2 - y1) * CROP_MARGIN).max(CROP_MIN_MARGIN_PX);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let clamp = |v: f32, max: u32| v.clamp(0.0, max as f32) as u32;
            let left = clamp(x1 - margin_x, width);
            let top = clamp(y1 - margin_y, height);
            let right = clamp(x2 + margin_x, width);
            let bottom = clamp(y2 + margin_y, height);
            if right <= left || bottom <= top {
                return None;
            }
            let crop = image::imageops::crop_imm(&rgb, left, top, right - left, bottom - top).to_image();
            let mut out = Vec::new();
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
            crop.write_with_encoder(encoder).ok()?;
            Some(out)
        })
        .collect()
}

/// Listens to one drone link: downloads announced photos, turns gas readings into observations.
struct LinkListener {
    bridge: usize,
    frames: Frames,
    config: Arc<FramesConfig>,
    deps: FrameDeps,
    downloads: Arc<Semaphore>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl LinkListener {
    async fn run(self, mut events: broadcast::Receiver<VehicleEvent>) {
        loop {
            let event = tokio::select! {
                () = self.cancel.cancelled() => return,
                event = events.recv() => event,
            };
            match event {
                Ok(event) => self.handle(event).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "Vehicle events missed: the pipeline is behind.");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn handle(&self, event: VehicleEvent) {
        let Some(drone) = self.deps.fleet.drone_at(self.bridge, event.system_id) else { return };
        match event.kind {
            VehicleEventKind::Capture(capture) => {
                let received = SystemTime::now();
                let Some(url) = capture.file_url.clone() else {
                    self.frames.counters.captures_without_image.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(drone = %drone.id, source = ?capture.source, "Capture without a file URL.");
                    return;
                };
                self.frames.counters.captures_announced.fetch_add(1, Ordering::Relaxed);
                let Some(pose) = live_pose(&capture, drone.camera.as_ref(), &drone.id) else {
                    self.frames.counters.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let taken = capture
                    .time_utc_us
                    .filter(|us| *us > 0)
                    .map_or(received, |us| SystemTime::UNIX_EPOCH + Duration::from_micros(us));
                let mission_id = self.deps.missions.current(&drone.id);
                let drone_id = drone.id.clone();
                let frames = self.frames.clone();
                let downloads = self.downloads.clone();
                let cancel = self.cancel.clone();
                self.tasks.spawn(async move {
                    let Ok(_permit) = downloads.acquire_owned().await else { return };
                    let image = tokio::select! {
                        () = cancel.cancelled() => return,
                        image = download(&url) => image,
                    };
                    match image {
                        Ok(image) => {
                            let frame = PendingFrame {
                                drone_id,
                                mission_id,
                                taken,
                                pose,
                                image,
                                source: FrameSource::Live,
                                received,
                            };
                            // A full queue is counted and logged by `submit`.
                            let _ = frames.submit(frame);
                        }
                        Err(error) => {
                            frames.counters.failed.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(drone = %drone_id, %url, %error, "Cannot download the photo.");
                        }
                    }
                });
            }
            VehicleEventKind::NamedValue { name, value, .. } if name == self.config.gas.named_value => {
                let Some(position) = self.deps.fleet.vehicle(&drone.id).and_then(|v| v.state().position) else {
                    tracing::debug!(drone = %drone.id, value, "Gas reading without a position: ignored.");
                    return;
                };
                if gas_excess_ppm_m(f64::from(value), position.relative_alt_m, &self.config.gas)
                    < self.config.gas.threshold_ppm_m
                {
                    return;
                }
                self.frames.counters.gas_readings.fetch_add(1, Ordering::Relaxed);
                let errors = self.config.georef.errors;
                let observation = Observation {
                    kind: HazardKind::Gas,
                    label: name,
                    confidence: 1.0,
                    position: Position::new(
                        position.point.lat_deg,
                        position.point.lon_deg,
                        errors.horizontal_m + GAS_EXTRA_UNCERTAINTY_M,
                    ),
                    seen_at: SystemTime::now(),
                    drone_id: drone.id.clone(),
                    mission_id: self.deps.missions.current(&drone.id),
                    capture_id: None,
                    picture: None,
                    model_sha256: None,
                };
                if let Err(error) = self.deps.hazards.observe(observation).await {
                    tracing::error!(drone = %drone.id, %error, "Cannot record the gas reading.");
                }
            }
            _ => {}
        }
    }
}

/// A column reading minus the ambient methane between the drone and the ground, ppm*m.
fn gas_excess_ppm_m(reading_ppm_m: f64, height_m: f64, gas: &GasSensorSettings) -> f64 {
    reading_ppm_m - gas.ambient_ppm * height_m.max(0.0)
}

/// The pose of a live capture; `None` (logged) when it cannot be georeferenced.
fn live_pose(
    capture: &Capture,
    camera: Option<&mission_planner::camera::CameraSpec>,
    drone_id: &str,
) -> Option<CapturePose> {
    let Some(position) = capture.position else {
        tracing::warn!(drone = %drone_id, "Capture without a position: it cannot be georeferenced.");
        return None;
    };
    let Some(camera) = camera else {
        tracing::warn!(drone = %drone_id, "No camera profile for this drone: set drones[].camera or planner.camera.");
        return None;
    };
    let intrinsics = match camera.intrinsics() {
        Ok(intrinsics) => intrinsics,
        Err(error) => {
            tracing::warn!(drone = %drone_id, %error, "The drone's camera profile is invalid.");
            return None;
        }
    };
    Some(CapturePose {
        position: position.point,
        relative_alt_m: position.relative_alt_m,
        orientation: capture.orientation,
        intrinsics,
    })
}

/// Downloads an image over HTTP with retries (a camera may announce a photo before it is written).
async fn download(url: &str) -> anyhow::Result<Vec<u8>> {
    let uri: hyper::Uri = url.parse().map_err(|error| anyhow::anyhow!("invalid file URL {url:?}: {error}"))?;
    if uri.scheme_str() != Some("http") {
        anyhow::bail!("only http:// file URLs are fetched, not {url:?}");
    }
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut delay = Duration::from_millis(250);
    let mut last_error = anyhow::anyhow!("no attempt made");
    for attempt in 1..=DOWNLOAD_ATTEMPTS {
        let result = async {
            let response = tokio::time::timeout(Duration::from_secs(10), client.get(uri.clone())).await??;
            let status = response.status();
            if !status.is_success() {
                anyhow::bail!("HTTP {status}");
            }
            let body = Limited::new(response.into_body(), MAX_IMAGE_BYTES)
                .collect()
                .await
                .map_err(|error| anyhow::anyhow!("reading the body: {error}"))?;
            Ok(body.to_bytes().to_vec())
        }
        .await;
        match result {
            Ok(bytes) => return Ok(bytes),
            Err(error) => last_error = error.context(format!("attempt {attempt} of {DOWNLOAD_ATTEMPTS}")),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gas_readings_count_only_above_the_ambient_column() {
        let gas = GasSensorSettings { named_value: "CH4".into(), threshold_ppm_m: 100.0, ambient_ppm: 1.9 };
        // Clean air seen from 64 m reads 122 ppm*m: no excess worth a hazard.
        assert!(gas_excess_ppm_m(121.6, 64.0, &gas).abs() < 1e-9);
        assert!(gas_excess_ppm_m(121.6 + 150.0, 64.0, &gas) >= gas.threshold_ppm_m);
        // On the ground (or a bad negative height) nothing is subtracted.
        assert!((gas_excess_ppm_m(50.0, -3.0, &gas) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn evidence_ids_round_trip_and_stay_plain_tokens() {
        for (capture, crop) in [("c1700000000000-3", None), ("c1-0", Some(0)), ("c1-0", Some(12))] {
            let id = evidence_id(capture, crop);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{id}");
            assert_eq!(parse_evidence_id(&id), Some((capture, crop)));
        }
        assert_eq!(parse_evidence_id("c1-0_cropx"), None);
        assert_eq!(parse_evidence_id("c1-0"), None);
    }

    #[test]
    fn crops_cover_the_box_with_a_margin_and_bad_images_give_none() {
        let mut jpeg = Vec::new();
        image::RgbImage::from_pixel(200, 100, image::Rgb([10, 20, 30]))
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new(&mut jpeg))
            .unwrap();
        let boxes = [BoxPx { x_min: 90.0, y_min: 40.0, x_max: 110.0, y_max: 60.0 }];
        let crops = crops_jpeg(&jpeg, &boxes);
        assert_eq!(crops.len(), 1);
        let crop = image::load_from_memory(&crops[0]).unwrap();
        // 20 px box + 24 px minimum margin on each side.
        assert_eq!((crop.width(), crop.height()), (68, 68));
        assert!(crops_jpeg(b"not a jpeg", &boxes).is_empty());
    }
}
