//! `eod run`: runs the commands of a plan's steps in order, and explains where a run stopped.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use eodstore::runner::{
    MissingHandler, Progress, RunOutcome, RunReport, Runner, ShellEnvironment, shell_handler,
};
use eodstore::{
    Caller, OperationId, Plan, Step, StepStatus, Store, StoreOptions, parse_business_date,
    shell_word, validate_property,
};
use jiff::civil::Date;

use super::{
    CliError, CliResult, Outcome, actor, lease_from_secs, load_plan, opened_line, print,
    print_view, with_override,
};
use crate::cli::{PlanArgs, RunArgs};
use crate::output::{self, StepOut, ViewOut};

/// The business dates of one `eod run`: one date, or every date through `--until`.
#[derive(Debug, Clone, Copy)]
enum Target {
    Date(Date),
    Until(Date),
}

/// Opens the operation and runs each step that has a command through `sh -c`, pausing at the
/// first step without one. With `--until`, it does so for each business date of the catch-up.
/// Progress lines go to stderr, and the steps go to stdout.
pub(super) fn run(db: &Path, json: bool, args: &RunArgs) -> CliResult {
    let target = match (&args.date, &args.until) {
        (Some(date), None) => Target::Date(parse_business_date(date)?),
        (None, Some(until)) => Target::Until(parse_business_date(until)?),
        _ => {
            return Err(CliError::Internal {
                message: "`eod run` needs exactly one of `--date` and `--until`".into(),
            });
        }
    };
    let plan = load_plan(&args.plan.plan)?;
    let lease = lease_from_secs(args.lease_secs)?;
    let caller = with_override(
        Caller::new(actor(args.plan.actor.as_deref())).lease(lease),
        args.override_date.as_deref(),
    );
    // Inputs are checked before the file is created, so a typo creates no database.
    validate_property(&args.property)?;
    caller.validate()?;

    // A catch-up starts from the property's business date, which only an existing file holds.
    let create = matches!(target, Target::Date(_));
    let store = Store::open_with(db, StoreOptions::new().create(create))?;
    let mut runner = shell_runner(&store, &plan, caller, db);
    let eod = eod_command(db);
    match target {
        Target::Date(date) => {
            let mut created = Vec::new();
            let report = runner.run(&args.property, date, |progress| {
                note_created(progress, &mut created);
                report_progress(progress, false);
            })?;
            let created = created.pop().unwrap_or_default();
            print_view(json, &run_view(&report, &created))?;
            let rerun = rerun_command(&eod, &format!("--date {date}"), &args.property, &args.plan);
            explain_outcome(&report, &eod, &rerun)
        }
        Target::Until(until) => catch_up(&store, &mut runner, until, json, args, &eod),
    }
}

/// Runs every business date of the property from its current one through `until`, prints
/// each run as a single run prints it, and returns the outcome of the last run.
fn catch_up(
    store: &Store,
    runner: &mut Runner<'_, '_>,
    until: Date,
    json: bool,
    args: &RunArgs,
    eod: &str,
) -> CliResult {
    let mut created = Vec::new();
    let reports = runner.run_until(&args.property, until, |progress| {
        note_created(progress, &mut created);
        report_progress(progress, true);
    })?;

    if reports.is_empty() {
        let current = store
            .property(&args.property)?
            .and_then(|state| state.business_date)
            .map_or_else(|| "not set".to_owned(), |date| date.to_string());
        eprintln!(
            "the business date of `{}` is {current}, which is after {until}, so no date was due \
             and nothing ran",
            args.property
        );
    }
    let views: Vec<ViewOut<'_>> = reports
        .iter()
        .zip(created.iter().chain(std::iter::repeat(&HashMap::new())))
        .map(|(report, created)| run_view(report, created))
        .collect();
    if json {
        print(true, &views, |_| Ok(()))?;
    }

    let rerun = rerun_command(eod, &format!("--until {until}"), &args.property, &args.plan);
    let mut outcome = Outcome::Success;
    for (index, (report, view)) in reports.iter().zip(&views).enumerate() {
        if !json {
            print(false, view, |out| {
                if index > 0 {
                    writeln!(out)?;
                }
                output::write_view(out, view)
            })?;
        }
        outcome = explain_outcome(report, eod, &rerun)?;
    }
    Ok(outcome)
}

