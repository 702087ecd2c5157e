//! Built without the `async` feature (`cargo test -p eventbus-runtime --no-default-features`):
//! a policy that needs timers is refused when the bus is built, never silently ignored; the
//! rest of the reliability layer (dead letters, circuit breakers, labels, stats) still works.

#![cfg(not(feature = "async"))]

use std::time::Duration;

use eventbus_runtime::{BuildError, BusCore, DeadLetterReason, Event, Policies};

fn throttled() -> &'static eventbus_runtime::ManifestMeta {
    eventbus_runtime::__doc::manifest_with(&[(
        "ping",
        Some("u32"),
        Policies {
            throttle: Some(Duration::from_millis(500)),
            ..Policies::NONE
        },
    )])
}

#[test]
fn a_policy_needing_timers_is_a_build_error() {
    let error = BusCore::builder(throttled()).build().unwrap_err();
    assert_eq!(
        error,
        BuildError::Unsupported {
            event: "ping",
            policy: "throttle",
            feature: "async"
        }
    );
    assert!(
        error.to_string().contains("needs the `async` feature"),
        "{error}"
    );
}

#[test]
#[should_panic(expected = "event `ping` declares `throttle`, which needs the `async` feature")]
fn bus_core_new_panics_with_the_same_message() {
    let _ = BusCore::new(throttled());
}

#[test]
fn failures_are_dead_lettered_without_async() {
    let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    let core = BusCore::new(manifest);
    core.on_failure(|_| {});
    let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    ping.on_labeled("db", |_| Err::<(), _>("down"));
    ping.emit(1);
    let letters = core.dead_letters().list().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadLetterReason::Failed);
    assert_eq!(core.stats().event("ping").unwrap().failed, 1);
}

#[test]
fn a_manifest_circuit_breaker_works_and_a_manifest_concurrency_is_refused_without_async() {
    use eventbus_runtime::{CircuitBreakerConfig, CircuitState};
    let breaker = CircuitBreakerConfig {
        minimum_calls: 2,
        ..CircuitBreakerConfig::default()
    };
    let manifest = eventbus_runtime::__doc::manifest_with(&[(
        "ping",
        Some("u32"),
        Policies {
            circuit_breaker: Some(breaker),
            ..Policies::NONE
        },
    )]);
    let core = BusCore::new(manifest);
    core.on_failure(|_| {});
    let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    ping.on(|_| Err::<(), _>("down"));
    ping.emit(1);
    ping.emit(2);
    let circuit = core.stats().event("ping").unwrap().handlers[0].circuit;
    assert_eq!(circuit, Some(CircuitState::Open));

    let manifest = eventbus_runtime::__doc::manifest_with(&[(
        "ping",
        Some("u32"),
        Policies {
            concurrency: Some(4),
            ..Policies::NONE
        },
    )]);
    assert_eq!(
        BusCore::builder(manifest).build().unwrap_err(),
        BuildError::Unsupported {
            event: "ping",
            policy: "concurrency",
            feature: "async"
        }
    );
}
