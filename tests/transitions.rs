//! Step lifecycle rules, checked inside the write transaction: order, one running step, claims,
//! skips, retries, finishing, and exactly one winner when transitions race.

mod common;

use std::sync::{Arc, Barrier};

use common::{TempStore, caller, create_temp_store, date, open_standard};
use eodstore::{Error, EventKind, OperationId, OperationStatus, Plan, StepStatus};

fn run_step(t: &TempStore, id: OperationId, order: u32) {
    let started = t.store.start_step(id, order, &caller("a")).unwrap();
    t.store
        .complete_step(id, order, &started.claim.token, None, &caller("a"))
        .unwrap();
}

#[test]
fn start_requires_lower_required_steps() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let err = t.store.start_step(id, 2, &caller("a")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "step 2 of operation {id} cannot start: required step 1 (`pre_audit_checks`) has status pending; complete it first"
        )
    );
    run_step(&t, id, 1);
    run_step(&t, id, 2);
    // Steps 3 and 4 are optional, so step 5 may start while they are pending.
    run_step(&t, id, 5);
    // Step 7 waits for required step 6.
    let err = t.store.start_step(id, 7, &caller("a")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StepOutOfOrder {
                blocking_order: 6,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn one_step_runs_at_a_time() {
    let t = create_temp_store();
    let id = open_standard(&t);
    run_step(&t, id, 1);
    run_step(&t, id, 2);
    let running = t.store.start_step(id, 3, &caller("ayşe")).unwrap();
    let err = t.store.start_step(id, 4, &caller("b")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "step 4 of operation {id} cannot start: step 3 is running, claimed by `ayşe` until {}; wait for it to finish",
            running.claim.lease_until
        )
    );
}

#[test]
fn only_claim_holder_finishes() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let started = t.store.start_step(id, 1, &caller("ayşe")).unwrap();
    assert_eq!(started.step.attempts, 1);
    assert_eq!(started.step.status, StepStatus::Running);
    let err = t
        .store
        .complete_step(id, 1, "forged", None, &caller("b"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "step 1 of operation {id} is running, claimed by `ayşe`; the given claim `forged` is not its current claim, so only the current holder may finish it"
        )
    );
    let err = t
        .store
        .fail_step(id, 1, "forged", "boom", None, &caller("b"))
        .unwrap_err();
    assert!(matches!(err, Error::WrongClaim { .. }), "{err}");
    let err = t
        .store
        .renew_claim(id, 1, "forged", &caller("b"))
        .unwrap_err();
    assert!(matches!(err, Error::WrongClaim { .. }), "{err}");
    // A pending step has no claim at all.
    let err = t
        .store
        .complete_step(id, 2, "x", None, &caller("b"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "step 2 of operation {id} is pending; the given claim `x` is not its current claim, so only the current holder may finish it"
        )
    );
    t.store
        .complete_step(id, 1, &started.claim.token, None, &caller("ayşe"))
        .unwrap();
    // The claim is spent once the step completes.
    let err = t
        .store
        .complete_step(id, 1, &started.claim.token, None, &caller("ayşe"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongClaim {
                status: StepStatus::Completed,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn second_start_reports_holder() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let first = t.store.start_step(id, 1, &caller("ayşe")).unwrap();
    let err = t.store.start_step(id, 1, &caller("mehmet")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "step 1 of operation {id} is already running, claimed by `ayşe` until {}; wait for it, or take it over after the lease ends",
            first.claim.lease_until
        )
    );
}

#[test]
fn fail_then_retry_then_complete() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let started = t.store.start_step(id, 1, &caller("a")).unwrap();
    let failed = t
        .store
        .fail_step(
            id,
            1,
            &started.claim.token,
            "kasa açık kaldı",
            Some("çıktı"),
            &caller("a"),
        )
        .unwrap();
    assert_eq!(failed.status, StepStatus::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("kasa açık kaldı"));
    assert_eq!(failed.output_tail.as_deref(), Some("çıktı"));
    assert_eq!(
        t.store.operation(id).unwrap().status,
        OperationStatus::Failed
    );

    let err = t.store.start_step(id, 1, &caller("a")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot start step 1 (`pre_audit_checks`) of operation {id}: its status is failed; retry it first to return it to pending"
        )
    );
    let retried = t.store.retry_step(id, 1, &caller("a")).unwrap();
    assert_eq!(retried.status, StepStatus::Pending);
    assert_eq!(
        t.store.operation(id).unwrap().status,
        OperationStatus::Running
    );
    let again = t.store.start_step(id, 1, &caller("a")).unwrap();
    assert_eq!(again.step.attempts, 2);
    t.store
        .complete_step(id, 1, &again.claim.token, None, &caller("a"))
        .unwrap();
    let err = t.store.retry_step(id, 1, &caller("a")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidTransition {
                action: "retry",
                status: StepStatus::Completed,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn skip_only_optional_steps() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let err = t
        .store
        .skip_step(id, 1, "not today", &caller("a"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot skip step 1 (`pre_audit_checks`) of operation {id}: it is required; run it, or retry it if it failed"
        )
    );
    let err = t.store.skip_step(id, 3, " ", &caller("a")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                what: "skip reason",
                ..
            }
        ),
        "{err}"
    );
    let skipped = t
        .store
        .skip_step(id, 3, "kontrol elle yapıldı", &caller("a"))
        .unwrap();
    assert_eq!(skipped.status, StepStatus::Skipped);
    assert_eq!(skipped.last_error.as_deref(), Some("kontrol elle yapıldı"));
    let err = t.store.skip_step(id, 3, "again", &caller("a")).unwrap_err();
    assert!(
        matches!(err, Error::InvalidTransition { action: "skip", .. }),
        "{err}"
    );
    let events = t.store.events(id).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.kind, EventKind::Skipped);
    assert_eq!(last.message.as_deref(), Some("kontrol elle yapıldı"));
}

