//! Properties: the current business date, its gate on starting operations, the business-date
//! roll, the one operation in progress per property, and runners' claims on operations.
//!
//! A property's state lives in the `properties` table. Every rule here is checked inside the
//! write transaction of the step change or run that it gates, before that transaction writes
//! anything, like every other rule of the store.

use jiff::Timestamp;
use jiff::civil::Date;
use redb::ReadableTable;

use super::seed::Opened;
use super::tables::{self, WriteTables};
use super::transition::{holder, holder_gone, new_token};
use super::{Caller, Store, check_text, validate_property};
use crate::error::{Error, Result};
use crate::model::{
    ActiveOperation, Claim, Event, EventKind, Operation, OperationId, PropertyState, RunClaim,
    Step, StepStatus,
};
use crate::plan::Plan;

/// The step code whose completion advances the property's business date by one day.
pub const ROLL_STEP: &str = "roll_business_date";

/// The writes that make an operation its property's operation in progress, worked out before the
/// change writes anything.
pub(crate) struct Entry {
    state: PropertyState,
    override_message: Option<String>,
}

/// Checks that `operation` may be in progress at its property now: no other operation of the
/// property is, and, when it is not in progress yet, its date is the property's business date
/// or `caller` gives an override. Returns what to write, or `None` when the operation is in
/// progress already.
pub(crate) fn check_entry(
    tables: &WriteTables<'_>,
    operation: &Operation,
    caller: &Caller,
    now: Timestamp,
) -> Result<Option<Entry>> {
    let state = live_state(tables, &operation.property)?;
    match &state.active {
        Some(active) if active.operation == operation.id => return Ok(None),
        Some(active) => return Err(busy(active, &operation.property, operation.business_date)),
        None => {}
    }
    let override_message = check_date(&state, operation.business_date, caller)?;
    let mut state = state;
    state.active = Some(started(operation, caller, now, None));
    Ok(Some(Entry {
        state,
        override_message,
    }))
}

/// Returns `operation` as its property's operation in progress, started now by `caller`.
fn started(
    operation: &Operation,
    caller: &Caller,
    now: Timestamp,
    runner: Option<RunClaim>,
) -> ActiveOperation {
    ActiveOperation {
        operation: operation.id,
        business_date: operation.business_date,
        started_at: now,
        started_by: caller.actor.clone(),
        runner,
    }
}

/// Writes an entry worked out by [`check_entry`]: the property's state, and the override's
/// event when one was used.
pub(crate) fn write_entry(
    tables: &mut WriteTables<'_>,
    operation: &Operation,
    entry: Entry,
    caller: &Caller,
    now: Timestamp,
) -> Result<()> {
    tables.put_property(&entry.state)?;
    if let Some(message) = entry.override_message {
        append(
            tables,
            operation,
            EventKind::DateOverride,
            caller,
            now,
            message,
        )?;
    }
    Ok(())
}

/// Returns the rejection of an operation of `property` on `date` while `active` is in progress.
fn busy(active: &ActiveOperation, property: &str, date: Date) -> Error {
    Error::PropertyBusy {
        property: property.to_owned(),
        date,
        active: active.operation,
        active_date: active.business_date,
        by: active.started_by.clone(),
        since: active.started_at,
    }
}

/// Rejects an operation on `date` when it is not the property's business date, unless `caller`
/// gives an override. Returns the override's event message when one is used.
fn check_date(state: &PropertyState, date: Date, caller: &Caller) -> Result<Option<String>> {
    let Some(current) = state.business_date else {
        return Ok(None);
    };
    if date == current {
        return Ok(None);
    }
    let property = &state.property;
    if let Some(reason) = &caller.date_override {
        return Ok(Some(format!(
            "started for {date} while the business date of `{property}` is {current}, by \
             override: {reason}"
        )));
    }
    let problem = if date > current {
        format!(
            "it is too early; close {current} first (`eod run --property {property} --until \
             {date}` with the same `--db` and `--plan` closes every day up to {date} in order), \
             or run it anyway with `--override-date REASON` (`Caller::override_business_date`)"
        )
    } else {
        "that day is before the business date, so it counts as closed; run it anyway with \
         `--override-date REASON` (`Caller::override_business_date`)"
            .to_owned()
    };
    Err(Error::NotBusinessDate {
        property: property.clone(),
        date,
        current,
        problem,
    })
}

