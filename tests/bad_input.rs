//! Bad input against the library and the `eod` command, as two tables with one row per input.
//! The rows cover malformed and impossible dates, unknown ids and orders, empty, overlong and
//! huge names, bad plan files, request ids and actors, leases, transitions out of order, wrong
//! and expired claims, finished operations, and database paths that are not database files.
//!
//! Every row makes its bad call on a real database file that nothing else has open, and checks
//! that the call fails without a panic, with the expected error (an `Error` variant, or a
//! documented exit code of `eod`), with a message that names the rejected value, and that the
//! database file holds the same bytes as an untouched copy afterwards (see
//! [`unchanged_states`]).
//!
//! The tests after the two tables each pin one kind of bug these tables found, and fixed:
//! control characters and huge values quoted in messages, reads that accepted an invalid
//! property, a lease named in another unit than the one given, handlers for unknown codes, and
//! an unchecked default lease.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use eodstore::plan::{MAX_CODE_LEN, MAX_NAME_CHARS, MAX_PLAN_FILE_BYTES, MAX_STEPS};
use eodstore::runner::Runner;
use eodstore::{
    Caller, ConcurrencyMode, Durability, Error, MAX_PROPERTY_CHARS, MIN_CACHE_SIZE, ManualClock,
    OperationId, Plan, PlanStep, Store, StoreOptions, parse_business_date,
};
use jiff::{SignedDuration, Timestamp};

/// The property and business date of the operation that the fixtures open.
const PROPERTY: &str = "grand";
const DAY: &str = "2026-12-04";

/// The request id of the start in [`State::Running`].
const START_REQUEST: &str = "start-1";

/// The maximum length of an actor and of a request id, in characters, as `Caller::validate`
/// documents it. The crate exports no constant for it.
const MAX_CALLER_TEXT_CHARS: usize = 200;

/// The maximum lease that `Caller::validate` accepts, 7 days, in seconds.
const MAX_LEASE_SECS: i64 = 7 * 24 * 60 * 60;

/// Linux limits each argument of a new process to 128 KiB (`MAX_ARG_STRLEN`), so the huge
/// names given to `eod` stay below it. The library rows use 1 MiB.
const HUGE_CLI_CHARS: usize = 100_000;
const HUGE_LIBRARY_CHARS: usize = 1 << 20;

/// Returns `value` as an error message quotes it: the first 120 characters, and the length of a
/// longer value.
fn quoted(value: &str) -> String {
    let count = value.chars().count();
    if count > 120 {
        let head: String = value.chars().take(120).collect();
        format!("{head}… ({count} characters in all)")
    } else {
        value.to_owned()
    }
}

fn date(text: &str) -> jiff::civil::Date {
    parse_business_date(text).expect("a valid test date")
}

fn caller(actor: &str) -> Caller {
    Caller::new(actor)
}

// ------------------------------------------------------------------------------------------------
// Fixtures: a database file brought to a state, then closed.
// ------------------------------------------------------------------------------------------------

/// The state a row's database path is in before its bad call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A database with no operation.
    Empty,
    /// Operation 1 of property `grand` on 2026-12-04, with the standard plan and every step
    /// pending.
    Opened,
    /// `Opened`, with step 1 started by `ayşe` under request id [`START_REQUEST`]. The claim's
    /// 5-minute lease runs from the fixture's creation, so it is live for every row.
    Running,
    /// `Opened`, with steps 1 and 2 completed and the optional step 3 running.
    OptionalRunning,
    /// `Opened`, with step 1 failed.
    Failed,
    /// `Opened`, with step 1 started by `ayşe` an hour ago with a 5-minute lease and taken over
    /// by `mehmet` now. The fixture's claim is `ayşe`'s expired one.
    TakenOver,
    /// `Opened`, with every required step completed and every optional one skipped, so the
    /// operation is finished.
    Finished,
    /// Nothing exists at the database path.
    NoFile,
    /// The database path is a directory.
    Directory,
    /// The database path is an empty file.
    EmptyFile,
    /// The database path is a text file of another program.
    ForeignFile,
    /// An `Opened` database whose file has mode 000.
    Unreadable,
    /// The database path lies under a regular file, as in `plain/eod.redb`.
    UnderFile,
    /// The database path is a symbolic link to itself, which no process can read through.
    SymlinkLoop,
    /// The database path is a FIFO, whose open would wait for a writer.
    Fifo,
}

/// A database path in its own temporary directory, brought to a [`State`] and closed.
struct Fixture {
    dir: tempfile::TempDir,
    /// The path given to the bad call.
    db: PathBuf,
    /// The path whose content must not change: the database file, the file above it, or the
    /// fixture's directory when no database file exists.
    watched: PathBuf,
    /// The directory of the shared plan files.
    plans: PathBuf,
    /// The clock of every store opened on the fixture. It reads the fixture's creation time.
    clock: Arc<ManualClock>,
    /// The claim token of the state, or empty.
    claim: String,
}

impl Fixture {
    fn new(state: State, plans: &Path) -> Fixture {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let now = Timestamp::now();
        let mut fixture = Fixture {
            db: dir.path().join("eod.redb"),
            watched: dir.path().join("eod.redb"),
            dir,
            plans: plans.to_owned(),
            clock: Arc::new(ManualClock::new(now)),
            claim: String::new(),
        };
        match state {
            // Nothing may appear in the directory, under any name.
            State::NoFile => fixture.watched = fixture.dir.path().to_owned(),
            State::Directory => std::fs::create_dir(&fixture.db).expect("create the directory"),
            State::EmptyFile => std::fs::write(&fixture.db, "").expect("write the empty file"),
            State::ForeignFile => std::fs::write(&fixture.db, "ORDER,CODE\n1,pre_audit_checks\n")
                .expect("write the foreign file"),
            State::UnderFile => {
                let plain = fixture.dir.path().join("plain");
                std::fs::write(&plain, "a regular file\n").expect("write the plain file");
                fixture.db = plain.join("eod.redb");
                fixture.watched = plain;
            }
            State::Fifo => {
                let status = Command::new("mkfifo")
                    .arg(&fixture.db)
                    .status()
                    .expect("run mkfifo");
                assert!(status.success(), "mkfifo failed");
            }
            State::SymlinkLoop => {
                std::os::unix::fs::symlink("eod.redb", &fixture.db).expect("create the link");
            }
            State::Unreadable => {
                fixture.prepare(State::Opened, now);
                let mode = std::fs::Permissions::from_mode(0o000);
                std::fs::set_permissions(&fixture.db, mode).expect("make the file unreadable");
            }
            _ => fixture.prepare(state, now),
        }
        fixture
    }

    /// Creates the database and applies the changes of `state`, then closes it.
    fn prepare(&mut self, state: State, now: Timestamp) {
        let store = Store::open_with(&self.db, self.options().create(true))
            .expect("create the fixture's database");
        if state == State::Empty {
            return;
        }
        let id = store
            .open_operation(PROPERTY, date(DAY), &Plan::standard(), &caller("ayşe"))
            .expect("open the fixture's operation")
            .operation
            .id;
        assert_eq!(id, OperationId(1), "a new database starts with operation 1");
        let ayse = caller("ayşe");
        match state {
            State::Running => {
                let started = store
                    .start_step(id, 1, &caller("ayşe").request_id(START_REQUEST))
                    .expect("start step 1");
                self.claim = started.claim.token;
            }
            State::OptionalRunning => {
                for order in [1, 2] {
                    let started = store.start_step(id, order, &ayse).expect("start a step");
                    store
                        .complete_step(id, order, &started.claim.token, None, &ayse)
                        .expect("complete a step");
                }
                self.claim = store
                    .start_step(id, 3, &ayse)
                    .expect("start step 3")
                    .claim
                    .token;
            }
            State::Failed => {
                let started = store.start_step(id, 1, &ayse).expect("start step 1");
                store
                    .fail_step(id, 1, &started.claim.token, "checks failed", None, &ayse)
                    .expect("fail step 1");
            }
            State::TakenOver => {
                let hour = SignedDuration::from_hours(1);
                self.clock.set(now.checked_sub(hour).expect("an hour ago"));
                let lease = SignedDuration::from_mins(5);
                let first = store
                    .start_step(id, 1, &caller("ayşe").lease(lease))
                    .expect("start step 1 an hour ago");
                self.clock.set(now);
                let second = store
                    .start_step(id, 1, &caller("mehmet"))
                    .expect("take step 1 over");
                assert!(
                    second.took_over_from.is_some(),
                    "the start took step 1 over"
                );
                self.claim = first.claim.token;
            }
            State::Finished => {
                for step in Plan::standard().steps() {
                    if step.required {
                        let started = store.start_step(id, step.order, &ayse).expect("start");
                        store
                            .complete_step(id, step.order, &started.claim.token, None, &ayse)
                            .expect("complete");
                    } else {
                        store
                            .skip_step(id, step.order, "not needed", &ayse)
                            .expect("skip");
                    }
                }
            }
            _ => {}
        }
    }

    fn options(&self) -> StoreOptions {
        StoreOptions::new().clock(self.clock.clone())
    }

    /// Opens the existing database as a library caller would, with the fixture's clock.
    fn open(&self) -> eodstore::Result<Store> {
        Store::open_with(&self.db, self.options())
    }

    fn plan(&self, name: &str) -> PathBuf {
        self.plans.join(name)
    }

    fn plan_from_file(&self, name: &str) -> eodstore::Result<Plan> {
        Plan::from_file(&self.plan(name))
    }

    /// Replaces the placeholders `{claim}`, `{db}` and `{plans}` in `text`.
    fn fill(&self, text: &str) -> String {
        text.replace("{claim}", &self.claim)
            .replace("{db}", &self.db.display().to_string())
            .replace("{plans}", &self.plans.display().to_string())
    }

    /// Returns whether a row of `state` cannot test what it means to, and why. Mode 000 does not
    /// stop a process with `CAP_DAC_OVERRIDE`, such as one running as root, from reading.
    fn skip_reason(&self, state: State) -> Option<&'static str> {
        (state == State::Unreadable && std::fs::File::open(&self.db).is_ok())
            .then_some("this process can read a file with mode 000, as root can")
    }
}

// ------------------------------------------------------------------------------------------------
// Comparing the watched path before and after a bad call.
// ------------------------------------------------------------------------------------------------

