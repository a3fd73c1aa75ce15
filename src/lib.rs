//! eodstore: an embedded, crash-safe store for hotel end-of-day operations (night audits).
//!
//! A hotel closes each business day with an end-of-day operation: an ordered list of steps
//! (pre-audit checks, no-shows, room and tax posting, folio balancing, reports, the business
//! date roll). eodstore keeps those operations in one [redb](https://docs.rs/redb) file, with
//! each step stored once under the key `(operation_id, step_order)`. Seeding an operation's
//! steps is one write transaction that inserts only absent keys, so any number of racing
//! callers (threads or processes) end with exactly the plan's steps and all get the same list.
//!
//! # Example
//!
//! ```
//! # fn main() -> eodstore::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("eod.redb");
//! use eodstore::{Caller, Plan, StepStatus, Store, parse_business_date};
//!
//! let store = Store::open_or_create(&path)?;
//! let front_desk = Caller::new("ayşe");
//! let date = parse_business_date("2026-12-04")?;
//!
//! // Opening twice returns the same operation; the second call creates nothing.
//! let opened = store.open_operation("grand-hotel", date, &Plan::standard(), &front_desk)?;
//! let again = store.open_operation("grand-hotel", date, &Plan::standard(), &front_desk)?;
//! assert_eq!(opened.operation.id, again.operation.id);
//! assert!(opened.created && !again.created);
//!
//! // Only the holder of a step's claim may complete it.
//! let id = opened.operation.id;
//! let started = store.start_step(id, 1, &front_desk)?;
//! let step = store.complete_step(id, 1, &started.claim.token, Some("checks passed"), &front_desk)?;
//! assert_eq!(step.status, StepStatus::Completed);
//! # Ok(())
//! # }
//! ```
//!
//! ## Example: a conflicting plan is rejected
//!
//! ```
//! # fn main() -> eodstore::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! use eodstore::{Caller, Error, Plan, PlanStep, Store, parse_business_date};
//!
//! let store = Store::open_or_create(dir.path().join("eod.redb"))?;
//! let date = parse_business_date("2026-12-04")?;
//! store.open_operation("grand-hotel", date, &Plan::standard(), &Caller::new("ayşe"))?;
//!
//! let short = Plan::new("short", vec![PlanStep {
//!     order: 1,
//!     code: "pre_audit_checks".into(),
//!     name: "Ön Denetim Kontrolleri".into(),
//!     required: true,
//!     command: None,
//!     timeout_seconds: None,
//!     schedule: None,
//!     retry: None,
//! }])?;
//! let err = store.open_operation("grand-hotel", date, &short, &Caller::new("ayşe")).unwrap_err();
//! assert!(matches!(err, Error::PlanConflict { .. }));
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `&str` | format version, next operation id |
//! | `operations` | operation id | the [`Operation`] |
//! | `operations_by_day` | `(property, YYYYMMDD)` | operation id: one operation per property and day |
//! | `steps` | `(operation id, step order)` | the [`Step`] |
//! | `events` | `(operation id, seq)` | the append-only [`Event`] trail |
//! | `requests` | request id | the call it answered and its response, for [`Caller::request_id`] |
//! | `event_counts` | operation id | the length of its event trail, which reads compare with the trail they find |
//! | `sources` | operation id | the operation ids of the system it was imported from, one per line |
//! | `properties` | property | its [`PropertyState`]: current business date, operation in progress and its runner |
//! | `changes` | change number | `(operation id, event seq)`: every event in commit order, for [`Store::changes_after`] |
//!
//! The application may keep tables of its own in the same file, written in the transaction
//! that completes a step ([`Store::complete_step_with`], [`runner::Runner::handler_with_effects`])
//! and read with [`Store::read_app`]; their names must differ from the ones above.
//!
//! Values are encoded by one module, behind a record-format byte, so the encoding can change
//! without touching callers. Every rule (plan identity, step order, claims) is checked inside
//! the write transaction that applies the change, and every change appends its audit event in
//! the same transaction. See [`Store`] for durability and concurrency, and
//! [`runner::Runner`] for running a plan with a handler per step.
//!
//! # Around the steps
//!
//! - **Exactly-once side effects**: a step's writes to the application's own tables commit in
//!   the transaction that completes it ([`Store::complete_step_with`]); effects outside the
//!   file use [`idempotency_key`].
//! - **Retries**: a plan step's [`RetryPolicy`] tells the runner how often and how long apart to
//!   retry it; every attempt stays in the step's audit trail.
//! - **Business dates**: [`Store::set_business_date`] and the `roll_business_date` step
//!   ([`ROLL_STEP`]) keep each property's current business date; starting another date needs
//!   [`Caller::override_business_date`]; [`runner::Runner::run_until`] catches up missed dates;
//!   a property has at most one operation in progress ([`Store::release_operation`] frees an
//!   abandoned one), and one runner at a time runs an operation.
//! - **Schedules**: a plan step's [`Schedule`] runs it on given weekdays or days of the month;
//!   on other dates it is seeded as skipped, "not scheduled".
//! - **Notifications**: [`Store::subscribe`] calls a function after each commit, in commit
//!   order; [`Store::changes_after`] follows the changes of every process on the file.
//!
//! The library logs through `tracing` (debug for opens, seeds and transitions, warn for
//! takeovers and failed lease renewals) and never prints.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod clock;
mod codec;
mod error;
pub mod import;
pub mod model;
pub mod plan;
pub mod process;
pub mod runner;
pub mod schedule;
mod store;

/// The redb version this crate is built on, for [`Store::open_with_backend`] and its
/// `StorageBackend` trait, so that callers need no redb dependency of their own.
pub use redb;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ErrorCategory, Result, shell_word};
pub use model::{
    ActiveOperation, Claim, Event, EventKind, Operation, OperationId, OperationStatus,
    PlanIdentityStep, ProcessRef, PropertyState, RunClaim, Step, StepStatus, idempotency_key,
    parse_business_date,
};
pub use plan::{Plan, PlanStep};
pub use schedule::{NOT_SCHEDULED, RetryPolicy, Schedule};
pub use store::{
    AppSnapshot, Change, NOTIFICATION_QUEUE, Notification, ROLL_STEP, SideEffects, Subscription,
};
pub use store::{
    Backup, Caller, Compaction, ConcurrencyMode, DEFAULT_CACHE_SIZE, DEFAULT_LEASE,
    DEFAULT_OPEN_TIMEOUT, DEFAULT_WRITE_TIMEOUT, Durability, FORMAT_VERSION, IntegrityProblem,
    IntegrityReport, MAX_MESSAGE, MAX_OUTPUT_TAIL, MAX_PROPERTY_CHARS, MIN_CACHE_SIZE, Migration,
    Opened, OperationView, ProblemKind, SeededStep, Started, Store, StoreOptions, TaskProgress,
    validate_property,
};
pub use store::{
    DUMP_FORMAT, DUMP_VERSION, Dump, DumpError, DumpFilter, DumpImport, DumpedOperation,
};
pub use store::{ImportOutcome, ImportedOperationOutcome};
pub use store::{OperationReport, Report, StepCodeStats, StepProblem, StepTiming};
