//! Night-audit reports: per operation, when it ran, how long it took, which steps failed or were
//! retried and who ran them; per step code, the median and maximum duration over the selection.
//!
//! # Durations
//!
//! A step's duration is the duration of its last attempt: from [`Step::started_at`] to
//! [`Step::finished_at`]. The step statistics count completed steps only, so for a step that
//! failed, was retried and then completed, the duration is that of the successful attempt.
//! Earlier failed attempts and the wait before the retry are left out; they show in the
//! operation's duration and its failed and retried steps instead. A takeover starts a new
//! attempt, so a taken-over step's duration starts at the takeover.
//!
//! An operation's start is the earliest start of any attempt of its steps (from the
//! `started` and `taken_over` events, and from [`Step::started_at`] for imported steps). Its end
//! is [`Operation::finished_at`] once it has finished, else the latest [`Step::finished_at`].

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Serialize, Serializer};

use super::Store;
use super::dump::{Dump, DumpFilter, DumpedOperation};
use crate::error::Result;
use crate::model::{EventKind, OperationId, OperationStatus, Step, StepStatus};

/// A report over the operations of a [`DumpFilter`], as [`Store::report`] computes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// One entry per operation, by business date, then property.
    pub operations: Vec<OperationReport>,
    /// One entry per step code that has at least one completed step with a duration, by code.
    pub step_codes: Vec<StepCodeStats>,
}

/// The report of one operation: one property's night audit of one business date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OperationReport {
    /// The operation's id.
    pub operation: OperationId,
    /// The property (hotel).
    pub property: String,
    /// The business date it closes.
    pub business_date: Date,
    /// The plan it was seeded with.
    pub plan: String,
    /// The operation's status.
    pub status: OperationStatus,
    /// The earliest start of any step attempt; `None` while no step has started.
    pub start: Option<Timestamp>,
    /// When the operation finished, else when its last step ended; `None` while no step has
    /// ended.
    pub end: Option<Timestamp>,
    /// `end` minus `start`, when both are known and `end` is not before `start`.
    #[serde(rename = "duration_seconds", serialize_with = "optional_seconds")]
    pub duration: Option<SignedDuration>,
    /// The steps that failed at least once, even if a retry later completed them.
    pub failed_steps: Vec<StepProblem>,
    /// The steps that were retried at least once.
    pub retried_steps: Vec<StepProblem>,
    /// The actors that started, completed, failed, skipped or retried a step, in the order of
    /// their first such change. For imported steps, the actor the import recorded on the step.
    pub actors: Vec<String>,
    /// Every step, in ascending order.
    pub steps: Vec<StepTiming>,
}

/// A step that failed or was retried, with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StepProblem {
    /// The step's order.
    pub order: u32,
    /// The step's code.
    pub code: String,
    /// The step's display name.
    pub name: String,
    /// The step's current status.
    pub status: StepStatus,
    /// How many times the step has been started, takeovers included.
    pub attempts: u32,
    /// How many times it failed.
    pub failures: u32,
    /// How many times it was retried.
    pub retries: u32,
}

/// One step's last attempt, the bar of a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StepTiming {
    /// The step's order.
    pub order: u32,
    /// The step's code.
    pub code: String,
    /// The step's display name.
    pub name: String,
    /// The step's current status.
    pub status: StepStatus,
    /// How many times the step has been started, takeovers included.
    pub attempts: u32,
    /// When the last attempt started.
    pub started_at: Option<Timestamp>,
    /// When the step last completed, failed or was skipped.
    pub finished_at: Option<Timestamp>,
    /// `finished_at` minus `started_at`, when both are known and the step is not running.
    #[serde(rename = "duration_seconds", serialize_with = "optional_seconds")]
    pub duration: Option<SignedDuration>,
}

/// The durations of the completed steps of one code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StepCodeStats {
    /// The step code.
    pub code: String,
    /// The display name of the code's step in the latest business date.
    pub name: String,
    /// How many completed steps with a duration have this code.
    pub count: usize,
    /// The median duration; the mean of the two middle ones for an even count.
    #[serde(rename = "median_seconds", serialize_with = "seconds")]
    pub median: SignedDuration,
    /// The maximum duration.
    #[serde(rename = "max_seconds", serialize_with = "seconds")]
    pub max: SignedDuration,
}

impl Store {
    /// Computes the report of the operations that `filter` selects, from one snapshot read by
    /// [`Store::export`].
    ///
    /// # Errors
    ///
    /// As [`Store::export`].
    pub fn report(&self, filter: &DumpFilter) -> Result<Report> {
        Ok(Report::from_dump(&self.export(filter)?))
    }
}

impl Report {
    /// Computes the report of every operation in `dump`.
    pub fn from_dump(dump: &Dump) -> Report {
        let mut operations: Vec<OperationReport> =
            dump.operations.iter().map(operation_report).collect();
        operations.sort_by(|a, b| {
            (a.business_date, &a.property, a.operation).cmp(&(
                b.business_date,
                &b.property,
                b.operation,
            ))
        });
        let step_codes = step_code_stats(&operations);
        Report {
            operations,
            step_codes,
        }
    }
}

