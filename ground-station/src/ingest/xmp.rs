//! The DJI `drone-dji:` tags of an XMP packet, in attribute form (`drone-dji:RelativeAltitude="+12.30"`) or
//! element form (`<drone-dji:RelativeAltitude>+12.30</drone-dji:RelativeAltitude>`).

use super::photo_pose::{DjiTags, PhotoError};

/// The namespace DJI writes its flight and gimbal tags in.
const DJI_NS: &str = "http://www.dji.com/drone-dji/1.0/";

/// Parses the DJI tags of an XMP packet. Tags it does not know are ignored; a packet without any gives empty
/// tags.
///
/// # Errors
/// [`PhotoError::InvalidXmp`] when the packet is not UTF-8 XML, [`PhotoError::InvalidTag`] when a known tag does
/// not hold a finite number.
pub(crate) fn parse_dji(packet: &[u8]) -> Result<DjiTags, PhotoError> {
    let text = std::str::from_utf8(packet).map_err(|error| PhotoError::InvalidXmp { reason: error.to_string() })?;
    // Packets are padded with whitespace (and sometimes NULs) for in-place editing.
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let doc = roxmltree::Document::parse(text).map_err(|error| PhotoError::InvalidXmp { reason: error.to_string() })?;
    let mut tags = DjiTags::default();
    for node in doc.descendants().filter(roxmltree::Node::is_element) {
        for attribute in node.attributes().filter(|a| a.namespace() == Some(DJI_NS)) {
            tags.set(attribute.name(), attribute.value())?;
        }
        if node.tag_name().namespace() == Some(DJI_NS) {
            tags.set(node.tag_name().name(), node.text().unwrap_or(""))?;
        }
    }
    Ok(tags)
}

impl DjiTags {
    /// Stores `value` under the tag `name` when it is one of ours.
    fn set(&mut self, name: &str, value: &str) -> Result<(), PhotoError> {
        let slot = match name {
            "RelativeAltitude" => &mut self.relative_altitude_m,
            "AbsoluteAltitude" => &mut self.absolute_altitude_m,
            "GimbalPitchDegree" => &mut self.gimbal_pitch_deg,
            "GimbalYawDegree" => &mut self.gimbal_yaw_deg,
            "GimbalRollDegree" => &mut self.gimbal_roll_deg,
            "FlightYawDegree" => &mut self.flight_yaw_deg,
            "FlightPitchDegree" => &mut self.flight_pitch_deg,
            "FlightRollDegree" => &mut self.flight_roll_deg,
            "GpsLatitude" => &mut self.gps_latitude_deg,
            // Several DJI firmwares spell it this way.
            "GpsLongitude" | "GpsLongtitude" => &mut self.gps_longitude_deg,
            _ => return Ok(()),
        };
        *slot = Some(parse_number(value).ok_or_else(|| PhotoError::InvalidTag {
            tag: format!("drone-dji:{name}"),
            value: value.chars().take(64).collect(),
        })?);
        Ok(())
    }
}

/// A finite number, tolerating surrounding whitespace and an explicit `+` sign (DJI writes "+12.30").
fn parse_number(value: &str) -> Option<f64> {
    let value = value.trim();
    let value = match value.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => value,
    };
    value.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_form_with_signs_and_the_longitude_typo() {
        let xmp = br#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
 <rdf:Description rdf:about="DJI Meta Data" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"
   drone-dji:AbsoluteAltitude="+512.47" drone-dji:RelativeAltitude="+60.30" drone-dji:GimbalRollDegree="+0.00"
   drone-dji:GimbalYawDegree="-93.10" drone-dji:GimbalPitchDegree="-89.90" drone-dji:FlightRollDegree=" -1.2 "
   drone-dji:FlightYawDegree="-92.60" drone-dji:FlightPitchDegree="+3.10" drone-dji:GpsLongtitude="8.5"
   drone-dji:SelfData="Undefined"/>
</rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>         "#;
        let tags = parse_dji(xmp).unwrap();
        assert_eq!(tags.relative_altitude_m, Some(60.3));
        assert_eq!(tags.absolute_altitude_m, Some(512.47));
        assert_eq!(tags.gimbal_pitch_deg, Some(-89.9));
        assert_eq!(tags.gimbal_yaw_deg, Some(-93.1));
        assert_eq!(tags.gimbal_roll_deg, Some(0.0));
        assert_eq!(tags.flight_yaw_deg, Some(-92.6));
        assert_eq!(tags.flight_pitch_deg, Some(3.1));
        assert_eq!(tags.flight_roll_deg, Some(-1.2));
        assert_eq!(tags.gps_longitude_deg, Some(8.5));
        assert_eq!(tags.gps_latitude_deg, None);
    }

    #[test]
    fn element_form_and_other_namespaces() {
        let xmp =
            br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
 <rdf:Description xmlns:dji="http://www.dji.com/drone-dji/1.0/" xmlns:other="urn:other">
  <dji:RelativeAltitude>+12.30</dji:RelativeAltitude>
  <dji:GimbalPitchDegree>-45</dji:GimbalPitchDegree>
  <other:RelativeAltitude>999</other:RelativeAltitude>
 </rdf:Description></rdf:RDF></x:xmpmeta>"#;
        let tags = parse_dji(xmp).unwrap();
        assert_eq!(tags.relative_altitude_m, Some(12.3));
        assert_eq!(tags.gimbal_pitch_deg, Some(-45.0));
        assert_eq!(tags.gimbal_yaw_deg, None);
    }

    #[test]
    fn garbage_and_bad_numbers_are_typed_errors() {
        assert!(matches!(parse_dji(b"<x:xmpmeta><unclosed"), Err(PhotoError::InvalidXmp { .. })));
        assert!(matches!(parse_dji(&[0xFF, 0xFE, 0x00]), Err(PhotoError::InvalidXmp { .. })));
        let bad = br#"<r xmlns:d="http://www.dji.com/drone-dji/1.0/" d:RelativeAltitude="high"/>"#;
        match parse_dji(bad) {
            Err(PhotoError::InvalidTag { tag, value }) => {
                assert_eq!(tag, "drone-dji:RelativeAltitude");
                assert_eq!(value, "high");
            }
            other => panic!("{other:?}"),
        }
        let nan = br#"<r xmlns:d="http://www.dji.com/drone-dji/1.0/" d:GimbalYawDegree="NaN"/>"#;
        assert!(matches!(parse_dji(nan), Err(PhotoError::InvalidTag { .. })));
    }

    #[test]
    fn numbers_tolerate_plus_and_whitespace() {
        assert_eq!(parse_number("+12.30"), Some(12.3));
        assert_eq!(parse_number(" -0.5 "), Some(-0.5));
        assert_eq!(parse_number("++1"), None);
        assert_eq!(parse_number("+-1"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("inf"), None);
    }
}
