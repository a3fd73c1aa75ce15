//! Business dates: the gate on starting an operation of another date, the override and its
//! event, the roll, and the catch-up of missed dates. Also one operation in progress per
//! property with its audited release, and two terminals racing to run one date.

mod common;

use std::sync::Barrier;

use common::{caller, create_temp_store, date, plan_step};
use eodstore::runner::{HandlerError, RunOutcome, Runner};
use eodstore::{Error, EventKind, OperationStatus, Plan, ROLL_STEP, StepStatus, Store};

/// Returns a three-step plan that ends with the business-date roll.
fn plan() -> Plan {
    let step = |order, code| plan_step(order, code, true);
    Plan::new(
        "roll",
        vec![step(1, "checks"), step(2, "post"), step(3, ROLL_STEP)],
    )
    .unwrap()
}

/// A runner with a handler for every step of `plan`; `post` fails on the dates in `failing`.
fn runner<'s>(store: &'s Store, plan: &'s Plan, failing: &'s [&'s str]) -> Runner<'s, 's> {
    let mut runner = Runner::new(store, plan, caller("gece"));
    runner
        .handler("checks", |_| Ok(None))
        .handler("post", move |ctx| {
            let day = ctx.operation.business_date.to_string();
            if failing.contains(&day.as_str()) {
                Err(HandlerError::new(format!("posting of {day} failed")))
            } else {
                Ok(None)
            }
        })
        .handler(ROLL_STEP, |_| Ok(None));
    runner
}

fn business_date(store: &Store) -> Option<jiff::civil::Date> {
    store
        .property("grand")
        .unwrap()
        .and_then(|state| state.business_date)
}

#[test]
fn roll_sets_missing_business_date() {
    let t = create_temp_store();
    let plan = plan();
    assert_eq!(business_date(&t.store), None);
    let report = runner(&t.store, &plan, &[])
        .run("grand", date("2026-12-04"), |_| {})
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert_eq!(business_date(&t.store), Some(date("2026-12-05")));
    let state = t.store.property("grand").unwrap().unwrap();
    assert_eq!(
        state.date_source.as_deref(),
        Some(format!("rolled by operation {}", report.operation.id).as_str())
    );
    assert!(
        state.active.is_none(),
        "a finished operation stays in progress"
    );
    let events = t.store.events(report.operation.id).unwrap();
    let rolled: Vec<_> = events
        .iter()
        .filter(|event| event.kind == EventKind::DateRolled)
        .collect();
    assert_eq!(rolled.len(), 1);
    assert!(
        rolled[0]
            .message
            .as_deref()
            .unwrap()
            .contains("is now 2026-12-05")
    );
}

