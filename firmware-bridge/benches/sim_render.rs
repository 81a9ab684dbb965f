//! Speed of the simulated camera: rendering a 1280x960 frame from a georeferenced raster (target: well under
//! 100 ms in release) and encoding it as JPEG.

#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use firmware_bridge::sim::{CameraConfig, WorldRaster, render_camera_frame};
use image::{Rgb, RgbImage};
use mission_planner::camera::{Attitude, CameraPose};
use mission_planner::geo::GeoPoint;

fn world() -> WorldRaster {
    // 2048x2048 at about 0.25 m per pixel around 22.55 N, 113.88 E.
    let image = RgbImage::from_fn(2048, 2048, |c, r| Rgb([(c % 256) as u8, (r % 256) as u8, ((c ^ r) % 256) as u8]));
    let deg_lat = 0.25 / 110_760.0;
    let deg_lon = 0.25 / 102_860.0;
    WorldRaster::new(image, [deg_lon, 0.0, 113.88 - 1024.0 * deg_lon, 0.0, -deg_lat, 22.55 + 1024.0 * deg_lat])
        .expect("valid affine")
}

fn bench(c: &mut Criterion) {
    let world = world();
    let camera = CameraConfig::default();
    let nadir = CameraPose {
        position: GeoPoint::new(22.55, 113.88),
        height_above_ground_m: 60.0,
        orientation: CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, -90.0, 30.0)),
    };
    let tilted =
        CameraPose { orientation: CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, -55.0, 30.0)), ..nadir };
    c.bench_function("render 1280x960 nadir", |b| b.iter(|| render_camera_frame(Some(&world), &camera, &nadir)));
    c.bench_function("render 1280x960 tilted 35 deg", |b| {
        b.iter(|| render_camera_frame(Some(&world), &camera, &tilted))
    });
    let frame = render_camera_frame(Some(&world), &camera, &nadir).expect("render");
    c.bench_function("jpeg encode 1280x960 q85", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
            frame.write_with_encoder(encoder).expect("encode");
            out
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
