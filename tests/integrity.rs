//! `Store::check_integrity` on real files: clean after real work, and each kind of damage found.

mod common;

use std::fmt::Write as _;

use common::{caller, create_temp_store, open_standard};
use eodstore::{ProblemKind, Store, StoreOptions};
use redb::{ReadableTable, TableDefinition};

const OPERATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("operations");
const OPERATIONS_BY_DAY: TableDefinition<(&str, i32), u64> =
    TableDefinition::new("operations_by_day");
const STEPS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("steps");
const EVENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("events");

/// Creates a store whose operation 1 has a completed, a failed and a retried step, and returns
/// the directory and file path with the store closed.
fn worked_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = create_temp_store();
    let id = open_standard(&t);
    let a = caller("ayşe");
    let started = t.store.start_step(id, 1, &a).unwrap();
    t.store
        .complete_step(id, 1, &started.claim.token, Some("tamam"), &a)
        .unwrap();
    let started = t.store.start_step(id, 2, &a).unwrap();
    t.store
        .fail_step(id, 2, &started.claim.token, "kasa açık", None, &a)
        .unwrap();
    t.store.retry_step(id, 2, &a).unwrap();
    let path = t.path();
    let common::TempStore { store, dir, .. } = t;
    drop(store);
    (dir, path)
}

