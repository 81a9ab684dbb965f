//! Console users, roles and sessions.
//!
//! - Users live in SQLite (`auth_users`, created by [`migrate`]) with Argon2id password hashes.
//! - A login creates a session: a random 256-bit id sent to the browser in an `HttpOnly`, `SameSite=Strict`
//!   cookie and stored only as its SHA-256 digest, plus a random CSRF token the page sends back in the
//!   `X-CSRF-Token` header on every state-changing request. Sessions expire after an idle time and an absolute
//!   lifetime; changing a password or removing a user ends their sessions.
//! - Failed logins are rate limited per user name and per client address.
//!
//! [`AuthService`] methods are blocking (SQLite, Argon2): async callers run them on `spawn_blocking`.

mod password;
mod rate_limit;
mod role;
mod store;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rand::RngCore;
use rusqlite::Connection;

pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
pub use rate_limit::RateLimitConfig;
pub use role::{Role, UnknownRole};
pub use store::migrate;

use rate_limit::LoginRateLimiter;

/// What went wrong with a user or session operation. The messages are safe to show to the user; none holds a
/// password or a session id.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A user name outside the allowed characters or length.
    #[error("invalid user name {0:?}: use 1 to 64 lowercase letters, digits, '.', '_' or '-'")]
    InvalidUsername(String),
    /// A password outside the length rules.
    #[error("the password must have between {min} and {max} characters")]
    WeakPassword {
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: usize,
    },
    /// `add` for a name that is taken.
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// The named user does not exist.
    #[error("no user {0:?}")]
    NoSuchUser(String),
    /// Removing or demoting the only admin would lock everyone out of user management.
    #[error("this is the last admin: add another admin first")]
    LastAdmin,
    /// Wrong user name or password (deliberately not saying which).
    #[error("wrong user name or password")]
    BadCredentials,
    /// Too many failed logins for this user or address.
    #[error("too many failed logins: try again in {} s", retry_after.as_secs())]
    RateLimited {
        /// How long until a login may be tried again.
        retry_after: Duration,
    },
    /// The password hasher failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A role in the database that this version does not know.
    #[error("the user database holds an unknown role {0:?}")]
    CorruptRole(String),
    /// The user database failed.
    #[error("user database error")]
    Database(#[from] rusqlite::Error),
}

/// Session lifetimes, login limits and cookie flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, used or not.
    pub absolute_timeout: Duration,
    /// Failed-login limits.
    pub rate_limit: RateLimitConfig,
    /// Mark the cookie `Secure` (served over TLS or behind an `https://` origin).
    pub secure_cookie: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            rate_limit: RateLimitConfig::default(),
            secure_cookie: false,
        }
    }
}

/// A user as listed (never with the hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// When the user was added (Unix seconds).
    pub created_unix_s: i64,
}

/// A live session, as found from its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who is logged in.
    pub username: String,
    /// Their current role (read on every request, so a role change applies at once).
    pub role: Role,
    /// The token the page must echo in `X-CSRF-Token` on state-changing requests.
    pub csrf_token: String,
}

/// A session just created by a login. `Debug` leaves the secrets out.
#[derive(Clone)]
pub struct NewSession {
    /// The cookie value. Secret.
    pub id: String,
    /// The session's user, role and CSRF token.
    pub session: Session,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession").field("username", &self.session.username).finish_non_exhaustive()
    }
}

