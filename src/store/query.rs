//! Read-only queries. Each runs on one read snapshot and never waits for writers.

use jiff::civil::Date;
use redb::ReadableTable;

use super::tables;
use super::{OperationView, Store, validate_property};
use crate::error::{Error, Result};
use crate::model::{Event, Operation, OperationId, Step};

impl Store {
    fn snapshot(&self) -> Result<redb::ReadTransaction> {
        self.db
            .begin_read()
            .map_err(|err| Error::storage("reading a snapshot", err))
    }

    /// Returns the operation with this id.
    ///
    /// # Errors
    ///
    /// [`Error::OperationNotFound`] for an unknown id; [`Error::Storage`] and
    /// [`Error::Decode`] when the file fails.
    pub fn operation(&self, id: OperationId) -> Result<Operation> {
        self.guarded("reading the store", || {
            let txn = self.snapshot()?;
            let table = open(&txn, tables::OPERATIONS)?;
            tables::read_operation(&table, id)?.ok_or_else(|| not_found(&txn, id))
        })
    }

    /// Returns the operation of `property` on `business_date`, if one was opened.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a property that [`validate_property`] rejects, and
    /// [`Error::Storage`] and [`Error::Decode`] when the file fails.
    pub fn find_operation(&self, property: &str, business_date: Date) -> Result<Option<Operation>> {
        validate_property(property)?;
        self.guarded("reading the store", || {
            let txn = self.snapshot()?;
            let by_day = open(&txn, tables::OPERATIONS_BY_DAY)?;
            let Some(id) = tables::read_operation_id(&by_day, property, business_date)? else {
                return Ok(None);
            };
            let operation = tables::read_operation(&open(&txn, tables::OPERATIONS)?, id)?;
            if let Some(operation) = &operation {
                tables::check_indexed(operation, property, tables::day_key(business_date))?;
            }
            Ok(operation)
        })
    }

    /// Returns an operation's steps in ascending order, read with one range read.
    ///
    /// # Errors
    ///
    /// As [`Store::operation`].
    pub fn steps(&self, id: OperationId) -> Result<Vec<Step>> {
        Ok(self.view(id)?.steps)
    }

    /// Returns an operation and its steps from one snapshot.
    ///
    /// # Errors
    ///
    /// As [`Store::operation`].
    pub fn view(&self, id: OperationId) -> Result<OperationView> {
        self.guarded("reading the store", || read_view(&self.snapshot()?, id))
    }

    /// Returns the operation of `property` on `business_date` and its steps from one snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a property that [`validate_property`] rejects,
    /// [`Error::NoOperationForDate`] when no operation was opened for that day, and the errors
    /// of [`Store::operation`].
    pub fn view_by_date(&self, property: &str, business_date: Date) -> Result<OperationView> {
        validate_property(property)?;
        self.guarded("reading the store", || {
            let txn = self.snapshot()?;
            let by_day = open(&txn, tables::OPERATIONS_BY_DAY)?;
            let id =
                tables::read_operation_id(&by_day, property, business_date)?.ok_or_else(|| {
                    Error::NoOperationForDate {
                        property: property.to_owned(),
                        business_date,
                    }
                })?;
            let view = read_view(&txn, id)?;
            tables::check_indexed(&view.operation, property, tables::day_key(business_date))?;
            Ok(view)
        })
    }

    /// Returns every audit event of an operation, oldest first.
    ///
    /// # Errors
    ///
    /// As [`Store::operation`].
    pub fn events(&self, id: OperationId) -> Result<Vec<Event>> {
        self.guarded("reading the store", || {
            let txn = self.snapshot()?;
            let view = read_view(&txn, id)?;
            read_trail(
                &txn,
                &open(&txn, tables::EVENTS)?,
                &view.operation,
                &view.steps,
            )
        })
    }

