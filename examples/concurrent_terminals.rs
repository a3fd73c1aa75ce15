//! Opens one new night-audit operation from many threads at once, trial after trial, and checks
//! that seeding stores each step exactly once and gives every caller the same complete list.
//!
//! This is the situation of several PMS terminals that start the night audit of the same day
//! together. All threads share one [`Store`], as one process should: redb refuses to open a
//! file twice in one process.
//!
//! ```text
//! cargo run --release --example concurrent_terminals -- --threads 16 --trials 200
//! ```
//!
//! # Flags
//!
//! - `--db PATH`: the store file, created if missing (default: `eod.redb` in a new temporary
//!   directory, removed at the end).
//! - `--threads N`: callers per trial, released together by a barrier (default 16, 1 to 1024).
//! - `--trials T`: operations to open (default 200, at least 1). Each trial opens the operation
//!   of a new property (named after the run's start time and the trial number) with
//!   [`Plan::standard`].
//!
//! # Checks
//!
//! After each trial the example reads the store and counts:
//!
//! - `duplicates`: steps stored more than once, from [`Store::steps`] (two rows with one order).
//! - `wrong_results`: callers whose returned list is not the plan's steps in order or differs
//!   from another caller's; callers given another operation id; trials where the number of
//!   callers with `created` set is not exactly one, for the operation or for each step; and
//!   stored step lists whose orders and codes are not exactly the plan's.
//! - `errors`: calls that returned an error (or whose thread panicked); the first five messages
//!   go to stderr.
//!
//! The last line printed is exactly
//! `trials=T threads=N steps_per_operation=10 duplicates=D wrong_results=W errors=E`, and the
//! exit status is 1 when any count is not 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use clap::Parser;
use eodstore::{Caller, Opened, Plan, Store, parse_business_date};

/// Opens one operation from many threads at once and checks the seeded steps.
#[derive(Debug, Parser)]
struct Args {
    /// The store file, created if missing [default: a new temporary directory, removed at the
    /// end].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Callers per trial, released together.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
    /// Operations to open, one per trial.
    #[arg(long, value_name = "T", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..))]
    trials: u32,
}

/// The counts the example reports.
#[derive(Debug, Default)]
struct Tally {
    duplicates: usize,
    wrong_results: usize,
    errors: usize,
}

