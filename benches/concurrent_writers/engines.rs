//! The engines under test, and one thread's session with each: seeding an operation, starting
//! and completing a step, and reading an operation's status. Every call checks its result and
//! returns `Err` with a description when the result is wrong.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use eodstore::{
    Caller, ConcurrencyMode, Durability, OperationId, Plan, StepStatus, Store, StoreOptions,
};
use redb::{ReadableDatabase, ReadableTable};
use rusqlite::{Connection, TransactionBehavior, params};
use serde::Serialize;

use crate::measure::CallResult;

/// Steps per operation: the standard plan's.
pub const STEPS: u32 = 10;

/// The lane of the operations that the raw engines load before a window, so that they never
/// collide with the lanes of the measuring threads (0 to the writer count).
pub const PRESEED_LANE: u32 = 1_000;

/// The first lane of the operations that [`Db::preseeded`] loads into eodstore, one lane, and so
/// one property, per operation. A property has at most one operation in progress, and the
/// writers of the transitions measurement work on several preseeded operations at once. The
/// base lies far above every other lane, so that no operation seeded in a window shares a
/// property with a preseeded one.
const PRESEED_OWN_LANE: u32 = 1 << 30;

/// The threads that load operations before a window. Several threads let group commit batch
/// their calls.
const PRESEED_THREADS: usize = 4;

/// The step codes of the standard plan, used as the raw engines' step values.
static CODES: LazyLock<Vec<String>> = LazyLock::new(|| {
    Plan::standard()
        .steps()
        .iter()
        .map(|step| step.code.clone())
        .collect()
});

/// The table of the raw redb engine: `(operation id, step order)` to the step code.
const REDB_STEPS: redb::TableDefinition<(u64, u32), &[u8]> = redb::TableDefinition::new("steps");

/// One storage engine and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// eodstore's defaults: group commit, `MultiWriter`, `Durability::Immediate`.
    Eodstore,
    /// eodstore with group commit off: one transaction per call.
    EodstoreNoGroup,
    /// eodstore with group commit in `ExclusiveWriter` mode, durable.
    EodstoreExclusive,
    /// eodstore with group commit, `ExclusiveWriter` and `Durability::None`: not durable.
    EodstoreNosync,
    /// redb alone, one durable transaction per seed, in `MultiWriter` mode.
    RedbPerTxn,
    /// redb alone, one durable transaction per seed, in `ExclusiveWriter` mode.
    RedbPerTxnExclusive,
    /// SQLite in WAL mode with `synchronous=FULL`.
    SqliteFull,
    /// SQLite in WAL mode with `synchronous=NORMAL`, which may lose the last commits on power
    /// loss.
    SqliteNormal,
}

impl Engine {
    /// Every engine, in report order.
    pub const ALL: [Engine; 8] = [
        Engine::Eodstore,
        Engine::EodstoreNoGroup,
        Engine::EodstoreExclusive,
        Engine::EodstoreNosync,
        Engine::RedbPerTxn,
        Engine::RedbPerTxnExclusive,
        Engine::SqliteFull,
        Engine::SqliteNormal,
    ];

    /// Returns the engine's name in tables, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Eodstore => "eodstore",
            Engine::EodstoreNoGroup => "eodstore_no_group",
            Engine::EodstoreExclusive => "eodstore_exclusive",
            Engine::EodstoreNosync => "eodstore_nosync",
            Engine::RedbPerTxn => "redb_per_txn",
            Engine::RedbPerTxnExclusive => "redb_per_txn_exclusive",
            Engine::SqliteFull => "sqlite_full",
            Engine::SqliteNormal => "sqlite_normal",
        }
    }

    /// Returns the engine's position in [`Engine::ALL`], the order of the tables.
    pub fn position(self) -> usize {
        Engine::ALL
            .iter()
            .position(|&engine| engine == self)
            .unwrap_or(usize::MAX)
    }

    /// Parses an engine name as [`Engine::name`] writes it.
    pub fn parse(name: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|engine| engine.name() == name)
    }

    /// Returns whether the engine has steps with a status, so that transitions can be measured.
    /// Raw redb stores only the step codes.
    pub fn has_transitions(self) -> bool {
        !matches!(self, Engine::RedbPerTxn | Engine::RedbPerTxnExclusive)
    }

    fn store_options(self) -> Option<StoreOptions> {
        let options = StoreOptions::new().create(true);
        match self {
            Engine::Eodstore => Some(options),
            Engine::EodstoreNoGroup => Some(options.group_commit(false)),
            Engine::EodstoreExclusive => {
                Some(options.concurrency(ConcurrencyMode::ExclusiveWriter))
            }
            Engine::EodstoreNosync => Some(
                options
                    .concurrency(ConcurrencyMode::ExclusiveWriter)
                    .durability(Durability::None),
            ),
            _ => None,
        }
    }
}