/// Brings the property up to date after a step of `operation` changed to `step`: a completed
/// business-date roll advances the business date, and a finished operation is no longer in
/// progress (its run ends with it). Appends the events of both.
pub(crate) fn after_step(
    tables: &mut WriteTables<'_>,
    operation: &Operation,
    step: &Step,
    caller: &Caller,
    now: Timestamp,
) -> Result<()> {
    let rolls = step.code == ROLL_STEP && step.status == StepStatus::Completed;
    let finishes = operation.finished_at.is_some();
    if !rolls && !finishes {
        return Ok(());
    }
    let mut state = tables
        .property(&operation.property)?
        .unwrap_or_else(|| empty_state(&operation.property));
    let mut events = Vec::new();
    if rolls {
        let date = operation.business_date;
        let rolled = match state.business_date {
            None => true,
            Some(current) => current == date,
        };
        // The last date jiff supports has no next day, so its roll completes and leaves the
        // business date as it is.
        let next = date.tomorrow().ok().filter(|_| rolled);
        if let Some(next) = next {
            state.business_date = Some(next);
            state.date_source = Some(format!("rolled by operation {}", operation.id));
            state.date_changed_at = Some(now);
            events.push((
                EventKind::DateRolled,
                format!(
                    "the business date of `{}` is now {next}",
                    operation.property
                ),
            ));
        }
    }
    if finishes
        && let Some(active) = &state.active
        && active.operation == operation.id
    {
        if active.runner.is_some() {
            events.push((EventKind::RunEnded, "the operation finished".to_owned()));
        }
        state.active = None;
    }
    tables.put_property(&state)?;
    for (kind, message) in events {
        append(tables, operation, kind, caller, now, message)?;
    }
    Ok(())
}

/// Reads the state of `property`, leaving out an operation in progress that has finished or does
/// not exist. That happens only when a program built before format 3 finished the operation
/// after a migration, or when seeding a run's operation finished it (every step was not
/// scheduled). Such an operation must not block the property, and the next write of the state
/// clears it.
fn live_state(tables: &WriteTables<'_>, property: &str) -> Result<PropertyState> {
    let mut state = tables
        .property(property)?
        .unwrap_or_else(|| empty_state(property));
    if let Some(active) = &state.active {
        let finished = match tables.operation(active.operation)? {
            Some(operation) => operation.finished_at.is_some(),
            None => true,
        };
        if finished {
            tracing::warn!(
                property,
                operation_id = active.operation.0,
                "the operation in progress has finished; clearing it"
            );
            state.active = None;
        }
    }
    Ok(state)
}

fn empty_state(property: &str) -> PropertyState {
    PropertyState {
        property: property.to_owned(),
        business_date: None,
        date_source: None,
        date_changed_at: None,
        active: None,
    }
}

fn append(
    tables: &mut WriteTables<'_>,
    operation: &Operation,
    kind: EventKind,
    caller: &Caller,
    now: Timestamp,
    message: String,
) -> Result<u64> {
    tables.append_operation_event(operation, kind, &caller.actor, now, message)
}

/// The result of a runner's request to run an operation.
#[derive(Debug, Clone)]
pub(crate) enum RunBegin {
    /// The runner runs the operation under this claim.
    Running(RunClaim),
    /// The operation had finished already.
    Finished {
        /// When it finished.
        at: Timestamp,
        /// The actor that finished it.
        by: String,
    },
}

impl Store {
    /// Sets the current business date of `property`: the date whose operation may start next.
    /// Operations of other dates then start only with an override (see
    /// [`Caller::override_business_date`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid property or caller, and [`Error::Storage`] when
    /// the file fails.
    pub fn set_business_date(
        &self,
        property: &str,
        date: Date,
        caller: &Caller,
    ) -> Result<PropertyState> {
        self.guarded("setting a business date", || {
            validate_property(property)?;
            caller.validate()?;
            if date.tomorrow().is_err() {
                return Err(Error::InvalidInput {
                    what: "business date",
                    value: date.to_string(),
                    expected: "a date before 9999-12-31, so that its roll has a next day".into(),
                });
            }
            let call = format!("setting the business date of `{property}` to {date}");
            let now = self.now();
            let property = property.to_owned();
            let state = self.write_request(caller, &call, "", move |tables, caller| {
                let mut state = tables
                    .property(&property)?
                    .unwrap_or_else(|| empty_state(&property));
                if state.business_date == Some(date) {
                    return Ok(state);
                }
                state.business_date = Some(date);
                state.date_source = Some(format!("set by `{}`", caller.actor));
                state.date_changed_at = Some(now);
                tables.put_property(&state)?;
                Ok(state)
            })?;
            tracing::info!(property = %state.property, %date, "set the business date");
            Ok(state)
        })
    }

