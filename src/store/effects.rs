//! Exactly-once side effects: a step's writes to the application's own tables in the same redb
//! transaction as the step's completion.
//!
//! This is the one part of the API where callers work with redb types on purpose. A PMS that
//! keeps its own tables (postings, folios) in the store's file gets them through
//! [`SideEffects::open_table`] while a step completes, and reads them with [`Store::read_app`].

use redb::{Key, TableDefinition, TableHandle as _, Value};

use super::tables::{TABLE_NAMES, WriteTables};
use super::transition::{check_claim, finish_loaded, load};
use super::{Caller, Store, replay};
use crate::error::{Error, Result};
use crate::model::{OperationId, Step, idempotency_key};
use crate::runner::{HandlerError, HandlerResult};

/// The application's side of a step's completion: its own tables, in the write transaction that
/// completes the step. Either the handler's writes and the completion both commit, or neither
/// does.
pub struct SideEffects<'t> {
    txn: &'t redb::WriteTransaction,
    key: String,
    operation: OperationId,
    step: &'t Step,
}

impl std::fmt::Debug for SideEffects<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideEffects")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<'t> SideEffects<'t> {
    /// Opens (creating if needed) one of the application's tables in the step's transaction.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for the name of one of eodstore's own tables, and
    /// [`Error::Storage`] when redb cannot open the table (for example, it exists with other
    /// key or value types).
    pub fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<redb::Table<'t, K, V>> {
        reserved(definition.name())?;
        self.txn.open_table(definition).map_err(|err| {
            Error::storage(
                format!("opening the application's table `{definition}`"),
                err,
            )
        })
    }

    /// Returns the idempotency key of this attempt of the step: the same for every call of the
    /// same attempt, different for each attempt (see [`idempotency_key`]).
    pub fn idempotency_key(&self) -> &str {
        &self.key
    }

    /// Returns the operation whose step this is.
    pub fn operation(&self) -> OperationId {
        self.operation
    }

    /// Returns the step as it was when the transaction began (running, under the caller's
    /// claim).
    pub fn step(&self) -> &Step {
        self.step
    }
}

/// A read snapshot of the application's tables, given by [`Store::read_app`].
pub struct AppSnapshot<'t> {
    txn: &'t redb::ReadTransaction,
}

impl std::fmt::Debug for AppSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSnapshot").finish_non_exhaustive()
    }
}

impl AppSnapshot<'_> {
    /// Opens one of the application's tables for reading; `None` when no transaction has
    /// created it yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for the name of one of eodstore's own tables, and
    /// [`Error::Storage`] when redb cannot open the table.
    pub fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<Option<redb::ReadOnlyTable<K, V>>> {
        reserved(definition.name())?;
        match self.txn.open_table(definition) {
            Ok(table) => Ok(Some(table)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(err) => Err(Error::storage(
                format!("opening the application's table `{definition}`"),
                err,
            )),
        }
    }
}

