//! `eod status`: an operation with its plan's fingerprint, its property's business date, its
//! steps and the attempts of each step, derived from the step's audit events.

use std::path::Path;

use eodstore::{
    Event, EventKind, OperationId, OperationView, Step, StepStatus, parse_business_date,
};

use super::{CliError, CliResult, Outcome, open_read_only, print};
use crate::cli::StatusArgs;
use crate::output::{self, AttemptOut, AttemptOutcome, PropertyOut, StepOut, ViewOut};

pub(super) fn status(db: &Path, json: bool, args: &StatusArgs) -> CliResult {
    let date = args.date.as_deref().map(parse_business_date).transpose()?;
    let store = open_read_only(db)?;
    let view: OperationView = match (date, args.operation) {
        (Some(date), _) => store.view_by_date(&args.property, date)?,
        (None, Some(id)) => store.view(OperationId(id))?,
        (None, None) => {
            return Err(CliError::Internal {
                message: "`eod status` got neither `--date` nor `--operation`".into(),
            });
        }
    };
    // NOTE: the view, the events and the property state are three read transactions, so a
    // change committed between them can make an attempt list disagree with the step's
    // `attempts` count by one until the next `eod status`.
    let events = store.events(view.operation.id)?;
    let property = store.property(&view.operation.property)?;

    let steps = view
        .steps
        .iter()
        .map(|step| StepOut::new(step, None).with_attempts(attempts_of(step, &events)))
        .collect();
    let out = ViewOut::new(&view.operation, steps, None).with_context(
        view.operation.plan_fingerprint(),
        PropertyOut::new(&view.operation.property, property.as_ref()),
    );
    print(json, &out, |stdout| output::write_status(stdout, &out))?;
    Ok(Outcome::Success)
}

/// Derives the attempts of `step` from its operation's events, oldest first.
///
/// A `started` or `taken_over` event begins an attempt, and a takeover ends the attempt before
/// it. A `completed` or `failed` event ends the running attempt. An `imported` event to running,
/// completed or failed is one attempt. The step record keeps the source's times and error only
/// until a later attempt, so an imported attempt followed by another one gets the import's time.
fn attempts_of(step: &Step, events: &[Event]) -> Vec<AttemptOut> {
    let step_events: Vec<&Event> = events
        .iter()
        .filter(|event| event.step_order == Some(step.order))
        .collect();
    let last_start = step_events
        .iter()
        .rposition(|event| matches!(event.kind, EventKind::Started | EventKind::TakenOver));
    let mut attempts: Vec<AttemptOut> = Vec::new();
    for (index, event) in step_events.into_iter().enumerate() {
        let running = attempts
            .last_mut()
            .filter(|attempt| attempt.outcome == AttemptOutcome::Running);
        match event.kind {
            EventKind::Started | EventKind::TakenOver => {
                if let Some(previous) = running
                    && event.kind == EventKind::TakenOver
                {
                    previous.finished_at = Some(event.at);
                    previous.outcome = AttemptOutcome::TakenOver;
                }
                attempts.push(AttemptOut {
                    attempt: next_number(&attempts),
                    started_at: event.at,
                    finished_at: None,
                    outcome: AttemptOutcome::Running,
                    actor: event.actor.clone(),
                    error: None,
                });
            }
            EventKind::Completed | EventKind::Failed => {
                if let Some(attempt) = running {
                    attempt.finished_at = Some(event.at);
                    if event.kind == EventKind::Failed {
                        attempt.outcome = AttemptOutcome::Failed;
                        attempt.error.clone_from(&event.message);
                    } else {
                        attempt.outcome = AttemptOutcome::Completed;
                    }
                }
            }
            EventKind::Imported => {
                let source = last_start.is_none_or(|start| start < index).then_some(step);
                if let Some(attempt) = imported_attempt(source, event, next_number(&attempts)) {
                    attempts.push(attempt);
                }
            }
            _ => {}
        }
    }
    attempts
}

fn next_number(attempts: &[AttemptOut]) -> u32 {
    u32::try_from(attempts.len()).map_or(u32::MAX, |count| count.saturating_add(1))
}

/// Returns the attempt that an `imported` event records: one when it moved the step to running,
/// completed or failed, and none for a skipped or pending step. `source` is the step when its
/// record still contains the imported times, actor and error.
fn imported_attempt(source: Option<&Step>, event: &Event, number: u32) -> Option<AttemptOut> {
    let outcome = match event.to? {
        StepStatus::Running => AttemptOutcome::Running,
        StepStatus::Completed => AttemptOutcome::Completed,
        StepStatus::Failed => AttemptOutcome::Failed,
        StepStatus::Pending | StepStatus::Skipped => return None,
    };
    let started_at = source.and_then(|step| step.started_at).unwrap_or(event.at);
    let finished_at = match outcome {
        AttemptOutcome::Running => None,
        _ => Some(source.and_then(|step| step.finished_at).unwrap_or(event.at)),
    };
    let actor = source
        .and_then(|step| step.actor.clone())
        .unwrap_or_else(|| event.actor.clone());
    let error = match outcome {
        AttemptOutcome::Failed => source.and_then(|step| step.last_error.clone()),
        _ => None,
    };
    Some(AttemptOut {
        attempt: number,
        started_at,
        finished_at,
        outcome,
        actor,
        error,
    })
}
