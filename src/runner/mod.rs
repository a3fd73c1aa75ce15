//! Running a plan: a handler per step code, run in order, resumable after a crash.

mod shell;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use serde::Serialize;

pub use shell::{ShellEnvironment, shell_handler};

use crate::error::{Error, Result};
use crate::model::{Claim, Operation, Step, StepStatus};
use crate::plan::Plan;
use crate::process;
use crate::store::{Caller, Opened, Store};

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
    handlers: HashMap<String, Handler<'h>>,
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
        self.handlers.insert(code.to_owned(), Box::new(handler));
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
    /// - [`Error::ClaimHeld`] when another live runner holds a step.
    /// - The errors of [`Store::open_operation`] and of the transitions.
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

        let opened = self
            .store
            .open_operation(property, business_date, self.plan, &self.caller)?;
        progress(&Progress::Opened(&opened));
        let operation_id = opened.operation.id;
        let created = opened.created;
        let orders: Vec<u32> = opened
            .steps
            .iter()
            .map(|seeded| seeded.step.order)
            .collect();

        for order in orders {
            // Read the step afresh: a person may have changed it between runs.
            let view = self.store.view(operation_id)?;
            let Some(step) = view.steps.iter().find(|step| step.order == order) else {
                continue;
            };
            if step.status.is_done() {
                progress(&Progress::AlreadyDone(step));
                continue;
            }
            if !self.handlers.contains_key(&step.code) {
                match self.missing {
                    MissingHandler::Pause => {
                        return self.report(
                            operation_id,
                            created,
                            RunOutcome::Paused {
                                order,
                                code: step.code.clone(),
                            },
                        );
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
                        continue;
                    }
                }
            }
            if step.status == StepStatus::Failed {
                self.store.retry_step(operation_id, order, &self.caller)?;
            }
            let finished = self.run_step(&view.operation, order, &mut progress)?;
            if finished.status == StepStatus::Failed {
                return self.report(
                    operation_id,
                    created,
                    RunOutcome::Failed {
                        order,
                        code: finished.code.clone(),
                        error: finished.last_error.clone().unwrap_or_default(),
                    },
                );
            }
        }
        self.report(operation_id, created, RunOutcome::Completed)
    }

    /// Starts one step, runs its handler while renewing the lease, and records the outcome.
    fn run_step(
        &mut self,
        operation: &Operation,
        order: u32,
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
        let began = Instant::now();
        let outcome = with_renewal(self.store, &self.caller, &context, || handler(&context));
        let elapsed = began.elapsed();

        let token = &started.claim.token;
        let finished = match outcome {
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
        };
        progress(&Progress::Finished {
            step: &finished,
            elapsed,
        });
        Ok(finished)
    }

    fn report(
        &self,
        id: crate::model::OperationId,
        created: bool,
        outcome: RunOutcome,
    ) -> Result<RunReport> {
        let view = self.store.view(id)?;
        Ok(RunReport {
            operation: view.operation,
            steps: view.steps,
            created,
            outcome,
        })
    }
}

/// Runs `work` while a helper thread renews the claim every third of its lease.
fn with_renewal<T>(
    store: &Store,
    caller: &Caller,
    context: &StepContext<'_>,
    work: impl FnOnce() -> T,
) -> T {
    let lease = context
        .claim
        .lease_until
        .duration_since(context.step.started_at.unwrap_or(context.claim.lease_until));
    let interval = Duration::try_from(lease / 3)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(10));
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
            }
        });
        let result = work();
        drop(stop);
        result
    })
}
