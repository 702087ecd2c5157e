//! Per-handler circuit breakers.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How a handler's circuit breaker decides to open and close.
///
/// The breaker records the outcome of the handler's last `sliding_window` calls. Once at least
/// `minimum_calls` are recorded and `failure_rate_threshold` percent or more of them failed, it
/// **opens**: the handler is not called for `open_for`, and each event it would have received
/// goes straight to the dead-letter queue (reported as
/// [`FailureKind::CircuitOpen`](crate::FailureKind::CircuitOpen)). Then it is **half-open**:
/// `half_open_calls` calls are let through as probes; if fewer than the threshold fail it
/// closes again, otherwise it opens for another `open_for`. Calls beyond the probes while
/// half-open are dead-lettered like calls while open.
///
/// The defaults are resilience4j's (`CircuitBreakerConfig`: 50 % failure rate, count-based
/// window of 100 calls, 60 s open, 10 calls half-open), except `minimum_calls`: 10, as
/// MassTransit's `ActiveThreshold`, because in-process handlers of rare events would never reach
/// resilience4j's 100.
///
/// ```
/// use eventbus_runtime::CircuitBreakerConfig;
/// use std::time::Duration;
///
/// let config = CircuitBreakerConfig::default();
/// assert_eq!(config.failure_rate_threshold, 50.0);
/// assert_eq!(config.sliding_window, 100);
/// assert_eq!(config.minimum_calls, 10);
/// assert_eq!(config.open_for, Duration::from_secs(60));
/// assert_eq!(config.half_open_calls, 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakerConfig {
    /// Percentage (0 < x ≤ 100) of failed calls in the window at or above which the breaker
    /// opens.
    pub failure_rate_threshold: f32,
    /// How many of the most recent calls the failure rate is computed over.
    pub sliding_window: u32,
    /// The fewest recorded calls before the failure rate is considered at all.
    pub minimum_calls: u32,
    /// How long the breaker stays open before probing.
    pub open_for: Duration,
    /// How many probe calls are let through while half-open.
    pub half_open_calls: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_rate_threshold: 50.0,
            sliding_window: 100,
            minimum_calls: 10,
            open_for: Duration::from_secs(60),
            half_open_calls: 10,
        }
    }
}

impl CircuitBreakerConfig {
    /// Checks the values; the message says what is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.failure_rate_threshold > 0.0 && self.failure_rate_threshold <= 100.0) {
            return Err(format!(
                "failure_rate_threshold must be in (0, 100], not {}",
                self.failure_rate_threshold
            ));
        }
        if self.sliding_window == 0 || self.half_open_calls == 0 {
            return Err("sliding_window and half_open_calls must be at least 1".into());
        }
        if self.minimum_calls > self.sliding_window {
            return Err(format!(
                "minimum_calls ({}) cannot exceed sliding_window ({})",
                self.minimum_calls, self.sliding_window
            ));
        }
        Ok(())
    }
}

/// The state of a handler's circuit breaker, as shown by [`BusCore::stats`](crate::BusCore::stats).
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, CircuitBreakerConfig, CircuitState, Event, HandlerOptions};
///
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// let breaker = CircuitBreakerConfig { sliding_window: 2, minimum_calls: 2, ..CircuitBreakerConfig::default() };
/// ping.on_with(HandlerOptions::new().circuit_breaker(breaker), |_| Err::<(), _>("down"));
/// let state = || core.stats().event("ping").unwrap().handlers[0].circuit.unwrap();
///
/// assert_eq!(state(), CircuitState::Closed);
/// ping.emit(1);
/// ping.emit(2);
/// assert_eq!(state(), CircuitState::Open);
/// assert_eq!(CircuitState::HalfOpen.to_string(), "half-open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through; outcomes are recorded.
    Closed,
    /// Calls are refused; their events go to the dead-letter queue.
    Open,
    /// A limited number of probe calls go through.
    HalfOpen,
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        })
    }
}

enum State {
    Closed {
        /// `true` = failed; newest at the back.
        window: VecDeque<bool>,
        failures: u32,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        admitted: u32,
        succeeded: u32,
        failed: u32,
    },
}

/// A circuit breaker for one handler.
pub(crate) struct CircuitBreaker {
    config: CircuitBreakerConfig,
    state: Mutex<State>,
}

/// The marker error of a call refused by an open breaker.
#[derive(Debug)]
pub(crate) struct CircuitOpen;

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("circuit breaker open: the handler was not called")
    }
}

impl std::error::Error for CircuitOpen {}

