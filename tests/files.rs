//! Opening files: missing paths, foreign files, newer formats, locks held by this or another
//! process, and damaged files. Each gives its own error and leaves the file as it was.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{caller, create_temp_store, date};
use eodstore::{ConcurrencyMode, Durability, Error, ErrorCategory, Plan, Store, StoreOptions};

const HOLD_ENV: &str = "EODSTORE_TEST_HOLD_PATH";

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn store_is_send_and_sync() {
    assert_send_sync::<Store>();
}

#[test]
fn missing_file_not_created_by_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.redb");
    let err = Store::open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no database at `{}`: check the path (or `--db`/`EOD_DB`), or create one by opening an operation or setting a business date",
            path.display()
        )
    );
    assert_eq!(err.category(), ErrorCategory::Rejected);
    assert!(!path.exists());
    Store::open_or_create(&path).unwrap();
    assert!(path.exists());
}

#[test]
fn foreign_file_rejected_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "misafir listesi\n").unwrap();
    for options in [StoreOptions::new(), StoreOptions::new().create(true)] {
        let err = Store::open_with(&path, options).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is not an eodstore database (it does not start with the redb file signature): check the path; eodstore never writes into a file it did not create",
                path.display()
            )
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "misafir listesi\n");

    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::NotEodstoreFile { .. }), "{err}");
}

