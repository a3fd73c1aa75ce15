//! The store: one redb file holding operations, their steps and their audit events.

mod check;
mod dump;
mod effects;
mod group;
mod import;
mod maintenance;
mod migrate;
pub(crate) mod notify;
mod open;
mod property;
mod query;
mod report;
mod seed;
mod tables;
mod transition;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::model::{Claim, Operation, ProcessRef, PropertyState, Step};

pub use check::{IntegrityProblem, IntegrityReport, ProblemKind};
pub use dump::{
    DUMP_FORMAT, DUMP_VERSION, Dump, DumpError, DumpFilter, DumpImport, DumpedOperation,
};
pub use effects::{AppSnapshot, SideEffects};
pub use import::{ImportOutcome, ImportedOperationOutcome};
pub use maintenance::{Backup, Compaction};
pub use migrate::Migration;
pub use notify::{Change, NOTIFICATION_QUEUE, Notification, Subscription};
pub use property::ROLL_STEP;
pub(crate) use property::RunBegin;
pub use report::{OperationReport, Report, StepCodeStats, StepProblem, StepTiming};
pub use seed::{MAX_PROPERTY_CHARS, validate_property};
pub use seed::{Opened, SeededStep};
pub use transition::{MAX_MESSAGE, MAX_OUTPUT_TAIL, Started};
pub(crate) use transition::{head, tail};

/// The store format this build writes, and the newest it reads. Version 2 added a checksum to
/// every record. Version 3 added properties (business dates, the operation in progress), the
/// `changes` table and new event kinds, which older builds cannot read. This build reads
/// version-1 and version-2 files read-only and migrates them with [`Store::migrate`].
pub const FORMAT_VERSION: u64 = 3;

/// How long a claim lasts unless the caller asks for another lease.
pub const DEFAULT_LEASE: SignedDuration = SignedDuration::from_mins(5);

/// The default wait of an open for another process's file lock.
pub const DEFAULT_OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The default wait of a write for another process's write lock.
pub const DEFAULT_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The default memory for redb's page cache and write buffer together: 1 GiB, redb's own
/// default.
pub const DEFAULT_CACHE_SIZE: usize = 1024 * 1024 * 1024;

/// The smallest cache size that [`StoreOptions::cache_size`] accepts: 1 MiB.
pub const MIN_CACHE_SIZE: usize = 1024 * 1024;

/// The durability of commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is on stable storage before the call returns. The default.
    #[default]
    Immediate,
    /// Commits are not synced: a crash or power cut loses every change since the last durable
    /// commit, though the file stays consistent. Only for tests and bulk loads that can be
    /// repeated; redb allows it only with [`ConcurrencyMode::ExclusiveWriter`].
    None,
}

/// The sharing of one file between processes (redb's concurrency modes). Every process that
/// opens a file must use the same mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConcurrencyMode {
    /// One process has the file; no other process can open it, not even to read. Commits cost
    /// one fsync.
    ExclusiveWriter,
    /// One process writes; others may open the file and read while it runs. Commits use redb's
    /// two-phase commit.
    SingleWriter,
    /// Any number of processes may read and write; write transactions take turns through a
    /// file lock. Commits use two-phase commit. The default, because a PMS often has several
    /// processes on one file (app windows, a scheduler, an operator's `eod status`) and this is
    /// the only mode in which all of them work.
    #[default]
    MultiWriter,
}

/// Options for opening a [`Store`], built by value:
/// `StoreOptions::new().lease(SignedDuration::from_mins(10))`.
// Each flag is an independent switch of the builder, so an enum per flag would add nothing.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub(crate) create: bool,
    pub(crate) durability: Durability,
    pub(crate) concurrency: ConcurrencyMode,
    pub(crate) lease: SignedDuration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) open_timeout: std::time::Duration,
    pub(crate) group_commit: bool,
    pub(crate) write_timeout: std::time::Duration,
    pub(crate) cache_size: usize,
    pub(crate) read_only: bool,
    pub(crate) progress: Option<ProgressSink>,
    /// Lets a read-write open accept an older format; set only by [`Store::migrate`].
    pub(crate) migrating: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions::new()
    }
}

