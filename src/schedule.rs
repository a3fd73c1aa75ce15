//! When a plan step runs (its [`Schedule`]) and how the runner retries it (its [`RetryPolicy`]).
//!
//! In a plan file both are inline tables of a step:
//!
//! ```toml
//! [[steps]]
//! order = 8
//! code = "weekly_report"
//! name = "Haftalık rapor"
//! schedule = { weekdays = ["mon", "thu"] }
//! retry = { max_attempts = 3, delay_seconds = 300, backoff = 2.0 }
//!
//! [[steps]]
//! order = 9
//! code = "month_end_close"
//! name = "Ay sonu kapanışı"
//! schedule = { month_days = [1, 15, -1] }   # -1 is the last day of the month
//! ```

use std::time::Duration;

use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Serialize};

/// The reason recorded on a step that its schedule does not run on the operation's date.
pub const NOT_SCHEDULED: &str = "not scheduled";

/// The days on which a plan step is due. A step without a schedule is due every day.
///
/// A step that is not due on an operation's business date is seeded as skipped with the reason
/// [`NOT_SCHEDULED`], required or not, so the history shows that it did not run and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ScheduleFile", into = "ScheduleFile")]
pub struct Schedule {
    weekdays: Vec<Weekday>,
    month_days: Vec<i8>,
}

/// A schedule as a plan file writes it: exactly one of the two lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    weekdays: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    month_days: Vec<i64>,
}

const WEEKDAYS: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Monday),
    ("tue", "tuesday", Weekday::Tuesday),
    ("wed", "wednesday", Weekday::Wednesday),
    ("thu", "thursday", Weekday::Thursday),
    ("fri", "friday", Weekday::Friday),
    ("sat", "saturday", Weekday::Saturday),
    ("sun", "sunday", Weekday::Sunday),
];

impl Schedule {
    /// Returns a schedule due on the given weekdays.
    ///
    /// # Errors
    ///
    /// Returns a description of the problem when the list is empty.
    pub fn weekdays(days: &[Weekday]) -> std::result::Result<Schedule, String> {
        if days.is_empty() {
            return Err("a weekday schedule needs at least one day".into());
        }
        let mut weekdays = days.to_vec();
        weekdays.sort_by_key(|day| day.to_monday_one_offset());
        weekdays.dedup();
        Ok(Schedule {
            weekdays,
            month_days: Vec::new(),
        })
    }

    /// Returns a schedule due on the given days of the month: 1 to 31, or -1 for the last day.
    /// A day that a month lacks (31 in April, 30 in February) is not due in that month; use -1
    /// for month-end work.
    ///
    /// # Errors
    ///
    /// Returns a description of the problem when the list is empty or contains another number.
    pub fn month_days(days: &[i8]) -> std::result::Result<Schedule, String> {
        if days.is_empty() {
            return Err("a month-day schedule needs at least one day".into());
        }
        if let Some(day) = days
            .iter()
            .find(|day| !(1..=31).contains(*day) && **day != -1)
        {
            return Err(format!(
                "month day {day} is invalid: use 1 to 31, or -1 for the last day of the month"
            ));
        }
        let mut month_days = days.to_vec();
        month_days.sort_unstable();
        month_days.dedup();
        Ok(Schedule {
            weekdays: Vec::new(),
            month_days,
        })
    }

    /// Returns whether the step is due on `date`.
    pub fn is_due(&self, date: Date) -> bool {
        if !self.weekdays.is_empty() {
            return self.weekdays.contains(&date.weekday());
        }
        self.month_days.iter().any(|&day| match day {
            -1 => date.day() == date.days_in_month(),
            day => date.day() == day,
        })
    }

    /// Describes the schedule for messages, such as `mon, thu` or `days 1, 15, last`.
    pub fn describe(&self) -> String {
        // -1 sorts first but reads best last.
        let mut month_days: Vec<i8> = self.month_days.iter().copied().filter(|d| *d > 0).collect();
        if self.month_days.contains(&-1) {
            month_days.push(-1);
        }
        if !self.weekdays.is_empty() {
            let names: Vec<&str> = self
                .weekdays
                .iter()
                .filter_map(|day| {
                    WEEKDAYS
                        .iter()
                        .find(|(_, _, weekday)| weekday == day)
                        .map(|(short, _, _)| *short)
                })
                .collect();
            return names.join(", ");
        }
        let days: Vec<String> = month_days
            .iter()
            .map(|day| match day {
                -1 => "last".to_owned(),
                day => day.to_string(),
            })
            .collect();
        format!("days {}", days.join(", "))
    }

    /// Explains why the step is not due on `date`, such as `due on mon, thu, and 2026-12-05 is
    /// a Saturday` or `due on days 1, 15, last, and 2026-12-03 is day 3 of 31`.
    pub fn explain_not_due(&self, date: Date) -> String {
        let day = if self.weekdays.is_empty() {
            format!("day {} of {}", date.day(), date.days_in_month())
        } else {
            format!("a {}", date.strftime("%A"))
        };
        format!("due on {}, and {date} is {day}", self.describe())
    }
}

