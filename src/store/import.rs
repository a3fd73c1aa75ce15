//! Writing an imported CSV export: every operation, step and event of one file in one write
//! transaction.
//!
//! An imported operation gets the event `operation_created`, then one `imported` event without a
//! step that names the input and the source operation ids. Then each step gets an `imported`
//! event that moves it from pending to its imported status. Last comes `operation_finished`
//! when every step is completed or skipped. The events carry the import's time and actor. The
//! source's times, actor and error are kept on the steps. An imported running, completed or
//! failed step counts one attempt.
//!
//! Imported steps are stored as the source recorded them, even where eodstore's own rules would
//! not have let them happen, such as a later step completed while an earlier one is pending.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::civil::Date;
use redb::ReadableTable;
use serde::Serialize;

use super::tables::{self, WriteTables, day_key};
use super::{Caller, Store};
use crate::error::{Error, Result};
use crate::import::{IMPORTED_PLAN, ImportBatch, ImportedOperation};
use crate::model::{
    Event, EventKind, Operation, OperationId, OperationStatus, PlanIdentityStep, Step, StepStatus,
};

/// The separator of several source ids in one `sources` entry. Source ids have no control
/// characters, so it cannot occur inside one.
const SOURCE_ID_SEPARATOR: char = '\n';

/// The result of [`Store::import_batch`] and [`Store::dry_run_import`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    /// Whether the import committed a transaction: `false` for a dry run, and for an import
    /// that found everything present and so had nothing to write.
    pub committed: bool,
    /// The number of operations created.
    pub operations_created: u64,
    /// The number of operations that existed already and were left as stored.
    pub operations_present: u64,
    /// The number of steps created.
    pub steps_created: u64,
    /// The number of imported steps whose key existed already, left as stored.
    pub steps_present: u64,
    /// Each imported operation, in the batch's order.
    pub operations: Vec<ImportedOperationOutcome>,
}

/// The import's result for one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedOperationOutcome {
    /// The operation's id in this store.
    pub id: OperationId,
    /// The property.
    pub property: String,
    /// The business date.
    pub business_date: Date,
    /// The source operation ids.
    pub source_ids: Vec<String>,
    /// Whether the import created it; `false` when it existed.
    pub created: bool,
    /// The number of its steps the import created.
    pub steps_created: u64,
    /// The number of its imported steps that existed already.
    pub steps_present: u64,
}

impl Store {
    /// Imports a parsed CSV export in one write transaction: every operation of the batch is
    /// created with its steps and events, or nothing is written.
    ///
    /// An operation that exists for the property and business date is left as stored, its
    /// source ids included: its imported steps count as present. So importing the same batch
    /// again writes nothing, and the outcome has no operation or step created.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidInput`] for an invalid actor, and when an existing operation lacks a
    ///   step order of the batch, because adding a step would change the operation's plan.
    ///   Nothing is written.
    /// - [`Error::Busy`] when another process holds the write lock past the write timeout.
    /// - [`Error::Storage`] and [`Error::Decode`] when the file fails.
    pub fn import_batch(&self, batch: &ImportBatch, caller: &Caller) -> Result<ImportOutcome> {
        self.run_import(batch, caller, true)
    }

    /// Runs [`Store::import_batch`] in a write transaction that is then discarded, and returns
    /// what the import would do. It takes the write lock like an import, and checks the same
    /// rules.
    ///
    /// # Errors
    ///
    /// As [`Store::import_batch`].
    pub fn dry_run_import(&self, batch: &ImportBatch, caller: &Caller) -> Result<ImportOutcome> {
        self.run_import(batch, caller, false)
    }

    /// Returns the source operation ids of an imported operation, or `None` for an operation
    /// that was not imported.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the file fails.
    pub fn source_ids(&self, id: OperationId) -> Result<Option<Vec<String>>> {
        self.guarded("reading source ids", || {
            let txn = self
                .db
                .begin_read()
                .map_err(|err| Error::storage("reading source ids", err))?;
            let table = match txn.open_table(tables::SOURCES) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(err) => return Err(Error::storage("reading source ids", err)),
            };
            let ids = table
                .get(id.0)
                .map_err(|err| Error::storage("reading source ids", err))?
                .map(|guard| split_source_ids(guard.value()));
            Ok(ids)
        })
    }

    fn run_import(
        &self,
        batch: &ImportBatch,
        caller: &Caller,
        commit: bool,
    ) -> Result<ImportOutcome> {
        self.guarded("importing", || {
            caller.validate()?;
            let now = self.now();
            let context = format!("import `{}`", batch.report.source);
            let (_gate, txn) = self.begin_write(&context)?;
            let (mut outcome, changed, notices) = {
                let mut tables = WriteTables::open(&txn)?;
                tables.collect = commit && self.subscribers.wanted();
                let progress =
                    |done, total| self.report_progress("importing operations", done, total);
                let outcome = import_operations(&mut tables, batch, caller, now, &progress)?;
                (outcome, tables.changed, std::mem::take(&mut tables.notices))
            };
            if commit && changed {
                txn.commit()
                    .map_err(|err| Error::storage(format!("committing the {context}"), err))?;
                self.subscribers.publish(&notices);
                outcome.committed = true;
            } else {
                txn.abort()
                    .map_err(|err| Error::storage(format!("ending the {context}"), err))?;
            }
            tracing::debug!(
                source = %batch.report.source,
                committed = outcome.committed,
                operations_created = outcome.operations_created,
                steps_created = outcome.steps_created,
                "imported CSV"
            );
            Ok(outcome)
        })
    }
}

