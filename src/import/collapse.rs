//! Grouping source rows into operations and steps: merging source operations of one day,
//! collapsing duplicate rows, resolving name conflicts and assigning step codes.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;

use super::code::{CodeSet, derive_code};
use super::rows::SourceRow;
use super::{
    Collapsed, Conflict, ConflictRow, DroppedRow, ImportError, ImportReport, ImportedOperation,
    ImportedStep, Merged, OnConflict,
};
use crate::model::StepStatus;
use crate::plan::{Plan, PlanStep};

/// The maximum number of conflicts that an error message lists one by one.
const MAX_LISTED_CONFLICTS: usize = 20;

/// Ranks statuses for collapsing: the most advanced status wins.
fn rank(status: StepStatus) -> u8 {
    match status {
        StepStatus::Completed => 4,
        StepStatus::Skipped => 3,
        StepStatus::Failed => 2,
        StepStatus::Running => 1,
        StepStatus::Pending => 0,
    }
}

/// The rows of one property and business date.
#[derive(Default)]
struct Day {
    /// Each source operation id, with the first line it appears on, in file order.
    sources: Vec<(String, u64)>,
    /// The ids in `sources`, for a lookup that stays fast when a day has thousands of them.
    known_sources: std::collections::HashSet<String>,
    /// Row indexes by step order, each list in file order.
    steps: BTreeMap<u32, Vec<usize>>,
}

/// Builds the operations to import from checked rows, recording what was merged, collapsed and
/// resolved in `report`.
///
/// # Errors
///
/// Returns an [`ImportError`] when one source operation has rows for two business dates, when
/// step names conflict and `on_conflict` is `None`, and when two steps of an operation have the
/// same code in the file.
pub(super) fn build(
    rows: &[SourceRow],
    on_conflict: Option<OnConflict>,
    report: &mut ImportReport,
) -> Result<Vec<ImportedOperation>, ImportError> {
    let days = group(rows)?;
    let mut operations = Vec::with_capacity(days.len());
    let mut unresolved = Vec::new();
    for ((property, business_date), day) in days {
        if day.sources.len() > 1 {
            report.merged.push(Merged {
                property: property.clone(),
                business_date,
                source_ids: day.sources.iter().map(|(id, _)| id.clone()).collect(),
                lines: day.sources.iter().map(|(_, line)| *line).collect(),
            });
        }
        let mut steps = Vec::with_capacity(day.steps.len());
        for (order, indexes) in &day.steps {
            let key_rows: Vec<&SourceRow> = indexes.iter().map(|&index| &rows[index]).collect();
            let identity = resolve_identity(
                &key_rows,
                on_conflict,
                (&property, business_date, *order),
                report,
                &mut unresolved,
            );
            let winner = collapse(&key_rows, (&property, business_date, *order), report);
            steps.push(step_from(winner, identity, &key_rows));
        }
        assign_codes(&mut steps, &property, business_date)?;
        check_plan(&steps, &property, business_date)?;
        operations.push(ImportedOperation {
            property,
            business_date,
            source_ids: day.sources.into_iter().map(|(id, _)| id).collect(),
            steps,
        });
    }
    if !unresolved.is_empty() {
        return Err(conflict_error(&unresolved));
    }
    Ok(operations)
}

/// Groups row indexes by property and business date, checking that each source operation has
/// one business date.
fn group(rows: &[SourceRow]) -> Result<BTreeMap<(String, Date), Day>, ImportError> {
    let mut days: BTreeMap<(String, Date), Day> = BTreeMap::new();
    let mut source_dates: HashMap<(&str, &str), (Date, u64)> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        let key = (row.property.as_str(), row.source_id.as_str());
        match source_dates.get(&key) {
            Some(&(date, first_line)) if date != row.business_date => {
                return Err(ImportError::at_line(
                    row.line,
                    format!(
                        "source operation `{}` of property `{}` has the business date {} here, \
                         but {date} on line {first_line}; one source operation closes one date",
                        row.source_id, row.property, row.business_date
                    ),
                ));
            }
            Some(_) => {}
            None => {
                source_dates.insert(key, (row.business_date, row.line));
            }
        }
        let day = days
            .entry((row.property.clone(), row.business_date))
            .or_default();
        if day.known_sources.insert(row.source_id.clone()) {
            day.sources.push((row.source_id.clone(), row.line));
        }
        day.steps.entry(row.order).or_default().push(index);
    }
    Ok(days)
}

/// Returns the row whose name and code the step takes: the only one, or the one `on_conflict`
/// picks when the rows disagree. An unresolved conflict is added to `unresolved`, and the first
/// row is returned so that the caller can go on collecting conflicts.
fn resolve_identity<'r>(
    rows: &[&'r SourceRow],
    on_conflict: Option<OnConflict>,
    (property, business_date, order): (&str, Date, u32),
    report: &mut ImportReport,
    unresolved: &mut Vec<Conflict>,
) -> &'r SourceRow {
    let first = rows[0];
    let differs = rows.iter().any(|row| row.name != first.name) || codes_differ(rows);
    if !differs {
        return first;
    }
    let kept = match on_conflict {
        None => None,
        Some(OnConflict::KeepFirst) => Some(first),
        Some(OnConflict::KeepLast) => rows.last().copied(),
    };
    let conflict = Conflict {
        property: property.to_owned(),
        business_date,
        order,
        rows: rows
            .iter()
            .map(|row| ConflictRow {
                line: row.line,
                name: row.name.clone(),
                code: row.code.clone(),
            })
            .collect(),
        kept_line: kept.map(|row| row.line),
    };
    match kept {
        Some(kept) => {
            report.conflicts.push(conflict);
            kept
        }
        None => {
            unresolved.push(conflict);
            first
        }
    }
}

