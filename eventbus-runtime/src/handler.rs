//! What handlers may return, and how their failures are reported.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
#[cfg(feature = "async")]
use std::sync::{Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde_json::Value;

use crate::breaker::CircuitOpen;
use crate::listeners::CallError;

/// The return type of a handler: `()` or `Result<(), E>`.
///
/// `Result` lets a handler use `?`; its `Err` becomes a [`HandlerFailure`]. Any `E` that converts
/// into `Box<dyn Error + Send + Sync>` works: your error types, `String`, `&'static str`,
/// `std::io::Error`, `anyhow::Error`, … A closure returning `Result` usually needs its error
/// type spelled out once, e.g. `Ok::<(), MyError>(())`, because Rust cannot infer `E` from `?`.
/// A closure that does nothing but diverge (`|_| todo!()`, `|_| panic!(..)`) needs `-> ()`,
/// since its return type would otherwise be `!`, which stable Rust cannot implement traits for.
///
/// ```
/// use eventbus_runtime::HandlerResult;
///
/// assert!(().into_result().is_ok());
///
/// let parsed: Result<(), std::num::ParseIntError> = "12a".parse::<u32>().map(|_| ());
/// assert_eq!(parsed.into_result().unwrap_err().to_string(), "invalid digit found in string");
///
/// // Any error type that converts into `Box<dyn Error + Send + Sync>`, `&str` included.
/// assert_eq!(Err::<(), _>("quota exceeded").into_result().unwrap_err().to_string(), "quota exceeded");
/// ```
pub trait HandlerResult {
    /// Converts the handler's return value into success or the error to report.
    fn into_result(self) -> Result<(), Box<dyn Error + Send + Sync>>;
}

impl HandlerResult for () {
    fn into_result(self) -> Result<(), Box<dyn Error + Send + Sync>> {
        Ok(())
    }
}

impl<E> HandlerResult for Result<(), E>
where
    E: Into<Box<dyn Error + Send + Sync>>,
{
    fn into_result(self) -> Result<(), Box<dyn Error + Send + Sync>> {
        self.map_err(Into::into)
    }
}

/// What went wrong, for a [`HandlerFailure`].
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, Event, FailureKind};
/// use std::sync::{Arc, Mutex};
///
/// let core = BusCore::new(manifest);
/// let kinds = Arc::new(Mutex::new(Vec::new()));
/// let log = kinds.clone();
/// core.on_failure(move |f| log.lock().unwrap().push(f.kind()));
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on(|n| if *n == 1 { Err("one") } else { Ok(()) });
/// ping.on(|n| if *n == 2 { panic!("two") });
///
/// ping.emit(1);
/// ping.emit(2);
/// core.close();
/// ping.emit(3);
/// assert_eq!(
///     *kinds.lock().unwrap(),
///     [FailureKind::Returned, FailureKind::Panicked, FailureKind::Rejected]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The handler returned `Err`.
    Returned,
    /// The handler panicked.
    Panicked,
    /// The handler's circuit breaker is open: it was not called and the event went to the
    /// dead-letter queue.
    CircuitOpen,
    /// An async handler's call did not finish within its
    /// [`HandlerOptions::timeout`](crate::HandlerOptions::timeout): its future was dropped
    /// (cancelled) and the attempt counts as failed, so it is retried or dead-lettered like a
    /// returned error. The error text names the limit.
    Timeout,
    /// A bounded queue was full (an async handler's queue, a sync or batch handler's retry
    /// queue, or the event's rate-limit queue): the event went to the dead-letter queue.
    Overflow,
    /// The bus is shut down: the emit was refused (an event-level failure; the event went to
    /// the dead-letter queue).
    Rejected,
    /// Work still pending when shutdown's deadline passed (a retry, an async call, a queued
    /// event) or whose runtime stopped: it went to the dead-letter queue.
    Abandoned,
    /// The dead-letter queue was full and evicted its oldest letter (described by this
    /// failure) to make room: that event is gone for good.
    Evicted,
    /// The dead-letter store refused a letter (see
    /// [`DeadLetterStore`](crate::DeadLetterStore)): that event is gone for good.
    StoreFailed,
    /// A `persist: true` event could not be written to the event store (see
    /// [`PersistError`](crate::PersistError)): it was not dispatched, and its emit returned
    /// the error.
    NotStored,
    /// A `scope: distributed` event could not be handed to NATS (see `docs/nats.md`): a
    /// `persist: true` one was not acknowledged by the JetStream stream in time (it was not
    /// dispatched, and its emit returned the error), or the link's outbox was full for a plain
    /// one (it was delivered locally only).
    NotPublished,
    /// A message received from NATS is not a CloudEvent of its subject's event, or its data does
    /// not fit the payload type: it was refused (terminated, on JetStream) and not delivered.
    /// The payload is the message as received (a JSON string when it is not JSON).
    Malformed,
    /// A persisted distributed event's JetStream deliveries were used up (`max_deliver`) without
    /// an acknowledgement, typically because the processes handling it crashed: NATS stopped
    /// delivering it and it went to the dead-letter queue (see `docs/nats.md`).
    DeliveriesExhausted,
}

