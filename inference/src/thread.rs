//! [`DetectorThread`]: a dedicated OS thread that owns a [`Detector`], so that async code never blocks on
//! decoding or inference.
//!
//! Channels: the input is bounded (capacity chosen by the caller, 1-2 for live camera frames). [`try_submit`]
//! never blocks: when the queue is full the frame is handed back and counted in
//! [`DetectorThread::frames_dropped`] (perishable frames: the newest one is worth less than keeping the reader
//! unblocked). Results go to a sink closure, which is where the caller picks its output channel: a
//! `tokio::sync::mpsc::Sender::blocking_send` for async consumers, or the bounded std channel of
//! [`DetectorThread::spawn_with_channel`].
//!
//! [`try_submit`]: DetectorThread::try_submit

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::decode::DecodeTarget;
use crate::detector::{Detector, ImageDetections, ModelInfo};
use crate::error::InferenceError;
use crate::frame::ImageInput;

/// One image to process, with a caller-defined tag (frame id, path, timestamp) that comes back with the result.
#[derive(Debug)]
pub struct DetectorJob<T> {
    /// Returned unchanged in [`DetectorOutput::tag`].
    pub tag: T,
    /// The image.
    pub image: ImageInput,
}

/// The result for one [`DetectorJob`].
#[derive(Debug)]
pub struct DetectorOutput<T> {
    /// The job's tag.
    pub tag: T,
    /// Detections, or the per-image error (the thread carries on with the next job).
    pub result: Result<ImageDetections, InferenceError>,
    /// Time spent on this job (decode and detection).
    pub elapsed: Duration,
}

/// Why a job was not queued; the job comes back.
#[derive(Debug)]
pub enum SubmitError<T> {
    /// The queue is full (counted as a dropped frame by [`DetectorThread::try_submit`]).
    Full(DetectorJob<T>),
    /// The thread has stopped (its sink asked to stop, or it panicked).
    Closed(DetectorJob<T>),
}

/// A detector running on its own thread with a bounded input queue.
#[derive(Debug)]
pub struct DetectorThread<T> {
    input: Option<SyncSender<DetectorJob<T>>>,
    dropped: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
    decode_target: DecodeTarget,
    model: ModelInfo,
}

