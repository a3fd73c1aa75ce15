//! Group commit: concurrent write calls of one process share one write transaction and one
//! durable commit.
//!
//! redb runs one write transaction at a time and each durable commit costs at least one fsync,
//! so one transaction per call caps all writers together at the disk's commit rate. Here calls
//! join a FIFO queue. The first caller to find no batch in progress becomes the leader: it takes
//! the queued calls (its own first) and applies them in queue order in one transaction. Before
//! it commits, it also applies the calls that joined the queue meanwhile, until the queue is
//! empty or the batch is full. Callers that the previous commit released rejoin the queue on the
//! other core while the leader applies, so this makes batches larger and commits fewer. A lone
//! caller finds the queue empty and commits at once. The leader then commits once, delivers every
//! result, and hands leadership to the oldest waiting caller, so no caller serves batches for
//! long.
//!
//! Each call's result is the one it would have had alone in queue order, because each call runs
//! against the changes of the calls before it in the same transaction. Every call checks its
//! rules before it writes, so a rejected call leaves nothing behind. A call that fails after it
//! wrote (a storage or encoding failure) poisons the batch: the transaction is aborted and every
//! call of the batch runs again alone, in order. A failed commit fails every call of the batch,
//! and none of them is applied.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError, mpsc};

use super::Store;
use super::tables::WriteTables;
use crate::error::{Error, ErrorCategory, Result};

/// The maximum number of calls in one transaction, so that one commit's latency stays bounded.
const MAX_BATCH: usize = 128;

/// The queue of calls waiting for a transaction, and whether a leader is applying a batch.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<QueueState>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct QueueState {
    queue: VecDeque<Box<dyn Job>>,
    leader_active: bool,
}

/// A message to a waiting caller.
enum Reply<T> {
    /// The call's result.
    Done(Result<T>),
    /// The caller is the leader now and applies the next batch.
    Lead,
}

