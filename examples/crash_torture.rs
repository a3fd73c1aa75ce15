//! Kills a process that writes to a store with SIGKILL at random moments, again and again. After
//! every kill it checks that the file opens, passes [`Store::check_integrity`], and still contains
//! every write the killed process had acknowledged, with no duplicate or missing step and no torn
//! change.
//!
//! ```text
//! cargo run --release --example crash_torture -- --kills 200 --writers 4
//! ```
//!
//! # Flags
//!
//! - `--db PATH`: the store file, created by the first child if missing (default: `eod.redb` in
//!   a new temporary directory, removed at the end). An existing eodstore file is used as it is,
//!   and its operations are checked along with the new ones.
//! - `--kills K`: how many child processes to start and kill, one after another (default 50).
//! - `--writers W`: writer threads per child (default 4, 1 to 64).
//! - `--seed N`: the seed of the kill delays and of the children's choices (default: the
//!   clock). The first line prints it. Thread timing differs between runs, so a rerun with the
//!   same seed kills at the same delays but not at the same write.
//!
//! # What a child does
//!
//! A child is this program run again with the hidden flag `--child`. It opens the store with
//! the default durability ([`eodstore::Durability::Immediate`]), concurrency mode and group
//! commit, and a claim lease of 250 ms. Its writer threads share one [`Store`] and work on the
//! same few operations: the three oldest unfinished business dates of each of two properties,
//! with a four-step plan whose second step is optional and whose last step rolls the business
//! date. They open and seed the operations of all three dates, but change steps only of the
//! oldest one. A property has at most one operation in progress, and once a roll has set its
//! business date, only the operation of that date may start. They start, complete, fail, retry
//! and skip steps, and renew claims. They abandon claims so that a later start takes the step
//! over when the lease ends, and sleep past the lease so that another writer takes over a step
//! they still work on. Half of the calls carry a request id, and a quarter of those that
//! recorded their id are repeated at once with the same id. The threads race for the same
//! steps, so that group commit can put their calls into shared transactions.
//!
//! A call that returned `Ok` is an acknowledged write. Right after it returns, before doing
//! anything else, the writer prints one `ack` line to its standard output, a pipe read by the
//! parent: the call, the operation and step states it returned, and a hash of the result. Before
//! a call with a request id, the writer prints an `intent` line, so that the parent knows which
//! calls were in flight at the kill. A line cut off by the kill has no newline and is ignored.
//!
//! # What the parent checks after each kill
//!
//! - `unopenable`: the file does not open, [`Store::check_integrity`] fails or reports problems,
//!   or reading an operation fails, each counted once per check. The problems are printed, and
//!   the run stops after a file that does not open.
//! - `lost`: acknowledged state that is gone. Each acknowledged opened operation must exist
//!   under its property and date with every plan step. Each acknowledged step state must still
//!   be the current state or one that a chain of transitions can reach from it: a completed or
//!   skipped step never changes again, attempts never go down, and with equal attempts the
//!   status only moves forward (running, then failed, then pending again by a retry, then
//!   skipped). Each acknowledged request whose id was recorded must, when repeated with that id,
//!   return a result with the same hash: after every kill for the requests of the killed child
//!   and 16 older ones picked at random, and after the last kill for all of them.
//! - `duplicates`: operations whose steps, read with [`Store::view`] (the read behind
//!   [`Store::steps`]), are not exactly the plan's orders, codes and required flags. Each
//!   operation is counted once.
//! - `torn`: operations whose audit trail disagrees with their steps, replayed here without
//!   [`Store::check_integrity`]: the sequence numbers run from 1 without a gap, the first event
//!   creates the operation and seeding comes before any step event, each step event's kind fits
//!   its `from` and `to` and its `from` is the state the events before it left, the replayed
//!   state and count of starts and takeovers equal each step's status and attempts, only a
//!   running step has a claim, the stored operation status follows from the steps, and exactly
//!   one `operation_finished` event, the last one, exists when the operation is completed. Each
//!   operation is counted once.
//!
//! Then the parent repeats every call that a child had begun with a request id but not
//! acknowledged, as a client does after an uncertain outcome. Such a call may return the
//! recorded result or apply now. An `Ok` is acknowledged and checked after later kills like the
//! children's writes. The next child continues on the same file.
//!
//! # Output
//!
//! Progress goes to standard output about ten times per run, and every problem when it is found.
//! The second-to-last line counts unexpected errors: calls that failed with an error other than
//! the rejections that racing writers expect, repeated requests that returned another result,
//! and children that exited before the kill. The last line is exactly
//! `kills=K acknowledged=A lost=L duplicates=D torn=T unopenable=U`, where `K` counts the kills
//! made. The exit status is 0 only when `L`, `D`, `T`, `U` and the unexpected errors are all 0.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use eodstore::{
    Caller, Error, Event, EventKind, OperationId, OperationStatus, OperationView, Plan, PlanStep,
    StepStatus, Store, StoreOptions,
};
use jiff::SignedDuration;
use jiff::civil::Date;

/// Kills a writing process at random moments and checks the store after each kill.
#[derive(Debug, Parser)]
struct Args {
    /// The store file, created if missing [default: a new temporary directory, removed at the
    /// end].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// How many child processes to start and kill, one after another.
    #[arg(long, value_name = "K", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    kills: u32,
    /// Writer threads per child process.
    #[arg(long, value_name = "W", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    writers: u32,
    /// The seed of the kill delays and the children's choices [default: the clock].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Runs as a child: writes until killed and reports each acknowledged write.
    #[arg(long, hide = true)]
    child: bool,
    /// The prefix of the child's request ids, unique per child.
    #[arg(long, hide = true, default_value = "run")]
    request_prefix: String,
}

