//! A DAppNode-like service on the eventbus: the bus generated from `events.yaml`, the SQLite
//! store, the WebSocket bridge, `/metrics` and an admin page, with simulated producers.
//!
//! Used by `main.rs` (`cargo run --release --example dappmanager`) and by the browser test
//! (`tests/dappmanager_browser.rs`), which runs it in-process and restarts it.

use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use eventbus::bridge::{Bridge, BridgeConfig};
use eventbus::{SqliteStore, Timestamp};

#[eventbus::event_bus("events.yaml")]
pub mod events {}

use events::*;

/// How to run the service.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
    /// Where the SQLite store lives (`events.db` inside).
    pub data_dir: PathBuf,
    /// The bridge token (the page gets it in the URL fragment).
    pub token: String,
    /// Multiplies every simulated delay (1.0: realistic pace; smaller: faster).
    pub pace: f64,
    /// Run the simulated producers (installs, chain sync, notifications). Without them the
    /// service only answers: the page shows what your own clients cause, nothing else.
    pub simulate: bool,
}

/// Static files, embedded so the binary is self-contained. The `.js` files are compiled from
/// `ui/src` by `tsc -p ui/tsconfig.json` (kept fresh by `tests/dappmanager_assets.rs`).
const ASSETS: [(&str, &str, &str); 5] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
    (
        "/main.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/main.js"),
    ),
    (
        "/generated/client.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/generated/client.js"),
    ),
    (
        "/generated/events.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/generated/events.js"),
    ),
];

/// Runs the service until `shutdown` completes; `ready` gets the bound address once it serves.
pub async fn run(
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), Box<dyn Error + Send + Sync>> {
    std::fs::create_dir_all(&options.data_dir)?;
    let store = SqliteStore::open(options.data_dir.join("events.db"))?;
    let bus = EventBus::builder()
        .event_store(store)
        .instrument(true)
        .build()?;
    let world = Arc::new(Mutex::new(World::new(seed())));

    // The UI asks; the service answers.
    {
        let (answer, lister) = (bus.clone(), world.clone());
        bus.request_packages.on_labeled("package-lister", move || {
            let packages = lister.lock().unwrap().installed.clone();
            answer.packages.emit(Packages { packages });
        });
        let (answer, monitor) = (bus.clone(), world.clone());
        bus.request_chain_data.on_labeled("chain-data", move || {
            let chains = monitor.lock().unwrap().chain_data();
            answer.chain_data.emit(ChainData { chains });
        });
    }
    // Events stored by an earlier run whose handlers did not finish are delivered again; the
    // store keeps the newest 50,000 processed events.
    let recovered = bus.recover()?;
    if let Some(store) = bus.event_store() {
        store.compact(&eventbus::Retention::new().max_count(50_000))?;
    }
    let boot = bus
        .event_store()
        .map(|s| s.last_sequence())
        .transpose()?
        .unwrap_or(0);
    // Emitted before the server listens: a page that was connected to the previous run gets
    // it when it reconnects and resumes.
    bus.notification.emit(NotificationEvent {
        id: format!("boot-{boot}"),
        r#type: NotificationType::Info,
        title: "DAppManager started".into(),
        body: format!(
            "The service restarted; {} stored events were recovered.",
            recovered.dispatched
        ),
        timestamp: Timestamp::now(),
        actions: None,
    })?;

    let bridge = Bridge::new(&bus, BridgeConfig::new(options.token.clone()));
    let mut app = Router::new();
    for (path, content_type, body) in ASSETS {
        app = app.route(
            path,
            get(move || async move {
                (
                    [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
                    body,
                )
                    .into_response()
            }),
        );
    }
    let app = app
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .merge(bridge.router())
        .merge(bridge.metrics_router());
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    ready(listener.local_addr()?);

    let mut producers = tokio::task::JoinSet::new();
    if options.simulate {
        producers.spawn(installer(bus.clone(), world.clone(), options.pace));
        producers.spawn(chain_monitor(bus.clone(), world.clone()));
        producers.spawn(notifier(bus.clone(), world.clone(), options.pace));
    }

    let closing = bridge.clone();
    // Small frames go out at once instead of waiting for the browser's delayed ACK
    // (docs/bridge.md, "Serving it").
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Every page gets a close frame with its resume point.
            closing.close();
        })
        .await?;
    producers.shutdown().await;
    bus.shutdown_with_timeout(Duration::from_secs(2)).await;
    bus.flush_event_store()?;
    Ok(())
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    nanos | 1
}

