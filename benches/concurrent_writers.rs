//! Concurrent writers: eodstore against raw redb and SQLite, in one run on one machine and one
//! files directory.
//!
//! ```text
//! cargo bench --bench concurrent_writers -- --quick    # under two minutes
//! cargo bench --bench concurrent_writers               # the full run
//! cargo bench --bench concurrent_writers -- --scale    # 10 thousand to 1 million operations
//! ```
//!
//! Engines, defined in `concurrent_writers/engines.rs`:
//!
//! - `eodstore`: the defaults, so group commit, `MultiWriter` mode and durable commits.
//! - `eodstore_no_group`: the defaults with group commit off, so one transaction per call.
//! - `eodstore_exclusive`: group commit in `ExclusiveWriter` mode, durable.
//! - `eodstore_nosync`: group commit, `ExclusiveWriter` and `Durability::None`, which is the
//!   no-fsync ceiling.
//! - `redb_per_txn` and `redb_per_txn_exclusive`: raw redb in `MultiWriter` or
//!   `ExclusiveWriter` mode, one durable transaction per seed that inserts only the absent
//!   `(u64, u32)` keys.
//! - `sqlite_full` and `sqlite_normal`: rusqlite in WAL mode with `synchronous=FULL` or
//!   `NORMAL`, `BEGIN IMMEDIATE`, `INSERT OR IGNORE`, one connection per thread and a busy
//!   timeout.
//!
//! Measurements, each over a fixed-time window after a warm-up, on a new database:
//!
//! - (a) `seed`: each writer opens new operations with the standard 10-step plan.
//! - (b) `race`: 16 writers open the same new operation at once, round after round.
//! - (c) `transitions`: each writer starts and completes steps of preseeded operations.
//! - (d) `reads`: reader threads read the status of random preseeded operations while writers
//!   seed.
//!
//! Every call checks its result, and a wrong result counts as an error. The disk's rate of
//! 4 KiB overwrites with `fdatasync` is measured in the same directory before and after.
//!
//! Output: Markdown tables on stdout, then a line starting with `exclusive`, then the
//! `summary` line last. Progress goes to stderr. The raw numbers go to
//! `OUT/concurrent_writers.json` and charts to `OUT/concurrent_writers.svg` (seeding) and
//! `OUT/concurrent_writers_transitions.svg`. The exit status is 1 when a call failed or a
//! measurement could not run, and 2 for invalid flags.

// Counts, byte sizes and nanoseconds in these measurements stay far below 2^52, where `as f64`
// is exact.
#![allow(clippy::cast_precision_loss)]
// "SQLite" is a product name, which `doc_markdown` takes for an item that needs backticks.
#![allow(clippy::doc_markdown)]

#[path = "concurrent_writers/engines.rs"]
mod engines;
#[path = "concurrent_writers/measure.rs"]
mod measure;
#[path = "concurrent_writers/phases.rs"]
mod phases;
#[path = "concurrent_writers/report.rs"]
mod report;
#[path = "concurrent_writers/scale.rs"]
mod scale;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use engines::Engine;
use eodstore::ConcurrencyMode;
use measure::Window;
use phases::{ReadRow, Row};
use report::{Machine, Report};

