//! Dumps: a whole store, or a filtered part of it, as one serde value that imports again
//! losslessly, so that a store can be moved to another machine or rebuilt.
//!
//! A dump contains operations, their steps and their audit events exactly as stored, ids, claim
//! tokens and timestamps included, and each operation's source id where the file records one.
//! It does not contain the request records of [`Caller::request_id`](crate::Caller::request_id).

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::tables::{self, NEXT_ID_KEY, WriteTables, day_key};
use super::{Store, validate_property};
use crate::codec;
use crate::error::{Error, Result};
use crate::model::{
    Claim, Event, Operation, OperationId, OperationStatus, PlanIdentityStep, ProcessRef, Step,
    parse_business_date,
};

/// The `format` of every dump.
pub const DUMP_FORMAT: &str = "eodstore-dump";

/// The dump version this build writes and the only one it reads. Version 1 contains every field of
/// [`Operation`], [`Step`] and [`Event`] as this build stores them.
pub const DUMP_VERSION: u64 = 1;

/// A dump of operations with their steps and events, as [`Store::export`] reads them and
/// [`Store::import_dump`] writes them.
///
/// Its JSON form ([`Dump::to_json`]) starts with `"format": "eodstore-dump"` and `"version": 1`,
/// so that a reader can tell a dump of another version from a damaged one. The dump contains the
/// claim tokens of running steps, which let their holders finish them, so keep it as private as
/// the database file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dump {
    /// Always [`DUMP_FORMAT`].
    pub format: String,
    /// The dump version, [`DUMP_VERSION`] for dumps this build writes.
    pub version: u64,
    /// The operations, in ascending id order.
    // NOTE: properties' business dates are not dumped, so after an import they are set again
    // with `Store::set_business_date`. `Store::backup` keeps them. The import records each
    // property's operation in progress again from the operations' statuses.
    pub operations: Vec<DumpedOperation>,
}

/// One operation in a [`Dump`], with everything stored for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DumpedOperation {
    /// The operation record.
    pub operation: Operation,
    /// The id the operation had in the system it was imported from, where the file records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Its steps in ascending order.
    pub steps: Vec<Step>,
    /// Its whole audit trail, numbered from 1.
    pub events: Vec<Event>,
}

/// Selects the operations of [`Store::export`]. Every condition that is set must hold; the
/// default, [`DumpFilter::all`], selects every operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpFilter {
    property: Option<String>,
    from: Option<Date>,
    to: Option<Date>,
    operation: Option<OperationId>,
}

impl DumpFilter {
    /// Returns the filter that selects every operation.
    pub fn all() -> DumpFilter {
        DumpFilter::default()
    }

    /// Selects the operations of `property` only.
    pub fn property(mut self, property: impl Into<String>) -> DumpFilter {
        self.property = Some(property.into());
        self
    }

    /// Selects the operations whose business date is `date` or later.
    pub fn from_date(mut self, date: Date) -> DumpFilter {
        self.from = Some(date);
        self
    }

    /// Selects the operations whose business date is `date` or earlier.
    pub fn to_date(mut self, date: Date) -> DumpFilter {
        self.to = Some(date);
        self
    }

    /// Selects the operation with this id only.
    pub fn operation(mut self, id: OperationId) -> DumpFilter {
        self.operation = Some(id);
        self
    }

    fn validate(&self) -> Result<()> {
        if let Some(property) = &self.property {
            validate_property(property)?;
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(Error::InvalidInput {
                what: "business date range",
                value: format!("{from} to {to}"),
                expected: "a start date on or before the end date".into(),
            });
        }
        Ok(())
    }

    fn matches(&self, operation: &Operation) -> bool {
        let date = operation.business_date;
        self.property
            .as_ref()
            .is_none_or(|property| *property == operation.property)
            && self.from.is_none_or(|from| from <= date)
            && self.to.is_none_or(|to| date <= to)
            && self.operation.is_none_or(|id| id == operation.id)
    }
}

