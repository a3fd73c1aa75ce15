//! Fault injection: a night-audit scenario on a simulated disk, failing each of its I/O calls in
//! turn, cutting the power at each of its syncs, and running the disk full.
//!
//! A reference run without faults records the outcome of every call of the scenario, the I/O
//! calls each one makes and the logical state (operations, steps, events and request records)
//! between calls. A run with I/O call N failing must give the call that made it a typed storage
//! error. After the store is dropped and opened again, the state must equal the state before
//! that call or the state after it, and repeating the call with its request id must give the
//! reference outcome. A power cut must leave a store that opens clean and contains the state
//! before or after the call that was running.
//!
//! A second power cut or an I/O fault during the open that recovers a crash image must still
//! leave a store that opens clean with a state the first crash allowed. A power cut or an I/O
//! fault during `Store::check_integrity` of a clean store must leave its state as it was. A disk
//! that lies about its syncs voids every promise, so that loop asserts only that every failure
//! is a typed error and prints what the images held.
//!
//! `cargo test` runs a sample of the I/O calls that includes the first and last call of each
//! kind. The exhaustive run covers every call, in both concurrency modes, and prints its figures.
//!
//! ```sh
//! cargo test --release --test fault_injection exhaustive -- --ignored --nocapture
//! ```

mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::error::Error as _;
use std::sync::{Arc, Once, OnceLock};
use std::time::Instant;

use common::fault::{Capacity, EIO, ENOSPC, FaultMode, IoKind, SharedDisk, SplitMix64};
use eodstore::{
    Caller, ConcurrencyMode, Error, ErrorCategory, Event, ManualClock, Operation, OperationId,
    Plan, PlanStep, Step, Store, StoreOptions,
};
use jiff::SignedDuration;

/// The label that stands for the store's path in messages.
const LABEL: &str = "simulated-disk";
/// The properties the scenario opens operations for.
const PROPERTIES: [&str; 2] = ["grand-hotel", "harbor-view"];

/// Which plan an operation is opened with.
#[derive(Debug, Clone, Copy)]
enum PlanChoice {
    Standard,
    Small,
}

/// One call of the scenario. Write calls carry the request id that makes repeating them safe.
#[derive(Debug, Clone)]
enum Call {
    /// Creates the store on the empty disk.
    Create,
    /// Opens the store on a new handle, as a restarted program does.
    Reopen,
    /// Drops the store, which closes redb's handle.
    Close,
    /// Moves the clock, with no I/O.
    Advance(SignedDuration),
    OpenOperation {
        property: &'static str,
        plan: PlanChoice,
        actor: &'static str,
        request: &'static str,
    },
    Start {
        operation: u64,
        order: u32,
        actor: &'static str,
        lease: Option<SignedDuration>,
        request: &'static str,
    },
    Renew {
        operation: u64,
        order: u32,
        actor: &'static str,
        request: &'static str,
    },
    Complete {
        operation: u64,
        order: u32,
        actor: &'static str,
        request: &'static str,
    },
    Fail {
        operation: u64,
        order: u32,
        actor: &'static str,
        error: &'static str,
        request: &'static str,
    },
    Retry {
        operation: u64,
        order: u32,
        actor: &'static str,
        request: &'static str,
    },
    Skip {
        operation: u64,
        order: u32,
        actor: &'static str,
        reason: &'static str,
        request: &'static str,
    },
    /// Reads an operation's events.
    Events { operation: u64 },
}

impl Call {
    /// Returns whether the call only drops the store, so that an I/O error in it has nowhere to go.
    fn is_close(&self) -> bool {
        matches!(self, Call::Close)
    }
}

fn small_plan() -> Plan {
    let step = |order, code: &str, name: &str, required| PlanStep {
        order,
        code: code.into(),
        name: name.into(),
        required,
        command: None,
        timeout_seconds: None,
        schedule: None,
        retry: None,
    };
    Plan::new(
        "kucuk-otel",
        vec![
            step(10, "pre_audit_checks", "Ön Denetim Kontrolleri", true),
            step(20, "backup", "Yedekleme", false),
            step(30, "roll_business_date", "İş Tarihi Devri", true),
        ],
    )
    .expect("a valid plan")
}

/// The scenario: a night audit with a failure and a retry, a restart, a takeover after the lease
/// ends, a second property's audit, and the first audit finished.
#[allow(
    clippy::too_many_lines,
    reason = "a list of calls reads best in one piece"
)]
fn scenario() -> Vec<Call> {
    use Call::{
        Advance, Close, Complete, Create, Events, Fail, OpenOperation, Renew, Reopen, Retry, Skip,
        Start,
    };
    let start = |order, actor, request| Start {
        operation: 1,
        order,
        actor,
        lease: None,
        request,
    };
    let complete = |order, actor, request| Complete {
        operation: 1,
        order,
        actor,
        request,
    };
    let skip = |order, request| Skip {
        operation: 1,
        order,
        actor: "ayşe",
        reason: "bu gece gerekmiyor",
        request,
    };
    vec![
        Create,
        OpenOperation {
            property: "grand-hotel",
            plan: PlanChoice::Standard,
            actor: "ayşe",
            request: "open-grand",
        },
        // A second terminal opens the same day, which returns from a read snapshot without a write.
        OpenOperation {
            property: "grand-hotel",
            plan: PlanChoice::Standard,
            actor: "mehmet",
            request: "open-grand-again",
        },
        start(1, "ayşe", "start-1"),
        complete(1, "ayşe", "complete-1"),
        start(2, "ayşe", "start-2"),
        Fail {
            operation: 1,
            order: 2,
            actor: "ayşe",
            error: "döviz kuru girilmemiş",
            request: "fail-2",
        },
        Retry {
            operation: 1,
            order: 2,
            actor: "ayşe",
            request: "retry-2",
        },
        start(2, "ayşe", "start-2-again"),
        complete(2, "ayşe", "complete-2"),
        skip(3, "skip-3"),
        skip(4, "skip-4"),
        Start {
            operation: 1,
            order: 5,
            actor: "ayşe",
            lease: Some(SignedDuration::from_mins(5)),
            request: "start-5",
        },
        // Ayşe's terminal stops while step 5 runs, and another terminal opens the store.
        Close,
        Reopen,
        // Her lease still runs, so the start is rejected and writes nothing.
        start(5, "mehmet", "start-5-early"),
        Advance(SignedDuration::from_mins(6)),
        start(5, "mehmet", "takeover-5"),
        Renew {
            operation: 1,
            order: 5,
            actor: "mehmet",
            request: "renew-5",
        },
        complete(5, "mehmet", "complete-5"),
        Events { operation: 1 },
        OpenOperation {
            property: "harbor-view",
            plan: PlanChoice::Small,
            actor: "zeynep",
            request: "open-harbor",
        },
        Start {
            operation: 2,
            order: 10,
            actor: "zeynep",
            lease: None,
            request: "harbor-start-10",
        },
        Complete {
            operation: 2,
            order: 10,
            actor: "zeynep",
            request: "harbor-complete-10",
        },
        Skip {
            operation: 2,
            order: 20,
            actor: "zeynep",
            reason: "yedek NAS üzerinde",
            request: "harbor-skip-20",
        },
        Start {
            operation: 2,
            order: 30,
            actor: "zeynep",
            lease: None,
            request: "harbor-start-30",
        },
        Complete {
            operation: 2,
            order: 30,
            actor: "zeynep",
            request: "harbor-complete-30",
        },
        start(6, "mehmet", "start-6"),
        complete(6, "mehmet", "complete-6"),
        skip(7, "skip-7"),
        skip(8, "skip-8"),
        skip(9, "skip-9"),
        start(10, "mehmet", "start-10"),
        complete(10, "mehmet", "complete-10"),
        Events { operation: 1 },
        Close,
    ]
}

/// The result of one call, with claim tokens blanked (they are random), or its error.
type Outcome = Result<String, Error>;

/// The logical content of a store, with claim tokens blanked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct State {
    operations: Vec<(Operation, Vec<Step>, Vec<Event>)>,
    /// The number of request records, from the integrity check.
    requests: u64,
}

/// One run of the scenario on one disk.
struct Run {
    disk: SharedDisk,
    mode: ConcurrencyMode,
    clock: Arc<ManualClock>,
    store: Option<Store>,
    /// The latest claim token of each (operation, order) this run got.
    claims: HashMap<(u64, u32), String>,
}

