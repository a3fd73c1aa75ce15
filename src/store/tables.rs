//! The redb tables and typed access to them. Every value passes through [`crate::codec`].

use redb::{ReadableTable, TableDefinition};

use crate::codec;
use crate::error::{Error, Result};
use crate::model::{Event, EventKind, Operation, OperationId, PropertyState, Step};
use crate::store::RequestRecord;
use crate::store::notify::Change;

/// Format version and id counter.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Operation id to encoded [`Operation`].
pub(crate) const OPERATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("operations");
/// `(property, business date as YYYYMMDD)` to operation id: one operation per property and day.
pub(crate) const OPERATIONS_BY_DAY: TableDefinition<(&str, i32), u64> =
    TableDefinition::new("operations_by_day");
/// `(operation id, step order)` to encoded [`Step`]: a step exists at most once per key.
pub(crate) const STEPS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("steps");
/// `(operation id, seq)` to encoded [`Event`]: the append-only audit trail.
pub(crate) const EVENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("events");
/// Request id to the call it answered and the recorded response.
pub(crate) const REQUESTS: TableDefinition<&str, &[u8]> = TableDefinition::new("requests");
/// Operation id to the number of events in its trail, which reads compare with the trail they
/// find, so that events lost to a damaged key are noticed. Format-1 files lack this table.
pub(crate) const EVENT_COUNTS: TableDefinition<u64, u64> = TableDefinition::new("event_counts");
/// Operation id to the id that an imported operation had in the system it was imported from.
/// An operation merged from several source operations has their ids, one per line. Only
/// imported operations have an entry, and files written before imports existed lack the table.
pub(crate) const SOURCES: TableDefinition<u64, &str> = TableDefinition::new("sources");
/// Property to its encoded [`PropertyState`]: the current business date and the operation in
/// progress. Files of format 2 and older lack the table.
pub(crate) const PROPERTIES: TableDefinition<&str, &[u8]> = TableDefinition::new("properties");
/// Change number to `(operation id, event seq)`: every event of every operation in commit
/// order, which `eod watch` follows. Files of format 2 and older lack the table.
pub(crate) const CHANGES: TableDefinition<u64, (u64, u64)> = TableDefinition::new("changes");

/// The names of every table an eodstore file has.
pub(crate) const TABLE_NAMES: [&str; 10] = [
    "meta",
    "operations",
    "operations_by_day",
    "steps",
    "events",
    "requests",
    "event_counts",
    "sources",
    "properties",
    "changes",
];

pub(crate) const FORMAT_KEY: &str = "format_version";
pub(crate) const NEXT_ID_KEY: &str = "next_operation_id";

/// Encodes a business date as a sortable integer key, `YYYYMMDD`.
pub(crate) fn day_key(date: jiff::civil::Date) -> i32 {
    i32::from(date.year()) * 10_000 + i32::from(date.month()) * 100 + i32::from(date.day())
}

fn storage(context: &str) -> impl FnOnce(redb::StorageError) -> Error + '_ {
    move |err| Error::storage(context, err)
}

/// Reads an operation record.
pub(crate) fn read_operation(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: OperationId,
) -> Result<Option<Operation>> {
    let Some(guard) = table.get(id.0).map_err(storage("reading an operation"))? else {
        return Ok(None);
    };
    let operation: Operation = codec::decode("operations", || id.to_string(), guard.value())?;
    if operation.id != id {
        return Err(damaged_key(
            "operations",
            id.to_string(),
            format!("the record is operation {}", operation.id),
        ));
    }
    Ok(Some(operation))
}

