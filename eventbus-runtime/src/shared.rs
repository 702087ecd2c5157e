//! State shared by a bus and its events, and the failure pipeline every handler kind uses:
//! report → retry or dead-letter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(feature = "async")]
use std::sync::{Mutex, PoisonError};
#[cfg(feature = "async")]
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::breaker::CircuitBreakerConfig;
use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetterStore};
use crate::handler::{FailureKind, FailureSink, HandlerFailure};
use crate::listeners::CallError;
use crate::meta::{Batch, EventMeta, ManifestMeta, RateLimit, Retry};
use crate::options::HandlerInfo;
use crate::stats::{EventCounters, Stat};
use crate::timestamp::Timestamp;

/// The policies of one event after applying the builder's overrides to the manifest's.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct EventConfig {
    pub(crate) throttle: Option<std::time::Duration>,
    pub(crate) debounce: Option<std::time::Duration>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) batch: Option<Batch>,
    pub(crate) retry: Option<Retry>,
    pub(crate) circuit_breaker: Option<CircuitBreakerConfig>,
    /// Concurrency of the event's async handlers (manifest `concurrency`, or code); `None`:
    /// the bus's default.
    pub(crate) concurrency: Option<usize>,
    /// Queue of the event's async handlers (manifest `queue`, or code); `None`: the bus's
    /// default.
    pub(crate) queue: Option<usize>,
}

impl EventConfig {
    /// Whether emits must take the slow path (an event-level policy delays or drops them).
    pub(crate) fn gated(&self) -> bool {
        self.throttle.is_some() || self.debounce.is_some() || self.rate_limit.is_some()
    }
}

/// State shared by a bus core, its events and their pending work.
pub(crate) struct Shared {
    pub(crate) manifest: &'static ManifestMeta,
    pub(crate) failures: FailureSink,
    pub(crate) store: Arc<dyn DeadLetterStore>,
    pub(crate) evicted: AtomicU64,
    pub(crate) closed: AtomicBool,
    pub(crate) instrumented: bool,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<BusMetrics>,
    #[cfg(feature = "async")]
    pub(crate) runtime: Arc<crate::runtime::Runtime>,
    /// What shutdown could not finish, collected while it runs.
    #[cfg(feature = "async")]
    pub(crate) unfinished: Mutex<Vec<crate::shutdown::Unfinished>>,
    /// The event store's writer, when the bus has one.
    #[cfg(feature = "store")]
    pub(crate) journal: Option<Arc<crate::store::journal::Journal>>,
    /// The NATS link, when the bus was built with one.
    #[cfg(feature = "nats")]
    pub(crate) nats: Option<Arc<crate::nats::Link>>,
}

#[cfg(feature = "metrics")]
pub(crate) struct BusMetrics {
    pub(crate) dead_letters: metrics::Gauge,
    pub(crate) evicted: metrics::Counter,
}

impl Shared {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Pushes a letter to the store and reports what that cost (evictions, store failure).
    /// Returns the letter's id, if it was stored.
    pub(crate) fn dead_letter(&self, letter: DeadLetter) -> Option<u64> {
        let outcome = self.store.push(letter.clone());
        let id = match outcome {
            Ok(pushed) => {
                for evicted in pushed.evicted {
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                    #[cfg(feature = "metrics")]
                    if let Some(m) = &self.metrics {
                        m.evicted.increment(1);
                    }
                    let failure = HandlerFailure::other(
                        self.event_name(&evicted.event),
                        evicted
                            .handler
                            .as_deref()
                            .map(|h| (evicted.handler_id.unwrap_or(0), h)),
                        FailureKind::Evicted,
                        format!(
                            "dead letter #{} evicted from the full dead-letter queue (it was: {})",
                            evicted.id, evicted.error
                        ),
                        evicted.attempts,
                        evicted.payload,
                    );
                    self.failures.report(&failure);
                }
                Some(pushed.id)
            }
            Err(error) => {
                let failure = HandlerFailure::other(
                    self.event_name(&letter.event),
                    letter
                        .handler
                        .as_deref()
                        .map(|h| (letter.handler_id.unwrap_or(0), h)),
                    FailureKind::StoreFailed,
                    format!(
                        "the dead-letter store refused the letter ({error}); it was: {}",
                        letter.error
                    ),
                    letter.attempts,
                    letter.payload,
                );
                self.failures.report(&failure);
                None
            }
        };
        self.update_gauge();
        id
    }