/// One queued call, with its result type erased so that calls of any kind share a batch.
trait Job: Send {
    /// Runs the call in the batch's transaction and keeps its result. Returns `false` when the
    /// call failed after writing, which poisons the batch.
    fn apply(&mut self, tables: &mut WriteTables<'_>) -> bool;
    /// Runs the call alone in its own transaction and keeps its result.
    fn apply_alone(&mut self, store: &Store);
    /// Keeps `error` as the call's result.
    fn fail(&mut self, error: Error);
    /// Sends the kept result to the caller, or `failure` when the batch's commit failed.
    fn finish(self: Box<Self>, failure: Option<&Error>);
    /// Tells the caller to lead the next batch.
    fn lead(&self);
    /// Returns what the call does, for error messages.
    fn context(&self) -> &str;
}

struct TypedJob<T, F> {
    context: String,
    body: F,
    result: Option<Result<T>>,
    reply: mpsc::Sender<Reply<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnMut(&mut WriteTables<'_>) -> Result<T> + Send + 'static,
{
    fn apply(&mut self, tables: &mut WriteTables<'_>) -> bool {
        let changed_before = std::mem::replace(&mut tables.changed, false);
        let result = (self.body)(tables);
        let wrote = tables.changed;
        tables.changed |= changed_before;
        let poisons = match &result {
            Ok(_) => false,
            Err(err) => wrote || err.category() == ErrorCategory::Storage,
        };
        self.result = Some(result);
        !poisons
    }

    fn apply_alone(&mut self, store: &Store) {
        let body = &mut self.body;
        self.result = Some(store.write(&self.context, |tables| body(tables)));
    }

    fn fail(&mut self, error: Error) {
        self.result = Some(Err(error));
    }

    fn finish(self: Box<Self>, failure: Option<&Error>) {
        let result = match (failure, self.result) {
            (Some(err), _) => Err(batch_failure(&self.context, err)),
            (None, Some(result)) => result,
            (None, None) => Err(Error::Encode {
                what: "batch",
                detail: format!("the call `{}` was never applied", self.context),
            }),
        };
        // The caller waits on the other end until it gets a reply, so a send fails only if
        // its thread has gone, and then nobody needs the result.
        let _ = self.reply.send(Reply::Done(result));
    }

    fn lead(&self) {
        let _ = self.reply.send(Reply::Lead);
    }

    fn context(&self) -> &str {
        &self.context
    }
}

/// Describes the failure of a batch's transaction to one of its calls: a busy or damaged file
/// as such, anything else as a storage error with a copy of the cause, which keeps an I/O
/// error's kind and operating-system code (a full disk stays `StorageFull`).
fn batch_failure(context: &str, err: &Error) -> Error {
    let source = match err {
        Error::Busy { path, detail } => {
            return Error::Busy {
                path: path.clone(),
                detail: detail.clone(),
            };
        }
        Error::Corrupt { path, detail } => {
            return Error::Corrupt {
                path: path.clone(),
                detail: detail.clone(),
            };
        }
        Error::Storage { source, .. } => copy_redb_error(source),
        other => redb::Error::Io(std::io::Error::other(other.to_string())),
    };
    Error::storage(format!("committing {context} in a group commit"), source)
}

/// Copies a redb error, which is not `Clone`, so that every call of a failed batch gets one.
fn copy_redb_error(err: &redb::Error) -> redb::Error {
    match err {
        redb::Error::Io(io) => redb::Error::Io(copy_io_error(io)),
        redb::Error::Corrupted(detail) => redb::Error::Corrupted(detail.clone()),
        redb::Error::PreviousIo => redb::Error::PreviousIo,
        redb::Error::DatabaseClosed => redb::Error::DatabaseClosed,
        other => redb::Error::Io(std::io::Error::other(other.to_string())),
    }
}

fn copy_io_error(io: &std::io::Error) -> std::io::Error {
    match io.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(
            io.kind(),
            io.get_ref()
                .map_or_else(|| io.kind().to_string(), ToString::to_string),
        ),
    }
}

impl Store {
    /// Applies `body` in a shared write transaction with other concurrent calls, or in its own
    /// when group commit is off, and returns its result once the transaction is committed.
    pub(crate) fn submit<T>(
        &self,
        context: String,
        body: impl FnMut(&mut WriteTables<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T>
    where
        T: Send + 'static,
    {
        let mut body = body;
        super::effects::reject_in_handler(&context)?;
        if !matches!(self.db, super::Database::ReadWrite(_)) {
            return Err(super::read_only_error(&context));
        }
        if !self.options.group_commit {
            return self.write(&context, |tables| body(tables));
        }
        let (reply, replies) = mpsc::channel();
        let job = Box::new(TypedJob {
            context,
            body,
            result: None,
            reply,
        });
        let lead_now = {
            let mut state = self
                .group
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            state.queue.push_back(job);
            !std::mem::replace(&mut state.leader_active, true)
        };
        if lead_now {
            self.lead_batch();
        }
        loop {
            match replies.recv() {
                Ok(Reply::Done(result)) => return result,
                Ok(Reply::Lead) => self.lead_batch(),
                Err(_) => {
                    return Err(Error::Encode {
                        what: "batch",
                        detail: "the group commit leader stopped without a reply".into(),
                    });
                }
            }
        }
    }

    /// Applies one batch from the head of the queue, then hands leadership to the oldest
    /// waiting call, or ends the leadership when the queue is empty.
    fn lead_batch(&self) {
        let batch = self.take_queued(0);
        if !batch.is_empty() {
            self.commit_batch(batch);
        }
        let mut state = self
            .group
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match state.queue.front() {
            Some(next) => next.lead(),
            None => state.leader_active = false,
        }
    }

    /// Removes calls from the head of the queue, as many as a batch of `len` calls has room for.
    fn take_queued(&self, len: usize) -> Vec<Box<dyn Job>> {
        let mut state = self
            .group
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let take = state.queue.len().min(MAX_BATCH.saturating_sub(len));
        state.queue.drain(..take).collect()
    }

    /// Applies and commits one batch and delivers every result. A panic inside redb (a file
    /// damaged from outside) becomes [`Error::Corrupt`] for the calls it hit, so the leadership
    /// always moves on and no caller waits forever.
    fn commit_batch(&self, mut batch: Vec<Box<dyn Job>>) {
        let outcome = self.guarded("applying a batch of writes", || {
            self.write_batch(&mut batch)
        });
        match outcome {
            Ok(true) => {
                for job in batch {
                    job.finish(None);
                }
            }
            Ok(false) => {
                tracing::warn!(
                    calls = batch.len(),
                    "a call failed after writing; running each call of its batch alone"
                );
                for job in &mut batch {
                    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job.apply_alone(self);
                    }));
                    if let Err(panic) = applied {
                        job.fail(self.corrupt_from_panic("applying a write", panic.as_ref()));
                    }
                }
                for job in batch {
                    job.finish(None);
                }
            }
            Err(err) => {
                tracing::warn!(calls = batch.len(), error = %err, "group commit failed");
                for job in batch {
                    job.finish(Some(&err));
                }
            }
        }
    }

