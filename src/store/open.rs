//! Opening a file: telling eodstore files from foreign ones, format versions and locks.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable, TableHandle};

use super::tables::{self, FORMAT_KEY, META, TABLE_NAMES};
use super::{ConcurrencyMode, Database, Durability, FORMAT_VERSION, Store, StoreOptions};
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
    ///   concurrency mode, which redb does not allow, or set a lease or cache size out of range.
    /// - [`Error::Storage`] or [`Error::Io`] when the file cannot be read or written.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_owned();
        check_options(&options)?;
        match file_state(&path)? {
            FileState::Redb => {}
            FileState::Empty if options.create && !options.read_only => {
                return open_checked(path, options, false);
            }
            FileState::Empty => {
                return Err(Error::NotEodstoreFile {
                    path,
                    reason: "it is empty".into(),
                });
            }
            FileState::Missing if options.create && !options.read_only => {
                create_atomically(&path, &options)?;
            }
            FileState::Missing => return Err(Error::NoDatabase { path }),
        }
        open_checked(path, options, true)
    }

    /// Opens a store kept in a redb storage backend instead of a file: redb's
    /// [`InMemoryBackend`](redb::backends::InMemoryBackend) for tests, or a backend of the
    /// application's own. `label` names the store in messages, where a file's path would be.
    ///
    /// `options` apply as for a file, with two differences. Empty storage is initialized only
    /// when [`StoreOptions::create`] is set. The shared concurrency modes need a backend that
    /// implements redb's range locks (see [`redb::StorageBackend`]), so give a backend without
    /// them [`ConcurrencyMode::ExclusiveWriter`]. A newer or foreign store is rejected after
    /// redb has opened it, which may have updated redb's header in the backend.
    ///
    /// # Errors
    ///
    /// As [`Store::open_with`], with [`Error::NoDatabase`] for empty storage without
    /// [`StoreOptions::create`], and the backend's failures as [`Error::Storage`].
    pub fn open_with_backend(
        label: impl Into<PathBuf>,
        backend: impl redb::StorageBackend,
        options: StoreOptions,
    ) -> Result<Store> {
        let path = label.into();
        check_options(&options)?;
        let backend_error = |context: &'static str| {
            move |err: redb::BackendError| Error::storage(context, redb::StorageError::from(err))
        };
        let len = backend
            .len()
            .map_err(backend_error("reading the backend's length"))?;
        if len == 0 && (options.read_only || !options.create) {
            return Err(Error::NoDatabase { path });
        }
        if len > 0 && options.create && !options.read_only {
            // redb writes its signature last when it initializes storage, so storage that is
            // not empty but starts with zeros is a creation cut off by a failure. It contains no
            // data, so creating it again is safe.
            let mut head = [0_u8; REDB_MAGIC.len()];
            let cut_off = len < head.len() as u64
                || (backend
                    .read(0, &mut head)
                    .map_err(backend_error("reading the backend's header"))
                    .map(|()| head == [0; REDB_MAGIC.len()]))?;
            if cut_off {
                tracing::warn!(label = %path.display(), "creating the store again after a creation that was cut off");
                backend
                    .set_len(0)
                    .map_err(backend_error("clearing a cut-off creation"))?;
            }
        }
        let builder = redb_builder(options.concurrency, options.cache_size);
        let opened = catch_unwind(AssertUnwindSafe(|| {
            if options.read_only {
                builder
                    .open_read_only_with_backend(backend)
                    .map(Database::ReadOnly)
            } else {
                builder
                    .create_with_backend(backend)
                    .map(|db| Database::ReadWrite(Arc::new(db)))
            }
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(err)) => return Err(open_error(&path, err)),
            Err(_) => {
                return Err(Error::Corrupt {
                    path,
                    detail: "redb failed while reading the storage's header".into(),
                });
            }
        };
        let store = Store::new(db, path, options);
        // redb may panic while it reads the tables of a damaged file, here as anywhere else.
        store.guarded("reading the format version", || {
            if !store.options.read_only {
                return store.check_format();
            }
            let txn = store
                .db
                .begin_read()
                .map_err(|err| Error::storage("reading the format version", err))?;
            match read_format_in(&txn, &store.path)? {
                Some(version) if version > FORMAT_VERSION => Err(Error::NewerFormat {
                    path: store.path.clone(),
                    found: version,
                    supported: FORMAT_VERSION,
                }),
                Some(_) => Ok(()),
                None => Err(Error::NotEodstoreFile {
                    path: store.path.clone(),
                    reason: "it is a redb database without eodstore's tables".into(),
                }),
            }
        })?;
        Ok(store)
    }

    /// Checks the format version, and gives a new, empty redb file eodstore's tables.
    fn check_format(&self) -> Result<()> {
        let txn = self
            .db
            .begin_read()
            .map_err(|err| Error::storage("reading the format version", err))?;
        let found = read_format_in(&txn, &self.path)?;
        match found {
            Some(version) if version > FORMAT_VERSION => Err(Error::NewerFormat {
                path: self.path.clone(),
                found: version,
                supported: FORMAT_VERSION,
            }),
            Some(version)
                if version < FORMAT_VERSION
                    && !self.options.migrating
                    && !self.options.read_only =>
            {
                Err(Error::OlderFormat {
                    path: self.path.clone(),
                    found: version,
                    current: FORMAT_VERSION,
                })
            }
            Some(_) => Ok(()),
            None => self.initialize(),
        }
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
            let present = tables
                .meta
                .get(FORMAT_KEY)
                .map_err(|err| Error::storage("reading the format version", err))?
                .is_some();
            if !present {
                tables.put_meta(FORMAT_KEY, FORMAT_VERSION)?;
                tables.put_meta(tables::NEXT_ID_KEY, 1)?;
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

/// Rejects a default lease outside the range that `Caller::validate` allows, and option
/// combinations that redb does not allow.
fn check_options(options: &StoreOptions) -> Result<()> {
    super::check_lease(options.lease)?;
    if options.cache_size < super::MIN_CACHE_SIZE {
        return Err(Error::InvalidInput {
            what: "cache size",
            value: format!("{} bytes", options.cache_size),
            expected: format!(
                "a cache of at least {} bytes (1 MiB) in `StoreOptions::cache_size`; the \
                 default is {} bytes (1 GiB)",
                super::MIN_CACHE_SIZE,
                super::DEFAULT_CACHE_SIZE
            ),
        });
    }
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
    Ok(())
}

/// Returns the recorded format version, or `None` for a redb file with no tables at all.
fn read_format(db: &impl ReadableDatabase, path: &Path) -> Result<Option<u64>> {
    let txn = db
        .begin_read()
        .map_err(|err| Error::storage("reading the format version", err))?;
    read_format_in(&txn, path)
}

/// Returns the format version recorded in the snapshot `txn`, or `None` for a redb file with no
/// tables at all.
pub(super) fn read_format_in(txn: &redb::ReadTransaction, path: &Path) -> Result<Option<u64>> {
    let names: Vec<String> = txn
        .list_tables()
        .map_err(|err| Error::storage("listing tables", err))?
        .map(|handle| handle.name().to_owned())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let foreign = |reason: String| Error::NotEodstoreFile {
        path: path.to_owned(),
        reason,
    };
    if !names.iter().any(|name| name == "meta") {
        return Err(foreign(format!(
            "it is a redb database with the tables {}, but no eodstore `meta` table",
            names.join(", ")
        )));
    }
    let meta = txn.open_table(META).map_err(|err| match err {
        redb::TableError::Storage(err) => {
            Error::storage("reading the format version", err).damaged_at(path)
        }
        err => foreign(format!("its `meta` table has another layout: {err}")),
    })?;
    let version = meta
        .get(FORMAT_KEY)
        .map_err(|err| Error::storage("reading the format version", err).damaged_at(path))?
        .ok_or_else(|| foreign("its `meta` table records no format version".into()))?;
    Ok(Some(version.value()))
}

/// Returns a redb builder for `mode` that logs a recovery. After an unclean shutdown in the
/// exclusive-writer mode, redb's read-write open verifies the checksums of the last commit's
/// pages, falls back to the commit before it if they fail, and rebuilds its allocator state. In
/// the shared modes every commit records the allocator state, so the open loads it instead and
/// does not verify those pages (`eod check` does). A clean open skips that work.
fn redb_builder(mode: ConcurrencyMode, cache_size: usize) -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_cache_size(cache_size);
    let logged = std::cell::Cell::new(false);
    builder.set_repair_callback(move |session| {
        if !logged.replace(true) {
            tracing::warn!(
                progress = session.progress(),
                "the file was not closed cleanly; verifying its checksums and rebuilding redb's \
                 allocator state"
            );
        }
    });
    builder.set_concurrency_mode(match mode {
        ConcurrencyMode::ExclusiveWriter => redb::ConcurrencyMode::ExclusiveWriter,
        ConcurrencyMode::SingleWriter => redb::ConcurrencyMode::SingleWriter,
        ConcurrencyMode::MultiWriter => redb::ConcurrencyMode::MultiWriter,
    });
    builder
}

/// Runs a redb open on a helper thread and waits at most `timeout` for it.
///
/// redb's open waits without limit for a file lock that another process holds (a process with
/// the file in exclusive-writer mode, or one inside a write transaction), so the wait is bounded
/// here. A timed-out open is left to finish on its own thread and then dropped. redb documents
/// that opening a file damaged from outside may panic; such a panic is reported as a damaged
/// file.
fn open_bounded<T: Send + 'static>(
    path: &Path,
    timeout: Duration,
    open: impl FnOnce() -> std::result::Result<T, redb::DatabaseError> + Send + 'static,
) -> Result<T> {
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("eodstore-open".into())
        .spawn(move || {
            let _ = sender.send(catch_unwind(AssertUnwindSafe(open)));
        })
        .map_err(|source| Error::Io {
            action: "start a thread to open",
            path: path.to_owned(),
            source,
        })?;
    match receiver.recv_timeout(timeout) {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(err))) => Err(open_error(path, err)),
        Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::Corrupt {
            path: path.to_owned(),
            detail: "redb failed while reading the file's header".into(),
        }),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::Busy {
            path: path.to_owned(),
            detail: format!(
                "another process has held its lock for over {} s, either with the file open in \
                 exclusive-writer mode or inside a long write transaction; close that program \
                 or try again later",
                timeout.as_secs_f64()
            ),
        }),
    }
}

