//! Editing the manifest rebuilds the consumer, without `cargo clean`.
//!
//! Builds a scratch crate whose only dependency is `eventbus` (two manifests, two modules),
//! appends an event to one manifest, and runs it again: the new event is there although no
//! Rust file changed. Then the code uses the new event, and a last run with nothing changed
//! must not recompile (the hidden `include_str!` adds no spurious rebuilds). Last, a broken
//! manifest fails the build with its report, and fixing it alone builds again.
//!
//! The scratch crate (see `tests/support/scratch.rs`) lives in `<target>/tmp/rebuild-consumer`.

#[path = "../../tests/support/scratch.rs"]
mod scratch;

use scratch::Scratch;

const EVENTS_V1: &str = "\
version: 1
package: scratch
events:
  ping:
    category: health
    payload: { n: u32 }
";

const NEW_EVENT: &str = concat!(
    "  pong:\n",
    "    category: health\n",
    "    description: Added after the first build.\n",
    "    payload: { text: string }\n",
);

const OTHER: &str = "\
version: 1
package: other
events:
  hello:
    category: greeting
";

const MAIN_V1: &str = r#"
#[eventbus::event_bus("events.yaml")]
mod events {}

#[eventbus::event_bus("other/events.yaml")]
mod other {}

fn main() {
    let names: Vec<&str> = events::MANIFEST.events.iter().map(|e| e.name).collect();
    println!("events: {}", names.join(","));
    let bus = events::EventBus::new();
    bus.ping.on(|p| println!("ping {}", p.n));
    bus.ping.emit(events::Ping { n: 1 });
    let other = other::EventBus::new();
    other.hello.on(|| println!("hello"));
    other.hello.emit();
    // USE PONG
}
"#;

const USE_PONG: &str = r#"bus.pong.on(|p| println!("pong {}", p.text));
    bus.pong.emit(events::Pong { text: "new".into() });"#;

#[test]
fn editing_the_manifest_rebuilds_the_consumer() {
    let scratch = Scratch::new("rebuild-consumer", "eventbus-scratch-consumer", "");
    scratch.write("events.yaml", EVENTS_V1);
    scratch.write("other/events.yaml", OTHER);
    scratch.write("src/main.rs", MAIN_V1);

    let (out, _) = scratch.run();
    assert_eq!(out, "events: ping\nping 1\nhello\n");

    // Only the manifest changes: cargo must rebuild because of the hidden include_str!.
    scratch.write("events.yaml", &format!("{EVENTS_V1}{NEW_EVENT}"));
    let (out, compiled) = scratch.run();
    assert!(
        compiled,
        "editing the manifest did not rebuild the consumer"
    );
    assert_eq!(out, "events: ping,pong\nping 1\nhello\n");

    // The new event is a typed field with its payload type.
    scratch.write("src/main.rs", &MAIN_V1.replace("// USE PONG", USE_PONG));
    let (out, _) = scratch.run();
    assert_eq!(out, "events: ping,pong\nping 1\nhello\npong new\n");

    // Nothing changed: nothing is recompiled.
    let (out, compiled) = scratch.run();
    assert!(!compiled, "an unchanged consumer was recompiled");
    assert_eq!(out, "events: ping,pong\nping 1\nhello\npong new\n");

    // A broken manifest fails the build with its report; fixing only the manifest (no Rust
    // file touched) builds it again: the hidden `include_str!` is emitted even on errors.
    let good = format!("{EVENTS_V1}{NEW_EVENT}");
    scratch.write(
        "events.yaml",
        &good.replace("{ text: string }", "{ text: strng }"),
    );
    scratch.build_fails_with(&[
        "events.yaml:10:22: unknown type `strng`",
        "did you mean `string`?",
    ]);
    scratch.write("events.yaml", &good);
    let (out, compiled) = scratch.run();
    assert!(compiled, "fixing the manifest did not rebuild the consumer");
    assert_eq!(out, "events: ping,pong\nping 1\nhello\npong new\n");
}
