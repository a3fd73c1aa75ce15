//! `eod run`: runs the commands of a plan's steps in order, and explains where a run stopped.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use eodstore::runner::{
    MissingHandler, Progress, RunOutcome, RunReport, Runner, ShellEnvironment, shell_handler,
};
use eodstore::{
    Caller, OperationId, Step, StepStatus, Store, StoreOptions, parse_business_date, shell_word,
    validate_property,
};

use super::{
    CliError, CliResult, Outcome, actor, lease_from_secs, load_plan, opened_line, print_view,
};
use crate::cli::{PlanArgs, RunArgs};
use crate::output::{StepOut, ViewOut};

/// Opens the operation and runs each step that has a command through `sh -c`, pausing at the
/// first step without one. Progress lines go to stderr; the steps go to stdout.
pub(super) fn run(db: &Path, json: bool, args: &RunArgs) -> CliResult {
    let date = parse_business_date(&args.day.date)?;
    let plan = load_plan(&args.plan.plan)?;
    let lease = lease_from_secs(args.lease_secs)?;
    let caller = Caller::new(actor(args.plan.actor.as_deref())).lease(lease);
    // Inputs are checked before the file is created, so a typo creates no database.
    validate_property(&args.day.property)?;
    caller.validate()?;

    let store = Store::open_with(db, StoreOptions::new().create(true))?;
    // Commands may change directory, so they get the database as an absolute path.
    let database = std::path::absolute(db).unwrap_or_else(|_| db.to_owned());
    let mut runner = Runner::new(&store, &plan, caller);
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

    let mut created: HashMap<u32, bool> = HashMap::new();
    let report = runner.run(&args.day.property, date, |progress| {
        if let Progress::Opened(opened) = progress {
            created = opened
                .steps
                .iter()
                .map(|seeded| (seeded.step.order, seeded.created))
                .collect();
        }
        report_progress(progress);
    })?;

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
    print_view(
        json,
        &ViewOut::new(&report.operation, steps, Some(&report.outcome)),
    )?;
    let eod = eod_command(db);
    explain_outcome(
        &report,
        &eod,
        &rerun_command(&eod, &args.day.date, &args.day.property, &args.plan),
    )
}

/// Writes one progress line of a run to stderr.
fn report_progress(progress: &Progress<'_>) {
    match progress {
        Progress::Opened(opened) => {
            let seeded = opened.steps.iter().filter(|seeded| seeded.created).count();
            eprintln!(
                "{}",
                opened_line(opened.operation.id, opened.created, seeded)
            );
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
fn eod_command(db: &Path) -> String {
    if db == Path::new(crate::cli::DEFAULT_DB) {
        "eod".to_owned()
    } else {
        format!("eod --db {}", shell_word(&db.display().to_string()))
    }
}

/// Returns the `eod run` command line that resumes this run, for messages.
fn rerun_command(eod: &str, date: &str, property: &str, plan: &PlanArgs) -> String {
    let command = format!(
        "{eod} run --date {date} --property {}",
        shell_word(property)
    );
    if plan.plan == "standard" {
        command
    } else {
        format!("{command} --plan {}", shell_word(&plan.plan))
    }
}
