//! Scale mode: seed latency, status-read latency, file bytes per step and peak memory as one
//! file grows through several operation counts.
//!
//! eodstore has no bulk-load API, so operations are loaded through `Store::open_operation`
//! from several threads with `ExclusiveWriter`, `Durability::None` and group commit. redb makes
//! them durable when the loading store is dropped. The measurements then reopen the file with
//! the given options: by default eodstore's (`MultiWriter`, durable, group commit, a cache of
//! 1 GiB).

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use eodstore::{ConcurrencyMode, Store, StoreOptions};
use serde::Serialize;

use crate::engines::{self, OpKey, Session};
use crate::measure::{self, CallResult, Stats, Window};
use crate::phases::XorShift;

/// The lanes of loading threads.
const LOAD_LANE: u32 = 100;
/// The lanes of measuring writers, one per writer thread.
const MEASURE_LANE: u32 = 200;
/// Writers of the concurrent seeding measurement at each level.
const CONCURRENT_WRITERS: usize = 16;
/// The newest operations among which the recent status reads choose, as a PMS mostly reads the
/// last nights.
const RECENT_OPERATIONS: u64 = 10_000;

/// The measurements at one size of the file.
#[derive(Debug, Serialize)]
pub struct Level {
    /// Operations in the file when the measurements started.
    pub operations: u64,
    pub load_secs: f64,
    pub loaded_per_second: f64,
    pub file_bytes: u64,
    /// File bytes over the steps in the file (ten per operation). The bytes include the
    /// operation records, the day index and the audit events.
    pub bytes_per_step: f64,
    pub reopen_secs: f64,
    /// Status reads of random operations of the whole file by one thread.
    pub status: Stats,
    /// Status reads of random operations among the newest [`RECENT_OPERATIONS`], by one thread,
    /// right after `status`.
    pub status_recent: Stats,
    /// Seeds of new operations by one writer.
    pub seed: Stats,
    /// Seeds of new operations by 16 writers.
    pub seed_concurrent: Stats,
    /// The process's peak resident memory so far (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
    /// The process's resident memory after the measurements, with the measured store still
    /// open (`VmRSS`), in KiB.
    pub rss_kib: u64,
}

/// Grows one file in `dir` to each count of `levels` in turn and measures it there, opened in
/// `mode` with a cache of `cache_size` bytes, which the loading store also uses.
pub fn run(
    dir: &Path,
    levels: &[u64],
    mode: ConcurrencyMode,
    cache_size: usize,
    loaders: usize,
    window: Window,
) -> Result<Vec<Level>, String> {
    let path = dir.join("scale.redb");
    let mut next = vec![0_u32; loaders];
    let measure_next: Vec<AtomicU32> = (0..CONCURRENT_WRITERS).map(|_| AtomicU32::new(0)).collect();
    let created = AtomicU64::new(0);
    let mut results = Vec::new();

    for &level in levels {
        let before = created.load(Ordering::SeqCst);
        let started = Instant::now();
        if level > before {
            let loader = engines::open_loader(&path, cache_size)?;
            let lanes = engines::Lanes::PerThread(LOAD_LANE);
            let ids = engines::load_operations(&loader, lanes, &mut next, level - before)?;
            created.fetch_add(ids.len() as u64, Ordering::SeqCst);
            drop(loader);
        }
        let load_secs = started.elapsed().as_secs_f64();
        let operations = created.load(Ordering::SeqCst);
        let file_bytes = std::fs::metadata(&path)
            .map_err(|err| format!("reading the size of {}: {err}", path.display()))?
            .len();

        let reopened = Instant::now();
        let options = StoreOptions::new().concurrency(mode).cache_size(cache_size);
        let store = Store::open_with(&path, options).map_err(|err| err.to_string())?;
        let reopen_secs = reopened.elapsed().as_secs_f64();

        let status = measure_status(&store, 1..=operations, window);
        let recent = operations.saturating_sub(RECENT_OPERATIONS) + 1..=operations;
        let status_recent = measure_status(&store, recent, window);
        let seed = measure_seeds(&store, 1, &measure_next, &created, window);
        let seed_concurrent =
            measure_seeds(&store, CONCURRENT_WRITERS, &measure_next, &created, window);
        let rss_kib = measure::proc_status_kib("VmRSS").unwrap_or(0);
        drop(store);

        let level_result = Level {
            operations,
            load_secs,
            loaded_per_second: (operations - before) as f64 / load_secs,
            file_bytes,
            bytes_per_step: file_bytes as f64 / (operations * u64::from(engines::STEPS)) as f64,
            reopen_secs,
            status,
            status_recent,
            seed,
            seed_concurrent,
            peak_rss_kib: measure::proc_status_kib("VmHWM").unwrap_or(0),
            rss_kib,
        };
        eprintln!(
            "scale: {} operations, {:.1} MB, status p99 {:.3} ms, seed p99 {:.2} ms",
            level_result.operations,
            level_result.file_bytes as f64 / 1e6,
            level_result.status.p99_ms,
            level_result.seed.p99_ms
        );
        results.push(level_result);
    }
    Ok(results)
}

