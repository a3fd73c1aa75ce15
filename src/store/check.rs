//! Checking a whole file: redb's page checksums, then every record and the rules between them.

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::{ReadableTable, ReadableTableMetadata};
use serde::Serialize;

use super::FORMAT_VERSION;
use super::tables::{self, EVENTS, FORMAT_KEY, META, NEXT_ID_KEY, OPERATIONS, OPERATIONS_BY_DAY};
use super::tables::{REQUESTS, STEPS};
use super::{Database, RequestRecord, Store};
use crate::codec;
use crate::error::{Error, Result};
use crate::model::{Event, EventKind, Operation, OperationId, OperationStatus, Step, StepStatus};

/// The result of [`Store::check_integrity`]: what was read, and every problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// Whether redb verified the checksum of every page (only a read-write store can).
    pub pages_verified: bool,
    /// Whether redb had to rebuild its allocator state, which a crash or a damaged file needs.
    pub repaired: bool,
    /// The number of operations read.
    pub operations: u64,
    /// The number of steps read.
    pub steps: u64,
    /// The number of events read.
    pub events: u64,
    /// The number of request records read.
    pub requests: u64,
    /// Every problem found, in the order the check met them.
    pub problems: Vec<IntegrityProblem>,
}

impl IntegrityReport {
    /// Returns whether the check found no problem.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One problem found by [`Store::check_integrity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IntegrityProblem {
    /// The kind of rule that is broken.
    pub kind: ProblemKind,
    /// The operation concerned, when there is one.
    pub operation: Option<OperationId>,
    /// A description naming the table, key and values involved.
    pub detail: String,
}

/// The kinds of [`IntegrityProblem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// A record that does not decode: damaged bytes or an unknown record format.
    Undecodable,
    /// The `meta` table lacks its format version or has an id counter behind the operations.
    Meta,
    /// The day index and the operations disagree.
    Index,
    /// An operation's steps differ from its plan: a missing, extra or changed step.
    Steps,
    /// An operation's stored status differs from the status its steps give.
    Status,
    /// The audit trail disagrees with the steps: a gap, an event whose transition did not
    /// happen, or a transition without its event.
    Events,
    /// A record of an older format in a file of the current format.
    Format,
    /// A property's state disagrees with the operations: an operation in progress that does
    /// not exist or belongs to another property.
    Properties,
    /// The `changes` table names an event that does not exist, or one event twice.
    Changes,
}

impl ProblemKind {
    /// Returns the kind's name as `eod check` prints it: `undecodable`, `meta`, `index`,
    /// `steps`, `status`, `events`, `format`, `properties` or `changes`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Undecodable => "undecodable",
            ProblemKind::Meta => "meta",
            ProblemKind::Index => "index",
            ProblemKind::Steps => "steps",
            ProblemKind::Status => "status",
            ProblemKind::Events => "events",
            ProblemKind::Format => "format",
            ProblemKind::Properties => "properties",
            ProblemKind::Changes => "changes",
        }
    }
}

impl Store {
    /// Checks the whole file and reports every problem found.
    ///
    /// On a read-write store, redb first verifies the checksum of every page and rebuilds its
    /// allocator state (this is the check redb runs by itself when it opens a file after an
    /// unclean shutdown). Then every record of eodstore's tables is decoded and the rules
    /// between them are checked. The day index must match the operations, and each operation
    /// must have exactly the steps of its plan and the status its steps give. Its events,
    /// replayed transition by transition, must end in the stored steps. A read-only store skips the page
    /// check, because redb's check commits. The check reads the whole file, so it takes time on
    /// a large one; normal opens do not run it.
    ///
    /// # Errors
    ///
    /// - [`Error::Corrupt`] when redb finds damaged pages that it cannot repair.
    /// - [`Error::Busy`] when another call of this process is still using the store.
    /// - [`Error::Storage`] when the file cannot be read.
    pub fn check_integrity(&mut self) -> Result<IntegrityReport> {
        let (pages_verified, repaired) = self.check_pages()?;
        let mut report = self.guarded("checking records", || {
            let txn = self
                .db
                .begin_read()
                .map_err(|err| Error::storage("beginning the integrity check", err))?;
            check_records(&txn, &|done, total| {
                self.report_progress("checking records", done, total);
            })
        })?;
        report.pages_verified = pages_verified;
        report.repaired = repaired;
        if !report.is_clean() {
            tracing::warn!(path = %self.path.display(), problems = report.problems.len(), "integrity check found problems");
        }
        Ok(report)
    }