    /// Applies every call of the batch, and the calls that queue meanwhile, in one transaction,
    /// and commits it. Returns `Ok(false)`, with the transaction aborted, when a call failed
    /// after writing.
    fn write_batch(&self, batch: &mut Vec<Box<dyn Job>>) -> Result<bool> {
        let context = batch
            .first()
            .map_or("a batch", |job| job.context())
            .to_owned();
        let (_gate, txn) = self.begin_write(&context)?;
        let (clean, changed, notices) = {
            let mut tables = WriteTables::open(&txn)?;
            let mut applied = 0;
            let mut clean = true;
            while clean && applied < batch.len() {
                // Checked again for each round of calls, so that a subscriber that arrived
                // before a call queued gets that call's changes.
                tables.collect |= self.subscribers.wanted();
                clean = batch[applied..]
                    .iter_mut()
                    .all(|job| job.apply(&mut tables));
                applied = batch.len();
                if clean {
                    batch.extend(self.take_queued(batch.len()));
                }
            }
            (clean, tables.changed, std::mem::take(&mut tables.notices))
        };
        if !clean || !changed {
            txn.abort()
                .map_err(|err| Error::storage(format!("aborting a batch of {context}"), err))?;
            return Ok(clean);
        }
        txn.commit()
            .map_err(|err| Error::storage(format!("committing a batch of {context}"), err))?;
        // Still under the write gate, so subscribers get commits in order.
        self.subscribers.publish(&notices);
        tracing::debug!(calls = batch.len(), "committed a batch");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, PoisonError};
    use std::time::{Duration, Instant};

    use redb::{ReadableDatabase, ReadableTable};

    use super::*;
    use crate::model::OperationId;
    use crate::plan::{Plan, PlanStep};
    use crate::store::{Caller, StoreOptions};