/// Returns the error for operation `id` without a record: not found, or a damaged key when
/// steps of that id exist, because every operation is written with its steps and never deleted.
/// (Ids alone prove nothing: a store filled from a filtered dump has gaps in its ids.)
pub(crate) fn missing_operation(
    steps: &impl ReadableTable<(u64, u32), &'static [u8]>,
    id: OperationId,
) -> Error {
    let has_steps = steps
        .range((id.0, 0)..=(id.0, u32::MAX))
        .ok()
        .and_then(|mut range| range.next())
        .is_some();
    if has_steps {
        damaged_key(
            "operations",
            id.to_string(),
            format!("operation {id} has no record, but steps of it exist"),
        )
    } else {
        Error::OperationNotFound { operation: id }
    }
}

/// Calls `visit` with the key, as text, and the encoded bytes of every record in `table`.
pub(crate) fn scan_records<K>(
    table: &impl ReadableTable<K, &'static [u8]>,
    mut visit: impl FnMut(String, &[u8]),
) -> Result<()>
where
    K: redb::Key + 'static,
    for<'a> K::SelfType<'a>: std::fmt::Debug,
{
    for entry in table.iter().map_err(storage("reading records"))? {
        let (key, value) = entry.map_err(storage("reading records"))?;
        visit(format!("{:?}", key.value()), value.value());
    }
    Ok(())
}

/// Reads the recorded length of operation `id`'s trail; `None` in a format-1 file, which did
/// not record it.
pub(crate) fn read_event_count(
    txn: &redb::ReadTransaction,
    id: OperationId,
) -> Result<Option<u64>> {
    let table = match txn.open_table(EVENT_COUNTS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(err) => return Err(Error::storage("reading an event count", err)),
    };
    Ok(table
        .get(id.0)
        .map_err(storage("reading an event count"))?
        .map(|guard| guard.value()))
}

/// Checks a page of operation `id`'s trail: `found` events after sequence number `after`, read
/// with at most `limit`. A page that ends early must end at the recorded `count`.
pub(crate) fn check_event_count(
    id: OperationId,
    count: Option<u64>,
    after: u64,
    found: usize,
    limit: usize,
) -> Result<()> {
    let Some(count) = count else {
        return Ok(());
    };
    let expected = count.saturating_sub(after);
    let found_count = found as u64;
    let consistent = if found < limit {
        found_count == expected
    } else {
        found_count <= expected
    };
    if consistent {
        return Ok(());
    }
    Err(damaged_key(
        "events",
        format!("({id}, ..)"),
        format!(
            "operation {id} records {count} events, but its trail has {found} after event {after}"
        ),
    ))
}

/// Reports a key that disagrees with its record or with the records it points to. Such a key is
/// damaged, and redb's ordinary reads do not check the page checksums that would show it.
fn damaged_key(table: &'static str, key: String, detail: impl std::fmt::Display) -> Error {
    Error::Decode {
        table,
        key,
        detail: format!("{detail}, so the key is damaged; run `eod check`"),
    }
}

/// Checks that the operation read through the day index under `(property, day)` is the one for
/// that property and day.
pub(crate) fn check_indexed(operation: &Operation, property: &str, day: i32) -> Result<()> {
    if operation.property == property && day_key(operation.business_date) == day {
        return Ok(());
    }
    Err(damaged_key(
        "operations_by_day",
        format!("({property:?}, {day})"),
        format!(
            "it names operation {}, which is for ({:?}, {})",
            operation.id, operation.property, operation.business_date
        ),
    ))
}

