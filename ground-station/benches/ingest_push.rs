//! `patrol ingest --push` end to end: SD-card photos of the demo town (1280 x 960 crops of the 0.1 m/px world
//! raster, with DJI-style EXIF GPS and XMP gimbal tags) are read by `patrol ingest`, pushed to a running `patrol
//! serve` (the shipped model, tiled), detected, georeferenced, tracked and stored. Prints the wall time of the
//! ingest command (pose reading + upload; the station queues what it accepts) and the time until the station has
//! stored the last photo's detections, as photos per second.
//!
//! `cargo bench --workspace --bench ingest_push` (release build of `patrol`; add `--profile dev` to reuse the test
//! build); `PATROL_BENCH_PHOTOS` sets how many photos (default 24). Needs the ONNX Runtime library
//! (`scripts/setup-onnxruntime.sh`).

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout, clippy::cast_precision_loss)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 960;
/// The demo camera (70 degrees across 1280 px) sees the 0.1 m/px raster from this height.
const RELATIVE_ALT_M: f64 = 91.4;
const TOKEN: &str = "bench-push-token-0123456789";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, marker];
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Degrees as EXIF degrees, minutes, seconds (1/10000 s).
fn dms(deg: f64) -> Vec<Rational> {
    let deg = deg.abs();
    let d = deg.floor();
    let m = ((deg - d) * 60.0).floor();
    let s = ((deg - d) * 60.0 - m) * 60.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let r = |v: f64, denom: u32| Rational { num: (v * f64::from(denom)).round() as u32, denom };
    vec![r(d, 1), r(m, 1), r(s, 10_000)]
}

/// A JPEG of `pixels` with the EXIF and XMP a DJI drone writes, taken at `lat`, `lon`, `second` after 10:00.
fn drone_photo(pixels: &image::RgbImage, lat: f64, lon: f64, second: u32) -> Vec<u8> {
    let fields = [
        Field { tag: Tag::GPSLatitude, ifd_num: In::PRIMARY, value: Value::Rational(dms(lat)) },
        Field { tag: Tag::GPSLatitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"N".to_vec()]) },
        Field { tag: Tag::GPSLongitude, ifd_num: In::PRIMARY, value: Value::Rational(dms(lon)) },
        Field { tag: Tag::GPSLongitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"E".to_vec()]) },
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![format!("2026:12:06 10:{:02}:{:02}", second / 60, second % 60).into_bytes()]),
        },
        Field { tag: Tag::OffsetTimeOriginal, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"+08:00".to_vec()]) },
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    let xmp = format!(
        r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" drone-dji:RelativeAltitude="+{RELATIVE_ALT_M:.2}"
 drone-dji:GimbalPitchDegree="-90.00" drone-dji:GimbalYawDegree="+0.00" drone-dji:GimbalRollDegree="0.00"
 drone-dji:FlightYawDegree="+0.00"/></rdf:RDF></x:xmpmeta>"#
    );
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 88).encode_image(pixels).unwrap();
    let jpeg = jpeg.into_inner();
    let mut out = vec![0xFF, 0xD8];
    out.extend(segment(0xE1, &[b"Exif\0\0".as_slice(), tiff.get_ref()].concat()));
    out.extend(segment(0xE1, &[b"http://ns.adobe.com/xap/1.0/\0".as_slice(), xmp.as_bytes()].concat()));
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Writes `count` photos spread over the demo world into `dir`.
fn write_photos(dir: &Path, count: usize) {
    let root = workspace_root();
    let world = image::open(root.join("data/demo-world/world.jpg")).unwrap().to_rgb8();
    let jgw: Vec<f64> = std::fs::read_to_string(root.join("data/demo-world/world.jgw"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let (cols, rows) = (6_u32, 4_u32);
    for i in 0..count {
        let i32_ = u32::try_from(i).unwrap();
        let (col, row) = (i32_ % cols, (i32_ / cols) % rows);
        let x = col * (world.width() - WIDTH) / (cols - 1);
        let y = row * (world.height() - HEIGHT) / (rows - 1);
        let crop = image::imageops::crop_imm(&world, x, y, WIDTH, HEIGHT).to_image();
        let lon = jgw[4] + jgw[0] * f64::from(x + WIDTH / 2);
        let lat = jgw[5] + jgw[3] * f64::from(y + HEIGHT / 2);
        let photo = drone_photo(&crop, lat, lon, i32_);
        std::fs::write(dir.join(format!("DJI_{:04}.JPG", i + 1)), photo).unwrap();
    }
}

fn start_station(dir: &Path, web: SocketAddr) -> Child {
    let root = workspace_root();
    let config = dir.join("ground-station.toml");
    let text = format!(
        r#"
[station]
id = "bench"
data_dir = "{data}"

[mqtt]
embedded_listen = "127.0.0.1:{broker}"

[web]
listen = "{web}"
push_token = "{TOKEN}"

[inference]
model = "{model}"

[[drones]]
id = "drone-1"
link = "udpin:127.0.0.1:{udp}"
camera = "{camera}"

[district]
cells = "{cells}"
"#,
        data = dir.join("station").display(),
        broker = free_port(),
        udp = free_port(),
        model = root.join("models/patrol-hazard.onnx").display(),
        camera = root.join("data/demo-world/camera.toml").display(),
        cells = root.join("data/sample-district/cells.geojson").display(),
    );
    std::fs::write(&config, text).unwrap();
    let log = std::fs::File::create(dir.join("station.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect_timeout(&web, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "the station's web port never opened; see station.log");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Photos the station has stored (it stores a capture once its detections are through the tracker).
fn stored_captures(db: &Path) -> usize {
    let Ok(conn) = rusqlite::Connection::open(db) else { return 0 };
    conn.query_row("SELECT COUNT(*) FROM captures", [], |row| row.get::<_, i64>(0))
        .map_or(0, |n| usize::try_from(n).unwrap_or(0))
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let count: usize = std::env::var("PATROL_BENCH_PHOTOS").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("DCIM");
    std::fs::create_dir(&photos).unwrap();
    write_photos(&photos, count);
    let bytes: u64 = std::fs::read_dir(&photos).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();

    let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut station = start_station(dir.path(), web);
    let db = dir.path().join("station/patrol.sqlite");

    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_patrol"))
        .arg("ingest")
        .arg(&photos)
        .args(["--drone", "drone-1", "--push", &format!("http://{web}"), "--token", TOKEN, "--camera"])
        .arg(workspace_root().join("data/demo-world/camera.toml"))
        .arg("--out")
        .arg(dir.path().join("manifest.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let ingest_s = start.elapsed().as_secs_f64();
    assert!(status.success(), "patrol ingest failed; manifest in {}", dir.path().display());

    let deadline = Instant::now() + Duration::from_secs(600);
    while stored_captures(&db) < count {
        assert!(Instant::now() < deadline, "the station did not store all {count} photos within 10 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
    let total_s = start.elapsed().as_secs_f64();
    let _ = Command::new("kill").arg("-TERM").arg(station.id().to_string()).status();
    let _ = station.wait();

    let n = count as f64;
    println!("ingest_push: {count} photos, {WIDTH}x{HEIGHT}, {:.1} MB", bytes as f64 / 1e6);
    println!("  patrol ingest --push (read poses, upload): {ingest_s:.2} s, {:.1} photos/s", n / ingest_s);
    println!("  until the station stored the last photo's detections: {total_s:.2} s, {:.2} photos/s", n / total_s);
}