/// The maximum number of error messages printed. Later errors are only counted.
const PRINTED_ERRORS: usize = 5;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(tally) if tally.duplicates == 0 && tally.wrong_results == 0 && tally.errors == 0 => {
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("concurrent_terminals: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Tally, eodstore::Error> {
    // Declared before the store, so that the store is closed before the directory is removed.
    let temp_dir;
    let path = match &args.db {
        Some(path) => path.clone(),
        None => {
            temp_dir = tempfile::tempdir().map_err(|source| eodstore::Error::Io {
                action: "create a temporary directory in",
                path: std::env::temp_dir(),
                source,
            })?;
            temp_dir.path().join("eod.redb")
        }
    };
    let store = Store::open_or_create(&path)?;
    let plan = Plan::standard();
    let date = parse_business_date("2026-12-04")?;
    // The run's start time keeps the properties new when --db names a file used before.
    let run_id = jiff::Timestamp::now().as_millisecond();
    println!(
        "db={} plan={} steps={} threads={} trials={}",
        path.display(),
        plan.name(),
        plan.steps().len(),
        args.threads,
        args.trials
    );

    let mut tally = Tally::default();
    let mut latencies = Vec::new();
    let began = Instant::now();
    for trial in 0..args.trials {
        let property = format!("terminals-{run_id}-trial-{trial}");
        let results = open_together(&store, &plan, &property, date, args.threads);
        let mut outcomes = Vec::new();
        for (result, latency) in results {
            latencies.push(latency);
            match result {
                Ok(opened) => outcomes.push(opened),
                Err(message) => {
                    if tally.errors < PRINTED_ERRORS {
                        eprintln!("trial {trial}: open_operation failed: {message}");
                    }
                    tally.errors += 1;
                }
            }
        }
        check_trial(&store, &plan, &outcomes, &mut tally)?;
    }
    let elapsed = began.elapsed();

    latencies.sort_unstable();
    let percentile = |per_mille: usize| {
        let index = (latencies.len() * per_mille / 1000).min(latencies.len().saturating_sub(1));
        latencies.get(index).copied().unwrap_or_default()
    };
    #[allow(clippy::cast_precision_loss, reason = "a call count is far below 2^52")]
    let calls = latencies.len() as f64;
    println!(
        "elapsed={:.2}s calls={} calls_per_second={:.0} latency_p50={} latency_p99={} latency_max={}",
        elapsed.as_secs_f64(),
        latencies.len(),
        calls / elapsed.as_secs_f64().max(f64::EPSILON),
        format_latency(percentile(500)),
        format_latency(percentile(990)),
        format_latency(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "trials={} threads={} steps_per_operation={} duplicates={} wrong_results={} errors={}",
        args.trials,
        args.threads,
        plan.steps().len(),
        tally.duplicates,
        tally.wrong_results,
        tally.errors
    );
    Ok(tally)
}

/// Opens the operation of `property` from `threads` threads released together, and returns each
/// call's result (an error as its message) with its latency.
fn open_together(
    store: &Store,
    plan: &Plan,
    property: &str,
    date: jiff::civil::Date,
    threads: u32,
) -> Vec<(Result<Opened, String>, Duration)> {
    let barrier = Barrier::new(threads as usize);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|terminal| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let caller = Caller::new(format!("terminal-{terminal}"));
                    barrier.wait();
                    let began = Instant::now();
                    let result = store.open_operation(property, date, plan, &caller);
                    (result.map_err(|err| err.to_string()), began.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| (Err("the thread panicked".to_owned()), Duration::ZERO))
            })
            .collect()
    })
}

/// Checks one trial's successful results against the plan, each other and the stored steps.
fn check_trial(
    store: &Store,
    plan: &Plan,
    outcomes: &[Opened],
    tally: &mut Tally,
) -> Result<(), eodstore::Error> {
    let Some(first) = outcomes.first() else {
        return Ok(());
    };
    let id = first.operation.id;
    let plan_steps: Vec<(u32, &str)> = plan
        .steps()
        .iter()
        .map(|step| (step.order, step.code.as_str()))
        .collect();

    for opened in outcomes {
        let returned: Vec<(u32, &str)> = opened
            .steps
            .iter()
            .map(|seeded| (seeded.step.order, seeded.step.code.as_str()))
            .collect();
        let same_as_first = opened.steps.len() == first.steps.len()
            && opened
                .steps
                .iter()
                .zip(&first.steps)
                .all(|(mine, theirs)| mine.step == theirs.step);
        if opened.operation.id != id || returned != plan_steps || !same_as_first {
            tally.wrong_results += 1;
        }
    }

    if outcomes.iter().filter(|opened| opened.created).count() != 1 {
        tally.wrong_results += 1;
    }
    for (index, plan_step) in plan.steps().iter().enumerate() {
        let creators = outcomes
            .iter()
            .filter(|opened| {
                opened
                    .steps
                    .get(index)
                    .is_some_and(|seeded| seeded.created && seeded.step.order == plan_step.order)
            })
            .count();
        if creators != 1 {
            tally.wrong_results += 1;
        }
    }

    let stored = store.steps(id)?;
    let mut orders: Vec<u32> = stored.iter().map(|step| step.order).collect();
    orders.sort_unstable();
    orders.dedup();
    tally.duplicates += stored.len() - orders.len();
    let stored_steps: Vec<(u32, &str)> = stored
        .iter()
        .map(|step| (step.order, step.code.as_str()))
        .collect();
    if stored_steps != plan_steps {
        tally.wrong_results += 1;
    }
    Ok(())
}

fn format_latency(latency: Duration) -> String {
    format!("{:.1}ms", latency.as_secs_f64() * 1000.0)
}
