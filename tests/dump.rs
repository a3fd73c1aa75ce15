//! Export and dump import: a JSON dump re-imports into an empty store and exports the same
//! bytes, importing twice changes nothing, conflicting and inconsistent dumps are rejected
//! without a change, filters select exactly their operations, and CSV reads back.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use eodstore::{
    Caller, Dump, DumpError, DumpFilter, Error, EventKind, ManualClock, OperationId,
    OperationStatus, Plan, PlanStep, StepStatus, Store, StoreOptions,
};
use jiff::SignedDuration;

const TURKISH_PROPERTY: &str = "Otel İzmir Kordon";

/// A property whose name needs quoting in CSV.
const QUOTED_PROPERTY: &str = "Otel \"Deniz\", Çeşme";

fn turkish_plan() -> Plan {
    let steps = [
        (10, "on_kontrol", "Gün Sonu Ön Kontrolleri", true),
        (
            20,
            "gelmeyenler",
            "Gelmeyen Rezervasyonlar, \"No-Show\" İşlemi",
            true,
        ),
        (30, "oda_vergi", "Oda ve Vergi Kayıtları — KDV %10", true),
        (40, "cikis_kontrolu", "Çıkış Kontrolü: ığüşöç ĞÜŞİÖÇ", false),
    ]
    .into_iter()
    .map(|(order, code, name, required)| PlanStep {
        order,
        code: code.into(),
        name: name.into(),
        required,
        command: None,
        timeout_seconds: None,
        schedule: None,
        retry: None,
    })
    .collect();
    Plan::new("gece denetimi", steps).expect("valid Turkish plan")
}

fn create_store(path: &Path) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(
        "2026-12-02T22:00:00.123456789Z"
            .parse()
            .expect("valid timestamp"),
    ));
    let store = Store::open_with(path, StoreOptions::new().create(true).clock(clock.clone()))
        .expect("create the store");
    (store, clock)
}

fn create_empty(path: &Path) -> Store {
    Store::open_with(path, StoreOptions::new().create(true)).expect("create an empty store")
}

/// Writes four operations. The first is a finished Turkish night with a skip and request ids.
/// The second is a standard night with a failure, a retry and a takeover, left running. The
/// third is a Turkish night of another property, and the fourth an opened night of a property
/// whose name needs CSV quoting.
fn fill_store(store: &Store, clock: &ManualClock) {
    let ayse = Caller::new("ayşe");
    let minute = SignedDuration::from_mins(1);

    let first = store
        .open_operation(
            "grand",
            common::date("2026-12-02"),
            &turkish_plan(),
            &Caller::new("ayşe").request_id("aç-grand-2026-12-02"),
        )
        .expect("open the first night")
        .operation
        .id;
    for step in turkish_plan().steps() {
        clock.advance(minute);
        if step.required {
            let request = format!("başlat-{}", step.order);
            let started = store
                .start_step(first, step.order, &ayse.clone().request_id(request))
                .expect("start");
            clock.advance(minute);
            store
                .complete_step(
                    first,
                    step.order,
                    &started.claim.token,
                    Some("tamam"),
                    &ayse,
                )
                .expect("complete");
        } else {
            store
                .skip_step(first, step.order, "Bu gece gerek yok, \"atla\"", &ayse)
                .expect("skip");
        }
    }

    let second = store
        .open_operation(
            "grand",
            common::date("2026-12-03"),
            &Plan::standard(),
            &ayse,
        )
        .expect("open the second night")
        .operation
        .id;
    let started = store.start_step(second, 1, &ayse).expect("start step 1");
    store
        .complete_step(second, 1, &started.claim.token, None, &ayse)
        .expect("complete step 1");
    let started = store.start_step(second, 2, &ayse).expect("start step 2");
    clock.advance(minute);
    store
        .fail_step(
            second,
            2,
            &started.claim.token,
            "kasa açık, \"Z raporu\" alınmadı\nsatır 2",
            Some("çıktı\nsatır 2"),
            &ayse,
        )
        .expect("fail step 2");
    store.retry_step(second, 2, &ayse).expect("retry step 2");
    store
        .start_step(second, 2, &ayse)
        .expect("start step 2 again");
    clock.advance(SignedDuration::from_mins(10));
    store
        .start_step(second, 2, &Caller::new("mehmet"))
        .expect("take over step 2");

    let third = store
        .open_operation(
            TURKISH_PROPERTY,
            common::date("2026-12-03"),
            &turkish_plan(),
            &Caller::new("resepsiyon-2").request_id("seed-kordon-2026-12-03"),
        )
        .expect("open the Turkish night")
        .operation
        .id;
    let receptionist = Caller::new("resepsiyon-2").request_id("start-kordon-10");
    let started = store
        .start_step(third, 10, &receptionist)
        .expect("start step 10");
    store
        .complete_step(
            third,
            10,
            &started.claim.token,
            Some("Gün sonu hazır ✓"),
            &receptionist.request_id("complete-kordon-10"),
        )
        .expect("complete step 10");

    store
        .open_operation(
            QUOTED_PROPERTY,
            common::date("2026-12-05"),
            &Plan::standard(),
            &Caller::new("gece-denetçisi"),
        )
        .expect("open the quoted property's night");
}

