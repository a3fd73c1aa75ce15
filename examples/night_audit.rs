//! Runs a hotel night audit with eodstore's [`Runner`], the way a desktop PMS embeds it.
//!
//! The example reads a sample hotel day from `examples/data/`, registers a handler for every
//! step of [`Plan::standard`] and runs the operation of that property and business date. Each
//! handler does the step's work on the sample data and returns a one-line summary, which the
//! store keeps as the step's output. The work itself lives in `night_audit/audit.rs` and the
//! data loading in `night_audit/hotel.rs`; this file shows the embedding.
//!
//! ```text
//! cargo run --example night_audit -- --db /tmp/eod-demo/eod.redb
//! cargo run --example night_audit -- --db /tmp/eod-demo/eod.redb --crash-after post_room_charges
//! cargo run --example night_audit -- --db /tmp/eod-demo/eod.redb    # resumes and finishes
//! cargo run --example night_audit -- --db /tmp/eod-demo/other.redb --crash-during post_room_charges
//! cargo run --example night_audit -- --db /tmp/eod-demo/other.redb  # posts everything once
//! ```
//!
//! # Exactly-once postings
//!
//! `post_room_charges` writes the night's room and tax postings into the PMS's own table
//! `pms_postings`, in the store's file, inside the write transaction that completes the step
//! ([`Runner::handler_with_effects`]). The postings and the step's completion commit together
//! or not at all: after a crash at any point and a resumed run, each charge is posted once.
//! The summary's second line checks it against the sample data.
//!
//! # Flags
//!
//! - `--db PATH`: the store file, created if missing (default `./eod.redb`).
//! - `--data DIR`: the sample data (default `examples/data`). A relative path that does not
//!   exist in the working directory is taken relative to this crate's directory.
//! - `--date YYYY-MM-DD`: the business date (default: `business_date` of `hotel.toml`).
//! - `--property CODE`: the property (default: `property` of `hotel.toml`).
//! - `--report-dir DIR`: the directory for the report and the postings export (default:
//!   `eod-reports` beside `--db`; the repository's `.gitignore` covers it and `eod.redb`, so a
//!   run in the repository leaves `git status` clean).
//! - `--crash-after CODE`: aborts the process (`std::process::abort`, so SIGABRT on Unix)
//!   right after the start of step `CODE` is committed, leaving the step running under this
//!   process's claim. The next run takes the step over, because the claiming process no longer
//!   exists, and finishes the operation.
//! - `--override-date REASON`: runs a date that is not the property's business date in the
//!   store, recording REASON as a `date_override` event.
//! - `--crash-during post_room_charges`: aborts the process inside the step's transaction,
//!   after half of the postings are written and before the commit. Nothing of that
//!   transaction remains; the next run takes the step over and posts every charge once.
//!
//! # Output
//!
//! One line when the operation is opened, then one line per step with its order, code,
//! status, duration and the handler's summary. A step that ended in an earlier run shows
//! `(earlier run)` and its stored duration. Two summary lines end the output, such as
//! `operation=1 status=completed steps=10 completed=10 skipped=0 failed=0 pending=0` and
//! `postings=12 expected=12 duplicates=0`: the postings stored for the date, the postings the
//! sample data gives, and the stored postings that repeat another's reservation and code.
//! Running a finished operation again writes nothing and prints the same summary.
//!
//! The completed `roll_business_date` step advances the property's business date in the
//! store, so a run for an earlier date is then refused as already closed, and the next date
//! runs next.
//!
//! The exit status is 0 when the operation is completed, 1 when a step failed or the data or
//! the store gave an error (the message goes to stderr), 2 for invalid flags. A failed step
//! is retried by the next run.
//!
//! # Data files
//!
//! Amounts are whole numbers of minor units (cents) of the hotel's currency, which has two
//! decimals; no amount is ever a float. Dates are `YYYY-MM-DD`.
//!
//! `hotel.toml`: `property` (1 to 64 ASCII letters, digits, `-`, `_`), `name`,
//! `business_date`, `currency` (ISO 4217, such as `EUR`), and `[[taxes]]` entries, posted in
//! file order, each with a `code` (capital letters or digits, not `ROOM`) and exactly one of
//! `basis_points` (a share of the room rate, 1000 = 10 %, rounded half up to the cent) or
//! `per_guest_night` (minor units per adult and night).
//!
//! The CSV files are UTF-8. Blank lines and lines starting with `#` are ignored; the first
//! other line is the header, exactly as below. Fields are separated by commas, with
//! surrounding spaces trimmed, and there is no quoting, so no field may contain a comma.
//!
//! - `rooms.csv`: `number,type,rack_rate`. Room numbers are unique.
//! - `reservations.csv`: `id,guest,room,arrival,departure,status,rate,adults,balance_forward`.
//!   `status` is `reserved`, `in_house`, `checked_out` or `cancelled`; `departure` is after
//!   `arrival` (the last night is the day before departure); `rate` is the agreed nightly rate;
//!   `adults` is 1 to 20; `balance_forward` is charges minus payments of earlier days (negative
//!   for a deposit). Ids are unique.
//! - `payments.csv`: `reservation,cashier,method,amount`, the payments taken on the business
//!   date; `method` is `cash` or `card`, `amount` at least 1.
//!
//! A file that cannot be read or parsed stops the example before the store is opened, with
//! an error naming the file and line. Cross-file problems (a reservation's room that does not
//! exist, a double-booked room) fail the `pre_audit_checks` step instead.
//!
//! # Files written
//!
//! Into the report directory: `night-audit-PROPERTY-DATE.txt` (the report) and
//! `postings-PROPERTY-DATE.json` (the `backup` step's export, without guest data). The
//! postings themselves live in the store's file, in the `pms_postings` table.

