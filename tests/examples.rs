//! Runs the examples as separate processes, as a user does. The night audit runs end to end,
//! crashes right after a step's start and resumes with a takeover, and rejects bad data and
//! output into the source tree. The concurrent-terminals check runs with small numbers. The
//! night audit's sample computations are also checked directly, by compiling its modules into
//! this test.
//!
//! The example binaries are built once per test run by `cargo build` in this test's profile;
//! cargo's JSON messages give their paths.

#[allow(dead_code)]
#[path = "../examples/night_audit/audit.rs"]
mod audit;
#[allow(dead_code)]
#[path = "../examples/night_audit/hotel.rs"]
mod hotel;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;

use eodstore::{EventKind, OperationStatus, Step, StepStatus, Store};

use crate::audit::Audit;
use crate::hotel::Hotel;

const EXAMPLES: [&str; 2] = ["night_audit", "concurrent_terminals"];

/// Returns the path of the built example `name`, building the examples on first use.
fn example_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(build_examples);
    match built.get(name) {
        Some(path) => path.clone(),
        None => panic!("cargo reported no executable for example `{name}`: {built:?}"),
    }
}

/// Builds the examples in the profile of this test binary and returns their executables.
fn build_examples() -> HashMap<String, PathBuf> {
    let mut command = Command::new(env!("CARGO"));
    command.args([
        "build",
        "--message-format=json-render-diagnostics",
        "--manifest-path",
    ]);
    command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    command.args(["--profile", &test_profile()]);
    for name in EXAMPLES {
        command.args(["--example", name]);
    }
    let output = command.output().expect("cargo build can be started");
    assert!(
        output.status.success(),
        "cargo build of the examples failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut built = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = message["target"]["name"].as_str();
        let executable = message["executable"].as_str();
        if message["reason"] == "compiler-artifact"
            && let (Some(name), Some(executable)) = (name, executable)
        {
            built.insert(name.to_owned(), PathBuf::from(executable));
        }
    }
    built
}

/// Returns the cargo profile this test was built with, read from its path
/// `TARGET/PROFILE_DIR/deps/examples-HASH`; the `dev` profile's directory is `debug`.
fn test_profile() -> String {
    let exe = std::env::current_exe().expect("the test binary's path is known");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(OsStr::to_str)
        .unwrap_or("debug");
    match profile_dir {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    }
}

/// A finished example process.
struct Finished {
    status: ExitStatus,
    pid: u32,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }

    /// Returns the night audit's summary line of its steps, `operation=...`.
    fn summary_line(&self) -> &str {
        self.stdout
            .lines()
            .find(|line| line.starts_with("operation="))
            .unwrap_or("")
    }

    /// Returns the night audit's last line, `postings=N expected=N duplicates=N`.
    fn postings_line(&self) -> &str {
        self.last_line()
    }

    fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs example `name` with `args`, in `cwd`, and waits for it.
