//! The embedded front-end: plain HTML, JS modules and CSS from `ground-station/assets/`, compiled into the
//! binary so the console works with no internet and no files beside the binary.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset { path: $path, content_type: $content_type, bytes: include_bytes!(concat!("../../assets/", $path)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page may load. Only these are served: a request names an entry, never a file system path.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("i18n.js", JS),
    asset!("gcj02.js", JS),
    asset!("map.js", JS),
    asset!("plan.js", JS),
    asset!("review.js", JS),
    asset!("incidents.js", JS),
    asset!("i18n/en.json", "application/json"),
    asset!("i18n/zh-CN.json", "application/json"),
    asset!("vendor/leaflet/leaflet.js", JS),
    asset!("vendor/leaflet/leaflet.css", "text/css; charset=utf-8"),
    asset!("vendor/leaflet/LICENSE", "text/plain; charset=utf-8"),
    asset!("vendor/leaflet/images/layers.png", "image/png"),
    asset!("vendor/leaflet/images/layers-2x.png", "image/png"),
    asset!("vendor/leaflet/images/marker-icon.png", "image/png"),
    asset!("vendor/leaflet/images/marker-icon-2x.png", "image/png"),
    asset!("vendor/leaflet/images/marker-shadow.png", "image/png"),
];

fn serve(path: &str) -> Response {
    match ASSETS.iter().find(|asset| asset.path == path) {
        Some(asset) => ([(header::CONTENT_TYPE, asset.content_type), (header::CACHE_CONTROL, "no-cache")], asset.bytes)
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// `GET /`: the page shell.
pub(crate) async fn index() -> Response {
    serve("index.html")
}

/// `GET /assets/{path}`: an embedded file.
pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_non_empty_and_unique() {
        for (i, asset) in ASSETS.iter().enumerate() {
            assert!(!asset.bytes.is_empty(), "{}", asset.path);
            assert!(ASSETS[..i].iter().all(|other| other.path != asset.path), "duplicate {}", asset.path);
        }
    }

    #[test]
    fn unknown_and_traversal_paths_are_not_found() {
        for path in ["../Cargo.toml", "../../src/web.rs", "/etc/passwd", "vendor/../index.html", "nope.js"] {
            assert_eq!(serve(path).status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
}