/// Changes the file with redb directly, as a bug or a foreign program could.
fn tamper(path: &std::path::Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
    let db = builder.open(path).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn check(path: &std::path::Path) -> eodstore::IntegrityReport {
    let mut store = Store::open(path).unwrap();
    store.check_integrity().unwrap()
}

fn kinds(report: &eodstore::IntegrityReport) -> Vec<ProblemKind> {
    report.problems.iter().map(|problem| problem.kind).collect()
}

#[test]
fn worked_store_is_clean() {
    let (_dir, path) = worked_file();
    let report = check(&path);
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert!(report.pages_verified);
    assert!(!report.repaired);
    assert_eq!(report.operations, 1);
    assert_eq!(report.steps, 10);
    // Created, seeded, started, completed, started, failed, retried.
    assert_eq!(report.events, 7);
}

#[test]
fn read_only_store_checks_records_not_pages() {
    let (_dir, path) = worked_file();
    let mut store = Store::open_with(&path, StoreOptions::new().read_only(true)).unwrap();
    let report = store.check_integrity().unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert!(!report.pages_verified);
    assert_eq!(report.steps, 10);
}

#[test]
fn missing_event_is_found() {
    let (_dir, path) = worked_file();
    // Event 6 is the failure of step 2: without it the trail has a gap.
    tamper(&path, |txn| {
        txn.open_table(EVENTS).unwrap().remove((1, 6)).unwrap();
    });
    let report = check(&path);
    assert_eq!(
        kinds(&report),
        [
            ProblemKind::Events,
            ProblemKind::Events,
            ProblemKind::Changes
        ],
        "{report:#?}"
    );
    assert!(
        report.problems[0]
            .detail
            .contains("records 7 events, but its trail has 6"),
        "{report:#?}"
    );
    assert!(report.problems[1].detail.contains("gap"), "{report:#?}");
    assert!(
        report.problems[2]
            .detail
            .contains("names event 6 of operation 1, which does not exist"),
        "{report:#?}"
    );
}

#[test]
fn transition_without_event_is_found() {
    let (_dir, path) = worked_file();
    // Dropping the last event (the retry) leaves step 2 pending with a trail that ends failed.
    tamper(&path, |txn| {
        txn.open_table(EVENTS).unwrap().remove((1, 7)).unwrap();
    });
    let report = check(&path);
    assert_eq!(
        kinds(&report),
        [
            ProblemKind::Events,
            ProblemKind::Events,
            ProblemKind::Changes
        ],
        "{report:#?}"
    );
    assert!(
        report.problems[2]
            .detail
            .contains("names event 7 of operation 1, which does not exist"),
        "{report:#?}"
    );
    assert!(
        report.problems[0]
            .detail
            .contains("records 7 events, but its trail has 6"),
        "{report:#?}"
    );
    assert!(
        report.problems[1].detail.contains(
            "step 2 of operation 1 is pending after 1 attempts, but its events give failed"
        ),
        "{report:#?}"
    );
}

#[test]
fn extra_and_missing_steps_are_found() {
    let (_dir, path) = worked_file();
    tamper(&path, |txn| {
        let mut steps = txn.open_table(STEPS).unwrap();
        let bytes = steps.get((1, 3)).unwrap().unwrap().value().to_vec();
        steps.remove((1, 4)).unwrap();
        steps.insert((7, 3), bytes.as_slice()).unwrap();
    });
    let report = check(&path);
    assert_eq!(
        kinds(&report),
        [ProblemKind::Steps, ProblemKind::Steps],
        "{report:#?}"
    );
    assert!(
        report.problems[0]
            .detail
            .contains("belongs to no operation")
    );
    assert!(report.problems[1].detail.contains("but its plan"));
}

#[test]
fn index_mismatch_is_found() {
    let (_dir, path) = worked_file();
    tamper(&path, |txn| {
        let mut index = txn.open_table(OPERATIONS_BY_DAY).unwrap();
        index.remove(("grand", 20_261_204)).unwrap();
        index.insert(("grand", 20_261_205), 1).unwrap();
    });
    let report = check(&path);
    assert_eq!(
        kinds(&report),
        [ProblemKind::Index, ProblemKind::Index],
        "{report:#?}"
    );
}

#[test]
fn undecodable_records_are_named() {
    let (_dir, path) = worked_file();
    tamper(&path, |txn| {
        let mut steps = txn.open_table(STEPS).unwrap();
        steps.insert((1, 5), [1_u8, 0xff, 0xff].as_slice()).unwrap();
        let mut operations = txn.open_table(OPERATIONS).unwrap();
        operations.insert(9, [42_u8].as_slice()).unwrap();
    });
    let report = check(&path);
    let undecodable: Vec<&str> = report
        .problems
        .iter()
        .filter(|problem| problem.kind == ProblemKind::Undecodable)
        .map(|problem| problem.detail.as_str())
        .collect();
    assert_eq!(undecodable.len(), 2, "{report:#?}");
    assert!(undecodable[0].contains("at 9 in table `operations`"));
    assert!(undecodable[1].contains("at (1, 5) in table `steps`"));
    // The undecodable operation 9 is not in the day index either.
    assert!(kinds(&report).contains(&ProblemKind::Index), "{report:#?}");
}

#[test]
fn check_runs_after_concurrent_calls_end() {
    let t = create_temp_store();
    std::thread::scope(|scope| {
        for day in 1..=4 {
            let store = &t.store;
            scope.spawn(move || {
                // Each thread has its own property, because a property has at most one
                // operation in progress.
                let property = format!("grand-{day}");
                let date = common::date(&format!("2026-12-0{day}"));
                let plan = eodstore::Plan::standard();
                let id = store
                    .open_operation(&property, date, &plan, &caller("b"))
                    .unwrap()
                    .operation
                    .id;
                store.start_step(id, 1, &caller("b")).unwrap();
            });
        }
    });
    let common::TempStore { mut store, .. } = t;
    let report = store.check_integrity().unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert_eq!((report.operations, report.events), (4, 12));
}

/// Reads everything a caller can read from the store at `path`: every operation view of
/// `golden_days`, the events and the history. Returns an error as text.
fn read_everything(path: &std::path::Path) -> Result<String, String> {
    let store = Store::open_with(path, StoreOptions::new().read_only(true))
        .map_err(|err| err.to_string())?;
    let mut text = String::new();
    for property in ["grand", "Otel İzmir Kordon"] {
        let history = store
            .history(property, 100)
            .map_err(|err| err.to_string())?;
        writeln!(text, "{history:?}").unwrap();
        for operation in history {
            let view = store
                .view_by_date(property, operation.business_date)
                .map_err(|err| err.to_string())?;
            writeln!(text, "{view:?}").unwrap();
            let events = store.events(operation.id).map_err(|err| err.to_string())?;
            writeln!(text, "{events:?}").unwrap();
        }
    }
    Ok(text)
}

/// Returns whether `Store::check_integrity` finds damage in the file at `path`, checked on a
/// copy, because the check may repair redb's allocator state.
fn check_finds_damage(path: &std::path::Path, dir: &std::path::Path) -> bool {
    let copy = dir.join("checked.redb");
    std::fs::copy(path, &copy).unwrap();
    match Store::open(&copy) {
        Err(_) => true,
        Ok(mut store) => store
            .check_integrity()
            .map_or(true, |report| !report.is_clean()),
    }
}

/// Flips one bit at a time across the golden store's pages and reads everything back. Each read
/// either fails with an error or returns exactly the original data. The one exception is a
/// damaged key of the day index, which can hide a property's operations from its history; the
/// whole-file check finds every such flip. The offsets are spread over the file with a prime
/// stride, so they fall on every position within a page.
#[test]
fn bit_flips_never_read_as_other_data() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format2.redb");
    let original = std::fs::read(&golden).unwrap();
    let expected = read_everything(&golden).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("damaged.redb");

    let mut wrong = Vec::new();
    let mut hidden = 0;
    let mut failed = 0;
    for offset in (4096..original.len()).step_by(61) {
        let mut bytes = original.clone();
        bytes[offset] ^= 1 << (offset % 8);
        std::fs::write(&damaged, &bytes).unwrap();
        match read_everything(&damaged) {
            Ok(text) if text == expected => {}
            Ok(_) if check_finds_damage(&damaged, dir.path()) => hidden += 1,
            Ok(_) => wrong.push(offset),
            Err(_) => failed += 1,
        }
    }
    assert!(
        wrong.is_empty(),
        "bit flips read as other data, unseen by the check, at offsets {wrong:?}"
    );
    assert!(
        failed > 0,
        "no flip was detected, so the test reads nothing"
    );
    assert!(hidden <= 2, "{hidden} flips hid records");
}

