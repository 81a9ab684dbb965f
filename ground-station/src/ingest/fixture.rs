//! Builds small drone-photo JPEGs for tests: EXIF and XMP segments, a frame header and a tiny valid scan.

use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};

/// A 16 x 8 grey baseline JPEG encoded by the `image` crate, whose frame header the tests rewrite.
fn grey_jpeg() -> Vec<u8> {
    let img = image::GrayImage::from_pixel(16, 8, image::Luma([128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// What to put in a fixture photo.
#[derive(Debug, Clone)]
pub(crate) struct PhotoSpec {
    pub(crate) lat: Option<(f64, &'static str)>,
    pub(crate) lon: Option<(f64, &'static str)>,
    pub(crate) gps_alt: Option<(f64, u8)>,
    pub(crate) date_time: Option<&'static str>,
    pub(crate) subsec: Option<&'static str>,
    pub(crate) offset: Option<&'static str>,
    pub(crate) focal_35mm: Option<u16>,
    pub(crate) xmp: Option<String>,
    pub(crate) exif: bool,
}

impl Default for PhotoSpec {
    fn default() -> Self {
        Self {
            lat: Some((47.123_456, "N")),
            lon: Some((8.654_321, "E")),
            gps_alt: Some((512.5, 0)),
            date_time: Some("2026:05:04 10:02:01"),
            subsec: Some("25"),
            offset: Some("+02:00"),
            focal_35mm: Some(24),
            xmp: Some(dji_xmp("+60.30", "-90.00", "+45.00", "0.00", "+44.0")),
            exif: true,
        }
    }
}

/// A DJI-style XMP packet in attribute form.
pub(crate) fn dji_xmp(
    rel_alt: &str,
    gimbal_pitch: &str,
    gimbal_yaw: &str,
    gimbal_roll: &str,
    flight_yaw: &str,
) -> String {
    format!(
        r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="DJI Meta Data" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"
 drone-dji:AbsoluteAltitude="+572.80" drone-dji:RelativeAltitude="{rel_alt}"
 drone-dji:GimbalRollDegree="{gimbal_roll}" drone-dji:GimbalYawDegree="{gimbal_yaw}"
 drone-dji:GimbalPitchDegree="{gimbal_pitch}" drone-dji:FlightRollDegree="+1.00"
 drone-dji:FlightYawDegree="{flight_yaw}" drone-dji:FlightPitchDegree="-2.00"/>
</rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"#
    )
}

/// Degrees as an EXIF degrees/minutes/seconds triple (seconds in 1/10000).
fn dms(value: f64) -> Vec<Rational> {
    let degrees = value.trunc();
    let minutes = ((value - degrees) * 60.0).trunc();
    let seconds = ((value - degrees) * 60.0 - minutes) * 60.0;
    vec![
        Rational { num: degrees as u32, denom: 1 },
        Rational { num: minutes as u32, denom: 1 },
        Rational { num: (seconds * 10_000.0).round() as u32, denom: 10_000 },
    ]
}

fn ascii(tag: Tag, text: &str) -> Field {
    Field { tag, ifd_num: In::PRIMARY, value: Value::Ascii(vec![text.as_bytes().to_vec()]) }
}

/// The TIFF structure of the EXIF block.
fn exif_tiff(spec: &PhotoSpec) -> Vec<u8> {
    let mut fields = vec![ascii(Tag::Make, "DJI"), ascii(Tag::Model, "FC3411")];
    if let Some((lat, reference)) = spec.lat {
        fields.push(Field { tag: Tag::GPSLatitude, ifd_num: In::PRIMARY, value: Value::Rational(dms(lat)) });
        fields.push(ascii(Tag::GPSLatitudeRef, reference));
    }
    if let Some((lon, reference)) = spec.lon {
        fields.push(Field { tag: Tag::GPSLongitude, ifd_num: In::PRIMARY, value: Value::Rational(dms(lon)) });
        fields.push(ascii(Tag::GPSLongitudeRef, reference));
    }
    if let Some((alt, reference)) = spec.gps_alt {
        let alt = Rational { num: (alt * 1000.0).round() as u32, denom: 1000 };
        fields.push(Field { tag: Tag::GPSAltitude, ifd_num: In::PRIMARY, value: Value::Rational(vec![alt]) });
        fields.push(Field { tag: Tag::GPSAltitudeRef, ifd_num: In::PRIMARY, value: Value::Byte(vec![reference]) });
    }
    if let Some(text) = spec.date_time {
        fields.push(ascii(Tag::DateTimeOriginal, text));
    }
    if let Some(text) = spec.subsec {
        fields.push(ascii(Tag::SubSecTimeOriginal, text));
    }
    if let Some(text) = spec.offset {
        fields.push(ascii(Tag::OffsetTimeOriginal, text));
    }
    fields.push(Field {
        tag: Tag::FocalLength,
        ifd_num: In::PRIMARY,
        value: Value::Rational(vec![Rational { num: 45, denom: 10 }]),
    });
    if let Some(mm) = spec.focal_35mm {
        fields.push(Field { tag: Tag::FocalLengthIn35mmFilm, ifd_num: In::PRIMARY, value: Value::Short(vec![mm]) });
    }
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    writer.write(&mut out, false).unwrap();
    out.into_inner()
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len() + 2).unwrap();
    let mut out = vec![0xFF, marker];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A complete JPEG with the metadata of `spec`, whose frame header says `width_px` x `height_px`.
pub(crate) fn photo(spec: &PhotoSpec, width_px: u16, height_px: u16) -> Vec<u8> {
    let base = grey_jpeg();
    let mut out = vec![0xFF, 0xD8];
    if spec.exif {
        out.extend(segment(0xE1, &[b"Exif\0\0".as_slice(), &exif_tiff(spec)].concat()));
    }
    if let Some(xmp) = &spec.xmp {
        out.extend(segment(0xE1, &[b"http://ns.adobe.com/xap/1.0/\0".as_slice(), xmp.as_bytes()].concat()));
    }
    // Copy the encoder's segments after its SOI, patching the frame size in SOF0.
    let mut rest = base[2..].to_vec();
    let sof = rest.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    rest[sof + 5..sof + 7].copy_from_slice(&height_px.to_be_bytes());
    rest[sof + 7..sof + 9].copy_from_slice(&width_px.to_be_bytes());
    out.extend(rest);
    out
}