/// Reads the status of random operations with ids in `ids` (eodstore numbers operations from 1
/// without gaps) from one thread.
fn measure_status(store: &Store, ids: std::ops::RangeInclusive<u64>, window: Window) -> Stats {
    let first = *ids.start();
    let count = ids.end() - first + 1;
    let (tallies, cpu) = measure::run_window(1, window, |thread| {
        let mut session = session(store, thread);
        let mut random = XorShift(0x2545_f491_4f6c_dd1d);
        move || -> CallResult { session.status(first + random.next() % count) }
    });
    Stats::from_tallies(&tallies, window.length.as_secs_f64(), cpu)
}

/// Seeds new operations from `writers` threads and adds them to `created`.
fn measure_seeds(
    store: &Store,
    writers: usize,
    next: &[AtomicU32],
    created: &AtomicU64,
    window: Window,
) -> Stats {
    let (tallies, cpu) = measure::run_window(writers, window, |thread| {
        let mut session = session(store, thread);
        let lane = MEASURE_LANE + thread as u32;
        move || -> CallResult {
            let n = next[thread].fetch_add(1, Ordering::Relaxed);
            session.seed_new(OpKey { lane, n })?;
            created.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    Stats::from_tallies(&tallies, window.length.as_secs_f64(), cpu)
}

fn session(store: &Store, thread: usize) -> Session<'_> {
    Session::Eodstore {
        store,
        plan: eodstore::Plan::standard(),
        caller: eodstore::Caller::new(format!("terminal-{thread}")),
    }
}

/// Returns a Markdown table of the levels.
pub fn levels_table(levels: &[Level]) -> String {
    let mut table = String::from(
        "| operations | steps | file MB | bytes/step | load s | loaded ops/s | reopen s | \
         status p50 ms | status p99 ms | status max ms | recent status p50 ms | \
         recent status p99 ms | seed p50 ms | seed p99 ms | seed max ms | 16-writer seeds/s | \
         16-writer p99 ms | RSS MiB | peak RSS MiB | errors |\n\
         |--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for level in levels {
        let _ = std::fmt::Write::write_fmt(
            &mut table,
            format_args!(
                "| {} | {} | {:.1} | {:.0} | {:.1} | {:.0} | {:.2} | {:.3} | {:.3} | {:.2} | {:.3} | \
                 {:.3} | {:.2} | {:.2} | {:.1} | {:.0} | {:.2} | {:.0} | {:.0} | {} |\n",
                level.operations,
                level.operations * u64::from(engines::STEPS),
                level.file_bytes as f64 / 1e6,
                level.bytes_per_step,
                level.load_secs,
                level.loaded_per_second,
                level.reopen_secs,
                level.status.p50_ms,
                level.status.p99_ms,
                level.status.max_ms,
                level.status_recent.p50_ms,
                level.status_recent.p99_ms,
                level.seed.p50_ms,
                level.seed.p99_ms,
                level.seed.max_ms,
                level.seed_concurrent.per_second,
                level.seed_concurrent.p99_ms,
                level.rss_kib as f64 / 1024.0,
                level.peak_rss_kib as f64 / 1024.0,
                level.status.errors
                    + level.status_recent.errors
                    + level.seed.errors
                    + level.seed_concurrent.errors
            ),
        );
    }
    table
}