impl TryFrom<ScheduleFile> for Schedule {
    type Error = String;

    fn try_from(file: ScheduleFile) -> std::result::Result<Schedule, String> {
        match (file.weekdays.is_empty(), file.month_days.is_empty()) {
            (false, false) => Err("give either `weekdays` or `month_days`, not both".into()),
            (true, true) => Err(
                "the schedule has no day: give a non-empty `weekdays` (such as \
                                 [\"mon\", \"thu\"]) or `month_days` (such as [1, 15, -1])"
                    .into(),
            ),
            (false, true) => {
                let days = file
                    .weekdays
                    .iter()
                    .map(|name| {
                        let lower = name.to_ascii_lowercase();
                        WEEKDAYS
                            .iter()
                            .find(|(short, long, _)| lower == *short || lower == *long)
                            .map(|(_, _, day)| *day)
                            .ok_or_else(|| {
                                format!(
                                    "weekday `{name}` is invalid: use mon, tue, wed, thu, fri, \
                                     sat or sun, or a full English name such as thursday"
                                )
                            })
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Schedule::weekdays(&days)
            }
            (true, false) => {
                let days = file
                    .month_days
                    .iter()
                    .map(|&day| {
                        i8::try_from(day).map_err(|_| {
                            format!(
                                "month day {day} is invalid: use 1 to 31, or -1 for the last \
                                 day of the month"
                            )
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Schedule::month_days(&days)
            }
        }
    }
}

impl From<Schedule> for ScheduleFile {
    fn from(schedule: Schedule) -> ScheduleFile {
        let weekdays = schedule
            .weekdays
            .iter()
            .filter_map(|day| {
                WEEKDAYS
                    .iter()
                    .find(|(_, _, weekday)| weekday == day)
                    .map(|(short, _, _)| (*short).to_owned())
            })
            .collect();
        ScheduleFile {
            weekdays,
            month_days: schedule.month_days.into_iter().map(i64::from).collect(),
        }
    }
}

/// The maximum number of attempts a retry policy may allow.
pub const MAX_ATTEMPTS: u32 = 100;
/// The maximum delay before one attempt that a retry policy may set, in seconds (one day).
pub const MAX_RETRY_DELAY_SECONDS: f64 = 86_400.0;

/// A rule for retrying a failed step: at most `max_attempts` attempts in one run, with a wait of
/// `delay_seconds` before the first retry, multiplied by `backoff` before each later one.
///
/// The attempts count within one run (one call of [`Runner::run`](crate::runner::Runner::run)
/// or one `eod run`). When they are used up, the run stops with the step failed, and the next
/// run, started by a person, has a fresh set. Every attempt is a start and a completion or
/// failure in the step's audit trail, with its time, so none overwrites another.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(try_from = "RetryFile", into = "RetryFile")]
pub struct RetryPolicy {
    max_attempts: u32,
    delay_seconds: f64,
    backoff: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryFile {
    max_attempts: u32,
    #[serde(default)]
    delay_seconds: f64,
    #[serde(default = "no_backoff")]
    backoff: f64,
}

fn no_backoff() -> f64 {
    1.0
}

impl RetryPolicy {
    /// Returns a policy of at most `max_attempts` attempts, waiting `delay_seconds` before the
    /// first retry and `backoff` times longer before each later one.
    ///
    /// # Errors
    ///
    /// Returns a description of the problem when `max_attempts` is not 1 to [`MAX_ATTEMPTS`],
    /// the delay is negative, not finite or above [`MAX_RETRY_DELAY_SECONDS`], or the backoff
    /// is not finite or is outside 1 to 10.
    pub fn new(
        max_attempts: u32,
        delay_seconds: f64,
        backoff: f64,
    ) -> std::result::Result<RetryPolicy, String> {
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            return Err(format!(
                "max_attempts {max_attempts} is invalid: use 1 to {MAX_ATTEMPTS}"
            ));
        }
        if !delay_seconds.is_finite() || !(0.0..=MAX_RETRY_DELAY_SECONDS).contains(&delay_seconds) {
            return Err(format!(
                "delay_seconds {delay_seconds} is invalid: use 0 to {MAX_RETRY_DELAY_SECONDS}"
            ));
        }
        if !backoff.is_finite() || !(1.0..=10.0).contains(&backoff) {
            return Err(format!("backoff {backoff} is invalid: use 1.0 to 10.0"));
        }
        Ok(RetryPolicy {
            max_attempts,
            delay_seconds,
            backoff,
        })
    }

    /// Returns the maximum number of attempts of the step in one run.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Returns the wait before attempt `attempt` (counted from 1 within the run; the first
    /// attempt has no wait), capped at [`MAX_RETRY_DELAY_SECONDS`].
    pub fn delay_before(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(attempt - 2).unwrap_or(i32::MAX);
        let seconds =
            (self.delay_seconds * self.backoff.powi(exponent)).min(MAX_RETRY_DELAY_SECONDS);
        Duration::from_secs_f64(seconds)
    }

    /// Describes the policy for messages, such as `3 attempts, 300 s apart, backoff 2`.
    pub fn describe(&self) -> String {
        format!(
            "{} attempts, {} s apart, backoff {}",
            self.max_attempts, self.delay_seconds, self.backoff
        )
    }
}

impl PartialEq for RetryPolicy {
    fn eq(&self, other: &RetryPolicy) -> bool {
        self.max_attempts == other.max_attempts
            && self.delay_seconds.to_bits() == other.delay_seconds.to_bits()
            && self.backoff.to_bits() == other.backoff.to_bits()
    }
}

// Both floats are finite, checked by `RetryPolicy::new`, so bit equality is an equivalence.
impl Eq for RetryPolicy {}

impl TryFrom<RetryFile> for RetryPolicy {
    type Error = String;

    fn try_from(file: RetryFile) -> std::result::Result<RetryPolicy, String> {
        RetryPolicy::new(file.max_attempts, file.delay_seconds, file.backoff)
    }
}

impl From<RetryPolicy> for RetryFile {
    fn from(policy: RetryPolicy) -> RetryFile {
        RetryFile {
            max_attempts: policy.max_attempts,
            delay_seconds: policy.delay_seconds,
            backoff: policy.backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn month_end_and_leap_day() {
        let schedule = Schedule::month_days(&[1, -1]).unwrap();
        assert!(schedule.is_due(date(2028, 2, 29)));
        assert!(!schedule.is_due(date(2028, 2, 28)));
        assert!(schedule.is_due(date(2027, 2, 28)));
        assert!(schedule.is_due(date(2027, 3, 1)));
        assert!(!schedule.is_due(date(2027, 3, 2)));
        let day_31 = Schedule::month_days(&[31]).unwrap();
        assert!(!day_31.is_due(date(2027, 4, 30)));
        assert!(day_31.is_due(date(2027, 5, 31)));
    }

    #[test]
    fn weekdays_parse_and_match() {
        let schedule: Schedule = toml::from_str::<std::collections::BTreeMap<String, Schedule>>(
            "s = { weekdays = [\"Mon\", \"thursday\"] }",
        )
        .unwrap()
        .remove("s")
        .unwrap();
        // 2026-12-07 is a Monday.
        assert!(schedule.is_due(date(2026, 12, 7)));
        assert!(!schedule.is_due(date(2026, 12, 8)));
        assert!(schedule.is_due(date(2026, 12, 10)));
        assert_eq!(schedule.describe(), "mon, thu");
    }

    #[test]
    fn not_due_explanations_name_the_day() {
        let monthly = Schedule::month_days(&[15, -1, 1]).unwrap();
        assert_eq!(monthly.describe(), "days 1, 15, last");
        assert_eq!(
            monthly.explain_not_due(date(2026, 12, 3)),
            "due on days 1, 15, last, and 2026-12-03 is day 3 of 31"
        );
        let weekly = Schedule::weekdays(&[Weekday::Thursday, Weekday::Monday]).unwrap();
        assert_eq!(
            weekly.explain_not_due(date(2026, 12, 5)),
            "due on mon, thu, and 2026-12-05 is a Saturday"
        );
    }

    #[test]
    fn bad_schedules_are_rejected() {
        assert!(Schedule::month_days(&[0]).is_err());
        assert!(Schedule::month_days(&[-2]).is_err());
        assert!(Schedule::month_days(&[]).is_err());
        assert!(Schedule::weekdays(&[]).is_err());
        let both = ScheduleFile {
            weekdays: vec!["mon".into()],
            month_days: vec![1],
        };
        let huge = ScheduleFile {
            weekdays: Vec::new(),
            month_days: vec![128],
        };
        assert_eq!(
            Schedule::try_from(huge).unwrap_err(),
            "month day 128 is invalid: use 1 to 31, or -1 for the last day of the month"
        );
        assert!(Schedule::try_from(both).is_err());
    }

    #[test]
    fn retry_delays_back_off() {
        let policy = RetryPolicy::new(4, 300.0, 2.0).unwrap();
        assert_eq!(policy.delay_before(1), Duration::ZERO);
        assert_eq!(policy.delay_before(2), Duration::from_secs(300));
        assert_eq!(policy.delay_before(3), Duration::from_secs(600));
        assert_eq!(policy.delay_before(4), Duration::from_secs(1200));
        assert!(RetryPolicy::new(0, 1.0, 1.0).is_err());
        assert!(RetryPolicy::new(3, -1.0, 1.0).is_err());
        assert!(RetryPolicy::new(3, f64::NAN, 1.0).is_err());
        assert!(RetryPolicy::new(3, 1.0, 0.5).is_err());
    }
}
