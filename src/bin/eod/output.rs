//! Output of `eod` on stdout: JSON values for `--json`, tables for people.
//!
//! The JSON structs here are the CLI's schema. They copy only what callers may see from the
//! library's records, which also hold claim tokens and output tails.

use std::io::{self, Write};

use eodstore::runner::RunOutcome;
use eodstore::{
    ActiveOperation, Change, Event, EventKind, Operation, OperationStatus, PropertyState, RunClaim,
    Step, StepStatus,
};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

/// An operation in JSON output. Times serialize as RFC 3339 in UTC.
#[derive(Debug, Serialize)]
pub struct OperationOut<'a> {
    id: u64,
    property: &'a str,
    business_date: Date,
    status: OperationStatus,
    plan: &'a str,
    created_at: Timestamp,
    finished_at: Option<Timestamp>,
}

impl<'a> OperationOut<'a> {
    /// Copies the printable fields of `operation`.
    pub fn new(operation: &'a Operation) -> OperationOut<'a> {
        OperationOut {
            id: operation.id.0,
            property: &operation.property,
            business_date: operation.business_date,
            status: operation.status,
            plan: &operation.plan,
            created_at: operation.created_at,
            finished_at: operation.finished_at,
        }
    }
}

/// A step in JSON output.
#[derive(Debug, Serialize)]
pub struct StepOut<'a> {
    order: u32,
    code: &'a str,
    name: &'a str,
    required: bool,
    status: StepStatus,
    attempts: u32,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    actor: Option<&'a str>,
    last_error: Option<&'a str>,
    /// Whether this call created the step, present only in the results of `open` and `run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<bool>,
    /// Each attempt of the step, oldest first, present only in the result of `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_history: Option<Vec<AttemptOut>>,
}

impl<'a> StepOut<'a> {
    /// Copies the printable fields of `step`. `created` is `None` for calls that seed nothing.
    pub fn new(step: &'a Step, created: Option<bool>) -> StepOut<'a> {
        StepOut {
            order: step.order,
            code: &step.code,
            name: &step.name,
            required: step.required,
            status: step.status,
            attempts: step.attempts,
            started_at: step.started_at,
            finished_at: step.finished_at,
            actor: step.actor.as_deref(),
            last_error: step.last_error.as_deref(),
            created,
            attempt_history: None,
        }
    }

    /// Adds the step's attempts, for `status`.
    pub fn with_attempts(mut self, attempts: Vec<AttemptOut>) -> StepOut<'a> {
        self.attempt_history = Some(attempts);
        self
    }
}

/// The end state of one attempt of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The attempt has not ended.
    Running,
    /// The attempt completed the step.
    Completed,
    /// The attempt failed the step.
    Failed,
    /// Another caller took the step over after this attempt's holder was gone or its lease
    /// ended.
    TakenOver,
}

impl AttemptOutcome {
    /// Returns the name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Running => "running",
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::TakenOver => "taken_over",
        }
    }
}

/// One attempt of a step, derived from the step's audit events.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptOut {
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// Its start time.
    pub started_at: Timestamp,
    /// Its end time, or `None` while it runs.
    pub finished_at: Option<Timestamp>,
    /// Its end state.
    pub outcome: AttemptOutcome,
    /// The actor that started it.
    pub actor: String,
    /// The error of a failed attempt.
    pub error: Option<String>,
}

/// The result of `open`, `run` and `status`: an operation, its steps and, for `run`, the outcome.
/// `status` adds the plan's fingerprint and the property's state.
#[derive(Debug, Serialize)]
pub struct ViewOut<'a> {
    operation: OperationOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_fingerprint: Option<String>,
    /// The property's state, with `null` fields for a property that has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    property: Option<PropertyOut<'a>>,
    steps: Vec<StepOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a RunOutcome>,
}

impl<'a> ViewOut<'a> {
    /// Combines an operation, its steps and a run's outcome.
    pub fn new(
        operation: &'a Operation,
        steps: Vec<StepOut<'a>>,
        outcome: Option<&'a RunOutcome>,
    ) -> ViewOut<'a> {
        ViewOut {
            operation: OperationOut::new(operation),
            plan_fingerprint: None,
            property: None,
            steps,
            outcome,
        }
    }

    /// Adds the plan's fingerprint and the property's state, for `status`.
    pub fn with_context(
        mut self,
        plan_fingerprint: String,
        property: PropertyOut<'a>,
    ) -> ViewOut<'a> {
        self.plan_fingerprint = Some(plan_fingerprint);
        self.property = Some(property);
        self
    }
}

/// A property's state in JSON output. Claim tokens are left out.
#[derive(Debug, Serialize)]
pub struct PropertyOut<'a> {
    property: &'a str,
    business_date: Option<Date>,
    date_source: Option<&'a str>,
    date_changed_at: Option<Timestamp>,
    in_progress: Option<InProgressOut<'a>>,
}

