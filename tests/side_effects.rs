//! Exactly-once side effects: a step's writes to the application's own tables commit in the
//! transaction that completes the step, or not at all. A failing handler leaves nothing behind
//! and does not fail other writers' requests.

mod common;

use common::{caller, create_temp_store, date, plan_step};
use eodstore::redb::{ReadableTable as _, ReadableTableMetadata as _, TableDefinition};
use eodstore::runner::{HandlerError, RunOutcome, Runner};
use eodstore::{Error, EventKind, OperationId, Plan, StepStatus, Store};

/// The application's postings: `(operation, line)` to an amount.
const POSTINGS: TableDefinition<(u64, u32), i64> = TableDefinition::new("pms_postings");

fn plan() -> Plan {
    let step = |order, code| plan_step(order, code, true);
    Plan::new("post", vec![step(1, "checks"), step(2, "post")]).unwrap()
}

fn postings(store: &Store, id: OperationId) -> Vec<i64> {
    store
        .read_app(|app| {
            let Some(table) = app.open_table(POSTINGS)? else {
                return Ok(Vec::new());
            };
            Ok(table
                .range((id.0, 0)..=(id.0, u32::MAX))
                .unwrap()
                .map(|entry| entry.unwrap().1.value())
                .collect())
        })
        .unwrap()
}

/// Opens the operation, completes step 1 and starts step 2; returns the id and step 2's token.
fn started(store: &Store) -> (OperationId, String) {
    let id = store
        .open_operation("grand", date("2026-12-04"), &plan(), &caller("gece"))
        .unwrap()
        .operation
        .id;
    let first = store.start_step(id, 1, &caller("gece")).unwrap();
    store
        .complete_step(id, 1, &first.claim.token, None, &caller("gece"))
        .unwrap();
    let token = store
        .start_step(id, 2, &caller("gece"))
        .unwrap()
        .claim
        .token;
    (id, token)
}

/// Returns failed step 2 to pending and starts it again; returns its new claim token.
fn retry_and_start(store: &Store, id: OperationId) -> String {
    store.retry_step(id, 2, &caller("gece")).unwrap();
    store
        .start_step(id, 2, &caller("gece"))
        .unwrap()
        .claim
        .token
}

#[test]
fn effects_commit_with_completion() {
    let t = create_temp_store();
    let (id, token) = started(&t.store);
    let step = t
        .store
        .complete_step_with(id, 2, &token, &caller("gece"), |effects| {
            assert_eq!(
                effects.idempotency_key(),
                format!("eod:grand:2026-12-04:{id}:2:1")
            );
            let mut table = effects.open_table(POSTINGS)?;
            for line in 0..3u32 {
                table.insert((id.0, line), 100 * i64::from(line + 1))?;
            }
            Ok(Some("3 postings".into()))
        })
        .unwrap();
    assert_eq!(step.status, StepStatus::Completed);
    assert_eq!(step.output_tail.as_deref(), Some("3 postings"));
    assert_eq!(postings(&t.store, id), [100, 200, 300]);
    assert!(t.store.operation(id).unwrap().finished_at.is_some());
}

#[test]
fn failing_effects_leave_nothing() {
    let t = create_temp_store();
    let (id, token) = started(&t.store);
    let step = t
        .store
        .complete_step_with(id, 2, &token, &caller("gece"), |effects| {
            let mut table = effects.open_table(POSTINGS)?;
            table.insert((id.0, 0), 100)?;
            table.insert((id.0, 1), 200)?;
            Err(HandlerError::new("the rate of room 204 is missing"))
        })
        .unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(
        step.last_error.as_deref(),
        Some("the rate of room 204 is missing")
    );
    assert!(postings(&t.store, id).is_empty());

    let token = retry_and_start(&t.store, id);
    let step = t
        .store
        .complete_step_with(id, 2, &token, &caller("gece"), |effects| {
            let mut table = effects.open_table(POSTINGS)?;
            table.insert((id.0, 0), 100)?;
            panic!("bug in the posting code");
        })
        .unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert!(
        step.last_error
            .as_deref()
            .unwrap()
            .contains("bug in the posting code"),
        "{step:?}"
    );
    assert!(postings(&t.store, id).is_empty());

    // The third attempt posts once, with its own idempotency key.
    let token = retry_and_start(&t.store, id);
    t.store
        .complete_step_with(id, 2, &token, &caller("gece"), |effects| {
            assert!(effects.idempotency_key().ends_with(":2:3"));
            effects.open_table(POSTINGS)?.insert((id.0, 0), 100)?;
            Ok(None)
        })
        .unwrap();
    assert_eq!(postings(&t.store, id), [100]);
    let events = t.store.events(id).unwrap();
    let failed = events
        .iter()
        .filter(|event| event.kind == EventKind::Failed)
        .count();
    assert_eq!(failed, 2);
}