/// A small xorshift generator: the simulation needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The simulated node: installed packages and chains.
struct World {
    rng: Rng,
    installed: Vec<InstalledPackage>,
    chains: Vec<Chain>,
}

struct Chain {
    network: &'static str,
    client: &'static str,
    progress: f64,
    peers: u32,
    height: u64,
}

const CATALOG: [(&str, &str); 8] = [
    ("bitcoin.dnp.dappnode.eth", "0.2.10"),
    ("rotki.dnp.dappnode.eth", "0.1.21"),
    ("ipfs-cluster.dnp.dappnode.eth", "0.3.2"),
    ("grafana.dnp.dappnode.eth", "1.4.0"),
    ("nimbus.dnp.dappnode.eth", "0.1.8"),
    ("lodestar.dnp.dappnode.eth", "0.1.30"),
    ("monero.dnp.dappnode.eth", "0.2.4"),
    ("nextcloud.dnp.dappnode.eth", "0.3.1"),
];

fn package(name: &str, version: &str, core: bool) -> InstalledPackage {
    let service = name.split('.').next().unwrap_or(name).to_owned();
    InstalledPackage {
        dnp_name: name.to_owned(),
        version: version.to_owned(),
        is_core: core,
        origin: None,
        avatar_url: None,
        containers: vec![ContainerSummary {
            container_name: format!("DAppNodePackage-{service}"),
            service_name: service,
            state: ContainerState::Running,
            running: true,
        }],
    }
}

impl World {
    fn new(seed: u64) -> World {
        World {
            rng: Rng(seed),
            installed: vec![
                package("dappmanager.dnp.dappnode.eth", "0.2.91", true),
                package("core.dnp.dappnode.eth", "0.2.91", true),
                package("bind.dnp.dappnode.eth", "0.2.11", true),
                package("ipfs.dnp.dappnode.eth", "0.2.24", true),
                package("wireguard.dnp.dappnode.eth", "0.1.3", true),
                package("geth.dnp.dappnode.eth", "0.1.45", false),
                package("lighthouse.dnp.dappnode.eth", "1.0.9", false),
            ],
            chains: vec![
                Chain {
                    network: "mainnet",
                    client: "geth.dnp.dappnode.eth",
                    progress: 0.9712,
                    peers: 41,
                    height: 21_874_310,
                },
                Chain {
                    network: "gnosis",
                    client: "nethermind-xdai.dnp.dappnode.eth",
                    progress: 0.62,
                    peers: 23,
                    height: 38_110_052,
                },
            ],
        }
    }

    fn chain_data(&self) -> Vec<ChainDataItem> {
        self.chains
            .iter()
            .map(|c| ChainDataItem {
                dnp_name: c.client.to_owned(),
                name: Some(c.network.to_owned()),
                syncing: c.progress < 1.0,
                error: false,
                message: if c.progress < 1.0 {
                    format!("Blocks synced: {:.1}%", c.progress * 100.0)
                } else {
                    format!("Synced, block {}", c.height)
                },
                help: None,
                progress: Some(c.progress),
            })
            .collect()
    }
}

async fn sleep(pace: f64, ms: u64) {
    tokio::time::sleep(Duration::from_secs_f64(ms as f64 * pace / 1000.0)).await;
}

fn note(id: String, kind: NotificationType, title: String, body: String) -> NotificationEvent {
    NotificationEvent {
        id,
        r#type: kind,
        title,
        body,
        timestamp: Timestamp::now(),
        actions: None,
    }
}

/// Emits a persisted event; a store failure is reported (the bus also reports it).
fn stored<T>(result: Result<T, eventbus::PersistError>) {
    if let Err(error) = result {
        eprintln!("dappmanager: {error}");
    }
}