    pub(crate) fn update_gauge(&self) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics
            && let Ok(len) = self.store.len()
        {
            m.dead_letters.set(len as f64);
        }
    }

    /// The `&'static` name of a manifest event, for letters that carry it as a `String`.
    pub(crate) fn event_name(&self, name: &str) -> &'static str {
        self.manifest
            .event(name)
            .map_or("<unknown event>", |e| e.name)
    }
}

/// What happens after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Next {
    /// Try again after this delay.
    #[cfg(feature = "async")]
    Retry(Duration),
    /// Dead-lettered (or the store refused it; reported either way).
    Done,
}

/// The part of an event that does not depend on its payload type: what pending work and the
/// failure pipeline need.
pub(crate) struct EventCtx {
    pub(crate) meta: &'static EventMeta,
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: EventConfig,
    pub(crate) counters: EventCounters,
}

/// The payload of a failure as JSON, serialised at most once per emit.
pub(crate) fn json_of<P: Serialize>(payload: &P, cache: &mut Option<Value>) -> Value {
    cache
        .get_or_insert_with(|| serde_json::to_value(payload).unwrap_or(Value::Null))
        .clone()
}

impl EventCtx {
    /// The retry policy of a handler on this event.
    #[cfg(feature = "async")]
    pub(crate) fn retry_for(&self, info: &HandlerInfo) -> Option<Retry> {
        info.retry.resolve(self.config.retry)
    }

    /// Handles one failed call of a handler: counts and reports it, and either schedules
    /// nothing and returns the retry delay, or dead-letters the payload.
    #[cfg(feature = "async")]
    pub(crate) fn fail<P: Serialize>(
        &self,
        info: &HandlerInfo,
        attempt: u32,
        error: CallError,
        payload: &P,
        json: &mut Option<Value>,
        batch: bool,
    ) -> Next {
        self.fail_with_room(info, attempt, error, payload, json, batch, true)
    }

