//! `eod import --csv`: CSV exports of an SQL table of night-audit steps, in UTF-8, UTF-8 with a
//! byte-order mark and Windows-1254, with duplicates, conflicts and merged source operations.
//!
//! The fixtures are under `tests/data/import/`. `windows1254.csv` was written with Python's
//! `cp1254` codec from the UTF-8 text in the comment of `windows_1254_names_arrive_exactly`.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{TempStore, caller, create_temp_store, date};
use eodstore::import::{Encoding, ImportBatch, ImportOptions, OnConflict, parse_csv};
use eodstore::{
    Error, EventKind, OperationId, OperationStatus, Plan, StepStatus, Store, StoreOptions,
};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/import")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/import")
        .join(name)
}

fn options() -> ImportOptions {
    ImportOptions {
        source: "test.csv".into(),
        ..ImportOptions::default()
    }
}

fn parse(name: &str, options: &ImportOptions) -> ImportBatch {
    parse_csv(&fixture(name), options).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// Parses `text` with the property `p` for rows without one.
fn parse_text(text: &str) -> Result<ImportBatch, eodstore::import::ImportError> {
    let options = ImportOptions {
        property: Some("p".into()),
        ..options()
    };
    parse_csv(text.as_bytes(), &options)
}

/// Writes every operation of the store with its steps, events and source ids as text, for
/// before/after comparisons.
fn snapshot(store: &Store) -> String {
    let mut text = String::new();
    for id in 1.. {
        match store.view(OperationId(id)) {
            Ok(view) => {
                let events = store.events(OperationId(id)).unwrap();
                let sources = store.source_ids(OperationId(id)).unwrap();
                writeln!(text, "{view:?}\n{events:?}\n{sources:?}").unwrap();
            }
            Err(Error::OperationNotFound { .. }) => break,
            Err(err) => panic!("read operation {id}: {err}"),
        }
    }
    text
}

fn assert_clean(t: &mut TempStore) {
    let report = t.store.check_integrity().unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
}

#[test]
fn utf8_import_creates_operations() {
    let mut t = create_temp_store();
    let batch = parse("utf8.csv", &options());
    let outcome = t.store.import_batch(&batch, &caller("importer")).unwrap();

    assert!(outcome.committed);
    assert_eq!(batch.report.rows_read, 12);
    assert_eq!(outcome.operations_created, 3);
    assert_eq!(outcome.operations_present, 0);
    assert_eq!(outcome.steps_created, 9);
    assert_eq!(outcome.steps_present, 0);
    assert_eq!(batch.report.duplicates_collapsed, 3);
    assert_eq!(batch.report.conflicts.len(), 0);
    assert_eq!(batch.report.merged.len(), 1);
    assert_eq!(batch.report.ignored_columns, ["notes"]);
    assert!(batch.report.codes_derived);

    // Operations are created in property and date order.
    let first = t.store.view(OperationId(1)).unwrap();
    assert_eq!(first.operation.property, "grand-hotel");
    assert_eq!(first.operation.business_date, date("2024-01-05"));
    assert_eq!(first.operation.plan, "imported");
    assert_eq!(first.operation.status, OperationStatus::Failed);
    assert_eq!(first.operation.finished_at, None);
    let steps: Vec<(u32, &str, &str, StepStatus, u32, bool)> = first
        .steps
        .iter()
        .map(|step| {
            (
                step.order,
                step.code.as_str(),
                step.name.as_str(),
                step.status,
                step.attempts,
                step.required,
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                10,
                "on_denetim_kontrolleri",
                "Ön Denetim Kontrolleri",
                StepStatus::Completed,
                1,
                true
            ),
            (
                20,
                "gelmeyen_misafirler",
                "Gelmeyen Misafirler",
                StepStatus::Completed,
                1,
                true
            ),
            (
                30,
                "cikis_kontrolu",
                "Çıkış Kontrolü",
                StepStatus::Failed,
                1,
                true
            ),
            (40, "yedekleme", "Yedekleme", StepStatus::Skipped, 0, false),
            (50, "rapor", "Rapor", StepStatus::Pending, 0, true),
            (60, "rapor_2", "Rapor!", StepStatus::Pending, 0, true),
        ]
    );
    let failed = &first.steps[2];
    assert_eq!(
        failed.last_error.as_deref(),
        Some("döviz kuru girilmemiş, tekrar deneyin")
    );
    assert_eq!(failed.actor.as_deref(), Some("ayşe"));
    assert_eq!(
        failed.started_at,
        Some("2024-01-05T20:04:00Z".parse().unwrap())
    );
    assert_eq!(
        failed.finished_at,
        Some("2024-01-05T20:05:00Z".parse().unwrap())
    );
    assert_eq!(first.steps[0].claim, None);

    let second = t.store.view(OperationId(2)).unwrap();
    assert_eq!(second.operation.business_date, date("2024-01-06"));
    assert_eq!(second.steps[0].status, StepStatus::Running);
    assert_eq!(second.steps[1].status, StepStatus::Failed);
    assert_eq!(second.steps[1].last_error.as_deref(), Some("zaman aşımı"));

    let third = t.store.view(OperationId(3)).unwrap();
    assert_eq!(third.operation.property, "harbor-view");
    assert_eq!(third.operation.status, OperationStatus::Completed);
    assert_eq!(
        third.operation.finished_at,
        Some("2024-01-05T21:30:00Z".parse().unwrap())
    );
    assert_eq!(third.steps[0].name, "Gün Sonu İşlemi");
    assert_eq!(third.steps[0].code, "gun_sonu_islemi");

    assert_clean(&mut t);
}

#[test]
fn imported_operation_events_mark_import() {
    let t = create_temp_store();
    let batch = parse("utf8.csv", &options());
    t.store.import_batch(&batch, &caller("importer")).unwrap();

    let events = t.store.events(OperationId(3)).unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::OperationCreated,
            EventKind::Imported,
            EventKind::Imported,
            EventKind::OperationFinished
        ]
    );
    assert_eq!(EventKind::Imported.as_str(), "imported");
    let operation_event = &events[1];
    assert_eq!(operation_event.step_order, None);
    assert!(
        operation_event
            .message
            .as_deref()
            .unwrap()
            .contains("source operation id `30`"),
        "{operation_event:?}"
    );
    let step_event = &events[2];
    assert_eq!(step_event.step_order, Some(1));
    assert_eq!(step_event.from, Some(StepStatus::Pending));
    assert_eq!(step_event.to, Some(StepStatus::Completed));
    assert_eq!(step_event.actor, "importer");
}