/// Creates the store `dir/source.redb` and fills it with `fill_store`.
fn filled_store(dir: &Path) -> (Store, PathBuf) {
    let path = dir.join("source.redb");
    let (store, clock) = create_store(&path);
    fill_store(&store, &clock);
    (store, path)
}

fn export_json(store: &Store) -> String {
    store
        .export(&DumpFilter::all())
        .expect("export")
        .to_json()
        .expect("serialize")
}

fn exported_ids(store: &Store, filter: &DumpFilter) -> Vec<u64> {
    store
        .export(filter)
        .expect("export")
        .operations
        .iter()
        .map(|dumped| dumped.operation.id.0)
        .collect()
}

fn assert_clean(path: &Path) {
    let mut store = Store::open(path).expect("reopen for the check");
    let report = store.check_integrity().expect("check");
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn round_trip_is_byte_identical() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let json = export_json(&source);
    let dump = Dump::from_json(json.as_bytes()).expect("parse the export");
    assert_eq!(dump.operations.len(), 4);
    assert!(json.starts_with("{\n  \"format\": \"eodstore-dump\",\n  \"version\": 1,\n"));
    assert!(json.contains("Çıkış Kontrolü: ığüşöç ĞÜŞİÖÇ"), "{json}");

    let target_path = dir.path().join("target.redb");
    let target = create_empty(&target_path);
    let imported = target.import_dump(&dump).expect("import");
    let ids: Vec<OperationId> = (1..=4).map(OperationId).collect();
    assert_eq!(imported.created, ids);
    assert!(imported.skipped.is_empty());
    assert_eq!(imported.next_operation_id, 5);
    assert_eq!(imported.steps, 4 + 10 + 4 + 10);

    assert_eq!(export_json(&target), json);
    for id in ids {
        assert_eq!(
            target.view(id).expect("view"),
            source.view(id).expect("view")
        );
        assert_eq!(
            target.events(id).expect("events"),
            source.events(id).expect("events")
        );
    }
    drop(target);
    assert_clean(&target_path);
}

#[test]
fn imported_store_accepts_new_writes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let dump = source.export(&DumpFilter::all()).expect("export");
    let target_path = dir.path().join("target.redb");
    let target = create_empty(&target_path);
    target.import_dump(&dump).expect("import");

    let opened = target
        .open_operation(
            "grand",
            common::date("2026-12-04"),
            &Plan::standard(),
            &Caller::new("ayşe"),
        )
        .expect("open a new night");
    assert!(opened.created);
    assert_eq!(opened.operation.id, OperationId(5));

    // The taken-over step keeps its claim, so its holder can finish it after the move.
    let second = &dump.operations[1];
    let claim = second.steps[1]
        .claim
        .as_ref()
        .expect("running step has a claim");
    assert_eq!(claim.actor, "mehmet");
    let step = target
        .complete_step(
            OperationId(2),
            2,
            &claim.token,
            None,
            &Caller::new("mehmet"),
        )
        .expect("complete the imported running step");
    assert_eq!(step.status, StepStatus::Completed);
    let events = target.events(OperationId(2)).expect("events");
    assert_eq!(
        events.last().map(|event| event.seq),
        Some(second.events.len() as u64 + 1)
    );
    assert_eq!(
        events.last().map(|event| event.kind),
        Some(EventKind::Completed)
    );
    drop(target);
    assert_clean(&target_path);
}