impl StoreOptions {
    /// Returns the defaults: open an existing file only, [`Durability::Immediate`],
    /// [`ConcurrencyMode::MultiWriter`], a lease of [`DEFAULT_LEASE`], the system clock, open
    /// and write timeouts of [`DEFAULT_OPEN_TIMEOUT`] and [`DEFAULT_WRITE_TIMEOUT`], a cache of
    /// [`DEFAULT_CACHE_SIZE`], and group commit on.
    pub fn new() -> StoreOptions {
        StoreOptions {
            create: false,
            durability: Durability::Immediate,
            concurrency: ConcurrencyMode::MultiWriter,
            lease: DEFAULT_LEASE,
            clock: Arc::new(SystemClock),
            open_timeout: DEFAULT_OPEN_TIMEOUT,
            group_commit: true,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            cache_size: DEFAULT_CACHE_SIZE,
            read_only: false,
            progress: None,
            migrating: false,
        }
    }

    /// Sets whether a missing file is created (default `false`: a missing file is
    /// [`Error::NoDatabase`]).
    pub fn create(mut self, create: bool) -> StoreOptions {
        self.create = create;
        self
    }

    /// Sets how commits reach the disk (default [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> StoreOptions {
        self.durability = durability;
        self
    }

    /// Sets how processes share the file (default [`ConcurrencyMode::MultiWriter`]).
    pub fn concurrency(mut self, mode: ConcurrencyMode) -> StoreOptions {
        self.concurrency = mode;
        self
    }

    /// Sets the lease of claims taken without an explicit lease (default [`DEFAULT_LEASE`]).
    /// Opening a store rejects a lease that is not longer than zero or is longer than 7 days
    /// with [`Error::InvalidInput`].
    pub fn lease(mut self, lease: SignedDuration) -> StoreOptions {
        self.lease = lease;
        self
    }

    /// Sets how long an open waits for a file lock held by another process before failing with
    /// [`Error::Busy`] (default [`DEFAULT_OPEN_TIMEOUT`]).
    pub fn open_timeout(mut self, timeout: std::time::Duration) -> StoreOptions {
        self.open_timeout = timeout;
        self
    }

    /// Sets whether the file is opened for reading only (default `false`). A read-only store
    /// needs no write permission, leaves the file's bytes untouched and rejects every write
    /// call with [`Error::InvalidInput`]; it never creates a file. In the exclusive-writer and
    /// single-writer modes, a file that needs recovery after a crash is opened for writing
    /// instead, so that redb can recover it.
    pub fn read_only(mut self, read_only: bool) -> StoreOptions {
        self.read_only = read_only;
        self
    }

    /// Sets the maximum memory, in bytes, for redb's page cache and write buffer together
    /// (default [`DEFAULT_CACHE_SIZE`]). The cache fills as the file is read, so a process that
    /// reads a file larger than the cache uses about this much memory. A smaller cache costs a
    /// read from the file system each time a page that it dropped is needed again. Opening a store
    /// rejects a size below [`MIN_CACHE_SIZE`] with [`Error::InvalidInput`].
    pub fn cache_size(mut self, bytes: usize) -> StoreOptions {
        self.cache_size = bytes;
        self
    }

    /// Sets how long a write waits for another process's write lock before failing with
    /// [`Error::Busy`] (default [`DEFAULT_WRITE_TIMEOUT`]).
    pub fn write_timeout(mut self, timeout: std::time::Duration) -> StoreOptions {
        self.write_timeout = timeout;
        self
    }

    /// Sets whether concurrent write calls of this process share write transactions and
    /// durable commits (default `true`). Each call's result is the same either way; turning it
    /// off costs one commit, and so at least one fsync, per call.
    pub fn group_commit(mut self, enabled: bool) -> StoreOptions {
        self.group_commit = enabled;
        self
    }

    /// Sets the clock that timestamps and leases read (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> StoreOptions {
        self.clock = clock;
        self
    }

    /// Sets a function that long tasks report their progress to (default: none): the integrity
    /// check, a backup, an export, and the imports of a dump or a CSV batch. It is called from
    /// the thread that runs the task, often, so it should be quick; `eod` draws a progress bar
    /// with it.
    pub fn progress(
        mut self,
        report: impl Fn(TaskProgress<'_>) + Send + Sync + 'static,
    ) -> StoreOptions {
        self.progress = Some(ProgressSink(Arc::new(report)));
        self
    }
}

/// How far a long task has come, as [`StoreOptions::progress`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskProgress<'a> {
    /// The task, such as `checking records` or `copying`.
    pub task: &'a str,
    /// The units done so far: records, operations or bytes, as the task counts them.
    pub done: u64,
    /// The units in all, or 0 when the task cannot tell in advance.
    pub total: u64,
}