    /// Runs redb's page check on a read-write store; returns whether it ran and whether it
    /// repaired anything.
    fn check_pages(&mut self) -> Result<(bool, bool)> {
        let path = self.path.clone();
        let Database::ReadWrite(db) = &mut self.db else {
            return Ok((false, false));
        };
        let Some(db) = Arc::get_mut(db) else {
            return Err(Error::Busy {
                path,
                detail: "another call of this process is still using the store; check it when \
                         no other call is running"
                    .into(),
            });
        };
        let checked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.check_integrity()));
        match checked {
            Ok(Ok(passed)) => Ok((true, !passed)),
            Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)))) => {
                Err(Error::Corrupt { path, detail })
            }
            Ok(Err(redb::DatabaseError::TransactionInProgress)) => Err(Error::Busy {
                path,
                detail: "a read or write of this process is still running; check it when no \
                         other call is running"
                    .into(),
            }),
            Ok(Err(err)) => Err(Error::storage("checking pages", err)),
            Err(panic) => Err(self.corrupt_from_panic("checking pages", panic.as_ref())),
        }
    }
}

/// Collects problems while the check walks the tables.
struct Checker {
    report: IntegrityReport,
}

impl Checker {
    fn new() -> Checker {
        Checker {
            report: IntegrityReport {
                pages_verified: false,
                repaired: false,
                operations: 0,
                steps: 0,
                events: 0,
                requests: 0,
                problems: Vec::new(),
            },
        }
    }

    fn problem(&mut self, kind: ProblemKind, operation: Option<OperationId>, detail: String) {
        self.report.problems.push(IntegrityProblem {
            kind,
            operation,
            detail,
        });
    }

    /// Keeps a decoded value, or records the decode error as a problem.
    fn decoded<T>(&mut self, operation: Option<OperationId>, value: Result<T>) -> Option<T> {
        match value {
            Ok(value) => Some(value),
            Err(err) => {
                self.problem(ProblemKind::Undecodable, operation, err.to_string());
                None
            }
        }
    }
}

fn storage(err: redb::StorageError) -> Error {
    Error::storage("checking records", err)
}

fn open_error(err: redb::TableError) -> Error {
    Error::storage("opening a table to check it", err)
}

/// Checks every record readable from `txn`, reporting each operation checked to `progress`.
fn check_records(
    txn: &redb::ReadTransaction,
    progress: &dyn Fn(u64, u64),
) -> Result<IntegrityReport> {
    let mut checker = Checker::new();
    let operations = check_operations(txn, &mut checker)?;
    check_meta(txn, &mut checker, &operations)?;
    check_index(txn, &mut checker, &operations)?;
    let steps = read_all_steps(txn, &mut checker, &operations)?;
    let mut events = read_all_events(txn, &mut checker, &operations)?;
    let mut counts = read_event_counts(txn, &mut checker, &operations)?;
    let total = operations.len() as u64;
    let stored: std::collections::HashSet<(u64, u64)> = events
        .iter()
        .flat_map(|(id, trail)| trail.iter().map(move |(seq, _)| (id.0, *seq)))
        .collect();
    for (done, (id, operation)) in (1..).zip(&operations) {
        progress(done, total);
        let Some(operation) = operation else { continue };
        let steps = steps.get(id).map_or(&[][..], Vec::as_slice);
        check_steps(&mut checker, operation, steps);
        let events = events.remove(id).unwrap_or_default();
        let count = match &mut counts {
            Some(counts) => {
                let count = counts.remove(id);
                if count.is_none() {
                    checker.problem(
                        ProblemKind::Events,
                        Some(*id),
                        format!("operation {id} has no recorded event count"),
                    );
                }
                count
            }
            None => None,
        };
        check_events(&mut checker, operation, steps, &events, count);
    }
    check_sources(txn, &mut checker, &operations)?;
    check_properties(txn, &mut checker, &operations)?;
    check_changes(txn, &mut checker, &stored)?;
    check_requests(txn, &mut checker)?;
    check_record_formats(txn, &mut checker)?;
    Ok(checker.report)
}

