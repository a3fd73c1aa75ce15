//! `eod import --csv`: importing a CSV export of an SQL table of night-audit steps.

use std::io::{self, Write};
use std::path::Path;

use eodstore::import::{
    Encoding, ImportBatch, ImportError, ImportOptions, ImportReport, OnConflict, parse_csv,
};
use eodstore::{Caller, ConcurrencyMode, Error, ImportOutcome, Store, StoreOptions};
use serde::Serialize;

use super::{CliError, CliResult, Outcome, actor, export, print};
use crate::cli::{CsvEncoding, ImportArgs, OnConflictArg};

/// `eod import --csv --json` output: the summary first, then the details.
#[derive(Serialize)]
struct CsvImportOut<'a> {
    path: &'a Path,
    csv: &'a Path,
    dry_run: bool,
    rows_read: u64,
    operations_created: u64,
    operations_present: u64,
    steps_created: u64,
    steps_present: u64,
    duplicates_collapsed: u64,
    conflicts: usize,
    merged: usize,
    report: &'a ImportReport,
    outcome: &'a ImportOutcome,
}

pub(super) fn import(db: &Path, json: bool, args: &ImportArgs) -> CliResult {
    match (&args.csv, &args.dump) {
        (Some(csv), None) => import_csv(db, json, csv, args),
        (None, Some(dump)) => export::import_dump(db, json, dump),
        _ => Err(CliError::Internal {
            message: "`eod import` needs exactly one of `--csv` and `--dump`".into(),
        }),
    }
}

/// The largest CSV file `eod import` reads: parsing takes several times its size in memory.
const MAX_CSV_BYTES: u64 = 256 << 20;

fn import_csv(db: &Path, json: bool, csv: &Path, args: &ImportArgs) -> CliResult {
    let bytes = super::read_input_file(
        csv,
        "CSV file",
        MAX_CSV_BYTES,
        "split the export into several files, for example by business date, and import each",
    )?;
    let options = ImportOptions {
        encoding: match args.encoding {
            CsvEncoding::Utf8 => Encoding::Utf8,
            CsvEncoding::Windows1254 => Encoding::Windows1254,
            CsvEncoding::Iso8859_9 => Encoding::Iso8859_9,
        },
        property: args.property.clone(),
        on_conflict: args.on_conflict.map(|choice| match choice {
            OnConflictArg::KeepFirst => OnConflict::KeepFirst,
            OnConflictArg::KeepLast => OnConflict::KeepLast,
        }),
        source: csv.display().to_string(),
    };
    // The whole file is checked before the database is opened, so a bad file creates nothing.
    let batch = parse_csv(&bytes, &options).map_err(|err| rejected_csv(csv, &err))?;
    for warning in &batch.report.warnings {
        eprintln!("warning: line {}: {}", warning.line, warning.message);
    }
    let caller = Caller::new(actor(args.actor.as_deref()));
    caller.validate()?;

    let outcome = if args.dry_run {
        dry_run(db, &batch, &caller)?
    } else {
        let (options, bar) = super::ProgressBar::attach(StoreOptions::new().create(true));
        let outcome = Store::open_with(db, options)?.import_batch(&batch, &caller)?;
        drop(bar);
        outcome
    };

    let report = &batch.report;
    let out = CsvImportOut {
        path: db,
        csv,
        dry_run: args.dry_run,
        rows_read: report.rows_read,
        operations_created: outcome.operations_created,
        operations_present: outcome.operations_present,
        steps_created: outcome.steps_created,
        steps_present: outcome.steps_present,
        duplicates_collapsed: report.duplicates_collapsed,
        conflicts: report.conflicts.len(),
        merged: report.merged.len(),
        report,
        outcome: &outcome,
    };
    let target = Target {
        db,
        csv,
        dry_run: args.dry_run,
    };
    print(json, &out, |out| {
        write_summary(out, &target, report, &outcome)
    })?;
    Ok(Outcome::Success)
}