/// The operation in progress at a property.
#[derive(Debug, Serialize)]
struct InProgressOut<'a> {
    operation: u64,
    business_date: Date,
    started_at: Timestamp,
    started_by: &'a str,
    runner: Option<RunnerOut<'a>>,
}

/// The runner running an operation.
#[derive(Debug, Serialize)]
struct RunnerOut<'a> {
    actor: &'a str,
    host: Option<&'a str>,
    pid: Option<u32>,
    since: Timestamp,
    lease_until: Timestamp,
}

impl<'a> PropertyOut<'a> {
    /// Copies the printable fields of `state`. `None` gives a property without a business date
    /// or an operation in progress.
    pub fn new(property: &'a str, state: Option<&'a PropertyState>) -> PropertyOut<'a> {
        let Some(state) = state else {
            return PropertyOut {
                property,
                business_date: None,
                date_source: None,
                date_changed_at: None,
                in_progress: None,
            };
        };
        PropertyOut {
            property: &state.property,
            business_date: state.business_date,
            date_source: state.date_source.as_deref(),
            date_changed_at: state.date_changed_at,
            in_progress: state.active.as_ref().map(InProgressOut::new),
        }
    }
}

impl<'a> InProgressOut<'a> {
    fn new(active: &'a ActiveOperation) -> InProgressOut<'a> {
        InProgressOut {
            operation: active.operation.0,
            business_date: active.business_date,
            started_at: active.started_at,
            started_by: &active.started_by,
            runner: active.runner.as_ref().map(RunnerOut::new),
        }
    }
}

impl<'a> RunnerOut<'a> {
    fn new(runner: &'a RunClaim) -> RunnerOut<'a> {
        let process = runner.claim.process.as_ref();
        RunnerOut {
            actor: &runner.claim.actor,
            host: process.map(|process| process.host.as_str()),
            pid: process.map(|process| process.pid),
            since: runner.since,
            lease_until: runner.claim.lease_until,
        }
    }

    /// Names the runner as the library's messages do: `` `actor` (process PID on HOST)``.
    fn holder(&self) -> String {
        match (self.pid, self.host) {
            (Some(pid), Some(host)) => format!("`{}` (process {pid} on {host})", self.actor),
            _ => format!("`{}`", self.actor),
        }
    }
}

/// The result of `step start`: the claim, its lease and the started step.
#[derive(Debug, Serialize)]
pub struct StartedOut<'a> {
    claim: &'a str,
    lease_until: Timestamp,
    step: StepOut<'a>,
}

impl<'a> StartedOut<'a> {
    /// Combines a claim token, its lease end and the step it claims.
    pub fn new(claim: &'a str, lease_until: Timestamp, step: &'a Step) -> StartedOut<'a> {
        StartedOut {
            claim,
            lease_until,
            step: StepOut::new(step, None),
        }
    }
}

/// The result of `step complete`, `fail`, `skip` and `retry`: the step after the change.
#[derive(Debug, Serialize)]
pub struct ChangedOut<'a> {
    step: StepOut<'a>,
}

impl<'a> ChangedOut<'a> {
    /// Wraps the changed step.
    pub fn new(step: &'a Step) -> ChangedOut<'a> {
        ChangedOut {
            step: StepOut::new(step, None),
        }
    }
}

/// An audit event in JSON output.
#[derive(Debug, Serialize)]
pub struct EventOut<'a> {
    seq: u64,
    kind: EventKind,
    step_order: Option<u32>,
    from: Option<StepStatus>,
    to: Option<StepStatus>,
    actor: &'a str,
    at: Timestamp,
    message: Option<&'a str>,
}

impl<'a> EventOut<'a> {
    /// Copies an event.
    pub fn new(event: &'a Event) -> EventOut<'a> {
        EventOut {
            seq: event.seq,
            kind: event.kind,
            step_order: event.step_order,
            from: event.from,
            to: event.to,
            actor: &event.actor,
            at: event.at,
            message: event.message.as_deref(),
        }
    }
}

/// A committed change in the output of `eod watch`: where it happened, then the event's fields
/// as `eod events` prints them.
#[derive(Debug, Serialize)]
pub struct ChangeOut<'a> {
    change: u64,
    operation: u64,
    property: &'a str,
    business_date: Date,
    #[serde(flatten)]
    event: EventOut<'a>,
}

