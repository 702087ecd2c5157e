//! `#[event_bus]` as a service crate uses it: several manifests and subsets side by side, user
//! items next to the generated ones, and the typed API working end to end.

use std::sync::{Arc, Mutex};

/// The demo manifest of this crate, with user items that use the generated types.
#[eventbus::event_bus("events.yaml")]
pub mod demo {
    impl PackageEvent {
        /// Whether the operation is over, one way or the other.
        pub fn is_done(&self) -> bool {
            matches!(self.status, PackageStatus::Completed | PackageStatus::Error)
        }
    }

    /// A constructor written by the user.
    pub fn started(dnp_name: &str) -> PackageEvent {
        PackageEvent {
            dnp_name: dnp_name.to_owned(),
            status: PackageStatus::Started,
            progress: None,
        }
    }

    /// A user type that holds a generated one.
    #[derive(Default)]
    pub struct Service {
        pub bus: EventBus,
    }
}

/// A second manifest in the same crate: the DAppNode one, only its chain events.
#[eventbus::event_bus("../events.yaml", categories = ["chain"])]
pub mod chain {}

/// The same manifest again, another subset: named events plus a category.
#[eventbus::event_bus(
    "../events.yaml",
    events = ["notification", "packageInstall"],
    categories = ["system"]
)]
pub mod mixed {}

/// The whole DAppNode manifest, in a private module.
#[eventbus::event_bus("../events.yaml")]
mod dappnode {}

fn names(manifest: &eventbus::ManifestMeta) -> Vec<&str> {
    manifest.events.iter().map(|e| e.name).collect()
}

#[test]
fn user_items_use_the_generated_types() {
    let service = demo::Service::default();
    let done = Arc::new(Mutex::new(Vec::new()));
    let sink = done.clone();
    service
        .bus
        .package_install
        .on(move |e| sink.lock().unwrap().push(e.is_done()));
    service
        .bus
        .package_install
        .emit(demo::started("bitcoin.dnp.dappnode.eth"));
    service.bus.package_install.emit(demo::PackageEvent {
        status: demo::PackageStatus::Completed,
        progress: Some(1.0),
        ..demo::started("bitcoin.dnp.dappnode.eth")
    });
    assert_eq!(*done.lock().unwrap(), [false, true]);
}

#[test]
fn two_manifests_live_side_by_side() {
    assert_eq!(demo::MANIFEST.package, "demo");
    assert_eq!(dappnode::MANIFEST.package, "dappnode");
    // Each module has its own `EventBus` and its own `PackageEvent`.
    let demo_bus = demo::EventBus::new();
    let dappnode_bus = dappnode::EventBus::new();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (hits.clone(), hits.clone());
    demo_bus
        .request_packages
        .on(move || a.lock().unwrap().push("demo"));
    dappnode_bus
        .request_packages
        .on(move || b.lock().unwrap().push("dappnode"));
    demo_bus.request_packages.emit();
    dappnode_bus.request_packages.emit();
    assert_eq!(*hits.lock().unwrap(), ["demo", "dappnode"]);
    let _: dappnode::PackageEvent = dappnode::PackageEvent {
        dnp_name: "geth.dnp.dappnode.eth".into(),
        version: "0.1.45".into(),
        operation: dappnode::PackageOperation::Update,
        status: dappnode::PackageStatus::Completed,
        progress: None,
        error: None,
    };
}

#[test]
fn options_select_a_subset() {
    // The same selection made by hand on the whole manifest's metadata.
    let select = |keep: &dyn Fn(&eventbus::EventMeta) -> bool| -> Vec<&str> {
        dappnode::MANIFEST
            .events
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.name)
            .collect()
    };
    let chain = select(&|e| e.category == "chain");
    assert!(chain.contains(&"chainSync"), "{chain:?}");
    assert_eq!(names(&chain::MANIFEST), chain);
    let mixed =
        select(&|e| ["notification", "packageInstall"].contains(&e.name) || e.category == "system");
    assert!(mixed.len() > 2, "{mixed:?}");
    assert_eq!(names(&mixed::MANIFEST), mixed);
    assert!(dappnode::MANIFEST.events.len() > mixed.len());

    // The subset is a model of its own: its fingerprint differs from the whole manifest's.
    let bus = chain::EventBus::new();
    let seen = Arc::new(Mutex::new(None));
    let sink = seen.clone();
    bus.chain_sync
        .on(move |e: &chain::ChainEvent| *sink.lock().unwrap() = Some(e.block_height));
    bus.chain_sync.emit(chain::ChainEvent {
        network: "mainnet".into(),
        syncing: true,
        progress: 0.5,
        peers: 3,
        block_height: 19_876_543,
    });
    assert_eq!(*seen.lock().unwrap(), Some(19_876_543));
    assert_ne!(chain::MANIFEST.fingerprint, dappnode::MANIFEST.fingerprint);
}

#[test]
fn works_in_a_function_body() {
    #[eventbus::event_bus("events.yaml", events = ["chainSync"])]
    mod local {}

    let bus = local::EventBus::new();
    assert_eq!(bus.chain_sync.name(), "chainSync");
    assert_eq!(names(&local::MANIFEST), ["chainSync"]);
}
