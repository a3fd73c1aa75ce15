//! Step transitions: start (with takeover), renew, complete, fail, skip and retry.
//!
//! Every rule is checked inside the write transaction that applies the change, against the state
//! that transaction reads, and every change appends its audit event in the same transaction.

use std::hash::{BuildHasher, Hasher};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::tables::{self, WriteTables};
use super::{Caller, Store, property};
use crate::error::{Error, Result};
use crate::model::{
    Claim, Event, EventKind, Operation, OperationId, OperationStatus, Step, StepStatus,
};
use crate::process;

/// The maximum output kept per attempt, in bytes. Longer output keeps its end.
pub const MAX_OUTPUT_TAIL: usize = 4096;
/// The longest error message or skip reason kept, in bytes; longer text keeps its start, cut at
/// a character boundary.
pub const MAX_MESSAGE: usize = 4096;

/// The message of the `operation_finished` event.
pub(crate) const FINISHED_MESSAGE: &str = "every step is completed or skipped";

/// The result of [`Store::start_step`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// The claim to present to complete, fail and renew.
    pub claim: Claim,
    /// The step as stored after the start.
    pub step: Step,
    /// The previous holder, when this start took a running step over.
    pub took_over_from: Option<String>,
}

/// An operation and its steps, loaded inside a write transaction, with the target step found.
pub(crate) struct Loaded {
    pub(crate) operation: Operation,
    pub(crate) steps: Vec<Step>,
    pub(crate) index: usize,
}

impl Loaded {
    pub(crate) fn step(&self) -> &Step {
        &self.steps[self.index]
    }

    fn invalid(&self, action: &'static str, allowed: &str) -> Error {
        let step = self.step();
        Error::InvalidTransition {
            operation: self.operation.id,
            order: step.order,
            code: step.code.clone(),
            action,
            status: step.status,
            allowed: allowed.to_owned(),
        }
    }
}

impl Store {
    /// Starts a step and returns its claim.
    ///
    /// A pending step starts when every lower required step is completed or skipped and no other
    /// step of the operation is running. A running step is taken over, with a new claim, when its
    /// lease has ended or its holder was a runner process on this host that no longer exists;
    /// the takeover is recorded in the events. Each start counts one attempt.
    ///
    /// # Errors
    ///
    /// - [`Error::OperationNotFound`], [`Error::StepNotFound`] for unknown ids and orders.
    /// - [`Error::OperationFinished`] when the operation has finished.
    /// - [`Error::StepOutOfOrder`] when a lower required step is not completed or skipped.
    /// - [`Error::AnotherStepRunning`] when another step of the operation is running.
    /// - [`Error::ClaimHeld`] when the step runs under a live claim.
    /// - [`Error::InvalidTransition`] when the step failed (retry it first) or has ended.
    /// - [`Error::RequestIdReused`], [`Error::InvalidInput`], [`Error::Storage`].
    pub fn start_step(
        &self,
        operation: OperationId,
        order: u32,
        caller: &Caller,
    ) -> Result<Started> {
        self.guarded("changing a step", || {
            caller.validate()?;
            let call = format!("start of step {order} of operation {operation}");
            let lease = caller.lease.unwrap_or(self.options.lease);
            let now = self.now();
            let started = self.write_request(caller, &call, "", move |tables, caller| {
                let mut loaded = load(tables, operation, order)?;
                let previous = start_check(&loaded, now)?;
                let entry = property::check_entry(tables, &loaded.operation, caller, now)?;
                let lease_until = now.checked_add(lease).map_err(|err| Error::InvalidInput {
                    what: "lease",
                    value: format!("{lease:#}"),
                    expected: format!("a lease that ends within the supported time range: {err}"),
                })?;
                let claim = Claim {
                    token: new_token(operation, order),
                    actor: caller.actor.clone(),
                    process: caller.process.clone(),
                    lease_until,
                };
                let step = &mut loaded.steps[loaded.index];
                let from = step.status;
                step.status = StepStatus::Running;
                step.attempts += 1;
                step.started_at = Some(now);
                step.finished_at = None;
                step.actor = Some(caller.actor.clone());
                step.output_tail = None;
                step.claim = Some(claim.clone());
                if let Some(entry) = entry {
                    property::write_entry(tables, &loaded.operation, entry, caller, now)?;
                }
                let (kind, message) = match &previous {
                    Some(reason) => (EventKind::TakenOver, Some(reason.clone())),
                    None => (EventKind::Started, None),
                };
                let message = Some(match message {
                    Some(reason) => format!("attempt {}; {reason}", step.attempts),
                    None => format!("attempt {}", step.attempts),
                });
                let step = commit_change(tables, &mut loaded, from, kind, caller, now, message)?;
                Ok(Started {
                    claim,
                    step,
                    took_over_from: previous,
                })
            })?;
            if let Some(previous) = &started.took_over_from {
                tracing::warn!(operation_id = operation.0, step_order = order, %previous, "took over a running step");
            }
            tracing::debug!(
                operation_id = operation.0,
                step_order = order,
                "started step"
            );
            Ok(started)
        })
    }

