//! A picture of a patrol plan as SVG: cells (covered, uncovered), no-fly zones, routes coloured per drone,
//! launch points, a scale bar and a legend. Pure string output; the caller writes the file.
//!
//! Cells far apart (more than [`PANEL_GAP_M`]) are drawn in separate panels side by side at one common scale,
//! so a district with two distant areas does not become two specks on an empty map.

use std::fmt::Write as _;

use geo::{BoundingRect, Coord, MultiPolygon, Rect};

use crate::area::{ZoneShape, to_local};
use crate::geo::GeoPoint;
use crate::patrol::{PatrolPlan, PatrolRequest};

/// Colours for drones 1, 2, ... (repeating).
const DRONE_COLOURS: [&str; 8] =
    ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#9a6324", "#f032e6"];

/// Cells whose bounding boxes are further apart than this go into different panels, metres.
pub const PANEL_GAP_M: f64 = 1500.0;

struct Panel {
    min: Coord<f64>,
    max: Coord<f64>,
    x0_px: f64,
    y0_px: f64,
    scale: f64,
}

impl Panel {
    fn px(&self, c: Coord<f64>) -> (f64, f64) {
        (self.x0_px + (c.x - self.min.x) * self.scale, self.y0_px + (self.max.y - c.y) * self.scale)
    }

    fn width_px(&self) -> f64 {
        (self.max.x - self.min.x) * self.scale
    }

