//! `patrol plan`: plan a patrol over grid cells and write one mission per sortie; `patrol plan check`:
//! validate a mission file written by any tool.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use mission_planner::area::{self, NoFlyZone, ZoneShape};
use mission_planner::camera::CameraSpec;
use mission_planner::files::{self, geojson, qgc_plan, wpl};
use mission_planner::mission::{Battery, FlightModel, Limits};
use mission_planner::patrol::{self, AltitudeTarget, PatrolPlan, PatrolRequest, TriggerMode};
use mission_planner::svg;

/// Arguments of `patrol plan`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Example:\n  patrol plan --cells data/sample-district/cells.geojson \\\n    --no-fly data/sample-district/no-fly.geojson --launch data/sample-district/launch-points.geojson \\\n    --drones 3 --camera data/sample-district/camera.toml --gsd 0.03 -o out/\n\nCheck a mission file:\n  patrol plan check out/sortie-01-drone-1.plan --no-fly data/sample-district/no-fly.geojson"
)]
pub struct PlanArgs {
    /// `check`: validate a mission file instead of planning.
    #[command(subcommand)]
    pub action: Option<PlanAction>,
    /// Planning options.
    #[command(flatten)]
    pub make: MakeArgs,
}

/// Subcommands of `patrol plan`.
#[derive(Debug, Subcommand)]
pub enum PlanAction {
    /// Read a .plan or .waypoints file, print its summary and every violation; exit status 1 on a violation.
    Check(CheckArgs),
}

/// How to trigger the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TriggerArg {
    /// DO_SET_CAM_TRIGG_DIST at the start of each pass, 0 at its end (ArduPilot camera trigger).
    Distance,
    /// IMAGE_START_CAPTURE with an interval, IMAGE_STOP_CAPTURE at the end (MAVLink camera protocol).
    Interval,
}

/// Options for planning.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("height").required(true).args(["gsd", "altitude"]))]
pub struct MakeArgs {
    /// Grid cells: GeoJSON FeatureCollection (Polygon/MultiPolygon, properties grid_id, name, community,
    /// street, priority) or KML.
    #[arg(long, value_name = "FILE", required = true)]
    pub cells: Option<PathBuf>,
    /// No-fly zones: GeoJSON or KML polygons, or Points with a `radius_m` property. Repeat for several files.
    #[arg(long = "no-fly", value_name = "FILE")]
    pub no_fly: Vec<PathBuf>,
    /// Inclusion fence (GeoJSON or KML polygon): every leg stays inside it.
    #[arg(long, value_name = "FILE")]
    pub fence: Option<PathBuf>,
    /// Launch points (GeoJSON or KML Points). Default: launch-points.geojson next to the cells file.
    #[arg(long, value_name = "FILE")]
    pub launch: Option<PathBuf>,
    /// Plan only these grid ids (comma separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub only: Vec<String>,
    /// Plan only the cells marked `demo: true`.
    #[arg(long)]
    pub demo_only: bool,
    /// Number of drones sharing the work.
    #[arg(long, default_value_t = 1)]
    pub drones: usize,
    /// Camera profile (TOML: name, image_width_px, image_height_px, sensor_width_mm, sensor_height_mm,
    /// focal_length_mm or horizontal_fov_deg, min_trigger_interval_s).
    #[arg(long, value_name = "FILE", required = true)]
    pub camera: Option<PathBuf>,
    /// Target ground sample distance, metres per pixel (0.03 = 3 cm/px); sets the flight height.
    #[arg(long, value_name = "M")]
    pub gsd: Option<f64>,
    /// Flight height above ground, metres (instead of --gsd).
    #[arg(long, value_name = "M")]
    pub altitude: Option<f64>,
    /// Front overlap, fraction (0.75) or percent (75).
    #[arg(long, default_value_t = 0.75)]
    pub front_overlap: f64,
    /// Side overlap, fraction (0.7) or percent (70).
    #[arg(long, default_value_t = 0.7)]
    pub side_overlap: f64,
    /// Cruise speed, metres per second.
    #[arg(long, default_value_t = 10.0, value_name = "M/S")]
    pub speed: f64,
    /// Climb and descent speed, metres per second.
    #[arg(long, default_value_t = 3.0, value_name = "M/S")]
    pub vertical_speed: f64,
    /// Battery endurance, minutes of flight.
    #[arg(long, default_value_t = 30.0, value_name = "MIN")]
    pub endurance_min: f64,
    /// Battery reserve kept on landing, fraction (0.25) or percent (25).
    #[arg(long, default_value_t = 0.25)]
    pub reserve: f64,
    /// Ceiling above ground, metres (120 m is the usual limit for light drones).
    #[arg(long, default_value_t = 120.0, value_name = "M")]
    pub ceiling: f64,
    /// Lowest flight height, metres.
    #[arg(long, default_value_t = 10.0, value_name = "M")]
    pub floor: f64,
    /// Distance kept from no-fly zones, metres.
    #[arg(long, default_value_t = 10.0, value_name = "M")]
    pub margin: f64,
    /// Run-in and run-out at each end of a pass, metres.
    #[arg(long, default_value_t = 5.0, value_name = "M")]
    pub turnaround: f64,
    /// Camera triggering.
    #[arg(long, value_enum, default_value_t = TriggerArg::Distance)]
    pub trigger: TriggerArg,
    /// Ground time between two sorties of one drone (battery swap), minutes.
    #[arg(long, default_value_t = 3.0, value_name = "MIN")]
    pub swap_min: f64,
    /// Leave photo footprints out of the GeoJSON (smaller file).
    #[arg(long)]
    pub no_footprints: bool,
    /// Output folder (created if missing).
    #[arg(short, long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
}

