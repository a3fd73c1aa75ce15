//! Retry policies: the runner retries a failed step with the plan's delays and backoff, keeps
//! every attempt with its error and times in the step's history, and stops when the attempts of
//! a run are used up. The next run has a fresh set.

mod common;

use std::cell::Cell;
use std::time::{Duration, Instant};

use common::{caller, create_temp_store, date, plan_step};
use eodstore::runner::{HandlerError, Progress, RunOutcome, Runner};
use eodstore::{EventKind, Plan, PlanStep, RetryPolicy, StepStatus};

fn plan(policy: Option<RetryPolicy>) -> Plan {
    Plan::new(
        "retry",
        vec![PlanStep {
            name: "Oda ve vergi kaydı".into(),
            retry: policy,
            ..plan_step(1, "post", true)
        }],
    )
    .unwrap()
}

#[test]
fn retries_back_off_and_keep_attempts() {
    let t = create_temp_store();
    let plan = plan(Some(RetryPolicy::new(3, 0.05, 2.0).unwrap()));
    let calls = Cell::new(0);
    let mut runner = Runner::new(&t.store, &plan, caller("gece"));
    runner.handler("post", |ctx| {
        calls.set(calls.get() + 1);
        if ctx.attempt() < 3 {
            Err(HandlerError::new(format!(
                "ağ geçidi yanıt vermedi ({})",
                ctx.attempt()
            )))
        } else {
            Ok(Some("posted".into()))
        }
    });
    let mut waits = Vec::new();
    let began = Instant::now();
    let report = runner
        .run("grand", date("2026-12-04"), |progress| {
            if let Progress::Retrying {
                attempt,
                max_attempts,
                delay,
                ..
            } = progress
            {
                waits.push((*attempt, *max_attempts, *delay));
            }
        })
        .unwrap();
    let elapsed = began.elapsed();
    drop(runner);
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert_eq!(calls.get(), 3);
    assert_eq!(
        waits,
        [
            (2, 3, Duration::from_millis(50)),
            (3, 3, Duration::from_millis(100))
        ]
    );
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");

    let step = &report.steps[0];
    assert_eq!(step.status, StepStatus::Completed);
    assert_eq!(step.attempts, 3);
    let events = t.store.events(report.operation.id).unwrap();
    let of_step: Vec<(EventKind, Option<&str>)> = events
        .iter()
        .filter(|event| event.step_order == Some(1))
        .map(|event| (event.kind, event.message.as_deref()))
        .collect();
    assert_eq!(
        of_step,
        [
            (EventKind::Started, Some("attempt 1")),
            (EventKind::Failed, Some("ağ geçidi yanıt vermedi (1)")),
            (EventKind::Retried, None),
            (EventKind::Started, Some("attempt 2")),
            (EventKind::Failed, Some("ağ geçidi yanıt vermedi (2)")),
            (EventKind::Retried, None),
            (EventKind::Started, Some("attempt 3")),
            (EventKind::Completed, None),
        ]
    );
    // Each attempt's start follows the previous failure by at least its delay.
    let starts: Vec<_> = events
        .iter()
        .filter(|event| event.kind == EventKind::Started)
        .map(|event| event.at)
        .collect();
    assert_eq!(starts.len(), 3);
}

#[test]
fn used_up_attempts_stop_run() {
    let t = create_temp_store();
    let plan = plan(Some(RetryPolicy::new(2, 0.0, 1.0).unwrap()));
    let mut runner = Runner::new(&t.store, &plan, caller("gece"));
    runner.handler("post", |ctx| {
        Err(HandlerError::new(format!(
            "deneme {} başarısız",
            ctx.attempt()
        )))
    });
    let report = runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    match &report.outcome {
        RunOutcome::Failed { order, error, .. } => {
            assert_eq!(*order, 1);
            assert_eq!(error, "deneme 2 başarısız");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.steps[0].attempts, 2);
    let report = runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    assert!(matches!(report.outcome, RunOutcome::Failed { .. }));
    assert_eq!(report.steps[0].attempts, 4);
    let failures: Vec<String> = t
        .store
        .events(report.operation.id)
        .unwrap()
        .into_iter()
        .filter(|event| event.kind == EventKind::Failed)
        .filter_map(|event| event.message)
        .collect();
    assert_eq!(
        failures,
        [
            "deneme 1 başarısız",
            "deneme 2 başarısız",
            "deneme 3 başarısız",
            "deneme 4 başarısız"
        ]
    );
}

#[test]
fn no_policy_stops_at_failure() {
    let t = create_temp_store();
    let plan = plan(None);
    let calls = Cell::new(0);
    let mut runner = Runner::new(&t.store, &plan, caller("gece"));
    runner.handler("post", |_| {
        calls.set(calls.get() + 1);
        Err(HandlerError::new("hata"))
    });
    let report = runner.run("grand", date("2026-12-04"), |_| {}).unwrap();
    drop(runner);
    assert!(matches!(report.outcome, RunOutcome::Failed { .. }));
    assert_eq!(calls.get(), 1);
}

#[test]
fn plan_file_retry_policies_checked() {
    let text = r#"
name = "retry"
[[steps]]
order = 1
code = "post"
name = "Kayıt"
retry = { max_attempts = 3, delay_seconds = 300, backoff = 2.0 }
"#;
    let plan = Plan::from_toml(text, "plan.toml").unwrap();
    let policy = plan.steps()[0].retry.unwrap();
    assert_eq!(policy.max_attempts(), 3);
    assert_eq!(policy.delay_before(3), Duration::from_secs(600));
    for (bad, words) in [
        ("retry = { max_attempts = 0 }", "max_attempts 0 is invalid"),
        (
            "retry = { max_attempts = 3, delay_seconds = -5 }",
            "delay_seconds -5 is invalid",
        ),
        (
            "retry = { max_attempts = 3, backoff = 0.5 }",
            "backoff 0.5 is invalid",
        ),
        ("retry = { attempts = 3 }", "unknown field `attempts`"),
    ] {
        let text = format!(
            "name = \"retry\"\n[[steps]]\norder = 1\ncode = \"post\"\nname = \"Kayıt\"\n{bad}\n"
        );
        let err = Plan::from_toml(&text, "plan.toml").unwrap_err().to_string();
        assert!(err.contains(words), "{bad}: {err}");
        assert!(err.contains("plan.toml"), "{err}");
    }
}