/// The function behind [`StoreOptions::progress`].
#[derive(Clone)]
pub(crate) struct ProgressSink(Arc<dyn Fn(TaskProgress<'_>) + Send + Sync>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

impl Store {
    /// Reports the progress of a long task to the function of [`StoreOptions::progress`], if
    /// any.
    pub(crate) fn report_progress(&self, task: &str, done: u64, total: u64) {
        if let Some(ProgressSink(report)) = &self.options.progress {
            report(TaskProgress { task, done, total });
        }
    }
}

/// The author of a write call, with an optional request id that makes repeating the call safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub(crate) actor: String,
    pub(crate) request_id: Option<String>,
    pub(crate) process: Option<ProcessRef>,
    pub(crate) lease: Option<SignedDuration>,
    pub(crate) date_override: Option<String>,
}

impl Caller {
    /// Creates a caller named `actor` (a person, terminal or service; recorded in events).
    pub fn new(actor: impl Into<String>) -> Caller {
        Caller {
            actor: actor.into(),
            request_id: None,
            process: None,
            lease: None,
            date_override: None,
        }
    }

    /// Lets this caller start an operation whose date is not its property's current business
    /// date, for `reason`, which the operation's audit trail records as a `date_override`
    /// event. Without it such a start fails with [`Error::NotBusinessDate`].
    pub fn override_business_date(mut self, reason: impl Into<String>) -> Caller {
        self.date_override = Some(reason.into());
        self
    }

    /// Sets a caller-chosen request id. A call repeated with an id that was already applied
    /// returns the first call's result instead of applying again.
    pub fn request_id(mut self, request_id: impl Into<String>) -> Caller {
        self.request_id = Some(request_id.into());
        self
    }

    /// Records `process` in the claims this caller takes, so that they can be taken over as soon
    /// as that process is gone. [`Runner`](crate::runner::Runner) sets the current process.
    pub fn process(mut self, process: ProcessRef) -> Caller {
        self.process = Some(process);
        self
    }

    /// Sets the lease of claims this caller takes, instead of the store's default.
    pub fn lease(mut self, lease: SignedDuration) -> Caller {
        self.lease = Some(lease);
        self
    }

    /// Describes a call of `action` by this caller; `secret` (a claim token, or empty) enters
    /// only the fingerprint, so that messages never show it.
    pub(crate) fn describe(&self, action: &str, secret: &str) -> CallDescription {
        let mut text = match self.lease {
            Some(lease) => format!("{action} by `{}` with a lease of {lease:#}", self.actor),
            None => format!("{action} by `{}`", self.actor),
        };
        if let Some(reason) = &self.date_override {
            text = format!("{text} overriding the business date: {reason}");
        }
        let fingerprint = format!("{text}\u{1f}{secret}");
        CallDescription { text, fingerprint }
    }

    /// Returns the actor's name.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Checks the caller's fields: the actor and any request id must be 1 to 200 characters,
    /// not blank and without control characters; a lease must be above zero and at most 7 days.
    /// Every write call runs this check first; callers may run it before creating a file.
    ///
    /// # Errors
    ///
    /// Returns [`Error::InvalidInput`] naming the first invalid field.
    pub fn validate(&self) -> Result<()> {
        check_text("actor", &self.actor, 200)?;
        if let Some(request_id) = &self.request_id {
            check_text("request id", request_id, 200)?;
        }
        if let Some(lease) = self.lease {
            check_lease(lease)?;
        }
        if let Some(reason) = &self.date_override {
            check_text("business date override reason", reason, 500)?;
        }
        Ok(())
    }
}

/// Rejects a lease that is not longer than zero or is longer than 7 days.
pub(crate) fn check_lease(lease: SignedDuration) -> Result<()> {
    if lease <= SignedDuration::ZERO || lease > SignedDuration::from_hours(24 * 7) {
        return Err(Error::InvalidInput {
            what: "lease",
            value: format!("{lease:#}"),
            expected: "a lease longer than zero and at most 7 days".into(),
        });
    }
    Ok(())
}

/// Rejects text that is blank, longer than `max_chars` characters, or contains control characters.
pub(crate) fn check_text(what: &'static str, value: &str, max_chars: usize) -> Result<()> {
    let problem = if value.trim().is_empty() {
        Some("it must not be blank".to_owned())
    } else if value.chars().count() > max_chars {
        Some(format!("it must be at most {max_chars} characters"))
    } else if value.chars().any(char::is_control) {
        Some("it must not contain control characters".to_owned())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(expected) => Err(Error::InvalidInput {
            what,
            value: value.to_owned(),
            expected,
        }),
    }
}

/// An embedded eodstore database: one redb file.
///
/// Open one `Store` per file per process and share it between threads, since `Store` is `Send`
/// and `Sync`. In [`ConcurrencyMode::MultiWriter`] a second `Store` on the same file works like
/// another process, at the cost of a second cache and file handle. In the other modes, opening a
/// file twice fails with [`Error::Locked`].
///
/// # Durability
///
/// With the default [`Durability::Immediate`], a write call that returned `Ok` has been committed
/// and synced: it survives a crash or power cut at any later instant. A call that returned an
/// error other than [`Error::Storage`] wrote nothing. After [`Error::Storage`] from a commit the
/// outcome is unknown: the commit may be durable. Drop the `Store`, open the file again (redb
/// refuses further work after an I/O error until then) and repeat the call with the same request
/// id (see [`Caller::request_id`]), which returns the first outcome if it was applied.
///
/// # Concurrency
///
/// Write calls from any number of threads queue in arrival order. With group commit (the
/// default, see [`StoreOptions::group_commit`]) the queued calls of this process share one write
/// transaction and one durable commit, each call seeing the changes of the calls before it.
/// Processes take turns for redb's single write lock, waiting at most the write timeout. Every
/// rule (step order, claims, plan identity) is checked inside the write transaction, so racing
/// callers see exactly one winner. Reads run on snapshots and never wait for writers. In
/// [`ConcurrencyMode::MultiWriter`] (the default) other processes may open the same file for
/// reading and writing at the same time; opening waits at most the open timeout while another
/// process is inside a write transaction.
#[derive(Debug)]
pub struct Store {
    db: Database,
    /// Set once redb has panicked on this file's pages; see `Drop`.
    damaged: std::sync::atomic::AtomicBool,
    write_gate: std::sync::Mutex<()>,
    path: PathBuf,
    options: StoreOptions,
    group: group::GroupCommit,
    subscribers: Arc<notify::Subscribers>,
}

impl Store {
    /// Opens an existing store with default options.
    ///
    /// # Errors
    ///
    /// As [`Store::open_with`], including [`Error::NoDatabase`] when nothing exists at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::new())
    }

    /// Opens a store, creating the file if it does not exist, with default options.
    ///
    /// # Errors
    ///
    /// As [`Store::open_with`].
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::new().create(true))
    }

    /// Returns the path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the lease of claims taken without an explicit lease.
    pub(crate) fn default_lease(&self) -> SignedDuration {
        self.options.lease
    }

    pub(crate) fn now(&self) -> jiff::Timestamp {
        self.options.clock.now()
    }

    /// Begins a write transaction with the configured durability, waiting at most the write
    /// timeout for another process's write lock.
    ///
    /// Threads of this process queue on `write_gate`, so that redb's `try_begin_write` reports
    /// `WouldBlock` only for a lock held by another process. That wait runs on a helper thread,
    /// because redb waits for it without limit; a transaction the helper gets after the timeout
    /// is dropped, which aborts it.
    fn begin_write(
        &self,
        context: &str,
    ) -> Result<(std::sync::MutexGuard<'_, ()>, redb::WriteTransaction)> {
        effects::reject_in_handler(context)?;
        let gate = self
            .write_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let begin_error = |err| Error::storage(format!("beginning a write to {context}"), err);
        // A store asked to be read-only may still have a read-write handle, when redb had to
        // recover the file first. It rejects writes all the same.
        let Database::ReadWrite(db) = &self.db else {
            return Err(read_only_error(context));
        };
        if self.options.read_only {
            return Err(read_only_error(context));
        }
        let mut txn = match db.try_begin_write() {
            Ok(txn) => txn,
            Err(redb::TransactionError::WouldBlock) => self.wait_for_write_lock(db)?,
            Err(err) => return Err(begin_error(err)),
        };
        if self.options.durability == Durability::None {
            txn.set_durability(redb::Durability::None)
                .map_err(|err| Error::storage(format!("setting durability to {context}"), err))?;
        }
        Ok((gate, txn))
    }

    fn wait_for_write_lock(&self, db: &Arc<redb::Database>) -> Result<redb::WriteTransaction> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let db = Arc::clone(db);
        std::thread::Builder::new()
            .name("eodstore-write-wait".into())
            .spawn(move || {
                let _ = sender.send(db.begin_write());
            })
            .map_err(|source| Error::Io {
                action: "start a thread to wait for the write lock of",
                path: self.path.clone(),
                source,
            })?;
        let timeout = self.options.write_timeout;
        match receiver.recv_timeout(timeout) {
            Ok(Ok(txn)) => Ok(txn),
            Ok(Err(err)) => Err(Error::storage("waiting for the write lock", err)),
            Err(_) => Err(Error::Busy {
                path: self.path.clone(),
                detail: format!(
                    "another process has held its write lock for over {} s ({:?} mode lets \
                     processes take turns, one write transaction at a time); look for a stopped \
                     or hung program using this file, or try again later",
                    timeout.as_secs_f64(),
                    self.options.concurrency
                ),
            }),
        }
    }

    /// Runs `body` in one write transaction and commits it, or writes nothing if `body` fails.
    pub(crate) fn write<T>(
        &self,
        context: &str,
        body: impl FnOnce(&mut tables::WriteTables<'_>) -> Result<T>,
    ) -> Result<T> {
        let (_gate, txn) = self.begin_write(context)?;
        let (value, changed, notices) = {
            let mut tables = tables::WriteTables::open(&txn)?;
            tables.collect = self.subscribers.wanted();
            let value = body(&mut tables)?;
            (value, tables.changed, std::mem::take(&mut tables.notices))
        };
        if changed {
            txn.commit()
                .map_err(|err| Error::storage(format!("committing {context}"), err))?;
            // Still under the write gate, so subscribers get commits in order.
            self.subscribers.publish(&notices);
        } else {
            txn.abort().map_err(|err| {
                Error::storage(format!("ending the read-only write to {context}"), err)
            })?;
        }
        Ok(value)
    }

    /// Runs `body` in a write transaction under `caller`'s request id: a request id that was
    /// applied before returns its recorded response without running `body`. The call may share
    /// its transaction with other threads' calls (see [`StoreOptions::group_commit`]), so `body`
    /// owns its inputs.
    pub(crate) fn write_request<T, F>(
        &self,
        caller: &Caller,
        action: &str,
        secret: &str,
        mut body: F,
    ) -> Result<T>
    where
        T: Clone + Into<Recorded> + TryFrom<Recorded> + Send + 'static,
        F: FnMut(&mut tables::WriteTables<'_>, &Caller) -> Result<T> + Send + 'static,
    {
        let call = caller.describe(action, secret);
        let caller = caller.clone();
        self.submit(call.text.clone(), move |tables| {
            if let Some(request_id) = &caller.request_id
                && let Some(recorded) = tables.request(request_id)?
            {
                return replay(request_id, &call, recorded);
            }
            let value = body(tables, &caller)?;
            record_response(tables, &caller, &call, &value)?;
            Ok(value)
        })
    }
}

/// The redb handle of a store: read-write, or read-only.
pub(crate) enum Database {
    ReadWrite(Arc<redb::Database>),
    ReadOnly(redb::ReadOnlyDatabase),
    /// Left behind by [`Store`]'s `Drop`, which closes the handle.
    Closed,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Database::ReadWrite(_) => "ReadWrite",
            Database::ReadOnly(_) => "ReadOnly",
            Database::Closed => "Closed",
        })
    }
}

