//! Dispatch semantics of `Event`, `Signal`, `Subscription` and `BusCore`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use eventbus_runtime::{BusCore, DispatchError, Event, HandlerFailure, Signal, Subscription};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ping {
    n: u32,
    text: String,
    tags: Vec<String>,
}

fn sample(n: u32) -> Ping {
    Ping {
        n,
        text: n.to_string(),
        tags: Vec::new(),
    }
}

/// A bus with `ping: Event<Ping>`, `count: Event<u32>` and `ready: Signal`.
fn bus() -> (BusCore, Event<Ping>, Event<u32>, Signal) {
    let manifest = eventbus_runtime::__doc::manifest(&[
        ("ping", Some("Ping")),
        ("count", Some("u32")),
        ("ready", None),
    ]);
    let core = BusCore::new(manifest);
    let ping = Event::new(&core, manifest.event("ping").unwrap());
    let count = Event::new(&core, manifest.event("count").unwrap());
    let ready = Signal::new(&core, manifest.event("ready").unwrap());
    (core, ping, count, ready)
}

fn counter() -> (Arc<AtomicUsize>, impl Fn() + Send + Sync + 'static) {
    let hits = Arc::new(AtomicUsize::new(0));
    let inc = hits.clone();
    (hits, move || {
        inc.fetch_add(1, Ordering::SeqCst);
    })
}

fn hits(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::SeqCst)
}

/// Collects every failure the bus reports.
fn collect_failures(core: &BusCore) -> Arc<Mutex<Vec<HandlerFailure>>> {
    let failures = Arc::new(Mutex::new(Vec::new()));
    let sink = failures.clone();
    core.on_failure(move |f| sink.lock().unwrap().push(f.clone()));
    failures
}

/// A slot a handler can take its own (or another's) subscription from.
type Slot = Arc<Mutex<Option<Subscription>>>;

/// Unsubscribes the subscription in `slot`, if it still holds one.
fn unsubscribe_from(slot: &Slot) {
    if let Some(sub) = slot.lock().unwrap().take() {
        sub.unsubscribe();
    }
}

#[test]
fn handlers_infer_the_payload_type_and_see_the_payload() {
    let (_core, ping, count, _) = bus();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    // No annotation on `e`: it must be inferred as `&Ping`.
    ping.on(move |e| log.lock().unwrap().push(format!("{}:{}", e.n, e.text)));
    ping.on(|e| println!("{}", e.text));
    ping.once(|e| assert_eq!(e.tags.len(), 0));
    count.on(|n| assert!(*n < 10));
    ping.emit(ping_with_text(1, "one"));
    ping.emit(ping_with_text(2, "two"));
    count.emit(3);
    assert_eq!(*seen.lock().unwrap(), ["1:one", "2:two"]);
}

fn ping_with_text(n: u32, text: &str) -> Ping {
    Ping {
        text: text.to_owned(),
        ..sample(n)
    }
}

#[test]
fn listeners_run_in_subscription_order() {
    let (_core, _, count, _) = bus();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut subscriptions = Vec::new();
    for label in ["a", "b", "c", "d"] {
        let order = order.clone();
        subscriptions.push(count.on(move |_| order.lock().unwrap().push(label)));
    }
    count.emit(0);
    assert_eq!(*order.lock().unwrap(), ["a", "b", "c", "d"]);

    // Removing one from the middle and adding another keeps the rest in order.
    subscriptions.remove(1).unsubscribe();
    let tail = order.clone();
    count.on(move |_| tail.lock().unwrap().push("e"));
    order.lock().unwrap().clear();
    count.emit(0);
    assert_eq!(*order.lock().unwrap(), ["a", "c", "d", "e"]);
}

#[test]
fn dropping_a_subscription_keeps_the_listener() {
    let (_core, _, count, _) = bus();
    let (calls, inc) = counter();
    drop(count.on(move |_| inc()));
    count.emit(1);
    count.emit(2);
    assert_eq!(hits(&calls), 2);
    assert_eq!(count.listener_count(), 1);
}