const USAGE: &str = "\
Usage: cargo bench --bench concurrent_writers -- [FLAGS]

  --quick              short windows and fewer writer counts for (c) and (d); under two minutes
  --scale              run only the scale measurements (10 thousand to 1 million operations)
  --dir DIR            directory for the database files [default: the system temp directory]
  --out DIR            directory for the JSON and SVG output [default: target/bench-results]
  --engines LIST       comma-separated engines [default: all]: eodstore, eodstore_no_group,
                       eodstore_exclusive, eodstore_nosync, redb_per_txn,
                       redb_per_txn_exclusive, sqlite_full, sqlite_normal
  --writers LIST       writer counts for (a), (c) and (d) [default: 1,2,4,8,16]
  --phases LIST        any of seed, race, transitions, reads [default: all]
  --readers N          status-reading threads in (d) [default: 2]
  --repeat N           repetitions of each (a) measurement, interleaved; the tables show the
                       median [default: 3, or 1 with --quick]
  --window SECONDS     measured part of each window [default: 2.5, or 0.6 with --quick]
  --warmup SECONDS     unmeasured start of each window [default: 0.5, or 0.15 with --quick]
  --scale-levels LIST  operation counts for --scale [default: 10000,100000,1000000]
  --scale-exclusive    measure the --scale levels in ConcurrencyMode::ExclusiveWriter
                       rather than the default MultiWriter, to see what the mode costs
  --scale-cache MIB    redb's cache for the --scale loading and measurements, in MiB
                       [default: eodstore's default of 1024]
  --loaders N          loading threads for --scale [default: 8]
  --sync-probe SECONDS length of the fdatasync-rate measurements before and after the run; 0
                       skips them, as when counting system calls of the measurements alone
                       [default: 1]
  --window-probe SECONDS
                       length of the fdatasync-rate probe before each window; 0 skips it
                       [default: 0.1, or 0.05 with --quick]

cargo's --bench flag is accepted and ignored.";

/// Writers of measurement (b) and of the summary line.
const RACE_WRITERS: usize = 16;
/// Operations the status readers of (d) choose from.
const READ_POOL: u64 = 2_000;

#[derive(Debug)]
struct Args {
    quick: bool,
    scale: bool,
    dir: PathBuf,
    out: PathBuf,
    engines: Vec<Engine>,
    writers: Option<Vec<usize>>,
    phases: Vec<String>,
    readers: usize,
    repeat: usize,
    window: Window,
    scale_levels: Vec<u64>,
    scale_exclusive: bool,
    scale_cache: Option<usize>,
    loaders: usize,
    sync_probe: Duration,
    window_probe: Duration,
}

fn parse_list<T: std::str::FromStr>(flag: &str, value: &str) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(|item| {
            item.trim()
                .parse()
                .map_err(|_| format!("invalid item `{item}` in {flag} `{value}`"))
        })
        .collect()
}

fn parse_seconds(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("invalid {flag} `{value}`: expected a number of seconds"))
}

/// Parses a count of at least 1.
fn parse_count(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .ok()
        .filter(|&count| count > 0)
        .ok_or_else(|| format!("invalid {flag} `{value}`: expected a count of at least 1"))
}

const PHASES: [&str; 4] = ["seed", "race", "transitions", "reads"];

impl Args {
    /// Returns the defaults of a full run, or of a quick one.
    fn defaults(quick: bool) -> Args {
        let (warmup_ms, length_ms) = if quick { (150, 600) } else { (500, 2500) };
        Args {
            quick,
            scale: false,
            dir: std::env::temp_dir(),
            out: PathBuf::from("target/bench-results"),
            engines: Engine::ALL.to_vec(),
            writers: None,
            phases: PHASES.map(String::from).to_vec(),
            readers: 2,
            repeat: if quick { 1 } else { 3 },
            window: Window {
                warmup: Duration::from_millis(warmup_ms),
                length: Duration::from_millis(length_ms),
            },
            scale_levels: vec![10_000, 100_000, 1_000_000],
            scale_exclusive: false,
            scale_cache: None,
            loaders: 8,
            sync_probe: Duration::from_secs(1),
            window_probe: Duration::from_millis(if quick { 50 } else { 100 }),
        }
    }