/// Checks every property's state: it decodes, it is stored under its own name, and its
/// operation in progress exists and belongs to it. One that has finished is no problem: a
/// program built before format 3 can finish it after a migration, reads leave it out, and the
/// property's next write clears it. Files of format 2 and older lack the table.
fn check_properties(
    txn: &redb::ReadTransaction,
    checker: &mut Checker,
    operations: &BTreeMap<OperationId, Option<Operation>>,
) -> Result<()> {
    let table = match txn.open_table(tables::PROPERTIES) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(err) => return Err(open_error(err)),
    };
    for entry in table.iter().map_err(storage)? {
        let (key, _) = entry.map_err(storage)?;
        let name = key.value().to_owned();
        let state = tables::read_property(&table, &name);
        let Some(Some(state)) = checker.decoded(None, state) else {
            continue;
        };
        let Some(active) = &state.active else {
            continue;
        };
        let id = active.operation;
        let problem = match operations.get(&id) {
            None => Some(format!(
                "property `{name}` has operation {id} in progress, which does not exist"
            )),
            Some(Some(operation)) if operation.property != name => Some(format!(
                "property `{name}` has operation {id} in progress, which belongs to `{}`",
                operation.property
            )),
            _ => None,
        };
        if let Some(detail) = problem {
            checker.problem(ProblemKind::Properties, Some(id), detail);
        }
    }
    Ok(())
}

/// Checks that every entry of the `changes` table names an event that exists, and no event
/// twice. Events written before format 3 have no entry, so a missing entry is not a problem.
fn check_changes(
    txn: &redb::ReadTransaction,
    checker: &mut Checker,
    stored: &std::collections::HashSet<(u64, u64)>,
) -> Result<()> {
    let table = match txn.open_table(tables::CHANGES) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(err) => return Err(open_error(err)),
    };
    let mut seen = std::collections::HashSet::new();
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let (operation, seq) = value.value();
        let id = OperationId(operation);
        let change = key.value();
        if !stored.contains(&(operation, seq)) {
            checker.problem(
                ProblemKind::Changes,
                Some(id),
                format!(
                    "change {change} names event {seq} of operation {id}, which does not exist"
                ),
            );
        } else if !seen.insert((operation, seq)) {
            checker.problem(
                ProblemKind::Changes,
                Some(id),
                format!("change {change} names event {seq} of operation {id} a second time"),
            );
        }
    }
    Ok(())
}

/// Reports records of an older format in a file of the current format: an older program that
/// had the file open while it was migrated can still write them.
fn check_record_formats(txn: &redb::ReadTransaction, checker: &mut Checker) -> Result<()> {
    let meta = txn.open_table(META).map_err(open_error)?;
    let format = meta.get(FORMAT_KEY).map_err(storage)?.map(|v| v.value());
    if format != Some(FORMAT_VERSION) {
        return Ok(());
    }
    let mut outdated = Vec::new();
    let mut note = |table: &'static str, key: String, bytes: &[u8]| {
        if bytes
            .first()
            .is_some_and(|&first| first < codec::RECORD_FORMAT)
        {
            outdated.push(format!("{table} {key}"));
        }
    };
    let operations = txn.open_table(OPERATIONS).map_err(open_error)?;
    tables::scan_records(&operations, |key, bytes| note("operations", key, bytes))?;
    let steps = txn.open_table(STEPS).map_err(open_error)?;
    tables::scan_records(&steps, |key, bytes| note("steps", key, bytes))?;
    let events = txn.open_table(EVENTS).map_err(open_error)?;
    tables::scan_records(&events, |key, bytes| note("events", key, bytes))?;
    let requests = txn.open_table(REQUESTS).map_err(open_error)?;
    tables::scan_records(&requests, |key, bytes| note("requests", key, bytes))?;
    if let Some(first) = outdated.first() {
        checker.problem(
            ProblemKind::Format,
            None,
            format!(
                "{} records have an older record format in a format-{FORMAT_VERSION} file, the \
                 first at {first}; an older program wrote them while it had the file open during \
                 a migration: stop it and run `eod migrate` again",
                outdated.len()
            ),
        );
    }
    Ok(())
}

