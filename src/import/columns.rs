//! The columns of a CSV export, matched by their header names.

use std::fmt;

use serde::Serialize;

use super::ImportError;

/// A column that the import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The source system's id of the operation (required).
    OperationId,
    /// The business date, as `YYYY-MM-DD` (required).
    BusinessDate,
    /// The step's order (required).
    StepOrder,
    /// The step's display name (required).
    StepName,
    /// The step's status (required).
    Status,
    /// The property (hotel).
    Property,
    /// The step's code.
    StepCode,
    /// When the step started.
    Started,
    /// When the step finished.
    Finished,
    /// The step's error message, or the reason of a skip.
    Error,
    /// The actor that ran the step.
    Actor,
}

impl Field {
    /// Every field, required ones first.
    pub const ALL: [Field; 11] = [
        Field::OperationId,
        Field::BusinessDate,
        Field::StepOrder,
        Field::StepName,
        Field::Status,
        Field::Property,
        Field::StepCode,
        Field::Started,
        Field::Finished,
        Field::Error,
        Field::Actor,
    ];

    /// Returns the header names accepted for this field, after lowercasing and turning spaces
    /// and hyphens into underscores. The first is the name used in messages.
    pub fn spellings(self) -> &'static [&'static str] {
        match self {
            Field::OperationId => &[
                "operation_id",
                "operation",
                "op_id",
                "eod_id",
                "eod_operation_id",
                "audit_id",
            ],
            Field::BusinessDate => &[
                "business_date",
                "date",
                "business_day",
                "audit_date",
                "eod_date",
            ],
            Field::StepOrder => &[
                "step_order",
                "order",
                "step_no",
                "step_number",
                "sequence",
                "seq",
                "position",
            ],
            Field::StepName => &["step_name", "name", "step", "step_title", "title"],
            Field::Status => &["status", "step_status", "state"],
            Field::Property => &[
                "property",
                "property_code",
                "property_id",
                "hotel",
                "hotel_code",
                "hotel_id",
            ],
            Field::StepCode => &["step_code", "code"],
            Field::Started => &["started_at", "started", "start_time", "started_on"],
            Field::Finished => &[
                "finished_at",
                "finished",
                "end_time",
                "ended_at",
                "completed_at",
                "finished_on",
            ],
            Field::Error => &["error", "last_error", "error_message", "message", "reason"],
            Field::Actor => &[
                "actor",
                "user",
                "username",
                "user_name",
                "run_by",
                "operator",
                "performed_by",
            ],
        }
    }

    /// Returns the name used in messages, such as `step_order`.
    pub fn name(self) -> &'static str {
        self.spellings()[0]
    }

    /// Returns whether every file must have this column.
    pub fn is_required(self) -> bool {
        matches!(
            self,
            Field::OperationId
                | Field::BusinessDate
                | Field::StepOrder
                | Field::StepName
                | Field::Status
        )
    }

    fn index(self) -> usize {
        Field::ALL
            .iter()
            .position(|&field| field == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Normalizes a header name or a status for matching: trimmed, lowercase, with spaces and
/// hyphens turned into underscores.
pub(super) fn normalize(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

/// The position of each field in a record, from the header.
#[derive(Debug, Clone)]
pub(super) struct ColumnMap {
    /// The position of each field of [`Field::ALL`], or `None` when the file lacks it.
    positions: [Option<usize>; Field::ALL.len()],
    /// The header names as written in the file, by position.
    headers: Vec<String>,
    /// Header names that matched no field, as written.
    pub(super) ignored: Vec<String>,
}

impl ColumnMap {
    /// Matches a header line against the accepted spellings.
    ///
    /// # Errors
    ///
    /// Returns an [`ImportError`] for line 1 when a required column is missing or two columns
    /// name one field.
    pub(super) fn from_header(header: &csv::StringRecord) -> Result<ColumnMap, ImportError> {
        let mut positions = [None; Field::ALL.len()];
        let mut ignored = Vec::new();
        let headers: Vec<String> = header.iter().map(str::to_owned).collect();
        for (position, name) in headers.iter().enumerate() {
            let normalized = normalize(name);
            let field = Field::ALL
                .iter()
                .copied()
                .find(|field| field.spellings().contains(&normalized.as_str()));
            let Some(field) = field else {
                ignored.push(name.clone());
                continue;
            };
            if let Some(earlier) = positions[field.index()] {
                return Err(ImportError::at_line(
                    1,
                    format!(
                        "the columns `{}` and `{name}` both name the {} column; keep one of them",
                        headers[earlier],
                        field.name()
                    ),
                ));
            }
            positions[field.index()] = Some(position);
        }
        let missing: Vec<Field> = Field::ALL
            .iter()
            .copied()
            .filter(|field| field.is_required() && positions[field.index()].is_none())
            .collect();
        if !missing.is_empty() {
            let expected: Vec<String> = missing
                .iter()
                .map(|field| {
                    format!(
                        "{} (or {})",
                        field.name(),
                        field.spellings()[1..].join(", ")
                    )
                })
                .collect();
            return Err(ImportError::at_line(
                1,
                format!(
                    "the header has no column for {}; the first line must name the columns, as \
                     `\\copy (...) to 'FILE' csv header` writes it",
                    expected.join("; ")
                ),
            ));
        }
        Ok(ColumnMap {
            positions,
            headers,
            ignored,
        })
    }

    /// Returns whether the file has a column for `field`.
    pub(super) fn has(&self, field: Field) -> bool {
        self.positions[field.index()].is_some()
    }

    /// Returns the header name of `field`'s column as written in the file, or its standard name.
    pub(super) fn header(&self, field: Field) -> &str {
        self.positions[field.index()]
            .and_then(|position| self.headers.get(position))
            .map_or(field.name(), String::as_str)
    }

    /// Returns the trimmed value of `field` in `record`, or `None` when the file has no such
    /// column or the cell is empty.
    pub(super) fn value<'r>(&self, record: &'r csv::StringRecord, field: Field) -> Option<&'r str> {
        let position = self.positions[field.index()]?;
        let value = record.get(position)?.trim();
        (!value.is_empty()).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_case_insensitively() {
        let header = csv::StringRecord::from(vec![
            "Operation ID",
            "BUSINESS_DATE",
            "Order",
            "step-name",
            "Status",
            "notes",
        ]);
        let map = ColumnMap::from_header(&header).unwrap();
        assert!(map.has(Field::StepOrder));
        assert!(!map.has(Field::Property));
        assert_eq!(map.header(Field::OperationId), "Operation ID");
        assert_eq!(map.ignored, ["notes"]);
    }

    #[test]
    fn header_rejects_two_columns_for_one_field() {
        let header = csv::StringRecord::from(vec![
            "operation_id",
            "date",
            "order",
            "step_order",
            "name",
            "status",
        ]);
        let err = ColumnMap::from_header(&header).unwrap_err();
        assert!(err.message.contains("`order` and `step_order`"), "{err}");
    }

    #[test]
    fn header_names_missing_required_column() {
        let header = csv::StringRecord::from(vec!["operation_id", "date", "name", "status"]);
        let err = ColumnMap::from_header(&header).unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.message.contains("no column for step_order"), "{err}");
    }
}
