//! Plan schedules: weekly and month-day steps are seeded as skipped with the reason "not
//! scheduled" on dates they are not due, required or not, across a month boundary and a leap
//! day. A changed plan applies to operations opened afterwards only.

mod common;

use common::{caller, create_temp_store, date, plan_step};
use eodstore::runner::{RunOutcome, Runner};
use eodstore::{
    Error, EventKind, NOT_SCHEDULED, OperationStatus, Plan, PlanStep, Schedule, StepStatus,
};
use jiff::civil::Weekday;

fn step(order: u32, code: &str, required: bool, schedule: Option<Schedule>) -> PlanStep {
    PlanStep {
        schedule,
        ..plan_step(order, code, required)
    }
}

fn plan() -> Plan {
    Plan::new(
        "scheduled",
        vec![
            step(1, "daily_checks", true, None),
            step(
                2,
                "weekly_report",
                false,
                Some(Schedule::weekdays(&[Weekday::Monday, Weekday::Thursday]).unwrap()),
            ),
            step(
                3,
                "month_end_close",
                true,
                Some(Schedule::month_days(&[-1]).unwrap()),
            ),
            step(
                4,
                "mid_month_review",
                false,
                Some(Schedule::month_days(&[1, 15]).unwrap()),
            ),
        ],
    )
    .unwrap()
}