impl Run {
    fn new(disk: SharedDisk, mode: ConcurrencyMode) -> Run {
        Run {
            disk,
            mode,
            clock: Arc::new(ManualClock::new(
                "2026-12-04T23:00:00Z".parse().expect("a valid timestamp"),
            )),
            store: None,
            claims: HashMap::new(),
        }
    }

    fn open(&self, create: bool) -> eodstore::Result<Store> {
        let options = StoreOptions::new()
            .create(create)
            .concurrency(self.mode)
            .clock(self.clock.clone());
        Store::open_with_backend(LABEL, self.disk.backend(), options)
    }

    fn store(&self) -> &Store {
        self.store
            .as_ref()
            .expect("the scenario calls the store only while it is open")
    }

    fn token(&self, operation: u64, order: u32) -> String {
        self.claims
            .get(&(operation, order))
            .cloned()
            .unwrap_or_else(|| "no-claim-yet".to_owned())
    }

    /// Makes `call` and returns its outcome.
    #[allow(clippy::too_many_lines, reason = "one match arm per kind of call")]
    fn apply(&mut self, call: &Call) -> Outcome {
        let date = common::date("2026-12-04");
        let caller_with = |actor: &str, request: &str| Caller::new(actor).request_id(request);
        match call {
            Call::Create | Call::Reopen => {
                let store = self.open(matches!(call, Call::Create))?;
                self.store = Some(store);
                Ok("opened".into())
            }
            Call::Close => {
                self.store = None;
                Ok("closed".into())
            }
            Call::Advance(by) => {
                self.clock.advance(*by);
                Ok(format!("clock at {}", eodstore::Clock::now(&*self.clock)))
            }
            Call::OpenOperation {
                property,
                plan,
                actor,
                request,
            } => {
                let plan = match plan {
                    PlanChoice::Standard => Plan::standard(),
                    PlanChoice::Small => small_plan(),
                };
                let opened = self.store().open_operation(
                    property,
                    date,
                    &plan,
                    &caller_with(actor, request),
                )?;
                Ok(format!("{opened:?}"))
            }
            Call::Start {
                operation,
                order,
                actor,
                lease,
                request,
            } => {
                let mut caller = caller_with(actor, request);
                if let Some(lease) = lease {
                    caller = caller.lease(*lease);
                }
                let mut started =
                    self.store()
                        .start_step(OperationId(*operation), *order, &caller)?;
                self.claims
                    .insert((*operation, *order), started.claim.token.clone());
                started.claim.token.clear();
                blank_token(&mut started.step);
                Ok(format!("{started:?}"))
            }
            Call::Renew {
                operation,
                order,
                actor,
                request,
            } => {
                let token = self.token(*operation, *order);
                let mut claim = self.store().renew_claim(
                    OperationId(*operation),
                    *order,
                    &token,
                    &caller_with(actor, request),
                )?;
                claim.token.clear();
                Ok(format!("{claim:?}"))
            }
            Call::Complete {
                operation,
                order,
                actor,
                request,
            } => {
                let token = self.token(*operation, *order);
                let mut step = self.store().complete_step(
                    OperationId(*operation),
                    *order,
                    &token,
                    Some("tamam"),
                    &caller_with(actor, request),
                )?;
                blank_token(&mut step);
                Ok(format!("{step:?}"))
            }
            Call::Fail {
                operation,
                order,
                actor,
                error,
                request,
            } => {
                let token = self.token(*operation, *order);
                let mut step = self.store().fail_step(
                    OperationId(*operation),
                    *order,
                    &token,
                    error,
                    None,
                    &caller_with(actor, request),
                )?;
                blank_token(&mut step);
                Ok(format!("{step:?}"))
            }
            Call::Retry {
                operation,
                order,
                actor,
                request,
            } => {
                let mut step = self.store().retry_step(
                    OperationId(*operation),
                    *order,
                    &caller_with(actor, request),
                )?;
                blank_token(&mut step);
                Ok(format!("{step:?}"))
            }
            Call::Skip {
                operation,
                order,
                actor,
                reason,
                request,
            } => {
                let mut step = self.store().skip_step(
                    OperationId(*operation),
                    *order,
                    reason,
                    &caller_with(actor, request),
                )?;
                blank_token(&mut step);
                Ok(format!("{step:?}"))
            }
            Call::Events { operation } => {
                let events = self.store().events(OperationId(*operation))?;
                Ok(format!("{events:?}"))
            }
        }
    }
}

fn blank_token(step: &mut Step) {
    if let Some(claim) = step.claim.as_mut() {
        claim.token.clear();
    }
}

/// Reads the whole logical state of `store` and checks its integrity, which must be clean.
fn capture(store: &mut Store) -> State {
    let report = store.check_integrity().expect("the integrity check runs");
    assert!(
        report.is_clean(),
        "integrity problems: {:#?}",
        report.problems
    );
    read_state(store, report.requests)
        .unwrap_or_else(|err| panic!("reading the state failed: {}", error_chain(&err)))
}

/// Reads the operations, steps and events of `store`; `requests` is the number of request
/// records that the integrity check counted.
fn read_state(store: &Store, requests: u64) -> eodstore::Result<State> {
    let mut state = State {
        operations: Vec::new(),
        requests,
    };
    for property in PROPERTIES {
        let mut operations = store.history(property, 100)?;
        operations.sort_by_key(|operation| operation.id.0);
        for operation in operations {
            let mut view = store.view(operation.id)?;
            view.steps.iter_mut().for_each(blank_token);
            let events = store.events(operation.id)?;
            state.operations.push((view.operation, view.steps, events));
        }
    }
    Ok(state)
}

/// Returns the outcome as the reference records it: the value, or the error's message.
fn recorded(outcome: &Outcome) -> Result<String, String> {
    match outcome {
        Ok(value) => Ok(value.clone()),
        Err(err) => Err(err.to_string()),
    }
}

/// The fault-free run of the scenario in one concurrency mode.
struct Reference {
    mode: ConcurrencyMode,
    calls: Vec<Call>,
    outcomes: Vec<Result<String, String>>,
    /// `states[i]` is the state before call `i`; the last entry is the final state.
    states: Vec<State>,
    /// `ends[i]` is the number of I/O calls made when call `i` returned.
    ends: Vec<u64>,
    /// The kind of each I/O call, in order.
    kinds: Vec<IoKind>,
}

impl Reference {
    fn build(mode: ConcurrencyMode) -> Reference {
        let calls = scenario();
        let (outcomes, ends, kinds) = Reference::record(mode, &calls);
        let (_, again_ends, again_kinds) = Reference::record(mode, &calls);
        assert_eq!(
            again_kinds, kinds,
            "the scenario's I/O calls differ between two runs"
        );
        assert_eq!(
            again_ends, ends,
            "the scenario's I/O calls differ between two runs"
        );

        // The state between calls comes from a separate run of each prefix, because reading it
        // in the recorded run would change the I/O calls that the later calls make.
        let mut states = vec![State::default()];
        for prefix in 1..=calls.len() {
            let mut run = Run::new(SharedDisk::new(), mode);
            for call in &calls[..prefix] {
                let _ = run.apply(call);
            }
            let mut store = match run.store.take() {
                Some(store) => store,
                None => run.open(false).expect("open the store after the prefix"),
            };
            states.push(capture(&mut store));
        }
        Reference {
            mode,
            calls,
            outcomes,
            states,
            ends,
            kinds,
        }
    }

    fn record(
        mode: ConcurrencyMode,
        calls: &[Call],
    ) -> (Vec<Result<String, String>>, Vec<u64>, Vec<IoKind>) {
        let disk = SharedDisk::new();
        disk.record_calls();
        let mut run = Run::new(disk.clone(), mode);
        let mut outcomes = Vec::new();
        let mut ends = Vec::new();
        for call in calls {
            outcomes.push(recorded(&run.apply(call)));
            ends.push(disk.calls());
        }
        (outcomes, ends, disk.recorded_calls())
    }

    fn total(&self) -> u64 {
        self.kinds.len() as u64
    }

    /// Returns the index of the scenario call that makes I/O call `number` (1-based).
    fn call_of(&self, number: u64) -> usize {
        self.ends
            .iter()
            .position(|&end| end >= number)
            .expect("the I/O call belongs to the scenario")
    }

