//! Reading a CSV export of an SQL table of night-audit steps, for [`Store::import_batch`].
//!
//! [`parse_csv`] decodes the file, matches the header against the accepted column names, checks
//! every row, and groups the rows into operations and steps. Nothing here touches a store: the
//! result, an [`ImportBatch`], is written by [`Store::import_batch`] in one write transaction, or
//! tried with [`Store::dry_run_import`].
//!
//! The rules, in the order they apply:
//!
//! - **Columns** are named by the header line and matched case-insensitively, with spaces and
//!   hyphens read as `_`, against [`Field::spellings`]. Operation id, business date, step order,
//!   step name and status are required; property, step code, started, finished, error and actor
//!   are optional. Other columns are ignored and listed in the report.
//! - **Statuses** are read in the spellings of [`STATUS_SPELLINGS`]; any other value is an error
//!   naming the line.
//! - **Operations**: the rows of one property and business date become one operation. When they
//!   carry several source operation ids, the operations are merged and the merge is reported.
//!   One source operation id with rows for two dates is an error.
//! - **Duplicates**: several rows for one step order of one operation become one step. The
//!   most advanced status wins, in the order completed, skipped, failed, running, pending, and
//!   the first such row in file order on a tie. The step takes that row's times, actor and
//!   error. Every collapse is reported with its line numbers.
//! - **Conflicts**: rows of one step that give different names, or different codes, are a
//!   conflict. The import fails unless [`ImportOptions::on_conflict`] picks the name and code of
//!   the first or last of those rows in file order. The status still comes from the collapse.
//! - **Codes**: a step without a code in the file gets one from [`derive_code`], made unique
//!   within the operation with a suffix `_2`, `_3` and so on.
//!
//! [`Store::import_batch`]: crate::Store::import_batch
//! [`Store::dry_run_import`]: crate::Store::dry_run_import

mod code;
mod collapse;
mod columns;
mod decode;
mod rows;

use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

pub use code::derive_code;
pub use columns::Field;
pub use decode::Encoding;
pub use rows::{STATUS_SPELLINGS, parse_status};

use crate::model::StepStatus;

/// The plan name of every imported operation. Its identity is the imported steps' orders,
/// codes and required flags.
pub const IMPORTED_PLAN: &str = "imported";

/// The choice between rows of one step that give different names or codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Keep the name and code of the first of the rows, in file order.
    KeepFirst,
    /// Keep the name and code of the last of the rows, in file order.
    KeepLast,
}

/// Options of [`parse_csv`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The file's character encoding.
    pub encoding: Encoding,
    /// The property of rows without one: for a file without a property column, or an empty
    /// property cell.
    pub property: Option<String>,
    /// How to resolve rows of one step with different names; `None` rejects them.
    pub on_conflict: Option<OnConflict>,
    /// The name of the input in the report and the import events, usually the file's path.
    pub source: String,
}

/// A CSV file that cannot be imported: the line, and where known the column or byte offset, of
/// the first problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportError {
    /// The line, from 1 (the header is line 1). A record spanning lines is named by its first.
    pub line: Option<u64>,
    /// The column's header name as written in the file.
    pub column: Option<String>,
    /// The offset from the start of the file, in bytes from 0, of a byte that does not decode.
    pub byte_offset: Option<u64>,
    /// The problem and how to fix it.
    pub message: String,
}

impl ImportError {
    pub(crate) fn at_line(line: u64, message: String) -> ImportError {
        ImportError {
            line: Some(line),
            column: None,
            byte_offset: None,
            message,
        }
    }

    pub(crate) fn at_cell(line: u64, column: &str, message: String) -> ImportError {
        ImportError {
            line: Some(line),
            column: Some(column.to_owned()),
            byte_offset: None,
            message,
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = &self.message;
        match (self.line, &self.column, self.byte_offset) {
            (Some(line), Some(column), _) => write!(f, "line {line}, column `{column}`: {message}"),
            (Some(line), None, Some(offset)) => {
                write!(f, "line {line}, byte offset {offset}: {message}")
            }
            (Some(line), None, None) => write!(f, "line {line}: {message}"),
            (None, _, _) => f.write_str(message),
        }
    }
}

impl std::error::Error for ImportError {}

/// A remark about the input that does not stop the import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportWarning {
    /// The line it concerns.
    pub line: u64,
    /// The warning.
    pub message: String,
}