/// What a path contains.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathState {
    Missing,
    /// A symbolic link to this target.
    Symlink(PathBuf),
    /// A FIFO, socket or device, which is never read, because reading may block.
    Special(String),
    /// A directory with these entry names, sorted.
    Directory(Vec<String>),
    File(Vec<u8>),
}

impl PathState {
    fn describe(&self) -> String {
        match self {
            PathState::Missing => "nothing".into(),
            PathState::Symlink(target) => format!("a link to {}", target.display()),
            PathState::Special(kind) => kind.clone(),
            PathState::Directory(names) => format!("a directory with {names:?}"),
            PathState::File(bytes) => format!("a file of {} bytes", bytes.len()),
        }
    }
}

fn path_state(path: &Path) -> PathState {
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == ErrorKind::NotFound => PathState::Missing,
        Err(err) => panic!("inspect {}: {err}", path.display()),
        Ok(metadata) if metadata.is_symlink() => {
            PathState::Symlink(std::fs::read_link(path).expect("read the link"))
        }
        Ok(metadata) if metadata.is_dir() => {
            let mut names: Vec<String> = std::fs::read_dir(path)
                .expect("list the directory")
                .map(|entry| {
                    entry
                        .expect("read an entry")
                        .file_name()
                        .to_string_lossy()
                        .into()
                })
                .collect();
            names.sort();
            PathState::Directory(names)
        }
        Ok(metadata) if !metadata.is_file() => {
            PathState::Special(format!("{:?}", metadata.file_type()))
        }
        Ok(metadata) => PathState::File(read_even_if_unreadable(path, metadata.permissions())),
    }
}

/// Reads a file, lifting mode 000 for the moment of the read when this process lacks the right.
fn read_even_if_unreadable(path: &Path, permissions: std::fs::Permissions) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == ErrorKind::PermissionDenied => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .expect("make the file readable");
            let bytes = std::fs::read(path).expect("read the file");
            std::fs::set_permissions(path, permissions).expect("restore the file's mode");
            bytes
        }
        Err(err) => panic!("read {}: {err}", path.display()),
    }
}

/// Returns the contents that the watched path may have after a rejected call, each with a label.
///
/// A rejected call must not change a database's content, but a plain byte comparison with the
/// file before the call cannot be the test. Closing a `redb::Database` that was opened for
/// writing commits one more transaction, which records the allocator state and trims the file
/// (`close_database` in redb 5.0.0's `src/db.rs`). So every read-write open and close rewrites
/// the header, even with no call in between. Each write transaction that a rejected call begins
/// and aborts also uses up a transaction id, which the closing commit then records.
///
/// So the accepted contents are the file before the call and two twins made from its bytes:
/// - the file as it was, for calls that never open it for writing (bad arguments, read-only
///   opens, paths that are not database files);
/// - a copy opened with `Store::open` and closed with no call, for calls rejected before they
///   begin a write transaction;
/// - a copy opened with redb directly, with one write transaction begun and aborted, then
///   closed, for calls rejected inside their write transaction.
///
/// redb 5.0.0 writes the same bytes for the same steps on the same file, which every passing
/// row confirms. So a call that wrote any record, or that began more than one write
/// transaction, matches none of them.
fn unchanged_states(path: &Path) -> Vec<(&'static str, PathState)> {
    let original = path_state(path);
    let mut states = vec![("as it was", original.clone())];
    let PathState::File(bytes) = original else {
        return states;
    };
    let twins = tempfile::tempdir().expect("create a directory for the twins");
    let reopened = twins.path().join("reopened.redb");
    std::fs::write(&reopened, &bytes).expect("write a twin");
    let Ok(store) = Store::open(&reopened) else {
        // Not an eodstore database, so no call may open it for writing at all.
        return states;
    };
    drop(store);
    states.push(("reopened and closed", path_state(&reopened)));

    let aborted = twins.path().join("aborted.redb");
    std::fs::write(&aborted, &bytes).expect("write a twin");
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
    let db = builder.open(&aborted).expect("open the twin with redb");
    db.begin_write()
        .expect("begin a write transaction")
        .abort()
        .expect("abort it");
    drop(db);
    states.push(("reopened, one write aborted, closed", path_state(&aborted)));
    states
}

/// Returns a failure unless the watched path matches one of the `allowed` contents.
fn check_unchanged(
    label: &str,
    path: &Path,
    allowed: &[(&'static str, PathState)],
) -> Option<String> {
    let after = path_state(path);
    if allowed.iter().any(|(_, state)| *state == after) {
        return None;
    }
    let expected: Vec<String> = allowed
        .iter()
        .map(|(name, state)| format!("{name}: {}", state.describe()))
        .collect();
    Some(format!(
        "{label}: {} changed; it is {}, expected the content of a twin ({})",
        path.display(),
        after.describe(),
        expected.join("; ")
    ))
}

// ------------------------------------------------------------------------------------------------
// Plan files shared by the rows.
// ------------------------------------------------------------------------------------------------

/// Returns a plan file with one TOML `[[steps]]` table per `(order, code, name)`.
fn plan_toml(name: &str, steps: &[(i64, &str, &str)]) -> String {
    let mut text = format!("name = {}\n", toml_string(name));
    for (order, code, step_name) in steps {
        write!(
            text,
            "\n[[steps]]\norder = {order}\ncode = {}\nname = {}\n",
            toml_string(code),
            toml_string(step_name)
        )
        .expect("write to a String");
    }
    text
}

/// Quotes `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::from('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => {
                write!(quoted, "\\u{:04X}", u32::from(c)).expect("write to a String");
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Writes every plan file that the rows use into `dir`.
fn write_plans(dir: &Path) {
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).expect("write a plan file");
    };
    let long_name = "ş".repeat(MAX_NAME_CHARS + 1);

    let mut utf8 = plan_toml("p", &[(1, "a", "Gece")]).into_bytes();
    utf8.extend_from_slice(b"# Gece denetimi \xff\xfe sonu\n");
    write("invalid-utf8.toml", &utf8);
    write(
        "duplicate-order.toml",
        plan_toml("p", &[(10, "a", "A"), (10, "b", "B")]).as_bytes(),
    );
    write(
        "duplicate-code.toml",
        plan_toml("p", &[(1, "a", "A"), (2, "a", "B")]).as_bytes(),
    );
    write(
        "empty-name.toml",
        plan_toml("p", &[(1, "a", "")]).as_bytes(),
    );
    write(
        "blank-name.toml",
        plan_toml("p", &[(1, "a", "   ")]).as_bytes(),
    );
    write(
        "long-name.toml",
        plan_toml("p", &[(1, "a", &long_name)]).as_bytes(),
    );
    write(
        "long-plan-name.toml",
        plan_toml(&long_name, &[(1, "a", "A")]).as_bytes(),
    );
    write(
        "control-plan-name.toml",
        plan_toml("p\u{1b}[2J", &[(1, "a", "A")]).as_bytes(),
    );
    write(
        "empty-plan-name.toml",
        plan_toml("", &[(1, "a", "A")]).as_bytes(),
    );
    write("no-steps.toml", b"name = \"p\"\nsteps = []\n");
    write(
        "bad-code.toml",
        plan_toml("p", &[(1, "ödeme", "Ödeme")]).as_bytes(),
    );
    write(
        "long-code.toml",
        plan_toml("p", &[(1, &"c".repeat(MAX_CODE_LEN + 1), "C")]).as_bytes(),
    );
    write(
        "negative-order.toml",
        plan_toml("p", &[(-1, "a", "A")]).as_bytes(),
    );
    write(
        "big-order.toml",
        plan_toml("p", &[(i64::from(u32::MAX) + 1, "a", "A")]).as_bytes(),
    );
    write(
        "unknown-key.toml",
        format!("{}colour = \"red\"\n", plan_toml("p", &[(1, "a", "A")])).as_bytes(),
    );
    write(
        "zero-timeout.toml",
        format!("{}timeout_seconds = 0\n", plan_toml("p", &[(1, "a", "A")])).as_bytes(),
    );

    let codes: Vec<String> = (0..=MAX_STEPS).map(|index| format!("s{index}")).collect();
    let steps: Vec<(i64, &str, &str)> = codes
        .iter()
        .zip(0..)
        .map(|(code, order)| (order, code.as_str(), "Adım"))
        .collect();
    write("too-many-steps.toml", plan_toml("p", &steps).as_bytes());

    // A valid plan, padded with a comment to one byte over the limit.
    let mut huge = plan_toml("p", &[(1, "a", "A")]).into_bytes();
    let size = usize::try_from(MAX_PLAN_FILE_BYTES).expect("the limit fits usize") + 1;
    huge.extend_from_slice(b"# ");
    huge.resize(size - 1, b'x');
    huge.push(b'\n');
    write("huge.toml", &huge);

    // The standard plan, with another code at order 3.
    let standard = Plan::standard();
    let conflicting: Vec<(i64, &str, &str)> = standard
        .steps()
        .iter()
        .map(|step| {
            let code = if step.order == 3 {
                "nosuch"
            } else {
                &step.code
            };
            (i64::from(step.order), code, step.name.as_str())
        })
        .collect();
    let mut text = plan_toml("conflicting", &conflicting);
    for step in standard.steps().iter().filter(|step| !step.required) {
        text = text.replace(
            &format!("order = {}\n", step.order),
            &format!("order = {}\nrequired = false\n", step.order),
        );
    }
    write("conflicting.toml", text.as_bytes());
}

fn plans_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("create the plan directory");
    write_plans(dir.path());
    dir
}

// ------------------------------------------------------------------------------------------------
// The library table.
// ------------------------------------------------------------------------------------------------

/// A bad call of the library on a fixture.
type LibraryCall = dyn Fn(&Fixture) -> eodstore::Result<()>;

/// One bad call of the library.
struct LibraryRow {
    name: &'static str,
    state: State,
    /// The bad call. It opens the store itself, because opening may be what fails, and drops
    /// it before it returns.
    call: Box<LibraryCall>,
    /// The expected `Error` variant, as its `Debug` output begins.
    variant: &'static str,
    /// Text that the message must contain, naming the value. Placeholders are as in
    /// [`Fixture::fill`].
    names: String,
    /// Text of the next step that the message must contain, where the API documents one.
    hint: Option<&'static str>,
}

fn row(
    name: &'static str,
    state: State,
    call: impl Fn(&Fixture) -> eodstore::Result<()> + 'static,
    variant: &'static str,
    names: impl Into<String>,
    hint: Option<&'static str>,
) -> LibraryRow {
    LibraryRow {
        name,
        state,
        call: Box::new(call),
        variant,
        names: names.into(),
        hint,
    }
}

