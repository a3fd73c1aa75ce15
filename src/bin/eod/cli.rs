//! The command line: global options, subcommands and their arguments, parsed by clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The database used when neither `--db` nor `EOD_DB` names one.
pub const DEFAULT_DB: &str = "./eod.redb";

/// The exit codes, shown under `eod --help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  storage or internal error (the file failed or is damaged)
  2  usage error (unknown command or option, missing or malformed argument)
  3  rejected request (invalid input, not found, conflict, wrong state); nothing changed
  4  a run stopped at a failed step
  5  a run paused at a manual step
  6  the database is busy or locked by another process
  7  `eod check` found problems in the file";

/// Returns the library's default lease in whole seconds, shown as the `--lease-secs` default.
fn default_lease_secs() -> u32 {
    u32::try_from(eodstore::DEFAULT_LEASE.as_secs()).unwrap_or(u32::MAX)
}

/// Records and runs hotel end-of-day operations (night audits) in an eodstore database.
#[derive(Debug, Parser)]
#[command(name = "eod", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Database file.
    #[arg(
        long,
        global = true,
        env = "EOD_DB",
        default_value = DEFAULT_DB,
        value_name = "PATH"
    )]
    pub db: PathBuf,

    /// Prints results as one JSON value on stdout, except `eod watch`, which prints one JSON
    /// object per line.
    #[arg(long, global = true)]
    pub json: bool,

    /// Logs eodstore's debug messages to stderr (`RUST_LOG` sets other filters).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `eod`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Opens the operation of a property and business date, seeding the plan's steps, and
    /// prints its steps.
    Open(OpenArgs),

    /// Opens the operation like `open` and runs each step whose plan entry has a `command`, in
    /// order. A run stops at a failed step or a manual step, and running it again resumes.
    /// `--until` closes every business date of the property from its current one through the
    /// given date, in order.
    Run(RunArgs),

    /// Prints an operation, its plan's fingerprint, its property's business date and its steps,
    /// with each attempt of a step that was retried or failed (reads only).
    Status(StatusArgs),

    /// Lists a property's operations, newest business date first (reads only).
    History(HistoryArgs),

    /// Prints an operation's audit events, oldest first (reads only).
    Events(EventsArgs),

    /// Changes one step by hand: start, complete, fail, skip or retry.
    #[command(subcommand)]
    Step(StepCommand),

    /// Sets or shows a property's business date and its operation in progress.
    #[command(subcommand)]
    Property(PropertyCommand),

    /// Releases an abandoned operation in progress, so that the property's other operations
    /// can start. Its steps stay as they are, and the release is recorded with its reason.
    Release(ReleaseArgs),

    /// Prints each change as it is committed, by any process, until interrupted or until
    /// `--count` changes were printed (reads only). With `--json` it prints one JSON object per
    /// line.
    Watch(WatchArgs),

    /// Checks the whole file: redb's page checksums, then every record and the rules between
    /// them (steps match their plan, events match their steps, the day index matches the
    /// operations). Writers of other processes wait while it runs. Exit code 7 if it finds a
    /// problem.
    Check,

    /// Migrates a file written by an older eodstore to the current format, after copying it
    /// aside as `NAME.formatN.bak`. Stop other programs that use the file first.
    Migrate,

    /// Writes a consistent copy of the whole file while other programs keep working; their
    /// writes wait while the file is copied. Run it before a risky change.
    Backup(BackupArgs),

    /// Compacts the file, returning free space at its end to the file system, and prints the
    /// size before and after. Other processes wait for it before their next transaction.
    Compact,

    /// Writes operations, their steps and their audit events to stdout (reads only): JSON that
    /// `eod import --dump` reads back exactly, ids included, or CSV with one row per step.
    Export(ExportArgs),

    /// Imports night-audit history in one write transaction: a CSV export of an SQL table of
    /// steps (`--csv`), or a JSON dump written by `eod export` (`--dump`). A file with any
    /// invalid line imports nothing, and importing a file again changes nothing.
    Import(ImportArgs),

    /// Reports on night audits (reads only): per operation its start, end, duration, failed
    /// and retried steps and actors; per step code the median and maximum duration of its
    /// completed steps. Writes text, `--json`, or a self-contained HTML page with `--html`.
    Report(ReportArgs),
}

/// Arguments of `eod report`. Each option narrows the selection; without any, every operation
/// is reported.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Reports only the operations of this property (hotel).
    #[arg(long, value_name = "P")]
    pub property: Option<String>,

    /// Reports only business dates on or after this one, as YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<String>,

    /// Reports only business dates on or before this one, as YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<String>,

    /// Writes the report as a self-contained HTML page with a timeline chart to this new file,
    /// instead of printing it; nothing may exist there yet.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Arguments of `eod import`: exactly one of `--csv` and `--dump`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["csv", "dump"]))]
pub struct ImportArgs {
    /// CSV export of an operations-and-steps table, with a header line naming the columns;
    /// README.md lists the accepted column names and status values.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// JSON dump written by `eod export --format json`, reproduced exactly, ids included.
    #[arg(long, value_name = "FILE")]
    pub dump: Option<PathBuf>,