#[test]
fn wrong_claim_and_own_tables_rejected() {
    let t = create_temp_store();
    let (id, token) = started(&t.store);
    let mut ran = false;
    let err = t
        .store
        .complete_step_with(id, 2, "forged", &caller("gece"), |_| {
            ran = true;
            Ok(None)
        })
        .unwrap_err();
    assert!(matches!(err, Error::WrongClaim { .. }), "{err}");
    assert!(!ran);

    let step = t
        .store
        .complete_step_with(id, 2, &token, &caller("gece"), |effects| {
            let steps: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("steps");
            effects.open_table(steps)?;
            Ok(None)
        })
        .unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert!(
        step.last_error
            .as_deref()
            .unwrap()
            .contains("eodstore's own tables"),
        "{step:?}"
    );
}

#[test]
fn repeated_request_skips_effects() {
    let t = create_temp_store();
    let (id, token) = started(&t.store);
    let who = caller("gece").request_id("post-2026-12-04");
    let mut calls = 0;
    for _ in 0..2 {
        let step = t
            .store
            .complete_step_with(id, 2, &token, &who, |effects| {
                calls += 1;
                effects.open_table(POSTINGS)?.insert((id.0, 0), 100)?;
                Ok(None)
            })
            .unwrap();
        assert_eq!(step.status, StepStatus::Completed);
    }
    assert_eq!(calls, 1);
    assert_eq!(postings(&t.store, id), [100]);
}

/// While one thread's handler fails after writing, other threads keep making calls through
/// group commit. Every one of them succeeds, and none of the failed handler's rows remain.
#[test]
fn failing_effects_spare_other_writers() {
    let mut t = create_temp_store();
    let plan = &plan();
    let store = &t.store;
    std::thread::scope(|scope| {
        for writer in 0..4 {
            scope.spawn(move || {
                for day in 1..=10 {
                    let property = format!("otel-{writer}");
                    let day = date(&format!("2026-11-{day:02}"));
                    let id = store
                        .open_operation(&property, day, plan, &caller("kasa"))
                        .unwrap()
                        .operation
                        .id;
                    let started = store.start_step(id, 1, &caller("kasa")).unwrap();
                    store
                        .complete_step(id, 1, &started.claim.token, None, &caller("kasa"))
                        .unwrap();
                    let started = store.start_step(id, 2, &caller("kasa")).unwrap();
                    store
                        .complete_step(id, 2, &started.claim.token, None, &caller("kasa"))
                        .unwrap();
                }
            });
        }
        scope.spawn(move || {
            for day in 1..=10 {
                let day = date(&format!("2026-11-{day:02}"));
                let mut runner = Runner::new(store, plan, caller("gece"));
                runner.handler("checks", |_| Ok(None));
                runner.handler_with_effects("post", |ctx, effects| {
                    let mut table = effects.open_table(POSTINGS)?;
                    table.insert((ctx.operation.id.0, 0), 100)?;
                    if ctx.attempt() == 1 {
                        return Err(HandlerError::new("gateway timeout"));
                    }
                    table.insert((ctx.operation.id.0, 1), 200)?;
                    Ok(None)
                });
                let report = runner.run("gece-oteli", day, |_| {}).unwrap();
                assert!(matches!(report.outcome, RunOutcome::Failed { .. }));
                let report = runner.run("gece-oteli", day, |_| {}).unwrap();
                assert_eq!(report.outcome, RunOutcome::Completed);
                assert_eq!(postings(store, report.operation.id), [100, 200]);
            }
        });
    });
    let count = t
        .store
        .read_app(|app| Ok(app.open_table(POSTINGS)?.unwrap().len().unwrap()))
        .unwrap();
    assert_eq!(count, 20);
    let report = t.store.check_integrity().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.operations, 50);
}

/// A write call of the store inside a side-effect handler fails instead of waiting for the write
/// slot that the handler holds, and the step fails with that error.
#[test]
fn store_write_inside_handler_rejected() {
    let t = create_temp_store();
    let (id, token) = started(&t.store);
    let step = t
        .store
        .complete_step_with(id, 2, &token, &caller("gece"), |effects| {
            effects.open_table(POSTINGS)?.insert((id.0, 0), 100)?;
            t.store
                .set_business_date("grand", date("2026-12-05"), &caller("gece"))?;
            Ok(None)
        })
        .unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert!(
        step.last_error
            .as_deref()
            .unwrap()
            .contains("write call inside a side-effect handler"),
        "{step:?}"
    );
    assert!(postings(&t.store, id).is_empty());
    // Outside the handler the same call works.
    t.store
        .set_business_date("grand", date("2026-12-05"), &caller("gece"))
        .unwrap();
}
