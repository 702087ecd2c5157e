//! What a store keeps and how it is asked for: records, statuses, queries, retention.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::EventId;
use crate::timestamp::Timestamp;

/// Where a stored event is in its life.
///
/// ```
/// use eventbus_runtime::Status;
/// assert_eq!("processed".parse::<Status>().unwrap(), Status::Processed);
/// assert_eq!(Status::Failed.as_str(), "failed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored; its dispatch has not finished (or the process died during it). Recovery
    /// dispatches it again.
    Pending,
    /// Every handler succeeded.
    Processed,
    /// At least one handler gave up on it: its failure went to the dead-letter queue (where a
    /// SQLite dead-letter queue records the event's sequence number). Not dispatched again by
    /// recovery, never compacted.
    Failed,
}

impl Status {
    /// `pending`, `processed` or `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processed => "processed",
            Status::Failed => "failed",
        }
    }

    /// Whether every handler succeeded.
    pub const fn is_processed(self) -> bool {
        matches!(self, Status::Processed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Status, String> {
        match text {
            "pending" => Ok(Status::Pending),
            "processed" => Ok(Status::Processed),
            "failed" => Ok(Status::Failed),
            other => Err(format!(
                "unknown status `{other}` (expected pending, processed or failed)"
            )),
        }
    }
}

/// An event to append, as [`EventStore::append`](crate::EventStore::append) receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEvent<'a> {
    /// Its id.
    pub id: EventId,
    /// The event's manifest name.
    pub event: &'a str,
    /// When it was emitted.
    pub time: Timestamp,
    /// The payload as JSON text (`null` for an event without payload).
    pub payload: &'a str,
    /// The manifest's `package`.
    pub package: &'a str,
    /// The manifest's `version`.
    pub manifest_version: u32,
    /// The manifest's fingerprint (see [`ManifestMeta::fingerprint`](crate::ManifestMeta)).
    pub fingerprint: &'a str,
}

/// Where an appended event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Appended {
    /// Its sequence number.
    pub sequence: u64,
    /// Its id (as given).
    pub id: EventId,
}

/// One stored event, as the audit trail shows it. `Serialize`, so it prints as JSON:
///
/// ```
/// use eventbus_runtime::{EventId, Status, StoredEvent, Timestamp};
///
/// let record = StoredEvent {
///     sequence: 42,
///     id: "0191d3a2-7c4e-4b8a-9f3e-2a1b0c9d8e7f".parse().unwrap(),
///     event: "ping".into(),
///     time: Timestamp::from_millis(1_700_000_000_000),
///     payload: serde_json::json!(7),
///     package: "demo".into(),
///     manifest_version: 1,
///     fingerprint: "0123456789abcdef".into(),
///     status: Status::Processed,
/// };
/// assert_eq!(record.decode::<u32>().unwrap().payload, 7);
/// assert!(serde_json::to_string(&record).unwrap().starts_with(r#"{"sequence":42,"id":"0191d3a2-"#));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Its sequence number: assigned at append, increasing by one per event.
    pub sequence: u64,
    /// Its id.
    pub id: EventId,
    /// The event's manifest name.
    pub event: String,
    /// When it was emitted (wall clock of the emitting process).
    pub time: Timestamp,
    /// The payload as JSON, as it was written (`null` for an event without payload).
    pub payload: Value,
    /// The `package` of the manifest that wrote it.
    pub package: String,
    /// The `version` of the manifest that wrote it.
    pub manifest_version: u32,
    /// The fingerprint of the manifest that wrote it.
    pub fingerprint: String,
    /// Its status.
    pub status: Status,
}

impl StoredEvent {
    /// The record with its payload as `T`. Fails, naming the sequence number, when the stored
    /// JSON no longer fits `T` (the manifest changed since it was written).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<Record<T>, DecodeError> {
        match T::deserialize(&self.payload) {
            Ok(payload) => Ok(Record {
                sequence: self.sequence,
                id: self.id,
                time: self.time,
                payload,
                status: self.status,
            }),
            Err(error) => Err(DecodeError {
                sequence: self.sequence,
                event: self.event.clone(),
                message: error.to_string(),
            }),
        }
    }
}

