//! The four measurements of one engine at one writer count, each on a new database in a
//! directory of its own:
//!
//! - (a) seeding distinct operations,
//! - (b) writers racing to seed one operation,
//! - (c) start-and-complete transitions,
//! - (d) status reads while writers seed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, OnceLock};
use std::time::Instant;

use serde::Serialize;

use crate::engines::{Db, Engine, OpKey, STEPS, Seeded};
use crate::measure::{self, Bounds, CallResult, Stats, ThreadTally, Window};

/// The lane of the operations that racing writers seed.
const RACE_LANE: u32 = 5_000;

/// The seed of the status readers' random generators, mixed with the thread index so that each
/// reader picks its own sequence of operations.
const READER_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The result of one engine at one writer count.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub engine: Engine,
    pub writers: usize,
    #[serde(flatten)]
    pub stats: Stats,
    /// The size of the database files after the window, in bytes.
    pub file_bytes: u64,
    /// The throughput of every repetition of this measurement. `stats` is from the one with the
    /// median throughput.
    pub per_second_runs: Vec<f64>,
    /// The disk's rate of 4 KiB overwrites with `fdatasync` in a short probe just before the
    /// window, which shows other processes' load on the disk.
    pub disk_syncs_per_second: f64,
    /// Operations that transition threads seeded inside the window because the preseeded pool
    /// ran out (0 in the other measurements). Such a seed is not timed, but takes window time.
    pub pool_refills: u64,
}

impl Row {
    fn new(engine: Engine, writers: usize, stats: Stats, file_bytes: u64) -> Row {
        Row {
            engine,
            writers,
            per_second_runs: vec![stats.per_second],
            stats,
            file_bytes,
            disk_syncs_per_second: f64::NAN,
            pool_refills: 0,
        }
    }
}

/// Keeps, for each engine and writer count, the repetition with the median throughput (the
/// lower middle one of an even count), with every repetition's throughput in
/// `per_second_runs`, in the order the combinations first appear.
pub fn median_rows(runs: Vec<Row>) -> Vec<Row> {
    let mut groups: Vec<Vec<Row>> = Vec::new();
    for run in runs {
        match groups
            .iter_mut()
            .find(|group| group[0].engine == run.engine && group[0].writers == run.writers)
        {
            Some(group) => group.push(run),
            None => groups.push(vec![run]),
        }
    }
    groups
        .into_iter()
        .map(|mut group| {
            let rates: Vec<f64> = group.iter().map(|row| row.stats.per_second).collect();
            group.sort_by(|a, b| a.stats.per_second.total_cmp(&b.stats.per_second));
            let mut median = group.swap_remove((group.len() - 1) / 2);
            median.per_second_runs = rates;
            median
        })
        .collect()
}

/// The result of status reads while writers seed.
#[derive(Debug, Clone, Serialize)]
pub struct ReadRow {
    pub engine: Engine,
    pub writers: usize,
    pub readers: usize,
    /// The operations the readers chose from at random.
    pub read_pool: u64,
    pub reads: Stats,
    pub writes: Stats,
    /// As [`Row::disk_syncs_per_second`].
    pub disk_syncs_per_second: f64,
}

fn new_dir(base: &Path) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("window-")
        .tempdir_in(base)
        .map_err(|err| format!("creating a directory in {}: {err}", base.display()))
}

/// Runs `call` on the session, or returns the error that opening the session gave.
fn with_session<'a, T>(
    session: &mut Result<crate::engines::Session<'a>, String>,
    call: impl FnOnce(&mut crate::engines::Session<'a>) -> Result<T, String>,
) -> Result<T, String> {
    match session {
        Ok(session) => call(session),
        Err(err) => Err(format!("opening a session failed: {err}")),
    }
}

