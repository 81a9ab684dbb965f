//! The fuzz harnesses: one function per parser that sees outside bytes, each a thin wrapper around the product's
//! own entry point.
//!
//! The libFuzzer targets in `fuzz_targets/` call these, and the stable fuzz smoke (`tests/e2e/fuzz_smoke.rs`)
//! includes this file with `#[path]` and replays every committed corpus file and crash regression through the
//! same functions, so `cargo test --workspace` covers them without nightly or cargo-fuzz. The only requirement
//! on a harness is that it returns: every error is an expected outcome, a panic, hang or runaway allocation is
//! a bug.

use std::path::Path;
use std::sync::Arc;

use firmware_bridge::frame::{FrameDecoder, LinkCounters};
use firmware_bridge::signing::SigningKey;
use inference::DecodeTarget;

/// The passphrase of the key the signed-link harness verifies with; the seed corpus signs with it.
pub const FUZZ_SIGNING_PASSPHRASE: &str = "patrol-fuzz";

/// Every decoded frame of a decoder, with the fields the vehicle actor reads.
fn drain(decoder: &mut FrameDecoder) -> usize {
    let mut frames = 0;
    while let Some(frame) = decoder.next_decoded() {
        let _ = (frame.system_id(), frame.component_id(), frame.sequence(), frame.message_id());
        let _ = frame.message_name();
        frames += 1;
    }
    frames
}

/// The MAVLink receive path, three ways: a stream link (TCP/serial) that gets the bytes in two reads split at a
/// point taken from the input, then closes; an unsigned UDP link (one datagram); a UDP link signed with the key
/// of [`FUZZ_SIGNING_PASSPHRASE`] (signature and replay checks). Returns the number of frames accepted.
pub fn mavlink_receive(data: &[u8], key: &SigningKey) -> usize {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (head, tail) = data.split_at(split);
    let mut stream = FrameDecoder::new(Arc::new(LinkCounters::default()));
    stream.push(head);
    let mut frames = drain(&mut stream);
    stream.push(tail);
    frames += drain(&mut stream);
    stream.end_datagram();

    let mut udp = FrameDecoder::datagrams(Arc::new(LinkCounters::default()));
    udp.push(data);
    frames += drain(&mut udp);

    let mut signed = FrameDecoder::signed(Arc::new(LinkCounters::default()), key, true);
    signed.push(data);
    frames += drain(&mut signed);
    // The same datagram again is a replay: a signed link must accept none of it the second time.
    signed.push(data);
    let replayed = drain(&mut signed);
    assert_eq!(replayed, 0, "a replayed signed datagram was accepted again");
    frames
}

/// The photo path of `patrol ingest` and of downloaded / pushed frames: EXIF + XMP pose extraction
/// (`read_photo`, `capture_pose`) and the detector's image decode at a 640 px letterbox target.
pub fn photo_ingest(data: &[u8]) {
    if let Ok(meta) = ground_station::ingest::photo_pose::read_photo(data) {
        let _ = meta.capture_pose(None);
    }
    let _ = inference::decode_image(data, DecodeTarget::Letterbox { width_px: 640, height_px: 640 });
}

/// `POST /api/frames`: the push endpoint's request parsing (`parse_push`) and the capture pose it derives.
///
/// The input is `content-type \n x-capture-metadata \n query \n body`; an empty header line means no header, an
/// empty query line no query.
pub fn push_request(data: &[u8]) {
    use ground_station::ingest::push::{METADATA_HEADER, PushLimits, parse_push};
    use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};

    let mut fields = data.splitn(4, |b| *b == b'\n');
    let content_type = fields.next().unwrap_or_default();
    let metadata = fields.next().unwrap_or_default();
    let query = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(content_type)
        && !content_type.is_empty()
    {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(metadata)
        && !metadata.is_empty()
    {
        headers.insert(METADATA_HEADER, value);
    }
    let query = std::str::from_utf8(query).ok().filter(|q| !q.is_empty());
    // Small limits, so the fuzzer also reaches the size checks.
    let limits = PushLimits { max_body_bytes: 1 << 20, max_metadata_bytes: 4 << 10 };
    if let Ok(frame) = parse_push(&headers, query, bytes::Bytes::copy_from_slice(body), &limits) {
        let _ = frame.capture_pose(None);
    }
}

/// The config loader on a `ground-station.toml` text (over the embedded defaults, no environment).
pub fn config_load(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ground_station::config::load_str(Some((Path::new("fuzz.toml"), text)), Vec::new());
    }
}

/// The mission file reader: QGroundControl `.plan` JSON and `QGC WPL 110`, told apart by content.
pub fn mission_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mission_planner::files::parse_mission(text);
    }
}

/// The GeoJSON readers of grid cells, no-fly zones and launch points.
pub fn area_geojson(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mission_planner::area::parse_cells_geojson(text);
        let _ = mission_planner::area::parse_zones_geojson(text);
        let _ = mission_planner::area::parse_launch_points_geojson(text);
    }
}

/// The KML readers of grid cells, no-fly zones and launch points.
pub fn area_kml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mission_planner::area::parse_cells_kml(text);
        let _ = mission_planner::area::parse_zones_kml(text);
        let _ = mission_planner::area::parse_launch_points_kml(text);
    }
}
