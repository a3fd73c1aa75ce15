//! Hostile inputs and races against the library and the `eod` binary: malformed arguments and
//! plan files, damaged and special database files, processes and threads racing for one file or
//! one step, killed processes, and misuse of request ids and claims.
//!
//! Some tests pin the fixes of bugs these attacks found; the others pin behavior that held up.

use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use eodstore::{Caller, Error, OperationId, Plan, PlanStep, Store, StoreOptions};
use serde_json::Value;

/// Returns an `eod` command on `db` with a fixed actor and no database or log variables.
fn eod(db: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eod"));
    command
        .arg("--db")
        .arg(db)
        .env_remove("EOD_DB")
        .env_remove("RUST_LOG")
        .env("USER", "attacker");
    command
}

/// Runs `eod --db DB ARGS` and waits for it.
fn run(db: &Path, args: &[&str]) -> Output {
    eod(db).args(args).output().expect("run the eod binary")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `eod` did not panic: no exit code 101 and no panic message.
fn assert_no_panic(output: &Output, label: &str) {
    let text = stderr(output);
    assert_ne!(output.status.code(), Some(101), "{label}: exit 101\n{text}");
    assert!(!text.contains("panicked"), "{label}: panicked\n{text}");
}

/// Returns the parsed JSON of a successful `eod --json` call.
fn json(output: &Output, label: &str) -> Value {
    assert!(output.status.success(), "{label}: {}", stderr(output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{label}: stdout is not JSON: {err}"))
}

/// Returns the logical content of operation 1: its status and its events, as JSON text.
fn snapshot(db: &Path) -> String {
    let status = run(db, &["--json", "status", "--operation", "1"]);
    let events = run(db, &["--json", "events", "--operation", "1"]);
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&events.stdout)
    )
}

/// Waits for `child` until `deadline`, then kills it. Returns its exit code, or `None` when it
/// had to be killed.
fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn plan_step(order: u32, code: String) -> PlanStep {
    PlanStep {
        order,
        code,
        name: format!("Adım {order}"),
        required: true,
        command: None,
        timeout_seconds: None,
        schedule: None,
        retry: None,
    }
}

/// Creates a database with operation 1 (standard plan, 2026-12-04) and returns its path.
fn database_with_operation(dir: &Path) -> PathBuf {
    let db = dir.join("eod.redb");
    let output = run(&db, &["open", "--date", "2026-12-04"]);
    assert!(output.status.success(), "seed: {}", stderr(&output));
    db
}

#[test]
#[allow(clippy::too_many_lines, reason = "one table row per rejected input")]
fn rejected_cli_inputs_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_operation(dir.path());
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let duplicate_order = write(
        "dup.toml",
        "name = \"p\"\n[[steps]]\norder = 1\ncode = \"a\"\nname = \"A\"\n\
         [[steps]]\norder = 1\ncode = \"b\"\nname = \"B\"\n",
    );
    let non_ascii_code = write(
        "code.toml",
        "name = \"p\"\n[[steps]]\norder = 1\ncode = \"ödeme\"\nname = \"A\"\n",
    );
    let malformed = write("bad.toml", "name = \"p\"\n[[steps]\n");
    let long_actor = "a".repeat(201);
    let directory = dir.path().display().to_string();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["open", "--date", "2026-02-30"], 3),
        (vec!["open", "--date", "2026-13-01"], 3),
        (vec!["open", "--date", " 2026-12-04"], 3),
        (vec!["open", "--date", "２０２６-１２-０４"], 3),
        (vec!["open", "--date", "2026-12-04", "--property", " "], 3),
        (
            vec!["open", "--date", "2026-12-04", "--property", "a\nb"],
            3,
        ),
        (
            vec!["open", "--date", "2026-12-04", "--actor", &long_actor],
            3,
        ),
        (
            vec!["open", "--date", "2026-12-05", "--plan", &duplicate_order],
            3,
        ),
        (
            vec!["open", "--date", "2026-12-05", "--plan", &non_ascii_code],
            3,
        ),
        (
            vec!["open", "--date", "2026-12-05", "--plan", &malformed],
            3,
        ),
        (
            vec!["open", "--date", "2026-12-05", "--plan", &directory],
            3,
        ),
        (vec!["step", "start", "--operation", "1", "--order", "0"], 3),
        (
            vec!["step", "start", "--operation", "1", "--order", "4294967296"],
            2,
        ),
        (
            vec!["step", "start", "--operation", "1", "--order", "-1"],
            2,
        ),
        (
            vec![
                "step",
                "start",
                "--operation",
                "1",
                "--order",
                "1",
                "--lease-secs",
                "0",
            ],
            3,
        ),
        (
            vec![
                "step",
                "start",
                "--operation",
                "1",
                "--order",
                "1",
                "--lease-secs",
                "604801",
            ],
            3,
        ),
        (vec!["step", "start", "--operation", "1", "--order", "2"], 3),
        (
            vec![
                "step",
                "complete",
                "--operation",
                "1",
                "--order",
                "1",
                "--claim",
                "forged",
            ],
            3,
        ),
        (
            vec![
                "step",
                "skip",
                "--operation",
                "1",
                "--order",
                "1",
                "--reason",
                "x",
            ],
            3,
        ),
        (
            vec![
                "step",
                "skip",
                "--operation",
                "1",
                "--order",
                "3",
                "--reason",
                " ",
            ],
            3,
        ),
        (
            vec![
                "step",
                "retry",
                "--operation",
                "1",
                "--order",
                "1",
                "--request-id",
                " ",
            ],
            3,
        ),
    ];
    let before = snapshot(&db);
    for (args, code) in &cases {
        let output = run(&db, args);
        assert_no_panic(&output, &format!("{args:?}"));
        assert_eq!(
            output.status.code(),
            Some(*code),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(snapshot(&db), before, "{args:?} changed the database");
    }

    let missing = dir.path().join("missing.redb");
    let output = run(&missing, &["open", "--date", "2026-02-30"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(!missing.exists(), "a rejected open created the file");
}

#[test]
fn truncated_file_gives_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_operation(dir.path());
    let bytes = std::fs::read(&db).unwrap();
    let intact = run(&db, &["status", "--operation", "1"]);
    assert!(intact.status.success());
    for size in [
        1,
        8,
        9,
        100,
        511,
        512,
        4096,
        8192,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let cut = dir.path().join(format!("cut-{size}.redb"));
        std::fs::write(&cut, &bytes[..size]).unwrap();
        let output = run(&cut, &["status", "--operation", "1"]);
        assert_no_panic(&output, &format!("cut at {size}"));
        // A read-only open reads only the pages a query needs, so a cut that spares them may
        // still give the correct answer; anything else must be an error.
        assert!(
            !output.status.success() || output.stdout == intact.stdout,
            "cut at {size} read as valid with other data"
        );
    }
}

/// Eight processes start the same step at once, ten times: one wins, the others get a message
/// naming the holder, and the trail records one start.
#[test]
fn cli_start_race_one_winner() {
    const PROCESSES: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eod.redb");
    for round in 1..=10 {
        // A property per round: each round leaves its operation in progress, and a property
        // has at most one operation in progress.
        let date = format!("2026-11-{round:02}");
        let property = format!("hotel-{round}");
        let opened = json(
            &run(
                &db,
                &["--json", "open", "--property", &property, "--date", &date],
            ),
            "open",
        );
        let id = opened["operation"]["id"].as_u64().unwrap().to_string();
        let children: Vec<Child> = (0..PROCESSES)
            .map(|index| {
                eod(&db)
                    .args(["step", "start", "--operation", &id, "--order", "1"])
                    .args(["--actor", &format!("terminal-{index}")])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect();
        let winners = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(winners, 1, "round {round}");
        for output in outputs.iter().filter(|o| !o.status.success()) {
            assert_eq!(
                output.status.code(),
                Some(3),
                "round {round}: {}",
                stderr(output)
            );
            assert!(
                stderr(output).contains("is already running, claimed by `terminal-"),
                "round {round}: {}",
                stderr(output)
            );
        }
        let events = json(
            &run(&db, &["--json", "events", "--operation", &id]),
            "events",
        );
        let starts = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["kind"] == "started")
            .count();
        assert_eq!(starts, 1, "round {round}");
    }
}

/// Eight processes open the same operation in an existing file at once: all get one id and the
/// ten steps of the standard plan.
#[test]
fn cli_open_race_existing_file() {
    const PROCESSES: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_operation(dir.path());
    for round in 1..=5 {
        let date = format!("2026-10-{round:02}");
        let children: Vec<Child> = (0..PROCESSES)
            .map(|_| {
                eod(&db)
                    .args(["--json", "open", "--date", &date])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut ids = Vec::new();
        for child in children {
            let opened = json(&child.wait_with_output().unwrap(), "racing open");
            let orders: Vec<u64> = opened["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|step| step["order"].as_u64().unwrap())
                .collect();
            assert_eq!(orders, (1..=10).collect::<Vec<u64>>(), "round {round}");
            ids.push(opened["operation"]["id"].as_u64().unwrap());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "round {round}: ids {ids:?}");
    }
}

/// Sixteen threads of one process start the same step through group commit: one wins.
#[test]
fn threads_start_race_one_winner() {
    const THREADS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("eod.redb")).unwrap();
    let date = eodstore::parse_business_date("2026-12-04").unwrap();
    for round in 0..20 {
        let property = format!("hotel-{round}");
        let id = store
            .open_operation(&property, date, &Plan::standard(), &Caller::new("a"))
            .unwrap()
            .operation
            .id;
        let barrier = Arc::new(Barrier::new(THREADS));
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|thread| {
                    let barrier = barrier.clone();
                    let store = &store;
                    scope.spawn(move || {
                        barrier.wait();
                        store.start_step(id, 1, &Caller::new(format!("t{thread}")))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}"
        );
        for result in &results {
            if let Err(err) = result {
                assert!(
                    matches!(err, Error::ClaimHeld { .. }),
                    "round {round}: {err}"
                );
            }
        }
        assert_eq!(store.steps(id).unwrap()[0].attempts, 1, "round {round}");
    }
}

#[test]
fn concurrent_first_open_succeeds() {
    const PROCESSES: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for round in 0..20 {
        let db = dir.path().join(format!("new-{round}.redb"));
        let children: Vec<Child> = (0..PROCESSES)
            .map(|_| {
                eod(&db)
                    .args(["open", "--date", "2026-12-04"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            if !output.status.success() {
                failures.push(format!("round {round}: {}", stderr(&output)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed opens: {failures:#?}",
        failures.len()
    );
}

#[test]
fn killed_first_open_leaves_usable_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eod.redb");
    for round in 0..200u64 {
        let _ = std::fs::remove_file(&db);
        let mut child = eod(&db)
            .args(["open", "--date", "2026-12-04"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the first 20 ms, where the file is created.
        std::thread::sleep(Duration::from_micros((round * 7919) % 20_000));
        let _ = child.kill();
        let _ = child.wait();
        let output = run(&db, &["open", "--date", "2026-12-04"]);
        assert!(
            output.status.success(),
            "round {round}: open after a killed first open failed: {}",
            stderr(&output)
        );
    }
}

#[test]
fn endless_plan_file_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eod.redb");
    let mut child = eod(&db)
        .args(["open", "--date", "2026-12-04", "--plan", "/dev/zero"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(wait_or_kill(&mut child, Duration::from_secs(5)), Some(3));
    assert!(!db.exists(), "a rejected plan created the database");
}

#[test]
fn fifo_database_path_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("db.fifo");
    let mkfifo = Command::new("mkfifo").arg(&fifo).status();
    match mkfifo {
        Ok(status) if status.success() => {}
        Err(err) if err.kind() == ErrorKind::NotFound => return,
        other => panic!("mkfifo failed: {other:?}"),
    }
    let mut child = eod(&fifo)
        .args(["status", "--operation", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let code = wait_or_kill(&mut child, Duration::from_secs(5));
    assert!(matches!(code, Some(1 | 3)), "exit code {code:?}");
}

#[test]
fn oversized_plan_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("eod.redb")).unwrap();
    let code = |order: u32| format!("{}{order:06}", "c".repeat(58));
    let too_many = (1..=15_000)
        .map(|order| plan_step(order, code(order)))
        .collect();
    let err = Plan::new("huge", too_many).unwrap_err();
    assert!(matches!(err, Error::InvalidPlan { .. }), "{err}");
    // The largest plan accepted, with the longest codes, must still read back.
    let steps = (1..=1000)
        .map(|order| plan_step(order, code(order)))
        .collect();
    let plan = Plan::new("largest", steps).unwrap();
    let date = eodstore::parse_business_date("2026-12-04").unwrap();
    let opened = store.open_operation("grand", date, &plan, &Caller::new("a"));
    let Ok(opened) = opened else {
        // Rejecting the plan up front is a fix too.
        return;
    };
    let view = store.view(opened.operation.id);
    assert!(view.is_ok(), "{}", view.unwrap_err());
    let history = store.history("grand", 10);
    assert!(history.is_ok(), "{}", history.unwrap_err());
}

#[test]
fn damaged_pages_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eod.redb");
    for day in 1..=5 {
        let output = run(&db, &["open", "--date", &format!("2026-11-{day:02}")]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let original = std::fs::read(&db).unwrap();
    let damaged = dir.path().join("damaged.redb");
    let mut panics = Vec::new();
    // In redb 5 the first bytes of a page hold the node type, the entry count and the first key
    // offsets. Flipping their top bit is the damage that made redb panic.
    for page in (4096..original.len()).step_by(4096) {
        for offset in page..page + 12 {
            let mut bytes = original.clone();
            bytes[offset] ^= 0x80;
            std::fs::write(&damaged, &bytes).unwrap();
            let output = run(&damaged, &["history"]);
            if output.status.code() == Some(101) || stderr(&output).contains("panicked") {
                panics.push(offset);
            }
        }
    }
    assert!(panics.is_empty(), "panics at offsets {panics:?}");
}

/// Runs `call` on `threads` threads at once and returns how many returned within `limit`, and
/// how many of those panicked.
fn race_with_timeout(
    threads: usize,
    limit: Duration,
    call: impl Fn(usize) -> eodstore::Result<()> + Send + Sync + 'static,
) -> (usize, usize) {
    let call = Arc::new(call);
    let barrier = Arc::new(Barrier::new(threads));
    let (sender, receiver) = std::sync::mpsc::channel();
    for thread in 0..threads {
        let call = call.clone();
        let barrier = barrier.clone();
        let sender = sender.clone();
        std::thread::spawn(move || {
            barrier.wait();
            let outcome = catch_unwind(AssertUnwindSafe(|| call(thread)));
            let _ = sender.send(outcome.is_err());
        });
    }
    drop(sender);
    let deadline = Instant::now() + limit;
    let mut returned = 0;
    let mut panicked = 0;
    while let Ok(panic) = receiver.recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        returned += 1;
        panicked += usize::from(panic);
    }
    (returned, panicked)
}

#[test]
fn leader_panic_releases_writers() {
    const THREADS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eod.redb");
    {
        let store = Store::open_or_create(&path).unwrap();
        for day in 1..=5 {
            let date = eodstore::parse_business_date(&format!("2026-11-{day:02}")).unwrap();
            store
                .open_operation("grand", date, &Plan::standard(), &Caller::new("a"))
                .unwrap();
        }
    }
    let original = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("damaged.redb");

    let offsets = (4096..original.len())
        .step_by(4096)
        .flat_map(|page| page..page + 12);
    for offset in offsets {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x80;
        std::fs::write(&damaged, &bytes).unwrap();
        let Ok(Ok(store)) = catch_unwind(|| Store::open(&damaged)) else {
            continue;
        };
        let store = Arc::new(store);

        let racing = store.clone();
        let (returned, panicked) =
            race_with_timeout(THREADS, Duration::from_secs(10), move |thread| {
                let date = eodstore::parse_business_date(&format!("2027-01-{:02}", thread + 1))?;
                let caller = Caller::new(format!("t{thread}"));
                racing.open_operation("grand", date, &Plan::standard(), &caller)?;
                Ok(())
            });
        assert_eq!(
            returned, THREADS,
            "offset {offset}: {returned} of {THREADS} writers returned ({panicked} panicked)"
        );

        let later = store.clone();
        let (returned, _) = race_with_timeout(1, Duration::from_secs(10), move |_| {
            later.start_step(OperationId(1), 1, &Caller::new("late"))?;
            Ok(())
        });
        assert_eq!(returned, 1, "offset {offset}: a later write got no reply");
    }
}

#[test]
fn replay_hides_claim_from_other_actor() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("eod.redb")).unwrap();
    let date = eodstore::parse_business_date("2026-12-04").unwrap();
    let id = store
        .open_operation("grand", date, &Plan::standard(), &Caller::new("alice"))
        .unwrap()
        .operation
        .id;
    let alice = store
        .start_step(id, 1, &Caller::new("alice").request_id("start-1"))
        .unwrap();
    let mallory = store.start_step(id, 1, &Caller::new("mallory").request_id("start-1"));
    if let Ok(started) = mallory {
        assert_ne!(
            started.claim.token, alice.claim.token,
            "mallory received alice's claim"
        );
    }
}

#[test]
fn reused_request_id_hides_claim() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("eod.redb")).unwrap();
    let date = eodstore::parse_business_date("2026-12-04").unwrap();
    let id = store
        .open_operation("grand", date, &Plan::standard(), &Caller::new("alice"))
        .unwrap()
        .operation
        .id;
    let started = store.start_step(id, 1, &Caller::new("alice")).unwrap();
    let token = started.claim.token;
    store
        .renew_claim(id, 1, &token, &Caller::new("alice").request_id("renew-1"))
        .unwrap();
    let err = store
        .complete_step(
            id,
            1,
            "forged",
            None,
            &Caller::new("mallory").request_id("renew-1"),
        )
        .unwrap_err();
    assert!(
        !err.to_string().contains(&token),
        "the error reveals the claim: {err}"
    );
}

/// Ctrl-C in a terminal sends SIGINT to the foreground process group, which ends `eod run`. The
/// step's command must end with it, because a resumed run would otherwise overlap it.
#[test]
fn interrupted_run_stops_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("eod.redb");
    let started = dir.path().join("started");
    let finished = dir.path().join("finished");
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"slow\"\n[[steps]]\norder = 1\ncode = \"slow\"\nname = \"Slow\"\n\
             command = \"touch '{}'; sleep 3; touch '{}'\"\n",
            started.display(),
            finished.display()
        ),
    )
    .unwrap();

    let mut child = eod(&db)
        .args(["run", "--date", "2026-12-04", "--plan"])
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the step command did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let group = format!("-{}", child.id());
    let signalled = Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    assert!(signalled.success(), "kill -INT failed");
    let _ = child.wait();

    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !finished.exists(),
        "the step command outlived the interrupted run"
    );
}

#[test]
fn plan_names_reject_control_characters() {
    for name in ["A\\nB", "A\\u0000", "A\\u001b[2J"] {
        let text = format!("name = \"p\"\n[[steps]]\norder = 1\ncode = \"a\"\nname = \"{name}\"\n");
        assert!(
            Plan::from_toml(&text, "plan.toml").is_err(),
            "step name {name} accepted"
        );
        let text = format!("name = \"{name}\"\n[[steps]]\norder = 1\ncode = \"a\"\nname = \"A\"\n");
        assert!(
            Plan::from_toml(&text, "plan.toml").is_err(),
            "plan name {name} accepted"
        );
    }
}

#[test]
fn short_file_reported_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_operation(dir.path());
    let bytes = std::fs::read(&db).unwrap();
    for size in [9, 10, 100, 300] {
        let cut = dir.path().join(format!("cut-{size}.redb"));
        std::fs::write(&cut, &bytes[..size]).unwrap();
        let err = Store::open_with(&cut, StoreOptions::new()).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "cut at {size}: {err}");
    }
}

#[test]
fn missing_day_hint_quotes_property() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_operation(dir.path());
    let output = run(
        &db,
        &[
            "status",
            "--date",
            "2026-12-09",
            "--property",
            "Grand Hotel",
        ],
    );
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("--property 'Grand Hotel'"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn operation_ids_out_of_range_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_operation(dir.path());
    for id in ["0", "18446744073709551615"] {
        for args in [
            vec!["status", "--operation", id],
            vec!["events", "--operation", id],
            vec!["step", "start", "--operation", id, "--order", "1"],
        ] {
            let output = run(&db, &args);
            assert_no_panic(&output, &format!("{args:?}"));
            assert_eq!(
                output.status.code(),
                Some(3),
                "{args:?}: {}",
                stderr(&output)
            );
            assert!(
                stderr(&output).contains(&format!("operation {id} not found")),
                "{args:?}: {}",
                stderr(&output)
            );
        }
    }
    assert!(Store::open(&db).unwrap().view(OperationId(1)).is_ok());
}
