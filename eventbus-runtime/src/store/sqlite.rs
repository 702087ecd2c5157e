//! `SqliteStore`: the embedded event store, one SQLite file in WAL mode.

use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetterStore, Pushed, StoreError};
use crate::store::record::{
    Appended, Compacted, NewEvent, Order, Query, Retention, Status, StoredEvent,
};
use crate::store::{EventId, EventStore};
use crate::timestamp::Timestamp;

/// `PRAGMA application_id` of an eventbus store ("EVBS").
const APPLICATION_ID: i64 = 0x4556_4253;

/// The schema, one migration per version. A migration runs in one transaction with the row
/// that records it in `eventbus_schema`; released migrations are never edited, only added.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "events, counters, dead letters",
    "CREATE TABLE events (
        sequence         INTEGER PRIMARY KEY,
        id               TEXT    NOT NULL UNIQUE,
        event            TEXT    NOT NULL,
        time             INTEGER NOT NULL,
        payload          TEXT    NOT NULL,
        package          TEXT    NOT NULL,
        manifest_version INTEGER NOT NULL,
        fingerprint      TEXT    NOT NULL,
        status           TEXT    NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'processed', 'failed'))
    );
    CREATE INDEX events_by_event ON events (event, sequence);
    CREATE INDEX events_by_time ON events (time);
    CREATE INDEX events_unprocessed ON events (sequence) WHERE status <> 'processed';
    CREATE TABLE counters (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO counters (name, value) VALUES ('last_sequence', 0);
    CREATE TABLE dead_letters (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        sequence   INTEGER,
        event      TEXT    NOT NULL,
        handler    TEXT,
        handler_id INTEGER,
        reason     TEXT    NOT NULL,
        error      TEXT    NOT NULL,
        attempts   INTEGER NOT NULL,
        batch      INTEGER NOT NULL,
        payload    TEXT    NOT NULL,
        at         INTEGER NOT NULL
    );
    CREATE INDEX dead_letters_by_sequence ON dead_letters (sequence);",
)];

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Settings of [`SqliteStore::open_with`].
///
/// ```
/// use eventbus_runtime::SqliteOptions;
/// use std::time::Duration;
///
/// let options = SqliteOptions::new()
///     .busy_timeout(Duration::from_secs(10))
///     .max_size(512 * 1024 * 1024);
/// assert_eq!(options.max_size, Some(512 * 1024 * 1024));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How long a statement waits for a lock held by another connection (another process on
    /// the same file) before failing with "database is locked". Default 5 s.
    pub busy_timeout: Duration,
    /// The largest the database file may grow, in bytes (`PRAGMA max_page_count`); appends
    /// beyond it fail with "database or disk is full" and store nothing. Default: no limit.
    pub max_size: Option<u64>,
    /// Open without writing anything (no schema creation; appends fail). For readers such as
    /// `eventbus store query`.
    pub read_only: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            max_size: None,
            read_only: false,
        }
    }
}

impl SqliteOptions {
    /// The defaults.
    ///
    /// ```
    /// use eventbus_runtime::SqliteOptions;
    /// use std::time::Duration;
    ///
    /// let options = SqliteOptions::new();
    /// assert_eq!(options, SqliteOptions::default());
    /// assert_eq!((options.busy_timeout, options.max_size, options.read_only), (Duration::from_secs(5), None, false));
    /// ```
    pub fn new() -> Self {
        SqliteOptions::default()
    }

