//! Opening an operation and seeding its steps: one write transaction that inserts only the
//! absent `(operation_id, step_order)` keys, so duplicates cannot exist.

use jiff::civil::Date;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::tables::{self, WriteTables, day_key};
use super::{Caller, Store, check_text, replay};
use crate::error::{Error, Result};
use crate::model::{Event, EventKind, Operation, OperationStatus, Step, StepStatus};
use crate::plan::{Plan, first_difference};
use crate::schedule::NOT_SCHEDULED;

/// The maximum length of a property name, in characters.
pub const MAX_PROPERTY_CHARS: usize = 200;

/// Checks a property name as [`Store::open_operation`] does: 1 to [`MAX_PROPERTY_CHARS`]
/// characters, not blank, without control characters.
///
/// # Errors
///
/// Returns [`Error::InvalidInput`] naming the property.
pub fn validate_property(property: &str) -> Result<()> {
    check_text("property", property, MAX_PROPERTY_CHARS)
}

/// One step in the result of [`Store::open_operation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededStep {
    /// The step as stored, which may have progressed since an earlier seeding.
    pub step: Step,
    /// Whether this call inserted it.
    pub created: bool,
}

/// The result of [`Store::open_operation`]: the operation and every step, in order, read in the
/// transaction that seeded them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// The operation.
    pub operation: Operation,
    /// Whether this call created the operation.
    pub created: bool,
    /// Every step of the operation, in ascending order.
    pub steps: Vec<SeededStep>,
}

impl Store {
    /// Opens the operation of `property` on `business_date`, creating it and seeding `plan`'s
    /// steps where they are absent.
    ///
    /// Any number of concurrent callers, in threads or processes, get the same operation id and
    /// the same complete, ordered list of steps; exactly one of them has `created` set for the
    /// operation and for each step. A step that already exists is returned as stored (a
    /// completed step stays completed). When a read snapshot shows the operation fully seeded
    /// with the same plan, the call returns without a write transaction, and so records no
    /// request id.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidInput`] for a blank or overlong property or actor.
    /// - [`Error::PlanConflict`] when the operation was seeded with a plan of another identity
    ///   (orders, codes and required flags; display names may differ). Nothing is written.
    /// - [`Error::RequestIdReused`] when the caller's request id answered another call.
    /// - [`Error::Storage`] and [`Error::Decode`] when the file fails.
    pub fn open_operation(
        &self,
        property: &str,
        business_date: Date,
        plan: &Plan,
        caller: &Caller,
    ) -> Result<Opened> {
        self.guarded("opening an operation", || {
            validate_property(property)?;
            caller.validate()?;
            let call = format!(
                "open of property `{property}` on {business_date} with plan `{}`",
                plan.name()
            );
            if let Some(opened) =
                self.open_from_snapshot(property, business_date, plan, caller, &call)?
            {
                return Ok(opened);
            }
            let now = self.now();
            let property = property.to_owned();
            let plan = plan.clone();
            let opened = self.write_request(caller, &call, "", move |tables, caller| {
                seed(tables, &property, business_date, &plan, caller, now)
            })?;
            tracing::debug!(
                operation_id = opened.operation.id.0,
                created = opened.created,
                seeded = opened.steps.iter().filter(|step| step.created).count(),
                "opened operation"
            );
            Ok(opened)
        })
    }

    /// Returns the operation from a read snapshot when nothing needs to be written: the request
    /// id was applied before, or the operation is fully seeded with the same plan.
    fn open_from_snapshot(
        &self,
        property: &str,
        business_date: Date,
        plan: &Plan,
        caller: &Caller,
        call: &str,
    ) -> Result<Option<Opened>> {
        let storage = |err: redb::TransactionError| Error::storage("reading a snapshot", err);
        let txn = self.db.begin_read().map_err(storage)?;
        let open = |err: redb::TableError| Error::storage("opening the tables", err);
        if let Some(request_id) = &caller.request_id {
            let requests = txn.open_table(tables::REQUESTS).map_err(open)?;
            if let Some(record) = tables::read_request(&requests, request_id)? {
                return replay(request_id, &caller.describe(call, ""), record).map(Some);
            }
        }
        let by_day = txn.open_table(tables::OPERATIONS_BY_DAY).map_err(open)?;
        let Some(id) = tables::read_operation_id(&by_day, property, business_date)? else {
            return Ok(None);
        };
        let operations = txn.open_table(tables::OPERATIONS).map_err(open)?;
        let Some(operation) = tables::read_operation(&operations, id)? else {
            return Ok(None);
        };
        check_identity(&operation, plan)?;
        let steps = tables::read_steps(&txn.open_table(tables::STEPS).map_err(open)?, id)?;
        let complete = steps.len() == plan.steps().len()
            && steps
                .iter()
                .zip(plan.steps())
                .all(|(stored, given)| stored.order == given.order);
        if !complete {
            return Ok(None);
        }
        Ok(Some(Opened {
            operation,
            created: false,
            steps: steps
                .into_iter()
                .map(|step| SeededStep {
                    step,
                    created: false,
                })
                .collect(),
        }))
    }
}

/// Rejects `plan` when its identity differs from the one the operation was seeded with.
fn check_identity(operation: &Operation, plan: &Plan) -> Result<()> {
    match first_difference(&operation.plan_identity, &plan.identity()) {
        None => Ok(()),
        Some(difference) => Err(Error::PlanConflict {
            operation: operation.id,
            stored_plan: operation.plan.clone(),
            difference,
        }),
    }
}

