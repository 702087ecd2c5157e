//! A crate that uses the DAppNode events through the build-script route, with `eventbus` as
//! its only dependency (no serde). Its tests exercise the generated API end to end.

/// The DAppNode events, generated into `OUT_DIR` by `build.rs`.
pub mod events {
    eventbus::include_events!();
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::events::*;

    fn install(status: PackageStatus) -> PackageEvent {
        PackageEvent {
            dnp_name: "bitcoin.dnp.dappnode.eth".into(),
            version: "1.0.0".into(),
            operation: PackageOperation::Install,
            status,
            progress: None,
            error: None,
        }
    }

    #[test]
    fn typed_emit_reaches_typed_handlers() {
        let bus = EventBus::new();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        bus.package_install
            .on(move |e| s.lock().unwrap().push((e.dnp_name.clone(), e.status)));
        // A `persist: true` event: `emit` says whether it was stored (no store here).
        let receipt = bus
            .package_install
            .emit(install(PackageStatus::Started))
            .unwrap();
        assert!(!receipt.is_stored());
        bus.package_install
            .emit(install(PackageStatus::Completed))
            .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (
                    "bitcoin.dnp.dappnode.eth".to_owned(),
                    PackageStatus::Started
                ),
                (
                    "bitcoin.dnp.dappnode.eth".to_owned(),
                    PackageStatus::Completed
                )
            ]
        );
        assert_eq!(bus.package_install.name(), "packageInstall");
    }

    #[test]
    fn events_without_payload_take_no_argument() {
        let bus = EventBus::new();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let sub = bus.request_packages.on(move || {
            h.fetch_add(1, Ordering::Relaxed);
        });
        bus.request_packages.emit();
        sub.unsubscribe();
        bus.request_packages.emit();
        assert_eq!(hits.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn clones_share_listeners_across_threads() {
        let bus = EventBus::new();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        bus.telegram_status_changed.on(move |_| {
            h.fetch_add(1, Ordering::Relaxed);
        });
        std::thread::scope(|s| {
            for _ in 0..4 {
                let bus = bus.clone();
                s.spawn(move || {
                    for _ in 0..1000 {
                        bus.telegram_status_changed
                            .emit(TelegramStatusChanged { enabled: true })
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(hits.load(Ordering::Relaxed), 4000);
        fn assert_send_sync<T: Send + Sync + Clone + Default>() {}
        assert_send_sync::<EventBus>();
    }

    #[test]
    fn metadata_comes_from_the_manifest() {
        assert_eq!(MANIFEST.package, "dappnode");
        let install = MANIFEST.event("packageInstall").unwrap();
        assert!(install.persist);
        assert_eq!(install.payload, Some("PackageEvent"));
        let request = MANIFEST.event("requestPackages").unwrap();
        assert!(request.ui.from_ui());
        assert_eq!(
            request.policies.throttle,
            Some(std::time::Duration::from_millis(500))
        );
    }
}
