//! The runner: handlers run in order, finished steps are passed over, a failure stops the run
//! and the next run retries it, a crashed runner's step is taken over, and a live runner's lease
//! is renewed while its handler works.

mod common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use common::{caller, create_temp_store, date};
use eodstore::runner::{HandlerError, MissingHandler, Progress, RunOutcome, Runner};
use eodstore::{Clock, Error, EventKind, OperationStatus, Plan, PlanStep, StepStatus};
use jiff::SignedDuration;

fn plan(steps: &[(u32, &str, bool)]) -> Plan {
    Plan::new(
        "test",
        steps
            .iter()
            .map(|&(order, code, required)| PlanStep {
                order,
                code: code.into(),
                name: format!("Adım {order}"),
                required,
                command: None,
                timeout_seconds: None,
                schedule: None,
                retry: None,
            })
            .collect(),
    )
    .unwrap()
}

#[test]
fn runs_every_step_in_order() {
    let t = create_temp_store();
    let plan = Plan::standard();
    let order_seen = RefCell::new(Vec::new());
    let mut runner = Runner::new(&t.store, &plan, caller("night"));
    for step in plan.steps() {
        runner.handler(&step.code, |ctx| {
            order_seen.borrow_mut().push(ctx.step.order);
            assert_eq!(ctx.attempt(), 1);
            assert_eq!(ctx.step.status, StepStatus::Running);
            Ok(Some(format!("{} tamam", ctx.step.code)))
        });
    }
    let mut progress = Vec::new();
    let report = runner
        .run("grand", date("2026-12-04"), |event| {
            progress.push(match event {
                Progress::Opened(_) => "opened".to_owned(),
                Progress::AlreadyDone(step) => format!("done {}", step.order),
                Progress::Started { step, .. } => format!("start {}", step.order),
                Progress::Finished { step, .. } => format!("finish {} {}", step.order, step.status),
                _ => "other".to_owned(),
            });
        })
        .unwrap();
    drop(runner);
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert!(report.created);
    assert_eq!(report.operation.status, OperationStatus::Completed);
    assert_eq!(*order_seen.borrow(), (1..=10).collect::<Vec<_>>());
    assert_eq!(progress[0], "opened");
    assert_eq!(progress[1], "start 1");
    assert_eq!(progress[2], "finish 1 completed");
    assert_eq!(progress.len(), 1 + 20);
    assert_eq!(
        report.steps[4].output_tail.as_deref(),
        Some("post_room_charges tamam")
    );
    // The claims recorded the runner's process, and the actor is the runner's caller.
    let started = t.store.events(report.operation.id).unwrap();
    assert!(
        started
            .iter()
            .filter(|e| e.kind == EventKind::Started)
            .all(|e| e.actor == "night")
    );
}

#[test]
fn missing_required_handler_rejected_first() {
    let t = create_temp_store();
    let plan = plan(&[(1, "a", true), (2, "b", true)]);
    let mut runner = Runner::new(&t.store, &plan, caller("night"));
    runner.handler("a", |_| Ok(None));
    let err = runner.run("grand", date("2026-12-04"), |_| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "required step 2 (`b`) has no handler: register one for `b` before running"
    );
    assert!(matches!(err, Error::MissingHandler { order: 2, .. }));
    // Nothing started: the operation was not even opened.
    assert!(
        t.store
            .find_operation("grand", date("2026-12-04"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn optional_step_without_handler_skipped() {
    let t = create_temp_store();
    let plan = plan(&[(1, "a", true), (2, "b", false), (3, "c", true)]);
    let mut runner = Runner::new(&t.store, &plan, caller("night"));
    runner.handler("a", |_| Ok(None)).handler("c", |_| Ok(None));
    let report = runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert_eq!(report.steps[1].status, StepStatus::Skipped);
    assert_eq!(
        report.steps[1].last_error.as_deref(),
        Some("no handler registered")
    );
}

#[test]
fn pause_mode_stops_at_manual_step() {
    let t = create_temp_store();
    let plan = plan(&[(1, "a", true), (2, "manual", true), (3, "c", true)]);
    let mut runner = Runner::new(&t.store, &plan, caller("night"));
    runner
        .on_missing_handler(MissingHandler::Pause)
        .handler("a", |_| Ok(None))
        .handler("c", |_| Ok(None));
    let report = runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Paused {
            order: 2,
            code: "manual".into()
        }
    );
    assert_eq!(report.operation.status, OperationStatus::Running);

    // A person does the manual step; the next run resumes after it.
    let id = report.operation.id;
    let started = t.store.start_step(id, 2, &caller("ayşe")).unwrap();
    t.store
        .complete_step(id, 2, &started.claim.token, None, &caller("ayşe"))
        .unwrap();
    let report = runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert!(!report.created);
}

#[test]
fn failure_stops_then_rerun_retries() {
    let t = create_temp_store();
    let plan = plan(&[(1, "a", true), (2, "b", true), (3, "c", true)]);
    let attempts_of_b = RefCell::new(0);
    let c_ran = RefCell::new(false);
    let mut runner = Runner::new(&t.store, &plan, caller("night"));
    runner
        .handler("a", |_| Ok(None))
        .handler("b", |ctx| {
            *attempts_of_b.borrow_mut() += 1;
            if ctx.attempt() == 1 {
                Err(HandlerError {
                    message: "folyo dengesiz: 12,50 TL".into(),
                    output: Some("satır 3".into()),
                })
            } else {
                Ok(None)
            }
        })
        .handler("c", |_| {
            *c_ran.borrow_mut() = true;
            Ok(None)
        });
    let report = runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Failed {
            order: 2,
            code: "b".into(),
            error: "folyo dengesiz: 12,50 TL".into()
        }
    );
    assert_eq!(report.operation.status, OperationStatus::Failed);
    assert_eq!(report.steps[1].output_tail.as_deref(), Some("satır 3"));
    assert!(!*c_ran.borrow());

    let mut progress = Vec::new();
    let report = runner
        .run("grand", date("2026-12-04"), |event| {
            if let Progress::AlreadyDone(step) = event {
                progress.push(step.order);
            }
        })
        .unwrap();
    drop(runner);
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert_eq!(progress, [1], "step 1 is passed over on the second run");
    assert_eq!(*attempts_of_b.borrow(), 2);
    assert_eq!(report.steps[1].attempts, 2);
    let kinds: Vec<EventKind> = t
        .store
        .events(report.operation.id)
        .unwrap()
        .iter()
        .filter(|e| e.step_order == Some(2))
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Started,
            EventKind::Failed,
            EventKind::Retried,
            EventKind::Started,
            EventKind::Completed
        ]
    );
}