/// Splits a `sources` entry into its source ids.
fn split_source_ids(entry: &str) -> Vec<String> {
    entry
        .split(SOURCE_ID_SEPARATOR)
        .map(str::to_owned)
        .collect()
}

fn import_operations(
    tables: &mut WriteTables<'_>,
    batch: &ImportBatch,
    caller: &Caller,
    now: Timestamp,
    progress: &dyn Fn(u64, u64),
) -> Result<ImportOutcome> {
    let mut outcome = ImportOutcome {
        committed: false,
        operations_created: 0,
        operations_present: 0,
        steps_created: 0,
        steps_present: 0,
        operations: Vec::with_capacity(batch.operations.len()),
    };
    let total = batch.operations.len() as u64;
    for (done, imported) in (1..).zip(&batch.operations) {
        progress(done, total);
        let existing =
            tables::read_operation_id(&tables.by_day, &imported.property, imported.business_date)?;
        let done = match existing {
            Some(id) => check_existing(tables, id, imported)?,
            None => create_operation(tables, imported, &batch.report.source, caller, now)?,
        };
        if done.created {
            outcome.operations_created += 1;
        } else {
            outcome.operations_present += 1;
        }
        outcome.steps_created += done.steps_created;
        outcome.steps_present += done.steps_present;
        outcome.operations.push(done);
    }
    Ok(outcome)
}

/// Checks that an existing operation has every imported step order, which then counts as
/// present; the operation is not changed.
fn check_existing(
    tables: &WriteTables<'_>,
    id: OperationId,
    imported: &ImportedOperation,
) -> Result<ImportedOperationOutcome> {
    let steps = tables.steps(id)?;
    let missing: Vec<_> = imported
        .steps
        .iter()
        .filter(|step| !steps.iter().any(|stored| stored.order == step.order))
        .collect();
    if !missing.is_empty() {
        let describe = |list: Vec<String>| list.join(", ");
        return Err(Error::InvalidInput {
            what: "import into operation",
            value: id.to_string(),
            expected: format!(
                "operation {id} exists for property `{}` on {} without the step orders {} of \
                 lines {}; eodstore does not add steps to an existing operation, because that \
                 would change its plan: leave those rows out of the file",
                imported.property,
                imported.business_date,
                describe(missing.iter().map(|step| step.order.to_string()).collect()),
                describe(missing.iter().map(|step| step.line.to_string()).collect()),
            ),
        });
    }
    Ok(ImportedOperationOutcome {
        id,
        property: imported.property.clone(),
        business_date: imported.business_date,
        source_ids: imported.source_ids.clone(),
        created: false,
        steps_created: 0,
        steps_present: imported.steps.len() as u64,
    })
}

/// Creates an imported operation with its steps, source ids and events.
fn create_operation(
    tables: &mut WriteTables<'_>,
    imported: &ImportedOperation,
    source: &str,
    caller: &Caller,
    now: Timestamp,
) -> Result<ImportedOperationOutcome> {
    let steps: Vec<Step> = imported.steps.iter().map(to_step).collect();
    let status = OperationStatus::of(&steps);
    let finished_at = (status == OperationStatus::Completed).then(|| {
        steps
            .iter()
            .filter_map(|step| step.finished_at)
            .max()
            .unwrap_or(now)
    });
    let id = tables.allocate_operation_id()?;
    let operation = Operation {
        id,
        property: imported.property.clone(),
        business_date: imported.business_date,
        plan: IMPORTED_PLAN.to_owned(),
        plan_identity: steps
            .iter()
            .map(|step| PlanIdentityStep {
                order: step.order,
                code: step.code.clone(),
                required: step.required,
            })
            .collect(),
        status,
        created_at: now,
        created_by: caller.actor.clone(),
        finished_at,
    };
    tables.index_operation((&imported.property, day_key(imported.business_date)), id)?;
    tables.put_operation(&operation)?;
    let joined = imported.source_ids.join(&SOURCE_ID_SEPARATOR.to_string());
    tables.changed = true;
    tables
        .sources
        .insert(id.0, joined.as_str())
        .map_err(|err| Error::storage("recording source ids", err))?;

    for step in &steps {
        tables.put_step(id, step)?;
    }
    append_import_events(tables, &operation, imported, &steps, source, caller, now)?;
    Ok(ImportedOperationOutcome {
        id,
        property: imported.property.clone(),
        business_date: imported.business_date,
        source_ids: imported.source_ids.clone(),
        created: true,
        steps_created: steps.len() as u64,
        steps_present: 0,
    })
}

