//! The methane sensor: planted gas leaks in the sim world and a TDLAS-like reading of the column below the drone.
//!
//! A TDLAS (laser methane detector) looks down and reports the path-integrated concentration in ppm·m. The model:
//! ambient methane (`background_ppm`, about 1.9 ppm) times the path length (the height above ground), plus, for
//! each leak, `strength_ppm_m * exp(-d² / 2σ²)` where `d` is the horizontal distance from the laser spot to the
//! leak and `σ = radius_m`, plus 2 % multiplicative noise.

use std::path::Path;

use mission_planner::geo::{GeoPoint, LocalFrame, LocalPoint};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::SimError;
use super::kinematics::gaussian;

/// One planted leak.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasLeak {
    /// Where it is.
    #[serde(flatten)]
    pub position: GeoPoint,
    /// Peak column concentration right above it, in ppm·m.
    pub strength_ppm_m: f64,
    /// Spread of the plume (one standard deviation), in metres.
    pub radius_m: f64,
}

/// The leaks file: `{"background_ppm": 1.9, "leaks": [{"lat_deg": .., "lon_deg": .., "strength_ppm_m": 800,
/// "radius_m": 15}]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasWorld {
    /// Ambient methane concentration.
    #[serde(default = "default_background_ppm")]
    pub background_ppm: f64,
    /// The planted leaks.
    pub leaks: Vec<GasLeak>,
}

fn default_background_ppm() -> f64 {
    1.9
}

impl Default for GasWorld {
    fn default() -> Self {
        Self { background_ppm: default_background_ppm(), leaks: Vec::new() }
    }
}

impl GasWorld {
    /// Reads a leaks JSON file.
    ///
    /// # Errors
    /// [`SimError::ReadFile`] when it cannot be read, [`SimError::Leaks`] when it is not valid leaks JSON or a
    /// leak has a non-positive radius.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| SimError::ReadFile { path: path.to_path_buf(), source })?;
        let world: GasWorld = serde_json::from_str(&text)
            .map_err(|error| SimError::Leaks { path: path.to_path_buf(), reason: error.to_string() })?;
        if let Some(bad) = world
            .leaks
            .iter()
            .find(|l| l.radius_m.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !l.position.is_valid())
        {
            return Err(SimError::Leaks {
                path: path.to_path_buf(),
                reason: format!("leak at {:?} needs a valid position and radius_m above 0", bad.position),
            });
        }
        Ok(world)
    }

    /// The leaks in a drone's home frame.
    pub(crate) fn local(&self, frame: &LocalFrame) -> LocalGas {
        LocalGas {
            background_ppm: self.background_ppm,
            leaks: self.leaks.iter().map(|l| (frame.to_local(l.position), l.strength_ppm_m, l.radius_m)).collect(),
        }
    }
}

/// Leaks in one drone's tangent plane.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LocalGas {
    background_ppm: f64,
    leaks: Vec<(LocalPoint, f64, f64)>,
}

impl LocalGas {
    /// The noiseless reading in ppm·m with the laser spot at `spot`, `height_m` above ground.
    pub(crate) fn column_ppm_m(&self, spot: LocalPoint, height_m: f64) -> f64 {
        let ambient = self.background_ppm * height_m.max(0.0);
        let plumes: f64 = self
            .leaks
            .iter()
            .map(|(at, strength, radius)| strength * (-spot.distance_to(at).powi(2) / (2.0 * radius * radius)).exp())
            .sum();
        ambient + plumes
    }

    /// A reading with sensor noise.
    pub(crate) fn read(&self, spot: LocalPoint, height_m: f64, rng: &mut ChaCha8Rng) -> f64 {
        (self.column_ppm_m(spot, height_m) * (1.0 + 0.02 * gaussian(rng))).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn reading_peaks_over_the_leak_and_decays_with_distance() {
        let home = GeoPoint::new(22.55, 113.88);
        let frame = LocalFrame::new(home);
        let leak_at = frame.to_geo(LocalPoint::new(100.0, 50.0));
        let world = GasWorld {
            background_ppm: 2.0,
            leaks: vec![GasLeak { position: leak_at, strength_ppm_m: 800.0, radius_m: 10.0 }],
        };
        let gas = world.local(&frame);
        let over = gas.column_ppm_m(LocalPoint::new(100.0, 50.0), 30.0);
        assert!((over - (60.0 + 800.0)).abs() < 0.1, "{over}");
        let near = gas.column_ppm_m(LocalPoint::new(110.0, 50.0), 30.0);
        assert!((near - (60.0 + 800.0 * (-0.5f64).exp())).abs() < 0.1, "{near}");
        let far = gas.column_ppm_m(LocalPoint::new(0.0, 0.0), 30.0);
        assert!((far - 60.0).abs() < 0.01, "{far}");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let noisy = gas.read(LocalPoint::new(100.0, 50.0), 30.0, &mut rng);
        assert!((noisy - over).abs() < over * 0.1);
    }

    #[test]
    fn leaks_json_parses_and_bad_radius_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("leaks.json");
        std::fs::write(&good, r#"{"leaks":[{"lat_deg":22.55,"lon_deg":113.88,"strength_ppm_m":500,"radius_m":8}]}"#)
            .unwrap();
        let world = GasWorld::load(&good).unwrap();
        assert_eq!(world.leaks.len(), 1);
        assert!((world.background_ppm - 1.9).abs() < 1e-12);
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"leaks":[{"lat_deg":22.55,"lon_deg":113.88,"strength_ppm_m":500,"radius_m":0}]}"#)
            .unwrap();
        let err = GasWorld::load(&bad).unwrap_err().to_string();
        assert!(err.contains("radius_m"), "{err}");
    }
}