    /// One call of the mixed batch; each thread makes one.
    #[derive(Debug, Clone)]
    enum Call {
        Open(&'static str),
        Start(u32),
        Complete(u32, &'static str),
        Skip(u32),
        Retry(u32),
    }

    fn short_plan() -> Plan {
        let step = |order, code: &str| PlanStep {
            order,
            code: code.into(),
            name: format!("Adım {order}"),
            required: order != 2,
            command: None,
            timeout_seconds: None,
            schedule: None,
            retry: None,
        };
        Plan::new("short", vec![step(1, "a"), step(2, "b"), step(3, "c")]).unwrap()
    }

    fn other_plan() -> Plan {
        let step = PlanStep {
            order: 1,
            code: "other".into(),
            name: "Başka".into(),
            required: true,
            command: None,
            timeout_seconds: None,
            schedule: None,
            retry: None,
        };
        Plan::new("other", vec![step]).unwrap()
    }

    /// Makes the call and returns its outcome as text, with claim tokens and times masked, so
    /// that outcomes from two stores compare equal.
    fn make(store: &Store, call: &Call) -> String {
        let caller = Caller::new("kasa");
        let id = OperationId(1);
        let date = jiff::civil::date(2026, 12, 4);
        let outcome = match call {
            Call::Open("short") => store
                .open_operation("grand", date, &short_plan(), &caller)
                .map(|opened| format!("opened {} {}", opened.operation.id, opened.created)),
            Call::Open(_) => store
                .open_operation("grand", date, &other_plan(), &caller)
                .map(|opened| format!("opened {}", opened.operation.id)),
            Call::Start(order) => store
                .start_step(id, *order, &caller)
                .map(|started| format!("started {} attempt {}", order, started.step.attempts)),
            Call::Complete(order, token) => store
                .complete_step(id, *order, token, None, &caller)
                .map(|step| format!("completed {}", step.order)),
            Call::Skip(order) => store
                .skip_step(id, *order, "gerek yok", &caller)
                .map(|step| format!("skipped {}", step.order)),
            Call::Retry(order) => store
                .retry_step(id, *order, &caller)
                .map(|step| format!("retried {}", step.order)),
        };
        match outcome {
            Ok(text) => text,
            Err(err) => {
                let text = err.to_string();
                // Claim lease ends are times of day; keep the message's shape only.
                text.split(" until ").next().unwrap_or_default().to_owned()
            }
        }
    }

    /// A batch mixing valid calls, a conflicting plan, wrong claims and racing transitions gives
    /// each caller the result it would have had with the calls made one by one in queue order.
    #[test]
    fn batch_matches_sequential_order() {
        let calls = vec![
            Call::Open("short"),
            Call::Start(1),
            Call::Open("other"),
            Call::Start(1),
            Call::Complete(1, "forged"),
            Call::Skip(2),
            Call::Skip(2),
            Call::Skip(1),
            Call::Retry(1),
            Call::Start(3),
            Call::Open("short"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            dir.path().join("batch.redb"),
            StoreOptions::new().create(true),
        )
        .unwrap();

        // Hold the leadership so that every thread's call queues up, then apply the queue as
        // one batch and read the order it recorded.
        store
            .group
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .leader_active = true;
        let (order, results) = std::thread::scope(|scope| {
            let handles: Vec<_> = calls
                .iter()
                .map(|call| {
                    let store = &store;
                    scope.spawn(move || make(store, call))
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(30);
            let order: Vec<String> = loop {
                {
                    let state = store
                        .group
                        .state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if state.queue.len() == calls.len() {
                        break state
                            .queue
                            .iter()
                            .map(|job| job.context().to_owned())
                            .collect();
                    }
                }
                assert!(Instant::now() < deadline, "the calls did not queue up");
                std::thread::yield_now();
            };
            store.lead_batch();
            let results: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            (order, results)
        });

        // Replay the calls one by one, in the recorded order, on a store without group commit.
        let replay_dir = tempfile::tempdir().unwrap();
        let replay = Store::open_with(
            replay_dir.path().join("replay.redb"),
            StoreOptions::new().create(true).group_commit(false),
        )
        .unwrap();
        let mut pending: Vec<(usize, &Call)> = calls.iter().enumerate().collect();
        let mut expected = vec![String::new(); calls.len()];
        for context in &order {
            // Calls with the same context are interchangeable, so take the first one left.
            let position = pending
                .iter()
                .position(|(_, call)| context_of(call) == *context)
                .unwrap_or_else(|| panic!("no call for `{context}`"));
            let (index, call) = pending.remove(position);
            expected[index] = make(&replay, call);
        }
        // Identical calls are interchangeable, so compare the outcomes per kind of call.
        let pair = |outcomes: &[String]| {
            let mut pairs: Vec<(String, String)> = calls
                .iter()
                .map(context_of)
                .zip(outcomes.iter().cloned())
                .collect();
            pairs.sort();
            pairs
        };
        assert_eq!(pair(&results), pair(&expected));
        assert_eq!(
            store.events(OperationId(1)).unwrap().len(),
            replay.events(OperationId(1)).unwrap().len()
        );
    }

    /// A call that queues while the leader applies a batch joins that batch's transaction
    /// rather than waiting for a commit of its own.
    #[test]
    fn late_call_joins_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            dir.path().join("late.redb"),
            StoreOptions::new().create(true),
        )
        .unwrap();
        let super::super::Database::ReadWrite(db) = &store.db else {
            panic!("the store is not read-write");
        };
        let committed = |db: &redb::Database| -> bool {
            let txn = db.begin_read().unwrap();
            let meta = txn.open_table(crate::store::tables::META).unwrap();
            meta.get("late_probe").unwrap().is_some()
        };
        let (applying, applying_seen) = mpsc::channel::<()>();
        let (queued, queued_seen) = mpsc::channel::<()>();
        let late_db = Arc::clone(db);

        std::thread::scope(|scope| {
            let first = scope.spawn(|| holding_call(&store, applying, queued_seen));
            applying_seen
                .recv_timeout(Duration::from_secs(30))
                .expect("the first call was not applied");
            let late = scope.spawn(|| {
                store.submit("late call".into(), move |tables| {
                    tables.meta.insert("late_probe_2", 1).unwrap();
                    tables.changed = true;
                    // In the first call's transaction, its write is not committed yet.
                    Ok(committed(&late_db))
                })
            });
            wait_for_late_call(&store);
            queued.send(()).unwrap();
            first.join().unwrap().unwrap();
            let saw_first_committed = late.join().unwrap().unwrap();
            assert!(
                !saw_first_committed,
                "the late call ran in a transaction after the first call's commit"
            );
        });
        assert!(committed(db), "the batch was not committed");
    }

    /// A subscriber that subscribes while a batch is applied hears of a call that joins that
    /// batch after `subscribe` returned.
    #[test]
    fn late_call_notifies_new_subscriber() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            dir.path().join("notify.redb"),
            StoreOptions::new().create(true),
        )
        .unwrap();
        let (applying, applying_seen) = mpsc::channel::<()>();
        let (release, release_seen) = mpsc::channel::<()>();
        let (sender, notifications) = mpsc::channel();
        let sender = std::sync::Mutex::new(sender);

        std::thread::scope(|scope| {
            let first = scope.spawn(|| holding_call(&store, applying, release_seen));
            applying_seen
                .recv_timeout(Duration::from_secs(30))
                .expect("the first call was not applied");

            // The batch's transaction began before anyone subscribed.
            let subscription = store
                .subscribe(move |notification| {
                    let _ = sender
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .send(notification.clone());
                })
                .unwrap();
            let late = scope.spawn(|| {
                store.open_operation(
                    "grand",
                    jiff::civil::date(2026, 12, 4),
                    &short_plan(),
                    &Caller::new("kasa"),
                )
            });
            wait_for_late_call(&store);
            release.send(()).unwrap();
            first.join().unwrap().unwrap();
            assert!(late.join().unwrap().unwrap().created);
            let notification = notifications.recv_timeout(Duration::from_secs(10));
            assert!(
                matches!(notification, Ok(crate::store::Notification::Change(_))),
                "no notification of the late call's change: {notification:?}"
            );
            drop(subscription);
        });
    }

