//! Migrating a file from an older store format to the one this build writes.

use std::path::{Path, PathBuf};

use redb::ReadableTable;
use serde::Serialize;

use super::tables::{FORMAT_KEY, WriteTables};
use super::{FORMAT_VERSION, Store, StoreOptions};
use crate::codec::{self, RECORD_FORMAT};
use crate::error::{Error, Result};
use crate::model::{Event, Operation, OperationId, Step};

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
    /// is taken) and is synced before any record changes. The copy is taken inside the
    /// migration's write transaction, so no other process can commit between the copy and the
    /// migration. It holds every old record, though redb's header in it may differ from the
    /// original's, because redb has the file open while it is copied.
    /// Every record is then decoded in its old format, encoded in the current one, and the
    /// format version is raised, all in that one transaction: a crash leaves either the old
    /// file or the migrated one. A file that already has the current format is left untouched.
    /// Stop other programs that use the file first: builds that only know the old format fail
    /// on the new records with [`Error::Decode`].
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
        let from = store.guarded("reading the format version", || store.format_version())?;
        if from == FORMAT_VERSION {
            return Ok(Migration {
                from,
                to: FORMAT_VERSION,
                backup: None,
                records: 0,
            });
        }
        let migration = store.guarded("migrating the store", || {
            store.write("migrate the store", |tables| {
                let backup = copy_aside(path, from)?;
                let records = rewrite_records(tables)?;
                tables.put_meta(FORMAT_KEY, FORMAT_VERSION)?;
                Ok(Migration {
                    from,
                    to: FORMAT_VERSION,
                    backup: Some(backup),
                    records,
                })
            })
        })?;
        tracing::info!(
            path = %path.display(),
            from,
            to = FORMAT_VERSION,
            records = migration.records,
            "migrated store"
        );
        Ok(migration)
    }

    /// Returns the format version recorded in the file.
    fn format_version(&self) -> Result<u64> {
        let txn = self
            .db
            .begin_read()
            .map_err(|err| Error::storage("reading the format version", err))?;
        Ok(super::open::read_format_in(&txn, &self.path)?.unwrap_or(FORMAT_VERSION))
    }
}

/// Copies the file at `path` to a free `NAME.formatN.bak` name beside it and syncs the copy.
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
    let io_error = |source| Error::Io {
        action: "copy aside",
        path: backup.clone(),
        source,
    };
    std::fs::copy(path, &backup).map_err(io_error)?;
    std::fs::File::open(&backup)
        .and_then(|file| file.sync_all())
        .map_err(io_error)?;
    Ok(backup)
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