/// The result of [`Store::import_dump`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DumpImport {
    /// The operations written, in ascending id order.
    pub created: Vec<OperationId>,
    /// The operations that the store already held exactly as dumped, so they were left alone.
    pub skipped: Vec<OperationId>,
    /// The number of steps written.
    pub steps: u64,
    /// The number of events written.
    pub events: u64,
    /// The store's next operation id after the import, above every imported id.
    pub next_operation_id: u64,
}

/// An error of reading or importing a dump. Every variant but [`DumpError::Store`] means that
/// nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// The text is not JSON.
    #[error("the dump is not valid JSON: {detail}")]
    NotJson {
        /// The parser's message, with the line and column.
        detail: String,
    },

    /// The JSON has no `"format": "eodstore-dump"`, so it is some other file.
    #[error(
        "the file is not an eodstore dump: its `format` is {found}, not `{DUMP_FORMAT}`; write one with `eod export`"
    )]
    NotADump {
        /// The `format` value found, as JSON, or `missing`.
        found: String,
    },

    /// The dump has a version this build does not read.
    #[error(
        "the dump has version {found}, but this build reads version {DUMP_VERSION} only: import it with the eodstore release that wrote it"
    )]
    UnsupportedVersion {
        /// The `version` value found, as JSON, or `missing`.
        found: String,
    },

    /// The JSON has the dump's header but not its layout: a missing, unknown or mistyped field.
    #[error("the dump does not have the layout of dump version {DUMP_VERSION}: {detail}")]
    Malformed {
        /// The parser's message, with the line and column.
        detail: String,
    },

    /// An operation of the dump breaks a rule that every stored operation follows, such as
    /// steps that differ from its plan or events that do not replay to its steps.
    #[error("dumped operation {operation} is inconsistent: {detail}; nothing was imported")]
    Invalid {
        /// The operation at fault.
        operation: OperationId,
        /// The rule it breaks, with the values involved.
        detail: String,
    },

    /// An operation of the dump collides with a different operation in the store: the same id,
    /// or the same property and business date.
    #[error(
        "dumped operation {operation} conflicts with the store: {detail}; nothing was imported"
    )]
    Conflict {
        /// The dumped operation.
        operation: OperationId,
        /// The store's operation that collides, or the first difference from it.
        detail: String,
    },

    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] Error),
}

impl Dump {
    /// Creates a dump of the current version holding `operations`.
    pub fn new(operations: Vec<DumpedOperation>) -> Dump {
        Dump {
            format: DUMP_FORMAT.to_owned(),
            version: DUMP_VERSION,
            operations,
        }
    }

    /// Returns the dump as pretty-printed JSON with a final newline. Equal dumps give equal
    /// bytes, because every field is written in declaration order and nothing else is added.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if serialization fails, which would be a bug.
    pub fn to_json(&self) -> Result<String> {
        let mut text = serde_json::to_string_pretty(self).map_err(|err| Error::Encode {
            what: "dump",
            detail: err.to_string(),
        })?;
        text.push('\n');
        Ok(text)
    }

    /// Parses a dump written by [`Dump::to_json`]; a leading UTF-8 byte-order mark is ignored.
    /// The header is checked first, so a dump of another version is reported as such. The
    /// content is checked by [`Store::import_dump`].
    ///
    /// # Errors
    ///
    /// [`DumpError::NotJson`], [`DumpError::NotADump`], [`DumpError::UnsupportedVersion`] or
    /// [`DumpError::Malformed`].
    pub fn from_json(bytes: &[u8]) -> std::result::Result<Dump, DumpError> {
        /// The header alone; serde skips the other fields.
        #[derive(Deserialize)]
        struct Header {
            format: Option<serde_json::Value>,
            version: Option<serde_json::Value>,
        }

        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);