#[test]
fn running_step_cannot_be_skipped() {
    let t = create_temp_store();
    let id = open_standard(&t);
    run_step(&t, id, 1);
    run_step(&t, id, 2);
    t.store.start_step(id, 3, &caller("a")).unwrap();
    let err = t.store.skip_step(id, 3, "no", &caller("a")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidTransition {
                action: "skip",
                status: StepStatus::Running,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn finished_operation_rejects_changes() {
    let t = create_temp_store();
    let id = open_standard(&t);
    for order in 1..=10 {
        if [3, 4, 7, 8, 9].contains(&order) {
            t.store
                .skip_step(id, order, "not needed", &caller("a"))
                .unwrap();
        } else {
            run_step(&t, id, order);
        }
    }
    let operation = t.store.operation(id).unwrap();
    assert_eq!(operation.status, OperationStatus::Completed);
    let finished_at = operation.finished_at.unwrap();
    let err = t.store.retry_step(id, 1, &caller("a")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("operation {id} finished at {finished_at} and accepts no further change")
    );
    assert!(matches!(
        t.store.start_step(id, 1, &caller("a")),
        Err(Error::OperationFinished { .. })
    ));
    let events = t.store.events(id).unwrap();
    assert_eq!(events.last().unwrap().kind, EventKind::OperationFinished);
    // Reopening a finished operation is still allowed and returns it as it is.
    let reopened = t
        .store
        .open_operation("grand", date("2026-12-04"), &Plan::standard(), &caller("a"))
        .unwrap();
    assert_eq!(reopened.operation.status, OperationStatus::Completed);
}

#[test]
fn unknown_operation_and_order() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let err = t
        .store
        .start_step(OperationId(999), 1, &caller("a"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "operation 999 not found: list operations with `eod history`"
    );
    let err = t.store.start_step(id, 11, &caller("a")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "operation {id} has no step at order 11: its orders are 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
        )
    );
    assert!(matches!(
        t.store.operation(OperationId(999)),
        Err(Error::OperationNotFound { .. })
    ));
    assert!(matches!(
        t.store.events(OperationId(999)),
        Err(Error::OperationNotFound { .. })
    ));
}

#[test]
fn every_change_has_its_event() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let started = t.store.start_step(id, 1, &caller("ayşe")).unwrap();
    t.store
        .renew_claim(id, 1, &started.claim.token, &caller("ayşe"))
        .unwrap();
    t.store
        .fail_step(id, 1, &started.claim.token, "x", None, &caller("ayşe"))
        .unwrap();
    t.store.retry_step(id, 1, &caller("mehmet")).unwrap();
    let kinds: Vec<EventKind> = t.store.events(id).unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::OperationCreated,
            EventKind::StepsSeeded,
            EventKind::Started,
            EventKind::LeaseRenewed,
            EventKind::Failed,
            EventKind::Retried
        ]
    );
    let events = t.store.events(id).unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let failed = &events[4];
    assert_eq!(failed.step_order, Some(1));
    assert_eq!(failed.from, Some(StepStatus::Running));
    assert_eq!(failed.to, Some(StepStatus::Failed));
    assert_eq!(failed.actor, "ayşe");
    assert_eq!(failed.message.as_deref(), Some("x"));
    assert_eq!(events[5].actor, "mehmet");
    // Paging by sequence number.
    let page = t.store.events_after(id, 2, 2).unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
}

