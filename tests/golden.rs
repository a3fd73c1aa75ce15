//! Files committed under `tests/data/`: stores written by earlier versions open and read back
//! exactly, and newer, foreign, non-redb, empty and truncated files each get their own error
//! without a byte of them changing.
//!
//! `write_golden_store` writes the content of the golden stores. After a change to the stored
//! format, add the new version's file beside the old ones (never replace them) with
//! `EODSTORE_WRITE_GOLDEN=1 cargo test --test golden -- --ignored write_golden_files`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eodstore::{
    Caller, DumpFilter, Error, EventKind, ManualClock, OperationStatus, Plan, PlanStep, StepStatus,
    Store, StoreOptions,
};
use jiff::SignedDuration;
use redb::{ReadableDatabase, TableHandle};

/// The golden stores, one per store format, oldest first.
const GOLDEN_STORES: [&str; 3] = ["format1.redb", "format2.redb", "format3.redb"];

/// The golden store of the format this build writes.
const NEWEST_GOLDEN: &str = GOLDEN_STORES[GOLDEN_STORES.len() - 1];

/// The golden stores written before format 3 added business dates.
const WITHOUT_BUSINESS_DATES: [&str; 2] = ["format1.redb", "format2.redb"];

/// The names of the Turkish plan's steps, which must come back byte for byte.
const TURKISH_STEPS: [(&str, &str); 4] = [
    ("on_kontrol", "Gün Sonu Ön Kontrolleri"),
    ("gelmeyenler", "Gelmeyen Rezervasyonlar (No-Show) İşlemi"),
    ("oda_vergi", "Oda ve Vergi Kayıtları — KDV %10"),
    ("cikis_kontrolu", "Çıkış Kontrolü: ığüşöç ĞÜŞİÖÇ"),
];

const TURKISH_PROPERTY: &str = "Otel İzmir Kordon";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn turkish_plan() -> Plan {
    let steps = (1_u32..)
        .zip(TURKISH_STEPS)
        .map(|(order, (code, name))| PlanStep {
            order: order * 10,
            code: code.into(),
            name: name.into(),
            required: code != "cikis_kontrolu",
            command: None,
            timeout_seconds: None,
            schedule: None,
            retry: None,
        })
        .collect();
    Plan::new("gece denetimi", steps).expect("valid Turkish plan")
}

