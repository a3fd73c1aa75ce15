//! Operations, steps, claims and audit events, as stored and as returned to callers.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The id of an end-of-day operation, unique within one store and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OperationId(pub u64);

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Parses a business date written as `YYYY-MM-DD`.
///
/// A business date is the hotel's accounting day, given by the caller; eodstore never derives it
/// from the clock.
///
/// # Errors
///
/// Returns [`Error::InvalidInput`] when the text is not a valid `YYYY-MM-DD` date.
pub fn parse_business_date(text: &str) -> Result<Date> {
    let invalid = |expected: String| Error::InvalidInput {
        what: "business date",
        value: text.to_owned(),
        expected,
    };
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return Err(invalid(
            "expected a date as YYYY-MM-DD, such as 2026-12-04".into(),
        ));
    }
    text.parse::<Date>().map_err(|err| {
        invalid(format!(
            "{err}; expected a real calendar date as YYYY-MM-DD"
        ))
    })
}

/// The state of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started, or returned to the queue by a retry.
    Pending,
    /// Started under a claim that has not been completed or failed.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error; may be retried.
    Failed,
    /// Passed over on purpose (optional steps only).
    Skipped,
}

impl StepStatus {
    /// Returns the lowercase name used in messages and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }

    /// Returns whether the step has ended for good (completed or skipped).
    pub fn is_done(self) -> bool {
        matches!(self, StepStatus::Completed | StepStatus::Skipped)
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a whole operation, derived from its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    /// No step has changed yet: every step is pending and none has been started. Skipping a
    /// step makes the operation [`OperationStatus::Running`].
    Open,
    /// Some step has started or been skipped and the operation is not finished, including a
    /// run paused at a manual step.
    Running,
    /// A required step failed and has not been retried.
    Failed,
    /// Every step is completed or skipped.
    Completed,
}

impl OperationStatus {
    /// Derives the status of an operation from its steps.
    pub fn of(steps: &[Step]) -> OperationStatus {
        if steps.iter().all(|step| step.status.is_done()) {
            OperationStatus::Completed
        } else if steps
            .iter()
            .any(|step| step.required && step.status == StepStatus::Failed)
        {
            OperationStatus::Failed
        } else if steps
            .iter()
            .all(|step| step.status == StepStatus::Pending && step.attempts == 0)
        {
            OperationStatus::Open
        } else {
            OperationStatus::Running
        }
    }

    /// Returns the lowercase name used in messages and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Open => "open",
            OperationStatus::Running => "running",
            OperationStatus::Failed => "failed",
            OperationStatus::Completed => "completed",
        }
    }
}

impl fmt::Display for OperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a plan as it identifies an operation: display names are not part of it, so a
/// translated plan reopens the same operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanIdentityStep {
    /// The step's position.
    pub order: u32,
    /// The step's stable code.
    pub code: String,
    /// Whether the step is required.
    pub required: bool,
}

/// One end-of-day operation: the night audit of one property for one business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The operation's id.
    pub id: OperationId,
    /// The property (hotel) it belongs to.
    pub property: String,
    /// The business date it closes.
    pub business_date: Date,
    /// The name of the plan it was seeded with.
    pub plan: String,
    /// The identity of that plan, in order.
    pub plan_identity: Vec<PlanIdentityStep>,
    /// The status, kept in step with the steps by every transition.
    pub status: OperationStatus,
    /// When the operation was created.
    pub created_at: Timestamp,
    /// The actor that created it.
    pub created_by: String,
    /// When its last step ended, making it finished.
    pub finished_at: Option<Timestamp>,
}

/// The process that holds a claim, recorded so that a claim of a process that no longer exists
/// can be taken over at once instead of after its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    /// The host name of the machine the process runs on.
    pub host: String,
    /// The operating system's process id.
    pub pid: u32,
    /// The process's start time in clock ticks since boot (Linux `/proc/PID/stat` field 22),
    /// which tells a reused pid from the original process; `None` where it cannot be read.
    pub start_ticks: Option<u64>,
}

/// A step's claim: proof that one caller is running it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The secret token that complete, fail and renew must present.
    pub token: String,
    /// The actor that took the claim.
    pub actor: String,
    /// The claiming process, for runner claims; `None` for manual claims, which expire by lease
    /// only.
    pub process: Option<ProcessRef>,
    /// When the lease ends; after it, another caller may take the step over.
    pub lease_until: Timestamp,
}

