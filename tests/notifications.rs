//! Notifications: subscribers get every committed change in commit order and nothing of a
//! rejected or rolled-back call. A panicking or slow subscriber neither blocks nor breaks
//! writers, and the `changes` table lets another store on the file follow the changes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{caller, create_temp_store, date};
use eodstore::runner::HandlerError;
use eodstore::{EventKind, Notification, Plan, Store, StoreOptions};

/// A store without a manual clock, for the test that needs many quick commits.
struct Quick {
    store: Store,
}

/// Collects every notification of `store` into a channel.
fn collect(store: &Store) -> (eodstore::Subscription, mpsc::Receiver<Notification>) {
    let (sender, receiver) = mpsc::channel();
    let sender = Mutex::new(sender);
    let subscription = store
        .subscribe(move |notification| {
            let _ = sender.lock().unwrap().send(notification.clone());
        })
        .unwrap();
    (subscription, receiver)
}

fn changes(receiver: &mpsc::Receiver<Notification>, count: usize) -> Vec<eodstore::Change> {
    (0..count)
        .map(
            |_| match receiver.recv_timeout(Duration::from_secs(10)).unwrap() {
                Notification::Change(change) => change,
                other => panic!("{other:?}"),
            },
        )
        .collect()
}

#[test]
fn subscribers_get_commits_in_order() {
    let t = create_temp_store();
    let (_subscription, receiver) = collect(&t.store);
    let id = t
        .store
        .open_operation(
            "grand",
            date("2026-12-04"),
            &Plan::standard(),
            &caller("gece"),
        )
        .unwrap()
        .operation
        .id;
    // Rejected calls write nothing and notify nothing.
    t.store.start_step(id, 5, &caller("gece")).unwrap_err();
    t.store
        .skip_step(id, 1, "gerek yok", &caller("gece"))
        .unwrap_err();
    let started = t.store.start_step(id, 1, &caller("gece")).unwrap();
    // A side-effect handler that fails rolls back: its completion is never announced, only the
    // failure written after it.
    let failed = t
        .store
        .complete_step_with(id, 1, &started.claim.token, &caller("gece"), |_| {
            Err(HandlerError::new("kontrol başarısız"))
        })
        .unwrap();
    assert_eq!(failed.status, eodstore::StepStatus::Failed);

    let got = changes(&receiver, 4);
    let kinds: Vec<EventKind> = got.iter().map(|change| change.event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::OperationCreated,
            EventKind::StepsSeeded,
            EventKind::Started,
            EventKind::Failed
        ]
    );
    assert!(got.windows(2).all(|pair| pair[0].change < pair[1].change));
    assert!(got.iter().all(|change| change.property == "grand"
        && change.business_date == date("2026-12-04")
        && change.operation == id));
    assert!(receiver.recv_timeout(Duration::from_millis(200)).is_err());
    // The store's own log agrees.
    let logged = t.store.changes_after(0, 100).unwrap();
    assert_eq!(logged, got);
    assert_eq!(t.store.last_change().unwrap(), got[3].change);
}

#[test]
fn bad_subscribers_never_block_writers() {
    // Thousands of commits: unsynced ones keep the test quick.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path().join("eod.redb"),
        StoreOptions::new()
            .create(true)
            .durability(eodstore::Durability::None)
            .concurrency(eodstore::ConcurrencyMode::ExclusiveWriter),
    )
    .unwrap();
    let t = Quick { store };
    let panicked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&panicked);
    let _panicking = t
        .store
        .subscribe(move |_| {
            let count = counter.fetch_add(1, Ordering::Relaxed) + 1;
            // A few panics are enough, and each prints a message.
            assert!(count > 3, "abone hatası");
        })
        .unwrap();
    // A subscriber that blocks until the test lets it go.
    let (release, blocked) = mpsc::channel::<()>();
    let blocked = Mutex::new(blocked);
    let slow_seen = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&slow_seen);
    let _slow = t
        .store
        .subscribe(move |notification| {
            let _ = blocked.lock().unwrap().recv();
            seen.lock().unwrap().push(notification.clone());
        })
        .unwrap();
    let (_collector, receiver) = collect(&t.store);

    // More changes than a queue holds: writers finish although the slow subscriber waits.
    let plan = Plan::standard();
    let mut written = 0;
    for day in 1..=30 {
        let day = date(&format!("2026-11-{day:02}"));
        for property in 0..70 {
            t.store
                .open_operation(&format!("otel-{property}"), day, &plan, &caller("gece"))
                .unwrap();
            written += 2;
        }
    }
    assert!(written > eodstore::NOTIFICATION_QUEUE);
    // The collecting subscriber got everything, in order, after the panics.
    let got = changes(&receiver, written);
    assert!(
        got.windows(2)
            .all(|pair| pair[0].change + 1 == pair[1].change)
    );
    assert!(panicked.load(Ordering::Relaxed) > 3);

    // The slow one receives the number it missed once it catches up.
    drop(release);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = slow_seen.lock().unwrap();
        let delivered = seen
            .iter()
            .filter(|n| matches!(n, Notification::Change(_)))
            .count();
        if delivered >= eodstore::NOTIFICATION_QUEUE {
            break;
        }
        drop(seen);
        assert!(
            std::time::Instant::now() < deadline,
            "the slow subscriber stalled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // One more change, after the queue has room, brings the count of the missed ones.
    t.store
        .open_operation("otel-son", date("2026-12-01"), &plan, &caller("gece"))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let missed = loop {
        let seen = slow_seen.lock().unwrap();
        if let Some(count) = seen.iter().find_map(|n| match n {
            Notification::Missed { count } => Some(*count),
            _ => None,
        }) {
            break count;
        }
        drop(seen);
        assert!(
            std::time::Instant::now() < deadline,
            "no missed count arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(missed > 0);
}

/// A second store on the same file (as another process would have) follows the first's
/// changes through the `changes` table.
#[test]
fn other_store_follows_changes() {
    let t = create_temp_store();
    let other = Store::open_with(t.path(), StoreOptions::new().read_only(true)).unwrap();
    let start = other.last_change().unwrap();
    let opened = t
        .store
        .open_operation(
            "grand",
            date("2026-12-04"),
            &Plan::standard(),
            &caller("gece"),
        )
        .unwrap();
    let started = t
        .store
        .start_step(opened.operation.id, 1, &caller("gece"))
        .unwrap();
    t.store
        .complete_step(
            opened.operation.id,
            1,
            &started.claim.token,
            Some("tamam"),
            &caller("gece"),
        )
        .unwrap();
    let seen = other.changes_after(start, 100).unwrap();
    let kinds: Vec<EventKind> = seen.iter().map(|change| change.event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::OperationCreated,
            EventKind::StepsSeeded,
            EventKind::Started,
            EventKind::Completed
        ]
    );
    // Paging: after the last one seen there is nothing more.
    let last = seen.last().unwrap().change;
    assert!(other.changes_after(last, 100).unwrap().is_empty());
    assert_eq!(other.changes_after(start, 2).unwrap().len(), 2);
}
