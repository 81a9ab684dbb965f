//! The simulated camera: renders the frame a pinhole camera would see of a georeferenced world raster, encodes it
//! as JPEG and serves it over HTTP, like a MAVLink camera on a companion computer.
//!
//! **World raster:** a PNG or JPEG with an ESRI world file next to it (`.pgw`/`.pngw` for PNG, `.jgw`/`.jpgw` for
//! JPEG, or `.wld` for either). The world file's six lines are A, D, B, E, C, F in WGS84 *degrees*:
//! `lon = A·col + B·row + C`, `lat = D·col + E·row + F`, with (C, F) the centre of the top-left pixel.
//! Without a raster every frame is a plain ground colour.
//!
//! **Rendering:** inverse mapping. The ground is the flat plane at home altitude; each output pixel's ray (from
//! [`mission_planner::camera`]'s intrinsics and camera orientation) is intersected with it, the hit is turned into
//! latitude/longitude by the tangent plane around the camera (linearised over the footprint, which is
//! centimetre-exact over a few hundred metres), and the raster is sampled bilinearly. Rays above the horizon get
//! a sky colour.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use image::RgbImage;
use mission_planner::camera::{CameraPose, CameraSpec, Intrinsics};
use mission_planner::geo::{LocalFrame, LocalPoint};
use serde::{Deserialize, Serialize};

use super::SimError;

/// Sky colour for rays that miss the ground.
const SKY_RGB: [u8; 3] = [170, 200, 235];
/// Images each drone keeps for download; older ones are dropped.
pub(crate) const IMAGES_KEPT_PER_DRONE: usize = 128;

/// The camera profile of one drone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {
    /// Sensor and lens; decides the frame size and field of view.
    pub spec: CameraSpec,
    /// Gimbal pitch: -90 looks straight down, -60 is tilted 30 degrees forward. The gimbal is stabilised
    /// (roll and pitch of the airframe do not move it) and turns with the vehicle's heading.
    pub pitch_deg: f64,
    /// JPEG quality, 1-100.
    pub jpeg_quality: u8,
    /// Colour of the ground where there is no raster.
    pub ground_rgb: [u8; 3],
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            spec: CameraSpec {
                name: "sim-1280x960".into(),
                image_width_px: 1280,
                image_height_px: 960,
                sensor_width_mm: None,
                sensor_height_mm: None,
                focal_length_mm: None,
                horizontal_fov_deg: Some(70.0),
                min_trigger_interval_s: 0.5,
            },
            pitch_deg: -90.0,
            jpeg_quality: 85,
            ground_rgb: [96, 128, 72],
        }
    }
}

impl CameraConfig {
    /// Reads a camera profile from TOML (top-level `pitch_deg`, `jpeg_quality`, `ground_rgb` and a `[spec]`
    /// table in [`CameraSpec`]'s fields).
    ///
    /// # Errors
    /// [`SimError::ReadFile`] or [`SimError::Camera`] with the reason.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| SimError::ReadFile { path: path.to_path_buf(), source })?;
        let config: CameraConfig =
            toml::from_str(&text).map_err(|e| SimError::Camera { reason: format!("{}: {e}", path.display()) })?;
        config.intrinsics()?;
        Ok(config)
    }

    /// The intrinsics of the profile.
    ///
    /// # Errors
    /// [`SimError::Camera`] when the spec is incomplete or invalid.
    pub fn intrinsics(&self) -> Result<Intrinsics, SimError> {
        self.spec.intrinsics().map_err(|e| SimError::Camera { reason: e.to_string() })
    }
}

/// A georeferenced image of the ground.
#[derive(Debug, Clone)]
pub struct WorldRaster {
    image: RgbImage,
    /// lon = a·col + b·row + c; lat = d·col + e·row + f.
    affine: [f64; 6],
}