#[test]
fn merged_source_ids_are_kept() {
    let t = create_temp_store();
    let batch = parse("utf8.csv", &options());
    let merged = &batch.report.merged[0];
    assert_eq!(merged.property, "grand-hotel");
    assert_eq!(merged.business_date, date("2024-01-05"));
    assert_eq!(merged.source_ids, ["17", "18"]);
    assert_eq!(merged.lines, [2, 5]);

    let outcome = t.store.import_batch(&batch, &caller("importer")).unwrap();
    assert_eq!(outcome.operations[0].source_ids, ["17", "18"]);
    assert_eq!(
        t.store.source_ids(OperationId(1)).unwrap(),
        Some(vec!["17".to_owned(), "18".to_owned()])
    );
    assert_eq!(
        t.store.source_ids(OperationId(2)).unwrap(),
        Some(vec!["21".to_owned()])
    );
}

#[test]
fn duplicates_collapse_to_most_advanced() {
    let batch = parse("utf8.csv", &options());
    let collapsed = &batch.report.collapsed;
    assert_eq!(collapsed.len(), 2);

    assert_eq!(collapsed[0].order, 20);
    assert_eq!(collapsed[0].business_date, date("2024-01-05"));
    assert_eq!(collapsed[0].kept_line, 4);
    assert_eq!(collapsed[0].kept_status, StepStatus::Completed);
    let dropped: Vec<(u64, StepStatus)> = collapsed[0]
        .dropped
        .iter()
        .map(|row| (row.line, row.status))
        .collect();
    assert_eq!(dropped, [(3, StepStatus::Pending)]);

    // Failed beats running and pending.
    assert_eq!(collapsed[1].business_date, date("2024-01-06"));
    assert_eq!(collapsed[1].kept_line, 12);
    assert_eq!(collapsed[1].kept_status, StepStatus::Failed);
    let dropped: Vec<u64> = collapsed[1].dropped.iter().map(|row| row.line).collect();
    assert_eq!(dropped, [10, 11]);
}

#[test]
fn status_precedence_is_complete() {
    use StepStatus::{Completed, Failed, Pending, Running, Skipped};
    // Each pair of statuses, in both orders: the more advanced one wins.
    let ranked = [Pending, Running, Failed, Skipped, Completed];
    for (low_index, low) in ranked.iter().enumerate() {
        for high in &ranked[low_index + 1..] {
            for (first, second) in [(low, high), (high, low)] {
                let text = format!(
                    "operation_id,business_date,step_order,step_name,status\n\
                     1,2024-01-01,1,Adım,{first}\n1,2024-01-01,1,Adım,{second}\n"
                );
                let batch = parse_text(&text).unwrap();
                let step = &batch.operations[0].steps[0];
                assert_eq!(step.status, *high, "{first} then {second}");
            }
        }
    }
}

#[test]
fn bom_file_reads_like_plain() {
    let plain = parse("utf8.csv", &options());
    let bom = parse("utf8_bom.csv", &options());
    assert_eq!(bom.operations, plain.operations);
    assert_eq!(bom.report.rows_read, 12);
    assert_eq!(bom.report.ignored_columns, ["Notes"]);
}

