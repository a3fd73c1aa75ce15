//! Fixed-time measurement windows, latency percentiles, fairness, CPU use and the disk's sync
//! rate.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The outcome of one measured call: `Err` carries what went wrong, for the report.
pub type CallResult = Result<(), String>;

/// The timing of one measurement window: calls run for `warmup + length`, and only the last
/// `length` is measured.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub length: Duration,
}

/// The instants that bound the measured part of a window, shared by every thread of it.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub measure_start: Instant,
    pub end: Instant,
}

impl Bounds {
    /// Returns the bounds of a window that starts now.
    pub fn starting_now(window: Window) -> Bounds {
        let measure_start = Instant::now() + window.warmup;
        Bounds {
            measure_start,
            end: measure_start + window.length,
        }
    }
}

/// The call counts and latencies of one thread in a window.
#[derive(Debug, Default)]
pub struct ThreadTally {
    /// Successful calls that ended inside the measured part.
    pub completed: u64,
    /// Successful calls at any time of the window, warm-up included.
    pub all_completed: u64,
    /// Failed calls, at any time of the window.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Latencies of the calls that overlap the measured part, whether they succeeded or not,
    /// so that a call that waited through the whole measured part still counts.
    pub latencies_ns: Vec<u64>,
}

impl ThreadTally {
    /// Records one call that ran from `started` to `ended`.
    pub fn record(
        &mut self,
        bounds: &Bounds,
        started: Instant,
        ended: Instant,
        outcome: CallResult,
    ) {
        if ended >= bounds.measure_start && started < bounds.end {
            self.latencies_ns
                .push(u64::try_from((ended - started).as_nanos()).unwrap_or(u64::MAX));
        }
        match outcome {
            Ok(()) => {
                self.all_completed += 1;
                if ended >= bounds.measure_start && ended <= bounds.end {
                    self.completed += 1;
                }
            }
            Err(message) => {
                self.errors += 1;
                self.first_error.get_or_insert(message);
            }
        }
    }
}

/// Runs `threads` threads for one window and returns each thread's tally, in thread order.
///
/// `make` builds a thread's call inside that thread (so that it can open a connection there)
/// before the window starts. The window starts once every thread is ready, and each thread
/// calls until the window ends, finishing the call it is in. The second value is the CPU use
/// during the measured part.
pub fn run_window<M, C>(threads: usize, window: Window, make: M) -> (Vec<ThreadTally>, CpuUse)
where
    M: Fn(usize) -> C + Sync,
    C: FnMut() -> CallResult,
{
    let barrier = Barrier::new(threads + 1);
    let bounds = OnceLock::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (barrier, bounds, make) = (&barrier, &bounds, &make);
                scope.spawn(move || {
                    let mut call = make(thread);
                    barrier.wait();
                    let bounds = *bounds.get_or_init(|| Bounds::starting_now(window));
                    let mut tally = ThreadTally::default();
                    loop {
                        let started = Instant::now();
                        if started >= bounds.end {
                            break;
                        }
                        let outcome = call();
                        tally.record(&bounds, started, Instant::now(), outcome);
                    }
                    tally
                })
            })
            .collect();
        barrier.wait();
        let bounds = *bounds.get_or_init(|| Bounds::starting_now(window));
        let cpu = measure_cpu(&bounds);
        let tallies = handles
            .into_iter()
            .map(|handle| handle.join().expect("a measuring thread panicked"))
            .collect();
        (tallies, cpu)
    })
}

/// The CPU use of one measured part: this process's and every other process's, in busy cores.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    pub busy_cores: f64,
    pub other_busy_cores: f64,
}

/// Sleeps through the measured part of a window and returns the CPU use in it, from
/// `/proc/self/stat` and `/proc/stat`.
pub fn measure_cpu(bounds: &Bounds) -> CpuUse {
    sleep_until(bounds.measure_start);
    let before = (process_cpu_seconds(), system_cpu_seconds());
    sleep_until(bounds.end);
    let after = (process_cpu_seconds(), system_cpu_seconds());
    let wall = (bounds.end - bounds.measure_start).as_secs_f64();
    match (before, after) {
        ((Some(ours_before), Some(all_before)), (Some(ours_after), Some(all_after))) => {
            let ours = ours_after - ours_before;
            CpuUse {
                busy_cores: ours / wall,
                other_busy_cores: ((all_after - all_before) - ours).max(0.0) / wall,
            }
        }
        _ => CpuUse {
            busy_cores: f64::NAN,
            other_busy_cores: f64::NAN,
        },
    }
}

