//! The subcommands: each parses its input, makes one library call per action and prints.

mod export;
mod import;
mod maintenance;
mod property;
mod report;
pub(crate) mod run;
mod status;
mod watch;

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use eodstore::{
    Caller, Error, OperationId, Plan, Step, Store, StoreOptions, parse_business_date,
    validate_property,
};
use jiff::SignedDuration;
use serde::Serialize;

use crate::cli::{
    Cli, Command, EventsArgs, FailArgs, FinishArgs, HistoryArgs, OpenArgs, PropertyCommand,
    SkipArgs, StartArgs, StepArgs, StepCommand,
};
use crate::output::{self, ChangedOut, EventOut, OperationOut, StartedOut, StepOut, ViewOut};

/// The result of a command that did not fail, which sets the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command did what was asked.
    Success,
    /// `eod run` stopped at a failed step.
    StepFailed,
    /// `eod run` paused at a step without a command.
    Paused,
    /// `eod check` found problems.
    Unhealthy,
}

/// An error that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The library rejected the request or failed.
    #[error(transparent)]
    Store(#[from] Error),

    /// Writing the result to stdout failed.
    #[error("cannot write to standard output")]
    Output(#[source] io::Error),

    /// A state that the argument parser or the library rules out was reached.
    #[error("internal error: {message}; please report this as a bug in eod")]
    Internal {
        /// Description of the unexpected state.
        message: String,
    },
}

type CliResult<T = Outcome> = Result<T, CliError>;

/// Runs the parsed command.
///
/// # Errors
///
/// Returns [`CliError::Store`] with the library's error when a request is rejected or the file
/// fails, and [`CliError::Output`] when stdout cannot be written.
pub fn execute(cli: &Cli) -> CliResult {
    let db = cli.db.as_path();
    let json = cli.json;
    match &cli.command {
        Command::Open(args) => open(db, json, args),
        Command::Run(args) => run::run(db, json, args),
        Command::Status(args) => status::status(db, json, args),
        Command::History(args) => history(db, json, args),
        Command::Events(args) => events(db, json, args),
        Command::Step(StepCommand::Start(args)) => step_start(db, json, args),
        Command::Step(StepCommand::Complete(args)) => step_complete(db, json, args),
        Command::Step(StepCommand::Fail(args)) => step_fail(db, json, args),
        Command::Step(StepCommand::Skip(args)) => step_skip(db, json, args),
        Command::Step(StepCommand::Retry(args)) => step_retry(db, json, args),
        Command::Property(PropertyCommand::SetDate(args)) => property::set_date(db, json, args),
        Command::Property(PropertyCommand::Show(args)) => property::show(db, json, args),
        Command::Release(args) => property::release(db, json, args),
        Command::Watch(args) => watch::watch(db, json, args),
        Command::Check => maintenance::check(db, json),
        Command::Migrate => maintenance::migrate(db, json),
        Command::Backup(args) => maintenance::backup(db, json, &args.to),
        Command::Compact => maintenance::compact(db, json),
        Command::Export(args) => export::export(db, json, args),
        Command::Import(args) => import::import(db, json, args),
        Command::Report(args) => report::report(db, json, args),
    }
}

fn open(db: &Path, json: bool, args: &OpenArgs) -> CliResult {
    // Inputs are checked before the file is created, so a typo creates no database.
    let date = parse_business_date(&args.day.date)?;
    let plan = load_plan(&args.plan.plan)?;
    let caller = Caller::new(actor(args.plan.actor.as_deref()));
    validate_property(&args.day.property)?;
    caller.validate()?;

    let store = Store::open_with(db, StoreOptions::new().create(true))?;
    let opened = store.open_operation(&args.day.property, date, &plan, &caller)?;

    let seeded = opened.steps.iter().filter(|seeded| seeded.created).count();
    eprintln!(
        "{}",
        opened_line(opened.operation.id, opened.created, seeded)
    );
    let steps = opened
        .steps
        .iter()
        .map(|seeded| StepOut::new(&seeded.step, Some(seeded.created)))
        .collect();
    print_view(json, &ViewOut::new(&opened.operation, steps, None))?;
    Ok(Outcome::Success)
}

fn history(db: &Path, json: bool, args: &HistoryArgs) -> CliResult {
    let store = open_read_only(db)?;
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let operations = store.history(&args.property, limit)?;
    if operations.is_empty() {
        eprintln!("no operations for property `{}`", args.property);
    }
    let rows: Vec<OperationOut<'_>> = operations.iter().map(OperationOut::new).collect();
    print(json, &rows, |out| output::write_history(out, &rows))?;
    Ok(Outcome::Success)
}

fn events(db: &Path, json: bool, args: &EventsArgs) -> CliResult {
    let store = open_read_only(db)?;
    let events = store.events(OperationId(args.operation))?;
    let rows: Vec<EventOut<'_>> = events.iter().map(EventOut::new).collect();
    print(json, &rows, |out| output::write_events(out, &rows))?;
    Ok(Outcome::Success)
}

fn step_start(db: &Path, json: bool, args: &StartArgs) -> CliResult {
    // No process is recorded in the caller, so this claim ends only when its lease does.
    let caller = with_override(
        step_caller(&args.step).lease(lease_from_secs(args.lease_secs)?),
        args.override_date.as_deref(),
    );
    let store = Store::open(db)?;
    let started = store.start_step(OperationId(args.step.operation), args.step.order, &caller)?;

    if let Some(previous) = &started.took_over_from {
        eprintln!("step {} was running: {previous}", args.step.order);
    }
    let started_out = StartedOut::new(
        &started.claim.token,
        started.claim.lease_until,
        &started.step,
    );
    print(json, &started_out, |out| {
        writeln!(
            out,
            "claim={} lease_until={}",
            started.claim.token, started.claim.lease_until
        )
    })?;
    Ok(Outcome::Success)
}

fn step_complete(db: &Path, json: bool, args: &FinishArgs) -> CliResult {
    let caller = step_caller(&args.step);
    let store = Store::open(db)?;
    let step = store.complete_step(
        OperationId(args.step.operation),
        args.step.order,
        &args.claim,
        None,
        &caller,
    )?;
    print_changed(json, &step)
}

fn step_fail(db: &Path, json: bool, args: &FailArgs) -> CliResult {
    let caller = step_caller(&args.step);
    let store = Store::open(db)?;
    let step = store.fail_step(
        OperationId(args.step.operation),
        args.step.order,
        &args.claim,
        &args.reason,
        None,
        &caller,
    )?;
    print_changed(json, &step)
}

fn step_skip(db: &Path, json: bool, args: &SkipArgs) -> CliResult {
    let caller = with_override(step_caller(&args.step), args.override_date.as_deref());
    let store = Store::open(db)?;
    let step = store.skip_step(
        OperationId(args.step.operation),
        args.step.order,
        &args.reason,
        &caller,
    )?;
    print_changed(json, &step)
}

fn step_retry(db: &Path, json: bool, args: &StepArgs) -> CliResult {
    let caller = step_caller(args);
    let store = Store::open(db)?;
    let step = store.retry_step(OperationId(args.operation), args.order, &caller)?;
    print_changed(json, &step)
}

/// The maximum lease that `--lease-secs` accepts: 7 days, the library's limit.
const MAX_LEASE_SECS: u32 = 7 * 24 * 60 * 60;

/// Converts `--lease-secs` to a lease, rejecting 0 and values over 7 days with an error that
/// names the option and the value as given.
fn lease_from_secs(secs: u32) -> Result<SignedDuration, Error> {
    if secs == 0 || secs > MAX_LEASE_SECS {
        return Err(Error::InvalidInput {
            what: "--lease-secs",
            value: secs.to_string(),
            expected: format!(
                "a lease longer than zero and at most 7 days ({MAX_LEASE_SECS} seconds)"
            ),
        });
    }
    Ok(SignedDuration::from_secs(i64::from(secs)))
}

/// Reads an input file of at most `max_bytes`. The file's type and size are checked before it
/// is opened, so a FIFO, a device or an oversized file is rejected without being read.
/// `split_hint` tells the user what to do with a file that is too large.
fn read_input_file(
    path: &Path,
    what: &'static str,
    max_bytes: u64,
    split_hint: &str,
) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;

    let rejected = |expected: String| Error::InvalidInput {
        what,
        value: path.display().to_string(),
        expected,
    };
    let read_failed =
        |err: io::Error| rejected(format!("a readable file, but reading it failed: {err}"));
    let metadata = std::fs::metadata(path).map_err(read_failed)?;
    if !metadata.is_file() {
        return Err(rejected(
            "a regular file; it is a directory, a device or a pipe".into(),
        ));
    }
    if metadata.len() > max_bytes {
        return Err(rejected(format!(
            "a file of at most {max_bytes} bytes, but it has {}; {split_hint}",
            metadata.len()
        )));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(max_bytes + 1).read_to_end(&mut bytes))
        .map_err(read_failed)?;
    if bytes.len() as u64 > max_bytes {
        return Err(rejected(format!(
            "a file of at most {max_bytes} bytes, but it grew while it was read; {split_hint}"
        )));
    }
    Ok(bytes)
}

