//! Running a plan: a handler per step code, run in order, resumable after a crash.

mod shell;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use serde::Serialize;

pub use shell::{ShellEnvironment, shell_handler};

use crate::error::{Error, Result};
use crate::model::{Claim, Operation, OperationId, Step, StepStatus, idempotency_key};
use crate::plan::Plan;
use crate::process;
use crate::store::{Caller, Opened, RunBegin, SideEffects, Store};

/// The input of a handler: the operation, the step and its claim.
#[derive(Debug)]
pub struct StepContext<'a> {
    /// The operation being run.
    pub operation: &'a Operation,
    /// The step, as stored when it was started.
    pub step: &'a Step,
    /// The claim the runner holds (and renews) while the handler works.
    pub claim: &'a Claim,
}

impl StepContext<'_> {
    /// Returns the attempt number, from 1; a retry or a takeover is a new attempt.
    pub fn attempt(&self) -> u32 {
        self.step.attempts
    }

    /// Returns the idempotency key of this attempt, for side effects outside the store; see
    /// [`idempotency_key`] for how to use it.
    pub fn idempotency_key(&self) -> String {
        idempotency_key(self.operation, self.step.order, self.step.attempts)
    }

    /// Returns the idempotency keys of the earlier attempts of this step, oldest first. A
    /// handler queries an outside service for them before it repeats a request, because an
    /// attempt that crashed may have reached the service.
    pub fn earlier_idempotency_keys(&self) -> Vec<String> {
        (1..self.step.attempts)
            .map(|attempt| idempotency_key(self.operation, self.step.order, attempt))
            .collect()
    }
}

impl<E: std::error::Error> From<E> for HandlerError {
    /// Turns any error into a handler error with its message and causes, so that a handler can
    /// use `?` on redb's and its own errors.
    fn from(err: E) -> HandlerError {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        HandlerError::new(message)
    }
}

/// A failed handler's report: the error stored on the step, and the tail of any output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    /// What failed, stored as the step's last error.
    pub message: String,
    /// The output produced before the failure.
    pub output: Option<String>,
}

impl HandlerError {
    /// Creates a handler error with `message` and no output.
    pub fn new(message: impl Into<String>) -> HandlerError {
        HandlerError {
            message: message.into(),
            output: None,
        }
    }
}

/// The result of a handler: the output to keep on success, or why it failed.
pub type HandlerResult = std::result::Result<Option<String>, HandlerError>;

type Handler<'h> = Box<dyn FnMut(&StepContext<'_>) -> HandlerResult + 'h>;
type EffectsHandler<'h> =
    Box<dyn FnMut(&StepContext<'_>, &mut SideEffects<'_>) -> HandlerResult + 'h>;

/// A registered handler: plain, or one that writes the application's tables in the step's
/// completing transaction.
enum Registered<'h> {
    Plain(Handler<'h>),
    Effects(EffectsHandler<'h>),
}

/// The runner's treatment of a step that has no handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissingHandler {
    /// A required step without a handler is an error before anything starts; an optional one is
    /// skipped with the reason "no handler registered". The default.
    #[default]
    Reject,
    /// The run pauses at the first step without a handler, which a person then runs by hand
    /// (start and complete, or skip); the next run resumes after it.
    Pause,
}

/// An event reported to the progress callback.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// The operation was opened and seeded.
    Opened(&'a Opened),
    /// A step had already ended before this run, and is passed over.
    AlreadyDone(&'a Step),
    /// A step was started; `took_over_from` names the previous holder of a takeover.
    Started {
        /// The step as started.
        step: &'a Step,
        /// The previous holder, when the start took a running step over.
        took_over_from: Option<&'a str>,
    },
    /// A step ended (completed, failed or skipped) after `elapsed`.
    Finished {
        /// The step as stored after it ended.
        step: &'a Step,
        /// How long the handler ran.
        elapsed: Duration,
    },
    /// A failed step will be retried after `delay`, under its retry policy.
    Retrying {
        /// The failed step.
        step: &'a Step,
        /// The attempt of this run that comes next, from 2.
        attempt: u32,
        /// The policy's most attempts in one run.
        max_attempts: u32,
        /// The wait before that attempt.
        delay: Duration,
    },
}

/// The end state of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunOutcome {
    /// Every step is completed or skipped; the operation is finished.
    Completed,
    /// A step failed; the run stopped there. Running again retries it.
    Failed {
        /// The failed step's order.
        order: u32,
        /// Its code.
        code: String,
        /// The handler's error.
        error: String,
    },
    /// The run reached a step without a handler, under [`MissingHandler::Pause`].
    Paused {
        /// The manual step's order.
        order: u32,
        /// Its code.
        code: String,
    },
    /// The operation had finished before this run; nothing was changed.
    AlreadyFinished {
        /// When it finished.
        finished_at: jiff::Timestamp,
        /// The actor that finished it.
        finished_by: String,
    },
}