    /// [`fail`](Self::fail) for a failure whose retry needs a new retry task (the first
    /// failure of a sync or batch handler): without `room` for one (the handler has as many
    /// retries pending as it may), a failure the policy would retry is dead-lettered and
    /// reported as [`FailureKind::Overflow`] instead.
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(not(feature = "async"), allow(unused_variables))]
    pub(crate) fn fail_with_room<P: Serialize>(
        &self,
        info: &HandlerInfo,
        attempt: u32,
        error: CallError,
        payload: &P,
        json: &mut Option<Value>,
        batch: bool,
        room: bool,
    ) -> Next {
        #[cfg(feature = "async")]
        let permanent =
            matches!(&error, CallError::Returned(e) if crate::error::Permanent::marks(&**e));
        let mut failure = HandlerFailure::from_call(
            self.meta.name,
            info.id,
            &info.label,
            attempt,
            error,
            json_of(payload, json),
        );
        let circuit_open = failure.kind == FailureKind::CircuitOpen;
        if !circuit_open {
            self.counters.add(Stat::Failed, 1);
            info.failed.fetch_add(1, Ordering::Relaxed);
        }
        // An event from a JetStream consumer: the broker's delivery is the attempt, and the
        // broker retries it (the message is nak'ed with the delay) unless this was the last.
        #[cfg(feature = "nats")]
        let remote = if circuit_open {
            None
        } else {
            crate::store::track::remote(self.meta.name)
        };
        #[cfg(feature = "nats")]
        let (attempt, remote) = match remote.as_deref().and_then(|d| d.as_remote()) {
            Some(remote) => {
                failure.attempt = remote.attempt;
                if !remote.last {
                    failure.retry_in = Some(remote.delay);
                    remote.retry();
                    self.counters.add(Stat::Retried, 1);
                    self.shared.failures.report(&failure);
                    return Next::Done;
                }
                (remote.attempt, true)
            }
            None => (attempt, false),
        };
        #[cfg(all(feature = "async", not(feature = "nats")))]
        let remote = false;
        #[cfg(feature = "async")]
        if !circuit_open
            && !remote
            && !permanent
            && let Some(retry) = self.retry_for(info)
            && attempt < retry.attempts
        {
            if !room {
                let how = if failure.kind == FailureKind::Panicked {
                    "panicked"
                } else {
                    "failed"
                };
                failure.kind = FailureKind::Overflow;
                failure.error = format!(
                    "not retried: the handler's retry queue is full ({} retries pending); the \
                     call {how}: {}",
                    info.retries.capacity, failure.error
                );
                failure.dead_letter = self.dead_letter(
                    Some(info),
                    DeadLetterReason::Overflow,
                    failure.error.clone(),
                    attempt,
                    batch,
                    failure.payload.clone(),
                );
                self.shared.failures.report(&failure);
                return Next::Done;
            }
            let delay = self.shared.runtime.backoff(&retry, attempt);
            failure.retry_in = Some(delay);
            self.counters.add(Stat::Retried, 1);
            self.shared.failures.report(&failure);
            return Next::Retry(delay);
        }
        let (reason, attempts) = if circuit_open {
            (DeadLetterReason::CircuitOpen, attempt - 1)
        } else {
            (DeadLetterReason::Failed, attempt)
        };
        failure.dead_letter = self.dead_letter(
            Some(info),
            reason,
            failure.error.clone(),
            attempts,
            batch,
            failure.payload.clone(),
        );
        self.shared.failures.report(&failure);
        Next::Done
    }

    /// Gives up on a payload that was never (fully) handled: dead-letters and reports it.
    /// `handler` is `None` for an event-level failure.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn give_up(
        &self,
        handler: Option<&HandlerInfo>,
        kind: FailureKind,
        error: String,
        attempts: u32,
        batch: bool,
        payload: Value,
    ) -> Option<u64> {
        let reason = match kind {
            FailureKind::CircuitOpen => DeadLetterReason::CircuitOpen,
            FailureKind::Overflow => DeadLetterReason::Overflow,
            FailureKind::Rejected | FailureKind::Abandoned => DeadLetterReason::ShutDown,
            _ => DeadLetterReason::Failed,
        };
        if handler.is_none() {
            self.counters.add(Stat::Rejected, 1);
        }
        let mut failure = HandlerFailure::other(
            self.meta.name,
            handler.map(|h| (h.id, &*h.label)),
            kind,
            error,
            attempts,
            payload,
        );
        failure.dead_letter = self.dead_letter(
            handler,
            reason,
            failure.error.clone(),
            attempts,
            batch,
            failure.payload.clone(),
        );
        #[cfg(feature = "async")]
        if kind == FailureKind::Abandoned {
            self.shared
                .unfinished
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(crate::shutdown::Unfinished {
                    event: self.meta.name,
                    handler: handler.map(|h| h.label.to_string()),
                    dead_letter: failure.dead_letter,
                });
        }
        self.shared.failures.report(&failure);
        failure.dead_letter
    }

    fn dead_letter(
        &self,
        handler: Option<&HandlerInfo>,
        reason: DeadLetterReason,
        error: String,
        attempts: u32,
        batch: bool,
        payload: Value,
    ) -> Option<u64> {
        self.counters.add(Stat::DeadLettered, 1);
        crate::store::track::dead_lettered(self.meta.name);
        self.shared.dead_letter(DeadLetter {
            id: 0,
            event: self.meta.name.to_owned(),
            handler: handler.map(|h| h.label.to_string()),
            handler_id: handler.map(|h| h.id),
            reason,
            error,
            attempts,
            batch,
            payload,
            at: Timestamp::now(),
        })
    }
}
