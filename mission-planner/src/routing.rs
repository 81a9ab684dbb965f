//! Free airspace in a local frame: no-fly zones grown by a safety margin, an optional inclusion fence shrunk by
//! it, and shortest legs around them on a visibility graph.
//!
//! Graph nodes are the convex corners of each obstacle grown once more by a small clearance, so that legs
//! between nodes pass near an obstacle without touching it. A leg is free when it does not touch any obstacle
//! (closed sets: touching counts) and stays inside the fence.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use geo::algorithm::buffer::{BufferStyle, LineJoin};
use geo::{Area, BooleanOps, BoundingRect, Buffer, Contains, Coord, Intersects, Line, MultiPolygon, Polygon, Rect};

/// Extra distance, beyond the margin, at which graph nodes sit outside obstacles.
const NODE_CLEARANCE_M: f64 = 2.0;

/// The free airspace of a planning area and a router through it.
#[derive(Debug, Clone)]
pub struct Airspace {
    obstacles: Vec<(Polygon<f64>, Rect<f64>)>,
    fence: Option<(Polygon<f64>, Rect<f64>)>,
    nodes: Vec<Coord<f64>>,
    /// For each node, the nodes it sees and the distance to them.
    edges: Vec<Vec<(usize, f64)>>,
}

fn grow(area: &MultiPolygon<f64>, distance_m: f64) -> MultiPolygon<f64> {
    if distance_m == 0.0 {
        return area.clone();
    }
    area.buffer_with_style(BufferStyle::new(distance_m).line_join(LineJoin::Bevel))
}

fn with_rect(p: Polygon<f64>) -> Option<(Polygon<f64>, Rect<f64>)> {
    let rect = p.bounding_rect()?;
    Some((p, rect))
}

fn rects_overlap(a: &Rect<f64>, b: &Rect<f64>) -> bool {
    a.min().x <= b.max().x && b.min().x <= a.max().x && a.min().y <= b.max().y && b.min().y <= a.max().y
}

/// The convex corners of every ring of `area` (for holes, the corners that are convex seen from the free side).
fn convex_corners(area: &MultiPolygon<f64>, out: &mut Vec<Coord<f64>>) {
    for polygon in area {
        // Exteriors are counter-clockwise after buffering and holes clockwise, so a left turn walking the ring is
        // a corner that bulges into free space for both.
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            let pts: Vec<Coord<f64>> = ring.0.clone();
            let n = pts.len().saturating_sub(1);
            if n < 3 {
                continue;
            }
            let ccw = ring_signed_area(&pts[..n]) > 0.0;
            for i in 0..n {
                let prev = pts[(i + n - 1) % n];
                let cur = pts[i];
                let next = pts[(i + 1) % n];
                let cross = (cur.x - prev.x) * (next.y - cur.y) - (cur.y - prev.y) * (next.x - cur.x);
                if (cross > 0.0) == ccw {
                    out.push(cur);
                }
            }
        }
    }
}

fn ring_signed_area(pts: &[Coord<f64>]) -> f64 {
    let n = pts.len();
    (0..n).map(|i| pts[i].x * pts[(i + 1) % n].y - pts[(i + 1) % n].x * pts[i].y).sum::<f64>() / 2.0
}

#[derive(PartialEq)]
struct Queued(f64, usize);
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then_with(|| other.1.cmp(&self.1))
    }
}