    /// Sets [`busy_timeout`](Self::busy_timeout).
    ///
    /// ```
    /// use eventbus_runtime::{SqliteOptions, SqliteStore};
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = SqliteOptions::new().busy_timeout(Duration::from_secs(30));
    /// assert_eq!(options.busy_timeout, Duration::from_secs(30));
    /// let store = SqliteStore::open_with(dir.path().join("events.db"), options)?;
    /// # drop(store);
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`max_size`](Self::max_size).
    ///
    /// ```
    /// use eventbus_runtime::{EventId, EventStore, NewEvent, SqliteOptions, SqliteStore, Timestamp};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open_with(dir.path().join("events.db"), SqliteOptions::new().max_size(256 * 1024))?;
    /// let huge = format!("\"{}\"", "x".repeat(1024 * 1024));
    /// let event = NewEvent {
    ///     id: EventId::new_v4(), event: "upload", time: Timestamp::now(), payload: &huge,
    ///     package: "demo", manifest_version: 1, fingerprint: "0123456789abcdef",
    /// };
    /// let err = store.append(&[event]).unwrap_err();
    /// assert!(err.to_string().contains("full"), "{err}");
    /// assert_eq!(store.last_sequence()?, 0); // nothing stored
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// Sets [`read_only`](Self::read_only).
    ///
    /// ```
    /// use eventbus_runtime::{EventId, EventStore, NewEvent, Query, SqliteOptions, SqliteStore, Timestamp};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("events.db");
    /// let writer = SqliteStore::open(&path)?;
    /// let event = NewEvent {
    ///     id: EventId::new_v4(), event: "ping", time: Timestamp::now(), payload: "7",
    ///     package: "demo", manifest_version: 1, fingerprint: "0123456789abcdef",
    /// };
    /// writer.append(&[event])?;
    ///
    /// let reader = SqliteStore::open_with(&path, SqliteOptions::new().read_only(true))?;
    /// assert_eq!(reader.query(&Query::new())?.len(), 1);
    /// assert!(reader.append(&[event]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
}

/// A SQLite error with what the store was doing.
#[derive(Debug)]
struct SqliteError {
    context: String,
    source: Option<rusqlite::Error>,
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl Error for SqliteError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// The embedded [`EventStore`]: one SQLite file (bundled SQLite) in WAL mode with
/// `synchronous=FULL`, so an appended event survives a crash of the process **and** a power
/// loss. It also keeps the bus's dead-letter queue (it implements [`DeadLetterStore`]).
///
/// Cloning is cheap; clones share the connections. Two connections are open: one writes
/// (appends, status updates, dead letters, compaction), one reads (queries), so readers never
/// wait for a commit's fsync. Other processes may read the file at the same time (the CLI
/// does); one process at a time should write it.
///
/// The schema is versioned (table `eventbus_schema`, one row per applied migration) and
/// upgraded on open; a file written by a newer eventbus is refused rather than misread. See
/// `docs/persistence.md` for the tables.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, EventStore, PersistedEvent, Query, SqliteStore, Status};
///
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("events.db"))?;
/// let core: BusCore = BusCore::builder(manifest).event_store(store.clone()).build()?;
/// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
/// ping.on(|n| println!("ping {n}"));
///
/// let receipt = ping.emit(7)?; // durable before the handler ran
/// core.flush_event_store()?;
/// let stored = store.query(&Query::new().event("ping"))?;
/// assert_eq!(stored[0].sequence, receipt.sequence().unwrap());
/// assert_eq!(stored[0].status, Status::Processed);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` for a read-only store.
    writer: Option<Mutex<Connection>>,
    reader: Mutex<Connection>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("read_only", &self.inner.writer.is_none())
            .finish()
    }
}