    /// Character encoding of the CSV file. UTF-8 may start with a byte-order mark.
    #[arg(long, value_enum, default_value_t = CsvEncoding::Utf8, conflicts_with = "dump")]
    pub encoding: CsvEncoding,

    /// Property (hotel) of the rows without one: for a file without a property column, or an
    /// empty property cell.
    #[arg(long, value_name = "P", conflicts_with = "dump")]
    pub property: Option<String>,

    /// Prints the summary of what the import would do, and writes nothing.
    #[arg(long, conflicts_with = "dump")]
    pub dry_run: bool,

    /// Resolves rows of one step with different names or codes by keeping the name and code of
    /// the first or last of them in file order. Without it, such rows reject the file.
    #[arg(long, value_enum, value_name = "WHICH", conflicts_with = "dump")]
    pub on_conflict: Option<OnConflictArg>,

    /// Actor recorded in the import's events [default: $USER, else $USERNAME, else the host
    /// name].
    #[arg(long, value_name = "A", conflicts_with = "dump")]
    pub actor: Option<String>,
}

/// The encodings that `eod import --encoding` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CsvEncoding {
    /// UTF-8, with or without a byte-order mark.
    #[value(name = "utf-8")]
    Utf8,
    /// Windows-1254 (Turkish), as Windows programs in Turkish write it.
    #[value(name = "windows-1254")]
    Windows1254,
    /// ISO-8859-9 (Latin-5, Turkish).
    #[value(name = "iso-8859-9")]
    Iso8859_9,
}

/// The values of `eod import --on-conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnConflictArg {
    /// Keep the name and code of the first row, in file order.
    KeepFirst,
    /// Keep the name and code of the last row, in file order.
    KeepLast,
}

/// Arguments of `eod backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Path of the copy; nothing may exist there yet.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
}

/// The output formats of `eod export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A versioned dump with every field, for `eod import --dump`.
    Json,
    /// One row per step with its operation's columns repeated, header row first (RFC 4180).
    Csv,
}

/// Arguments of `eod export`. Each option narrows the selection; without any, every operation
/// is exported.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    pub format: ExportFormat,

    /// Exports only the operations of this property (hotel).
    #[arg(long, value_name = "P")]
    pub property: Option<String>,

    /// Exports only business dates on or after this one, as YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<String>,

    /// Exports only business dates on or before this one, as YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<String>,

    /// Exports only the operation with this id.
    #[arg(long, value_name = "ID", allow_negative_numbers = true)]
    pub operation: Option<u64>,
}

/// The property and business date that name an operation.
#[derive(Debug, Args)]
pub struct DayArgs {
    /// Business date, as YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: String,

    /// Property (hotel) name.
    #[arg(long, default_value = "default", value_name = "P")]
    pub property: String,
}

/// The plan and the actor of a call that opens an operation.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan: `standard` for the built-in plan, or the path of a TOML plan file (write
    /// `./standard` for a file named `standard`).
    #[arg(long, default_value = "standard", value_name = "PLAN")]
    pub plan: String,

    /// Actor recorded in events: a person, terminal or service [default: $USER, else
    /// $USERNAME, else the host name].
    #[arg(long, value_name = "A")]
    pub actor: Option<String>,
}

/// Arguments of `eod open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The operation's property and business date.
    #[command(flatten)]
    pub day: DayArgs,

    /// The plan and the actor.
    #[command(flatten)]
    pub plan: PlanArgs,
}

/// Arguments of `eod run`: one business date, or a catch-up through `--until`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("dates").required(true).args(["date", "until"]))]
pub struct RunArgs {
    /// Business date of the operation to run, as YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<String>,

    /// Runs every business date of the property from its current one through this date,
    /// inclusive, in order, and stops at the first run that does not finish. Each run's
    /// `roll_business_date` step advances the date. Set the first date with `eod property
    /// set-date`.
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "override_date")]
    pub until: Option<String>,

    /// Property (hotel) name.
    #[arg(long, default_value = "default", value_name = "P")]
    pub property: String,

    /// The plan and the actor.
    #[command(flatten)]
    pub plan: PlanArgs,

    /// Lease of each step's claim, in seconds. The runner renews it while a command runs.
    #[arg(long, value_name = "N", default_value_t = default_lease_secs(), allow_negative_numbers = true)]
    pub lease_secs: u32,

    /// Runs `--date` although it is not the property's business date, for this reason, which
    /// the operation's events record as `date_override`.
    #[arg(long, value_name = "REASON")]
    pub override_date: Option<String>,
}

/// Arguments of `eod status`: a property and date, or an operation id.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["date", "operation"]))]
pub struct StatusArgs {
    /// Business date, as YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "operation")]
    pub date: Option<String>,

    /// Property (hotel) name, used with `--date`.
    #[arg(
        long,
        default_value = "default",
        value_name = "P",
        conflicts_with = "operation"
    )]
    pub property: String,

    /// Operation id.
    #[arg(long, value_name = "ID", allow_negative_numbers = true)]
    pub operation: Option<u64>,
}