#[test]
fn import_twice_changes_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let dump = source.export(&DumpFilter::all()).expect("export");
    let target_path = dir.path().join("target.redb");
    let target = create_empty(&target_path);
    target.import_dump(&dump).expect("first import");
    let after_first = export_json(&target);

    let again = target.import_dump(&dump).expect("second import");
    assert!(again.created.is_empty(), "{again:?}");
    assert_eq!(again.skipped.len(), 4);
    assert_eq!((again.steps, again.events), (0, 0));
    assert_eq!(again.next_operation_id, 5);
    assert_eq!(export_json(&target), after_first);
    drop(target);

    let mut reopened = Store::open(&target_path).expect("reopen");
    let report = reopened.check_integrity().expect("check");
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(
        (
            report.operations,
            report.steps,
            report.events,
            report.requests
        ),
        (
            4,
            28,
            dump.operations.iter().map(|d| d.events.len() as u64).sum(),
            0
        )
    );
}

#[test]
fn importing_into_source_skips_everything() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let before = export_json(&source);
    let dump = Dump::from_json(before.as_bytes()).expect("parse");
    let imported = source
        .import_dump(&dump)
        .expect("import into its own source");
    assert_eq!(imported.skipped.len(), 4);
    assert_eq!(export_json(&source), before);
}

#[test]
fn conflicting_id_rejected_unchanged() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let dump = source.export(&DumpFilter::all()).expect("export");

    // Operation 1 of the target is another night than operation 1 of the dump.
    let target = create_empty(&dir.path().join("target.redb"));
    target
        .open_operation(
            "grand",
            common::date("2026-11-30"),
            &Plan::standard(),
            &Caller::new("ayşe"),
        )
        .expect("open");
    let before = export_json(&target);

    let err = target.import_dump(&dump).unwrap_err();
    let DumpError::Conflict { operation, detail } = &err else {
        panic!("expected a conflict, got {err:?}");
    };
    assert_eq!(*operation, OperationId(1));
    assert!(detail.contains("2026-11-30"), "{detail}");
    assert!(err.to_string().contains("nothing was imported"), "{err}");
    assert_eq!(export_json(&target), before);
}

#[test]
fn conflicting_day_rejected_unchanged() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let dump = source
        .export(&DumpFilter::all().operation(OperationId(3)))
        .expect("export");

    // The target has no operation 3, but its operation 1 closes the same property and day.
    let target = create_empty(&dir.path().join("target.redb"));
    target
        .open_operation(
            TURKISH_PROPERTY,
            common::date("2026-12-03"),
            &turkish_plan(),
            &Caller::new("ayşe"),
        )
        .expect("open the same day under id 1");
    let before = export_json(&target);

    let err = target.import_dump(&dump).unwrap_err();
    let DumpError::Conflict { operation, detail } = &err else {
        panic!("expected a conflict, got {err:?}");
    };
    assert_eq!(*operation, OperationId(3));
    assert!(detail.contains("operation 1 already closes"), "{detail}");
    assert_eq!(export_json(&target), before);
}