/// Returns the name of an `Error` variant, from its `Debug` output.
fn variant_name(err: &Error) -> String {
    let debug = format!("{err:?}");
    debug
        .split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Returns the first control character in `text`, escaped, if there is one.
fn control_character(text: &str) -> Option<String> {
    text.chars()
        .find(|c| c.is_control())
        .map(|c| c.escape_debug().to_string())
}

/// Shortens `text` for a failure message.
fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let head: String = text.chars().take(MAX).collect();
    format!("{head}… ({} bytes in all)", text.len())
}

/// Runs one row and returns its failures.
fn check_library_row(row: &LibraryRow, plans: &Path) -> Vec<String> {
    let fixture = Fixture::new(row.state, plans);
    if let Some(reason) = fixture.skip_reason(row.state) {
        eprintln!("{}: skipped, because {reason}", row.name);
        return Vec::new();
    }
    let allowed = unchanged_states(&fixture.watched);
    let result = catch_unwind(AssertUnwindSafe(|| (row.call)(&fixture)));

    let mut failures = Vec::new();
    let mut fail = |problem: String| failures.push(format!("{}: {problem}", row.name));
    match result {
        Err(_) => fail("the call panicked".into()),
        Ok(Ok(())) => fail(format!(
            "the call succeeded; expected Error::{}",
            row.variant
        )),
        Ok(Err(err)) => {
            let message = err.to_string();
            let variant = variant_name(&err);
            if variant != row.variant {
                fail(format!(
                    "expected Error::{}, got Error::{variant}: {}",
                    row.variant,
                    excerpt(&message)
                ));
            }
            let names = fixture.fill(&row.names);
            if !message.contains(&names) {
                fail(format!(
                    "the message does not contain {:?}: {}",
                    excerpt(&names),
                    excerpt(&message)
                ));
            }
            if let Some(hint) = row.hint
                && !message.contains(hint)
            {
                fail(format!(
                    "the message does not suggest {hint:?}: {}",
                    excerpt(&message)
                ));
            }
            if let Some(c) = control_character(&message) {
                fail(format!(
                    "the message contains the control character {c}: {}",
                    excerpt(&message).escape_debug()
                ));
            }
        }
    }
    failures.extend(check_unchanged(row.name, &fixture.watched, &allowed));
    failures
}

/// Runs every row and returns the failures of all of them.
fn library_failures(rows: &[LibraryRow]) -> Vec<String> {
    let plans = plans_dir();
    rows.iter()
        .flat_map(|row| check_library_row(row, plans.path()))
        .collect()
}

/// Fails with every failure listed, one per line, each starting with its row's name.
fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failed checks:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Opens an operation of the day `text` with the standard plan, as a PMS does with a date its
/// user typed.
fn open_on(fixture: &Fixture, text: &str) -> eodstore::Result<()> {
    let day = parse_business_date(text)?;
    fixture
        .open()?
        .open_operation(PROPERTY, day, &Plan::standard(), &caller("ayşe"))
        .map(drop)
}

/// Opens the fixture's day for `property` with the standard plan, as `actor`.
fn open_as(fixture: &Fixture, property: &str, actor: &str) -> eodstore::Result<()> {
    fixture
        .open()?
        .open_operation(property, date(DAY), &Plan::standard(), &caller(actor))
        .map(drop)
}

fn plan_step(order: u32, code: &str, name: &str) -> PlanStep {
    PlanStep {
        order,
        code: code.into(),
        name: name.into(),
        required: true,
        command: None,
        timeout_seconds: None,
        schedule: None,
        retry: None,
    }
}

/// Builds a plan with [`Plan::new`] and opens the fixture's day with it.
fn open_with_steps(fixture: &Fixture, name: &str, steps: Vec<PlanStep>) -> eodstore::Result<()> {
    let plan = Plan::new(name, steps)?;
    fixture
        .open()?
        .open_operation(PROPERTY, date(DAY), &plan, &caller("ayşe"))
        .map(drop)
}

/// Opens the fixture's day with the plan file `name`.
fn open_with_file(fixture: &Fixture, name: &str) -> eodstore::Result<()> {
    let plan = fixture.plan_from_file(name)?;
    fixture
        .open()?
        .open_operation(PROPERTY, date(DAY), &plan, &caller("ayşe"))
        .map(drop)
}

fn op1() -> OperationId {
    OperationId(1)
}