#[test]
fn unsubscribe_removes_only_its_listener() {
    let (_core, _, count, _) = bus();
    let (first_calls, first) = counter();
    let (second_calls, second) = counter();
    let a = count.on(move |_| first());
    let b = count.on(move |_| second());
    assert!(a.is_active() && b.is_active());
    count.emit(1);
    a.unsubscribe();
    assert!(b.is_active());
    assert_eq!(count.listener_count(), 1);
    count.emit(2);
    assert_eq!((hits(&first_calls), hits(&second_calls)), (1, 2));
}

#[test]
fn remove_all_listeners_deactivates_every_subscription() {
    let (_core, _, count, _) = bus();
    let (calls, inc) = counter();
    let inc = Arc::new(inc);
    let inc2 = inc.clone();
    let a = count.on(move |_| inc());
    let b = count.once(move |_| inc2());
    count.remove_all_listeners();
    assert_eq!(count.listener_count(), 0);
    assert!(!a.is_active() && !b.is_active());
    count.emit(1);
    assert_eq!(hits(&calls), 0);
    // Unsubscribing a removed listener is a no-op, and new listeners work.
    a.unsubscribe();
    let (later_calls, later) = counter();
    count.on(move |_| later());
    count.emit(2);
    assert_eq!(hits(&later_calls), 1);
}

#[test]
fn once_runs_once_and_is_removed() {
    let (_core, _, count, _) = bus();
    let (calls, inc) = counter();
    let sub = count.once(move |_| inc());
    assert!(sub.is_active());
    assert_eq!(count.listener_count(), 1);
    count.emit(1);
    count.emit(2);
    assert_eq!(hits(&calls), 1);
    assert!(!sub.is_active());
    assert_eq!(count.listener_count(), 0);
}

#[test]
fn subscriptions_do_not_keep_the_bus_alive() {
    let (core, ping, count, ready) = bus();
    let sub = count.on(|_| ());
    drop((core, ping, count, ready));
    assert!(!sub.is_active());
    sub.unsubscribe();
}

#[test]
fn clones_share_listeners() {
    let (core, _, count, ready) = bus();
    let (calls, inc) = counter();
    count.clone().on(move |_| inc());
    count.emit(1);
    assert_eq!(hits(&calls), 1);
    assert_eq!(count.clone().listener_count(), 1);
    ready.clone().on(|| ());
    assert_eq!(ready.listener_count(), 1);
    core.clone().emit_json("count", "5").unwrap();
    assert_eq!(hits(&calls), 2);
}

#[test]
fn handles_are_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug + 'static>(_: &T) {}
    fn check_send_sync<T: Send + Sync + std::fmt::Debug>(_: &T) {}
    let (core, ping, _, ready) = bus();
    check(&core);
    check(&ping);
    check(&ready);
    let sub = ping.on(|_| ());
    check_send_sync(&sub);
    assert_eq!(ping.name(), "ping");
    assert_eq!(ping.meta().payload, Some("Ping"));
    assert_eq!(ready.name(), "ready");
    assert_eq!(ready.meta().payload, None);
    assert_eq!(core.manifest().package, "demo");
}