/// Returns the built-in standard plan for `standard`, else the plan file at that path.
fn load_plan(plan: &str) -> Result<Plan, Error> {
    if plan == "standard" {
        return Ok(Plan::standard());
    }
    Plan::from_file(Path::new(plan))
}

/// Returns the `--actor` value, else `$USER`, else `$USERNAME`, else the host name.
fn actor(option: Option<&str>) -> String {
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    option
        .map(str::to_owned)
        .or_else(|| variable("USER"))
        .or_else(|| variable("USERNAME"))
        .unwrap_or_else(|| eodstore::process::current_process().host)
}

/// Builds the caller of a manual step transition.
fn step_caller(args: &StepArgs) -> Caller {
    let caller = Caller::new(actor(args.actor.as_deref()));
    match &args.request_id {
        Some(request_id) => caller.request_id(request_id),
        None => caller,
    }
}

/// Adds the business-date override of `--override-date` to `caller`, when one was given.
fn with_override(caller: Caller, reason: Option<&str>) -> Caller {
    match reason {
        Some(reason) => caller.override_business_date(reason),
        None => caller,
    }
}

fn print_view(json: bool, view: &ViewOut<'_>) -> CliResult<()> {
    print(json, view, |out| output::write_view(out, view))
}

fn print_changed(json: bool, step: &Step) -> CliResult {
    print(json, &ChangedOut::new(step), |out| {
        output::write_steps(out, &[StepOut::new(step, None)])
    })?;
    Ok(Outcome::Success)
}

