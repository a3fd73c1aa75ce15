//! Opening and seeding operations: one operation per property and day, steps inserted only
//! where absent, racing callers all getting the same complete list, and plan identity checks.

mod common;

use std::sync::{Arc, Barrier};

use common::{caller, create_temp_store, date};
use eodstore::{
    ConcurrencyMode, Durability, Error, MIN_CACHE_SIZE, OperationStatus, Plan, PlanStep,
    StepStatus, Store, StoreOptions,
};

fn step(order: u32, code: &str, name: &str, required: bool) -> PlanStep {
    PlanStep {
        order,
        code: code.into(),
        name: name.into(),
        required,
        command: None,
        timeout_seconds: None,
        schedule: None,
        retry: None,
    }
}

fn turkish_plan() -> Plan {
    Plan::new(
        "gün sonu",
        vec![
            step(1, "pre_audit_checks", "Ön Denetim Kontrolleri", true),
            step(2, "no_shows", "Gelmeyen Misafirler (No-Show) İşlemi", false),
            step(3, "roll_business_date", "Gün Sonu İşlemi", true),
        ],
    )
    .unwrap()
}

#[test]
fn open_creates_operation_and_steps() {
    let t = create_temp_store();
    let plan = Plan::standard();
    let opened = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("ayşe"))
        .unwrap();
    assert!(opened.created);
    assert_eq!(opened.operation.property, "grand");
    assert_eq!(opened.operation.business_date, date("2026-12-04"));
    assert_eq!(opened.operation.plan, "standard");
    assert_eq!(opened.operation.status, OperationStatus::Open);
    assert_eq!(opened.operation.created_by, "ayşe");
    let orders: Vec<u32> = opened.steps.iter().map(|s| s.step.order).collect();
    assert_eq!(orders, (1..=10).collect::<Vec<_>>());
    assert!(
        opened
            .steps
            .iter()
            .all(|s| s.created && s.step.status == StepStatus::Pending)
    );
}

#[test]
fn reopen_returns_same_id_uncreated() {
    let t = create_temp_store();
    let plan = Plan::standard();
    let first = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("a"))
        .unwrap();
    let second = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("b"))
        .unwrap();
    assert_eq!(first.operation.id, second.operation.id);
    assert!(!second.created);
    assert!(second.steps.iter().all(|s| !s.created));
    // Another day or another property is another operation.
    let other_day = t
        .store
        .open_operation("grand", date("2026-12-05"), &plan, &caller("a"))
        .unwrap();
    let other_hotel = t
        .store
        .open_operation("palas", date("2026-12-04"), &plan, &caller("a"))
        .unwrap();
    assert_ne!(other_day.operation.id, first.operation.id);
    assert_ne!(other_hotel.operation.id, first.operation.id);
    assert_ne!(other_hotel.operation.id, other_day.operation.id);
}

#[test]
fn reopen_returns_stored_progress() {
    let t = create_temp_store();
    let plan = Plan::standard();
    let id = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("a"))
        .unwrap()
        .operation
        .id;
    let started = t.store.start_step(id, 1, &caller("ayşe")).unwrap();
    t.store
        .complete_step(
            id,
            1,
            &started.claim.token,
            Some("all good"),
            &caller("ayşe"),
        )
        .unwrap();

    let again = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("b"))
        .unwrap();
    let first = &again.steps[0].step;
    assert_eq!(first.status, StepStatus::Completed);
    assert_eq!(first.actor.as_deref(), Some("ayşe"));
    assert_eq!(first.output_tail.as_deref(), Some("all good"));
    assert!(first.started_at.is_some() && first.finished_at.is_some());
    assert_eq!(again.operation.status, OperationStatus::Running);
}