/// Writes the golden content into a new store at `path`: a finished standard night, a night with
/// a failure, a retry and a takeover, and a Turkish plan reached through request ids.
///
/// Since format 3 it also sets business dates, which the older golden files lack. `grand`
/// starts from a business date set by hand, and its finished night rolls that date forward. The
/// Turkish property's date is set through a request id.
fn write_golden_store(path: &Path) {
    let clock = Arc::new(ManualClock::new(
        "2026-12-02T22:00:00Z".parse().expect("valid timestamp"),
    ));
    let store = Store::open_with(path, StoreOptions::new().create(true).clock(clock.clone()))
        .expect("create the golden store");
    let ayse = Caller::new("ayşe");
    let minute = SignedDuration::from_mins(1);

    store
        .set_business_date("grand", common::date("2026-12-02"), &ayse)
        .expect("set the business date of grand");
    let first = store
        .open_operation(
            "grand",
            common::date("2026-12-02"),
            &Plan::standard(),
            &ayse,
        )
        .expect("open the first night")
        .operation
        .id;
    for step in Plan::standard().steps() {
        clock.advance(minute);
        if step.required {
            let started = store.start_step(first, step.order, &ayse).expect("start");
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
                .skip_step(first, step.order, "not needed tonight", &ayse)
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
    store
        .fail_step(
            second,
            2,
            &started.claim.token,
            "kasa açık",
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

    write_turkish_night(&store);
}

/// Writes the Turkish property's night of the golden content, every call with a request id.
fn write_turkish_night(store: &Store) {
    store
        .set_business_date(
            TURKISH_PROPERTY,
            common::date("2026-12-03"),
            &Caller::new("resepsiyon-2").request_id("date-kordon-2026-12-03"),
        )
        .expect("set the business date of the Turkish property");
    let kordon = Caller::new("resepsiyon-2").request_id("seed-kordon-2026-12-03");
    let third = store
        .open_operation(
            TURKISH_PROPERTY,
            common::date("2026-12-03"),
            &turkish_plan(),
            &kordon,
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
}

/// Copies `name` from `tests/data` into `dir` and returns the copy's path.
fn copy_golden(dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    std::fs::copy(data_dir().join(name), &copy).expect("copy a golden file");
    copy
}

/// Checks that `store` contains exactly what `write_golden_store` wrote.
fn assert_golden_content(store: &Store) {
    let first = store
        .view_by_date("grand", common::date("2026-12-02"))
        .expect("read the first night");
    assert_eq!(first.operation.status, OperationStatus::Completed);
    assert_eq!(first.steps.len(), 10);
    assert_eq!(
        first.operation.finished_at,
        Some("2026-12-02T22:15:00Z".parse().unwrap())
    );
    for step in &first.steps {
        let expected = if step.required {
            StepStatus::Completed
        } else {
            StepStatus::Skipped
        };
        assert_eq!(step.status, expected, "step {}", step.order);
    }

    let second = store
        .view_by_date("grand", common::date("2026-12-03"))
        .expect("read the second night");
    assert_eq!(second.operation.status, OperationStatus::Running);
    let step = &second.steps[1];
    assert_eq!(step.status, StepStatus::Running);
    assert_eq!(step.attempts, 3);
    assert_eq!(step.actor.as_deref(), Some("mehmet"));
    assert_eq!(step.last_error.as_deref(), Some("kasa açık"));
    let kinds: Vec<EventKind> = store
        .events(second.operation.id)
        .expect("read the second night's events")
        .iter()
        .map(|event| event.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::OperationCreated,
            EventKind::StepsSeeded,
            EventKind::Started,
            EventKind::Completed,
            EventKind::Started,
            EventKind::Failed,
            EventKind::Retried,
            EventKind::Started,
            EventKind::TakenOver,
        ]
    );

    let third = store
        .view_by_date(TURKISH_PROPERTY, common::date("2026-12-03"))
        .expect("read the Turkish night");
    assert_eq!(third.operation.property, TURKISH_PROPERTY);
    assert_eq!(third.operation.plan, "gece denetimi");
    let names: Vec<(&str, &str)> = third
        .steps
        .iter()
        .map(|step| (step.code.as_str(), step.name.as_str()))
        .collect();
    assert_eq!(names, TURKISH_STEPS);
    assert_eq!(
        third.steps[0].output_tail.as_deref(),
        Some("Gün sonu hazır ✓")
    );
    assert_eq!(third.steps[0].actor.as_deref(), Some("resepsiyon-2"));
}

/// Checks the content that format 3 added to `write_golden_store`: the properties' business
/// dates and operations in progress, the roll's event and the `changes` table.
fn assert_business_date_content(store: &Store) {
    let first = store
        .find_operation("grand", common::date("2026-12-02"))
        .expect("read the first night")
        .expect("the first night exists")
        .id;
    let second = store
        .find_operation("grand", common::date("2026-12-03"))
        .expect("read the second night")
        .expect("the second night exists")
        .id;
    let third = store
        .find_operation(TURKISH_PROPERTY, common::date("2026-12-03"))
        .expect("read the Turkish night")
        .expect("the Turkish night exists")
        .id;

    let grand = store
        .property("grand")
        .expect("read grand's state")
        .expect("grand has a state");
    assert_eq!(grand.business_date, Some(common::date("2026-12-03")));
    let rolled_by = format!("rolled by operation {first}");
    assert_eq!(grand.date_source.as_deref(), Some(rolled_by.as_str()));
    assert_eq!(
        grand.date_changed_at,
        Some("2026-12-02T22:15:00Z".parse().unwrap())
    );
    let active = grand.active.expect("grand's second night is in progress");
    assert_eq!(active.operation, second);
    assert_eq!(active.business_date, common::date("2026-12-03"));
    assert_eq!(active.started_by, "ayşe");

    let kordon = store
        .property(TURKISH_PROPERTY)
        .expect("read the Turkish property's state")
        .expect("the Turkish property has a state");
    assert_eq!(kordon.business_date, Some(common::date("2026-12-03")));
    assert_eq!(kordon.date_source.as_deref(), Some("set by `resepsiyon-2`"));
    let active = kordon.active.expect("the Turkish night is in progress");
    assert_eq!(active.operation, third);
    assert_eq!(active.started_by, "resepsiyon-2");
    assert_eq!(store.properties().unwrap().len(), 2);

    let first_events = store.events(first).expect("read the first night's events");
    let last_kinds: Vec<EventKind> = first_events
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|event| event.kind)
        .collect();
    assert_eq!(
        last_kinds,
        [
            EventKind::Completed,
            EventKind::DateRolled,
            EventKind::OperationFinished,
        ]
    );
    let rolled = first_events
        .iter()
        .find(|event| event.kind == EventKind::DateRolled)
        .expect("a date_rolled event");
    assert_eq!(
        rolled.message.as_deref(),
        Some("the business date of `grand` is now 2026-12-03")
    );

    // The `changes` table lists every event of every operation, in commit order.
    let trails = [first, second, third].map(|id| store.events(id).expect("read events"));
    let event_count: usize = trails.iter().map(Vec::len).sum();
    assert_eq!(store.last_change().unwrap(), event_count as u64);
    let changes = store.changes_after(0, usize::MAX).unwrap();
    let listed: Vec<_> = changes
        .iter()
        .map(|change| (change.operation, change.event.seq))
        .collect();
    let committed: Vec<_> = [first, second, third]
        .iter()
        .zip(&trails)
        .flat_map(|(id, events)| events.iter().map(|event| (*id, event.seq)))
        .collect();
    assert_eq!(listed, committed);
}

/// Checks that `store`, read from the golden file `name` or from a copy of it, contains
/// exactly what the writer of that file's format wrote. Files written before format 3 have no
/// property state and no changes. Migrated to format 3 they have no changes either, but each
/// property has its unfinished operation recorded as in progress.
fn assert_golden_file_content(name: &str, store: &Store, migrated: bool) {
    assert_golden_content(store);
    if !WITHOUT_BUSINESS_DATES.contains(&name) {
        assert_business_date_content(store);
        return;
    }
    assert_eq!(store.last_change().unwrap(), 0, "{name}");
    let in_progress: Vec<(
        String,
        Option<eodstore::OperationId>,
        Option<jiff::civil::Date>,
    )> = store
        .properties()
        .unwrap()
        .into_iter()
        .map(|state| {
            (
                state.property,
                state.active.map(|active| active.operation),
                state.business_date,
            )
        })
        .collect();
    if migrated {
        assert_eq!(
            in_progress,
            [
                (
                    "Otel İzmir Kordon".to_owned(),
                    Some(eodstore::OperationId(3)),
                    None
                ),
                ("grand".to_owned(), Some(eodstore::OperationId(2)), None),
            ],
            "{name}"
        );
    } else {
        assert_eq!(in_progress, [], "{name}");
    }
}

#[test]
#[ignore = "writes tests/data; run by hand after a format change"]
fn write_golden_files() {
    if std::env::var_os("EODSTORE_WRITE_GOLDEN").is_none() {
        return;
    }
    let name = format!("format{}.redb", eodstore::FORMAT_VERSION);
    let path = data_dir().join(&name);
    let _ = std::fs::remove_file(&path);
    write_golden_store(&path);
    assert!(
        GOLDEN_STORES.contains(&name.as_str()),
        "add {name} to GOLDEN_STORES"
    );
}

/// Opens a copy of each golden store read-write, migrating an older one first.
#[test]
fn golden_stores_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for name in GOLDEN_STORES {
        let copy = copy_golden(dir.path(), name);
        Store::migrate(&copy, StoreOptions::new()).unwrap_or_else(|err| panic!("{name}: {err}"));
        let store = Store::open(&copy).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_golden_file_content(name, &store, true);
        drop(store);

        let mut store = Store::open(&copy).unwrap();
        let report = store.check_integrity().unwrap();
        assert!(report.is_clean(), "{name}: {:#?}", report.problems);
        assert_eq!((report.operations, report.steps), (3, 24), "{name}");
    }
}

/// Returns the first byte, the record format, of every value in the file's record tables.
fn record_formats(path: &Path) -> Vec<u8> {
    let db = redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open(path)
        .unwrap();
    let txn = db.begin_read().unwrap();
    let mut formats = Vec::new();
    for table in txn.list_tables().unwrap() {
        let name = table.name().to_owned();
        let first_bytes: Vec<u8> = match name.as_str() {
            "operations" => collect_first_bytes(
                &txn.open_table(redb::TableDefinition::<u64, &[u8]>::new("operations"))
                    .unwrap(),
            ),
            "steps" => collect_first_bytes(
                &txn.open_table(redb::TableDefinition::<(u64, u32), &[u8]>::new("steps"))
                    .unwrap(),
            ),
            "events" => collect_first_bytes(
                &txn.open_table(redb::TableDefinition::<(u64, u64), &[u8]>::new("events"))
                    .unwrap(),
            ),
            "requests" => collect_first_bytes(
                &txn.open_table(redb::TableDefinition::<&str, &[u8]>::new("requests"))
                    .unwrap(),
            ),
            _ => continue,
        };
        formats.extend(first_bytes);
    }
    formats
}

fn collect_first_bytes<K: redb::Key + 'static>(
    table: &redb::ReadOnlyTable<K, &'static [u8]>,
) -> Vec<u8> {
    use redb::ReadableTable;
    table
        .iter()
        .unwrap()
        .map(|entry| entry.unwrap().1.value()[0])
        .collect()
}