/// (a) Each writer seeds new operations, each with the standard plan's steps, one per call.
pub fn seeding(engine: Engine, writers: usize, base: &Path, window: Window) -> Result<Row, String> {
    let dir = new_dir(base)?;
    let db = Db::create(engine, dir.path())?;
    let (tallies, cpu) = measure::run_window(writers, window, |thread| {
        let mut session = db.session(thread);
        let lane = thread as u32;
        let mut n = 0;
        move || {
            n += 1;
            with_session(&mut session, |session| session.seed_new(OpKey { lane, n })).map(drop)
        }
    });
    Ok(Row::new(
        engine,
        writers,
        Stats::from_tallies(&tallies, window.length.as_secs_f64(), cpu),
        db.file_bytes(),
    ))
}

/// (b) Round after round, every writer seeds the same new operation at once. Each round checks
/// that exactly one caller created the operation and its steps, and that every caller got the
/// same operation with all its steps. Throughput counts calls, not rounds.
pub fn race(engine: Engine, writers: usize, base: &Path, window: Window) -> Result<Row, String> {
    let dir = new_dir(base)?;
    let db = Db::create(engine, dir.path())?;
    let ready = Barrier::new(writers + 1);
    let round_barrier = Barrier::new(writers);
    let bounds = OnceLock::new();
    let outcomes: Mutex<Vec<Option<Result<Seeded, String>>>> = Mutex::new(vec![None; writers]);
    let stop = AtomicBool::new(false);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());

    let (mut tallies, cpu) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|thread| {
                let (db, ready, round_barrier, bounds) = (&db, &ready, &round_barrier, &bounds);
                let (outcomes, stop, failures) = (&outcomes, &stop, &failures);
                scope.spawn(move || {
                    let mut session = db.session(thread);
                    let mut tally = ThreadTally::default();
                    ready.wait();
                    let bounds = *bounds.get_or_init(|| Bounds::starting_now(window));
                    for round in 0.. {
                        round_barrier.wait();
                        let started = Instant::now();
                        let key = OpKey {
                            lane: RACE_LANE,
                            n: round,
                        };
                        let outcome = with_session(&mut session, |session| session.seed(key));
                        let ended = Instant::now();
                        let result: CallResult = outcome.as_ref().map(drop).map_err(Clone::clone);
                        tally.record(&bounds, started, ended, result);
                        lock(outcomes)[thread] = Some(outcome);
                        if round_barrier.wait().is_leader() {
                            if let Err(failure) = check_round(&mut lock(outcomes), round) {
                                lock(failures).push(failure);
                            }
                            if Instant::now() >= bounds.end {
                                stop.store(true, Ordering::SeqCst);
                            }
                        }
                        round_barrier.wait();
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    tally
                })
            })
            .collect();
        ready.wait();
        let window_bounds = *bounds.get_or_init(|| Bounds::starting_now(window));
        let cpu = measure::measure_cpu(&window_bounds);
        let tallies: Vec<ThreadTally> = handles
            .into_iter()
            .map(|handle| handle.join().expect("a racing thread panicked"))
            .collect();
        (tallies, cpu)
    });

    // A round whose results disagree counts as one error of the first thread.
    let failures = failures
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(first) = tallies.first_mut() {
        first.errors += failures.len() as u64;
        if let Some(failure) = failures.into_iter().next() {
            first.first_error.get_or_insert(failure);
        }
    }
    Ok(Row::new(
        engine,
        writers,
        Stats::from_tallies(&tallies, window.length.as_secs_f64(), cpu),
        db.file_bytes(),
    ))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Checks one race round's outcomes and clears them for the next round.
fn check_round(outcomes: &mut [Option<Result<Seeded, String>>], round: u32) -> Result<(), String> {
    let mut seeded = Vec::new();
    for outcome in outcomes.iter_mut() {
        match outcome.take() {
            Some(Ok(result)) => seeded.push(result),
            Some(Err(err)) => return Err(format!("round {round}: a call failed: {err}")),
            None => return Err(format!("round {round}: a thread recorded no outcome")),
        }
    }
    let creators = seeded
        .iter()
        .filter(|result| result.created_operation)
        .count();
    let created_steps: u32 = seeded.iter().map(|result| result.created_steps).sum();
    let same_operation = seeded.windows(2).all(|pair| pair[0].id == pair[1].id);
    let complete = seeded.iter().all(|result| result.steps == STEPS);
    if creators != 1 || created_steps != STEPS || !same_operation || !complete {
        return Err(format!(
            "round {round}: {creators} callers created the operation and {created_steps} steps \
             were created (expected 1 and {STEPS}); same operation for all: {same_operation}; \
             every caller saw {STEPS} steps: {complete}"
        ));
    }
    Ok(())
}