    fn kind(&self, number: u64) -> IoKind {
        self.kinds[(number - 1) as usize]
    }

    /// Returns the 1-based number of every `sync_data` among the I/O calls.
    fn sync_numbers(&self) -> Vec<u64> {
        (1..=self.total())
            .filter(|&number| self.kind(number) == IoKind::Sync)
            .collect()
    }

    /// Describes I/O call `number` for messages.
    fn describe(&self, number: u64) -> String {
        let call = self.call_of(number);
        format!(
            "I/O call {number} ({:?}) in call {call} `{:?}` ({:?})",
            self.kind(number),
            self.calls[call],
            self.mode
        )
    }
}

/// What a store held after a fault, compared with the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Found {
    /// The state before the failed call.
    Before,
    /// The state after the failed call.
    After,
    /// The call changes nothing, so before and after are the same.
    Unchanged,
    /// The error had nowhere to go (dropping a store returns none) and the state is right.
    Absorbed,
}

/// Classifies `state` against the states before and after call `call`, or panics.
fn classify(reference: &Reference, call: usize, state: &State, context: &str) -> Found {
    let before = &reference.states[call];
    let after = &reference.states[call + 1];
    if before == after {
        assert_eq!(
            state, before,
            "{context}: the state differs from the reference"
        );
        Found::Unchanged
    } else if state == before {
        Found::Before
    } else if state == after {
        Found::After
    } else {
        panic!(
            "{context}: the state is neither the state before nor the one after the call\n\
             found: {state:#?}\nbefore: {before:#?}\nafter: {after:#?}"
        );
    }
}

/// Checks that `err` is a storage error, and returns its message with every cause.
fn expect_storage_error(err: &Error, context: &str) -> String {
    let chain = error_chain(err);
    assert_eq!(
        err.category(),
        ErrorCategory::Storage,
        "{context}: expected a storage error, got: {chain}"
    );
    assert!(
        matches!(
            err,
            Error::Storage { .. } | Error::Io { .. } | Error::Corrupt { .. }
        ),
        "{context}: expected Error::Storage, Error::Io or Error::Corrupt, got: {chain}"
    );
    chain
}

fn error_chain(err: &Error) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// Runs the scenario with I/O call `number` failing, and checks what each step of the recovery
/// finds. Returns what the store held after the failure.
fn run_with_fault(reference: &Reference, number: u64, mode: FaultMode) -> Found {
    let context = reference.describe(number);
    let target = reference.call_of(number);
    let disk = SharedDisk::new();
    disk.fail_call(number, mode, EIO);
    let mut run = Run::new(disk.clone(), reference.mode);
    let mut found = None;

    for (index, call) in reference.calls.iter().enumerate() {
        let outcome = run.apply(call);
        let expected = &reference.outcomes[index];
        if found.is_some() || recorded(&outcome) == *expected {
            assert_eq!(
                recorded(&outcome),
                *expected,
                "{context}: call {index} `{call:?}` after the recovery"
            );
            continue;
        }
        let err = match outcome {
            Err(err) => err,
            Ok(value) => panic!(
                "{context}: call {index} `{call:?}` returned {value} instead of {expected:?}"
            ),
        };
        let chain = expect_storage_error(&err, &context);
        // Dropping a store returns no error, so a fault in a close surfaces in the next open.
        let surfaces_later = reference.calls[target].is_close() && index == target + 1;
        assert!(
            index == target || surfaces_later,
            "{context}: the error surfaced in call {index} `{call:?}`: {chain}"
        );

        probe_failed_store(&run, &context);
        found = Some(recover(reference, &mut run, index, mode, &context));
    }

    // The last call closed the store. Open it once more to check the final state.
    assert!(
        run.store.is_none(),
        "the scenario ends with the store closed"
    );
    assert!(disk.fault_fired(), "{context}: the fault never fired");
    if found.is_none() {
        assert!(
            reference.calls[target].is_close(),
            "{context}: the failed I/O call gave no error"
        );
        if mode == FaultMode::Forever {
            let err = run
                .open(false)
                .expect_err("opening must fail while every I/O call fails");
            expect_storage_error(&err, &context);
        }
        found = Some(Found::Absorbed);
    }
    disk.disarm();
    let mut store = run
        .open(false)
        .unwrap_or_else(|err| panic!("{context}: the final open failed: {}", error_chain(&err)));
    assert_eq!(
        capture(&mut store),
        *reference.states.last().expect("a final state"),
        "{context}: the final state"
    );
    found.expect("classified")
}

/// Reads from a store that has just failed: until it is opened again it may go on failing, but
/// only with storage errors.
fn probe_failed_store(run: &Run, context: &str) {
    let Some(store) = run.store.as_ref() else {
        return;
    };
    for property in PROPERTIES {
        if let Err(err) = store.history(property, 100) {
            expect_storage_error(&err, &format!("{context}, reading before reopening"));
        }
    }
}

/// Recovers from the error of call `index` as the docs say: drops the store, opens it again and
/// repeats the call with the same request id. Checks the state after the reopen and after the
/// repeated call, and returns how the state after the reopen compares with the reference.
fn recover(
    reference: &Reference,
    run: &mut Run,
    index: usize,
    mode: FaultMode,
    context: &str,
) -> Found {
    let call = &reference.calls[index];
    run.store = None;
    if mode == FaultMode::Forever {
        let err = run
            .open(true)
            .expect_err("opening must fail while every I/O call fails");
        expect_storage_error(&err, context);
    }
    run.disk.disarm();
    let mut store = match run.open(true) {
        Ok(store) => store,
        Err(err) => panic!("{context}: reopening failed: {}", error_chain(&err)),
    };
    let state = capture(&mut store);
    let found = classify(reference, index, &state, context);
    run.store = Some(store);

    // `Create` and `Reopen` were repeated by the open above.
    if !matches!(call, Call::Create | Call::Reopen) {
        assert_eq!(
            recorded(&run.apply(call)),
            reference.outcomes[index],
            "{context}: repeating the call gave another outcome"
        );
    }
    let mut store = run.store.take().expect("the store is open");
    assert_eq!(
        capture(&mut store),
        reference.states[index + 1],
        "{context}: the state after repeating the call"
    );
    run.store = Some(store);
    found
}

/// Runs the whole scenario on `disk`. Every call must give its reference outcome, because a
/// power cut or a lie leaves the disk working as far as the store can see.
fn run_scenario(reference: &Reference, disk: &SharedDisk, context: &str) {
    let mut run = Run::new(disk.clone(), reference.mode);
    for (index, step) in reference.calls.iter().enumerate() {
        assert_eq!(
            recorded(&run.apply(step)),
            reference.outcomes[index],
            "{context}: call {index} `{step:?}`"
        );
    }
}

/// Runs the scenario with the power cut at sync `sync` (1-based among the syncs). Returns the
/// disk, the index of the call that was running at the cut, and a description for messages.
fn run_to_power_cut(reference: &Reference, sync: u64) -> (SharedDisk, usize, String) {
    let number = reference.sync_numbers()[(sync - 1) as usize];
    let call = reference.call_of(number);
    let context = format!("power cut at sync {sync}, {}", reference.describe(number));

    let disk = SharedDisk::new();
    disk.cut_power_at_sync(sync);
    run_scenario(reference, &disk, &context);
    assert!(disk.power_cut(), "{context}: the power was never cut");
    (disk, call, context)
}

/// Opens a crash image, which must succeed, and returns the store.
fn open_image(reference: &Reference, image: Vec<u8>, context: &str) -> Store {
    let recovered = Run::new(SharedDisk::from_image(image), reference.mode);
    match recovered.open(true) {
        Ok(store) => store,
        Err(err) => panic!(
            "{context}: the crash image does not open: {}",
            error_chain(&err)
        ),
    }
}

/// Runs the scenario with the power cut at sync `sync` (1-based among the syncs), then checks
/// `images` crash images built from it. Returns what each recovered store held.
fn run_with_power_cut(reference: &Reference, sync: u64, images: u64, tear: bool) -> Vec<Found> {
    let (disk, call, context) = run_to_power_cut(reference, sync);
    let mut found = Vec::new();
    for seed in 0..images {
        let mut rng = SplitMix64::new(sync * 1000 + seed);
        let image = disk.crash_image(&mut rng, tear).expect("a crash image");
        let context = format!("{context}, image seed {seed}, {} bytes", image.len());
        let mut store = open_image(reference, image, &context);
        let state = capture(&mut store);
        found.push(classify(reference, call, &state, &context));
    }
    found
}