impl WorldRaster {
    /// Loads `path` and its world file (see the module docs for the names tried).
    ///
    /// # Errors
    /// [`SimError::World`] when the image cannot be decoded, no world file is found, or it is malformed.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let world_error = |reason: String| SimError::World { path: path.to_path_buf(), reason };
        let image = image::open(path).map_err(|e| world_error(format!("cannot decode the image: {e}")))?.to_rgb8();
        let candidates = world_file_candidates(path);
        let Some(world_file) = candidates.iter().find(|p| p.exists()) else {
            let names: Vec<_> = candidates.iter().map(|p| p.display().to_string()).collect();
            return Err(world_error(format!("no world file next to it; tried {}", names.join(", "))));
        };
        let text = std::fs::read_to_string(world_file)
            .map_err(|source| SimError::ReadFile { path: world_file.clone(), source })?;
        let numbers: Vec<f64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| world_error(format!("{}: not six numbers: {e}", world_file.display())))?;
        let [a, d, b, e, c, f] = numbers[..] else {
            return Err(world_error(format!("{}: expected 6 numbers, found {}", world_file.display(), numbers.len())));
        };
        Self::new(image, [a, b, c, d, e, f]).map_err(world_error)
    }

    /// A raster from an image and its affine (`lon = a·col + b·row + c`, `lat = d·col + e·row + f`, degrees).
    ///
    /// # Errors
    /// A reason when the affine is singular or not finite.
    pub fn new(image: RgbImage, affine: [f64; 6]) -> Result<Self, String> {
        let [a, b, _, d, e, _] = affine;
        let det = a * e - b * d;
        if !affine.iter().all(|v| v.is_finite()) || det.abs() < 1e-20 {
            return Err(format!("the world file's affine {affine:?} is not invertible"));
        }
        Ok(Self { image, affine })
    }
}

fn world_file_candidates(path: &Path) -> Vec<PathBuf> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let sidecars: &[&str] = match ext.as_str() {
        "png" => &["pgw", "pngw", "wld"],
        "jpg" | "jpeg" => &["jgw", "jpgw", "wld"],
        _ => &["wld"],
    };
    sidecars.iter().map(|s| path.with_extension(s)).collect()
}

/// Renders the frame seen from `pose` (height above the flat ground in `pose.height_above_ground_m`).
pub(crate) fn render(
    world: Option<&WorldRaster>,
    intrinsics: &Intrinsics,
    pose: &CameraPose,
    ground: [u8; 3],
) -> RgbImage {
    // Sizes come from a validated CameraSpec (u32 originally).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (width, height) = (intrinsics.width_px as u32, intrinsics.height_px as u32);
    let mut out = RgbImage::new(width, height);
    // Ray direction in NED for pixel (u, v): R · [1, (u - cx)/fx, (v - cy)/fy] = base + u·du + v·dv.
    let r = &pose.orientation;
    let base = r.apply([1.0, -intrinsics.cx_px / intrinsics.fx_px, -intrinsics.cy_px / intrinsics.fy_px]);
    let du = r.apply([0.0, 1.0 / intrinsics.fx_px, 0.0]);
    let dv = r.apply([0.0, 0.0, 1.0 / intrinsics.fy_px]);
    let h = pose.height_above_ground_m.max(0.01);

    // Ground offset (east, north) -> raster (col, row), linearised around the camera.
    let to_raster = world.map(|w| {
        let frame = LocalFrame::new(pose.position);
        let origin = pose.position;
        let step = 50.0;
        let east = frame.to_geo(LocalPoint::new(step, 0.0));
        let north = frame.to_geo(LocalPoint::new(0.0, step));
        let (dlon_de, dlat_de) = ((east.lon_deg - origin.lon_deg) / step, (east.lat_deg - origin.lat_deg) / step);
        let (dlon_dn, dlat_dn) = ((north.lon_deg - origin.lon_deg) / step, (north.lat_deg - origin.lat_deg) / step);
        let [a, b, c, d, e, f] = w.affine;
        let det = a * e - b * d;
        // (col,row) = inv([[a,b],[d,e]]) · (lon - c, lat - f)
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        let (lon0, lat0) = (origin.lon_deg - c, origin.lat_deg - f);
        let col0 = ia * lon0 + ib * lat0;
        let row0 = id * lon0 + ie * lat0;
        let col_e = ia * dlon_de + ib * dlat_de;
        let col_n = ia * dlon_dn + ib * dlat_dn;
        let row_e = id * dlon_de + ie * dlat_de;
        let row_n = id * dlon_dn + ie * dlat_dn;
        (w, [col0, col_e, col_n, row0, row_e, row_n])
    });

    for (v, row) in out.rows_mut().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let vf = v as f64 + 0.5;
        let row_base = [base[0] + vf * dv[0], base[1] + vf * dv[1], base[2] + vf * dv[2]];
        for (u, pixel) in row.enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let uf = u as f64 + 0.5;
            let down = row_base[2] + uf * du[2];
            if down <= 1e-6 {
                pixel.0 = SKY_RGB;
                continue;
            }
            let t = h / down;
            let north = (row_base[0] + uf * du[0]) * t;
            let east = (row_base[1] + uf * du[1]) * t;
            pixel.0 = match &to_raster {
                None => ground,
                Some((w, m)) => {
                    let col = m[0] + m[1] * east + m[2] * north;
                    let rrow = m[3] + m[4] * east + m[5] * north;
                    sample_bilinear(&w.image, col, rrow).unwrap_or(ground)
                }
            };
        }
    }
    out
}

