//! Plans: which steps an operation has, the built-in standard plan, and plan files in TOML.
//!
//! A plan file looks like this:
//!
//! ```toml
//! name = "small-hotel"
//!
//! [[steps]]
//! order = 1
//! code = "pre_audit_checks"
//! name = "Ön Denetim Kontrolleri"
//! command = "./checks.sh"        # optional: `eod run` runs it through `sh -c`
//! timeout_seconds = 600          # optional: `eod run` stops the command after this long
//!
//! retry = { max_attempts = 3, delay_seconds = 300, backoff = 2.0 }   # optional
//!
//! [[steps]]
//! order = 2
//! code = "reports"
//! name = "Raporlar"
//! required = false               # optional, default true
//! schedule = { weekdays = ["mon", "thu"] }   # optional, default every day
//! ```
//!
//! See [`crate::schedule`] for schedules and retry policies.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::PlanIdentityStep;
use crate::schedule::{RetryPolicy, Schedule};

/// The maximum length of a step code, in bytes.
pub const MAX_CODE_LEN: usize = 64;
/// The maximum length of a plan or step name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The maximum number of steps in a plan. It keeps every operation record well below the
/// record size limit of the encoding.
pub const MAX_STEPS: usize = 1000;
/// The largest plan file read, in bytes.
pub const MAX_PLAN_FILE_BYTES: u64 = 1 << 20;

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    /// The step's position; steps run in ascending order, and orders need not be contiguous.
    pub order: u32,
    /// The stable code: ASCII letters, digits, `_`, `-` and `.`, at most [`MAX_CODE_LEN`] bytes.
    pub code: String,
    /// The display name: any UTF-8 text, stored exactly as given.
    pub name: String,
    /// Whether the step must complete; a person may skip only optional steps.
    #[serde(default = "default_required")]
    pub required: bool,
    /// A shell command that `eod run` runs for this step; a step without one is manual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// How long `eod run` lets the command run before stopping it and failing the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// The days the step is due; `None` is every day. On other dates it is seeded as skipped
    /// with the reason [`NOT_SCHEDULED`](crate::schedule::NOT_SCHEDULED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// The retry policy the runner applies after a failure. `None` is one attempt per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

fn default_required() -> bool {
    true
}

/// An ordered list of steps that an operation is seeded with.
///
/// Construct one with [`Plan::standard`], [`Plan::from_toml`], [`Plan::from_file`] or
/// [`Plan::new`]; each validates, so a `Plan` value is always well formed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    name: String,
    steps: Vec<PlanStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    name: String,
    steps: Vec<PlanStep>,
}

impl Plan {
    /// Builds a plan from its parts, sorting the steps by order.
    ///
    /// # Errors
    ///
    /// Returns [`Error::InvalidPlan`] when the plan has no steps, an empty or overlong name, two
    /// steps at one order or with one code, or a step with an empty or malformed code or name.
    pub fn new(name: impl Into<String>, mut steps: Vec<PlanStep>) -> Result<Plan> {
        let name = name.into();
        validate(&name, &steps)?;
        steps.sort_by_key(|step| step.order);
        Ok(Plan { name, steps })
    }

    /// Returns the built-in plan of a typical hotel night audit.
    ///
    /// | order | code | required | why |
    /// |---|---|---|---|
    /// | 1 | `pre_audit_checks` | yes | the audit must not start on an inconsistent day |
    /// | 2 | `no_shows` | yes | unarrived guaranteed reservations are charged or cancelled |
    /// | 3 | `departures_check` | no | an advisory list of due-outs still in house |
    /// | 4 | `room_rate_check` | no | an advisory review of rate overrides |
    /// | 5 | `post_room_charges` | yes | room and tax revenue for the day is posted |
    /// | 6 | `folio_balance` | yes | the day's ledgers must balance before the roll |
    /// | 7 | `cashier_close` | no | many properties close cashiers at shift end instead |
    /// | 8 | `reports` | no | reports can be produced again later |
    /// | 9 | `backup` | no | many properties back up by other means |
    /// | 10 | `roll_business_date` | yes | closes the day |
    ///
    /// The standard plan has no commands: every step is run by a handler or by a person.
    pub fn standard() -> Plan {
        const STEPS: [(&str, &str, bool); 10] = [
            ("pre_audit_checks", "Pre-audit checks", true),
            ("no_shows", "No-show processing", true),
            ("departures_check", "Departures check", false),
            ("room_rate_check", "Room rate verification", false),
            ("post_room_charges", "Room and tax posting", true),
            ("folio_balance", "Folio balancing", true),
            ("cashier_close", "Cashier close", false),
            ("reports", "Reports", false),
            ("backup", "Backup", false),
            ("roll_business_date", "Business date roll", true),
        ];
        let steps = (1u32..)
            .zip(STEPS)
            .map(|(order, (code, name, required))| PlanStep {
                order,
                code: code.into(),
                name: name.into(),
                required,
                command: None,
                timeout_seconds: None,
                schedule: None,
                retry: None,
            })
            .collect();
        Plan {
            name: "standard".into(),
            steps,
        }
    }