impl Airspace {
    /// Airspace around `zones` (local metres), each grown by `margin_m`, inside `fence` shrunk by `margin_m`.
    pub fn new(zones: &[MultiPolygon<f64>], margin_m: f64, fence: Option<&MultiPolygon<f64>>) -> Self {
        let mut merged = MultiPolygon::<f64>::new(vec![]);
        for zone in zones {
            merged = merged.union(&grow(zone, margin_m));
        }
        let obstacles: Vec<_> = merged.0.iter().cloned().filter_map(with_rect).collect();
        let inner_fence = fence.map(|f| grow(f, -margin_m)).and_then(|f| {
            // Keep the largest piece: a fence shrunk into pieces leaves the others unreachable anyway.
            f.0.into_iter().max_by(|a, b| a.unsigned_area().total_cmp(&b.unsigned_area())).and_then(with_rect)
        });
        let mut airspace = Airspace { obstacles, fence: inner_fence, nodes: Vec::new(), edges: Vec::new() };
        let mut nodes = Vec::new();
        convex_corners(&grow(&merged, NODE_CLEARANCE_M), &mut nodes);
        if let Some((fence, _)) = &airspace.fence {
            // Inside the fence the free side is the inside: its reflex corners are where paths bend.
            let shrunk = grow(&MultiPolygon::new(vec![fence.clone()]), -NODE_CLEARANCE_M);
            for polygon in &shrunk {
                let pts: Vec<Coord<f64>> = polygon.exterior().0.clone();
                let n = pts.len().saturating_sub(1);
                for i in 0..n {
                    let (prev, cur, next) = (pts[(i + n - 1) % n], pts[i], pts[(i + 1) % n]);
                    let cross = (cur.x - prev.x) * (next.y - cur.y) - (cur.y - prev.y) * (next.x - cur.x);
                    if cross < 0.0 {
                        nodes.push(cur);
                    }
                }
            }
        }
        nodes.retain(|n| airspace.point_free(*n));
        let mut edges = vec![Vec::new(); nodes.len()];
        for i in 0..nodes.len() {
            for j in i + 1..nodes.len() {
                if airspace.segment_free(nodes[i], nodes[j]) {
                    let d = distance(nodes[i], nodes[j]);
                    edges[i].push((j, d));
                    edges[j].push((i, d));
                }
            }
        }
        airspace.nodes = nodes;
        airspace.edges = edges;
        airspace
    }

    /// The grown no-fly zones, the area legs must not touch.
    pub fn obstacles(&self) -> MultiPolygon<f64> {
        MultiPolygon::new(self.obstacles.iter().map(|(p, _)| p.clone()).collect())
    }

    /// The shrunk inclusion fence, if any.
    pub fn fence(&self) -> Option<&Polygon<f64>> {
        self.fence.as_ref().map(|(p, _)| p)
    }

    /// True when `p` is outside every obstacle and inside the fence.
    pub fn point_free(&self, p: Coord<f64>) -> bool {
        let inside_fence = self.fence.as_ref().is_none_or(|(f, _)| f.contains(&p));
        inside_fence && !self.obstacles.iter().any(|(o, r)| r.intersects(&p) && o.intersects(&p))
    }

    /// True when the straight leg `a`-`b` touches no obstacle and stays inside the fence.
    pub fn segment_free(&self, a: Coord<f64>, b: Coord<f64>) -> bool {
        let line = Line::new(a, b);
        let rect = Rect::new(a, b);
        if self.obstacles.iter().any(|(o, r)| rects_overlap(&rect, r) && line.intersects(o)) {
            return false;
        }
        match &self.fence {
            None => true,
            Some((f, _)) => {
                f.contains(&a)
                    && f.contains(&b)
                    && !line.intersects(f.exterior())
                    && !f.interiors().iter().any(|h| line.intersects(h))
            }
        }
    }

