//! Several processes on one file in the default multi-writer mode: concurrent writers lose and
//! duplicate nothing, readers work while another process writes, and a write waiting for
//! another process's lock gives up after the configured time.
//!
//! The child processes are this test binary run again with one of the `*_child` tests selected
//! and an environment variable naming the file; without the variable those tests do nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{caller, create_temp_store, date};
use eodstore::{Error, ErrorCategory, Plan, Store, StoreOptions};

const WRITER_ENV: &str = "EODSTORE_TEST_WRITER_PATH";
const HOLDER_ENV: &str = "EODSTORE_TEST_LOCK_HOLDER_PATH";
const DAYS: u32 = 8;
const ROUNDS: u32 = 24;

/// Returns the property of the shared operation of day `day`, 1 to [`DAYS`]. Each day has a
/// property of its own, because a property has at most one operation in progress, and these
/// operations never finish.
fn property_of(day: u32) -> String {
    format!("shared-{day}")
}

fn spawn_child(test: &str, env: &str, path: &Path, stdin: Stdio) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, path)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Child of `processes_write_concurrently`: opens operations on shared days and starts and
/// completes their first step, printing one line per acknowledged call.
#[test]
fn writer_child() {
    let Ok(path) = std::env::var(WRITER_ENV) else {
        return;
    };
    let store = Store::open(&path).unwrap();
    let plan = Plan::standard();
    let me = format!("process-{}", std::process::id());
    let mut out = std::io::stdout().lock();
    for round in 0..ROUNDS {
        let day = 1 + round % DAYS;
        let business_date = date(&format!("2026-12-{day:02}"));
        let opened = store
            .open_operation(&property_of(day), business_date, &plan, &caller(&me))
            .unwrap();
        writeln!(out, "\nack open {} {}", opened.operation.id, opened.created).unwrap();
        match store.start_step(opened.operation.id, 1, &caller(&me)) {
            Ok(started) => {
                writeln!(out, "\nack start {}", opened.operation.id).unwrap();
                store
                    .complete_step(
                        opened.operation.id,
                        1,
                        &started.claim.token,
                        None,
                        &caller(&me),
                    )
                    .unwrap();
                writeln!(out, "\nack complete {}", opened.operation.id).unwrap();
            }
            // Another process won the race, or the step is already done.
            Err(Error::ClaimHeld { .. } | Error::InvalidTransition { .. }) => {}
            Err(err) => panic!("unexpected error: {err}"),
        }
        out.flush().unwrap();
    }
}

#[test]
fn processes_write_concurrently() {
    let t = create_temp_store();
    let path = t.path();
    drop(t.store);
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_child("writer_child", WRITER_ENV, &path, Stdio::null()))
        .collect();
    let mut opened: BTreeMap<u64, usize> = BTreeMap::new();
    let mut created = BTreeMap::<u64, usize>::new();
    let mut started = BTreeMap::<u64, usize>::new();
    let mut completed = BTreeSet::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "a writer process failed");
        for line in String::from_utf8(output.stdout).unwrap().lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["ack", "open", id, was_created] => {
                    let id: u64 = id.parse().unwrap();
                    *opened.entry(id).or_default() += 1;
                    if *was_created == "true" {
                        *created.entry(id).or_default() += 1;
                    }
                }
                ["ack", "start", id] => *started.entry(id.parse().unwrap()).or_default() += 1,
                ["ack", "complete", id] => {
                    completed.insert(id.parse::<u64>().unwrap());
                }
                _ => {}
            }
        }
    }

    let store = Store::open(&path).unwrap();
    let mut operations = Vec::new();
    for day in 1..=DAYS {
        operations.extend(store.history(&property_of(day), 100).unwrap());
    }
    assert_eq!(operations.len(), DAYS as usize);
    assert_eq!(opened.values().sum::<usize>(), 4 * ROUNDS as usize);
    for operation in &operations {
        let id = operation.id.0;
        assert_eq!(created.get(&id), Some(&1), "operation {id} created once");
        assert_eq!(
            started.get(&id),
            Some(&1),
            "step 1 of operation {id} started once"
        );
        assert!(
            completed.contains(&id),
            "operation {id}: the acknowledged completion is stored"
        );
        let steps = store.steps(operation.id).unwrap();
        let orders: Vec<u32> = steps.iter().map(|step| step.order).collect();
        assert_eq!(orders, (1..=10).collect::<Vec<_>>(), "operation {id}");
        assert_eq!(steps[0].attempts, 1);
    }
}

#[test]
fn readers_work_while_process_writes() {
    let t = create_temp_store();
    let path = t.path();
    t.store
        .open_operation(
            &property_of(1),
            date("2026-12-01"),
            &Plan::standard(),
            &caller("a"),
        )
        .unwrap();
    drop(t.store);
    let writer = spawn_child("writer_child", WRITER_ENV, &path, Stdio::null());
    let property = property_of(1);
    for _ in 0..20 {
        for args in [
            vec!["history", "--property", property.as_str()],
            vec!["status", "--operation", "1"],
        ] {
            let output = Command::new(env!("CARGO_BIN_EXE_eod"))
                .arg("--db")
                .arg(&path)
                .arg("--json")
                .args(&args)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    assert!(writer.wait_with_output().unwrap().status.success());
}

/// Child of `write_waits_bounded_time`: holds the write lock inside an open write transaction
/// until its standard input closes.
#[test]
fn lock_holder_child() {
    let Ok(path) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let db = redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open(&path)
        .unwrap();
    let txn = db.begin_write().unwrap();
    println!("holding");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    txn.abort().unwrap();
}

#[test]
fn write_waits_bounded_time() {
    let t = create_temp_store();
    let path = t.path();
    drop(t.store);
    let options = || {
        StoreOptions::new()
            .write_timeout(Duration::from_millis(300))
            .open_timeout(Duration::from_millis(300))
    };
    // Opened before the other process takes the lock: redb's multi-writer open itself takes
    // the write lock briefly to read the file's header.
    let store = Store::open_with(&path, options()).unwrap();
    let mut holder = spawn_child("lock_holder_child", HOLDER_ENV, &path, Stdio::piped());
    let mut reader = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(
            reader.read_line(&mut line).unwrap(),
            0,
            "the holder exited early"
        );
        if line.trim_end().ends_with("holding") {
            break;
        }
    }

    let err = store
        .open_operation("grand", date("2026-12-04"), &Plan::standard(), &caller("a"))
        .unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    assert_eq!(err.category(), ErrorCategory::Busy);
    assert!(
        err.to_string()
            .contains("has held its write lock for over 0.3 s"),
        "{err}"
    );
    // Reads do not wait for the writer, but a new open does, for at most its own timeout.
    assert!(store.history("grand", 10).unwrap().is_empty());
    let err = Store::open_with(&path, options()).unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");

    drop(holder.stdin.take());
    // Read the rest of the child's output, so that it never writes into a closed pipe.
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
    assert!(holder.wait().unwrap().success());
    let opened = store
        .open_operation("grand", date("2026-12-04"), &Plan::standard(), &caller("a"))
        .unwrap();
    assert!(opened.created);
}