#[test]
fn debug_shows_names_and_listener_counts() {
    let (core, ping, _, ready) = bus();
    ping.on(|_| ());
    ping.on(|_| ());
    ready.on(|| ());
    assert_eq!(
        format!("{ping:?}"),
        r#"Event { name: "ping", listeners: 2 }"#
    );
    assert_eq!(
        format!("{ready:?}"),
        r#"Signal { name: "ready", listeners: 1 }"#
    );
    let core_debug = format!("{core:?}");
    assert!(core_debug.contains(r#"package: "demo""#), "{core_debug}");
    assert!(
        core_debug.contains(r#"events: ["ping", "count", "ready"]"#),
        "{core_debug}"
    );
    let sub = ready.on(|| ());
    assert_eq!(format!("{sub:?}"), "Subscription { id: 2, active: true }");
}

#[test]
#[should_panic(expected = "event `ping` is already registered on this bus")]
fn registering_an_event_twice_panics() {
    let (core, ping, _, _) = bus();
    let _again: Event<Ping> = Event::new(&core, ping.meta());
}

// ---------------------------------------------------------------------------------------------
// Signals

#[test]
fn signals_have_the_event_api_without_payload() {
    let (core, _, _, ready) = bus();
    let (calls, inc) = counter();
    let (once_calls, once_inc) = counter();
    let sub = ready.on(inc);
    ready.once(once_inc);
    ready.on(|| Ok::<(), String>(()));
    assert_eq!(ready.listener_count(), 3);
    ready.emit();
    ready.emit();
    assert_eq!((hits(&calls), hits(&once_calls)), (2, 1));
    sub.unsubscribe();
    assert_eq!(ready.listener_count(), 1);
    ready.remove_all_listeners();
    assert_eq!(ready.listener_count(), 0);

    let failures = collect_failures(&core);
    ready.on(|| Err::<(), _>("not ready"));
    ready.emit();
    let failures = failures.lock().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].event(), "ready");
    assert_eq!(failures[0].payload(), &serde_json::Value::Null);
}

// ---------------------------------------------------------------------------------------------
// Reentrancy

#[test]
fn a_handler_can_unsubscribe_itself() {
    let (_core, _, count, _) = bus();
    let (calls, inc) = counter();
    let slot: Slot = Arc::default();
    let own = slot.clone();
    let sub = count.on(move |_| {
        inc();
        unsubscribe_from(&own);
    });
    *slot.lock().unwrap() = Some(sub);
    count.emit(1);
    count.emit(2);
    assert_eq!(hits(&calls), 1);
    assert_eq!(count.listener_count(), 0);
}

#[test]
fn a_listener_removed_during_an_emit_is_not_called_by_it() {
    let (_core, _, count, _) = bus();
    let slot: Slot = Arc::default();
    let victim_slot = slot.clone();
    count.on(move |_| {
        unsubscribe_from(&victim_slot);
    });
    let (victim_calls, victim) = counter();
    *slot.lock().unwrap() = Some(count.on(move |_| victim()));
    count.emit(1);
    count.emit(2);
    assert_eq!(hits(&victim_calls), 0);
    assert_eq!(count.listener_count(), 1);
}

#[test]
fn a_listener_removed_after_the_list_changed_mid_emit_is_still_skipped() {
    // The emit walks the snapshot it started with; the first handler's subscribe replaces
    // that snapshot before its unsubscribe runs, so the removal must reach the older one.
    let (_core, _, count, _) = bus();
    let slot: Slot = Arc::default();
    let (added_calls, added) = counter();
    let added = Arc::new(added);
    let (event, victim_slot) = (count.clone(), slot.clone());
    count.on(move |_| {
        let added = added.clone();
        event.on(move |_| added());
        unsubscribe_from(&victim_slot);
    });
    let (victim_calls, victim) = counter();
    *slot.lock().unwrap() = Some(count.on(move |_| victim()));
    count.emit(1);
    assert_eq!(hits(&victim_calls), 0, "removed during emit 1");
    assert_eq!(hits(&added_calls), 0, "added during emit 1");
    count.emit(2);
    assert_eq!(hits(&victim_calls), 0);
    assert_eq!(hits(&added_calls), 1);
}

#[test]
fn a_listener_removed_by_another_thread_mid_emit_is_skipped() {
    let (_core, _, count, _) = bus();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (removed_tx, removed_rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, removed_rx) = (Mutex::new(entered_tx), Mutex::new(removed_rx));
    count.once(move |_| {
        entered_tx.lock().unwrap().send(()).unwrap();
        removed_rx.lock().unwrap().recv().unwrap();
    });
    let (victim_calls, victim) = counter();
    let victim = count.on(move |_| victim());
    std::thread::scope(|s| {
        let emitter = s.spawn(|| count.emit(1));
        // The emit is inside the first handler: remove the second from here.
        entered_rx.recv().unwrap();
        victim.unsubscribe();
        removed_tx.send(()).unwrap();
        emitter.join().unwrap();
    });
    assert_eq!(hits(&victim_calls), 0);
    assert_eq!(count.listener_count(), 0);
}

#[test]
fn a_removal_reaches_a_snapshot_retired_by_a_nested_emit() {
    // The outer emit walks [A, B, C]. A subscribes D and emits again; in that nested emit B
    // removes C. The outer emit, still on the older list, must skip C too.
    let (_core, _, count, _) = bus();
    let slot: Slot = Arc::default();
    let (c_calls, c) = counter();
    let (d_calls, d) = counter();
    let d = Arc::new(d);
    let event = count.clone();
    count.on(move |n| {
        if *n == 0 {
            let d = d.clone();
            event.on(move |_| d());
            event.emit(1);
        }
    });
    let victim_slot = slot.clone();
    count.on(move |n| {
        if *n == 1 {
            unsubscribe_from(&victim_slot);
        }
    });
    *slot.lock().unwrap() = Some(count.on(move |_| c()));
    count.emit(0);
    assert_eq!(hits(&c_calls), 0);
    assert_eq!(hits(&d_calls), 1, "D runs in the nested emit only");
    assert_eq!(count.listener_count(), 3);
}

#[test]
fn a_listener_whose_state_subscribes_when_dropped_can_be_unsubscribed() {
    // Dropping the last copy of a removed listener runs its captures' `Drop`, which may use
    // the bus: that must not happen under the list's writer lock (it deadlocked there).
    struct SubscribesOnDrop(Event<u32>);
    impl Drop for SubscribesOnDrop {
        fn drop(&mut self) {
            self.0.on(|_| ());
        }
    }
    let (_core, _, count, _) = bus();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let event = count.clone();
    thread::spawn(move || {
        let guard = SubscribesOnDrop(event.clone());
        event
            .on(move |_| {
                let _ = &guard;
            })
            .unsubscribe();
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("unsubscribe hung: a listener was dropped under the writer lock");
    // The removed listener is freed once no thread of this process is inside a read section
    // that began before the removal (other tests emit concurrently); reads help free it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count.listener_count() != 1 && std::time::Instant::now() < deadline {
        thread::yield_now();
    }
    assert_eq!(count.listener_count(), 1, "the drop's own subscription");
}

#[test]
fn a_once_handler_finds_itself_removed_and_a_nested_emit_skips_it() {
    let (_core, _, count, _) = bus();
    let (once_calls, once) = counter();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (event, inside) = (count.clone(), seen.clone());
    count.once(move |n| {
        once();
        inside.lock().unwrap().push((*n, event.listener_count()));
        if *n == 0 {
            event.emit(1);
        }
    });
    let (other_calls, other) = counter();
    count.on(move |_| other());
    count.emit(0);
    count.emit(2);
    assert_eq!(hits(&once_calls), 1);
    assert_eq!(*seen.lock().unwrap(), [(0, 1)]);
    assert_eq!(hits(&other_calls), 3, "nested emit 1, then emits 0 and 2");
    assert_eq!(count.listener_count(), 1);
}

#[test]
fn subscribes_racing_with_once_claims_lose_no_listener() {
    const ROUNDS: usize = if cfg!(miri) { 10 } else { 200 };
    const ADDS: usize = if cfg!(miri) { 10 } else { 200 };
    let (_core, _, count, _) = bus();
    let (on_calls, on) = counter();
    let on = Arc::new(on);
    let (once_calls, once) = counter();
    let once = Arc::new(once);
    let barrier = Barrier::new(4);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..ADDS {
                    let on = on.clone();
                    count.on(move |_| on());
                }
            });
        }
        s.spawn(|| {
            barrier.wait();
            for _ in 0..ROUNDS {
                let once = once.clone();
                count.once(move |_| once());
                count.emit(0);
            }
        });
        s.spawn(|| {
            barrier.wait();
            for _ in 0..ROUNDS {
                count.emit(0);
            }
        });
    });
    assert_eq!(
        hits(&once_calls),
        ROUNDS,
        "each once listener ran exactly once"
    );
    assert_eq!(count.listener_count(), 2 * ADDS);
    let before = hits(&on_calls);
    count.emit(1);
    assert_eq!(hits(&on_calls) - before, 2 * ADDS);
}