    /// Parses the flags, or returns `None` for `--help`.
    fn parse(raw: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let raw: Vec<String> = raw.collect();
        let mut args = Args::defaults(raw.iter().any(|arg| arg == "--quick"));
        let mut iter = raw.into_iter();
        while let Some(arg) = iter.next() {
            let mut value = |flag: &str| {
                iter.next()
                    .ok_or_else(|| format!("{flag} needs a value; see --help"))
            };
            match arg.as_str() {
                "--help" | "-h" => return Ok(None),
                "--quick" | "--bench" => {}
                "--scale" => args.scale = true,
                "--scale-exclusive" => args.scale_exclusive = true,
                "--scale-cache" => {
                    let text = value("--scale-cache")?;
                    let mib: usize = text.parse().map_err(|_| {
                        format!("invalid --scale-cache `{text}`: expected a number of MiB")
                    })?;
                    args.scale_cache = Some(mib.saturating_mul(1024 * 1024));
                }
                "--dir" => args.dir = PathBuf::from(value("--dir")?),
                "--out" => args.out = PathBuf::from(value("--out")?),
                "--engines" => {
                    let list = value("--engines")?;
                    args.engines = list
                        .split(',')
                        .map(|name| {
                            Engine::parse(name.trim())
                                .ok_or_else(|| format!("unknown engine `{name}`; see --help"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--writers" => {
                    let list: Vec<usize> = parse_list("--writers", &value("--writers")?)?;
                    if list.contains(&0) {
                        return Err("--writers counts must be at least 1".into());
                    }
                    args.writers = Some(list);
                }
                "--phases" => {
                    let list = value("--phases")?;
                    args.phases = list
                        .split(',')
                        .map(|phase| phase.trim().to_owned())
                        .collect();
                    if let Some(unknown) = args
                        .phases
                        .iter()
                        .find(|phase| !PHASES.contains(&phase.as_str()))
                    {
                        return Err(format!("unknown phase `{unknown}`; see --help"));
                    }
                }
                "--readers" => args.readers = parse_count("--readers", &value("--readers")?)?,
                "--repeat" => args.repeat = parse_count("--repeat", &value("--repeat")?)?,
                "--window" => args.window.length = parse_seconds("--window", &value("--window")?)?,
                "--warmup" => args.window.warmup = parse_seconds("--warmup", &value("--warmup")?)?,
                "--scale-levels" => {
                    args.scale_levels = parse_list("--scale-levels", &value("--scale-levels")?)?;
                    if args.scale_levels.contains(&0) {
                        return Err("--scale-levels counts must be at least 1".into());
                    }
                }
                "--loaders" => args.loaders = parse_count("--loaders", &value("--loaders")?)?,
                "--sync-probe" => {
                    args.sync_probe = parse_seconds("--sync-probe", &value("--sync-probe")?)?;
                }
                "--window-probe" => {
                    args.window_probe = parse_seconds("--window-probe", &value("--window-probe")?)?;
                }
                other => eprintln!("ignoring the unknown argument `{other}`"),
            }
        }
        Ok(Some(args))
    }

    /// Returns the writer counts of the (a) seeding measurement.
    fn seed_writers(&self) -> Vec<usize> {
        self.writers.clone().unwrap_or_else(|| vec![1, 2, 4, 8, 16])
    }

    /// Returns the writer counts of (c) and (d): with `--quick` only the ends of the range.
    fn other_writers(&self) -> Vec<usize> {
        match &self.writers {
            Some(list) => list.clone(),
            None if self.quick => vec![1, 16],
            None => vec![1, 2, 4, 8, 16],
        }
    }

    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|selected| selected == phase)
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let base = match tempfile::Builder::new()
        .prefix("eodstore-bench-")
        .tempdir_in(&args.dir)
    {
        Ok(base) => base,
        Err(err) => {
            eprintln!(
                "error: creating a directory in {}: {err}",
                args.dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = std::fs::create_dir_all(&args.out) {
        eprintln!(
            "error: creating the output directory {}: {err}",
            args.out.display()
        );
        return ExitCode::FAILURE;
    }
    let machine = Machine::detect(base.path());
    println!(
        "machine: {} CPUs ({}), {:.1} GiB memory, kernel {}, files on {}",
        machine.cpus,
        machine.cpu_model,
        machine.memory_kib as f64 / 1024.0 / 1024.0,
        machine.kernel,
        machine.filesystem
    );
    println!("files directory: {}", base.path().display());
    if args.scale {
        return run_scale(&args, base.path());
    }
    run_comparison(&args, base.path(), machine)
}

/// The rows of every measurement of a run, and the measurements that could not run.
#[derive(Default)]
struct Results {
    seeding: Vec<Row>,
    race: Vec<Row>,
    transitions: Vec<Row>,
    reads: Vec<ReadRow>,
    failures: Vec<String>,
}

impl Results {
    /// Runs every selected measurement, engine and writer count.
    fn measure(args: &Args, base: &Path) -> Results {
        let mut results = Results::default();
        let window = args.window;
        if args.runs("seed") {
            let mut runs = Vec::new();
            // Engines are the inner loop, so that the figures compared at one writer count are
            // measured close together in time, on a machine whose load changes.
            for _ in 0..args.repeat {
                for &writers in &args.seed_writers() {
                    for &engine in &args.engines {
                        let disk = window_sync_rate(base, args.window_probe);
                        let row = phases::seeding(engine, writers, base, window);
                        results.keep(&mut runs, "seed", engine, writers, disk, row);
                    }
                }
            }
            results.seeding = phases::median_rows(runs);
        }
        if args.runs("race") {
            let mut rows = Vec::new();
            for &engine in &args.engines {
                let disk = window_sync_rate(base, args.window_probe);
                let row = phases::race(engine, RACE_WRITERS, base, window);
                results.keep(&mut rows, "race", engine, RACE_WRITERS, disk, row);
            }
            results.race = rows;
        }
        if args.runs("transitions") {
            let mut rows = Vec::new();
            for &writers in &args.other_writers() {
                let engines = args
                    .engines
                    .iter()
                    .filter(|engine| engine.has_transitions());
                for &engine in engines {
                    let pool = transition_pool(&results.seeding, writers, window);
                    let disk = window_sync_rate(base, args.window_probe);
                    let row = phases::transitions(engine, writers, base, window, pool);
                    results.keep(&mut rows, "transitions", engine, writers, disk, row);
                }
            }
            results.transitions = rows;
        }
        if args.runs("reads") {
            for &writers in &args.other_writers() {
                for &engine in &args.engines {
                    let disk = window_sync_rate(base, args.window_probe);
                    eprintln!("reads: {} with {writers} writers", engine.name());
                    match phases::reads(engine, writers, args.readers, base, window, READ_POOL) {
                        Ok(mut row) => {
                            row.disk_syncs_per_second = disk;
                            results.reads.push(row);
                        }
                        Err(err) => {
                            let failure = format!("reads {} {writers}: {err}", engine.name());
                            results.failures.push(failure);
                        }
                    }
                }
            }
        }
        results
            .seeding
            .sort_by_key(|row| (row.engine.position(), row.writers));
        results
            .transitions
            .sort_by_key(|row| (row.engine.position(), row.writers));
        results
            .reads
            .sort_by_key(|row| (row.engine.position(), row.writers));
        results
    }

    /// Keeps one measurement's row in `rows`, or its failure, and prints its progress to stderr.
    fn keep(
        &mut self,
        rows: &mut Vec<Row>,
        phase: &str,
        engine: Engine,
        writers: usize,
        disk_syncs_per_second: f64,
        row: Result<Row, String>,
    ) {
        match row {
            Ok(mut row) => {
                row.disk_syncs_per_second = disk_syncs_per_second;
                eprintln!(
                    "{phase}: {} with {writers} writers: {:.0}/s, p99 {:.2} ms, max {:.1} ms, \
                     fairness {:.2}, errors {}, disk {disk_syncs_per_second:.0} fdatasync/s",
                    engine.name(),
                    row.stats.per_second,
                    row.stats.p99_ms,
                    row.stats.max_ms,
                    row.stats.fairness,
                    row.stats.errors
                );
                if let Some(error) = &row.stats.first_error {
                    eprintln!("{phase}: {} first error: {error}", engine.name());
                }
                rows.push(row);
            }
            Err(err) => {
                let failure = format!("{phase} {} {writers}: {err}", engine.name());
                self.failures.push(failure);
            }
        }
    }

    fn has_errors(&self) -> bool {
        let rows = self
            .seeding
            .iter()
            .chain(&self.race)
            .chain(&self.transitions);
        rows.into_iter().any(|row| row.stats.errors > 0)
            || self
                .reads
                .iter()
                .any(|row| row.reads.errors + row.writes.errors > 0)
    }
}

/// Measures every selected phase, engine and writer count, then writes the report.
fn run_comparison(args: &Args, base: &Path, machine: Machine) -> ExitCode {
    let mode = if args.quick { "quick" } else { "full" };
    let window = args.window;
    println!(
        "mode: {mode}, windows of {:.2} s after {:.2} s of warm-up, {} repetitions of (a)",
        window.length.as_secs_f64(),
        window.warmup.as_secs_f64(),
        args.repeat
    );
    let sync_rate_before = sync_rate(base, args.sync_probe);
    println!("disk: {sync_rate_before:.0} fdatasync/s (4 KiB overwrite each) before the run");
    let results = Results::measure(args, base);
    let sync_rate_after = sync_rate(base, args.sync_probe);
    let has_errors = results.has_errors();

    print_tables(&results);
    println!("disk: {sync_rate_before:.0} fdatasync/s before, {sync_rate_after:.0} after");
    for failure in &results.failures {
        println!("failed to measure: {failure}");
    }
    let summary = report::summary_line(&results.seeding, RACE_WRITERS);
    let summary_text = summary
        .clone()
        .unwrap_or_else(|reason| format!("summary unavailable: {reason}"));
    let report = Report {
        mode,
        machine,
        files_dir: base.display().to_string(),
        warmup_secs: window.warmup.as_secs_f64(),
        window_secs: window.length.as_secs_f64(),
        repeat: args.repeat,
        sync_rate_before,
        sync_rate_after,
        seeding: results.seeding,
        race: results.race,
        transitions: results.transitions,
        reads: results.reads,
        failures: results.failures,
        summary: summary_text.clone(),
    };
    let written = write_outputs(&args.out, &report);
    if let Some(line) = report::exclusive_line(&report.seeding, RACE_WRITERS) {
        println!("{line}");
    }
    println!("{summary_text}");

    if has_errors || !report.failures.is_empty() || written.is_err() || summary.is_err() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Returns how many operations (c) preseeds: 1.5 times what the fastest seeding rate of (a), of
/// any engine, would use up in the window, because a start-and-complete pair costs at least a
/// seed's commit. Without seeding results it assumes 20 thousand pairs per second. The fastest
/// rate rather than the engine's own covers a disk that got faster since (a).
// The pair count is a non-negative product of rates and seconds.
#[allow(clippy::cast_sign_loss)]
fn transition_pool(seeding: &[Row], writers: usize, window: Window) -> u64 {
    let rate = seeding
        .iter()
        .map(|row| row.stats.per_second)
        .filter(|rate| rate.is_finite())
        .fold(f64::NAN, f64::max);
    let rate = if rate.is_nan() { 20_000.0 } else { rate };
    let seconds = (window.warmup + window.length).as_secs_f64() + 0.5;
    let pairs = rate * seconds * 1.5;
    (pairs / f64::from(engines::STEPS)).ceil() as u64 + writers as u64
}

/// Probes the disk's fdatasync rate before one window, or returns NaN when `probe` is zero.
fn window_sync_rate(dir: &Path, probe: Duration) -> f64 {
    if probe.is_zero() {
        return f64::NAN;
    }
    measure::measure_sync_rate(dir, probe).unwrap_or(f64::NAN)
}

/// Measures the disk's fdatasync rate for `probe`, or returns NaN when `probe` is zero.
fn sync_rate(dir: &Path, probe: Duration) -> f64 {
    if probe.is_zero() {
        return f64::NAN;
    }
    match measure::measure_sync_rate(dir, probe) {
        Ok(rate) => rate,
        Err(err) => {
            eprintln!(
                "measuring the fdatasync rate in {} failed: {err}",
                dir.display()
            );
            f64::NAN
        }
    }
}

fn print_tables(results: &Results) {
    let Results {
        seeding,
        race,
        transitions,
        reads,
        ..
    } = results;
    if !seeding.is_empty() {
        println!("\n## (a) distinct operations seeded per second\n");
        println!("{}", report::rows_table(seeding, "seeds"));
        println!("Ratios of eodstore's seeds per second over each peer's:\n");
        println!("{}", report::ratio_table(seeding));
    }
    if !race.is_empty() {
        println!("## (b) {RACE_WRITERS} writers racing to seed the same operation\n");
        println!("{}", report::rows_table(race, "calls"));
        println!("Ratios of eodstore's calls per second over each peer's:\n");
        println!("{}", report::ratio_table(race));
    }
    if !transitions.is_empty() {
        println!("## (c) start-and-complete pairs per second (two write calls each)\n");
        println!("{}", report::rows_table(transitions, "pairs"));
        let refills: u64 = transitions.iter().map(|row| row.pool_refills).sum();
        if refills > 0 {
            println!(
                "The preseeded pools ran out: threads seeded {refills} operations inside windows.\n"
            );
        }
        println!("Ratios of eodstore's pairs per second over each peer's:\n");
        println!("{}", report::ratio_table(transitions));
    }
    if !reads.is_empty() {
        println!("## (d) status reads per second while writers seed\n");
        println!("{}", report::reads_table(reads));
    }
}

/// Writes the JSON report and the charts into `out`.
fn write_outputs(out: &Path, report: &Report) -> Result<(), String> {
    let write = |name: &str, contents: String| {
        let path = out.join(name);
        std::fs::write(&path, contents)
            .map_err(|err| format!("writing {}: {err}", path.display()))
            .inspect(|()| eprintln!("wrote {}", path.display()))
    };
    let json = serde_json::to_string_pretty(report).map_err(|err| err.to_string())?;
    let results = [
        write("concurrent_writers.json", json),
        write(
            "concurrent_writers.svg",
            report::chart_svg(
                "Distinct operations seeded per second (10 steps each)",
                "seeds per second",
                &report.seeding,
            ),
        ),
        write(
            "concurrent_writers_transitions.svg",
            report::chart_svg(
                "Start-and-complete pairs per second",
                "pairs per second",
                &report.transitions,
            ),
        ),
    ];
    for result in &results {
        if let Err(err) = result {
            eprintln!("error: {err}");
        }
    }
    results.into_iter().collect()
}

/// Runs the scale measurements, prints their table and writes their JSON.
fn run_scale(args: &Args, base: &Path) -> ExitCode {
    let mode = if args.scale_exclusive {
        ConcurrencyMode::ExclusiveWriter
    } else {
        ConcurrencyMode::MultiWriter
    };
    let cache_size = args.scale_cache.unwrap_or(eodstore::DEFAULT_CACHE_SIZE);
    println!(
        "scale: levels {:?}, {mode:?} mode, a cache of {} MiB, {} loading threads, windows of \
         {:.2} s after {:.2} s of warm-up",
        args.scale_levels,
        cache_size / (1024 * 1024),
        args.loaders,
        args.window.length.as_secs_f64(),
        args.window.warmup.as_secs_f64()
    );
    let sync_rate = sync_rate(base, args.sync_probe);
    println!("disk: {sync_rate:.0} fdatasync/s (4 KiB overwrite each)");

    let levels = match scale::run(
        base,
        &args.scale_levels,
        mode,
        cache_size,
        args.loaders,
        args.window,
    ) {
        Ok(levels) => levels,
        Err(err) => {
            eprintln!("error: scale measurement failed: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n## Scale\n");
    println!("{}", scale::levels_table(&levels));

    let path = args.out.join("concurrent_writers_scale.json");
    let json = serde_json::to_string_pretty(&levels).unwrap_or_default();
    if let Err(err) = std::fs::write(&path, json) {
        eprintln!("error: writing {}: {err}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {}", path.display());

    let errors = levels.iter().any(|level| {
        level.status.errors
            + level.status_recent.errors
            + level.seed.errors
            + level.seed_concurrent.errors
            > 0
    });
    if errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
