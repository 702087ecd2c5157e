//! A scratch crate outside the workspace, built by cargo: what `eventbus-macros/tests/rebuild.rs`
//! and `codegen/tests/build_script.rs` (which include this file with `#[path]`) build to see
//! the routes a consumer takes (the macro, the build script) through real cargo runs.
//!
//! The crate lives in `<target>/tmp/<dir>` and builds into `<target>/scratch` (not the test's
//! own target dir, which the running `cargo test` holds), one target dir for both tests, so
//! the dependencies compile once and later runs are incremental. `--offline` with a copy of the
//! workspace's `Cargo.lock`: no network, the versions this workspace tested.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch crate: its directory, the target dir it builds into and its package name.
pub struct Scratch {
    dir: PathBuf,
    target: PathBuf,
    package: String,
}

impl Scratch {
    /// The crate `package` in `<target>/tmp/<dir>` with `eventbus` (default features) as its
    /// dependency and `more_toml` (further sections of its `Cargo.toml`) after that. Files a
    /// previous run left in `src/` are removed.
    pub fn new(dir: &str, package: &str, more_toml: &str) -> Scratch {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let scratch = Scratch {
            dir: tmp.join(dir),
            target: tmp.parent().unwrap().join("scratch"),
            package: package.into(),
        };
        let _ = std::fs::remove_dir_all(scratch.dir.join("src"));
        let repo = repo();
        scratch.write(
            "Cargo.toml",
            &format!(
                "[package]\nname = \"{package}\"\nversion = \"0.0.0\"\n\
                 edition = \"2024\"\npublish = false\n\n\
                 [dependencies]\neventbus = {{ path = {:?} }}\n\n{more_toml}\
                 # Not a member of the repository's workspace.\n[workspace]\n",
                repo.to_str().unwrap()
            ),
        );
        scratch.write(
            "Cargo.lock",
            &std::fs::read_to_string(repo.join("Cargo.lock")).unwrap(),
        );
        scratch
    }

    /// Writes `text` to `path` (relative to the crate), creating its directories.
    pub fn write(&self, path: &str, text: &str) {
        let path = self.dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `cargo <command>` in the crate, successful or not.
    fn cargo(&self, command: &str) -> Output {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Command::new(cargo)
            .args([command, "--offline", "--color", "never"])
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", &self.target)
            // Only the consumer is under test; keep the dependency build small.
            .env("CARGO_PROFILE_DEV_DEBUG", "0")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cannot run cargo")
    }

    /// `cargo run`: the program's stdout and whether cargo compiled this crate (its build
    /// script included); fails the test if the build or the program fails.
    pub fn run(&self) -> (String, bool) {
        let out = self.cargo("run");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "cargo run failed:\n{stderr}\n{stdout}"
        );
        let compiled = stderr.contains(&format!("Compiling {}", self.package));
        (stdout, compiled)
    }

    /// `cargo build`, which must fail with each of `expected` in cargo's stderr.
    pub fn build_fails_with(&self, expected: &[&str]) {
        let failed = self.cargo("build");
        let stderr = String::from_utf8_lossy(&failed.stderr).into_owned();
        assert!(
            !failed.status.success(),
            "a broken manifest built:\n{stderr}"
        );
        for expected in expected {
            assert!(
                stderr.contains(expected),
                "`{expected}` missing from:\n{stderr}"
            );
        }
    }
}

/// The repository root (the parent of the test's crate).
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}