#[test]
fn a_listener_added_during_an_emit_runs_from_the_next_emit() {
    let (_core, _, count, _) = bus();
    let (late_calls, late) = counter();
    let late = Arc::new(late);
    let event = count.clone();
    count.once(move |_| {
        let late = late.clone();
        event.on(move |_| late());
    });
    count.emit(1);
    assert_eq!(
        hits(&late_calls),
        0,
        "added during emit 1, must not run in it"
    );
    count.emit(2);
    assert_eq!(hits(&late_calls), 1);
}

#[test]
fn a_handler_can_remove_all_listeners_mid_emit() {
    let (_core, _, count, _) = bus();
    let event = count.clone();
    count.on(move |_| event.remove_all_listeners());
    let (later_calls, later) = counter();
    count.on(move |_| later());
    count.emit(1);
    assert_eq!(hits(&later_calls), 0);
    assert_eq!(count.listener_count(), 0);
}

#[test]
fn a_handler_can_emit_the_same_and_other_events() {
    let (core, ping, count, ready) = bus();
    let (ping_calls, on_ping) = counter();
    let (ready_calls, on_ready) = counter();
    ping.on(move |_| on_ping());
    ready.on(on_ready);
    let event = count.clone();
    let (count_calls, on_count) = counter();
    count.on(move |n| {
        on_count();
        if *n > 0 {
            // Recursion into the same event, a typed emit of another, one by name.
            event.emit(n - 1);
            ping.emit(sample(*n));
            core.emit_json("ready", "{}").unwrap();
        }
    });
    count.emit(3);
    assert_eq!(hits(&count_calls), 4);
    assert_eq!(hits(&ping_calls), 3);
    assert_eq!(hits(&ready_calls), 3);
}