impl Database {
    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        use redb::ReadableDatabase;
        match self {
            Database::ReadWrite(db) => db.begin_read(),
            Database::ReadOnly(db) => db.begin_read(),
            Database::Closed => Err(redb::TransactionError::Storage(
                redb::StorageError::DatabaseClosed,
            )),
        }
    }
}

impl Store {
    /// Runs `body`, reporting a panic inside redb as [`Error::Corrupt`].
    ///
    /// redb documents that reading a file damaged from outside may panic, because ordinary reads
    /// do not verify checksums. Such a panic is caught here and never reaches the caller.
    /// A redb error that shows damage becomes [`Error::Corrupt`] here too.
    pub(crate) fn guarded<T>(&self, what: &str, body: impl FnOnce() -> Result<T>) -> Result<T> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
            .unwrap_or_else(|panic| Err(self.corrupt_from_panic(what, panic.as_ref())))
            .map_err(|err| err.damaged_at(&self.path))
    }

    pub(crate) fn corrupt_from_panic(
        &self,
        what: &str,
        panic: &(dyn std::any::Any + Send),
    ) -> Error {
        let message = panic
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        tracing::warn!(path = %self.path.display(), %message, "redb failed while {what}");
        self.damaged
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Error::Corrupt {
            path: self.path.clone(),
            detail: format!("redb failed while {what} ({message})"),
        }
    }

    pub(crate) fn new(db: Database, path: PathBuf, options: StoreOptions) -> Store {
        Store {
            db,
            damaged: std::sync::atomic::AtomicBool::new(false),
            write_gate: std::sync::Mutex::new(()),
            path,
            options,
            group: group::GroupCommit::default(),
            subscribers: Arc::default(),
        }
    }
}