    /// Returns the state of `property`: its business date and its operation in progress; `None`
    /// for a property the store has no state for.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an invalid property, [`Error::Storage`] and
    /// [`Error::Decode`] when the file fails.
    pub fn property(&self, property: &str) -> Result<Option<PropertyState>> {
        validate_property(property)?;
        self.guarded("reading a property", || {
            let txn = self
                .db
                .begin_read()
                .map_err(|err| Error::storage("reading a property", err))?;
            match txn.open_table(tables::PROPERTIES) {
                Ok(table) => tables::read_property(&table, property),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
                Err(err) => Err(Error::storage("reading a property", err)),
            }
        })
    }

    /// Returns the state of every property the store has one for, by name.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] and [`Error::Decode`] when the file fails.
    pub fn properties(&self) -> Result<Vec<PropertyState>> {
        self.guarded("reading properties", || {
            let storage = |err: redb::StorageError| Error::storage("reading properties", err);
            let txn = self
                .db
                .begin_read()
                .map_err(|err| Error::storage("reading properties", err))?;
            let table = match txn.open_table(tables::PROPERTIES) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(err) => return Err(Error::storage("reading properties", err)),
            };
            let mut states = Vec::new();
            for entry in table.iter().map_err(storage)? {
                let (key, _) = entry.map_err(storage)?;
                if let Some(state) = tables::read_property(&table, key.value())? {
                    states.push(state);
                }
            }
            Ok(states)
        })
    }

    /// Releases `operation`, which has started and not finished, so that it no longer blocks
    /// the other operations of its property. Use it for an operation abandoned by a terminal
    /// that is gone. The release is recorded as an event with `reason`. The operation keeps its
    /// steps; starting one of them again makes it the operation in progress again.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidInput`] when the operation is not its property's operation in
    ///   progress, or for a blank reason.
    /// - [`Error::NotReleasable`] when a live runner runs it or one of its steps runs under a
    ///   live claim.
    /// - [`Error::OperationNotFound`], [`Error::OperationFinished`], [`Error::Storage`].
    pub fn release_operation(
        &self,
        operation: OperationId,
        reason: &str,
        caller: &Caller,
    ) -> Result<PropertyState> {
        self.guarded("releasing an operation", || {
            caller.validate()?;
            check_text("release reason", reason, 500)?;
            let call = format!("release of operation {operation}");
            let now = self.now();
            let reason = reason.to_owned();
            self.write_request(caller, &call, "", move |tables, caller| {
                let record = tables
                    .operation(operation)?
                    .ok_or_else(|| tables::missing_operation(&tables.steps, operation))?;
                if let Some(finished_at) = record.finished_at {
                    return Err(Error::OperationFinished {
                        operation,
                        finished_at,
                    });
                }
                let mut state = live_state(tables, &record.property)?;
                let Some(active) = state.active.as_ref().filter(|a| a.operation == operation)
                else {
                    let now_active = state.active.as_ref().map_or_else(
                        || "none is".to_owned(),
                        |active| format!("operation {} is", active.operation),
                    );
                    return Err(Error::InvalidInput {
                        what: "operation to release",
                        value: operation.to_string(),
                        expected: format!(
                            "operation {operation} is not in progress at property `{}` \
                             ({now_active}), so there is nothing to release",
                            record.property
                        ),
                    });
                };
                if let Some(runner) = &active.runner
                    && holder_gone(&runner.claim, now).is_none()
                {
                    return Err(Error::NotReleasable {
                        operation,
                        holder: format!("the runner {}", holder(&runner.claim)),
                        until: runner.claim.lease_until,
                    });
                }
                for step in tables.steps(operation)? {
                    if let (StepStatus::Running, Some(claim)) = (step.status, &step.claim)
                        && holder_gone(claim, now).is_none()
                    {
                        return Err(Error::NotReleasable {
                            operation,
                            holder: format!(
                                "the claim on step {} of {}",
                                step.order,
                                holder(claim)
                            ),
                            until: claim.lease_until,
                        });
                    }
                }
                state.active = None;
                tables.put_property(&state)?;
                append(
                    tables,
                    &record,
                    EventKind::Released,
                    caller,
                    now,
                    format!("released: {reason}"),
                )?;
                tracing::warn!(operation_id = operation.0, %reason, "released an operation");
                Ok(state)
            })
        })
    }

    /// Opens (seeding where needed) the operation of `property` on `date` and begins a
    /// runner's run of it, in one transaction: the runner's claim on the operation, so that no
    /// other runner runs it at the same time. A runner whose process is gone, or whose lease
    /// ended, is taken over. A rejected run (another operation in progress, another business
    /// date, a live runner, a conflicting plan) writes nothing, not even the operation.
    pub(crate) fn begin_run(
        &self,
        property: &str,
        date: Date,
        plan: &Plan,
        caller: &Caller,
    ) -> Result<(Opened, RunBegin)> {
        self.guarded("beginning a run", || {
            validate_property(property)?;
            caller.validate()?;
            let lease = caller.lease.unwrap_or(self.options.lease);
            let now = self.now();
            let caller = caller.clone();
            let plan = plan.clone();
            let property = property.to_owned();
            let context = format!(
                "run of property `{property}` on {date} with plan `{}` by `{}`",
                plan.name(),
                caller.actor
            );
            self.submit(context, move |tables| {
                let existing = match tables::read_operation_id(&tables.by_day, &property, date)? {
                    Some(id) => tables.operation(id)?,
                    None => None,
                };
                if let Some(operation) = &existing
                    && let Some(at) = operation.finished_at
                {
                    let opened = super::seed::seed(tables, &property, date, &plan, &caller, now)?;
                    let by = finished_by(tables, operation.id)?;
                    return Ok((opened, RunBegin::Finished { at, by }));
                }
                let state = live_state(tables, &property)?;
                let existing_id = existing.as_ref().map(|operation| operation.id);
                let (took_over, override_message) =
                    check_run(&state, existing_id, date, &caller, now)?;
                let lease_until = now.checked_add(lease).map_err(|err| Error::InvalidInput {
                    what: "lease",
                    value: format!("{lease:#}"),
                    expected: format!("a lease that ends within the supported time range: {err}"),
                })?;

                // Every check has passed; the writes begin here.
                let opened = super::seed::seed(tables, &property, date, &plan, &caller, now)?;
                let operation = &opened.operation;
                if let Some(at) = operation.finished_at {
                    // No step was scheduled for the date, so seeding finished the operation:
                    // there is nothing to run and nothing in progress.
                    let by = caller.actor.clone();
                    return Ok((opened, RunBegin::Finished { at, by }));
                }
                let runner = RunClaim {
                    claim: Claim {
                        token: new_token(operation.id, 0),
                        actor: caller.actor.clone(),
                        process: caller.process.clone(),
                        lease_until,
                    },
                    since: now,
                };
                let mut state = state;
                match state.active.as_mut() {
                    Some(active) => active.runner = Some(runner.clone()),
                    None => {
                        state.active = Some(started(operation, &caller, now, Some(runner.clone())));
                    }
                }
                tables.put_property(&state)?;
                if let Some(message) = override_message {
                    append(
                        tables,
                        operation,
                        EventKind::DateOverride,
                        &caller,
                        now,
                        message,
                    )?;
                }
                append(
                    tables,
                    operation,
                    EventKind::RunStarted,
                    &caller,
                    now,
                    format!(
                        "run by {}{}",
                        holder(&runner.claim),
                        took_over.unwrap_or_default()
                    ),
                )?;
                Ok((opened, RunBegin::Running(runner)))
            })
        })
    }

    /// Extends the lease of a runner's claim on `operation`. Renewals are not events.
    pub(crate) fn renew_run(
        &self,
        operation: OperationId,
        token: &str,
        caller: &Caller,
    ) -> Result<()> {
        let lease = caller.lease.unwrap_or(self.options.lease);
        let now = self.now();
        let token = token.to_owned();
        self.guarded("renewing a run", || {
            self.submit(
                format!("renewal of the run of operation {operation}"),
                move |tables| {
                    let Some(mut state) = run_state(tables, operation, &token)? else {
                        return Err(Error::InvalidInput {
                            what: "run claim",
                            value: operation.to_string(),
                            expected: "the claim of the operation's current runner".into(),
                        });
                    };
                    if let Some(runner) = state.active.as_mut().and_then(|a| a.runner.as_mut()) {
                        runner.claim.lease_until =
                            now.checked_add(lease).map_err(|err| Error::InvalidInput {
                                what: "lease",
                                value: format!("{lease:#}"),
                                expected: err.to_string(),
                            })?;
                    }
                    tables.put_property(&state)
                },
            )
        })
    }

    /// Ends a runner's claim on `operation`, recording how the run ended. An operation that is
    /// still open (the run started no step) stops being in progress. Does nothing when the
    /// claim has ended already (the operation finished, or another runner took it over).
    pub(crate) fn end_run(
        &self,
        operation: OperationId,
        token: &str,
        outcome: &str,
        caller: &Caller,
    ) -> Result<()> {
        let now = self.now();
        let token = token.to_owned();
        let outcome = outcome.to_owned();
        let caller = caller.clone();
        self.guarded("ending a run", || {
            self.submit(
                format!("end of the run of operation {operation}"),
                move |tables| {
                    let Some(mut state) = run_state(tables, operation, &token)? else {
                        return Ok(());
                    };
                    let Some(record) = tables.operation(operation)? else {
                        return Ok(());
                    };
                    // A run that started no step leaves the operation open, and an open
                    // operation is not in progress, so it blocks no other date.
                    if record.status == crate::model::OperationStatus::Open {
                        state.active = None;
                    } else if let Some(active) = state.active.as_mut() {
                        active.runner = None;
                    }
                    tables.put_property(&state)?;
                    append(
                        tables,
                        &record,
                        EventKind::RunEnded,
                        &caller,
                        now,
                        outcome.clone(),
                    )?;
                    Ok(())
                },
            )
        })
    }
}