fn lock(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock leaves no transaction open (rusqlite rolls back on drop).
    connection.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SqliteStore {
    /// Opens (creating it if needed) the store at `path` with the default
    /// [`SqliteOptions`]. The directory must exist.
    ///
    /// ```
    /// use eventbus_runtime::{EventStore, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("events.db"))?;
    /// assert_eq!(store.path(), dir.path().join("events.db"));
    /// assert_eq!(store.schema_version()?, 1);
    /// assert_eq!(store.last_sequence()?, 0);
    ///
    /// // Not an eventbus store: refused rather than misread.
    /// std::fs::write(dir.path().join("notes.txt"), "hello")?;
    /// assert!(SqliteStore::open(dir.path().join("notes.txt")).is_err());
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The file cannot be opened or created, is not a SQLite database or not an eventbus
    /// store, was written by a newer eventbus, or WAL mode cannot be enabled.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SqliteOptions::default())
    }

    /// Opens an existing store for reading only.
    ///
    /// ```
    /// use eventbus_runtime::{EventStore, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("events.db");
    /// assert!(SqliteStore::open_read_only(&path).is_err()); // does not create it
    ///
    /// SqliteStore::open(&path)?;
    /// let reader = SqliteStore::open_read_only(&path)?;
    /// assert_eq!(reader.last_sequence()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SqliteOptions::default().read_only(true))
    }

    /// Opens the store at `path` with `options`.
    ///
    /// ```
    /// use eventbus_runtime::{SqliteOptions, SqliteStore};
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = SqliteOptions::new()
    ///     .busy_timeout(Duration::from_secs(10))
    ///     .max_size(1 << 30);
    /// let store = SqliteStore::open_with(dir.path().join("events.db"), options)?;
    /// store.integrity_check()?;
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        let fail = |what: &str| {
            let context = format!("{what} `{shown}`");
            move |source| -> StoreError {
                Box::new(SqliteError {
                    context,
                    source: Some(source),
                })
            }
        };
        let writer = if options.read_only {
            None
        } else {
            let connection = Connection::open(&path).map_err(fail("cannot open"))?;
            connection
                .busy_timeout(options.busy_timeout)
                .map_err(fail("cannot configure"))?;
            check_application(&connection, &shown)?;
            let mode: String = connection
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(fail("cannot enable WAL mode on"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Box::new(SqliteError {
                    context: format!(
                        "cannot enable WAL mode on `{shown}` (the journal mode stayed `{mode}`)"
                    ),
                    source: None,
                }));
            }
            // FULL: in WAL mode every commit syncs the WAL, so a committed event survives a
            // power loss, not only a crash of the process (NORMAL would not).
            connection
                .pragma_update(None, "synchronous", "FULL")
                .map_err(fail("cannot configure"))?;
            migrate(&connection, &shown)?;
            if let Some(max_size) = options.max_size {
                let page_size: i64 = connection
                    .pragma_query_value(None, "page_size", |row| row.get(0))
                    .map_err(fail("cannot configure"))?;
                let pages = (max_size / page_size.max(1) as u64).max(1);
                connection
                    .pragma_update(None, "max_page_count", pages as i64)
                    .map_err(fail("cannot configure"))?;
            }
            Some(Mutex::new(connection))
        };
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(fail("cannot open"))?;
        reader
            .busy_timeout(options.busy_timeout)
            .map_err(fail("cannot configure"))?;
        if writer.is_none() {
            check_application(&reader, &shown)?;
            let version = schema_version(&reader).map_err(fail("cannot read the schema of"))?;
            if version == 0 {
                return Err(Box::new(SqliteError {
                    context: format!("`{shown}` is not an eventbus store (no schema)"),
                    source: None,
                }));
            }
            check_version(version, &shown)?;
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer,
                reader: Mutex::new(reader),
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version of the file (the latest applied migration).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema_version(&lock(&self.inner.reader)).map_err(|e| self.error("cannot read", e))
    }

    /// Runs `PRAGMA integrity_check`: `Ok` when SQLite finds the file sound, else an error
    /// listing what it found.
    ///
    /// ```
    /// use eventbus_runtime::SqliteStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("events.db"))?;
    /// assert!(store.integrity_check().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let reader = lock(&self.inner.reader);
        let mut statement = reader
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.error("cannot check", e))?;
        let problems: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.error("cannot check", e))?;
        if problems == ["ok"] {
            Ok(())
        } else {
            Err(self.message(format!("integrity check failed: {}", problems.join("; "))))
        }
    }

    /// The sequence number of the stored event a dead letter came from, if the letter was
    /// created while that event was being delivered (`Ok(None)` also when there is no such
    /// letter).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, PersistedEvent, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("events.db"))?;
    /// // The store also keeps the bus's dead letters.
    /// let core: BusCore = BusCore::builder(manifest).event_store(store.clone()).build()?;
    /// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("down"));
    ///
    /// let receipt = ping.emit(7)?;
    /// let letter = core.dead_letters().list()?[0].id;
    /// assert_eq!(store.dead_letter_sequence(letter)?, receipt.sequence());
    /// assert_eq!(store.dead_letter_sequence(letter + 1)?, None);
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn dead_letter_sequence(&self, letter: u64) -> Result<Option<u64>, StoreError> {
        let reader = lock(&self.inner.reader);
        let sequence: Option<Option<i64>> = reader
            .query_row(
                "SELECT sequence FROM dead_letters WHERE id = ?1",
                [letter as i64],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.error("cannot read dead letters from", e))?;
        Ok(sequence.flatten().map(|s| s as u64))
    }

    fn error(&self, what: &str, source: rusqlite::Error) -> StoreError {
        Box::new(SqliteError {
            context: format!("{what} `{}`", self.inner.path.display()),
            source: Some(source),
        })
    }

    fn message(&self, message: String) -> StoreError {
        Box::new(SqliteError {
            context: format!("`{}`: {message}", self.inner.path.display()),
            source: None,
        })
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        match &self.inner.writer {
            Some(writer) => Ok(lock(writer)),
            None => Err(self.message("the store was opened read-only".into())),
        }
    }
}

