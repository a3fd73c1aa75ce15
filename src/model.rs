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

/// Returns the idempotency key of one attempt of a step, for side effects outside the store
/// (a payment gateway, a file): `eod:PROPERTY:DATE:OPERATION:ORDER:ATTEMPT`, such as
/// `eod:grand-hotel:2026-12-04:12:5:1`.
///
/// The key is the same for every call within one attempt and different for each attempt, so a
/// service that deduplicates by key applies one attempt's request once. A new attempt (a retry,
/// or a takeover after a crash) gets a new key: before it repeats a request, a handler queries the
/// service for the keys of the earlier attempts (attempt numbers 1 to `attempt - 1`), because
/// a crashed attempt may have reached the service before the crash.
///
/// ```
/// # fn main() -> eodstore::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use std::cell::RefCell;
/// use std::collections::BTreeMap;
///
/// use eodstore::runner::{HandlerError, Runner};
/// use eodstore::{Caller, Plan, Store, parse_business_date};
///
/// /// A payment gateway that applies each idempotency key once, as real ones do.
/// #[derive(Default)]
/// struct Gateway {
///     charges: RefCell<BTreeMap<String, i64>>,
/// }
///
/// impl Gateway {
///     fn charge(&self, key: &str, amount: i64) -> Result<(), String> {
///         self.charges.borrow_mut().entry(key.to_owned()).or_insert(amount);
///         Ok(())
///     }
///
///     fn charged(&self, key: &str) -> bool {
///         self.charges.borrow().contains_key(key)
///     }
/// }
///
/// let store = Store::open_or_create(dir.path().join("eod.redb"))?;
/// let plan = Plan::standard();
/// let gateway = Gateway::default();
/// let mut runner = Runner::new(&store, &plan, Caller::new("night-auditor"));
/// for step in plan.steps() {
///     runner.handler(&step.code, |_| Ok(None));
/// }
/// runner.handler("no_shows", |ctx| {
///     // An earlier attempt may have charged before it crashed: then do not charge again.
///     if ctx.earlier_idempotency_keys().iter().any(|key| gateway.charged(key)) {
///         return Ok(Some("charged by an earlier attempt".into()));
///     }
///     gateway
///         .charge(&ctx.idempotency_key(), 15_000)
///         .map_err(HandlerError::new)?;
///     Ok(Some("charged the no-show fee".into()))
/// });
/// runner.run("grand-hotel", parse_business_date("2026-12-04")?, |_| {})?;
/// drop(runner);
/// assert_eq!(gateway.charges.borrow().len(), 1);
/// # Ok(())
/// # }
/// ```
pub fn idempotency_key(operation: &Operation, order: u32, attempt: u32) -> String {
    format!(
        "eod:{}:{}:{}:{order}:{attempt}",
        operation.property, operation.business_date, operation.id
    )
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
    /// No step has changed yet: every step is pending and none has been started, apart from
    /// steps skipped at seeding because they were not scheduled for the date. Skipping a step
    /// by hand makes the operation [`OperationStatus::Running`].
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
        } else if steps.iter().all(|step| {
            step.attempts == 0
                && (step.status == StepStatus::Pending
                    || (step.status == StepStatus::Skipped
                        && step.last_error.as_deref() == Some(crate::schedule::NOT_SCHEDULED)))
        }) {
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

impl Operation {
    /// Returns the fingerprint of the operation's plan identity: 8 hexadecimal digits of the
    /// CRC-32 of its orders, codes and required flags. Two operations seeded with plans of the
    /// same identity have the same fingerprint, whatever their display names. `eod status`
    /// shows it, so that an operator can tell which version of a plan an operation has.
    pub fn plan_fingerprint(&self) -> String {
        plan_fingerprint(&self.plan_identity)
    }
}

/// Returns the fingerprint of a plan identity, as [`Operation::plan_fingerprint`] does.
pub fn plan_fingerprint(identity: &[PlanIdentityStep]) -> String {
    let mut hasher = crc32fast::Hasher::new();
    for step in identity {
        hasher.update(&step.order.to_le_bytes());
        hasher.update(step.code.as_bytes());
        hasher.update(&[0, u8::from(step.required)]);
    }
    format!("{:08x}", hasher.finalize())
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

/// The state the store keeps for one property (hotel): its current business date and the
/// operation in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyState {
    /// The property.
    pub property: String,
    /// The current business date: the day whose night audit runs next. `None` until it is set
    /// by hand or by a business-date roll; a property without one is not gated.
    pub business_date: Option<Date>,
    /// The origin of the business date's value, such as ``set by `ayşe` `` or `rolled by operation
    /// 12`.
    pub date_source: Option<String>,
    /// When the business date last changed.
    pub date_changed_at: Option<Timestamp>,
    /// The operation that has started and not finished, if any; at most one per property.
    pub active: Option<ActiveOperation>,
}

/// The operation in progress at a property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveOperation {
    /// The operation.
    pub operation: OperationId,
    /// Its business date.
    pub business_date: Date,
    /// When it started (its first step started or was skipped, or a runner began it).
    pub started_at: Timestamp,
    /// The actor that started it.
    pub started_by: String,
    /// The runner running it now, if any.
    pub runner: Option<RunClaim>,
}

/// A runner's claim on an operation: while it is live, no other runner runs the operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunClaim {
    /// The claim: its token, actor, process and lease.
    pub claim: Claim,
    /// When the run began.
    pub since: Timestamp,
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
    /// A runner began running the operation; the message names it and any runner it took over
    /// from.
    RunStarted,
    /// A runner stopped running the operation. The message describes how the run ended.
    RunEnded,
    /// The operation started although its date is not the property's business date, by an
    /// override whose reason is the message.
    DateOverride,
    /// The operation's business-date roll advanced the property's business date; the message
    /// gives the new date.
    DateRolled,
    /// An operator released the operation, so that it no longer blocks the property's other
    /// operations; the message gives the reason.
    Released,
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
            EventKind::RunStarted => "run_started",
            EventKind::RunEnded => "run_ended",
            EventKind::DateOverride => "date_override",
            EventKind::DateRolled => "date_rolled",
            EventKind::Released => "released",
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