/// Where "now" comes from; tests pass a controllable clock.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Users, sessions and login limits over one SQLite connection. Cheap to clone.
#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    config: AuthConfig,
    limiter: Mutex<LoginRateLimiter>,
    clock: Clock,
    /// The database file, when opened from one (for the "create an admin" hint).
    path: Option<std::path::PathBuf>,
    /// Verified against when the user does not exist, so a login takes as long either way.
    dummy_hash: String,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl AuthService {
    /// Opens (or creates) the user database at `path` and migrates it.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub fn open(path: &Path, config: AuthConfig) -> Result<Self, AuthError> {
        let mut service = Self::new(Connection::open(path)?, config)?;
        if let Some(inner) = Arc::get_mut(&mut service.inner) {
            inner.path = Some(path.to_path_buf());
        }
        Ok(service)
    }

    /// Uses `conn` (migrating it) with the system clock.
    ///
    /// # Errors
    /// When migration or hashing the timing-equaliser password fails.
    pub fn new(conn: Connection, config: AuthConfig) -> Result<Self, AuthError> {
        Self::with_clock(conn, config, Arc::new(SystemTime::now))
    }

    /// Uses `conn` (migrating it) and `clock` for session expiry and rate limits.
    ///
    /// # Errors
    /// When migration or hashing the timing-equaliser password fails.
    pub fn with_clock(conn: Connection, config: AuthConfig, clock: Clock) -> Result<Self, AuthError> {
        migrate(&conn)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let dummy_hash = password::hash(&random_hex(16))?;
        let limiter = Mutex::new(LoginRateLimiter::new(config.rate_limit));
        Ok(Self { inner: Arc::new(Inner { conn: Mutex::new(conn), config, limiter, clock, path: None, dummy_hash }) })
    }

    /// The database file, when opened with [`AuthService::open`].
    pub fn database_path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The configuration in force.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (each call is one statement or
        // transaction), so a poisoned lock is still usable.
        self.inner.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> SystemTime {
        (self.inner.clock)()
    }

    fn now_s(&self) -> i64 {
        unix_s(self.now())
    }

    /// Adds a user.
    ///
    /// # Errors
    /// Invalid name, weak password, name taken, or a database error.
    pub fn add_user(&self, username: &str, password: &str, role: Role) -> Result<(), AuthError> {
        check_username(username)?;
        password::check_policy(password)?;
        let hash = password::hash(password)?;
        store::insert_user(&self.conn(), username, role, &hash, self.now_s())
    }

    /// Sets a user's password and ends their sessions.
    ///
    /// # Errors
    /// Weak password, unknown user, or a database error.
    pub fn set_password(&self, username: &str, password: &str) -> Result<(), AuthError> {
        password::check_policy(password)?;
        let hash = password::hash(password)?;
        store::update_password(&self.conn(), username, &hash, self.now_s())
    }

    /// Changes a user's role (effective on their next request).
    ///
    /// # Errors
    /// Unknown user, demoting the last admin, or a database error.
    pub fn set_role(&self, username: &str, role: Role) -> Result<(), AuthError> {
        store::update_role(&self.conn(), username, role)
    }

    /// Removes a user and their sessions.
    ///
    /// # Errors
    /// Unknown user, removing the last admin, or a database error.
    pub fn remove_user(&self, username: &str) -> Result<(), AuthError> {
        store::delete_user(&self.conn(), username)
    }

    /// All users, by name.
    ///
    /// # Errors
    /// A database error.
    pub fn list_users(&self) -> Result<Vec<UserInfo>, AuthError> {
        store::list_users(&self.conn())
    }

    /// Whether at least one admin exists.
    ///
    /// # Errors
    /// A database error.
    pub fn has_admin(&self) -> Result<bool, AuthError> {
        Ok(store::count_admins(&self.conn())? > 0)
    }

    /// Checks a password and opens a session. Rate limited per user name and per `client`.
    ///
    /// # Errors
    /// [`AuthError::RateLimited`], [`AuthError::BadCredentials`] or a database error.
    pub fn login(&self, username: &str, password: &str, client: IpAddr) -> Result<NewSession, AuthError> {
        let user_key = format!("user:{}", username.to_lowercase());
        let ip_key = format!("ip:{client}");
        let now = self.now();
        if let Some(retry_after) = self.limiter().blocked_for(&user_key, &ip_key, now) {
            tracing::warn!(username, %client, "Login refused: too many failures.");
            return Err(AuthError::RateLimited { retry_after });
        }
        let credentials = store::credentials(&self.conn(), username)?;
        let (role, ok) = match &credentials {
            Some((role, hash)) => (*role, password::verify(password, hash)),
            None => {
                // Spend the same time as a real check so response times do not reveal which names exist.
                std::hint::black_box(password::verify(password, &self.inner.dummy_hash));
                (Role::Viewer, false)
            }
        };
        if !ok {
            self.limiter().record_failure(&user_key, &ip_key, now);
            tracing::info!(username, %client, "Login failed.");
            return Err(AuthError::BadCredentials);
        }
        self.limiter().clear(&user_key);
        let id = random_hex(32);
        let csrf_token = random_hex(32);
        let conn = self.conn();
        let config = &self.inner.config;
        store::delete_expired_sessions(
            &conn,
            unix_s(now) - config.idle_timeout.as_secs() as i64,
            unix_s(now) - config.absolute_timeout.as_secs() as i64,
        )?;
        store::insert_session(&conn, &id, username, &csrf_token, unix_s(now))?;
        tracing::info!(username, %role, %client, "Logged in.");
        Ok(NewSession { id, session: Session { username: username.to_owned(), role, csrf_token } })
    }

    /// The live session for a cookie value, refreshing its idle timer; `None` when unknown or expired (an
    /// expired one is deleted).
    ///
    /// # Errors
    /// A database error.
    pub fn session(&self, session_id: &str) -> Result<Option<Session>, AuthError> {
        let conn = self.conn();
        let Some(row) = store::session(&conn, session_id)? else {
            return Ok(None);
        };
        let now_s = self.now_s();
        let config = &self.inner.config;
        let idle_s = now_s - row.last_seen_unix_s;
        let age_s = now_s - row.created_unix_s;
        if idle_s >= config.idle_timeout.as_secs() as i64 || age_s >= config.absolute_timeout.as_secs() as i64 {
            store::delete_session(&conn, session_id)?;
            tracing::debug!(username = row.username, "Session expired.");
            return Ok(None);
        }
        store::touch_session(&conn, session_id, now_s)?;
        Ok(Some(Session { username: row.username, role: row.role, csrf_token: row.csrf_token }))
    }

    /// Ends a session (logout). Unknown ids are ignored.
    ///
    /// # Errors
    /// A database error.
    pub fn logout(&self, session_id: &str) -> Result<(), AuthError> {
        store::delete_session(&self.conn(), session_id)
    }

    fn limiter(&self) -> MutexGuard<'_, LoginRateLimiter> {
        self.inner.limiter.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_username(username: &str) -> Result<(), AuthError> {
    let ok = (1..=64).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(AuthError::InvalidUsername(username.to_owned())) }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    store::hex(&buf)
}

