//! One CSV record turned into a checked source row: statuses, dates, orders and times.

use jiff::Timestamp;
use jiff::civil::Date;

use super::columns::{ColumnMap, Field, normalize};
use super::{ImportError, ImportWarning};
use crate::model::{StepStatus, parse_business_date};
use crate::plan::{MAX_CODE_LEN, MAX_NAME_CHARS};
use crate::store::{MAX_MESSAGE, MAX_PROPERTY_CHARS, check_text, head};

/// The status values accepted for each status, after lowercasing and turning spaces and hyphens
/// into underscores. The first is eodstore's own name.
pub const STATUS_SPELLINGS: [(StepStatus, &[&str]); 5] = [
    (
        StepStatus::Pending,
        &["pending", "new", "queued", "waiting", "not_started", "todo"],
    ),
    (
        StepStatus::Running,
        &["running", "in_progress", "started", "processing", "active"],
    ),
    (
        StepStatus::Completed,
        &[
            "completed",
            "complete",
            "done",
            "success",
            "succeeded",
            "ok",
        ],
    ),
    (
        StepStatus::Failed,
        &["failed", "failure", "error", "errored"],
    ),
    (StepStatus::Skipped, &["skipped", "skip", "bypassed"]),
];

/// Parses a status value in any accepted spelling, or returns `None`.
pub fn parse_status(text: &str) -> Option<StepStatus> {
    let normalized = normalize(text);
    STATUS_SPELLINGS
        .iter()
        .find(|(_, spellings)| spellings.contains(&normalized.as_str()))
        .map(|(status, _)| *status)
}

/// One row of the export, checked.
#[derive(Debug, Clone)]
pub(super) struct SourceRow {
    /// The line the record starts on, from 1 (the header is line 1).
    pub(super) line: u64,
    pub(super) source_id: String,
    pub(super) property: String,
    pub(super) business_date: Date,
    pub(super) order: u32,
    pub(super) name: String,
    pub(super) code: Option<String>,
    pub(super) status: StepStatus,
    pub(super) started_at: Option<Timestamp>,
    pub(super) finished_at: Option<Timestamp>,
    pub(super) error: Option<String>,
    pub(super) actor: Option<String>,
}

/// Reads records into rows, one at a time, remembering what it has warned about once.
pub(super) struct RowReader<'a> {
    pub(super) columns: &'a ColumnMap,
    pub(super) default_property: Option<&'a str>,
    /// Whether a time without a UTC offset was warned about already.
    warned_local_time: bool,
}