/// Runs the import in a discarded transaction. Without a database file, it runs on an empty
/// store in memory, so that a dry run never creates the file.
fn dry_run(db: &Path, batch: &ImportBatch, caller: &Caller) -> Result<ImportOutcome, Error> {
    if db.exists() {
        return Store::open(db)?.dry_run_import(batch, caller);
    }
    let store = Store::open_with_backend(
        db,
        eodstore::redb::backends::InMemoryBackend::new(),
        StoreOptions::new()
            .create(true)
            .concurrency(ConcurrencyMode::ExclusiveWriter),
    )?;
    store.dry_run_import(batch, caller)
}

/// Converts a CSV problem into a rejected request (exit code 3) that names the file.
fn rejected_csv(csv: &Path, err: &ImportError) -> CliError {
    CliError::Store(Error::InvalidInput {
        what: "CSV file",
        value: csv.display().to_string(),
        expected: format!("{err}; nothing was imported"),
    })
}

/// The paths and mode that the text summary names.
struct Target<'a> {
    db: &'a Path,
    csv: &'a Path,
    dry_run: bool,
}

/// Writes every collapse, conflict and merge, then the summary.
/// The most dropped lines the text summary names for one collapsed step.
const MAX_LISTED_LINES: usize = 20;

fn write_summary(
    out: &mut impl Write,
    target: &Target<'_>,
    report: &ImportReport,
    outcome: &ImportOutcome,
) -> io::Result<()> {
    for merged in &report.merged {
        let ids: Vec<String> = merged
            .source_ids
            .iter()
            .map(|id| format!("`{id}`"))
            .collect();
        let lines: Vec<String> = merged.lines.iter().map(u64::to_string).collect();
        writeln!(
            out,
            "merged source operations {} (first on lines {}) into one operation for property \
             `{}` on {}",
            ids.join(", "),
            lines.join(", "),
            merged.property,
            merged.business_date
        )?;
    }
    for collapsed in &report.collapsed {
        // The text names the first lines only; `--json` lists all of them.
        let mut dropped: Vec<String> = collapsed
            .dropped
            .iter()
            .take(MAX_LISTED_LINES)
            .map(|row| format!("line {} ({})", row.line, row.status))
            .collect();
        if collapsed.dropped.len() > MAX_LISTED_LINES {
            dropped.push(format!(
                "and {} more lines",
                collapsed.dropped.len() - MAX_LISTED_LINES
            ));
        }
        writeln!(
            out,
            "collapsed {} rows of property `{}` on {}, order {}: kept line {} ({}), dropped {}",
            collapsed.dropped.len() + 1,
            collapsed.property,
            collapsed.business_date,
            collapsed.order,
            collapsed.kept_line,
            collapsed.kept_status,
            dropped.join(", ")
        )?;
    }
    for conflict in &report.conflicts {
        let kept = conflict
            .kept_line
            .map_or_else(|| "none".to_owned(), |line| format!("line {line}"));
        writeln!(
            out,
            "conflict at {}; kept the name of {kept}",
            conflict.describe()
        )?;
    }
    if !report.ignored_columns.is_empty() {
        writeln!(
            out,
            "ignored columns: {}",
            report.ignored_columns.join(", ")
        )?;
    }
    let verb = if target.dry_run {
        "would import"
    } else {
        "imported"
    };
    writeln!(
        out,
        "{verb} `{}` into `{}`:",
        target.csv.display(),
        target.db.display()
    )?;
    let rows = [
        ("rows read", report.rows_read),
        ("operations created", outcome.operations_created),
        ("operations already present", outcome.operations_present),
        ("steps created", outcome.steps_created),
        ("steps already present", outcome.steps_present),
        ("duplicates collapsed", report.duplicates_collapsed),
        ("conflicts", report.conflicts.len() as u64),
        ("operations merged", report.merged.len() as u64),
    ];
    for (label, count) in rows {
        writeln!(out, "  {label:<28} {count}")?;
    }
    if target.dry_run {
        writeln!(out, "dry run: nothing was written")?;
    }
    Ok(())
}