    /// Makes a call that writes the key `late_probe`, reports that it is being applied, and
    /// then keeps its batch open until `release` fires.
    fn holding_call(
        store: &Store,
        applying: mpsc::Sender<()>,
        release: mpsc::Receiver<()>,
    ) -> Result<()> {
        store.submit("first call".into(), move |tables| {
            tables.meta.insert("late_probe", 1).unwrap();
            tables.changed = true;
            applying.send(()).unwrap();
            release.recv_timeout(Duration::from_secs(30)).unwrap();
            Ok(())
        })
    }

    /// Waits until a call is in the queue, while the leader keeps a batch open.
    fn wait_for_late_call(store: &Store) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while store
            .group
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .queue
            .is_empty()
        {
            assert!(Instant::now() < deadline, "the late call did not queue up");
            std::thread::yield_now();
        }
    }

    /// Returns the context string a call is queued under.
    fn context_of(call: &Call) -> String {
        let action = match call {
            Call::Open(plan) => {
                format!("open of property `grand` on 2026-12-04 with plan `{plan}`")
            }
            Call::Start(order) => format!("start of step {order} of operation 1"),
            Call::Complete(order, _) => format!("completion of step {order} of operation 1"),
            Call::Skip(order) => format!("skip of step {order} of operation 1"),
            Call::Retry(order) => format!("retry of step {order} of operation 1"),
        };
        format!("{action} by `kasa`")
    }
}
