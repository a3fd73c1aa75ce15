//! Backups taken while other threads and processes write, and compaction, on real files.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{caller, date};
use eodstore::{Error, OperationId, Plan, Store, StoreOptions};

fn day(n: u64) -> jiff::civil::Date {
    date("2026-01-01")
        .checked_add(jiff::Span::new().days(i64::try_from(n).unwrap()))
        .unwrap()
}

/// Opens an operation of `property` per day until `stop` is set, counting the acknowledged ones
/// in `acknowledged`.
fn write_until(store: &Store, property: &str, stop: &AtomicBool, acknowledged: &AtomicU64) {
    let plan = Plan::standard();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        store
            .open_operation(property, day(n), &plan, &caller("yazar"))
            .unwrap();
        n += 1;
        acknowledged.store(n, Ordering::Relaxed);
    }
}

#[test]
fn backup_during_writers_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eod.redb");
    let store = Store::open_or_create(&path).unwrap();
    // A second process writes too, through `eod open`, for as long as the test runs.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "i=0; while [ $i -lt 400 ]; do \"{}\" --db \"{}\" open --date 2027-01-01 \
             --property p$i >/dev/null 2>&1 || exit 1; i=$((i+1)); done",
            env!("CARGO_BIN_EXE_eod"),
            path.display()
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let stop = AtomicBool::new(false);
    let acknowledged = [AtomicU64::new(0), AtomicU64::new(0)];
    let backups = std::thread::scope(|scope| {
        for (index, count) in acknowledged.iter().enumerate() {
            let (store, stop) = (&store, &stop);
            scope.spawn(move || write_until(store, &format!("otel-{index}"), stop, count));
        }
        let mut backups = Vec::new();
        for round in 0..3 {
            std::thread::sleep(std::time::Duration::from_millis(150));
            let before: Vec<u64> = acknowledged
                .iter()
                .map(|count| count.load(Ordering::Relaxed))
                .collect();
            let to = dir.path().join(format!("backup-{round}.redb"));
            let backup = store.backup(&to).unwrap();
            backups.push((to, before, backup));
        }
        stop.store(true, Ordering::Relaxed);
        backups
    });
    let _ = child.kill();
    let _ = child.wait();
    let other_process_wrote = store
        .find_operation("p0", date("2027-01-01"))
        .unwrap()
        .is_some();
    assert!(other_process_wrote, "the other process never wrote");

    for (to, before, backup) in backups {
        assert_eq!(backup.bytes, std::fs::metadata(&to).unwrap().len());
        let mut copy = Store::open(&to).unwrap();
        let report = copy.check_integrity().unwrap();
        assert!(
            report.is_clean(),
            "{}: {:#?}",
            to.display(),
            report.problems
        );
        for (index, count) in before.iter().enumerate() {
            let history = copy.history(&format!("otel-{index}"), 100_000).unwrap();
            assert!(
                history.len() as u64 >= *count,
                "{}: {} operations of otel-{index}, {count} acknowledged before the backup",
                to.display(),
                history.len()
            );
        }
    }
}

/// The application's own table, of which eodstore has no definition.
const POSTINGS: redb::TableDefinition<u64, &str> = redb::TableDefinition::new("postings");

#[test]
fn backup_keeps_application_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eod.redb");
    let store = Store::open_or_create(&path).unwrap();
    store
        .open_operation("grand", date("2026-12-04"), &Plan::standard(), &caller("a"))
        .unwrap();
    drop(store);
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(POSTINGS)
            .unwrap()
            .insert(101, "Oda 101: 2.450,00 TL")
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let to = dir.path().join("copy.redb");
    store.backup(&to).unwrap();
    drop(store);

    let db = redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open(&to)
        .unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let table = txn.open_table(POSTINGS).unwrap();
    let posting = redb::ReadableTable::get(&table, 101).unwrap().unwrap();
    assert_eq!(posting.value(), "Oda 101: 2.450,00 TL");
}