/// Sixteen threads race on each transition; exactly one wins, and the rest get typed errors.
#[test]
fn racing_transitions_one_winner() {
    const THREADS: usize = 16;
    let t = create_temp_store();
    let id = open_standard(&t);
    let store = &t.store;
    let race = |action: &(dyn Fn(usize) -> eodstore::Result<()> + Sync)| -> (usize, Vec<Error>) {
        let barrier = Barrier::new(THREADS);
        let outcomes: Vec<eodstore::Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|thread| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        action(thread)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins = outcomes.iter().filter(|o| o.is_ok()).count();
        (wins, outcomes.into_iter().filter_map(Result::err).collect())
    };

    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (wins, errors) = race(&|thread| {
        let started = store.start_step(id, 1, &caller(&format!("t{thread}")))?;
        tokens.lock().unwrap().push(started.claim.token);
        Ok(())
    });
    assert_eq!(wins, 1);
    assert!(
        errors.iter().all(|e| matches!(e, Error::ClaimHeld { .. })),
        "{errors:?}"
    );
    let token = tokens.lock().unwrap()[0].clone();

    let (wins, errors) = race(&|_| {
        store
            .complete_step(id, 1, &token, None, &caller("x"))
            .map(|_| ())
    });
    assert_eq!(wins, 1);
    assert!(
        errors.iter().all(|e| matches!(
            e,
            Error::WrongClaim {
                status: StepStatus::Completed,
                ..
            }
        )),
        "{errors:?}"
    );

    // Skipping needs no order: one of the racers skips the optional step 3.
    let (wins, errors) = race(&|thread| {
        store
            .skip_step(id, 3, &format!("t{thread}"), &caller("x"))
            .map(|_| ())
    });
    assert_eq!(wins, 1);
    assert!(
        errors.iter().all(|e| matches!(
            e,
            Error::InvalidTransition {
                action: "skip",
                status: StepStatus::Skipped,
                ..
            }
        )),
        "{errors:?}"
    );

    let started = store.start_step(id, 2, &caller("x")).unwrap();
    store
        .fail_step(id, 2, &started.claim.token, "boom", None, &caller("x"))
        .unwrap();
    let (wins, errors) = race(&|_| store.retry_step(id, 2, &caller("x")).map(|_| ()));
    assert_eq!(wins, 1);
    assert!(
        errors.iter().all(|e| matches!(
            e,
            Error::InvalidTransition {
                action: "retry",
                status: StepStatus::Pending,
                ..
            }
        )),
        "{errors:?}"
    );
    let retried = store.steps(id).unwrap()[1].clone();
    assert_eq!(retried.status, StepStatus::Pending);
    assert_eq!(retried.attempts, 1);
}

#[test]
fn long_texts_cut_at_limit() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let reason = "ğ".repeat(eodstore::MAX_MESSAGE);
    let skipped = t.store.skip_step(id, 3, &reason, &caller("a")).unwrap();
    let kept = skipped.last_error.unwrap();
    assert_eq!(kept.len(), eodstore::MAX_MESSAGE);
    assert!(reason.starts_with(&kept));

    let started = t.store.start_step(id, 1, &caller("a")).unwrap();
    let output = format!("başlangıç\n{}", "ç".repeat(eodstore::MAX_OUTPUT_TAIL));
    let error = "x".repeat(eodstore::MAX_MESSAGE + 10);
    let failed = t
        .store
        .fail_step(
            id,
            1,
            &started.claim.token,
            &error,
            Some(&output),
            &caller("a"),
        )
        .unwrap();
    assert_eq!(failed.last_error.unwrap().len(), eodstore::MAX_MESSAGE);
    let tail = failed.output_tail.unwrap();
    assert_eq!(tail.len(), eodstore::MAX_OUTPUT_TAIL);
    assert!(output.ends_with(&tail));
}