/// Options for `patrol plan check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The mission: a QGroundControl .plan or a QGC WPL 110 .waypoints file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// No-fly zones to check against (repeatable), on top of the file's own fence.
    #[arg(long = "no-fly", value_name = "FILE")]
    pub no_fly: Vec<PathBuf>,
    /// Inclusion fence to check against.
    #[arg(long, value_name = "FILE")]
    pub fence: Option<PathBuf>,
    /// Ceiling above home, metres.
    #[arg(long, default_value_t = 120.0, value_name = "M")]
    pub ceiling: f64,
    /// Cruise speed for the time estimate, metres per second (default: the file's, else 10).
    #[arg(long, value_name = "M/S")]
    pub speed: Option<f64>,
    /// Battery endurance, minutes (0 skips the battery check).
    #[arg(long, default_value_t = 30.0, value_name = "MIN")]
    pub endurance_min: f64,
    /// Battery reserve, fraction or percent.
    #[arg(long, default_value_t = 0.25)]
    pub reserve: f64,
}

/// Runs `patrol plan` or `patrol plan check`.
///
/// # Errors
/// Unreadable or invalid inputs, an impossible plan, or an unwritable output folder.
pub fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        Some(PlanAction::Check(check)) => run_check(&check),
        None => run_plan(&args.make),
    }
}

/// A fraction given as 0.7 or 70.
fn fraction(v: f64) -> f64 {
    if v > 1.0 { v / 100.0 } else { v }
}

fn read_zones(paths: &[PathBuf]) -> anyhow::Result<Vec<NoFlyZone>> {
    let mut zones = Vec::new();
    for path in paths {
        zones.extend(area::read_zones(path).with_context(|| format!("reading no-fly zones {}", path.display()))?);
    }
    Ok(zones)
}

fn read_fence(path: Option<&Path>) -> anyhow::Result<Option<ZoneShape>> {
    let Some(path) = path else { return Ok(None) };
    let zones = area::read_zones(path).with_context(|| format!("reading fence {}", path.display()))?;
    match zones.as_slice() {
        [one] => Ok(Some(one.shape.clone())),
        _ => bail!("fence {} must hold exactly one polygon or circle, found {}", path.display(), zones.len()),
    }
}