/// Appends the events of a new imported operation: created, imported, one `imported` event per
/// step, and finished when every step is completed or skipped.
fn append_import_events(
    tables: &mut WriteTables<'_>,
    operation: &Operation,
    imported: &ImportedOperation,
    steps: &[Step],
    source: &str,
    caller: &Caller,
    now: Timestamp,
) -> Result<()> {
    let event = |kind, step_order, to, message: String| Event {
        seq: 0,
        kind,
        step_order,
        from: step_order.map(|_| StepStatus::Pending),
        to,
        actor: caller.actor.clone(),
        at: now,
        message: Some(message),
    };
    tables.append_event(
        operation,
        event(
            EventKind::OperationCreated,
            None,
            None,
            format!(
                "property `{}`, business date {}, plan `{IMPORTED_PLAN}`",
                imported.property, imported.business_date
            ),
        ),
    )?;
    tables.append_event(
        operation,
        event(
            EventKind::Imported,
            None,
            None,
            format!(
                "imported from `{source}` with {} steps; source operation {}",
                steps.len(),
                quoted_list(&imported.source_ids)
            ),
        ),
    )?;
    for (step, from) in steps.iter().zip(&imported.steps) {
        tables.append_event(
            operation,
            event(
                EventKind::Imported,
                Some(step.order),
                Some(step.status),
                step_message(step, &from.lines),
            ),
        )?;
    }
    if OperationStatus::of(steps) == OperationStatus::Completed {
        tables.append_event(
            operation,
            event(
                EventKind::OperationFinished,
                None,
                None,
                "every step is completed or skipped".into(),
            ),
        )?;
    }
    Ok(())
}

/// Builds the stored step of an imported one. A running step has no claim, so the next start
/// takes it over.
fn to_step(imported: &crate::import::ImportedStep) -> Step {
    let attempts = u32::from(matches!(
        imported.status,
        StepStatus::Running | StepStatus::Completed | StepStatus::Failed
    ));
    Step {
        order: imported.order,
        code: imported.code.clone(),
        name: imported.name.clone(),
        required: imported.required,
        status: imported.status,
        attempts,
        started_at: imported.started_at,
        finished_at: imported.finished_at,
        actor: imported.actor.clone(),
        last_error: imported.error.clone(),
        output_tail: None,
        claim: None,
    }
}

/// Describes an imported step for its event: the lines it came from and the source's fields.
fn step_message(step: &Step, lines: &[u64]) -> String {
    let lines: Vec<String> = lines.iter().map(u64::to_string).collect();
    let mut message = format!(
        "{} in the source, from line{} {}",
        step.status,
        if lines.len() == 1 { "" } else { "s" },
        listed(&lines)
    );
    // `fmt::Write` for `String` never returns an error.
    if let Some(started) = step.started_at {
        let _ = write!(message, "; started {started}");
    }
    if let Some(finished) = step.finished_at {
        let _ = write!(message, "; finished {finished}");
    }
    if let Some(actor) = &step.actor {
        let _ = write!(message, "; by `{actor}`");
    }
    message
}

/// Writes ids for a message: `` `17` `` or `` `17`, `18` ``, with "ids" before a list.
fn quoted_list(ids: &[String]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
    if quoted.len() == 1 {
        format!("id {}", quoted[0])
    } else {
        format!("ids {}", listed(&quoted))
    }
}

/// The maximum number of items of a list that an event message names. The rest are counted. A file may
/// repeat one step on any number of lines, and an event record must stay small.
const MAX_LISTED: usize = 20;

/// Joins `items` with commas, naming at most [`MAX_LISTED`] of them.
fn listed(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_LISTED {
        let _ = write!(text, " and {} more", items.len() - MAX_LISTED);
    }
    text
}