/// One step of an operation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The step's position in the operation; steps run in ascending order.
    pub order: u32,
    /// The stable code, such as `post_room_charges`.
    pub code: String,
    /// The display name, any UTF-8.
    pub name: String,
    /// Whether the step must complete (a person cannot skip it).
    pub required: bool,
    /// The current status.
    pub status: StepStatus,
    /// How many times the step has been started, takeovers included.
    pub attempts: u32,
    /// When the current or last attempt started.
    pub started_at: Option<Timestamp>,
    /// When the step last completed, failed or was skipped.
    pub finished_at: Option<Timestamp>,
    /// The actor that made the last change.
    pub actor: Option<String>,
    /// The error of the last failed attempt, or the reason of a skip.
    pub last_error: Option<String>,
    /// The tail of the last attempt's output, where the handler gave one.
    pub output_tail: Option<String>,
    /// The claim while the step is running.
    pub claim: Option<Claim>,
}

/// The kind of change an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The operation was created.
    OperationCreated,
    /// Steps were seeded into the operation.
    StepsSeeded,
    /// A step was started.
    Started,
    /// A running step whose holder was gone was started by another caller.
    TakenOver,
    /// A step's lease was renewed.
    LeaseRenewed,
    /// A step completed.
    Completed,
    /// A step failed.
    Failed,
    /// A step was skipped.
    Skipped,
    /// A failed step was returned to pending.
    Retried,
    /// The operation finished.
    OperationFinished,
    /// The operation, or one step of it, was imported from another system. A step's event
    /// moves it from pending to its imported status, and counts one attempt when that status
    /// is running, completed or failed.
    Imported,
}

impl EventKind {
    /// Returns the snake-case name used in messages and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OperationCreated => "operation_created",
            EventKind::StepsSeeded => "steps_seeded",
            EventKind::Started => "started",
            EventKind::TakenOver => "taken_over",
            EventKind::LeaseRenewed => "lease_renewed",
            EventKind::Completed => "completed",
            EventKind::Failed => "failed",
            EventKind::Skipped => "skipped",
            EventKind::Retried => "retried",
            EventKind::OperationFinished => "operation_finished",
            EventKind::Imported => "imported",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of an operation's append-only audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event's position in the operation's trail, from 1.
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// The step it concerns, if any.
    pub step_order: Option<u32>,
    /// The step's status before the change.
    pub from: Option<StepStatus>,
    /// The step's status after the change.
    pub to: Option<StepStatus>,
    /// The actor that made the change.
    pub actor: String,
    /// When the change was committed (the store clock's time).
    pub at: Timestamp,
    /// Details: a skip's reason, a failure's error, the previous holder of a takeover.
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_date_parses_iso() {
        let date = parse_business_date("2026-12-04").unwrap();
        assert_eq!(date, jiff::civil::date(2026, 12, 4));
    }

    #[test]
    fn business_date_rejects_malformed() {
        for text in [
            "2026-13-01",
            "2026-02-30",
            "26-12-04",
            "2026/12/04",
            "",
            "2026-12-04T00:00",
        ] {
            let err = parse_business_date(text).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid business date `{text}`")),
                "{err}"
            );
        }
    }

    #[test]
    fn operation_status_derives_from_steps() {
        use StepStatus::{Completed, Failed, Pending, Skipped};
        let step = |required, status, attempts| Step {
            order: 1,
            code: "c".into(),
            name: "n".into(),
            required,
            status,
            attempts,
            started_at: None,
            finished_at: None,
            actor: None,
            last_error: None,
            output_tail: None,
            claim: None,
        };

        assert_eq!(
            OperationStatus::of(&[step(true, Pending, 0)]),
            OperationStatus::Open
        );
        assert_eq!(
            OperationStatus::of(&[step(true, Completed, 1), step(true, Pending, 0)]),
            OperationStatus::Running
        );
        assert_eq!(
            OperationStatus::of(&[step(true, Failed, 1), step(true, Pending, 0)]),
            OperationStatus::Failed
        );
        assert_eq!(
            OperationStatus::of(&[step(false, Failed, 1), step(true, Pending, 0)]),
            OperationStatus::Running
        );
        assert_eq!(
            OperationStatus::of(&[step(true, Completed, 1), step(false, Skipped, 0)]),
            OperationStatus::Completed
        );
        // A retried step is pending again but has attempts: the operation has started.
        assert_eq!(
            OperationStatus::of(&[step(true, Pending, 1)]),
            OperationStatus::Running
        );
    }
}