    /// Extends the lease of a running step's claim by the caller's lease (or the store's
    /// default), counted from now, and returns the renewed claim.
    ///
    /// # Errors
    ///
    /// [`Error::WrongClaim`] when `token` is not the step's current claim, and the errors of
    /// [`Store::start_step`] for unknown or finished operations.
    pub fn renew_claim(
        &self,
        operation: OperationId,
        order: u32,
        token: &str,
        caller: &Caller,
    ) -> Result<Claim> {
        self.guarded("changing a step", || {
            caller.validate()?;
            let call = format!("renewal of step {order} of operation {operation}");
            let lease = caller.lease.unwrap_or(self.options.lease);
            let now = self.now();
            let token = token.to_owned();
            self.write_request(caller, &call, &token.clone(), move |tables, caller| {
                let token = token.as_str();
                let mut loaded = load(tables, operation, order)?;
                check_claim(&loaded, token)?;
                let step = &mut loaded.steps[loaded.index];
                let Some(claim) = step.claim.as_mut() else {
                    return Err(wrong_claim(&loaded, token));
                };
                claim.lease_until = now.checked_add(lease).map_err(|err| Error::InvalidInput {
                    what: "lease",
                    value: format!("{lease:#}"),
                    expected: err.to_string(),
                })?;
                let claim = claim.clone();
                let message = Some(format!("lease until {}", claim.lease_until));
                commit_change(
                    tables,
                    &mut loaded,
                    StepStatus::Running,
                    EventKind::LeaseRenewed,
                    caller,
                    now,
                    message,
                )?;
                Ok(claim)
            })
        })
    }

    /// Completes a running step; only the holder of its claim may.
    ///
    /// `output` is kept as the step's output tail (its last [`MAX_OUTPUT_TAIL`] bytes). When
    /// this was the last step to end, the operation finishes in the same transaction.
    ///
    /// # Errors
    ///
    /// [`Error::WrongClaim`] when `token` is not the step's current claim (the step is not
    /// running, or another caller took it over), and the errors of [`Store::start_step`] for
    /// unknown or finished operations.
    pub fn complete_step(
        &self,
        operation: OperationId,
        order: u32,
        token: &str,
        output: Option<&str>,
        caller: &Caller,
    ) -> Result<Step> {
        self.finish_step(operation, order, token, None, output, caller)
    }

    /// Fails a running step with `error`; only the holder of its claim may. The step may then
    /// be retried.
    ///
    /// # Errors
    ///
    /// As [`Store::complete_step`], and [`Error::InvalidInput`] for a blank error message.
    pub fn fail_step(
        &self,
        operation: OperationId,
        order: u32,
        token: &str,
        error: &str,
        output: Option<&str>,
        caller: &Caller,
    ) -> Result<Step> {
        if error.trim().is_empty() {
            return Err(Error::InvalidInput {
                what: "error message",
                value: error.to_owned(),
                expected: "a description of what failed".into(),
            });
        }
        self.finish_step(operation, order, token, Some(error), output, caller)
    }