fn check_application(connection: &Connection, shown: &str) -> Result<(), StoreError> {
    let not_ours = |context: String, source: Option<rusqlite::Error>| -> StoreError {
        Box::new(SqliteError { context, source })
    };
    let id: i64 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| not_ours(format!("`{shown}` is not a SQLite database"), Some(e)))?;
    if id == APPLICATION_ID {
        return Ok(());
    }
    let tables: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| not_ours(format!("`{shown}` is not a SQLite database"), Some(e)))?;
    if id != 0 || tables > 0 {
        return Err(not_ours(
            format!("`{shown}` is a SQLite database of another application, not an eventbus store"),
            None,
        ));
    }
    Ok(())
}

fn schema_version(connection: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = connection.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'eventbus_schema'",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    connection.query_row(
        "SELECT coalesce(max(version), 0) FROM eventbus_schema",
        [],
        |row| row.get(0),
    )
}

fn check_version(version: i64, shown: &str) -> Result<(), StoreError> {
    if version > SCHEMA_VERSION {
        return Err(Box::new(SqliteError {
            context: format!(
                "`{shown}` has schema version {version}, newer than this eventbus reads \
                 ({SCHEMA_VERSION}); upgrade eventbus"
            ),
            source: None,
        }));
    }
    Ok(())
}

fn migrate(connection: &Connection, shown: &str) -> Result<(), StoreError> {
    let fail = |source| -> StoreError {
        Box::new(SqliteError {
            context: format!("cannot create or upgrade the schema of `{shown}`"),
            source: Some(source),
        })
    };
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS eventbus_schema (
                version     INTEGER PRIMARY KEY,
                description TEXT    NOT NULL,
                applied_at  INTEGER NOT NULL
            )",
        )
        .map_err(fail)?;
    for &(version, description, sql) in MIGRATIONS {
        // IMMEDIATE: two processes opening a new file at once do not both migrate it.
        connection.execute_batch("BEGIN IMMEDIATE").map_err(fail)?;
        let result = (|| -> Result<(), StoreError> {
            let current = schema_version(connection).map_err(fail)?;
            check_version(current, shown)?;
            if current >= version {
                return Ok(());
            }
            connection.execute_batch(sql).map_err(fail)?;
            connection
                .execute(
                    "INSERT INTO eventbus_schema (version, description, applied_at)
                     VALUES (?1, ?2, ?3)",
                    params![version, description, Timestamp::now().as_millis()],
                )
                .map_err(fail)?;
            connection
                .pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(fail)?;
            Ok(())
        })();
        match result {
            Ok(()) => connection.execute_batch("COMMIT").map_err(fail)?,
            Err(error) => {
                let _ = connection.execute_batch("ROLLBACK");
                return Err(error);
            }
        }
    }
    Ok(())
}

const COLUMNS: &str =
    "sequence, id, event, time, payload, package, manifest_version, fingerprint, status";

fn stored_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let text_error = |index: usize, error: String| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
    };
    let id: String = row.get(1)?;
    let payload: String = row.get(4)?;
    let status: String = row.get(8)?;
    Ok(StoredEvent {
        sequence: row.get::<_, i64>(0)? as u64,
        id: id
            .parse::<EventId>()
            .map_err(|e| text_error(1, e.to_string()))?,
        event: row.get(2)?,
        time: Timestamp::from_millis(row.get(3)?),
        payload: serde_json::from_str::<Value>(&payload)
            .map_err(|e| text_error(4, format!("stored payload is not JSON: {e}")))?,
        package: row.get(5)?,
        manifest_version: row.get::<_, i64>(6)? as u32,
        fingerprint: row.get(7)?,
        status: status.parse().map_err(|e| text_error(8, e))?,
    })
}