#[allow(clippy::too_many_lines, reason = "one table row per bad input")]
fn library_rows() -> Vec<LibraryRow> {
    use State::{
        Directory, Empty, EmptyFile, Failed, Fifo, Finished, ForeignFile, NoFile, Opened,
        OptionalRunning, Running, SymlinkLoop, TakenOver, UnderFile, Unreadable,
    };
    let long = "ğ".repeat(MAX_PROPERTY_CHARS + 1);
    let long_caller = "ğ".repeat(MAX_CALLER_TEXT_CHARS + 1);
    let huge = "x".repeat(HUGE_LIBRARY_CHARS);
    let limit = format!("it must be at most {MAX_PROPERTY_CHARS} characters");
    let caller_limit = format!("it must be at most {MAX_CALLER_TEXT_CHARS} characters");
    let mut rows = Vec::new();

    // Malformed and impossible business dates.
    for (name, text) in [
        ("date February 30", "2026-02-30"),
        ("date month 13", "2026-13-01"),
        ("date February 29 of a common year", "2026-02-29"),
        ("date day 00", "2026-12-00"),
        ("date empty", ""),
        ("date with slashes", "2026/12/04"),
        ("date with a two-digit year", "26-12-04"),
        ("date with a time", "2026-12-04T00:00"),
        ("date with a leading space", " 2026-12-04"),
        ("date in fullwidth digits", "２０２６-１２-０４"),
        ("date year 99999", "99999-01-01"),
    ] {
        rows.push(row(
            name,
            Empty,
            move |f| open_on(f, text),
            "InvalidInput",
            format!("invalid business date `{text}`"),
            Some("YYYY-MM-DD"),
        ));
    }

    // Unknown operation ids, and orders 0 and u32::MAX.
    for (name, id) in [
        ("start of operation 0", 0),
        ("start of operation 99", 99),
        ("start of operation u64::MAX", u64::MAX),
    ] {
        rows.push(row(
            name,
            Opened,
            move |f| {
                f.open()?
                    .start_step(OperationId(id), 1, &caller("ayşe"))
                    .map(drop)
            },
            "OperationNotFound",
            format!("operation {id} not found"),
            Some("eod history"),
        ));
    }
    rows.push(row(
        "view of operation 99",
        Opened,
        |f| f.open()?.view(OperationId(99)).map(drop),
        "OperationNotFound",
        "operation 99 not found",
        Some("eod history"),
    ));
    rows.push(row(
        "events of operation u64::MAX",
        Opened,
        |f| f.open()?.events(OperationId(u64::MAX)).map(drop),
        "OperationNotFound",
        format!("operation {} not found", u64::MAX),
        Some("eod history"),
    ));
    rows.push(row(
        "completion in operation 99",
        Running,
        |f| {
            f.open()?
                .complete_step(OperationId(99), 1, &f.claim, None, &caller("ayşe"))
                .map(drop)
        },
        "OperationNotFound",
        "operation 99 not found",
        Some("eod history"),
    ));
    rows.push(row(
        "view of a day without operation",
        Opened,
        |f| {
            f.open()?
                .view_by_date(PROPERTY, date("2026-12-05"))
                .map(drop)
        },
        "NoOperationForDate",
        "no operation for property `grand` on 2026-12-05",
        Some("eod open --date 2026-12-05 --property grand"),
    ));
    for (name, order) in [
        ("start of order 0", 0),
        ("start of order u32::MAX", u32::MAX),
    ] {
        rows.push(row(
            name,
            Opened,
            move |f| {
                f.open()?
                    .start_step(op1(), order, &caller("ayşe"))
                    .map(drop)
            },
            "StepNotFound",
            format!("operation 1 has no step at order {order}"),
            Some("its orders are 1, 2, 3"),
        ));
    }
    rows.push(row(
        "skip of order u32::MAX",
        Opened,
        |f| {
            f.open()?
                .skip_step(op1(), u32::MAX, "not needed", &caller("ayşe"))
                .map(drop)
        },
        "StepNotFound",
        format!("no step at order {}", u32::MAX),
        Some("its orders are"),
    ));
    rows.push(row(
        "plan with order u32::MAX twice",
        Empty,
        |f| {
            let steps = vec![
                plan_step(0, "a", "A"),
                plan_step(u32::MAX, "b", "B"),
                plan_step(u32::MAX, "c", "C"),
            ];
            open_with_steps(f, "p", steps)
        },
        "InvalidPlan",
        format!("order {} is used by more than one step", u32::MAX),
        Some("give each step its own order"),
    ));
    rows.push(row(
        "plan with order 0 twice",
        Empty,
        |f| open_with_steps(f, "p", vec![plan_step(0, "a", "A"), plan_step(0, "b", "B")]),
        "InvalidPlan",
        "order 0 is used by more than one step",
        Some("give each step its own order"),
    ));

    // Empty, overlong and huge properties, actors and request ids.
    for (name, property, expected) in [
        (
            "property empty",
            String::new(),
            "it must not be blank".to_owned(),
        ),
        (
            "property blank",
            "   ".to_owned(),
            "it must not be blank".to_owned(),
        ),
        ("property over the limit", long.clone(), limit.clone()),
        ("property huge", huge.clone(), limit.clone()),
    ] {
        let names = format!("invalid property `{}`: {expected}", quoted(&property));
        rows.push(row(
            name,
            Empty,
            move |f| open_as(f, &property, "ayşe"),
            "InvalidInput",
            names,
            None,
        ));
    }
    for (name, actor, expected) in [
        (
            "actor empty",
            String::new(),
            "it must not be blank".to_owned(),
        ),
        (
            "actor blank",
            " \u{a0} ".to_owned(),
            "it must not be blank".to_owned(),
        ),
        (
            "actor over the limit",
            long_caller.clone(),
            caller_limit.clone(),
        ),
        ("actor huge", huge.clone(), caller_limit.clone()),
    ] {
        let names = format!("invalid actor `{}`: {expected}", quoted(&actor));
        rows.push(row(
            name,
            Opened,
            move |f| f.open()?.start_step(op1(), 1, &caller(&actor)).map(drop),
            "InvalidInput",
            names,
            None,
        ));
    }
    rows.push(row(
        "actor empty on open",
        Empty,
        |f| open_as(f, PROPERTY, ""),
        "InvalidInput",
        "invalid actor ``: it must not be blank",
        None,
    ));
    for (name, request_id, expected) in [
        (
            "request id empty",
            String::new(),
            "it must not be blank".to_owned(),
        ),
        (
            "request id blank",
            "\u{2003}".to_owned(),
            "it must not be blank".to_owned(),
        ),
        (
            "request id over the limit",
            long_caller.clone(),
            caller_limit.clone(),
        ),
    ] {
        let names = format!("invalid request id `{}`: {expected}", quoted(&request_id));
        rows.push(row(
            name,
            Opened,
            move |f| {
                let ayse = caller("ayşe").request_id(request_id.as_str());
                f.open()?.start_step(op1(), 1, &ayse).map(drop)
            },
            "InvalidInput",
            names,
            None,
        ));
    }
    rows.push(row(
        "request id used for another call",
        Running,
        |f| {
            let ayse = caller("ayşe").request_id(START_REQUEST);
            f.open()?.retry_step(op1(), 2, &ayse).map(drop)
        },
        "RequestIdReused",
        format!("request id `{START_REQUEST}` was already used for start of step 1"),
        Some("use a new request id for a new call"),
    ));

    // Plans built in code.
    let name_limit = format!("1 to {MAX_NAME_CHARS} characters");
    rows.push(row(
        "plan name empty",
        Empty,
        |f| open_with_steps(f, "", vec![plan_step(1, "a", "A")]),
        "InvalidPlan",
        "invalid plan ``: name: the plan name must be",
        None,
    ));
    let names = format!(
        "invalid plan `{}`: name: the plan name must be {name_limit}",
        quoted(&long)
    );
    let plan_name = long.clone();
    rows.push(row(
        "plan name over the limit",
        Empty,
        move |f| open_with_steps(f, &plan_name, vec![plan_step(1, "a", "A")]),
        "InvalidPlan",
        names,
        None,
    ));
    rows.push(row(
        "step name empty",
        Empty,
        |f| open_with_steps(f, "p", vec![plan_step(1, "a", "")]),
        "InvalidPlan",
        "step 1 (order 1): the name of `a` must be",
        None,
    ));
    let step_name = huge.clone();
    rows.push(row(
        "step name huge",
        Empty,
        move |f| open_with_steps(f, "p", vec![plan_step(1, "a", &step_name)]),
        "InvalidPlan",
        format!("step 1 (order 1): the name of `a` must be {name_limit}"),
        None,
    ));
    rows.push(row(
        "plan without steps",
        Empty,
        |f| open_with_steps(f, "p", Vec::new()),
        "InvalidPlan",
        "invalid plan `p`: steps: a plan needs at least one step",
        None,
    ));
    rows.push(row(
        "plan over the step limit",
        Empty,
        |f| {
            let steps = (0..=MAX_STEPS as u32)
                .map(|order| plan_step(order, &format!("s{order}"), "Adım"))
                .collect();
            open_with_steps(f, "p", steps)
        },
        "InvalidPlan",
        format!(
            "a plan may have at most {MAX_STEPS} steps, and this one has {}",
            MAX_STEPS + 1
        ),
        None,
    ));
    for (name, code) in [
        ("step code empty", String::new()),
        ("step code not ASCII", "ödeme".to_owned()),
        ("step code over the limit", "c".repeat(MAX_CODE_LEN + 1)),
        ("step code with a space", "room charges".to_owned()),
    ] {
        let names = format!("code `{code}` is invalid: use 1 to {MAX_CODE_LEN} ASCII letters");
        rows.push(row(
            name,
            Empty,
            move |f| open_with_steps(f, "p", vec![plan_step(1, &code, "A")]),
            "InvalidPlan",
            names,
            None,
        ));
    }

    // Plan files.
    for (name, file, variant, names, hint) in [
        (
            "plan file with invalid UTF-8",
            "invalid-utf8.toml",
            "PlanFile",
            "cannot read plan file `{plans}/invalid-utf8.toml`: stream did not contain valid UTF-8",
            None,
        ),
        (
            "plan file with duplicate orders",
            "duplicate-order.toml",
            "InvalidPlan",
            "step 2 (order 10): order 10 is used by more than one step",
            Some("give each step its own order"),
        ),
        (
            "plan file with duplicate codes",
            "duplicate-code.toml",
            "InvalidPlan",
            "step 2 (order 2): code `a` is used by more than one step",
            None,
        ),
        (
            "plan file with an empty step name",
            "empty-name.toml",
            "InvalidPlan",
            "invalid plan `p` in `{plans}/empty-name.toml`: step 1 (order 1): the name of `a`",
            None,
        ),
        (
            "plan file with a blank step name",
            "blank-name.toml",
            "InvalidPlan",
            "step 1 (order 1): the name of `a` must be 1 to 200 characters, not blank",
            None,
        ),
        (
            "plan file with a step name over the limit",
            "long-name.toml",
            "InvalidPlan",
            "step 1 (order 1): the name of `a` must be 1 to 200 characters",
            None,
        ),
        (
            "plan file with a plan name over the limit",
            "long-plan-name.toml",
            "InvalidPlan",
            "name: the plan name must be 1 to 200 characters",
            None,
        ),
        (
            "plan file with an empty plan name",
            "empty-plan-name.toml",
            "InvalidPlan",
            "invalid plan `` in `{plans}/empty-plan-name.toml`: name:",
            None,
        ),
        (
            "plan file without steps",
            "no-steps.toml",
            "InvalidPlan",
            "steps: a plan needs at least one step",
            None,
        ),
        (
            "plan file over the step limit",
            "too-many-steps.toml",
            "InvalidPlan",
            "a plan may have at most 1000 steps, and this one has 1001",
            None,
        ),
        (
            "plan file over the size limit",
            "huge.toml",
            "PlanFile",
            "it has 1048577 bytes, more than the 1048576 bytes a plan file may have",
            None,
        ),
        (
            "plan file with a non-ASCII code",
            "bad-code.toml",
            "InvalidPlan",
            "code `ödeme` is invalid",
            None,
        ),
        (
            "plan file with a code over the limit",
            "long-code.toml",
            "InvalidPlan",
            "is invalid: use 1 to 64 ASCII letters",
            None,
        ),
        (
            "plan file with order -1",
            "negative-order.toml",
            "PlanFile",
            "-1",
            None,
        ),
        (
            "plan file with order 2^32",
            "big-order.toml",
            "PlanFile",
            "4294967296",
            None,
        ),
        (
            "plan file with an unknown key",
            "unknown-key.toml",
            "PlanFile",
            "colour",
            None,
        ),
        (
            "plan file with timeout 0",
            "zero-timeout.toml",
            "InvalidPlan",
            "step 1 (order 1): timeout_seconds must be at least 1",
            None,
        ),
        (
            "plan file missing",
            "missing.toml",
            "PlanFile",
            "cannot read plan file `{plans}/missing.toml`",
            Some("pass `standard` for the built-in plan"),
        ),
        (
            "plan file that is a directory",
            ".",
            "PlanFile",
            "cannot read plan file `{plans}/.`: it is not a regular file",
            Some("pass a TOML plan file"),
        ),
    ] {
        rows.push(row(
            name,
            Opened,
            move |f| open_with_file(f, file),
            variant,
            names,
            hint,
        ));
    }

    // A plan whose code at order 3 the stored operation does not know.
    rows.push(row(
        "plan with an unknown code for the operation",
        Opened,
        |f| open_with_file(f, "conflicting.toml"),
        "PlanConflict",
        "at order 3 the stored code is `departures_check`, the given code is `nosuch`",
        Some("open it with its original plan"),
    ));

    // A runner without a handler for a required step.
    rows.push(row(
        "runner without a required handler",
        Opened,
        |f| {
            let store = f.open()?;
            let plan = Plan::standard();
            let mut runner = Runner::new(&store, &plan, caller("night-auditor"));
            for step in plan.steps().iter().filter(|step| step.order != 5) {
                runner.handler(&step.code, |_| Ok(None));
            }
            runner.run(PROPERTY, date(DAY), |_| {}).map(drop)
        },
        "MissingHandler",
        "required step 5 (`post_room_charges`) has no handler",
        Some("register one for `post_room_charges` before running"),
    ));

    // Transitions out of order.
    rows.push(row(
        "start before a required step",
        Opened,
        |f| f.open()?.start_step(op1(), 2, &caller("ayşe")).map(drop),
        "StepOutOfOrder",
        "step 2 of operation 1 cannot start: required step 1 (`pre_audit_checks`) has status pending",
        Some("complete it first"),
    ));
    rows.push(row(
        "start while a required step runs",
        Running,
        |f| f.open()?.start_step(op1(), 3, &caller("mehmet")).map(drop),
        "StepOutOfOrder",
        "required step 1 (`pre_audit_checks`) has status running",
        Some("wait for it to complete"),
    ));
    rows.push(row(
        "start after a failed required step",
        Failed,
        |f| f.open()?.start_step(op1(), 2, &caller("ayşe")).map(drop),
        "StepOutOfOrder",
        "required step 1 (`pre_audit_checks`) has status failed",
        Some("retry it and complete it first"),
    ));
    rows.push(row(
        "start while another step runs",
        OptionalRunning,
        |f| f.open()?.start_step(op1(), 4, &caller("mehmet")).map(drop),
        "AnotherStepRunning",
        "step 4 of operation 1 cannot start: step 3 is running, claimed by `ayşe`",
        Some("wait for it to finish"),
    ));
    rows.push(row(
        "start of a step with a live claim",
        Running,
        |f| f.open()?.start_step(op1(), 1, &caller("mehmet")).map(drop),
        "ClaimHeld",
        "step 1 of operation 1 is already running, claimed by `ayşe`",
        Some("take it over after the lease ends"),
    ));
    rows.push(row(
        "start of a failed step",
        Failed,
        |f| f.open()?.start_step(op1(), 1, &caller("ayşe")).map(drop),
        "InvalidTransition",
        "cannot start step 1 (`pre_audit_checks`) of operation 1: its status is failed",
        Some("retry it first"),
    ));
    rows.push(row(
        "retry of a pending step",
        Opened,
        |f| f.open()?.retry_step(op1(), 1, &caller("ayşe")).map(drop),
        "InvalidTransition",
        "cannot retry step 1 (`pre_audit_checks`) of operation 1: its status is pending",
        Some("only a failed step can be retried"),
    ));
    rows.push(row(
        "skip of a running step",
        OptionalRunning,
        |f| {
            f.open()?
                .skip_step(op1(), 3, "not needed", &caller("ayşe"))
                .map(drop)
        },
        "InvalidTransition",
        "cannot skip step 3 (`departures_check`) of operation 1: its status is running",
        Some("only a pending or failed step can be skipped"),
    ));
    rows.push(row(
        "skip of a required step",
        Opened,
        |f| {
            f.open()?
                .skip_step(op1(), 1, "not needed", &caller("ayşe"))
                .map(drop)
        },
        "RequiredStep",
        "cannot skip step 1 (`pre_audit_checks`) of operation 1: it is required",
        Some("run it, or retry it if it failed"),
    ));
    rows.push(row(
        "completion of a pending step",
        Opened,
        |f| {
            f.open()?
                .complete_step(
                    op1(),
                    1,
                    "0123456789abcdef0123456789abcdef",
                    None,
                    &caller("ayşe"),
                )
                .map(drop)
        },
        "WrongClaim",
        "step 1 of operation 1 is pending; the given claim `0123456789abcdef0123456789abcdef`",
        None,
    ));

    // Wrong and expired claim tokens, and blank reasons.
    for (name, token) in [
        ("completion with a forged claim", "forged"),
        ("completion with an empty claim", ""),
    ] {
        rows.push(row(
            name,
            Running,
            move |f| {
                f.open()?
                    .complete_step(op1(), 1, token, None, &caller("ayşe"))
                    .map(drop)
            },
            "WrongClaim",
            format!("step 1 of operation 1 is running, claimed by `ayşe`; the given claim `{token}` is not its current claim"),
            None,
        ));
    }
    rows.push(row(
        "completion with another step's claim",
        OptionalRunning,
        |f| {
            f.open()?
                .complete_step(op1(), 4, &f.claim, None, &caller("ayşe"))
                .map(drop)
        },
        "WrongClaim",
        "step 4 of operation 1 is pending; the given claim `{claim}`",
        None,
    ));
    rows.push(row(
        "failure with a forged claim",
        Running,
        |f| {
            f.open()?
                .fail_step(op1(), 1, "forged", "broken", None, &caller("ayşe"))
                .map(drop)
        },
        "WrongClaim",
        "the given claim `forged` is not its current claim",
        None,
    ));
    rows.push(row(
        "renewal with a forged claim",
        Running,
        |f| {
            f.open()?
                .renew_claim(op1(), 1, "forged", &caller("ayşe"))
                .map(drop)
        },
        "WrongClaim",
        "the given claim `forged` is not its current claim",
        None,
    ));
    rows.push(row(
        "completion with an expired claim",
        TakenOver,
        |f| {
            f.open()?
                .complete_step(op1(), 1, &f.claim, None, &caller("ayşe"))
                .map(drop)
        },
        "WrongClaim",
        "step 1 of operation 1 is running, claimed by `mehmet`; the given claim `{claim}` is not its current claim",
        None,
    ));
    rows.push(row(
        "renewal of an expired claim",
        TakenOver,
        |f| {
            f.open()?
                .renew_claim(op1(), 1, &f.claim, &caller("ayşe"))
                .map(drop)
        },
        "WrongClaim",
        "the given claim `{claim}` is not its current claim",
        None,
    ));
    rows.push(row(
        "failure with a blank error message",
        Running,
        |f| {
            f.open()?
                .fail_step(op1(), 1, &f.claim, "   ", None, &caller("ayşe"))
                .map(drop)
        },
        "InvalidInput",
        "invalid error message `   `",
        Some("a description of what failed"),
    ));
    rows.push(row(
        "skip with an empty reason",
        Opened,
        |f| f.open()?.skip_step(op1(), 3, "", &caller("ayşe")).map(drop),
        "InvalidInput",
        "invalid skip reason ``",
        Some("a reason why the step is not needed"),
    ));

    // Operations already finished.
    rows.push(row(
        "start in a finished operation",
        Finished,
        |f| f.open()?.start_step(op1(), 1, &caller("ayşe")).map(drop),
        "OperationFinished",
        "operation 1 finished at",
        Some("accepts no further change"),
    ));
    rows.push(row(
        "retry in a finished operation",
        Finished,
        |f| f.open()?.retry_step(op1(), 3, &caller("ayşe")).map(drop),
        "OperationFinished",
        "operation 1 finished at",
        None,
    ));
    rows.push(row(
        "skip in a finished operation",
        Finished,
        |f| {
            f.open()?
                .skip_step(op1(), 3, "again", &caller("ayşe"))
                .map(drop)
        },
        "OperationFinished",
        "operation 1 finished at",
        None,
    ));
    rows.push(row(
        "completion in a finished operation",
        Finished,
        |f| {
            f.open()?
                .complete_step(op1(), 10, "forged", None, &caller("ayşe"))
                .map(drop)
        },
        "OperationFinished",
        "operation 1 finished at",
        None,
    ));

    // Leases.
    for (name, lease, shown) in [
        ("lease zero", SignedDuration::ZERO, "0s"),
        ("lease negative", SignedDuration::from_secs(-5), "5s ago"),
        (
            "lease over 7 days",
            SignedDuration::from_secs(MAX_LEASE_SECS + 1),
            "168h 1s",
        ),
    ] {
        rows.push(row(
            name,
            Opened,
            move |f| {
                f.open()?
                    .start_step(op1(), 1, &caller("ayşe").lease(lease))
                    .map(drop)
            },
            "InvalidInput",
            format!("invalid lease `{shown}`: a lease longer than zero and at most 7 days"),
            None,
        ));
    }
    rows.push(row(
        "renewal with a lease over 7 days",
        Running,
        |f| {
            let lease = SignedDuration::from_secs(MAX_LEASE_SECS + 1);
            f.open()?
                .renew_claim(op1(), 1, &f.claim, &caller("ayşe").lease(lease))
                .map(drop)
        },
        "InvalidInput",
        "invalid lease `168h 1s`",
        None,
    ));

    // Database paths that are not database files.
    rows.push(row(
        "database path is a directory",
        Directory,
        |f| f.open().map(drop),
        "NotEodstoreFile",
        "`{db}` is not an eodstore database (it is a directory)",
        Some("check the path"),
    ));
    rows.push(row(
        "database path is a directory, with create",
        Directory,
        |f| Store::open_with(&f.db, f.options().create(true)).map(drop),
        "NotEodstoreFile",
        "`{db}` is not an eodstore database (it is a directory)",
        Some("check the path"),
    ));
    rows.push(row(
        "database path is a directory, read-only",
        Directory,
        |f| Store::open_with(&f.db, f.options().read_only(true)).map(drop),
        "NotEodstoreFile",
        "(it is a directory)",
        Some("check the path"),
    ));
    rows.push(row(
        "database file missing",
        NoFile,
        |f| f.open().map(drop),
        "NoDatabase",
        "no database at `{db}`",
        Some("check the path"),
    ));
    rows.push(row(
        "database file missing, read-only",
        NoFile,
        |f| Store::open_with(&f.db, f.options().read_only(true).create(true)).map(drop),
        "NoDatabase",
        "no database at `{db}`",
        Some("check the path"),
    ));
    rows.push(row(
        "database file empty",
        EmptyFile,
        |f| f.open().map(drop),
        "NotEodstoreFile",
        "`{db}` is not an eodstore database (it is empty)",
        Some("check the path"),
    ));
    rows.push(row(
        "database file of another program",
        ForeignFile,
        |f| Store::open_with(&f.db, f.options().create(true)).map(drop),
        "NotEodstoreFile",
        "`{db}` is not an eodstore database (it does not start with the redb file signature)",
        Some("check the path"),
    ));
    rows.push(row(
        "database file unreadable",
        Unreadable,
        |f| f.open().map(drop),
        "Io",
        "cannot read `{db}`",
        None,
    ));
    rows.push(row(
        "database path is a FIFO",
        Fifo,
        |f| Store::open_with(&f.db, f.options().create(true)).map(drop),
        "NotEodstoreFile",
        "`{db}` is not an eodstore database (it is not a regular file)",
        Some("check the path"),
    ));
    rows.push(row(
        "database path is a link to itself",
        SymlinkLoop,
        |f| f.open().map(drop),
        "Io",
        "cannot inspect `{db}`",
        None,
    ));
    rows.push(row(
        "database path under a regular file",
        UnderFile,
        |f| Store::open_with(&f.db, f.options().create(true)).map(drop),
        "Io",
        "`{db}`",
        None,
    ));
    rows.push(row(
        "database directory missing",
        NoFile,
        |f| {
            let db = f.dir.path().join("missing").join("eod.redb");
            Store::open_with(db, f.options().create(true)).map(drop)
        },
        "InvalidInput",
        "invalid database path `",
        Some("create the directory first"),
    ));
    rows.push(row(
        "unsynced commits shared between processes",
        Opened,
        |f| {
            let options = f
                .options()
                .durability(Durability::None)
                .concurrency(ConcurrencyMode::MultiWriter);
            Store::open_with(&f.db, options).map(drop)
        },
        "InvalidInput",
        "invalid store options `None with MultiWriter`",
        Some("requires ConcurrencyMode::ExclusiveWriter"),
    ));
    rows
}

