//! `patrol ingest <folder>`: read the capture poses of photos offloaded from a drone's SD card.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use mission_planner::camera::CameraSpec;

use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::ingest::folder::{FrameRecord, FrameStatus, PoseRecord, find_photos};
use crate::ingest::push::{CaptureMetadata, IntrinsicsPx, METADATA_HEADER};

/// Arguments of `patrol ingest`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 when every photo has a capture pose, 1 otherwise (the manifest is still \
written with the reason for each photo, and with --push when a photo was refused).\n\nExamples:\n  \
patrol ingest /media/sd/DCIM --drone m30-1 --out flight-12.jsonl\n  \
PATROL_PUSH_TOKEN=... patrol ingest /media/sd/DCIM --drone m30-1 --push http://127.0.0.1:8080\n\n\
With --push every photo with a pose goes to the running ground station (`patrol serve`, POST /api/frames),\n\
which detects, georeferences and reports hazards exactly as for live photos.")]
pub struct IngestArgs {
    /// Folder to search, recursively, for JPEG photos (e.g. the DCIM folder of the drone's SD card).
    pub folder: PathBuf,
    /// The drone that took the photos (its id in ground-station.toml).
    #[arg(long = "drone", value_name = "ID")]
    pub drone_id: String,
    /// Camera description (TOML: image_width_px, image_height_px and sensor_width_mm + focal_length_mm, or
    /// horizontal_fov_deg). Without it, the focal length comes from the photos' FocalLengthIn35mmFilm tag.
    #[arg(long, value_name = "CAMERA.toml")]
    pub camera: Option<PathBuf>,
    /// Where to write the manifest: one JSON frame record per line (path, status, pose, metadata or error).
    #[arg(long, value_name = "MANIFEST.jsonl", default_value = "manifest.jsonl")]
    pub out: PathBuf,
    /// Send each photo with a pose to this ground station (`http://HOST:PORT`) for detection.
    #[arg(long, value_name = "URL")]
    pub push: Option<String>,
    /// The station's push token (`web.push_token`).
    #[arg(long, env = "PATROL_PUSH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Counts of what became of the photos.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Summary {
    posed: usize,
    no_pose: usize,
    unreadable: usize,
    refused: usize,
}