/// Installs, updates and removes packages, with progress, logs and notifications.
async fn installer(bus: EventBus, world: Arc<Mutex<World>>, pace: f64) {
    let mut run = 0u64;
    loop {
        sleep(pace, 2_500).await;
        run += 1;
        let (name, version, operation, fail) = {
            let mut w = world.lock().unwrap();
            let removable: Vec<usize> = (0..w.installed.len())
                .filter(|&i| !w.installed[i].is_core)
                .collect();
            let roll = w.rng.below(10);
            if roll < 2 && removable.len() > 2 {
                let i = removable[w.rng.below(removable.len())];
                let p = &w.installed[i];
                (
                    p.dnp_name.clone(),
                    p.version.clone(),
                    PackageOperation::Remove,
                    false,
                )
            } else if roll < 4 {
                let i = removable[w.rng.below(removable.len())];
                let p = &w.installed[i];
                let bumped = bump(&p.version);
                (p.dnp_name.clone(), bumped, PackageOperation::Update, false)
            } else {
                let candidates: Vec<(&str, &str)> = CATALOG
                    .iter()
                    .copied()
                    .filter(|(n, _)| w.installed.iter().all(|p| p.dnp_name != *n))
                    .collect();
                if candidates.is_empty() {
                    let i = removable[w.rng.below(removable.len())];
                    let p = &w.installed[i];
                    (
                        p.dnp_name.clone(),
                        p.version.clone(),
                        PackageOperation::Remove,
                        false,
                    )
                } else {
                    let (n, v) = candidates[w.rng.below(candidates.len())];
                    let fail = w.rng.chance(20);
                    (n.to_owned(), v.to_owned(), PackageOperation::Install, fail)
                }
            }
        };
        let event = |status, progress: Option<f64>, error: Option<String>| PackageEvent {
            dnp_name: name.clone(),
            version: version.clone(),
            operation,
            status,
            progress,
            error,
        };
        let emit = |e: PackageEvent| match operation {
            PackageOperation::Install => stored(bus.package_install.emit(e)),
            PackageOperation::Update => stored(bus.package_update.emit(e)),
            _ => stored(bus.package_remove.emit(e)),
        };
        let log_id = format!("{name}@/ipfs/Qm{run:044}");
        let log = |level, message: String| {
            bus.log_ui.emit(ProgressLog {
                id: log_id.clone(),
                dnp_name: name.clone(),
                level,
                message,
                clear: None,
                timestamp: Some(Timestamp::now()),
            })
        };
        emit(event(PackageStatus::Started, Some(0.0), None));
        let steps = if operation == PackageOperation::Remove {
            3
        } else {
            10
        };
        let mut failed = None;
        for step in 1..=steps {
            sleep(pace, 350).await;
            let progress = f64::from(step) / f64::from(steps);
            if fail && step == 7 {
                failed = Some("IPFS timeout: the release manifest could not be fetched".to_owned());
                break;
            }
            let message = match (operation, step) {
                (PackageOperation::Remove, _) => format!("Removing containers {}/{steps}", step),
                (_, 1..=6) => format!("Downloading image {:.0}%", progress * 100.0 / 0.6),
                (_, 7..=8) => "Loading image".to_owned(),
                _ => "Starting containers".to_owned(),
            };
            log(LogLevel::Info, message);
            if step < steps {
                emit(event(PackageStatus::Progress, Some(progress), None));
            }
        }
        let verb = match operation {
            PackageOperation::Install => "installed",
            PackageOperation::Update => "updated",
            PackageOperation::Remove => "removed",
            PackageOperation::Restart => "restarted",
        };
        let level = if failed.is_some() {
            LogLevel::Error
        } else {
            LogLevel::Info
        };
        let outcome = match &failed {
            Some(error) => format!("{name}: {error}"),
            None => format!("{verb} {name}"),
        };
        match failed {
            Some(error) => {
                log(LogLevel::Error, error.clone());
                emit(event(PackageStatus::Error, None, Some(error.clone())));
                stored(bus.notification.emit(note(
                    format!("install-failed-{run}"),
                    NotificationType::Error,
                    format!("Installing {name} failed"),
                    error,
                )));
            }
            None => {
                {
                    let mut w = world.lock().unwrap();
                    w.installed.retain(|p| p.dnp_name != name);
                    if operation != PackageOperation::Remove {
                        w.installed.push(package(&name, &version, false));
                    }
                }
                emit(event(PackageStatus::Completed, Some(1.0), None));
                stored(bus.notification.emit(note(
                    format!("package-{run}"),
                    NotificationType::Success,
                    format!("{name} {verb}"),
                    format!("Version {version} was {verb} successfully."),
                )));
                stored(bus.packages_modified.emit(PackagesModified {
                    dnp_names: vec![name.clone()],
                    removed: (operation == PackageOperation::Remove).then_some(true),
                }));
                // As in DAppNode: a container change asks the package lister, which alone
                // emits `packages`.
                bus.request_packages.emit();
            }
        }
        stored(
            bus.log_user_action.emit(UserActionLog {
                level,
                event: match operation {
                    PackageOperation::Install => "packageInstall",
                    PackageOperation::Update => "packageUpdate",
                    _ => "packageRemove",
                }
                .to_owned(),
                message: outcome,
                kwargs: serde_json::json!({ "name": name, "version": version }),
                result: None,
                stack: None,
                timestamp: Timestamp::now(),
            }),
        );
    }
}