#[test]
fn format1_store_migrates_after_copy_aside() {
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_golden(dir.path(), "format1.redb");
    let original = std::fs::read(&copy).unwrap();

    let err = Store::open(&copy).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OlderFormat {
                found: 1,
                current: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("eod migrate"), "{err}");
    assert!(
        std::fs::read(&copy).unwrap() == original,
        "a rejected open changed the file"
    );

    let migration = Store::migrate(&copy, StoreOptions::new()).unwrap();
    assert_eq!((migration.from, migration.to), (1, 3));
    let backup = migration.backup.clone().expect("a backup of the old file");
    assert_eq!(backup, dir.path().join("format1.redb.format1.bak"));
    // The backup is the old file as the migration found it: the same records, though redb's
    // header in it may differ, because the migration copies it while it has the file open.
    assert_eq!(
        std::fs::metadata(&backup).unwrap().len(),
        original.len() as u64
    );
    let formats = record_formats(&copy);
    assert_eq!(migration.records, formats.len() as u64);
    assert!(formats.iter().all(|format| *format == 2), "{formats:?}");
    assert_has_format3_tables(&copy);

    // The backup still contains the format-1 records and reads back exactly.
    let old = Store::open_with(&backup, StoreOptions::new().read_only(true)).unwrap();
    assert_golden_content(&old);
    drop(old);
    let old_formats = record_formats(&backup);
    assert_eq!(old_formats.len(), formats.len());
    assert!(
        old_formats.iter().all(|format| *format == 1),
        "{old_formats:?}"
    );

    let again = Store::migrate(&copy, StoreOptions::new()).unwrap();
    assert_eq!((again.from, again.backup, again.records), (3, None, 0));

    // A second migration of the original picks a new backup name instead of overwriting.
    std::fs::write(&copy, &original).unwrap();
    let second = Store::migrate(&copy, StoreOptions::new()).unwrap();
    assert_eq!(
        second.backup,
        Some(dir.path().join("format1.redb.format1.2.bak"))
    );
}