fn sleep_until(instant: Instant) {
    let now = Instant::now();
    if instant > now {
        std::thread::sleep(instant - now);
    }
}

/// Clock ticks per second in `/proc` CPU times.
// NOTE: Linux reports USER_HZ = 100 to user space on common architectures (x86, arm64). Where
// it differs, the busy-core figures are off by a constant factor.
const USER_HZ: f64 = 100.0;

/// Returns the CPU time (user and system) that this process has used, in seconds.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name in field 2 may contain spaces, so count fields after its closing bracket.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the bracket, field 3 (state) is at index 0, so utime (14) and stime (15) are at 11
    // and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Returns the CPU time that all processes have used (every state but idle and I/O wait), in
/// seconds, from the first line of `/proc/stat`.
pub fn system_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0.0))
        .collect();
    // Fields: user nice system idle iowait irq softirq steal guest guest_nice, where user and
    // nice already include the guest times.
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&index| ticks.get(index))
        .sum();
    Some(busy / USER_HZ)
}

/// Latency, throughput and fairness of one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Successful calls in the measured part of the window, over all threads.
    pub calls: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The slowest thread's completed calls over the fastest thread's (1 for one thread).
    pub fairness: f64,
    /// Successful calls at any time of the window, warm-up included, for relating system-call
    /// counts of a whole window to calls.
    pub all_calls: u64,
    /// Each thread's successful calls in the measured part, in thread order.
    pub thread_calls: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU cores this process kept busy during the measured part.
    pub busy_cores: f64,
    /// CPU cores that other processes of the machine kept busy meanwhile.
    pub other_busy_cores: f64,
}

impl Stats {
    /// Combines the tallies of the threads that made one kind of call.
    pub fn from_tallies(tallies: &[ThreadTally], seconds: f64, cpu: CpuUse) -> Stats {
        let mut latencies: Vec<u64> = tallies
            .iter()
            .flat_map(|tally| tally.latencies_ns.iter().copied())
            .collect();
        latencies.sort_unstable();
        let calls: u64 = tallies.iter().map(|tally| tally.completed).sum();
        let slowest = tallies
            .iter()
            .map(|tally| tally.completed)
            .min()
            .unwrap_or(0);
        let fastest = tallies
            .iter()
            .map(|tally| tally.completed)
            .max()
            .unwrap_or(0);
        Stats {
            calls,
            per_second: calls as f64 / seconds,
            p50_ms: percentile_ms(&latencies, 0.50),
            p99_ms: percentile_ms(&latencies, 0.99),
            p999_ms: percentile_ms(&latencies, 0.999),
            max_ms: latencies.last().map_or(f64::NAN, |&max| max as f64 / 1e6),
            fairness: if fastest == 0 {
                0.0
            } else {
                slowest as f64 / fastest as f64
            },
            all_calls: tallies.iter().map(|tally| tally.all_completed).sum(),
            thread_calls: tallies.iter().map(|tally| tally.completed).collect(),
            errors: tallies.iter().map(|tally| tally.errors).sum(),
            first_error: tallies.iter().find_map(|tally| tally.first_error.clone()),
            busy_cores: cpu.busy_cores,
            other_busy_cores: cpu.other_busy_cores,
        }
    }
}

/// Returns the nearest-rank percentile `quantile` of sorted nanosecond latencies, in ms.
// The rank is a non-negative count.
#[allow(clippy::cast_sign_loss)]
fn percentile_ms(sorted_ns: &[u64], quantile: f64) -> f64 {
    if sorted_ns.is_empty() {
        return f64::NAN;
    }
    let rank = (quantile * sorted_ns.len() as f64).ceil() as usize;
    sorted_ns[rank.clamp(1, sorted_ns.len()) - 1] as f64 / 1e6
}

/// Measures how many times per second the disk completes a 4 KiB overwrite followed by
/// `fdatasync` (`File::sync_data`) on a file in `dir`, for about `duration`.
pub fn measure_sync_rate(dir: &Path, duration: Duration) -> std::io::Result<f64> {
    let path = dir.join("sync-probe.bin");
    let block = [0x5a_u8; 4096];
    let mut file = File::create(&path)?;
    file.write_all(&block)?;
    file.sync_all()?;
    let started = Instant::now();
    let mut syncs = 0_u64;
    while started.elapsed() < duration {
        file.write_all_at(&block, 0)?;
        file.sync_data()?;
        syncs += 1;
    }
    let rate = syncs as f64 / started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Reads a `kB` field such as `VmHWM` from `/proc/self/status`, in KiB.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
    })
}
