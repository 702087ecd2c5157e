//! Event-level flood control: `debounce`, then `throttle`, then `rate_limit`, then the
//! handlers.
//!
//! - **debounce** (trailing edge): an event is delivered once no other came for the interval;
//!   each new one replaces the waiting one and restarts the interval.
//! - **throttle** (leading and trailing edge): the first event is delivered at once and opens
//!   an interval; during it, the latest event waits and is delivered when the interval ends
//!   (opening the next one); the events it replaced are suppressed.
//! - **rate_limit** (token bucket, GCRA from `governor`): an event with a token is delivered at
//!   once; without one it waits in a bounded FIFO queue drained as tokens come; when the queue
//!   is full the event is dead-lettered ([`FailureKind::Overflow`]).
//!
//! Suppressed events are the policy working as declared: they are counted
//! (`eventbus_events_suppressed_total`), not reported as failures.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde_json::Value;
use tokio::time::Instant;

use crate::event::{EventInner, Payload};
use crate::handler::FailureKind;
use crate::meta::RateLimit;
use crate::shared::EventConfig;
use crate::stats::Stat;

fn lock<S>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// governor's view of tokio's clock (so a paused test clock drives the bucket too).
#[derive(Clone, Debug)]
struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(Instant::now().saturating_duration_since(self.start))
    }
}

/// The quota of a `rate_limit`: one token every `per / count`, `burst` at most.
pub(crate) fn quota(limit: &RateLimit) -> Option<Quota> {
    let count = NonZeroU32::new(limit.count)?;
    let burst = NonZeroU32::new(limit.burst)?;
    let period = limit.per / count.get();
    Quota::with_period(period).map(|q| q.allow_burst(burst))
}

struct Debounce<T> {
    interval: Duration,
    state: Mutex<DebounceState<T>>,
}

struct DebounceState<T> {
    pending: Option<T>,
    deadline: Instant,
    timer: bool,
}

struct Throttle<T> {
    interval: Duration,
    state: Mutex<ThrottleState<T>>,
}

struct ThrottleState<T> {
    open_until: Option<Instant>,
    pending: Option<T>,
    timer: bool,
}

struct Rate<T> {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>,
    clock: TokioClock,
    state: Mutex<RateState<T>>,
}

struct RateState<T> {
    queue: VecDeque<T>,
    draining: bool,
}

/// The event-level policies of one event.
pub(crate) struct Gate<T> {
    debounce: Option<Debounce<T>>,
    throttle: Option<Throttle<T>>,
    rate: Option<Rate<T>>,
}

impl<T> Gate<T> {
    /// `None` when the event has no event-level policy.
    pub(crate) fn new(config: &EventConfig) -> Option<Gate<T>> {
        if !config.gated() {
            return None;
        }
        let now = Instant::now();
        Some(Gate {
            debounce: config.debounce.map(|interval| Debounce {
                interval,
                state: Mutex::new(DebounceState {
                    pending: None,
                    deadline: now,
                    timer: false,
                }),
            }),
            throttle: config.throttle.map(|interval| Throttle {
                interval,
                state: Mutex::new(ThrottleState {
                    open_until: None,
                    pending: None,
                    timer: false,
                }),
            }),
            rate: config.rate_limit.map(|limit| {
                let clock = TokioClock { start: now };
                let quota = quota(&limit).expect("rate_limit validated by the builder");
                Rate {
                    limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
                    clock,
                    state: Mutex::new(RateState {
                        queue: VecDeque::new(),
                        draining: false,
                    }),
                }
            }),
        })
    }
}

impl<T: Payload> EventInner<T> {
    fn gate(&self) -> &Gate<T> {
        self.gate
            .as_ref()
            .expect("only gated events reach the gate")
    }

    pub(crate) fn submit_gated(self: &Arc<Self>, payload: T) {
        self.debounce(payload);
    }

    fn debounce(self: &Arc<Self>, payload: T) {
        let Some(debounce) = &self.gate().debounce else {
            return self.throttle(payload);
        };
        let mut state = lock(&debounce.state);
        if state.pending.replace(payload).is_some() {
            self.ctx.counters.add(Stat::Suppressed, 1);
        }
        state.deadline = Instant::now() + debounce.interval;
        if state.timer {
            return;
        }
        state.timer = true;
        drop(state);
        let event = self.clone();
        self.ctx.shared.runtime.spawn(async move {
            let debounce = event.gate().debounce.as_ref().expect("checked");
            loop {
                let deadline = lock(&debounce.state).deadline;
                tokio::time::sleep_until(deadline).await;
                let due = {
                    let mut state = lock(&debounce.state);
                    if state.pending.is_none() {
                        state.timer = false;
                        return;
                    }
                    if Instant::now() < state.deadline {
                        continue;
                    }
                    state.timer = false;
                    state.pending.take()
                };
                if let Some(payload) = due {
                    event.throttle(payload);
                }
                return;
            }
        });
    }

