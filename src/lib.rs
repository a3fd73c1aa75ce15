//! eodstore: an embedded, crash-safe store for hotel end-of-day operations (night audits).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod clock;
mod codec;
mod error;
pub mod model;
pub mod plan;
pub mod process;
pub mod runner;
mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ErrorCategory, Result};
pub use model::{
    Claim, Event, EventKind, Operation, OperationId, OperationStatus, PlanIdentityStep, ProcessRef,
    Step, StepStatus, parse_business_date,
};
pub use plan::{Plan, PlanStep};
pub use store::{
    Caller, ConcurrencyMode, DEFAULT_LEASE, DEFAULT_OPEN_TIMEOUT, Durability, FORMAT_VERSION,
    MAX_MESSAGE, MAX_OUTPUT_TAIL, MAX_PROPERTY_CHARS, Opened, OperationView, SeededStep, Started,
    Store, StoreOptions, validate_property,
};
