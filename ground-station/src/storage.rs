//! Durable storage: SQLite (WAL mode) with schema migrations, and evidence images on disk.
//!
//! - [`Database`] is the synchronous store: vehicles, missions, captures, detections, hazards, reviews, the id
//!   counters and the MQTT outbox. Hazard changes, their outbox messages and the counters are written in one
//!   transaction ([`Database::commit_changes`]), so after a crash the store is never half-way.
//! - [`StorageHandle`] runs a [`Database`] on its own thread (an actor) so SQLite never blocks the async runtime.
//! - [`EvidenceStore`] keeps full frames and crops under `evidence_dir/<capture id>/`, pruned by age and size.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::hazard::{Hazard, MissionState, ReviewEvent};
use crate::tracking::Counters;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// SQLite failed.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A stored record could not be decoded (corruption or a newer schema).
    #[error("stored record {what} is unreadable: {source}")]
    Decode {
        /// Which record.
        what: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The database was written by a newer version of the station.
    #[error("database schema version {found} is newer than this station knows ({known}); upgrade the station")]
    NewerSchema {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A file operation on the evidence folder failed.
    #[error("evidence {path}: {source}")]
    Evidence {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An id that cannot name a file (evidence ids must be letters, digits, `-`, `_`, `:` or `.`).
    #[error("invalid evidence id `{0}`")]
    InvalidId(String),
    /// The storage thread is gone (the daemon is shutting down).
    #[error("the storage thread has stopped")]
    Stopped,
}

impl StorageError {
    /// True when retrying later may succeed (the database is busy or locked).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StorageError::Sqlite { source: rusqlite::Error::SqliteFailure(e, _), .. }
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// The schema, one migration per entry; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE vehicles (
    id TEXT PRIMARY KEY,
    autopilot TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE TABLE missions (
    id TEXT PRIMARY KEY,
    drone_id TEXT NOT NULL,
    state TEXT NOT NULL,
    cells_json TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    started_ms INTEGER,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE captures (
    id TEXT PRIMARY KEY,
    drone_id TEXT NOT NULL,
    mission_id TEXT,
    taken_ms INTEGER NOT NULL,
    pose_json TEXT NOT NULL,
    image_path TEXT
);
CREATE INDEX captures_taken ON captures(taken_ms);
CREATE TABLE detections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    capture_id TEXT NOT NULL REFERENCES captures(id),
    label TEXT NOT NULL,
    confidence REAL NOT NULL,
    box_json TEXT NOT NULL,
    hazard_id TEXT
);
CREATE INDEX detections_capture ON detections(capture_id);
CREATE TABLE hazards (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    open INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX hazards_open ON hazards(open, last_seen_ms);
CREATE TABLE reviews (
    event_id TEXT PRIMARY KEY,
    hazard_id TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
"];

/// A message waiting in the outbox to be published (QoS 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Full topic.
    pub topic: String,
    /// Payload (JSON).
    pub payload: Vec<u8>,
    /// Publish retained.
    pub retain: bool,
}

/// An outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Row id: publish order.
    pub id: i64,
    /// The message.
    pub message: OutboxMessage,
}

/// A drone the station has talked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleRecord {
    /// Drone id.
    pub id: String,
    /// Autopilot family, e.g. "ardupilot" or "px4".
    pub autopilot: String,
    /// Last heartbeat.
    pub last_seen: SystemTime,
}

/// A mission.
#[derive(Debug, Clone, PartialEq)]
pub struct MissionRecord {
    /// Mission id.
    pub id: String,
    /// Drone flying it.
    pub drone_id: String,
    /// State.
    pub state: MissionState,
    /// Grid cells it covers.
    pub cells: Vec<String>,
    /// The plan (mission-planner JSON), opaque here.
    pub plan_json: String,
    /// When it started flying.
    pub started: Option<SystemTime>,
    /// Last change.
    pub updated: SystemTime,
}

/// A captured frame and the pose it was taken at.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRecord {
    /// Capture id.
    pub id: String,
    /// Drone.
    pub drone_id: String,
    /// Mission, if any.
    pub mission_id: Option<String>,
    /// When the frame was taken.
    pub taken: SystemTime,
    /// The capture pose as JSON (position, relative altitude, orientation, intrinsics).
    pub pose_json: String,
    /// Full-frame evidence file, if kept.
    pub image_path: Option<PathBuf>,
}

/// One detection in a capture.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionRecord {
    /// Capture.
    pub capture_id: String,
    /// Model label.
    pub label: String,
    /// Confidence.
    pub confidence: f64,
    /// Box `[x_min, y_min, x_max, y_max]`, pixels.
    pub box_px: [f64; 4],
    /// Hazard it was merged into, if any.
    pub hazard_id: Option<String>,
}