#[test]
fn late_conflict_writes_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let mut dump = source.export(&DumpFilter::all()).expect("export");
    // Move the quoted property's night to id 9; the target has another night under 9.
    dump.operations[3].operation.id = OperationId(9);

    let target_path = dir.path().join("target.redb");
    let target = create_empty(&target_path);
    let filler = Dump::new(vec![eodstore::DumpedOperation {
        operation: eodstore::Operation {
            id: OperationId(9),
            property: "başka".into(),
            ..dump.operations[3].operation.clone()
        },
        ..dump.operations[3].clone()
    }]);
    target.import_dump(&filler).expect("import the filler");
    let before = export_json(&target);

    let err = target.import_dump(&dump).unwrap_err();
    assert!(
        matches!(
            err,
            DumpError::Conflict {
                operation: OperationId(9),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(export_json(&target), before);
    assert!(matches!(
        target.operation(OperationId(1)),
        Err(Error::OperationNotFound { .. } | Error::Decode { .. })
    ));
}

#[test]
fn filters_select_exact_operations() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (store, _) = filled_store(dir.path());
    let date = common::date;

    assert_eq!(exported_ids(&store, &DumpFilter::all()), [1, 2, 3, 4]);
    assert_eq!(
        exported_ids(&store, &DumpFilter::all().property("grand")),
        [1, 2]
    );
    assert_eq!(
        exported_ids(&store, &DumpFilter::all().property(TURKISH_PROPERTY)),
        [3]
    );
    assert!(exported_ids(&store, &DumpFilter::all().property("nowhere")).is_empty());
    assert_eq!(
        exported_ids(
            &store,
            &DumpFilter::all()
                .from_date(date("2026-12-03"))
                .to_date(date("2026-12-03"))
        ),
        [2, 3]
    );
    assert_eq!(
        exported_ids(&store, &DumpFilter::all().from_date(date("2026-12-03"))),
        [2, 3, 4]
    );
    assert_eq!(
        exported_ids(&store, &DumpFilter::all().to_date(date("2026-12-02"))),
        [1]
    );
    assert_eq!(
        exported_ids(
            &store,
            &DumpFilter::all()
                .property("grand")
                .from_date(date("2026-12-03"))
                .to_date(date("2026-12-31"))
        ),
        [2]
    );
    assert_eq!(
        exported_ids(&store, &DumpFilter::all().operation(OperationId(3))),
        [3]
    );
    assert!(
        exported_ids(
            &store,
            &DumpFilter::all()
                .operation(OperationId(3))
                .property("grand")
        )
        .is_empty()
    );

    let err = store
        .export(
            &DumpFilter::all()
                .from_date(date("2026-12-04"))
                .to_date(date("2026-12-03")),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = store
        .export(&DumpFilter::all().operation(OperationId(99)))
        .unwrap_err();
    assert!(matches!(err, Error::OperationNotFound { .. }), "{err:?}");
    let err = store.export(&DumpFilter::all().property(" ")).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

#[test]
fn filtered_dump_imports_alone() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let dump = source
        .export(&DumpFilter::all().operation(OperationId(3)))
        .expect("export");
    let target_path = dir.path().join("target.redb");
    let target = create_empty(&target_path);
    let imported = target.import_dump(&dump).expect("import");
    assert_eq!(imported.created, [OperationId(3)]);
    assert_eq!(imported.next_operation_id, 4);
    assert_eq!(
        target.view(OperationId(3)).expect("view"),
        source.view(OperationId(3)).expect("view")
    );
    drop(target);
    assert_clean(&target_path);
}

#[test]
fn source_ids_round_trip() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, path) = filled_store(dir.path());
    drop(source);
    // The CSV import records source ids in this table; write two by hand.
    let sources: redb::TableDefinition<u64, &str> = redb::TableDefinition::new("sources");
    {
        let db = redb::Builder::new()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open(&path)
            .expect("open with redb");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(sources).expect("sources table");
            table.insert(1, "eski-pms-4711").expect("insert");
            table.insert(3, "Gün Sonu #12, \"kordon\"").expect("insert");
        }
        txn.commit().expect("commit");
    }

    let source = Store::open(&path).expect("reopen");
    let dump = source.export(&DumpFilter::all()).expect("export");
    let found: Vec<Option<&str>> = dump
        .operations
        .iter()
        .map(|dumped| dumped.source_id.as_deref())
        .collect();
    assert_eq!(
        found,
        [
            Some("eski-pms-4711"),
            None,
            Some("Gün Sonu #12, \"kordon\""),
            None
        ]
    );
    let json = dump.to_json().expect("serialize");
    assert_eq!(json.matches("\"source_id\"").count(), 2, "{json}");

    let target_path = dir.path().join("target.redb");
    let target = create_empty(&target_path);
    target.import_dump(&dump).expect("import");
    assert_eq!(export_json(&target), json);
    // The same operations with another source id conflict.
    let mut changed = dump.clone();
    changed.operations[0].source_id = Some("başka".into());
    let err = target.import_dump(&changed).unwrap_err();
    assert!(
        matches!(
            err,
            DumpError::Conflict {
                operation: OperationId(1),
                ..
            }
        ),
        "{err:?}"
    );
    drop(target);
    assert_clean(&target_path);
}

