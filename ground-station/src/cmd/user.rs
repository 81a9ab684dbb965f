//! `patrol user`: add, change, remove and list web console users.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::auth::{AuthConfig, AuthService, MIN_PASSWORD_CHARS, Role};

/// Arguments of `patrol user`.
#[derive(Debug, Args)]
#[command(after_help = "Passwords are never taken from the command line: they are prompted for (twice, not echoed), \
                        or read as one line from standard input with --password-stdin, e.g.\n  \
                        printf '%s\\n' \"$PW\" | patrol user add ann --role reviewer --password-stdin")]
pub struct UserArgs {
    /// The ground station's SQLite database, where users live.
    #[arg(long, env = "PATROL_DB", default_value = "patrol.db", global = true)]
    pub db: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: UserAction,
}

/// `patrol user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a user. Roles: viewer (read only), reviewer (+ review queue), operator (+ plan and fly), admin
    /// (+ users).
    Add {
        /// Login name: lowercase letters, digits, '.', '_' or '-'.
        username: String,
        /// The user's role.
        #[arg(long)]
        role: Role,
        /// Read the password as one line from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password; their open sessions end.
    Passwd {
        /// Login name.
        username: String,
        /// Read the password as one line from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role (applies to their next request).
    Role {
        /// Login name.
        username: String,
        /// The new role.
        role: Role,
    },
    /// Remove a user and end their sessions.
    Remove {
        /// Login name.
        username: String,
    },
    /// List users and their roles.
    List,
}

/// Runs `patrol user`.
///
/// # Errors
/// A bad name or password, an unknown user, removing the last admin, or a database error.
pub fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    let auth = AuthService::open(&args.db, AuthConfig::default())
        .with_context(|| format!("cannot open the user database {}", args.db.display()))?;
    match args.action {
        UserAction::Add { username, role, password_stdin } => {
            let password = read_password(password_stdin, &format!("Password for {username}: "))?;
            auth.add_user(&username, &password, role).with_context(|| format!("cannot add {username}"))?;
            println!("Added {username} ({role}).");
        }
        UserAction::Passwd { username, password_stdin } => {
            let password = read_password(password_stdin, &format!("New password for {username}: "))?;
            auth.set_password(&username, &password)
                .with_context(|| format!("cannot set the password of {username}"))?;
            println!("Password of {username} changed; their sessions have ended.");
        }
        UserAction::Role { username, role } => {
            auth.set_role(&username, role).with_context(|| format!("cannot change the role of {username}"))?;
            println!("{username} is now {role}.");
        }
        UserAction::Remove { username } => {
            auth.remove_user(&username).with_context(|| format!("cannot remove {username}"))?;
            println!("Removed {username}.");
        }
        UserAction::List => {
            let users = auth.list_users().context("cannot list users")?;
            if users.is_empty() {
                println!("No users yet.");
                println!("{}", crate::auth::no_admin_hint(Some(&args.db)));
            }
            for user in users {
                println!("{:<24} {}", user.username, user.role);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line from stdin (`--password-stdin`), else a no-echo prompt asked twice.
fn read_password(from_stdin: bool, prompt: &str) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let password = line.strip_suffix('\n').map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
        return Ok(password.to_owned());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("standard input is not a terminal, so there is nobody to prompt: pass --password-stdin");
    }
    eprintln!("At least {MIN_PASSWORD_CHARS} characters.");
    let first = rpassword::prompt_password(prompt).context("cannot read the password")?;
    let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    if first != again {
        anyhow::bail!("the two passwords differ: nothing changed");
    }
    Ok(first)
}