    /// Parses a plan from TOML text; `source` names the text in errors (usually its path).
    ///
    /// # Errors
    ///
    /// Returns [`Error::PlanFile`] when the text is not valid TOML or lacks a field (the message
    /// names the line and the entry), and [`Error::InvalidPlan`] as [`Plan::new`] does.
    pub fn from_toml(text: &str, source: &str) -> Result<Plan> {
        let file: PlanFile = toml::from_str(text).map_err(|err| Error::PlanFile {
            path: source.into(),
            problem: err.to_string().trim_end().replace('\n', " "),
        })?;
        Plan::new(file.name, file.steps).map_err(|err| match err {
            Error::InvalidPlan {
                plan,
                entry,
                problem,
            } => Error::InvalidPlan {
                plan: format!("{plan}` in `{source}"),
                entry,
                problem,
            },
            other => other,
        })
    }

    /// Reads and parses a plan file.
    ///
    /// # Errors
    ///
    /// Returns [`Error::PlanFile`] when the file cannot be read, and the errors of
    /// [`Plan::from_toml`].
    pub fn from_file(path: &Path) -> Result<Plan> {
        let problem = |problem: String| Error::PlanFile {
            path: path.to_owned(),
            problem,
        };
        let metadata = std::fs::metadata(path).map_err(|err| {
            problem(format!(
                "{err}; check the path, or pass `standard` for the built-in plan"
            ))
        })?;
        if !metadata.is_file() {
            return Err(problem(
                "it is not a regular file; pass a TOML plan file".into(),
            ));
        }
        if metadata.len() > MAX_PLAN_FILE_BYTES {
            return Err(problem(format!(
                "it has {} bytes, more than the {MAX_PLAN_FILE_BYTES} bytes a plan file may have",
                metadata.len()
            )));
        }
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_PLAN_FILE_BYTES + 1).read_to_string(&mut text))
            .map_err(|err| problem(err.to_string()))?;
        if text.len() as u64 > MAX_PLAN_FILE_BYTES {
            return Err(problem(format!(
                "it grew past the {MAX_PLAN_FILE_BYTES} bytes a plan file may have while it was read"
            )));
        }
        Plan::from_toml(&text, &path.display().to_string())
    }

    /// Returns the plan's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the steps in ascending order.
    pub fn steps(&self) -> &[PlanStep] {
        &self.steps
    }

    /// Returns the step with this code.
    pub fn step(&self, code: &str) -> Option<&PlanStep> {
        self.steps.iter().find(|step| step.code == code)
    }

    /// Returns the fingerprint of the plan's identity, as
    /// [`Operation::plan_fingerprint`](crate::Operation::plan_fingerprint) gives it for the
    /// operations seeded with it.
    pub fn fingerprint(&self) -> String {
        crate::model::plan_fingerprint(&self.identity())
    }

    /// Returns what identifies the plan to an operation: orders, codes and required flags.
    pub fn identity(&self) -> Vec<PlanIdentityStep> {
        self.steps
            .iter()
            .map(|step| PlanIdentityStep {
                order: step.order,
                code: step.code.clone(),
                required: step.required,
            })
            .collect()
    }
}

