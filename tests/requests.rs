//! Request ids: repeating a call whose id was applied returns the first result, so a caller can
//! settle a commit whose outcome it could not see.

mod common;

use common::{caller, create_temp_store, date, open_standard};
use eodstore::{Error, EventKind, Plan, StepStatus};

#[test]
fn repeated_start_returns_same_claim() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let first = t
        .store
        .start_step(id, 1, &caller("ayşe").request_id("start-1"))
        .unwrap();
    let again = t
        .store
        .start_step(id, 1, &caller("ayşe").request_id("start-1"))
        .unwrap();
    assert_eq!(first, again);
    // Without the request id the same call is a race loser.
    assert!(matches!(
        t.store.start_step(id, 1, &caller("ayşe")),
        Err(Error::ClaimHeld { .. })
    ));
    let starts = t
        .store
        .events(id)
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Started)
        .count();
    assert_eq!(starts, 1);
    assert_eq!(t.store.steps(id).unwrap()[0].attempts, 1);
}

#[test]
fn repeated_complete_returns_first_result() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let started = t.store.start_step(id, 1, &caller("a")).unwrap();
    let token = started.claim.token;
    let first = t
        .store
        .complete_step(id, 1, &token, Some("ok"), &caller("a").request_id("done-1"))
        .unwrap();
    let again = t
        .store
        .complete_step(id, 1, &token, Some("ok"), &caller("a").request_id("done-1"))
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(again.status, StepStatus::Completed);
    let completions = t
        .store
        .events(id)
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Completed)
        .count();
    assert_eq!(completions, 1);
}

#[test]
fn repeated_open_returns_first_created_flags() {
    let t = create_temp_store();
    let plan = Plan::standard();
    let first = t
        .store
        .open_operation(
            "grand",
            date("2026-12-04"),
            &plan,
            &caller("a").request_id("open-1"),
        )
        .unwrap();
    assert!(first.created);
    let id = first.operation.id;
    let started = t.store.start_step(id, 1, &caller("a")).unwrap();
    t.store
        .complete_step(id, 1, &started.claim.token, None, &caller("a"))
        .unwrap();
    let again = t
        .store
        .open_operation(
            "grand",
            date("2026-12-04"),
            &plan,
            &caller("a").request_id("open-1"),
        )
        .unwrap();
    assert_eq!(again, first, "the first result, step 1 still pending in it");
}

#[test]
fn reused_request_id_rejected() {
    let t = create_temp_store();
    let id = open_standard(&t);
    t.store
        .start_step(id, 1, &caller("a").request_id("r-7"))
        .unwrap();
    let err = t
        .store
        .skip_step(id, 3, "not needed", &caller("a").request_id("r-7"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "request id `r-7` was already used for start of step 1 of operation {id} by `a`, not for skip of step 3 of operation {id} by `a`; use a new request id for a new call"
        )
    );
    assert_eq!(t.store.steps(id).unwrap()[2].status, StepStatus::Pending);
}

#[test]
fn rejected_call_records_no_request() {
    let t = create_temp_store();
    let id = open_standard(&t);
    // Step 2 cannot start yet; the failure records nothing, so the id stays free.
    assert!(
        t.store
            .start_step(id, 2, &caller("a").request_id("r-1"))
            .is_err()
    );
    let started = t.store.start_step(id, 1, &caller("a")).unwrap();
    t.store
        .complete_step(id, 1, &started.claim.token, None, &caller("a"))
        .unwrap();
    t.store
        .start_step(id, 2, &caller("a").request_id("r-1"))
        .unwrap();
}

#[test]
fn replay_survives_reopen() {
    let t = create_temp_store();
    let path = t.path();
    let id = open_standard(&t);
    let first = t
        .store
        .start_step(id, 1, &caller("a").request_id("start-x"))
        .unwrap();
    drop(t.store);
    let store = eodstore::Store::open(&path).unwrap();
    let again = store
        .start_step(id, 1, &caller("a").request_id("start-x"))
        .unwrap();
    assert_eq!(again.claim, first.claim);
}

#[test]
fn replay_requires_same_actor_and_claim() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let first = t
        .store
        .start_step(id, 1, &caller("alice").request_id("s-1"))
        .unwrap();
    // Another actor with the same request id gets no claim.
    let err = t
        .store
        .start_step(id, 1, &caller("mallory").request_id("s-1"))
        .unwrap_err();
    assert!(matches!(err, Error::RequestIdReused { .. }), "{err}");
    assert!(!err.to_string().contains(&first.claim.token), "{err}");

    // A completion repeated with another token is rejected, and the message shows no token.
    t.store
        .complete_step(
            id,
            1,
            &first.claim.token,
            None,
            &caller("alice").request_id("c-1"),
        )
        .unwrap();
    let err = t
        .store
        .complete_step(id, 1, "forged", None, &caller("alice").request_id("c-1"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "request id `c-1` was already used for completion of step 1 of operation {id} by `alice`, not for completion of step 1 of operation {id} by `alice` with another claim token; use a new request id for a new call"
        )
    );
}
