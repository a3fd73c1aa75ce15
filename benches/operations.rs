//! Criterion micro-benchmarks of single calls from one thread: one seed, one start-and-complete
//! transition and one status read, eodstore against SQLite (and raw redb for the seed).
//!
//! ```text
//! cargo bench --bench operations
//! cargo bench --bench operations -- seed/    # one group
//! ```
//!
//! Every file is new, in a temporary directory, and every commit is durable:
//!
//! - eodstore with its defaults (`MultiWriter`, `Durability::Immediate`, group commit),
//! - raw redb in `MultiWriter` mode,
//! - SQLite in WAL mode with `synchronous=FULL` and a schema of the same idea as eodstore's
//!   tables: operations with a unique property and day, steps keyed by
//!   `(operation_id, step_order)`, and an event per change.
//!
//! Every iteration asserts its result inside the timed routine.

// "SQLite" is a product name, which `doc_markdown` takes for an item that needs backticks.
#![allow(clippy::doc_markdown)]

use std::cell::RefCell;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use eodstore::{Caller, OperationId, Plan, StepStatus, Store, StoreOptions};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Steps of the standard plan.
const STEPS: usize = 10;

/// Returns the property and business date of the `n`th operation a benchmark opens: 100
/// thousand days per property keep the dates within jiff's range however many iterations
/// criterion runs.
fn operation_key(n: u32) -> (String, jiff::civil::Date) {
    let property = format!("hotel-{}", n / 100_000);
    let date = jiff::civil::date(2000, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(n % 100_000)))
        .expect("100 thousand days after 2000-01-01 is a valid date");
    (property, date)
}

fn open_store(dir: &Path) -> Store {
    Store::open_with(dir.join("eod.redb"), StoreOptions::new().create(true))
        .expect("creating the eodstore file")
}

/// Seeds the `n`th operation into `store` and returns its id, checking that it is new.
fn eodstore_seed(store: &Store, plan: &Plan, caller: &Caller, n: u32) -> OperationId {
    let (property, date) = operation_key(n);
    let opened = store
        .open_operation(black_box(&property), date, plan, caller)
        .expect("opening an operation");
    assert!(opened.created, "operation {n} already existed");
    assert_eq!(opened.steps.len(), STEPS);
    assert!(opened.steps.iter().all(|step| step.created));
    opened.operation.id
}

fn bench_seed(c: &mut Criterion) {
    let mut group = c.benchmark_group("seed");
    let plan = Plan::standard();
    let caller = Caller::new("front-desk");

    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let store = open_store(dir.path());
    let mut n = 0;
    group.bench_function("10_steps/eodstore", |b| {
        b.iter(|| {
            n += 1;
            eodstore_seed(&store, &plan, &caller, n)
        });
    });
    drop(store);

    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let db = raw_redb::create(dir.path());
    let codes: Vec<String> = plan.steps().iter().map(|step| step.code.clone()).collect();
    let mut id = 0;
    group.bench_function("10_steps/redb", |b| {
        b.iter(|| {
            id += 1;
            let inserted = raw_redb::seed(&db, black_box(id), &codes);
            assert_eq!(inserted, STEPS);
        });
    });
    drop(db);

    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let mut conn = sqlite::open(dir.path());
    let mut n = 0;
    group.bench_function("10_steps/sqlite", |b| {
        b.iter(|| {
            n += 1;
            let (property, date) = operation_key(n);
            let seeded = sqlite::seed(&mut conn, black_box(&property), &date.to_string(), &plan);
            assert!(seeded.created, "operation {n} already existed");
            assert_eq!(seeded.inserted, STEPS);
            assert_eq!(seeded.steps, STEPS);
            seeded.id
        });
    });
    group.finish();
}

/// Walks the steps of operations in order, seeding a new operation when the current one has no
/// step left.
struct StepCursor {
    operation: Option<i64>,
    next_order: u32,
    seeded: u32,
}

impl StepCursor {
    fn new() -> StepCursor {
        StepCursor {
            operation: None,
            next_order: 1,
            seeded: 0,
        }
    }

    /// Returns the next `(operation, order)` to start, seeding with `seed` when needed.
    fn next(&mut self, seed: impl FnOnce(u32) -> i64) -> (i64, u32) {
        let operation = match self.operation {
            Some(operation) if self.next_order <= STEPS as u32 => operation,
            _ => {
                self.seeded += 1;
                self.next_order = 1;
                *self.operation.insert(seed(self.seeded))
            }
        };
        let order = self.next_order;
        self.next_order += 1;
        (operation, order)
    }
}

