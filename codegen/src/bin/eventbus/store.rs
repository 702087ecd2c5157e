//! `eventbus store query|tail|compact`: the audit trail of a SQLite event store.
//!
//! The store is opened read-only for `query` and `tail`, so they are safe next to a running
//! service.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use eventbus_runtime::{
    EventStore, Order, Query, Retention, Since, SqliteStore, Status, StoredEvent, Timestamp,
};

use crate::Fatal;

/// `eventbus store …`.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// List stored events, oldest first (filters combine with "and").
    Query {
        #[command(flatten)]
        filter: Filter,
        /// Start at a sequence number (`1200`), an age (`30s`, `15m`, `1h`, `7d`) or an RFC
        /// 3339 time (`2024-05-01T12:00:00Z`); inclusive.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only events with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// At most this many events.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// By sequence number: `asc` (oldest first) or `desc`.
        #[arg(long, value_enum, default_value_t = OrderArg::Asc)]
        order: OrderArg,
        #[command(flatten)]
        output: Output,
    },
    /// The newest events, oldest of them first; `--follow` keeps printing new ones.
    Tail {
        #[command(flatten)]
        filter: Filter,
        /// How many events.
        #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
        lines: usize,
        /// Keep polling for new events until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
        /// How often `--follow` polls, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 500, requires = "follow")]
        interval: u64,
        #[command(flatten)]
        output: Output,
    },
    /// Remove processed events by age and/or count (pending and failed events and dead
    /// letters are always kept).
    Compact {
        /// The store (a SQLite file written by eventbus).
        #[arg(long, value_name = "PATH")]
        db: std::path::PathBuf,
        /// Remove processed events older than this (`30d`, `12h`).
        #[arg(long, value_name = "AGE")]
        max_age: Option<String>,
        /// Keep at most the newest N events (older processed ones are removed).
        #[arg(long, value_name = "N")]
        max_count: Option<u64>,
    },
}

/// Which store and which events.
#[derive(Args)]
pub struct Filter {
    /// The store (a SQLite file written by eventbus).
    #[arg(long, value_name = "PATH")]
    db: std::path::PathBuf,
    /// Only this event (repeat for several).
    #[arg(long = "event", value_name = "NAME")]
    events: Vec<String>,
}

/// How to print.
#[derive(Args)]
pub struct Output {
    /// `table` (readable, payloads shortened) or `json` (one full record per line).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OrderArg {
    Asc,
    Desc,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Pending,
    Processed,
    Failed,
}

impl From<StatusArg> for Status {
    fn from(status: StatusArg) -> Status {
        match status {
            StatusArg::Pending => Status::Pending,
            StatusArg::Processed => Status::Processed,
            StatusArg::Failed => Status::Failed,
        }
    }
}

/// The longest payload a table shows.
const PAYLOAD_WIDTH: usize = 80;

pub fn run(command: StoreCommand) -> Result<ExitCode, Fatal> {
    match command {
        StoreCommand::Query {
            filter,
            since,
            status,
            limit,
            order,
            output,
        } => {
            let store = open(&filter.db)?;
            let mut query = Query::new().events(filter.events);
            if let Some(since) = since {
                query = query.since(Since::parse(&since, Timestamp::now()).map_err(Fatal)?);
            }
            if let Some(status) = status {
                query = query.status(status.into());
            }
            if let Some(limit) = limit {
                query = query.limit(limit);
            }
            query = query.order(match order {
                OrderArg::Asc => Order::Asc,
                OrderArg::Desc => Order::Desc,
            });
            let records = read(&store, &filter.db, &query)?;
            print(&records, output.format, true);
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Tail {
            filter,
            lines,
            follow,
            interval,
            output,
        } => {
            let store = open(&filter.db)?;
            let query = Query::new()
                .events(filter.events)
                .order(Order::Desc)
                .limit(lines);
            let mut records = read(&store, &filter.db, &query)?;
            records.reverse();
            print(&records, output.format, true);
            if !follow {
                return Ok(ExitCode::SUCCESS);
            }
            let mut last = match records.last() {
                Some(record) => record.sequence,
                None => store.last_sequence().map_err(|e| Fatal(e.to_string()))?,
            };
            loop {
                std::thread::sleep(Duration::from_millis(interval.max(10)));
                let mut query = query.clone().after(last);
                query.limit = None;
                query.order = Order::Asc;
                let records = read(&store, &filter.db, &query)?;
                if let Some(record) = records.last() {
                    last = record.sequence;
                    print(&records, output.format, false);
                }
            }
        }
        StoreCommand::Compact {
            db,
            max_age,
            max_count,
        } => {
            if max_age.is_none() && max_count.is_none() {
                return Err(Fatal(
                    "nothing to do: give --max-age and/or --max-count".into(),
                ));
            }
            let mut retention = Retention::new();
            if let Some(age) = max_age {
                // An age counted back from 0 gives minus the age.
                let Ok(Since::Time(cutoff)) = Since::parse(&age, Timestamp::from_millis(0))
                    .map_err(drop)
                    .and_then(|s| match s {
                        Since::Time(t) if t.as_millis() <= 0 => Ok(Since::Time(t)),
                        _ => Err(()),
                    })
                else {
                    return Err(Fatal(format!(
                        "`--max-age {age}`: expected an age such as 30d, 12h or 90m"
                    )));
                };
                retention =
                    retention.max_age(Duration::from_millis(cutoff.as_millis().unsigned_abs()));
            }
            if let Some(count) = max_count {
                retention = retention.max_count(count);
            }
            let store = SqliteStore::open(&db).map_err(|e| Fatal(e.to_string()))?;
            let compacted = store
                .compact(&retention)
                .map_err(|e| Fatal(e.to_string()))?;
            crate::out!("removed {} processed events", compacted.removed);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open(db: &Path) -> Result<SqliteStore, Fatal> {
    if !db.is_file() {
        return Err(Fatal(format!("no store at `{}`", db.display())));
    }
    SqliteStore::open_read_only(db).map_err(|e| Fatal(e.to_string()))
}

fn read(store: &SqliteStore, db: &Path, query: &Query) -> Result<Vec<StoredEvent>, Fatal> {
    store
        .query(query)
        .map_err(|e| Fatal(format!("cannot read `{}`: {e}", db.display())))
}

fn print(records: &[StoredEvent], format: OutputFormat, header: bool) {
    match format {
        OutputFormat::Json => {
            for record in records {
                let line = serde_json::to_string(record).expect("records serialise");
                crate::out!("{line}");
            }
        }
        OutputFormat::Table => {
            if records.is_empty() {
                if header {
                    eprintln!("no stored events match");
                }
                return;
            }
            crate::out_raw!("{}", table(records, header));
        }
    }
}

/// The table: sequence, time, event, status, payload (compact JSON, shortened).
fn table(records: &[StoredEvent], header: bool) -> String {
    let rows: Vec<[String; 5]> = records
        .iter()
        .map(|r| {
            [
                r.sequence.to_string(),
                r.time.to_string(),
                r.event.clone(),
                r.status.to_string(),
                shorten(&r.payload.to_string(), PAYLOAD_WIDTH),
            ]
        })
        .collect();
    let titles = ["SEQ", "TIME", "EVENT", "STATUS", "PAYLOAD"];
    let mut widths = titles.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut text = format!(
            "{:>w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        text.truncate(text.trim_end().len());
        text.push('\n');
        text
    };
    let mut out = String::new();
    if header {
        out.push_str(&line(titles));
    }
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(width - 1).collect();
    short.push('…');
    short
}
