//! Offloaded photos: find the JPEGs under a folder (an SD card after landing) and turn each into a frame
//! record with its capture pose, or the reason it has none.

use std::io;
use std::path::{Path, PathBuf};

use mission_planner::camera::{CameraSpec, Intrinsics};
use serde::Serialize;

use super::photo_pose::{PhotoMetadata, read_photo};

/// The JPEGs found under a folder, and the sub-folders that could not be read.
#[derive(Debug, Default)]
pub struct FolderScan {
    /// JPEG files (`.jpg`/`.jpeg`, any case), sorted by path.
    pub photos: Vec<PathBuf>,
    /// Sub-folders that could not be listed, with why.
    pub unreadable: Vec<(PathBuf, io::Error)>,
}

/// Why a folder could not be scanned at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    /// The folder itself could not be listed.
    #[error("cannot list {path}")]
    List {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Finds the JPEGs under `root`, recursively. Symbolic links to folders are not followed (no loops); hidden
/// entries (`.Trashes`, `._DJI_0001.JPG` resource forks) are skipped.
///
/// # Errors
/// [`FolderError::List`] when `root` cannot be listed; unreadable sub-folders are reported in the scan.
pub fn find_photos(root: &Path) -> Result<FolderScan, FolderError> {
    let mut scan = FolderScan::default();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(source) if dir == root => return Err(FolderError::List { path: dir, source }),
            Err(error) => {
                scan.unreadable.push((dir, error));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    scan.unreadable.push((dir.clone(), error));
                    continue;
                }
            };
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(path),
                Ok(_) if is_jpeg_name(&path) && path.is_file() => scan.photos.push(path),
                Ok(_) => {}
                Err(error) => scan.unreadable.push((path, error)),
            }
        }
    }
    scan.photos.sort();
    Ok(scan)
}

fn is_jpeg_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
}

/// What became of one photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameStatus {
    /// Metadata read and a capture pose found: ready for detection and georeferencing.
    Posed,
    /// Metadata read, but it lacks what a pose needs (see `error`).
    NoPose,
    /// The file could not be read or is not a valid drone photo (see `error`).
    Unreadable,
}

/// A capture pose in plain numbers, as the manifest stores it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PoseRecord {
    /// WGS84 latitude, degrees.
    pub lat_deg: f64,
    /// WGS84 longitude, degrees.
    pub lon_deg: f64,
    /// Height above the take-off point, metres.
    pub relative_alt_m: f64,
    /// Camera orientation (w, x, y, z), NED <- camera head (x along the optical axis).
    pub camera_quaternion: [f64; 4],
    /// Camera intrinsics at the photo's resolution.
    pub intrinsics: Intrinsics,
}

/// One line of the ingest manifest: a photo, its metadata and its capture pose, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameRecord {
    /// The drone the photos belong to.
    pub drone_id: String,
    /// The photo's path.
    pub path: PathBuf,
    /// What became of it.
    pub status: FrameStatus,
    /// Why it has no pose or could not be read.
    pub error: Option<String>,
    /// Capture time in milliseconds since the Unix epoch, when the photo's time has a UTC offset.
    pub capture_time_unix_ms: Option<u64>,
    /// The capture pose.
    pub pose: Option<PoseRecord>,
    /// Everything read from the photo.
    pub metadata: Option<PhotoMetadata>,
}

