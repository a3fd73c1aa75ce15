//! A temporary directory to run the built `eod` binary in, shared by the CLI tests. Each test
//! file includes it with `#[path = "common/sandbox.rs"] mod sandbox;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use eodstore::Store;
use serde_json::Value;

/// A temporary directory to run `eod` in, with its default database path `eod.redb`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

/// What one `eod` invocation returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Parses stdout as one JSON value.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {}", self.stdout))
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db(&self) -> PathBuf {
        self.path("eod.redb")
    }

    /// Returns an `eod` command in the sandbox with a known environment: no `EOD_DB`, no
    /// `RUST_LOG`, and `USER=ayşe`.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eod"));
        command
            .current_dir(self.dir.path())
            .env_remove("EOD_DB")
            .env_remove("RUST_LOG")
            .env_remove("USERNAME")
            .env("USER", "ayşe");
        command
    }

    /// Returns `eod --db <sandbox>/eod.redb` followed by `args`, as [`Sandbox::command`] sets it
    /// up.
    pub fn eod_command(&self, args: &[&str]) -> Command {
        let mut command = self.command();
        command.arg("--db").arg(self.db()).args(args);
        command
    }

    /// Runs `eod` with exactly `args`.
    pub fn eod_raw(&self, args: &[&str]) -> Run {
        execute(self.command().args(args))
    }

    /// Runs `eod --db <sandbox>/eod.redb` followed by `args`, and waits for it.
    pub fn eod(&self, args: &[&str]) -> Run {
        execute(&mut self.eod_command(args))
    }

    /// Starts `eod --db <sandbox>/eod.redb` followed by `args` with piped output, without
    /// waiting for it.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.eod_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the eod binary")
    }

    /// Writes a plan file into the sandbox and returns its path as text.
    pub fn plan(&self, name: &str, toml: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, toml).expect("write the plan file");
        path.display().to_string()
    }

    /// Opens the store in this process, for checks the CLI does not print.
    pub fn store(&self) -> Store {
        Store::open(self.db()).expect("open the database written by eod")
    }
}

/// Runs `command` and waits for it.
pub fn execute(command: &mut Command) -> Run {
    let output = command.output().expect("run the eod binary");
    Run {
        code: output.status.code().expect("eod exited without a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Asserts the exit code, showing both streams on failure.
pub fn assert_code(run: &Run, code: i32) {
    assert_eq!(
        run.code, code,
        "exit code\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}