#[test]
fn foreign_redb_file_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("guests"))
                .unwrap();
            table.insert("ayşe", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open_or_create(&path).unwrap_err();
    assert!(matches!(err, Error::NotEodstoreFile { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("it is a redb database with the tables guests, but no eodstore `meta` table"),
        "{err}"
    );
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the foreign file was modified"
    );
}

#[test]
fn newer_format_rejected() {
    let t = create_temp_store();
    let path = t.path();
    drop(t.store);
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("format_version", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` has eodstore format version 99, but this build reads versions up to 3: upgrade eodstore to open it",
            path.display()
        )
    );
}

#[test]
fn exclusive_double_open_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.redb");
    let exclusive = || {
        StoreOptions::new()
            .create(true)
            .concurrency(ConcurrencyMode::ExclusiveWriter)
    };
    let _first = Store::open_with(&path, exclusive()).unwrap();
    let err = Store::open_with(&path, exclusive()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert_eq!(err.category(), ErrorCategory::Busy);
    assert!(
        err.to_string().contains("share one Store within a process"),
        "{err}"
    );
}

#[test]
fn multi_writer_handles_share_file() {
    // In the default mode a second handle works like another process: both write, and each
    // sees the other's commits.
    let t = create_temp_store();
    let second = Store::open(t.path()).unwrap();
    let plan = Plan::standard();
    let a = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("a"))
        .unwrap();
    let b = second
        .open_operation("grand", date("2026-12-04"), &plan, &caller("b"))
        .unwrap();
    assert_eq!(a.operation.id, b.operation.id);
    assert!(a.created && !b.created);
    let c = second
        .open_operation("grand", date("2026-12-05"), &plan, &caller("b"))
        .unwrap();
    assert_eq!(t.store.history("grand", 10).unwrap().len(), 2);
    assert!(t.store.operation(c.operation.id).is_ok());
}

#[test]
fn non_durable_needs_exclusive_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.redb");
    let err = Store::open_with(
        &path,
        StoreOptions::new()
            .create(true)
            .durability(Durability::None),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                what: "store options",
                ..
            }
        ),
        "{err}"
    );
    assert!(!path.exists());
    let store = Store::open_with(
        &path,
        StoreOptions::new()
            .create(true)
            .durability(Durability::None)
            .concurrency(ConcurrencyMode::ExclusiveWriter),
    )
    .unwrap();
    store
        .open_operation("grand", date("2026-12-04"), &Plan::standard(), &caller("a"))
        .unwrap();
}

#[test]
fn damaged_file_gives_error_not_panic() {
    let t = create_temp_store();
    let path = t.path();
    t.store
        .open_operation("grand", date("2026-12-04"), &Plan::standard(), &caller("a"))
        .unwrap();
    drop(t.store);
    let mut bytes = std::fs::read(&path).unwrap();
    // Keep redb's signature, damage the header and everything after it.
    for byte in &mut bytes[9..] {
        *byte = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt { .. } | Error::Storage { .. } | Error::Io { .. }
        ),
        "{err}"
    );
}

/// Child side of `other_process_lock_reported`: holds the file in exclusive mode until stdin
/// closes.
#[test]
fn hold_file_child() {
    let Ok(path) = std::env::var(HOLD_ENV) else {
        return;
    };
    let _store = Store::open_with(
        &path,
        StoreOptions::new().concurrency(ConcurrencyMode::ExclusiveWriter),
    )
    .unwrap();
    println!("holding");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn other_process_lock_reported() {
    let t = create_temp_store();
    let path = t.path();
    drop(t.store);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_file_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(
            reader.read_line(&mut line).unwrap(),
            0,
            "child exited before holding the file"
        );
        if line.trim_end().ends_with("holding") {
            break;
        }
    }
    let started = std::time::Instant::now();
    let err = Store::open_with(
        &path,
        StoreOptions::new().open_timeout(std::time::Duration::from_millis(500)),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Locked { .. } | Error::Busy { .. }),
        "{err}"
    );
    assert_eq!(err.category(), ErrorCategory::Busy);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the open waited {:?}",
        started.elapsed()
    );
    drop(child.stdin.take());
    child.wait().unwrap();
    // Once the other process is gone, the file opens.
    Store::open(&path).unwrap();
}

#[test]
fn two_processes_share_multi_writer_file() {
    // The default mode lets a second process open the file while the first has it open.
    let t = create_temp_store();
    let id = t
        .store
        .open_operation("grand", date("2026-12-04"), &Plan::standard(), &caller("a"))
        .unwrap()
        .operation
        .id;
    let output = Command::new(env!("CARGO_BIN_EXE_eod"))
        .args([
            "--db",
            t.path().to_str().unwrap(),
            "--json",
            "status",
            "--operation",
            &id.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn read_only_never_creates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.redb");
    let err =
        Store::open_with(&path, StoreOptions::new().create(true).read_only(true)).unwrap_err();
    assert!(matches!(err, Error::NoDatabase { .. }), "{err}");
    assert!(!path.exists());
}

#[test]
fn read_only_store_rejects_writes() {
    let t = create_temp_store();
    let path = t.path();
    t.store
        .open_operation("grand", date("2026-12-04"), &Plan::standard(), &caller("a"))
        .unwrap();
    drop(t.store);
    let before = std::fs::read(&path).unwrap();
    let store = Store::open_with(&path, StoreOptions::new().read_only(true)).unwrap();
    assert_eq!(store.history("grand", 10).unwrap().len(), 1);
    let err = store
        .open_operation("grand", date("2026-12-05"), &Plan::standard(), &caller("a"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    drop(store);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "a read-only store changed the file"
    );
}

#[test]
fn in_memory_backend_holds_a_store() {
    let options = StoreOptions::new().concurrency(ConcurrencyMode::ExclusiveWriter);

    let empty = Store::open_with_backend(
        "memory",
        redb::backends::InMemoryBackend::new(),
        options.clone(),
    );
    assert!(matches!(empty, Err(Error::NoDatabase { .. })), "{empty:?}");

    let mut store = Store::open_with_backend(
        "memory",
        redb::backends::InMemoryBackend::new(),
        options.create(true),
    )
    .unwrap();
    let opened = store
        .open_operation(
            "grand",
            date("2026-12-04"),
            &eodstore::Plan::standard(),
            &caller("a"),
        )
        .unwrap();
    assert_eq!(opened.steps.len(), 10);
    assert!(store.check_integrity().unwrap().is_clean());
    assert_eq!(store.path(), std::path::Path::new("memory"));
}

#[test]
fn in_memory_backend_without_locks_needs_exclusive_mode() {
    let result = Store::open_with_backend(
        "memory",
        redb::backends::InMemoryBackend::new(),
        StoreOptions::new().create(true),
    );
    let err = result.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("ExclusiveWriter"), "{err}");
}