#[test]
fn turkish_names_round_trip_exactly() {
    let t = create_temp_store();
    let plan = turkish_plan();
    let opened = t
        .store
        .open_operation(
            "Kapadokya Otel",
            date("2026-12-04"),
            &plan,
            &caller("Çağrı"),
        )
        .unwrap();
    let names: Vec<&str> = opened.steps.iter().map(|s| s.step.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Ön Denetim Kontrolleri",
            "Gelmeyen Misafirler (No-Show) İşlemi",
            "Gün Sonu İşlemi"
        ]
    );
    let path = t.path();
    drop(t.store);
    let store = eodstore::Store::open(&path).unwrap();
    let view = store
        .view_by_date("Kapadokya Otel", date("2026-12-04"))
        .unwrap();
    assert_eq!(view.operation.plan, "gün sonu");
    assert_eq!(view.operation.created_by, "Çağrı");
    assert_eq!(view.steps[2].name, "Gün Sonu İşlemi");
}

#[test]
fn translated_plan_reopens_cleanly() {
    let t = create_temp_store();
    let english = Plan::standard();
    let turkish = Plan::new(
        "standart",
        english
            .steps()
            .iter()
            .map(|s| PlanStep {
                name: format!("{} (TR)", s.name),
                ..s.clone()
            })
            .collect(),
    )
    .unwrap();
    let first = t
        .store
        .open_operation("grand", date("2026-12-04"), &english, &caller("a"))
        .unwrap();
    let second = t
        .store
        .open_operation("grand", date("2026-12-04"), &turkish, &caller("a"))
        .unwrap();
    assert_eq!(first.operation.id, second.operation.id);
    // Stored names stay those of the first seeding.
    assert_eq!(second.steps[0].step.name, "Pre-audit checks");
}

#[test]
fn conflicting_plan_rejected_writes_nothing() {
    let t = create_temp_store();
    let plan = turkish_plan();
    let opened = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("a"))
        .unwrap();
    let id = opened.operation.id;
    let events_before = t.store.events(id).unwrap();

    let other_code = Plan::new(
        "other",
        vec![
            step(1, "pre_audit_checks", "x", true),
            step(2, "departures_check", "y", false),
            step(3, "roll_business_date", "z", true),
        ],
    )
    .unwrap();
    let err = t
        .store
        .open_operation("grand", date("2026-12-04"), &other_code, &caller("a"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "operation {id} was seeded with plan `gün sonu`, which differs from the given plan: \
             at order 2 the stored code is `no_shows`, the given code is `departures_check`; \
             open it with its original plan, or use another date or property"
        )
    );

    let extra_step = Plan::new(
        "longer",
        vec![
            step(1, "pre_audit_checks", "x", true),
            step(2, "no_shows", "y", false),
            step(3, "roll_business_date", "z", true),
            step(4, "reports", "r", false),
        ],
    )
    .unwrap();
    let err = t
        .store
        .open_operation("grand", date("2026-12-04"), &extra_step, &caller("a"))
        .unwrap_err();
    assert!(matches!(err, Error::PlanConflict { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("only the given plan has order 4 (step `reports` (optional))"),
        "{err}"
    );

    let now_required = Plan::new(
        "stricter",
        vec![
            step(1, "pre_audit_checks", "x", true),
            step(2, "no_shows", "y", true),
            step(3, "roll_business_date", "z", true),
        ],
    )
    .unwrap();
    let err = t
        .store
        .open_operation("grand", date("2026-12-04"), &now_required, &caller("a"))
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "at order 2 step `no_shows` is optional in the stored plan, required in the given one"
        ),
        "{err}"
    );

    // Nothing of those calls was written.
    assert_eq!(t.store.events(id).unwrap(), events_before);
    assert_eq!(t.store.steps(id).unwrap().len(), 3);
    assert_eq!(t.store.history("grand", 10).unwrap().len(), 1);
}

#[test]
fn invalid_input_rejected_before_writing() {
    let t = create_temp_store();
    let plan = Plan::standard();
    for property in ["", "   ", "tab\there"] {
        let err = t
            .store
            .open_operation(property, date("2026-12-04"), &plan, &caller("a"))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    what: "property",
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller(" "))
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid actor ` `: it must not be blank");
    assert!(t.store.history("grand", 10).unwrap().is_empty());
}

