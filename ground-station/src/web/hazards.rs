//! Hazards: the filtered list, one hazard, evidence images by id, and CSV/GeoJSON export.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::api::{Hazard, HazardFilter};
use super::error::ErrorBody;
use super::extract::{AnyRole, Authed};
use super::{ApiError, AppState};

/// Ids (hazards, images) are plain tokens: letters, digits, `-` and `_`. Anything else (a `/`, `..`, `%`) is
/// refused before the backend sees it, so no id can name a path.
pub(crate) fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(ApiError::BadRequest("invalid id: use letters, digits, '-' and '_'".to_owned())) }
}

fn filter_from(
    query: Result<Query<HazardFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<HazardFilter, ApiError> {
    query.map(|Query(filter)| filter).map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
}

/// Hazards passing the filters, newest first.
#[utoipa::path(get, path = "/api/hazards", tag = "hazards", params(HazardFilter),
    responses((status = 200, body = Vec<Hazard>), (status = 400, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _user: Authed<AnyRole>,
    query: Result<Query<HazardFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Hazard>>, ApiError> {
    Ok(Json(state.backend.hazards(filter_from(query)?).await?))
}

/// One hazard.
#[utoipa::path(get, path = "/api/hazards/{id}", tag = "hazards", params(("id" = String, Path)),
    responses((status = 200, body = Hazard), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    _user: Authed<AnyRole>,
    Path(id): Path<String>,
) -> Result<Json<Hazard>, ApiError> {
    check_id(&id)?;
    Ok(Json(state.backend.hazard(&id).await?))
}

/// An evidence image (full frame or crop) by id.
#[utoipa::path(get, path = "/api/evidence/{id}", tag = "hazards", params(("id" = String, Path)),
    responses((status = 200, content_type = "image/jpeg"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn evidence(
    State(state): State<AppState>,
    _user: Authed<AnyRole>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let image = state.backend.evidence_image(&id).await?;
    Ok(([(header::CONTENT_TYPE, image.content_type), (header::CACHE_CONTROL, "private, max-age=3600")], image.bytes)
        .into_response())
}

/// The filtered hazards as CSV (UTF-8 with a BOM so spreadsheet programs read Chinese addresses right).
#[utoipa::path(get, path = "/api/export/hazards.csv", tag = "hazards", params(HazardFilter),
    responses((status = 200, content_type = "text/csv")))]
pub(crate) async fn export_csv(
    State(state): State<AppState>,
    _user: Authed<AnyRole>,
    query: Result<Query<HazardFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let hazards = state.backend.hazards(filter_from(query)?).await?;
    Ok(attachment("text/csv; charset=utf-8", "hazards.csv", to_csv(&hazards)))
}

/// The filtered hazards as a GeoJSON FeatureCollection of points (WGS84).
#[utoipa::path(get, path = "/api/export/hazards.geojson", tag = "hazards", params(HazardFilter),
    responses((status = 200, content_type = "application/geo+json")))]
pub(crate) async fn export_geojson(
    State(state): State<AppState>,
    _user: Authed<AnyRole>,
    query: Result<Query<HazardFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let hazards = state.backend.hazards(filter_from(query)?).await?;
    Ok(attachment("application/geo+json", "hazards.geojson", to_geojson(&hazards).to_string()))
}

/// A download: `body` with its content type, saved by the browser as `file_name`.
fn attachment(content_type: &'static str, file_name: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{file_name}\"");
    ([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}

fn json_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// One CSV field: quoted when needed, and a leading `= + - @` neutralised so a spreadsheet does not run it.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

fn to_csv(hazards: &[Hazard]) -> String {
    let mut out = String::from(
        "\u{feff}id,kind,label,severity,confidence,lat_deg,lon_deg,uncertainty_m,grid_cell,address,\
         first_seen_utc,last_seen_utc,drone_id,mission_id,status,review\r\n",
    );
    for h in hazards {
        let fields = [
            h.id.clone(),
            json_name(&h.kind),
            h.label.clone(),
            json_name(&h.severity),
            format!("{:.3}", h.confidence),
            format!("{:.7}", h.position.lat_deg),
            format!("{:.7}", h.position.lon_deg),
            format!("{:.1}", h.uncertainty_m),
            h.grid_cell.clone().unwrap_or_default(),
            h.address.clone().unwrap_or_default(),
            iso8601_utc(h.first_seen_unix_ms),
            iso8601_utc(h.last_seen_unix_ms),
            h.drone_id.clone(),
            h.mission_id.clone().unwrap_or_default(),
            json_name(&h.status),
            json_name(&h.review),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn to_geojson(hazards: &[Hazard]) -> serde_json::Value {
    let features: Vec<_> = hazards
        .iter()
        .map(|h| {
            let mut properties = serde_json::to_value(h).unwrap_or_default();
            if let Some(map) = properties.as_object_mut() {
                map.remove("position");
            }
            serde_json::json!({
                "type": "Feature",
                "id": h.id,
                "geometry": { "type": "Point", "coordinates": [h.position.lon_deg, h.position.lat_deg] },
                "properties": properties,
            })
        })
        .collect();
    serde_json::json!({ "type": "FeatureCollection", "features": features })
}

/// `2026-11-27T08:00:00.000Z` from Unix milliseconds (proleptic Gregorian, UTC).
fn iso8601_utc(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, ms) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_tokens() {
        for ok in ["h-1", "img_0001", "A9"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../etc/passwd", "a/b", "..", "a.b", "%2e%2e", "a\\b", &"x".repeat(129)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_utc(1_795_766_400_123), "2026-11-27T08:00:00.123Z");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