#[test]
fn windows_1254_names_arrive_exactly() {
    // The file holds, in windows-1254 with CRLF line ends:
    //   OPERATION_ID,BUSINESS_DATE,STEP_ORDER,STEP_NAME,STATUS,ERROR
    //   501,2024-02-01,1,Gün Sonu İşlemi,completed,
    //   501,2024-02-01,2,Çıkış Kontrolü,failed,Döviz kuru girilmemiş
    //   501,2024-02-01,3,Oda ve Vergi Kayıtları,pending,
    //   501,2024-02-01,4,ĞÜŞİÖÇ ığüşöç,pending,
    let bytes = fixture("windows1254.csv");
    let gun_sonu = [
        0x47, 0xFC, 0x6E, 0x20, 0x53, 0x6F, 0x6E, 0x75, 0x20, 0xDD, 0xFE, 0x6C, 0x65, 0x6D, 0x69,
    ];
    assert!(
        bytes
            .windows(gun_sonu.len())
            .any(|window| window == gun_sonu)
    );

    let options = ImportOptions {
        encoding: Encoding::Windows1254,
        property: Some("otel-izmir".into()),
        ..options()
    };
    let batch = parse("windows1254.csv", &options);
    let names: Vec<(&str, &str)> = batch.operations[0]
        .steps
        .iter()
        .map(|step| (step.name.as_str(), step.code.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("Gün Sonu İşlemi", "gun_sonu_islemi"),
            ("Çıkış Kontrolü", "cikis_kontrolu"),
            ("Oda ve Vergi Kayıtları", "oda_ve_vergi_kayitlari"),
            ("ĞÜŞİÖÇ ığüşöç", "gusioc_igusoc"),
        ]
    );
    assert_eq!(batch.operations[0].property, "otel-izmir");
    assert_eq!(
        batch.operations[0].steps[1].error.as_deref(),
        Some("Döviz kuru girilmemiş")
    );

    let mut t = create_temp_store();
    t.store.import_batch(&batch, &caller("importer")).unwrap();
    let view = t.store.view(OperationId(1)).unwrap();
    assert_eq!(view.steps[0].name, "Gün Sonu İşlemi");
    assert_clean(&mut t);
}

#[test]
fn iso_8859_9_reads_turkish_letters() {
    // The file has no byte from 0x80 to 0x9F, where the two encodings differ.
    let iso = ImportOptions {
        encoding: Encoding::Iso8859_9,
        property: Some("otel-izmir".into()),
        ..options()
    };
    let windows = ImportOptions {
        encoding: Encoding::Windows1254,
        ..iso.clone()
    };
    let from_iso = parse("windows1254.csv", &iso);
    assert_eq!(
        from_iso.operations,
        parse("windows1254.csv", &windows).operations
    );

    // `€` is 0x80 in windows-1254, a C1 control code in ISO-8859-9.
    let text =
        b"operation_id,business_date,step_order,step_name,status\n1,2024-01-01,1,Kur \x80,done\n";
    let err = parse_csv(text, &iso).unwrap_err();
    assert_eq!(err.line, Some(2));
    assert_eq!(err.byte_offset, Some(74));
    assert!(err.message.contains("windows-1254"), "{err}");
    let batch = parse_csv(text, &windows).unwrap();
    assert_eq!(batch.operations[0].steps[0].name, "Kur €");
}

#[test]
fn windows_1254_file_read_as_utf8_fails() {
    let options = ImportOptions {
        property: Some("otel-izmir".into()),
        ..options()
    };
    let err = parse_csv(&fixture("windows1254.csv"), &options).unwrap_err();
    assert_eq!(err.line, Some(2));
    // Line 1 has 60 bytes and a CRLF; `ü` is the 19th byte of line 2.
    assert_eq!(err.byte_offset, Some(62 + 18));
    assert!(err.message.contains("(byte 19 of the line)"), "{err}");
    assert!(err.message.contains("0xFC"), "{err}");
    assert!(err.message.contains("--encoding windows-1254"), "{err}");
    assert!(
        err.to_string().starts_with("line 2, byte offset 80: "),
        "{err}"
    );
}

#[test]
fn utf8_file_with_bom_rejected_as_1254() {
    let options = ImportOptions {
        encoding: Encoding::Windows1254,
        ..options()
    };
    let err = parse_csv(&fixture("utf8_bom.csv"), &options).unwrap_err();
    assert_eq!(err.line, Some(1));
    assert!(err.message.contains("byte-order mark"), "{err}");
}

#[test]
fn mojibake_warns_with_line() {
    let with_property = ImportOptions {
        property: Some("p".into()),
        ..options()
    };
    let batch = parse("mojibake.csv", &with_property);
    assert_eq!(batch.report.warnings.len(), 1);
    let warning = &batch.report.warnings[0];
    assert_eq!(warning.line, 3);
    assert!(warning.message.contains("`GÃ¼n Sonu`"), "{warning:?}");
    assert!(
        warning.message.contains("`Ã¼` is probably `ü`"),
        "{warning:?}"
    );
    // The text is imported as it is; the warning only points at it.
    assert_eq!(batch.operations[0].steps[1].name, "GÃ¼n Sonu");

    // A UTF-8 file read as windows-1254 shows the same symptom, with another hint.
    let options = ImportOptions {
        encoding: Encoding::Windows1254,
        property: Some("p".into()),
        ..options()
    };
    let text = "operation_id,business_date,step_order,step_name,status\n1,2024-01-01,1,Gün,done\n";
    let batch = parse_csv(text.as_bytes(), &options).unwrap();
    assert_eq!(batch.operations[0].steps[0].name, "GÃ¼n");
    assert!(
        batch.report.warnings[0]
            .message
            .contains("without `--encoding`"),
        "{:?}",
        batch.report.warnings
    );
}

