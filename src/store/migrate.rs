//! Migrating a file from an older store format to the one this build writes.

use std::path::{Path, PathBuf};

use redb::ReadableTable;
use serde::Serialize;

use super::tables::{self, FORMAT_KEY, WriteTables};
use super::{FORMAT_VERSION, Store, StoreOptions};
use crate::codec::{self, RECORD_FORMAT};
use crate::error::{Error, Result};
use crate::model::{
    ActiveOperation, Event, Operation, OperationId, OperationStatus, PropertyState, Step,
};

/// The result of [`Store::migrate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Migration {
    /// The format version the file had.
    pub from: u64,
    /// The format version it has now.
    pub to: u64,
    /// The copy of the file with its old records; `None` when the file already had the current
    /// format and nothing was done.
    pub backup: Option<PathBuf>,
    /// The number of records rewritten in the current record format.
    pub records: u64,
}

impl Store {
    /// Migrates the file at `path` to [`FORMAT_VERSION`], after copying it aside.
    ///
    /// The copy goes next to the file as `NAME.formatN.bak` (with a number added if that name
    /// is taken). It is written under a temporary name, synced and linked into place, so the backup name
    /// never contains a partial copy. The copy is taken inside the migration's write transaction,
    /// so no other process can commit between the copy and the migration. It contains every old
    /// record, though redb's header in it may differ from the original's, because redb has the
    /// file open while it is copied. Every record is then decoded in its old format, encoded in
    /// the current one, and the format version is raised, all in that one transaction: a crash
    /// leaves either the old file or the migrated one.
    ///
    /// A migration from a format before 3 also records, for each property, its operation that
    /// has started and not finished as the property's operation in progress (the one of the
    /// latest business date, where a property has several), because older formats did not
    /// keep it. It sets no business date.
    ///
    /// A file that has the current format and only current records is left untouched. Stop
    /// other programs that use the file first. A program built with an older eodstore that
    /// opens the file after the migration is rejected, but one that had it open already keeps
    /// writing records of its format. This build reads them, [`Store::check_integrity`] reports
    /// them, and running the migration again rewrites them.
    ///
    /// `options` give the concurrency mode and timeouts, as for [`Store::open_with`]; their
    /// `create` and `read_only` settings are ignored.
    ///
    /// # Errors
    ///
    /// The errors of [`Store::open_with`], except [`Error::OlderFormat`];
    /// [`Error::Io`] when the copy cannot be written; [`Error::Decode`] when a record is
    /// damaged, in which case nothing is migrated and the copy stays.
    pub fn migrate(path: impl AsRef<Path>, options: StoreOptions) -> Result<Migration> {
        let path = path.as_ref();
        let mut options = options.create(false).read_only(false);
        options.migrating = true;
        let store = Store::open_with(path, options)?;
        let migration = store.guarded("migrating the store", || {
            store.write("migrate the store", |tables| {
                // Read inside the write transaction, so that a migration that ran meanwhile in
                // another process is seen and not repeated.
                let from = tables
                    .meta
                    .get(FORMAT_KEY)
                    .map_err(|err| Error::storage("reading the format version", err))?
                    .map_or(FORMAT_VERSION, |guard| guard.value());
                // A current file may still contain old records, because an older program that
                // had the file open while it was migrated can write them. They are rewritten too.
                let outdated = outdated_records(tables)?;
                if from == FORMAT_VERSION && outdated == 0 {
                    return Ok(Migration {
                        from,
                        to: FORMAT_VERSION,
                        backup: None,
                        records: 0,
                    });
                }
                let backup = copy_aside(path, from)?;
                let records = rewrite_records(tables)?;
                if from < 3 {
                    record_operations_in_progress(tables, None)?;
                }
                tables.put_meta(FORMAT_KEY, FORMAT_VERSION)?;
                Ok(Migration {
                    from,
                    to: FORMAT_VERSION,
                    backup: Some(backup),
                    records,
                })
            })
        })?;
        if migration.backup.is_some() {
            tracing::info!(
                path = %path.display(),
                from = migration.from,
                to = FORMAT_VERSION,
                records = migration.records,
                "migrated store"
            );
        }
        Ok(migration)
    }
}

/// Copies the file at `path` to a free `NAME.formatN.bak` name beside it. The copy is written
/// under a temporary name, synced, linked into place and its directory synced, so that the
/// backup name never contains a partial copy, even after a crash.
fn copy_aside(path: &Path, format: u64) -> Result<PathBuf> {
    let name = path.file_name().map_or_else(
        || "eod.redb".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let backup = (1..=1000_u32)
        .map(|n| {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!(".{n}")
            };
            path.with_file_name(format!("{name}.format{format}{suffix}.bak"))
        })
        .find(|candidate| !candidate.exists())
        .ok_or_else(|| Error::InvalidInput {
            what: "backup name",
            value: path
                .with_file_name(format!("{name}.format{format}.bak"))
                .display()
                .to_string(),
            expected: "a free name: 1000 backups of this file exist; move old ones away".into(),
        })?;
    super::maintenance::copy_synced(path, &backup, &|_, _| {})?;
    Ok(backup)
}