#[test]
fn steps_run_on_due_days_only() {
    let mut t = create_temp_store();
    let plan = plan();
    // 2028 is a leap year: February ends on Tuesday the 29th.
    let expected = [
        // date, weekly (Mon/Thu), month end, 1st or 15th
        ("2028-02-27", false, false, false), // Sunday
        ("2028-02-28", true, false, false),  // Monday, not the last day in a leap year
        ("2028-02-29", false, true, false),  // Tuesday, the last day
        ("2028-03-01", false, false, true),  // Wednesday, the 1st
        ("2028-03-02", true, false, false),  // Thursday
    ];
    for (day, weekly, month_end, mid_month) in expected {
        let opened = t
            .store
            .open_operation("grand", date(day), &plan, &caller("gece"))
            .unwrap();
        assert_eq!(opened.operation.status, OperationStatus::Open, "{day}");
        let due = |order: usize| opened.steps[order].step.status == StepStatus::Pending;
        assert!(due(0), "{day}");
        assert_eq!(due(1), weekly, "{day} weekly");
        assert_eq!(due(2), month_end, "{day} month end");
        assert_eq!(due(3), mid_month, "{day} mid month");
        for seeded in &opened.steps {
            if seeded.step.status == StepStatus::Skipped {
                assert_eq!(seeded.step.last_error.as_deref(), Some(NOT_SCHEDULED));
                assert_eq!(seeded.step.attempts, 0);
            }
        }
        let events = t.store.events(opened.operation.id).unwrap();
        let skips: Vec<&str> = events
            .iter()
            .filter(|event| event.kind == EventKind::Skipped)
            .map(|event| event.message.as_deref().unwrap())
            .collect();
        let skipped = opened
            .steps
            .iter()
            .filter(|seeded| seeded.step.status == StepStatus::Skipped)
            .count();
        assert_eq!(skips.len(), skipped, "{day}");
        assert!(
            skips
                .iter()
                .all(|message| message.starts_with("not scheduled: due on")),
            "{skips:?}"
        );

        // Running the day runs only the due steps.
        let ran = std::cell::RefCell::new(Vec::new());
        let mut runner = Runner::new(&t.store, &plan, caller("gece"));
        for code in [
            "daily_checks",
            "weekly_report",
            "month_end_close",
            "mid_month_review",
        ] {
            runner.handler(code, |ctx| {
                ran.borrow_mut().push(ctx.step.code.clone());
                Ok(None)
            });
        }
        let report = runner.run("grand", date(day), |_| {}).unwrap();
        drop(runner);
        assert_eq!(report.outcome, RunOutcome::Completed, "{day}");
        let mut wanted = vec!["daily_checks"];
        for (due, code) in [
            (weekly, "weekly_report"),
            (month_end, "month_end_close"),
            (mid_month, "mid_month_review"),
        ] {
            if due {
                wanted.push(code);
            }
        }
        assert_eq!(ran.into_inner(), wanted, "{day}");
    }
    let report = t.store.check_integrity().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn unscheduled_plan_finishes_at_seeding() {
    let t = create_temp_store();
    let plan = Plan::new(
        "weekly-only",
        vec![step(
            1,
            "weekly_report",
            true,
            Some(Schedule::weekdays(&[Weekday::Monday]).unwrap()),
        )],
    )
    .unwrap();
    // 2026-12-05 is a Saturday.
    let opened = t
        .store
        .open_operation("grand", date("2026-12-05"), &plan, &caller("gece"))
        .unwrap();
    assert_eq!(opened.operation.status, OperationStatus::Completed);
    assert!(opened.operation.finished_at.is_some());
    let err = t
        .store
        .start_step(opened.operation.id, 1, &caller("gece"))
        .unwrap_err();
    assert!(matches!(err, Error::OperationFinished { .. }), "{err}");
}

#[test]
fn changed_plan_applies_to_new_operations() {
    let t = create_temp_store();
    let old = plan();
    let first = t
        .store
        .open_operation("grand", date("2028-02-28"), &old, &caller("gece"))
        .unwrap()
        .operation;
    let mut steps = old.steps().to_vec();
    steps.push(step(5, "night_report", true, None));
    let new = Plan::new("scheduled", steps).unwrap();
    assert_ne!(old.fingerprint(), new.fingerprint());
    assert_eq!(first.plan_fingerprint(), old.fingerprint());

    // The seeded operation keeps its plan: reopening it with the new one is a conflict.
    let err = t
        .store
        .open_operation("grand", date("2028-02-28"), &new, &caller("gece"))
        .unwrap_err();
    assert!(matches!(err, Error::PlanConflict { .. }), "{err}");
    assert_eq!(t.store.steps(first.id).unwrap().len(), 4);
    let second = t
        .store
        .open_operation("grand", date("2028-02-29"), &new, &caller("gece"))
        .unwrap();
    assert_eq!(second.steps.len(), 5);
    assert_eq!(second.operation.plan_fingerprint(), new.fingerprint());

    // A schedule is not part of the identity: reopening with another schedule keeps the
    // statuses seeded with the first.
    let mut moved = old.steps().to_vec();
    moved[1].schedule = Some(Schedule::weekdays(&[Weekday::Sunday]).unwrap());
    let moved = Plan::new("scheduled", moved).unwrap();
    assert_eq!(moved.fingerprint(), old.fingerprint());
    let reopened = t
        .store
        .open_operation("grand", date("2028-02-28"), &moved, &caller("gece"))
        .unwrap();
    assert!(!reopened.created);
    assert_eq!(reopened.steps[1].step.status, StepStatus::Pending);
}

#[test]
fn plan_file_schedules_checked() {
    let text = r#"
name = "scheduled"
[[steps]]
order = 1
code = "weekly_report"
name = "Haftalık rapor"
schedule = { weekdays = ["mon", "thu"] }
[[steps]]
order = 2
code = "month_end_close"
name = "Ay sonu kapanışı"
schedule = { month_days = [1, 15, -1] }
"#;
    let plan = Plan::from_toml(text, "plan.toml").unwrap();
    let weekly = plan.steps()[0].schedule.as_ref().unwrap();
    assert!(weekly.is_due(date("2026-12-07")));
    assert!(!weekly.is_due(date("2026-12-08")));
    let monthly = plan.steps()[1].schedule.as_ref().unwrap();
    assert!(monthly.is_due(date("2026-12-31")));
    assert!(monthly.is_due(date("2026-12-15")));
    for (bad, words) in [
        (
            "schedule = { weekdays = [\"pzt\"] }",
            "weekday `pzt` is invalid",
        ),
        (
            "schedule = { month_days = [32] }",
            "month day 32 is invalid",
        ),
        ("schedule = { month_days = [0] }", "month day 0 is invalid"),
        ("schedule = {}", "the schedule has no day"),
        (
            "schedule = { weekdays = [\"mon\"], month_days = [1] }",
            "not both",
        ),
    ] {
        let text =
            format!("name = \"s\"\n[[steps]]\norder = 1\ncode = \"c\"\nname = \"Ad\"\n{bad}\n");
        let err = Plan::from_toml(&text, "plan.toml").unwrap_err().to_string();
        assert!(err.contains(words), "{bad}: {err}");
    }
}