/// The lease of every claim the children and the parent take, short so that takeovers happen.
const LEASE: SignedDuration = SignedDuration::from_millis(250);
/// The properties the writers share.
const PROPERTIES: [&str; 2] = ["grand-hotel", "harbour-inn"];
/// How many of a property's oldest unfinished business dates the writers open and read at once.
/// Only the oldest of them may be in progress, so only its steps change.
const WINDOW: u32 = 3;
/// The percentage of a writer's rounds that open or read one of the later dates of the window
/// instead of working on the oldest one.
const LATER_DATE_PERCENT: u64 = 25;
/// The business date with day index 0.
const FIRST_DAY: Date = jiff::civil::date(2026, 1, 1);
/// The error message of every failed step.
const FAILURE: &str = "the posting interface timed out";
/// The reason of every skipped step.
const SKIP_REASON: &str = "no reservations were due tonight";
/// A child stops by itself after this long, in case its parent is gone.
const CHILD_TIME_LIMIT: Duration = Duration::from_secs(120);
/// How many older acknowledged requests are repeated after each kill, besides the new ones.
const OLDER_REQUESTS_PER_KILL: usize = 16;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.child {
        return run_child(&args);
    }
    match run_parent(&args) {
        Ok(tally) if tally.passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("crash_torture: {message}");
            ExitCode::from(2)
        }
    }
}

/// Builds the plan of every operation: four steps, the second optional.
fn plan() -> Plan {
    let step = |order, code: &str, required| PlanStep {
        order,
        code: code.into(),
        name: code.replace('_', " "),
        required,
        command: None,
        timeout_seconds: None,
        schedule: None,
        retry: None,
    };
    Plan::new(
        "crash-torture",
        vec![
            step(10, "pre_audit_checks", true),
            step(20, "no_shows", false),
            step(30, "post_room_charges", true),
            step(40, "roll_business_date", true),
        ],
    )
    .expect("the crash-torture plan is valid")
}

/// Returns the business date `index` days after [`FIRST_DAY`].
fn business_date(index: u32) -> Date {
    FIRST_DAY
        .checked_add(jiff::Span::new().days(i64::from(index)))
        .expect("day indexes stay within jiff's date range")
}

/// A xorshift64* generator: small, seedable, and good enough for picking delays and actions.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // One splitmix64 round spreads similar seeds apart. The state must not be 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Returns a number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// Returns `true` with a probability of `percent` in 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

// ---------------------------------------------------------------------------------------------
// Calls and their results, as the child makes and reports them and the parent repeats them.
// ---------------------------------------------------------------------------------------------

/// The action of a call, with the arguments that only it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Open { property: String, date: Date },
    Start,
    Renew { token: String },
    Complete { token: String },
    Fail { token: String },
    Skip,
    Retry,
}

/// One write call with its arguments: enough to print it on one line and to repeat it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    action: Action,
    /// The operation id, or 0 for an open, which finds the operation by property and date.
    operation: u64,
    /// The step order, or 0 for an open.
    order: u32,
    actor: String,
    request_id: Option<String>,
}

/// The result of a call, reduced to what the parent checks.
#[derive(Debug, Clone)]
struct Outcome {
    operation: u64,
    /// `(order, status, attempts)` of each step the result contains.
    states: Vec<(u32, StepStatus, u32)>,
    /// The claim token of a start.
    token: Option<String>,
    /// A hash of the whole result, which a repeat under the same request id must reproduce.
    proof: String,
    /// Whether the call recorded its request id. An open that found its operation fully seeded
    /// in a read snapshot returns without a write transaction and records nothing.
    recorded: bool,
    /// Whether the operation was completed (opens only).
    finished: bool,
}

impl Action {
    /// Returns the name of the call in output lines.
    fn kind(&self) -> &'static str {
        match self {
            Action::Open { .. } => "open",
            Action::Start => "start",
            Action::Renew { .. } => "renew",
            Action::Complete { .. } => "complete",
            Action::Fail { .. } => "fail",
            Action::Skip => "skip",
            Action::Retry => "retry",
        }
    }
}

impl Call {
    /// Makes the call on `store`.
    fn perform(&self, store: &Store, plan: &Plan) -> eodstore::Result<Outcome> {
        let mut caller = Caller::new(self.actor.as_str());
        if let Some(request_id) = &self.request_id {
            caller = caller.request_id(request_id.as_str());
        }
        let id = OperationId(self.operation);
        let order = self.order;
        let step_outcome = |step: &eodstore::Step, proof: String| Outcome {
            operation: self.operation,
            states: vec![state_of(step)],
            token: None,
            proof,
            recorded: self.request_id.is_some(),
            finished: false,
        };
        match &self.action {
            Action::Open { property, date } => {
                let opened = store.open_operation(property, *date, plan, &caller)?;
                let wrote = opened.created || opened.steps.iter().any(|seeded| seeded.created);
                Ok(Outcome {
                    operation: opened.operation.id.0,
                    states: opened
                        .steps
                        .iter()
                        .map(|seeded| state_of(&seeded.step))
                        .collect(),
                    token: None,
                    proof: proof_of(&opened),
                    recorded: self.request_id.is_some() && wrote,
                    finished: opened.operation.status == OperationStatus::Completed,
                })
            }
            Action::Start => {
                let started = store.start_step(id, order, &caller)?;
                let mut outcome = step_outcome(&started.step, proof_of(&started));
                outcome.token = Some(started.claim.token);
                Ok(outcome)
            }
            Action::Renew { token } => {
                // A renewal returns the claim only, so it acknowledges no step state.
                let claim = store.renew_claim(id, order, token, &caller)?;
                Ok(Outcome {
                    operation: self.operation,
                    states: Vec::new(),
                    token: None,
                    proof: proof_of(&claim),
                    recorded: self.request_id.is_some(),
                    finished: false,
                })
            }
            Action::Complete { token } => {
                let step = store.complete_step(id, order, token, Some("posted"), &caller)?;
                Ok(step_outcome(&step, proof_of(&step)))
            }
            Action::Fail { token } => {
                let step = store.fail_step(id, order, token, FAILURE, None, &caller)?;
                Ok(step_outcome(&step, proof_of(&step)))
            }
            Action::Skip => {
                let step = store.skip_step(id, order, SKIP_REASON, &caller)?;
                Ok(step_outcome(&step, proof_of(&step)))
            }
            Action::Retry => {
                let step = store.retry_step(id, order, &caller)?;
                Ok(step_outcome(&step, proof_of(&step)))
            }
        }
    }

    /// Writes the call as space-separated `key=value` fields.
    fn encode(&self) -> String {
        let (kind, extra) = match &self.action {
            Action::Open { property, date } => {
                ("open", format!(" property={property} date={date}"))
            }
            Action::Start => ("start", String::new()),
            Action::Renew { token } => ("renew", format!(" token={token}")),
            Action::Complete { token } => ("complete", format!(" token={token}")),
            Action::Fail { token } => ("fail", format!(" token={token}")),
            Action::Skip => ("skip", String::new()),
            Action::Retry => ("retry", String::new()),
        };
        format!(
            "kind={kind} op={} order={} actor={} rid={}{extra}",
            self.operation,
            self.order,
            self.actor,
            self.request_id.as_deref().unwrap_or("-")
        )
    }