/// Reads every operation; an undecodable one is kept as `None` so that its steps are not
/// reported as orphans.
fn check_operations(
    txn: &redb::ReadTransaction,
    checker: &mut Checker,
) -> Result<BTreeMap<OperationId, Option<Operation>>> {
    let table = txn.open_table(OPERATIONS).map_err(open_error)?;
    let mut operations = BTreeMap::new();
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let id = OperationId(key.value());
        checker.report.operations += 1;
        let decoded = codec::decode::<Operation>("operations", || id.to_string(), value.value());
        let operation = checker.decoded(Some(id), decoded);
        if let Some(operation) = &operation
            && operation.id != id
        {
            checker.problem(
                ProblemKind::Index,
                Some(id),
                format!("the record under key {id} is operation {}", operation.id),
            );
        }
        operations.insert(id, operation);
    }
    Ok(operations)
}

fn check_meta(
    txn: &redb::ReadTransaction,
    checker: &mut Checker,
    operations: &BTreeMap<OperationId, Option<Operation>>,
) -> Result<()> {
    let meta = txn.open_table(META).map_err(open_error)?;
    if meta.get(FORMAT_KEY).map_err(storage)?.is_none() {
        checker.problem(
            ProblemKind::Meta,
            None,
            format!("table `meta` has no `{FORMAT_KEY}`"),
        );
    }
    let next = meta.get(NEXT_ID_KEY).map_err(storage)?.map(|v| v.value());
    let highest = operations.keys().next_back().map(|id| id.0);
    match (next, highest) {
        (None, _) => checker.problem(
            ProblemKind::Meta,
            None,
            format!("table `meta` has no `{NEXT_ID_KEY}`"),
        ),
        (Some(next), Some(highest)) if next <= highest => checker.problem(
            ProblemKind::Meta,
            None,
            format!(
                "`{NEXT_ID_KEY}` is {next}, but operation {highest} exists, so a new \
                 operation would reuse an id"
            ),
        ),
        _ => {}
    }
    Ok(())
}

/// Checks that the day index and the operations point at each other.
fn check_index(
    txn: &redb::ReadTransaction,
    checker: &mut Checker,
    operations: &BTreeMap<OperationId, Option<Operation>>,
) -> Result<()> {
    let index = txn.open_table(OPERATIONS_BY_DAY).map_err(open_error)?;
    let mut indexed = 0_u64;
    for entry in index.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let (property, day) = key.value();
        let id = OperationId(value.value());
        indexed += 1;
        match operations.get(&id) {
            None => checker.problem(
                ProblemKind::Index,
                Some(id),
                format!("the day index maps ({property:?}, {day}) to operation {id}, which does not exist"),
            ),
            Some(Some(operation))
                if operation.property != property
                    || tables::day_key(operation.business_date) != day =>
            {
                checker.problem(
                    ProblemKind::Index,
                    Some(id),
                    format!(
                        "the day index maps ({property:?}, {day}) to operation {id}, which is \
                         for ({:?}, {})",
                        operation.property, operation.business_date
                    ),
                );
            }
            Some(_) => {}
        }
    }
    for (id, operation) in operations {
        let Some(operation) = operation else { continue };
        let found =
            tables::read_operation_id(&index, &operation.property, operation.business_date)?;
        if found != Some(*id) {
            checker.problem(
                ProblemKind::Index,
                Some(*id),
                format!(
                    "operation {id} ({:?}, {}) is not in the day index",
                    operation.property, operation.business_date
                ),
            );
        }
    }
    if indexed != checker.report.operations {
        checker.problem(
            ProblemKind::Index,
            None,
            format!(
                "the day index has {indexed} entries for {} operations",
                checker.report.operations
            ),
        );
    }
    Ok(())
}