/// The key of one operation: a lane (one per thread) and a number within the lane. eodstore
/// stores it as property `hotel-{lane}` on business date 2000-01-01 plus `n` days, and the raw
/// engines as operation id `lane << 32 | n`.
#[derive(Debug, Clone, Copy)]
pub struct OpKey {
    pub lane: u32,
    pub n: u32,
}

impl OpKey {
    fn property(self) -> String {
        format!("hotel-{}", self.lane)
    }

    fn business_date(self) -> Result<jiff::civil::Date, String> {
        jiff::civil::date(2000, 1, 1)
            .checked_add(jiff::Span::new().days(i64::from(self.n)))
            .map_err(|err| {
                format!(
                    "business date of operation {} of lane {}: {err}",
                    self.n, self.lane
                )
            })
    }

    fn raw_id(self) -> u64 {
        (u64::from(self.lane) << 32) | u64::from(self.n)
    }
}

/// The result of one seeding call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    pub id: u64,
    /// Whether this call created the operation (for raw engines: inserted any step).
    pub created_operation: bool,
    /// Steps this call inserted.
    pub created_steps: u32,
    /// Steps the operation has after the call.
    pub steps: u32,
}

/// One engine's database in a directory of its own.
pub enum Db {
    Eodstore(Store),
    Redb {
        db: redb::Database,
        path: PathBuf,
    },
    Sqlite {
        path: PathBuf,
        synchronous: &'static str,
    },
}

impl Db {
    /// Creates an empty database of `engine` in `dir`.
    pub fn create(engine: Engine, dir: &Path) -> Result<Db, String> {
        Ok(Db::preseeded(engine, dir, 0)?.0)
    }

    /// Creates a database of `engine` in `dir` that already contains `count` operations with
    /// pending steps, and returns it with their ids. The operations are loaded without syncing,
    /// so that loading stays fast in the durable configurations. In eodstore each operation has
    /// a property of its own, so that writers can work on any of them at the same time.
    pub fn preseeded(engine: Engine, dir: &Path, count: u64) -> Result<(Db, Vec<u64>), String> {
        match engine {
            Engine::Eodstore
            | Engine::EodstoreNoGroup
            | Engine::EodstoreExclusive
            | Engine::EodstoreNosync => {
                let path = dir.join("eodstore.redb");
                let mut ids = Vec::new();
                if count > 0 {
                    let loader = open_loader(&path, eodstore::DEFAULT_CACHE_SIZE)?;
                    let mut next = vec![0; PRESEED_THREADS];
                    let lanes = Lanes::PerOperation(PRESEED_OWN_LANE);
                    ids = load_operations(&loader, lanes, &mut next, count)?;
                }
                let options = engine.store_options().expect("an eodstore engine");
                let store = Store::open_with(&path, options).map_err(|err| err.to_string())?;
                Ok((Db::Eodstore(store), ids))
            }
            Engine::RedbPerTxn | Engine::RedbPerTxnExclusive => {
                let mode = if engine == Engine::RedbPerTxn {
                    redb::ConcurrencyMode::MultiWriter
                } else {
                    redb::ConcurrencyMode::ExclusiveWriter
                };
                let path = dir.join("redb.redb");
                let db = redb::Database::builder()
                    .set_concurrency_mode(mode)
                    .create(&path)
                    .map_err(|err| err.to_string())?;
                let ids = redb_preseed(&db, count).map_err(|err| err.to_string())?;
                Ok((Db::Redb { db, path }, ids))
            }
            Engine::SqliteFull | Engine::SqliteNormal => {
                let synchronous = if engine == Engine::SqliteFull {
                    "FULL"
                } else {
                    "NORMAL"
                };
                let path = dir.join("sqlite.db");
                let ids = sqlite_preseed(&path, count).map_err(|err| err.to_string())?;
                Ok((Db::Sqlite { path, synchronous }, ids))
            }
        }
    }