    fn height_px(&self) -> f64 {
        (self.max.y - self.min.y) * self.scale
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

fn gap(a: &Rect<f64>, b: &Rect<f64>) -> f64 {
    let dx = (a.min().x - b.max().x).max(b.min().x - a.max().x).max(0.0);
    let dy = (a.min().y - b.max().y).max(b.min().y - a.max().y).max(0.0);
    dx.hypot(dy)
}

/// Groups of cell indices whose boxes chain together within `PANEL_GAP_M`.
fn clusters(rects: &[Rect<f64>]) -> Vec<Vec<usize>> {
    let mut group: Vec<usize> = (0..rects.len()).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for i in 0..rects.len() {
        for j in i + 1..rects.len() {
            if gap(&rects[i], &rects[j]) <= PANEL_GAP_M {
                let (a, b) = (root(&mut group, i), root(&mut group, j));
                group[a.max(b)] = a.min(b);
            }
        }
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    for i in 0..rects.len() {
        let r = root(&mut group, i);
        match roots.iter().position(|x| *x == r) {
            Some(k) => out[k].push(i),
            None => {
                roots.push(r);
                out.push(vec![i]);
            }
        }
    }
    out
}

/// Renders the plan about `width_px` wide.
pub fn plan_to_svg(request: &PatrolRequest, plan: &PatrolPlan, width_px: f64) -> String {
    let frame = plan.frame;
    let local = |p: GeoPoint| {
        let l = frame.to_local(p);
        Coord { x: l.east_m, y: l.north_m }
    };
    let cells: Vec<MultiPolygon<f64>> = request.cells.iter().map(|c| to_local(&c.area, &frame)).collect();
    let rects: Vec<Rect<f64>> = cells
        .iter()
        .map(|c| c.bounding_rect().unwrap_or_else(|| Rect::new(Coord { x: 0.0, y: 0.0 }, Coord { x: 0.0, y: 0.0 })))
        .collect();
    let launches: Vec<Coord<f64>> = request.launch_points.iter().map(|l| local(l.point)).collect();
    // Panel extents: their cells plus the launch points near them, padded.
    let mut extents: Vec<(Coord<f64>, Coord<f64>)> = clusters(&rects)
        .iter()
        .map(|members| {
            let mut min = Coord { x: f64::MAX, y: f64::MAX };
            let mut max = Coord { x: f64::MIN, y: f64::MIN };
            for &i in members {
                min = Coord { x: min.x.min(rects[i].min().x), y: min.y.min(rects[i].min().y) };
                max = Coord { x: max.x.max(rects[i].max().x), y: max.y.max(rects[i].max().y) };
            }
            let r = Rect::new(min, max);
            for l in &launches {
                if gap(&r, &Rect::new(*l, *l)) <= PANEL_GAP_M {
                    min = Coord { x: min.x.min(l.x), y: min.y.min(l.y) };
                    max = Coord { x: max.x.max(l.x), y: max.y.max(l.y) };
                }
            }
            let pad = ((max.x - min.x).max(max.y - min.y) * 0.06).max(60.0);
            (Coord { x: min.x - pad, y: min.y - pad }, Coord { x: max.x + pad, y: max.y + pad })
        })
        .collect();
    extents.sort_by(|a, b| a.0.x.total_cmp(&b.0.x));
    let margin_px = 20.0;
    let gap_px = 24.0;
    let title_px = 22.0;
    let legend_px = 300.0;
    #[allow(clippy::cast_precision_loss)]
    let gaps = (extents.len().max(1) - 1) as f64 * gap_px;
    let total_w_m: f64 = extents.iter().map(|(a, b)| b.x - a.x).sum::<f64>().max(1.0);
    let max_h_m = extents.iter().map(|(a, b)| b.y - a.y).fold(1.0, f64::max);
    let scale = ((width_px - legend_px - 2.0 * margin_px - gaps) / total_w_m).min(900.0 / max_h_m);
    let mut x = margin_px;
    let panels: Vec<Panel> = extents
        .iter()
        .map(|&(min, max)| {
            let p = Panel { min, max, x0_px: x, y0_px: margin_px + title_px, scale };
            x += p.width_px() + gap_px;
            p
        })
        .collect();
    let legend_x = x - gap_px + margin_px;
    let total_w = legend_x + legend_px;
    let total_h = (max_h_m * scale + margin_px * 2.0 + title_px).max(330.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0}" height="{total_h:.0}" viewBox="0 0 {total_w:.0} {total_h:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#fbfbf8"/>"##);
    for (k, panel) in panels.iter().enumerate() {
        render_panel(&mut s, k, panel, request, plan, &cells, &launches);
    }
    render_legend(&mut s, legend_x, margin_px + 10.0, request, plan);
    s.push_str("</svg>\n");
    s
}

fn render_panel(
    s: &mut String,
    k: usize,
    panel: &Panel,
    request: &PatrolRequest,
    plan: &PatrolPlan,
    cells: &[MultiPolygon<f64>],
    launches: &[Coord<f64>],
) {
    let frame = plan.frame;
    let local = |p: GeoPoint| {
        let l = frame.to_local(p);
        Coord { x: l.east_m, y: l.north_m }
    };
    let (w, h) = (panel.width_px(), panel.height_px());
    let _ = writeln!(
        s,
        r##"<clipPath id="panel{k}"><rect x="{:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}"/></clipPath><rect x="{:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}" fill="#ffffff" stroke="#888"/><g clip-path="url(#panel{k})">"##,
        panel.x0_px, panel.y0_px, panel.x0_px, panel.y0_px
    );
    for zone in &request.zones {
        let shape = zone.shape.to_local(&frame);
        let _ = writeln!(
            s,
            r##"<path d="{}" fill="#d62728" fill-opacity="0.18" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6 3" fill-rule="evenodd"><title>no-fly zone {}</title></path>"##,
            panel.path(&shape),
            escape(&zone.id)
        );
        let label_at = match zone.shape {
            ZoneShape::Circle { center, .. } => Some(local(center)),
            ZoneShape::Polygon(_) => shape.bounding_rect().map(|r| {
                // Inside the panel, at the zone box's point nearest the panel's centre.
                let c = Coord { x: (panel.min.x + panel.max.x) / 2.0, y: (panel.min.y + panel.max.y) / 2.0 };
                Coord { x: c.x.clamp(r.min().x, r.max().x), y: c.y.clamp(r.min().y, r.max().y) }
            }),
        };
        if let Some(at) = label_at {
            let (x, y) = panel.px(at);
            let _ = writeln!(
                s,
                r##"<text x="{x:.1}" y="{y:.1}" fill="#b00" font-weight="bold" text-anchor="middle">{}</text>"##,
                escape(&zone.id)
            );
        }
    }
    for (cell, area) in request.cells.iter().zip(cells) {
        let uncovered = plan.uncovered.iter().find(|u| u.id == cell.id);
        let (fill, stroke) = if uncovered.is_some() { ("#999999", "#555555") } else { ("#9ecae1", "#3182bd") };
        let title = uncovered.map_or_else(|| cell.id.clone(), |u| format!("{}: {}", cell.id, u.reason));
        let _ = writeln!(
            s,
            r#"<path d="{}" fill="{fill}" fill-opacity="0.35" stroke="{stroke}" stroke-width="0.8" fill-rule="evenodd"><title>{}</title></path>"#,
            panel.path(area),
            escape(&title)
        );
    }
    for (i, sortie) in plan.sorties.iter().enumerate() {
        let colour = DRONE_COLOURS[(sortie.drone.max(1) - 1) % DRONE_COLOURS.len()];
        let pts: Vec<String> = sortie
            .route
            .iter()
            .map(|p| {
                let (x, y) = panel.px(local(*p));
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.3" stroke-opacity="0.9" stroke-linejoin="round"><title>sortie {} (drone {}): {:.1} km, {:.1} min, {} photos</title></polyline>"#,
            pts.join(" "),
            i + 1,
            sortie.drone,
            sortie.distance_m / 1000.0,
            sortie.flight_time_s / 60.0,
            sortie.photos.len()
        );
    }
    for (cell, area) in request.cells.iter().zip(cells) {
        if let Some(r) = area.bounding_rect() {
            let (x, y) = panel.px(r.center());
            let _ = writeln!(
                s,
                r##"<text x="{x:.1}" y="{y:.1}" font-size="10" fill="#08306b" text-anchor="middle" stroke="#fff" stroke-width="3" paint-order="stroke">{}</text>"##,
                escape(&cell.id)
            );
        }
    }
    for (l, c) in request.launch_points.iter().zip(launches) {
        let (x, y) = panel.px(*c);
        let _ = writeln!(
            s,
            r##"<path d="M{x:.1},{:.1} l-8,15 l16,0 Z" fill="#000" stroke="#fff"/><text x="{:.1}" y="{:.1}" font-weight="bold" stroke="#fff" stroke-width="3" paint-order="stroke">{}</text>"##,
            y - 9.0,
            x + 10.0,
            y + 4.0,
            escape(&l.id)
        );
    }
    let _ = writeln!(s, "</g>");
    // Title: the cells' communities or ids in this panel.
    let mut names: Vec<String> = Vec::new();
    for (cell, area) in request.cells.iter().zip(cells) {
        let inside = area.bounding_rect().is_some_and(|r| {
            let c = r.center();
            c.x >= panel.min.x && c.x <= panel.max.x && c.y >= panel.min.y && c.y <= panel.max.y
        });
        let name = cell.community.clone().unwrap_or_else(|| cell.id.clone());
        if inside && !names.contains(&name) && names.len() < 4 {
            names.push(name);
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-weight="bold">{}</text>"#,
        panel.x0_px,
        panel.y0_px - 6.0,
        escape(&names.join(", "))
    );
    // Scale bar: a round length near a fifth of the panel.
    let target = (panel.max.x - panel.min.x) / 5.0;
    let magnitude = 10f64.powf(target.log10().floor());
    let bar_m = [1.0, 2.0, 5.0].iter().map(|f| f * magnitude).filter(|b| *b <= target).fold(magnitude, f64::max);
    let (bx, by) = (panel.x0_px + 10.0, panel.y0_px + h - 12.0);
    let _ = writeln!(
        s,
        r##"<rect x="{bx:.1}" y="{by:.1}" width="{:.1}" height="5" fill="#000"/><text x="{bx:.1}" y="{:.1}">{}</text>"##,
        bar_m * panel.scale,
        by - 4.0,
        if bar_m >= 1000.0 { format!("{} km", bar_m / 1000.0) } else { format!("{bar_m} m") }
    );
}

fn render_legend(s: &mut String, lx: f64, mut ly: f64, request: &PatrolRequest, plan: &PatrolPlan) {
    let totals = plan.totals();
    let line = |s: &mut String, ly: &mut f64, text: &str, bold: bool| {
        let _ = writeln!(
            s,
            r#"<text x="{lx:.1}" y="{:.1}"{}>{}</text>"#,
            *ly,
            if bold { r#" font-weight="bold""# } else { "" },
            escape(text)
        );
        *ly += 16.0;
    };
    line(s, &mut ly, "Patrol plan", true);
    line(s, &mut ly, &format!("{} cells, {} not (fully) covered", request.cells.len(), plan.uncovered.len()), false);
    line(
        s,
        &mut ly,
        &format!("{:.0} m above ground, GSD {:.1} cm/px", plan.survey.altitude_m, plan.survey.gsd_m * 100.0),
        false,
    );
    line(
        s,
        &mut ly,
        &format!("{} sorties, {:.1} km, {} photos", totals.sorties, totals.distance_m / 1000.0, totals.photos),
        false,
    );
    line(s, &mut ly, &format!("all drones done after {:.0} min", totals.finish_s / 60.0), false);
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
    ly += 26.0;
    if !plan.uncovered.is_empty() {
        line(s, &mut ly, "Not covered:", true);
        for u in plan.uncovered.iter().take(12) {
            let reason = u.reason.to_string();
            let short: String = reason.chars().take(40).collect();
            line(
                s,
                &mut ly,
                &format!("{}: {}{}", u.id, short, if reason.len() > short.len() { "…" } else { "" }),
                false,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_apart_boxes_make_separate_panels() {
        let r = |x: f64| Rect::new(Coord { x, y: 0.0 }, Coord { x: x + 100.0, y: 100.0 });
        let groups = clusters(&[r(0.0), r(150.0), r(10_000.0), r(300.0)]);
        assert_eq!(groups, vec![vec![0, 1, 3], vec![2]]);
    }
}