/// Returns the names of the file's tables.
fn table_names(path: &Path) -> Vec<String> {
    let db = redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open(path)
        .unwrap();
    let txn = db.begin_read().unwrap();
    txn.list_tables()
        .unwrap()
        .map(|table| table.name().to_owned())
        .collect()
}

/// Checks that the file has the tables that format 3 added.
fn assert_has_format3_tables(path: &Path) {
    let names = table_names(path);
    for table in ["properties", "changes"] {
        assert!(
            names.iter().any(|name| name == table),
            "{} lacks the table `{table}`: {names:?}",
            path.display()
        );
    }
}

/// Format 3 kept the record format, so migrating a format-2 file only raises its version and
/// adds the new tables. Every operation, step and event reads back as before.
#[test]
fn format2_store_migrates_without_rewriting() {
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_golden(dir.path(), "format2.redb");
    let original = std::fs::read(&copy).unwrap();

    let old = Store::open_with(&copy, StoreOptions::new().read_only(true)).unwrap();
    assert_golden_file_content("format2.redb", &old, false);
    let before = old.export(&DumpFilter::all()).unwrap();
    drop(old);
    assert_eq!(before.operations.len(), 3);
    assert!(
        std::fs::read(&copy).unwrap() == original,
        "a read-only open changed the file"
    );

    let err = Store::open(&copy).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OlderFormat {
                found: 2,
                current: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("eod migrate"), "{err}");
    assert!(
        std::fs::read(&copy).unwrap() == original,
        "a rejected open changed the file"
    );

    let migration = Store::migrate(&copy, StoreOptions::new()).unwrap();
    assert_eq!((migration.from, migration.to), (2, 3));
    assert_eq!(migration.records, 0);
    let backup = migration.backup.clone().expect("a backup of the old file");
    assert_eq!(backup, dir.path().join("format2.redb.format2.bak"));
    assert_eq!(
        std::fs::metadata(&backup).unwrap().len(),
        original.len() as u64
    );
    let formats = record_formats(&copy);
    assert!(formats.iter().all(|format| *format == 2), "{formats:?}");
    assert_eq!(record_formats(&backup).len(), formats.len());
    assert_has_format3_tables(&copy);

    let mut store = Store::open(&copy).unwrap();
    assert_golden_file_content("format2.redb", &store, true);
    let after = store.export(&DumpFilter::all()).unwrap();
    assert!(
        after == before,
        "the migration changed the stored operations"
    );
    let report = store.check_integrity().unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert_eq!((report.operations, report.steps), (3, 24));
    drop(store);

    // The backup is still a format-2 file without the new tables, and reads back exactly.
    let names = table_names(&backup);
    assert!(
        !names
            .iter()
            .any(|name| name == "properties" || name == "changes"),
        "{names:?}"
    );
    let old = Store::open_with(&backup, StoreOptions::new().read_only(true)).unwrap();
    assert!(old.export(&DumpFilter::all()).unwrap() == before);
    drop(old);
    let err = Store::open(&backup).unwrap_err();
    assert!(
        matches!(err, Error::OlderFormat { found: 2, .. }),
        "{err:?}"
    );

    let again = Store::migrate(&copy, StoreOptions::new()).unwrap();
    assert_eq!((again.from, again.backup, again.records), (3, None, 0));
}

