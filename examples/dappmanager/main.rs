//! The live demo: a DAppNode-like service whose admin page shows the events of the bus.
//!
//! ```sh
//! cargo run --release --example dappmanager            # then open the printed URL
//! cargo run --release --example dappmanager -- --addr 127.0.0.1:9000 --data /tmp/dm --token s3cret
//! ```
//!
//! Options (or environment variables): `--addr` (`DAPPMANAGER_ADDR`, default `127.0.0.1:8080`),
//! `--data` (`DAPPMANAGER_DATA`, default `./data`), `--token` (`DAPPMANAGER_TOKEN`, default a
//! random one, printed in the URL), `--pace` (`DAPPMANAGER_PACE`, default 1.0: multiplies the
//! simulated delays), `--no-simulation` (`DAPPMANAGER_SIMULATE=0`: no simulated producers, the
//! service only answers requests). A newly opened page replays the last 500 stored events and
//! asks for the package list, so it starts with the current state. Stop it with Ctrl-C (or
//! SIGTERM): pages get a close frame with their resume point, and show what happened meanwhile
//! when the service is back.

mod app;

use std::hash::{BuildHasher, Hasher};
use std::process::ExitCode;

fn option(args: &[String], flag: &str, env: &str, default: impl FnOnce() -> String) -> String {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(default)
}

fn random_token() -> String {
    (0..2)
        .map(|_| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(std::process::id().into());
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// Ctrl-C, or SIGTERM (`docker stop`, systemd).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).expect("a SIGINT handler");
        let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "dappmanager demo: --addr HOST:PORT (127.0.0.1:8080) --data DIR (./data) --token TOKEN (random) --pace FACTOR (1.0) --no-simulation"
        );
        return ExitCode::SUCCESS;
    }
    let addr = option(&args, "--addr", "DAPPMANAGER_ADDR", || {
        "127.0.0.1:8080".into()
    });
    let Ok(addr) = addr.parse() else {
        eprintln!("dappmanager: `{addr}` is not an address like 127.0.0.1:8080");
        return ExitCode::from(2);
    };
    let pace = option(&args, "--pace", "DAPPMANAGER_PACE", || "1.0".into());
    let Ok(pace) = pace.parse::<f64>() else {
        eprintln!("dappmanager: `{pace}` is not a number");
        return ExitCode::from(2);
    };
    let options = app::Options {
        addr,
        data_dir: option(&args, "--data", "DAPPMANAGER_DATA", || "data".into()).into(),
        token: option(&args, "--token", "DAPPMANAGER_TOKEN", random_token),
        pace,
        simulate: !args.iter().any(|a| a == "--no-simulation")
            && std::env::var("DAPPMANAGER_SIMULATE").map_or(true, |v| v != "0"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let token = options.token.clone();
    let data = options.data_dir.display().to_string();
    let result = runtime.block_on(app::run(
        options,
        async {
            stop_signal().await;
            println!("\nstopping: pages will resume where they left off");
        },
        move |addr| {
            println!("DAppManager demo: the event bus of events.yaml, live");
            println!();
            println!("  admin page  http://{addr}/#token={token}");
            println!("  WebSocket   ws://{addr}/events   (subprotocol cloudevents.json)");
            println!("  metrics     http://{addr}/metrics");
            println!("  store       {data}/events.db");
            println!();
            println!("Ctrl-C stops it; start it again and open pages catch up.");
        },
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dappmanager: {error}");
            ExitCode::FAILURE
        }
    }
}