#[test]
fn malformed_dump_files_give_typed_errors() {
    let not_json = Dump::from_json(b"{\"format\": ").unwrap_err();
    assert!(
        matches!(not_json, DumpError::NotJson { .. }),
        "{not_json:?}"
    );
    assert!(not_json.to_string().contains("line 1"), "{not_json}");

    for text in ["42", "{}", "{\"format\": \"csv\", \"version\": 1}"] {
        let err = Dump::from_json(text.as_bytes()).unwrap_err();
        assert!(matches!(err, DumpError::NotADump { .. }), "{text}: {err:?}");
    }
    let err = Dump::from_json(br#"{"format": "eodstore-dump", "version": 2, "operations": []}"#)
        .unwrap_err();
    assert!(
        matches!(&err, DumpError::UnsupportedVersion { found } if found == "2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 2"), "{err}");
    let err = Dump::from_json(br#"{"format": "eodstore-dump"}"#).unwrap_err();
    assert!(
        matches!(err, DumpError::UnsupportedVersion { .. }),
        "{err:?}"
    );

    for text in [
        r#"{"format": "eodstore-dump", "version": 1}"#,
        r#"{"format": "eodstore-dump", "version": 1, "operations": [], "extra": 1}"#,
        r#"{"format": "eodstore-dump", "version": 1, "operations": [{"operation": 1}]}"#,
    ] {
        let err = Dump::from_json(text.as_bytes()).unwrap_err();
        assert!(
            matches!(err, DumpError::Malformed { .. }),
            "{text}: {err:?}"
        );
    }

    let empty = Dump::from_json(
        "\u{feff}{\"format\": \"eodstore-dump\", \"version\": 1, \"operations\": []}".as_bytes(),
    )
    .expect("a byte-order mark is ignored");
    assert!(empty.operations.is_empty());
}

/// Applies `damage` to a copy of `dump` and checks that importing it is rejected as invalid,
/// naming `operation` and a detail containing `expected`, and that the target is unchanged.
fn assert_invalid(
    target: &Store,
    dump: &Dump,
    operation: u64,
    expected: &str,
    damage: impl FnOnce(&mut Dump),
) {
    let before = export_json(target);
    let mut damaged = dump.clone();
    damage(&mut damaged);
    let err = target.import_dump(&damaged).unwrap_err();
    let DumpError::Invalid {
        operation: found,
        detail,
    } = &err
    else {
        panic!("expected an invalid dump ({expected}), got {err:?}");
    };
    assert_eq!(found.0, operation, "{err}");
    assert!(
        detail.contains(expected),
        "expected `{expected}` in: {detail}"
    );
    assert_eq!(export_json(target), before);
}

#[test]
fn inconsistent_dumps_rejected_unchanged() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let dump = source.export(&DumpFilter::all()).expect("export");
    let target = create_empty(&dir.path().join("target.redb"));

    assert_invalid(&target, &dump, 2, "gap", |dump| {
        dump.operations[1].events.remove(3);
    });
    assert_invalid(&target, &dump, 2, "gap", |dump| {
        for event in &mut dump.operations[1].events {
            event.seq += 1;
        }
    });
    assert_invalid(&target, &dump, 1, "but its plan", |dump| {
        dump.operations[0].steps.pop();
    });
    assert_invalid(&target, &dump, 1, "but its plan", |dump| {
        dump.operations[0].steps[1].required = false;
    });
    assert_invalid(&target, &dump, 2, "its steps make it failed", |dump| {
        dump.operations[1].steps[4].status = StepStatus::Failed;
        dump.operations[1].steps[4].attempts = 1;
    });
    assert_invalid(&target, &dump, 3, "its events give", |dump| {
        dump.operations[2].steps[0].attempts = 2;
    });
    assert_invalid(&target, &dump, 1, "lacks a finish time", |dump| {
        dump.operations[0].operation.finished_at = None;
    });
    assert_invalid(&target, &dump, 4, "status is completed", |dump| {
        dump.operations[3].operation.status = OperationStatus::Completed;
    });
    assert_invalid(&target, &dump, 4, "operation_created", |dump| {
        dump.operations[3].events.clear();
    });
    assert_invalid(&target, &dump, 2, "holds it twice", |dump| {
        let copy = dump.operations[1].clone();
        dump.operations.push(copy);
    });
    assert_invalid(&target, &dump, 7, "same property", |dump| {
        let mut copy = dump.operations[1].clone();
        copy.operation.id = OperationId(7);
        dump.operations.push(copy);
    });
    assert_invalid(&target, &dump, 0, "its id must be", |dump| {
        dump.operations[0].operation.id = OperationId(0);
    });
    assert_invalid(&target, &dump, u64::MAX, "its id must be", |dump| {
        dump.operations[0].operation.id = OperationId(u64::MAX);
    });
    assert_invalid(&target, &dump, 1, "invalid property", |dump| {
        dump.operations[0].operation.property = "satır\nsonu".into();
    });
    assert_invalid(&target, &dump, 1, "cannot be stored", |dump| {
        dump.operations[0].steps[0].output_tail = Some("x".repeat(2 << 20));
    });

    let mut wrong = dump.clone();
    wrong.version = 2;
    let err = target.import_dump(&wrong).unwrap_err();
    assert!(
        matches!(err, DumpError::UnsupportedVersion { .. }),
        "{err:?}"
    );
}

#[test]
fn read_only_store_rejects_import() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, path) = filled_store(dir.path());
    let dump = source.export(&DumpFilter::all()).expect("export");
    drop(source);
    let read_only =
        Store::open_with(&path, StoreOptions::new().read_only(true)).expect("open read-only");
    let err = read_only.import_dump(&dump).unwrap_err();
    assert!(
        matches!(err, DumpError::Store(Error::InvalidInput { .. })),
        "{err:?}"
    );
}