    fn finish_step(
        &self,
        operation: OperationId,
        order: u32,
        token: &str,
        error: Option<&str>,
        output: Option<&str>,
        caller: &Caller,
    ) -> Result<Step> {
        self.guarded("changing a step", || {
            caller.validate()?;
            let verb = if error.is_some() {
                "failure"
            } else {
                "completion"
            };
            let call = format!("{verb} of step {order} of operation {operation}");
            let now = self.now();
            let token = token.to_owned();
            let error = error.map(str::to_owned);
            let output = output.map(str::to_owned);
            let step = self.write_request(caller, &call, &token.clone(), move |tables, caller| {
                finish_in(
                    tables,
                    operation,
                    order,
                    &token,
                    error.as_deref(),
                    output.as_deref(),
                    caller,
                    now,
                )
            })?;
            tracing::debug!(operation_id = operation.0, step_order = order, status = %step.status, "finished step");
            Ok(step)
        })
    }

    /// Skips an optional step that is pending or failed, recording `reason`.
    ///
    /// # Errors
    ///
    /// - [`Error::RequiredStep`] when the step is required.
    /// - [`Error::InvalidTransition`] when the step is running or has ended.
    /// - [`Error::InvalidInput`] for a blank reason, and the errors of [`Store::start_step`]
    ///   for unknown or finished operations.
    pub fn skip_step(
        &self,
        operation: OperationId,
        order: u32,
        reason: &str,
        caller: &Caller,
    ) -> Result<Step> {
        self.guarded("changing a step", || {
            caller.validate()?;
            if reason.trim().is_empty() {
                return Err(Error::InvalidInput {
                    what: "skip reason",
                    value: reason.to_owned(),
                    expected: "a reason why the step is not needed".into(),
                });
            }
            // Seeding alone gives this reason, and an operation whose skips all have it counts
            // as not started yet.
            if reason.trim().starts_with(crate::schedule::NOT_SCHEDULED) {
                return Err(Error::InvalidInput {
                    what: "skip reason",
                    value: reason.to_owned(),
                    expected: format!(
                        "a reason that does not start with `{}`, which seeding gives steps that \
                         are not scheduled for the date",
                        crate::schedule::NOT_SCHEDULED
                    ),
                });
            }
            let call = format!("skip of step {order} of operation {operation}");
            let now = self.now();
            let reason = head(reason, MAX_MESSAGE).to_owned();
            self.write_request(caller, &call, "", move |tables, caller| {
                let mut loaded = load(tables, operation, order)?;
                let from = loaded.step().status;
                if !matches!(from, StepStatus::Pending | StepStatus::Failed) {
                    return Err(
                        loaded.invalid("skip", "only a pending or failed step can be skipped")
                    );
                }
                if loaded.step().required {
                    return Err(Error::RequiredStep {
                        operation,
                        order,
                        code: loaded.step().code.clone(),
                    });
                }
                if let Some(entry) = property::check_entry(tables, &loaded.operation, caller, now)?
                {
                    property::write_entry(tables, &loaded.operation, entry, caller, now)?;
                }
                let step = &mut loaded.steps[loaded.index];
                step.status = StepStatus::Skipped;
                step.finished_at = Some(now);
                step.actor = Some(caller.actor.clone());
                step.last_error = Some(reason.clone());
                commit_change(
                    tables,
                    &mut loaded,
                    from,
                    EventKind::Skipped,
                    caller,
                    now,
                    Some(reason.clone()),
                )
            })
        })
    }

    /// Returns a failed step to pending so that it can be started again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTransition`] when the step has not failed, and the errors of
    /// [`Store::start_step`] for unknown or finished operations.
    pub fn retry_step(&self, operation: OperationId, order: u32, caller: &Caller) -> Result<Step> {
        self.guarded("changing a step", || {
            caller.validate()?;
            let call = format!("retry of step {order} of operation {operation}");
            let now = self.now();
            self.write_request(caller, &call, "", move |tables, caller| {
                let mut loaded = load(tables, operation, order)?;
                if loaded.step().status != StepStatus::Failed {
                    return Err(loaded.invalid("retry", "only a failed step can be retried"));
                }
                let step = &mut loaded.steps[loaded.index];
                step.status = StepStatus::Pending;
                step.actor = Some(caller.actor.clone());
                commit_change(
                    tables,
                    &mut loaded,
                    StepStatus::Failed,
                    EventKind::Retried,
                    caller,
                    now,
                    None,
                )
            })
        })
    }
}