/// Checks that a runner may run the operation of `state`'s property on `date`, whose id is
/// `existing` if it exists. Returns the takeover's note, when a gone runner is taken over, and
/// the override's event message, when the run starts another business date by override.
fn check_run(
    state: &PropertyState,
    existing: Option<OperationId>,
    date: Date,
    caller: &Caller,
    now: Timestamp,
) -> Result<(Option<String>, Option<String>)> {
    match &state.active {
        Some(active) if Some(active.operation) == existing => {
            let Some(runner) = &active.runner else {
                return Ok((None, None));
            };
            let Some(reason) = holder_gone(&runner.claim, now) else {
                return Err(Error::AlreadyRunning {
                    operation: active.operation,
                    date,
                    holder: holder(&runner.claim),
                    since: runner.since,
                });
            };
            let note = format!("; took over from {}: {reason}", holder(&runner.claim));
            Ok((Some(note), None))
        }
        Some(active) => Err(busy(active, &state.property, date)),
        None => Ok((None, check_date(state, date, caller)?)),
    }
}

/// Returns the state of `operation`'s property when `token` is the claim of the runner running
/// it.
fn run_state(
    tables: &WriteTables<'_>,
    operation: OperationId,
    token: &str,
) -> Result<Option<PropertyState>> {
    let Some(record) = tables.operation(operation)? else {
        return Ok(None);
    };
    let Some(state) = tables.property(&record.property)? else {
        return Ok(None);
    };
    let holds = state.active.as_ref().is_some_and(|active| {
        active.operation == operation
            && active
                .runner
                .as_ref()
                .is_some_and(|runner| runner.claim.token == token)
    });
    Ok(holds.then_some(state))
}

/// Returns the actor of the event that finished `operation`.
fn finished_by(tables: &WriteTables<'_>, operation: OperationId) -> Result<String> {
    let storage = |err: redb::StorageError| Error::storage("reading events", err);
    let range = tables
        .events
        .range((operation.0, 0)..=(operation.0, u64::MAX))
        .map_err(storage)?;
    for entry in range.rev() {
        let (key, value) = entry.map_err(storage)?;
        let event: Event =
            crate::codec::decode("events", || format!("{:?}", key.value()), value.value())?;
        if event.kind == EventKind::OperationFinished {
            return Ok(event.actor);
        }
    }
    Ok("an unknown actor".to_owned())
}
