//! Ingest throughput: reading the capture pose of a drone photo (JPEG headers, EXIF, DJI XMP, pose), the
//! per-photo work of `patrol ingest` and of the push endpoint, on a 4000 x 3000 photo padded to 8 MiB.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use ground_station::ingest::photo_pose::read_photo;
use ground_station::ingest::push::{PushLimits, parse_push};

const XMP: &str = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" drone-dji:RelativeAltitude="+60.30"
 drone-dji:GimbalPitchDegree="-90.00" drone-dji:GimbalYawDegree="+45.00" drone-dji:GimbalRollDegree="0.00"
 drone-dji:FlightYawDegree="+44.00"/></rdf:RDF></x:xmpmeta>"#;

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, marker];
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A DJI-like photo: EXIF (GPS, time, 35 mm focal length), XMP, a 4000 x 3000 frame header and 8 MiB of scan.
fn photo() -> Vec<u8> {
    let r = |num, denom| Rational { num, denom };
    let fields = [
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![r(47, 1), r(7, 1), r(2442, 100)]),
        },
        Field { tag: Tag::GPSLatitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"N".to_vec()]) },
        Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![r(8, 1), r(39, 1), r(1555, 100)]),
        },
        Field { tag: Tag::GPSLongitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"E".to_vec()]) },
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"2026:05:04 10:02:01".to_vec()]),
        },
        Field { tag: Tag::OffsetTimeOriginal, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"+02:00".to_vec()]) },
        Field { tag: Tag::FocalLengthIn35mmFilm, ifd_num: In::PRIMARY, value: Value::Short(vec![24]) },
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    let mut out = vec![0xFF, 0xD8];
    out.extend(segment(0xE1, &[b"Exif\0\0".as_slice(), tiff.get_ref()].concat()));
    out.extend(segment(0xE1, &[b"http://ns.adobe.com/xap/1.0/\0".as_slice(), XMP.as_bytes()].concat()));
    out.extend(segment(0xC0, &[8, 0x0B, 0xB8, 0x0F, 0xA0, 1, 1, 0x11, 0]));
    out.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
    out.extend(std::iter::repeat_n(0x55, 8 << 20));
    out.extend([0xFF, 0xD9]);
    out
}

fn bench_ingest(c: &mut Criterion) {
    let bytes = photo();
    assert!(read_photo(&bytes).unwrap().capture_pose(None).is_ok());
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));
    group.bench_function("photo_pose_8mib", |b| {
        b.iter(|| read_photo(black_box(&bytes)).unwrap().capture_pose(None).unwrap());
    });
    let metadata = r#"{"drone_id":"m30-1","capture_time":"2026-05-04T08:02:01.250Z","lat_deg":47.1,"lon_deg":8.6,
        "relative_alt_m":60.0,"gimbal":{"roll_deg":0,"pitch_deg":-90,"yaw_deg":45},"camera":"wide"}"#;
    let boundary = "bench-boundary-7MA4YWxk";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{metadata}\r\n").into_bytes();
    body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n").bytes());
    body.extend_from_slice(&bytes);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let body = Bytes::from(body);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}")).unwrap(),
    );
    let limits = PushLimits::default();
    group.bench_function("push_multipart_8mib", |b| {
        b.iter(|| parse_push(black_box(&headers), None, body.clone(), &limits).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench_ingest);
criterion_main!(benches);