impl RunOutcome {
    /// Returns whether the operation is finished: completed by this run or before it.
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            RunOutcome::Completed | RunOutcome::AlreadyFinished { .. }
        )
    }

    /// Describes the outcome in a few words, as the `run_ended` event records it.
    fn describe(&self) -> String {
        match self {
            RunOutcome::Completed => "completed".to_owned(),
            RunOutcome::Failed { order, code, .. } => {
                format!("stopped: step {order} (`{code}`) failed")
            }
            RunOutcome::Paused { order, code } => {
                format!("paused at manual step {order} (`{code}`)")
            }
            RunOutcome::AlreadyFinished { .. } => "already finished".to_owned(),
        }
    }
}

/// The result of [`Runner::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The operation after the run.
    pub operation: Operation,
    /// Its steps after the run, in order.
    pub steps: Vec<Step>,
    /// Whether `operation` was created by this run.
    pub created: bool,
    /// How the run ended.
    pub outcome: RunOutcome,
}

/// Runs a plan's steps in order with a handler per step code.
///
/// A run opens (and seeds) the operation, passes over steps that have ended, retries a step that
/// failed in an earlier run, takes over a step left running by a crashed runner process, and
/// runs the rest in order until one fails. Calling it again resumes. While a handler works, a
/// helper thread renews the claim's lease, so a slow step is never taken from a live runner.
///
/// ```
/// # fn main() -> eodstore::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use eodstore::runner::{Runner, RunOutcome};
/// use eodstore::{Caller, Plan, Store, parse_business_date};
///
/// let store = Store::open_or_create(dir.path().join("eod.redb"))?;
/// let plan = Plan::standard();
/// let mut runner = Runner::new(&store, &plan, Caller::new("night-auditor"));
/// for step in plan.steps() {
///     runner.handler(&step.code, |ctx| Ok(Some(format!("{} done", ctx.step.code))));
/// }
/// let report = runner.run("grand-hotel", parse_business_date("2026-12-04")?, |_| {})?;
/// assert_eq!(report.outcome, RunOutcome::Completed);
/// # Ok(())
/// # }
/// ```
pub struct Runner<'s, 'h> {
    store: &'s Store,
    plan: &'s Plan,
    caller: Caller,
    handlers: HashMap<String, Registered<'h>>,
    missing: MissingHandler,
}

impl std::fmt::Debug for Runner<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("plan", &self.plan.name())
            .field("caller", &self.caller)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("missing", &self.missing)
            .finish_non_exhaustive()
    }
}

impl<'s, 'h> Runner<'s, 'h> {
    /// Creates a runner of `plan` on `store`. Its claims record the current process, so a claim
    /// left by a crash of this process can be taken over at once.
    pub fn new(store: &'s Store, plan: &'s Plan, caller: Caller) -> Runner<'s, 'h> {
        // A run makes many calls, so one request id cannot name them all.
        let mut caller = caller.process(process::current_process());
        caller.request_id = None;
        Runner {
            store,
            plan,
            caller,
            handlers: HashMap::new(),
            missing: MissingHandler::Reject,
        }
    }