    /// The shortest free path from `a` to `b` (both included), or `None` when either end is not free or no
    /// path exists.
    pub fn route(&self, a: Coord<f64>, b: Coord<f64>) -> Option<Vec<Coord<f64>>> {
        if self.segment_free(a, b) {
            return Some(vec![a, b]);
        }
        if !self.point_free(a) || !self.point_free(b) {
            return None;
        }
        let n = self.nodes.len();
        // Node indices: 0..n graph nodes, n = a, n + 1 = b.
        let from_a: Vec<(usize, f64)> =
            (0..n).filter(|&i| self.segment_free(a, self.nodes[i])).map(|i| (i, distance(a, self.nodes[i]))).collect();
        let to_b: Vec<Option<f64>> =
            (0..n).map(|i| self.segment_free(self.nodes[i], b).then(|| distance(self.nodes[i], b))).collect();
        let mut best = vec![f64::INFINITY; n + 2];
        let mut prev = vec![usize::MAX; n + 2];
        let mut heap = BinaryHeap::new();
        best[n] = 0.0;
        heap.push(Queued(0.0, n));
        while let Some(Queued(d, u)) = heap.pop() {
            if d > best[u] {
                continue;
            }
            if u == n + 1 {
                break;
            }
            let neighbours: Box<dyn Iterator<Item = (usize, f64)> + '_> = if u == n {
                Box::new(from_a.iter().copied())
            } else {
                let exit = to_b[u].map(|w| (n + 1, w));
                Box::new(self.edges[u].iter().copied().chain(exit))
            };
            for (v, w) in neighbours {
                let nd = d + w;
                if nd < best[v] {
                    best[v] = nd;
                    prev[v] = u;
                    heap.push(Queued(nd, v));
                }
            }
        }
        if !best[n + 1].is_finite() {
            return None;
        }
        let mut path = vec![b];
        let mut cur = prev[n + 1];
        while cur != n {
            path.push(self.nodes[cur]);
            cur = prev[cur];
        }
        path.push(a);
        path.reverse();
        Some(path)
    }

    /// Shortest distances from every graph node to `target`, for many routes to the same point (home).
    pub fn routes_to(&self, target: Coord<f64>) -> RoutesTo {
        let n = self.nodes.len();
        let mut dist = vec![f64::INFINITY; n];
        let mut next = vec![usize::MAX; n];
        let mut heap = BinaryHeap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if self.segment_free(*node, target) {
                dist[i] = distance(*node, target);
                heap.push(Queued(dist[i], i));
            }
        }
        while let Some(Queued(d, u)) = heap.pop() {
            if d > dist[u] {
                continue;
            }
            for &(v, w) in &self.edges[u] {
                if d + w < dist[v] {
                    dist[v] = d + w;
                    next[v] = u;
                    heap.push(Queued(dist[v], v));
                }
            }
        }
        RoutesTo { target, dist, next }
    }

    /// The shortest free path from `from` to the target of `routes` (both included); `None` when `from` is
    /// not free or cannot reach it. The same path as [`Airspace::route`], found with far fewer leg tests.
    pub fn route_to(&self, from: Coord<f64>, routes: &RoutesTo) -> Option<Vec<Coord<f64>>> {
        if self.segment_free(from, routes.target) {
            return Some(vec![from, routes.target]);
        }
        if !self.point_free(from) {
            return None;
        }
        // The first visible node in order of (leg + rest of the way) is the best: no need to test the others.
        let mut candidates: Vec<(f64, usize)> = routes
            .dist
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_finite())
            .map(|(i, d)| (distance(from, self.nodes[i]) + d, i))
            .collect();
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (_, first) = *candidates.iter().find(|(_, i)| self.segment_free(from, self.nodes[*i]))?;
        let mut path = vec![from];
        let mut cur = first;
        while cur != usize::MAX {
            path.push(self.nodes[cur]);
            cur = routes.next[cur];
        }
        path.push(routes.target);
        Some(path)
    }

    /// Splits the leg `a`-`b` into its free pieces (in order from `a`), dropping pieces shorter than
    /// `min_len_m` unless the whole leg is that short and free.
    pub fn free_pieces(&self, a: Coord<f64>, b: Coord<f64>, min_len_m: f64) -> Vec<(Coord<f64>, Coord<f64>)> {
        if self.segment_free(a, b) {
            return vec![(a, b)];
        }
        let mut ts = vec![0.0, 1.0];
        let rect = Rect::new(a, b);
        let mut add_ring = |ring: &geo::LineString<f64>| {
            for edge in ring.lines() {
                if let Some(t) = segment_param(a, b, edge.start, edge.end) {
                    ts.push(t);
                }
            }
        };
        for (o, r) in &self.obstacles {
            if rects_overlap(&rect, r) {
                add_ring(o.exterior());
                o.interiors().iter().for_each(&mut add_ring);
            }
        }
        if let Some((f, _)) = &self.fence {
            add_ring(f.exterior());
            f.interiors().iter().for_each(&mut add_ring);
        }
        ts.sort_by(f64::total_cmp);
        ts.dedup_by(|x, y| (*x - *y).abs() < 1e-12);
        let len = distance(a, b);
        let at = |t: f64| Coord { x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t };
        let mut pieces: Vec<(Coord<f64>, Coord<f64>)> = Vec::new();
        for w in ts.windows(2) {
            let (t0, t1) = (w[0], w[1]);
            if (t1 - t0) * len < min_len_m.max(1e-6) {
                continue;
            }
            // Pull the ends in slightly: the crossing points lie on obstacle boundaries, which count as touching.
            let pad = (0.05 / len.max(1e-9)).min((t1 - t0) / 4.0);
            let (p, q) = (at(t0 + pad), at(t1 - pad));
            if self.segment_free(p, q) {
                match pieces.last_mut() {
                    Some(last) if distance(last.1, p) < 1e-6 => last.1 = q,
                    _ => pieces.push((p, q)),
                }
            }
        }
        pieces
    }
}

/// Shortest distances from the graph's nodes to one target point ([`Airspace::routes_to`]).
#[derive(Debug, Clone)]
pub struct RoutesTo {
    target: Coord<f64>,
    dist: Vec<f64>,
    /// Next node towards the target (`usize::MAX`: the target itself).
    next: Vec<usize>,
}