#[test]
fn library_rejects_bad_input() {
    assert_no_failures(&library_failures(&library_rows()));
}

// ------------------------------------------------------------------------------------------------
// The `eod` table.
// ------------------------------------------------------------------------------------------------

/// One bad invocation of `eod`.
struct CliRow {
    name: &'static str,
    state: State,
    /// The arguments after `--db PATH`, which is added unless they set `--db` themselves.
    /// Placeholders are as in [`Fixture::fill`].
    args: Vec<String>,
    /// The expected exit code, which `eod --help` must document.
    code: i32,
    /// Text that stderr must contain, naming the value. Placeholders are as in
    /// [`Fixture::fill`].
    names: String,
}

fn cli(name: &'static str, state: State, args: &[&str], code: i32, names: &str) -> CliRow {
    CliRow {
        name,
        state,
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        code,
        names: names.to_owned(),
    }
}

/// Returns the exit codes that `eod --help` lists, with their meaning.
fn documented_exit_codes() -> BTreeMap<i32, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_eod"))
        .arg("--help")
        .output()
        .expect("run eod --help");
    assert!(output.status.success(), "eod --help failed");
    let help = String::from_utf8(output.stdout).expect("the help is UTF-8");
    let section = help
        .split_once("Exit codes:")
        .expect("eod --help lists the exit codes")
        .1;
    section
        .lines()
        .filter_map(|line| {
            let (code, meaning) = line.trim().split_once(' ')?;
            Some((code.parse().ok()?, meaning.trim().to_owned()))
        })
        .collect()
}

