//! Multicopter kinematics, battery and GPS noise: the pure physics of one simulated drone.
//!
//! Positions are metres east/north/up of home in the home tangent plane ([`mission_planner::geo::LocalFrame`]).
//! The controller flies straight at a setpoint with limited speed, acceleration, climb/descent rate and yaw rate,
//! braking so that it stops on the point; wind is added to the ground velocity and compensated up to the
//! vehicle's top airspeed, so a strong head wind slows it down and tilts it.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Gravity, for tilt angles.
const GRAVITY_MPS2: f64 = 9.81;
/// Tilt per m/s of airspeed: a quadcopter at 10 m/s leans about 20 degrees.
const TILT_RAD_PER_MPS: f64 = 0.035;
/// Largest tilt the controller commands.
const MAX_TILT_RAD: f64 = 0.6;

/// Performance and failure knobs of one simulated multicopter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VehicleParams {
    /// Horizontal speed for missions and guided flight unless a mission changes it.
    pub cruise_speed_mps: f64,
    /// Top airspeed; speed requests above it are clamped.
    pub max_speed_mps: f64,
    /// Climb rate.
    pub climb_rate_mps: f64,
    /// Descent rate in flight.
    pub descent_rate_mps: f64,
    /// Descent rate for the last metres of a landing.
    pub land_speed_mps: f64,
    /// Yaw rate.
    pub yaw_rate_dps: f64,
    /// Horizontal and vertical acceleration limit.
    pub accel_mps2: f64,
    /// Hover endurance on a full battery.
    pub hover_endurance_s: f64,
    /// Extra battery spent per metre climbed, in seconds of hover.
    pub climb_cost_s_per_m: f64,
    /// Battery percentage that triggers the low-battery failsafe (return to launch).
    pub low_battery_pct: f64,
    /// Standard deviation of the reported GPS position error (0 = exact).
    pub gps_noise_m: f64,
    /// Wind speed (0 = calm).
    pub wind_speed_mps: f64,
    /// Direction the wind blows from, degrees clockwise from north.
    pub wind_from_deg: f64,
    /// Sim time after boot before the position estimate is good enough to arm.
    #[serde(with = "humantime_secs")]
    pub position_estimate_after: Duration,
}

impl Default for VehicleParams {
    fn default() -> Self {
        Self {
            cruise_speed_mps: 10.0,
            max_speed_mps: 15.0,
            climb_rate_mps: 3.0,
            descent_rate_mps: 2.0,
            land_speed_mps: 0.7,
            yaw_rate_dps: 90.0,
            accel_mps2: 3.0,
            hover_endurance_s: 1500.0,
            climb_cost_s_per_m: 1.5,
            low_battery_pct: 20.0,
            gps_noise_m: 0.0,
            wind_speed_mps: 0.0,
            wind_from_deg: 0.0,
            position_estimate_after: Duration::from_secs(5),
        }
    }
}

/// Serialises a [`Duration`] as (fractional) seconds, so a TOML file says `position_estimate_after = 5.0`.
mod humantime_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

impl VehicleParams {
    /// Wind velocity (east, north) in m/s: the direction it blows *to*.
    pub(crate) fn wind_en_mps(&self) -> (f64, f64) {
        let to = (self.wind_from_deg + 180.0).to_radians();
        (self.wind_speed_mps * to.sin(), self.wind_speed_mps * to.cos())
    }
}

/// Where the controller flies to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Setpoint {
    /// Metres east of home.
    pub(crate) east_m: f64,
    /// Metres north of home.
    pub(crate) north_m: f64,
    /// Metres above home.
    pub(crate) up_m: f64,
    /// Horizontal speed limit.
    pub(crate) speed_mps: f64,
    /// Vertical speed limit downwards (landing uses the slow land speed).
    pub(crate) descent_mps: f64,
}

/// The state of the airframe.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Body {
    pub(crate) east_m: f64,
    pub(crate) north_m: f64,
    pub(crate) up_m: f64,
    pub(crate) vel_east_mps: f64,
    pub(crate) vel_north_mps: f64,
    pub(crate) vel_up_mps: f64,
    pub(crate) yaw_rad: f64,
    pub(crate) yaw_rate_rps: f64,
    pub(crate) roll_rad: f64,
    pub(crate) pitch_rad: f64,
}

impl Body {
    /// Horizontal distance to a setpoint.
    pub(crate) fn horizontal_distance_m(&self, east_m: f64, north_m: f64) -> f64 {
        (east_m - self.east_m).hypot(north_m - self.north_m)
    }

    /// Horizontal ground speed.
    pub(crate) fn ground_speed_mps(&self) -> f64 {
        self.vel_east_mps.hypot(self.vel_north_mps)
    }