impl FailureKind {
    /// A short lowercase name: `returned`, `panicked`, `circuit_open`, `timeout`, `overflow`,
    /// `rejected`, `abandoned`, `evicted`, `store_failed`, `not_stored`, `not_published`,
    /// `malformed` (used as a log field and metrics label).
    ///
    /// ```
    /// use eventbus_runtime::FailureKind;
    ///
    /// assert_eq!(FailureKind::CircuitOpen.as_str(), "circuit_open");
    /// assert_eq!(FailureKind::Timeout.as_str(), "timeout");
    /// assert_eq!(FailureKind::NotStored.as_str(), "not_stored");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::Returned => "returned",
            FailureKind::Panicked => "panicked",
            FailureKind::CircuitOpen => "circuit_open",
            FailureKind::Timeout => "timeout",
            FailureKind::Overflow => "overflow",
            FailureKind::Rejected => "rejected",
            FailureKind::Abandoned => "abandoned",
            FailureKind::Evicted => "evicted",
            FailureKind::StoreFailed => "store_failed",
            FailureKind::NotStored => "not_stored",
            FailureKind::NotPublished => "not_published",
            FailureKind::Malformed => "malformed",
            FailureKind::DeliveriesExhausted => "deliveries_exhausted",
        }
    }
}

/// A handler returned `Err`, panicked or timed out while handling an event, or an event could
/// not be delivered (see [`kind`](Self::kind)).
///
/// The other handlers of the same emit still run. Every failure goes to the observer set with
/// [`BusCore::on_failure`](crate::BusCore::on_failure), to every
/// `BusCore::errors()` stream and to `tracing` (target `eventbus`); when
/// none of these would see it, to stderr.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, Event, FailureKind, HandlerFailure};
/// use std::sync::{Arc, Mutex};
///
/// let core = BusCore::new(manifest);
/// let seen: Arc<Mutex<Vec<HandlerFailure>>> = Arc::default();
/// let log = seen.clone();
/// core.on_failure(move |f| log.lock().unwrap().push(f.clone()));
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on(|_| ());
/// ping.on_labeled("billing", |n| if *n > 9 { Err(format!("{n} is over the limit")) } else { Ok(()) });
/// ping.emit(10);
///
/// let failure = &seen.lock().unwrap()[0];
/// assert_eq!((failure.event(), failure.handler(), failure.handler_id()), ("ping", "billing", 2));
/// assert_eq!((failure.kind(), failure.panicked()), (FailureKind::Returned, false));
/// assert_eq!((failure.error(), failure.attempt()), ("10 is over the limit", 1));
/// assert_eq!(failure.payload(), &serde_json::json!(10));
/// assert_eq!(failure.retry_in(), None); // no retry policy…
/// let letter = failure.dead_letter().unwrap(); // …so it was dead-lettered
/// assert_eq!(core.dead_letters().get(letter).unwrap().unwrap().payload, 10);
/// assert_eq!(failure.to_string(), "billing of event `ping` failed (attempt 1): 10 is over the limit");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerFailure {
    pub(crate) event: &'static str,
    pub(crate) handler_id: u64,
    pub(crate) handler: String,
    pub(crate) kind: FailureKind,
    pub(crate) error: String,
    pub(crate) attempt: u32,
    pub(crate) payload: Value,
    pub(crate) retry_in: Option<Duration>,
    pub(crate) dead_letter: Option<u64>,
}

