//! Output: Markdown tables and ratios on stdout, the raw numbers as JSON, an SVG chart of
//! throughput against writers, and the one-line summary.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engines::Engine;
use crate::phases::{ReadRow, Row};

/// The machine and settings of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_kib: u64,
    pub kernel: String,
    /// The file system type of the files directory, from `/proc/mounts`.
    pub filesystem: String,
}

impl Machine {
    /// Reads the machine's description from `/proc`, for a run whose files are in `dir`.
    pub fn detect(dir: &std::path::Path) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
            .map_or_else(
                || "unknown".to_owned(),
                |(_, model)| model.trim().to_owned(),
            );
        let meminfo = read("/proc/meminfo");
        let memory_kib = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            cpu_model,
            memory_kib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            filesystem: filesystem_of(dir, &read("/proc/mounts")),
        }
    }
}

/// Returns the type of the file system mounted at the longest mount point that contains `dir`.
fn filesystem_of(dir: &std::path::Path, mounts: &str) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let mount_point = fields.next()?;
            let kind = fields.next()?;
            dir.starts_with(mount_point).then(|| {
                (
                    mount_point.len(),
                    format!("{kind} on {device} at {mount_point}"),
                )
            })
        })
        .max_by_key(|(length, _)| *length)
        .map_or_else(|| "unknown".to_owned(), |(_, description)| description)
}

/// Everything one run measured, as written to the JSON file.
#[derive(Debug, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub machine: Machine,
    pub files_dir: String,
    pub warmup_secs: f64,
    pub window_secs: f64,
    /// Repetitions of each seeding measurement.
    pub repeat: usize,
    /// 4 KiB overwrites with `fdatasync` per second, before and after the measurements.
    pub sync_rate_before: f64,
    pub sync_rate_after: f64,
    pub seeding: Vec<Row>,
    pub race: Vec<Row>,
    pub transitions: Vec<Row>,
    pub reads: Vec<ReadRow>,
    /// Measurements that could not run, with the reason.
    pub failures: Vec<String>,
    pub summary: String,
}

/// Returns a Markdown table of rows, with a last column listing the throughput of every
/// repetition when any row has more than one.
pub fn rows_table(rows: &[Row], unit: &str) -> String {
    let repeated = rows.iter().any(|row| row.per_second_runs.len() > 1);
    let mut table = format!(
        "| engine | writers | {unit}/s | p50 ms | p99 ms | p99.9 ms | max ms | fairness | busy cores | other cores | disk fdatasync/s | errors |"
    );
    table.push_str(if repeated { " each run /s |\n" } else { "\n" });
    table.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    table.push_str(if repeated { "--:|\n" } else { "\n" });
    for row in rows {
        let stats = &row.stats;
        let _ = write!(
            table,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.0} | {} |",
            row.engine.name(),
            row.writers,
            stats.per_second,
            stats.p50_ms,
            stats.p99_ms,
            stats.p999_ms,
            stats.max_ms,
            stats.fairness,
            stats.busy_cores,
            stats.other_busy_cores,
            row.disk_syncs_per_second,
            stats.errors
        );
        if repeated {
            let runs: Vec<String> = row
                .per_second_runs
                .iter()
                .map(|rate| format!("{rate:.0}"))
                .collect();
            let _ = write!(table, " {} |", runs.join(", "));
        }
        table.push('\n');
    }
    table
}

/// Returns a Markdown table of eodstore's throughput over each other engine's, per writer
/// count.
pub fn ratio_table(rows: &[Row]) -> String {
    let mut writers: Vec<usize> = rows.iter().map(|row| row.writers).collect();
    writers.sort_unstable();
    writers.dedup();
    let peers: Vec<Engine> = Engine::ALL
        .into_iter()
        .filter(|&engine| engine != Engine::Eodstore && rows.iter().any(|row| row.engine == engine))
        .collect();
    let mut table = String::from("| writers |");
    for peer in &peers {
        let _ = write!(table, " eodstore / {} |", peer.name());
    }
    table.push_str("\n|--:|");
    table.push_str(&"--:|".repeat(peers.len()));
    table.push('\n');
    for count in writers {
        let _ = write!(table, "| {count} |");
        let rate = |engine: Engine| {
            rows.iter()
                .find(|row| row.engine == engine && row.writers == count)
                .map(|row| row.stats.per_second)
        };
        for &peer in &peers {
            match (rate(Engine::Eodstore), rate(peer)) {
                (Some(ours), Some(theirs)) if theirs > 0.0 => {
                    let _ = write!(table, " {:.2} |", ours / theirs);
                }
                _ => table.push_str(" - |"),
            }
        }
        table.push('\n');
    }
    table
}