/// Bilinear sample at pixel-centre coordinates; `None` outside the image.
fn sample_bilinear(image: &RgbImage, col: f64, row: f64) -> Option<[u8; 3]> {
    let (w, h) = (image.width(), image.height());
    if !(col >= 0.0 && row >= 0.0 && col <= f64::from(w - 1) && row <= f64::from(h - 1)) {
        return None;
    }
    // In range by the check above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (c0, r0) = (col as u32, row as u32);
    let (fc, fr) = (col - f64::from(c0), row - f64::from(r0));
    // Raw buffer access: this runs for every output pixel.
    let raw = image.as_raw();
    let stride = w as usize * 3;
    let i00 = r0 as usize * stride + c0 as usize * 3;
    let right = if c0 + 1 < w { 3 } else { 0 };
    let down = if r0 + 1 < h { stride } else { 0 };
    let mut out = [0u8; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let p = |offset: usize| f64::from(raw[i00 + offset + k]);
        let top = p(0) + (p(right) - p(0)) * fc;
        let bottom = p(down) + (p(down + right) - p(down)) * fc;
        // A weighted mean of u8 values stays in 0..=255.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        {
            *o = (top + (bottom - top) * fr + 0.5) as u8;
        }
    }
    Some(out)
}

/// Encodes a frame as JPEG.
pub(crate) fn encode_jpeg(frame: &RgbImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::with_capacity(256 * 1024);
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
    frame.write_with_encoder(encoder)?;
    Ok(out)
}

/// The JPEGs the fleet's cameras took, by system id and image index; each drone keeps its latest
/// [`IMAGES_KEPT_PER_DRONE`].
#[derive(Debug, Clone, Default)]
pub(crate) struct ImageStore {
    images: Arc<Mutex<HashMap<u8, ImageQueue>>>,
}

/// One drone's images, oldest first: (image index, JPEG).
type ImageQueue = VecDeque<(i32, Bytes)>;

impl ImageStore {
    pub(crate) fn insert(&self, system_id: u8, index: i32, jpeg: Bytes) {
        // A poisoned lock only means another render thread panicked mid-insert; the map is still usable.
        let mut images = self.images.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = images.entry(system_id).or_default();
        list.push_back((index, jpeg));
        while list.len() > IMAGES_KEPT_PER_DRONE {
            list.pop_front();
        }
    }

