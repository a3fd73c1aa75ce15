//! `eod report`: night-audit durations, failures and actors as text, JSON or an HTML page.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use eodstore::{
    DumpFilter, Error, OperationReport, Report, StepProblem, StepStatus, StepTiming,
    parse_business_date,
};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::{CliResult, Outcome, open_read_only, print};
use crate::cli::ReportArgs;

pub(super) fn report(db: &Path, json: bool, args: &ReportArgs) -> CliResult {
    let mut filter = DumpFilter::all();
    if let Some(property) = &args.property {
        filter = filter.property(property);
    }
    if let Some(from) = &args.from {
        filter = filter.from_date(parse_business_date(from)?);
    }
    if let Some(to) = &args.to {
        filter = filter.to_date(parse_business_date(to)?);
    }
    // An existing file fails the command before the store is read. The page is still written
    // with `create_new`, which also rejects a file created in the meantime.
    if let Some(path) = &args.html
        && path.symlink_metadata().is_ok()
    {
        return Err(existing_file(path).into());
    }

    let store = open_read_only(db)?;
    let report = store.report(&filter)?;
    if report.operations.is_empty() {
        eprintln!("no operations match; the report is empty");
    }

    let Some(path) = &args.html else {
        print(json, &report, |out| write_text(out, &report))?;
        return Ok(Outcome::Success);
    };
    write_page(path, &render_html(&report, &page_title(args)))?;
    let written = HtmlOut {
        html: path,
        operations: report.operations.len(),
        step_codes: report.step_codes.len(),
    };
    print(json, &written, |out| {
        writeln!(
            out,
            "wrote the report of {} operations to `{}`",
            written.operations,
            path.display()
        )
    })?;
    Ok(Outcome::Success)
}

/// `eod report --html FILE --json` output.
#[derive(Serialize)]
struct HtmlOut<'a> {
    html: &'a Path,
    operations: usize,
    step_codes: usize,
}

fn existing_file(path: &Path) -> Error {
    Error::InvalidInput {
        what: "--html",
        value: path.display().to_string(),
        expected: "a path where nothing exists yet; choose a new name or remove the old report"
            .into(),
    }
}

/// Writes `page` to a new file at `path`, removing what was written if writing fails.
fn write_page(path: &Path, page: &str) -> Result<(), Error> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    let mut file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Err(existing_file(path)),
        Err(err) => return Err(write_failed(path, &err)),
    };
    if let Err(err) = file
        .write_all(page.as_bytes())
        .and_then(|()| file.sync_all())
    {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(write_failed(path, &err));
    }
    Ok(())
}

fn write_failed(path: &Path, err: &io::Error) -> Error {
    Error::InvalidInput {
        what: "--html",
        value: path.display().to_string(),
        expected: format!(
            "a new file in an existing, writable directory, but writing it failed: {err}"
        ),
    }
}

/// Returns the page title, naming the property and dates the options select.
fn page_title(args: &ReportArgs) -> String {
    let mut title = String::from("Night-audit report");
    if let Some(property) = &args.property {
        let _ = write!(title, ": {property}");
    }
    match (&args.from, &args.to) {
        (Some(from), Some(to)) => {
            let _ = write!(title, ", {from} to {to}");
        }
        (Some(from), None) => {
            let _ = write!(title, ", from {from}");
        }
        (None, Some(to)) => {
            let _ = write!(title, ", until {to}");
        }
        (None, None) => {}
    }
    title
}

/// Formats a duration as `H:MM:SS`, with milliseconds when it has a fraction of a second.
fn format_duration(duration: SignedDuration) -> String {
    let sign = if duration.is_negative() { "-" } else { "" };
    let total = duration.as_secs().unsigned_abs();
    let mut text = format!(
        "{sign}{}:{:02}:{:02}",
        total / 3600,
        total / 60 % 60,
        total % 60
    );
    let millis = duration.subsec_millis().unsigned_abs();
    if millis > 0 {
        let _ = write!(text, ".{millis:03}");
    }
    text
}

fn format_optional_duration(duration: Option<SignedDuration>) -> String {
    duration.map_or_else(|| "-".to_owned(), format_duration)
}

fn format_time(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), |at| format!("{at:.0}"))
}