/// Returns whether the rows give two different codes. Empty code cells agree with any code.
fn codes_differ(rows: &[&SourceRow]) -> bool {
    let mut codes = rows.iter().filter_map(|row| row.code.as_deref());
    let Some(first) = codes.next() else {
        return false;
    };
    codes.any(|code| code != first)
}

/// Returns the row whose status the step keeps: the most advanced status, the first such row
/// in file order on a tie. Records the collapse in `report` when there are several rows.
fn collapse<'r>(
    rows: &[&'r SourceRow],
    (property, business_date, order): (&str, Date, u32),
    report: &mut ImportReport,
) -> &'r SourceRow {
    let mut winner = rows[0];
    for row in &rows[1..] {
        if rank(row.status) > rank(winner.status) {
            winner = row;
        }
    }
    if rows.len() > 1 {
        report.duplicates_collapsed += rows.len() as u64 - 1;
        report.collapsed.push(Collapsed {
            property: property.to_owned(),
            business_date,
            order,
            kept_line: winner.line,
            kept_status: winner.status,
            dropped: rows
                .iter()
                .filter(|row| row.line != winner.line)
                .map(|row| DroppedRow {
                    line: row.line,
                    status: row.status,
                })
                .collect(),
        });
    }
    winner
}

/// Builds the step from the row that won the collapse and the row that gave its name.
fn step_from(winner: &SourceRow, identity: &SourceRow, rows: &[&SourceRow]) -> ImportedStep {
    // Without a conflict, one row may leave the code cell empty while another fills it. After a
    // conflict resolved by `--on-conflict`, the kept row's name and code go together, and an
    // empty code is derived from that name.
    let names_agree = rows.iter().all(|row| row.name == identity.name);
    let code = identity.code.clone().or_else(|| {
        names_agree
            .then(|| rows.iter().find_map(|row| row.code.clone()))
            .flatten()
    });
    ImportedStep {
        order: winner.order,
        code_given: code.is_some(),
        code: code.unwrap_or_default(),
        name: identity.name.clone(),
        required: winner.status != StepStatus::Skipped,
        status: winner.status,
        started_at: winner.started_at,
        finished_at: winner.finished_at,
        actor: winner.actor.clone(),
        error: winner.error.clone(),
        line: winner.line,
        lines: rows.iter().map(|row| row.line).collect(),
    }
}

/// Gives each step without a code in the file a code derived from its name, unique within the
/// operation. Codes from the file are reserved first.
fn assign_codes(
    steps: &mut [ImportedStep],
    property: &str,
    business_date: Date,
) -> Result<(), ImportError> {
    let mut codes = CodeSet::default();
    let mut given_at: HashMap<String, (u32, u64)> = HashMap::new();
    for step in steps.iter().filter(|step| step.code_given) {
        if !codes.reserve(&step.code) {
            let (order, line) = given_at[&step.code];
            return Err(ImportError::at_line(
                step.line,
                format!(
                    "step code `{}` of order {} is also the code of order {order} (line {line}) \
                     of property `{property}` on {business_date}; codes must be unique within an \
                     operation",
                    step.code, step.order
                ),
            ));
        }
        given_at.insert(step.code.clone(), (step.order, step.line));
    }
    for step in steps.iter_mut().filter(|step| !step.code_given) {
        step.code = codes.unique(derive_code(&step.name, step.order));
    }
    Ok(())
}

/// Checks the operation's steps against the rules of a plan, which the store enforces for
/// every operation (at most 1000 steps among them).
fn check_plan(
    steps: &[ImportedStep],
    property: &str,
    business_date: Date,
) -> Result<(), ImportError> {
    let plan_steps = steps
        .iter()
        .map(|step| PlanStep {
            order: step.order,
            code: step.code.clone(),
            name: step.name.clone(),
            required: step.required,
            command: None,
            timeout_seconds: None,
            schedule: None,
            retry: None,
        })
        .collect();
    Plan::new(super::IMPORTED_PLAN, plan_steps).map_err(|err| {
        ImportError::at_line(
            steps.first().map_or(1, |step| step.line),
            format!(
                "the steps of property `{property}` on {business_date} do not form a plan: {err}"
            ),
        )
    })?;
    Ok(())
}

/// Builds the error for name conflicts that no `--on-conflict` resolved.
fn conflict_error(conflicts: &[Conflict]) -> ImportError {
    let listed: Vec<String> = conflicts
        .iter()
        .take(MAX_LISTED_CONFLICTS)
        .map(Conflict::describe)
        .collect();
    let more = conflicts.len().saturating_sub(MAX_LISTED_CONFLICTS);
    let more = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    let steps = match conflicts.len() {
        1 => "1 step".to_owned(),
        count => format!("{count} steps"),
    };
    ImportError::at_line(
        conflicts[0].rows[0].line,
        format!(
            "the rows of {steps} give different names or codes: {}{more}; choose the name of \
             the first or last row in file order with `--on-conflict keep-first` or \
             `--on-conflict keep-last`",
            listed.join("; ")
        ),
    )
}