    /// Stands still on the ground at the current point.
    pub(crate) fn settle_on_ground(&mut self) {
        self.up_m = 0.0;
        self.vel_east_mps = 0.0;
        self.vel_north_mps = 0.0;
        self.vel_up_mps = 0.0;
        self.roll_rad = 0.0;
        self.pitch_rad = 0.0;
        self.yaw_rate_rps = 0.0;
    }

    /// Advances the airframe by `dt_s` seconds towards `setpoint`.
    pub(crate) fn step(&mut self, setpoint: &Setpoint, params: &VehicleParams, dt_s: f64) {
        let accel = params.accel_mps2.max(0.1);
        let max_dv = accel * dt_s;

        // Horizontal: a speed that lets the vehicle brake to a stop on the point.
        let (de, dn) = (setpoint.east_m - self.east_m, setpoint.north_m - self.north_m);
        let dist = de.hypot(dn);
        let speed_limit = setpoint.speed_mps.clamp(0.0, params.max_speed_mps);
        let want = speed_limit.min((2.0 * accel * dist).sqrt()).min(dist / dt_s.max(1e-6));
        let (mut want_e, mut want_n) = if dist > 1e-9 { (de / dist * want, dn / dist * want) } else { (0.0, 0.0) };
        let (wind_e, wind_n) = params.wind_en_mps();
        // The autopilot holds ground track; the airspeed it needs is capped at the top speed.
        let (air_e, air_n) = (want_e - wind_e, want_n - wind_n);
        let air = air_e.hypot(air_n);
        if air > params.max_speed_mps {
            let scale = params.max_speed_mps / air;
            want_e = air_e * scale + wind_e;
            want_n = air_n * scale + wind_n;
        }
        let (dve, dvn) = (want_e - self.vel_east_mps, want_n - self.vel_north_mps);
        let dv = dve.hypot(dvn);
        let (step_e, step_n) = if dv > max_dv { (dve / dv * max_dv, dvn / dv * max_dv) } else { (dve, dvn) };
        self.vel_east_mps += step_e;
        self.vel_north_mps += step_n;

        // Vertical.
        let dz = setpoint.up_m - self.up_m;
        let vz_limit = if dz >= 0.0 { params.climb_rate_mps } else { setpoint.descent_mps };
        let want_vz = dz.signum() * vz_limit.min((2.0 * accel * dz.abs()).sqrt()).min(dz.abs() / dt_s.max(1e-6));
        self.vel_up_mps += (want_vz - self.vel_up_mps).clamp(-max_dv, max_dv);

        self.east_m += self.vel_east_mps * dt_s;
        self.north_m += self.vel_north_mps * dt_s;
        self.up_m = (self.up_m + self.vel_up_mps * dt_s).max(0.0);

        // Yaw: face the direction of travel once moving.
        let previous_yaw = self.yaw_rad;
        if self.ground_speed_mps() > 1.0 {
            let target = self.vel_east_mps.atan2(self.vel_north_mps);
            let error = wrap_pi(target - self.yaw_rad);
            let max_turn = params.yaw_rate_dps.to_radians() * dt_s;
            self.yaw_rad = wrap_pi(self.yaw_rad + error.clamp(-max_turn, max_turn));
        }
        self.yaw_rate_rps = wrap_pi(self.yaw_rad - previous_yaw) / dt_s.max(1e-6);

        // Attitude: lean into the airspeed (drag) and into the acceleration.
        let (air_e, air_n) = (self.vel_east_mps - wind_e, self.vel_north_mps - wind_n);
        let (sin_yaw, cos_yaw) = self.yaw_rad.sin_cos();
        let forward =
            air_n * cos_yaw + air_e * sin_yaw + (step_n * cos_yaw + step_e * sin_yaw) / dt_s.max(1e-6) / GRAVITY_MPS2;
        let right = -air_n * sin_yaw + air_e * cos_yaw;
        self.pitch_rad = (-(forward * TILT_RAD_PER_MPS).atan()).clamp(-MAX_TILT_RAD, MAX_TILT_RAD);
        self.roll_rad = (right * TILT_RAD_PER_MPS).atan().clamp(-MAX_TILT_RAD, MAX_TILT_RAD);
    }
}

/// Wraps an angle into (-pi, pi].
pub(crate) fn wrap_pi(angle_rad: f64) -> f64 {
    let mut a = angle_rad % std::f64::consts::TAU;
    if a > std::f64::consts::PI {
        a -= std::f64::consts::TAU;
    } else if a <= -std::f64::consts::PI {
        a += std::f64::consts::TAU;
    }
    a
}

/// A 4S lithium battery drained by hover time, airspeed and climbing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Battery {
    /// 0..=1.
    pub(crate) remaining: f64,
    /// Draw right now, for SYS_STATUS/BATTERY_STATUS.
    pub(crate) current_a: f64,
    /// Charge used so far.
    pub(crate) consumed_mah: f64,
}