        let header: Header = serde_json::from_slice(bytes).map_err(|err| {
            if err.is_data() {
                DumpError::NotADump {
                    found: "absent, because the JSON value is not an object".into(),
                }
            } else {
                DumpError::NotJson {
                    detail: err.to_string(),
                }
            }
        })?;
        let describe_value =
            |value: Option<serde_json::Value>| value.map_or("missing".into(), |v| v.to_string());
        if header.format.as_ref().and_then(serde_json::Value::as_str) != Some(DUMP_FORMAT) {
            return Err(DumpError::NotADump {
                found: describe_value(header.format),
            });
        }
        if header.version.as_ref().and_then(serde_json::Value::as_u64) != Some(DUMP_VERSION) {
            return Err(DumpError::UnsupportedVersion {
                found: describe_value(header.version),
            });
        }
        serde_json::from_slice(bytes).map_err(|err| DumpError::Malformed {
            detail: err.to_string(),
        })
    }

    /// Checks the dump's header and content as [`Store::import_dump`] does before it writes:
    /// each operation must follow the rules of [`Store::check_integrity`], and ids and
    /// property-and-date pairs must be unique. Conflicts with a store are found only by the
    /// import.
    ///
    /// # Errors
    ///
    /// [`DumpError::NotADump`], [`DumpError::UnsupportedVersion`] or [`DumpError::Invalid`], as
    /// listed under [`Store::import_dump`].
    pub fn check(&self) -> std::result::Result<(), DumpError> {
        check_dump(self)
    }
}

/// Names every field of the types a version-1 dump contains, so that adding a field to one of them
/// fails to compile here. A new field changes what a dump contains, so it needs a new
/// [`DUMP_VERSION`] and a reader of version 1.
#[allow(dead_code)]
fn version_1_fields(
    operation: &Operation,
    planned: &PlanIdentityStep,
    step: &Step,
    claim: &Claim,
    process: &ProcessRef,
    event: &Event,
) {
    let Operation {
        id: _,
        property: _,
        business_date: _,
        plan: _,
        plan_identity: _,
        status: _,
        created_at: _,
        created_by: _,
        finished_at: _,
    } = operation;
    let PlanIdentityStep {
        order: _,
        code: _,
        required: _,
    } = planned;
    let Step {
        order: _,
        code: _,
        name: _,
        required: _,
        status: _,
        attempts: _,
        started_at: _,
        finished_at: _,
        actor: _,
        last_error: _,
        output_tail: _,
        claim: _,
    } = step;
    let Claim {
        token: _,
        actor: _,
        process: _,
        lease_until: _,
    } = claim;
    let ProcessRef {
        host: _,
        pid: _,
        start_ticks: _,
    } = process;
    let Event {
        seq: _,
        kind: _,
        step_order: _,
        from: _,
        to: _,
        actor: _,
        at: _,
        message: _,
    } = event;
}

impl Store {
    /// Reads the operations that `filter` selects, with their steps, events and source ids,
    /// from one snapshot, in ascending id order. It never waits for writers.
    ///
    /// Every operation is checked as it is read: its steps must be its plan's, and its events
    /// must replay to its steps, so a damaged file fails here instead of giving a dump that
    /// does not import.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidInput`] for a property that [`validate_property`] rejects, or a start
    ///   date after the end date.
    /// - [`Error::OperationNotFound`] when the filter names an operation id that does not exist.
    /// - [`Error::Decode`], [`Error::Corrupt`] and [`Error::Storage`] when the file fails.
    pub fn export(&self, filter: &DumpFilter) -> Result<Dump> {
        filter.validate()?;
        self.guarded("exporting the store", || {
            let txn = self
                .db
                .begin_read()
                .map_err(|err| Error::storage("reading a snapshot", err))?;
            let ids = select_ids(&txn, filter)?;
            let operations = open_read(&txn, tables::OPERATIONS)?;
            let steps = open_read(&txn, tables::STEPS)?;
            let events = open_read(&txn, tables::EVENTS)?;
            let sources = open_sources(&txn)?;

            let mut dumped = Vec::new();
            let total = ids.len() as u64;
            for (done, id) in (1..).zip(ids) {
                self.report_progress("exporting operations", done, total);
                let Some(operation) = tables::read_operation(&operations, id)? else {
                    return Err(tables::missing_operation(&steps, id));
                };
                if !filter.matches(&operation) {
                    continue;
                }
                let steps = tables::read_steps(&steps, id)?;
                tables::check_plan_steps(&operation, &steps)?;
                let events = super::query::read_trail(&txn, &events, &operation, &steps)?;
                let source_id = match &sources {
                    Some(sources) => read_source(sources, id)?,
                    None => None,
                };
                dumped.push(DumpedOperation {
                    operation,
                    source_id,
                    steps,
                    events,
                });
            }
            Ok(Dump::new(dumped))
        })
    }