fn run_example(name: &str, cwd: &Path, args: &[&OsStr]) -> Finished {
    let child = Command::new(example_binary(name))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example can be started");
    let pid = child.id();
    let output = child
        .wait_with_output()
        .expect("the example can be waited for");
    Finished {
        status: output.status,
        pid,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the night audit on `db`, with `extra` flags, in `db`'s directory.
fn night_audit(db: &Path, extra: &[&str]) -> Finished {
    let mut args: Vec<&OsStr> = vec![OsStr::new("--db"), db.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    run_example(
        "night_audit",
        db.parent().expect("db has a directory"),
        &args,
    )
}

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data")
}

fn sample_hotel() -> Hotel {
    Hotel::load(&sample_dir()).expect("the sample data loads")
}

/// Copies the sample data into `dir` and returns `dir`.
fn copy_sample(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the data copy");
    for entry in std::fs::read_dir(sample_dir()).expect("read the sample directory") {
        let entry = entry.expect("read a sample entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy a sample file");
    }
    dir.to_owned()
}

/// Opens the store after the example processes ended and returns the sample day's steps.
fn stored_steps(db: &Path) -> (eodstore::OperationId, Vec<Step>) {
    let hotel = sample_hotel();
    let store = Store::open(db).expect("the store opens");
    let view = store
        .view_by_date(&hotel.property, hotel.business_date)
        .expect("the sample day's operation exists");
    (view.operation.id, view.steps)
}

fn event_count(db: &Path, id: eodstore::OperationId) -> usize {
    Store::open(db)
        .expect("the store opens")
        .events(id)
        .expect("events")
        .len()
}

const COMPLETED: &str =
    "operation=1 status=completed steps=10 completed=10 skipped=0 failed=0 pending=0";

#[test]
fn night_audit_completes_then_reruns_idle() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("eod.redb");

    let first = night_audit(&db, &[]);
    assert!(first.status.success(), "{}", first.describe());
    assert_eq!(first.summary_line(), COMPLETED, "{}", first.describe());
    let step_lines = first
        .stdout
        .lines()
        .filter(|line| line.contains(" completed "))
        .count();
    assert_eq!(step_lines, 10, "{}", first.describe());

    let hotel = sample_hotel();
    let store = Store::open(&db).expect("the store opens");
    let audit = Audit::new(
        &hotel,
        &store,
        &hotel.property,
        hotel.business_date,
        &dir.path().join("eod-reports"),
    );
    let expected = audit::room_postings(&hotel, hotel.business_date);
    assert_eq!(
        first.postings_line(),
        format!("postings={0} expected={0} duplicates=0", expected.len()),
        "{}",
        first.describe()
    );
    assert_eq!(
        audit.postings().expect("the postings are readable"),
        expected
    );
    let export = std::fs::read_to_string(audit.export_path()).expect("the export exists");
    let export: serde_json::Value = serde_json::from_str(&export).expect("the export is JSON");
    assert_eq!(
        export["postings"].as_array().map(Vec::len),
        Some(expected.len())
    );
    let export_text = export.to_string();
    for reservation in &hotel.reservations {
        assert!(
            !export_text.contains(&reservation.guest),
            "the export contains the guest name of {}",
            reservation.id
        );
    }
    assert!(audit.report_path().exists());

    let (id, steps) = stored_steps(&db);
    assert!(
        steps
            .iter()
            .all(|step| step.status == StepStatus::Completed && step.attempts == 1)
    );
    let events = event_count(&db, id);
    let files = [audit.report_path(), audit.export_path()];
    let before: Vec<_> = files
        .iter()
        .map(|path| std::fs::read(path).expect("read output"))
        .collect();
    let modified = |path: &PathBuf| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    let times_before: Vec<_> = files.iter().map(modified).collect();

    let again = night_audit(&db, &[]);
    assert!(again.status.success(), "{}", again.describe());
    assert_eq!(again.summary_line(), COMPLETED, "{}", again.describe());
    assert_eq!(
        again.stdout.matches("(earlier run)").count(),
        10,
        "{}",
        again.describe()
    );
    assert_eq!(
        event_count(&db, id),
        events,
        "a rerun of a finished operation wrote events"
    );
    let after: Vec<_> = files
        .iter()
        .map(|path| std::fs::read(path).expect("read output"))
        .collect();
    assert_eq!(after, before);
    assert_eq!(files.iter().map(modified).collect::<Vec<_>>(), times_before);
}

/// Checks the store after a crash at the start of `post_room_charges`: steps 1 to 4 completed,
/// step 5 running under the crashed process's claim, the rest pending. Returns the operation id.
fn assert_left_running(db: &Path, crashed_pid: u32) -> eodstore::OperationId {
    let (id, steps) = stored_steps(db);
    let posting = &steps[4];
    assert_eq!(posting.code, "post_room_charges");
    assert_eq!(posting.status, StepStatus::Running);
    let claim = posting
        .claim
        .as_ref()
        .expect("the running step has a claim");
    let process = claim
        .process
        .as_ref()
        .expect("a runner claim records its process");
    assert_eq!(process.pid, crashed_pid);
    assert!(
        steps[..4]
            .iter()
            .all(|step| step.status == StepStatus::Completed)
    );
    assert!(
        steps[5..]
            .iter()
            .all(|step| step.status == StepStatus::Pending)
    );
    id
}

#[test]
fn night_audit_resumes_after_crash() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("eod.redb");
    let hotel = sample_hotel();

    let crashed = night_audit(&db, &["--crash-after", "post_room_charges"]);
    assert!(!crashed.status.success(), "{}", crashed.describe());
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(
            crashed.status.signal(),
            Some(6),
            "expected SIGABRT: {}",
            crashed.describe()
        );
    }
    assert!(
        !crashed.stdout.contains("operation=1"),
        "{}",
        crashed.describe()
    );
    let unposted = {
        let store = Store::open(&db).expect("the store opens");
        audit::read_postings(&store, &hotel.property, hotel.business_date).expect("postings")
    };
    assert!(unposted.is_empty(), "the handler ran before the abort");
    let id = assert_left_running(&db, crashed.pid);

    let resumed = night_audit(&db, &[]);
    assert!(resumed.status.success(), "{}", resumed.describe());
    assert_eq!(resumed.summary_line(), COMPLETED, "{}", resumed.describe());
    assert!(
        resumed.stdout.contains("no longer exists"),
        "{}",
        resumed.describe()
    );
    assert_eq!(
        resumed.stdout.matches("(earlier run)").count(),
        4,
        "{}",
        resumed.describe()
    );

    let (_, steps) = stored_steps(&db);
    let attempts: Vec<u32> = steps.iter().map(|step| step.attempts).collect();
    assert_eq!(attempts, [1, 1, 1, 1, 2, 1, 1, 1, 1, 1]);
    let store = Store::open(&db).expect("the store opens");
    let events = store.events(id).expect("events");
    let of_step = |kind: EventKind| {
        events
            .iter()
            .filter(|event| event.kind == kind && event.step_order == Some(5))
            .count()
    };
    assert_eq!(of_step(EventKind::Started), 1);
    assert_eq!(of_step(EventKind::TakenOver), 1);
    assert_eq!(of_step(EventKind::Completed), 1);
    assert_eq!(
        store.operation(id).expect("operation").status,
        OperationStatus::Completed
    );
    drop(store);

    // Each stay was posted once: the store has exactly the postings the sample gives.
    let expected = audit::room_postings(&hotel, hotel.business_date);
    let stays = audit::stays_tonight(&hotel, hotel.business_date).len();
    assert_eq!(expected.len(), stays * (1 + hotel.taxes.len()));
    let store = Store::open(&db).expect("the store opens");
    let audit = Audit::new(
        &hotel,
        &store,
        &hotel.property,
        hotel.business_date,
        &dir.path().join("eod-reports"),
    );
    assert_eq!(
        audit.postings().expect("the postings are readable"),
        expected
    );
    drop(store);
    let output = steps[4].output_tail.as_deref().unwrap_or("");
    assert!(
        output.starts_with(&format!(
            "posted {} postings for {stays} stays",
            expected.len()
        )),
        "{output}"
    );

    let events_before = event_count(&db, id);
    let third = night_audit(&db, &[]);
    assert!(third.status.success(), "{}", third.describe());
    assert_eq!(third.summary_line(), COMPLETED, "{}", third.describe());
    assert_eq!(event_count(&db, id), events_before);
}

