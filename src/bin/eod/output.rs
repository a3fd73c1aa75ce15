//! Output of `eod` on stdout: JSON values for `--json`, tables for people.
//!
//! The JSON structs here are the CLI's schema. They copy only what callers may see from the
//! library's records, which also hold claim tokens and output tails.

use std::io::{self, Write};

use eodstore::runner::RunOutcome;
use eodstore::{Event, EventKind, Operation, OperationStatus, Step, StepStatus};
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
        }
    }
}

/// The result of `open`, `run` and `status`: an operation, its steps and, for `run`, the outcome.
#[derive(Debug, Serialize)]
pub struct ViewOut<'a> {
    operation: OperationOut<'a>,
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
            steps,
            outcome,
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

/// Writes `value` as pretty-printed JSON and a newline.
pub fn write_json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// Writes the operation's header line and its steps as a table.
pub fn write_view(out: &mut impl Write, view: &ViewOut<'_>) -> io::Result<()> {
    write_operation_line(out, &view.operation)?;
    write_steps(out, &view.steps)
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
        let change = match (event.from, event.to) {
            (Some(from), Some(to)) => format!("{from} -> {to}"),
            (None, Some(to)) => format!("-> {to}"),
            (Some(from), None) => format!("{from} ->"),
            (None, None) => "-".to_owned(),
        };
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