/// Writes `value` as JSON, or calls `text` to write it for people, to stdout.
///
/// A closed stdout (`eod history | head -1`) is not an error: the reader wanted no more.
fn print(
    json: bool,
    value: &impl Serialize,
    text: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>,
) -> CliResult<()> {
    let mut out = io::stdout().lock();
    let written = if json {
        output::write_json(&mut out, value)
    } else {
        text(&mut out)
    };
    match written.and_then(|()| out.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::Output),
    }
}

/// Describes what opening an operation did, for stderr.
fn opened_line(id: OperationId, created: bool, seeded: usize) -> String {
    if created {
        format!("created operation {id} with {seeded} steps")
    } else if seeded > 0 {
        format!("opened operation {id}, which existed, and seeded {seeded} missing steps")
    } else {
        format!("operation {id} already exists")
    }
}

/// A progress bar on stderr for a long command, drawn only when stderr is a terminal; it clears
/// itself when dropped.
pub(crate) struct ProgressBar(Option<indicatif::ProgressBar>);

impl ProgressBar {
    /// Adds a progress bar to `options` when stderr is a terminal, and returns both.
    pub(crate) fn attach(options: StoreOptions) -> (StoreOptions, ProgressBar) {
        if !io::stderr().is_terminal() {
            return (options, ProgressBar(None));
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len} ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let drawn = bar.clone();
        let options = options.progress(move |progress| {
            drawn.set_length(progress.total);
            drawn.set_position(progress.done);
            if drawn.message() != progress.task {
                drawn.set_message(progress.task.to_owned());
            }
        });
        (options, ProgressBar(Some(bar)))
    }
}

impl ProgressBar {
    /// Shows a spinner with `message` and the time elapsed, for a task that cannot report how
    /// far it has come, when stderr is a terminal.
    pub(crate) fn spinner(message: &'static str) -> ProgressBar {
        if !io::stderr().is_terminal() {
            return ProgressBar(None);
        }
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        spinner.set_message(message);
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        ProgressBar(Some(spinner))
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Opens the database for a command that only reads: no write permission is needed and the
/// file's bytes stay untouched.
fn open_read_only(db: &Path) -> Result<Store, Error> {
    Store::open_with(db, StoreOptions::new().read_only(true))
}