    /// Writes the operations of `dump` into this store in one write transaction, with their
    /// ids, steps, events (sequence numbers and timestamps included) and source ids, and
    /// indexes them by property and business date. The store's next operation id ends above
    /// every imported id.
    ///
    /// An operation that the store already contains exactly as dumped (record, steps, events and
    /// source id) is skipped, so importing a dump twice changes nothing. The dump is checked
    /// first against the rules of [`Store::check_integrity`], and the store is clean by those
    /// rules afterwards if it was before.
    ///
    /// A dump filtered by [`DumpFilter`] may leave gaps between its ids. The store's id counter
    /// ends above the highest imported id, and an id in a gap is not found.
    ///
    /// # Errors
    ///
    /// Nothing is written when any of these is returned:
    /// - [`DumpError::NotADump`] and [`DumpError::UnsupportedVersion`] for a wrong header.
    /// - [`DumpError::Invalid`] for a dumped operation that breaks a rule. Its id may be 0 or
    ///   `u64::MAX`, or its id or its property and date may be used twice. Its steps may differ
    ///   from its plan's, its status from what its steps give, or its events may not be
    ///   numbered from 1 or not replay to its steps.
    /// - [`DumpError::Conflict`] when the store contains another operation under the same id or the
    ///   same property and date, or leftover steps, events or a source id under the same id.
    /// - [`DumpError::Store`] with the store's error, such as [`Error::Busy`] or a write to a
    ///   read-only store.
    pub fn import_dump(&self, dump: &Dump) -> std::result::Result<DumpImport, DumpError> {
        dump.check()?;
        let imported = self.guarded("importing a dump", || self.write_dump(dump))?;
        let imported = imported?;
        tracing::info!(
            path = %self.path.display(),
            created = imported.created.len(),
            skipped = imported.skipped.len(),
            next_operation_id = imported.next_operation_id,
            "imported a dump"
        );
        Ok(imported)
    }