impl FrameRecord {
    /// Builds the record of the photo at `path` whose contents are `bytes` (or the error reading them).
    pub fn from_photo(
        drone_id: &str,
        path: &Path,
        bytes: io::Result<Vec<u8>>,
        camera: Option<&CameraSpec>,
    ) -> FrameRecord {
        let mut record = FrameRecord {
            drone_id: drone_id.to_owned(),
            path: path.to_path_buf(),
            status: FrameStatus::Unreadable,
            error: None,
            capture_time_unix_ms: None,
            pose: None,
            metadata: None,
        };
        let metadata = match bytes.map_err(|e| e.to_string()).and_then(|b| read_photo(&b).map_err(|e| e.to_string())) {
            Ok(metadata) => metadata,
            Err(error) => {
                record.error = Some(error);
                return record;
            }
        };
        record.capture_time_unix_ms = metadata
            .captured
            .and_then(|t| t.to_system_time())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_millis()).ok());
        match metadata.capture_pose(camera) {
            Ok(pose) => {
                record.status = FrameStatus::Posed;
                record.pose = Some(PoseRecord {
                    lat_deg: pose.position.lat_deg,
                    lon_deg: pose.position.lon_deg,
                    relative_alt_m: pose.relative_alt_m,
                    camera_quaternion: pose.orientation.to_quaternion(),
                    intrinsics: pose.intrinsics,
                });
            }
            Err(error) => {
                record.status = FrameStatus::NoPose;
                record.error = Some(error.to_string());
            }
        }
        record.metadata = Some(metadata);
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::fixture::{PhotoSpec, photo};

    #[test]
    fn finds_jpegs_recursively_sorted_skipping_hidden_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("DCIM/100MEDIA");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir_all(dir.path().join(".Trashes")).unwrap();
        for name in ["DJI_0002.JPG", "DJI_0001.jpeg", "DJI_0003.MP4", "._DJI_0001.JPG"] {
            std::fs::write(sub.join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join(".Trashes/old.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("top.Jpg"), b"x").unwrap();
        let scan = find_photos(dir.path()).unwrap();
        let names: Vec<_> = scan.photos.iter().map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf()).collect();
        assert_eq!(
            names,
            [
                PathBuf::from("DCIM/100MEDIA/DJI_0001.jpeg"),
                PathBuf::from("DCIM/100MEDIA/DJI_0002.JPG"),
                PathBuf::from("top.Jpg")
            ]
        );
        assert!(scan.unreadable.is_empty());
        assert!(matches!(find_photos(&dir.path().join("missing")), Err(FolderError::List { .. })));
    }

    #[test]
    fn records_say_posed_no_pose_or_unreadable() {
        let path = Path::new("DJI_0001.JPG");
        let posed = FrameRecord::from_photo("d1", path, Ok(photo(&PhotoSpec::default(), 4000, 3000)), None);
        assert_eq!(posed.status, FrameStatus::Posed);
        assert_eq!(posed.error, None);
        assert_eq!(posed.capture_time_unix_ms, Some(1_777_881_721_250));
        let pose = posed.pose.unwrap();
        assert_eq!(pose.relative_alt_m, 60.3);
        // Gimbal pitch -90, yaw 45: a quarter turn nose-down about y after 45 degrees about z.
        let expected = mission_planner::camera::Rotation::from_attitude(
            mission_planner::camera::Attitude::from_degrees(0.0, -90.0, 45.0),
        )
        .to_quaternion();
        assert_eq!(pose.camera_quaternion, expected);

        let no_alt = PhotoSpec { xmp: None, ..PhotoSpec::default() };
        let record = FrameRecord::from_photo("d1", path, Ok(photo(&no_alt, 640, 480)), None);
        assert_eq!(record.status, FrameStatus::NoPose);
        assert!(record.error.unwrap().contains("RelativeAltitude"));
        assert!(record.metadata.is_some() && record.pose.is_none());

        let unreadable = FrameRecord::from_photo("d1", path, Ok(b"not a jpeg".to_vec()), None);
        assert_eq!(unreadable.status, FrameStatus::Unreadable);
        assert!(unreadable.error.unwrap().contains("not a JPEG"));
        let io_error = FrameRecord::from_photo("d1", path, Err(io::Error::other("card removed")), None);
        assert_eq!(io_error.error.as_deref(), Some("card removed"));

        let line = serde_json::to_value(&posed).unwrap();
        assert_eq!(line["status"], "posed");
        assert_eq!(line["metadata"]["captured"], "2026-05-04T10:02:01.250+02:00");
        assert_eq!(line["pose"]["intrinsics"]["width_px"], 4000.0);
    }
}