#[test]
fn other_dates_rejected_without_override() {
    let t = create_temp_store();
    let plan = plan();
    t.store
        .set_business_date("grand", date("2026-12-04"), &caller("müdür"))
        .unwrap();
    for (day, words) in [
        ("2026-12-06", "it is too early; close 2026-12-04 first"),
        (
            "2026-12-01",
            "that day is before the business date, so it counts as closed",
        ),
    ] {
        let opened = t
            .store
            .open_operation("grand", date(day), &plan, &caller("kasa"))
            .expect("opening any date is allowed");
        let events = t.store.events(opened.operation.id).unwrap().len();
        let err = t
            .store
            .start_step(opened.operation.id, 1, &caller("kasa"))
            .unwrap_err();
        assert!(matches!(err, Error::NotBusinessDate { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("is for {day}"))
                && text.contains("business date is 2026-12-04")
                && text.contains(words),
            "{text}"
        );
        let view = t.store.view(opened.operation.id).unwrap();
        assert_eq!(view.operation.status, OperationStatus::Open);
        assert_eq!(t.store.events(opened.operation.id).unwrap().len(), events);
        // The runner is refused the same way, before any step starts.
        let err = runner(&t.store, &plan, &[])
            .run("grand", date(day), |_| {})
            .unwrap_err();
        assert!(matches!(err, Error::NotBusinessDate { .. }), "{err}");
    }
    assert!(t.store.property("grand").unwrap().unwrap().active.is_none());

    // A refused run of a date that was never opened does not create its operation.
    let err = runner(&t.store, &plan, &[])
        .run("grand", date("2026-12-09"), |_| {})
        .unwrap_err();
    assert!(matches!(err, Error::NotBusinessDate { .. }), "{err}");
    assert!(
        t.store
            .find_operation("grand", date("2026-12-09"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn override_runs_other_date() {
    let t = create_temp_store();
    let plan = plan();
    t.store
        .set_business_date("grand", date("2026-12-04"), &caller("müdür"))
        .unwrap();
    let mut runner = Runner::new(
        &t.store,
        &plan,
        caller("müdür").override_business_date("denetçi yeniden kapatılmasını istedi"),
    );
    runner
        .handler("checks", |_| Ok(None))
        .handler("post", |_| Ok(None))
        .handler(ROLL_STEP, |_| Ok(None));
    let report = runner.run("grand", date("2026-12-02"), |_| {}).unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    let events = t.store.events(report.operation.id).unwrap();
    let overrides: Vec<_> = events
        .iter()
        .filter(|event| event.kind == EventKind::DateOverride)
        .collect();
    assert_eq!(overrides.len(), 1);
    let message = overrides[0].message.as_deref().unwrap();
    assert!(
        message.contains("business date of `grand` is 2026-12-04")
            && message.contains("denetçi yeniden kapatılmasını istedi"),
        "{message}"
    );
    // Rolling a past date leaves the business date where it was.
    assert_eq!(business_date(&t.store), Some(date("2026-12-04")));
    assert!(
        !events
            .iter()
            .any(|event| event.kind == EventKind::DateRolled)
    );
}

#[test]
fn finished_date_rerun_changes_nothing() {
    let t = create_temp_store();
    let plan = plan();
    let first = runner(&t.store, &plan, &[])
        .run("grand", date("2026-12-04"), |_| {})
        .unwrap();
    let events = t.store.events(first.operation.id).unwrap().len();
    // The business date is 2026-12-05 now; the closed date still reruns, as a no-op.
    let again = runner(&t.store, &plan, &[])
        .run("grand", date("2026-12-04"), |_| {})
        .unwrap();
    match &again.outcome {
        RunOutcome::AlreadyFinished { finished_by, .. } => assert_eq!(finished_by, "gece"),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.store.events(first.operation.id).unwrap().len(), events);
    assert_eq!(business_date(&t.store), Some(date("2026-12-05")));
}

#[test]
fn catch_up_closes_missed_dates() {
    let mut t = create_temp_store();
    let plan = plan();
    t.store
        .set_business_date("grand", date("2026-12-01"), &caller("müdür"))
        .unwrap();
    let mut dates = Vec::new();
    let reports = runner(&t.store, &plan, &[])
        .run_until("grand", date("2026-12-03"), |progress| {
            if let eodstore::runner::Progress::Opened(opened) = progress {
                dates.push(opened.operation.business_date.to_string());
            }
        })
        .unwrap();
    assert_eq!(dates, ["2026-12-01", "2026-12-02", "2026-12-03"]);
    assert_eq!(reports.len(), 3);
    assert!(
        reports
            .iter()
            .all(|report| report.outcome == RunOutcome::Completed)
    );
    // Each operation finished before the next one was created.
    for pair in reports.windows(2) {
        assert!(pair[0].operation.finished_at.unwrap() <= pair[1].operation.created_at);
    }
    assert_eq!(business_date(&t.store), Some(date("2026-12-04")));
    // Nothing is left to catch up.
    let none = runner(&t.store, &plan, &[])
        .run_until("grand", date("2026-12-03"), |_| {})
        .unwrap();
    assert!(none.is_empty());
    let report = t.store.check_integrity().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn catch_up_stops_at_failure() {
    let t = create_temp_store();
    let plan = plan();
    t.store
        .set_business_date("grand", date("2026-12-01"), &caller("müdür"))
        .unwrap();
    let reports = runner(&t.store, &plan, &["2026-12-02"])
        .run_until("grand", date("2026-12-04"), |_| {})
        .unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].outcome, RunOutcome::Completed);
    assert!(matches!(
        reports[1].outcome,
        RunOutcome::Failed { order: 2, .. }
    ));
    assert_eq!(business_date(&t.store), Some(date("2026-12-02")));
    for later in ["2026-12-03", "2026-12-04"] {
        assert!(
            t.store
                .find_operation("grand", date(later))
                .unwrap()
                .is_none(),
            "{later} was opened after a failure"
        );
    }
    // The failed date is the one in progress; another date cannot start.
    let state = t.store.property("grand").unwrap().unwrap();
    assert_eq!(
        state.active.as_ref().map(|active| active.operation),
        Some(reports[1].operation.id)
    );
    // Without a business date there is nothing to catch up from.
    let err = runner(&t.store, &plan, &[])
        .run_until("başka-otel", date("2026-12-04"), |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("set-date"), "{err}");
}

#[test]
fn one_operation_in_progress_and_release() {
    let t = create_temp_store();
    let plan = plan();
    let first = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("kasa-1"))
        .unwrap()
        .operation
        .id;
    let second = t
        .store
        .open_operation("grand", date("2026-12-05"), &plan, &caller("kasa-2"))
        .unwrap()
        .operation
        .id;
    // A terminal starts 12-04 with a short lease and dies.
    t.store
        .start_step(
            first,
            1,
            &caller("kasa-1").lease(jiff::SignedDuration::from_mins(1)),
        )
        .unwrap();
    let err = t
        .store
        .start_step(second, 1, &caller("kasa-2"))
        .unwrap_err();
    match &err {
        Error::PropertyBusy { active, by, .. } => {
            assert_eq!(*active, first);
            assert_eq!(by, "kasa-1");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("eod release"), "{err}");
    // Another property is not affected.
    let elsewhere = t
        .store
        .open_operation("deniz", date("2026-12-05"), &plan, &caller("kasa-3"))
        .unwrap()
        .operation
        .id;
    t.store.start_step(elsewhere, 1, &caller("kasa-3")).unwrap();

    // The release is refused while the step's claim is live.
    let err = t
        .store
        .release_operation(first, "terminal kapandı", &caller("müdür"))
        .unwrap_err();
    assert!(matches!(err, Error::NotReleasable { .. }), "{err}");
    t.clock.advance(jiff::SignedDuration::from_mins(2));
    t.store
        .release_operation(first, "terminal kapandı", &caller("müdür"))
        .unwrap();
    let events = t.store.events(first).unwrap();
    let released = events.last().unwrap();
    assert_eq!(released.kind, EventKind::Released);
    assert_eq!(released.actor, "müdür");
    assert!(
        released
            .message
            .as_deref()
            .unwrap()
            .contains("terminal kapandı")
    );
    // Releasing again has nothing to release.
    let err = t
        .store
        .release_operation(first, "tekrar", &caller("müdür"))
        .unwrap_err();
    assert!(err.to_string().contains("nothing to release"), "{err}");

    t.store.start_step(second, 1, &caller("kasa-2")).unwrap();
    // The released operation cannot come back while the other is in progress.
    let err = t.store.start_step(first, 1, &caller("kasa-1")).unwrap_err();
    assert!(matches!(err, Error::PropertyBusy { .. }), "{err}");
}

/// Two terminals race to run the same date and get one operation and one run. The loser's error
/// names who runs it and since when.
#[test]
fn racing_terminals_get_one_run() {
    let t = create_temp_store();
    let plan = plan();
    let barrier = Barrier::new(2);
    let (gate_sender, gate) = std::sync::mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    let outcomes: Vec<Result<RunOutcome, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["terminal-1", "terminal-2"]
            .into_iter()
            .map(|name| {
                let (store, plan, barrier, gate) = (&t.store, &plan, &barrier, &gate);
                scope.spawn(move || {
                    let mut runner = Runner::new(store, plan, caller(name));
                    runner
                        .handler("checks", |_| {
                            // Hold the run open until the loser has tried.
                            let _ = gate.lock().unwrap().recv();
                            Ok(None)
                        })
                        .handler("post", |_| Ok(None))
                        .handler(ROLL_STEP, |_| Ok(None));
                    barrier.wait();
                    runner
                        .run("grand", date("2026-12-04"), |_| {})
                        .map(|report| report.outcome)
                })
            })
            .collect();
        // The loser returns without waiting for the gate; then the winner may go on.
        while !handles
            .iter()
            .any(std::thread::ScopedJoinHandle::is_finished)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        gate_sender.send(()).unwrap();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(RunOutcome::Completed)))
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");
    let loser = outcomes
        .iter()
        .find_map(|outcome| outcome.as_ref().err())
        .expect("one terminal lost");
    match loser {
        Error::AlreadyRunning { holder, .. } => {
            assert!(holder.contains("terminal-"), "{holder}");
        }
        other => panic!("{other}"),
    }
    assert!(loser.to_string().contains("is already running"), "{loser}");
    let operations = t.store.history("grand", 10).unwrap();
    assert_eq!(operations.len(), 1);
    let events = t.store.events(operations[0].id).unwrap();
    let runs = events
        .iter()
        .filter(|event| event.kind == EventKind::RunStarted)
        .count();
    assert_eq!(runs, 1);
    let started = events
        .iter()
        .filter(|event| event.kind == EventKind::Started)
        .count();
    assert_eq!(started, 3, "each step started once");
    // A third terminal that comes after the run gets the outcome that it has finished.
    let late = runner(&t.store, &plan, &[])
        .run("grand", date("2026-12-04"), |_| {})
        .unwrap();
    assert!(matches!(late.outcome, RunOutcome::AlreadyFinished { .. }));
    assert!(
        t.store
            .steps(operations[0].id)
            .unwrap()
            .iter()
            .all(|step| step.status == StepStatus::Completed)
    );
}

/// A runner that stopped without ending its run (here its handler panicked) leaves its claim on
/// the operation: another runner is refused until the claim's lease ends, then takes the run
/// over and records that.
#[test]
fn abandoned_run_taken_over_after_lease() {
    let mut t = create_temp_store();
    let plan = plan();
    let lease = jiff::SignedDuration::from_mins(5);
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut runner = Runner::new(&t.store, &plan, caller("ölü").lease(lease));
        runner
            .handler("checks", |_| panic!("terminal çöktü"))
            .handler("post", |_| Ok(None))
            .handler(ROLL_STEP, |_| Ok(None));
        runner.run("grand", date("2026-12-04"), |_| {})
    }));
    assert!(crashed.is_err());
    let err = runner(&t.store, &plan, &[])
        .run("grand", date("2026-12-04"), |_| {})
        .unwrap_err();
    match &err {
        Error::AlreadyRunning { holder, .. } => assert!(holder.contains("ölü"), "{holder}"),
        other => panic!("{other}"),
    }
    t.clock.advance(lease + jiff::SignedDuration::from_secs(1));
    let report = runner(&t.store, &plan, &[])
        .run("grand", date("2026-12-04"), |_| {})
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    let events = t.store.events(report.operation.id).unwrap();
    let runs: Vec<&str> = events
        .iter()
        .filter(|event| event.kind == EventKind::RunStarted)
        .map(|event| event.message.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(runs.len(), 2);
    assert!(runs[1].contains("took over from `ölü`"), "{runs:?}");
    let report = t.store.check_integrity().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// A run that pauses before its first step leaves the operation open, and an open operation
/// blocks no other date.
#[test]
fn paused_open_run_blocks_nothing() {
    let t = create_temp_store();
    let plan = plan();
    let mut manual = Runner::new(&t.store, &plan, caller("gece"));
    manual.on_missing_handler(eodstore::runner::MissingHandler::Pause);
    let report = manual.run("grand", date("2026-12-04"), |_| {}).unwrap();
    drop(manual);
    assert!(matches!(
        report.outcome,
        RunOutcome::Paused { order: 1, .. }
    ));
    assert_eq!(report.operation.status, OperationStatus::Open);
    assert!(t.store.property("grand").unwrap().unwrap().active.is_none());
    let report = runner(&t.store, &plan, &[])
        .run("grand", date("2026-12-05"), |_| {})
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
}

/// A run whose date has no scheduled step completes at seeding and leaves nothing in progress.
#[test]
fn unscheduled_day_leaves_nothing_in_progress() {
    let t = create_temp_store();
    let weekly = Some(eodstore::Schedule::weekdays(&[jiff::civil::Weekday::Monday]).unwrap());
    let plan = Plan::new(
        "weekly",
        vec![eodstore::PlanStep {
            schedule: weekly,
            ..plan_step(1, "checks", true)
        }],
    )
    .unwrap();
    let mut runner = Runner::new(&t.store, &plan, caller("gece"));
    runner.handler("checks", |_| Ok(None));
    // 2026-12-05 is a Saturday.
    let report = runner.run("grand", date("2026-12-05"), |_| {}).unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert_eq!(report.operation.status, OperationStatus::Completed);
    let state = t.store.property("grand").unwrap();
    let active = state.and_then(|state| state.active);
    assert!(active.is_none(), "{active:?}");
    // The next day starts as usual.
    let report = runner.run("grand", date("2026-12-07"), |_| {}).unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
}

/// The last supported date cannot be set as a business date, and a roll onto it completes.
#[test]
fn last_supported_date_rolls_safely() {
    let t = create_temp_store();
    let err = t
        .store
        .set_business_date("grand", date("9999-12-31"), &caller("müdür"))
        .unwrap_err();
    assert!(err.to_string().contains("before 9999-12-31"), "{err}");
    t.store
        .set_business_date("grand", date("9999-12-30"), &caller("müdür"))
        .unwrap();
    let plan = plan();
    let reports = runner(&t.store, &plan, &[])
        .run_until("grand", date("9999-12-31"), |_| {})
        .unwrap_err();
    // 9999-12-30 rolls to 9999-12-31, whose roll completes without a next day, so the
    // catch-up stops there with an error that names the date.
    assert!(
        reports.to_string().contains("stayed 9999-12-31"),
        "{reports}"
    );
    let last = t
        .store
        .find_operation("grand", date("9999-12-31"))
        .unwrap()
        .unwrap();
    assert_eq!(last.status, OperationStatus::Completed);
    assert_eq!(business_date(&t.store), Some(date("9999-12-31")));
}

/// A dump import records each property's started, unfinished operation as in progress, so the
/// moved store keeps one operation in progress per property.
#[test]
fn dump_import_keeps_operation_in_progress() {
    let t = create_temp_store();
    let plan = plan();
    let id = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("gece"))
        .unwrap()
        .operation
        .id;
    t.store.start_step(id, 1, &caller("gece")).unwrap();
    let dump = t.store.export(&eodstore::DumpFilter::all()).unwrap();

    let moved = create_temp_store();
    moved.store.import_dump(&dump).unwrap();
    let state = moved.store.property("grand").unwrap().unwrap();
    assert_eq!(state.active.map(|active| active.operation), Some(id));
    let other = moved
        .store
        .open_operation("grand", date("2026-12-05"), &plan, &caller("gece"))
        .unwrap()
        .operation
        .id;
    let err = moved
        .store
        .start_step(other, 1, &caller("gece"))
        .unwrap_err();
    assert!(matches!(err, Error::PropertyBusy { .. }), "{err}");
}