/// A crash inside `post_room_charges`'s transaction, after half of its postings are written,
/// leaves no posting and the step running. The resumed run posts every charge once.
#[test]
fn night_audit_posts_once_after_crash_during_postings() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("eod.redb");
    let hotel = sample_hotel();
    let expected = audit::room_postings(&hotel, hotel.business_date);

    let crashed = night_audit(&db, &["--crash-during", "post_room_charges"]);
    assert!(!crashed.status.success(), "{}", crashed.describe());
    assert!(
        crashed
            .stdout
            .contains("half of the postings written, aborting"),
        "{}",
        crashed.describe()
    );
    {
        let store = Store::open(&db).expect("the store opens");
        let check = audit::check_postings(&store, &hotel, &hotel.property, hotel.business_date)
            .expect("postings");
        assert_eq!(
            check.postings, 0,
            "postings of an aborted transaction remain"
        );
        assert_eq!(check.expected, expected.len());
    }
    let id = assert_left_running(&db, crashed.pid);

    let resumed = night_audit(&db, &[]);
    assert!(resumed.status.success(), "{}", resumed.describe());
    assert_eq!(resumed.summary_line(), COMPLETED, "{}", resumed.describe());
    assert_eq!(
        resumed.postings_line(),
        format!("postings={0} expected={0} duplicates=0", expected.len()),
        "{}",
        resumed.describe()
    );
    let store = Store::open(&db).expect("the store opens");
    assert_eq!(
        audit::read_postings(&store, &hotel.property, hotel.business_date).expect("postings"),
        expected
    );
    let events = store.events(id).expect("events");
    let completions = events
        .iter()
        .filter(|event| event.kind == EventKind::Completed && event.step_order == Some(5))
        .count();
    assert_eq!(completions, 1);

    // A crash request for a step without a transaction of its own is refused.
    let refused = night_audit(&db, &["--crash-during", "reports"]);
    assert_eq!(refused.status.code(), Some(1), "{}", refused.describe());
    assert!(
        refused.stderr.contains("invalid --crash-during `reports`"),
        "{}",
        refused.describe()
    );
}

