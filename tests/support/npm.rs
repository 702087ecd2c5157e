//! The npm tools the tests run (tsc, the AsyncAPI parser, playwright-core), installed on demand
//! so that the README's `cargo test` works on a fresh clone.
//!
//! [`node_modules`] runs `npm ci --no-audit --no-fund` at the repository root when
//! `node_modules` is missing or older than `package-lock.json`. A lock file in the target
//! directory serialises the check and the install across the parallel tests of one binary and
//! across test binaries (the codegen tests and the root tests include this same file with
//! `#[path]`), so no test reads `node_modules` while `npm ci` rewrites it.
#![allow(dead_code)] // each test crate uses part of it

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root: the nearest directory above the test crate that has `package-lock.json`.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("package-lock.json").is_file())
        .expect("package-lock.json is above the test crate")
        .to_owned()
}

/// `node_modules` at the repository root, installed from `package-lock.json` first if it is
/// missing or stale. Fails the test with npm's output, or with what to install if npm is absent.
pub fn node_modules() -> PathBuf {
    // One install attempt per test binary; the other tests of the binary wait for it.
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match READY.get_or_init(|| install(&root())) {
        Ok(dir) => dir.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// `node_modules/.bin/<name>` (installed first, see [`node_modules`]).
pub fn bin(name: &str) -> PathBuf {
    let path = node_modules().join(".bin").join(name);
    assert!(
        path.exists(),
        "`{}` is missing after `npm ci`: is `{name}` still in package.json's devDependencies?",
        path.display()
    );
    path
}

/// The pinned TypeScript compiler, `node_modules/.bin/tsc`.
pub fn tsc() -> PathBuf {
    bin("tsc")
}

fn install(root: &Path) -> Result<PathBuf, String> {
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-ci.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    // Held until `lock` drops: a second binary waits here, then finds the install fresh.
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    let node_modules = root.join("node_modules");
    if fresh(root) {
        return Ok(node_modules);
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let output = Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(root)
        .output()
        .map_err(|e| {
            format!(
                "the tests need the npm tools pinned in package-lock.json, but `npm` cannot run \
                 ({e}): install Node.js 20 or later with npm (Debian/Ubuntu: `apt-get install \
                 nodejs npm`; or https://nodejs.org), then rerun the tests"
            )
        })?;
    if !output.status.success() || !fresh(root) {
        return Err(format!(
            "`npm ci --no-audit --no-fund` in {} failed ({}); fix the cause below, or run it by \
             hand, then rerun the tests:\n{}{}",
            root.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(node_modules)
}

/// Whether `node_modules` matches `package-lock.json`: npm writes
/// `node_modules/.package-lock.json` at the end of every install, so it is at least as new as
/// the lock file it installed from, and absent after an interrupted one.
pub fn fresh(root: &Path) -> bool {
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    match (
        modified(root.join("node_modules/.package-lock.json")),
        modified(root.join("package-lock.json")),
    ) {
        (Some(installed), Some(wanted)) => installed >= wanted,
        _ => false,
    }
}
