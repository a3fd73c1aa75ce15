//! Claims and leases: takeover after the lease ends or when the holding process is gone, and
//! renewal keeping a live holder's step. Time comes from a manual clock; nothing sleeps.

mod common;

use common::{TempStore, caller, create_temp_store, open_standard};
use eodstore::{Error, EventKind, ProcessRef, StepStatus};
use jiff::SignedDuration;

/// Returns the identity of a process that has exited.
fn dead_process() -> ProcessRef {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let mut me = eodstore::process::current_process();
    me.pid = pid;
    me
}

#[test]
fn expired_lease_allows_takeover() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let first = t
        .store
        .start_step(id, 1, &caller("ayşe").lease(SignedDuration::from_mins(5)))
        .unwrap();
    t.clock.advance(SignedDuration::from_mins(4));
    assert!(matches!(
        t.store.start_step(id, 1, &caller("mehmet")),
        Err(Error::ClaimHeld { .. })
    ));

    t.clock.advance(SignedDuration::from_mins(1));
    let second = t.store.start_step(id, 1, &caller("mehmet")).unwrap();
    assert_ne!(second.claim.token, first.claim.token);
    assert_eq!(second.step.attempts, 2);
    assert_eq!(second.step.actor.as_deref(), Some("mehmet"));
    let previous = second.took_over_from.unwrap();
    assert!(
        previous.starts_with("took over from `ayşe`: its lease ended at"),
        "{previous}"
    );

    // The old holder can no longer finish the step; the new one can.
    let err = t
        .store
        .complete_step(id, 1, &first.claim.token, None, &caller("ayşe"))
        .unwrap_err();
    assert!(matches!(err, Error::WrongClaim { .. }), "{err}");
    t.store
        .complete_step(id, 1, &second.claim.token, None, &caller("mehmet"))
        .unwrap();

    let takeover = t
        .store
        .events(id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == EventKind::TakenOver)
        .unwrap();
    assert_eq!(takeover.actor, "mehmet");
    assert_eq!(takeover.from, Some(StepStatus::Running));
    assert!(takeover.message.unwrap().contains("took over from `ayşe`"));
}

#[test]
fn renewal_keeps_live_holder() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let lease = SignedDuration::from_mins(5);
    let started = t
        .store
        .start_step(id, 1, &caller("runner").lease(lease))
        .unwrap();
    for _ in 0..10 {
        t.clock.advance(SignedDuration::from_mins(3));
        let renewed = t
            .store
            .renew_claim(id, 1, &started.claim.token, &caller("runner").lease(lease))
            .unwrap();
        assert_eq!(renewed.lease_until, t.clock_now() + lease);
        assert!(matches!(
            t.store.start_step(id, 1, &caller("other")),
            Err(Error::ClaimHeld { .. })
        ));
    }
    t.store
        .complete_step(id, 1, &started.claim.token, None, &caller("runner"))
        .unwrap();
}

#[test]
fn dead_process_taken_over_at_once() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let crashed = caller("runner").process(dead_process());
    t.store.start_step(id, 1, &crashed).unwrap();
    // The lease has not ended, but the holding process is gone.
    let resumed = t.store.start_step(id, 1, &caller("runner")).unwrap();
    let previous = resumed.took_over_from.unwrap();
    assert!(previous.contains("no longer exists"), "{previous}");
    assert_eq!(resumed.step.attempts, 2);
}

#[test]
fn live_process_keeps_claim() {
    let t = create_temp_store();
    let id = open_standard(&t);
    let live = caller("runner").process(eodstore::process::current_process());
    t.store.start_step(id, 1, &live).unwrap();
    let err = t.store.start_step(id, 1, &caller("other")).unwrap_err();
    assert!(matches!(err, Error::ClaimHeld { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("`runner` (process {}", std::process::id())),
        "{err}"
    );
}

#[test]
fn manual_claim_expires_by_lease_only() {
    let t = create_temp_store();
    let id = open_standard(&t);
    // A claim without a process is not taken over before its lease ends.
    t.store.start_step(id, 1, &caller("ayşe")).unwrap();
    t.clock
        .advance(eodstore::DEFAULT_LEASE - SignedDuration::from_secs(1));
    assert!(matches!(
        t.store.start_step(id, 1, &caller("b")),
        Err(Error::ClaimHeld { .. })
    ));
    t.clock.advance(SignedDuration::from_secs(1));
    t.store.start_step(id, 1, &caller("b")).unwrap();
}

#[test]
fn invalid_lease_rejected() {
    let t = create_temp_store();
    let id = open_standard(&t);
    for lease in [
        SignedDuration::ZERO,
        SignedDuration::from_secs(-5),
        SignedDuration::from_hours(24 * 8),
    ] {
        let err = t
            .store
            .start_step(id, 1, &caller("a").lease(lease))
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { what: "lease", .. }),
            "{err}"
        );
    }
    assert_eq!(t.store.steps(id).unwrap()[0].status, StepStatus::Pending);
}

trait ClockNow {
    fn clock_now(&self) -> jiff::Timestamp;
}

impl ClockNow for TempStore {
    fn clock_now(&self) -> jiff::Timestamp {
        use eodstore::Clock;
        self.clock.now()
    }
}