fn run_plan(args: &MakeArgs) -> anyhow::Result<ExitCode> {
    let (Some(cells_path), Some(camera_path), Some(out)) = (&args.cells, &args.camera, &args.out) else {
        bail!("--cells, --camera and --out are required (see patrol plan --help)");
    };
    let mut cells = area::read_cells(cells_path).with_context(|| format!("reading cells {}", cells_path.display()))?;
    if args.demo_only {
        cells.retain(|c| c.demo);
    }
    if !args.only.is_empty() {
        for id in &args.only {
            if !cells.iter().any(|c| &c.id == id) {
                bail!("--only: grid id {id:?} is not in {}", cells_path.display());
            }
        }
        cells.retain(|c| args.only.contains(&c.id));
    }
    let launch_path = match &args.launch {
        Some(p) => p.clone(),
        None => {
            let guess = cells_path.with_file_name("launch-points.geojson");
            if !guess.exists() {
                bail!(
                    "no --launch file given and {} does not exist: give launch points with --launch",
                    guess.display()
                );
            }
            guess
        }
    };
    let launch_points = area::read_launch_points(&launch_path)
        .with_context(|| format!("reading launch points {}", launch_path.display()))?;
    let camera =
        CameraSpec::read_toml(camera_path).with_context(|| format!("reading camera {}", camera_path.display()))?;
    let altitude = match (args.gsd, args.altitude) {
        (Some(gsd), _) => AltitudeTarget::GroundSampleDistance(gsd),
        (None, Some(h)) => AltitudeTarget::Height(h),
        (None, None) => bail!("give --gsd or --altitude"),
    };
    let mut req = PatrolRequest::new(cells, launch_points, camera, altitude);
    req.zones = read_zones(&args.no_fly)?;
    req.inclusion_fence = read_fence(args.fence.as_deref())?;
    req.drones = args.drones;
    req.front_overlap = fraction(args.front_overlap);
    req.side_overlap = fraction(args.side_overlap);
    req.flight =
        FlightModel { cruise_speed_mps: args.speed, vertical_speed_mps: args.vertical_speed, ..FlightModel::default() };
    req.battery = Battery { endurance_s: args.endurance_min * 60.0, reserve_fraction: fraction(args.reserve) };
    req.max_alt_m = args.ceiling;
    req.min_alt_m = args.floor;
    req.zone_margin_m = args.margin;
    req.turnaround_m = args.turnaround;
    req.trigger = match args.trigger {
        TriggerArg::Distance => TriggerMode::Distance,
        TriggerArg::Interval => TriggerMode::Interval,
    };
    req.battery_swap_s = args.swap_min * 60.0;

    let plan = patrol::plan_patrol(&req).context("planning the patrol")?;
    // Every mission is checked the way `patrol plan check` and the uploader check it.
    let limits = req.limits();
    for (i, s) in plan.sorties.iter().enumerate() {
        let violations = s.mission.validate(&limits);
        if !violations.is_empty() {
            let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
            bail!("internal error: sortie {} fails validation: {}", i + 1, list.join("; "));
        }
    }
    write_outputs(&req, &plan, out, !args.no_footprints)?;
    print!("{}", summary_table(&req, &plan));
    println!(
        "Wrote {} sorties (.plan + .waypoints), plan.geojson, plan.svg and summary.txt to {}",
        plan.sorties.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_outputs(req: &PatrolRequest, plan: &PatrolPlan, out: &Path, footprints: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let hover = (req.flight.cruise_speed_mps / 2.0).max(1.0);
    for (i, s) in plan.sorties.iter().enumerate() {
        let stem = format!("sortie-{:02}-drone-{}", i + 1, s.drone);
        files::write_text(
            &out.join(format!("{stem}.plan")),
            &qgc_plan::to_string(&s.mission, req.flight.cruise_speed_mps, hover),
        )?;
        files::write_text(&out.join(format!("{stem}.waypoints")), &wpl::to_string(&s.mission))?;
    }
    let collection = geojson::plan_to_geojson(req, plan, footprints);
    files::write_text(&out.join("plan.geojson"), &serde_json::to_string(&collection)?)?;
    files::write_text(&out.join("plan.svg"), &svg::plan_to_svg(req, plan, 1400.0))?;
    files::write_text(&out.join("summary.txt"), &summary_table(req, plan))?;
    Ok(())
}

fn minutes(s: f64) -> String {
    format!("{:.1}", s / 60.0)
}

/// The summary a squad leader reads: one row per sortie, totals, uncovered cells.
fn summary_table(req: &PatrolRequest, plan: &PatrolPlan) -> String {
    let mut t = String::new();
    let sv = &plan.survey;
    let _ = writeln!(
        t,
        "Survey: {:.1} m above ground, GSD {:.2} cm/px, footprint {:.0} x {:.0} m, passes {:.1} m apart, photo every {:.1} m ({:.2} s)",
        sv.altitude_m,
        sv.gsd_m * 100.0,
        sv.footprint_across_m,
        sv.footprint_along_m,
        sv.spacing_m,
        sv.trigger_distance_m,
        plan.trigger_interval_s
    );
    let _ = writeln!(
        t,
        "{:>6}  {:>5}  {:<10}  {:>9}  {:>8}  {:>6}  {:>9}  cells",
        "sortie", "drone", "launch", "dist km", "time min", "photos", "start min"
    );
    for (i, s) in plan.sorties.iter().enumerate() {
        let _ = writeln!(
            t,
            "{:>6}  {:>5}  {:<10}  {:>9.2}  {:>8}  {:>6}  {:>9}  {}",
            i + 1,
            s.drone,
            s.launch_id,
            s.distance_m / 1000.0,
            minutes(s.flight_time_s),
            s.photos.len(),
            minutes(s.start_s),
            s.cells.join(",")
        );
    }
    let totals = plan.totals();
    let _ = writeln!(
        t,
        "Total: {} cells planned, {} covered, {} sorties ({} batteries), {:.2} km, {} min flying, {} photos, all drones done after {} min",
        req.cells.len(),
        plan.covered.len(),
        totals.sorties,
        totals.sorties,
        totals.distance_m / 1000.0,
        minutes(totals.flight_time_s),
        totals.photos,
        minutes(totals.finish_s)
    );
    for d in &plan.drones {
        let _ = writeln!(
            t,
            "  drone {} from {}: {} sorties, done after {} min",
            d.drone,
            d.launch_id,
            d.sorties.len(),
            minutes(d.finish_s)
        );
    }
    if plan.uncovered.is_empty() {
        let _ = writeln!(t, "Uncovered cells: none");
    } else {
        let _ = writeln!(t, "Uncovered cells ({}):", plan.uncovered.len());
        for u in &plan.uncovered {
            let _ = writeln!(t, "  {}: {}", u.id, u.reason);
        }
    }
    t
}

fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let text = area::read_text(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let mission = files::parse_mission(&text).with_context(|| format!("reading {}", args.file.display()))?;
    let speed = args.speed.or_else(|| qgc_plan::speeds(&text).map(|(cruise, _)| cruise)).unwrap_or(10.0);
    let flight = FlightModel { cruise_speed_mps: speed, ..FlightModel::default() };
    let limits = Limits {
        max_alt_m: args.ceiling,
        exclusions: read_zones(&args.no_fly)?,
        inclusion: read_fence(args.fence.as_deref())?,
        flight,
        battery: (args.endurance_min > 0.0)
            .then(|| Battery { endurance_s: args.endurance_min * 60.0, reserve_fraction: fraction(args.reserve) }),
        ..Limits::default()
    };
    let summary = mission.summary(&flight);
    println!("{}", args.file.display());
    println!(
        "  {} items ({} waypoints), {} fence zones, {} rally points",
        summary.items,
        summary.waypoints,
        mission.fence.len(),
        mission.rally.len()
    );
    println!(
        "  {:.2} km, {} min at {speed:.1} m/s, about {} photos, highest {:.1} m above home",
        summary.distance_m / 1000.0,
        minutes(summary.flight_time_s),
        summary.photos,
        summary.max_alt_m
    );
    let violations = mission.validate(&limits);
    if violations.is_empty() {
        println!("  OK: no violations");
        return Ok(ExitCode::SUCCESS);
    }
    println!("  {} violations:", violations.len());
    for v in &violations {
        println!("  - {v}");
    }
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    use super::*;

    #[test]
    fn plan_and_check_parse_as_subcommands() {
        let cli = Cli::try_parse_from([
            "patrol",
            "plan",
            "--cells",
            "c.geojson",
            "--no-fly",
            "z.geojson",
            "--drones",
            "3",
            "--camera",
            "cam.toml",
            "--gsd",
            "0.03",
            "-o",
            "out/",
        ])
        .unwrap();
        let Command::Plan(args) = cli.command else { panic!("not plan") };
        assert!(args.action.is_none());
        assert_eq!(args.make.drones, 3);
        let cli = Cli::try_parse_from(["patrol", "plan", "check", "x.plan", "--no-fly", "z.geojson"]).unwrap();
        let Command::Plan(args) = cli.command else { panic!("not plan") };
        assert!(matches!(args.action, Some(PlanAction::Check(ref c)) if c.file == Path::new("x.plan")));
        // Without a subcommand the planning options are required.
        assert!(Cli::try_parse_from(["patrol", "plan", "--cells", "c.geojson"]).is_err());
    }

    #[test]
    fn fractions_accept_percent() {
        assert!((fraction(70.0) - 0.7).abs() < 1e-12);
        assert!((fraction(0.7) - 0.7).abs() < 1e-12);
    }
}