    /// Opens a session for thread `thread`. A SQLite session opens a connection of its own.
    pub fn session(&self, thread: usize) -> Result<Session<'_>, String> {
        match self {
            Db::Eodstore(store) => Ok(Session::Eodstore {
                store,
                plan: Plan::standard(),
                caller: Caller::new(format!("terminal-{thread}")),
            }),
            Db::Redb { db, .. } => Ok(Session::Redb(db)),
            Db::Sqlite { path, synchronous } => {
                let conn = sqlite_connection(path, synchronous).map_err(|err| err.to_string())?;
                Ok(Session::Sqlite {
                    conn: Box::new(conn),
                    thread,
                    claims: 0,
                })
            }
        }
    }

    /// Returns the database's files and their total size in bytes.
    pub fn file_bytes(&self) -> u64 {
        let paths: Vec<PathBuf> = match self {
            Db::Eodstore(store) => vec![store.path().to_owned()],
            Db::Redb { path, .. } => vec![path.clone()],
            Db::Sqlite { path, .. } => vec![path.clone(), path.with_extension("db-wal")],
        };
        paths
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|metadata| metadata.len())
            .sum()
    }
}

/// Opens an eodstore file for loading: `ExclusiveWriter` mode, `Durability::None`, group
/// commit, a cache of `cache_size` bytes. redb makes the loaded data durable when the store is
/// dropped.
pub fn open_loader(path: &Path, cache_size: usize) -> Result<Store, String> {
    Store::open_with(
        path,
        StoreOptions::new()
            .create(true)
            .concurrency(ConcurrencyMode::ExclusiveWriter)
            .durability(Durability::None)
            .cache_size(cache_size),
    )
    .map_err(|err| err.to_string())
}

/// The lanes, and so the eodstore properties, of the operations that [`load_operations`] seeds.
#[derive(Debug, Clone, Copy)]
pub enum Lanes {
    /// Thread `t` seeds into lane `base + t`, numbers `next[t]`, `next[t] + 1` and so on.
    PerThread(u32),
    /// The `i`th operation of the load gets lane `base + i` and number 0.
    PerOperation(u32),
}