/// Sixteen threads race to open and seed one new operation, two hundred times: every caller gets
/// the identical complete list, and exactly one caller created the operation and each step.
#[test]
fn seed_concurrent_callers_same_steps() {
    const THREADS: usize = 16;
    const TRIALS: usize = 200;
    let t = create_temp_store();
    let store = &t.store;
    let plan = Plan::standard();
    for trial in 0..TRIALS {
        let barrier = Arc::new(Barrier::new(THREADS));
        let property = format!("hotel-{trial}");
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|thread| {
                    let barrier = barrier.clone();
                    let property = &property;
                    let plan = &plan;
                    scope.spawn(move || {
                        barrier.wait();
                        store.open_operation(
                            property,
                            date("2026-12-04"),
                            plan,
                            &caller(&format!("terminal-{thread}")),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let results: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
        let id = results[0].operation.id;
        let plan_orders: Vec<(u32, &str)> = plan
            .steps()
            .iter()
            .map(|s| (s.order, s.code.as_str()))
            .collect();
        for opened in &results {
            assert_eq!(opened.operation.id, id, "trial {trial}");
            let got: Vec<(u32, &str)> = opened
                .steps
                .iter()
                .map(|s| (s.step.order, s.step.code.as_str()))
                .collect();
            assert_eq!(got, plan_orders, "trial {trial}");
        }
        assert_eq!(
            results.iter().filter(|o| o.created).count(),
            1,
            "trial {trial}"
        );
        for index in 0..plan.steps().len() {
            let creators = results.iter().filter(|o| o.steps[index].created).count();
            assert_eq!(creators, 1, "trial {trial}, step index {index}");
        }
        let stored = store.steps(id).unwrap();
        assert_eq!(stored.len(), plan.steps().len(), "trial {trial}");
    }
    assert_eq!(store.history("hotel-0", 10).unwrap().len(), 1);
}

#[test]
fn snapshot_path_skips_write() {
    // A fully seeded operation is returned from a read snapshot: the event trail does not grow,
    // and a reopen with a request id records nothing (so reusing that id later is allowed).
    let t = create_temp_store();
    let plan = Plan::standard();
    let id = t
        .store
        .open_operation("grand", date("2026-12-04"), &plan, &caller("a"))
        .unwrap()
        .operation
        .id;
    let events = t.store.events(id).unwrap().len();
    for _ in 0..5 {
        t.store
            .open_operation(
                "grand",
                date("2026-12-04"),
                &plan,
                &caller("a").request_id("r1"),
            )
            .unwrap();
    }
    assert_eq!(t.store.events(id).unwrap().len(), events);
    t.store
        .start_step(id, 1, &caller("a").request_id("r1"))
        .unwrap();
}

/// A store whose file outgrows the smallest cache keeps every operation readable and seeds more.
#[test]
fn smallest_cache_serves_larger_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small-cache.redb");
    let options = || StoreOptions::new().cache_size(MIN_CACHE_SIZE);
    let plan = Plan::standard();
    let first = date("2026-01-01");
    let days: i64 = 1500;
    {
        // Loaded without fsyncs, which the exclusive-writer mode allows, to keep the test short.
        let loading = options()
            .create(true)
            .concurrency(ConcurrencyMode::ExclusiveWriter)
            .durability(Durability::None);
        let store = Store::open_with(&path, loading).unwrap();
        for day in 0..days {
            let business_date = first.checked_add(jiff::Span::new().days(day)).unwrap();
            let opened = store
                .open_operation("grand", business_date, &plan, &caller("kasa"))
                .unwrap();
            assert!(opened.created, "{business_date} was not created");
        }
    }
    let file_bytes = std::fs::metadata(&path).unwrap().len();
    assert!(
        file_bytes > 2 * MIN_CACHE_SIZE as u64,
        "the file has {file_bytes} bytes, too few to outgrow the cache"
    );

    let mut store = Store::open_with(&path, options()).unwrap();
    for day in 0..days {
        let business_date = first.checked_add(jiff::Span::new().days(day)).unwrap();
        let view = store.view_by_date("grand", business_date).unwrap();
        assert_eq!(view.steps.len(), plan.steps().len(), "{business_date}");
    }
    let next = first.checked_add(jiff::Span::new().days(days)).unwrap();
    let opened = store
        .open_operation("grand", next, &plan, &caller("kasa"))
        .unwrap();
    assert!(opened.created);
    assert!(store.check_integrity().unwrap().is_clean());
}