/// Opens `path` with redb and checks its format. `existing` says whether a redb file is there;
/// if not, redb creates one in place.
fn open_checked(path: PathBuf, options: StoreOptions, existing: bool) -> Result<Store> {
    let mode = options.concurrency;
    let cache_size = options.cache_size;

    // Inspect an existing file read-only first, so that a foreign or newer file is rejected
    // before redb opens it for writing (which may update its header). A file that redb cannot
    // open read-only, such as one that needs recovery after a crash in the exclusive-writer
    // mode, goes on to the read-write open, which recovers it and runs the same checks.
    if existing {
        let inspect_path = path.clone();
        let inspected = open_bounded(&path, options.open_timeout, move || {
            let db = redb_builder(mode, cache_size).open_read_only(&inspect_path)?;
            let format = read_format(&db, &inspect_path);
            Ok((db, format))
        });
        match inspected {
            Ok((_, Ok(Some(version)))) if version > FORMAT_VERSION => {
                return Err(Error::NewerFormat {
                    path,
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
            Ok((_, Ok(Some(version))))
                if version < FORMAT_VERSION && !options.read_only && !options.migrating =>
            {
                return Err(Error::OlderFormat {
                    path,
                    found: version,
                    current: FORMAT_VERSION,
                });
            }
            Ok((db, Ok(Some(_)))) if options.read_only => {
                tracing::debug!(path = %path.display(), ?mode, "opened store read-only");
                return Ok(Store::new(Database::ReadOnly(db), path, options));
            }
            Ok((_, Ok(None))) if options.read_only => {
                return Err(Error::NotEodstoreFile {
                    path,
                    reason: "it is a redb database without eodstore's tables".into(),
                });
            }
            Ok((_, Err(err @ (Error::NotEodstoreFile { .. } | Error::Corrupt { .. }))))
            | Err(err @ (Error::Busy { .. } | Error::Locked { .. } | Error::Corrupt { .. })) => {
                return Err(err);
            }
            _ => {}
        }
    }

    let create = options.create;
    let open_path = path.clone();
    let db = open_bounded(&path, options.open_timeout, move || {
        let builder = redb_builder(mode, cache_size);
        if create {
            builder.create(&open_path)
        } else {
            builder.open(&open_path)
        }
    })?;
    tracing::debug!(path = %path.display(), ?mode, "opened store");
    let store = Store::new(Database::ReadWrite(Arc::new(db)), path, options);
    // redb may panic while it reads the tables of a damaged file, here as anywhere else.
    store.guarded("reading the format version", || store.check_format())?;
    Ok(store)
}

/// Creates a new store at `path` without a moment in which another process, or a crash, could
/// see a half-made file there: the store is made under a temporary name in the same directory
/// and then hard-linked into place. When another process links its file first, that file is
/// used and this one is removed.
fn create_atomically(path: &Path, options: &StoreOptions) -> Result<()> {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::InvalidInput {
            what: "database path",
            value: path.display().to_string(),
            expected: "a file in an existing directory; create the directory first".into(),
        });
    }
    let name = path.file_name().map_or_else(
        || "eod.redb".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let nanos = jiff::Timestamp::now().as_nanosecond();
    let temporary = parent.join(format!(".{name}.{}.{nanos}.creating", std::process::id()));

    let made = open_checked(temporary.clone(), options.clone().create(true), false).map(drop);
    let linked = made.and_then(|()| match std::fs::hard_link(&temporary, path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::Io {
            action: "create",
            path: path.to_owned(),
            source,
        }),
    });
    // The temporary name is only scaffolding; a leftover after a crash is harmless.
    let _ = std::fs::remove_file(&temporary);
    linked
}

/// What is at a database path before redb sees it.
enum FileState {
    Missing,
    Empty,
    Redb,
}

/// Tells a missing, empty or redb file apart, and rejects anything else: a directory, a FIFO
/// or device (which are never opened, because opening a FIFO waits for a writer), or a file
/// that does not start with the redb signature.
fn file_state(path: &Path) -> Result<FileState> {
    let foreign = |reason: &str| Error::NotEodstoreFile {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::Missing),
        Err(source) => {
            return Err(Error::Io {
                action: "inspect",
                path: path.to_owned(),
                source,
            });
        }
    };
    if metadata.is_dir() {
        return Err(foreign("it is a directory"));
    }
    if !metadata.is_file() {
        return Err(foreign("it is not a regular file"));
    }
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    std::fs::File::open(path)
        .and_then(|file| file.take(REDB_MAGIC.len() as u64).read_to_end(&mut head))
        .map_err(|source| Error::Io {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
    if head.is_empty() {
        Ok(FileState::Empty)
    } else if head == REDB_MAGIC {
        Ok(FileState::Redb)
    } else if head.iter().all(|&byte| byte == 0) {
        Err(Error::Corrupt {
            path: path.to_owned(),
            detail: "it starts with zeros instead of the redb signature, as a creation cut off \
                     by a crash leaves it; if it never held data, delete it and open again"
                .into(),
        })
    } else if REDB_MAGIC.starts_with(&head) {
        Err(Error::Corrupt {
            path: path.to_owned(),
            detail: format!("it is cut off after {} bytes", head.len()),
        })
    } else {
        Err(foreign("it does not start with the redb file signature"))
    }
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
        redb::DatabaseError::Storage(redb::StorageError::Unsupported) => Error::InvalidInput {
            what: "storage backend",
            value: path.display().to_string(),
            expected: "a backend with redb's range locks for a shared concurrency mode; open a \
                       backend without them with ConcurrencyMode::ExclusiveWriter"
                .into(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            Error::Corrupt { path, detail }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(source))
            if source.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Error::Corrupt {
                path,
                detail: "the file is shorter than its header says, so it was cut off".into(),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) => Error::Io {
            action: "open",
            path,
            source,
        },
        other => Error::storage(format!("opening `{}`", path.display()), other),
    }
}
