//! What handlers may return, and how their failures are reported.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use serde_json::Value;

use crate::listeners::CallError;

/// The return type of a handler: `()` or `Result<(), E>`.
///
/// `Result` lets a handler use `?`; its `Err` becomes a [`HandlerFailure`]. Any `E` that converts
/// into `Box<dyn Error + Send + Sync>` works: your error types, `String`, `&'static str`,
/// `std::io::Error`, `anyhow::Error`, … A closure returning `Result` usually needs its error
/// type spelled out once, e.g. `Ok::<(), MyError>(())`, because Rust cannot infer `E` from `?`.
/// A closure that does nothing but diverge (`|_| todo!()`, `|_| panic!(..)`) needs `-> ()`,
/// since its return type would otherwise be `!`, which stable Rust cannot implement traits for.
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

/// A handler returned `Err` or panicked while handling an event.
///
/// The other handlers of the same emit still run; the failure goes to the observer set with
/// [`BusCore::on_failure`](crate::BusCore::on_failure), or to stderr when there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerFailure {
    event: &'static str,
    handler_id: u64,
    handler: String,
    error: String,
    panicked: bool,
    attempt: u32,
    payload: Value,
}

impl HandlerFailure {
    pub(crate) fn new(
        event: &'static str,
        handler_id: u64,
        error: CallError,
        payload: Value,
    ) -> Self {
        let (error, panicked) = match error {
            CallError::Returned(error) => (error_chain(&*error), false),
            CallError::Panicked(panic) => (panic_message(panic), true),
        };
        HandlerFailure {
            event,
            handler_id,
            handler: format!("handler #{handler_id}"),
            error,
            panicked,
            attempt: 1,
            payload,
        }
    }

    /// The manifest name of the event being handled (`"packageInstall"`).
    pub fn event(&self) -> &'static str {
        self.event
    }

    /// A label for the failing handler: `"handler #3"` for the third handler subscribed to
    /// this event (ids count every `on`/`once` of the event, starting at 1).
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// The numeric part of [`handler`](Self::handler).
    pub fn handler_id(&self) -> u64 {
        self.handler_id
    }

    /// The error text: the error's `Display` followed by its `source()` chain joined with
    /// `": "`, or the panic message (`"<non-string panic payload>"` when the panic carried
    /// neither a `&str` nor a `String`).
    pub fn error(&self) -> &str {
        &self.error
    }

    /// `true` if the handler panicked, `false` if it returned `Err`.
    pub fn panicked(&self) -> bool {
        self.panicked
    }

    /// Which attempt failed, starting at 1. Always 1 until retry policies exist.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The payload the handler received, as JSON (`null` for an event without payload). It is
    /// serialised only when a failure happens; if serialising fails it is `null` too.
    pub fn payload(&self) -> &Value {
        &self.payload
    }
}

impl fmt::Display for HandlerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.panicked { "panicked" } else { "failed" };
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

fn panic_message(panic: Box<dyn Any + Send>) -> String {
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
}

impl FailureSink {
    pub(crate) fn set_observer(&self, observer: Observer) {
        self.observer.store(Some(Arc::new(observer)));
    }

    pub(crate) fn has_observer(&self) -> bool {
        self.observer.load().is_some()
    }

    /// Hands a failure to the observer, or writes it to stderr. Never panics.
    pub(crate) fn report(&self, failure: &HandlerFailure) {
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
            None => eprintln!("eventbus: {failure}"),
        }
    }
}

/// Turns a failed call into a [`HandlerFailure`] and reports it; keeps the payload JSON across
/// failures of one emit so it is serialised at most once.
pub(crate) fn report_call_error<T: serde::Serialize>(
    sink: &FailureSink,
    event: &'static str,
    payload: &T,
    payload_json: &mut Option<Value>,
    handler_id: u64,
    error: CallError,
) {
    let json = payload_json
        .get_or_insert_with(|| serde_json::to_value(payload).unwrap_or(Value::Null))
        .clone();
    sink.report(&HandlerFailure::new(event, handler_id, error, json));
}