const CELLS: f64 = 4.0;
const HOVER_CURRENT_A: f64 = 18.0;
const IDLE_CURRENT_A: f64 = 0.4;

impl Default for Battery {
    fn default() -> Self {
        Self { remaining: 1.0, current_a: IDLE_CURRENT_A, consumed_mah: 0.0 }
    }
}

impl Battery {
    /// Terminal voltage: 4.2 V per cell full, 3.5 V per cell empty.
    pub(crate) fn voltage_v(&self) -> f64 {
        CELLS * (3.5 + 0.7 * self.remaining)
    }

    /// Remaining charge in percent.
    pub(crate) fn remaining_pct(&self) -> f64 {
        self.remaining * 100.0
    }

    /// Drains for `dt_s` seconds: idle on the ground, hover power in the air (more at speed), plus climbing.
    pub(crate) fn drain(&mut self, body: &Body, flying: bool, params: &VehicleParams, dt_s: f64) {
        let endurance = params.hover_endurance_s.max(1.0);
        let load = if flying {
            let (wind_e, wind_n) = params.wind_en_mps();
            let air = (body.vel_east_mps - wind_e).hypot(body.vel_north_mps - wind_n);
            1.0 + 0.3 * (air / params.cruise_speed_mps.max(1.0)).powi(2)
        } else {
            IDLE_CURRENT_A / HOVER_CURRENT_A
        };
        let climb = if flying { body.vel_up_mps.max(0.0) * dt_s * params.climb_cost_s_per_m } else { 0.0 };
        let spent = (load * dt_s + climb) / endurance;
        self.remaining = (self.remaining - spent).max(0.0);
        self.current_a = HOVER_CURRENT_A * load + climb / dt_s.max(1e-6) * HOVER_CURRENT_A;
        // The pack holds `endurance` seconds at hover current.
        self.consumed_mah += spent * endurance * HOVER_CURRENT_A / 3.6;
    }
}

/// A slowly wandering GPS error (first-order Gauss-Markov), deterministic for a seeded generator.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct GpsNoise {
    east_m: f64,
    north_m: f64,
    up_m: f64,
}

/// Correlation time of the GPS error.
const GPS_NOISE_TAU_S: f64 = 20.0;

impl GpsNoise {
    /// Advances the error by `dt_s`; `sigma_m` is its steady-state standard deviation.
    pub(crate) fn step(&mut self, rng: &mut ChaCha8Rng, sigma_m: f64, dt_s: f64) {
        if sigma_m <= 0.0 {
            *self = Self::default();
            return;
        }
        let decay = (-dt_s / GPS_NOISE_TAU_S).exp();
        let drive = sigma_m * (1.0 - decay * decay).sqrt();
        self.east_m = self.east_m * decay + drive * gaussian(rng);
        self.north_m = self.north_m * decay + drive * gaussian(rng);
        self.up_m = self.up_m * decay + 1.5 * drive * gaussian(rng);
    }

    /// The current error (east, north, up) in metres.
    pub(crate) fn offset_m(&self) -> (f64, f64, f64) {
        (self.east_m, self.north_m, self.up_m)
    }
}