/// Runs one row and returns its failures.
fn check_cli_row(row: &CliRow, plans: &Path, exit_codes: &BTreeMap<i32, String>) -> Vec<String> {
    let fixture = Fixture::new(row.state, plans);
    if let Some(reason) = fixture.skip_reason(row.state) {
        eprintln!("{}: skipped, because {reason}", row.name);
        return Vec::new();
    }
    let args: Vec<String> = row.args.iter().map(|arg| fixture.fill(arg)).collect();
    // A row that names its own `--db` is checked on the whole directory it runs in.
    let own_db = args.iter().any(|arg| arg == "--db");
    let watched = if own_db {
        fixture.dir.path().to_owned()
    } else {
        fixture.watched.clone()
    };
    let allowed = unchanged_states(&watched);
    let mut command = Command::new(env!("CARGO_BIN_EXE_eod"));
    command
        .current_dir(fixture.dir.path())
        .env_remove("EOD_DB")
        .env_remove("RUST_LOG")
        .env_remove("USERNAME")
        .env("USER", "ayşe");
    if !own_db {
        command.arg("--db").arg(&fixture.db);
    }
    let output = command.args(&args).output().expect("run the eod binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    let mut failures = Vec::new();
    let mut fail = |problem: String| failures.push(format!("{}: {problem}", row.name));
    let code = output.status.code();
    if !exit_codes.contains_key(&row.code) {
        fail(format!(
            "`eod --help` does not document exit code {}",
            row.code
        ));
    }
    if code != Some(row.code) {
        let meaning = |code: Option<i32>| {
            code.and_then(|code| exit_codes.get(&code))
                .map_or("undocumented", String::as_str)
                .to_owned()
        };
        fail(format!(
            "exit code {code:?} ({}), expected {} ({}); stderr: {}",
            meaning(code),
            row.code,
            meaning(Some(row.code)),
            excerpt(&stderr)
        ));
    }
    if stderr.contains("panicked") || stderr.contains("internal error") {
        fail(format!("eod panicked: {}", excerpt(&stderr)));
    }
    let names = fixture.fill(&row.names);
    if !stderr.contains(&names) {
        fail(format!(
            "stderr does not contain {:?}: {}",
            excerpt(&names),
            excerpt(&stderr)
        ));
    }
    if let Some(c) = control_character(stderr.trim_end()) {
        // Usage errors end with clap's multi-line usage text, so only rejected requests, whose
        // message is one line, are held to this.
        if row.code == 3 {
            fail(format!(
                "stderr contains the control character {c}: {}",
                excerpt(&stderr).escape_debug()
            ));
        }
    }
    // An error prints nothing on stdout, with or without `--json`.
    if !stdout.is_empty() {
        fail(format!("stdout is not empty: {}", excerpt(&stdout)));
    }
    failures.extend(check_unchanged(row.name, &watched, &allowed));
    failures
}

/// Runs every row and returns the failures of all of them.
fn cli_failures(rows: &[CliRow]) -> Vec<String> {
    let plans = plans_dir();
    let exit_codes = documented_exit_codes();
    rows.iter()
        .flat_map(|row| check_cli_row(row, plans.path(), &exit_codes))
        .collect()
}

/// Exit code 2: `eod --help` documents it as a usage error.
const USAGE: i32 = 2;
/// Exit code 3: `eod --help` documents it as a rejected request, after which nothing changed.
const REJECTED: i32 = 3;
/// Exit code 1: `eod --help` documents it as a storage error.
const STORAGE: i32 = 1;

#[allow(clippy::too_many_lines, reason = "one table row per bad input")]
fn cli_rows() -> Vec<CliRow> {
    use State::{
        Directory, EmptyFile, Failed, Fifo, Finished, ForeignFile, NoFile, Opened, OptionalRunning,
        Running, SymlinkLoop, TakenOver, UnderFile, Unreadable,
    };
    let long = "ğ".repeat(MAX_PROPERTY_CHARS + 1);
    let huge = "x".repeat(HUGE_CLI_CHARS);
    let long_caller = "ğ".repeat(MAX_CALLER_TEXT_CHARS + 1);
    let limit = format!("it must be at most {MAX_PROPERTY_CHARS} characters");
    let caller_limit = format!("it must be at most {MAX_CALLER_TEXT_CHARS} characters");
    let start = ["step", "start", "--operation", "1", "--order", "1"];
    let with = |base: &[&str], extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|arg| (*arg).to_owned())
            .collect()
    };
    let mut rows = Vec::new();

    // Malformed and impossible business dates.
    for (name, text) in [
        ("open on February 30", "2026-02-30"),
        ("open in month 13", "2026-13-01"),
        ("open on February 29 of a common year", "2026-02-29"),
        ("open on an empty date", ""),
        ("open on a date with slashes", "2026/12/04"),
        ("open on a US date", "12/04/2026"),
        ("open on a date with a time", "2026-12-04T00:00"),
    ] {
        rows.push(cli(
            name,
            Opened,
            &["open", "--date", text],
            REJECTED,
            &format!("error: invalid business date `{text}`"),
        ));
    }
    rows.push(cli(
        "run on February 30",
        Opened,
        &["run", "--date", "2026-02-30"],
        REJECTED,
        "invalid business date `2026-02-30`",
    ));
    rows.push(cli(
        "status on month 00",
        Opened,
        &["status", "--date", "2026-00-10"],
        REJECTED,
        "invalid business date `2026-00-10`",
    ));
    rows.push(cli(
        "open on February 30, with --json",
        Opened,
        &["--json", "open", "--date", "2026-02-30"],
        REJECTED,
        "invalid business date `2026-02-30`",
    ));

    // Unknown, negative and non-numeric ids, and orders 0 and u32::MAX.
    for (name, args, code, names) in [
        (
            "status of operation -1",
            vec!["status", "--operation", "-1"],
            USAGE,
            "invalid value '-1' for",
        ),
        (
            "status of operation abc",
            vec!["status", "--operation", "abc"],
            USAGE,
            "invalid value 'abc' for '--operation <ID>'",
        ),
        (
            "status of operation 2^64",
            vec!["status", "--operation", "18446744073709551616"],
            USAGE,
            "invalid value '18446744073709551616'",
        ),
        (
            "status of operation 99",
            vec!["status", "--operation", "99"],
            REJECTED,
            // The hint names the test's own `--db`, which is not the default.
            "operation 99 not found: list operations with `eod --db ",
        ),
        (
            "events of operation 0",
            vec!["events", "--operation", "0"],
            REJECTED,
            "operation 0 not found",
        ),
        (
            "events of operation 1.5",
            vec!["events", "--operation", "1.5"],
            USAGE,
            "invalid value '1.5'",
        ),
        (
            "start in operation 99",
            vec!["step", "start", "--operation", "99", "--order", "1"],
            REJECTED,
            "operation 99 not found",
        ),
        (
            "start in operation -7",
            vec!["step", "start", "--operation", "-7", "--order", "1"],
            USAGE,
            "invalid value '-7' for '--operation <ID>'",
        ),
        (
            "start of order -1",
            vec!["step", "start", "--operation", "1", "--order", "-1"],
            USAGE,
            "invalid value '-1' for",
        ),
        (
            "start of order x",
            vec!["step", "start", "--operation", "1", "--order", "x"],
            USAGE,
            "invalid value 'x' for '--order <N>'",
        ),
        (
            "start of order 0",
            vec!["step", "start", "--operation", "1", "--order", "0"],
            REJECTED,
            "operation 1 has no step at order 0: its orders are 1, 2",
        ),
        (
            "start of order u32::MAX",
            vec!["step", "start", "--operation", "1", "--order", "4294967295"],
            REJECTED,
            "operation 1 has no step at order 4294967295",
        ),
        (
            "start of order 2^32",
            vec!["step", "start", "--operation", "1", "--order", "4294967296"],
            USAGE,
            "invalid value '4294967296' for '--order <N>'",
        ),
        (
            "history with limit 0",
            vec!["history", "--limit", "0"],
            USAGE,
            "invalid value '0' for '--limit <N>'",
        ),
        (
            "status of operation 99, with --json",
            vec!["--json", "status", "--operation", "99"],
            REJECTED,
            "operation 99 not found",
        ),
        (
            "status of operation abc, with --json",
            vec!["status", "--json", "--operation", "abc"],
            USAGE,
            "invalid value 'abc'",
        ),
    ] {
        rows.push(cli(name, Opened, &args, code, names));
    }
    rows.push(cli(
        "status of a day without operation",
        Opened,
        &["status", "--date", "2026-12-05", "--property", "grand"],
        REJECTED,
        "no operation for property `grand` on 2026-12-05: open one with `eod --db ",
    ));

    // Empty, overlong and huge properties, actors and request ids.
    for (name, property, expected) in [
        ("open with an empty property", "", "it must not be blank"),
        ("open with a blank property", "  ", "it must not be blank"),
        (
            "open with a property over the limit",
            long.as_str(),
            limit.as_str(),
        ),
        ("open with a huge property", huge.as_str(), limit.as_str()),
    ] {
        rows.push(CliRow {
            name,
            state: Opened,
            args: with(&["open", "--date", DAY, "--property", property], &[]),
            code: REJECTED,
            names: format!("invalid property `{}`: {expected}", quoted(property)),
        });
    }
    for (name, actor, expected) in [
        ("open with an empty actor", "", "it must not be blank"),
        (
            "open with an actor over the limit",
            long_caller.as_str(),
            caller_limit.as_str(),
        ),
    ] {
        rows.push(CliRow {
            name,
            state: Opened,
            args: with(&["open", "--date", DAY, "--actor", actor], &[]),
            code: REJECTED,
            names: format!("invalid actor `{}`: {expected}", quoted(actor)),
        });
    }
    for (name, actor, expected) in [
        ("start with an empty actor", "", "it must not be blank"),
        ("start with a blank actor", "   ", "it must not be blank"),
        (
            "start with an actor over the limit",
            long_caller.as_str(),
            caller_limit.as_str(),
        ),
        (
            "start with a huge actor",
            huge.as_str(),
            caller_limit.as_str(),
        ),
    ] {
        rows.push(CliRow {
            name,
            state: Opened,
            args: with(&start, &["--actor", actor]),
            code: REJECTED,
            names: format!("invalid actor `{}`: {expected}", quoted(actor)),
        });
    }
    for (name, request_id, expected) in [
        ("start with an empty request id", "", "it must not be blank"),
        ("start with a blank request id", " ", "it must not be blank"),
        (
            "start with a request id over the limit",
            long_caller.as_str(),
            caller_limit.as_str(),
        ),
    ] {
        rows.push(CliRow {
            name,
            state: Opened,
            args: with(&start, &["--request-id", request_id]),
            code: REJECTED,
            names: format!("invalid request id `{}`: {expected}", quoted(request_id)),
        });
    }
    rows.push(cli(
        "retry with a request id of another call",
        Running,
        &[
            "step",
            "retry",
            "--operation",
            "1",
            "--order",
            "2",
            "--request-id",
            START_REQUEST,
        ],
        REJECTED,
        "request id `start-1` was already used for start of step 1 of operation 1",
    ));

    // Plan files.
    for (name, file, names) in [
        (
            "plan file with invalid UTF-8",
            "invalid-utf8.toml",
            "cannot read plan file `{plans}/invalid-utf8.toml`: stream did not contain valid UTF-8",
        ),
        (
            "plan file with duplicate orders",
            "duplicate-order.toml",
            "order 10 is used by more than one step; give each step its own order",
        ),
        (
            "plan file with duplicate codes",
            "duplicate-code.toml",
            "code `a` is used by more than one step",
        ),
        (
            "plan file with an empty step name",
            "empty-name.toml",
            "invalid plan `p` in `{plans}/empty-name.toml`: step 1 (order 1): the name of `a` must be",
        ),
        (
            "plan file with a step name over the limit",
            "long-name.toml",
            "the name of `a` must be 1 to 200 characters",
        ),
        (
            "plan file with a plan name over the limit",
            "long-plan-name.toml",
            "the plan name must be 1 to 200 characters",
        ),
        (
            "plan file over the step limit",
            "too-many-steps.toml",
            "a plan may have at most 1000 steps, and this one has 1001",
        ),
        (
            "plan file over the size limit",
            "huge.toml",
            "cannot read plan file `{plans}/huge.toml`: it has 1048577 bytes, more than the 1048576 bytes a plan file may have",
        ),
        (
            "plan file with a non-ASCII code",
            "bad-code.toml",
            "code `ödeme` is invalid: use 1 to 64 ASCII letters",
        ),
        ("plan file with order -1", "negative-order.toml", "-1"),
        ("plan file with order 2^32", "big-order.toml", "4294967296"),
        (
            "plan file with an unknown key",
            "unknown-key.toml",
            "colour",
        ),
        (
            "plan file missing",
            "missing.toml",
            "cannot read plan file `{plans}/missing.toml`",
        ),
        (
            "plan file that is a directory",
            ".",
            "it is not a regular file; pass a TOML plan file",
        ),
        (
            "plan with an unknown code for the operation",
            "conflicting.toml",
            "at order 3 the stored code is `departures_check`, the given code is `nosuch`; open it with its original plan",
        ),
    ] {
        let path = format!("{{plans}}/{file}");
        rows.push(CliRow {
            name,
            state: Opened,
            args: with(
                &[
                    "open",
                    "--date",
                    DAY,
                    "--property",
                    PROPERTY,
                    "--plan",
                    &path,
                ],
                &[],
            ),
            code: REJECTED,
            names: names.to_owned(),
        });
    }
    rows.push(cli(
        "run with a plan file over the size limit",
        Opened,
        &["run", "--date", DAY, "--plan", "{plans}/huge.toml"],
        REJECTED,
        "it has 1048577 bytes",
    ));
    rows.push(cli(
        "plan file with duplicate orders, with --json",
        Opened,
        &[
            "open",
            "--date",
            DAY,
            "--plan",
            "{plans}/duplicate-order.toml",
            "--json",
        ],
        REJECTED,
        "order 10 is used by more than one step",
    ));

    // Leases. These rows check the stated limit; `lease_error_names_given_seconds` checks
    // that the message names the value as given.
    for (name, secs, code, names) in [
        ("start with lease 0", "0", REJECTED, "at most 7 days"),
        (
            "start with a lease over 7 days",
            "604801",
            REJECTED,
            "at most 7 days",
        ),
        ("start with lease -1", "-1", USAGE, "invalid value '-1' for"),
        (
            "start with lease 2^32",
            "4294967296",
            USAGE,
            "invalid value '4294967296' for '--lease-secs <N>'",
        ),
    ] {
        rows.push(CliRow {
            name,
            state: Opened,
            args: with(&start, &["--lease-secs", secs]),
            code,
            names: names.to_owned(),
        });
    }
    rows.push(cli(
        "run with lease 0",
        Opened,
        &[
            "run",
            "--date",
            DAY,
            "--property",
            "grand",
            "--lease-secs",
            "0",
        ],
        REJECTED,
        "at most 7 days",
    ));

    // Transitions out of order, wrong and expired claims, blank reasons.
    let step = |action: &str, order: &str, extra: &[&str]| -> Vec<String> {
        with(
            &["step", action, "--operation", "1", "--order", order],
            extra,
        )
    };
    for (name, state, args, names) in [
        (
            "start before a required step",
            Opened,
            step("start", "2", &[]),
            "step 2 of operation 1 cannot start: required step 1 (`pre_audit_checks`) has status pending; complete it first",
        ),
        (
            "start of a step with a live claim",
            Running,
            step("start", "1", &["--actor", "mehmet"]),
            "step 1 of operation 1 is already running, claimed by `ayşe`",
        ),
        (
            "start while another step runs",
            OptionalRunning,
            step("start", "4", &[]),
            "step 4 of operation 1 cannot start: step 3 is running",
        ),
        (
            "start of a failed step",
            Failed,
            step("start", "1", &[]),
            "cannot start step 1 (`pre_audit_checks`) of operation 1: its status is failed; retry it first",
        ),
        (
            "retry of a pending step",
            Opened,
            step("retry", "1", &[]),
            "cannot retry step 1 (`pre_audit_checks`) of operation 1: its status is pending",
        ),
        (
            "skip of a required step",
            Opened,
            step("skip", "1", &["--reason", "not needed"]),
            "cannot skip step 1 (`pre_audit_checks`) of operation 1: it is required",
        ),
        (
            "skip of a running step",
            OptionalRunning,
            step("skip", "3", &["--reason", "not needed"]),
            "cannot skip step 3 (`departures_check`) of operation 1: its status is running",
        ),
        (
            "skip with a blank reason",
            Opened,
            step("skip", "3", &["--reason", " "]),
            "invalid skip reason ` `",
        ),
        (
            "completion with a forged claim",
            Running,
            step("complete", "1", &["--claim", "forged"]),
            "the given claim `forged` is not its current claim",
        ),
        (
            "completion with an empty claim",
            Running,
            step("complete", "1", &["--claim", ""]),
            "the given claim `` is not its current claim",
        ),
        (
            "completion of a pending step",
            Opened,
            step("complete", "1", &["--claim", "forged"]),
            "step 1 of operation 1 is pending; the given claim `forged`",
        ),
        (
            "completion with an expired claim",
            TakenOver,
            step("complete", "1", &["--claim", "{claim}"]),
            "claimed by `mehmet`; the given claim `{claim}` is not its current claim",
        ),
        (
            "failure with an expired claim",
            TakenOver,
            step("fail", "1", &["--claim", "{claim}", "--reason", "broken"]),
            "the given claim `{claim}` is not its current claim",
        ),
        (
            "failure with an empty reason",
            Running,
            step("fail", "1", &["--claim", "{claim}", "--reason", ""]),
            "invalid error message ``: a description of what failed",
        ),
        (
            "start in a finished operation",
            Finished,
            step("start", "1", &[]),
            "operation 1 finished at",
        ),
        (
            "retry in a finished operation",
            Finished,
            step("retry", "1", &[]),
            "operation 1 finished at",
        ),
        (
            "skip in a finished operation",
            Finished,
            step("skip", "3", &["--reason", "again"]),
            "operation 1 finished at",
        ),
        (
            "completion with a forged claim, with --json",
            Running,
            with(
                &[
                    "--json",
                    "step",
                    "complete",
                    "--operation",
                    "1",
                    "--order",
                    "1",
                ],
                &["--claim", "forged"],
            ),
            "the given claim `forged` is not its current claim",
        ),
    ] {
        rows.push(CliRow {
            name,
            state,
            args,
            code: REJECTED,
            names: names.to_owned(),
        });
    }

    // Database paths that are not database files.
    for (name, state, args, code, names) in [
        (
            "status of a directory",
            Directory,
            vec!["status", "--operation", "1"],
            REJECTED,
            "`{db}` is not an eodstore database (it is a directory): check the path",
        ),
        (
            "open in a directory",
            Directory,
            vec!["open", "--date", DAY],
            REJECTED,
            "`{db}` is not an eodstore database (it is a directory)",
        ),
        (
            "start in a directory",
            Directory,
            vec!["step", "start", "--operation", "1", "--order", "1"],
            REJECTED,
            "(it is a directory)",
        ),
        (
            "open in the working directory as --db",
            Directory,
            vec!["--db", ".", "open", "--date", DAY],
            REJECTED,
            "`.` is not an eodstore database (it is a directory)",
        ),
        (
            "status of a missing file",
            NoFile,
            vec!["status", "--operation", "1"],
            REJECTED,
            "no database at `{db}`: check the path",
        ),
        (
            "start in a missing file",
            NoFile,
            vec!["step", "start", "--operation", "1", "--order", "1"],
            REJECTED,
            "no database at `{db}`",
        ),
        (
            "status of an empty file",
            EmptyFile,
            vec!["status", "--operation", "1"],
            REJECTED,
            "`{db}` is not an eodstore database (it is empty)",
        ),
        (
            "open in a file of another program",
            ForeignFile,
            vec!["open", "--date", DAY],
            REJECTED,
            "`{db}` is not an eodstore database (it does not start with the redb file signature)",
        ),
        (
            "status of an unreadable file",
            Unreadable,
            vec!["status", "--operation", "1"],
            STORAGE,
            "cannot read `{db}`: Permission denied",
        ),
        (
            "start in an unreadable file",
            Unreadable,
            vec!["step", "start", "--operation", "1", "--order", "1"],
            STORAGE,
            "cannot read `{db}`: Permission denied",
        ),
        (
            "status of a FIFO",
            Fifo,
            vec!["status", "--operation", "1"],
            REJECTED,
            "`{db}` is not an eodstore database (it is not a regular file)",
        ),
        (
            "start in a FIFO",
            Fifo,
            vec!["step", "start", "--operation", "1", "--order", "1"],
            REJECTED,
            "(it is not a regular file)",
        ),
        (
            "open in /dev/null",
            NoFile,
            vec!["--db", "/dev/null", "open", "--date", DAY],
            REJECTED,
            "`/dev/null` is not an eodstore database (it is not a regular file)",
        ),
        (
            "status through a link to itself",
            SymlinkLoop,
            vec!["status", "--operation", "1"],
            STORAGE,
            "cannot inspect `{db}`: Too many levels of symbolic links",
        ),
        (
            "open through a link to itself",
            SymlinkLoop,
            vec!["open", "--date", DAY],
            STORAGE,
            "cannot inspect `{db}`",
        ),
        (
            "open with an empty --db",
            NoFile,
            vec!["--db", "", "open", "--date", DAY],
            USAGE,
            "a value is required for '--db <PATH>'",
        ),
        (
            "open under a regular file",
            UnderFile,
            vec!["open", "--date", DAY],
            STORAGE,
            "`{db}`: Not a directory",
        ),
        (
            "open in a missing directory",
            NoFile,
            vec!["--db", "missing/eod.redb", "open", "--date", DAY],
            REJECTED,
            "invalid database path `missing/eod.redb`: a file in an existing directory; create the directory first",
        ),
        (
            "status of a directory, with --json",
            Directory,
            vec!["--json", "status", "--operation", "1"],
            REJECTED,
            "(it is a directory)",
        ),
    ] {
        rows.push(cli(name, state, &args, code, names));
    }
    rows
}