#[test]
fn clean_turkish_text_gives_no_warning() {
    let batch = parse("utf8.csv", &options());
    assert_eq!(batch.report.warnings, []);
}

#[test]
fn unknown_status_names_line() {
    let err = parse_text(
        "operation_id,business_date,step_order,step_name,status\n\
         1,2024-01-01,1,Adım,completed\n\
         1,2024-01-01,2,Adım 2,halfway\n",
    )
    .unwrap_err();
    assert_eq!(err.line, Some(3));
    assert_eq!(err.column.as_deref(), Some("status"));
    assert!(err.message.contains("unknown status `halfway`"), "{err}");
    assert!(err.message.contains("in_progress"), "{err}");
}

#[test]
fn malformed_values_name_line_and_column() {
    let header = "operation_id,property,business_date,step_order,step_name,status,started_at";
    let cases = [
        (
            "1,p,2024-13-01,1,Adım,done,",
            "business_date",
            "invalid business date `2024-13-01`",
        ),
        (
            "1,p,2024-01-01,ten,Adım,done,",
            "step_order",
            "invalid step order `ten`",
        ),
        (
            "1,p,2024-01-01,-1,Adım,done,",
            "step_order",
            "invalid step order `-1`",
        ),
        ("1,p,2024-01-01,1,,done,", "step_name", "the value is empty"),
        ("1,p,2024-01-01,1,Adım,,", "status", "the value is empty"),
        (
            ",p,2024-01-01,1,Adım,done,",
            "operation_id",
            "the value is empty",
        ),
        (
            "1,p,2024-01-01,1,Adım,done,yesterday",
            "started_at",
            "invalid time `yesterday`",
        ),
        ("1,,2024-01-01,1,Adım,done,", "property", "--property"),
    ];
    for (row, column, message) in cases {
        let text = format!("{header}\n1,p,2024-01-01,1,Adım,done,\n{row}\n");
        let err = parse_csv(text.as_bytes(), &options()).unwrap_err();
        assert_eq!(err.line, Some(3), "{row}: {err}");
        assert_eq!(err.column.as_deref(), Some(column), "{row}: {err}");
        assert!(err.message.contains(message), "{row}: {err}");
    }
}

#[test]
fn missing_column_names_line() {
    let err = parse_text(
        "operation_id,business_date,step_order,step_name,status\n\
         1,2024-01-01,1,Adım,completed\n\
         1,2024-01-01,2,Adım 2\n",
    )
    .unwrap_err();
    assert_eq!(err.line, Some(3));
    assert!(
        err.message
            .contains("the row has 4 fields, but the header has 5"),
        "{err}"
    );

    let err = parse_text("operation_id,date,name,status\n1,2024-01-01,Adım,done\n").unwrap_err();
    assert_eq!(err.line, Some(1));
    assert!(err.message.contains("no column for step_order"), "{err}");
}

#[test]
fn quoted_fields_follow_rfc_4180() {
    let batch = parse_text(
        "operation_id,business_date,step_order,step_name,status,error\n\
         1,2024-01-01,1,\"Oda, Vergi \"\"KDV\"\"\",failed,\"satır 1\nsatır 2\"\n\
         1,2024-01-01,2,Raporlar,pending,\n",
    )
    .unwrap();
    let steps = &batch.operations[0].steps;
    assert_eq!(steps[0].name, "Oda, Vergi \"KDV\"");
    assert_eq!(steps[0].error.as_deref(), Some("satır 1\nsatır 2"));
    // The record of step 2 starts on line 4, after the line break inside the quotes.
    assert_eq!(steps[1].line, 4);
}

#[test]
fn property_option_fills_missing_property() {
    let text = "operation_id,business_date,step_order,step_name,status\n1,2024-01-01,1,Adım,done\n";
    let err = parse_csv(text.as_bytes(), &options()).unwrap_err();
    assert!(err.message.contains("--property"), "{err}");

    let options = ImportOptions {
        property: Some("grand".into()),
        ..options()
    };
    let batch = parse_csv(text.as_bytes(), &options).unwrap();
    assert_eq!(batch.operations[0].property, "grand");
}