impl<T: Send + 'static> DetectorThread<T> {
    /// Starts the thread. `capacity` (at least 1) bounds the input queue. `sink` receives every result in order;
    /// returning [`ControlFlow::Break`] stops the thread (e.g. when the receiving side is gone).
    ///
    /// # Errors
    /// [`InferenceError::Spawn`] when the OS refuses a new thread.
    pub fn spawn<D, F>(mut detector: D, capacity: usize, mut sink: F) -> Result<Self, InferenceError>
    where
        D: Detector + 'static,
        F: FnMut(DetectorOutput<T>) -> ControlFlow<()> + Send + 'static,
    {
        let (tx, rx) = sync_channel::<DetectorJob<T>>(capacity.max(1));
        let decode_target = detector.decode_target();
        let model = detector.model_info().clone();
        let handle = std::thread::Builder::new()
            .name("detector".into())
            .spawn(move || {
                for job in rx {
                    let started = Instant::now();
                    let result = detector.detect_input(&job.image);
                    let elapsed = started.elapsed();
                    tracing::trace!(elapsed_ms = elapsed.as_secs_f64() * 1e3, ok = result.is_ok(), "Frame done.");
                    if sink(DetectorOutput { tag: job.tag, result, elapsed }).is_break() {
                        break;
                    }
                }
            })
            .map_err(InferenceError::Spawn)?;
        Ok(Self { input: Some(tx), dropped: Arc::new(AtomicU64::new(0)), handle: Some(handle), decode_target, model })
    }

    /// Starts the thread with a bounded std channel (`output_capacity`, at least 1) as its sink. The thread
    /// waits when the channel is full (results are not dropped) and stops when the receiver is dropped.
    ///
    /// # Errors
    /// As [`DetectorThread::spawn`].
    pub fn spawn_with_channel<D: Detector + 'static>(
        detector: D,
        input_capacity: usize,
        output_capacity: usize,
    ) -> Result<(Self, Receiver<DetectorOutput<T>>), InferenceError> {
        let (tx, rx) = sync_channel(output_capacity.max(1));
        let thread = Self::spawn(detector, input_capacity, move |out| match tx.send(out) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        })?;
        Ok((thread, rx))
    }

    /// Queues a job without blocking. When the queue is full the job is returned in [`SubmitError::Full`] and
    /// counted as dropped.
    ///
    /// # Errors
    /// [`SubmitError::Full`] or [`SubmitError::Closed`], each carrying the job back.
    pub fn try_submit(&self, job: DetectorJob<T>) -> Result<(), SubmitError<T>> {
        let Some(input) = &self.input else { return Err(SubmitError::Closed(job)) };
        match input.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(SubmitError::Full(job))
            }
            Err(TrySendError::Disconnected(job)) => Err(SubmitError::Closed(job)),
        }
    }

    /// Queues a job, waiting while the queue is full. For batch tools on plain threads; async code uses
    /// [`DetectorThread::try_submit`].
    ///
    /// # Errors
    /// [`SubmitError::Closed`] when the thread has stopped.
    pub fn submit(&self, job: DetectorJob<T>) -> Result<(), SubmitError<T>> {
        let Some(input) = &self.input else { return Err(SubmitError::Closed(job)) };
        input.send(job).map_err(|e| SubmitError::Closed(e.0))
    }

    /// Frames refused by [`DetectorThread::try_submit`] because the queue was full.
    pub fn frames_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// How encoded images should be decoded for this detector (callers that decode on their own threads use it
    /// with [`crate::decode_image`]).
    pub fn decode_target(&self) -> DecodeTarget {
        self.decode_target
    }

    /// The model's identity.
    pub fn model_info(&self) -> &ModelInfo {
        &self.model
    }

    /// Stops taking jobs, lets the thread finish the queued ones, and waits for it. Blocks: from async code call
    /// it inside `spawn_blocking`.
    ///
    /// # Errors
    /// [`InferenceError::ThreadPanicked`] if the detector panicked.
    pub fn close(mut self) -> Result<(), InferenceError> {
        self.input = None;
        match self.handle.take() {
            Some(handle) => handle.join().map_err(|_| InferenceError::ThreadPanicked),
            None => Ok(()),
        }
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::sync::mpsc::channel;

    use super::*;
    use crate::frame::DecodedImage;
    use crate::scripted::ScriptedDetector;

    fn grey(width: u32, height: u32) -> ImageInput {
        ImageInput::Decoded(DecodedImage::from_rgb(vec![114; (width * height * 3) as usize], width, height))
    }

    #[test]
    fn results_come_back_in_order_and_bad_frames_do_not_stop_the_thread() {
        let detector = ScriptedDetector::new(vec![]);
        let (thread, rx) = DetectorThread::spawn_with_channel(detector, 4, 4).unwrap();
        thread.submit(DetectorJob { tag: 1, image: grey(4, 4) }).unwrap();
        thread.submit(DetectorJob { tag: 2, image: ImageInput::Encoded(b"not an image".to_vec()) }).unwrap();
        thread.submit(DetectorJob { tag: 3, image: grey(8, 2) }).unwrap();
        let outs: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(outs.iter().map(|o| o.tag).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(outs[0].result.is_ok());
        assert!(matches!(outs[1].result, Err(InferenceError::UnsupportedImageFormat { .. })));
        assert_eq!(outs[2].result.as_ref().map(|r| (r.width_px, r.height_px)).unwrap(), (8, 2));
        thread.close().unwrap();
    }

    #[test]
    fn try_submit_drops_and_counts_when_full() {
        // The sink blocks until released, so the single queue slot fills up.
        let (release_tx, release_rx) = channel::<()>();
        let (done_tx, done_rx) = channel::<u32>();
        let thread = DetectorThread::spawn(ScriptedDetector::new(vec![]), 1, move |out: DetectorOutput<u32>| {
            let _ = release_rx.recv();
            let _ = done_tx.send(out.tag);
            ControlFlow::Continue(())
        })
        .unwrap();
        thread.submit(DetectorJob { tag: 0, image: grey(2, 2) }).unwrap(); // taken by the thread, held in the sink
        thread.submit(DetectorJob { tag: 1, image: grey(2, 2) }).unwrap(); // fills the queue
        let mut refused = 0;
        for tag in 2..5 {
            match thread.try_submit(DetectorJob { tag, image: grey(2, 2) }) {
                Err(SubmitError::Full(job)) => {
                    assert_eq!(job.tag, tag);
                    refused += 1;
                }
                other => panic!("expected Full, got {other:?}"),
            }
        }
        assert_eq!((refused, thread.frames_dropped()), (3, 3));
        release_tx.send(()).unwrap();
        release_tx.send(()).unwrap();
        assert_eq!(done_rx.recv().unwrap(), 0);
        assert_eq!(done_rx.recv().unwrap(), 1);
        thread.close().unwrap();
    }

    #[test]
    fn a_stopped_sink_closes_the_queue() {
        let thread =
            DetectorThread::spawn(ScriptedDetector::new(vec![]), 1, |_: DetectorOutput<u8>| ControlFlow::Break(()))
                .unwrap();
        thread.submit(DetectorJob { tag: 0, image: grey(2, 2) }).unwrap();
        // The thread stops after its first result; later submissions find it closed.
        let mut closed = false;
        for _ in 0..1000 {
            if let Err(SubmitError::Closed(_)) = thread.submit(DetectorJob { tag: 1, image: grey(2, 2) }) {
                closed = true;
                break;
            }
            std::thread::yield_now();
        }
        assert!(closed);
        thread.close().unwrap();
    }
}
