//! `eod check`, `eod migrate`, `eod backup` and `eod compact`: keeping the file healthy.

use std::io::Write;
use std::path::Path;

use eodstore::{Backup, Compaction, Error, IntegrityReport, Migration, Store, StoreOptions};
use serde::Serialize;

use super::{CliError, CliResult, Outcome, ProgressBar, print};

/// `eod check --json` output: the report with the file and a verdict.
#[derive(Serialize)]
struct CheckOut<'a> {
    path: &'a Path,
    healthy: bool,
    #[serde(flatten)]
    report: &'a IntegrityReport,
}

/// `eod migrate --json` output.
#[derive(Serialize)]
struct MigrateOut<'a> {
    path: &'a Path,
    #[serde(flatten)]
    migration: &'a Migration,
}

/// `eod check` output for a file whose pages redb cannot read: no report, one problem.
#[derive(Serialize)]
struct DamagedOut<'a> {
    path: &'a Path,
    healthy: bool,
    problems: [DamagedProblem; 1],
}

#[derive(Serialize)]
struct DamagedProblem {
    kind: &'static str,
    detail: String,
}

pub(super) fn check(db: &Path, json: bool) -> CliResult {
    match check_file(db, json) {
        // Damage that stops redb from reading the file is a finding of the check, not a
        // failure of it, so it gets the check's exit code.
        Err(CliError::Store(err @ Error::Corrupt { .. })) => {
            let out = DamagedOut {
                path: db,
                healthy: false,
                problems: [DamagedProblem {
                    kind: "pages",
                    detail: err.to_string(),
                }],
            };
            print(json, &out, |out| {
                writeln!(out, "problem [pages]: {err}")?;
                writeln!(
                    out,
                    "the file is damaged: keep a copy of it and restore the last good backup"
                )
            })?;
            Ok(Outcome::Unhealthy)
        }
        other => other,
    }
}

fn check_file(db: &Path, json: bool) -> CliResult {
    // A file of an older format cannot be opened for writing, which redb's page check needs, so
    // its records are checked on a read-only open.
    let (options, bar) = ProgressBar::attach(StoreOptions::new());
    let mut store = match Store::open_with(db, options.clone()) {
        Err(Error::OlderFormat { found, current, .. }) => {
            eprintln!(
                "`{}` has format {found}, so its pages are not verified; `eod migrate` it to format \
                 {current} for the full check",
                db.display()
            );
            Store::open_with(db, options.read_only(true))?
        }
        opened => opened?,
    };
    let report = store.check_integrity()?;
    drop(bar);
    let out = CheckOut {
        path: db,
        healthy: report.is_clean(),
        report: &report,
    };
    print(json, &out, |out| {
        writeln!(
            out,
            "checked `{}`: {} operations, {} steps, {} events, {} requests",
            db.display(),
            report.operations,
            report.steps,
            report.events,
            report.requests
        )?;
        if report.repaired {
            writeln!(
                out,
                "redb rebuilt its allocator state, because the file was not closed cleanly"
            )?;
        }
        for problem in &report.problems {
            writeln!(
                out,
                "problem [{}]: {}",
                problem.kind.as_str(),
                problem.detail
            )?;
        }
        if report.is_clean() {
            writeln!(out, "no problems found")
        } else {
            writeln!(
                out,
                "{} problems found: keep a copy of the file and restore the last good backup",
                report.problems.len()
            )
        }
    })?;
    Ok(if report.is_clean() {
        Outcome::Success
    } else {
        Outcome::Unhealthy
    })
}

pub(super) fn migrate(db: &Path, json: bool) -> CliResult {
    let migration = Store::migrate(db, StoreOptions::new())?;
    let out = MigrateOut {
        path: db,
        migration: &migration,
    };
    print(json, &out, |out| match &migration.backup {
        Some(backup) => writeln!(
            out,
            "migrated `{}` from format {} to {}: {} records rewritten; the old file is kept at `{}`",
            db.display(),
            migration.from,
            migration.to,
            migration.records,
            backup.display()
        ),
        None => writeln!(
            out,
            "`{}` already has format {}; nothing to migrate",
            db.display(),
            migration.to
        ),
    })?;
    Ok(Outcome::Success)
}

/// `eod backup --json` output.
#[derive(Serialize)]
struct BackupOut<'a> {
    from: &'a Path,
    #[serde(flatten)]
    backup: &'a Backup,
}

pub(super) fn backup(db: &Path, json: bool, to: &Path) -> CliResult {
    let (options, bar) = ProgressBar::attach(StoreOptions::new());
    let store = Store::open_with(db, options)?;
    let backup = store.backup(to)?;
    drop(bar);
    let out = BackupOut {
        from: db,
        backup: &backup,
    };
    print(json, &out, |out| {
        writeln!(
            out,
            "backed up `{}` to `{}`: {} bytes; writers waited {:.3} s",
            db.display(),
            backup.path.display(),
            backup.bytes,
            backup.writers_waited.as_secs_f64()
        )
    })?;
    Ok(Outcome::Success)
}

/// `eod compact --json` output.
#[derive(Serialize)]
struct CompactOut<'a> {
    path: &'a Path,
    #[serde(flatten)]
    compaction: &'a Compaction,
}

pub(super) fn compact(db: &Path, json: bool) -> CliResult {
    let mut store = Store::open(db)?;
    let spinner = ProgressBar::spinner("compacting");
    let compaction = store.compact()?;
    drop(spinner);
    let out = CompactOut {
        path: db,
        compaction: &compaction,
    };
    print(json, &out, |out| {
        writeln!(
            out,
            "compacted `{}`: {} bytes before, {} bytes after",
            db.display(),
            compaction.bytes_before,
            compaction.bytes_after
        )
    })?;
    Ok(Outcome::Success)
}