fn to_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The synchronous store. Use it through a [`StorageHandle`] in async code.
#[derive(Debug)]
pub struct Database {
    conn: Connection,
    path: PathBuf,
}

impl Database {
    /// Opens (creating if needed) the database at `path` in WAL mode and runs pending migrations.
    ///
    /// # Errors
    /// SQLite errors, or [`StorageError::NewerSchema`].
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| StorageError::Evidence { path: parent.to_owned(), source })?;
        }
        let conn = Connection::open(path).map_err(|source| StorageError::Sqlite { path: path.to_owned(), source })?;
        Self::init(conn, path.to_owned())
    }

    /// An in-memory database, for tests.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn open_in_memory() -> Result<Self, StorageError> {
        let path = PathBuf::from(":memory:");
        let conn =
            Connection::open_in_memory().map_err(|source| StorageError::Sqlite { path: path.clone(), source })?;
        Self::init(conn, path)
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Self, StorageError> {
        let mut db = Self { conn, path };
        db.conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(|e| db.err(e))?;
        // NORMAL is durable in WAL mode against process crashes (SIGKILL); only a power cut may lose the last
        // transactions, never corrupt the file.
        db.conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| db.err(e))?;
        db.conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| db.err(e))?;
        db.conn.busy_timeout(Duration::from_secs(5)).map_err(|e| db.err(e))?;
        db.migrate()?;
        Ok(db)
    }

    fn err(&self, source: rusqlite::Error) -> StorageError {
        StorageError::Sqlite { path: self.path.clone(), source }
    }

    fn migrate(&mut self) -> Result<(), StorageError> {
        let version: i64 =
            self.conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(|e| self.err(e))?;
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(StorageError::NewerSchema { found: version, known });
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
            let tx =
                self.conn.transaction().map_err(|source| StorageError::Sqlite { path: self.path.clone(), source })?;
            tx.execute_batch(sql).map_err(|source| StorageError::Sqlite { path: self.path.clone(), source })?;
            tx.pragma_update(None, "user_version", index + 1)
                .map_err(|source| StorageError::Sqlite { path: self.path.clone(), source })?;
            tx.commit().map_err(|source| StorageError::Sqlite { path: self.path.clone(), source })?;
        }
        Ok(())
    }

    /// The schema version (number of migrations applied).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn schema_version(&self) -> Result<i64, StorageError> {
        self.conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(|e| self.err(e))
    }

    /// Inserts or updates a vehicle.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn upsert_vehicle(&self, vehicle: &VehicleRecord) -> Result<(), StorageError> {
        self.conn
            .execute(
                "INSERT INTO vehicles (id, autopilot, last_seen_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET autopilot = ?2, last_seen_ms = ?3",
                params![vehicle.id, vehicle.autopilot, to_ms(vehicle.last_seen)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// All vehicles, by id.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn vehicles(&self) -> Result<Vec<VehicleRecord>, StorageError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, autopilot, last_seen_ms FROM vehicles ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(VehicleRecord { id: row.get(0)?, autopilot: row.get(1)?, last_seen: from_ms(row.get(2)?) })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Inserts or updates a mission.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn upsert_mission(&self, mission: &MissionRecord) -> Result<(), StorageError> {
        let state = serde_json::to_string(&mission.state)
            .map_err(|source| StorageError::Decode { what: format!("mission {}", mission.id), source })?;
        let cells = serde_json::to_string(&mission.cells)
            .map_err(|source| StorageError::Decode { what: format!("mission {}", mission.id), source })?;
        self.conn
            .execute(
                "INSERT INTO missions (id, drone_id, state, cells_json, plan_json, started_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET drone_id = ?2, state = ?3, cells_json = ?4, plan_json = ?5,
                 started_ms = ?6, updated_ms = ?7",
                params![
                    mission.id,
                    mission.drone_id,
                    state,
                    cells,
                    mission.plan_json,
                    mission.started.map(to_ms),
                    to_ms(mission.updated)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A mission by id.
    ///
    /// # Errors
    /// SQLite errors, or a record that cannot be decoded.
    pub fn mission(&self, id: &str) -> Result<Option<MissionRecord>, StorageError> {
        let row = self
            .conn
            .query_row(&format!("SELECT {MISSION_COLUMNS} FROM missions WHERE id = ?1"), [id], mission_row)
            .optional()
            .map_err(|e| self.err(e))?;
        row.map(decode_mission).transpose()
    }

    /// Every mission, by id.
    ///
    /// # Errors
    /// SQLite errors, or a record that cannot be decoded.
    pub fn missions(&self) -> Result<Vec<MissionRecord>, StorageError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {MISSION_COLUMNS} FROM missions ORDER BY id"))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], mission_row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter().map(decode_mission).collect()
    }

    /// Records a capture.
    ///
    /// # Errors
    /// SQLite errors (a duplicate id included).
    pub fn insert_capture(&self, capture: &CaptureRecord) -> Result<(), StorageError> {
        self.conn
            .execute(
                "INSERT INTO captures (id, drone_id, mission_id, taken_ms, pose_json, image_path)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    capture.id,
                    capture.drone_id,
                    capture.mission_id,
                    to_ms(capture.taken),
                    capture.pose_json,
                    capture.image_path.as_ref().map(|p| p.to_string_lossy().into_owned())
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A capture by id.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn capture(&self, id: &str) -> Result<Option<CaptureRecord>, StorageError> {
        self.conn
            .query_row(
                "SELECT id, drone_id, mission_id, taken_ms, pose_json, image_path FROM captures WHERE id = ?1",
                [id],
                |row| {
                    Ok(CaptureRecord {
                        id: row.get(0)?,
                        drone_id: row.get(1)?,
                        mission_id: row.get(2)?,
                        taken: from_ms(row.get(3)?),
                        pose_json: row.get(4)?,
                        image_path: row.get::<_, Option<String>>(5)?.map(PathBuf::from),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records the detections of a capture (which must be stored first).
    ///
    /// # Errors
    /// SQLite errors, e.g. an unknown capture id.
    pub fn insert_detections(&mut self, detections: &[DetectionRecord]) -> Result<(), StorageError> {
        let path = self.path.clone();
        let err = |source| StorageError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        for detection in detections {
            let box_json = serde_json::to_string(&detection.box_px)
                .map_err(|source| StorageError::Decode { what: "detection box".into(), source })?;
            tx.execute(
                "INSERT INTO detections (capture_id, label, confidence, box_json, hazard_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![detection.capture_id, detection.label, detection.confidence, box_json, detection.hazard_id],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The detections of a capture, in insertion order.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn detections(&self, capture_id: &str) -> Result<Vec<DetectionRecord>, StorageError> {
        let mut stmt = self
            .conn
            .prepare("SELECT capture_id, label, confidence, box_json, hazard_id FROM detections WHERE capture_id = ?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([capture_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get::<_, String>(3)?, row.get(4)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (capture_id, label, confidence, box_json, hazard_id) = row.map_err(|e| self.err(e))?;
            let box_px = serde_json::from_str(&box_json)
                .map_err(|source| StorageError::Decode { what: format!("detection of {capture_id}"), source })?;
            out.push(DetectionRecord { capture_id, label, confidence, box_px, hazard_id });
        }
        Ok(out)
    }

    /// Writes hazard changes, their outbox messages and the id counters in one transaction. Returns the outbox
    /// ids of the messages, in order.
    ///
    /// # Errors
    /// SQLite errors; nothing is written then.
    pub fn commit_changes(
        &mut self,
        hazards: &[Hazard],
        messages: &[OutboxMessage],
        counters: Counters,
    ) -> Result<Vec<i64>, StorageError> {
        self.commit_changes_with_review(hazards, None, messages, counters)
    }

    /// [`Database::commit_changes`] plus a review record, all in one transaction.
    ///
    /// # Errors
    /// SQLite errors (a review event id stored before included); nothing is written then.
    pub fn commit_changes_with_review(
        &mut self,
        hazards: &[Hazard],
        review: Option<&ReviewEvent>,
        messages: &[OutboxMessage],
        counters: Counters,
    ) -> Result<Vec<i64>, StorageError> {
        let review_json = review
            .map(|review| {
                serde_json::to_string(review)
                    .map_err(|source| StorageError::Decode { what: format!("review {}", review.event_id), source })
            })
            .transpose()?;
        let path = self.path.clone();
        let err = |source| StorageError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        for hazard in hazards {
            let json = serde_json::to_string(hazard)
                .map_err(|source| StorageError::Decode { what: format!("hazard {}", hazard.id), source })?;
            tx.execute(
                "INSERT INTO hazards (id, kind, open, last_seen_ms, json) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET kind = ?2, open = ?3, last_seen_ms = ?4, json = ?5",
                params![hazard.id, hazard.kind.as_str(), hazard.is_open(), to_ms(hazard.last_seen), json],
            )
            .map_err(err)?;
        }
        if let (Some(review), Some(json)) = (review, &review_json) {
            tx.execute(
                "INSERT INTO reviews (event_id, hazard_id, json) VALUES (?1, ?2, ?3)",
                params![review.event_id, review.hazard_id, json],
            )
            .map_err(err)?;
        }
        let ids = insert_outbox(&tx, messages).map_err(err)?;
        for (name, value) in [("next_hazard", counters.next_hazard), ("next_event", counters.next_event)] {
            tx.execute(
                "INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = max(value, ?2)",
                params![name, i64::try_from(value).unwrap_or(i64::MAX)],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    /// The reviews of a hazard, oldest first.
    ///
    /// # Errors
    /// SQLite errors, or a record that cannot be decoded.
    pub fn reviews(&self, hazard_id: &str) -> Result<Vec<ReviewEvent>, StorageError> {
        self.json_rows("SELECT json FROM reviews WHERE hazard_id = ?1 ORDER BY rowid", [hazard_id], "review")
    }

    /// The persisted id counters (1, 1 for a new database).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn counters(&self) -> Result<Counters, StorageError> {
        let get = |name: &str| -> Result<u64, StorageError> {
            let value: Option<i64> = self
                .conn
                .query_row("SELECT value FROM counters WHERE name = ?1", [name], |row| row.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            Ok(value.and_then(|v| u64::try_from(v).ok()).unwrap_or(1).max(1))
        };
        Ok(Counters { next_hazard: get("next_hazard")?, next_event: get("next_event")? })
    }

    /// A hazard by id.
    ///
    /// # Errors
    /// SQLite errors, or a record that cannot be decoded.
    pub fn hazard(&self, id: &str) -> Result<Option<Hazard>, StorageError> {
        Ok(self.json_rows("SELECT json FROM hazards WHERE id = ?1", [id], "hazard")?.pop())
    }

    /// The open hazards, oldest last sighting first: what a restarted tracker resumes with.
    ///
    /// # Errors
    /// SQLite errors, or a record that cannot be decoded.
    pub fn open_hazards(&self) -> Result<Vec<Hazard>, StorageError> {
        self.json_rows("SELECT json FROM hazards WHERE open = 1 ORDER BY last_seen_ms", [], "hazard")
    }

    /// The most recently seen hazards, open or not, newest first.
    ///
    /// # Errors
    /// SQLite errors, or a record that cannot be decoded.
    pub fn recent_hazards(&self, limit: u32) -> Result<Vec<Hazard>, StorageError> {
        self.json_rows("SELECT json FROM hazards ORDER BY last_seen_ms DESC LIMIT ?1", [limit], "hazard")
    }

    fn json_rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        what: &str,
    ) -> Result<Vec<T>, StorageError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params, |row| row.get::<_, String>(0)).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let json = row.map_err(|e| self.err(e))?;
            out.push(serde_json::from_str(&json).map_err(|source| StorageError::Decode { what: what.into(), source })?);
        }
        Ok(out)
    }

    /// Appends messages to the outbox (for messages that come with no other record); returns their ids.
    ///
    /// # Errors
    /// SQLite errors; nothing is written then.
    pub fn outbox_append(&mut self, messages: &[OutboxMessage]) -> Result<Vec<i64>, StorageError> {
        let path = self.path.clone();
        let err = |source| StorageError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        let ids = insert_outbox(&tx, messages).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    /// Up to `limit` outbox messages with an id above `after`, in order.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn outbox_pending(&self, after: i64, limit: u32) -> Result<Vec<OutboxEntry>, StorageError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, topic, payload, retain FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![after, limit], |row| {
                Ok(OutboxEntry {
                    id: row.get(0)?,
                    message: OutboxMessage { topic: row.get(1)?, payload: row.get(2)?, retain: row.get(3)? },
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Removes a delivered message (on PUBACK). Removing one that is gone is not an error.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn outbox_remove(&self, id: i64) -> Result<(), StorageError> {
        self.conn.execute("DELETE FROM outbox WHERE id = ?1", [id]).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Number of messages waiting in the outbox.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn outbox_len(&self) -> Result<u64, StorageError> {
        let n: i64 =
            self.conn.query_row("SELECT count(*) FROM outbox", [], |row| row.get(0)).map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn insert_outbox(tx: &rusqlite::Transaction<'_>, messages: &[OutboxMessage]) -> Result<Vec<i64>, rusqlite::Error> {
    let now = to_ms(SystemTime::now());
    let mut ids = Vec::with_capacity(messages.len());
    for message in messages {
        tx.execute(
            "INSERT INTO outbox (topic, payload, retain, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![message.topic, message.payload, message.retain, now],
        )?;
        ids.push(tx.last_insert_rowid());
    }
    Ok(ids)
}

type Job = Box<dyn FnOnce(&mut Database) + Send>;

/// Capacity of the storage command channel; callers wait (backpressure) when it is full.
const STORAGE_QUEUE: usize = 256;

/// Cloneable async handle to a [`Database`] owned by a dedicated thread. The thread ends when every handle is
/// dropped, after finishing the queued work.
#[derive(Debug, Clone)]
pub struct StorageHandle {
    jobs: mpsc::Sender<Job>,
}

impl StorageHandle {
    /// Opens the database at `path` and starts its thread.
    ///
    /// # Errors
    /// What [`Database::open`] reports, or a failure to spawn the thread.
    pub fn open(path: &Path) -> Result<(Self, std::thread::JoinHandle<()>), StorageError> {
        Self::start(Database::open(path)?)
    }

    /// Starts the thread that owns `db`.
    ///
    /// # Errors
    /// [`StorageError::Evidence`] when the thread cannot be spawned.
    pub fn start(db: Database) -> Result<(Self, std::thread::JoinHandle<()>), StorageError> {
        let (jobs, mut rx) = mpsc::channel::<Job>(STORAGE_QUEUE);
        let path = db.path.clone();
        let thread = std::thread::Builder::new()
            .name("storage".into())
            .spawn(move || {
                let mut db = db;
                while let Some(job) = rx.blocking_recv() {
                    job(&mut db);
                }
            })
            .map_err(|source| StorageError::Evidence { path, source })?;
        Ok((Self { jobs }, thread))
    }

    /// Runs `f` on the storage thread and returns its result.
    ///
    /// Cancel safety: if the future is dropped after the job was queued, the job still runs; only its result
    /// is lost.
    ///
    /// # Errors
    /// What `f` returns, or [`StorageError::Stopped`].
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Database) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            // The caller may have gone away; the work is done either way.
            let _ = reply.send(f(db));
        });
        self.jobs.send(job).await.map_err(|_| StorageError::Stopped)?;
        result.await.map_err(|_| StorageError::Stopped)?
    }
}

const MISSION_COLUMNS: &str = "id, drone_id, state, cells_json, plan_json, started_ms, updated_ms";

type MissionRow = (String, String, String, String, String, Option<i64>, i64);

fn mission_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MissionRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn decode_mission(
    (id, drone_id, state, cells, plan_json, started, updated): MissionRow,
) -> Result<MissionRecord, StorageError> {
    let decode = |source| StorageError::Decode { what: format!("mission {id}"), source };
    Ok(MissionRecord {
        state: serde_json::from_str(&state).map_err(decode)?,
        cells: serde_json::from_str(&cells).map_err(decode)?,
        id: id.clone(),
        drone_id,
        plan_json,
        started: started.map(from_ms),
        updated: from_ms(updated),
    })
}

/// Evidence images on disk: `dir/<capture id>/frame.jpg` and `crop-<n>.jpg`, pruned by age and total size.
#[derive(Debug, Clone)]
pub struct EvidenceStore {
    dir: PathBuf,
    retention: Duration,
    max_bytes: Option<u64>,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Capture folders removed.
    pub captures_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// Files written for one capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedEvidence {
    /// The full frame.
    pub frame: PathBuf,
    /// The crops, in the order given.
    pub crops: Vec<PathBuf>,
}

impl EvidenceStore {
    /// A store under `dir` (created on first save).
    pub fn new(dir: PathBuf, retention: Duration, max_bytes: Option<u64>) -> Self {
        Self { dir, retention, max_bytes }
    }

    /// Writes a capture's full frame and crops (JPEG bytes). Blocking: call it from a blocking thread.
    ///
    /// # Errors
    /// [`StorageError::InvalidId`] for an id that cannot name a folder, else I/O errors (disk full included).
    pub fn save(
        &self,
        capture_id: &str,
        frame_jpeg: &[u8],
        crops_jpeg: &[Vec<u8>],
    ) -> Result<SavedEvidence, StorageError> {
        let valid = !capture_id.is_empty()
            && capture_id != "."
            && capture_id != ".."
            && capture_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
        if !valid {
            return Err(StorageError::InvalidId(capture_id.to_owned()));
        }
        let folder = self.dir.join(capture_id);
        std::fs::create_dir_all(&folder).map_err(evidence_error(&folder))?;
        let frame = folder.join("frame.jpg");
        write_atomically(&frame, frame_jpeg).map_err(evidence_error(&frame))?;
        let mut crops = Vec::with_capacity(crops_jpeg.len());
        for (i, crop) in crops_jpeg.iter().enumerate() {
            let path = folder.join(format!("crop-{i}.jpg"));
            write_atomically(&path, crop).map_err(evidence_error(&path))?;
            crops.push(path);
        }
        Ok(SavedEvidence { frame, crops })
    }

    /// Checks that the folder takes a new file (creating it if needed), as the start-up check of the alarm.
    /// Blocking.
    ///
    /// # Errors
    /// The I/O error of creating the folder or writing and removing a small probe file (disk full included).
    pub fn check_writable(&self) -> Result<(), StorageError> {
        std::fs::create_dir_all(&self.dir).map_err(evidence_error(&self.dir))?;
        let probe = self.dir.join(".write-check");
        write_atomically(&probe, &[0; 4096]).map_err(evidence_error(&probe))?;
        std::fs::remove_file(&probe).map_err(evidence_error(&probe))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Deletes capture folders older than the retention, then the oldest ones until the total is under the size
    /// limit. Blocking.
    ///
    /// # Errors
    /// I/O errors listing or deleting.
    pub fn prune(&self, now: SystemTime) -> Result<PruneReport, StorageError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(PruneReport::default()),
            Err(error) => return Err(StorageError::Evidence { path: self.dir.clone(), source: error }),
        };
        let mut folders = Vec::new();
        for entry in entries {
            let entry = entry.map_err(evidence_error(&self.dir))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(evidence_error(&path))?;
            if !meta.is_dir() {
                continue;
            }
            let modified = meta.modified().map_err(evidence_error(&path))?;
            let bytes = folder_bytes(&path).map_err(evidence_error(&path))?;
            folders.push((modified, path, bytes));
        }
        folders.sort();
        let mut total: u64 = folders.iter().map(|f| f.2).sum();
        let mut report = PruneReport::default();
        for (modified, path, bytes) in folders {
            let expired = now.duration_since(modified).is_ok_and(|age| age >= self.retention);
            let over = self.max_bytes.is_some_and(|max| total > max);
            if !(expired || over) {
                continue;
            }
            std::fs::remove_dir_all(&path).map_err(evidence_error(&path))?;
            total = total.saturating_sub(bytes);
            report.captures_removed += 1;
            report.bytes_freed += bytes;
        }
        Ok(report)
    }
}

/// Maps an I/O error on `path` in the evidence folder to [`StorageError::Evidence`].
fn evidence_error(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_owned();
    move |source| StorageError::Evidence { path, source }
}

fn folder_bytes(path: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Writes through a temporary file and a rename, so a crash never leaves a half-written image; a failed write
/// (a full disk) removes its partial file, leaving the space and the folder as they were.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        // Best effort: the write's own error is the one to report.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hazard::{HazardKind, Position, ReviewStatus, Verdict};

    fn hazard(id: &str, open: bool, seen_s: u64) -> Hazard {
        Hazard {
            id: id.into(),
            kind: HazardKind::Fire,
            label: "fire".into(),
            confidence: 0.8,
            severity: "A".into(),
            position: Position::new(47.0, 8.0, 2.0),
            grid_cell: Some("c1".into()),
            address: None,
            first_seen: UNIX_EPOCH + Duration::from_secs(seen_s),
            last_seen: UNIX_EPOCH + Duration::from_secs(seen_s),
            detections: 1,
            drone_ids: vec!["d1".into()],
            mission_ids: vec![],
            capture_ids: vec![],
            image_url: None,
            crop_url: None,
            picture_score: None,
            model_sha256: None,
            review: ReviewStatus::Unreviewed,
            end_reason: (!open).then_some(crate::hazard::EndReason::Stale),
            tentative: false,
        }
    }

    fn msg(n: u32) -> OutboxMessage {
        OutboxMessage { topic: "patrol/hazards".into(), payload: format!("{{\"n\":{n}}}").into_bytes(), retain: false }
    }

    #[test]
    fn a_new_database_is_migrated_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("sub/patrol.sqlite")).unwrap();
        assert_eq!(db.schema_version().unwrap(), i64::try_from(MIGRATIONS.len()).unwrap());
        let mode: String = db.conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
        assert_eq!(mode, "wal");
        drop(db);
        // Reopening runs no migration twice.
        let db = Database::open(&dir.path().join("sub/patrol.sqlite")).unwrap();
        assert_eq!(db.counters().unwrap(), Counters { next_hazard: 1, next_event: 1 });
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(Database::open(&path).unwrap());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(Database::open(&path), Err(StorageError::NewerSchema { found: 99, .. })));
    }

    #[test]
    fn hazard_changes_outbox_and_counters_commit_together() {
        let mut db = Database::open_in_memory().unwrap();
        let ids = db
            .commit_changes(
                &[hazard("h1", true, 10), hazard("h2", false, 5)],
                &[msg(1), msg(2)],
                Counters { next_hazard: 3, next_event: 3 },
            )
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ids[0] < ids[1]);
        assert_eq!(db.open_hazards().unwrap().iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["h1"]);
        assert_eq!(db.hazard("h2").unwrap().unwrap(), hazard("h2", false, 5));
        assert_eq!(db.counters().unwrap(), Counters { next_hazard: 3, next_event: 3 });
        // Counters never go backwards.
        db.commit_changes(&[], &[], Counters { next_hazard: 2, next_event: 9 }).unwrap();
        assert_eq!(db.counters().unwrap(), Counters { next_hazard: 3, next_event: 9 });
        // An update replaces the stored hazard.
        db.commit_changes(&[hazard("h1", false, 20)], &[], db.counters().unwrap()).unwrap();
        assert!(db.open_hazards().unwrap().is_empty());
        assert_eq!(db.recent_hazards(10).unwrap().len(), 2);
    }

    #[test]
    fn outbox_keeps_order_until_removed_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut db = Database::open(&path).unwrap();
        let ids = db.outbox_append(&[msg(1), msg(2), msg(3)]).unwrap();
        db.outbox_remove(ids[1]).unwrap();
        db.outbox_remove(ids[1]).unwrap();
        // Dropped without any explicit flush or close, as after SIGKILL the file is all there is.
        std::mem::forget(db);
        let db = Database::open(&path).unwrap();
        let pending = db.outbox_pending(0, 10).unwrap();
        assert_eq!(pending.iter().map(|e| e.message.clone()).collect::<Vec<_>>(), vec![msg(1), msg(3)]);
        assert_eq!(db.outbox_pending(pending[0].id, 10).unwrap().len(), 1);
        assert_eq!(db.outbox_pending(0, 1).unwrap().len(), 1);
        assert_eq!(db.outbox_len().unwrap(), 2);
    }

    #[test]
    fn reviews_are_stored_with_their_message() {
        let mut db = Database::open_in_memory().unwrap();
        let review = ReviewEvent {
            event_id: "gs:e:5".into(),
            hazard_id: "h1".into(),
            verdict: Verdict::Confirmed,
            reviewer: "op".into(),
            comment: String::new(),
            at: UNIX_EPOCH + Duration::from_secs(100),
        };
        let counters = db.counters().unwrap();
        db.commit_changes_with_review(&[hazard("h1", true, 1)], Some(&review), &[msg(1)], counters).unwrap();
        assert_eq!(db.reviews("h1").unwrap(), vec![review.clone()]);
        let again = db.commit_changes_with_review(&[hazard("h1", false, 2)], Some(&review), &[msg(2)], counters);
        assert!(again.is_err(), "an event id is stored once");
        assert!(db.hazard("h1").unwrap().unwrap().is_open(), "the failed commit changed nothing");
        assert_eq!(db.outbox_len().unwrap(), 1, "the failed review left no message behind");
    }

    #[test]
    fn vehicles_missions_captures_and_detections_round_trip() {
        let mut db = Database::open_in_memory().unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1000);
        db.upsert_vehicle(&VehicleRecord { id: "d1".into(), autopilot: "px4".into(), last_seen: t }).unwrap();
        db.upsert_vehicle(&VehicleRecord { id: "d1".into(), autopilot: "ardupilot".into(), last_seen: t }).unwrap();
        assert_eq!(db.vehicles().unwrap()[0].autopilot, "ardupilot");
        let mission = MissionRecord {
            id: "m1".into(),
            drone_id: "d1".into(),
            state: MissionState::Running,
            cells: vec!["c1".into()],
            plan_json: "{}".into(),
            started: Some(t),
            updated: t,
        };
        db.upsert_mission(&mission).unwrap();
        assert_eq!(db.mission("m1").unwrap().unwrap(), mission);
        assert_eq!(db.mission("nope").unwrap(), None);
        assert_eq!(db.missions().unwrap(), std::slice::from_ref(&mission));
        let detection = DetectionRecord {
            capture_id: "cap1".into(),
            label: "fire".into(),
            confidence: 0.9,
            box_px: [1.0, 2.0, 3.0, 4.0],
            hazard_id: Some("h1".into()),
        };
        assert!(db.insert_detections(std::slice::from_ref(&detection)).is_err(), "needs its capture");
        db.insert_capture(&CaptureRecord {
            id: "cap1".into(),
            drone_id: "d1".into(),
            mission_id: Some("m1".into()),
            taken: t,
            pose_json: "{}".into(),
            image_path: None,
        })
        .unwrap();
        db.insert_detections(std::slice::from_ref(&detection)).unwrap();
        assert_eq!(db.detections("cap1").unwrap(), vec![detection]);
        let capture = db.capture("cap1").unwrap().unwrap();
        assert_eq!((capture.drone_id.as_str(), capture.mission_id.as_deref(), capture.taken), ("d1", Some("m1"), t));
        assert_eq!(db.capture("cap2").unwrap(), None);
    }

    #[tokio::test]
    async fn the_handle_runs_work_on_the_storage_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, thread) = StorageHandle::open(&dir.path().join("db.sqlite")).unwrap();
        let ids = handle.call(|db| db.outbox_append(&[msg(1)])).await.unwrap();
        let name = handle.call(|_| Ok(std::thread::current().name().map(str::to_owned))).await.unwrap();
        assert_eq!(name.as_deref(), Some("storage"));
        let pending = handle.call(|db| db.outbox_pending(0, 10)).await.unwrap();
        assert_eq!(pending[0].id, ids[0]);
        drop(handle);
        thread.join().unwrap();
    }

    #[test]
    fn evidence_is_saved_and_pruned_by_age_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::new(dir.path().join("evidence"), Duration::from_secs(3600), Some(250));
        let saved = store.save("cap-1", &[1; 100], &[vec![2; 50]]).unwrap();
        assert_eq!(std::fs::read(&saved.frame).unwrap(), vec![1; 100]);
        assert_eq!(std::fs::read(&saved.crops[0]).unwrap(), vec![2; 50]);
        store.save("cap-2", &[1; 100], &[]).unwrap();
        // 250 bytes in all: within the limit and young.
        assert_eq!(store.prune(SystemTime::now()).unwrap(), PruneReport::default());
        std::thread::sleep(Duration::from_millis(20)); // distinct modification times
        store.save("cap-3", &[1; 100], &[]).unwrap();
        let report = store.prune(SystemTime::now()).unwrap();
        assert_eq!(report, PruneReport { captures_removed: 1, bytes_freed: 150 });
        assert!(!dir.path().join("evidence/cap-1").exists(), "the oldest goes first");
        // Two hours later everything is past the one-hour retention.
        let report = store.prune(SystemTime::now() + Duration::from_secs(7200)).unwrap();
        assert_eq!(report.captures_removed, 2);
    }

    #[test]
    fn evidence_ids_cannot_escape_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::new(dir.path().to_owned(), Duration::from_secs(3600), None);
        for bad in ["", "..", "../x", "a/b", "a b"] {
            assert!(matches!(store.save(bad, &[], &[]), Err(StorageError::InvalidId(_))), "{bad}");
        }
        assert!(store.prune(SystemTime::now()).is_ok());
        let missing = EvidenceStore::new(dir.path().join("none"), Duration::from_secs(1), None);
        assert_eq!(missing.prune(SystemTime::now()).unwrap(), PruneReport::default());
    }
}