#[test]
fn finished_operation_runs_nothing() {
    let t = create_temp_store();
    let plan = plan(&[(1, "a", true)]);
    let runs = RefCell::new(0);
    let mut runner = Runner::new(&t.store, &plan, caller("night"));
    runner.handler("a", |_| {
        *runs.borrow_mut() += 1;
        Ok(None)
    });
    runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    let id = t
        .store
        .find_operation("grand", date("2026-12-04"))
        .unwrap()
        .unwrap()
        .id;
    let events = t.store.events(id).unwrap().len();
    let report = runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    drop(runner);
    // The second run changes nothing and names who finished the operation.
    match &report.outcome {
        RunOutcome::AlreadyFinished { finished_by, .. } => assert_eq!(finished_by, "night"),
        other => panic!("{other:?}"),
    }
    assert_eq!(*runs.borrow(), 1);
    assert_eq!(t.store.events(id).unwrap().len(), events);
}

#[test]
fn dead_runner_step_taken_over() {
    let t = create_temp_store();
    let plan = plan(&[(1, "a", true), (2, "b", true)]);
    let id = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("night"))
        .unwrap()
        .operation
        .id;
    // A runner process started step 1 and died before finishing it.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let mut dead = eodstore::process::current_process();
    dead.pid = child.id();
    child.wait().unwrap();
    t.store
        .start_step(id, 1, &caller("night").process(dead))
        .unwrap();

    let mut took_over = None;
    let mut runner = Runner::new(&t.store, &plan, caller("night"));
    runner.handler("a", |_| Ok(None)).handler("b", |_| Ok(None));
    let report = runner
        .run("grand", date("2026-12-04"), |event| {
            if let Progress::Started {
                took_over_from: Some(previous),
                ..
            } = event
            {
                took_over = Some(previous.to_string());
            }
        })
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert!(took_over.unwrap().contains("no longer exists"));
    assert_eq!(report.steps[0].attempts, 2);
}

#[test]
fn live_runner_claim_not_taken() {
    let t = create_temp_store();
    let plan = plan(&[(1, "a", true)]);
    let id = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("night"))
        .unwrap()
        .operation
        .id;
    // Another runner in a live process holds step 1.
    t.store
        .start_step(
            id,
            1,
            &caller("other").process(eodstore::process::current_process()),
        )
        .unwrap();
    let mut runner = Runner::new(&t.store, &plan, caller("night"));
    runner.handler("a", |_| Ok(None));
    let err = runner.run("grand", date("2026-12-04"), |_| {}).unwrap_err();
    assert!(matches!(err, Error::ClaimHeld { .. }), "{err}");
}

/// A slow handler keeps its step: the runner renews the lease while the handler works, so
/// another caller cannot take the step over even after the original lease has ended.
#[test]
fn slow_handler_lease_renewed() {
    let t = create_temp_store();
    let plan = plan(&[(1, "slow", true)]);
    let store = &t.store;
    let clock = &t.clock;
    let lease = SignedDuration::from_millis(60);
    let mut runner = Runner::new(store, &plan, caller("night").lease(lease));
    runner.handler("slow", |ctx| {
        let renewals = || -> Result<usize, HandlerError> {
            Ok(store
                .events(ctx.operation.id)
                .map_err(|err| HandlerError::new(err.to_string()))?
                .iter()
                .filter(|e| e.kind == EventKind::LeaseRenewed)
                .count())
        };
        // The renewal thread renews every 20 ms of real time, at the manual clock's current
        // time. Each time a new renewal shows up, move the clock 40 ms: less than the lease, so
        // the latest renewal still covers it, and after three moves the clock is 60 ms past
        // the original lease's end. The deadline turns a broken renewal into a failure.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = 0;
        let mut moves = 0;
        while moves < 3 {
            if Instant::now() > deadline {
                return Err(HandlerError::new("the lease was not renewed"));
            }
            let count = renewals()?;
            if count > seen {
                seen = count;
                clock.advance(SignedDuration::from_millis(40));
                moves += 1;
            }
            std::thread::yield_now();
        }
        assert!(
            clock.now() > ctx.claim.lease_until,
            "the original lease has ended"
        );
        match store.start_step(ctx.operation.id, 1, &caller("thief")) {
            Err(Error::ClaimHeld { .. }) => Ok(Some("kept the claim".into())),
            other => Err(HandlerError::new(format!(
                "expected ClaimHeld, got {other:?}"
            ))),
        }
    });
    let report = runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Completed,
        "{:?}",
        report.steps[0].last_error
    );
    assert_eq!(
        report.steps[0].output_tail.as_deref(),
        Some("kept the claim")
    );
}