/// A crash just after the postings' transaction committed (at the start of the next step)
/// leaves the postings and the completed step. The resumed run does not post again.
#[test]
fn night_audit_posts_once_after_crash_after_postings() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("eod.redb");
    let hotel = sample_hotel();
    let expected = audit::room_postings(&hotel, hotel.business_date).len();

    let crashed = night_audit(&db, &["--crash-after", "folio_balance"]);
    assert!(!crashed.status.success(), "{}", crashed.describe());
    {
        let store = Store::open(&db).expect("the store opens");
        let check = audit::check_postings(&store, &hotel, &hotel.property, hotel.business_date)
            .expect("postings");
        assert_eq!((check.postings, check.duplicates), (expected, 0));
    }
    let resumed = night_audit(&db, &[]);
    assert!(resumed.status.success(), "{}", resumed.describe());
    assert_eq!(
        resumed.postings_line(),
        format!("postings={expected} expected={expected} duplicates=0"),
        "{}",
        resumed.describe()
    );
    let (_, steps) = stored_steps(&db);
    assert_eq!(steps[4].attempts, 1, "post_room_charges ran again");
    assert_eq!(steps[5].attempts, 2, "folio_balance was not taken over");
}

#[test]
fn night_audit_retries_failed_pre_audit() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("eod.redb");
    let data = copy_sample(&dir.path().join("data"));
    let reservations = data.join("reservations.csv");
    let original = std::fs::read_to_string(&reservations).expect("read reservations");
    // R1040 is in house tonight in room 204. Room 202 is taken by R1029 until 2026-12-05.
    let double_booked = original.replace("R1040,Nina Petrova,204,", "R1040,Nina Petrova,202,");
    assert_ne!(
        double_booked, original,
        "the sample no longer has R1040 in room 204"
    );
    std::fs::write(&reservations, double_booked).expect("write reservations");

    let data_arg = data.to_str().expect("UTF-8 path");
    let failed = night_audit(&db, &["--data", data_arg]);
    assert_eq!(failed.status.code(), Some(1), "{}", failed.describe());
    assert_eq!(
        failed.summary_line(),
        "operation=1 status=failed steps=10 completed=0 skipped=0 failed=1 pending=9"
    );
    assert!(
        failed.stderr.contains("step 1 (`pre_audit_checks`) failed")
            && failed.stderr.contains("room 202 is double-booked: R1029"),
        "{}",
        failed.describe()
    );

    std::fs::write(&reservations, original).expect("restore reservations");
    let retried = night_audit(&db, &["--data", data_arg]);
    assert!(retried.status.success(), "{}", retried.describe());
    assert_eq!(retried.summary_line(), COMPLETED, "{}", retried.describe());
    let (_, steps) = stored_steps(&db);
    assert_eq!(steps[0].attempts, 2);
}

#[test]
fn night_audit_rejects_malformed_csv() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("eod.redb");
    let data = copy_sample(&dir.path().join("data"));
    let reservations = data.join("reservations.csv");
    let text = std::fs::read_to_string(&reservations).expect("read reservations");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[4] = lines[4].replacen(",1,0", ",one,0", 1);
    std::fs::write(&reservations, lines.join("\n")).expect("write reservations");

    let failed = night_audit(&db, &["--data", data.to_str().expect("UTF-8 path")]);
    assert_eq!(failed.status.code(), Some(1), "{}", failed.describe());
    let expected = format!(
        "night_audit: {}:5: invalid `adults` value `one`: expected a whole number from 1 to 20\n",
        reservations.display()
    );
    assert_eq!(failed.stderr, expected);
    assert!(failed.stdout.is_empty(), "{}", failed.describe());
    assert!(!db.exists(), "the store was created despite invalid data");
}