    fn throttle(self: &Arc<Self>, payload: T) {
        let Some(throttle) = &self.gate().throttle else {
            return self.rate_limit(payload);
        };
        let now = Instant::now();
        let mut state = lock(&throttle.state);
        if !state.timer && state.open_until.is_none_or(|until| now >= until) {
            // Leading edge.
            state.open_until = Some(now + throttle.interval);
            drop(state);
            return self.rate_limit(payload);
        }
        if state.pending.replace(payload).is_some() {
            self.ctx.counters.add(Stat::Suppressed, 1);
        }
        if state.timer {
            return;
        }
        state.timer = true;
        drop(state);
        let event = self.clone();
        self.ctx.shared.runtime.spawn(async move {
            let throttle = event.gate().throttle.as_ref().expect("checked");
            loop {
                let Some(until) = lock(&throttle.state).open_until else {
                    lock(&throttle.state).timer = false;
                    return;
                };
                tokio::time::sleep_until(until).await;
                let trailing = {
                    let mut state = lock(&throttle.state);
                    match state.pending.take() {
                        Some(payload) => {
                            state.open_until = Some(Instant::now() + throttle.interval);
                            payload
                        }
                        None => {
                            state.timer = false;
                            return;
                        }
                    }
                };
                // Trailing edge; the interval it opens may catch another one.
                event.rate_limit(trailing);
            }
        });
    }

    fn rate_limit(self: &Arc<Self>, payload: T) {
        let Some(rate) = &self.gate().rate else {
            return self.deliver(payload);
        };
        let mut state = lock(&rate.state);
        if state.queue.is_empty() && !state.draining && rate.limiter.check().is_ok() {
            drop(state);
            return self.deliver(payload);
        }
        let capacity = self.ctx.shared.runtime.settings.rate_limit_queue;
        if state.queue.len() >= capacity {
            drop(state);
            self.ctx.give_up(
                None,
                FailureKind::Overflow,
                format!("the rate-limit queue is full ({capacity} events waiting for a token)"),
                0,
                false,
                serde_json::to_value(&payload).unwrap_or(Value::Null),
            );
            return;
        }
        state.queue.push_back(payload);
        if state.draining {
            return;
        }
        state.draining = true;
        drop(state);
        self.drain();
    }

    /// Delivers queued events as tokens come; dead-letters what is left if abandoned.
    fn drain(self: &Arc<Self>) {
        /// Dead-letters the queue if the drain ends without emptying it.
        struct Drain<T: Payload> {
            event: Arc<EventInner<T>>,
            finished: bool,
        }
        impl<T: Payload> Drain<T> {
            fn finish(&mut self) {
                self.finished = true;
            }
        }
        impl<T: Payload> Drop for Drain<T> {
            fn drop(&mut self) {
                if self.finished {
                    return;
                }
                let rate = self.event.gate().rate.as_ref().expect("checked");
                let left: Vec<T> = {
                    let mut state = lock(&rate.state);
                    state.draining = false;
                    state.queue.drain(..).collect()
                };
                for payload in left {
                    self.event.ctx.give_up(
                        None,
                        FailureKind::Abandoned,
                        "shutdown's deadline passed while the event waited for its rate limit"
                            .into(),
                        0,
                        false,
                        serde_json::to_value(&payload).unwrap_or(Value::Null),
                    );
                }
            }
        }
        let mut drain = Drain {
            event: self.clone(),
            finished: false,
        };
        let runtime = self.ctx.shared.runtime.clone();
        runtime.clone().spawn_tracked(async move {
            let event = drain.event.clone();
            let rate = event.gate().rate.as_ref().expect("checked");
            loop {
                let wait = {
                    let mut state = lock(&rate.state);
                    if state.queue.is_empty() {
                        state.draining = false;
                        drain.finish();
                        return;
                    }
                    match rate.limiter.check() {
                        Ok(()) => {
                            let payload = state.queue.pop_front().expect("not empty");
                            drop(state);
                            event.deliver(payload);
                            continue;
                        }
                        Err(not_until) => not_until.wait_time_from(rate.clock.now()),
                    }
                };
                if !runtime.sleep(wait).await {
                    return; // `drain` dead-letters the rest.
                }
            }
        });
    }

    /// Lets pending debounced / throttled events through now (shutdown).
    pub(crate) fn flush_gate(self: &Arc<Self>) {
        let Some(gate) = &self.gate else {
            return;
        };
        if let Some(debounce) = &gate.debounce {
            let pending = lock(&debounce.state).pending.take();
            if let Some(payload) = pending {
                self.throttle(payload);
            }
        }
        if let Some(throttle) = &gate.throttle {
            let pending = lock(&throttle.state).pending.take();
            if let Some(payload) = pending {
                self.rate_limit(payload);
            }
        }
    }
}