/// A stored event with its typed payload, from [`Event::records`](crate::Event::records) or
/// [`StoredEvent::decode`].
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    /// Its sequence number.
    pub sequence: u64,
    /// Its id.
    pub id: EventId,
    /// When it was emitted.
    pub time: Timestamp,
    /// The payload.
    pub payload: T,
    /// Its status.
    pub status: Status,
}

/// Typed records of one event: those that fit the current payload type, and those that no
/// longer do (each with its sequence number).
#[derive(Debug, Clone, PartialEq)]
pub struct Records<T> {
    /// The records that decoded, in the query's order.
    pub records: Vec<Record<T>>,
    /// The records whose payload does not fit the current type.
    pub unreadable: Vec<DecodeError>,
}

/// A stored payload that does not fit the event's current payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The record's sequence number.
    pub sequence: u64,
    /// The event's name.
    pub event: String,
    /// serde's message.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stored event #{} (`{}`) does not fit the current payload type: {}",
            self.sequence, self.event, self.message
        )
    }
}

impl std::error::Error for DecodeError {}

/// The order of query results, by sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Order {
    /// Oldest first (the default).
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// A lower bound of a query: a sequence number or a time, both inclusive.
///
/// [`Since::parse`] reads what the CLI's `--since` takes:
///
/// ```
/// use eventbus_runtime::{Since, Timestamp};
///
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// assert_eq!(Since::parse("42", now), Ok(Since::Sequence(42)));
/// assert_eq!(Since::parse("1h", now), Ok(Since::Time(Timestamp::from_millis(1_700_000_000_000 - 3_600_000))));
/// assert_eq!(
///     Since::parse("2023-11-14T22:13:20.123Z", now),
///     Ok(Since::Time(Timestamp::from_millis(1_700_000_000_123)))
/// );
/// assert!(Since::parse("yesterday", now).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Since {
    /// Events with this sequence number or a higher one.
    Sequence(u64),
    /// Events emitted at this time or later.
    Time(Timestamp),
}

impl Since {
    /// Parses a sequence number (`42`), an age relative to `now` (`30s`, `15m`, `1h`, `7d`,
    /// `500ms`) or an RFC 3339 time (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`).
    pub fn parse(text: &str, now: Timestamp) -> Result<Since, String> {
        let text = text.trim();
        if let Ok(sequence) = text.parse::<u64>() {
            return Ok(Since::Sequence(sequence));
        }
        if let Some(age) = parse_age(text) {
            let millis = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            return Ok(Since::Time(Timestamp::from_millis(
                now.as_millis().saturating_sub(millis),
            )));
        }
        if let Some(time) = parse_rfc3339(text) {
            return Ok(Since::Time(time));
        }
        Err(format!(
            "`{text}` is not a sequence number (42), an age (30s, 15m, 1h, 7d) or an RFC 3339 \
             time (2024-05-01T12:00:00Z)"
        ))
    }
}

/// `500ms`, `30s`, `15m`, `1h`, `7d`.
fn parse_age(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(number.checked_mul(millis)?))
}

/// `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`.
fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &fraction[..digits.min(3)];
        millis = kept.parse::<i64>().ok()? * 10_i64.pow(3 - kept.len() as u32);
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let rb = rest.as_bytes();
            if rest.len() != 6 || rb[3] != b':' {
                return None;
            }
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(Timestamp::from_millis(seconds * 1_000 + millis))
}