impl SqliteStore {
    /// Appends `events` after recording `updates`, in one transaction.
    fn write(
        &self,
        events: &[NewEvent<'_>],
        updates: &[(u64, Status)],
    ) -> Result<Vec<Appended>, StoreError> {
        let fail = |e| self.error(&format!("cannot append {} events to", events.len()), e);
        let mut writer = self.writer()?;
        // The sequence is assigned here, inside the write transaction, from a counter that is
        // updated in the same transaction: a failed append rolls both back (no gap), and
        // compaction never lowers it (no reuse).
        let transaction = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        update_statuses(&transaction, updates).map_err(fail)?;
        let last: i64 = transaction
            .query_row(
                "SELECT value FROM counters WHERE name = 'last_sequence'",
                [],
                |row| row.get(0),
            )
            .map_err(fail)?;
        let mut appended = Vec::with_capacity(events.len());
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO events (sequence, id, event, time, payload, package,
                                         manifest_version, fingerprint)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(fail)?;
            for (offset, event) in events.iter().enumerate() {
                let sequence = last + 1 + offset as i64;
                insert
                    .execute(params![
                        sequence,
                        event.id.to_string(),
                        event.event,
                        event.time.as_millis(),
                        event.payload,
                        event.package,
                        event.manifest_version,
                        event.fingerprint,
                    ])
                    .map_err(fail)?;
                appended.push(Appended {
                    sequence: sequence as u64,
                    id: event.id,
                });
            }
        }
        transaction
            .execute(
                "UPDATE counters SET value = ?1 WHERE name = 'last_sequence'",
                [last + events.len() as i64],
            )
            .map_err(fail)?;
        // `synchronous=FULL`: the commit returns once the WAL is on disk.
        transaction.commit().map_err(fail)?;
        Ok(appended)
    }
}

fn update_statuses(
    transaction: &rusqlite::Transaction<'_>,
    updates: &[(u64, Status)],
) -> rusqlite::Result<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let mut update = transaction.prepare("UPDATE events SET status = ?2 WHERE sequence = ?1")?;
    for (sequence, status) in updates {
        update.execute(params![*sequence as i64, status.as_str()])?;
    }
    Ok(())
}

/// The `WHERE` clause of `query`'s filters (without order and limit), with its values.
fn filter(query: &Query) -> (String, Vec<SqlValue>) {
    let mut sql = String::from("1 = 1");
    let mut values: Vec<SqlValue> = Vec::new();
    if !query.events.is_empty() {
        let marks = vec!["?"; query.events.len()].join(", ");
        sql.push_str(&format!(" AND event IN ({marks})"));
        values.extend(query.events.iter().map(|e| SqlValue::Text(e.clone())));
    }
    let bounds = [
        (
            "sequence >= ?",
            query.from_sequence.map(|s| s.min(i64::MAX as u64) as i64),
        ),
        (
            "sequence <= ?",
            query.to_sequence.map(|s| s.min(i64::MAX as u64) as i64),
        ),
        ("time >= ?", query.from_time.map(Timestamp::as_millis)),
        ("time < ?", query.to_time.map(Timestamp::as_millis)),
    ];
    for (condition, value) in bounds {
        if let Some(value) = value {
            sql.push_str(" AND ");
            sql.push_str(condition);
            values.push(SqlValue::Integer(value));
        }
    }
    if let Some(status) = query.status {
        // SQLite uses the partial index `events_unprocessed` only when the query repeats its
        // condition: recovery (and the pending count at build) then reads only what it needs.
        if status != Status::Processed {
            sql.push_str(" AND status <> 'processed'");
        }
        sql.push_str(" AND status = ?");
        values.push(SqlValue::Text(status.as_str().into()));
    }
    (sql, values)
}

impl EventStore for SqliteStore {
    fn append(&self, events: &[NewEvent<'_>]) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.write(events, &[])
    }

    /// One transaction, one sync for both.
    fn append_with_status(
        &self,
        events: &[NewEvent<'_>],
        updates: &[(u64, Status)],
    ) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            self.set_status(updates)?;
            return Ok(Vec::new());
        }
        self.write(events, updates)
    }