/// Describes the first difference between a stored plan identity and a given one, or returns
/// `None` when they are the same.
pub(crate) fn first_difference(
    stored: &[PlanIdentityStep],
    given: &[PlanIdentityStep],
) -> Option<String> {
    let describe = |step: &PlanIdentityStep| {
        let kind = if step.required {
            "required"
        } else {
            "optional"
        };
        format!("step `{}` ({kind})", step.code)
    };
    for index in 0..stored.len().max(given.len()) {
        match (stored.get(index), given.get(index)) {
            (Some(old), Some(new)) if old == new => {}
            (Some(old), Some(new)) if old.order != new.order => {
                let (lower, only_in) = if old.order < new.order {
                    (old, "the stored plan")
                } else {
                    (new, "the given plan")
                };
                return Some(format!(
                    "only {only_in} has order {} ({})",
                    lower.order,
                    describe(lower)
                ));
            }
            (Some(old), Some(new)) if old.code != new.code => {
                return Some(format!(
                    "at order {} the stored code is `{}`, the given code is `{}`",
                    old.order, old.code, new.code
                ));
            }
            (Some(old), Some(_)) => {
                let (was, now) = if old.required {
                    ("required", "optional")
                } else {
                    ("optional", "required")
                };
                return Some(format!(
                    "at order {} step `{}` is {was} in the stored plan, {now} in the given one",
                    old.order, old.code
                ));
            }
            (Some(old), None) => {
                return Some(format!(
                    "only the stored plan has order {} ({})",
                    old.order,
                    describe(old)
                ));
            }
            (None, Some(new)) => {
                return Some(format!(
                    "only the given plan has order {} ({})",
                    new.order,
                    describe(new)
                ));
            }
            (None, None) => break,
        }
    }
    None
}

/// Returns whether a plan or step name is acceptable: not blank, at most [`MAX_NAME_CHARS`]
/// characters, and without control characters, which would break tables and logs.
fn name_ok(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.chars().any(char::is_control)
}