    /// Reads a call from the fields [`Call::encode`] wrote.
    fn decode(fields: &HashMap<&str, &str>) -> Result<Call, String> {
        let field = |key: &str| {
            fields
                .get(key)
                .copied()
                .ok_or_else(|| format!("the field `{key}` is missing"))
        };
        let token = || field("token").map(str::to_owned);
        let action = match field("kind")? {
            "open" => Action::Open {
                property: field("property")?.to_owned(),
                date: field("date")?
                    .parse()
                    .map_err(|err| format!("invalid date: {err}"))?,
            },
            "start" => Action::Start,
            "renew" => Action::Renew { token: token()? },
            "complete" => Action::Complete { token: token()? },
            "fail" => Action::Fail { token: token()? },
            "skip" => Action::Skip,
            "retry" => Action::Retry,
            other => return Err(format!("unknown call kind `{other}`")),
        };
        let number = |key: &str| {
            field(key)?
                .parse::<u64>()
                .map_err(|err| format!("invalid `{key}`: {err}"))
        };
        Ok(Call {
            action,
            operation: number("op")?,
            order: u32::try_from(number("order")?).map_err(|err| err.to_string())?,
            actor: field("actor")?.to_owned(),
            request_id: match field("rid")? {
                "-" => None,
                id => Some(id.to_owned()),
            },
        })
    }
}

fn state_of(step: &eodstore::Step) -> (u32, StepStatus, u32) {
    (step.order, step.status, step.attempts)
}

/// Hashes a result's `Debug` text. Parent and child are the same binary, so they hash alike.
fn proof_of(value: &impl std::fmt::Debug) -> String {
    let mut hasher = DefaultHasher::new();
    format!("{value:?}").hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Formats the `ack` line of a call that returned `outcome`.
fn ack_line(call: &Call, outcome: &Outcome) -> String {
    let states: Vec<String> = outcome
        .states
        .iter()
        .map(|(order, status, attempts)| format!("{order}:{status}:{attempts}"))
        .collect();
    format!(
        "ack {} result_op={} recorded={} proof={} states={}",
        call.encode(),
        outcome.operation,
        outcome.recorded,
        outcome.proof,
        if states.is_empty() {
            "-".to_owned()
        } else {
            states.join(",")
        }
    )
}

fn parse_status(text: &str) -> Option<StepStatus> {
    [
        StepStatus::Pending,
        StepStatus::Running,
        StepStatus::Completed,
        StepStatus::Failed,
        StepStatus::Skipped,
    ]
    .into_iter()
    .find(|status| status.as_str() == text)
}

/// Returns whether a call's error is one that racing writers expect: the call was rejected for
/// the state another writer left, and nothing was written. `PropertyBusy` and `NotBusinessDate`
/// are not expected, because the writers change steps only of each property's oldest unfinished
/// operation. In a file that this program wrote, its property always lets that one start.
fn expected_rejection(err: &Error) -> bool {
    matches!(
        err,
        Error::StepOutOfOrder { .. }
            | Error::AnotherStepRunning { .. }
            | Error::ClaimHeld { .. }
            | Error::WrongClaim { .. }
            | Error::InvalidTransition { .. }
            | Error::OperationFinished { .. }
    )
}

// ---------------------------------------------------------------------------------------------
// The child: writer threads that report each acknowledged write.
// ---------------------------------------------------------------------------------------------

/// Prints one line to standard output and flushes it. The child exits when the pipe is gone,
/// because then its parent is gone too.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(1);
    }
}

fn run_child(args: &Args) -> ExitCode {
    let Some(path) = &args.db else {
        report("error the child needs --db");
        return ExitCode::FAILURE;
    };
    let options = StoreOptions::new().create(true).lease(LEASE);
    let store = match Store::open_with(path, options) {
        Ok(store) => store,
        Err(err) => {
            report(&format!("error opening {} failed: {err}", path.display()));
            return ExitCode::FAILURE;
        }
    };
    report("store_opened");

    let plan = plan();
    let lows = match PROPERTIES.map(|property| first_unfinished_day(&store, property)) {
        [Ok(first), Ok(second)] => [AtomicU32::new(first), AtomicU32::new(second)],
        [Err(err), _] | [_, Err(err)] => {
            report(&format!("error reading the history failed: {err}"));
            return ExitCode::FAILURE;
        }
    };
    let deadline = Instant::now() + CHILD_TIME_LIMIT;
    let seed = args.seed.unwrap_or(0);
    std::thread::scope(|scope| {
        for number in 0..args.writers {
            let mut writer = Writer {
                store: &store,
                plan: &plan,
                lows: &lows,
                rng: Rng::new(seed ^ u64::from(number).wrapping_mul(0x1000_0000_01B3)),
                actor: format!("writer-{number}"),
                request_prefix: format!("{}-w{number}", args.request_prefix),
                requests: 0,
                operations: HashMap::new(),
            };
            scope.spawn(move || {
                while Instant::now() < deadline {
                    writer.work_once();
                }
            });
        }
    });
    ExitCode::SUCCESS
}

/// Returns the day index of the oldest business date of `property` that has no completed
/// operation.
fn first_unfinished_day(store: &Store, property: &str) -> eodstore::Result<u32> {
    let completed: BTreeSet<i32> = store
        .history(property, usize::MAX)?
        .into_iter()
        .filter(|operation| operation.status == OperationStatus::Completed)
        .filter_map(|operation| {
            FIRST_DAY
                .until(operation.business_date)
                .ok()
                .map(|span| span.get_days())
        })
        .collect();
    let mut index = 0;
    while completed.contains(&index) {
        index += 1;
    }
    Ok(u32::try_from(index).unwrap_or(0))
}

/// One writer thread of a child.
struct Writer<'a> {
    store: &'a Store,
    plan: &'a Plan,
    /// Per property, the day index of the oldest business date not seen completed.
    lows: &'a [AtomicU32; 2],
    rng: Rng,
    actor: String,
    request_prefix: String,
    requests: u64,
    /// The operation ids this writer has opened, by property slot and day index.
    operations: HashMap<(usize, u32), u64>,
}