/// Returns a Markdown table of status reads while writers seed.
pub fn reads_table(rows: &[ReadRow]) -> String {
    let mut table = String::from(
        "| engine | writers | readers | reads/s | read p50 ms | read p99 ms | read p99.9 ms | \
         read max ms | reader fairness | seeds/s meanwhile | seed p99 ms | busy cores | other cores | \
         disk fdatasync/s | errors |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in rows {
        let (reads, writes) = (&row.reads, &row.writes);
        let _ = writeln!(
            table,
            "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.2} | {:.1} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {} |",
            row.engine.name(),
            row.writers,
            row.readers,
            reads.per_second,
            reads.p50_ms,
            reads.p99_ms,
            reads.p999_ms,
            reads.max_ms,
            reads.fairness,
            writes.per_second,
            writes.p99_ms,
            reads.busy_cores,
            reads.other_busy_cores,
            row.disk_syncs_per_second,
            reads.errors + writes.errors
        );
    }
    table
}

/// Returns the summary line for `writers` writers from the seeding rows, or why it cannot be
/// written.
pub fn summary_line(seeding: &[Row], writers: usize) -> Result<String, String> {
    let find = |engine: Engine| {
        seeding
            .iter()
            .find(|row| row.engine == engine && row.writers == writers)
            .map(|row| &row.stats)
            .ok_or_else(|| {
                format!(
                    "no seeding result for {} at {writers} writers",
                    engine.name()
                )
            })
    };
    let ours = find(Engine::Eodstore)?;
    let redb = find(Engine::RedbPerTxn)?;
    let sqlite_full = find(Engine::SqliteFull)?;
    let sqlite_normal = find(Engine::SqliteNormal)?;
    let nosync = find(Engine::EodstoreNosync)?;
    let values = [
        ours.per_second / sqlite_full.per_second,
        ours.per_second / redb.per_second,
        ours.p99_ms,
        ours.p999_ms,
        ours.max_ms,
    ];
    if values.iter().any(|value| !value.is_finite()) {
        return Err(format!(
            "a ratio or latency at {writers} writers is not a number: {values:?}"
        ));
    }
    Ok(format!(
        "summary writers={writers} eodstore={:.0} redb_per_txn={:.0} sqlite_full={:.0} \
         sqlite_normal={:.0} nosync_ceiling={:.0} vs_sqlite_full={:.2} vs_redb_per_txn={:.2} \
         p99_ms={:.2} p999_ms={:.2} max_ms={:.1} fairness={:.2}",
        ours.per_second,
        redb.per_second,
        sqlite_full.per_second,
        sqlite_normal.per_second,
        nosync.per_second,
        values[0],
        values[1],
        ours.p99_ms,
        ours.p999_ms,
        ours.max_ms,
        ours.fairness
    ))
}

/// Returns the line that compares the durable group commit with the no-fsync ceiling in the same
/// `ExclusiveWriter` mode, or `None` when a figure is missing.
pub fn exclusive_line(seeding: &[Row], writers: usize) -> Option<String> {
    let rate = |engine: Engine| {
        seeding
            .iter()
            .find(|row| row.engine == engine && row.writers == writers)
            .map(|row| row.stats.per_second)
    };
    let ours = rate(Engine::Eodstore)?;
    let exclusive = rate(Engine::EodstoreExclusive)?;
    let nosync = rate(Engine::EodstoreNosync)?;
    let redb_exclusive = rate(Engine::RedbPerTxnExclusive)?;
    Some(format!(
        "exclusive writers={writers} eodstore_exclusive={exclusive:.0} \
         redb_per_txn_exclusive={redb_exclusive:.0} nosync_ceiling={nosync:.0} \
         eodstore_vs_nosync={:.2} eodstore_exclusive_vs_nosync={:.2} \
         eodstore_exclusive_vs_redb_per_txn_exclusive={:.2}",
        ours / nosync,
        exclusive / nosync,
        exclusive / redb_exclusive
    ))
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f",
];

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 600.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 410.0;

/// The scales of a chart: writers on a log-2 x axis, throughput on a linear y axis from zero.
struct Chart {
    writers: Vec<usize>,
    log_low: f64,
    log_high: f64,
    y_max: f64,
    y_step: f64,
}