/// Reads every step, grouped by operation; steps of operations that do not exist are problems.
fn read_all_steps(
    txn: &redb::ReadTransaction,
    checker: &mut Checker,
    operations: &BTreeMap<OperationId, Option<Operation>>,
) -> Result<BTreeMap<OperationId, Vec<Step>>> {
    let table = txn.open_table(STEPS).map_err(open_error)?;
    let mut steps: BTreeMap<OperationId, Vec<Step>> = BTreeMap::new();
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let (operation, order) = key.value();
        let id = OperationId(operation);
        checker.report.steps += 1;
        if !operations.contains_key(&id) {
            checker.problem(
                ProblemKind::Steps,
                Some(id),
                format!("step ({operation}, {order}) belongs to no operation"),
            );
            continue;
        }
        let decoded =
            codec::decode::<Step>("steps", || format!("({operation}, {order})"), value.value());
        let Some(step) = checker.decoded(Some(id), decoded) else {
            continue;
        };
        if step.order != order {
            checker.problem(
                ProblemKind::Steps,
                Some(id),
                format!(
                    "the record under ({operation}, {order}) is step {}",
                    step.order
                ),
            );
        }
        steps.entry(id).or_default().push(step);
    }
    Ok(steps)
}

/// Checks an operation's steps against its plan identity and its stored status.
/// The highest operation id a store accepts, far below `u64::MAX`, so that the id counter can
/// always advance past an imported id.
pub(crate) const MAX_OPERATION_ID: u64 = 1 << 62;

/// Checks the texts and fields of a stored operation and its steps against the rules that every
/// write applies. Its steps must pass the plan rules of [`Plan::new`](crate::Plan::new), the
/// property and actors the text limits, and its id the id range, and only a running step may
/// have a claim. Returns the first broken rule.
pub(crate) fn check_content(
    operation: &Operation,
    steps: &[Step],
) -> std::result::Result<(), String> {
    if operation.id.0 == 0 || operation.id.0 > MAX_OPERATION_ID {
        return Err(format!(
            "its id {} is outside 1 to {MAX_OPERATION_ID}",
            operation.id
        ));
    }
    super::validate_property(&operation.property).map_err(|err| err.to_string())?;
    super::check_text("actor", &operation.created_by, 200).map_err(|err| err.to_string())?;
    let plan_steps = steps
        .iter()
        .map(|step| crate::PlanStep {
            order: step.order,
            code: step.code.clone(),
            name: step.name.clone(),
            required: step.required,
            command: None,
            timeout_seconds: None,
            schedule: None,
            retry: None,
        })
        .collect();
    crate::Plan::new(operation.plan.clone(), plan_steps).map_err(|err| err.to_string())?;
    for step in steps {
        if let Some(actor) = &step.actor {
            super::check_text("actor", actor, 200).map_err(|err| err.to_string())?;
        }
        match &step.claim {
            Some(_) if step.status != StepStatus::Running => {
                return Err(format!(
                    "step {} is {} but has a claim, which only a running step may have",
                    step.order, step.status
                ));
            }
            Some(claim) => {
                super::check_text("actor", &claim.actor, 200).map_err(|err| err.to_string())?;
            }
            None => {}
        }
    }
    Ok(())
}

