//! Tiled inference for large photos: overlapping native-resolution tiles plus a downscaled full view, so a
//! 40 px object in a 12 MP photo is seen at full detail.

use serde::{Deserialize, Serialize};

use crate::error::InferenceError;
use crate::postprocess::BoxPx;
use crate::preprocess::RegionPx;

/// How to cut a large image into tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TileConfig {
    /// Tile edge in source pixels; each tile is letterboxed into the model input (a tile the size of the model
    /// input runs at native resolution). 0 = the model's input size.
    pub tile_px: u32,
    /// Overlap between neighbouring tiles in source pixels; objects smaller than this appear whole in a tile.
    pub overlap_px: u32,
    /// Also run the whole image downscaled, to catch objects larger than the overlap.
    pub full_view: bool,
}

impl Default for TileConfig {
    fn default() -> Self {
        Self { tile_px: 0, overlap_px: 128, full_view: true }
    }
}

impl TileConfig {
    /// The tile edge, with 0 resolved to `input_px`.
    pub fn resolved_tile_px(&self, input_px: u32) -> u32 {
        if self.tile_px == 0 { input_px } else { self.tile_px }
    }

    /// Checks the overlap is smaller than the tile.
    ///
    /// # Errors
    /// [`InferenceError::Config`].
    pub fn validate(&self, input_px: u32) -> Result<(), InferenceError> {
        let tile = self.resolved_tile_px(input_px);
        if self.overlap_px >= tile {
            return Err(InferenceError::Config(format!(
                "tile overlap {} px must be smaller than the tile ({tile} px)",
                self.overlap_px
            )));
        }
        Ok(())
    }
}

/// Start offsets along one axis: tiles of `tile` cover `0..len` with at least `overlap` between neighbours, the
/// last one flush with the end.
fn starts(len: u32, tile: u32, overlap: u32) -> Vec<u32> {
    if len <= tile {
        return vec![0];
    }
    let stride = tile - overlap;
    let count = (len - tile).div_ceil(stride) + 1;
    // Spread the tiles evenly so every overlap is at least `overlap`.
    (0..count).map(|i| ((u64::from(len - tile) * u64::from(i)) / u64::from(count - 1)) as u32).collect()
}

/// The tiles covering a `width` x `height` image. An image no larger than one tile gives no tiles (the full view
/// alone sees it at native resolution).
pub fn plan_tiles(width: u32, height: u32, tile: u32, overlap: u32) -> Vec<RegionPx> {
    if tile == 0 || (width <= tile && height <= tile) {
        return Vec::new();
    }
    let overlap = overlap.min(tile - 1);
    let (tw, th) = (tile.min(width), tile.min(height));
    let mut tiles = Vec::new();
    for y in starts(height, th, overlap.min(th.saturating_sub(1))) {
        for x in starts(width, tw, overlap.min(tw.saturating_sub(1))) {
            tiles.push(RegionPx { x, y, width: tw, height: th });
        }
    }
    tiles
}

/// Whether a box found in `tile` touches one of the tile's edges that lies inside the image (within `margin_px`):
/// such a box is likely a cut-off part of an object that a neighbouring tile (or the full view) sees whole.
pub fn touches_inner_edge(b: &BoxPx, tile: &RegionPx, image_w: u32, image_h: u32, margin_px: f32) -> bool {
    let (x0, y0) = (tile.x as f32, tile.y as f32);
    let (x1, y1) = ((tile.x + tile.width) as f32, (tile.y + tile.height) as f32);
    (tile.x > 0 && b.x1 <= x0 + margin_px)
        || (tile.y > 0 && b.y1 <= y0 + margin_px)
        || (tile.x + tile.width < image_w && b.x2 >= x1 - margin_px)
        || (tile.y + tile.height < image_h && b.y2 >= y1 - margin_px)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn twelve_megapixels_in_640_tiles() {
        let tiles = plan_tiles(4000, 3000, 640, 128);
        // 8 columns (stride <= 512 over 3360 px) by 6 rows (over 2360 px).
        assert_eq!(tiles.len(), 8 * 6);
        assert_eq!(tiles.first().map(|t| (t.x, t.y)), Some((0, 0)));
        assert_eq!(tiles.last().map(|t| (t.x + t.width, t.y + t.height)), Some((4000, 3000)));
    }

    #[test]
    fn small_images_need_no_tiles() {
        assert!(plan_tiles(640, 480, 640, 128).is_empty());
        // Wider than a tile but lower: one row of full-height tiles.
        let tiles = plan_tiles(1000, 300, 640, 128);
        assert_eq!(tiles.len(), 2);
        assert!(tiles.iter().all(|t| t.height == 300));
    }

    #[test]
    fn inner_edges_only() {
        let tile = RegionPx { x: 0, y: 0, width: 640, height: 640 };
        let at_left_border = BoxPx { x1: 0.0, y1: 100.0, x2: 30.0, y2: 130.0 };
        let at_right_cut = BoxPx { x1: 620.0, y1: 100.0, x2: 640.0, y2: 130.0 };
        assert!(!touches_inner_edge(&at_left_border, &tile, 2000, 2000, 2.0));
        assert!(touches_inner_edge(&at_right_cut, &tile, 2000, 2000, 2.0));
        assert!(!touches_inner_edge(&at_right_cut, &tile, 640, 640, 2.0));
    }

    #[test]
    fn overlap_must_be_smaller_than_the_tile() {
        assert!(TileConfig { tile_px: 0, overlap_px: 640, full_view: true }.validate(640).is_err());
        assert!(TileConfig::default().validate(640).is_ok());
    }

    proptest! {
        #[test]
        fn tiles_cover_the_image_and_overlap_enough(w in 1u32..6000, h in 1u32..6000, tile in 64u32..1024, overlap in 0u32..64) {
            let tiles = plan_tiles(w, h, tile, overlap);
            if w <= tile && h <= tile {
                prop_assert!(tiles.is_empty());
            } else {
                for t in &tiles {
                    prop_assert!(t.x + t.width <= w && t.y + t.height <= h);
                }
                // Every pixel column/row lies in a tile; neighbours overlap by >= overlap (when the image allows).
                let mut xs: Vec<u32> = tiles.iter().map(|t| t.x).collect();
                xs.sort_unstable();
                xs.dedup();
                let tw = tile.min(w);
                prop_assert_eq!(xs[0], 0);
                prop_assert_eq!(xs[xs.len() - 1] + tw, w);
                for pair in xs.windows(2) {
                    prop_assert!(pair[0] + tw >= pair[1] + overlap.min(tw - 1));
                }
            }
        }
    }
}
