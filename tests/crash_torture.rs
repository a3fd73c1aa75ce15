//! Runs the `crash_torture` example with a few kills: every acknowledged write survives SIGKILL,
//! and the example reports a file it cannot open.
//!
//! The example is built once per test run by `cargo build` in this test's profile, and cargo's
//! JSON messages give its path.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use eodstore::Store;

/// Returns the path of the built example, building it on first use.
fn example_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_example)
}

fn build_example() -> PathBuf {
    let output = Command::new(env!("CARGO"))
        .args([
            "build",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .args(["--profile", &test_profile(), "--example", "crash_torture"])
        .output()
        .expect("cargo build can be started");
    assert!(
        output.status.success(),
        "cargo build of the example failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "crash_torture"
        })
        .and_then(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the example's executable")
}

/// Returns the cargo profile this test was built with, read from its path
/// `TARGET/PROFILE_DIR/deps/crash_torture-HASH`. The `dev` profile's directory is `debug`.
fn test_profile() -> String {
    let exe = std::env::current_exe().expect("the test binary's path is known");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(OsStr::to_str)
        .unwrap_or("debug");
    match profile_dir {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    }
}

/// A finished run of the example.
struct Finished {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }

    /// Returns the value of `key` in the last line, which has the form `key=value ...`.
    fn count(&self, key: &str) -> Option<u64> {
        self.last_line()
            .split(' ')
            .filter_map(|field| field.split_once('='))
            .find(|(name, _)| *name == key)
            .and_then(|(_, value)| value.parse().ok())
    }

    fn describe(&self) -> String {
        format!(
            "success: {}\n--- stdout\n{}--- stderr\n{}",
            self.success, self.stdout, self.stderr
        )
    }
}

fn run_torture(db: &Path, kills: u32, writers: u32) -> Finished {
    let output = Command::new(example_binary())
        .arg("--db")
        .arg(db)
        .args(["--kills", &kills.to_string()])
        .args(["--writers", &writers.to_string()])
        .output()
        .expect("the example can be started");
    Finished {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn crash_torture_loses_nothing() {
    example_binary();
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("torture.redb");

    let began = Instant::now();
    let finished = run_torture(&db, 6, 3);
    eprintln!("6 kills took {:.1} s", began.elapsed().as_secs_f64());

    assert!(finished.success, "{}", finished.describe());
    let fields: Vec<&str> = finished
        .last_line()
        .split(' ')
        .map(|field| field.split_once('=').map_or(field, |(name, _)| name))
        .collect();
    assert_eq!(
        fields,
        [
            "kills",
            "acknowledged",
            "lost",
            "duplicates",
            "torn",
            "unopenable"
        ],
        "{}",
        finished.describe()
    );
    assert_eq!(finished.count("kills"), Some(6), "{}", finished.describe());
    for key in ["lost", "duplicates", "torn", "unopenable"] {
        assert_eq!(
            finished.count(key),
            Some(0),
            "{key}: {}",
            finished.describe()
        );
    }
    assert!(
        finished
            .count("acknowledged")
            .is_some_and(|count| count > 0),
        "no write was acknowledged: {}",
        finished.describe()
    );
    assert!(
        finished.stdout.contains("unexpected_errors=0\n"),
        "{}",
        finished.describe()
    );

    let mut store = Store::open(&db).expect("the store opens after the last kill");
    let report = store.check_integrity().expect("the integrity check runs");
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.operations > 0, "no operation was stored: {report:?}");
}

#[test]
fn crash_torture_reports_unopenable_file() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("foreign.redb");
    std::fs::write(&db, "not a database\n").expect("write the foreign file");

    let finished = run_torture(&db, 3, 1);

    assert!(!finished.success, "{}", finished.describe());
    assert_eq!(
        finished.last_line(),
        "kills=1 acknowledged=0 lost=0 duplicates=0 torn=0 unopenable=1",
        "{}",
        finished.describe()
    );
    assert!(
        finished.stdout.contains("kill 1: unopenable: "),
        "{}",
        finished.describe()
    );
}
