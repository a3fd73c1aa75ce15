//! The one error type of the crate.
//!
//! Every message names the value that was rejected, the state that made it wrong and what to do
//! next. Messages are lowercase with values in backticks; a cause sits in `#[source]` and is not
//! repeated in the text, so a caller that prints the chain (as `eod` does) shows each part once.

use std::path::PathBuf;

use crate::model::{OperationId, StepStatus};

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in eodstore.
///
/// A variant marked *rejected* means the request was invalid for the current state: nothing was
/// written, and the same call fails the same way until the state or the input changes. See
/// [`Error::category`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A read-only call found no file at the path. Rejected.
    #[error(
        "no database at `{path}`: check the path (or `--db`/`EOD_DB`), or create one by opening an operation or setting a business date"
    )]
    NoDatabase {
        /// The path that does not exist.
        path: PathBuf,
    },

    /// The file exists but is not an eodstore database (another program's file, or a redb file
    /// without eodstore's tables). Rejected; the file is left untouched.
    #[error(
        "`{path}` is not an eodstore database ({reason}): check the path; eodstore never writes into a file it did not create"
    )]
    NotEodstoreFile {
        /// The path of the foreign file.
        path: PathBuf,
        /// The evidence that the file is foreign.
        reason: String,
    },

    /// The file was written by a newer eodstore whose format this build cannot read. Rejected.
    #[error(
        "`{path}` has eodstore format version {found}, but this build reads versions up to {supported}: upgrade eodstore to open it"
    )]
    NewerFormat {
        /// The path of the file.
        path: PathBuf,
        /// The format version recorded in the file.
        found: u64,
        /// The newest format version this build reads.
        supported: u64,
    },

    /// The file has an older store format, which this build reads but does not write into. A
    /// read-only open works; a read-write open is rejected until the file is migrated.
    #[error(
        "`{path}` has eodstore format version {found}, older than the version {current} this build writes: open it read-only, or migrate it with `eod migrate` (`Store::migrate`), which first copies it aside"
    )]
    OlderFormat {
        /// The path of the file.
        path: PathBuf,
        /// The format version recorded in the file.
        found: u64,
        /// The format version this build writes.
        current: u64,
    },

    /// Another process holds the file in a mode that excludes this one, or this process has it
    /// open already.
    #[error("`{path}` is locked: {detail}")]
    Locked {
        /// The locked file.
        path: PathBuf,
        /// The likely holder and the next step.
        detail: String,
    },

    /// The file, or one record in it, is damaged.
    #[error("`{path}` is damaged: {detail}; restore it from a backup; eod cannot repair it yet")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// The damage found.
        detail: String,
    },

    /// A stored record could not be decoded: a damaged record, or one from an unknown record
    /// format.
    #[error(
        "cannot decode the record at {key} in table `{table}`: {detail}; the file may be damaged or written by a newer eodstore"
    )]
    Decode {
        /// The table the record sits in.
        table: &'static str,
        /// The record's key, as text.
        key: String,
        /// The decoding failure.
        detail: String,
    },

    /// A record could not be encoded for storage. This indicates a bug in eodstore.
    #[error(
        "cannot encode the {what} record: {detail}; this is a bug in eodstore, please report it"
    )]
    Encode {
        /// The kind of record.
        what: &'static str,
        /// The encoder's message.
        detail: String,
    },

    /// A plan is malformed: no steps, two steps at one order, an empty code or name. Rejected
    /// before any transaction starts.
    #[error("invalid plan `{}`: {entry}: {problem}", escape_controls(.plan))]
    InvalidPlan {
        /// The plan's name, or the file it came from.
        plan: String,
        /// The entry at fault, such as `step 3 (order 30)`.
        entry: String,
        /// The problem and what is allowed.
        problem: String,
    },

    /// A plan file could not be read or parsed.
    #[error("cannot read plan file `{path}`: {problem}")]
    PlanFile {
        /// The plan file.
        path: PathBuf,
        /// The failure, with the line and entry where the parser reports them.
        problem: String,
    },

    /// An argument is malformed: an empty property or actor, a business date that does not
    /// parse. Rejected.
    #[error(
        "invalid {what} `{}`: {}",
        escape_controls(.value),
        escape_controls_only(.expected)
    )]
    InvalidInput {
        /// The kind of value, such as `business date`.
        what: &'static str,
        /// The value as given.
        value: String,
        /// The accepted form.
        expected: String,
    },

    /// No operation has this id. Rejected.
    #[error("operation {operation} not found: list operations with `eod history`")]
    OperationNotFound {
        /// The id that was looked up.
        operation: OperationId,
    },

    /// No operation exists for this property and business date. Rejected.
    #[error(
        "no operation for property `{property}` on {business_date}: open one with `eod open --date {business_date} --property {}`",
        shell_word(.property)
    )]
    NoOperationForDate {
        /// The property.
        property: String,
        /// The business date.
        business_date: jiff::civil::Date,
    },

    /// The operation has no step at this order. Rejected.
    #[error("operation {operation} has no step at order {order}: its orders are {orders}")]
    StepNotFound {
        /// The operation.
        operation: OperationId,
        /// The order that was asked for.
        order: u32,
        /// The orders the operation has, comma-separated.
        orders: String,
    },

    /// The operation was seeded with a plan of another identity. Rejected; nothing was written.
    #[error(
        "operation {operation} was seeded with plan `{stored_plan}`, which differs from the given plan: {difference}; open it with its original plan, or use another date or property"
    )]
    PlanConflict {
        /// The operation.
        operation: OperationId,
        /// The name of the plan the operation was seeded with.
        stored_plan: String,
        /// The first difference, such as "at order 3 the stored code is `a`, the given code is `b`".
        difference: String,
    },

    /// A lower required step has not completed. Rejected.
    #[error(
        "step {order} of operation {operation} cannot start: required step {blocking_order} (`{blocking_code}`) has status {blocking_status}; {}",
        unblock_hint(*.blocking_status)
    )]
    StepOutOfOrder {
        /// The operation.
        operation: OperationId,
        /// The step that was asked to start.
        order: u32,
        /// The first lower required step that is not completed or skipped.
        blocking_order: u32,
        /// Its code.
        blocking_code: String,
        /// Its status.
        blocking_status: StepStatus,
    },

    /// Another step of the operation is running; one step runs at a time. Rejected.
    #[error(
        "step {order} of operation {operation} cannot start: step {running_order} is running, claimed by {holder} until {lease_until}; wait for it to finish"
    )]
    AnotherStepRunning {
        /// The operation.
        operation: OperationId,
        /// The step that was asked to start.
        order: u32,
        /// The step that is running.
        running_order: u32,
        /// Who holds the running step's claim.
        holder: String,
        /// When that claim's lease ends.
        lease_until: jiff::Timestamp,
    },

    /// The operation's date is not the property's current business date, and no override was
    /// given. Rejected.
    #[error(
        "the operation of property `{property}` is for {date}, but the property's business date is {current}: {problem}"
    )]
    NotBusinessDate {
        /// The property.
        property: String,
        /// The operation's business date.
        date: jiff::civil::Date,
        /// The property's current business date.
        current: jiff::civil::Date,
        /// Why, and what to do: run the current date first, or give an override.
        problem: String,
    },

    /// Another operation of the property has started and not finished; at most one may be in
    /// progress per property. Rejected.
    #[error(
        "the operation of property `{property}` for {date} cannot start: operation {active} (business date {active_date}) started at {since} by `{by}` and has not finished; finish it, or release it with `eod release --operation {active} --reason TEXT` (`Store::release_operation`) if its terminal is gone"
    )]
    PropertyBusy {
        /// The property.
        property: String,
        /// The business date of the operation that was asked to start.
        date: jiff::civil::Date,
        /// The operation in progress.
        active: OperationId,
        /// Its business date.
        active_date: jiff::civil::Date,
        /// The actor that started it.
        by: String,
        /// When it started.
        since: jiff::Timestamp,
    },

    /// The operation cannot be released while a live runner or a live step claim holds it.
    /// Rejected.
    #[error(
        "operation {operation} cannot be released while {holder} holds it until {until}: stop that terminal, or release the operation after that claim ends"
    )]
    NotReleasable {
        /// The operation.
        operation: OperationId,
        /// The claim in the way: a runner's, or a step's, with its actor and process.
        holder: String,
        /// When that claim's lease ends.
        until: jiff::Timestamp,
    },

    /// A runner is already running the operation. Rejected; the caller that got it lost the
    /// race and should not run the operation too.
    #[error(
        "operation {operation} ({date}) is already running: {holder} started running it at {since}; wait for it to finish, or run it again after that runner is gone"
    )]
    AlreadyRunning {
        /// The operation.
        operation: OperationId,
        /// Its business date.
        date: jiff::civil::Date,
        /// The runner's actor, with the process where known.
        holder: String,
        /// When that run started.
        since: jiff::Timestamp,
    },

    /// The step is running under a live claim held by someone else. Rejected.
    #[error(
        "step {order} of operation {operation} is already running, claimed by {holder} until {lease_until}; wait for it, or take it over after the lease ends"
    )]
    ClaimHeld {
        /// The operation.
        operation: OperationId,
        /// The step.
        order: u32,
        /// Who holds the claim.
        holder: String,
        /// When the lease ends.
        lease_until: jiff::Timestamp,
    },

    /// Complete, fail or renew was called without the step's current claim. Rejected.
    #[error(
        "step {order} of operation {operation} is {status}{held}; the given claim `{}` is not its current claim, so only the current holder may finish it",
        escape_controls(.claim)
    )]
    WrongClaim {
        /// The operation.
        operation: OperationId,
        /// The step.
        order: u32,
        /// The step's current status.
        status: StepStatus,
        /// `, claimed by X` when a claim is held, else empty.
        held: String,
        /// The claim token that was given.
        claim: String,
    },

    /// The action is not allowed from the step's current status. Rejected.
    #[error(
        "cannot {action} step {order} (`{code}`) of operation {operation}: its status is {status}; {allowed}"
    )]
    InvalidTransition {
        /// The operation.
        operation: OperationId,
        /// The step.
        order: u32,
        /// The step's code.
        code: String,
        /// The action that was asked for: `start`, `complete`, `fail`, `skip`, `retry`.
        action: &'static str,
        /// The step's current status.
        status: StepStatus,
        /// The actions allowed from this status.
        allowed: String,
    },

    /// A required step cannot be skipped by a person. Rejected.
    #[error(
        "cannot skip step {order} (`{code}`) of operation {operation}: it is required; run it, or retry it if it failed"
    )]
    RequiredStep {
        /// The operation.
        operation: OperationId,
        /// The step.
        order: u32,
        /// Its code.
        code: String,
    },

    /// The operation is finished and takes no further change. Rejected.
    #[error("operation {operation} finished at {finished_at} and accepts no further change")]
    OperationFinished {
        /// The operation.
        operation: OperationId,
        /// When it finished.
        finished_at: jiff::Timestamp,
    },

    /// A request id was used before for a different call. Rejected.
    #[error(
        "request id `{request_id}` was already used for {stored}, not for {given}; use a new request id for a new call"
    )]
    RequestIdReused {
        /// The request id.
        request_id: String,
        /// The call it was first used for.
        stored: String,
        /// The call it was given with now.
        given: String,
    },

    /// A runner was given a plan with a required step that has no handler. Rejected before any
    /// step started.
    #[error(
        "required step {order} (`{code}`) has no handler: register one for `{code}` before running"
    )]
    MissingHandler {
        /// The step's order.
        order: u32,
        /// The step's code.
        code: String,
    },

    /// The write slot stayed taken, by this or another process, for longer than the configured
    /// wait.
    #[error("`{path}` is busy: {detail}")]
    Busy {
        /// The file.
        path: PathBuf,
        /// The lock waited for and the time waited.
        detail: String,
    },

    /// redb failed. After an I/O error, drop the [`Store`](crate::Store) and open the file
    /// again; a write whose commit failed may still be durable, so repeat it with the same request
    /// id to learn its outcome.
    #[error("storage error while {context}")]
    Storage {
        /// The operation eodstore was performing.
        context: String,
        /// redb's error.
        #[source]
        source: redb::Error,
    },

    /// An operating-system I/O call outside redb failed (reading a plan or data file, running a
    /// step's command).
    #[error("cannot {action} `{path}`")]
    Io {
        /// The action, such as `read`.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Says what clears a required step that blocks a later one, given its status.
fn unblock_hint(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Running => "wait for it to complete",
        StepStatus::Failed => "retry it and complete it first",
        _ => "complete it first",
    }
}