impl Writer<'_> {
    /// Picks one of the operations being worked on, opens it or reads its steps, and, when it is
    /// its property's oldest unfinished operation, advances one of its steps.
    fn work_once(&mut self) {
        let slot = usize::from(self.rng.chance(50));
        let low = self.lows[slot].load(Ordering::SeqCst);
        let ahead = if self.rng.chance(LATER_DATE_PERCENT) {
            1 + self.rng.below(u64::from(WINDOW - 1)) as u32
        } else {
            0
        };
        let index = low + ahead;
        let known = self.operations.get(&(slot, index)).copied();
        let (operation, states, finished) = match known {
            // Mostly a read, because a terminal opens an operation once and then works on it.
            Some(operation) if !self.rng.chance(10) => {
                let view = match self.store.view(OperationId(operation)) {
                    Ok(view) => view,
                    Err(err) => {
                        report(&format!(
                            "error reading operation {operation} failed: {err}"
                        ));
                        return;
                    }
                };
                let states: Vec<_> = view.steps.iter().map(state_of).collect();
                let finished = view.operation.status == OperationStatus::Completed;
                (operation, states, finished)
            }
            _ => {
                let open = Action::Open {
                    property: PROPERTIES[slot].to_owned(),
                    date: business_date(index),
                };
                let Some(opened) = self.call(0, 0, open) else {
                    return;
                };
                self.operations.insert((slot, index), opened.operation);
                (opened.operation, opened.states, opened.finished)
            }
        };
        if finished {
            // Another writer may have moved the window on already, and then this does nothing.
            let _ = self.lows[slot].compare_exchange(
                index,
                index + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            return;
        }
        if ahead > 0 {
            // A later date may start only after the oldest one has finished.
            return;
        }

        // Mostly the first step that has not ended, and sometimes any step, to meet the
        // rejections of out-of-order and repeated transitions.
        let target = if self.rng.chance(10) {
            let pick = self.rng.below(states.len() as u64) as usize;
            states.get(pick)
        } else {
            states.iter().find(|(_, status, _)| !status.is_done())
        };
        let Some(&(order, step_status, _)) = target else {
            return;
        };
        let required = self
            .plan
            .steps()
            .iter()
            .find(|step| step.order == order)
            .is_none_or(|step| step.required);
        match step_status {
            StepStatus::Pending | StepStatus::Failed if !required && self.rng.chance(35) => {
                self.call(operation, order, Action::Skip);
            }
            StepStatus::Failed => {
                if self.call(operation, order, Action::Retry).is_some() && self.rng.chance(50) {
                    self.start_and_work(operation, order);
                }
            }
            StepStatus::Pending
            | StepStatus::Running
            | StepStatus::Completed
            | StepStatus::Skipped => self.start_and_work(operation, order),
        }
    }

    /// Starts a step (taking it over if its lease ended) and then, mostly, completes or fails
    /// it.
    fn start_and_work(&mut self, operation: u64, order: u32) {
        let Some(started) = self.call(operation, order, Action::Start) else {
            return;
        };
        let token = started.token.expect("a start returns its claim token");
        let roll = self.rng.below(100);
        if roll < 8 {
            // Abandoned: the claim stays until its lease ends and another start takes it over.
            return;
        }
        if roll < 18 {
            // A slow attempt: another writer may take the step over, and then the completion
            // below is rejected with a wrong claim.
            let lease_ms = LEASE.as_millis().unsigned_abs();
            std::thread::sleep(Duration::from_millis(
                lease_ms as u64 + self.rng.below(lease_ms as u64),
            ));
        } else if roll < 28 {
            self.call(
                operation,
                order,
                Action::Renew {
                    token: token.clone(),
                },
            );
        }
        if self.rng.chance(30) {
            let failed = self.call(operation, order, Action::Fail { token });
            if failed.is_some() && self.rng.chance(50) {
                self.call(operation, order, Action::Retry);
            }
        } else {
            self.call(operation, order, Action::Complete { token });
        }
    }

    /// Makes one call, half of the time with a new request id, and reports it. Returns the
    /// outcome when the call returned `Ok`.
    fn call(&mut self, operation: u64, order: u32, action: Action) -> Option<Outcome> {
        let request_id = self.rng.chance(50).then(|| {
            self.requests += 1;
            format!("{}-{}", self.request_prefix, self.requests)
        });
        let call = Call {
            action,
            operation,
            order,
            actor: self.actor.clone(),
            request_id,
        };
        if call.request_id.is_some() {
            report(&format!("intent {}", call.encode()));
        }
        match call.perform(self.store, self.plan) {
            Ok(outcome) => {
                report(&ack_line(&call, &outcome));
                if outcome.recorded && self.rng.chance(25) {
                    self.repeat(&call, &outcome);
                }
                Some(outcome)
            }
            Err(err) if expected_rejection(&err) => {
                // Another writer has the step, so give it a moment, as a person at a terminal
                // would, instead of asking again at once.
                std::thread::sleep(Duration::from_millis(self.rng.below(5)));
                None
            }
            Err(err) => {
                report(&format!("error {} failed: {err}", call.encode()));
                None
            }
        }
    }

    /// Repeats an acknowledged call under its request id, which must return the same result.
    fn repeat(&self, call: &Call, first: &Outcome) {
        match call.perform(self.store, self.plan) {
            Ok(again) => {
                report(&ack_line(call, &again));
                if again.proof != first.proof {
                    report(&format!(
                        "error repeating {} returned another result",
                        call.encode()
                    ));
                }
            }
            Err(err) => report(&format!("error repeating {} failed: {err}", call.encode())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: starting and killing children, and what it learned from their reports.
// ---------------------------------------------------------------------------------------------

/// The counts the run reports.
#[derive(Debug, Default)]
struct Tally {
    kills: u32,
    acknowledged: u64,
    lost: u64,
    duplicates: u64,
    torn: u64,
    unopenable: u64,
    unexpected: u64,
    /// Acknowledged calls by kind, such as `start`.
    acknowledged_by_kind: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn count_acknowledged(&mut self, call: &Call) {
        self.acknowledged += 1;
        *self
            .acknowledged_by_kind
            .entry(call.action.kind())
            .or_default() += 1;
    }

    fn passed(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.torn == 0
            && self.unopenable == 0
            && self.unexpected == 0
    }
}

/// Everything acknowledged so far, which must survive every later kill.
#[derive(Debug, Default)]
struct Ledger {
    /// Whether some process opened the store, so that the file must exist.
    store_opened: bool,
    /// Acknowledged opened operations: id to property and business date.
    operations: BTreeMap<u64, (String, Date)>,
    /// Acknowledged states of each step `(operation, order)`: `(status, attempts)`.
    steps: BTreeMap<(u64, u32), BTreeSet<(u8, u32)>>,
    /// Acknowledged calls whose request id was recorded, with the hash of their result.
    requests: Vec<(Call, String)>,
    /// How many of `requests` were repeated after an earlier kill.
    requests_checked: usize,
    /// Calls of the current child begun with a request id and not acknowledged yet.
    intents: BTreeMap<String, Call>,
    /// Operations already counted in `duplicates`, so that a problem that stays is counted once.
    counted_duplicates: BTreeSet<u64>,
    /// Operations already counted in `torn`.
    counted_torn: BTreeSet<u64>,
}

/// Numbers a status, because `StepStatus` has no order of its own.
fn status_code(status: StepStatus) -> u8 {
    match status {
        StepStatus::Pending => 0,
        StepStatus::Running => 1,
        StepStatus::Completed => 2,
        StepStatus::Failed => 3,
        StepStatus::Skipped => 4,
    }
}

fn status_from_code(code: u8) -> StepStatus {
    match code {
        0 => StepStatus::Pending,
        1 => StepStatus::Running,
        2 => StepStatus::Completed,
        3 => StepStatus::Failed,
        _ => StepStatus::Skipped,
    }
}

impl Ledger {
    /// Records one line of a child's output. Returns a message for an `error` line or a line
    /// that does not parse.
    fn absorb(&mut self, line: &str, tally: &mut Tally) -> Option<String> {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        let fields: HashMap<&str, &str> = rest
            .split(' ')
            .filter_map(|field| field.split_once('='))
            .collect();
        match tag {
            "store_opened" => {
                self.store_opened = true;
                None
            }
            "intent" => match Call::decode(&fields) {
                Ok(call) => {
                    let request_id = call.request_id.clone().unwrap_or_default();
                    self.intents.insert(request_id, call);
                    None
                }
                Err(err) => Some(format!("unreadable line `{line}`: {err}")),
            },
            "ack" => match Self::decode_ack(&fields) {
                Ok((call, outcome)) => {
                    tally.count_acknowledged(&call);
                    self.acknowledge(call, &outcome);
                    None
                }
                Err(err) => Some(format!("unreadable line `{line}`: {err}")),
            },
            "error" => Some(rest.to_owned()),
            _ => Some(format!("unknown line `{line}`")),
        }
    }

    fn decode_ack(fields: &HashMap<&str, &str>) -> Result<(Call, Outcome), String> {
        let call = Call::decode(fields)?;
        let field = |key: &str| {
            fields
                .get(key)
                .copied()
                .ok_or_else(|| format!("the field `{key}` is missing"))
        };
        let mut states = Vec::new();
        for state in field("states")?.split(',').filter(|state| *state != "-") {
            let parts: Vec<&str> = state.split(':').collect();
            let [order, status_name, attempts] = parts.as_slice() else {
                return Err(format!("invalid step state `{state}`"));
            };
            states.push((
                order
                    .parse()
                    .map_err(|_| format!("invalid order in `{state}`"))?,
                parse_status(status_name).ok_or_else(|| format!("invalid status in `{state}`"))?,
                attempts
                    .parse()
                    .map_err(|_| format!("invalid attempts in `{state}`"))?,
            ));
        }
        let outcome = Outcome {
            operation: field("result_op")?
                .parse()
                .map_err(|_| "invalid `result_op`".to_owned())?,
            states,
            token: None,
            proof: field("proof")?.to_owned(),
            recorded: field("recorded")? == "true",
            finished: false,
        };
        Ok((call, outcome))
    }

    /// Records an acknowledged call and what it returned.
    fn acknowledge(&mut self, call: Call, outcome: &Outcome) {
        if let Action::Open { property, date } = &call.action {
            self.operations
                .insert(outcome.operation, (property.clone(), *date));
        }
        for (order, status, attempts) in &outcome.states {
            self.steps
                .entry((outcome.operation, *order))
                .or_default()
                .insert((status_code(*status), *attempts));
        }
        if let Some(request_id) = &call.request_id {
            self.intents.remove(request_id);
            if outcome.recorded {
                self.requests.push((call, outcome.proof.clone()));
            }
        }
    }
}

/// A child's run: its complete output lines, and whether it exited before the kill.
struct ChildRun {
    lines: Vec<String>,
    exited_early: Option<std::process::ExitStatus>,
}

/// Reads complete lines until end of file. A last line without a newline was cut off by the
/// kill and is dropped.
fn read_complete_lines(output: impl Read) -> Vec<String> {
    let mut reader = BufReader::new(output);
    let mut lines = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return lines,
            Ok(_) if line.ends_with('\n') => lines.push(line.trim_end().to_owned()),
            Ok(_) => return lines,
        }
    }
}

/// Starts a child, kills it with SIGKILL after `delay`, and returns its output.
fn run_and_kill_child(
    path: &Path,
    writers: u32,
    seed: u64,
    request_prefix: &str,
    delay: Duration,
) -> Result<ChildRun, String> {
    let exe = std::env::current_exe()
        .map_err(|err| format!("finding this program's path failed: {err}"))?;
    let mut child = Command::new(exe)
        .arg("--child")
        .arg("--db")
        .arg(path)
        .args(["--writers", &writers.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--request-prefix", request_prefix])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| format!("starting a child process failed: {err}"))?;
    let output = child.stdout.take().expect("the child's stdout is piped");
    let reader = std::thread::spawn(move || read_complete_lines(output));

    std::thread::sleep(delay);
    let exited_early = child
        .try_wait()
        .map_err(|err| format!("polling child {} failed: {err}", child.id()))?;
    if exited_early.is_none() {
        // `Child::kill` sends SIGKILL on Unix.
        child
            .kill()
            .map_err(|err| format!("killing child {} failed: {err}", child.id()))?;
    }
    child
        .wait()
        .map_err(|err| format!("waiting for child {} failed: {err}", child.id()))?;
    let lines = reader
        .join()
        .map_err(|_| "the thread reading a child's output panicked".to_owned())?;
    Ok(ChildRun {
        lines,
        exited_early,
    })
}

fn run_parent(args: &Args) -> Result<Tally, String> {
    // Declared before anything that uses the file, so that the directory is removed last.
    let temp_dir;
    let path = match &args.db {
        Some(path) => path.clone(),
        None => {
            temp_dir = tempfile::tempdir()
                .map_err(|err| format!("creating a temporary directory failed: {err}"))?;
            temp_dir.path().join("eod.redb")
        }
    };
    let seed = args
        .seed
        .unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond().unsigned_abs() as u64);
    // Request ids must be new even in a file used by earlier runs.
    let run_tag = jiff::Timestamp::now().as_millisecond();
    println!(
        "db={} kills={} writers={} seed={seed} (rerun with --seed {seed})",
        path.display(),
        args.kills,
        args.writers
    );

    let plan = plan();
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let mut ledger = Ledger {
        store_opened: path.exists(),
        ..Ledger::default()
    };
    let mut killed_before_open = 0_u32;
    let began = Instant::now();
    let progress_every = (args.kills / 10).max(1);
    for kill in 1..=args.kills {
        let child_seed = rng.next();
        // One kill in ten comes within 4 ms, mostly before the child has opened the store.
        let delay_ms = if rng.chance(10) {
            rng.below(4)
        } else {
            4 + rng.below(396)
        };
        let run = run_and_kill_child(
            &path,
            args.writers,
            child_seed,
            &format!("r{run_tag}-k{kill}"),
            Duration::from_millis(delay_ms),
        )?;
        tally.kills = kill;
        if let Some(status) = run.exited_early {
            tally.unexpected += 1;
            println!("kill {kill}: the child exited by itself before the kill, with {status}");
        }
        if !run.lines.iter().any(|line| line == "store_opened") {
            killed_before_open += 1;
        }
        for line in &run.lines {
            if let Some(message) = ledger.absorb(line, &mut tally) {
                tally.unexpected += 1;
                println!("kill {kill}: the child reported: {message}");
            }
        }

        let last = kill == args.kills;
        let checked = check_store(&path, &plan, &mut ledger, &mut tally, &mut rng, kill, last);
        let Some(summary) = checked else {
            break;
        };
        if kill % progress_every == 0 || last {
            println!(
                "kill {kill}/{}: delay={delay_ms}ms acknowledged={} operations={} \
                 takeovers={} retries={} killed_before_open={killed_before_open} \
                 file={}KiB lost={} duplicates={} torn={} unopenable={} elapsed={:.1}s",
                args.kills,
                tally.acknowledged,
                summary.operations,
                summary.takeovers,
                summary.retries,
                std::fs::metadata(&path).map_or(0, |meta| meta.len() / 1024),
                tally.lost,
                tally.duplicates,
                tally.torn,
                tally.unopenable,
                began.elapsed().as_secs_f64()
            );
        }
    }

    let by_kind: Vec<String> = tally
        .acknowledged_by_kind
        .iter()
        .map(|(kind, count)| format!("{kind}={count}"))
        .collect();
    println!("acknowledged_by_call {}", by_kind.join(" "));
    println!("unexpected_errors={}", tally.unexpected);
    println!(
        "kills={} acknowledged={} lost={} duplicates={} torn={} unopenable={}",
        tally.kills, tally.acknowledged, tally.lost, tally.duplicates, tally.torn, tally.unopenable
    );
    Ok(tally)
}

// ---------------------------------------------------------------------------------------------
// The checks after a kill.
// ---------------------------------------------------------------------------------------------

/// Counts from one check, for the progress line.
#[derive(Debug, Default)]
struct CheckSummary {
    operations: usize,
    takeovers: usize,
    retries: usize,
}

/// Checks the file after kill number `kill`, then repeats the calls whose outcome the kill made
/// uncertain. Returns `None` when the file does not open, which ends the run.
fn check_store(
    path: &Path,
    plan: &Plan,
    ledger: &mut Ledger,
    tally: &mut Tally,
    rng: &mut Rng,
    kill: u32,
    last: bool,
) -> Option<CheckSummary> {
    let mut store = match Store::open_with(path, StoreOptions::new().lease(LEASE)) {
        Ok(store) => store,
        Err(Error::NoDatabase { .. }) if !ledger.store_opened => {
            // The child was killed before it created the file, so nothing was acknowledged.
            return Some(CheckSummary::default());
        }
        Err(err) => {
            tally.unopenable += 1;
            println!("kill {kill}: unopenable: {err}");
            return None;
        }
    };
    ledger.store_opened = true;
    match store.check_integrity() {
        Ok(report) if report.is_clean() => {}
        Ok(report) => {
            tally.unopenable += 1;
            for problem in &report.problems {
                println!(
                    "kill {kill}: check_integrity: {:?}: {}",
                    problem.kind, problem.detail
                );
            }
        }
        Err(err) => {
            tally.unopenable += 1;
            println!("kill {kill}: check_integrity failed: {err}");
        }
    }

    let mut summary = CheckSummary::default();
    let mut views = BTreeMap::new();
    for id in 1.. {
        let id = OperationId(id);
        let read = store
            .view(id)
            .and_then(|view| Ok((store.events(id)?, view)));
        match read {
            Ok((events, view)) => {
                views.insert(id.0, (view, events));
            }
            Err(Error::OperationNotFound { .. }) => break,
            Err(err) => {
                tally.unopenable += 1;
                println!("kill {kill}: reading operation {id} failed: {err}");
                break;
            }
        }
    }
    summary.operations = views.len();
    for (view, events) in views.values() {
        let id = view.operation.id;
        if let Some(problem) = step_problem(plan, view)
            && ledger.counted_duplicates.insert(id.0)
        {
            tally.duplicates += 1;
            println!("kill {kill}: operation {id}: {problem}");
        }
        let problems = torn_problems(view, events);
        if !problems.is_empty() && ledger.counted_torn.insert(id.0) {
            tally.torn += 1;
            for problem in problems {
                println!("kill {kill}: operation {id} is torn: {problem}");
            }
        }
        summary.takeovers += events
            .iter()
            .filter(|event| event.kind == EventKind::TakenOver)
            .count();
        summary.retries += events
            .iter()
            .filter(|event| event.kind == EventKind::Retried)
            .count();
    }

    check_acknowledged(&store, plan, ledger, tally, &views, kill);
    check_requests(&store, plan, ledger, tally, rng, kill, last);
    repeat_uncertain_calls(&store, plan, ledger, tally, kill);
    Some(summary)
}

/// Describes how an operation's steps differ from the plan: missing, duplicate, unexpected or
/// changed steps.
fn step_problem(plan: &Plan, view: &OperationView) -> Option<String> {
    let stored: Vec<(u32, &str, bool)> = view
        .steps
        .iter()
        .map(|step| (step.order, step.code.as_str(), step.required))
        .collect();
    let planned: Vec<(u32, &str, bool)> = plan
        .steps()
        .iter()
        .map(|step| (step.order, step.code.as_str(), step.required))
        .collect();
    if stored == planned {
        return None;
    }
    let count = |order: u32| stored.iter().filter(|step| step.0 == order).count();
    let missing: Vec<u32> = planned
        .iter()
        .map(|step| step.0)
        .filter(|order| count(*order) == 0)
        .collect();
    let mut duplicate: Vec<u32> = stored
        .iter()
        .map(|step| step.0)
        .filter(|order| count(*order) > 1)
        .collect();
    duplicate.dedup();
    Some(format!(
        "the steps are {stored:?} but the plan has {planned:?} (missing {missing:?}, \
         duplicate {duplicate:?})"
    ))
}

/// Replays an operation's events and lists every way they disagree with its steps.
fn torn_problems(view: &OperationView, events: &[Event]) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some((index, event)) = events
        .iter()
        .enumerate()
        .find(|(index, event)| event.seq != *index as u64 + 1)
    {
        problems.push(format!(
            "event number {} has sequence number {}",
            index + 1,
            event.seq
        ));
        return problems;
    }
    if events.first().map(|event| event.kind) != Some(EventKind::OperationCreated) {
        problems.push("the first event is not operation_created".to_owned());
    }
    let replayed = replay_steps(view, events, &mut problems);
    compare_with_steps(view, events, &replayed, &mut problems);
    problems
}

/// Replays the step events and returns each step's `(status, attempts)` as they leave it.
fn replay_steps(
    view: &OperationView,
    events: &[Event],
    problems: &mut Vec<String>,
) -> BTreeMap<u32, (StepStatus, u32)> {
    let mut replayed: BTreeMap<u32, (StepStatus, u32)> = view
        .steps
        .iter()
        .map(|step| (step.order, (StepStatus::Pending, 0)))
        .collect();
    let mut seeded = false;
    let mut finished_at = None;
    for event in events {
        if let Some(position) = finished_at {
            problems.push(format!(
                "event {} ({}) follows operation_finished (event {position})",
                event.seq, event.kind
            ));
        }
        match event.kind {
            EventKind::OperationCreated if event.seq != 1 => {
                problems.push(format!("event {} creates the operation again", event.seq));
            }
            EventKind::StepsSeeded => seeded = true,
            EventKind::OperationFinished => finished_at = Some(event.seq),
            _ => {}
        }
        let Some(order) = event.step_order else {
            continue;
        };
        let describe = format!("event {} ({}) of step {order}", event.seq, event.kind);
        if !seeded {
            problems.push(format!("{describe} comes before any steps_seeded event"));
        }
        let Some((state, attempts)) = replayed.get_mut(&order) else {
            problems.push(format!("{describe} names a step that is not stored"));
            continue;
        };
        let (Some(from), Some(to)) = (event.from, event.to) else {
            problems.push(format!("{describe} lacks its from or to status"));
            continue;
        };
        if !allowed_transitions(event.kind).contains(&(from, to)) {
            problems.push(format!("{describe} moves the step from {from} to {to}"));
        }
        if from != *state {
            problems.push(format!(
                "{describe} moves the step from {from}, but the events before it left it {state}"
            ));
        }
        *state = to;
        if matches!(event.kind, EventKind::Started | EventKind::TakenOver) {
            *attempts += 1;
        }
    }
    replayed
}

/// Returns the `(from, to)` statuses that a step event of `kind` may record.
fn allowed_transitions(kind: EventKind) -> &'static [(StepStatus, StepStatus)] {
    match kind {
        EventKind::Started => &[(StepStatus::Pending, StepStatus::Running)],
        EventKind::TakenOver | EventKind::LeaseRenewed => {
            &[(StepStatus::Running, StepStatus::Running)]
        }
        EventKind::Completed => &[(StepStatus::Running, StepStatus::Completed)],
        EventKind::Failed => &[(StepStatus::Running, StepStatus::Failed)],
        EventKind::Skipped => &[
            (StepStatus::Pending, StepStatus::Skipped),
            (StepStatus::Failed, StepStatus::Skipped),
        ],
        EventKind::Retried => &[(StepStatus::Failed, StepStatus::Pending)],
        EventKind::OperationCreated
        | EventKind::StepsSeeded
        | EventKind::OperationFinished
        | EventKind::RunStarted
        | EventKind::RunEnded
        | EventKind::DateOverride
        | EventKind::DateRolled
        | EventKind::Released => &[],
        // This example never imports; an import moves a new step from pending to any status.
        EventKind::Imported => &[
            (StepStatus::Pending, StepStatus::Pending),
            (StepStatus::Pending, StepStatus::Running),
            (StepStatus::Pending, StepStatus::Completed),
            (StepStatus::Pending, StepStatus::Failed),
            (StepStatus::Pending, StepStatus::Skipped),
        ],
    }
}

/// Compares the replayed step states, the claims and the operation's status and finish with
/// the stored steps.
fn compare_with_steps(
    view: &OperationView,
    events: &[Event],
    replayed: &BTreeMap<u32, (StepStatus, u32)>,
    problems: &mut Vec<String>,
) {
    for step in &view.steps {
        let (state, attempts) = replayed[&step.order];
        if (state, attempts) != (step.status, step.attempts) {
            problems.push(format!(
                "step {} is {} after {} attempts, but its events give {state} after {attempts}",
                step.order, step.status, step.attempts
            ));
        }
        if step.claim.is_some() != (step.status == StepStatus::Running) {
            problems.push(format!(
                "step {} is {} and {} a claim",
                step.order,
                step.status,
                if step.claim.is_some() { "has" } else { "lacks" }
            ));
        }
    }
    let derived = OperationStatus::of(&view.steps);
    let operation = &view.operation;
    if operation.status != derived {
        problems.push(format!(
            "the operation is stored as {} but its steps make it {derived}",
            operation.status
        ));
    }
    let completed = derived == OperationStatus::Completed;
    let finished_events = events
        .iter()
        .filter(|event| event.kind == EventKind::OperationFinished)
        .count();
    if finished_events != usize::from(completed) {
        problems.push(format!(
            "the operation is {derived} and has {finished_events} operation_finished events"
        ));
    }
    if operation.finished_at.is_some() != completed {
        problems.push(format!(
            "the operation is {derived} and its finished_at is {:?}",
            operation.finished_at
        ));
    }
}

/// Returns whether a step whose state was `from` can have the state `to` after zero or more
/// transitions.
fn reachable(from: (StepStatus, u32), to: (StepStatus, u32)) -> bool {
    let (status, attempts) = from;
    if status.is_done() {
        return to == from;
    }
    if to.1 != attempts {
        // Only a start or takeover changes the attempts, and only upwards.
        return to.1 > attempts;
    }
    // With equal attempts, a running step can become completed or failed. A failed step can
    // become pending by a retry, or skipped. A pending step can become skipped.
    match status {
        StepStatus::Running => true,
        StepStatus::Failed => matches!(
            to.0,
            StepStatus::Failed | StepStatus::Pending | StepStatus::Skipped
        ),
        StepStatus::Pending => matches!(to.0, StepStatus::Pending | StepStatus::Skipped),
        StepStatus::Completed | StepStatus::Skipped => false,
    }
}

/// Counts acknowledged operations and step states that are gone. A lost state is counted once:
/// the ledger then keeps only the current state of that step.
fn check_acknowledged(
    store: &Store,
    plan: &Plan,
    ledger: &mut Ledger,
    tally: &mut Tally,
    views: &BTreeMap<u64, (OperationView, Vec<Event>)>,
    kill: u32,
) {
    let mut lost_operations = Vec::new();
    for (&id, (property, date)) in &ledger.operations {
        let Some((view, _)) = views.get(&id) else {
            tally.lost += 1;
            println!("kill {kill}: lost: operation {id} ({property}, {date}) is gone");
            lost_operations.push(id);
            continue;
        };
        let found = store.find_operation(property, *date).ok().flatten();
        let indexed = found.as_ref().map(|operation| operation.id.0);
        let orders: Vec<u32> = view.steps.iter().map(|step| step.order).collect();
        let planned: Vec<u32> = plan.steps().iter().map(|step| step.order).collect();
        if indexed != Some(id) || orders != planned {
            tally.lost += 1;
            println!(
                "kill {kill}: lost: operation {id} ({property}, {date}) was acknowledged with \
                 steps {planned:?}; now ({property}, {date}) finds {indexed:?} and operation \
                 {id} has steps {orders:?}"
            );
            lost_operations.push(id);
        }
    }
    for id in lost_operations {
        ledger.operations.remove(&id);
    }

    for (&(id, order), acknowledged) in &mut ledger.steps {
        let current = views
            .get(&id)
            .and_then(|(view, _)| view.steps.iter().find(|step| step.order == order))
            .map(|step| (step.status, step.attempts));
        let mut lost = false;
        for &(code, attempts) in acknowledged.iter() {
            let state = (status_from_code(code), attempts);
            if current.is_none_or(|current| !reachable(state, current)) {
                tally.lost += 1;
                lost = true;
                println!(
                    "kill {kill}: lost: step {order} of operation {id} was acknowledged as {} \
                     after {} attempts, but is now {current:?}",
                    state.0, state.1
                );
            }
        }
        if lost {
            acknowledged.clear();
            if let Some((status, attempts)) = current {
                acknowledged.insert((status_code(status), attempts));
            }
        }
    }
}

/// Repeats acknowledged requests under their ids and counts those that return another result:
/// the requests acknowledged since the last check and a few older ones, or all on the last
/// check. A lost request is counted once and then dropped from the ledger.
fn check_requests(
    store: &Store,
    plan: &Plan,
    ledger: &mut Ledger,
    tally: &mut Tally,
    rng: &mut Rng,
    kill: u32,
    all: bool,
) {
    let older = ledger.requests_checked;
    let mut picks: BTreeSet<usize> = if all {
        (0..older).collect()
    } else {
        (0..OLDER_REQUESTS_PER_KILL.min(older))
            .map(|_| rng.below(older as u64) as usize)
            .collect()
    };
    picks.extend(older..ledger.requests.len());
    let mut lost = Vec::new();
    for index in picks {
        let (call, proof) = &ledger.requests[index];
        let repeated = call.perform(store, plan);
        if matches!(&repeated, Ok(outcome) if outcome.proof == *proof) {
            continue;
        }
        tally.lost += 1;
        lost.push(index);
        let result = match &repeated {
            Ok(outcome) => format!("another result (hash {})", outcome.proof),
            Err(err) => format!("an error: {err}"),
        };
        println!(
            "kill {kill}: lost: repeating the acknowledged request {} returned {result}",
            call.encode()
        );
    }
    for index in lost.into_iter().rev() {
        ledger.requests.remove(index);
    }
    ledger.requests_checked = ledger.requests.len();
}

/// Repeats the calls that the killed child had begun with a request id but not acknowledged,
/// as a client does after an uncertain outcome.
fn repeat_uncertain_calls(
    store: &Store,
    plan: &Plan,
    ledger: &mut Ledger,
    tally: &mut Tally,
    kill: u32,
) {
    let uncertain: Vec<Call> = std::mem::take(&mut ledger.intents).into_values().collect();
    for call in uncertain {
        match call.perform(store, plan) {
            Ok(outcome) => {
                tally.count_acknowledged(&call);
                ledger.acknowledge(call, &outcome);
            }
            Err(err) if expected_rejection(&err) => {}
            Err(err) => {
                tally.unexpected += 1;
                println!(
                    "kill {kill}: repeating the uncertain call {} failed: {err}",
                    call.encode()
                );
            }
        }
    }
}