impl<'a> RowReader<'a> {
    pub(super) fn new(columns: &'a ColumnMap, default_property: Option<&'a str>) -> RowReader<'a> {
        RowReader {
            columns,
            default_property,
            warned_local_time: false,
        }
    }

    /// Checks one record that starts on `line`.
    ///
    /// # Errors
    ///
    /// Returns an [`ImportError`] naming the line and the column of the first invalid or
    /// missing value.
    pub(super) fn read(
        &mut self,
        record: &csv::StringRecord,
        line: u64,
        warnings: &mut Vec<ImportWarning>,
    ) -> Result<SourceRow, ImportError> {
        let columns = self.columns;
        let cell_error = |field: Field, message: String| {
            ImportError::at_cell(line, columns.header(field), message)
        };
        let required = |field: Field| {
            columns.value(record, field).ok_or_else(|| {
                cell_error(
                    field,
                    format!("the value is empty; every row needs its {}", field.name()),
                )
            })
        };
        let text = |field: Field, value: &str, max_chars: usize| {
            check_text("value", value, max_chars).map_err(|err| {
                let reason = match err {
                    crate::Error::InvalidInput { expected, .. } => expected,
                    other => other.to_string(),
                };
                cell_error(
                    field,
                    format!("invalid {} `{value}`: {reason}", field.name()),
                )
            })
        };

        let source_id = required(Field::OperationId)?;
        text(Field::OperationId, source_id, 200)?;

        let property = self.property(record, line)?;
        text(Field::Property, property, MAX_PROPERTY_CHARS)?;

        let date_text = required(Field::BusinessDate)?;
        let business_date = parse_business_date(date_text)
            .map_err(|err| cell_error(Field::BusinessDate, err.to_string()))?;

        let order_text = required(Field::StepOrder)?;
        let order = order_text.parse::<u32>().map_err(|_| {
            cell_error(
                Field::StepOrder,
                format!(
                    "invalid step order `{order_text}`: expected a whole number from 0 to {}",
                    u32::MAX
                ),
            )
        })?;

        let name = required(Field::StepName)?;
        text(Field::StepName, name, MAX_NAME_CHARS)?;

        let code = columns.value(record, Field::StepCode);
        if let Some(code) = code
            && !code_is_valid(code)
        {
            return Err(cell_error(Field::StepCode, invalid_code(code)));
        }

        let status_text = required(Field::Status)?;
        let status = parse_status(status_text).ok_or_else(|| {
            cell_error(
                Field::Status,
                format!(
                    "unknown status `{status_text}`: accepted are {}",
                    accepted_statuses()
                ),
            )
        })?;

        let started_at = self.time(record, Field::Started, line, warnings)?;
        let finished_at = self.time(record, Field::Finished, line, warnings)?;

        // An old system's error text may span lines; other control characters (a NUL, a
        // terminal escape) are replaced, so that `eod status` never prints them raw.
        let error = columns.value(record, Field::Error).map(|error| {
            head(error, MAX_MESSAGE)
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\n' && c != '\t' {
                        char::REPLACEMENT_CHARACTER
                    } else {
                        c
                    }
                })
                .collect::<String>()
        });
        let actor = columns.value(record, Field::Actor);
        if let Some(actor) = actor {
            text(Field::Actor, actor, 200)?;
        }

        Ok(SourceRow {
            line,
            source_id: source_id.to_owned(),
            property: property.to_owned(),
            business_date,
            order,
            name: name.to_owned(),
            code: code.map(str::to_owned),
            status,
            started_at,
            finished_at,
            error,
            actor: actor.map(str::to_owned),
        })
    }

    /// Returns the row's property: its property cell, else the default from `--property`.
    fn property<'r>(&self, record: &'r csv::StringRecord, line: u64) -> Result<&'r str, ImportError>
    where
        'a: 'r,
    {
        let columns = self.columns;
        match columns
            .value(record, Field::Property)
            .or(self.default_property)
        {
            Some(property) => Ok(property),
            None if columns.has(Field::Property) => Err(ImportError::at_cell(
                line,
                columns.header(Field::Property),
                "the value is empty; fill it in, or give `--property` for rows without one".into(),
            )),
            None => Err(ImportError::at_line(
                line,
                "the file has no property column; give the property with `--property`".into(),
            )),
        }
    }

    /// Parses a time cell: RFC 3339 with an offset (`2024-01-05T23:10:00Z`), the form that
    /// `psql` writes for a `timestamptz` (`2024-01-05 23:10:00.5+03`), or a civil time without
    /// an offset, which is read as UTC.
    fn time(
        &mut self,
        record: &csv::StringRecord,
        field: Field,
        line: u64,
        warnings: &mut Vec<ImportWarning>,
    ) -> Result<Option<Timestamp>, ImportError> {
        let Some(text) = self.columns.value(record, field) else {
            return Ok(None);
        };
        if let Ok(timestamp) = text.parse::<Timestamp>() {
            return Ok(Some(timestamp));
        }
        let utc = text
            .parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|civil| jiff::tz::TimeZone::UTC.to_timestamp(civil).ok());
        let Some(utc) = utc else {
            return Err(ImportError::at_cell(
                line,
                self.columns.header(field),
                format!(
                    "invalid time `{text}`: expected a time such as 2024-01-05T23:10:00Z or \
                     2024-01-05 23:10:00+03"
                ),
            ));
        };
        if !self.warned_local_time {
            self.warned_local_time = true;
            warnings.push(ImportWarning {
                line,
                message: format!(
                    "column `{}` has the time `{text}` without a UTC offset; such times are read \
                     as UTC (this warning is given once per file)",
                    self.columns.header(field)
                ),
            });
        }
        Ok(Some(utc))
    }
}

/// Lists the accepted status spellings for messages.
fn accepted_statuses() -> String {
    STATUS_SPELLINGS
        .iter()
        .map(|(status, spellings)| format!("{} for {status}", spellings.join("/")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn invalid_code(code: &str) -> String {
    format!(
        "invalid step code `{code}`: use 1 to {MAX_CODE_LEN} ASCII letters, digits, `_`, `-` or \
         `.`, or leave the cell empty to derive the code from the name"
    )
}

/// Returns whether `code` follows the plan rules for step codes.
pub(super) fn code_is_valid(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_in_usual_spellings() {
        for (text, status) in [
            ("PENDING", StepStatus::Pending),
            ("pending", StepStatus::Pending),
            ("completed", StepStatus::Completed),
            ("COMPLETED", StepStatus::Completed),
            ("done", StepStatus::Completed),
            ("failed", StepStatus::Failed),
            ("skipped", StepStatus::Skipped),
            ("in_progress", StepStatus::Running),
            ("In Progress", StepStatus::Running),
            ("running", StepStatus::Running),
        ] {
            assert_eq!(parse_status(text), Some(status), "{text}");
        }
        assert_eq!(parse_status("finito"), None);
    }

    #[test]
    fn every_spelling_belongs_to_one_status() {
        let mut seen = std::collections::HashSet::new();
        for (_, spellings) in STATUS_SPELLINGS {
            for spelling in spellings {
                assert!(seen.insert(*spelling), "{spelling} is listed twice");
            }
        }
    }
}