/// Builds a runner that runs each step's `command` through `sh -c` and pauses at a step
/// without one.
fn shell_runner<'s>(
    store: &'s Store,
    plan: &'s Plan,
    caller: Caller,
    db: &Path,
) -> Runner<'s, 'static> {
    // Commands may change directory, so they get the database as an absolute path.
    let database = std::path::absolute(db).unwrap_or_else(|_| db.to_owned());
    let mut runner = Runner::new(store, plan, caller);
    runner.on_missing_handler(MissingHandler::Pause);
    for step in plan.steps() {
        if let Some(command) = &step.command {
            let environment = ShellEnvironment {
                database: Some(database.clone()),
            };
            let timeout = step.timeout_seconds.map(Duration::from_secs);
            runner.handler(
                &step.code,
                shell_handler(command.clone(), timeout, environment),
            );
        }
    }
    runner
}

/// Records, for each run that opens its operation, which of its steps the run created.
fn note_created(progress: &Progress<'_>, created: &mut Vec<HashMap<u32, bool>>) {
    if let Progress::Opened(opened) = progress {
        created.push(
            opened
                .steps
                .iter()
                .map(|seeded| (seeded.step.order, seeded.created))
                .collect(),
        );
    }
}

/// Returns a run's operation and steps for printing, each step marked with whether the run
/// created it.
fn run_view<'a>(report: &'a RunReport, created: &HashMap<u32, bool>) -> ViewOut<'a> {
    let steps = report
        .steps
        .iter()
        .map(|step| {
            StepOut::new(
                step,
                Some(created.get(&step.order).copied().unwrap_or(false)),
            )
        })
        .collect();
    ViewOut::new(&report.operation, steps, Some(&report.outcome))
}

/// Writes one progress line of a run to stderr. In a catch-up, the line that opens an
/// operation starts with its business date.
fn report_progress(progress: &Progress<'_>, catch_up: bool) {
    match progress {
        Progress::Opened(opened) => {
            let seeded = opened.steps.iter().filter(|seeded| seeded.created).count();
            let line = opened_line(opened.operation.id, opened.created, seeded);
            if catch_up {
                eprintln!("business date {}: {line}", opened.operation.business_date);
            } else {
                eprintln!("{line}");
            }
        }
        Progress::AlreadyDone(step) => {
            eprintln!("{} was already {}", describe(step), step.status);
        }
        Progress::Started {
            step,
            took_over_from,
        } => match took_over_from {
            Some(previous) => eprintln!(
                "{} started, attempt {} ({previous})",
                describe(step),
                step.attempts
            ),
            None => eprintln!("{} started, attempt {}", describe(step), step.attempts),
        },
        Progress::Finished { step, elapsed } => {
            let verb = match step.status {
                StepStatus::Failed => "failed after",
                StepStatus::Skipped => "skipped after",
                _ => "completed in",
            };
            eprintln!("{} {verb} {:.2}s", describe(step), elapsed.as_secs_f64());
        }
        Progress::Retrying {
            step,
            attempt,
            max_attempts,
            delay,
        } => {
            eprintln!(
                "{} is retried in {:.2}s, as attempt {attempt} of at most {max_attempts} in this \
                 run",
                describe(step),
                delay.as_secs_f64()
            );
        }
        _ => {}
    }
}

/// Names a step for progress lines: order, code and display name.
fn describe(step: &Step) -> String {
    format!("step {} `{}` ({})", step.order, step.code, step.name)
}