#[test]
fn source_operation_with_two_dates_rejected() {
    let err = parse_text(
        "operation_id,property,business_date,step_order,step_name,status\n\
         5,p,2024-01-01,1,Adım,done\n\
         5,p,2024-01-02,2,Adım 2,done\n",
    )
    .unwrap_err();
    assert_eq!(err.line, Some(3));
    assert!(err.message.contains("on line 2"), "{err}");
}

#[test]
fn conflict_rejected_without_choice() {
    let options = ImportOptions {
        property: Some("grand".into()),
        ..options()
    };
    let err = parse_csv(&fixture("conflicts.csv"), &options).unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(
        err.message
            .contains("line 2 `Gelmeyenler`, line 3 `No-show İşlemi`"),
        "{err}"
    );
    assert!(err.message.contains("--on-conflict keep-first"), "{err}");
}

#[test]
fn conflict_keep_first_and_last() {
    for (choice, name, kept) in [
        (OnConflict::KeepFirst, "Gelmeyenler", 2),
        (OnConflict::KeepLast, "No-show İşlemi", 3),
    ] {
        let options = ImportOptions {
            on_conflict: Some(choice),
            property: Some("grand".into()),
            ..options()
        };
        let batch = parse("conflicts.csv", &options);
        let step = &batch.operations[0].steps[0];
        assert_eq!(step.name, name, "{choice:?}");
        // The status still comes from the most advanced row.
        assert_eq!(step.status, StepStatus::Completed, "{choice:?}");
        assert_eq!(batch.report.conflicts.len(), 1, "{choice:?}");
        assert_eq!(
            batch.report.conflicts[0].kept_line,
            Some(kept),
            "{choice:?}"
        );
        assert_eq!(batch.report.duplicates_collapsed, 1, "{choice:?}");
    }
}

#[test]
fn conflicting_codes_are_conflicts() {
    let text = "operation_id,business_date,step_order,step_name,status,step_code\n\
                1,2024-01-01,1,Adım,done,a\n\
                1,2024-01-01,1,Adım,done,b\n";
    let options = ImportOptions {
        property: Some("p".into()),
        ..options()
    };
    let err = parse_csv(text.as_bytes(), &options).unwrap_err();
    assert!(err.message.contains("(code `a`)"), "{err}");
}

#[test]
fn codes_from_file_and_derived_stay_unique() {
    let text = "operation_id,business_date,step_order,step_name,status,code\n\
                1,2024-01-01,1,Rapor,done,rapor\n\
                1,2024-01-01,2,Rapor,done,\n\
                1,2024-01-01,3,RAPOR,done,\n\
                1,2024-01-01,4,Özel Adım,done,ozel.adim-1\n";
    let options = ImportOptions {
        property: Some("p".into()),
        ..options()
    };
    let batch = parse_csv(text.as_bytes(), &options).unwrap();
    let codes: Vec<&str> = batch.operations[0]
        .steps
        .iter()
        .map(|step| step.code.as_str())
        .collect();
    assert_eq!(codes, ["rapor", "rapor_2", "rapor_3", "ozel.adim-1"]);
    assert!(!batch.report.codes_derived);

    let duplicate = "operation_id,business_date,step_order,step_name,status,code\n\
                     1,2024-01-01,1,Bir,done,x\n\
                     1,2024-01-01,2,İki,done,x\n";
    let err = parse_csv(duplicate.as_bytes(), &options).unwrap_err();
    assert_eq!(err.line, Some(3));
    assert!(err.message.contains("order 1 (line 2)"), "{err}");

    let invalid = "operation_id,business_date,step_order,step_name,status,code\n\
                   1,2024-01-01,1,Bir,done,bir adım\n";
    let err = parse_csv(invalid.as_bytes(), &options).unwrap_err();
    assert_eq!(err.column.as_deref(), Some("code"));
}

#[test]
fn derived_code_folds_turkish() {
    assert_eq!(
        eodstore::import::derive_code("Çıkış Kontrolü", 1),
        "cikis_kontrolu"
    );
}

#[test]
fn malformed_line_imports_nothing() {
    let t = create_temp_store();
    t.store
        .import_batch(&parse("utf8.csv", &options()), &caller("importer"))
        .unwrap();
    let before = snapshot(&t.store);

    let err = parse_csv(
        &fixture("bad_date.csv"),
        &ImportOptions {
            property: Some("grand-hotel".into()),
            ..options()
        },
    )
    .unwrap_err();
    assert_eq!(err.line, Some(4));
    assert_eq!(err.column.as_deref(), Some("business_date"));
    assert_eq!(snapshot(&t.store), before);
}