#[test]
fn a_handler_can_subscribe_and_unsubscribe_other_events() {
    let (_core, ping, count, ready) = bus();
    let (ready_calls, on_ready) = counter();
    let on_ready = Arc::new(on_ready);
    let slot: Slot = Arc::default();
    let ready_in_handler = ready.clone();
    let slot_in_handler = slot.clone();
    count.on(move |n| {
        if *n == 1 {
            let on_ready = on_ready.clone();
            *slot_in_handler.lock().unwrap() = Some(ready_in_handler.on(move || on_ready()));
        } else if let Some(sub) = slot_in_handler.lock().unwrap().take() {
            sub.unsubscribe();
        }
        ping.once(|_| ());
    });
    count.emit(1);
    ready.emit();
    count.emit(2);
    ready.emit();
    assert_eq!(hits(&ready_calls), 1);
    assert_eq!(ready.listener_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Threads

#[test]
fn concurrent_emits_with_subscription_churn_add_up() {
    const EMITTERS: usize = 4;
    const EMITS: usize = 2_000;
    const CHURNERS: usize = 2;
    const CHURNS: usize = 300;
    let (_core, _, count, _) = bus();
    let (a_calls, a) = counter();
    let (b_calls, b) = counter();
    count.on(move |_| a());
    count.on(move |_| b());

    thread::scope(|s| {
        for _ in 0..EMITTERS {
            s.spawn(|| {
                for i in 0..EMITS {
                    count.emit(i as u32);
                }
            });
        }
        for _ in 0..CHURNERS {
            s.spawn(|| {
                for _ in 0..CHURNS {
                    let (own_calls, own) = counter();
                    let sub = count.on(move |_| own());
                    assert!(sub.is_active());
                    // Subscribed before this emit started: it must be called by it.
                    count.emit(0);
                    assert!(hits(&own_calls) >= 1);
                    sub.unsubscribe();
                }
            });
        }
    });

    let expected = EMITTERS * EMITS + CHURNERS * CHURNS;
    assert_eq!(hits(&a_calls), expected);
    assert_eq!(hits(&b_calls), expected);
    assert_eq!(count.listener_count(), 2);
}

#[test]
fn concurrent_subscribes_lose_no_listener() {
    const THREADS: usize = 4;
    const EACH: usize = 100;
    let (_core, _, count, _) = bus();
    let (calls, inc) = counter();
    let inc = Arc::new(inc);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..EACH {
                    let inc = inc.clone();
                    count.on(move |_| inc());
                    // Emits racing with the subscriptions of other threads.
                    count.emit(0);
                }
            });
        }
    });
    assert_eq!(count.listener_count(), THREADS * EACH);
    let before = hits(&calls);
    count.emit(1);
    assert_eq!(hits(&calls) - before, THREADS * EACH);
}