fn check_steps(checker: &mut Checker, operation: &Operation, steps: &[Step]) {
    let id = operation.id;
    if let Err(problem) = check_content(operation, steps) {
        checker.problem(
            ProblemKind::Steps,
            Some(id),
            format!("operation {id}: {problem}"),
        );
    }
    let found: Vec<(u32, &str, bool)> = steps
        .iter()
        .map(|step| (step.order, step.code.as_str(), step.required))
        .collect();
    let planned: Vec<(u32, &str, bool)> = operation
        .plan_identity
        .iter()
        .map(|step| (step.order, step.code.as_str(), step.required))
        .collect();
    if found != planned {
        let describe = |list: &[(u32, &str, bool)]| {
            list.iter()
                .map(|(order, code, _)| format!("{order}:{code}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        checker.problem(
            ProblemKind::Steps,
            Some(id),
            format!(
                "operation {id} has the steps [{}], but its plan `{}` has [{}]",
                describe(&found),
                operation.plan,
                describe(&planned)
            ),
        );
        return;
    }
    let derived = OperationStatus::of(steps);
    if derived != operation.status {
        checker.problem(
            ProblemKind::Status,
            Some(id),
            format!(
                "operation {id} is stored as {}, but its steps make it {derived}",
                operation.status
            ),
        );
    }
    if (operation.status == OperationStatus::Completed) != operation.finished_at.is_some() {
        checker.problem(
            ProblemKind::Status,
            Some(id),
            format!(
                "operation {id} is {} but {} a finish time",
                operation.status,
                if operation.finished_at.is_some() {
                    "has"
                } else {
                    "lacks"
                }
            ),
        );
    }
}

/// An operation's events as read: each sequence number with its event, or `None` for an event
/// that did not decode.
type Trail = Vec<(u64, Option<Event>)>;

/// Reads the recorded trail lengths, or `None` for a format-1 file without them; counts of
/// operations that do not exist are problems.
fn read_event_counts(
    txn: &redb::ReadTransaction,
    checker: &mut Checker,
    operations: &BTreeMap<OperationId, Option<Operation>>,
) -> Result<Option<BTreeMap<OperationId, u64>>> {
    let table = match txn.open_table(tables::EVENT_COUNTS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(err) => return Err(open_error(err)),
    };
    let mut counts = BTreeMap::new();
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let id = OperationId(key.value());
        if operations.contains_key(&id) {
            counts.insert(id, value.value());
        } else {
            checker.problem(
                ProblemKind::Events,
                Some(id),
                format!("an event count is recorded for operation {id}, which does not exist"),
            );
        }
    }
    Ok(Some(counts))
}

/// Reads every event, grouped by operation. Events of operations that do not exist are
/// problems, because an event key with a damaged operation id lands there.
fn read_all_events(
    txn: &redb::ReadTransaction,
    checker: &mut Checker,
    operations: &BTreeMap<OperationId, Option<Operation>>,
) -> Result<BTreeMap<OperationId, Trail>> {
    let table = txn.open_table(EVENTS).map_err(open_error)?;
    let mut events: BTreeMap<OperationId, Trail> = BTreeMap::new();
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let (operation, seq) = key.value();
        let id = OperationId(operation);
        checker.report.events += 1;
        if !operations.contains_key(&id) {
            checker.problem(
                ProblemKind::Events,
                Some(id),
                format!("event ({operation}, {seq}) belongs to no operation"),
            );
            continue;
        }
        let decoded = codec::decode::<Event>("events", || format!("({id}, {seq})"), value.value());
        let event = checker.decoded(Some(id), decoded);
        events.entry(id).or_default().push((seq, event));
    }
    Ok(events)
}

/// Replays an operation's whole audit trail against its steps; returns the first disagreement.
/// Reads of the trail use it to catch events lost to a damaged key, which redb's ordinary reads
/// do not detect.
pub(crate) fn replay_trail(
    operation: &Operation,
    steps: &[Step],
    events: &[Event],
) -> Option<String> {
    let mut checker = Checker::new();
    let events: Vec<(u64, Option<Event>)> = events
        .iter()
        .map(|event| (event.seq, Some(event.clone())))
        .collect();
    check_events(&mut checker, operation, steps, &events, None);
    checker
        .report
        .problems
        .into_iter()
        .next()
        .map(|problem| problem.detail)
}