fn validate(name: &str, steps: &[PlanStep]) -> Result<()> {
    let invalid = |entry: String, problem: String| Error::InvalidPlan {
        plan: name.to_owned(),
        entry,
        problem,
    };
    if !name_ok(name) {
        return Err(invalid(
            "name".into(),
            format!(
                "the plan name must be 1 to {MAX_NAME_CHARS} characters, not blank, without \
                 control characters"
            ),
        ));
    }
    if steps.is_empty() {
        return Err(invalid(
            "steps".into(),
            "a plan needs at least one step".into(),
        ));
    }
    if steps.len() > MAX_STEPS {
        return Err(invalid(
            "steps".into(),
            format!(
                "a plan may have at most {MAX_STEPS} steps, and this one has {}",
                steps.len()
            ),
        ));
    }
    let mut orders = HashSet::new();
    let mut codes = HashSet::new();
    for (index, step) in steps.iter().enumerate() {
        let entry = format!("step {} (order {})", index + 1, step.order);
        let code_ok = !step.code.is_empty()
            && step.code.len() <= MAX_CODE_LEN
            && step
                .code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !code_ok {
            return Err(invalid(
                entry,
                format!(
                    "code `{}` is invalid: use 1 to {MAX_CODE_LEN} ASCII letters, digits, `_`, `-` or `.`",
                    step.code
                ),
            ));
        }
        if !name_ok(&step.name) {
            return Err(invalid(
                entry,
                format!(
                    "the name of `{}` must be 1 to {MAX_NAME_CHARS} characters, not blank, \
                     without control characters",
                    step.code
                ),
            ));
        }
        if !orders.insert(step.order) {
            return Err(invalid(
                entry,
                format!(
                    "order {} is used by more than one step; give each step its own order",
                    step.order
                ),
            ));
        }
        if !codes.insert(step.code.as_str()) {
            return Err(invalid(
                entry,
                format!("code `{}` is used by more than one step", step.code),
            ));
        }
        if step.timeout_seconds == Some(0) {
            return Err(invalid(entry, "timeout_seconds must be at least 1".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::many_single_char_names)]
mod tests {
    use super::*;

    fn step(order: u32, code: &str) -> PlanStep {
        PlanStep {
            order,
            code: code.into(),
            name: format!("Adım {order}"),
            required: true,
            command: None,
            timeout_seconds: None,
            schedule: None,
            retry: None,
        }
    }

    #[test]
    fn standard_plan_has_expected_codes() {
        let plan = Plan::standard();
        let codes: Vec<_> = plan.steps().iter().map(|s| s.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "pre_audit_checks",
                "no_shows",
                "departures_check",
                "room_rate_check",
                "post_room_charges",
                "folio_balance",
                "cashier_close",
                "reports",
                "backup",
                "roll_business_date"
            ]
        );
        assert!(plan.steps()[0].required && plan.steps()[9].required);
        // The standard plan passes the same validation as any other.
        Plan::new(plan.name(), plan.steps().to_vec()).unwrap();
    }

    #[test]
    fn plan_rejects_duplicate_order() {
        let err = Plan::new("p", vec![step(1, "a"), step(1, "b")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid plan `p`: step 2 (order 1): order 1 is used by more than one step; give each step its own order"
        );
    }

    #[test]
    fn plan_rejects_empty_parts() {
        assert!(
            Plan::new("p", vec![])
                .unwrap_err()
                .to_string()
                .contains("at least one step")
        );
        assert!(
            Plan::new("p", vec![step(1, "")])
                .unwrap_err()
                .to_string()
                .contains("code ``")
        );
        let mut blank = step(1, "a");
        blank.name = "  ".into();
        assert!(
            Plan::new("p", vec![blank])
                .unwrap_err()
                .to_string()
                .contains("name of `a`")
        );
        assert!(Plan::new(" ", vec![step(1, "a")]).is_err());
        assert!(Plan::new("p", vec![step(1, "a"), step(2, "a")]).is_err());
        assert!(Plan::new("p", vec![step(1, "has space")]).is_err());
    }

    #[test]
    fn toml_plan_parses_and_sorts() {
        let text = r#"
name = "küçük otel"
[[steps]]
order = 20
code = "roll"
name = "Gün Sonu İşlemi"
[[steps]]
order = 10
code = "checks"
name = "Ön Denetim Kontrolleri"
required = false
command = "true"
timeout_seconds = 5
"#;
        let plan = Plan::from_toml(text, "plan.toml").unwrap();
        assert_eq!(plan.name(), "küçük otel");
        assert_eq!(plan.steps()[0].code, "checks");
        assert_eq!(plan.steps()[0].name, "Ön Denetim Kontrolleri");
        assert!(!plan.steps()[0].required);
        assert_eq!(plan.steps()[0].command.as_deref(), Some("true"));
        assert!(plan.steps()[1].required);
    }

    #[test]
    fn toml_errors_name_file_and_entry() {
        let err = Plan::from_toml(
            "name = \"p\"\n[[steps]]\norder = 1\ncode = \"a\"\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("cannot read plan file `x.toml`:"), "{err}");
        assert!(err.contains("name"), "{err}");
        let err = Plan::from_toml(
            "name = \"p\"\n[[steps]]\norder = 1\ncode = \"a\"\nname = \"A\"\nrequird = false\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("requird"), "{err}");
        let err = Plan::from_toml(
            "name = \"p\"\n[[steps]]\norder = 1\ncode = \"a\"\nname = \"\"\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "invalid plan `p` in `x.toml`: step 1 (order 1): the name of `a` must be 1 to 200 characters, not blank, without control characters"
        );
    }

    #[test]
    fn difference_names_order_and_codes() {
        let a = Plan::new("a", vec![step(1, "x"), step(2, "y")])
            .unwrap()
            .identity();
        let b = Plan::new("b", vec![step(1, "x"), step(2, "z")])
            .unwrap()
            .identity();
        assert_eq!(first_difference(&a, &a), None);
        assert_eq!(
            first_difference(&a, &b).unwrap(),
            "at order 2 the stored code is `y`, the given code is `z`"
        );
        let c = Plan::new("c", vec![step(1, "x")]).unwrap().identity();
        assert_eq!(
            first_difference(&a, &c).unwrap(),
            "only the stored plan has order 2 (step `y` (required))"
        );
        assert_eq!(
            first_difference(&c, &a).unwrap(),
            "only the given plan has order 2 (step `y` (required))"
        );
        let mut optional = step(2, "y");
        optional.required = false;
        let d = Plan::new("d", vec![step(1, "x"), optional])
            .unwrap()
            .identity();
        assert_eq!(
            first_difference(&a, &d).unwrap(),
            "at order 2 step `y` is required in the stored plan, optional in the given one"
        );
        let e = Plan::new("e", vec![step(1, "x"), step(3, "y")])
            .unwrap()
            .identity();
        assert_eq!(
            first_difference(&a, &e).unwrap(),
            "only the stored plan has order 2 (step `y` (required))"
        );
    }
}