fn eod(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eod"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("EOD_DB")
        .env("RUST_LOG", "off")
        .output()
        .expect("run eod")
}

#[test]
fn cli_export_matches_library() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, path) = filled_store(dir.path());
    let json = export_json(&source);
    let grand = source
        .export(&DumpFilter::all().property("grand"))
        .expect("export")
        .to_json()
        .expect("serialize");
    drop(source);

    let output = eod(&path, &["export"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).expect("UTF-8"), json);

    let output = eod(
        &path,
        &[
            "export",
            "--format",
            "json",
            "--property",
            "grand",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-31",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).expect("UTF-8"), grand);

    let output = eod(&path, &["export", "--from", "2026-02-30"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid business date `2026-02-30`"),
        "{stderr}"
    );

    let output = eod(
        &path,
        &["export", "--from", "2026-12-05", "--to", "2026-12-01"],
    );
    assert_eq!(output.status.code(), Some(3), "{output:?}");

    let output = eod(&path, &["export", "--operation", "99"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");

    let output = eod(&path, &["--json", "export", "--format", "csv"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");

    let output = eod(&dir.path().join("missing.redb"), &["export"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(!dir.path().join("missing.redb").exists());
}

#[test]
fn cli_csv_export_reads_back() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, path) = filled_store(dir.path());
    let dump = source.export(&DumpFilter::all()).expect("export");
    drop(source);

    let output = eod(&path, &["export", "--format", "csv"]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(text.ends_with("\r\n"), "records end in CRLF");

    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header row")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[0], "operation_id");
    let column = |name: &str| {
        header
            .iter()
            .position(|found| found == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("every row parses");

    let expected: Vec<(&eodstore::DumpedOperation, &eodstore::Step)> = dump
        .operations
        .iter()
        .flat_map(|dumped| dumped.steps.iter().map(move |step| (dumped, step)))
        .collect();
    assert_eq!(rows.len(), expected.len());
    for (row, (dumped, step)) in rows.iter().zip(&expected) {
        let operation = &dumped.operation;
        assert_eq!(row.len(), header.len());
        assert_eq!(&row[column("operation_id")], operation.id.to_string());
        assert_eq!(&row[column("property")], operation.property);
        assert_eq!(
            &row[column("business_date")],
            operation.business_date.to_string()
        );
        assert_eq!(&row[column("step_order")], step.order.to_string());
        assert_eq!(&row[column("step_code")], step.code);
        assert_eq!(&row[column("step_name")], step.name);
        assert_eq!(&row[column("status")], step.status.as_str());
        assert_eq!(&row[column("attempts")], step.attempts.to_string());
        assert_eq!(
            &row[column("error")],
            step.last_error.as_deref().unwrap_or_default()
        );
    }
    let quoted = rows
        .iter()
        .find(|row| &row[column("property")] == QUOTED_PROPERTY)
        .expect("the quoted property's rows");
    assert_eq!(&quoted[column("business_date")], "2026-12-05");
    let failed = rows
        .iter()
        .find(|row| row[column("error")].contains('\n'))
        .expect("the failure with a newline");
    assert_eq!(
        &failed[column("error")],
        "kasa açık, \"Z raporu\" alınmadı\nsatır 2"
    );
    assert!(
        rows.iter()
            .any(|row| &row[column("step_name")] == "Gelmeyen Rezervasyonlar, \"No-Show\" İşlemi")
    );
}

/// A CSV export of an older system's table: a collapsed duplicate row, and two source ids of one
/// night that the CSV import merges into one operation.
const LEGACY_CSV: &str = "\
operation_id,property,business_date,step_order,step_name,status,error,actor
101,grand,2026-11-30,1,Ön Denetim Kontrolleri,completed,,ayşe
101,grand,2026-11-30,2,Çıkış Kontrolü,failed,\"kasa açık, \"\"Z raporu\"\"\",mehmet
101,grand,2026-11-30,2,Çıkış Kontrolü,pending,,mehmet
102,grand,2026-11-30,3,Gün Sonu İşlemi,completed,,ayşe
103,Otel İzmir Kordon,2026-12-01,1,Ön Denetim Kontrolleri,in_progress,,ayşe
";

#[test]
fn cli_dump_moves_csv_imported_store() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let csv_path = dir.path().join("eski.csv");
    std::fs::write(&csv_path, LEGACY_CSV).expect("write the CSV");
    let source = dir.path().join("source.redb");
    let csv_arg = csv_path.to_str().expect("UTF-8 path");
    let output = eod(&source, &["import", "--csv", csv_arg]);
    assert!(output.status.success(), "{output:?}");

    let output = eod(&source, &["export"]);
    assert!(output.status.success(), "{output:?}");
    let json = output.stdout;
    let text = String::from_utf8(json.clone()).expect("UTF-8");
    assert!(text.contains("\"source_id\": \"101\\n102\""), "{text}");
    assert!(text.contains("\"kind\": \"imported\""), "{text}");
    let dump_path = dir.path().join("dump.json");
    std::fs::write(&dump_path, &json).expect("write the dump");
    let dump_arg = dump_path.to_str().expect("UTF-8 path");

    let target = dir.path().join("target.redb");
    let output = eod(&target, &["import", "--dump", dump_arg]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("2 operations created (1, 2)"), "{stdout}");
    let output = eod(&target, &["export"]);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout == json, "the export of the target differs");

    let output = eod(&target, &["--json", "import", "--dump", dump_arg]);
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(summary["created"], serde_json::json!([]));
    assert_eq!(summary["skipped"], serde_json::json!([1, 2]));
    assert_eq!(summary["next_operation_id"], 3);

    let output = eod(&target, &["check"]);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn cli_bad_dump_creates_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let target = dir.path().join("target.redb");
    let cases = [
        ("not-json.json", "{\"format\": ", "is not valid JSON"),
        ("plan.toml", "name = \"kucuk-otel\"\n", "is not valid JSON"),
        ("other.json", "{\"name\": \"x\"}", "is not an eodstore dump"),
        (
            "v2.json",
            "{\"format\": \"eodstore-dump\", \"version\": 2, \"operations\": []}",
            "has version 2",
        ),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write the dump");
        let output = eod(
            &target,
            &["import", "--dump", path.to_str().expect("UTF-8 path")],
        );
        assert_eq!(output.status.code(), Some(3), "{name}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!target.exists(), "{name} created the database");
    }

    // An inconsistent operation is rejected before the database is created.
    let source = dir.path().join("source.redb");
    let (store, clock) = create_store(&source);
    fill_store(&store, &clock);
    let mut dump = store.export(&DumpFilter::all()).expect("export");
    drop(store);
    dump.operations[1].events.pop();
    let path = dir.path().join("inconsistent.json");
    std::fs::write(&path, dump.to_json().expect("serialize")).expect("write the dump");
    let output = eod(
        &target,
        &["import", "--dump", path.to_str().expect("UTF-8 path")],
    );
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("dumped operation 2 is inconsistent"),
        "{stderr}"
    );
    assert!(
        !target.exists(),
        "an inconsistent dump created the database"
    );

    let missing = dir.path().join("missing.json");
    let output = eod(
        &target,
        &["import", "--dump", missing.to_str().expect("UTF-8 path")],
    );
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.json"), "{stderr}");
    assert!(!target.exists(), "a missing dump created the database");
}

/// A filtered dump leaves gaps in the ids of the store it fills; an id in a gap is not found,
/// while the next new operation gets an id above every imported one.
#[test]
fn gaps_from_filtered_dump_are_not_found() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let (source, _) = filled_store(dir.path());
    let dump = source
        .export(&DumpFilter::all().operation(OperationId(3)))
        .expect("export");
    let target = create_empty(&dir.path().join("gaps.redb"));
    target.import_dump(&dump).expect("import");

    for id in [1, 2] {
        let err = target.operation(OperationId(id)).unwrap_err();
        assert!(
            matches!(err, Error::OperationNotFound { .. }),
            "operation {id}: {err:?}"
        );
    }
    let opened = target
        .open_operation(
            "grand",
            eodstore::parse_business_date("2030-01-01").unwrap(),
            &Plan::standard(),
            &Caller::new("ayşe"),
        )
        .expect("open a new operation");
    assert_eq!(opened.operation.id, OperationId(4));
}

/// A dump is held to the rules every write applies: plan rules for codes and names, text limits,
/// claims only on running steps, and ids the counter can pass.
#[test]
fn dumps_breaking_write_rules_rejected_unchanged() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (source, _) = filled_store(dir.path());
    let dump = source.export(&DumpFilter::all()).expect("export");
    let target = create_empty(&dir.path().join("target.redb"));

    assert_invalid(&target, &dump, 1, "code", |dump| {
        let operation = &mut dump.operations[0];
        operation.steps[0].code = "kapanış yok".into();
        operation.operation.plan_identity[0].code = "kapanış yok".into();
    });
    assert_invalid(&target, &dump, 1, "name", |dump| {
        dump.operations[0].steps[1].name = "x".repeat(10_000);
    });
    assert_invalid(&target, &dump, 1, "control characters", |dump| {
        dump.operations[0].steps[1].name = "Gün\u{1b}[31m sonu".into();
    });
    assert_invalid(&target, &dump, 1, "actor", |dump| {
        dump.operations[0].operation.created_by = "\u{7}".into();
    });
    assert_invalid(&target, &dump, 1, "has a claim", |dump| {
        let operation = &mut dump.operations[0];
        let completed = operation
            .steps
            .iter()
            .position(|step| step.status == eodstore::StepStatus::Completed)
            .expect("a completed step");
        operation.steps[completed].claim = Some(eodstore::Claim {
            token: "t".into(),
            actor: "a".into(),
            process: None,
            lease_until: "2030-01-01T00:00:00Z".parse().unwrap(),
        });
    });
    assert_invalid(&target, &dump, u64::MAX - 1, "outside 1 to", |dump| {
        let operation = &mut dump.operations[0];
        operation.operation.id = OperationId(u64::MAX - 1);
    });
}