    fn set_status(&self, updates: &[(u64, Status)]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let fail = |e| self.error("cannot record event outcomes in", e);
        let mut writer = self.writer()?;
        // Outcomes need not be durable at once (a lost one means a second delivery, which
        // at-least-once allows): commit without syncing; the next append's sync (or `sync`)
        // makes them durable, since the WAL is written in order.
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        let result = writer.transaction().and_then(|transaction| {
            update_statuses(&transaction, updates)?;
            transaction.commit()
        });
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        result.map_err(fail)
    }

    fn query(&self, query: &Query) -> Result<Vec<StoredEvent>, StoreError> {
        let (filter, mut values) = filter(query);
        let mut sql = format!("SELECT {COLUMNS} FROM events WHERE {filter}");
        sql.push_str(match query.order {
            Order::Asc => " ORDER BY sequence ASC",
            Order::Desc => " ORDER BY sequence DESC",
        });
        if let Some(limit) = query.limit {
            sql.push_str(" LIMIT ?");
            values.push(SqlValue::Integer(limit.min(i64::MAX as usize) as i64));
        }
        let fail = |e| self.error("cannot query", e);
        let reader = lock(&self.inner.reader);
        let mut statement = reader.prepare(&sql).map_err(fail)?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(values), stored_event)
            .map_err(fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(fail)
    }

    /// `SELECT COUNT(*)`: no payload is read.
    fn count(&self, query: &Query) -> Result<u64, StoreError> {
        let (filter, values) = filter(query);
        let sql = format!("SELECT COUNT(*) FROM events WHERE {filter}");
        let reader = lock(&self.inner.reader);
        let count: i64 = reader
            .query_row(&sql, rusqlite::params_from_iter(values), |row| row.get(0))
            .map_err(|e| self.error("cannot count the events of", e))?;
        let count = count as u64;
        Ok(query.limit.map_or(count, |limit| count.min(limit as u64)))
    }

