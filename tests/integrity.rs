//! `Store::check_integrity` on real files: clean after real work, and each kind of damage found.

mod common;

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
    assert_eq!(kinds(&report), [ProblemKind::Events], "{report:#?}");
    assert!(report.problems[0].detail.contains("gap"), "{report:#?}");
}

#[test]
fn transition_without_event_is_found() {
    let (_dir, path) = worked_file();
    // Dropping the last event (the retry) leaves step 2 pending with a trail that ends failed.
    tamper(&path, |txn| {
        txn.open_table(EVENTS).unwrap().remove((1, 7)).unwrap();
    });
    let report = check(&path);
    assert_eq!(kinds(&report), [ProblemKind::Events], "{report:#?}");
    assert!(
        report.problems[0].detail.contains(
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
                let date = common::date(&format!("2026-12-0{day}"));
                let plan = eodstore::Plan::standard();
                let id = store
                    .open_operation("grand", date, &plan, &caller("b"))
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