    /// Classifies and writes the operations of a checked dump in one write transaction. The
    /// outer result is the store's; the inner one rejects a conflict, after which the
    /// transaction is dropped, which aborts it.
    fn write_dump(&self, dump: &Dump) -> Result<std::result::Result<DumpImport, DumpError>> {
        let (_gate, txn) = self.begin_write("import a dump")?;
        let mut tables = WriteTables::open(&txn)?;
        tables.collect = self.subscribers.wanted();

        let mut created = Vec::new();
        let mut skipped = Vec::new();
        for dumped in &dump.operations {
            match classify(&tables, dumped)? {
                Ok(Action::Skip) => skipped.push(dumped.operation.id),
                Ok(Action::Write) => created.push(dumped),
                Err(conflict) => return Ok(Err(conflict)),
            }
        }

        let mut steps = 0;
        let mut events = 0;
        let total = created.len() as u64;
        for (done, dumped) in (1..).zip(&created) {
            self.report_progress("importing operations", done, total);
            let id = dumped.operation.id;
            let operation = &dumped.operation;
            tables.put_operation(operation)?;
            tables.index_operation(
                (
                    operation.property.as_str(),
                    day_key(operation.business_date),
                ),
                id,
            )?;
            for step in &dumped.steps {
                tables.put_step(id, step)?;
                steps += 1;
            }
            for event in &dumped.events {
                let seq = tables.append_event(operation, event.clone())?;
                if seq != event.seq {
                    return Err(Error::Decode {
                        table: "event_counts",
                        key: id.to_string(),
                        detail: format!(
                            "event {} of operation {id} was numbered {seq} on import",
                            event.seq
                        ),
                    });
                }
                events += 1;
            }
            if let Some(source_id) = &dumped.source_id {
                tables
                    .sources
                    .insert(id.0, source_id.as_str())
                    .map_err(|err| Error::storage("writing a source id", err))?;
            }
        }

        let next = tables
            .meta
            .get(NEXT_ID_KEY)
            .map_err(|err| Error::storage("reading the id counter", err))?
            .map_or(1, |guard| guard.value());
        // `check_dump` rejects the id u64::MAX, so the increment cannot overflow.
        let after_highest = created.iter().map(|dumped| dumped.operation.id.0 + 1).max();
        let next_operation_id = after_highest.map_or(next, |after| after.max(next));
        if next_operation_id != next {
            tables.put_meta(NEXT_ID_KEY, next_operation_id)?;
        }

        // A moved store keeps its operations in progress, which the dump does not list.
        let written = created.iter().map(|dumped| dumped.operation.id).collect();
        super::migrate::record_operations_in_progress(&mut tables, Some(&written))?;
        let changed = tables.changed;
        let notices = std::mem::take(&mut tables.notices);
        drop(tables);
        if changed {
            txn.commit()
                .map_err(|err| Error::storage("committing the import of a dump", err))?;
            self.subscribers.publish(&notices);
        } else {
            txn.abort()
                .map_err(|err| Error::storage("ending an import that wrote nothing", err))?;
        }
        Ok(Ok(DumpImport {
            created: created.iter().map(|dumped| dumped.operation.id).collect(),
            skipped,
            steps,
            events,
            next_operation_id,
        }))
    }
}

/// Returns the ids that may match `filter`, in ascending order: the one id it names, the
/// property's ids from the day index, or every id.
fn select_ids(txn: &redb::ReadTransaction, filter: &DumpFilter) -> Result<Vec<OperationId>> {
    if let Some(id) = filter.operation {
        return Ok(vec![id]);
    }
    let reading = |err: redb::StorageError| Error::storage("reading the operations", err);
    let mut ids = Vec::new();
    if let Some(property) = &filter.property {
        let by_day = open_read(txn, tables::OPERATIONS_BY_DAY)?;
        let from = filter.from.map_or(i32::MIN, day_key);
        let to = filter.to.map_or(i32::MAX, day_key);
        for entry in by_day
            .range((property.as_str(), from)..=(property.as_str(), to))
            .map_err(reading)?
        {
            let (_, id) = entry.map_err(reading)?;
            ids.push(OperationId(id.value()));
        }
        ids.sort_unstable();
    } else {
        let operations = open_read(txn, tables::OPERATIONS)?;
        for entry in operations.iter().map_err(reading)? {
            let (id, _) = entry.map_err(reading)?;
            ids.push(OperationId(id.value()));
        }
    }
    Ok(ids)
}

/// The import's decision for one dumped operation.
enum Action {
    /// The store contains the operation exactly as dumped.
    Skip,
    /// The store has neither its id nor its property and date.
    Write,
}

