//! The golden Rust files (kept fresh by `codegen/tests/golden.rs`) compiled in a crate whose
//! only dependency is `eventbus`, and used: the generated code must not only look right.

use std::path::Path;

#[allow(dead_code)]
mod generated {
    pub mod minimal {
        include!("golden/minimal.rs");
    }
    pub mod shapes {
        include!("golden/shapes.rs");
    }
    pub mod keywords {
        include!("golden/keywords.rs");
    }
    pub mod dappnode {
        include!("golden/dappnode.rs");
    }
}

#[test]
fn the_golden_code_is_usable() {
    use generated::shapes::*;

    let bus = EventBus::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    bus.tree
        .on(move |t: &Tree| sink.lock().unwrap().push(t.label.clone()));
    bus.tree.emit(Tree {
        label: "root".into(),
        children: vec![],
        parent: Some(Box::new(Tree {
            label: "up".into(),
            children: vec![],
            parent: None,
        })),
    });
    assert_eq!(*seen.lock().unwrap(), ["root"]);
    assert_eq!(bus.inline_thing.name(), "inlineThing");
    assert_eq!(MANIFEST.package, "shapes");
    assert_eq!(
        Level::ALL.map(|l| l.as_str()),
        ["low", "mid-level", "2fa", "high.v2"]
    );
    assert_eq!(Level::V2fa.to_string(), "2fa");
}

#[test]
fn keywords_work_as_names() {
    use generated::keywords::*;

    let bus = EventBus::new();
    let payload = Keywords {
        r#type: "t".into(),
        default: true,
        r#fn: 1,
        class: Kind::Self_,
        delete: None,
        self_: -1,
        super_: 2,
        crate_: 3,
        r#async: vec!["a".into()],
        r#await: Default::default(),
        r#let: u64::MAX,
        r#yield: eventbus::Json::Null,
        interface: "i".into(),
        function: "f".into(),
        export: "e".into(),
        new: "n".into(),
        r#static: "s".into(),
    };
    let json = serde_json::to_value(&payload).unwrap();
    assert_eq!(json["type"], "t");
    assert_eq!(json["class"], "self");
    assert_eq!(json["let"], u64::MAX.to_string());
    assert_eq!(json["self"], -1);
    assert!(json.get("delete").is_none());
    let back: Keywords = serde_json::from_value(json).unwrap();
    assert_eq!(back, payload);

    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    bus.r#type.on(move |k| {
        assert_eq!(k.r#fn, 1);
        h.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    bus.r#type.emit(payload);
    bus.self_.emit();
    bus.r#match.emit(Match {
        r#in: "x".into(),
        r#where: "y".into(),
    });
    let h = hits.clone();
    bus.delete.on(move |d| {
        assert_eq!(d.delete, Kind::Delete);
        h.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    bus.delete.emit(Delete {
        delete: Kind::Delete,
    });
    assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(bus.delete.name(), "delete");
    assert_eq!(bus.self_.name(), "self");
    assert_eq!(bus.core.name(), "core");
    assert_eq!(bus.core().manifest().package, "keywords");
}

#[test]
fn sixty_four_bit_integers_travel_as_strings() {
    use generated::shapes::*;
    let json = serde_json::json!({ "id": "18446744073709551615" });
    let b: Batched = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(b.id, u64::MAX);
    assert_eq!(serde_json::to_value(&b).unwrap(), json);
    // A number beyond 2^53 would already have lost precision in a browser: rejected.
    assert!(serde_json::from_str::<Batched>(r#"{"id": 9007199254740993}"#).is_err());
    // A safe integer as a number is accepted.
    assert_eq!(
        serde_json::from_str::<Batched>(r#"{"id": 9007199254740991}"#)
            .unwrap()
            .id,
        (1 << 53) - 1
    );
}

#[test]
fn optional_fields_are_omitted_and_null_is_rejected() {
    use generated::shapes::*;
    let thing = InlineThing {
        count: 3,
        level: None,
    };
    assert_eq!(serde_json::to_string(&thing).unwrap(), r#"{"count":3}"#);
    assert!(serde_json::from_str::<InlineThing>(r#"{"count":3,"level":null}"#).is_err());
    let with = serde_json::from_str::<InlineThing>(r#"{"count":3,"level":"mid-level"}"#).unwrap();
    assert_eq!(with.level, Some(Level::MidLevel));
    // Unknown enum values are an error, never a panic.
    let err = serde_json::from_str::<InlineThing>(r#"{"count":3,"level":"loud"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown variant `loud`"), "{err}");
}

#[test]
fn manifest_examples_deserialize_into_the_generated_types() {
    use generated::dappnode;
    let model =
        eventbus_codegen::Model::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("events.yaml"))
            .unwrap();
    let bus = dappnode::EventBus::new();
    let mut checked = 0;
    for e in model.events.iter().filter(|e| e.example.is_some()) {
        let json = serde_json::to_string(e.example.as_ref().unwrap()).unwrap();
        bus.core()
            .emit_json(&e.name, &json)
            .unwrap_or_else(|err| panic!("{}: {err}", e.name));
        checked += 1;
    }
    assert!(checked >= 3, "events.yaml should carry examples");
}
