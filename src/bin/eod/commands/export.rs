//! `eod export` and the dump half of `eod import`: moving operations, steps and events out of
//! one file and into another.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use eodstore::{
    Dump, DumpError, DumpFilter, DumpImport, Error, OperationId, Store, StoreOptions,
    parse_business_date,
};
use serde::Serialize;

use super::{CliError, CliResult, Outcome, print};
use crate::cli::{ExportArgs, ExportFormat};

/// The largest dump file `eod import --dump` reads, 1 GiB. The whole dump is parsed in memory
/// and written in one transaction, so the limit bounds the memory an import takes.
const MAX_DUMP_BYTES: u64 = 1 << 30;

/// The CSV columns of `eod export --format csv`: the operation's, then the step's.
const CSV_HEADER: [&str; 19] = [
    "operation_id",
    "source_id",
    "property",
    "business_date",
    "plan",
    "operation_status",
    "operation_created_at",
    "operation_created_by",
    "operation_finished_at",
    "step_order",
    "step_code",
    "step_name",
    "required",
    "status",
    "attempts",
    "started_at",
    "finished_at",
    "actor",
    "error",
];

pub(super) fn export(db: &Path, json: bool, args: &ExportArgs) -> CliResult {
    if json && args.format == ExportFormat::Csv {
        return Err(Error::InvalidInput {
            what: "option",
            value: "--json".into(),
            expected: "no `--json` with `--format csv`; `eod export` writes JSON by default".into(),
        }
        .into());
    }
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
    if let Some(id) = args.operation {
        filter = filter.operation(OperationId(id));
    }

    let (options, bar) = super::ProgressBar::attach(StoreOptions::new().read_only(true));
    let store = Store::open_with(db, options)?;
    let dump = store.export(&filter)?;
    drop(bar);
    if dump.operations.is_empty() {
        eprintln!("no operations match; the export is empty");
    }
    let mut out = BufWriter::new(io::stdout().lock());
    let written = match args.format {
        ExportFormat::Json => out.write_all(dump.to_json()?.as_bytes()),
        ExportFormat::Csv => write_csv(&mut out, &dump),
    };
    match written.and_then(|()| out.flush()) {
        // A closed stdout (`eod export | head`) means the reader wanted no more.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(Outcome::Success),
        Err(err) => Err(CliError::Output(err)),
        Ok(()) => Ok(Outcome::Success),
    }
}

/// Writes one CSV row per step, with the operation's columns repeated, after a header row.
/// Records end in CRLF and fields are quoted where RFC 4180 requires it. Claim tokens and
/// output tails are left out, because CSV is for people; the JSON dump contains them.
fn write_csv(out: &mut impl Write, dump: &Dump) -> io::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    writer.write_record(CSV_HEADER)?;
    for dumped in &dump.operations {
        let operation = &dumped.operation;
        for step in &dumped.steps {
            let optional = |value: Option<String>| value.unwrap_or_default();
            let record: [String; CSV_HEADER.len()] = [
                operation.id.to_string(),
                dumped.source_id.clone().unwrap_or_default(),
                operation.property.clone(),
                operation.business_date.to_string(),
                operation.plan.clone(),
                operation.status.to_string(),
                operation.created_at.to_string(),
                operation.created_by.clone(),
                optional(operation.finished_at.map(|at| at.to_string())),
                step.order.to_string(),
                step.code.clone(),
                step.name.clone(),
                step.required.to_string(),
                step.status.to_string(),
                step.attempts.to_string(),
                optional(step.started_at.map(|at| at.to_string())),
                optional(step.finished_at.map(|at| at.to_string())),
                optional(step.actor.clone()),
                optional(step.last_error.clone()),
            ];
            writer.write_record(&record)?;
        }
    }
    writer.flush()
}

/// `eod import --dump --json` output.
#[derive(Serialize)]
struct ImportOut<'a> {
    path: &'a Path,
    dump: &'a Path,
    #[serde(flatten)]
    import: &'a DumpImport,
}

/// Imports the dump file at `path` into the database `db` for `eod import --dump`, creating
/// the database if it does not exist. The dump is read and checked before the database is
/// opened, so a bad dump creates and changes nothing.
pub(super) fn import_dump(db: &Path, json: bool, path: &Path) -> CliResult {
    let bytes = read_dump_file(path)?;
    let rejected = |err: DumpError| dump_error(path, err);
    let dump = Dump::from_json(&bytes).map_err(rejected)?;
    dump.check().map_err(rejected)?;

    let (options, bar) = super::ProgressBar::attach(StoreOptions::new().create(true));
    let store = Store::open_with(db, options)?;
    let import = store.import_dump(&dump).map_err(rejected)?;
    drop(bar);
    let out = ImportOut {
        path: db,
        dump: path,
        import: &import,
    };
    print(json, &out, |out| {
        writeln!(
            out,
            "imported `{}` into `{}`: {} operations created{}, {} already present and skipped, \
             {} steps and {} events written; the next operation id is {}",
            path.display(),
            db.display(),
            import.created.len(),
            id_list(&import.created),
            import.skipped.len(),
            import.steps,
            import.events,
            import.next_operation_id
        )
    })?;
    Ok(Outcome::Success)
}

/// Reads a dump file of at most [`MAX_DUMP_BYTES`].
fn read_dump_file(path: &Path) -> Result<Vec<u8>, Error> {
    super::read_input_file(
        path,
        "dump file",
        MAX_DUMP_BYTES,
        "export fewer operations with the filters of `eod export` and import each part",
    )
}

/// Turns a rejected dump into a rejected request (exit code 3) that names the file; a store
/// error stays as it is.
fn dump_error(path: &Path, err: DumpError) -> CliError {
    match err {
        DumpError::Store(err) => CliError::Store(err),
        other => CliError::Store(Error::InvalidInput {
            what: "dump file",
            value: path.display().to_string(),
            expected: other.to_string(),
        }),
    }
}

/// Returns ` (1, 2, 3)` for a short list of ids, ` (1, 2, 3, …)` for a long one, and nothing
/// for an empty one.
fn id_list(ids: &[OperationId]) -> String {
    const MAX_SHOWN: usize = 10;
    if ids.is_empty() {
        return String::new();
    }
    let mut listed: Vec<String> = ids
        .iter()
        .take(MAX_SHOWN)
        .map(ToString::to_string)
        .collect();
    if ids.len() > MAX_SHOWN {
        listed.push("…".into());
    }
    format!(" ({})", listed.join(", "))
}