#[test]
fn eod_rejects_bad_input() {
    let exit_codes = documented_exit_codes();
    let meaning = |code: i32| exit_codes.get(&code).cloned().unwrap_or_default();
    assert!(meaning(STORAGE).starts_with("storage"), "{exit_codes:?}");
    assert!(meaning(USAGE).starts_with("usage error"), "{exit_codes:?}");
    assert!(
        meaning(REJECTED).starts_with("rejected request"),
        "{exit_codes:?}"
    );
    assert_no_failures(&cli_failures(&cli_rows()));
}

// ------------------------------------------------------------------------------------------------
// Rows that show bugs. Each test keeps the correct behavior and fails until its bug is fixed.
// ------------------------------------------------------------------------------------------------

#[test]
#[allow(clippy::too_many_lines, reason = "one table row per bad input")]
fn messages_escape_control_characters() {
    let library: Vec<LibraryRow> = vec![
        row(
            "property with a newline",
            State::Empty,
            |f| open_as(f, "grand\nhotel", "ayşe"),
            "InvalidInput",
            "invalid property `grand\\nhotel`: it must not contain control characters",
            None,
        ),
        row(
            "actor with an escape sequence",
            State::Opened,
            |f| {
                f.open()?
                    .start_step(op1(), 1, &caller("ayşe\u{1b}[2J"))
                    .map(drop)
            },
            "InvalidInput",
            "invalid actor `ayşe\\u{1b}[2J`",
            None,
        ),
        row(
            "request id with a tab",
            State::Opened,
            |f| {
                let ayse = caller("ayşe").request_id("req\t1");
                f.open()?.start_step(op1(), 1, &ayse).map(drop)
            },
            "InvalidInput",
            "invalid request id `req\\t1`",
            None,
        ),
        row(
            "failure with a tab as error message",
            State::Running,
            |f| {
                f.open()?
                    .fail_step(op1(), 1, &f.claim, " \t", None, &caller("ayşe"))
                    .map(drop)
            },
            "InvalidInput",
            "invalid error message ` \\t`",
            None,
        ),
        row(
            "plan name with an escape sequence",
            State::Empty,
            |f| open_with_file(f, "control-plan-name.toml"),
            "InvalidPlan",
            "invalid plan `p\\u{1b}[2J`",
            None,
        ),
    ];
    let cli: Vec<CliRow> = vec![
        cli(
            "completion with a claim with an escape sequence",
            State::Running,
            &[
                "step",
                "complete",
                "--operation",
                "1",
                "--order",
                "1",
                "--claim",
                "forged\u{1b}[2J",
            ],
            REJECTED,
            "the given claim `forged\\u{1b}[2J`",
        ),
        cli(
            "open with a property with a newline",
            State::Opened,
            &["open", "--date", DAY, "--property", "grand\nhotel"],
            REJECTED,
            "invalid property `grand\\nhotel`",
        ),
        cli(
            "start with an actor with an escape sequence",
            State::Opened,
            &[
                "step",
                "start",
                "--operation",
                "1",
                "--order",
                "1",
                "--actor",
                "a\u{1b}[31mred",
            ],
            REJECTED,
            "invalid actor `a\\u{1b}[31mred`",
        ),
        cli(
            "start with a request id with a newline",
            State::Opened,
            &[
                "step",
                "start",
                "--operation",
                "1",
                "--order",
                "1",
                "--request-id",
                "a\nb",
            ],
            REJECTED,
            "invalid request id `a\\nb`",
        ),
    ];
    let mut failures = library_failures(&library);
    failures.extend(cli_failures(&cli));
    assert_no_failures(&failures);
}