/// Rejects a write call on a store opened read-only.
pub(crate) fn read_only_error(context: &str) -> Error {
    Error::InvalidInput {
        what: "write to a read-only store",
        value: context.to_owned(),
        expected: "a store opened without `StoreOptions::read_only`".into(),
    }
}

impl Drop for Store {
    /// Closes the redb handle. redb's close may panic on a file damaged from outside; that panic
    /// is logged and goes no further, because a drop cannot return an error.
    ///
    /// A handle on which redb has already panicked is leaked instead of closed. Closing it reads
    /// the damaged pages again, and redb 5.0.0 can then panic inside a destructor while it
    /// unwinds, which aborts the process. The leak keeps the file handle and its locks until the
    /// process exits.
    fn drop(&mut self) {
        let db = std::mem::replace(&mut self.db, Database::Closed);
        if self.damaged.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(path = %self.path.display(), "leaving a damaged file's redb handle open until the process exits");
            std::mem::forget(db);
            return;
        }
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(db)));
        if closed.is_err() {
            tracing::warn!(path = %self.path.display(), "redb failed while closing a damaged file");
        }
    }
}

/// A response recorded under a request id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Recorded {
    Opened(Opened),
    Started(Started),
    Step(Step),
    Claim(Claim),
    Property(PropertyState),
}

