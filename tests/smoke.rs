mod common;
use common::*;
use eodstore::*;

#[test]
fn full_night_audit_by_hand() {
    let t = create_temp_store();
    let plan = Plan::standard();
    let opened = t.store.open_operation("default", date("2026-12-04"), &plan, &caller("ayşe")).unwrap();
    assert!(opened.created);
    assert_eq!(opened.steps.len(), 10);
    let id = opened.operation.id;
    for step in plan.steps() {
        let started = t.store.start_step(id, step.order, &caller("ayşe")).unwrap();
        t.store.complete_step(id, step.order, &started.claim.token, Some("ok"), &caller("ayşe")).unwrap();
    }
    let view = t.store.view(id).unwrap();
    assert_eq!(view.operation.status, OperationStatus::Completed);
    assert!(view.operation.finished_at.is_some());
    let events = t.store.events(id).unwrap();
    assert_eq!(events.len(), 2 + 20 + 1);
    let again = t.store.open_operation("default", date("2026-12-04"), &plan, &caller("b")).unwrap();
    assert!(!again.created);
    drop(t.store);
}