fn bump(version: &str) -> String {
    let mut parts: Vec<u64> = version.split('.').filter_map(|p| p.parse().ok()).collect();
    if let Some(last) = parts.last_mut() {
        *last += 1;
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Chain sync progress of one network at a time, a little slower than `chainSync`'s 1 s
/// throttle so that none is superseded; the dashboard's chain data every few seconds.
async fn chain_monitor(bus: EventBus, world: Arc<Mutex<World>>) {
    let mut tick = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        tick += 1;
        let events: Vec<ChainEvent> = {
            let mut w = world.lock().unwrap();
            let World { rng, chains, .. } = &mut *w;
            for chain in chains.iter_mut() {
                chain.height += 1 + rng.below(3) as u64;
                if chain.progress < 1.0 {
                    chain.progress = (chain.progress + 0.0007 + rng.unit() * 0.0015).min(1.0);
                }
                chain.peers = (chain.peers as i64 + rng.below(5) as i64 - 2).clamp(8, 64) as u32;
            }
            chains
                .iter()
                .map(|c| ChainEvent {
                    network: c.network.to_owned(),
                    syncing: c.progress < 1.0,
                    progress: c.progress,
                    peers: c.peers,
                    block_height: c.height,
                })
                .collect()
        };
        if let Some(event) = events.into_iter().nth(((tick - 1) % 2) as usize) {
            bus.chain_sync.emit(event);
        }
        if tick.is_multiple_of(5) {
            let chains = world.lock().unwrap().chain_data();
            bus.chain_data.emit(ChainData { chains });
        }
    }
}

/// Occasional notifications and validator updates.
async fn notifier(bus: EventBus, world: Arc<Mutex<World>>, pace: f64) {
    let mut n = 0u64;
    loop {
        sleep(pace, 6_000).await;
        n += 1;
        let pick = world.lock().unwrap().rng.below(4);
        let notification = match pick {
            0 => note(
                format!("diskspace-{n}"),
                NotificationType::Warning,
                "Disk space is running low".into(),
                "Less than 10% of the disk is free. Remove unused packages or volumes.".into(),
            ),
            1 => note(
                format!("update-{n}"),
                NotificationType::Info,
                "Update available".into(),
                "DAppNode core 0.2.92 is available.".into(),
            ),
            2 => note(
                format!("peers-{n}"),
                NotificationType::Warning,
                "Few peers on gnosis".into(),
                "The gnosis node has fewer than 25 peers; sync may be slow.".into(),
            ),
            _ => note(
                format!("backup-{n}"),
                NotificationType::Success,
                "Backup completed".into(),
                "The configuration backup was written to the USB drive.".into(),
            ),
        };
        stored(bus.notification.emit(notification));
        bus.validator_status.emit(ValidatorStatus {
            network: "holesky".into(),
            pubkey: "0xa3b0c5f2d1e4f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5".into(),
            index: Some(1_234_567),
            status: ValidatorState::ActiveOngoing,
            balance: Some(32_001_234_567 + n),
        });
    }
}