fn operation_report(dumped: &DumpedOperation) -> OperationReport {
    let operation = &dumped.operation;
    let mut failures: BTreeMap<u32, u32> = BTreeMap::new();
    let mut retries: BTreeMap<u32, u32> = BTreeMap::new();
    let mut actors: Vec<String> = Vec::new();
    let mut start: Option<Timestamp> = None;
    let mut add_actor = |actor: &str| {
        if !actors.iter().any(|known| known == actor) {
            actors.push(actor.to_owned());
        }
    };

    for event in &dumped.events {
        let Some(order) = event.step_order else {
            continue;
        };
        match event.kind {
            EventKind::Started | EventKind::TakenOver => {
                start = Some(start.map_or(event.at, |start| start.min(event.at)));
                add_actor(&event.actor);
            }
            EventKind::Failed => {
                *failures.entry(order).or_default() += 1;
                add_actor(&event.actor);
            }
            EventKind::Retried => {
                *retries.entry(order).or_default() += 1;
                add_actor(&event.actor);
            }
            EventKind::Completed | EventKind::Skipped => add_actor(&event.actor),
            // An imported failed step counts as one failure; its actor is the step's own.
            EventKind::Imported => {
                if event.to == Some(StepStatus::Failed) {
                    *failures.entry(order).or_default() += 1;
                }
            }
            EventKind::OperationCreated
            | EventKind::StepsSeeded
            | EventKind::LeaseRenewed
            | EventKind::OperationFinished
            | EventKind::RunStarted
            | EventKind::RunEnded
            | EventKind::DateOverride
            | EventKind::DateRolled
            | EventKind::Released => {}
        }
    }
    for step in &dumped.steps {
        if let Some(started_at) = step.started_at {
            start = Some(start.map_or(started_at, |start| start.min(started_at)));
        }
        if let Some(actor) = &step.actor {
            add_actor(actor);
        }
    }

    let end = operation.finished_at.or_else(|| {
        dumped
            .steps
            .iter()
            .filter_map(|step| step.finished_at)
            .max()
    });
    let duration = match (start, end) {
        (Some(start), Some(end)) if end >= start => Some(end.duration_since(start)),
        _ => None,
    };
    let problem = |step: &Step| StepProblem {
        order: step.order,
        code: step.code.clone(),
        name: step.name.clone(),
        status: step.status,
        attempts: step.attempts,
        failures: failures.get(&step.order).copied().unwrap_or_default(),
        retries: retries.get(&step.order).copied().unwrap_or_default(),
    };
    OperationReport {
        operation: operation.id,
        property: operation.property.clone(),
        business_date: operation.business_date,
        plan: operation.plan.clone(),
        status: operation.status,
        start,
        end,
        duration,
        failed_steps: dumped
            .steps
            .iter()
            .filter(|step| failures.contains_key(&step.order))
            .map(problem)
            .collect(),
        retried_steps: dumped
            .steps
            .iter()
            .filter(|step| retries.contains_key(&step.order))
            .map(problem)
            .collect(),
        actors,
        steps: dumped.steps.iter().map(step_timing).collect(),
    }
}

fn step_timing(step: &Step) -> StepTiming {
    let duration = match (step.status, step.started_at, step.finished_at) {
        (StepStatus::Running, _, _) => None,
        (_, Some(started_at), Some(finished_at)) if finished_at >= started_at => {
            Some(finished_at.duration_since(started_at))
        }
        _ => None,
    };
    StepTiming {
        order: step.order,
        code: step.code.clone(),
        name: step.name.clone(),
        status: step.status,
        attempts: step.attempts,
        started_at: step.started_at,
        finished_at: step.finished_at,
        duration,
    }
}

/// Collects the durations of completed steps by code. `operations` is sorted by business date,
/// so the last name seen for a code is the one of the latest date.
fn step_code_stats(operations: &[OperationReport]) -> Vec<StepCodeStats> {
    let mut by_code: BTreeMap<&str, (&str, Vec<SignedDuration>)> = BTreeMap::new();
    for step in operations.iter().flat_map(|operation| &operation.steps) {
        if step.status != StepStatus::Completed {
            continue;
        }
        let Some(duration) = step.duration else {
            continue;
        };
        let entry = by_code
            .entry(&step.code)
            .or_insert_with(|| (&step.name, Vec::new()));
        entry.0 = &step.name;
        entry.1.push(duration);
    }
    by_code
        .into_iter()
        .filter_map(|(code, (name, mut durations))| {
            durations.sort();
            let max = *durations.last()?;
            Some(StepCodeStats {
                code: code.to_owned(),
                name: name.to_owned(),
                count: durations.len(),
                median: median(&durations)?,
                max,
            })
        })
        .collect()
}

/// Returns the median of sorted durations, or `None` for none.
fn median(sorted: &[SignedDuration]) -> Option<SignedDuration> {
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        return sorted.get(middle).copied();
    }
    let (low, high) = (*sorted.get(middle.checked_sub(1)?)?, *sorted.get(middle)?);
    // In i128 nanoseconds the sum cannot overflow, and half of it fits a duration again.
    let sum = low.as_nanos() + high.as_nanos();
    Some(SignedDuration::from_nanos_i128(sum / 2))
}

fn seconds<S: Serializer>(
    duration: &SignedDuration,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

// serde's `serialize_with` passes the field by reference, so the signature is fixed.
#[allow(clippy::ref_option)]
fn optional_seconds<S: Serializer>(
    duration: &Option<SignedDuration>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => seconds(duration, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let secs = SignedDuration::from_secs;
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[secs(5)]), Some(secs(5)));
        assert_eq!(median(&[secs(1), secs(2), secs(9)]), Some(secs(2)));
        assert_eq!(
            median(&[secs(1), secs(2)]),
            Some(SignedDuration::from_millis(1500))
        );
        assert_eq!(
            median(&[SignedDuration::from_nanos(1), SignedDuration::from_nanos(2)]),
            Some(SignedDuration::from_nanos(1))
        );
        assert_eq!(
            median(&[SignedDuration::from_nanos(3), SignedDuration::from_nanos(5)]),
            Some(SignedDuration::from_nanos(4))
        );
    }
}