    fn last_sequence(&self) -> Result<u64, StoreError> {
        let reader = lock(&self.inner.reader);
        let last: i64 = reader
            .query_row(
                "SELECT value FROM counters WHERE name = 'last_sequence'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.error("cannot read", e))?;
        Ok(last as u64)
    }

    fn compact(&self, retention: &Retention) -> Result<Compacted, StoreError> {
        let fail = |e| self.error("cannot compact", e);
        let mut writer = self.writer()?;
        let transaction = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let mut removed = 0;
        if let Some(age) = retention.max_age {
            let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            let cutoff = Timestamp::now().as_millis().saturating_sub(age);
            removed += transaction
                .execute(
                    "DELETE FROM events WHERE status = 'processed' AND time < ?1",
                    [cutoff],
                )
                .map_err(fail)?;
        }
        if let Some(count) = retention.max_count {
            // The oldest sequence number the newest `count` events have.
            let oldest_kept: Option<i64> = if count == 0 {
                Some(i64::MAX)
            } else {
                transaction
                    .query_row(
                        "SELECT sequence FROM events ORDER BY sequence DESC LIMIT 1 OFFSET ?1",
                        [count.min(i64::MAX as u64) as i64 - 1],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(fail)?
            };
            if let Some(oldest_kept) = oldest_kept {
                removed += transaction
                    .execute(
                        "DELETE FROM events WHERE status = 'processed' AND sequence < ?1",
                        [oldest_kept],
                    )
                    .map_err(fail)?;
            }
        }
        transaction.commit().map_err(fail)?;
        Ok(Compacted {
            removed: removed as u64,
        })
    }

    fn sync(&self) -> Result<(), StoreError> {
        // A checkpoint syncs the WAL (holding every earlier commit) before copying it.
        let writer = self.writer()?;
        writer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(|e| self.error("cannot sync", e))
    }

    fn dead_letters(&self) -> Option<Box<dyn DeadLetterStore>> {
        Some(Box::new(self.clone()))
    }
}

fn dead_letter(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetter> {
    let conversion = |index: usize, error: String| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
    };
    let reason: String = row.get(4)?;
    let payload: String = row.get(8)?;
    Ok(DeadLetter {
        id: row.get::<_, i64>(0)? as u64,
        event: row.get(1)?,
        handler: row.get(2)?,
        handler_id: row.get::<_, Option<i64>>(3)?.map(|id| id as u64),
        reason: serde_json::from_value::<DeadLetterReason>(Value::String(reason))
            .map_err(|e| conversion(4, e.to_string()))?,
        error: row.get(5)?,
        attempts: row.get::<_, i64>(6)? as u32,
        batch: row.get(7)?,
        payload: serde_json::from_str(&payload).map_err(|e| conversion(8, e.to_string()))?,
        at: Timestamp::from_millis(row.get(9)?),
    })
}

const LETTER_COLUMNS: &str =
    "id, event, handler, handler_id, reason, error, attempts, batch, payload, at";

/// The dead-letter queue in the same file: unbounded (nothing is evicted), kept across
/// restarts, each letter linked to the stored event it came from (see
/// [`SqliteStore::dead_letter_sequence`]).
impl DeadLetterStore for SqliteStore {
    fn push(&self, letter: DeadLetter) -> Result<Pushed, StoreError> {
        let fail = |e| self.error("cannot store a dead letter in", e);
        let sequence = super::track::current_sequence(&letter.event).map(|s| s as i64);
        let payload = serde_json::to_string(&letter.payload)?;
        let writer = self.writer()?;
        writer
            .execute(
                "INSERT INTO dead_letters (sequence, event, handler, handler_id, reason, error,
                                           attempts, batch, payload, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    sequence,
                    letter.event,
                    letter.handler,
                    letter.handler_id.map(|id| id as i64),
                    letter.reason.as_str(),
                    letter.error,
                    letter.attempts,
                    letter.batch,
                    payload,
                    letter.at.as_millis(),
                ],
            )
            .map_err(fail)?;
        Ok(Pushed {
            id: writer.last_insert_rowid() as u64,
            evicted: Vec::new(),
        })
    }

    fn list(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let fail = |e| self.error("cannot read dead letters from", e);
        let reader = lock(&self.inner.reader);
        let mut statement = reader
            .prepare(&format!(
                "SELECT {LETTER_COLUMNS} FROM dead_letters ORDER BY id"
            ))
            .map_err(fail)?;
        let rows = statement.query_map([], dead_letter).map_err(fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(fail)
    }

    fn get(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        let reader = lock(&self.inner.reader);
        reader
            .query_row(
                &format!("SELECT {LETTER_COLUMNS} FROM dead_letters WHERE id = ?1"),
                [id as i64],
                dead_letter,
            )
            .optional()
            .map_err(|e| self.error("cannot read dead letters from", e))
    }

    fn remove(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        let fail = |e| self.error("cannot remove a dead letter from", e);
        let mut writer = self.writer()?;
        let transaction = writer.transaction().map_err(fail)?;
        let letter = transaction
            .query_row(
                &format!("SELECT {LETTER_COLUMNS} FROM dead_letters WHERE id = ?1"),
                [id as i64],
                dead_letter,
            )
            .optional()
            .map_err(fail)?;
        transaction
            .execute("DELETE FROM dead_letters WHERE id = ?1", [id as i64])
            .map_err(fail)?;
        transaction.commit().map_err(fail)?;
        Ok(letter)
    }

    fn len(&self) -> Result<usize, StoreError> {
        let reader = lock(&self.inner.reader);
        let count: i64 = reader
            .query_row("SELECT count(*) FROM dead_letters", [], |row| row.get(0))
            .map_err(|e| self.error("cannot read dead letters from", e))?;
        Ok(count as usize)
    }

    fn sequence(&self, id: u64) -> Result<Option<u64>, StoreError> {
        self.dead_letter_sequence(id)
    }

    fn linked(&self, sequence: u64) -> Result<usize, StoreError> {
        let reader = lock(&self.inner.reader);
        let count: i64 = reader
            .query_row(
                "SELECT count(*) FROM dead_letters WHERE sequence = ?1",
                [sequence.min(i64::MAX as u64) as i64],
                |row| row.get(0),
            )
            .map_err(|e| self.error("cannot read dead letters from", e))?;
        Ok(count as usize)
    }
}