/// Checks that `steps` are exactly the steps of `operation`'s plan, in order. Seeding writes all
/// of them in one transaction, so anything else means a damaged key.
pub(crate) fn check_plan_steps(operation: &Operation, steps: &[Step]) -> Result<()> {
    let matches = steps.len() == operation.plan_identity.len()
        && steps
            .iter()
            .zip(&operation.plan_identity)
            .all(|(step, planned)| step.order == planned.order && step.code == planned.code);
    if matches {
        return Ok(());
    }
    let orders = |orders: Vec<u32>| {
        orders
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(damaged_key(
        "steps",
        format!("({}, ..)", operation.id),
        format!(
            "operation {} has the steps [{}], but its plan has [{}]",
            operation.id,
            orders(steps.iter().map(|step| step.order).collect()),
            orders(
                operation
                    .plan_identity
                    .iter()
                    .map(|step| step.order)
                    .collect()
            )
        ),
    ))
}

/// Reads the id of the operation of `property` on `business_date`, if one was opened.
pub(crate) fn read_operation_id(
    table: &impl ReadableTable<(&'static str, i32), u64>,
    property: &str,
    business_date: jiff::civil::Date,
) -> Result<Option<OperationId>> {
    Ok(table
        .get((property, day_key(business_date)))
        .map_err(storage("reading an operation"))?
        .map(|guard| OperationId(guard.value())))
}

/// Reads an operation's steps in order, with one range read.
pub(crate) fn read_steps(
    table: &impl ReadableTable<(u64, u32), &'static [u8]>,
    id: OperationId,
) -> Result<Vec<Step>> {
    let range = table
        .range((id.0, 0)..=(id.0, u32::MAX))
        .map_err(storage("reading steps"))?;
    let mut steps = Vec::new();
    for entry in range {
        let (key, value) = entry.map_err(storage("reading steps"))?;
        let (operation, order) = key.value();
        let step: Step =
            codec::decode("steps", || format!("({operation}, {order})"), value.value())?;
        if step.order != order {
            return Err(damaged_key(
                "steps",
                format!("({operation}, {order})"),
                format!("the record is step {}", step.order),
            ));
        }
        steps.push(step);
    }
    Ok(steps)
}

/// Reads up to `limit` events of an operation with a sequence number above `after`.
pub(crate) fn read_events(
    table: &impl ReadableTable<(u64, u64), &'static [u8]>,
    id: OperationId,
    after: u64,
    limit: usize,
) -> Result<Vec<Event>> {
    let Some(first) = after.checked_add(1) else {
        return Ok(Vec::new());
    };
    let range = table
        .range((id.0, first)..=(id.0, u64::MAX))
        .map_err(storage("reading events"))?;
    let mut events = Vec::new();
    for entry in range.take(limit) {
        let (key, value) = entry.map_err(storage("reading events"))?;
        let (operation, seq) = key.value();
        let event: Event =
            codec::decode("events", || format!("({operation}, {seq})"), value.value())?;
        // The trail is numbered from 1 without gaps, so the next key is known in advance.
        let expected = first + events.len() as u64;
        if seq != expected || event.seq != seq {
            return Err(damaged_key(
                "events",
                format!("({operation}, {seq})"),
                format!(
                    "event {expected} was expected here, and the record is event {}",
                    event.seq
                ),
            ));
        }
        events.push(event);
    }
    Ok(events)
}

/// Reads the state of `property`, if it has one.
pub(crate) fn read_property(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    property: &str,
) -> Result<Option<PropertyState>> {
    let Some(guard) = table.get(property).map_err(storage("reading a property"))? else {
        return Ok(None);
    };
    let state: PropertyState =
        codec::decode("properties", || format!("`{property}`"), guard.value())?;
    if state.property != property {
        return Err(damaged_key(
            "properties",
            format!("`{property}`"),
            format!("the record is property `{}`", state.property),
        ));
    }
    Ok(Some(state))
}

/// Reads the request record stored under `request_id`.
pub(crate) fn read_request(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    request_id: &str,
) -> Result<Option<RequestRecord>> {
    let Some(guard) = table
        .get(request_id)
        .map_err(storage("reading a request"))?
    else {
        return Ok(None);
    };
    codec::decode("requests", || format!("`{request_id}`"), guard.value()).map(Some)
}

/// Every table of one write transaction, opened once.
///
/// Writes go through the methods below, which mark the transaction changed; a transaction that
/// changed nothing is aborted instead of committed, which saves the commit's fsync.
pub(crate) struct WriteTables<'txn> {
    pub(crate) changed: bool,
    pub(crate) meta: redb::Table<'txn, &'static str, u64>,
    pub(crate) operations: redb::Table<'txn, u64, &'static [u8]>,
    pub(crate) by_day: redb::Table<'txn, (&'static str, i32), u64>,
    pub(crate) steps: redb::Table<'txn, (u64, u32), &'static [u8]>,
    pub(crate) events: redb::Table<'txn, (u64, u64), &'static [u8]>,
    pub(crate) requests: redb::Table<'txn, &'static str, &'static [u8]>,
    pub(crate) event_counts: redb::Table<'txn, u64, u64>,
    pub(crate) sources: redb::Table<'txn, u64, &'static str>,
    pub(crate) properties: redb::Table<'txn, &'static str, &'static [u8]>,
    pub(crate) changes: redb::Table<'txn, u64, (u64, u64)>,
    /// The next change number, once read.
    next_change: Option<u64>,
    /// The events appended in this transaction, for subscribers; collected only when
    /// `collect` is set.
    pub(crate) notices: Vec<Change>,
    pub(crate) collect: bool,
}