/// The maximum number of characters of a rejected value that a message quotes.
const MAX_QUOTED_CHARS: usize = 120;

/// Returns `text` as a message quotes it. Each control character becomes its Rust escape (`\n`,
/// `\t`, `\u{1b}`), so that a rejected value can neither split a message's line nor send escape
/// sequences to the terminal. A value longer than 120 characters is cut, and its length added.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;

    let long = text.chars().nth(MAX_QUOTED_CHARS).is_some();
    if !long && !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len().min(4 * MAX_QUOTED_CHARS) + 8);
    for c in text.chars().take(MAX_QUOTED_CHARS) {
        if c.is_control() {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    if long {
        let _ = write!(escaped, "… ({} characters in all)", text.chars().count());
    }
    std::borrow::Cow::Owned(escaped)
}

/// Returns `text` with each control character written as its Rust escape, at any length: the
/// explanation of a rejected value may quote parts of the input, such as a CSV cell.
fn escape_controls_only(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().collect()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Quotes `word` for a POSIX shell when it contains anything but plain characters, so that a
/// command suggested in a message can be copied as printed.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | '+'));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The broad class of an [`Error`], for callers that map errors to exit codes or retry policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// The request was invalid for the input or the current state; nothing was written.
    Rejected,
    /// The file is locked by another process, or the write slot stayed busy.
    Busy,
    /// Storage failed or the file is damaged; the request may or may not have been applied if it
    /// was a commit (repeat it with its request id).
    Storage,
}

impl Error {
    /// Returns the broad class of this error.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Locked { .. } | Error::Busy { .. } => ErrorCategory::Busy,
            Error::Corrupt { .. }
            | Error::Decode { .. }
            | Error::Encode { .. }
            | Error::Storage { .. }
            | Error::Io { .. } => ErrorCategory::Storage,
            _ => ErrorCategory::Rejected,
        }
    }

    /// Turns a redb error that shows damage into [`Error::Corrupt`] for the file at `path`. A
    /// checksum failure and a read past the end of a cut-off file show damage. Other errors are
    /// returned as they are.
    pub(crate) fn damaged_at(self, path: &std::path::Path) -> Self {
        let Error::Storage { context, source } = self else {
            return self;
        };
        let detail = match &source {
            redb::Error::Corrupted(detail) => detail.clone(),
            redb::Error::Io(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                "the file is shorter than its pages say, so it was cut off".to_owned()
            }
            _ => return Error::Storage { context, source },
        };
        Error::Corrupt {
            path: path.to_owned(),
            detail: format!("{detail} (while {context})"),
        }
    }

    /// Wraps a redb error with what eodstore was doing.
    pub(crate) fn storage(context: impl Into<String>, source: impl Into<redb::Error>) -> Self {
        Error::Storage {
            context: context.into(),
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        // Boxed payloads keep `Result<T>` cheap to move on the hot path.
        assert!(
            std::mem::size_of::<Error>() <= 120,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn categories_map_by_kind() {
        let busy = Error::Busy {
            path: "x".into(),
            detail: "d".into(),
        };
        assert_eq!(busy.category(), ErrorCategory::Busy);
        let nf = Error::OperationNotFound {
            operation: OperationId(3),
        };
        assert_eq!(nf.category(), ErrorCategory::Rejected);
        assert_eq!(
            nf.to_string(),
            "operation 3 not found: list operations with `eod history`"
        );
    }

    /// Pins the text of every variant, so that a change to a message is a visible decision.
    #[test]
    #[allow(clippy::too_many_lines, reason = "one table row per variant")]
    fn every_variant_message_exact() {
        let at: jiff::Timestamp = "2026-12-04T23:00:00Z".parse().unwrap();
        let io = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::NoDatabase {
                    path: "x.redb".into(),
                },
                "no database at `x.redb`: check the path (or `--db`/`EOD_DB`), or create one by opening an operation or setting a business date",
            ),
            (
                Error::NotEodstoreFile {
                    path: "x".into(),
                    reason: "it is a directory".into(),
                },
                "`x` is not an eodstore database (it is a directory): check the path; eodstore never writes into a file it did not create",
            ),
            (
                Error::NewerFormat {
                    path: "x".into(),
                    found: 3,
                    supported: 1,
                },
                "`x` has eodstore format version 3, but this build reads versions up to 1: upgrade eodstore to open it",
            ),
            (
                Error::OlderFormat {
                    path: "x".into(),
                    found: 1,
                    current: 2,
                },
                "`x` has eodstore format version 1, older than the version 2 this build writes: open it read-only, or migrate it with `eod migrate` (`Store::migrate`), which first copies it aside",
            ),
            (
                Error::Locked {
                    path: "x".into(),
                    detail: "held".into(),
                },
                "`x` is locked: held",
            ),
            (
                Error::Corrupt {
                    path: "x".into(),
                    detail: "bad page".into(),
                },
                "`x` is damaged: bad page; restore it from a backup; eod cannot repair it yet",
            ),
            (
                Error::Decode {
                    table: "steps",
                    key: "(1, 2)".into(),
                    detail: "short".into(),
                },
                "cannot decode the record at (1, 2) in table `steps`: short; the file may be damaged or written by a newer eodstore",
            ),
            (
                Error::Encode {
                    what: "step",
                    detail: "odd".into(),
                },
                "cannot encode the step record: odd; this is a bug in eodstore, please report it",
            ),
            (
                Error::InvalidPlan {
                    plan: "p".into(),
                    entry: "steps".into(),
                    problem: "empty".into(),
                },
                "invalid plan `p`: steps: empty",
            ),
            (
                Error::PlanFile {
                    path: "p.toml".into(),
                    problem: "missing field `name`".into(),
                },
                "cannot read plan file `p.toml`: missing field `name`",
            ),
            (
                Error::InvalidInput {
                    what: "actor",
                    value: " ".into(),
                    expected: "it must not be blank".into(),
                },
                "invalid actor ` `: it must not be blank",
            ),
            (
                Error::OperationNotFound {
                    operation: OperationId(7),
                },
                "operation 7 not found: list operations with `eod history`",
            ),
            (
                Error::NoOperationForDate {
                    property: "grand".into(),
                    business_date: jiff::civil::date(2026, 12, 4),
                },
                "no operation for property `grand` on 2026-12-04: open one with `eod open --date 2026-12-04 --property grand`",
            ),
            (
                Error::StepNotFound {
                    operation: OperationId(7),
                    order: 11,
                    orders: "1, 2".into(),
                },
                "operation 7 has no step at order 11: its orders are 1, 2",
            ),
            (
                Error::PlanConflict {
                    operation: OperationId(7),
                    stored_plan: "standard".into(),
                    difference: "d".into(),
                },
                "operation 7 was seeded with plan `standard`, which differs from the given plan: d; open it with its original plan, or use another date or property",
            ),
            (
                Error::StepOutOfOrder {
                    operation: OperationId(7),
                    order: 3,
                    blocking_order: 1,
                    blocking_code: "a".into(),
                    blocking_status: StepStatus::Failed,
                },
                "step 3 of operation 7 cannot start: required step 1 (`a`) has status failed; retry it and complete it first",
            ),
            (
                Error::AnotherStepRunning {
                    operation: OperationId(7),
                    order: 3,
                    running_order: 2,
                    holder: "`ayşe`".into(),
                    lease_until: at,
                },
                "step 3 of operation 7 cannot start: step 2 is running, claimed by `ayşe` until 2026-12-04T23:00:00Z; wait for it to finish",
            ),
            (
                Error::NotBusinessDate {
                    property: "grand".into(),
                    date: jiff::civil::date(2026, 12, 6),
                    current: jiff::civil::date(2026, 12, 4),
                    problem: "it is too early".into(),
                },
                "the operation of property `grand` is for 2026-12-06, but the property's business date is 2026-12-04: it is too early",
            ),
            (
                Error::PropertyBusy {
                    property: "grand".into(),
                    date: jiff::civil::date(2026, 12, 5),
                    active: OperationId(6),
                    active_date: jiff::civil::date(2026, 12, 4),
                    by: "ayşe".into(),
                    since: at,
                },
                "the operation of property `grand` for 2026-12-05 cannot start: operation 6 (business date 2026-12-04) started at 2026-12-04T23:00:00Z by `ayşe` and has not finished; finish it, or release it with `eod release --operation 6 --reason TEXT` (`Store::release_operation`) if its terminal is gone",
            ),
            (
                Error::AlreadyRunning {
                    operation: OperationId(6),
                    date: jiff::civil::date(2026, 12, 4),
                    holder: "`ayşe`".into(),
                    since: at,
                },
                "operation 6 (2026-12-04) is already running: `ayşe` started running it at 2026-12-04T23:00:00Z; wait for it to finish, or run it again after that runner is gone",
            ),
            (
                Error::NotReleasable {
                    operation: OperationId(6),
                    holder: "the runner `ayşe`".into(),
                    until: at,
                },
                "operation 6 cannot be released while the runner `ayşe` holds it until 2026-12-04T23:00:00Z: stop that terminal, or release the operation after that claim ends",
            ),
            (
                Error::ClaimHeld {
                    operation: OperationId(7),
                    order: 2,
                    holder: "`ayşe`".into(),
                    lease_until: at,
                },
                "step 2 of operation 7 is already running, claimed by `ayşe` until 2026-12-04T23:00:00Z; wait for it, or take it over after the lease ends",
            ),
            (
                Error::WrongClaim {
                    operation: OperationId(7),
                    order: 2,
                    status: StepStatus::Running,
                    held: ", claimed by `ayşe`".into(),
                    claim: "abc".into(),
                },
                "step 2 of operation 7 is running, claimed by `ayşe`; the given claim `abc` is not its current claim, so only the current holder may finish it",
            ),
            (
                Error::InvalidTransition {
                    operation: OperationId(7),
                    order: 2,
                    code: "b".into(),
                    action: "retry",
                    status: StepStatus::Pending,
                    allowed: "only a failed step can be retried".into(),
                },
                "cannot retry step 2 (`b`) of operation 7: its status is pending; only a failed step can be retried",
            ),
            (
                Error::RequiredStep {
                    operation: OperationId(7),
                    order: 1,
                    code: "a".into(),
                },
                "cannot skip step 1 (`a`) of operation 7: it is required; run it, or retry it if it failed",
            ),
            (
                Error::OperationFinished {
                    operation: OperationId(7),
                    finished_at: at,
                },
                "operation 7 finished at 2026-12-04T23:00:00Z and accepts no further change",
            ),
            (
                Error::RequestIdReused {
                    request_id: "r".into(),
                    stored: "a".into(),
                    given: "b".into(),
                },
                "request id `r` was already used for a, not for b; use a new request id for a new call",
            ),
            (
                Error::MissingHandler {
                    order: 2,
                    code: "b".into(),
                },
                "required step 2 (`b`) has no handler: register one for `b` before running",
            ),
            (
                Error::Busy {
                    path: "x".into(),
                    detail: "waited".into(),
                },
                "`x` is busy: waited",
            ),
            (
                Error::storage("committing a start", redb::StorageError::PreviousIo),
                "storage error while committing a start",
            ),
            (
                Error::Io {
                    action: "read",
                    path: "x".into(),
                    source: io(),
                },
                "cannot read `x`",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }
}