#[test]
fn reads_validate_property() {
    let long = "ğ".repeat(MAX_PROPERTY_CHARS + 1);
    let library = vec![row(
        "view of a day with an empty property",
        State::Opened,
        |f| f.open()?.view_by_date("", date(DAY)).map(drop),
        "InvalidInput",
        "invalid property ``: it must not be blank",
        None,
    )];
    let cli = vec![
        cli(
            "status with an empty property",
            State::Opened,
            &["status", "--date", DAY, "--property", ""],
            REJECTED,
            "invalid property ``: it must not be blank",
        ),
        CliRow {
            name: "status with a property over the limit",
            state: State::Opened,
            args: ["status", "--date", DAY, "--property", &long]
                .map(str::to_owned)
                .to_vec(),
            code: REJECTED,
            names: format!(
                "invalid property `{}`: it must be at most 200 characters",
                quoted(&long)
            ),
        },
        cli(
            "history of an empty property",
            State::Opened,
            &["history", "--property", ""],
            REJECTED,
            "invalid property ``: it must not be blank",
        ),
    ];
    let mut failures = library_failures(&library);
    failures.extend(cli_failures(&cli));
    assert_no_failures(&failures);
}

#[test]
fn lease_error_names_given_seconds() {
    let rows = vec![
        cli(
            "start with lease 0",
            State::Opened,
            &[
                "step",
                "start",
                "--operation",
                "1",
                "--order",
                "1",
                "--lease-secs",
                "0",
            ],
            REJECTED,
            "--lease-secs `0`",
        ),
        cli(
            "start with a lease over 7 days",
            State::Opened,
            &[
                "step",
                "start",
                "--operation",
                "1",
                "--order",
                "1",
                "--lease-secs",
                "604801",
            ],
            REJECTED,
            "--lease-secs `604801`",
        ),
        cli(
            "run with a lease over 7 days",
            State::Opened,
            &["run", "--date", DAY, "--lease-secs", "604801"],
            REJECTED,
            "--lease-secs `604801`",
        ),
    ];
    assert_no_failures(&cli_failures(&rows));
}

#[test]
fn runner_rejects_unknown_handler_code() {
    let rows = vec![row(
        "handler for an unknown code",
        State::Opened,
        |f| {
            let store = f.open()?;
            let plan = Plan::standard();
            let mut runner = Runner::new(&store, &plan, caller("night-auditor"));
            for step in plan.steps().iter().filter(|step| step.code != "backup") {
                runner.handler(&step.code, |_| Ok(None));
            }
            // A typo of `backup`, the code of an optional step.
            runner.handler("bakcup", |_| Ok(None));
            runner.run(PROPERTY, date(DAY), |_| {}).map(drop)
        },
        "InvalidInput",
        "`bakcup`",
        None,
    )];
    assert_no_failures(&library_failures(&rows));
}

#[test]
fn store_lease_option_validated() {
    let rows = vec![
        row(
            "store lease zero",
            State::Opened,
            |f| {
                let store = Store::open_with(&f.db, f.options().lease(SignedDuration::ZERO))?;
                store.start_step(op1(), 1, &caller("ayşe")).map(drop)
            },
            "InvalidInput",
            "invalid lease `0s`",
            None,
        ),
        row(
            "store lease over 7 days",
            State::Opened,
            |f| {
                let lease = SignedDuration::from_secs(MAX_LEASE_SECS + 1);
                let store = Store::open_with(&f.db, f.options().lease(lease))?;
                store.start_step(op1(), 1, &caller("ayşe")).map(drop)
            },
            "InvalidInput",
            "invalid lease `168h 1s`",
            None,
        ),
    ];
    assert_no_failures(&library_failures(&rows));
}

#[test]
fn store_cache_size_validated() {
    let rows = vec![
        row(
            "store cache size zero",
            State::Opened,
            |f| {
                let store = Store::open_with(&f.db, f.options().cache_size(0))?;
                store.start_step(op1(), 1, &caller("ayşe")).map(drop)
            },
            "InvalidInput",
            "invalid cache size `0 bytes`",
            None,
        ),
        row(
            "store cache size below 1 MiB",
            State::Opened,
            |f| {
                let store = Store::open_with(&f.db, f.options().cache_size(MIN_CACHE_SIZE - 1))?;
                store.start_step(op1(), 1, &caller("ayşe")).map(drop)
            },
            "InvalidInput",
            "invalid cache size `1048575 bytes`: a cache of at least 1048576 bytes (1 MiB)",
            None,
        ),
    ];
    assert_no_failures(&library_failures(&rows));
}