#[test]
fn existing_operation_without_step_rejected() {
    let t = create_temp_store();
    t.store
        .open_operation("grand", date("2024-01-01"), &Plan::standard(), &caller("a"))
        .unwrap();
    let before = snapshot(&t.store);

    let options = ImportOptions {
        property: Some("grand".into()),
        ..options()
    };
    // Order 1 exists in the standard plan, order 99 does not; the new day would be fine alone.
    let text = "operation_id,business_date,step_order,step_name,status\n\
                1,2024-01-02,1,Adım,done\n\
                2,2024-01-01,1,Adım,done\n\
                2,2024-01-01,99,Fazladan,done\n";
    let batch = parse_csv(text.as_bytes(), &options).unwrap();
    let err = t
        .store
        .import_batch(&batch, &caller("importer"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert!(
        err.to_string().contains("step orders 99 of lines 4"),
        "{err}"
    );
    assert_eq!(snapshot(&t.store), before);
}

#[test]
fn existing_steps_count_as_present() {
    let t = create_temp_store();
    t.store
        .open_operation("grand", date("2024-01-01"), &Plan::standard(), &caller("a"))
        .unwrap();
    let before = snapshot(&t.store);
    let options = ImportOptions {
        property: Some("grand".into()),
        ..options()
    };
    let text = "operation_id,business_date,step_order,step_name,status\n\
                1,2024-01-01,1,Pre-audit checks,done\n\
                1,2024-01-01,2,No-show processing,done\n";
    let batch = parse_csv(text.as_bytes(), &options).unwrap();
    let outcome = t.store.import_batch(&batch, &caller("importer")).unwrap();
    assert_eq!(outcome.operations_present, 1);
    assert_eq!(outcome.steps_present, 2);
    assert_eq!(outcome.steps_created, 0);
    assert_eq!(snapshot(&t.store), before);
    // An operation that `eod open` created has no source ids.
    assert_eq!(t.store.source_ids(OperationId(1)).unwrap(), None);
}

#[test]
fn dry_run_writes_nothing() {
    let mut t = create_temp_store();
    let batch = parse("utf8.csv", &options());
    let dry = t.store.dry_run_import(&batch, &caller("importer")).unwrap();
    assert!(!dry.committed);
    assert_eq!(dry.operations_created, 3);
    assert_eq!(dry.steps_created, 9);
    assert_eq!(snapshot(&t.store), "");

    let real = t.store.import_batch(&batch, &caller("importer")).unwrap();
    assert_eq!(real.operations, dry.operations);
    assert_clean(&mut t);
}

#[test]
fn second_import_changes_nothing() {
    let mut t = create_temp_store();
    let batch = parse("utf8.csv", &options());
    t.store.import_batch(&batch, &caller("importer")).unwrap();
    let before = snapshot(&t.store);

    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let again = t.store.import_batch(&batch, &caller("importer")).unwrap();
    assert_eq!(again.operations_created, 0);
    assert_eq!(again.operations_present, 3);
    assert_eq!(again.steps_created, 0);
    assert_eq!(again.steps_present, 9);
    assert!(!again.committed, "a second import has nothing to commit");
    assert_eq!(snapshot(&t.store), before);
    assert_clean(&mut t);
}

#[test]
fn imported_history_keeps_its_order() {
    // Step 2 completed while step 1 is pending: eodstore would not allow it, but history is
    // stored as it was.
    let mut t = create_temp_store();
    let text = "operation_id,business_date,step_order,step_name,status\n\
                1,2024-01-01,1,Bir,pending\n\
                1,2024-01-01,2,İki,completed\n";
    let options = ImportOptions {
        property: Some("p".into()),
        ..options()
    };
    let batch = parse_csv(text.as_bytes(), &options).unwrap();
    t.store.import_batch(&batch, &caller("importer")).unwrap();
    let view = t.store.view(OperationId(1)).unwrap();
    assert_eq!(view.steps[1].status, StepStatus::Completed);
    assert_eq!(view.operation.status, OperationStatus::Running);
    assert_clean(&mut t);
}

#[test]
fn imported_running_step_can_be_taken_over() {
    let mut t = create_temp_store();
    let batch = parse("utf8.csv", &options());
    t.store.import_batch(&batch, &caller("importer")).unwrap();
    let started = t
        .store
        .start_step(OperationId(2), 10, &caller("mehmet"))
        .unwrap();
    assert!(started.took_over_from.is_some());
    assert_eq!(started.step.attempts, 2);
    t.store
        .complete_step(
            OperationId(2),
            10,
            &started.claim.token,
            None,
            &caller("mehmet"),
        )
        .unwrap();
    assert_clean(&mut t);
}

#[test]
fn import_into_format_2_copy_stays_readable() {
    // A format-2 file must be migrated before an import writes to it. It was written before the
    // `sources` table existed, and its operations have no source ids.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.redb");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format2.redb"),
        &path,
    )
    .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, Error::OlderFormat { found: 2, .. }),
        "{err:?}"
    );
    let migration = Store::migrate(&path, StoreOptions::new()).unwrap();
    assert_eq!((migration.from, migration.to), (2, 3));

    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.source_ids(OperationId(1)).unwrap(), None);
    let batch = parse("utf8.csv", &options());
    let outcome = store.import_batch(&batch, &caller("importer")).unwrap();
    assert_eq!(outcome.operations_created, 3);
    let report = store.check_integrity().unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert_eq!(report.operations, 6);
}