/// Picks every `stride`-th I/O call of the scenario, plus the first and last call of each kind.
fn sample(reference: &Reference, stride: u64) -> Vec<u64> {
    sample_calls(&reference.kinds, stride)
}

/// Picks every `stride`-th of the I/O calls whose kinds are `kinds`, plus the first and last call
/// of each kind. Returns 1-based call numbers.
fn sample_calls(kinds: &[IoKind], stride: u64) -> Vec<u64> {
    let total = kinds.len() as u64;
    let kind = |number: u64| kinds[(number - 1) as usize];
    let mut numbers: Vec<u64> = (1..=total).step_by(stride as usize).collect();
    for wanted in IoKind::ALL {
        let mut of_kind = (1..=total).filter(|&number| kind(number) == wanted);
        numbers.extend(of_kind.next());
        numbers.extend(of_kind.next_back());
    }
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// Returns a summary line of the I/O calls in `numbers`, by kind.
fn coverage(reference: &Reference, numbers: &[u64], label: &str) -> String {
    let mut by_kind: BTreeMap<IoKind, usize> = BTreeMap::new();
    for &number in numbers {
        *by_kind.entry(reference.kind(number)).or_default() += 1;
    }
    let count = |kind| by_kind.get(&kind).copied().unwrap_or(0);
    format!(
        "fault injection: covered {} of {} I/O calls (reads {}, writes {}, set_len {}, syncs {}, \
         len {}) [{label}, {:?}]",
        numbers.len(),
        reference.total(),
        count(IoKind::Read),
        count(IoKind::Write),
        count(IoKind::SetLen),
        count(IoKind::Sync),
        count(IoKind::Len),
        reference.mode
    )
}

fn tally(found: &[Found]) -> String {
    let mut counts: BTreeMap<Found, usize> = BTreeMap::new();
    for outcome in found {
        *counts.entry(*outcome).or_default() += 1;
    }
    let count = |outcome| counts.get(&outcome).copied().unwrap_or(0);
    format!(
        "state before {}, state after {}, unchanged {}, absorbed by a close {}",
        count(Found::Before),
        count(Found::After),
        count(Found::Unchanged),
        count(Found::Absorbed)
    )
}

/// Fails each I/O call of `numbers` in turn and prints the coverage and outcomes.
fn fault_loop(reference: &Reference, numbers: &[u64], mode: FaultMode) {
    let started = Instant::now();
    let found: Vec<Found> = numbers
        .iter()
        .map(|&number| run_with_fault(reference, number, mode))
        .collect();
    let label = match mode {
        FaultMode::Once => "fail once",
        FaultMode::Forever => "fail forever",
    };
    println!("{}", coverage(reference, numbers, label));
    println!(
        "  outcomes: {}; {:.1} s",
        tally(&found),
        started.elapsed().as_secs_f64()
    );
}

/// Cuts the power at each sync of `syncs` and prints the outcomes.
fn power_cut_loop(reference: &Reference, syncs: &[u64], images: u64) {
    let started = Instant::now();
    let mut found = Vec::new();
    for &sync in syncs {
        found.extend(run_with_power_cut(reference, sync, images, sync % 2 == 0));
    }
    println!(
        "power cut: {} of {} syncs, {images} crash images each, torn writes at every other sync \
         [{:?}]",
        syncs.len(),
        reference.sync_numbers().len(),
        reference.mode
    );
    println!(
        "  outcomes: {}; {:.1} s",
        tally(&found),
        started.elapsed().as_secs_f64()
    );
}

/// The byte of redb's header that contains its flags, and the flag a live writer sets and a clean
/// close clears (`GOD_BYTE_OFFSET` and `RECOVERY_REQUIRED` in redb 5.0.0,
/// `src/tree_store/page_store/header.rs`).
const REDB_FLAGS_OFFSET: usize = 9;
const REDB_RECOVERY_REQUIRED: u8 = 2;

/// Returns whether redb's next read-write open of `image` has to recover it.
fn needs_recovery(image: &[u8]) -> bool {
    image
        .get(REDB_FLAGS_OFFSET)
        .is_some_and(|flags| flags & REDB_RECOVERY_REQUIRED != 0)
}

/// Returns the 1-based numbers, counted among the syncs, of the syncs in `kinds`.
fn sync_ordinals(kinds: &[IoKind]) -> Vec<u64> {
    (1..=kinds.iter().filter(|kind| **kind == IoKind::Sync).count() as u64).collect()
}

// What redb 5.0.0's recovering open writes, read from its source and seen in the I/O calls that
// `RecoveringOpen::probe` records. redb's recovery does write to the file before its commit:
//
// - `TransactionalMemory::read_header` (src/tree_store/page_store/page_manager.rs) rewrites the
//   header and syncs it when it finds the recovery flag set, a primary slot marked unflushed or a
//   layout that differs from the file's length. The header it writes has the commit slot that
//   `UnrepairedDatabaseHeader::finalize` (header.rs) chose and the layout recomputed from the
//   file's length. No page checksum has been verified at that point.
// - In the exclusive-writer mode, whose commits are one-phase, `Database::new` (src/db.rs) has no
//   allocator state it may trust, so it calls `Database::do_repair`. That verifies the checksums,
//   falls back to the older commit slot if needed, rebuilds the allocator state in memory, and
//   calls `TransactionalMemory::clear_recovery_required`, which writes the header with the flag
//   cleared and syncs it. Only then does `Database::new` commit the repaired roots with
//   `TransactionalMemory::commit`.
// - In the multi-writer mode every commit records the allocator state (redb's quick repair), so
//   `Database::new` loads it and runs neither `do_repair` nor the commit after it. The pages of
//   the last commit are not verified.
// - Both modes end the open with `TransactionalMemory::begin_writable`, which sets the recovery
//   flag again for the live writer and syncs the header.

/// The recovering open of one crash image, run without interruption.
struct RecoveringOpen {
    image: Vec<u8>,
    /// The kind of each I/O call the open made.
    kinds: Vec<IoKind>,
    /// The state the open recovered.
    state: State,
}

impl RecoveringOpen {
    /// Opens `image` once, recording the open's I/O calls and the state it recovers.
    fn probe(reference: &Reference, image: Vec<u8>, context: &str) -> RecoveringOpen {
        let disk = SharedDisk::from_image(image.clone());
        disk.record_calls();
        let mut store = match Run::new(disk.clone(), reference.mode).open(true) {
            Ok(store) => store,
            Err(err) => panic!(
                "{context}: the crash image does not open: {}",
                error_chain(&err)
            ),
        };
        let kinds = disk.recorded_calls();
        let state = capture(&mut store);
        RecoveringOpen {
            image,
            kinds,
            state,
        }
    }
}

/// The outcomes of a loop that interrupts recovering opens or integrity checks.
#[derive(Debug, Default)]
struct InterruptTally {
    found: Vec<Found>,
    /// Interrupted recoveries whose store contains another state than the uninterrupted one.
    diverged: usize,
    /// I/O faults that made the interrupted call fail with a storage error.
    failed: usize,
    /// I/O faults after which the interrupted call succeeded all the same.
    absorbed: usize,
}

impl InterruptTally {
    fn summary(&self) -> String {
        format!(
            "{}; I/O faults: call failed {}, call succeeded {}",
            tally(&self.found),
            self.failed,
            self.absorbed
        )
    }
}

/// Cuts the power at sync `sync` of the recovering open of `probe` (1-based among the open's
/// syncs), then opens a crash image of that, which must hold a state the first image allows.
fn cut_recovering_open(
    reference: &Reference,
    probe: &RecoveringOpen,
    call: usize,
    sync: u64,
    rng: &mut SplitMix64,
    tally: &mut InterruptTally,
    context: &str,
) {
    let context = format!("{context}, second power cut at sync {sync} of the recovering open");
    let disk = SharedDisk::from_image(probe.image.clone());
    disk.cut_power_at_sync(sync);
    match Run::new(disk.clone(), reference.mode).open(true) {
        Ok(store) => drop(store),
        Err(err) => panic!(
            "{context}: the open failed although the disk works: {}",
            error_chain(&err)
        ),
    }
    assert!(disk.power_cut(), "{context}: the power was never cut");

    let image = disk
        .crash_image(rng, sync.is_multiple_of(2))
        .expect("a crash image");
    let mut store = open_image(reference, image, &context);
    let state = capture(&mut store);
    tally
        .found
        .push(classify(reference, call, &state, &context));
    if state != probe.state {
        tally.diverged += 1;
    }
}

/// Fails I/O call `number` of the recovering open of `probe` (1-based among the open's calls),
/// then opens the store again, which must hold a state the first image allows.
fn fail_recovering_open(
    reference: &Reference,
    probe: &RecoveringOpen,
    call: usize,
    number: u64,
    tally: &mut InterruptTally,
    context: &str,
) {
    let context = format!(
        "{context}, I/O call {number} ({:?}) of the recovering open failing",
        probe.kinds[(number - 1) as usize]
    );
    let disk = SharedDisk::from_image(probe.image.clone());
    disk.fail_call(number, FaultMode::Once, EIO);
    let run = Run::new(disk.clone(), reference.mode);
    match run.open(true) {
        Ok(store) => {
            drop(store);
            tally.absorbed += 1;
        }
        Err(err) => {
            expect_storage_error(&err, &context);
            tally.failed += 1;
        }
    }
    assert!(disk.fault_fired(), "{context}: the fault never fired");

    disk.disarm();
    let mut store = run
        .open(true)
        .unwrap_or_else(|err| panic!("{context}: reopening failed: {}", error_chain(&err)));
    let state = capture(&mut store);
    tally
        .found
        .push(classify(reference, call, &state, &context));
    if state != probe.state {
        tally.diverged += 1;
    }
}

/// Builds `images` crash images at each power cut of `cuts`, and interrupts the recovering open
/// of each. A second power cut hits each sync of the open, with `cut_images` crash images each.
/// An I/O fault hits every `stride`-th I/O call of the open and the first and last of each kind.
/// Prints the coverage and the outcomes.
fn recovery_loop(reference: &Reference, cuts: &[u64], images: u64, cut_images: u64, stride: u64) {
    let started = Instant::now();
    let mut tally = InterruptTally::default();
    let (mut opens, mut flagged) = (0, 0);
    let (mut syncs, mut calls, mut calls_covered) = (0, 0, 0);
    for &sync in cuts {
        let (disk, call, context) = run_to_power_cut(reference, sync);
        for seed in 0..images {
            let mut rng = SplitMix64::new(sync * 1000 + seed);
            let image = disk
                .crash_image(&mut rng, sync % 2 == 0)
                .expect("a crash image");
            let context = format!("{context}, image seed {seed}");
            opens += 1;
            flagged += usize::from(needs_recovery(&image));
            let probe = RecoveringOpen::probe(reference, image, &context);

            let open_syncs = sync_ordinals(&probe.kinds);
            syncs += open_syncs.len();
            for &open_sync in &open_syncs {
                for cut_seed in 0..cut_images {
                    let mut rng =
                        SplitMix64::new((sync * 1000 + seed) * 1000 + open_sync * 10 + cut_seed);
                    cut_recovering_open(
                        reference, &probe, call, open_sync, &mut rng, &mut tally, &context,
                    );
                }
            }

            let numbers = sample_calls(&probe.kinds, stride);
            calls += probe.kinds.len();
            calls_covered += numbers.len();
            for number in numbers {
                fail_recovering_open(reference, &probe, call, number, &mut tally, &context);
            }
        }
    }
    println!(
        "crash during recovery: covered {syncs} of {syncs} syncs (crash images per cut: \
         {cut_images}) and {calls_covered} of {calls} I/O calls of the recovering opens of \
         {opens} crash images ({flagged} with redb's recovery flag set), from {} of {} power \
         cuts [{:?}]",
        cuts.len(),
        reference.sync_numbers().len(),
        reference.mode
    );
    println!(
        "  outcomes: {}; state differs from the uninterrupted recovery {}; {:.1} s",
        tally.summary(),
        tally.diverged,
        started.elapsed().as_secs_f64()
    );
}

/// A clean store and the I/O calls of an integrity check on it.
struct CleanCheck {
    /// The file after the whole scenario, which ends with a clean close.
    image: Vec<u8>,
    /// The I/O calls the open before the check makes, which the check's numbers follow.
    open_calls: u64,
    open_syncs: u64,
    /// The kind of each I/O call the check made.
    kinds: Vec<IoKind>,
}

impl CleanCheck {
    fn probe(reference: &Reference) -> CleanCheck {
        let disk = SharedDisk::new();
        run_scenario(reference, &disk, "building a clean store");
        let image = disk.durable_image();
        assert!(
            !needs_recovery(&image),
            "the scenario's final close leaves redb's recovery flag set"
        );

        let (disk, mut store) = CleanCheck::open(reference, &image);
        let (open_calls, open_syncs) = (disk.calls(), disk.syncs());
        disk.record_calls();
        let report = store.check_integrity().expect("the integrity check runs");
        assert!(report.is_clean(), "{:#?}", report.problems);
        let kinds = disk.recorded_calls();
        drop(store);
        CleanCheck {
            image,
            open_calls,
            open_syncs,
            kinds,
        }
    }

    /// Opens the clean store on a new disk.
    fn open(reference: &Reference, image: &[u8]) -> (SharedDisk, Store) {
        let disk = SharedDisk::from_image(image.to_vec());
        let store = Run::new(disk.clone(), reference.mode)
            .open(false)
            .unwrap_or_else(|err| panic!("opening the clean store failed: {}", error_chain(&err)));
        (disk, store)
    }

    /// Opens the clean store on a new disk, checking that the open makes the I/O calls that the
    /// probe counted, so that the check's calls have the same numbers.
    fn open_again(&self, reference: &Reference) -> (SharedDisk, Store) {
        let (disk, store) = CleanCheck::open(reference, &self.image);
        assert_eq!(
            (disk.calls(), disk.syncs()),
            (self.open_calls, self.open_syncs),
            "opening the clean store made other I/O calls than before"
        );
        (disk, store)
    }
}

/// Cuts the power at sync `sync` of an integrity check of a clean store (1-based among the
/// check's syncs), then opens `images` crash images of that: each must open clean with the
/// scenario's final state.
fn cut_check(reference: &Reference, clean: &CleanCheck, sync: u64, images: u64) -> Vec<Found> {
    let context = format!(
        "power cut at sync {sync} of the integrity check ({:?})",
        reference.mode
    );
    let (disk, mut store) = clean.open_again(reference);
    disk.cut_power_at_sync(clean.open_syncs + sync);
    match store.check_integrity() {
        Ok(report) => assert!(report.is_clean(), "{context}: {:#?}", report.problems),
        Err(err) => panic!(
            "{context}: the check failed although the disk works: {}",
            error_chain(&err)
        ),
    }
    drop(store);
    assert!(disk.power_cut(), "{context}: the power was never cut");

    let last = reference.calls.len() - 1;
    let mut found = Vec::new();
    for seed in 0..images {
        let mut rng = SplitMix64::new(sync * 1000 + seed);
        let image = disk
            .crash_image(&mut rng, seed % 2 == 1)
            .expect("a crash image");
        let context = format!("{context}, image seed {seed}");
        let mut store = open_image(reference, image, &context);
        let state = capture(&mut store);
        found.push(classify(reference, last, &state, &context));
    }
    found
}

/// Fails I/O call `number` of an integrity check of a clean store (1-based among the check's
/// calls). The check must fail with a storage error or succeed clean, and the store must then
/// open again with the scenario's final state.
fn fail_check(reference: &Reference, clean: &CleanCheck, number: u64, tally: &mut InterruptTally) {
    let context = format!(
        "I/O call {number} ({:?}) of the integrity check failing ({:?})",
        clean.kinds[(number - 1) as usize],
        reference.mode
    );
    let (disk, mut store) = clean.open_again(reference);
    disk.fail_call(clean.open_calls + number, FaultMode::Once, EIO);
    match store.check_integrity() {
        Ok(report) => {
            assert!(report.is_clean(), "{context}: {:#?}", report.problems);
            tally.absorbed += 1;
        }
        Err(err) => {
            expect_storage_error(&err, &context);
            tally.failed += 1;
        }
    }
    assert!(disk.fault_fired(), "{context}: the fault never fired");
    drop(store);

    disk.disarm();
    let mut store = Run::new(disk, reference.mode)
        .open(false)
        .unwrap_or_else(|err| panic!("{context}: reopening failed: {}", error_chain(&err)));
    let last = reference.calls.len() - 1;
    let state = capture(&mut store);
    tally
        .found
        .push(classify(reference, last, &state, &context));
}

/// Cuts the power at each sync of an integrity check of a clean store (`images` crash images
/// each), and fails every `stride`-th of its I/O calls and the first and last of each kind.
/// Prints the coverage and the outcomes.
///
/// On a clean store, redb 5.0.0's `Database::check_integrity` commits nothing. It syncs in
/// `TransactionalMemory::clear_cache_and_reload`, then rewrites and syncs the header in
/// `do_repair` and again in `begin_writable`. NOTE: the commit that the check makes after it
/// repaired something is not reached here.
fn check_loop(reference: &Reference, images: u64, stride: u64) {
    let started = Instant::now();
    let clean = CleanCheck::probe(reference);
    let mut tally = InterruptTally::default();
    let syncs = sync_ordinals(&clean.kinds);
    for &sync in &syncs {
        tally
            .found
            .extend(cut_check(reference, &clean, sync, images));
    }
    let numbers = sample_calls(&clean.kinds, stride);
    for &number in &numbers {
        fail_check(reference, &clean, number, &mut tally);
    }
    println!(
        "crash during the integrity check: covered {} of {} syncs (crash images per cut: \
         {images}) and {} of {} I/O calls of a check of the clean store [{:?}]",
        syncs.len(),
        syncs.len(),
        numbers.len(),
        clean.kinds.len(),
        reference.mode
    );
    println!(
        "  outcomes: {}; {:.1} s",
        tally.summary(),
        started.elapsed().as_secs_f64()
    );
}

thread_local! {
    /// Whether panics on this thread are recorded instead of printed.
    static RECORDING_PANICS: Cell<bool> = const { Cell::new(false) };
    /// The panics recorded on this thread, with their locations.
    static RECORDED_PANICS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs `body` and returns its result, or the message of a panic that escaped it, with every
/// panic that happened on this thread meanwhile, including those caught inside eodstore.
fn recording_panics<T>(body: impl FnOnce() -> T) -> (Result<T, String>, Vec<String>) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if RECORDING_PANICS.with(Cell::get) {
                RECORDED_PANICS.with(|panics| panics.borrow_mut().push(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
    RECORDING_PANICS.with(|recording| recording.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    RECORDING_PANICS.with(|recording| recording.set(false));
    let panics = RECORDED_PANICS.with(RefCell::take);
    let result = result.map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned())
    });
    (result, panics)
}

/// What opening the image of a lying disk found.
#[derive(Debug)]
enum LyingOutcome {
    /// The store opens, the integrity check is clean, and the state is reference state
    /// `index`: the state before call `index`, or after the last call for the last index.
    ReferenceState { index: usize },
    /// The store opens and checks clean, but its state matches none of the reference states.
    OtherState,
    /// The store opens, and the integrity check reports this many problems.
    Problems(usize),
    /// The store opens, and the integrity check fails with this error.
    CheckFailed(Error),
    /// The store opens and checks clean, but reading its state fails with this error.
    ReadFailed(Error),
    /// The open fails with this error.
    OpenFailed(Error),
    /// A panic with this message reached the caller.
    Panicked(String),
}

impl LyingOutcome {
    /// Opens `image`, checks its integrity and reads its state, stopping at the first failure.
    fn inspect(reference: &Reference, image: Vec<u8>) -> LyingOutcome {
        let run = Run::new(SharedDisk::from_image(image), reference.mode);
        let mut store = match run.open(false) {
            Ok(store) => store,
            Err(err) => return LyingOutcome::OpenFailed(err),
        };
        let report = match store.check_integrity() {
            Ok(report) => report,
            Err(err) => return LyingOutcome::CheckFailed(err),
        };
        if !report.is_clean() {
            return LyingOutcome::Problems(report.problems.len());
        }
        let state = match read_state(&store, report.requests) {
            Ok(state) => state,
            Err(err) => return LyingOutcome::ReadFailed(err),
        };
        match reference.states.iter().rposition(|known| *known == state) {
            Some(index) => LyingOutcome::ReferenceState { index },
            None => LyingOutcome::OtherState,
        }
    }

    fn error(&self) -> Option<&Error> {
        match self {
            LyingOutcome::CheckFailed(err)
            | LyingOutcome::ReadFailed(err)
            | LyingOutcome::OpenFailed(err) => Some(err),
            _ => None,
        }
    }

    /// Returns a short label for a per-image table.
    fn label(&self, reference: &Reference) -> String {
        match self {
            LyingOutcome::ReferenceState { index } => {
                format!("state {index} (lost {})", reference.changes_from(*index))
            }
            LyingOutcome::OtherState => "other state".to_owned(),
            LyingOutcome::Problems(count) => format!("{count} problems"),
            LyingOutcome::CheckFailed(err) => format!("check: {}", variant(err)),
            LyingOutcome::ReadFailed(err) => format!("read: {}", variant(err)),
            LyingOutcome::OpenFailed(err) => format!("open: {}", variant(err)),
            LyingOutcome::Panicked(_) => "panic".to_owned(),
        }
    }
}

/// Returns the name of `err`'s variant.
fn variant(err: &Error) -> String {
    let debug = format!("{err:?}");
    debug
        .split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl Reference {
    /// Returns the number of calls from call `index` on that changed the state: the acknowledged
    /// calls that a store holding reference state `index` lost.
    fn changes_from(&self, index: usize) -> usize {
        (index..self.calls.len())
            .filter(|&call| self.states[call] != self.states[call + 1])
            .count()
    }
}

/// The outcomes of the lying-disk loop.
#[derive(Debug, Default)]
struct LyingTally {
    images: usize,
    /// For each image that opened clean with a reference state, the acknowledged calls it lost.
    lost: Vec<usize>,
    /// Images with a reference state older than the state of the last honest sync.
    before_lie: usize,
    other_state: usize,
    problems: usize,
    check_failed: usize,
    read_failed: usize,
    open_failed: usize,
    /// The images whose inspection let a panic through, with the panic's message.
    escaped: Vec<String>,
    /// The error variants returned, with their counts.
    errors: BTreeMap<String, usize>,
    /// Panics that eodstore caught and returned as errors.
    caught_panics: usize,
    /// The first message of each panic location.
    panic_messages: BTreeMap<String, String>,
}

impl LyingTally {
    fn add(&mut self, reference: &Reference, outcome: &LyingOutcome, honest: usize) {
        self.images += 1;
        match outcome {
            LyingOutcome::ReferenceState { index } => {
                self.lost.push(reference.changes_from(*index));
                if *index < honest {
                    self.before_lie += 1;
                }
            }
            LyingOutcome::OtherState => self.other_state += 1,
            LyingOutcome::Problems(_) => self.problems += 1,
            LyingOutcome::CheckFailed(_) => self.check_failed += 1,
            LyingOutcome::ReadFailed(_) => self.read_failed += 1,
            LyingOutcome::OpenFailed(_) => self.open_failed += 1,
            LyingOutcome::Panicked(message) => self.escaped.push(message.clone()),
        }
        if let Some(err) = outcome.error() {
            *self.errors.entry(variant(err)).or_default() += 1;
        }
    }

    fn add_panics(&mut self, panics: Vec<String>) {
        self.caught_panics += panics.len();
        for panic in panics {
            let location = panic.lines().next().unwrap_or_default().to_owned();
            self.panic_messages.entry(location).or_insert(panic);
        }
    }

    fn summary(&self) -> String {
        let lost = |range: std::ops::RangeInclusive<usize>| {
            self.lost.iter().filter(|lost| range.contains(lost)).count()
        };
        format!(
            "{} images: opens clean with a reference state {} (lost no acknowledged call {}, \
             1 to 5 {}, over 5 {}, at most {}; older than the last honest sync {}), opens clean \
             with another state {}, opens with problems {} (integrity problems {}, check failed \
             {}, reading failed {}), typed error at open {}, panic reached the caller {}; errors \
             {:?}; panics caught by eodstore {}",
            self.images,
            self.lost.len(),
            lost(0..=0),
            lost(1..=5),
            lost(6..=usize::MAX),
            self.lost.iter().max().copied().unwrap_or(0),
            self.before_lie,
            self.other_state,
            self.problems + self.check_failed + self.read_failed,
            self.problems,
            self.check_failed,
            self.read_failed,
            self.open_failed,
            self.escaped.len(),
            self.errors,
            self.caught_panics
        )
    }
}

/// Runs the scenario on a disk that lies from each sync of `lies` on, and inspects `images`
/// images of each. Asserts that every error is a storage error or `Error::NotEodstoreFile`,
/// prints the outcomes, and with `verbose` one line per sync. Returns the outcomes, whose panics
/// the caller checks.
fn lying_loop(reference: &Reference, lies: &[u64], images: u64, verbose: bool) -> LyingTally {
    let started = Instant::now();
    let mut tally = LyingTally::default();
    for &sync in lies {
        let number = reference.sync_numbers()[(sync - 1) as usize];
        // The calls before the one running at the lie were synced honestly.
        let honest = reference.call_of(number);
        let context = format!(
            "disk lying from sync {sync}, {}",
            reference.describe(number)
        );
        let disk = SharedDisk::new();
        disk.lie_from_sync(sync);
        run_scenario(reference, &disk, &context);
        assert!(disk.power_cut(), "{context}: the disk never began to lie");

        let mut labels = Vec::new();
        for seed in 0..images {
            let mut rng = SplitMix64::new(sync * 1000 + seed);
            let image = disk.crash_image(&mut rng, seed % 2 == 1).expect("an image");
            let context = format!("{context}, image seed {seed}");
            let (outcome, mut panics) =
                recording_panics(|| LyingOutcome::inspect(reference, image));
            let outcome = outcome.unwrap_or_else(|message| {
                // The last panic recorded is the one that escaped, not one eodstore caught.
                panics.pop();
                LyingOutcome::Panicked(format!("{context}: {message}"))
            });
            if let Some(err) = outcome.error() {
                assert!(
                    err.category() == ErrorCategory::Storage
                        || matches!(err, Error::NotEodstoreFile { .. }),
                    "{context}: an error outside the storage category: {}",
                    error_chain(err)
                );
            }
            labels.push(outcome.label(reference));
            tally.add(reference, &outcome, honest);
            tally.add_panics(panics);
        }
        if verbose {
            println!(
                "  lying from sync {sync} (call {honest}): {}",
                labels.join(", ")
            );
        }
    }
    println!(
        "lying disk: {} of {} syncs, {images} images each [{:?}]: {}; {:.1} s",
        lies.len(),
        reference.sync_numbers().len(),
        reference.mode,
        tally.summary(),
        started.elapsed().as_secs_f64()
    );
    for message in tally.panic_messages.values() {
        println!("  panic caught by eodstore: {}", message.replace('\n', " "));
    }
    for message in &tally.escaped {
        println!("  panic reached the caller: {}", message.replace('\n', " "));
    }
    tally
}

/// Returns the reference run of `mode`, built once and shared by the sampled tests, because each
/// build replays the scenario once per call.
fn shared_reference(mode: ConcurrencyMode) -> &'static Reference {
    static MULTI_WRITER: OnceLock<Reference> = OnceLock::new();
    static EXCLUSIVE_WRITER: OnceLock<Reference> = OnceLock::new();
    let cell = match mode {
        ConcurrencyMode::MultiWriter => &MULTI_WRITER,
        ConcurrencyMode::ExclusiveWriter => &EXCLUSIVE_WRITER,
        other => panic!("the tests keep no reference run for {other:?}"),
    };
    cell.get_or_init(|| Reference::build(mode))
}

#[test]
fn reference_run_is_deterministic() {
    let reference = Reference::build(ConcurrencyMode::MultiWriter);
    for kind in IoKind::ALL {
        assert!(
            reference.kinds.contains(&kind),
            "the scenario makes no {kind:?} call"
        );
    }
    assert!(
        reference.outcomes.iter().any(Result::is_err),
        "the scenario includes a rejected call"
    );
}

#[test]
fn failed_io_sampled() {
    let reference = shared_reference(ConcurrencyMode::MultiWriter);
    let numbers = sample(reference, 7);
    fault_loop(reference, &numbers, FaultMode::Once);
}

#[test]
fn failed_io_forever_sampled() {
    let reference = shared_reference(ConcurrencyMode::MultiWriter);
    let numbers = sample(reference, 23);
    fault_loop(reference, &numbers, FaultMode::Forever);
}

#[test]
fn failed_io_exclusive_writer_sampled() {
    let reference = shared_reference(ConcurrencyMode::ExclusiveWriter);
    let numbers = sample(reference, 23);
    fault_loop(reference, &numbers, FaultMode::Once);
}

#[test]
fn power_cut_sampled() {
    for mode in [
        ConcurrencyMode::MultiWriter,
        ConcurrencyMode::ExclusiveWriter,
    ] {
        let reference = shared_reference(mode);
        let syncs: Vec<u64> = (1..=reference.sync_numbers().len() as u64)
            .step_by(5)
            .collect();
        power_cut_loop(reference, &syncs, 2);
    }
}

#[test]
fn crash_during_recovery_sampled() {
    for (mode, step) in [
        (ConcurrencyMode::MultiWriter, 10),
        (ConcurrencyMode::ExclusiveWriter, 15),
    ] {
        let reference = shared_reference(mode);
        let cuts: Vec<u64> = (1..=reference.sync_numbers().len() as u64)
            .step_by(step)
            .collect();
        recovery_loop(reference, &cuts, 1, 1, 5);
    }
}

#[test]
fn crash_during_check_sampled() {
    for mode in [
        ConcurrencyMode::MultiWriter,
        ConcurrencyMode::ExclusiveWriter,
    ] {
        let reference = shared_reference(mode);
        check_loop(reference, 2, 3);
    }
}

/// A disk that reports syncs it did not do. No store can promise durability on it, so this
/// asserts only that no panic reaches the caller and that every failure is a typed error, and
/// prints what eodstore found.
#[test]
fn lying_disk_sampled() {
    for mode in [
        ConcurrencyMode::MultiWriter,
        ConcurrencyMode::ExclusiveWriter,
    ] {
        let reference = shared_reference(mode);
        let lies: Vec<u64> = (1..=reference.sync_numbers().len() as u64)
            .step_by(9)
            .collect();
        let tally = lying_loop(reference, &lies, 2, false);
        assert!(
            tally.escaped.is_empty(),
            "panics reached the caller: {:#?}",
            tally.escaped
        );
    }
}

/// Returns 8 images of a disk that lied from each sync of the multi-writer scenario on.
fn lying_images() -> Vec<(String, Vec<u8>)> {
    let reference = shared_reference(ConcurrencyMode::MultiWriter);
    let mut images = Vec::new();
    for sync in 1..=reference.sync_numbers().len() as u64 {
        let disk = SharedDisk::new();
        disk.lie_from_sync(sync);
        run_scenario(reference, &disk, &format!("disk lying from sync {sync}"));
        for seed in 0..8 {
            let mut rng = SplitMix64::new(sync * 1000 + seed);
            let image = disk.crash_image(&mut rng, seed % 2 == 1).expect("an image");
            images.push((format!("lying from sync {sync}, image seed {seed}"), image));
        }
    }
    images
}

/// Opening a damaged file must return an error, never panic. The open reads the format version
/// with redb 5.0.0's `ReadTransaction::list_tables`, which panics on some damaged table trees. In
/// the multi-writer mode redb's recovering open loads the recorded allocator state without
/// verifying the last commit's pages, so that read is the first to meet the damage. A release
/// build is needed to reach it: in a debug build, redb's debug assertions panic earlier.
#[test]
fn damaged_file_open_returns_error() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("eod.redb");
    let mut failures = Vec::new();
    for (name, image) in lying_images() {
        for read_only in [false, true] {
            let options = StoreOptions::new().read_only(read_only);
            let (opened, _) = recording_panics(|| {
                let backend = SharedDisk::from_image(image.clone()).backend();
                Store::open_with_backend(LABEL, backend, options.clone()).map(drop)
            });
            if let Err(message) = opened {
                failures.push(format!("backend, {name}, read-only {read_only}: {message}"));
            }

            std::fs::write(&path, &image).expect("write the image");
            let (opened, _) = recording_panics(|| Store::open_with(&path, options.clone()));
            if let Err(message) = opened {
                failures.push(format!("file, {name}, read-only {read_only}: {message}"));
            }
        }
    }
    assert!(failures.is_empty(), "opens that panicked: {failures:#?}");
}

/// Fails every I/O call and cuts the power at every sync of the scenario, in both concurrency
/// modes. Run it in a release build, as the module's documentation shows.
#[test]
#[ignore = "exhaustive; run with --release --test fault_injection exhaustive -- --ignored"]
fn exhaustive() {
    let started = Instant::now();
    for mode in [
        ConcurrencyMode::MultiWriter,
        ConcurrencyMode::ExclusiveWriter,
    ] {
        let reference = Reference::build(mode);
        let every: Vec<u64> = (1..=reference.total()).collect();
        fault_loop(&reference, &every, FaultMode::Once);
        fault_loop(&reference, &every, FaultMode::Forever);
        let syncs: Vec<u64> = (1..=reference.sync_numbers().len() as u64).collect();
        power_cut_loop(&reference, &syncs, 8);
        recovery_loop(&reference, &syncs, 4, 2, 1);
        check_loop(&reference, 8, 1);
        let tally = lying_loop(&reference, &syncs, 8, true);
        assert!(
            tally.escaped.is_empty(),
            "{} panics reached the caller",
            tally.escaped.len()
        );
    }
    println!(
        "exhaustive fault injection took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Opens operations, one business date each, until the disk is full. Returns the dates
/// acknowledged and the error.
fn fill_disk(store: &Store, plan: &Plan) -> (Vec<jiff::civil::Date>, Error) {
    let first = common::date("2026-01-01");
    let mut acknowledged = Vec::new();
    for day in 0..5000 {
        let date = first
            .checked_add(SignedDuration::from_hours(24 * day))
            .expect("a valid date");
        let caller = Caller::new("gece-denetcisi").request_id(format!("open-{date}"));
        match store.open_operation("grand-hotel", date, plan, &caller) {
            Ok(_) => acknowledged.push(date),
            Err(err) => return (acknowledged, err),
        }
    }
    panic!("the disk never filled up");
}

fn disk_full(sparse: bool) {
    let disk = SharedDisk::new();
    let run = Run::new(disk.clone(), ConcurrencyMode::MultiWriter);
    let store = run.open(true).expect("create the store");
    disk.set_capacity(Some(Capacity {
        bytes: disk.len() + 256 * 1024,
        sparse,
    }));
    let plan = Plan::standard();
    let (acknowledged, err) = fill_disk(&store, &plan);
    assert!(!acknowledged.is_empty(), "no write fit on the disk");
    let chain = expect_storage_error(&err, "disk full");
    println!(
        "disk full ({}): {chain}",
        if sparse { "write" } else { "set_len" }
    );
    assert!(
        chain.contains("No space left") || chain.contains(&format!("os error {ENOSPC}")),
        "the error does not name the full disk: {chain}"
    );
    drop(store);

    // Everything acknowledged is there, with the space still short.
    let mut store = run
        .open(false)
        .unwrap_or_else(|err| panic!("reopening the full disk failed: {}", error_chain(&err)));
    for date in &acknowledged {
        let found = store
            .find_operation("grand-hotel", *date)
            .expect("read the day index");
        assert!(
            found.is_some(),
            "the acknowledged operation of {date} is lost"
        );
    }
    let report = store.check_integrity().expect("the integrity check runs");
    assert!(report.is_clean(), "{:#?}", report.problems);
    drop(store);

    // With space back, the failed call succeeds when repeated, and new writes go through.
    disk.set_capacity(None);
    let store = run.open(false).expect("reopen with space");
    let next = acknowledged
        .last()
        .expect("one date")
        .checked_add(SignedDuration::from_hours(24))
        .expect("a valid date");
    let caller = Caller::new("gece-denetcisi").request_id(format!("open-{next}"));
    let opened = store
        .open_operation("grand-hotel", next, &plan, &caller)
        .expect("the repeated call succeeds once space returns");
    store
        .start_step(opened.operation.id, 1, &Caller::new("ayşe"))
        .expect("a new write succeeds");
    let mut store = store;
    let report = store.check_integrity().expect("the integrity check runs");
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert_eq!(report.operations, acknowledged.len() as u64 + 1);
}

#[test]
fn disk_full_on_write() {
    disk_full(true);
}

#[test]
fn disk_full_on_set_len() {
    disk_full(false);
}

/// Two stores on one disk in the multi-writer mode work like two processes on one file: both
/// write, and each sees the other's commits. This exercises the backend's range locks.
#[test]
fn two_handles_share_disk() {
    let disk = SharedDisk::new();
    let run = Run::new(disk.clone(), ConcurrencyMode::MultiWriter);
    let first = run.open(true).expect("create the store");
    let second = run.open(false).expect("open a second handle");
    let plan = &small_plan();
    std::thread::scope(|scope| {
        for (store, property) in [(&first, "grand-hotel"), (&second, "harbor-view")] {
            scope.spawn(move || {
                for day in 1..=20 {
                    let date = common::date("2026-12-01")
                        .checked_add(SignedDuration::from_hours(24 * day))
                        .expect("a valid date");
                    store
                        .open_operation(property, date, plan, &Caller::new("terminal"))
                        .expect("open an operation");
                }
            });
        }
    });
    assert_eq!(first.history("harbor-view", 100).unwrap().len(), 20);
    assert_eq!(second.history("grand-hotel", 100).unwrap().len(), 20);
}

/// An I/O error while a store is created on a backend leaves storage without redb's signature,
/// because redb writes its magic number only after the rest of the new header is synced. Opening
/// it again with `create` set finishes the creation.
#[test]
fn unfinished_creation_reopens() {
    let probe = SharedDisk::new();
    probe.record_calls();
    Run::new(probe.clone(), ConcurrencyMode::MultiWriter)
        .open(true)
        .expect("create the store");
    let first_write = probe
        .recorded_calls()
        .iter()
        .position(|kind| *kind == IoKind::Write)
        .expect("the creation writes") as u64
        + 1;

    let disk = SharedDisk::new();
    disk.fail_call(first_write, FaultMode::Once, EIO);
    let run = Run::new(disk.clone(), ConcurrencyMode::MultiWriter);
    let err = run.open(true).expect_err("the creation fails");
    expect_storage_error(&err, "the failed creation");
    let reopened = run.open(true);
    assert!(
        reopened.is_ok(),
        "opening with create after the failed creation: {}",
        reopened
            .map(drop)
            .map_err(|err| error_chain(&err))
            .unwrap_err()
    );
}

/// Returns the kind of the first `io::Error` in `err`'s source chain. redb's errors give no
/// source (redb 5.0), so the `io::Error` inside `redb::Error::Io` is taken out by matching.
fn io_error_kind(err: &Error) -> Option<std::io::ErrorKind> {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        if let Some(redb::Error::Io(io)) = cause.downcast_ref::<redb::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

/// Returns the error of the first write that finds the disk full, with group commit on or off.
fn disk_full_error(group_commit: bool) -> Error {
    let disk = SharedDisk::new();
    let options = StoreOptions::new().create(true).group_commit(group_commit);
    let store = Store::open_with_backend(LABEL, disk.backend(), options).expect("create the store");
    disk.set_capacity(Some(Capacity {
        bytes: disk.len() + 64 * 1024,
        sparse: true,
    }));
    fill_disk(&store, &Plan::standard()).1
}

/// A caller can tell a full disk from other failures by the `io::ErrorKind` in the error's
/// source chain, without parsing the message.
#[test]
fn disk_full_kind_without_group_commit() {
    let err = disk_full_error(false);
    assert_eq!(
        io_error_kind(&err),
        Some(std::io::ErrorKind::StorageFull),
        "{}",
        error_chain(&err)
    );
}

/// Group commit hands each caller of a failed batch a new error built from the first one's
/// message, so the `io::ErrorKind` of the cause is lost.
#[test]
fn disk_full_kind_with_group_commit() {
    let err = disk_full_error(true);
    assert_eq!(
        io_error_kind(&err),
        Some(std::io::ErrorKind::StorageFull),
        "{}",
        error_chain(&err)
    );
}