impl<'txn> WriteTables<'txn> {
    pub(crate) fn open(txn: &'txn redb::WriteTransaction) -> Result<WriteTables<'txn>> {
        let fail = |err: redb::TableError| Error::storage("opening the tables", err);
        Ok(WriteTables {
            changed: false,
            meta: txn.open_table(META).map_err(fail)?,
            operations: txn.open_table(OPERATIONS).map_err(fail)?,
            by_day: txn.open_table(OPERATIONS_BY_DAY).map_err(fail)?,
            steps: txn.open_table(STEPS).map_err(fail)?,
            events: txn.open_table(EVENTS).map_err(fail)?,
            requests: txn.open_table(REQUESTS).map_err(fail)?,
            event_counts: txn.open_table(EVENT_COUNTS).map_err(fail)?,
            sources: txn.open_table(SOURCES).map_err(fail)?,
            properties: txn.open_table(PROPERTIES).map_err(fail)?,
            changes: txn.open_table(CHANGES).map_err(fail)?,
            next_change: None,
            notices: Vec::new(),
            collect: false,
        })
    }

    pub(crate) fn property(&self, property: &str) -> Result<Option<PropertyState>> {
        read_property(&self.properties, property)
    }

    pub(crate) fn put_property(&mut self, state: &PropertyState) -> Result<()> {
        self.changed = true;
        let bytes = codec::encode("property", state)?;
        self.properties
            .insert(state.property.as_str(), bytes.as_slice())
            .map_err(storage("writing a property"))?;
        Ok(())
    }

    pub(crate) fn operation(&self, id: OperationId) -> Result<Option<Operation>> {
        read_operation(&self.operations, id)
    }

    pub(crate) fn steps(&self, id: OperationId) -> Result<Vec<Step>> {
        read_steps(&self.steps, id)
    }

    pub(crate) fn request(&self, request_id: &str) -> Result<Option<RequestRecord>> {
        read_request(&self.requests, request_id)
    }

    pub(crate) fn put_operation(&mut self, operation: &Operation) -> Result<()> {
        self.changed = true;
        let bytes = codec::encode("operation", operation)?;
        self.operations
            .insert(operation.id.0, bytes.as_slice())
            .map_err(storage("writing an operation"))?;
        Ok(())
    }

    pub(crate) fn put_step(&mut self, id: OperationId, step: &Step) -> Result<()> {
        self.changed = true;
        let bytes = codec::encode("step", step)?;
        self.steps
            .insert((id.0, step.order), bytes.as_slice())
            .map_err(storage("writing a step"))?;
        Ok(())
    }

    /// Appends an event to `operation`'s trail with the next sequence number, records the
    /// trail's new length and the change, and keeps the event for subscribers. Returns the
    /// event's sequence number.
    pub(crate) fn append_event(&mut self, operation: &Operation, mut event: Event) -> Result<u64> {
        let id = operation.id;
        let recorded = self
            .event_counts
            .get(id.0)
            .map_err(storage("reading an event count"))?
            .map(|guard| guard.value());
        let last = match recorded {
            Some(count) => count,
            // Only a trail of a file migrated from format 1 can lack its count.
            None => self
                .events
                .range((id.0, 0)..=(id.0, u64::MAX))
                .map_err(storage("reading events"))?
                .next_back()
                .transpose()
                .map_err(storage("reading events"))?
                .map_or(0, |(key, _)| key.value().1),
        };
        self.changed = true;
        event.seq = last + 1;
        let bytes = codec::encode("event", &event)?;
        self.events
            .insert((id.0, event.seq), bytes.as_slice())
            .map_err(storage("appending an event"))?;
        self.event_counts
            .insert(id.0, event.seq)
            .map_err(storage("recording an event count"))?;
        let change = match self.next_change {
            Some(next) => next,
            None => self
                .changes
                .last()
                .map_err(storage("reading the last change"))?
                .map_or(1, |(key, _)| key.value().saturating_add(1)),
        };
        self.changes
            .insert(change, (id.0, event.seq))
            .map_err(storage("recording a change"))?;
        self.next_change = Some(change.saturating_add(1));
        let seq = event.seq;
        if self.collect {
            self.notices.push(Change {
                change,
                operation: id,
                property: operation.property.clone(),
                business_date: operation.business_date,
                event,
            });
        }
        Ok(seq)
    }

    /// Appends an event of the whole operation (no step) to its trail, as
    /// [`WriteTables::append_event`] does.
    pub(crate) fn append_operation_event(
        &mut self,
        operation: &Operation,
        kind: EventKind,
        actor: &str,
        at: jiff::Timestamp,
        message: String,
    ) -> Result<u64> {
        self.append_event(
            operation,
            Event {
                seq: 0,
                kind,
                step_order: None,
                from: None,
                to: None,
                actor: actor.to_owned(),
                at,
                message: Some(message),
            },
        )
    }

    pub(crate) fn record_request(
        &mut self,
        request_id: &str,
        record: &RequestRecord,
    ) -> Result<()> {
        self.changed = true;
        let bytes = codec::encode("request", record)?;
        self.requests
            .insert(request_id, bytes.as_slice())
            .map_err(storage("recording a request"))?;
        Ok(())
    }

    /// Maps `(property, business date)` to an operation id.
    pub(crate) fn index_operation(&mut self, key: (&str, i32), id: OperationId) -> Result<()> {
        self.changed = true;
        self.by_day
            .insert(key, id.0)
            .map_err(storage("indexing an operation"))?;
        Ok(())
    }

    /// Sets a value in the `meta` table.
    pub(crate) fn put_meta(&mut self, key: &str, value: u64) -> Result<()> {
        self.changed = true;
        self.meta
            .insert(key, value)
            .map_err(storage("writing meta"))?;
        Ok(())
    }

    /// Allocates the next operation id.
    pub(crate) fn allocate_operation_id(&mut self) -> Result<OperationId> {
        let next = self
            .meta
            .get(NEXT_ID_KEY)
            .map_err(storage("reading the id counter"))?
            .map_or(1, |guard| guard.value());
        // The counter is a bare number without a checksum. A damaged one must not hand out the
        // id of an operation that exists, because the new record would overwrite it.
        let last_taken = self
            .operations
            .last()
            .map_err(storage("reading the last operation id"))?
            .map(|(key, _)| key.value());
        if let Some(last) = last_taken
            && next <= last
        {
            return Err(damaged_key(
                "meta",
                format!("`{NEXT_ID_KEY}`"),
                format!("the next operation id is {next}, but operation {last} exists"),
            ));
        }
        let after = next.checked_add(1).ok_or_else(|| {
            damaged_key(
                "meta",
                format!("`{NEXT_ID_KEY}`"),
                format!("the next operation id is {next}, the largest possible"),
            )
        })?;
        self.put_meta(NEXT_ID_KEY, after)?;
        Ok(OperationId(next))
    }
}