#[test]
fn once_runs_exactly_once_under_concurrent_emits() {
    const THREADS: usize = 4;
    let (_core, _, count, _) = bus();
    for _round in 0..50 {
        let (calls, inc) = counter();
        let sub = count.once(move |_| inc());
        let barrier = Barrier::new(THREADS);
        thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    barrier.wait();
                    for i in 0..20 {
                        count.emit(i);
                    }
                });
            }
        });
        assert_eq!(hits(&calls), 1);
        assert!(!sub.is_active());
        assert_eq!(count.listener_count(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Failures

#[test]
fn panics_and_errors_become_failures_and_the_other_handlers_still_run() {
    let (core, ping, _, _) = bus();
    let failures = collect_failures(&core);
    let (ok_calls, ok) = counter();
    let ok = Arc::new(ok);
    let (ok1, ok2, ok3) = (ok.clone(), ok.clone(), ok.clone());
    ping.on(move |_| ok1()); // #1
    ping.on(|_| -> () { panic!("static boom") }); // #2
    ping.on(move |_| ok2()); // #3
    ping.on(|p| Err(format!("bad n {}", p.n))); // #4
    ping.on(|p| -> () { panic!("formatted boom {}", p.n) }); // #5
    ping.on(move |_| ok3()); // #6

    ping.emit(ping_with_text(7, "seven"));
    assert_eq!(hits(&ok_calls), 3);
    {
        let failures = failures.lock().unwrap();
        let summary: Vec<_> = failures
            .iter()
            .map(|f| {
                (
                    f.event(),
                    f.handler(),
                    f.handler_id(),
                    f.error(),
                    f.panicked(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("ping", "handler #2", 2, "static boom", true),
                ("ping", "handler #4", 4, "bad n 7", false),
                ("ping", "handler #5", 5, "formatted boom 7", true),
            ]
        );
        for failure in failures.iter() {
            assert_eq!(failure.attempt(), 1);
            assert_eq!(
                failure.payload(),
                &serde_json::json!({"n": 7, "text": "seven", "tags": []})
            );
        }
        assert_eq!(
            failures[1].to_string(),
            "handler #4 of event `ping` failed (attempt 1): bad n 7"
        );
        assert_eq!(
            failures[0].to_string(),
            "handler #2 of event `ping` panicked (attempt 1): static boom"
        );
    }

    // The bus still works afterwards.
    ping.emit(sample(8));
    assert_eq!(hits(&ok_calls), 6);
    assert_eq!(failures.lock().unwrap().len(), 6);
    assert_eq!(ping.listener_count(), 6);
}

#[test]
fn non_string_panics_are_reported_too() {
    let (core, _, count, _) = bus();
    let failures = collect_failures(&core);
    count.on(|_| -> () { std::panic::panic_any(42_u8) });
    count.emit(1);
    let failures = failures.lock().unwrap();
    assert_eq!(failures[0].error(), "<non-string panic payload>");
    assert!(failures[0].panicked());
    assert_eq!(failures[0].payload(), &serde_json::json!(1));
}

#[derive(Debug)]
struct Outer(std::io::Error);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not write the cache")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn handlers_can_use_question_mark_with_any_boxable_error() {
    let (core, ping, _, _) = bus();
    let failures = collect_failures(&core);
    ping.on(|p| {
        let n: u8 = p.text.parse()?;
        assert!(n > 0);
        Ok::<(), std::num::ParseIntError>(())
    });
    ping.on(
        |_| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Err("a str error")?;
            Ok(())
        },
    );
    ping.on(|_| Err::<(), _>(std::io::Error::other("an io error")));
    ping.on(|_| Err::<(), _>(Outer(std::io::Error::other("disk full"))));
    ping.emit(ping_with_text(1, "x"));
    let errors: Vec<_> = failures
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.error().to_owned())
        .collect();
    assert_eq!(
        errors,
        [
            "invalid digit found in string",
            "a str error",
            "an io error",
            "could not write the cache: disk full",
        ]
    );
}

#[test]
fn a_new_failure_observer_replaces_the_old_one() {
    let (core, _, count, _) = bus();
    let first = collect_failures(&core);
    count.on(|_| Err::<(), _>("nope"));
    count.emit(1);
    let second = collect_failures(&core);
    count.emit(2);
    assert_eq!(first.lock().unwrap().len(), 1);
    assert_eq!(second.lock().unwrap().len(), 1);
}

#[test]
fn a_panicking_failure_observer_does_not_break_the_bus() {
    let (core, _, count, _) = bus();
    core.on_failure(|_| panic!("observer bug"));
    let (calls, inc) = counter();
    count.on(|_| Err::<(), _>("nope"));
    count.on(move |_| inc());
    count.emit(1);
    count.emit(2);
    assert_eq!(hits(&calls), 2);
}

/// Without an observer, each failure is written to stderr once. Checked in a child process
/// (this test binary re-run on this test alone) so the real stderr can be read.
#[test]
fn failures_without_an_observer_go_to_stderr() {
    const CHILD: &str = "EVENTBUS_RUNTIME_STDERR_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let (_core, _, count, _) = bus();
        count.on(|_| Err::<(), _>("disk full"));
        count.on(|_| -> () { panic!("kaboom") });
        count.on(|_| ());
        count.emit(1);
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "failures_without_an_observer_go_to_stderr",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stderr}");
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("eventbus: "))
        .collect();
    assert_eq!(
        reports,
        [
            "eventbus: handler #1 of event `count` failed (attempt 1): disk full",
            "eventbus: handler #2 of event `count` panicked (attempt 1): kaboom",
        ],
        "stderr was:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// emit_json

#[test]
fn emit_json_deserializes_and_emits_typed() {
    let (core, ping, count, _) = bus();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    ping.on(move |p| log.lock().unwrap().push(p.clone()));
    let (count_calls, on_count) = counter();
    count.on(move |n| {
        assert_eq!(*n, 42);
        on_count();
    });
    core.emit_json("ping", r#"{"n": 5, "text": "five", "tags": ["a"]}"#)
        .unwrap();
    core.emit_json("count", " 42 ").unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [Ping {
            n: 5,
            text: "five".into(),
            tags: vec!["a".into()]
        }]
    );
    assert_eq!(hits(&count_calls), 1);
}

#[test]
fn emit_json_names_unknown_events_with_a_hint() {
    let (core, _, _, _) = bus();
    let error = core.emit_json("pnig", "{}").unwrap_err();
    assert_eq!(
        error,
        DispatchError::UnknownEvent {
            name: "pnig".into(),
            suggestion: Some("ping"),
            known: vec!["ping", "count", "ready"],
        }
    );
    assert_eq!(
        error.to_string(),
        "unknown event `pnig`; did you mean `ping`? (known events: ping, count, ready)"
    );
    let error = core.emit_json("somethingElse", "{}").unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown event `somethingElse` (known events: ping, count, ready)"
    );
}