/// The lanes of operations that transition threads seed themselves when the preseeded pool
/// runs out, one per thread.
const REFILL_LANE: u32 = 6_000;

/// (c) Each writer starts and completes steps one after another, in order, on operations that
/// were seeded before the window. One call of the measurement is a start and a completion.
/// When the `pool_operations` preseeded operations run out, a thread seeds its next operation
/// itself, outside the timed call, and `pool_refills` counts those seeds.
pub fn transitions(
    engine: Engine,
    writers: usize,
    base: &Path,
    window: Window,
    pool_operations: u64,
) -> Result<Row, String> {
    let dir = new_dir(base)?;
    let (db, ids) = Db::preseeded(engine, dir.path(), pool_operations)?;
    let cursor = AtomicUsize::new(0);
    let refills = AtomicU64::new(0);
    let (tallies, cpu) = measure::run_window(writers, window, |thread| {
        let mut session = db.session(thread);
        let (ids, cursor, refills) = (&ids, &cursor, &refills);
        let mut next_step: Option<(u64, u32)> = None;
        let mut refilled = 0;
        move || {
            let (id, order) = match next_step {
                Some((id, order)) if order <= STEPS => (id, order),
                _ => {
                    let index = cursor.fetch_add(1, Ordering::Relaxed);
                    let id = match ids.get(index) {
                        Some(&id) => id,
                        None => {
                            refilled += 1;
                            refills.fetch_add(1, Ordering::Relaxed);
                            let key = OpKey {
                                lane: REFILL_LANE + thread as u32,
                                n: refilled,
                            };
                            with_session(&mut session, |session| session.seed_new(key))?
                        }
                    };
                    (id, 1)
                }
            };
            next_step = Some((id, order + 1));
            with_session(&mut session, |session| {
                session.start_and_complete(id, order)
            })
        }
    });
    let mut row = Row::new(
        engine,
        writers,
        Stats::from_tallies(&tallies, window.length.as_secs_f64(), cpu),
        db.file_bytes(),
    );
    row.pool_refills = refills.into_inner();
    Ok(row)
}

/// (d) `readers` threads read the status of random operations from a preseeded pool while
/// `writers` threads seed new operations.
pub fn reads(
    engine: Engine,
    writers: usize,
    readers: usize,
    base: &Path,
    window: Window,
    read_pool: u64,
) -> Result<ReadRow, String> {
    let dir = new_dir(base)?;
    let (db, ids) = Db::preseeded(engine, dir.path(), read_pool)?;
    let (tallies, cpu) = measure::run_window(writers + readers, window, |thread| {
        let mut session = db.session(thread);
        let call: Box<dyn FnMut() -> CallResult + '_> = if thread < writers {
            let lane = thread as u32;
            let mut n = 0;
            Box::new(move || {
                n += 1;
                with_session(&mut session, |session| session.seed_new(OpKey { lane, n })).map(drop)
            })
        } else {
            let ids = &ids;
            let mut random = XorShift(READER_SEED ^ thread as u64);
            Box::new(move || {
                let id = ids[(random.next() % ids.len() as u64) as usize];
                with_session(&mut session, |session| session.status(id))
            })
        };
        call
    });
    let seconds = window.length.as_secs_f64();
    let (writer_tallies, reader_tallies) = tallies.split_at(writers);
    Ok(ReadRow {
        engine,
        writers,
        readers,
        read_pool,
        reads: Stats::from_tallies(reader_tallies, seconds, cpu),
        writes: Stats::from_tallies(writer_tallies, seconds, cpu),
        disk_syncs_per_second: f64::NAN,
    })
}

/// A xorshift64 generator: enough to spread reads over a pool, with no dependency.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