impl CircuitBreaker {
    pub(crate) fn new(config: CircuitBreakerConfig) -> Self {
        CircuitBreaker {
            config,
            state: Mutex::new(State::Closed {
                window: VecDeque::with_capacity(config.sliding_window as usize),
                failures: 0,
            }),
        }
    }

    fn closed(&self) -> State {
        State::Closed {
            window: VecDeque::with_capacity(self.config.sliding_window as usize),
            failures: 0,
        }
    }

    fn trips(&self, failed: u32, calls: u32) -> bool {
        calls > 0 && (failed as f32) * 100.0 >= self.config.failure_rate_threshold * calls as f32
    }

    /// May the handler be called now? A `true` must be followed by [`record`](Self::record).
    pub(crate) fn acquire(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let State::Open { until } = *state {
            if crate::clock::now() < until {
                return false;
            }
            *state = State::HalfOpen {
                admitted: 0,
                succeeded: 0,
                failed: 0,
            };
        }
        match &mut *state {
            State::Closed { .. } => true,
            State::HalfOpen { admitted, .. } => {
                if *admitted < self.config.half_open_calls {
                    *admitted += 1;
                    true
                } else {
                    false
                }
            }
            State::Open { .. } => unreachable!("handled above"),
        }
    }

    /// Records the outcome of a call that [`acquire`](Self::acquire) allowed.
    pub(crate) fn record(&self, ok: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let next = match &mut *state {
            State::Closed { window, failures } => {
                if window.len() == self.config.sliding_window as usize
                    && window.pop_front() == Some(true)
                {
                    *failures -= 1;
                }
                window.push_back(!ok);
                if !ok {
                    *failures += 1;
                }
                let calls = window.len() as u32;
                (calls >= self.config.minimum_calls && self.trips(*failures, calls)).then(|| {
                    State::Open {
                        until: crate::clock::now() + self.config.open_for,
                    }
                })
            }
            State::HalfOpen {
                succeeded, failed, ..
            } => {
                if ok {
                    *succeeded += 1;
                } else {
                    *failed += 1;
                }
                let done = *succeeded + *failed;
                if done >= self.config.half_open_calls {
                    Some(if self.trips(*failed, done) {
                        State::Open {
                            until: crate::clock::now() + self.config.open_for,
                        }
                    } else {
                        self.closed()
                    })
                } else {
                    None
                }
            }
            // A late outcome of a call admitted before the breaker opened.
            State::Open { .. } => None,
        };
        if let Some(next) = next {
            *state = next;
        }
    }

    /// The state now (an expired open state reads as half-open).
    pub(crate) fn state(&self) -> CircuitState {
        match &*self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { until } if crate::clock::now() < *until => CircuitState::Open,
            State::Open { .. } | State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

/// Records a call's outcome even when the handler panics (the guard is dropped while
/// unwinding, before the dispatch loop catches the panic).
pub(crate) struct Outcome<'a> {
    breaker: &'a CircuitBreaker,
    ok: bool,
}

impl<'a> Outcome<'a> {
    pub(crate) fn new(breaker: &'a CircuitBreaker) -> Self {
        Outcome { breaker, ok: false }
    }

    pub(crate) fn set(&mut self, ok: bool) {
        self.ok = ok;
    }
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        self.breaker.record(self.ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CircuitBreakerConfig {
        CircuitBreakerConfig {
            failure_rate_threshold: 50.0,
            sliding_window: 4,
            minimum_calls: 4,
            open_for: Duration::from_secs(3600),
            half_open_calls: 2,
        }
    }

    #[test]
    fn opens_at_the_threshold_after_the_minimum_calls_only() {
        let breaker = CircuitBreaker::new(config());
        for ok in [false, false, false] {
            assert!(breaker.acquire());
            breaker.record(ok);
        }
        // Three failures of three calls: below the minimum of four, still closed.
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert!(breaker.acquire());
        breaker.record(true);
        // 3 of 4 failed = 75 % ≥ 50 %.
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(!breaker.acquire());
    }

    #[test]
    fn the_window_slides() {
        let breaker = CircuitBreaker::new(config());
        for ok in [false, true, true, true, true, false] {
            assert!(breaker.acquire());
            breaker.record(ok);
        }
        // The window holds [true, true, true, false]: 25 % < 50 %.
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert!(breaker.acquire());
        breaker.record(false);
        // [true, true, false, false]: 50 %.
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[test]
    fn validation_names_the_problem() {
        let mut bad = config();
        bad.failure_rate_threshold = 0.0;
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("failure_rate_threshold")
        );
        let mut bad = config();
        bad.minimum_calls = 5;
        assert!(bad.validate().unwrap_err().contains("minimum_calls"));
        assert!(CircuitBreakerConfig::default().validate().is_ok());
    }
}