/// Tells on stderr how a run ended and what to do next, and returns the matching outcome.
fn explain_outcome(report: &RunReport, eod: &str, rerun: &str) -> CliResult {
    let id = report.operation.id;
    let find = |order: u32| report.steps.iter().find(|step| step.order == order);
    match &report.outcome {
        RunOutcome::Completed => {
            eprintln!("operation {id} completed");
            Ok(Outcome::Success)
        }
        RunOutcome::Failed { order, code, error } => {
            eprintln!("error: step {order} (`{code}`) of operation {id} failed: {error}");
            if let Some(tail) = find(*order).and_then(|step| step.output_tail.as_deref()) {
                eprintln!("output tail:");
                for line in tail.lines() {
                    eprintln!("  | {line}");
                }
            }
            let mut next = vec![
                format!("fix the cause and run `{rerun}` again, which retries the step"),
                format!(
                    "or return it to pending with `{eod} step retry --operation {id} --order \
                     {order}`, do the step yourself and record it with `step start` and `step \
                     complete`"
                ),
            ];
            if find(*order).is_some_and(|step| !step.required) {
                next.push(skip_hint(eod, id, *order));
            }
            let next = next.join("; ");
            eprintln!("{next}");
            Ok(Outcome::StepFailed)
        }
        RunOutcome::AlreadyFinished {
            finished_at,
            finished_by,
        } => {
            eprintln!(
                "operation {id} already finished at {finished_at:.0}, finished by \
                 `{finished_by}`; nothing was run"
            );
            Ok(Outcome::Success)
        }
        RunOutcome::Paused { order, code } => {
            let Some(step) = find(*order) else {
                return Err(CliError::Internal {
                    message: format!("the run paused at step {order}, which operation {id} lacks"),
                });
            };
            eprintln!("{}", pause_message(eod, id, step, code, rerun));
            Ok(Outcome::Paused)
        }
        other => Err(CliError::Internal {
            message: format!("the run ended with an outcome this build does not know: {other:?}"),
        }),
    }
}

/// Explains a pause at a manual step: how to run it by hand, given its status, and to run again.
fn pause_message(eod: &str, id: OperationId, step: &Step, code: &str, rerun: &str) -> String {
    let order = step.order;
    let start = format!("{eod} step start --operation {id} --order {order}");
    let complete = format!("{eod} step complete --operation {id} --order {order} --claim TOKEN");
    let by_hand = match step.status {
        StepStatus::Running => format!(
            "it is running, started by `{}`; its holder completes it with `{complete}`, \
             using the claim token that `eod step start` printed",
            step.actor.as_deref().unwrap_or("unknown")
        ),
        StepStatus::Failed => format!(
            "it failed ({}); return it to pending with `{eod} step retry --operation {id} --order \
             {order}`, then run `{start}` and `{complete}` with the printed claim token",
            step.last_error.as_deref().unwrap_or("no error recorded")
        ),
        _ => format!(
            "run `{start}`, do the work, then run `{complete}` with the printed claim token"
        ),
    };
    let mut parts = vec![format!(
        "paused at step {order} (`{code}`, {}) of operation {id}, a manual step without a \
             command: {by_hand}",
        step.name
    )];
    if !step.required {
        parts.push(skip_hint(eod, id, order));
    }
    parts.push(format!("then run `{rerun}` again"));
    parts.join("; ")
}

/// Suggests skipping an optional step.
fn skip_hint(eod: &str, id: OperationId, order: u32) -> String {
    format!(
        "or, since it is optional, skip it with `{eod} step skip --operation {id} --order {order} \
         --reason TEXT`"
    )
}

/// Returns the start of the `eod` command lines suggested in messages: `eod`, plus `--db` when
/// the database is not the default one, so that a suggestion copied as printed acts on the same
/// file.
pub(crate) fn eod_command(db: &Path) -> String {
    if db == Path::new(crate::cli::DEFAULT_DB) {
        "eod".to_owned()
    } else {
        format!("eod --db {}", shell_word(&db.display().to_string()))
    }
}

/// Returns the `eod run` command line that resumes this run, for messages. `dates` is the
/// `--date` or `--until` option with its value.
fn rerun_command(eod: &str, dates: &str, property: &str, plan: &PlanArgs) -> String {
    let command = format!("{eod} run {dates} --property {}", shell_word(property));
    if plan.plan == "standard" {
        command
    } else {
        format!("{command} --plan {}", shell_word(&plan.plan))
    }
}