#[test]
fn this_version_writes_the_golden_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.redb");
    write_golden_store(&path);
    let store = Store::open(&path).unwrap();
    assert_golden_content(&store);
    assert_business_date_content(&store);
}

#[test]
fn golden_stores_open_read_only_unchanged() {
    for name in GOLDEN_STORES {
        let path = data_dir().join(name);
        let before = std::fs::read(&path).unwrap();
        let store = Store::open_with(&path, StoreOptions::new().read_only(true)).unwrap();
        assert_golden_file_content(name, &store, false);
        drop(store);
        assert!(std::fs::read(&path).unwrap() == before, "{name} changed");
    }
}

/// Opens `path` read-write and read-only, returns both errors, and checks the bytes never
/// change.
fn open_errors(path: &Path) -> [Error; 2] {
    let before = std::fs::read(path).unwrap();
    [StoreOptions::new(), StoreOptions::new().read_only(true)].map(|options| {
        let result = Store::open_with(path, options);
        let unchanged = std::fs::read(path).unwrap() == before;
        assert!(unchanged, "{} changed", path.display());
        result.expect_err("the open must fail")
    })
}

#[test]
fn newer_format_rejected_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_golden(dir.path(), NEWEST_GOLDEN);
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap()
            .insert("format_version", eodstore::FORMAT_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    for err in open_errors(&path) {
        assert!(matches!(err, Error::NewerFormat { .. }), "{err:?}");
    }
}