#[test]
fn emit_json_reports_invalid_payloads_with_path_and_position() {
    let (core, ping, count, _) = bus();
    let (calls, inc) = counter();
    let inc = Arc::new(inc);
    let inc2 = inc.clone();
    ping.on(move |_| inc());
    count.on(move |_| inc2());

    let invalid = |event: &str, json: &str| match core.emit_json(event, json) {
        Err(DispatchError::InvalidPayload {
            event,
            path,
            message,
        }) => (event, path, message),
        other => panic!("expected InvalidPayload for {json}, got {other:?}"),
    };

    let (event, path, message) = invalid("ping", r#"{"n": 1, "text": "x", "tags": ["a", 2]}"#);
    assert_eq!((event, path.as_str()), ("ping", "$.tags[1]"));
    assert!(
        message.starts_with("invalid type: integer `2`, expected a string at line 1 column"),
        "{message}"
    );

    let (_, path, message) = invalid("ping", "{\n  \"text\": \"x\",\n  \"tags\": []\n}");
    assert_eq!(path, "$");
    assert!(
        message.starts_with("missing field `n` at line 4"),
        "{message}"
    );

    let (_, path, message) = invalid("ping", r#"{"n": -1, "text": "x", "tags": []}"#);
    assert_eq!(path, "$.n");
    assert!(message.contains("expected u32"), "{message}");

    let (_, _, message) = invalid("ping", r#"{"n": 1,"#);
    assert!(message.contains("EOF"), "{message}");
    let (_, _, message) = invalid("count", "1 2");
    assert!(message.contains("trailing characters"), "{message}");
    let (_, _, message) = invalid("count", "null");
    assert!(message.contains("invalid type: null"), "{message}");

    let error = core.emit_json("ping", r#"{"n": "x"}"#).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid payload for event `ping` at $.n: invalid type: string \"x\""),
        "{error}"
    );
    assert_eq!(hits(&calls), 0, "nothing is emitted on error");
}

#[test]
fn emit_json_for_payload_less_events_accepts_null_and_empty_object_only() {
    let (core, _, _, ready) = bus();
    let (calls, inc) = counter();
    ready.on(inc);
    for json in ["null", " null\n", "{}", "{ }"] {
        core.emit_json("ready", json)
            .unwrap_or_else(|e| panic!("{json:?}: {e}"));
    }
    assert_eq!(hits(&calls), 4);

    for json in ["1", "[]", "\"\"", r#"{"a": 1}"#, "false"] {
        assert_eq!(
            core.emit_json("ready", json),
            Err(DispatchError::UnexpectedPayload { event: "ready" }),
            "{json}"
        );
    }
    assert_eq!(
        DispatchError::UnexpectedPayload { event: "ready" }.to_string(),
        "event `ready` takes no payload; send `null` or `{}` as its JSON"
    );
    for json in ["", "nul", "{"] {
        assert!(
            matches!(
                core.emit_json("ready", json),
                Err(DispatchError::InvalidPayload { event: "ready", .. })
            ),
            "{json:?}"
        );
    }
    assert_eq!(hits(&calls), 4);
}