#[path = "night_audit/audit.rs"]
mod audit;
#[path = "night_audit/hotel.rs"]
mod hotel;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use eodstore::runner::{HandlerError, HandlerResult, Progress, RunOutcome, Runner};
use eodstore::{Caller, Plan, Step, StepStatus, Store, parse_business_date};

use crate::audit::Audit;
use crate::hotel::{DataError, Hotel};

/// Runs a hotel night audit on sample data with eodstore's runner.
#[derive(Debug, Parser)]
struct Args {
    /// The store file, created if missing.
    #[arg(long, value_name = "PATH", default_value = "./eod.redb")]
    db: PathBuf,
    /// The sample data directory. A relative path not found in the working directory is taken
    /// relative to the crate's directory.
    #[arg(long, value_name = "DIR", default_value = "examples/data")]
    data: PathBuf,
    /// The business date as YYYY-MM-DD [default: `business_date` of hotel.toml].
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: Option<String>,
    /// The property code [default: `property` of hotel.toml].
    #[arg(long, value_name = "CODE")]
    property: Option<String>,
    /// The directory for the report and the postings export [default: `eod-reports` beside
    /// --db].
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Aborts the process right after the start of this step is committed.
    #[arg(long, value_name = "CODE")]
    crash_after: Option<String>,
    /// Aborts the process inside this step's transaction, after part of its postings are
    /// written and before the commit (only `post_room_charges` has such a transaction).
    #[arg(long, value_name = "CODE")]
    crash_during: Option<String>,
    /// Runs a date that is not the property's business date, recording REASON in the audit
    /// trail.
    #[arg(long, value_name = "REASON")]
    override_date: Option<String>,
}