/// Records, for each property without an operation in progress, its operation that has started
/// and not finished, which formats before 3 and dumps do not keep. Where a property has several,
/// the one of the latest business date is recorded; the others stay unfinished, and an operator
/// finishes them by hand. `only` limits the operations considered, such as to those a dump
/// import wrote.
pub(crate) fn record_operations_in_progress(
    tables: &mut WriteTables<'_>,
    only: Option<&std::collections::BTreeSet<OperationId>>,
) -> Result<()> {
    let mut latest: std::collections::BTreeMap<String, Operation> =
        std::collections::BTreeMap::new();
    for entry in tables
        .operations
        .iter()
        .map_err(|err| Error::storage("reading operations", err))?
    {
        let (key, _) = entry.map_err(|err| Error::storage("reading operations", err))?;
        let id = OperationId(key.value());
        if only.is_some_and(|only| !only.contains(&id)) {
            continue;
        }
        let Some(operation) = tables.operation(id)? else {
            continue;
        };
        let started = matches!(
            operation.status,
            OperationStatus::Running | OperationStatus::Failed
        );
        if !started || operation.finished_at.is_some() {
            continue;
        }
        let newer = latest
            .get(&operation.property)
            .is_none_or(|known| known.business_date < operation.business_date);
        if newer {
            latest.insert(operation.property.clone(), operation);
        }
    }
    for (property, operation) in latest {
        let mut state = tables.property(&property)?.unwrap_or(PropertyState {
            property: property.clone(),
            business_date: None,
            date_source: None,
            date_changed_at: None,
            active: None,
        });
        if state.active.is_some() {
            continue;
        }
        state.active = Some(ActiveOperation {
            operation: operation.id,
            business_date: operation.business_date,
            started_at: operation.created_at,
            started_by: operation.created_by.clone(),
            runner: None,
        });
        tables.put_property(&state)?;
    }
    Ok(())
}

/// Returns how many records are not in the current record format.
fn outdated_records(tables: &WriteTables<'_>) -> Result<u64> {
    let mut count = 0;
    let mut note = |_: String, bytes: &[u8]| {
        count += u64::from(bytes.first() != Some(&RECORD_FORMAT));
    };
    tables::scan_records(&tables.operations, &mut note)?;
    tables::scan_records(&tables.steps, &mut note)?;
    tables::scan_records(&tables.events, &mut note)?;
    tables::scan_records(&tables.requests, &mut note)?;
    Ok(count)
}

/// Rewrites every record that is not in the current record format; returns how many.
fn rewrite_records(tables: &mut WriteTables<'_>) -> Result<u64> {
    let outdated = |bytes: &[u8]| bytes.first() != Some(&RECORD_FORMAT);
    let storage = |err: redb::StorageError| Error::storage("reading records to migrate", err);
    let mut records = 0;

    let mut operations = Vec::new();
    for entry in tables.operations.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        if outdated(value.value()) {
            let id = key.value();
            let operation: Operation =
                codec::decode("operations", || id.to_string(), value.value())?;
            operations.push(operation);
        }
    }
    for operation in &operations {
        tables.put_operation(operation)?;
        records += 1;
    }

    let mut steps = Vec::new();
    for entry in tables.steps.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        if outdated(value.value()) {
            let (operation, order) = key.value();
            let step: Step =
                codec::decode("steps", || format!("({operation}, {order})"), value.value())?;
            steps.push((OperationId(operation), step));
        }
    }
    for (operation, step) in &steps {
        tables.put_step(*operation, step)?;
        records += 1;
    }

    let mut events = Vec::new();
    for entry in tables.events.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        if outdated(value.value()) {
            let (operation, seq) = key.value();
            let event: Event =
                codec::decode("events", || format!("({operation}, {seq})"), value.value())?;
            events.push(((operation, seq), codec::encode("event", &event)?));
        }
    }
    for (key, bytes) in events {
        tables.changed = true;
        tables
            .events
            .insert(key, bytes.as_slice())
            .map_err(storage)?;
        records += 1;
    }

    // Format-1 files did not record the length of each trail, and an older program that wrote
    // events after a migration did not raise it, so every trail is counted again.
    let mut ids = Vec::new();
    for entry in tables.operations.iter().map_err(storage)? {
        ids.push(entry.map_err(storage)?.0.value());
    }
    for id in ids {
        let mut count = 0_u64;
        for entry in tables
            .events
            .range((id, 0)..=(id, u64::MAX))
            .map_err(storage)?
        {
            entry.map_err(storage)?;
            count += 1;
        }
        tables.changed = true;
        tables.event_counts.insert(id, count).map_err(storage)?;
    }

    let mut requests = Vec::new();
    for entry in tables.requests.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        if outdated(value.value()) {
            requests.push(key.value().to_owned());
        }
    }
    for request_id in requests {
        if let Some(record) = tables.request(&request_id)? {
            tables.record_request(&request_id, &record)?;
            records += 1;
        }
    }
    Ok(records)
}