/// A standard normal sample (Box-Muller), so no distribution crate is needed.
pub(crate) fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn fly(body: &mut Body, sp: &Setpoint, params: &VehicleParams, seconds: f64) -> f64 {
        let mut max_speed: f64 = 0.0;
        let dt = 0.05;
        for _ in 0..(seconds / dt) as usize {
            body.step(sp, params, dt);
            max_speed = max_speed.max(body.ground_speed_mps());
        }
        max_speed
    }

    #[test]
    fn flies_to_a_point_at_cruise_speed_and_stops_on_it() {
        let params = VehicleParams::default();
        let mut body = Body { up_m: 20.0, ..Body::default() };
        let sp = Setpoint { east_m: 300.0, north_m: 400.0, up_m: 20.0, speed_mps: 10.0, descent_mps: 2.0 };
        let max_speed = fly(&mut body, &sp, &params, 60.0);
        assert!((max_speed - 10.0).abs() < 0.2, "{max_speed}");
        assert!(body.horizontal_distance_m(300.0, 400.0) < 0.2, "{body:?}");
        assert!(body.ground_speed_mps() < 0.2);
        // Heading: atan2(300, 400) = 36.87 degrees.
        assert!((body.yaw_rad.to_degrees() - 36.87).abs() < 1.0, "{}", body.yaw_rad.to_degrees());
    }

    #[test]
    fn five_hundred_metres_take_about_distance_over_speed_plus_braking() {
        let params = VehicleParams::default();
        let mut body = Body { up_m: 20.0, ..Body::default() };
        let sp = Setpoint { east_m: 0.0, north_m: 500.0, up_m: 20.0, speed_mps: 10.0, descent_mps: 2.0 };
        let mut t = 0.0;
        while body.horizontal_distance_m(0.0, 500.0) > 1.0 && t < 200.0 {
            body.step(&sp, &params, 0.05);
            t += 0.05;
        }
        // 50 s at 10 m/s plus accelerating and braking at 3 m/s^2 (about 3.3 s extra).
        assert!((52.0..56.0).contains(&t), "{t}");
    }

    #[test]
    fn climbs_and_descends_at_their_rates() {
        let params = VehicleParams::default();
        let mut body = Body::default();
        let up = Setpoint { east_m: 0.0, north_m: 0.0, up_m: 30.0, speed_mps: 10.0, descent_mps: 2.0 };
        fly(&mut body, &up, &params, 5.0);
        assert!((body.vel_up_mps - 3.0).abs() < 0.05, "{}", body.vel_up_mps);
        fly(&mut body, &up, &params, 20.0);
        assert!((body.up_m - 30.0).abs() < 0.05);
        let down = Setpoint { up_m: 0.0, descent_mps: 0.7, ..up };
        fly(&mut body, &down, &params, 5.0);
        assert!((body.vel_up_mps + 0.7).abs() < 0.05, "{}", body.vel_up_mps);
    }

    #[test]
    fn head_wind_above_top_speed_cannot_be_beaten() {
        let params =
            VehicleParams { wind_speed_mps: 8.0, wind_from_deg: 0.0, max_speed_mps: 12.0, ..Default::default() };
        let mut body = Body { up_m: 20.0, ..Body::default() };
        let sp = Setpoint { east_m: 0.0, north_m: 1000.0, up_m: 20.0, speed_mps: 10.0, descent_mps: 2.0 };
        fly(&mut body, &sp, &params, 30.0);
        // 12 m/s airspeed into an 8 m/s head wind leaves 4 m/s over the ground, leaning forward.
        assert!((body.vel_north_mps - 4.0).abs() < 0.1, "{}", body.vel_north_mps);
        assert!(body.pitch_rad < -0.3, "{}", body.pitch_rad);
    }

    #[test]
    fn yaw_rate_is_limited() {
        let params = VehicleParams { yaw_rate_dps: 45.0, ..Default::default() };
        let mut body = Body { up_m: 20.0, ..Body::default() };
        let south = Setpoint { east_m: 0.0, north_m: -500.0, up_m: 20.0, speed_mps: 10.0, descent_mps: 2.0 };
        body.vel_north_mps = -5.0;
        body.step(&south, &params, 1.0);
        assert!((body.yaw_rad.abs() - 45f64.to_radians()).abs() < 1e-9, "{}", body.yaw_rad);
    }

    #[test]
    fn battery_drains_faster_when_climbing_and_never_below_zero() {
        let params = VehicleParams::default();
        let hover = Body { up_m: 20.0, ..Body::default() };
        let climbing = Body { vel_up_mps: 3.0, ..hover };
        let (mut a, mut b) = (Battery::default(), Battery::default());
        for _ in 0..600 {
            a.drain(&hover, true, &params, 0.1);
            b.drain(&climbing, true, &params, 0.1);
        }
        // One minute of hover out of 1500 s endurance is 4 %.
        assert!((a.remaining_pct() - 96.0).abs() < 0.01, "{}", a.remaining_pct());
        assert!(b.remaining < a.remaining);
        assert!((a.voltage_v() - 4.0 * (3.5 + 0.7 * 0.96)).abs() < 1e-6);
        for _ in 0..100_000 {
            a.drain(&hover, true, &params, 1.0);
        }
        assert_eq!(a.remaining, 0.0);
    }

    #[test]
    fn gps_noise_is_deterministic_for_a_seed_and_has_the_right_size() {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut noise = GpsNoise::default();
            let mut sum_sq = 0.0;
            let n = 20_000;
            for _ in 0..n {
                noise.step(&mut rng, 2.0, 1.0);
                sum_sq += noise.offset_m().0.powi(2);
            }
            (noise.offset_m(), (sum_sq / f64::from(n)).sqrt())
        };
        let (a, sigma) = run(7);
        assert_eq!(a, run(7).0);
        assert_ne!(a, run(8).0);
        assert!((sigma - 2.0).abs() < 0.3, "{sigma}");
    }

    #[test]
    fn wrap_pi_stays_in_range() {
        for a in [-10.0, -3.2, 0.0, 3.2, 7.0, 100.0] {
            let w = wrap_pi(a);
            assert!(w > -std::f64::consts::PI - 1e-12 && w <= std::f64::consts::PI + 1e-12);
            assert!(
                ((w - a) / std::f64::consts::TAU).fract().abs() < 1e-9
                    || ((w - a) / std::f64::consts::TAU).fract().abs() > 1.0 - 1e-9
            );
        }
    }
}