/// Completes (`error` is `None`) or fails the running step `order` of `operation` under the
/// claim `token`, inside the write transaction of `tables`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_in(
    tables: &mut WriteTables<'_>,
    operation: OperationId,
    order: u32,
    token: &str,
    error: Option<&str>,
    output: Option<&str>,
    caller: &Caller,
    now: Timestamp,
) -> Result<Step> {
    let mut loaded = load(tables, operation, order)?;
    check_claim(&loaded, token)?;
    finish_loaded(tables, &mut loaded, error, output, caller, now)
}

/// Completes or fails the loaded step, whose claim the caller has shown.
pub(crate) fn finish_loaded(
    tables: &mut WriteTables<'_>,
    loaded: &mut Loaded,
    error: Option<&str>,
    output: Option<&str>,
    caller: &Caller,
    now: Timestamp,
) -> Result<Step> {
    let step = &mut loaded.steps[loaded.index];
    step.finished_at = Some(now);
    step.actor = Some(caller.actor.clone());
    step.claim = None;
    step.output_tail = output.map(|text| tail(text, MAX_OUTPUT_TAIL).to_owned());
    let (kind, message) = match error {
        Some(error) => {
            let error = head(error, MAX_MESSAGE).to_owned();
            step.status = StepStatus::Failed;
            step.last_error = Some(error.clone());
            (EventKind::Failed, Some(error))
        }
        None => {
            step.status = StepStatus::Completed;
            (EventKind::Completed, None)
        }
    };
    commit_change(
        tables,
        loaded,
        StepStatus::Running,
        kind,
        caller,
        now,
        message,
    )
}

/// Loads the operation and its steps, rejecting unknown ids, unknown orders and finished
/// operations.
pub(crate) fn load(tables: &WriteTables<'_>, id: OperationId, order: u32) -> Result<Loaded> {
    let operation = tables
        .operation(id)?
        .ok_or_else(|| tables::missing_operation(&tables.steps, id))?;
    if let Some(finished_at) = operation.finished_at {
        return Err(Error::OperationFinished {
            operation: id,
            finished_at,
        });
    }
    let steps = tables.steps(id)?;
    tables::check_plan_steps(&operation, &steps)?;
    let Some(index) = steps.iter().position(|step| step.order == order) else {
        let orders: Vec<String> = steps.iter().map(|step| step.order.to_string()).collect();
        return Err(Error::StepNotFound {
            operation: id,
            order,
            orders: orders.join(", "),
        });
    };
    Ok(Loaded {
        operation,
        steps,
        index,
    })
}

/// Checks that the target step may start now. Returns `Some(reason)` when the start takes over
/// a running step whose holder is gone.
fn start_check(loaded: &Loaded, now: Timestamp) -> Result<Option<String>> {
    let step = loaded.step();
    match step.status {
        StepStatus::Pending => {}
        StepStatus::Running => {
            let Some(claim) = &step.claim else {
                return Ok(Some("the running step had no claim".into()));
            };
            return match holder_gone(claim, now) {
                Some(reason) => Ok(Some(format!("took over from {}: {reason}", holder(claim)))),
                None => Err(Error::ClaimHeld {
                    operation: loaded.operation.id,
                    order: step.order,
                    holder: holder(claim),
                    lease_until: claim.lease_until,
                }),
            };
        }
        StepStatus::Failed => {
            return Err(loaded.invalid("start", "retry it first to return it to pending"));
        }
        StepStatus::Completed | StepStatus::Skipped => {
            return Err(loaded.invalid("start", "it has ended and cannot run again"));
        }
    }
    let lower = &loaded.steps[..loaded.index];
    if let Some(blocking) = lower
        .iter()
        .find(|other| other.required && !other.status.is_done())
    {
        return Err(Error::StepOutOfOrder {
            operation: loaded.operation.id,
            order: step.order,
            blocking_order: blocking.order,
            blocking_code: blocking.code.clone(),
            blocking_status: blocking.status,
        });
    }
    if let Some(running) = loaded
        .steps
        .iter()
        .find(|other| other.order != step.order && other.status == StepStatus::Running)
    {
        let (holder_name, lease_until) = running
            .claim
            .as_ref()
            .map_or(("nobody".to_owned(), now), |claim| {
                (holder(claim), claim.lease_until)
            });
        return Err(Error::AnotherStepRunning {
            operation: loaded.operation.id,
            order: step.order,
            running_order: running.order,
            holder: holder_name,
            lease_until,
        });
    }
    Ok(None)
}