/// A row of the `requests` table: the call a request id was used for and its response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RequestRecord {
    pub(crate) call: String,
    pub(crate) fingerprint: String,
    pub(crate) response: Recorded,
}

/// A write call as a request id records it.
#[derive(Debug, Clone)]
pub(crate) struct CallDescription {
    /// The call for messages: the action, the actor and any lease, never a claim token.
    pub(crate) text: String,
    /// The text plus every secret argument (a claim token): a repeated call must match it
    /// exactly to get the recorded response.
    pub(crate) fingerprint: String,
}

/// Records `value` as the response to `call` under the caller's request id, if it has one.
pub(crate) fn record_response<T: Clone + Into<Recorded>>(
    tables: &mut tables::WriteTables<'_>,
    caller: &Caller,
    call: &CallDescription,
    value: &T,
) -> Result<()> {
    let Some(request_id) = &caller.request_id else {
        return Ok(());
    };
    tables.record_request(
        request_id,
        &RequestRecord {
            call: call.text.clone(),
            fingerprint: call.fingerprint.clone(),
            response: value.clone().into(),
        },
    )
}

/// Returns the recorded response if it was recorded for the same call, else rejects the reused id.
pub(crate) fn replay<T: TryFrom<Recorded>>(
    request_id: &str,
    call: &CallDescription,
    record: RequestRecord,
) -> Result<T> {
    let reused = |record: &RequestRecord| {
        let given = if record.call == call.text {
            format!("{} with another claim token", call.text)
        } else {
            call.text.clone()
        };
        Error::RequestIdReused {
            request_id: request_id.to_owned(),
            stored: record.call.clone(),
            given,
        }
    };
    if record.fingerprint != call.fingerprint {
        return Err(reused(&record));
    }
    let error = reused(&record);
    T::try_from(record.response).map_err(|_| error)
}

macro_rules! recorded_conversions {
    ($($variant:ident($type:ty)),*) => {$(
        impl From<$type> for Recorded {
            fn from(value: $type) -> Recorded {
                Recorded::$variant(value)
            }
        }

        impl TryFrom<Recorded> for $type {
            type Error = Recorded;

            fn try_from(recorded: Recorded) -> std::result::Result<$type, Recorded> {
                match recorded {
                    Recorded::$variant(value) => Ok(value),
                    other => Err(other),
                }
            }
        }
    )*};
}

recorded_conversions!(
    Opened(Opened),
    Started(Started),
    Step(Step),
    Claim(Claim),
    Property(PropertyState)
);

/// An operation with its steps in order, read from one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationView {
    /// The operation.
    pub operation: Operation,
    /// Its steps in ascending order.
    pub steps: Vec<Step>,
}