/// Lists steps as `code xN`, where N is the failure or retry count, or `-` for none.
fn format_problems(problems: &[StepProblem], count: impl Fn(&StepProblem) -> u32) -> String {
    if problems.is_empty() {
        return "-".to_owned();
    }
    problems
        .iter()
        .map(|problem| format!("{} x{}", problem.code, count(problem)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Returns the width of the widest of `values` and `header`, in characters.
fn column_width<'a>(header: &str, values: impl Iterator<Item = &'a str>) -> usize {
    values
        .map(|value| value.chars().count())
        .chain([header.chars().count()])
        .max()
        .unwrap_or_default()
}

/// Writes the table of operations, then the table of step codes.
fn write_text(out: &mut impl Write, report: &Report) -> io::Result<()> {
    if report.operations.is_empty() {
        return Ok(());
    }
    let rows: Vec<[String; 9]> = report
        .operations
        .iter()
        .map(|operation| {
            [
                operation.business_date.to_string(),
                operation.property.clone(),
                operation.status.to_string(),
                format_time(operation.start),
                format_time(operation.end),
                format_optional_duration(operation.duration),
                format_problems(&operation.failed_steps, |problem| problem.failures),
                format_problems(&operation.retried_steps, |problem| problem.retries),
                operation.actors.join(", "),
            ]
        })
        .collect();
    let headers = [
        "BUSINESS DATE",
        "PROPERTY",
        "STATUS",
        "START",
        "END",
        "DURATION",
        "FAILED",
        "RETRIED",
        "ACTORS",
    ];
    write_table(out, &headers, &rows)?;

    writeln!(out)?;
    let rows: Vec<[String; 5]> = report
        .step_codes
        .iter()
        .map(|stats| {
            [
                stats.code.clone(),
                stats.count.to_string(),
                format_duration(stats.median),
                format_duration(stats.max),
                stats.name.clone(),
            ]
        })
        .collect();
    write_table(out, &["CODE", "COUNT", "MEDIAN", "MAX", "NAME"], &rows)
}

/// Writes a table whose columns are as wide as their widest cell. The last column is not
/// padded, and `COUNT` is aligned right.
fn write_table<const N: usize>(
    out: &mut impl Write,
    headers: &[&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let widths: Vec<usize> = (0..N)
        .map(|column| column_width(headers[column], rows.iter().map(|row| row[column].as_str())))
        .collect();
    let line = |cells: [&str; N]| {
        let mut line = String::new();
        for (column, cell) in cells.iter().enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            let padding = widths[column].saturating_sub(cell.chars().count());
            if headers[column] == "COUNT" {
                line.push_str(&" ".repeat(padding));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if column + 1 < N {
                    line.push_str(&" ".repeat(padding));
                }
            }
        }
        line
    };
    writeln!(out, "{}", line(*headers))?;
    for row in rows {
        writeln!(out, "{}", line(std::array::from_fn(|i| row[i].as_str())))?;
    }
    Ok(())
}

/// Escapes text for HTML content and quoted attribute values.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The fill color of a step's bar.
fn status_color(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Completed => "#2e7d32",
        StepStatus::Failed => "#c62828",
        StepStatus::Running => "#ef8f00",
        StepStatus::Skipped => "#8d8d8d",
        StepStatus::Pending => "#c9c9c9",
    }
}

/// The inline style sheet. It names only system font families, so it loads no font.
const STYLE: &str = "
body { font-family: 'DejaVu Sans', 'Segoe UI', Arial, sans-serif; margin: 24px; color: #1d1d1d; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: left; vertical-align: top;
         white-space: nowrap; }
th { background: #f0f0f0; } td.number { text-align: right; }
.legend span { display: inline-block; margin-right: 16px; font-size: 13px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
svg text { font-size: 12px; fill: #1d1d1d; } svg .night { font-weight: bold; }
svg .axis { fill: #666; font-size: 11px; }
";

/// Layout of the timeline, in pixels.
const LABEL_WIDTH: f64 = 300.0;
const CHART_WIDTH: f64 = 760.0;
const NIGHT_HEIGHT: f64 = 24.0;
const LANE_HEIGHT: f64 = 18.0;
const AXIS_HEIGHT: f64 = 22.0;

/// Renders the report as one self-contained HTML page: inline CSS, an inline SVG timeline with
/// one band per operation and one lane per step, then the tables of the text report and each
/// operation's steps. The page contains no URL, so it loads nothing, and every stored text in
/// it is escaped.
fn render_html(report: &Report, title: &str) -> String {
    let mut page = String::new();
    let title = escape_html(title);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    if report.operations.is_empty() {
        page.push_str("<p>No operations match.</p>\n</body>\n</html>\n");
        return page;
    }
    let _ = writeln!(
        page,
        "<p>{} operations. Times are UTC; durations are H:MM:SS.</p>",
        report.operations.len()
    );

    page.push_str("<h2>Timeline</h2>\n<p class=\"legend\">");
    for status in [
        StepStatus::Completed,
        StepStatus::Failed,
        StepStatus::Running,
        StepStatus::Skipped,
        StepStatus::Pending,
    ] {
        let _ = write!(
            page,
            "<span><i style=\"background:{}\"></i>{status}</span>",
            status_color(status)
        );
    }
    page.push_str("</p>\n");
    write_timeline(&mut page, report);

    page.push_str(
        "<h2>Operations</h2>\n<table>\n<tr><th>Business date</th><th>Property</th>\
                   <th>Status</th><th>Start</th><th>End</th><th>Duration</th>\
                   <th>Failed steps</th><th>Retried steps</th><th>Actors</th></tr>\n",
    );
    for operation in &report.operations {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"number\">{}\
             </td><td>{}</td><td>{}</td><td>{}</td></tr>",
            operation.business_date,
            escape_html(&operation.property),
            operation.status,
            format_time(operation.start),
            format_time(operation.end),
            format_optional_duration(operation.duration),
            escape_html(&format_problems(&operation.failed_steps, |p| p.failures)),
            escape_html(&format_problems(&operation.retried_steps, |p| p.retries)),
            escape_html(&operation.actors.join(", ")),
        );
    }
    page.push_str("</table>\n");

    page.push_str(
        "<h2>Step durations</h2>\n<p>Completed steps only; a step's duration is its \
                   last attempt's, from start to completion.</p>\n<table>\n<tr><th>Code</th>\
                   <th>Name</th><th>Count</th><th>Median</th><th>Max</th></tr>\n",
    );
    for stats in &report.step_codes {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"number\">{}</td><td class=\"number\">{}</td>\
             <td class=\"number\">{}</td></tr>",
            escape_html(&stats.code),
            escape_html(&stats.name),
            stats.count,
            format_duration(stats.median),
            format_duration(stats.max),
        );
    }
    page.push_str("</table>\n");

    for operation in &report.operations {
        write_step_table(&mut page, operation);
    }
    page.push_str("</body>\n</html>\n");
    page
}

/// Writes one operation's steps as a table.
fn write_step_table(page: &mut String, operation: &OperationReport) {
    let _ = writeln!(
        page,
        "<h3>{} {}, operation {}</h3>\n<table>\n<tr><th>Order</th><th>Code</th><th>Name</th>\
         <th>Status</th><th>Attempts</th><th>Started</th><th>Finished</th><th>Duration</th></tr>",
        operation.business_date,
        escape_html(&operation.property),
        operation.operation
    );
    for step in &operation.steps {
        let _ = writeln!(
            page,
            "<tr><td class=\"number\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"number\">{}</td><td>{}</td><td>{}</td><td class=\"number\">{}</td></tr>",
            step.order,
            escape_html(&step.code),
            escape_html(&step.name),
            step.status,
            step.attempts,
            format_time(step.started_at),
            format_time(step.finished_at),
            format_optional_duration(step.duration),
        );
    }
    page.push_str("</table>\n");
}

/// Returns when the timeline of `operation` ends: the latest of its end and its steps' times.
fn timeline_end(operation: &OperationReport) -> Option<Timestamp> {
    operation
        .steps
        .iter()
        .flat_map(|step| [step.started_at, step.finished_at])
        .chain([operation.end])
        .flatten()
        .max()
}

/// Writes the SVG timeline. Every band shares one time scale, starting at its operation's
/// start, so bars of equal length took equally long.
fn write_timeline(page: &mut String, report: &Report) {
    let span = report
        .operations
        .iter()
        .filter_map(|operation| Some(timeline_end(operation)?.duration_since(operation.start?)))
        .max()
        .filter(SignedDuration::is_positive)
        .unwrap_or(SignedDuration::from_secs(60));
    let lanes: usize = report.operations.iter().map(|o| o.steps.len()).sum();
    let height = AXIS_HEIGHT
        + NIGHT_HEIGHT * as_f64(report.operations.len())
        + LANE_HEIGHT * as_f64(lanes)
        + 4.0;
    let width = LABEL_WIDTH + CHART_WIDTH + 80.0;
    let _ = writeln!(
        page,
        "<svg role=\"img\" aria-label=\"Timeline of each operation's steps\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    );

    // The axis: offsets from each operation's start, in five equal parts.
    for part in 0..=4 {
        let x = LABEL_WIDTH + CHART_WIDTH * f64::from(part) / 4.0;
        let offset = span / 4 * part;
        let _ = writeln!(
            page,
            "<line x1=\"{x}\" y1=\"{AXIS_HEIGHT}\" x2=\"{x}\" y2=\"{height}\" stroke=\"#e3e3e3\"/>\
             <text class=\"axis\" x=\"{x}\" y=\"14\" text-anchor=\"middle\">+{}</text>",
            format_duration(offset)
        );
    }

    let mut y = AXIS_HEIGHT;
    for operation in &report.operations {
        let _ = writeln!(
            page,
            "<rect x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{NIGHT_HEIGHT}\" fill=\"#f4f6fa\"/>\
             <text class=\"night\" x=\"4\" y=\"{}\">{} {} ({}, {})</text>",
            y + 16.0,
            operation.business_date,
            escape_html(&operation.property),
            operation.status,
            format_optional_duration(operation.duration)
        );
        y += NIGHT_HEIGHT;
        for step in &operation.steps {
            write_lane(page, operation, step, span, y);
            y += LANE_HEIGHT;
        }
    }
    page.push_str("</svg>\n");
}

/// Converts a count of rows to `f64`, exact up to `u32::MAX` rows.
fn as_f64(count: usize) -> f64 {
    u32::try_from(count).map_or(f64::from(u32::MAX), f64::from)
}

/// Writes one step's lane: its name on the left and, once it has started, its bar.
fn write_lane(
    page: &mut String,
    operation: &OperationReport,
    step: &StepTiming,
    span: SignedDuration,
    y: f64,
) {
    let name = escape_html(&step.name);
    let _ = writeln!(
        page,
        "<text x=\"16\" y=\"{}\">{} {name}</text>",
        y + 13.0,
        step.order
    );
    let (Some(start), Some(night_start)) = (step.started_at, operation.start) else {
        return;
    };
    // A running step's bar reaches the end of its operation's timeline.
    let end = step
        .finished_at
        .or_else(|| timeline_end(operation))
        .unwrap_or(start)
        .max(start);
    let scale = CHART_WIDTH / span.as_secs_f64();
    let x = LABEL_WIDTH + start.duration_since(night_start).as_secs_f64() * scale;
    let bar_width = (end.duration_since(start).as_secs_f64() * scale).max(2.0);
    let _ = writeln!(
        page,
        "<rect x=\"{x:.1}\" y=\"{}\" width=\"{bar_width:.1}\" height=\"{}\" rx=\"2\" \
         fill=\"{}\"><title>{name}: {}, {} to {}, {}</title></rect>",
        y + 3.0,
        LANE_HEIGHT - 6.0,
        status_color(step.status),
        step.status,
        format_time(step.started_at),
        format_time(step.finished_at),
        format_optional_duration(step.duration),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_formats_as_clock_time() {
        assert_eq!(format_duration(SignedDuration::from_secs(0)), "0:00:00");
        assert_eq!(format_duration(SignedDuration::from_secs(3723)), "1:02:03");
        assert_eq!(
            format_duration(SignedDuration::from_millis(90_500)),
            "0:01:30.500"
        );
    }

    #[test]
    fn html_escape_covers_markup() {
        assert_eq!(
            escape_html("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
