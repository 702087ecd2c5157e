//! The typed bridge client, `client.ts`: written next to the TypeScript module by the
//! `Builder` and the CLI, importing that module. (`tsc --strict` checks the repository's
//! `ui/src/generated/client.ts` in `tests/typescript.rs`; `tests/dappmanager_assets.rs` at the
//! root keeps it fresh.)

use std::path::{Path, PathBuf};
use std::process::Command;

use eventbus_codegen::{Builder, ts_client};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// An empty scratch directory of this test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("ts-client")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_builder_writes_the_client_next_to_the_module() {
    let dir = scratch("builder");
    let ts = dir.as_path().join("ui/dappnode.ts");
    Builder::new(repo().join("events.yaml"))
        .out_dir(dir.as_path())
        .typescript(&ts)
        .typescript_client()
        .build()
        .unwrap();
    let client = std::fs::read_to_string(dir.as_path().join("ui/client.ts")).unwrap();
    assert_eq!(client, ts_client::file("./dappnode.js"));
    assert!(client.contains(r#"} from "./dappnode.js";"#));
    assert!(ts.exists());
}

#[test]
fn the_builder_refuses_a_client_without_a_module() {
    let dir = scratch("refuse");
    let error = Builder::new(repo().join("events.yaml"))
        .out_dir(dir.as_path())
        .typescript_client()
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("needs Builder::typescript"),
        "{error}"
    );
    let error = Builder::new(repo().join("events.yaml"))
        .out_dir(dir.as_path())
        .typescript(dir.as_path().join("client.ts"))
        .typescript_client()
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("may not be named `client.ts`"),
        "{error}"
    );
}

#[test]
fn the_cli_writes_and_checks_the_client() {
    let dir = scratch("cli");
    let ts = dir.as_path().join("events.ts");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_eventbus"))
            .args(["generate", "events.yaml", "--ts"])
            .arg(&ts)
            .args(extra)
            .current_dir(repo())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let output = run(&["--ts-client"]);
    assert!(output.status.success(), "{output:?}");
    let client = dir.as_path().join("client.ts");
    assert_eq!(
        std::fs::read_to_string(&client).unwrap(),
        ts_client::file("./events.js")
    );
    assert!(run(&["--ts-client", "--check"]).status.success());
    std::fs::write(&client, "stale").unwrap();
    let output = run(&["--ts-client", "--check"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    // Without --ts there is nowhere to put the client.
    let output = Command::new(env!("CARGO_BIN_EXE_eventbus"))
        .args(["generate", "events.yaml", "--ts-client", "--docs", "x.md"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}