/// An error that stops a run.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Store(#[from] eodstore::Error),
    #[error("{message}")]
    Invalid { message: String },
    #[error("cannot create the directory `{}`", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("step {order} (`{code}`) failed, and the next run retries it: {error}")]
    StepFailed {
        order: u32,
        code: String,
        error: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            eprintln!("night_audit: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    let hotel = Hotel::load(&data_dir(&args.data))?;
    let property = args
        .property
        .clone()
        .unwrap_or_else(|| hotel.property.clone());
    hotel::check_property(&property).map_err(|message| Failure::Invalid { message })?;
    let date = match &args.date {
        Some(text) => parse_business_date(text)?,
        None => hotel.business_date,
    };
    let plan = Plan::standard();
    if let Some(code) = &args.crash_after
        && plan.step(code).is_none()
    {
        let codes: Vec<&str> = plan.steps().iter().map(|step| step.code.as_str()).collect();
        return Err(Failure::Invalid {
            message: format!(
                "invalid --crash-after `{code}`: expected a step code of the standard plan: {}",
                codes.join(", ")
            ),
        });
    }

    if let Some(code) = &args.crash_during
        && code != "post_room_charges"
    {
        return Err(Failure::Invalid {
            message: format!(
                "invalid --crash-during `{code}`: only `post_room_charges` writes postings in \
                 its step's transaction"
            ),
        });
    }

    let db_dir = match args.db.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| db_dir.join("eod-reports"));
    for dir in [&db_dir, &report_dir] {
        std::fs::create_dir_all(dir).map_err(|source| Failure::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }

    // One Store per file per process, shared by the runner and any other code of the PMS.
    let store = Store::open_or_create(&args.db)?;
    let audit = Audit::new(&hotel, &store, &property, date, &report_dir);
    let mut caller = Caller::new("night-auditor");
    if let Some(reason) = &args.override_date {
        caller = caller.override_business_date(reason.clone());
    }
    let mut runner = Runner::new(&store, &plan, caller);
    register_handlers(&mut runner, &audit, args.crash_during.is_some());

    let crash_after = args.crash_after.as_deref();
    let report = runner.run(&property, date, |event| print_progress(event, crash_after))?;

    let count = |status: StepStatus| {
        report
            .steps
            .iter()
            .filter(|step| step.status == status)
            .count()
    };
    println!(
        "operation={} status={} steps={} completed={} skipped={} failed={} pending={}",
        report.operation.id,
        report.operation.status,
        report.steps.len(),
        count(StepStatus::Completed),
        count(StepStatus::Skipped),
        count(StepStatus::Failed),
        count(StepStatus::Pending)
    );
    let postings = audit::check_postings(&store, &hotel, &property, date)
        .map_err(|message| Failure::Invalid { message })?;
    println!(
        "postings={} expected={} duplicates={}",
        postings.postings, postings.expected, postings.duplicates
    );
    match report.outcome {
        RunOutcome::Failed { order, code, error } => {
            Err(Failure::StepFailed { order, code, error })
        }
        _ => Ok(()),
    }
}

/// Registers a handler for every step of the standard plan. A handler's `Ok` text becomes the
/// step's stored output. Its `Err` text fails the step, and the next run retries it. The
/// no-show, departures and cashier steps only report, so they return plain text. The postings
/// are written in the transaction that completes their step; with `crash_during` the process
/// aborts inside it.
fn register_handlers<'h>(runner: &mut Runner<'_, 'h>, audit: &'h Audit<'h>, crash_during: bool) {
    fn stored(result: Result<String, String>) -> HandlerResult {
        result.map(Some).map_err(HandlerError::new)
    }
    runner
        .handler("pre_audit_checks", |_| stored(audit.pre_audit_checks()))
        .handler("no_shows", |_| Ok(Some(audit.no_shows())))
        .handler("departures_check", |_| Ok(Some(audit.departures_check())))
        .handler("room_rate_check", |_| stored(audit.room_rate_check()))
        .handler_with_effects("post_room_charges", move |_, effects| {
            let interrupt = || {
                if crash_during {
                    println!(
                        " 5 post_room_charges   half of the postings written, aborting the \
                         process as --crash-during requests"
                    );
                    let _ = std::io::stdout().flush();
                    std::process::abort();
                }
            };
            stored(audit.post_room_charges(effects, &interrupt))
        })
        .handler("folio_balance", |_| stored(audit.folio_balance()))
        .handler("cashier_close", |_| Ok(Some(audit.cashier_close())))
        .handler("reports", |ctx| stored(audit.reports(ctx.operation.id)))
        .handler("backup", |_| stored(audit.backup()))
        .handler("roll_business_date", |_| stored(audit.roll_business_date()));
}

fn print_progress(event: &Progress<'_>, crash_after: Option<&str>) {
    match event {
        Progress::Opened(opened) => {
            let done = opened
                .steps
                .iter()
                .filter(|seeded| seeded.step.status.is_done())
                .count();
            let state = if opened.created {
                "new".to_owned()
            } else {
                format!("existing, {done} of {} steps ended", opened.steps.len())
            };
            println!(
                "operation {} of property {} on {}: {state}",
                opened.operation.id, opened.operation.property, opened.operation.business_date
            );
        }
        Progress::Started {
            step,
            took_over_from,
        } => {
            if let Some(previous) = took_over_from {
                println!("{:>2} {:<19} {previous}", step.order, step.code);
            }
            if crash_after == Some(step.code.as_str()) {
                println!(
                    "{:>2} {:<19} started, aborting the process as --crash-after requests",
                    step.order, step.code
                );
                let _ = std::io::stdout().flush();
                std::process::abort();
            }
        }
        Progress::Finished { step, elapsed } => print_step(step, &format_duration(*elapsed), ""),
        Progress::AlreadyDone(step) => {
            let stored = step
                .started_at
                .zip(step.finished_at)
                .and_then(|(start, end)| Duration::try_from(end.duration_since(start)).ok())
                .map_or_else(|| "-".to_owned(), format_duration);
            print_step(step, &stored, "(earlier run) ");
        }
        _ => {}
    }
}

fn print_step(step: &Step, duration: &str, note: &str) {
    let summary = match step.status {
        StepStatus::Failed | StepStatus::Skipped => step.last_error.as_deref(),
        _ => step.output_tail.as_deref(),
    };
    println!(
        "{:>2} {:<19} {:<9} {duration:>9}  {note}{}",
        step.order,
        step.code,
        step.status,
        summary.unwrap_or("")
    );
}

fn format_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{:.1}ms", duration.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2}s", duration.as_secs_f64())
    }
}

/// Returns the data directory: `dir` itself when it exists or is absolute, else `dir` under
/// this crate's directory, so that `cargo run --example` works from any working directory.
fn data_dir(dir: &Path) -> PathBuf {
    if dir.is_absolute() || dir.is_dir() {
        dir.to_owned()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
    }
}