impl HandlerFailure {
    /// A failure of one handler call. An open circuit is recognised by its marker error.
    pub(crate) fn from_call(
        event: &'static str,
        handler_id: u64,
        handler: &str,
        attempt: u32,
        error: CallError,
        payload: Value,
    ) -> Self {
        let (kind, error) = match error {
            CallError::Returned(error) if error.is::<CircuitOpen>() => {
                (FailureKind::CircuitOpen, error.to_string())
            }
            #[cfg(feature = "async")]
            CallError::Returned(error) if error.is::<crate::async_handler::TimedOut>() => {
                (FailureKind::Timeout, error.to_string())
            }
            CallError::Returned(error) => (FailureKind::Returned, error_chain(&*error)),
            CallError::Panicked(panic) => (FailureKind::Panicked, panic_message(panic)),
        };
        Self::other(
            event,
            Some((handler_id, handler)),
            kind,
            error,
            attempt,
            payload,
        )
    }

    /// Marks a handler's error as permanent: retrying cannot fix it (bad input, a payload that
    /// breaks a rule), so the bus skips the remaining retries of the event's or handler's
    /// [`Retry`](crate::Retry) policy and dead-letters the event after this attempt. The
    /// failure is reported as usual (an `ERROR` in `tracing`, no `retry_in`), with the text of
    /// `error`.
    ///
    /// Events received from a NATS JetStream consumer are retried by the broker, which does
    /// not see the mark.
    ///
    /// ```
    /// # #[cfg(feature = "async")] { // `BusBuilder::retry` needs the `async` feature
    /// # let manifest = eventbus_runtime::__doc::manifest_with(&[("ping", Some("u32"), eventbus_runtime::Policies::NONE)]);
    /// use eventbus_runtime::{BusCore, Event, HandlerFailure, Retry};
    /// use std::error::Error;
    /// use std::time::Duration;
    ///
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .retry(Retry { attempts: 5, backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1) })
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_labeled("importer", |n| -> Result<(), Box<dyn Error + Send + Sync>> {
    ///     if *n > 100 {
    ///         return Err(HandlerFailure::permanent(format!("{n} is out of range")));
    ///     }
    ///     Ok(())
    /// });
    /// ping.emit(500);
    ///
    /// // Not retried: in the dead-letter queue after the first attempt.
    /// let letter = &core.dead_letters().list().unwrap()[0];
    /// assert_eq!((letter.attempts, letter.error.as_str()), (1, "500 is out of range"));
    /// # }
    /// ```
    pub fn permanent(
        error: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Box<dyn Error + Send + Sync> {
        Box::new(crate::error::Permanent(error.into()))
    }

    /// Any other failure: `handler` is `None` for an event-level one.
    pub(crate) fn other(
        event: &'static str,
        handler: Option<(u64, &str)>,
        kind: FailureKind,
        error: String,
        attempt: u32,
        payload: Value,
    ) -> Self {
        let (handler_id, handler) = handler.unwrap_or((0, ""));
        HandlerFailure {
            event,
            handler_id,
            handler: handler.to_owned(),
            kind,
            error,
            attempt,
            payload,
            retry_in: None,
            dead_letter: None,
        }
    }

    /// The manifest name of the event being handled (`"packageInstall"`).
    pub fn event(&self) -> &'static str {
        self.event
    }

    /// The failing handler's label: the one given with
    /// [`HandlerOptions::label`](crate::HandlerOptions::label) /
    /// [`Event::on_labeled`](crate::Event::on_labeled), else `"handler #3"` for the third
    /// handler subscribed to this event (ids count every subscription of the event, starting
    /// at 1). Empty for an event-level failure ([`FailureKind::Rejected`], or an overflow of the
    /// event's rate-limit queue).
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// The handler's id (the `3` of `"handler #3"`); 0 for an event-level failure.
    pub fn handler_id(&self) -> u64 {
        self.handler_id
    }

    /// What went wrong.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The error text: the error's `Display` followed by its `source()` chain joined with
    /// `": "`, or the panic message (`"<non-string panic payload>"` when the panic carried
    /// neither a `&str` nor a `String`), or what the runtime did for other kinds.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// `true` if the handler panicked.
    pub fn panicked(&self) -> bool {
        self.kind == FailureKind::Panicked
    }

    /// Which attempt failed, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The payload the handler received, as JSON (`null` for an event without payload; an
    /// array for a batch handler). It is serialised only when a failure happens; if serialising
    /// fails it is `null` too.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// When a retry is scheduled: how long until it runs.
    pub fn retry_in(&self) -> Option<Duration> {
        self.retry_in
    }

    /// When this failure sent the event to the dead-letter queue: the letter's id (see
    /// [`DeadLetters`](crate::DeadLetters)).
    pub fn dead_letter(&self) -> Option<u64> {
        self.dead_letter
    }
}

impl fmt::Display for HandlerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.handler.is_empty() {
            return write!(
                f,
                "event `{}` {}: {}",
                self.event,
                self.kind.as_str(),
                self.error
            );
        }
        let verb = match self.kind {
            FailureKind::Returned => "failed",
            FailureKind::Panicked => "panicked",
            FailureKind::CircuitOpen => "was skipped",
            FailureKind::Timeout => "timed out",
            FailureKind::Overflow => "dropped an event",
            FailureKind::Rejected => "was refused an event",
            FailureKind::Abandoned => "did not finish",
            FailureKind::Evicted => "lost a dead letter",
            FailureKind::StoreFailed => "lost a dead letter",
            FailureKind::NotStored => "was not stored",
            FailureKind::NotPublished => "was not published",
            FailureKind::Malformed => "was refused a malformed message",
            FailureKind::DeliveriesExhausted => "ran out of deliveries",
        };
        write!(
            f,
            "{} of event `{}` {verb} (attempt {}): {}",
            self.handler, self.event, self.attempt, self.error
        )
    }
}

