//! A `tracing` subscriber that records every event, for tests that check what the bus logs
//! without a formatting subscriber. Included by the test binaries that need it with
//! `#[path = "support/recorder.rs"] mod recorder;`.

// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::dispatcher::DefaultGuard;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Metadata};

/// One `tracing` event: its level, target and fields as text.
#[derive(Debug, Clone)]
pub struct Logged {
    pub level: Level,
    pub target: String,
    pub fields: BTreeMap<String, String>,
}

impl Logged {
    /// The field `name`; panics, showing the whole event, if it has none.
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no field `{name}` in {self:?}"))
    }
}

impl Visit for Logged {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.fields
            .insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields
            .insert(field.name().to_owned(), value.to_owned());
    }
}

/// A subscriber that records every event (no spans).
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Logged>>>);

impl Recorder {
    /// Installs a recorder as this thread's default subscriber until the guard drops.
    ///
    /// Run the log calls under test once before (without a recorder): tracing caches per
    /// callsite whether any subscriber wants it, and with only thread-scoped subscribers in the
    /// process that cache may be computed on another test's thread, which has none; the
    /// recorder then misses events (about one run in ten). So the callsites must already be
    /// registered, and every cached interest is recomputed here with the recorder installed.
    pub fn install() -> (Recorder, DefaultGuard) {
        let recorder = Recorder::default();
        let guard = tracing::subscriber::set_default(recorder.clone());
        tracing::callsite::rebuild_interest_cache();
        (recorder, guard)
    }

    /// Takes the events recorded so far whose target is `target`; the others are dropped.
    pub fn take(&self, target: &str) -> Vec<Logged> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .filter(|l| l.target == target)
            .collect()
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut logged = Logged {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields: BTreeMap::new(),
        };
        event.record(&mut logged);
        self.0.lock().unwrap().push(logged);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