/// What to read from a store: filters, a limit and an order. All filters are optional and
/// combine with "and".
///
/// ```
/// use eventbus_runtime::{Order, Query, Since, Status};
///
/// let query = Query::new()
///     .event("packageInstall")
///     .event("packageRemove")
///     .since(Since::Sequence(100))
///     .status(Status::Pending)
///     .order(Order::Desc)
///     .limit(20);
/// assert_eq!(query.events, ["packageInstall", "packageRemove"]);
/// assert_eq!(query.limit, Some(20));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Query {
    /// Only these events (by manifest name); all when empty.
    pub events: Vec<String>,
    /// Only events with at least this sequence number.
    pub from_sequence: Option<u64>,
    /// Only events with at most this sequence number.
    pub to_sequence: Option<u64>,
    /// Only events emitted at this time or later.
    pub from_time: Option<Timestamp>,
    /// Only events emitted before this time.
    pub to_time: Option<Timestamp>,
    /// Only events with this status.
    pub status: Option<Status>,
    /// At most this many events.
    pub limit: Option<usize>,
    /// By sequence number, ascending (default) or descending.
    pub order: Order,
}

impl Query {
    /// Every event, oldest first.
    pub fn new() -> Query {
        Query::default()
    }

    /// Adds an event name to select (several calls select several events).
    pub fn event(mut self, name: impl Into<String>) -> Query {
        self.events.push(name.into());
        self
    }

    /// Adds event names to select.
    pub fn events<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Query {
        self.events.extend(names.into_iter().map(Into::into));
        self
    }

    /// Starts at a sequence number or a time (inclusive).
    pub fn since(self, since: Since) -> Query {
        match since {
            Since::Sequence(sequence) => self.from_sequence(sequence),
            Since::Time(time) => self.from_time(time),
        }
    }

    /// Only events with at least this sequence number.
    pub fn from_sequence(mut self, sequence: u64) -> Query {
        self.from_sequence = Some(sequence);
        self
    }

    /// Only events after this sequence number: to resume after the last one seen.
    pub fn after(self, sequence: u64) -> Query {
        self.from_sequence(sequence.saturating_add(1))
    }

    /// Only events with at most this sequence number.
    pub fn to_sequence(mut self, sequence: u64) -> Query {
        self.to_sequence = Some(sequence);
        self
    }

    /// Only events emitted at `time` or later.
    pub fn from_time(mut self, time: Timestamp) -> Query {
        self.from_time = Some(time);
        self
    }

    /// Only events emitted before `time`.
    pub fn to_time(mut self, time: Timestamp) -> Query {
        self.to_time = Some(time);
        self
    }

    /// Only events with this status.
    pub fn status(mut self, status: Status) -> Query {
        self.status = Some(status);
        self
    }

    /// At most `limit` events.
    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = Some(limit);
        self
    }

    /// The order, by sequence number.
    pub fn order(mut self, order: Order) -> Query {
        self.order = order;
        self
    }
}

/// How long processed events are kept, for [`EventStore::compact`](crate::EventStore::compact).
/// Both limits apply; an event goes when either says so. Pending and failed events are always
/// kept, and so are dead letters.
///
/// ```
/// use eventbus_runtime::Retention;
/// use std::time::Duration;
///
/// // Keep 30 days, and at most the newest 100 000 events.
/// let retention = Retention::new()
///     .max_age(Duration::from_secs(30 * 86_400))
///     .max_count(100_000);
/// assert_eq!(retention.max_count, Some(100_000));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Processed events emitted longer ago than this are removed.
    pub max_age: Option<Duration>,
    /// Processed events older than the newest `max_count` events (counting every status) are
    /// removed.
    pub max_count: Option<u64>,
}

impl Retention {
    /// Keeps everything.
    pub fn new() -> Retention {
        Retention::default()
    }

    /// Removes processed events emitted longer ago than `age`.
    pub fn max_age(mut self, age: Duration) -> Retention {
        self.max_age = Some(age);
        self
    }

    /// Removes processed events older than the newest `count`.
    pub fn max_count(mut self, count: u64) -> Retention {
        self.max_count = Some(count);
        self
    }
}

/// What [`EventStore::compact`](crate::EventStore::compact) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Processed events removed.
    pub removed: u64,
}
