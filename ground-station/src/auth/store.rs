//! The SQLite tables behind users and sessions. Session ids are stored only as SHA-256 digests, so a copy of the
//! database does not let anyone resume a session.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{AuthError, Role, UserInfo};

/// Creates the auth tables when they are missing. Idempotent; the storage layer calls it on its connection.
///
/// # Errors
/// The SQLite error when a statement fails.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS auth_users (
            username TEXT PRIMARY KEY NOT NULL,
            role TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_unix_s INTEGER NOT NULL,
            password_changed_unix_s INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS auth_sessions (
            id_sha256 TEXT PRIMARY KEY NOT NULL,
            username TEXT NOT NULL,
            csrf_token TEXT NOT NULL,
            created_unix_s INTEGER NOT NULL,
            last_seen_unix_s INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS auth_sessions_username ON auth_sessions(username);",
    )
}

/// A stored session joined with its user's current role.
#[derive(Debug, Clone)]
pub(crate) struct SessionRow {
    pub(crate) username: String,
    pub(crate) role: Role,
    pub(crate) csrf_token: String,
    pub(crate) created_unix_s: i64,
    pub(crate) last_seen_unix_s: i64,
}

pub(crate) fn digest(session_id: &str) -> String {
    hex(&Sha256::digest(session_id.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_role(text: String) -> Result<Role, AuthError> {
    text.parse().map_err(|_| AuthError::CorruptRole(text))
}

pub(crate) fn insert_user(
    conn: &Connection,
    username: &str,
    role: Role,
    hash: &str,
    now_s: i64,
) -> Result<(), AuthError> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO auth_users (username, role, password_hash, created_unix_s, password_changed_unix_s)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![username, role.as_str(), hash, now_s],
    )?;
    if inserted == 0 {
        return Err(AuthError::UserExists(username.to_owned()));
    }
    Ok(())
}

pub(crate) fn update_password(conn: &Connection, username: &str, hash: &str, now_s: i64) -> Result<(), AuthError> {
    let changed = conn.execute(
        "UPDATE auth_users SET password_hash = ?2, password_changed_unix_s = ?3 WHERE username = ?1",
        params![username, hash, now_s],
    )?;
    if changed == 0 {
        return Err(AuthError::NoSuchUser(username.to_owned()));
    }
    delete_sessions_of(conn, username)
}

pub(crate) fn update_role(conn: &Connection, username: &str, role: Role) -> Result<(), AuthError> {
    let current = user_role(conn, username)?.ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))?;
    if current == Role::Admin && role != Role::Admin && count_admins(conn)? <= 1 {
        return Err(AuthError::LastAdmin);
    }
    conn.execute("UPDATE auth_users SET role = ?2 WHERE username = ?1", params![username, role.as_str()])?;
    Ok(())
}

pub(crate) fn delete_user(conn: &Connection, username: &str) -> Result<(), AuthError> {
    let role = user_role(conn, username)?.ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))?;
    if role == Role::Admin && count_admins(conn)? <= 1 {
        return Err(AuthError::LastAdmin);
    }
    conn.execute("DELETE FROM auth_users WHERE username = ?1", params![username])?;
    delete_sessions_of(conn, username)
}

fn delete_sessions_of(conn: &Connection, username: &str) -> Result<(), AuthError> {
    conn.execute("DELETE FROM auth_sessions WHERE username = ?1", params![username])?;
    Ok(())
}

pub(crate) fn user_role(conn: &Connection, username: &str) -> Result<Option<Role>, AuthError> {
    let role: Option<String> = conn
        .query_row("SELECT role FROM auth_users WHERE username = ?1", params![username], |row| row.get(0))
        .optional()?;
    role.map(parse_role).transpose()
}

/// The role and password hash of a user, for login.
pub(crate) fn credentials(conn: &Connection, username: &str) -> Result<Option<(Role, String)>, AuthError> {
    let row: Option<(String, String)> = conn
        .query_row("SELECT role, password_hash FROM auth_users WHERE username = ?1", params![username], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    row.map(|(role, hash)| Ok((parse_role(role)?, hash))).transpose()
}

pub(crate) fn count_admins(conn: &Connection) -> Result<u64, AuthError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM auth_users WHERE role = 'admin'", [], |row| row.get(0))?)
}

pub(crate) fn list_users(conn: &Connection) -> Result<Vec<UserInfo>, AuthError> {
    let mut stmt = conn.prepare("SELECT username, role, created_unix_s FROM auth_users ORDER BY username")?;
    let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get(2)?)))?;
    let mut users = Vec::new();
    for row in rows {
        let (username, role, created_unix_s) = row?;
        users.push(UserInfo { username, role: parse_role(role)?, created_unix_s });
    }
    Ok(users)
}

pub(crate) fn insert_session(
    conn: &Connection,
    session_id: &str,
    username: &str,
    csrf_token: &str,
    now_s: i64,
) -> Result<(), AuthError> {
    conn.execute(
        "INSERT INTO auth_sessions (id_sha256, username, csrf_token, created_unix_s, last_seen_unix_s)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![digest(session_id), username, csrf_token, now_s],
    )?;
    Ok(())
}

pub(crate) fn session(conn: &Connection, session_id: &str) -> Result<Option<SessionRow>, AuthError> {
    let row = conn
        .query_row(
            "SELECT s.username, u.role, s.csrf_token, s.created_unix_s, s.last_seen_unix_s
             FROM auth_sessions s JOIN auth_users u ON u.username = s.username WHERE s.id_sha256 = ?1",
            params![digest(session_id)],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?;
    row.map(|(username, role, csrf_token, created_unix_s, last_seen_unix_s)| {
        Ok(SessionRow { username, role: parse_role(role)?, csrf_token, created_unix_s, last_seen_unix_s })
    })
    .transpose()
}

pub(crate) fn touch_session(conn: &Connection, session_id: &str, now_s: i64) -> Result<(), AuthError> {
    conn.execute(
        "UPDATE auth_sessions SET last_seen_unix_s = ?2 WHERE id_sha256 = ?1",
        params![digest(session_id), now_s],
    )?;
    Ok(())
}

pub(crate) fn delete_session(conn: &Connection, session_id: &str) -> Result<(), AuthError> {
    conn.execute("DELETE FROM auth_sessions WHERE id_sha256 = ?1", params![digest(session_id)])?;
    Ok(())
}

/// Removes sessions idle since `idle_before_s` or created before `created_before_s`.
pub(crate) fn delete_expired_sessions(
    conn: &Connection,
    idle_before_s: i64,
    created_before_s: i64,
) -> Result<usize, AuthError> {
    Ok(conn.execute(
        "DELETE FROM auth_sessions WHERE last_seen_unix_s < ?1 OR created_unix_s < ?2",
        params![idle_before_s, created_before_s],
    )?)
}