/// Replays an operation's events and compares the result with its steps.
fn check_events(
    checker: &mut Checker,
    operation: &Operation,
    steps: &[Step],
    events: &[(u64, Option<Event>)],
    count: Option<u64>,
) {
    let id = operation.id;
    let mut problem = |detail: String| checker.problem(ProblemKind::Events, Some(id), detail);
    let mut states: BTreeMap<u32, (StepStatus, u32)> = steps
        .iter()
        .map(|step| (step.order, (StepStatus::Pending, 0)))
        .collect();
    if let Some(count) = count
        && count != events.len() as u64
    {
        problem(format!(
            "operation {id} records {count} events, but its trail has {}",
            events.len()
        ));
    }
    let mut finished = 0;
    let mut complete = true;

    for (index, (seq, event)) in events.iter().enumerate() {
        if *seq != index as u64 + 1 {
            problem(format!(
                "event {seq} of operation {id} follows {index} events; the trail has a gap"
            ));
            return;
        }
        let Some(event) = event else {
            complete = false;
            continue;
        };
        if event.seq != *seq {
            problem(format!(
                "the event under ({id}, {seq}) says it is event {}",
                event.seq
            ));
        }
        if event.kind == EventKind::OperationFinished {
            finished += 1;
        }
        let Some(order) = event.step_order else {
            continue;
        };
        let Some((state, attempts)) = states.get_mut(&order) else {
            problem(format!(
                "event {seq} ({}) of operation {id} names step {order}, which it does not have",
                event.kind
            ));
            continue;
        };
        if let Some(from) = event.from
            && from != *state
        {
            problem(format!(
                "event {seq} ({}) of operation {id} moves step {order} from {from}, but the \
                 events before it leave the step {state}",
                event.kind
            ));
        }
        if let Some(to) = event.to {
            *state = to;
        }
        if counts_attempt(event) {
            *attempts += 1;
        }
    }
    if events
        .first()
        .and_then(|(_, event)| event.as_ref())
        .map(|event| event.kind)
        != Some(EventKind::OperationCreated)
        && complete
    {
        problem(format!(
            "the first event of operation {id} is not `operation_created`"
        ));
    }
    if !complete {
        // An undecodable event is reported already; replaying without it would only add noise.
        return;
    }
    for step in steps {
        let (state, attempts) = states[&step.order];
        if state != step.status || attempts != step.attempts {
            problem(format!(
                "step {} of operation {id} is {} after {} attempts, but its events give {state} \
                 after {attempts}",
                step.order, step.status, step.attempts
            ));
        }
    }
    let expected = u32::from(operation.status == OperationStatus::Completed);
    if finished != expected {
        problem(format!(
            "operation {id} is {} but has {finished} `operation_finished` events",
            operation.status
        ));
    }
}

/// Returns whether `event` counts one attempt of its step: a start, a takeover, or the import
/// of a step that had run in the source system.
fn counts_attempt(event: &Event) -> bool {
    match event.kind {
        EventKind::Started | EventKind::TakenOver => true,
        EventKind::Imported => matches!(
            event.to,
            Some(StepStatus::Running | StepStatus::Completed | StepStatus::Failed)
        ),
        _ => false,
    }
}

/// Checks that every recorded source id belongs to an operation. Files written before imports
/// existed lack the `sources` table.
fn check_sources(
    txn: &redb::ReadTransaction,
    checker: &mut Checker,
    operations: &BTreeMap<OperationId, Option<Operation>>,
) -> Result<()> {
    let table = match txn.open_table(tables::SOURCES) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(err) => return Err(open_error(err)),
    };
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let id = OperationId(key.value());
        if !operations.contains_key(&id) {
            checker.problem(
                ProblemKind::Index,
                Some(id),
                format!(
                    "source ids `{}` are recorded for operation {id}, which does not exist",
                    value.value().replace('\n', "`, `")
                ),
            );
        }
    }
    Ok(())
}

fn check_requests(txn: &redb::ReadTransaction, checker: &mut Checker) -> Result<()> {
    let table = txn.open_table(REQUESTS).map_err(open_error)?;
    checker.report.requests = table.len().map_err(storage)?;
    for entry in table.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        let request_id = key.value();
        let decoded =
            codec::decode::<RequestRecord>("requests", || format!("`{request_id}`"), value.value());
        checker.decoded(None, decoded);
    }
    Ok(())
}