/// Several rows for one step, collapsed into one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collapsed {
    /// The property.
    pub property: String,
    /// The business date.
    pub business_date: Date,
    /// The step order.
    pub order: u32,
    /// The line of the row whose status was kept.
    pub kept_line: u64,
    /// The status kept.
    pub kept_status: StepStatus,
    /// The other rows, in file order.
    pub dropped: Vec<DroppedRow>,
}

/// A row whose status lost to another row of the same step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedRow {
    /// The row's line.
    pub line: u64,
    /// Its status.
    pub status: StepStatus,
}

/// Rows of one step with different names or codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The property.
    pub property: String,
    /// The business date.
    pub business_date: Date,
    /// The step order.
    pub order: u32,
    /// Every row of the step, in file order.
    pub rows: Vec<ConflictRow>,
    /// The line whose name and code were kept, or `None` when the conflict was not resolved.
    pub kept_line: Option<u64>,
}

impl Conflict {
    /// Describes the conflict for messages: the step and each row's name.
    pub fn describe(&self) -> String {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|row| match &row.code {
                Some(code) => format!("line {} `{}` (code `{code}`)", row.line, row.name),
                None => format!("line {} `{}`", row.line, row.name),
            })
            .collect();
        format!(
            "property `{}` on {}, order {}: {}",
            self.property,
            self.business_date,
            self.order,
            rows.join(", ")
        )
    }
}

/// One row of a [`Conflict`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictRow {
    /// The row's line.
    pub line: u64,
    /// The step name it gives.
    pub name: String,
    /// The step code it gives, if any.
    pub code: Option<String>,
}

/// Source operations of one property and business date, merged into one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merged {
    /// The property.
    pub property: String,
    /// The business date.
    pub business_date: Date,
    /// The source operation ids, in file order.
    pub source_ids: Vec<String>,
    /// The first line of each source operation id.
    pub lines: Vec<u64>,
}

/// The account of [`parse_csv`]: the rows read, merged, collapsed and resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The input's name, from [`ImportOptions::source`].
    pub source: String,
    /// The encoding the file was read in.
    pub encoding: Encoding,
    /// The number of data rows, the header not counted.
    pub rows_read: u64,
    /// The number of rows dropped because another row of the same step was kept.
    pub duplicates_collapsed: u64,
    /// Every collapse of several rows into one step.
    pub collapsed: Vec<Collapsed>,
    /// Every name or code conflict, with the row kept.
    pub conflicts: Vec<Conflict>,
    /// Every merge of several source operations into one operation.
    pub merged: Vec<Merged>,
    /// Warnings about the input, such as mojibake.
    pub warnings: Vec<ImportWarning>,
    /// Header names that matched no column, as written.
    pub ignored_columns: Vec<String>,
    /// Whether step codes were derived from names because the file has no code column.
    pub codes_derived: bool,
}

/// One step to import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedStep {
    /// The step order.
    pub order: u32,
    /// The step code: from the file, or derived from the name.
    pub code: String,
    /// Whether the code came from the file.
    #[serde(skip)]
    pub(crate) code_given: bool,
    /// The display name.
    pub name: String,
    /// Whether the step is required: every imported step is, except a skipped one, because
    /// eodstore lets only optional steps be skipped.
    pub required: bool,
    /// The status.
    pub status: StepStatus,
    /// When it started, from the file.
    pub started_at: Option<Timestamp>,
    /// When it finished, from the file.
    pub finished_at: Option<Timestamp>,
    /// The actor that ran it, from the file.
    pub actor: Option<String>,
    /// The error or skip reason, from the file, cut to 4096 bytes.
    pub error: Option<String>,
    /// The line of the row whose status was kept.
    pub line: u64,
    /// Every line of the step's rows, in file order.
    pub lines: Vec<u64>,
}

