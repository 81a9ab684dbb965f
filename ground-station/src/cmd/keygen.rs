//! `patrol keygen`: a new MAVLink 2 signing key, written where `[[drones]] signing_key_file` and
//! `patrol sim --signing-key` can use it, with instructions for loading it into the autopilot.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use rand::TryRngCore as _;

/// Arguments of `patrol keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (64 hex digits and a newline, file mode 0600).
    #[arg(short, long, default_value = "mavlink-signing.key")]
    pub output: PathBuf,
    /// Replace the file if it exists. The old key stops working on every drone and tool that used it.
    #[arg(long)]
    pub force: bool,
}

/// Runs `patrol keygen`.
///
/// # Errors
/// The OS random generator fails, or the file exists (without `--force`) or cannot be written.
pub fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let mut key = [0_u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut key).context("the operating system's random generator failed")?;
    let hex = to_hex(&key);
    write_key_file(&args.output, &hex, args.force)?;
    // The path as written into the config: absolute, so the daemon finds it from any working directory.
    let path = std::path::absolute(&args.output).unwrap_or_else(|_| args.output.clone());
    print!("{}", instructions(&path, &hex));
    Ok(ExitCode::SUCCESS)
}

/// Lower-case hex of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes `hex` and a newline to a new file readable by its owner only. An existing file is an error unless
/// `force`, when it is removed first (so the new file gets mode 0600 whatever the old one had).
fn write_key_file(path: &Path, hex: &str, force: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;

    if force {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).with_context(|| format!("cannot replace {}", path.display())),
        }
    }
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(
            "{} already exists; pass --force to replace it (the old key then stops working everywhere it is set), \
             or choose another file with -o",
            path.display()
        ),
        Err(error) => return Err(error).with_context(|| format!("cannot create {}", path.display())),
    };
    writeln!(file, "{hex}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the key to {}", path.display()))
}

/// What to do with the key: the autopilot, the station's config and the simulator.
fn instructions(path: &Path, hex: &str) -> String {
    let path = path.display();
    format!(
        "Wrote a new MAVLink 2 signing key to {path} (mode 0600):\n\
         \n  {hex}\n\
         \n\
         Treat it like a password: anyone with it can command the drones.\n\
         \n\
         1. Load it into the autopilot (ArduPilot stores it; do this disarmed, over a USB cable or another link you\n   \
            trust, because the key travels unencrypted). The autopilot takes a raw key only in a SETUP_SIGNING\n   \
            message. MAVProxy's `signing setup <passphrase>` and `signing key <passphrase>` (and Mission Planner's\n   \
            signing screen) take a passphrase and use its SHA-256 as the key, so they cannot load this key. Send\n   \
            SETUP_SIGNING with pymavlink instead (adjust the port; the timestamp is in 10 us units since\n   \
            2015-01-01):\n\
         \n    \
            python3 -c \"import time; from pymavlink import mavutil; m = mavutil.mavlink_connection('/dev/ttyACM0', \
            source_system=255); m.wait_heartbeat(); m.mav.setup_signing_send(m.target_system, m.target_component, \
            list(bytes.fromhex('{hex}')), int((time.time() - 1420070400) * 100000))\"\n\
         \n   \
            Then check that the autopilot answers a signed link (`patrol watch <link> --signing-key {hex}`).\n\
         \n\
         2. Point the station at the file, in the drone's [[drones]] table of ground-station.toml:\n\
         \n    \
            signing_key_file = \"{path}\"\n\
         \n\
         3. Or give it to the simulator: patrol sim --signing-key \"$(cat {path})\"\n   \
            (or PATROL_SIM_SIGNING_KEY=\"$(cat {path})\", which keeps it out of the process list).\n"
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use firmware_bridge::signing::SigningKey;

    use super::*;

    #[test]
    fn the_key_file_holds_64_hex_digits_the_bridge_reads_back_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drone.key");
        run(KeygenArgs { output: path.clone(), force: false }).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let hex = text.trim_end();
        assert_eq!(hex.len(), 64, "{text:?}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{text:?}");
        let key = SigningKey::from_hex(&text).unwrap();
        assert_eq!(to_hex(key.as_bytes()), hex);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drone.key");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let error = run(KeygenArgs { output: path.clone(), force: false }).unwrap_err();
        assert!(error.to_string().contains("--force"), "{error:#}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");

        run(KeygenArgs { output: path.clone(), force: true }).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(SigningKey::from_hex(&text).is_ok(), "{text:?}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn keys_differ_between_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.key"), dir.path().join("b.key"));
        run(KeygenArgs { output: a.clone(), force: false }).unwrap();
        run(KeygenArgs { output: b.clone(), force: false }).unwrap();
        assert_ne!(std::fs::read_to_string(a).unwrap(), std::fs::read_to_string(b).unwrap());
    }

    #[test]
    fn instructions_name_the_key_the_file_and_every_place_to_use_it() {
        let hex = to_hex(&[0xab; 32]);
        let text = instructions(Path::new("/etc/patrol/d1.key"), &hex);
        assert!(text.contains(&format!("list(bytes.fromhex('{hex}'))")), "{text}");
        assert!(text.contains("setup_signing_send"), "{text}");
        assert!(text.contains("signing_key_file = \"/etc/patrol/d1.key\""), "{text}");
        assert!(text.contains("patrol sim --signing-key \"$(cat /etc/patrol/d1.key)\""), "{text}");
        assert!(text.contains("signing setup <passphrase>"), "{text}");
    }

    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