fn unix_s(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The message the server prints at startup when no admin exists.
pub fn no_admin_hint(database: Option<&Path>) -> String {
    let db = database.map(|path| format!(" --db {}", path.display())).unwrap_or_default();
    format!(
        "No admin user exists, so nobody can log in to the web console. Create one with:\n    \
         patrol user add admin --role admin{db}\n\
         It prompts for the password (or reads it from standard input with --password-stdin)."
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn service(config: AuthConfig) -> (AuthService, Arc<AtomicU64>) {
        let seconds = Arc::new(AtomicU64::new(1_800_000_000));
        let clock_seconds = seconds.clone();
        let clock: Clock =
            Arc::new(move || SystemTime::UNIX_EPOCH + Duration::from_secs(clock_seconds.load(Ordering::SeqCst)));
        (AuthService::with_clock(Connection::open_in_memory().unwrap(), config, clock).unwrap(), seconds)
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn users_can_be_added_listed_changed_and_removed() {
        let (auth, _) = service(AuthConfig::default());
        assert!(!auth.has_admin().unwrap());
        auth.add_user("root", "a long admin password", Role::Admin).unwrap();
        auth.add_user("ann", "a long reviewer password", Role::Reviewer).unwrap();
        assert!(auth.has_admin().unwrap());
        assert!(matches!(auth.add_user("ann", "another long password", Role::Viewer), Err(AuthError::UserExists(_))));
        assert!(matches!(
            auth.add_user("Bad Name", "another long password", Role::Viewer),
            Err(AuthError::InvalidUsername(_))
        ));
        assert!(matches!(auth.add_user("bob", "short", Role::Viewer), Err(AuthError::WeakPassword { .. })));
        let names: Vec<_> = auth.list_users().unwrap().into_iter().map(|u| (u.username, u.role)).collect();
        assert_eq!(names, vec![("ann".to_owned(), Role::Reviewer), ("root".to_owned(), Role::Admin)]);
        assert!(matches!(auth.remove_user("root"), Err(AuthError::LastAdmin)));
        assert!(matches!(auth.set_role("root", Role::Viewer), Err(AuthError::LastAdmin)));
        auth.set_role("ann", Role::Operator).unwrap();
        auth.remove_user("ann").unwrap();
        assert!(matches!(auth.remove_user("ann"), Err(AuthError::NoSuchUser(_))));
    }

    #[test]
    fn login_creates_a_session_and_password_change_ends_it() {
        let (auth, _) = service(AuthConfig::default());
        auth.add_user("ann", "a long reviewer password", Role::Reviewer).unwrap();
        assert!(matches!(auth.login("ann", "wrong password!", IP), Err(AuthError::BadCredentials)));
        assert!(matches!(auth.login("nobody", "wrong password!", IP), Err(AuthError::BadCredentials)));
        let new = auth.login("ann", "a long reviewer password", IP).unwrap();
        assert_eq!(new.id.len(), 64);
        assert!(!format!("{new:?}").contains(&new.id), "Debug leaves the id out");
        let session = auth.session(&new.id).unwrap().unwrap();
        assert_eq!(session.role, Role::Reviewer);
        assert_eq!(session.csrf_token, new.session.csrf_token);
        auth.set_role("ann", Role::Viewer).unwrap();
        assert_eq!(auth.session(&new.id).unwrap().unwrap().role, Role::Viewer, "role changes apply at once");
        auth.set_password("ann", "a new long password").unwrap();
        assert_eq!(auth.session(&new.id).unwrap(), None);
        assert_eq!(auth.session("not a session").unwrap(), None);
    }

    #[test]
    fn sessions_expire_when_idle_and_at_the_absolute_limit() {
        let config = AuthConfig {
            idle_timeout: Duration::from_secs(600),
            absolute_timeout: Duration::from_secs(3600),
            ..AuthConfig::default()
        };
        let (auth, clock) = service(config);
        auth.add_user("ann", "a long reviewer password", Role::Reviewer).unwrap();
        let idle = auth.login("ann", "a long reviewer password", IP).unwrap();
        clock.fetch_add(599, Ordering::SeqCst);
        assert!(auth.session(&idle.id).unwrap().is_some(), "used within the idle time");
        clock.fetch_add(600, Ordering::SeqCst);
        assert!(auth.session(&idle.id).unwrap().is_none(), "idle too long");

        let busy = auth.login("ann", "a long reviewer password", IP).unwrap();
        for _ in 0..6 {
            clock.fetch_add(500, Ordering::SeqCst);
            assert!(auth.session(&busy.id).unwrap().is_some());
        }
        clock.fetch_add(600, Ordering::SeqCst);
        assert!(auth.session(&busy.id).unwrap().is_none(), "past the absolute lifetime even though active");
    }

    #[test]
    fn logins_are_rate_limited_per_user() {
        let (auth, clock) = service(AuthConfig::default());
        auth.add_user("ann", "a long reviewer password", Role::Reviewer).unwrap();
        for _ in 0..5 {
            assert!(matches!(auth.login("ann", "wrong password!", IP), Err(AuthError::BadCredentials)));
        }
        assert!(matches!(auth.login("ann", "a long reviewer password", IP), Err(AuthError::RateLimited { .. })));
        clock.fetch_add(15 * 60, Ordering::SeqCst);
        assert!(auth.login("ann", "a long reviewer password", IP).is_ok());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