#[test]
fn foreign_redb_file_rejected_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guests.redb");
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<u64, &str>::new("guests"))
            .unwrap()
            .insert(1, "Ayşe Yılmaz")
            .unwrap();
        txn.commit().unwrap();
    }
    for err in open_errors(&path) {
        assert!(matches!(err, Error::NotEodstoreFile { .. }), "{err:?}");
        assert!(err.to_string().contains("guests"), "{err}");
    }
}

#[test]
fn non_redb_file_rejected_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.redb");
    std::fs::write(&path, "operation_id,step_order\n1,1\n").unwrap();
    for err in open_errors(&path) {
        assert!(matches!(err, Error::NotEodstoreFile { .. }), "{err:?}");
        assert!(err.to_string().contains("signature"), "{err}");
    }
}

#[test]
fn empty_file_rejected_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.redb");
    std::fs::write(&path, b"").unwrap();
    for err in open_errors(&path) {
        assert!(matches!(err, Error::NotEodstoreFile { .. }), "{err:?}");
        assert!(err.to_string().contains("empty"), "{err}");
    }
}

/// A cut-off file is rejected by a read-write open. A read-only open reads only the pages it
/// needs, so it may succeed when the cut removed no page it reads. Every read then either returns
/// the stored data or fails as damaged, and the whole-file check never passes wrong data.
#[test]
fn truncated_files_rejected_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let golden = std::fs::read(data_dir().join(NEWEST_GOLDEN)).unwrap();
    for length in [
        5,
        9,
        100,
        4096,
        golden.len() / 2,
        golden.len() - 4096,
        golden.len() - 1,
    ] {
        let path = dir.path().join(format!("cut-{length}.redb"));
        std::fs::write(&path, &golden[..length]).unwrap();

        let err = Store::open(&path).expect_err("a read-write open must fail");
        assert!(
            matches!(err, Error::Corrupt { .. }),
            "cut at {length}: {err:?}"
        );

        match Store::open_with(&path, StoreOptions::new().read_only(true)) {
            Err(err) => assert!(
                matches!(err, Error::Corrupt { .. }),
                "cut at {length}: {err:?}"
            ),
            Ok(mut store) => match store.check_integrity() {
                Err(err) => assert!(
                    matches!(err, Error::Corrupt { .. }),
                    "cut at {length}: {err:?}"
                ),
                Ok(report) => {
                    assert!(report.is_clean(), "cut at {length}: {report:#?}");
                    assert_golden_file_content(NEWEST_GOLDEN, &store, false);
                }
            },
        }
        assert!(
            std::fs::read(&path).unwrap() == golden[..length],
            "cut at {length} changed"
        );
    }
}

/// redb writes its signature last when it creates a file in place, so a crash during that
/// creation leaves a file that starts with zeros.
#[test]
fn zeroed_head_reported_as_cut_off_creation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut-off.redb");
    let mut bytes = std::fs::read(data_dir().join(NEWEST_GOLDEN)).unwrap();
    bytes[..9].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    for err in open_errors(&path) {
        assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
        assert!(
            err.to_string().contains("delete it and open again"),
            "{err}"
        );
    }
}