    pub(crate) fn get(&self, system_id: u8, index: i32) -> Option<Bytes> {
        let images = self.images.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        images.get(&system_id)?.iter().find(|(i, _)| *i == index).map(|(_, jpeg)| jpeg.clone())
    }
}

/// The URL path of an image.
pub(crate) fn image_path(system_id: u8, index: i32) -> String {
    format!("/images/{system_id}/{index}.jpg")
}

/// `GET /images/{system_id}/{index}.jpg`.
pub(crate) fn router(store: ImageStore) -> Router {
    Router::new().route("/images/{system_id}/{file}", get(serve_image)).with_state(store)
}

async fn serve_image(State(store): State<ImageStore>, UrlPath((system_id, file)): UrlPath<(u8, String)>) -> Response {
    let Some(index) = file.strip_suffix(".jpg").and_then(|i| i.parse::<i32>().ok()) else {
        return (StatusCode::NOT_FOUND, "images are named <index>.jpg").into_response();
    };
    match store.get(system_id, index) {
        Some(jpeg) => ([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no image {index} from system {system_id} (only the latest {IMAGES_KEPT_PER_DRONE} are kept)"),
        )
            .into_response(),
    }
}

/// Binds the image server.
///
/// # Errors
/// [`SimError::Bind`] when the address is taken.
pub(crate) async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, SimError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind {
        addr,
        what: "image HTTP server",
        source,
    })
}

#[cfg(test)]
mod tests {
    use mission_planner::camera::{Attitude, ground_offset_to_pixel, pixel_to_ground};
    use mission_planner::geo::GeoPoint;

    use super::*;

    /// A 200x200 raster, 0.5 m per pixel around `centre`, with a gradient so positions are recognisable.
    fn raster(centre: GeoPoint) -> WorldRaster {
        let frame = LocalFrame::new(centre);
        let e = frame.to_geo(LocalPoint::new(1.0, 0.0));
        let n = frame.to_geo(LocalPoint::new(0.0, 1.0));
        let (deg_per_m_lon, deg_per_m_lat) = (e.lon_deg - centre.lon_deg, n.lat_deg - centre.lat_deg);
        let image = RgbImage::from_fn(200, 200, |c, r| image::Rgb([c as u8, r as u8, 50]));
        // Pixel (100, 100) is at the centre; columns go east, rows go south.
        let a = 0.5 * deg_per_m_lon;
        let e_ = -0.5 * deg_per_m_lat;
        WorldRaster::new(image, [a, 0.0, centre.lon_deg - 100.0 * a, 0.0, e_, centre.lat_deg - 100.0 * e_]).unwrap()
    }

    fn small_camera() -> (CameraConfig, Intrinsics) {
        let mut config = CameraConfig::default();
        config.spec.image_width_px = 160;
        config.spec.image_height_px = 120;
        let intrinsics = config.intrinsics().unwrap();
        (config, intrinsics)
    }