fn bench_transition(c: &mut Criterion) {
    let mut group = c.benchmark_group("transition");
    let plan = Plan::standard();
    let caller = Caller::new("front-desk");

    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let store = open_store(dir.path());
    let mut cursor = StepCursor::new();
    group.bench_function("start_complete/eodstore", |b| {
        b.iter_batched(
            || {
                cursor.next(|n| {
                    let id = eodstore_seed(&store, &plan, &caller, n);
                    i64::try_from(id.0).expect("operation ids fit in i64")
                })
            },
            |(operation, order)| {
                let operation =
                    OperationId(u64::try_from(operation).expect("operation ids are positive"));
                let started = store
                    .start_step(operation, black_box(order), &caller)
                    .expect("starting a step");
                assert_eq!(started.step.status, StepStatus::Running);
                let step = store
                    .complete_step(operation, order, &started.claim.token, None, &caller)
                    .expect("completing a step");
                assert_eq!(step.status, StepStatus::Completed);
            },
            BatchSize::SmallInput,
        );
    });
    drop(store);

    let dir = tempfile::tempdir().expect("creating a temporary directory");
    // Both the setup (which seeds) and the timed routine write through the one connection.
    let conn = RefCell::new(sqlite::open(dir.path()));
    let mut cursor = StepCursor::new();
    let mut claims = 0_u64;
    group.bench_function("start_complete/sqlite", |b| {
        b.iter_batched(
            || {
                cursor.next(|n| {
                    let (property, date) = operation_key(n);
                    sqlite::seed(&mut conn.borrow_mut(), &property, &date.to_string(), &plan).id
                })
            },
            |(operation, order)| {
                claims += 1;
                let token = format!("claim-{claims}");
                let mut conn = conn.borrow_mut();
                sqlite::start(&mut conn, operation, black_box(order), &token);
                sqlite::complete(&mut conn, operation, order, &token);
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_status(c: &mut Criterion) {
    let mut group = c.benchmark_group("status");
    let plan = Plan::standard();
    let caller = Caller::new("front-desk");

    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let store = open_store(dir.path());
    let id = eodstore_seed(&store, &plan, &caller, 1);
    group.bench_function("10_steps/eodstore", |b| {
        b.iter(|| {
            let view = store.view(black_box(id)).expect("reading an operation");
            assert_eq!(view.operation.id, id);
            assert_eq!(view.steps.len(), STEPS);
        });
    });
    drop(store);

    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let mut conn = sqlite::open(dir.path());
    let (property, date) = operation_key(1);
    let id = sqlite::seed(&mut conn, &property, &date.to_string(), &plan).id;
    group.bench_function("10_steps/sqlite", |b| {
        b.iter(|| {
            let steps = sqlite::status(&conn, black_box(id));
            assert_eq!(steps, STEPS);
        });
    });
    group.finish();
}

/// Raw redb: steps keyed by `(operation id, step order)`, one durable transaction per seed.
mod raw_redb {
    use std::path::Path;

    use redb::ReadableTable;

    const STEPS: redb::TableDefinition<(u64, u32), &[u8]> = redb::TableDefinition::new("steps");

    pub fn create(dir: &Path) -> redb::Database {
        redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(dir.join("raw.redb"))
            .expect("creating the redb file")
    }

    /// Inserts the absent steps of operation `id` in one durable transaction and returns how
    /// many it inserted.
    pub fn seed(db: &redb::Database, id: u64, codes: &[String]) -> usize {
        let txn = db.begin_write().expect("beginning a write");
        let mut inserted = 0;
        {
            let mut table = txn.open_table(STEPS).expect("opening the steps table");
            for (order, code) in (1..).zip(codes) {
                if table.get((id, order)).expect("reading a step").is_none() {
                    table
                        .insert((id, order), code.as_bytes())
                        .expect("inserting a step");
                    inserted += 1;
                }
            }
        }
        txn.commit().expect("committing");
        inserted
    }
}

/// SQLite with a schema of the same idea as eodstore's tables.
mod sqlite {
    use super::{Connection, OptionalExtension, Path, Plan, TransactionBehavior, params};

    const SCHEMA: &str = "
        CREATE TABLE operations (
            id INTEGER PRIMARY KEY,
            property TEXT NOT NULL,
            business_date TEXT NOT NULL,
            plan TEXT NOT NULL,
            status TEXT NOT NULL,
            created_by TEXT NOT NULL,
            UNIQUE (property, business_date)
        );
        CREATE TABLE steps (
            operation_id INTEGER NOT NULL REFERENCES operations (id),
            step_order INTEGER NOT NULL,
            code TEXT NOT NULL,
            name TEXT NOT NULL,
            required INTEGER NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            claim TEXT,
            PRIMARY KEY (operation_id, step_order)
        );
        CREATE TABLE events (
            operation_id INTEGER NOT NULL REFERENCES operations (id),
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            step_order INTEGER,
            actor TEXT NOT NULL,
            PRIMARY KEY (operation_id, seq)
        );";

    pub fn open(dir: &Path) -> Connection {
        let conn = Connection::open(dir.join("eod.sqlite")).expect("creating the SQLite file");
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .expect("setting the busy timeout");
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .expect("switching to WAL mode");
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "FULL")
            .expect("setting synchronous=FULL");
        conn.execute_batch(SCHEMA).expect("creating the schema");
        conn
    }

    /// The result of one seeding call.
    pub struct Seeded {
        pub id: i64,
        pub created: bool,
        pub inserted: usize,
        pub steps: usize,
    }

    /// Opens the operation of `property` on `date` and inserts its absent steps, with an event
    /// for each change, in one `BEGIN IMMEDIATE` transaction.
    pub fn seed(conn: &mut Connection, property: &str, date: &str, plan: &Plan) -> Seeded {
        let txn = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("beginning a transaction");
        let created = txn
            .prepare_cached(
                "INSERT OR IGNORE INTO operations (property, business_date, plan, status, created_by) \
                 VALUES (?1, ?2, ?3, 'open', 'front-desk')",
            )
            .and_then(|mut insert| insert.execute(params![property, date, plan.name()]))
            .expect("inserting the operation")
            == 1;
        let id: i64 = txn
            .prepare_cached("SELECT id FROM operations WHERE property = ?1 AND business_date = ?2")
            .and_then(|mut select| select.query_row(params![property, date], |row| row.get(0)))
            .expect("reading the operation id");
        let mut inserted = 0;
        {
            let mut insert = txn
                .prepare_cached(
                    "INSERT OR IGNORE INTO steps (operation_id, step_order, code, name, required, status) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
                )
                .expect("preparing the step insert");
            for step in plan.steps() {
                inserted += insert
                    .execute(params![id, step.order, step.code, step.name, step.required])
                    .expect("inserting a step");
            }
        }
        if created {
            append_event(&txn, id, "operation_created", None);
        }
        if inserted > 0 {
            append_event(&txn, id, "steps_seeded", None);
        }
        let steps = step_orders(&txn, id).len();
        txn.commit().expect("committing the seed");
        Seeded {
            id,
            created,
            inserted,
            steps,
        }
    }

    fn append_event(conn: &Connection, id: i64, kind: &str, step_order: Option<u32>) {
        conn.prepare_cached(
            "INSERT INTO events (operation_id, seq, kind, step_order, actor) \
             VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM events WHERE operation_id = ?1), \
             ?2, ?3, 'front-desk')",
        )
        .and_then(|mut insert| insert.execute(params![id, kind, step_order]))
        .expect("appending an event");
    }

    fn step_orders(conn: &Connection, id: i64) -> Vec<(u32, String)> {
        let mut select = conn
            .prepare_cached(
                "SELECT step_order, status FROM steps WHERE operation_id = ?1 ORDER BY step_order",
            )
            .expect("preparing the step read");
        select
            .query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(Iterator::collect)
            .expect("reading the steps")
    }

    /// Starts a pending step whose lower steps are all completed, in one transaction.
    pub fn start(conn: &mut Connection, id: i64, order: u32, token: &str) {
        let txn = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("beginning a transaction");
        let steps = step_orders(&txn, id);
        for (step_order, status) in &steps {
            let expected = match step_order.cmp(&order) {
                std::cmp::Ordering::Less => "completed",
                std::cmp::Ordering::Equal | std::cmp::Ordering::Greater => "pending",
            };
            assert_eq!(status, expected, "step {step_order} of operation {id}");
        }
        let updated = txn
            .prepare_cached(
                "UPDATE steps SET status = 'running', claim = ?3, attempts = attempts + 1 \
                 WHERE operation_id = ?1 AND step_order = ?2 AND status = 'pending'",
            )
            .and_then(|mut update| update.execute(params![id, order, token]))
            .expect("starting the step");
        assert_eq!(updated, 1);
        append_event(&txn, id, "started", Some(order));
        txn.commit().expect("committing the start");
    }

    /// Completes a running step held under `token`, in one transaction.
    pub fn complete(conn: &mut Connection, id: i64, order: u32, token: &str) {
        let txn = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("beginning a transaction");
        let claim: Option<Option<String>> = txn
            .prepare_cached(
                "SELECT claim FROM steps WHERE operation_id = ?1 AND step_order = ?2 \
                 AND status = 'running'",
            )
            .and_then(|mut select| {
                select
                    .query_row(params![id, order], |row| row.get(0))
                    .optional()
            })
            .expect("reading the claim");
        assert_eq!(claim, Some(Some(token.to_owned())), "claim of step {order}");
        txn.prepare_cached(
            "UPDATE steps SET status = 'completed', claim = NULL \
             WHERE operation_id = ?1 AND step_order = ?2",
        )
        .and_then(|mut update| update.execute(params![id, order]))
        .expect("completing the step");
        append_event(&txn, id, "completed", Some(order));
        txn.commit().expect("committing the completion");
    }

    /// Reads an operation and its steps and returns the number of steps.
    pub fn status(conn: &Connection, id: i64) -> usize {
        let status: String = conn
            .prepare_cached("SELECT status FROM operations WHERE id = ?1")
            .and_then(|mut select| select.query_row([id], |row| row.get(0)))
            .expect("reading the operation");
        assert_eq!(status, "open");
        step_orders(conn, id).len()
    }
}

fn configure() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn main() {
    let mut criterion = configure().configure_from_args();
    bench_seed(&mut criterion);
    bench_transition(&mut criterion);
    bench_status(&mut criterion);
    criterion.final_summary();
}