thread_local! {
    /// Whether this thread is running a side-effect handler, which has the write slot.
    static IN_HANDLER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Rejects a write call made from inside a side-effect handler on the same thread. The handler
/// has the store's only write slot, so such a call would wait for itself forever.
pub(crate) fn reject_in_handler(context: &str) -> Result<()> {
    if IN_HANDLER.with(std::cell::Cell::get) {
        return Err(Error::InvalidInput {
            what: "write call inside a side-effect handler",
            value: context.to_owned(),
            expected: "no write call of the store while a handler of `complete_step_with` \
                       runs, because it holds the only write transaction; write through its \
                       `SideEffects` tables, or after the step completes"
                .into(),
        });
    }
    Ok(())
}

/// Marks this thread as running a side-effect handler until dropped, also on a panic.
struct HandlerMark;

impl HandlerMark {
    fn set() -> HandlerMark {
        IN_HANDLER.with(|flag| flag.set(true));
        HandlerMark
    }
}

impl Drop for HandlerMark {
    fn drop(&mut self) {
        IN_HANDLER.with(|flag| flag.set(false));
    }
}

/// Rejects the name of one of eodstore's own tables.
fn reserved(name: &str) -> Result<()> {
    if TABLE_NAMES.contains(&name) {
        return Err(Error::InvalidInput {
            what: "application table",
            value: name.to_owned(),
            expected: format!(
                "a name other than eodstore's own tables ({}); prefix the application's tables, \
                 such as `pms_postings`",
                TABLE_NAMES.join(", ")
            ),
        });
    }
    Ok(())
}

impl Store {
    /// Completes a running step together with its side effects in the application's own
    /// tables: `effects` runs inside the write transaction that completes the step, and both
    /// commit together or not at all.
    ///
    /// `effects` gets the application's tables through [`SideEffects::open_table`]. When it
    /// returns `Ok(output)`, its writes and the completion (with `output` as the step's output)
    /// commit in one transaction. When it returns an error or panics, the transaction is rolled
    /// back and none of its writes remain. The step is then failed with that error in a
    /// transaction of its own, and the returned step is the failed one. A crash at any point
    /// leaves either both the writes and the completion, or neither. In the second case the step
    /// is still running, and the next run takes it over and calls `effects` again.
    ///
    /// While `effects` runs, this call has the file's only write transaction, so every other
    /// writer of this process and of other processes waits: keep it short (no network calls;
    /// see [`idempotency_key`] for effects outside the file). A write call of the store made
    /// inside `effects` fails with [`Error::InvalidInput`] instead of waiting for itself; one made
    /// by another thread that `effects` waits for would wait for ever, so do not make one. It runs alone, never in a group
    /// commit batch, so its failure cannot fail another caller's request.
    ///
    /// With a request id (see [`Caller::request_id`]), a repeated call returns the first call's
    /// step without calling `effects` again.
    ///
    /// # Errors
    ///
    /// [`Error::WrongClaim`] when `token` is not the step's claim (nothing runs), the errors of
    /// [`Store::complete_step`], and [`Error::Storage`] when the commit fails (then the outcome
    /// is unknown, as for every write; repeat with the same request id).
    pub fn complete_step_with(
        &self,
        operation: OperationId,
        order: u32,
        token: &str,
        caller: &Caller,
        effects: impl FnOnce(&mut SideEffects<'_>) -> HandlerResult,
    ) -> Result<Step> {
        caller.validate()?;
        let call = format!("completion of step {order} of operation {operation}");
        let failure = self.guarded("completing a step with side effects", || {
            self.commit_with_effects(operation, order, token, caller, &call, effects)
        })?;
        match failure {
            Outcome::Committed(step) => {
                tracing::debug!(
                    operation_id = operation.0,
                    step_order = order,
                    "completed step with side effects"
                );
                Ok(*step)
            }
            Outcome::Failed(failure) => {
                tracing::debug!(operation_id = operation.0, step_order = order, error = %failure.message, "side effects failed; failing the step");
                self.fail_step(
                    operation,
                    order,
                    token,
                    &failure.message,
                    failure.output.as_deref(),
                    caller,
                )
            }
        }
    }

    fn commit_with_effects(
        &self,
        operation: OperationId,
        order: u32,
        token: &str,
        caller: &Caller,
        call: &str,
        effects: impl FnOnce(&mut SideEffects<'_>) -> HandlerResult,
    ) -> Result<Outcome> {
        let now = self.now();
        let description = caller.describe(call, token);
        let (_gate, txn) = self.begin_write(call)?;
        let mut tables = WriteTables::open(&txn)?;
        tables.collect = self.subscribers.wanted();
        if let Some(request_id) = &caller.request_id
            && let Some(recorded) = tables.request(request_id)?
        {
            return replay(request_id, &description, recorded)
                .map(|step| Outcome::Committed(Box::new(step)));
        }
        let mut loaded = load(&tables, operation, order)?;
        check_claim(&loaded, token)?;
        let step = loaded.step().clone();
        let mut side = SideEffects {
            txn: &txn,
            key: idempotency_key(&loaded.operation, order, step.attempts),
            operation,
            step: &step,
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _mark = HandlerMark::set();
            effects(&mut side)
        }));
        let output = match result {
            Ok(Ok(output)) => output,
            Ok(Err(failure)) => return Ok(Outcome::Failed(failure)),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned());
                return Ok(Outcome::Failed(HandlerError::new(format!(
                    "the side-effect handler panicked: {message}"
                ))));
            }
        };
        let done = finish_loaded(
            &mut tables,
            &mut loaded,
            None,
            output.as_deref(),
            caller,
            now,
        )?;
        super::record_response(&mut tables, caller, &description, &done)?;
        let notices = std::mem::take(&mut tables.notices);
        drop(tables);
        txn.commit()
            .map_err(|err| Error::storage(format!("committing {call}"), err))?;
        self.subscribers.publish(&notices);
        Ok(Outcome::Committed(Box::new(done)))
    }

    /// Runs `read` on a read snapshot of the application's tables (see
    /// [`Store::complete_step_with`]). Reads never wait for writers.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the snapshot cannot begin, and any error `read` returns.
    pub fn read_app<T>(&self, read: impl FnOnce(&AppSnapshot<'_>) -> Result<T>) -> Result<T> {
        self.guarded("reading the application's tables", || {
            let txn = self
                .db
                .begin_read()
                .map_err(|err| Error::storage("reading the application's tables", err))?;
            read(&AppSnapshot { txn: &txn })
        })
    }
}

/// The end of a transaction with side effects: committed with the step, or rolled back with the
/// handler's failure.
enum Outcome {
    Committed(Box<Step>),
    Failed(HandlerError),
}