/// The id counter has no checksum; a damaged one must not give a new operation the id of one
/// that exists, which would overwrite it.
#[test]
fn damaged_id_counter_never_reuses_an_id() {
    let (_dir, path) = worked_file();
    tamper(&path, |txn| {
        txn.open_table(TableDefinition::<&str, u64>::new("meta"))
            .unwrap()
            .insert("next_operation_id", 1)
            .unwrap();
    });
    let store = Store::open(&path).unwrap();
    let err = store
        .open_operation(
            "grand",
            common::date("2026-12-05"),
            &eodstore::Plan::standard(),
            &caller("a"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("operation 1 exists"), "{err}");
    assert_eq!(
        store.view(eodstore::OperationId(1)).unwrap().steps.len(),
        10
    );
}

/// An event key with a damaged operation id moves the event out of its trail. Reads of the
/// trail notice it from the recorded trail length, and the check finds the stray event.
#[test]
fn moved_event_key_is_noticed() {
    let (_dir, path) = worked_file();
    tamper(&path, |txn| {
        let mut events = txn.open_table(EVENTS).unwrap();
        let bytes = events.remove((1, 7)).unwrap().unwrap().value().to_vec();
        events.insert((65_537, 7), bytes.as_slice()).unwrap();
    });
    let store = Store::open(&path).unwrap();
    let err = store.events(eodstore::OperationId(1)).unwrap_err();
    assert!(
        matches!(
            err,
            eodstore::Error::Decode {
                table: "events",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("records 7 events"), "{err}");
    let page = store.events_after(eodstore::OperationId(1), 5, 10);
    assert!(page.is_err(), "{page:?}");
    drop(store);

    let report = check(&path);
    assert!(
        report.problems.iter().any(|problem| problem
            .detail
            .contains("event (65537, 7) belongs to no operation")),
        "{report:#?}"
    );
}

/// Operations are never deleted, so an id below the id counter without a record is a damaged
/// key, not an unknown operation.
#[test]
fn missing_operation_record_is_damage() {
    let (_dir, path) = worked_file();
    tamper(&path, |txn| {
        txn.open_table(OPERATIONS).unwrap().remove(1).unwrap();
    });
    let store = Store::open(&path).unwrap();
    let err = store.view(eodstore::OperationId(1)).unwrap_err();
    assert!(
        matches!(
            err,
            eodstore::Error::Decode {
                table: "operations",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .start_step(eodstore::OperationId(1), 3, &caller("a"))
        .unwrap_err();
    assert!(matches!(err, eodstore::Error::Decode { .. }), "{err:?}");
    let err = store.view(eodstore::OperationId(2)).unwrap_err();
    assert!(
        matches!(err, eodstore::Error::OperationNotFound { .. }),
        "{err:?}"
    );
}

/// An older program that had a file open while it was migrated can still write format-1
/// records. The check reports them and a second migration rewrites them.
#[test]
fn old_records_in_current_file_reported_and_migrated() {
    let (dir, path) = worked_file();
    tamper(&path, |txn| {
        let mut steps = txn.open_table(STEPS).unwrap();
        let current = steps.get((1, 4)).unwrap().unwrap().value().to_vec();
        // A format-2 record is the format byte, a 4-byte checksum and the body; format 1 is the
        // format byte and the body.
        let mut old = vec![1_u8];
        old.extend_from_slice(&current[5..]);
        steps.insert((1, 4), old.as_slice()).unwrap();
    });
    let report = check(&path);
    assert_eq!(kinds(&report), [ProblemKind::Format], "{report:#?}");
    assert!(
        report.problems[0].detail.contains("1 records"),
        "{report:#?}"
    );

    let migration = Store::migrate(&path, StoreOptions::new()).unwrap();
    assert_eq!((migration.from, migration.records), (3, 1));
    assert!(migration.backup.is_some());
    assert!(check(&path).is_clean());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".copying"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