    /// Registers the handler of the step with `code`, replacing any earlier one.
    pub fn handler(
        &mut self,
        code: &str,
        handler: impl FnMut(&StepContext<'_>) -> HandlerResult + 'h,
    ) -> &mut Self {
        self.handlers
            .insert(code.to_owned(), Registered::Plain(Box::new(handler)));
        self
    }

    /// Registers the handler of the step with `code` as one with side effects in the store's
    /// file, replacing any earlier handler. It runs inside the write transaction that completes
    /// the step and writes the application's tables through [`SideEffects`]. So its writes and
    /// the completion commit together or not at all (see [`Store::complete_step_with`]).
    ///
    /// It has the file's only write transaction while it runs, so every other writer waits.
    /// Keep it short, and do slow work in a plain handler of an earlier step.
    pub fn handler_with_effects(
        &mut self,
        code: &str,
        handler: impl FnMut(&StepContext<'_>, &mut SideEffects<'_>) -> HandlerResult + 'h,
    ) -> &mut Self {
        self.handlers
            .insert(code.to_owned(), Registered::Effects(Box::new(handler)));
        self
    }

    /// Sets what happens at a step without a handler (default [`MissingHandler::Reject`]).
    pub fn on_missing_handler(&mut self, missing: MissingHandler) -> &mut Self {
        self.missing = missing;
        self
    }

    /// Runs the operation of `property` on `business_date`, reporting each step to `progress`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidInput`] before anything starts, when a handler was registered for a
    ///   code that no step of the plan has.
    /// - [`Error::MissingHandler`] before anything starts, when a required step has no handler
    ///   under [`MissingHandler::Reject`].
    /// - [`Error::AlreadyRunning`] when another live runner runs the operation; the error names
    ///   it and when it began.
    /// - [`Error::NotBusinessDate`] when the property has a business date and `business_date`
    ///   is another, without [`Caller::override_business_date`].
    /// - [`Error::PropertyBusy`] when another operation of the property is in progress.
    /// - [`Error::ClaimHeld`] when a person has claimed a step and the claim is live.
    /// - The errors of [`Store::open_operation`] and of the transitions.
    ///
    /// A rejected run writes nothing, not even the operation. A run of an operation that has
    /// finished changes nothing and ends with [`RunOutcome::AlreadyFinished`].
    ///
    /// A handler's failure is not an error: it ends the run with [`RunOutcome::Failed`].
    pub fn run(
        &mut self,
        property: &str,
        business_date: Date,
        mut progress: impl FnMut(&Progress<'_>),
    ) -> Result<RunReport> {
        let mut unknown: Vec<&String> = self
            .handlers
            .keys()
            .filter(|code| self.plan.step(code).is_none())
            .collect();
        unknown.sort();
        if let Some(code) = unknown.first() {
            let codes: Vec<&str> = self
                .plan
                .steps()
                .iter()
                .map(|step| step.code.as_str())
                .collect();
            return Err(Error::InvalidInput {
                what: "handler code",
                value: (*code).clone(),
                expected: format!(
                    "a step code of plan `{}`: {}; fix the code or remove the handler",
                    self.plan.name(),
                    codes.join(", ")
                ),
            });
        }
        if self.missing == MissingHandler::Reject
            && let Some(step) = self
                .plan
                .steps()
                .iter()
                .find(|step| step.required && !self.handlers.contains_key(&step.code))
        {
            return Err(Error::MissingHandler {
                order: step.order,
                code: step.code.clone(),
            });
        }

        let (opened, begun) =
            self.store
                .begin_run(property, business_date, self.plan, &self.caller)?;
        progress(&Progress::Opened(&opened));
        let operation_id = opened.operation.id;
        let created = opened.created;
        let runner = match begun {
            RunBegin::Running(runner) => runner,
            RunBegin::Finished { at, by } => {
                for seeded in &opened.steps {
                    progress(&Progress::AlreadyDone(&seeded.step));
                }
                // An operation this run created can only have finished at seeding, when no
                // step was scheduled for the date: this run completed it.
                let outcome = if created {
                    RunOutcome::Completed
                } else {
                    RunOutcome::AlreadyFinished {
                        finished_at: at,
                        finished_by: by,
                    }
                };
                return self.report(operation_id, created, outcome);
            }
        };
        let token = runner.claim.token.clone();
        let outcome = self.run_steps(&opened, &token, &mut progress);
        let described = match &outcome {
            Ok(outcome) => outcome.describe(),
            Err(err) => format!("stopped by an error: {err}"),
        };
        if let Err(err) = self
            .store
            .end_run(operation_id, &token, &described, &self.caller)
        {
            tracing::warn!(operation_id = operation_id.0, error = %err, "could not end a run");
        }
        self.report(operation_id, created, outcome?)
    }

    /// Runs the steps of an opened operation in order, under the runner's claim `token`.
    fn run_steps(
        &mut self,
        opened: &Opened,
        token: &str,
        progress: &mut impl FnMut(&Progress<'_>),
    ) -> Result<RunOutcome> {
        let operation_id = opened.operation.id;
        let orders: Vec<u32> = opened
            .steps
            .iter()
            .map(|seeded| seeded.step.order)
            .collect();

        for order in orders {
            // Attempts of this step made by this run; a retry policy counts these.
            let mut attempts = 0;
            loop {
                // Read the step afresh: a person may have changed it between runs.
                let view = self.store.view(operation_id)?;
                let Some(step) = view.steps.iter().find(|step| step.order == order) else {
                    break;
                };
                if step.status.is_done() {
                    if attempts == 0 {
                        progress(&Progress::AlreadyDone(step));
                    }
                    break;
                }
                if !self.handlers.contains_key(&step.code) {
                    match self.missing {
                        MissingHandler::Pause => {
                            return Ok(RunOutcome::Paused {
                                order,
                                code: step.code.clone(),
                            });
                        }
                        MissingHandler::Reject => {
                            let skipped = self.store.skip_step(
                                operation_id,
                                order,
                                "no handler registered",
                                &self.caller,
                            )?;
                            progress(&Progress::Finished {
                                step: &skipped,
                                elapsed: Duration::ZERO,
                            });
                            break;
                        }
                    }
                }
                if step.status == StepStatus::Failed {
                    let max_attempts = self
                        .plan
                        .step(&step.code)
                        .and_then(|planned| planned.retry)
                        .map_or(1, |policy| policy.max_attempts());
                    if attempts >= max_attempts {
                        return Ok(RunOutcome::Failed {
                            order,
                            code: step.code.clone(),
                            error: step.last_error.clone().unwrap_or_default(),
                        });
                    }
                    if attempts > 0 {
                        self.wait_to_retry(&view.operation, step, attempts + 1, token, progress);
                    }
                    self.store.retry_step(operation_id, order, &self.caller)?;
                }
                self.run_step(&view.operation, order, token, progress)?;
                attempts += 1;
            }
        }
        Ok(RunOutcome::Completed)
    }

    /// Waits the retry policy's delay before attempt `attempt` of a failed step, renewing the
    /// runner's claim meanwhile.
    fn wait_to_retry(
        &self,
        operation: &Operation,
        step: &Step,
        attempt: u32,
        token: &str,
        progress: &mut impl FnMut(&Progress<'_>),
    ) {
        let Some(policy) = self.plan.step(&step.code).and_then(|planned| planned.retry) else {
            return;
        };
        let delay = policy.delay_before(attempt);
        progress(&Progress::Retrying {
            step,
            attempt,
            max_attempts: policy.max_attempts(),
            delay,
        });
        tracing::info!(
            operation_id = operation.id.0,
            step_order = step.order,
            attempt,
            delay_seconds = delay.as_secs_f64(),
            "retrying a failed step"
        );
        let interval = renewal_interval(self.caller.lease.unwrap_or(self.store.default_lease()));
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(interval));
            if let Err(err) = self.store.renew_run(operation.id, token, &self.caller) {
                tracing::warn!(operation_id = operation.id.0, error = %err, "could not renew a run");
            }
        }
    }

    /// Runs the operation of `property` for every business date from the property's current
    /// one through `until`, in order, each as [`Runner::run`] does: the catch-up of missed
    /// days. Each operation's business-date roll advances the date to the next. The catch-up
    /// stops at the first run that does not finish its operation, whose report is the last
    /// one returned. A current date after `until` returns no reports.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidInput`] when the property has no business date (set one first), when
    ///   the operation of its business date had finished already (the date was set back to a
    ///   closed day), or when a finished run did not advance it (the plan lacks a completed
    ///   [`ROLL_STEP`](crate::ROLL_STEP) step). The days closed before such an error stay
    ///   closed.
    /// - The errors of [`Runner::run`].
    pub fn run_until(
        &mut self,
        property: &str,
        until: Date,
        mut progress: impl FnMut(&Progress<'_>),
    ) -> Result<Vec<RunReport>> {
        let business_date = |store: &Store| -> Result<Option<Date>> {
            Ok(store
                .property(property)?
                .and_then(|state| state.business_date))
        };
        let mut current = business_date(self.store)?.ok_or_else(|| Error::InvalidInput {
            what: "property for a catch-up",
            value: property.to_owned(),
            expected: format!(
                "property `{property}` has no business date to catch up from; set one with \
                 `eod property set-date` (`Store::set_business_date`), then catch up"
            ),
        })?;
        let mut reports = Vec::new();
        while current <= until {
            let report = self.run(property, current, &mut progress)?;
            let finished = report.outcome.is_finished();
            let operation = report.operation.id;
            let already = match &report.outcome {
                RunOutcome::AlreadyFinished { finished_at, .. } => Some(*finished_at),
                _ => None,
            };
            reports.push(report);
            if !finished {
                break;
            }
            let next = business_date(self.store)?.filter(|next| *next > current);
            let Some(next) = next else {
                return Err(match already {
                    // The date was set back to a day whose operation had finished.
                    Some(finished_at) => Error::InvalidInput {
                        what: "business date for a catch-up",
                        value: current.to_string(),
                        expected: format!(
                            "a date whose operation has not finished, but operation \
                             {operation} of `{property}` on {current} finished at \
                             {finished_at}; set the business date to the first day that is \
                             not closed (`eod property set-date`), then catch up"
                        ),
                    },
                    None => Error::InvalidInput {
                        what: "plan for a catch-up",
                        value: self.plan.name().to_owned(),
                        expected: format!(
                            "a plan whose `{}` step rolls the business date; operation \
                             {operation} finished and the business date of `{property}` \
                             stayed {current}",
                            crate::store::ROLL_STEP
                        ),
                    },
                });
            };
            current = next;
        }
        Ok(reports)
    }

    /// Starts one step, runs its handler, and records the outcome.
    fn run_step(
        &mut self,
        operation: &Operation,
        order: u32,
        run_token: &str,
        progress: &mut impl FnMut(&Progress<'_>),
    ) -> Result<Step> {
        let started = self.store.start_step(operation.id, order, &self.caller)?;
        progress(&Progress::Started {
            step: &started.step,
            took_over_from: started.took_over_from.as_deref(),
        });
        let Some(handler) = self.handlers.get_mut(&started.step.code) else {
            return Err(Error::MissingHandler {
                order,
                code: started.step.code.clone(),
            });
        };
        let context = StepContext {
            operation,
            step: &started.step,
            claim: &started.claim,
        };
        let token = &started.claim.token;
        let began = Instant::now();
        let finished = match handler {
            Registered::Effects(handler) => self.store.complete_step_with(
                operation.id,
                order,
                token,
                &self.caller,
                |effects| handler(&context, effects),
            )?,
            Registered::Plain(handler) => {
                let outcome = with_renewal(self.store, &self.caller, &context, run_token, || {
                    handler(&context)
                });
                match outcome {
                    Ok(output) => self.store.complete_step(
                        operation.id,
                        order,
                        token,
                        output.as_deref(),
                        &self.caller,
                    )?,
                    Err(failure) => self.store.fail_step(
                        operation.id,
                        order,
                        token,
                        &failure.message,
                        failure.output.as_deref(),
                        &self.caller,
                    )?,
                }
            }
        };
        progress(&Progress::Finished {
            step: &finished,
            elapsed: began.elapsed(),
        });
        Ok(finished)
    }

    fn report(&self, id: OperationId, created: bool, outcome: RunOutcome) -> Result<RunReport> {
        let view = self.store.view(id)?;
        Ok(RunReport {
            operation: view.operation,
            steps: view.steps,
            created,
            outcome,
        })
    }
}

/// Returns how often a claim of `lease` is renewed: every third of it, between 10 ms and 1 s
/// when the lease is unusable.
fn renewal_interval(lease: jiff::SignedDuration) -> Duration {
    Duration::try_from(lease / 3)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(10))
}

/// Runs `work` while a helper thread renews the step's claim and the runner's claim every third
/// of the step's lease.
fn with_renewal<T>(
    store: &Store,
    caller: &Caller,
    context: &StepContext<'_>,
    run_token: &str,
    work: impl FnOnce() -> T,
) -> T {
    let lease = context
        .claim
        .lease_until
        .duration_since(context.step.started_at.unwrap_or(context.claim.lease_until));
    let interval = renewal_interval(lease);
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                let renewed = store.renew_claim(
                    context.operation.id,
                    context.step.order,
                    &context.claim.token,
                    caller,
                );
                if let Err(err) = renewed {
                    tracing::warn!(
                        operation_id = context.operation.id.0,
                        step_order = context.step.order,
                        error = %err,
                        "could not renew the lease of a running step"
                    );
                }
                if let Err(err) = store.renew_run(context.operation.id, run_token, caller) {
                    tracing::warn!(
                        operation_id = context.operation.id.0,
                        error = %err,
                        "could not renew the lease of a run"
                    );
                }
            }
        });
        let result = work();
        drop(stop);
        result
    })
}