#[test]
fn night_audit_rejects_unknown_crash_code() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("eod.redb");
    let failed = night_audit(&db, &["--crash-after", "post_charges"]);
    assert_eq!(failed.status.code(), Some(1), "{}", failed.describe());
    assert!(
        failed
            .stderr
            .starts_with("night_audit: invalid --crash-after `post_charges`: expected a step code"),
        "{}",
        failed.describe()
    );
    assert!(!db.exists());
}

#[test]
fn concurrent_terminals_reports_zeros() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let db = dir.path().join("terminals.redb");
    let args = [
        "--db",
        db.to_str().expect("UTF-8 path"),
        "--threads",
        "8",
        "--trials",
        "10",
    ];
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let finished = run_example("concurrent_terminals", dir.path(), &args);
    assert!(finished.status.success(), "{}", finished.describe());
    assert_eq!(
        finished.last_line(),
        "trials=10 threads=8 steps_per_operation=10 duplicates=0 wrong_results=0 errors=0"
    );
    let store = Store::open(&db).expect("the store opens");
    for id in 1..=10 {
        let steps = store
            .steps(eodstore::OperationId(id))
            .expect("each trial's operation exists");
        assert_eq!(steps.len(), 10);
    }
    assert!(
        store.operation(eodstore::OperationId(11)).is_err(),
        "a trial opened two operations"
    );
}

#[test]
fn concurrent_terminals_default_db_is_removed() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let args: Vec<&OsStr> = ["--threads", "2", "--trials", "1"]
        .iter()
        .map(OsStr::new)
        .collect();
    let finished = run_example("concurrent_terminals", dir.path(), &args);
    assert!(finished.status.success(), "{}", finished.describe());
    let first_line = finished.stdout.lines().next().unwrap_or("");
    let db = first_line
        .strip_prefix("db=")
        .and_then(|rest| rest.split(" plan=").next())
        .expect("the first line names the db");
    assert!(!Path::new(db).exists(), "{db} was left behind");
    assert!(
        std::fs::read_dir(dir.path())
            .expect("read cwd")
            .next()
            .is_none()
    );
}

// Counted from the CSV files independently of the example's code.
#[test]
fn sample_day_has_known_figures() {
    let hotel = sample_hotel();
    let date = hotel.business_date;
    assert_eq!(date.to_string(), "2026-12-04");
    assert_eq!((hotel.rooms.len(), hotel.reservations.len()), (40, 60));
    assert_eq!(hotel.payments.len(), 13);
    assert!(audit::consistency_problems(&hotel, date).is_empty());

    assert_eq!(audit::stays_tonight(&hotel, date).len(), 30);
    let ids =
        |list: Vec<&hotel::Reservation>| list.iter().map(|res| res.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(audit::no_shows(&hotel, date)),
        ["R1045", "R1047", "R1050"]
    );
    assert_eq!(ids(audit::due_outs(&hotel, date)), ["R1021", "R1026"]);
    assert_eq!(audit::departed(&hotel, date).len(), 8);

    let postings = audit::room_postings(&hotel, date);
    assert_eq!(postings.len(), 90);
    let totals = audit::totals_by_code(&hotel, &postings);
    let expected = [("ROOM", 437_875), ("VAT", 43_788), ("CITY", 14_500)];
    let expected: Vec<(String, i64)> = expected
        .iter()
        .map(|(c, a)| ((*c).to_owned(), *a))
        .collect();
    assert_eq!(totals, expected);

    let balances = audit::folio_balances(&hotel, date, &postings);
    assert_eq!(balances.len(), 40);
    let due: i64 = balances
        .iter()
        .map(|folio| folio.balance)
        .filter(|b| *b > 0)
        .sum();
    let credit: i64 = balances
        .iter()
        .map(|folio| folio.balance)
        .filter(|b| *b < 0)
        .sum();
    assert_eq!((due, credit), (1_040_792, -50_500));
    let r1013 = balances.iter().find(|folio| folio.reservation == "R1013");
    assert_eq!(r1013.map(|folio| folio.balance), Some(4_500));

    let cashiers = audit::cashier_totals(&hotel);
    let front_2 = &cashiers["front-2"];
    assert_eq!(
        (front_2.payments, front_2.cash, front_2.card),
        (6, 33_750, 152_150)
    );
}