impl Chart {
    fn new(rows: &[Row]) -> Chart {
        let mut writers: Vec<usize> = rows.iter().map(|row| row.writers).collect();
        writers.sort_unstable();
        writers.dedup();
        let (log_low, log_high) = match (writers.first(), writers.last()) {
            (Some(&low), Some(&high)) => ((low as f64).log2(), (high as f64).log2()),
            _ => (0.0, 1.0),
        };
        let top_value = rows
            .iter()
            .map(|row| row.stats.per_second)
            .filter(|value| value.is_finite())
            .fold(0.0_f64, f64::max)
            .max(1.0)
            * 1.1;
        let y_step = nice_step(top_value / 5.0);
        Chart {
            writers,
            log_low,
            log_high,
            y_max: (top_value / y_step).ceil() * y_step,
            y_step,
        }
    }

    fn x(&self, writers: usize) -> f64 {
        if self.log_high > self.log_low {
            LEFT + ((writers as f64).log2() - self.log_low) / (self.log_high - self.log_low)
                * (RIGHT - LEFT)
        } else {
            f64::midpoint(LEFT, RIGHT)
        }
    }

    fn y(&self, value: f64) -> f64 {
        BOTTOM - value / self.y_max * (BOTTOM - TOP)
    }

    /// Writes the grid, the tick labels and the axis titles.
    fn write_axes(&self, svg: &mut String, y_label: &str) {
        let mut tick = 0.0;
        while tick <= self.y_max + self.y_step / 2.0 {
            let y = self.y(tick);
            let _ = writeln!(
                svg,
                "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{RIGHT}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
                LEFT - 6.0,
                y + 4.0,
            );
            tick += self.y_step;
        }
        for &count in &self.writers {
            let x = self.x(count);
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{BOTTOM}\" stroke=\"#eee\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{count}</text>",
                BOTTOM + 18.0
            );
        }
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{BOTTOM}\" x2=\"{RIGHT}\" y2=\"{BOTTOM}\" stroke=\"black\"/>\
             <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{BOTTOM}\" stroke=\"black\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">writer threads (log scale)</text>\n\
             <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">{y_label}</text>",
            f64::midpoint(LEFT, RIGHT),
            BOTTOM + 40.0,
            f64::midpoint(TOP, BOTTOM)
        );
    }

    /// Writes one engine's line, its points and its legend entry.
    fn write_series(&self, svg: &mut String, index: usize, engine: Engine, rows: &[Row]) {
        // Colors follow the engine, not the legend position, so an engine looks the same in
        // every chart.
        let color = COLORS[engine.position() % COLORS.len()];
        let dash = if matches!(engine, Engine::EodstoreNosync | Engine::SqliteNormal) {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let mut series: Vec<&Row> = rows.iter().filter(|row| row.engine == engine).collect();
        series.sort_by_key(|row| row.writers);
        let points: Vec<(f64, f64)> = series
            .iter()
            .map(|row| (self.x(row.writers), self.y(row.stats.per_second)))
            .collect();
        let polyline: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            polyline.join(" ")
        );
        for (x, y) in &points {
            let _ = writeln!(
                svg,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>"
            );
        }
        let legend_y = TOP + 10.0 + index as f64 * 22.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{legend_y:.1}\" x2=\"{:.1}\" y2=\"{legend_y:.1}\" \
             stroke=\"{color}\" stroke-width=\"2\"{dash}/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            RIGHT + 20.0,
            RIGHT + 50.0,
            RIGHT + 58.0,
            legend_y + 4.0,
            engine.name()
        );
    }
}

/// Returns an SVG line chart of throughput against writers, one line per engine. The engines
/// that do not make every commit durable (`eodstore_nosync`, `sqlite_normal`) are dashed.
pub fn chart_svg(title: &str, y_label: &str, rows: &[Row]) -> String {
    let chart = Chart::new(rows);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"28\" font-size=\"16\">{title}</text>\n"
    );
    chart.write_axes(&mut svg, y_label);
    let engines = Engine::ALL
        .into_iter()
        .filter(|&engine| rows.iter().any(|row| row.engine == engine));
    let mut count = 0;
    for (index, engine) in engines.enumerate() {
        chart.write_series(&mut svg, index, engine, rows);
        count = index + 1;
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">dashed: not durable on power loss</text>",
        RIGHT + 20.0,
        TOP + 14.0 + count as f64 * 22.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// Returns the 1, 2 or 5 times a power of ten nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10_f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}