/// Seeds `count` new operations into `store` from one thread per entry of `next`, in the lanes
/// that `lanes` gives, and advances `next[t]` by the count that thread `t` seeded. Returns the
/// ids.
pub fn load_operations(
    store: &Store,
    lanes: Lanes,
    next: &mut [u32],
    count: u64,
) -> Result<Vec<u64>, String> {
    let claimed = AtomicU64::new(0);
    let results: Vec<Result<Vec<u64>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = next
            .iter_mut()
            .enumerate()
            .map(|(thread, next)| {
                let claimed = &claimed;
                scope.spawn(move || {
                    let mut session = Session::Eodstore {
                        store,
                        plan: Plan::standard(),
                        caller: Caller::new(format!("loader-{thread}")),
                    };
                    let mut ids = Vec::new();
                    loop {
                        let index = claimed.fetch_add(1, Ordering::Relaxed);
                        if index >= count {
                            break;
                        }
                        let key = match lanes {
                            Lanes::PerThread(base) => OpKey {
                                lane: base + thread as u32,
                                n: *next,
                            },
                            Lanes::PerOperation(base) => OpKey {
                                lane: base + index as u32,
                                n: 0,
                            },
                        };
                        let seeded = session.seed_new(key)?;
                        *next += 1;
                        ids.push(seeded);
                    }
                    Ok(ids)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a loading thread panicked"))
            .collect()
    });
    let mut ids = Vec::new();
    for result in results {
        ids.extend(result?);
    }
    Ok(ids)
}

/// One thread's connection to a [`Db`].
pub enum Session<'a> {
    Eodstore {
        store: &'a Store,
        plan: Plan,
        caller: Caller,
    },
    Redb(&'a redb::Database),
    Sqlite {
        conn: Box<Connection>,
        thread: usize,
        /// Claim tokens handed out so far, for unique tokens.
        claims: u64,
    },
}

impl Session<'_> {
    /// Opens the operation `key` with the standard plan, inserting the steps that are absent,
    /// and returns what the call did. Fails when the operation's steps afterwards are not the
    /// plan's.
    pub fn seed(&mut self, key: OpKey) -> Result<Seeded, String> {
        match self {
            Session::Eodstore {
                store,
                plan,
                caller,
            } => {
                let opened = store
                    .open_operation(&key.property(), key.business_date()?, plan, caller)
                    .map_err(|err| err.to_string())?;
                let orders = opened.steps.iter().map(|seeded| seeded.step.order);
                if !orders.eq(1..=STEPS) {
                    return Err(format!(
                        "operation {} returned {} steps, expected orders 1 to {STEPS}",
                        opened.operation.id,
                        opened.steps.len()
                    ));
                }
                Ok(Seeded {
                    id: opened.operation.id.0,
                    created_operation: opened.created,
                    created_steps: opened.steps.iter().filter(|seeded| seeded.created).count()
                        as u32,
                    steps: opened.steps.len() as u32,
                })
            }
            Session::Redb(db) => redb_seed(db, key.raw_id()).map_err(|err| err.to_string()),
            Session::Sqlite { conn, .. } => {
                sqlite_seed(conn, key.raw_id()).map_err(|err| err.to_string())
            }
        }
    }

    /// Seeds a new operation and fails unless this call created it with all its steps. Returns
    /// its id.
    pub fn seed_new(&mut self, key: OpKey) -> Result<u64, String> {
        let seeded = self.seed(key)?;
        if !seeded.created_operation || seeded.created_steps != STEPS || seeded.steps != STEPS {
            return Err(format!(
                "seeding new operation {} of lane {} returned {seeded:?}, expected a created \
                 operation with {STEPS} created steps",
                key.n, key.lane
            ));
        }
        Ok(seeded.id)
    }

    /// Starts step `order` of operation `id` and completes it with the claim the start
    /// returned: two write calls.
    pub fn start_and_complete(&mut self, id: u64, order: u32) -> CallResult {
        match self {
            Session::Eodstore { store, caller, .. } => {
                let operation = OperationId(id);
                let started = store
                    .start_step(operation, order, caller)
                    .map_err(|err| err.to_string())?;
                if started.step.status != StepStatus::Running || started.step.order != order {
                    return Err(format!(
                        "start of step {order} of operation {id} returned step {} in status {}",
                        started.step.order, started.step.status
                    ));
                }
                let step = store
                    .complete_step(operation, order, &started.claim.token, None, caller)
                    .map_err(|err| err.to_string())?;
                if step.status != StepStatus::Completed || step.order != order {
                    return Err(format!(
                        "completion of step {order} of operation {id} returned step {} in status {}",
                        step.order, step.status
                    ));
                }
                Ok(())
            }
            Session::Redb(_) => Err("raw redb has no step status to transition".into()),
            Session::Sqlite {
                conn,
                thread,
                claims,
            } => {
                *claims += 1;
                let token = format!("{thread}-{claims}");
                sqlite_start(conn, id, order, &token).map_err(|err| err.to_string())?;
                sqlite_complete(conn, id, order, &token).map_err(|err| err.to_string())
            }
        }
    }

    /// Reads operation `id` with its steps and fails unless it has the plan's steps.
    pub fn status(&mut self, id: u64) -> CallResult {
        let orders: Vec<u32> = match self {
            Session::Eodstore { store, .. } => {
                let view = store.view(OperationId(id)).map_err(|err| err.to_string())?;
                if view.operation.id.0 != id {
                    return Err(format!(
                        "status of operation {id} returned operation {}",
                        view.operation.id
                    ));
                }
                view.steps.iter().map(|step| step.order).collect()
            }
            Session::Redb(db) => redb_orders(db, id).map_err(|err| err.to_string())?,
            Session::Sqlite { conn, .. } => {
                sqlite_orders(conn, id).map_err(|err| err.to_string())?
            }
        };
        if !orders.iter().copied().eq(1..=STEPS) {
            return Err(format!(
                "status of operation {id} returned step orders {orders:?}, expected 1 to {STEPS}"
            ));
        }
        Ok(())
    }
}

/// Inserts the absent steps of operation `id` in one durable transaction, which commits even
/// when it inserted nothing.
fn redb_seed(db: &redb::Database, id: u64) -> Result<Seeded, redb::Error> {
    let txn = db.begin_write()?;
    let mut created_steps = 0;
    let mut steps = 0;
    {
        let mut table = txn.open_table(REDB_STEPS)?;
        for (order, code) in (1..=STEPS).zip(CODES.iter()) {
            if table.get((id, order))?.is_none() {
                table.insert((id, order), code.as_bytes())?;
                created_steps += 1;
            }
        }
        for entry in table.range((id, 0)..=(id, u32::MAX))? {
            entry?;
            steps += 1;
        }
    }
    txn.commit()?;
    Ok(Seeded {
        id,
        created_operation: created_steps > 0,
        created_steps,
        steps,
    })
}

fn redb_orders(db: &redb::Database, id: u64) -> Result<Vec<u32>, redb::Error> {
    let txn = db.begin_read()?;
    let table = txn.open_table(REDB_STEPS)?;
    let mut orders = Vec::new();
    for entry in table.range((id, 0)..=(id, u32::MAX))? {
        orders.push(entry?.0.value().1);
    }
    Ok(orders)
}

/// Creates the steps table, and fills it with `count` operations in one transaction.
fn redb_preseed(db: &redb::Database, count: u64) -> Result<Vec<u64>, redb::Error> {
    let txn = db.begin_write()?;
    let mut ids = Vec::new();
    {
        let mut table = txn.open_table(REDB_STEPS)?;
        for n in 0..count {
            let id = OpKey {
                lane: PRESEED_LANE,
                n: n as u32,
            }
            .raw_id();
            for (order, code) in (1..=STEPS).zip(CODES.iter()) {
                table.insert((id, order), code.as_bytes())?;
            }
            ids.push(id);
        }
    }
    txn.commit()?;
    Ok(ids)
}

const SQLITE_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS steps (
        operation_id INTEGER NOT NULL,
        step_order INTEGER NOT NULL,
        code TEXT NOT NULL,
        status TEXT NOT NULL,
        claim TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (operation_id, step_order)
    );
    CREATE TABLE IF NOT EXISTS events (
        operation_id INTEGER NOT NULL,
        step_order INTEGER NOT NULL,
        kind TEXT NOT NULL,
        claim TEXT NOT NULL
    );";

/// How long a SQLite connection waits for another connection's write lock before failing with
/// `SQLITE_BUSY`. Long enough that no call of a window fails, so that starvation shows up as
/// latency.
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Opens a connection in WAL mode with `synchronous` and the busy timeout.
fn sqlite_connection(path: &Path, synchronous: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    assert_eq!(
        mode,
        "wal",
        "SQLite refused WAL mode for {}",
        path.display()
    );
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok(conn)
}

/// Creates the schema and loads `count` operations with pending steps in one transaction.
fn sqlite_preseed(path: &Path, count: u64) -> rusqlite::Result<Vec<u64>> {
    let mut conn = sqlite_connection(path, "OFF")?;
    conn.execute_batch(SQLITE_SCHEMA)?;
    let txn = conn.transaction()?;
    let mut ids = Vec::new();
    {
        let mut insert = txn.prepare(
            "INSERT INTO steps (operation_id, step_order, code, status) \
             VALUES (?1, ?2, ?3, 'pending')",
        )?;
        for n in 0..count {
            let id = OpKey {
                lane: PRESEED_LANE,
                n: n as u32,
            }
            .raw_id();
            for (order, code) in (1..=STEPS).zip(CODES.iter()) {
                insert.execute(params![sql_id(id), order, code])?;
            }
            ids.push(id);
        }
    }
    txn.commit()?;
    Ok(ids)
}

/// Inserts the absent steps of operation `id` with `BEGIN IMMEDIATE` and `INSERT OR IGNORE`.
fn sqlite_seed(conn: &mut Connection, id: u64) -> rusqlite::Result<Seeded> {
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut created_steps = 0;
    let steps: u32;
    {
        let mut insert = txn.prepare_cached(
            "INSERT OR IGNORE INTO steps (operation_id, step_order, code, status) \
             VALUES (?1, ?2, ?3, 'pending')",
        )?;
        for (order, code) in (1..=STEPS).zip(CODES.iter()) {
            created_steps += insert.execute(params![sql_id(id), order, code])? as u32;
        }
        let mut count = txn.prepare_cached("SELECT count(*) FROM steps WHERE operation_id = ?1")?;
        steps = count.query_row([sql_id(id)], |row| row.get(0))?;
    }
    txn.commit()?;
    Ok(Seeded {
        id,
        created_operation: created_steps > 0,
        created_steps,
        steps,
    })
}

/// Converts an operation id to SQLite's integer type. Ids are `lane << 32 | n` with lanes far
/// below 2^31, so they fit.
fn sql_id(id: u64) -> i64 {
    i64::try_from(id).expect("operation ids stay below 2^63")
}

fn invalid_state(message: String) -> rusqlite::Error {
    rusqlite::Error::InvalidParameterName(message)
}

/// Starts a step as eodstore does: it must be pending, every lower step completed, and no step
/// of the operation running. Writes the step and an event.
fn sqlite_start(conn: &mut Connection, id: u64, order: u32, token: &str) -> rusqlite::Result<()> {
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut select = txn.prepare_cached(
            "SELECT step_order, status FROM steps WHERE operation_id = ?1 ORDER BY step_order",
        )?;
        let steps: Vec<(u32, String)> = select
            .query_map([sql_id(id)], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let target = steps.iter().find(|(step_order, _)| *step_order == order);
        if target.map(|(_, status)| status.as_str()) != Some("pending") {
            return Err(invalid_state(format!(
                "step {order} of operation {id} is {target:?}, expected pending"
            )));
        }
        if let Some(blocking) = steps.iter().find(|(step_order, status)| {
            (*step_order < order && status != "completed") || status == "running"
        }) {
            return Err(invalid_state(format!(
                "step {order} of operation {id} cannot start while step {} is {}",
                blocking.0, blocking.1
            )));
        }
        let mut update = txn.prepare_cached(
            "UPDATE steps SET status = 'running', claim = ?3, attempts = attempts + 1 \
             WHERE operation_id = ?1 AND step_order = ?2",
        )?;
        update.execute(params![sql_id(id), order, token])?;
        let mut event = txn.prepare_cached(
            "INSERT INTO events (operation_id, step_order, kind, claim) VALUES (?1, ?2, 'started', ?3)",
        )?;
        event.execute(params![sql_id(id), order, token])?;
    }
    txn.commit()
}

/// Completes a running step whose claim is `token`, writing the step and an event.
fn sqlite_complete(
    conn: &mut Connection,
    id: u64,
    order: u32,
    token: &str,
) -> rusqlite::Result<()> {
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut select = txn.prepare_cached(
            "SELECT status, claim FROM steps WHERE operation_id = ?1 AND step_order = ?2",
        )?;
        let (status, claim): (String, Option<String>) = select
            .query_row(params![sql_id(id), order], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        if status != "running" || claim.as_deref() != Some(token) {
            return Err(invalid_state(format!(
                "step {order} of operation {id} is {status} with claim {claim:?}, expected \
                 running with claim {token}"
            )));
        }
        let mut update = txn.prepare_cached(
            "UPDATE steps SET status = 'completed', claim = NULL \
             WHERE operation_id = ?1 AND step_order = ?2",
        )?;
        update.execute(params![sql_id(id), order])?;
        let mut event = txn.prepare_cached(
            "INSERT INTO events (operation_id, step_order, kind, claim) \
             VALUES (?1, ?2, 'completed', ?3)",
        )?;
        event.execute(params![sql_id(id), order, token])?;
    }
    txn.commit()
}

fn sqlite_orders(conn: &Connection, id: u64) -> rusqlite::Result<Vec<u32>> {
    let mut select = conn.prepare_cached(
        "SELECT step_order, code, status FROM steps WHERE operation_id = ?1 ORDER BY step_order",
    )?;
    select.query_map([sql_id(id)], |row| row.get(0))?.collect()
}