/// One operation to import: one property and business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedOperation {
    /// The property.
    pub property: String,
    /// The business date.
    pub business_date: Date,
    /// The source operation ids, in file order; more than one when operations were merged.
    pub source_ids: Vec<String>,
    /// The steps, in ascending order.
    pub steps: Vec<ImportedStep>,
}

/// A parsed CSV export: the operations to import, sorted by property and business date, and
/// the report of how the rows became them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportBatch {
    /// The operations.
    pub operations: Vec<ImportedOperation>,
    /// The report.
    pub report: ImportReport,
}

/// Parses a CSV export of an operations-and-steps table.
///
/// # Errors
///
/// Returns an [`ImportError`] for the first problem. A byte that does not decode is named by its
/// line and byte offset, and a missing or invalid value by its line and column. The other
/// problems are a header without a required column, a row with the wrong number of fields, a
/// source operation with two dates, a step code given twice, and unresolved name conflicts.
pub fn parse_csv(bytes: &[u8], options: &ImportOptions) -> Result<ImportBatch, ImportError> {
    let mut text = decode::decode(bytes, options.encoding)?;
    // The CSV reader counts lines at line feeds only, so a file that ends its lines with carriage
    // returns alone (old Mac tools) would report every error on line 1.
    if text.contains('\r') && !text.contains('\n') {
        text = text.replace('\r', "\n");
    }
    if text.trim().is_empty() {
        return Err(ImportError::at_line(
            1,
            "the file is empty; it needs a header line and at least one row".into(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|err| csv_error(&err))?.clone();
    let columns = columns::ColumnMap::from_header(&header)?;

    let mut report = ImportReport {
        source: options.source.clone(),
        encoding: options.encoding,
        rows_read: 0,
        duplicates_collapsed: 0,
        collapsed: Vec::new(),
        conflicts: Vec::new(),
        merged: Vec::new(),
        warnings: Vec::new(),
        ignored_columns: columns.ignored.clone(),
        codes_derived: !columns.has(Field::StepCode),
    };
    let mut row_reader = rows::RowReader::new(&columns, options.property.as_deref());
    let mut source_rows = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|err| csv_error(&err))?
    {
        let line = record.position().map_or(0, csv::Position::line);
        report.rows_read += 1;
        if let Some(warning) = mojibake_warning(&record, &header, line, options.encoding) {
            report.warnings.push(warning);
        }
        source_rows.push(row_reader.read(&record, line, &mut report.warnings)?);
    }
    if source_rows.is_empty() {
        return Err(ImportError::at_line(
            1,
            "the file has a header but no rows".into(),
        ));
    }
    let operations = collapse::build(&source_rows, options.on_conflict, &mut report)?;
    Ok(ImportBatch { operations, report })
}

/// Warns about the first cell of `record` that looks like UTF-8 decoded as a single-byte
/// encoding.
fn mojibake_warning(
    record: &csv::StringRecord,
    header: &csv::StringRecord,
    line: u64,
    encoding: Encoding,
) -> Option<ImportWarning> {
    record.iter().enumerate().find_map(|(position, value)| {
        let (garbled, meant) = decode::mojibake(value)?;
        let column = header.get(position).unwrap_or("?");
        let hint = match encoding {
            Encoding::Utf8 => {
                "the text was probably garbled before the export; correct it in the source \
                 table and export again"
                    .to_owned()
            }
            other => {
                format!("the file is probably UTF-8, not {other}: try again without `--encoding`")
            }
        };
        Some(ImportWarning {
            line,
            message: format!(
                "column `{column}` has `{value}`, which looks like UTF-8 read as a single-byte \
                 encoding (`{garbled}` is probably `{meant}`); {hint}"
            ),
        })
    })
}

/// Converts a CSV parser error, naming the line.
fn csv_error(err: &csv::Error) -> ImportError {
    let line = err.position().map(csv::Position::line);
    let message = match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "the row has {len} fields, but the header has {expected_len}; a value with a comma \
             or a line break must be quoted"
        ),
        _ => format!("the CSV does not parse: {err}"),
    };
    ImportError {
        line,
        column: None,
        byte_offset: None,
        message,
    }
}