/// Decides what to do with one dumped operation, or returns the conflict that rejects the
/// import.
fn classify(
    tables: &WriteTables<'_>,
    dumped: &DumpedOperation,
) -> Result<std::result::Result<Action, DumpError>> {
    let operation = &dumped.operation;
    let id = operation.id;
    let conflict = |detail: String| {
        Ok(Err(DumpError::Conflict {
            operation: id,
            detail,
        }))
    };
    let stored_source = read_source(&tables.sources, id)?;

    if let Some(stored) = tables.operation(id)? {
        let steps = tables.steps(id)?;
        let events = tables::read_events(&tables.events, id, 0, usize::MAX)?;
        return match first_difference(dumped, &stored, &steps, &events, stored_source.as_ref()) {
            None => Ok(Ok(Action::Skip)),
            Some(difference) => conflict(format!(
                "the store has an operation {id} ({:?}, {}) that differs: {difference}",
                stored.property, stored.business_date
            )),
        };
    }

    if let Some(other) =
        tables::read_operation_id(&tables.by_day, &operation.property, operation.business_date)?
    {
        return conflict(format!(
            "the store's operation {other} already closes property `{}` on {}",
            operation.property, operation.business_date
        ));
    }

    let has_steps = tables
        .steps
        .range((id.0, 0)..=(id.0, u32::MAX))
        .map_err(|err| Error::storage("reading steps", err))?
        .next()
        .is_some();
    let has_events = tables
        .events
        .range((id.0, 0)..=(id.0, u64::MAX))
        .map_err(|err| Error::storage("reading events", err))?
        .next()
        .is_some();
    let has_count = tables
        .event_counts
        .get(id.0)
        .map_err(|err| Error::storage("reading an event count", err))?
        .is_some();
    if has_steps || has_events || has_count || stored_source.is_some() {
        return conflict(format!(
            "the store has no operation {id}, but steps, events or a source id under that id; \
             run `eod check` on the store"
        ));
    }
    Ok(Ok(Action::Write))
}

/// Describes the first difference between a dumped operation and the one stored under its id.
fn first_difference(
    dumped: &DumpedOperation,
    stored: &Operation,
    steps: &[Step],
    events: &[Event],
    source_id: Option<&String>,
) -> Option<String> {
    if dumped.operation != *stored {
        return Some(format!(
            "the operation records differ (the dump has ({:?}, {}), plan `{}`, status {})",
            dumped.operation.property,
            dumped.operation.business_date,
            dumped.operation.plan,
            dumped.operation.status
        ));
    }
    if dumped.steps != steps {
        let order = dumped
            .steps
            .iter()
            .zip(steps)
            .find(|(dumped, stored)| dumped != stored)
            .map_or_else(|| "count".to_owned(), |(step, _)| step.order.to_string());
        return Some(format!("their steps differ, first at step {order}"));
    }
    if dumped.events != events {
        let seq = dumped
            .events
            .iter()
            .zip(events)
            .position(|(dumped, stored)| dumped != stored)
            .unwrap_or(dumped.events.len().min(events.len()))
            + 1;
        return Some(format!(
            "their audit trails differ from event {seq} on (the store has {} events, the dump \
             {})",
            events.len(),
            dumped.events.len()
        ));
    }
    if dumped.source_id.as_ref() != source_id {
        return Some(format!(
            "their source ids differ (the store has {source_id:?}, the dump {:?})",
            dumped.source_id
        ));
    }
    None
}

/// Checks a dump against the rules every stored operation follows, before anything is written.
fn check_dump(dump: &Dump) -> std::result::Result<(), DumpError> {
    if dump.format != DUMP_FORMAT {
        return Err(DumpError::NotADump {
            found: format!("{:?}", dump.format),
        });
    }
    if dump.version != DUMP_VERSION {
        return Err(DumpError::UnsupportedVersion {
            found: dump.version.to_string(),
        });
    }
    let mut ids = BTreeSet::new();
    let mut days = BTreeMap::new();
    for dumped in &dump.operations {
        let operation = &dumped.operation;
        let id = operation.id;
        let invalid = |detail: String| DumpError::Invalid {
            operation: id,
            detail,
        };
        if id.0 == 0 || id.0 == u64::MAX {
            return Err(invalid(format!(
                "its id must be from 1 to {}",
                u64::MAX - 1
            )));
        }
        if !ids.insert(id) {
            return Err(invalid("the dump holds it twice".into()));
        }
        validate_property(&operation.property).map_err(|err| invalid(err.to_string()))?;
        let date = operation.business_date;
        parse_business_date(&date.to_string()).map_err(|err| invalid(err.to_string()))?;
        if let Some(other) = days.insert((operation.property.as_str(), date), id) {
            return Err(invalid(format!(
                "operation {other} of the dump is for the same property `{}` and business date \
                 {date}",
                operation.property
            )));
        }
        check_operation(dumped).map_err(invalid)?;
    }
    Ok(())
}

