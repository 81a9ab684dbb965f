//! A picture of a patrol plan as SVG: cells (covered, uncovered), no-fly zones, routes coloured per drone,
//! launch points, a scale bar and a legend. Pure string output; the caller writes the file.

use std::fmt::Write as _;

use geo::{BoundingRect, Coord, MultiPolygon};

use crate::area::{ZoneShape, to_local};
use crate::geo::GeoPoint;
use crate::patrol::{PatrolPlan, PatrolRequest};

/// Colours for drones 1, 2, ... (repeating).
const DRONE_COLOURS: [&str; 8] =
    ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#9a6324", "#f032e6"];

struct View {
    min: Coord<f64>,
    scale: f64,
    height_px: f64,
    margin_px: f64,
}

impl View {
    fn px(&self, c: Coord<f64>) -> (f64, f64) {
        (
            self.margin_px + (c.x - self.min.x) * self.scale,
            self.margin_px + self.height_px - (c.y - self.min.y) * self.scale,
        )
    }

    fn path(&self, area: &MultiPolygon<f64>) -> String {
        let mut d = String::new();
        for polygon in area {
            for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                for (i, c) in ring.0.iter().enumerate() {
                    let (x, y) = self.px(*c);
                    let _ = write!(d, "{}{x:.1},{y:.1} ", if i == 0 { "M" } else { "L" });
                }
                d.push_str("Z ");
            }
        }
        d
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Renders the plan, `width_px` wide, framed on the cells and launch points (zones are clipped to the frame).
pub fn plan_to_svg(request: &PatrolRequest, plan: &PatrolPlan, width_px: f64) -> String {
    let frame = plan.frame;
    let local = |p: GeoPoint| {
        let l = frame.to_local(p);
        Coord { x: l.east_m, y: l.north_m }
    };
    let cells: Vec<MultiPolygon<f64>> = request.cells.iter().map(|c| to_local(&c.area, &frame)).collect();
    let mut all: Vec<Coord<f64>> =
        cells.iter().filter_map(BoundingRect::bounding_rect).flat_map(|r| [r.min(), r.max()]).collect();
    all.extend(request.launch_points.iter().map(|l| local(l.point)));
    let (mut min, mut max) = (Coord { x: f64::MAX, y: f64::MAX }, Coord { x: f64::MIN, y: f64::MIN });
    for c in &all {
        min = Coord { x: min.x.min(c.x), y: min.y.min(c.y) };
        max = Coord { x: max.x.max(c.x), y: max.y.max(c.y) };
    }
    let pad = ((max.x - min.x).max(max.y - min.y) * 0.05).max(50.0);
    min = Coord { x: min.x - pad, y: min.y - pad };
    max = Coord { x: max.x + pad, y: max.y + pad };
    let margin_px = 20.0;
    let legend_px = 260.0;
    let map_w = (width_px - legend_px - 2.0 * margin_px).max(200.0);
    let scale = map_w / (max.x - min.x).max(1.0);
    let height_px = (max.y - min.y) * scale;
    let view = View { min, scale, height_px, margin_px };
    let total_h = height_px + 2.0 * margin_px;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width_px:.0}" height="{total_h:.0}" viewBox="0 0 {width_px:.0} {total_h:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#fbfbf8"/>"##);
    let _ = writeln!(
        s,
        r#"<clipPath id="map"><rect x="{margin_px}" y="{margin_px}" width="{:.1}" height="{height_px:.1}"/></clipPath><g clip-path="url(#map)">"#,
        (max.x - min.x) * scale
    );
    for zone in &request.zones {
        let shape = zone.shape.to_local(&frame);
        let _ = writeln!(
            s,
            r##"<path d="{}" fill="#d62728" fill-opacity="0.18" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6 3" fill-rule="evenodd"><title>no-fly zone {}</title></path>"##,
            view.path(&shape),
            escape(&zone.id)
        );
        if let ZoneShape::Circle { center, .. } = zone.shape {
            let (x, y) = view.px(local(center));
            let _ = writeln!(
                s,
                r##"<text x="{x:.1}" y="{y:.1}" fill="#d62728" text-anchor="middle">{}</text>"##,
                escape(&zone.id)
            );
        }
    }
    for (cell, area) in request.cells.iter().zip(&cells) {
        let uncovered = plan.uncovered.iter().find(|u| u.id == cell.id);
        let (fill, stroke) = if uncovered.is_some() { ("#999999", "#555555") } else { ("#9ecae1", "#3182bd") };
        let title = uncovered.map_or_else(|| cell.id.clone(), |u| format!("{}: {}", cell.id, u.reason));
        let _ = writeln!(
            s,
            r#"<path d="{}" fill="{fill}" fill-opacity="0.35" stroke="{stroke}" stroke-width="0.8" fill-rule="evenodd"><title>{}</title></path>"#,
            view.path(area),
            escape(&title)
        );
        if let Some(r) = area.bounding_rect() {
            let (x, y) = view.px(r.center());
            let _ = writeln!(
                s,
                r##"<text x="{x:.1}" y="{y:.1}" font-size="9" fill="#08306b" text-anchor="middle">{}</text>"##,
                escape(&cell.id)
            );
        }
    }
    for (i, sortie) in plan.sorties.iter().enumerate() {
        let colour = DRONE_COLOURS[(sortie.drone.max(1) - 1) % DRONE_COLOURS.len()];
        let pts: Vec<String> = sortie
            .route
            .iter()
            .map(|p| {
                let (x, y) = view.px(local(*p));
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.2" stroke-opacity="0.9"><title>sortie {} (drone {}): {:.1} km, {:.1} min, {} photos</title></polyline>"#,
            pts.join(" "),
            i + 1,
            sortie.drone,
            sortie.distance_m / 1000.0,
            sortie.flight_time_s / 60.0,
            sortie.photos.len()
        );
    }
    let _ = writeln!(s, "</g>");
    for l in &request.launch_points {
        let (x, y) = view.px(local(l.point));
        let _ = writeln!(
            s,
            r##"<path d="M{x:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z" fill="#000" stroke="#fff"/><text x="{:.1}" y="{:.1}" font-weight="bold">{}</text>"##,
            y - 9.0,
            x - 8.0,
            y + 6.0,
            x + 8.0,
            y + 6.0,
            x + 10.0,
            y - 8.0,
            escape(&l.id)
        );
    }
    // Scale bar: a round length near a fifth of the map.
    let target = (max.x - min.x) / 5.0;
    let magnitude = 10f64.powf(target.log10().floor());
    let bar_m = [1.0, 2.0, 5.0].iter().map(|f| f * magnitude).filter(|b| *b <= target).fold(magnitude, f64::max);
    let (bx, by) = (margin_px + 10.0, margin_px + height_px - 12.0);
    let _ = writeln!(
        s,
        r##"<rect x="{bx:.1}" y="{by:.1}" width="{:.1}" height="5" fill="#000"/><text x="{bx:.1}" y="{:.1}">{}</text>"##,
        bar_m * scale,
        by - 4.0,
        if bar_m >= 1000.0 { format!("{} km", bar_m / 1000.0) } else { format!("{bar_m} m") }
    );
    // Legend.
    let lx = margin_px * 2.0 + (max.x - min.x) * scale;
    let mut ly = margin_px + 10.0;
    let totals = plan.totals();
    let mut line = |s: &mut String, text: &str, bold: bool| {
        let _ = writeln!(
            s,
            r#"<text x="{lx:.1}" y="{ly:.1}"{}>{}</text>"#,
            if bold { r#" font-weight="bold""# } else { "" },
            escape(text)
        );
        ly += 16.0;
    };
    line(&mut s, "Patrol plan", true);
    line(&mut s, &format!("{} cells, {} uncovered", request.cells.len(), plan.uncovered.len()), false);
    line(
        &mut s,
        &format!("altitude {:.0} m, GSD {:.1} cm/px", plan.survey.altitude_m, plan.survey.gsd_m * 100.0),
        false,
    );
    line(
        &mut s,
        &format!("{} sorties, {:.1} km, {} photos", totals.sorties, totals.distance_m / 1000.0, totals.photos),
        false,
    );
    line(&mut s, &format!("done after {:.0} min", totals.finish_s / 60.0), false);
    ly += 8.0;
    for d in &plan.drones {
        let colour = DRONE_COLOURS[(d.drone.max(1) - 1) % DRONE_COLOURS.len()];
        let _ = writeln!(s, r#"<rect x="{lx:.1}" y="{:.1}" width="24" height="4" fill="{colour}"/>"#, ly - 5.0);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{ly:.1}">drone {} ({}): {} sorties, {:.0} min</text>"#,
            lx + 30.0,
            d.drone,
            escape(&d.launch_id),
            d.sorties.len(),
            d.finish_s / 60.0
        );
        ly += 16.0;
    }
    ly += 8.0;
    for (fill, stroke, text) in [
        ("#9ecae1", "#3182bd", "grid cell (covered)"),
        ("#999999", "#555555", "grid cell (not covered)"),
        ("#d62728", "#d62728", "no-fly zone"),
    ] {
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="24" height="12" fill="{fill}" fill-opacity="0.35" stroke="{stroke}"/>"#,
            ly - 10.0
        );
        let _ = writeln!(s, r#"<text x="{:.1}" y="{ly:.1}">{text}</text>"#, lx + 30.0);
        ly += 18.0;
    }
    let _ = writeln!(
        s,
        r##"<path d="M{:.1},{:.1} l-8,15 l16,0 Z" fill="#000"/><text x="{:.1}" y="{ly:.1}">launch point</text>"##,
        lx + 12.0,
        ly - 12.0,
        lx + 30.0
    );
    s.push_str("</svg>\n");
    s
}