impl<'a> ChangeOut<'a> {
    /// Copies a change.
    pub fn new(change: &'a Change) -> ChangeOut<'a> {
        ChangeOut {
            change: change.change,
            operation: change.operation.0,
            property: &change.property,
            business_date: change.business_date,
            event: EventOut::new(&change.event),
        }
    }
}

/// Writes `value` as pretty-printed JSON and a newline.
pub fn write_json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// Writes `value` as JSON on one line, for output with one value per line.
pub fn write_json_line(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}

/// Writes the operation's header line and its steps as a table.
pub fn write_view(out: &mut impl Write, view: &ViewOut<'_>) -> io::Result<()> {
    write_operation_line(out, &view.operation)?;
    write_steps(out, &view.steps)
}

/// Writes the result of `status`: the operation's header line, its plan's fingerprint, its
/// property's state, its steps, and each attempt of the steps that ran more than once or failed.
pub fn write_status(out: &mut impl Write, view: &ViewOut<'_>) -> io::Result<()> {
    write_operation_line(out, &view.operation)?;
    if let Some(fingerprint) = &view.plan_fingerprint {
        writeln!(
            out,
            "plan `{}`, fingerprint {fingerprint}",
            view.operation.plan
        )?;
    }
    if let Some(property) = &view.property {
        write_property(out, property)?;
    }
    write_steps(out, &view.steps)?;
    for step in &view.steps {
        let Some(attempts) = &step.attempt_history else {
            continue;
        };
        let failed = attempts
            .iter()
            .any(|attempt| attempt.outcome == AttemptOutcome::Failed);
        if attempts.len() > 1 || failed {
            writeln!(out)?;
            writeln!(
                out,
                "attempts of step {} `{}` ({}):",
                step.order, step.code, step.name
            )?;
            write_attempts(out, attempts)?;
        }
    }
    Ok(())
}

/// Writes attempts as a table, one row each, indented under their step.
fn write_attempts(out: &mut impl Write, attempts: &[AttemptOut]) -> io::Result<()> {
    let actor_width = attempts
        .iter()
        .map(|attempt| attempt.actor.chars().count())
        .chain(["ACTOR".len()])
        .max()
        .unwrap_or_default();
    writeln!(
        out,
        "  {:>7}  {:<20}  {:<20}  {:<10}  {:<actor_width$}  ERROR",
        "ATTEMPT", "STARTED", "ENDED", "OUTCOME", "ACTOR"
    )?;
    for attempt in attempts {
        let ended = attempt
            .finished_at
            .map_or_else(|| "running".to_owned(), |at| format!("{at:.0}"));
        let outcome = match attempt.outcome {
            AttemptOutcome::Running => "-",
            other => other.as_str(),
        };
        let line = format!(
            "  {:>7}  {:<20}  {:<20}  {:<10}  {:<actor_width$}  {}",
            attempt.attempt,
            format!("{:.0}", attempt.started_at),
            ended,
            outcome,
            attempt.actor,
            attempt
                .error
                .as_deref()
                .map(escape_controls)
                .unwrap_or_default()
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Writes a property's state: one line with its business date and where it came from, and one
/// with its operation in progress.
pub fn write_property(out: &mut impl Write, property: &PropertyOut<'_>) -> io::Result<()> {
    match property.business_date {
        Some(date) => {
            write!(
                out,
                "property `{}`: business date {date}",
                property.property
            )?;
            if let Some(source) = property.date_source {
                write!(out, ", {source}")?;
            }
            match property.date_changed_at {
                Some(at) => writeln!(out, " at {at:.0}")?,
                None => writeln!(out)?,
            }
        }
        None => writeln!(
            out,
            "property `{}`: no business date set, so operations of every date may start",
            property.property
        )?,
    }
    let Some(active) = &property.in_progress else {
        return writeln!(out, "  in progress: none");
    };
    write!(
        out,
        "  in progress: operation {} (business date {}), started at {:.0} by `{}`",
        active.operation, active.business_date, active.started_at, active.started_by
    )?;
    match &active.runner {
        Some(runner) => writeln!(
            out,
            ", run by {} since {:.0}, lease until {:.0}",
            runner.holder(),
            runner.since,
            runner.lease_until
        ),
        None => writeln!(out, ", no runner"),
    }
}

/// Writes one change as one line: time, property, business date, operation, event kind, step,
/// status change, actor and message. Control characters in the message are escaped.
pub fn write_change(out: &mut impl Write, change: &ChangeOut<'_>) -> io::Result<()> {
    let event = &change.event;
    write!(
        out,
        "{:.0}  {}  {}  operation {}  {}",
        event.at,
        change.property,
        change.business_date,
        change.operation,
        kind_name(event.kind)
    )?;
    if let Some(order) = event.step_order {
        write!(out, "  step {order}")?;
    }
    let status_change = status_change(event.from, event.to);
    if status_change != "-" {
        write!(out, "  {status_change}")?;
    }
    write!(out, "  by `{}`", event.actor)?;
    if let Some(message) = event.message {
        write!(out, ": {}", escape_controls(message))?;
    }
    writeln!(out)
}

/// Writes one line that names the operation, its property, date, plan and status.
fn write_operation_line(out: &mut impl Write, operation: &OperationOut<'_>) -> io::Result<()> {
    write!(
        out,
        "operation {}: property `{}`, business date {}, plan `{}`, status {}",
        operation.id, operation.property, operation.business_date, operation.plan, operation.status
    )?;
    match operation.finished_at {
        Some(finished_at) => writeln!(out, ", finished at {finished_at:.0}"),
        None => writeln!(out),
    }
}

/// Writes steps as a table with the columns order, code, status, attempts, required and name.
/// The name comes last and is printed as stored.
pub fn write_steps(out: &mut impl Write, steps: &[StepOut<'_>]) -> io::Result<()> {
    let code_width = steps
        .iter()
        .map(|step| step.code.chars().count())
        .chain(["CODE".len()])
        .max()
        .unwrap_or_default();
    writeln!(
        out,
        "{:>5}  {:<code_width$}  {:<9}  {:>8}  {:<8}  NAME",
        "ORDER", "CODE", "STATUS", "ATTEMPTS", "REQUIRED"
    )?;
    for step in steps {
        writeln!(
            out,
            "{:>5}  {:<code_width$}  {:<9}  {:>8}  {:<8}  {}",
            step.order,
            step.code,
            step.status.as_str(),
            step.attempts,
            if step.required { "yes" } else { "no" },
            step.name
        )?;
    }
    Ok(())
}

/// Writes operations as a table, one row each.
pub fn write_history(out: &mut impl Write, operations: &[OperationOut<'_>]) -> io::Result<()> {
    let id_width = operations
        .iter()
        .map(|operation| operation.id.to_string().len())
        .chain(["ID".len()])
        .max()
        .unwrap_or_default();
    writeln!(
        out,
        "{:>id_width$}  {:<13}  {:<9}  {:<20}  {:<20}  PLAN",
        "ID", "BUSINESS DATE", "STATUS", "CREATED", "FINISHED"
    )?;
    for operation in operations {
        let finished = operation
            .finished_at
            .map_or_else(|| "-".to_owned(), |at| format!("{at:.0}"));
        writeln!(
            out,
            "{:>id_width$}  {:<13}  {:<9}  {:<20}  {:<20}  {}",
            operation.id,
            operation.business_date.to_string(),
            operation.status.as_str(),
            format!("{:.0}", operation.created_at),
            finished,
            operation.plan
        )?;
    }
    Ok(())
}

/// Writes events as a table, one row each. Control characters in messages are escaped, so every
/// event stays on one line.
pub fn write_events(out: &mut impl Write, events: &[EventOut<'_>]) -> io::Result<()> {
    let kinds: Vec<String> = events.iter().map(|event| kind_name(event.kind)).collect();
    let kind_width = kinds
        .iter()
        .map(String::len)
        .chain(["KIND".len()])
        .max()
        .unwrap_or_default();
    let actor_width = events
        .iter()
        .map(|event| event.actor.chars().count())
        .chain(["ACTOR".len()])
        .max()
        .unwrap_or_default();
    writeln!(
        out,
        "{:>4}  {:<20}  {:<kind_width$}  {:>4}  {:<21}  {:<actor_width$}  MESSAGE",
        "SEQ", "AT", "KIND", "STEP", "CHANGE", "ACTOR"
    )?;
    for (event, kind) in events.iter().zip(&kinds) {
        let step = event
            .step_order
            .map_or_else(|| "-".to_owned(), |order| order.to_string());
        let change = status_change(event.from, event.to);
        let line = format!(
            "{:>4}  {:<20}  {:<kind_width$}  {:>4}  {:<21}  {:<actor_width$}  {}",
            event.seq,
            format!("{:.0}", event.at),
            kind,
            step,
            change,
            event.actor,
            event.message.map(escape_controls).unwrap_or_default()
        );
        // An event without a message would otherwise end in padding.
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Returns a step's status change as `from -> to`, with a side left out when it is unknown, or
/// `-` when the event changes no step.
fn status_change(from: Option<StepStatus>, to: Option<StepStatus>) -> String {
    match (from, to) {
        (Some(from), Some(to)) => format!("{from} -> {to}"),
        (None, Some(to)) => format!("-> {to}"),
        (Some(from), None) => format!("{from} ->"),
        (None, None) => "-".to_owned(),
    }
}

/// Returns an event kind's name as it appears in JSON, such as `operation_created`.
pub fn kind_name(kind: EventKind) -> String {
    // The library derives the snake_case names through serde only, so they are read from there
    // to stay identical to the JSON output.
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{kind:?}"),
    }
}

/// Returns `text` with control characters (newlines, tabs) written as escapes such as `\n`.
fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