// The command line, end to end.

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("eod.redb")
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_eod"))
            .arg("--db")
            .arg(self.db())
            .args(args)
            .env("USER", "test-importer")
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }
}

fn path_arg(name: &str) -> String {
    fixture_path(name).display().to_string()
}

#[test]
fn cli_import_then_again() {
    let cli = Cli::new();
    let csv = path_arg("utf8.csv");

    let (code, stdout, stderr) = cli.run(&["import", "--csv", &csv, "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("dry run: nothing was written"), "{stdout}");
    assert!(!cli.db().exists(), "a dry run must not create the file");

    let (code, stdout, stderr) = cli.run(&["import", "--csv", &csv]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "collapsed 2 rows of property `grand-hotel` on 2024-01-05, order 20: kept line 4 \
             (completed), dropped line 3 (pending)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("merged source operations `17`, `18` (first on lines 2, 5)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  steps created                9\n"),
        "{stdout}"
    );

    let (code, stdout, stderr) = cli.run(&["--json", "import", "--csv", &csv]);
    assert_eq!(code, 0, "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["rows_read"], 12);
    assert_eq!(summary["operations_created"], 0);
    assert_eq!(summary["operations_present"], 3);
    assert_eq!(summary["steps_created"], 0);
    assert_eq!(summary["steps_present"], 9);
    assert_eq!(summary["duplicates_collapsed"], 3);
    assert_eq!(summary["conflicts"], 0);
    assert_eq!(summary["merged"], 1);
    assert_eq!(summary["dry_run"], false);
    assert_eq!(summary["report"]["encoding"], "utf-8");

    let (code, stdout, stderr) = cli.run(&["check"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = cli.run(&["status", "--operation", "3"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Gün Sonu İşlemi"), "{stdout}");
}

#[test]
fn cli_dry_run_json_summary() {
    let cli = Cli::new();
    let csv = path_arg("windows1254.csv");
    let (code, stdout, stderr) = cli.run(&[
        "--json",
        "import",
        "--csv",
        &csv,
        "--encoding",
        "windows-1254",
        "--property",
        "otel-izmir",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["rows_read"], 4);
    assert_eq!(summary["operations_created"], 1);
    assert_eq!(summary["steps_created"], 4);
    assert_eq!(summary["outcome"]["committed"], false);
    assert!(!cli.db().exists());
}

#[test]
fn cli_rejects_bad_input_with_code_3() {
    let cli = Cli::new();
    let (code, _, stderr) = cli.run(&[
        "import",
        "--csv",
        &path_arg("bad_date.csv"),
        "--property",
        "grand",
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("line 4, column `business_date`: invalid business date `2024-05-32`"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert!(
        !cli.db().exists(),
        "a rejected file must not create the database"
    );

    let (code, _, stderr) = cli.run(&[
        "import",
        "--csv",
        &path_arg("conflicts.csv"),
        "--property",
        "p",
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("--on-conflict"), "{stderr}");

    let (code, stdout, stderr) = cli.run(&[
        "import",
        "--csv",
        &path_arg("conflicts.csv"),
        "--property",
        "p",
        "--on-conflict",
        "keep-last",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("kept the name of line 3"), "{stdout}");

    let (code, _, stderr) = cli.run(&["import", "--csv", &path_arg("no-such-file.csv")]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no-such-file.csv"), "{stderr}");
}

#[test]
fn cli_warns_about_mojibake() {
    let cli = Cli::new();
    let (code, _, stderr) = cli.run(&[
        "import",
        "--csv",
        &path_arg("mojibake.csv"),
        "--property",
        "p",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: line 3: column `step_name`"),
        "{stderr}"
    );
}

#[test]
fn cli_needs_exactly_one_input() {
    let cli = Cli::new();
    let (code, _, stderr) = cli.run(&["import"]);
    assert_eq!(code, 2, "{stderr}");
    let csv = path_arg("utf8.csv");
    let (code, _, stderr) = cli.run(&["import", "--csv", &csv, "--dump", &csv]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = cli.run(&["import", "--dump", &csv, "--dry-run"]);
    assert_eq!(code, 2, "{stderr}");
}

/// Imports 100,000 generated rows and prints the time of each phase. The rows are nights of 10
/// completed steps, and every twentieth row is followed by a pending duplicate, so they give about
/// 9,500 operations. Run it in release:
/// `cargo test --release --test import -- --ignored --nocapture import_100k_rows`.
#[test]
#[ignore = "a benchmark; run it in release"]
fn import_100k_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("steps.csv");
    let mut text = String::from(
        "operation_id,property,business_date,step_order,step_name,status,started_at,finished_at,error,actor\n",
    );
    let names = [
        "Ön Denetim Kontrolleri",
        "Gelmeyen Misafirler",
        "Çıkış Kontrolü",
        "Oda Fiyat Kontrolü",
        "Oda ve Vergi Kayıtları",
        "Folyo Dengesi",
        "Kasa Kapanışı",
        "Raporlar",
        "Yedekleme",
        "İş Tarihi Devri",
    ];
    let start_day = date("2000-01-01");
    let mut rows = 0_u64;
    let mut night = 0_u32;
    while rows < 100_000 {
        let day = start_day
            .checked_add(jiff::Span::new().days(i64::from(night % 3000)))
            .unwrap();
        let property = format!("otel-{}", night / 3000);
        for (order, name) in (1_u32..).zip(names) {
            if rows == 100_000 {
                break;
            }
            writeln!(
                text,
                "{night},{property},{day},{order},{name},completed,{day}T22:00:00Z,{day}T22:01:00Z,,gece"
            )
            .unwrap();
            rows += 1;
            if rows.is_multiple_of(20) && rows < 100_000 {
                writeln!(text, "{night},{property},{day},{order},{name},pending,,,,").unwrap();
                rows += 1;
            }
        }
        night += 1;
    }
    std::fs::write(&csv_path, &text).unwrap();

    let started = Instant::now();
    let bytes = std::fs::read(&csv_path).unwrap();
    let batch = parse_csv(&bytes, &options()).unwrap();
    let parsed = started.elapsed();
    let store = Store::open_with(
        dir.path().join("eod.redb"),
        StoreOptions::new().create(true),
    )
    .unwrap();
    let outcome = store.import_batch(&batch, &caller("importer")).unwrap();
    let total = started.elapsed();
    println!(
        "rows={} bytes={} operations={} steps={} duplicates={} parse={:.2}s import={:.2}s total={:.2}s",
        batch.report.rows_read,
        bytes.len(),
        outcome.operations_created,
        outcome.steps_created,
        batch.report.duplicates_collapsed,
        parsed.as_secs_f64(),
        total.saturating_sub(parsed).as_secs_f64(),
        total.as_secs_f64()
    );
    assert_eq!(batch.report.rows_read, 100_000);

    let again = Instant::now();
    let second = store.import_batch(&batch, &caller("importer")).unwrap();
    println!(
        "second import (nothing to write)={:.2}s",
        again.elapsed().as_secs_f64()
    );
    assert_eq!(second.steps_created, 0);
}

/// A step repeated on 5,000 lines imports, and its event names only the first lines, so that the
/// record stays within the store's size limit.
#[test]
fn many_duplicate_lines_import_with_short_event() {
    let mut text = String::from("operation_id,business_date,step_order,step_name,status\n");
    for _ in 0..5_000 {
        text.push_str("1,2024-01-05,10,A,pending\n");
    }
    let batch = parse_text(&text).unwrap();
    let mut t = create_temp_store();
    t.store.import_batch(&batch, &caller("importer")).unwrap();
    let events = t.store.events(OperationId(1)).unwrap();
    let step_event = events
        .iter()
        .find(|event| event.step_order == Some(10))
        .unwrap();
    let message = step_event.message.as_deref().unwrap();
    assert!(message.ends_with("and 4980 more"), "{message}");
    assert_clean(&mut t);
}

/// With `--on-conflict keep-first`, the first row's name and code go together: an empty code
/// is derived from the kept name, never taken from a dropped row.
#[test]
fn kept_row_name_and_code_go_together() {
    let text = "operation_id,business_date,step_order,step_name,status,code\n\
                1,2024-01-05,10,A,completed,\n\
                1,2024-01-05,10,B,pending,b\n";
    let options = ImportOptions {
        property: Some("p".into()),
        on_conflict: Some(OnConflict::KeepFirst),
        ..options()
    };
    let batch = parse_csv(text.as_bytes(), &options).unwrap();
    let step = &batch.operations[0].steps[0];
    assert_eq!((step.name.as_str(), step.code.as_str()), ("A", "a"));
}

/// A file whose lines end with carriage returns alone reports errors on their real lines.
#[test]
fn carriage_return_lines_report_real_line() {
    let text = "operation_id,business_date,step_order,step_name,status\r\
                1,2024-01-05,10,A,completed\r\
                1,2024-01-05,20,B,bogus\r";
    let err = parse_text(text).unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
}

/// Control characters of an imported error text are replaced, except line breaks and tabs.
#[test]
fn error_cell_control_characters_replaced() {
    let text = "operation_id,business_date,step_order,step_name,status,error\n\
                1,2024-01-05,10,A,failed,\"kasa\u{1b}[31m açık\nsatır\u{0}2\"\n";
    let batch = parse_text(text).unwrap();
    let error = batch.operations[0].steps[0].error.as_deref().unwrap();
    assert_eq!(error, "kasa\u{fffd}[31m açık\nsatır\u{fffd}2");
}

#[test]
fn derived_code_drops_central_european_accents() {
    let text = "operation_id,business_date,step_order,step_name,status\n\
                1,2024-01-05,10,Škoda Žalgiris Łódź Dvořák,completed\n";
    let batch = parse_text(text).unwrap();
    assert_eq!(
        batch.operations[0].steps[0].code,
        "skoda_zalgiris_lodz_dvorak"
    );
}