/// Returns why the claim's holder counts as gone, or `None` while it may still be working.
pub(crate) fn holder_gone(claim: &Claim, now: Timestamp) -> Option<String> {
    if claim.lease_until <= now {
        return Some(format!("its lease ended at {}", claim.lease_until));
    }
    let process = claim.process.as_ref()?;
    match process::is_alive(process) {
        Some(false) => Some(format!(
            "process {} on {} no longer exists",
            process.pid, process.host
        )),
        _ => None,
    }
}

/// Describes a claim's holder for messages: the actor, and the process where known.
pub(crate) fn holder(claim: &Claim) -> String {
    match &claim.process {
        Some(process) => format!(
            "`{}` (process {} on {})",
            claim.actor, process.pid, process.host
        ),
        None => format!("`{}`", claim.actor),
    }
}

pub(crate) fn check_claim(loaded: &Loaded, token: &str) -> Result<()> {
    let step = loaded.step();
    match &step.claim {
        Some(claim) if step.status == StepStatus::Running && claim.token == token => Ok(()),
        _ => Err(wrong_claim(loaded, token)),
    }
}

fn wrong_claim(loaded: &Loaded, token: &str) -> Error {
    let step = loaded.step();
    Error::WrongClaim {
        operation: loaded.operation.id,
        order: step.order,
        status: step.status,
        held: step
            .claim
            .as_ref()
            .map(|claim| format!(", claimed by {}", holder(claim)))
            .unwrap_or_default(),
        claim: token.to_owned(),
    }
}

/// Writes the changed target step and its event, then brings the operation's status up to date,
/// finishing it when every step has ended. Returns the step as written.
fn commit_change(
    tables: &mut WriteTables<'_>,
    loaded: &mut Loaded,
    from: StepStatus,
    kind: EventKind,
    caller: &Caller,
    now: Timestamp,
    message: Option<String>,
) -> Result<Step> {
    let id = loaded.operation.id;
    let step = loaded.steps[loaded.index].clone();
    tables.put_step(id, &step)?;
    tables.append_event(
        &loaded.operation,
        Event {
            seq: 0,
            kind,
            step_order: Some(step.order),
            from: Some(from),
            to: Some(step.status),
            actor: caller.actor.clone(),
            at: now,
            message,
        },
    )?;

    let status = OperationStatus::of(&loaded.steps);
    if status == OperationStatus::Completed {
        loaded.operation.finished_at = Some(now);
    }
    property::after_step(tables, &loaded.operation, &step, caller, now)?;
    if status == loaded.operation.status {
        return Ok(step);
    }
    loaded.operation.status = status;
    if status == OperationStatus::Completed {
        tables.append_operation_event(
            &loaded.operation,
            EventKind::OperationFinished,
            &caller.actor,
            now,
            FINISHED_MESSAGE.into(),
        )?;
        tracing::debug!(operation_id = id.0, "operation finished");
    }
    tables.put_operation(&loaded.operation)?;
    Ok(step)
}

/// Returns a fresh, unguessable claim token: 128 bits from two independently seeded `SipHash`
/// states (std's `RandomState` seeds each from the operating system's randomness).
pub(crate) fn new_token(operation: OperationId, order: u32) -> String {
    let part = |salt: u64| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(salt);
        hasher.write_u64(operation.0);
        hasher.write_u32(order);
        hasher.write_i128(Timestamp::now().as_nanosecond());
        hasher.finish()
    };
    format!("{:016x}{:016x}", part(1), part(2))
}

/// Returns the last `max` bytes of `text`, cut at a character boundary.
pub(crate) fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Returns the first `max` bytes of `text`, cut at a character boundary.
pub(crate) fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_and_head_respect_char_boundaries() {
        let text = "ğüşİöç";
        assert_eq!(tail(text, 3), "ç");
        assert_eq!(head(text, 3), "ğ");
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(head("abc", 10), "abc");
    }

    #[test]
    fn tokens_differ() {
        let a = new_token(OperationId(1), 1);
        let b = new_token(OperationId(1), 1);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