/// Runs `patrol ingest`.
///
/// # Errors
/// When the folder cannot be listed, the camera file is missing or invalid, or the manifest cannot be written.
/// Problems with single photos are reported and the walk goes on.
pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let camera = args.camera.as_deref().map(load_camera).transpose()?;
    let pusher = match &args.push {
        Some(url) => Some(Pusher::new(url, args.token.clone())?),
        None => None,
    };
    let scan = find_photos(&args.folder)?;
    for (path, error) in &scan.unreadable {
        eprintln!("warning: skipped {}: {error}", path.display());
    }
    if scan.photos.is_empty() {
        anyhow::bail!("no JPEG photos (.jpg/.jpeg) under {}", args.folder.display());
    }
    let file = File::create(&args.out).with_context(|| format!("cannot create the manifest {}", args.out.display()))?;
    let mut out = BufWriter::new(file);
    let bar = ProgressBar::new(u64::try_from(scan.photos.len()).unwrap_or(u64::MAX));
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} photos [{elapsed_precise}, eta {eta}] {msg}")
    {
        bar.set_style(style);
    }
    let mut summary = Summary::default();
    for path in &scan.photos {
        bar.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let bytes = std::fs::read(path);
        let jpeg = bytes.as_ref().ok().filter(|_| pusher.is_some()).cloned();
        let record = FrameRecord::from_photo(&args.drone_id, path, bytes, camera.as_ref());
        if let (Some(pusher), Some(jpeg), Some(pose)) = (&pusher, jpeg, &record.pose)
            && let Err(error) = pusher.push(&record, pose, jpeg)
        {
            summary.refused += 1;
            bar.println(format!("refused {}: {error:#}", path.display()));
        }
        // A hidden bar (stderr not a terminal) drops `println`, so print the summary line directly.
        if bar.is_hidden() {
            println!("{}", describe(&record));
        } else {
            bar.println(describe(&record));
        }
        match record.status {
            FrameStatus::Posed => summary.posed += 1,
            FrameStatus::NoPose => summary.no_pose += 1,
            FrameStatus::Unreadable => summary.unreadable += 1,
        }
        serde_json::to_writer(&mut out, &record).context("cannot encode a frame record")?;
        out.write_all(b"\n").with_context(|| format!("cannot write the manifest {}", args.out.display()))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.flush().with_context(|| format!("cannot write the manifest {}", args.out.display()))?;
    println!(
        "{} photo(s): {} with a capture pose, {} without, {} unreadable. Manifest: {}",
        scan.photos.len(),
        summary.posed,
        summary.no_pose,
        summary.unreadable,
        args.out.display()
    );
    if let Some(url) = &args.push {
        println!("{} sent to {url} for detection, {} refused.", summary.posed - summary.refused, summary.refused);
    }
    let clean = summary.no_pose == 0 && summary.unreadable == 0 && summary.refused == 0;
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Sends photos to a running station's `POST /api/frames`, waiting while it says it is busy.
struct Pusher {
    runtime: tokio::runtime::Runtime,
    uri: hyper::Uri,
    token: String,
}

impl Pusher {
    fn new(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let token = token.context("--push needs the station's push token: --token or PATROL_PUSH_TOKEN")?;
        let base = url.trim_end_matches('/');
        if !base.starts_with("http://") {
            anyhow::bail!("--push takes an http:// URL, e.g. http://127.0.0.1:8080, not {url:?}");
        }
        let uri: hyper::Uri = format!("{base}/api/frames").parse().with_context(|| format!("--push {url:?}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Self { runtime, uri, token })
    }

    fn push(&self, record: &FrameRecord, pose: &PoseRecord, jpeg: Vec<u8>) -> anyhow::Result<()> {
        let taken = record
            .capture_time_unix_ms
            .map_or_else(SystemTime::now, |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let metadata = CaptureMetadata {
            drone_id: record.drone_id.clone(),
            capture_time: taken,
            image_index: None,
            lat_deg: pose.lat_deg,
            lon_deg: pose.lon_deg,
            relative_alt_m: pose.relative_alt_m,
            attitude: None,
            quaternion: Some(pose.camera_quaternion),
            gimbal: None,
            intrinsics: Some(IntrinsicsPx {
                width_px: pose.intrinsics.width_px.round() as u32,
                height_px: pose.intrinsics.height_px.round() as u32,
                fx_px: pose.intrinsics.fx_px,
                fy_px: pose.intrinsics.fy_px,
                cx_px: Some(pose.intrinsics.cx_px),
                cy_px: Some(pose.intrinsics.cy_px),
            }),
            camera: None,
        };
        let metadata = serde_json::to_string(&metadata).context("encoding the capture metadata")?;
        self.runtime.block_on(async {
            let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let body = bytes::Bytes::from(jpeg);
            for _ in 0..120 {
                let request = hyper::Request::post(self.uri.clone())
                    .header("authorization", format!("Bearer {}", self.token))
                    .header("content-type", "image/jpeg")
                    .header(METADATA_HEADER, metadata.as_str())
                    .body(Full::new(body.clone()))
                    .context("building the request")?;
                let response = client.request(request).await.with_context(|| format!("sending to {}", self.uri))?;
                let status = response.status();
                let text = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                match status.as_u16() {
                    202 => return Ok(()),
                    // The detector is behind: the photo is not perishable, so wait and send it again.
                    503 => tokio::time::sleep(Duration::from_secs(1)).await,
                    _ => anyhow::bail!("HTTP {status}: {}", String::from_utf8_lossy(&text)),
                }
            }
            anyhow::bail!("the station stayed busy for two minutes")
        })
    }
}

fn load_camera(path: &Path) -> anyhow::Result<CameraSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the camera file {}", path.display()))?;
    let camera: CameraSpec =
        toml::from_str(&text).with_context(|| format!("invalid camera file {}", path.display()))?;
    camera.intrinsics().with_context(|| format!("invalid camera file {}", path.display()))?;
    Ok(camera)
}

/// The summary line of one photo.
fn describe(record: &FrameRecord) -> String {
    let name = record.path.display();
    match (&record.pose, &record.error) {
        (Some(pose), _) => format!(
            "ok      {name}: {:.6}, {:.6}, {:.1} m above take-off",
            pose.lat_deg, pose.lon_deg, pose.relative_alt_m
        ),
        (None, error) => {
            let label = if record.status == FrameStatus::NoPose { "no pose" } else { "error  " };
            format!("{label} {name}: {}", error.as_deref().unwrap_or("unknown"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::fixture::{PhotoSpec, photo};

    fn args(folder: &Path, out: &Path, camera: Option<PathBuf>) -> IngestArgs {
        IngestArgs {
            folder: folder.to_path_buf(),
            drone_id: "m30-1".into(),
            camera,
            out: out.to_path_buf(),
            push: None,
            token: None,
        }
    }

    #[test]
    fn writes_a_manifest_line_per_photo_and_keeps_going_after_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let sd = dir.path().join("DCIM");
        std::fs::create_dir(&sd).unwrap();
        std::fs::write(sd.join("DJI_0001.JPG"), photo(&PhotoSpec::default(), 4000, 3000)).unwrap();
        std::fs::write(sd.join("DJI_0002.JPG"), b"half a photo").unwrap();
        std::fs::write(sd.join("DJI_0003.JPG"), photo(&PhotoSpec { xmp: None, ..PhotoSpec::default() }, 640, 480))
            .unwrap();
        std::fs::write(sd.join("DJI_0004.JPG"), photo(&PhotoSpec::default(), 4000, 3000)).unwrap();
        let out = dir.path().join("manifest.jsonl");
        let code = run(args(&sd, &out, None)).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&out).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        let statuses: Vec<_> = lines.iter().map(|l| l["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["posed", "unreadable", "no_pose", "posed"]);
        assert!(lines.iter().all(|l| l["drone_id"] == "m30-1"));
        assert_eq!(lines[3]["pose"]["relative_alt_m"], 60.3);
        assert!(lines[2]["error"].as_str().unwrap().contains("RelativeAltitude"));

        // Only good photos: success.
        std::fs::remove_file(sd.join("DJI_0002.JPG")).unwrap();
        std::fs::remove_file(sd.join("DJI_0003.JPG")).unwrap();
        assert_eq!(run(args(&sd, &out, None)).unwrap(), ExitCode::SUCCESS);
        assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 2);
    }

    #[test]
    fn a_camera_file_sets_the_intrinsics() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.jpg"),
            photo(&PhotoSpec { focal_35mm: None, ..PhotoSpec::default() }, 4000, 3000),
        )
        .unwrap();
        let out = dir.path().join("m.jsonl");
        // Without a camera and without FocalLengthIn35mmFilm there is no pose.
        assert_eq!(run(args(dir.path(), &out, None)).unwrap(), ExitCode::FAILURE);
        let camera = dir.path().join("camera.toml");
        std::fs::write(
            &camera,
            "name = \"wide\"\nimage_width_px = 4000\nimage_height_px = 3000\nhorizontal_fov_deg = 90.0\n",
        )
        .unwrap();
        assert_eq!(run(args(dir.path(), &out, Some(camera.clone()))).unwrap(), ExitCode::SUCCESS);
        let line: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&out).unwrap().lines().next().unwrap()).unwrap();
        assert!((line["pose"]["intrinsics"]["fx_px"].as_f64().unwrap() - 2000.0).abs() < 1e-6);

        std::fs::write(&camera, "image_width_px = 4000\n").unwrap();
        let error = run(args(dir.path(), &out, Some(camera))).unwrap_err();
        assert!(format!("{error:#}").contains("invalid camera file"), "{error:#}");
    }

    #[test]
    fn the_command_line_reaches_ingest_with_its_defaults() {
        use clap::{CommandFactory, Parser};
        crate::cli::Cli::command().debug_assert();
        let cli = crate::cli::Cli::try_parse_from(["patrol", "ingest", "/media/sd/DCIM", "--drone", "m30-1"]).unwrap();
        match cli.command {
            crate::cli::Command::Ingest(args) => {
                assert_eq!(args.folder, PathBuf::from("/media/sd/DCIM"));
                assert_eq!(args.drone_id, "m30-1");
                assert_eq!(args.out, PathBuf::from("manifest.jsonl"));
                assert_eq!(args.camera, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            crate::cli::Cli::try_parse_from(["patrol", "ingest", "/media/sd/DCIM"]).is_err(),
            "--drone is required"
        );
    }

    #[test]
    fn an_empty_or_missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.jsonl");
        let error = run(args(dir.path(), &out, None)).unwrap_err();
        assert!(error.to_string().contains("no JPEG photos"), "{error:#}");
        assert!(run(args(&dir.path().join("nope"), &out, None)).is_err());
    }
}