#[test]
fn percent_tax_rounds_half_up() {
    let vat = hotel::Tax {
        code: "VAT".into(),
        kind: hotel::TaxKind::Percent { basis_points: 1000 },
    };
    assert_eq!(audit::tax_amount(&vat, 11_275, 1), 1_128);
    assert_eq!(audit::tax_amount(&vat, 11_274, 1), 1_127);
    assert_eq!(audit::tax_amount(&vat, 12_000, 3), 1_200);
    assert_eq!(audit::tax_amount(&vat, 0, 1), 0);
    let city = hotel::Tax {
        code: "CITY".into(),
        kind: hotel::TaxKind::PerGuestNight { amount: 250 },
    };
    assert_eq!(audit::tax_amount(&city, 12_000, 3), 750);
}

#[test]
fn consistency_finds_unknown_room_and_overlap() {
    let mut hotel = sample_hotel();
    let date = hotel.business_date;
    let index = hotel
        .reservations
        .iter()
        .position(|res| res.id == "R1040")
        .expect("R1040 exists");
    hotel.reservations[index].room = "202".into();
    let problems = audit::consistency_problems(&hotel, date);
    assert_eq!(
        problems,
        [
            "room 202 is double-booked: R1029 (2026-12-03 to 2026-12-05) and R1040 (2026-12-04 to 2026-12-07)",
            "room 202 is double-booked: R1040 (2026-12-04 to 2026-12-07) and R1052 (2026-12-06 to 2026-12-08)",
        ]
    );

    hotel.reservations[index].room = "999".into();
    let problems = audit::consistency_problems(&hotel, date);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("names room 999, which is not in rooms.csv"),
        "{problems:?}"
    );
}

#[test]
fn csv_errors_name_file_and_line() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("rooms.csv");
    let cases = [
        (
            "",
            "the file is empty; expected the header `number,type,rack_rate`",
        ),
        (
            "number,type\n",
            "1: expected the header `number,type,rack_rate`, found `number,type`",
        ),
        (
            "# rooms\nnumber,type,rack_rate\n101,standard\n",
            "3: expected 3 comma-separated fields (number,type,rack_rate), found 2; fields cannot contain commas",
        ),
        (
            "number,type,rack_rate\n\n101,standard,-5\n",
            "3: invalid `rack_rate` value `-5`: expected a whole number from 0 to 1000000000",
        ),
        (
            "number,type,rack_rate\n101,standard,100\n101,suite,200\n",
            "3: room `101` appears twice, first on line 2",
        ),
    ];
    for (text, problem) in cases {
        std::fs::write(&path, text).expect("write rooms.csv");
        std::fs::copy(
            sample_dir().join("hotel.toml"),
            dir.path().join("hotel.toml"),
        )
        .expect("copy hotel.toml");
        let err = Hotel::load(dir.path()).expect_err("invalid rooms.csv loads");
        let separator = if problem.starts_with(char::is_numeric) {
            ":"
        } else {
            ": "
        };
        assert_eq!(
            err.to_string(),
            format!("{}{separator}{problem}", path.display())
        );
    }
}

#[test]
fn amounts_format_with_two_decimals() {
    assert_eq!(audit::format_amount(0), "0.00");
    assert_eq!(audit::format_amount(5), "0.05");
    assert_eq!(audit::format_amount(437_875), "4378.75");
    assert_eq!(audit::format_amount(-50_500), "-505.00");
    assert_eq!(audit::format_amount(i64::MIN), "-92233720368547758.08");
    assert_eq!(audit::format_percent(30, 40), "75.00%");
    assert_eq!(audit::format_percent(1, 3), "33.33%");
    assert_eq!(audit::format_percent(2, 3), "66.67%");
    assert_eq!(audit::format_percent(0, 0), "0.00%");
}