/// Finds or creates the operation of `property` on `business_date` and inserts `plan`'s absent
/// steps, inside the write transaction of `tables`. Nothing is written when the plan conflicts.
pub(crate) fn seed(
    tables: &mut WriteTables<'_>,
    property: &str,
    business_date: Date,
    plan: &Plan,
    caller: &Caller,
    now: jiff::Timestamp,
) -> Result<Opened> {
    let (mut operation, created) =
        find_or_create_operation(tables, property, business_date, plan, caller, now)?;
    let created_orders = insert_absent_steps(tables, &operation, plan, caller, now)?;

    let steps = tables.steps(operation.id)?;
    let status = OperationStatus::of(&steps);
    if status != operation.status {
        operation.status = status;
        if status == OperationStatus::Completed {
            // Every step was not scheduled for the date.
            operation.finished_at = Some(now);
            tables.append_operation_event(
                &operation,
                EventKind::OperationFinished,
                &caller.actor,
                now,
                super::transition::FINISHED_MESSAGE.into(),
            )?;
        }
        tables.put_operation(&operation)?;
    }
    Ok(Opened {
        operation,
        created,
        steps: steps
            .into_iter()
            .map(|step| SeededStep {
                created: created_orders.contains(&step.order),
                step,
            })
            .collect(),
    })
}

/// Returns the operation of the day, checking its plan identity, or creates it with a new id.
/// The flag says whether it was created.
fn find_or_create_operation(
    tables: &mut WriteTables<'_>,
    property: &str,
    business_date: Date,
    plan: &Plan,
    caller: &Caller,
    now: jiff::Timestamp,
) -> Result<(Operation, bool)> {
    if let Some(id) = tables::read_operation_id(&tables.by_day, property, business_date)? {
        let operation = tables.operation(id)?.ok_or_else(|| Error::Decode {
            table: "operations_by_day",
            key: format!("(`{property}`, {business_date})"),
            detail: format!("it names operation {id}, which does not exist"),
        })?;
        check_identity(&operation, plan)?;
        return Ok((operation, false));
    }

    let id = tables.allocate_operation_id()?;
    let operation = Operation {
        id,
        property: property.to_owned(),
        business_date,
        plan: plan.name().to_owned(),
        plan_identity: plan.identity(),
        status: OperationStatus::Open,
        created_at: now,
        created_by: caller.actor.clone(),
        finished_at: None,
    };
    tables.index_operation((property, day_key(business_date)), id)?;
    tables.put_operation(&operation)?;
    tables.append_event(
        &operation,
        Event {
            seq: 0,
            kind: EventKind::OperationCreated,
            step_order: None,
            from: None,
            to: None,
            actor: caller.actor.clone(),
            at: now,
            message: Some(format!(
                "property `{property}`, business date {business_date}, plan `{}`",
                plan.name()
            )),
        },
    )?;
    Ok((operation, true))
}

/// Inserts the plan's steps whose keys are absent, leaving existing steps as stored, and returns
/// the orders it inserted.
fn insert_absent_steps(
    tables: &mut WriteTables<'_>,
    operation: &Operation,
    plan: &Plan,
    caller: &Caller,
    now: jiff::Timestamp,
) -> Result<Vec<u32>> {
    let id = operation.id;
    let mut created_orders = Vec::new();
    let mut unscheduled = Vec::new();
    for plan_step in plan.steps() {
        let present = tables
            .steps
            .get((id.0, plan_step.order))
            .map_err(|err| Error::storage("reading a step", err))?
            .is_some();
        if present {
            continue;
        }
        let due = plan_step
            .schedule
            .as_ref()
            .is_none_or(|schedule| schedule.is_due(operation.business_date));
        if !due {
            unscheduled.push(plan_step);
        }
        tables.put_step(
            id,
            &Step {
                order: plan_step.order,
                code: plan_step.code.clone(),
                name: plan_step.name.clone(),
                required: plan_step.required,
                status: StepStatus::Pending,
                attempts: 0,
                started_at: None,
                finished_at: None,
                actor: None,
                last_error: None,
                output_tail: None,
                claim: None,
            },
        )?;
        created_orders.push(plan_step.order);
    }
    if !created_orders.is_empty() {
        tables.append_event(
            operation,
            Event {
                seq: 0,
                kind: EventKind::StepsSeeded,
                step_order: None,
                from: None,
                to: Some(StepStatus::Pending),
                actor: caller.actor.clone(),
                at: now,
                message: Some(format!("seeded {} steps", created_orders.len())),
            },
        )?;
    }
    // A step that is not due on the date is skipped as soon as it exists, with its event, so
    // that the history shows it did not run and why.
    for plan_step in unscheduled {
        let mut step = tables
            .steps
            .get((id.0, plan_step.order))
            .map_err(|err| Error::storage("reading a step", err))?
            .map(|guard| {
                crate::codec::decode::<Step>(
                    "steps",
                    || format!("({id}, {})", plan_step.order),
                    guard.value(),
                )
            })
            .transpose()?
            .ok_or_else(|| Error::Encode {
                what: "step",
                detail: format!("step {} was not found after seeding it", plan_step.order),
            })?;
        step.status = StepStatus::Skipped;
        step.finished_at = Some(now);
        step.actor = Some(caller.actor.clone());
        step.last_error = Some(NOT_SCHEDULED.to_owned());
        tables.put_step(id, &step)?;
        let reason = plan_step
            .schedule
            .as_ref()
            .map(|schedule| schedule.explain_not_due(operation.business_date))
            .unwrap_or_default();
        tables.append_event(
            operation,
            Event {
                seq: 0,
                kind: EventKind::Skipped,
                step_order: Some(step.order),
                from: Some(StepStatus::Pending),
                to: Some(StepStatus::Skipped),
                actor: caller.actor.clone(),
                at: now,
                message: Some(format!("{NOT_SCHEDULED}: {reason}")),
            },
        )?;
    }
    Ok(created_orders)
}