/// Arguments of `eod history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Property (hotel) name.
    #[arg(long, default_value = "default", value_name = "P")]
    pub property: String,

    /// Maximum number of operations to list, at least 1.
    #[arg(long, default_value_t = 30, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub limit: u64,
}

/// Arguments of `eod events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Operation id.
    #[arg(long, value_name = "ID", allow_negative_numbers = true)]
    pub operation: u64,
}

/// The manual step transitions.
#[derive(Debug, Subcommand)]
pub enum StepCommand {
    /// Starts a step and prints its claim token, which `complete` and `fail` need.
    Start(StartArgs),

    /// Completes a running step; only the holder of its claim may.
    Complete(FinishArgs),

    /// Fails a running step with a reason; only the holder of its claim may.
    Fail(FailArgs),

    /// Skips an optional pending or failed step, recording a reason.
    Skip(SkipArgs),

    /// Returns a failed step to pending so that it can run again.
    Retry(StepArgs),
}

/// The step a transition applies to, and who applies it.
#[derive(Debug, Args)]
pub struct StepArgs {
    /// Operation id.
    #[arg(long, value_name = "ID", allow_negative_numbers = true)]
    pub operation: u64,

    /// Step order.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub order: u32,

    /// Actor recorded in events: a person, terminal or service [default: $USER, else
    /// $USERNAME, else the host name].
    #[arg(long, value_name = "A")]
    pub actor: Option<String>,

    /// Caller-chosen request id: repeating a call with the same id returns the first call's
    /// result instead of applying it again.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

/// Arguments of `eod step start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The step and the caller.
    #[command(flatten)]
    pub step: StepArgs,

    /// Lease of the claim, in seconds. After it ends, another caller may take the step over.
    #[arg(long, value_name = "N", default_value_t = default_lease_secs(), allow_negative_numbers = true)]
    pub lease_secs: u32,

    /// Starts the step although its operation's date is not the property's business date, for
    /// this reason, which the operation's events record as `date_override`.
    #[arg(long, value_name = "REASON")]
    pub override_date: Option<String>,
}

/// Arguments of `eod step complete`.
#[derive(Debug, Args)]
pub struct FinishArgs {
    /// The step and the caller.
    #[command(flatten)]
    pub step: StepArgs,

    /// Claim token printed by `eod step start`.
    #[arg(long, value_name = "TOKEN")]
    pub claim: String,
}

/// Arguments of `eod step fail`.
#[derive(Debug, Args)]
pub struct FailArgs {
    /// The step and the caller.
    #[command(flatten)]
    pub step: StepArgs,

    /// Claim token printed by `eod step start`.
    #[arg(long, value_name = "TOKEN")]
    pub claim: String,

    /// Error message, stored on the step as its last error.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// Arguments of `eod step skip`.
#[derive(Debug, Args)]
pub struct SkipArgs {
    /// The step and the caller.
    #[command(flatten)]
    pub step: StepArgs,

    /// Reason for the skip, stored on the step.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// Skips the step although its operation's date is not the property's business date, for
    /// this reason, which the operation's events record as `date_override`.
    #[arg(long, value_name = "REASON")]
    pub override_date: Option<String>,
}

/// The commands of `eod property`.
#[derive(Debug, Subcommand)]
pub enum PropertyCommand {
    /// Sets the property's business date: the date whose operation may start next. Operations
    /// of other dates then start only with `--override-date`. Prints the property's state.
    SetDate(SetDateArgs),

    /// Prints each property's business date, where it came from and when, and its operation in
    /// progress with its runner (reads only). `--property` selects one property.
    Show(ShowArgs),
}

/// Arguments of `eod property set-date`.
#[derive(Debug, Args)]
pub struct SetDateArgs {
    /// Property (hotel) name.
    #[arg(long, default_value = "default", value_name = "P")]
    pub property: String,

    /// The new business date, as YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: String,

    /// Actor recorded as the source of the date [default: $USER, else $USERNAME, else the host
    /// name].
    #[arg(long, value_name = "A")]
    pub actor: Option<String>,
}

/// Arguments of `eod property show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Shows only this property (hotel). Without it, every property with a business date or an
    /// operation in progress is listed.
    #[arg(long, value_name = "P")]
    pub property: Option<String>,
}

/// Arguments of `eod release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// Id of the operation in progress to release.
    #[arg(long, value_name = "ID", allow_negative_numbers = true)]
    pub operation: u64,

    /// Reason for the release, such as a terminal that is gone, recorded in the `released`
    /// event.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// Actor recorded in the event [default: $USER, else $USERNAME, else the host name].
    #[arg(long, value_name = "A")]
    pub actor: Option<String>,
}

/// Arguments of `eod watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Prints only the changes of this property (hotel).
    #[arg(long, value_name = "P")]
    pub property: Option<String>,

    /// Exits with code 0 after printing this many changes, at least 1. Without it, `eod watch`
    /// runs until it is interrupted.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub count: Option<u64>,
}
