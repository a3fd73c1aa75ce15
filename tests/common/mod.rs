//! Helpers shared by the integration tests: temporary stores and a manual clock.
#![allow(dead_code)]

pub mod fault;

use std::sync::Arc;

use eodstore::{Caller, ManualClock, Store, StoreOptions};
use jiff::civil::Date;

/// A store in its own temporary directory, removed when dropped.
pub struct TempStore {
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

impl TempStore {
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("eod.redb")
    }
}

/// Creates a new store on a real file, with a manual clock at 2026-12-04T23:00:00Z.
pub fn create_temp_store() -> TempStore {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let clock = Arc::new(ManualClock::new(
        "2026-12-04T23:00:00Z".parse().expect("valid timestamp"),
    ));
    let store = Store::open_with(
        dir.path().join("eod.redb"),
        StoreOptions::new().create(true).clock(clock.clone()),
    )
    .expect("create the store");
    TempStore { store, clock, dir }
}

pub fn date(text: &str) -> Date {
    eodstore::parse_business_date(text).expect("valid test date")
}

pub fn caller(name: &str) -> Caller {
    Caller::new(name)
}

/// Opens the standard plan's operation for property `grand` on 2026-12-04 and returns its id.
pub fn open_standard(t: &TempStore) -> eodstore::OperationId {
    t.store
        .open_operation(
            "grand",
            date("2026-12-04"),
            &eodstore::Plan::standard(),
            &caller("a"),
        )
        .expect("open the standard operation")
        .operation
        .id
}

/// Returns a plan step with the name `Adım ORDER`, no command, no schedule and no retry policy.
pub fn plan_step(order: u32, code: &str, required: bool) -> eodstore::PlanStep {
    eodstore::PlanStep {
        order,
        code: code.into(),
        name: format!("Adım {order}"),
        required,
        command: None,
        timeout_seconds: None,
        schedule: None,
        retry: None,
    }
}