    /// Returns up to `limit` events of an operation whose sequence number is above `after`,
    /// oldest first: a page of the audit trail.
    ///
    /// # Errors
    ///
    /// As [`Store::operation`].
    pub fn events_after(&self, id: OperationId, after: u64, limit: usize) -> Result<Vec<Event>> {
        self.guarded("reading the store", || {
            let txn = self.snapshot()?;
            let operation = tables::read_operation(&open(&txn, tables::OPERATIONS)?, id)?
                .ok_or_else(|| not_found(&txn, id))?;
            let events = tables::read_events(&open(&txn, tables::EVENTS)?, id, after, limit)?;
            let count = tables::read_event_count(&txn, operation.id)?;
            tables::check_event_count(operation.id, count, after, events.len(), limit)?;
            Ok(events)
        })
    }

    /// Returns up to `limit` operations of `property`, newest business date first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a property that [`validate_property`] rejects, and
    /// [`Error::Storage`] and [`Error::Decode`] when the file fails.
    pub fn history(&self, property: &str, limit: usize) -> Result<Vec<Operation>> {
        validate_property(property)?;
        self.guarded("reading the store", || {
            let txn = self.snapshot()?;
            let by_day = open(&txn, tables::OPERATIONS_BY_DAY)?;
            let operations = open(&txn, tables::OPERATIONS)?;
            let range = by_day
                .range((property, i32::MIN)..=(property, i32::MAX))
                .map_err(|err| Error::storage("reading history", err))?;
            let mut result = Vec::new();
            for entry in range.rev().take(limit) {
                let (key, id) = entry.map_err(|err| Error::storage("reading history", err))?;
                let id = OperationId(id.value());
                let day = key.value().1;
                let operation =
                    tables::read_operation(&operations, id)?.ok_or_else(|| Error::Corrupt {
                        path: self.path.clone(),
                        detail: format!(
                            "operations_by_day names operation {id}, which does not exist"
                        ),
                    })?;
                tables::check_indexed(&operation, property, day)?;
                result.push(operation);
            }
            Ok(result)
        })
    }
}

/// Reads the whole audit trail of `operation` from the snapshot `txn`, checked against its
/// recorded length and replayed to its `steps`, which a trail cut short by a damaged key fails.
pub(super) fn read_trail(
    txn: &redb::ReadTransaction,
    events: &impl ReadableTable<(u64, u64), &'static [u8]>,
    operation: &Operation,
    steps: &[Step],
) -> Result<Vec<Event>> {
    let id = operation.id;
    let trail = tables::read_events(events, id, 0, usize::MAX)?;
    let count = tables::read_event_count(txn, id)?;
    tables::check_event_count(id, count, 0, trail.len(), usize::MAX)?;
    if let Some(problem) = super::check::replay_trail(operation, steps, &trail) {
        return Err(Error::Decode {
            table: "events",
            key: format!("({id}, ..)"),
            detail: format!("{problem}, so a key is damaged; run `eod check`"),
        });
    }
    Ok(trail)
}

/// Reads an operation and its steps from the snapshot `txn`.
fn read_view(txn: &redb::ReadTransaction, id: OperationId) -> Result<OperationView> {
    let operation = tables::read_operation(&open(txn, tables::OPERATIONS)?, id)?
        .ok_or_else(|| not_found(txn, id))?;
    let steps = tables::read_steps(&open(txn, tables::STEPS)?, id)?;
    tables::check_plan_steps(&operation, &steps)?;
    Ok(OperationView { operation, steps })
}

/// Returns the error for an operation id without a record in the snapshot `txn`.
fn not_found(txn: &redb::ReadTransaction, id: OperationId) -> Error {
    match txn.open_table(tables::STEPS) {
        Ok(steps) => tables::missing_operation(&steps, id),
        Err(_) => Error::OperationNotFound { operation: id },
    }
}

fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    definition: redb::TableDefinition<K, V>,
) -> Result<redb::ReadOnlyTable<K, V>> {
    txn.open_table(definition)
        .map_err(|err| Error::storage(format!("opening table `{definition}`"), err))
}