impl Error for HandlerFailure {}

fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(crate) fn panic_message(panic: Box<dyn Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => match panic.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "<non-string panic payload>".to_owned(),
        },
    }
}

type Observer = Box<dyn Fn(&HandlerFailure) + Send + Sync>;

/// Where handler failures of one bus go. Shared by the bus core and its events (not the core
/// itself, so that events do not keep the core alive in a cycle).
#[derive(Default)]
pub(crate) struct FailureSink {
    observer: ArcSwapOption<Observer>,
    #[cfg(feature = "async")]
    streams: Mutex<Vec<Weak<crate::stream::Ring<HandlerFailure>>>>,
}

impl FailureSink {
    pub(crate) fn set_observer(&self, observer: Observer) {
        self.observer.store(Some(Arc::new(observer)));
    }

    pub(crate) fn has_observer(&self) -> bool {
        self.observer.load().is_some()
    }

    #[cfg(feature = "async")]
    pub(crate) fn add_stream(&self, ring: &Arc<crate::stream::Ring<HandlerFailure>>) {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        streams.retain(|s| s.strong_count() > 0);
        streams.push(Arc::downgrade(ring));
    }

    #[cfg(feature = "async")]
    pub(crate) fn close_streams(&self) {
        let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        for ring in streams.iter().filter_map(Weak::upgrade) {
            ring.close();
        }
    }

    /// Hands a failure to `tracing`, the observer and every `errors()` stream; to stderr when
    /// none of them would see it. Never panics.
    pub(crate) fn report(&self, failure: &HandlerFailure) {
        #[allow(unused_mut)]
        let mut seen = false;
        #[cfg(feature = "tracing")]
        {
            trace_failure(failure);
            seen |= tracing::dispatcher::has_been_set();
        }
        #[cfg(feature = "async")]
        {
            let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
            for ring in streams.iter().filter_map(Weak::upgrade) {
                ring.push(failure.clone());
                seen = true;
            }
        }
        // `load_full`, not `load`: the observer may run long or replace itself.
        match self.observer.load_full() {
            Some(observer) => {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| observer(failure))) {
                    eprintln!("eventbus: {failure}");
                    eprintln!(
                        "eventbus: the failure observer panicked: {}",
                        panic_message(panic)
                    );
                }
            }
            None if !seen => eprintln!("eventbus: {failure}"),
            None => {}
        }
    }
}

#[cfg(feature = "tracing")]
fn trace_failure(failure: &HandlerFailure) {
    let retry_in_ms = failure.retry_in.map(|d| d.as_millis() as u64);
    macro_rules! emit {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                target: "eventbus",
                event = failure.event,
                handler = failure.handler.as_str(),
                kind = failure.kind.as_str(),
                attempt = failure.attempt,
                error = failure.error.as_str(),
                retry_in_ms,
                dead_letter = failure.dead_letter,
                payload = %failure.payload,
                $message
            )
        };
    }
    if failure.retry_in.is_some() {
        emit!(warn, "eventbus handler failed; retry scheduled");
    } else {
        emit!(error, "eventbus delivery failed");
    }
}
