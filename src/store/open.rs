//! Opening a file: telling eodstore files from foreign ones, format versions and locks.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableHandle};

use super::tables::{self, FORMAT_KEY, META, TABLE_NAMES};
use super::{ConcurrencyMode, Durability, FORMAT_VERSION, Store, StoreOptions};
use crate::error::{Error, Result};

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

impl Store {
    /// Opens a store with `options`.
    ///
    /// # Errors
    ///
    /// - [`Error::NoDatabase`] when nothing exists at `path` and `options` do not create.
    /// - [`Error::NotEodstoreFile`] when the file is not a redb file, or a redb file without
    ///   eodstore's tables.
    /// - [`Error::NewerFormat`] when the file was written by a newer eodstore.
    /// - [`Error::Locked`] when another process holds the file in a mode that excludes this
    ///   one, or this process has it open already.
    /// - [`Error::Corrupt`] when redb finds the file damaged.
    /// - [`Error::InvalidInput`] when `options` combine [`Durability::None`] with a shared
    ///   concurrency mode, which redb does not allow.
    /// - [`Error::Storage`] or [`Error::Io`] when the file cannot be read or written.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_owned();
        if options.durability == Durability::None
            && options.concurrency != ConcurrencyMode::ExclusiveWriter
        {
            return Err(Error::InvalidInput {
                what: "store options",
                value: format!("{:?} with {:?}", options.durability, options.concurrency),
                expected: "Durability::None requires ConcurrencyMode::ExclusiveWriter, because \
                           a commit that is not synced is invisible to other processes"
                    .into(),
            });
        }
        check_signature(&path, options.create)?;

        let mut builder = redb::Builder::new();
        builder.set_concurrency_mode(match options.concurrency {
            ConcurrencyMode::ExclusiveWriter => redb::ConcurrencyMode::ExclusiveWriter,
            ConcurrencyMode::SingleWriter => redb::ConcurrencyMode::SingleWriter,
            ConcurrencyMode::MultiWriter => redb::ConcurrencyMode::MultiWriter,
        });
        // redb documents that opening a file damaged from outside may panic; such a panic is
        // reported as a damaged file, never passed on to the caller.
        let opened = catch_unwind(AssertUnwindSafe(|| {
            if options.create {
                builder.create(&path)
            } else {
                builder.open(&path)
            }
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(err)) => return Err(open_error(&path, err)),
            Err(_) => {
                return Err(Error::Corrupt {
                    path,
                    detail: "redb failed while reading the file's header".into(),
                });
            }
        };
        tracing::debug!(path = %path.display(), mode = ?options.concurrency, "opened store");
        let store = Store { db, path, options };
        store.check_format()?;
        Ok(store)
    }

    /// Checks the format version, and gives a new, empty redb file eodstore's tables.
    fn check_format(&self) -> Result<()> {
        let found = self.read_format()?;
        match found {
            Some(version) if version > FORMAT_VERSION => Err(Error::NewerFormat {
                path: self.path.clone(),
                found: version,
                supported: FORMAT_VERSION,
            }),
            Some(_) => Ok(()),
            None => self.initialize(),
        }
    }

    /// Returns the recorded format version, or `None` for a redb file with no tables at all.
    fn read_format(&self) -> Result<Option<u64>> {
        let txn = self
            .db
            .begin_read()
            .map_err(|err| Error::storage("reading the format version", err))?;
        let names: Vec<String> = txn
            .list_tables()
            .map_err(|err| Error::storage("listing tables", err))?
            .map(|handle| handle.name().to_owned())
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        let foreign = |reason: String| Error::NotEodstoreFile {
            path: self.path.clone(),
            reason,
        };
        if !names.iter().any(|name| name == "meta") {
            return Err(foreign(format!(
                "it is a redb database with the tables {}, but no eodstore `meta` table",
                names.join(", ")
            )));
        }
        let meta = txn
            .open_table(META)
            .map_err(|err| foreign(format!("its `meta` table has another layout: {err}")))?;
        let version = meta
            .get(FORMAT_KEY)
            .map_err(|err| Error::storage("reading the format version", err))?
            .ok_or_else(|| foreign("its `meta` table records no format version".into()))?;
        Ok(Some(version.value()))
    }

    /// Creates every table and records the format version, unless a racing opener did first.
    fn initialize(&self) -> Result<()> {
        if let Some(name) = self.foreign_tables()? {
            return Err(Error::NotEodstoreFile {
                path: self.path.clone(),
                reason: format!("it is a redb database with a table `{name}`"),
            });
        }
        self.write("initialize the store", |tables| {
            if tables.meta.get(FORMAT_KEY).map_err(|err| Error::storage("reading meta", err))?.is_none() {
                tables
                    .meta
                    .insert(FORMAT_KEY, FORMAT_VERSION)
                    .map_err(|err| Error::storage("writing the format version", err))?;
                tables
                    .meta
                    .insert(tables::NEXT_ID_KEY, 1)
                    .map_err(|err| Error::storage("writing the id counter", err))?;
                tracing::debug!(path = %self.path.display(), "initialized store");
            }
            Ok(())
        })
    }

    fn foreign_tables(&self) -> Result<Option<String>> {
        let txn = self
            .db
            .begin_read()
            .map_err(|err| Error::storage("listing tables", err))?;
        let mut handles = txn
            .list_tables()
            .map_err(|err| Error::storage("listing tables", err))?;
        Ok(handles
            .find(|handle| !TABLE_NAMES.contains(&handle.name()))
            .map(|handle| handle.name().to_owned()))
    }
}

/// Rejects a missing file (unless creating) and a non-empty file that is not a redb file, before
/// redb sees it.
fn check_signature(path: &Path, create: bool) -> Result<()> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return if create {
                Ok(())
            } else {
                Err(Error::NoDatabase {
                    path: path.to_owned(),
                })
            };
        }
        Err(source) => {
            return Err(Error::Io {
                action: "open",
                path: path.to_owned(),
                source,
            });
        }
    };
    let io_error = |source| Error::Io {
        action: "read",
        path: path.to_owned(),
        source,
    };
    if file.metadata().map_err(io_error)?.is_dir() {
        return Err(Error::NotEodstoreFile {
            path: path.to_owned(),
            reason: "it is a directory".into(),
        });
    }
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    file.by_ref()
        .take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    if head.is_empty() || head == REDB_MAGIC {
        return Ok(());
    }
    Err(Error::NotEodstoreFile {
        path: path.to_owned(),
        reason: "it does not start with the redb file signature".into(),
    })
}

fn open_error(path: &Path, err: redb::DatabaseError) -> Error {
    let path = path.to_owned();
    match err {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::Locked {
            path,
            detail: "another process has it open in a mode that excludes this one (an \
                     exclusive writer, or a different concurrency mode), or this process has \
                     it open already; close the other program, use the same concurrency mode \
                     everywhere, or share one Store within a process"
                .into(),
        },
        redb::DatabaseError::LockProtocolMismatch => Error::Locked {
            path,
            detail: "another process has it open with a different version of redb's locking \
                     protocol; close it, or run the same eodstore version everywhere"
                .into(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            Error::Corrupt { path, detail }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) => Error::Io {
            action: "open",
            path,
            source,
        },
        other => Error::storage(format!("opening `{}`", path.display()), other),
    }
}