    #[test]
    fn nadir_centre_pixel_shows_the_raster_below_the_drone() {
        let centre = GeoPoint::new(22.55, 113.88);
        let world = raster(centre);
        let (config, intr) = small_camera();
        // 20 m east and 10 m north of the raster centre, looking down from 30 m.
        let position = LocalFrame::new(centre).to_geo(LocalPoint::new(20.0, 10.0));
        let pose = CameraPose {
            position,
            height_above_ground_m: 30.0,
            orientation: CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, -90.0, 0.0)),
        };
        let frame = render(Some(&world), &intr, &pose, config.ground_rgb);
        let centre_px = frame.get_pixel(80, 60).0;
        // 20 m east = 40 px right of col 100; 10 m north = 20 px up from row 100 (bilinear, half-pixel slack).
        assert!((i32::from(centre_px[0]) - 140).abs() <= 1, "{centre_px:?}");
        assert!((i32::from(centre_px[1]) - 80).abs() <= 1, "{centre_px:?}");
    }

    #[test]
    fn render_agrees_with_pixel_to_ground_for_a_tilted_yawed_camera() {
        let centre = GeoPoint::new(22.55, 113.88);
        let world = raster(centre);
        let (config, intr) = small_camera();
        let pose = CameraPose {
            position: centre,
            height_above_ground_m: 25.0,
            orientation: CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, -70.0, 40.0)),
        };
        let frame = render(Some(&world), &intr, &pose, config.ground_rgb);
        for (u, v) in [(10u32, 10u32), (150, 20), (80, 60), (30, 110)] {
            let hit = pixel_to_ground(&intr, &pose, f64::from(u) + 0.5, f64::from(v) + 0.5).unwrap();
            let (col, row) = (100.0 + hit.offset.east_m * 2.0, 100.0 - hit.offset.north_m * 2.0);
            let expected = sample_bilinear(&world.image, col, row).unwrap_or(config.ground_rgb);
            let got = frame.get_pixel(u, v).0;
            for k in 0..3 {
                assert!((i32::from(got[k]) - i32::from(expected[k])).abs() <= 1, "({u},{v}) {got:?} vs {expected:?}");
            }
            // And the reverse mapping lands on the same pixel.
            let (pu, pv) = ground_offset_to_pixel(&intr, &pose, hit.offset).unwrap();
            assert!((pu - f64::from(u) - 0.5).abs() < 1e-6 && (pv - f64::from(v) - 0.5).abs() < 1e-6);
        }
    }

    #[test]
    fn without_a_raster_the_ground_is_plain_and_the_sky_is_sky() {
        let (config, intr) = small_camera();
        let down = CameraPose {
            position: GeoPoint::new(0.0, 0.0),
            height_above_ground_m: 30.0,
            orientation: CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, -90.0, 0.0)),
        };
        let frame = render(None, &intr, &down, config.ground_rgb);
        assert!(frame.pixels().all(|p| p.0 == config.ground_rgb));
        let level = CameraPose { orientation: CameraPose::stabilised_gimbal(Attitude::default()), ..down };
        let frame = render(None, &intr, &level, config.ground_rgb);
        assert_eq!(frame.get_pixel(80, 5).0, SKY_RGB);
        assert_eq!(frame.get_pixel(80, 115).0, config.ground_rgb);
        let jpeg = encode_jpeg(&frame, 80).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    }

    #[test]
    fn world_file_is_found_and_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("area.png");
        RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3])).save(&png).unwrap();
        let err = WorldRaster::load(&png).unwrap_err().to_string();
        assert!(err.contains("area.pgw"), "{err}");
        std::fs::write(dir.path().join("area.pgw"), "0.00001\n0\n0\n-0.00001\n113.88\n22.55\n").unwrap();
        let world = WorldRaster::load(&png).unwrap();
        assert_eq!(world.affine, [0.00001, 0.0, 113.88, 0.0, -0.00001, 22.55]);
        std::fs::write(dir.path().join("area.pgw"), "1\n2\n").unwrap();
        assert!(WorldRaster::load(&png).unwrap_err().to_string().contains("expected 6"));
    }

    #[test]
    fn camera_toml_round_trips() {
        let text = toml::to_string(&CameraConfig::default()).unwrap();
        let back: CameraConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, CameraConfig::default());
    }

    #[test]
    fn store_keeps_the_latest_images() {
        let store = ImageStore::default();
        for i in 0..(IMAGES_KEPT_PER_DRONE as i32 + 5) {
            store.insert(3, i, Bytes::from(vec![1, 2]));
        }
        assert!(store.get(3, 0).is_none());
        assert!(store.get(3, IMAGES_KEPT_PER_DRONE as i32 + 4).is_some());
        assert!(store.get(4, 10).is_none());
        assert_eq!(image_path(3, 7), "/images/3/7.jpg");
    }
}