/// Where segment a-b crosses segment c-d, as the parameter along a-b.
fn segment_param(a: Coord<f64>, b: Coord<f64>, c: Coord<f64>, d: Coord<f64>) -> Option<f64> {
    let r = Coord { x: b.x - a.x, y: b.y - a.y };
    let s = Coord { x: d.x - c.x, y: d.y - c.y };
    let denom = r.x * s.y - r.y * s.x;
    if denom.abs() < 1e-15 {
        return None;
    }
    let t = ((c.x - a.x) * s.y - (c.y - a.y) * s.x) / denom;
    let u = ((c.x - a.x) * r.y - (c.y - a.y) * r.x) / denom;
    ((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u)).then_some(t)
}

/// Euclidean distance between two local coordinates.
pub fn distance(a: Coord<f64>, b: Coord<f64>) -> f64 {
    (a.x - b.x).hypot(a.y - b.y)
}

/// Length of a polyline.
pub fn path_length(path: &[Coord<f64>]) -> f64 {
    path.windows(2).map(|w| distance(w[0], w[1])).sum()
}

#[cfg(test)]
mod tests {
    use geo::{LineString, polygon};

    use super::*;

    fn square(x0: f64, y0: f64, size: f64) -> MultiPolygon<f64> {
        MultiPolygon::new(vec![
            polygon![(x: x0, y: y0), (x: x0 + size, y: y0), (x: x0 + size, y: y0 + size), (x: x0, y: y0 + size)],
        ])
    }

    #[test]
    fn routes_around_a_zone_and_not_through_it() {
        let zone = square(-50.0, -50.0, 100.0);
        let air = Airspace::new(std::slice::from_ref(&zone), 10.0, None);
        let a = Coord { x: -200.0, y: 0.0 };
        let b = Coord { x: 200.0, y: 0.0 };
        assert!(!air.segment_free(a, b));
        let path = air.route(a, b).unwrap();
        assert!(path.len() > 2);
        for w in path.windows(2) {
            assert!(!Line::new(w[0], w[1]).intersects(&zone.0[0]));
            assert!(air.segment_free(w[0], w[1]));
        }
        // Around a 100 m square grown by 10 m: at least 400 + 2 * 60 m... and not wildly more.
        let len = path_length(&path);
        assert!(len > 400.0 && len < 520.0, "{len}");
        // The cached routes to `b` give the same length.
        let to_b = air.routes_to(b);
        let cached = air.route_to(a, &to_b).unwrap();
        assert!((path_length(&cached) - len).abs() < 1e-6, "{cached:?} vs {path:?}");
    }

    #[test]
    fn free_legs_are_straight_and_pieces_split_at_zones() {
        let zone = square(0.0, 0.0, 10.0);
        let air = Airspace::new(&[zone], 5.0, None);
        let a = Coord { x: -100.0, y: 50.0 };
        let b = Coord { x: 100.0, y: 50.0 };
        assert_eq!(air.route(a, b).unwrap(), vec![a, b]);
        let pieces = air.free_pieces(Coord { x: -100.0, y: 5.0 }, Coord { x: 100.0, y: 5.0 }, 0.5);
        assert_eq!(pieces.len(), 2);
        assert!((pieces[0].1.x - -5.0).abs() < 0.2 && (pieces[1].0.x - 15.0).abs() < 0.2, "{pieces:?}");
    }

    #[test]
    fn fence_keeps_routes_inside() {
        let fence = MultiPolygon::new(vec![Polygon::new(
            LineString::from(vec![
                (0.0, 0.0),
                (300.0, 0.0),
                (300.0, 300.0),
                (200.0, 300.0),
                (200.0, 100.0),
                (100.0, 100.0),
                (100.0, 300.0),
                (0.0, 300.0),
                (0.0, 0.0),
            ]),
            vec![],
        )]);
        let air = Airspace::new(&[], 5.0, Some(&fence));
        let a = Coord { x: 50.0, y: 250.0 };
        let b = Coord { x: 250.0, y: 250.0 };
        let path = air.route(a, b).unwrap();
        assert!(path.len() >= 4, "{path:?}");
        assert!(path.windows(2).all(|w| air.segment_free(w[0], w[1])));
        assert!(air.route(a, Coord { x: 150.0, y: 250.0 }).is_none());
    }
}