#[test]
fn backup_rejects_existing_target_unchanged() {
    let t = common::create_temp_store();
    let existing = t.dir.path().join("taken.redb");
    std::fs::write(&existing, b"an older backup").unwrap();
    let err = t.store.backup(&existing).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("taken.redb"), "{err}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"an older backup");

    let err = t.store.backup(t.path()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = t
        .store
        .backup(t.dir.path().join("missing/copy.redb"))
        .unwrap_err();
    assert!(err.to_string().contains("existing directory"), "{err}");

    let read_only = Store::open_with(t.path(), StoreOptions::new().read_only(true)).unwrap();
    let err = read_only
        .backup(t.dir.path().join("copy.redb"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let leftovers: Vec<_> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("copying") || name == "copy.redb")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn compact_keeps_content_and_never_grows() {
    let t = common::create_temp_store();
    let plan = Plan::standard();
    let ayse = caller("ayşe");
    for n in 0..60 {
        let id = t
            .store
            .open_operation("grand", day(n), &plan, &ayse)
            .unwrap()
            .operation
            .id;
        for order in 1..=10 {
            let started = t.store.start_step(id, order, &ayse).unwrap();
            t.store
                .complete_step(
                    id,
                    order,
                    &started.claim.token,
                    Some(&"x".repeat(3000)),
                    &ayse,
                )
                .unwrap();
        }
    }
    let before = t.store.view(OperationId(30)).unwrap();
    let common::TempStore { mut store, dir, .. } = t;

    let compaction = store.compact().unwrap();
    assert!(
        compaction.bytes_after <= compaction.bytes_before,
        "{compaction:?}"
    );
    assert_eq!(
        compaction.bytes_after,
        std::fs::metadata(dir.path().join("eod.redb"))
            .unwrap()
            .len()
    );
    assert_eq!(store.view(OperationId(30)).unwrap(), before);
    assert!(store.check_integrity().unwrap().is_clean());
}

#[test]
fn compact_rejects_read_only_store() {
    let t = common::create_temp_store();
    let common::TempStore { mut store, .. } = t;
    let read_only_path = store.path().to_owned();
    drop(store);
    store = Store::open_with(&read_only_path, StoreOptions::new().read_only(true)).unwrap();
    let err = store.compact().unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

/// The long tasks report their progress, each ending at its total.
#[test]
fn long_tasks_report_progress_to_total() {
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let reports: Arc<Mutex<Vec<(String, u64, u64)>>> = Arc::default();
    let sink = Arc::clone(&reports);
    let options = StoreOptions::new().create(true).progress(move |progress| {
        sink.lock()
            .unwrap()
            .push((progress.task.to_owned(), progress.done, progress.total));
    });
    let mut store = Store::open_with(dir.path().join("eod.redb"), options.clone()).unwrap();
    let plan = Plan::standard();
    for n in 0..5 {
        store
            .open_operation("grand", day(n), &plan, &caller("a"))
            .unwrap();
    }
    store.check_integrity().unwrap();
    store.backup(dir.path().join("copy.redb")).unwrap();
    let dump = store.export(&eodstore::DumpFilter::all()).unwrap();
    let target = Store::open_with(dir.path().join("target.redb"), options).unwrap();
    target.import_dump(&dump).unwrap();

    let reports = reports.lock().unwrap();
    for task in [
        "checking records",
        "copying",
        "exporting operations",
        "importing operations",
    ] {
        let of_task: Vec<&(String, u64, u64)> =
            reports.iter().filter(|(name, ..)| name == task).collect();
        let (_, done, total) = of_task
            .last()
            .unwrap_or_else(|| panic!("no report of {task}"));
        assert_eq!(done, total, "{task}");
        assert!(*total > 0, "{task}");
        assert!(
            of_task.windows(2).all(|pair| pair[0].1 <= pair[1].1),
            "{task}: {of_task:?}"
        );
    }
}