/// Checks one dumped operation as [`Store::check_integrity`] checks a stored one, and checks
/// that each record fits in the store.
fn check_operation(dumped: &DumpedOperation) -> std::result::Result<(), String> {
    let operation = &dumped.operation;
    let planned = &operation.plan_identity;
    if planned.is_empty() {
        return Err("its plan has no steps".into());
    }
    if planned
        .windows(2)
        .any(|pair| pair[0].order >= pair[1].order)
    {
        return Err("its plan's steps are not in strictly ascending order".into());
    }
    let same_steps = dumped.steps.len() == planned.len()
        && dumped.steps.iter().zip(planned).all(|(step, planned)| {
            step.order == planned.order
                && step.code == planned.code
                && step.required == planned.required
        });
    if !same_steps {
        let describe = |list: Vec<String>| list.join(", ");
        return Err(format!(
            "it has the steps [{}], but its plan `{}` has [{}]",
            describe(
                dumped
                    .steps
                    .iter()
                    .map(|step| format!("{}:{}", step.order, step.code))
                    .collect()
            ),
            operation.plan,
            describe(
                planned
                    .iter()
                    .map(|step| format!("{}:{}", step.order, step.code))
                    .collect()
            )
        ));
    }
    let derived = OperationStatus::of(&dumped.steps);
    if derived != operation.status {
        return Err(format!(
            "its status is {}, but its steps make it {derived}",
            operation.status
        ));
    }
    if (operation.status == OperationStatus::Completed) != operation.finished_at.is_some() {
        return Err(format!(
            "it is {} but {} a finish time",
            operation.status,
            if operation.finished_at.is_some() {
                "has"
            } else {
                "lacks"
            }
        ));
    }
    if let Some(problem) = super::check::replay_trail(operation, &dumped.steps, &dumped.events) {
        return Err(problem);
    }
    super::check::check_content(operation, &dumped.steps)?;
    if let Some(source) = &dumped.source_id {
        // Merged imports keep one source id per line.
        for line in source.split('\n') {
            super::check_text("source id", line, 200).map_err(|err| err.to_string())?;
        }
    }

    let too_large = |err: Error| match err {
        Error::Encode { detail, .. } => detail,
        other => other.to_string(),
    };
    codec::encode("operation", operation)
        .map_err(|err| format!("its record cannot be stored: {}", too_large(err)))?;
    for step in &dumped.steps {
        codec::encode("step", step)
            .map_err(|err| format!("step {} cannot be stored: {}", step.order, too_large(err)))?;
    }
    for event in &dumped.events {
        codec::encode("event", event)
            .map_err(|err| format!("event {} cannot be stored: {}", event.seq, too_large(err)))?;
    }
    Ok(())
}

fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    definition: TableDefinition<K, V>,
) -> Result<redb::ReadOnlyTable<K, V>> {
    txn.open_table(definition)
        .map_err(|err| Error::storage(format!("opening table `{definition}`"), err))
}

/// Opens the `sources` table of the snapshot, or returns `None` when the file has none.
fn open_sources(
    txn: &redb::ReadTransaction,
) -> Result<Option<redb::ReadOnlyTable<u64, &'static str>>> {
    match txn.open_table(tables::SOURCES) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(err) => Err(Error::storage("opening table `sources`", err)),
    }
}

fn read_source(
    table: &impl ReadableTable<u64, &'static str>,
    id: OperationId,
) -> Result<Option<String>> {
    Ok(table
        .get(id.0)
        .map_err(|err| Error::storage("reading a source id", err))?
        .map(|guard| guard.value().to_owned()))
}
