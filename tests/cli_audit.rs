//! The business-date commands of `eod`, run as a built binary on database files in temporary
//! directories. They cover `property set-date` and `property show`, the business-date gate and
//! `--override-date`, catch-up with `run --until`, and `release`. They also race two runs, check
//! retry policies in `status`, and follow changes of other processes with `watch`.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::time::{Duration, Instant};

use eodstore::Plan;
use serde_json::Value;

#[path = "common/sandbox.rs"]
mod sandbox;

use sandbox::{Run, Sandbox, assert_code};

/// Sets the business date of `property` with `eod property set-date`, which must succeed.
fn set_date(sandbox: &Sandbox, property: &str, date: &str) -> Run {
    let run = sandbox.eod(&[
        "property",
        "set-date",
        "--property",
        property,
        "--date",
        date,
    ]);
    assert_code(&run, 0);
    run
}

/// Waits for `child` at most `limit`, killing it when it takes longer, and returns what it
/// printed. Its stderr is read from `stderr`, which the caller may have started reading.
fn finish(
    mut child: Child,
    stderr: Option<BufReader<std::process::ChildStderr>>,
    limit: Duration,
) -> Run {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the eod process") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill the eod process");
            child.wait().expect("reap the eod process");
            panic!("eod did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    let mut stderr_text = String::new();
    match stderr {
        Some(mut reader) => reader.read_to_string(&mut stderr_text),
        None => child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut stderr_text),
    }
    .expect("read stderr");
    Run {
        code: status.code().expect("eod exited without a signal"),
        stdout,
        stderr: stderr_text,
    }
}

/// Returns the claim token of a `step start` line `claim=<token> lease_until=<time>`.
fn claim_of(run: &Run) -> String {
    let line = run.stdout.trim_end();
    line.strip_prefix("claim=")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no claim in {line:?}"))
        .to_owned()
}

/// Returns the kinds of an operation's events, oldest first.
fn event_kinds(sandbox: &Sandbox, operation: &str) -> Vec<String> {
    let events = sandbox.eod(&["--json", "events", "--operation", operation]);
    assert_code(&events, 0);
    events
        .json()
        .as_array()
        .expect("an array of events")
        .iter()
        .map(|event| event["kind"].as_str().expect("a kind").to_owned())
        .collect()
}

/// A plan whose steps run `true`, ending with the business-date roll.
const ROLLING_PLAN: &str = r#"
name = "audit"

[[steps]]
order = 10
code = "checks"
name = "Ön Denetim"
command = "true"

[[steps]]
order = 20
code = "backup"
name = "Yedekleme"
required = false
command = "true"

[[steps]]
order = 30
code = "roll_business_date"
name = "İş Tarihi Devri"
command = "true"
"#;

/// A plan of manual steps, the second one optional.
const MANUAL_PLAN: &str = r#"
name = "manual"

[[steps]]
order = 10
code = "checks"
name = "Checks"

[[steps]]
order = 20
code = "backup"
name = "Backup"
required = false
"#;

#[test]
fn set_date_gates_other_dates() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan("audit.toml", ROLLING_PLAN);

    let set = set_date(&sandbox, "grand", "2026-12-04");
    assert!(
        set.stdout
            .starts_with("property `grand`: business date 2026-12-04, set by `ayşe` at "),
        "{}",
        set.stdout
    );
    assert!(
        set.stdout.ends_with("\n  in progress: none\n"),
        "{}",
        set.stdout
    );

    let early = sandbox.eod(&[
        "run",
        "--property",
        "grand",
        "--date",
        "2026-12-06",
        "--plan",
        &plan,
    ]);
    assert_code(&early, 3);
    assert!(
        early
            .stderr
            .contains("is for 2026-12-06, but the property's business date is 2026-12-04"),
        "{}",
        early.stderr
    );

    let late = sandbox.eod(&[
        "run",
        "--property",
        "grand",
        "--date",
        "2026-12-01",
        "--plan",
        &plan,
    ]);
    assert_code(&late, 3);
    assert!(
        late.stderr
            .contains("is for 2026-12-01, but the property's business date is 2026-12-04"),
        "{}",
        late.stderr
    );

    let overridden = sandbox.eod(&[
        "--json",
        "run",
        "--property",
        "grand",
        "--date",
        "2026-12-06",
        "--plan",
        &plan,
        "--override-date",
        "the back office closes 2026-12-06 early",
    ]);
    assert_code(&overridden, 0);
    let value = overridden.json();
    assert_eq!(value["operation"]["status"], "completed");
    let id = value["operation"]["id"].to_string();

    let events = sandbox
        .eod(&["--json", "events", "--operation", &id])
        .json();
    let overrides: Vec<&Value> = events
        .as_array()
        .expect("an array of events")
        .iter()
        .filter(|event| event["kind"] == "date_override")
        .collect();
    assert_eq!(overrides.len(), 1, "{events}");
    let message = overrides[0]["message"].as_str().expect("a message");
    assert!(
        message.contains("the back office closes 2026-12-06 early"),
        "{message}"
    );
    let table = sandbox.eod(&["events", "--operation", &id]);
    assert!(table.stdout.contains("date_override"), "{}", table.stdout);

    // Only the roll of the business date itself advances it.
    let property_state = sandbox
        .eod(&["--json", "property", "show", "--property", "grand"])
        .json();
    assert_eq!(property_state["business_date"], "2026-12-04");
}

#[test]
fn step_override_date_starts_and_skips() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan("manual.toml", MANUAL_PLAN);
    for property in ["grand", "annex"] {
        let set = sandbox.eod(&[
            "property",
            "set-date",
            "--property",
            property,
            "--date",
            "2026-12-04",
        ]);
        assert_code(&set, 0);
        let open = sandbox.eod(&[
            "open",
            "--property",
            property,
            "--date",
            "2026-12-05",
            "--plan",
            &plan,
        ]);
        assert_code(&open, 0);
    }

    let start = ["step", "start", "--operation", "1", "--order", "10"];
    let without_override = sandbox.eod(&start);
    assert_code(&without_override, 3);
    assert!(
        without_override
            .stderr
            .contains("is for 2026-12-05, but the property's business date is 2026-12-04"),
        "{}",
        without_override.stderr
    );
    let started = sandbox.eod(&[&start[..], &["--override-date", "audit moved"]].concat());
    assert_code(&started, 0);
    assert!(event_kinds(&sandbox, "1").contains(&"date_override".to_owned()));

    let skip = [
        "step",
        "skip",
        "--operation",
        "2",
        "--order",
        "20",
        "--reason",
        "no backup",
    ];
    assert_code(&sandbox.eod(&skip), 3);
    let skipped = sandbox.eod(&[&skip[..], &["--override-date", "audit moved"]].concat());
    assert_code(&skipped, 0);
    assert!(event_kinds(&sandbox, "2").contains(&"date_override".to_owned()));
}

#[test]
fn catch_up_closes_missed_dates() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan("audit.toml", ROLLING_PLAN);
    set_date(&sandbox, "grand", "2026-12-01");

    let caught_up = sandbox.eod(&[
        "--json",
        "run",
        "--property",
        "grand",
        "--until",
        "2026-12-03",
        "--plan",
        &plan,
    ]);
    assert_code(&caught_up, 0);
    let runs = caught_up.json();
    let runs = runs.as_array().expect("an array of runs");
    let dates: Vec<&str> = runs
        .iter()
        .map(|run| run["operation"]["business_date"].as_str().expect("a date"))
        .collect();
    assert_eq!(dates, ["2026-12-01", "2026-12-02", "2026-12-03"]);
    for run in runs {
        assert_eq!(run["operation"]["status"], "completed");
        assert_eq!(run["outcome"], serde_json::json!({"outcome": "completed"}));
    }
    let opened: Vec<&str> = caught_up
        .stderr
        .lines()
        .filter(|line| line.starts_with("business date "))
        .collect();
    assert_eq!(
        opened,
        [
            "business date 2026-12-01: created operation 1 with 3 steps",
            "business date 2026-12-02: created operation 2 with 3 steps",
            "business date 2026-12-03: created operation 3 with 3 steps",
        ]
    );

    let property_state = sandbox.eod(&["property", "show"]);
    assert_code(&property_state, 0);
    assert!(
        property_state
            .stdout
            .starts_with("property `grand`: business date 2026-12-04, rolled by operation 3 at "),
        "{}",
        property_state.stdout
    );
    let history = sandbox
        .eod(&["--json", "history", "--property", "grand"])
        .json();
    let statuses: Vec<&str> = history
        .as_array()
        .expect("an array of operations")
        .iter()
        .map(|operation| operation["status"].as_str().expect("a status"))
        .collect();
    assert_eq!(statuses, ["completed", "completed", "completed"]);

    let again = sandbox.eod(&[
        "run",
        "--property",
        "grand",
        "--until",
        "2026-12-03",
        "--plan",
        &plan,
    ]);
    assert_code(&again, 0);
    assert_eq!(again.stdout, "");
    assert!(
        again.stderr.contains(
            "the business date of `grand` is 2026-12-04, which is after 2026-12-03, so no date \
             was due and nothing ran"
        ),
        "{}",
        again.stderr
    );
}

#[test]
fn status_shows_plan_and_business_date() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan("audit.toml", ROLLING_PLAN);
    set_date(&sandbox, "grand", "2026-12-01");
    let run = sandbox.eod(&[
        "run",
        "--property",
        "grand",
        "--date",
        "2026-12-01",
        "--plan",
        &plan,
    ]);
    assert_code(&run, 0);

    let status = sandbox.eod(&["status", "--property", "grand", "--date", "2026-12-01"]);
    assert_code(&status, 0);
    let fingerprint = Plan::from_toml(ROLLING_PLAN, "audit.toml")
        .expect("parse the plan")
        .fingerprint();
    let lines: Vec<&str> = status.stdout.lines().collect();
    assert!(
        lines[0].starts_with(
            "operation 1: property `grand`, business date 2026-12-01, plan `audit`, status \
             completed, finished at "
        ),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], format!("plan `audit`, fingerprint {fingerprint}"));
    assert!(
        lines[2]
            .starts_with("property `grand`: business date 2026-12-02, rolled by operation 1 at "),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "  in progress: none");
    assert_eq!(
        lines[4],
        "ORDER  CODE                STATUS     ATTEMPTS  REQUIRED  NAME"
    );
    // Each step ran once without failing, so no attempt is listed.
    assert_eq!(lines.len(), 8, "{}", status.stdout);

    let value = sandbox
        .eod(&["--json", "status", "--operation", "1"])
        .json();
    assert_eq!(value["plan_fingerprint"], fingerprint.as_str());
    assert_eq!(value["property"]["business_date"], "2026-12-02");
    assert_eq!(value["property"]["date_source"], "rolled by operation 1");
    let attempts = value["steps"][0]["attempt_history"]
        .as_array()
        .expect("an attempt history");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["outcome"], "completed");
}

#[test]
fn catch_up_stops_at_failed_step() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan(
        "audit.toml",
        &ROLLING_PLAN.replacen(
            "command = \"true\"",
            "command = \"[ \\\"$EOD_BUSINESS_DATE\\\" != 2026-12-02 ] || false\"",
            1,
        ),
    );
    set_date(&sandbox, "grand", "2026-12-01");

    let stopped = sandbox.eod(&[
        "run",
        "--property",
        "grand",
        "--until",
        "2026-12-03",
        "--plan",
        &plan,
    ]);
    assert_code(&stopped, 4);
    assert!(
        stopped.stderr.contains("operation 1 completed\n"),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped
            .stderr
            .contains("error: step 10 (`checks`) of operation 2 failed: "),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains(&format!(
            "run `eod --db {} run --until 2026-12-03 --property grand --plan {plan}` again",
            sandbox.db().display()
        )),
        "{}",
        stopped.stderr
    );

    let history = sandbox
        .eod(&["--json", "history", "--property", "grand"])
        .json();
    let days: Vec<(&str, &str)> = history
        .as_array()
        .expect("an array of operations")
        .iter()
        .map(|operation| {
            (
                operation["business_date"].as_str().expect("a date"),
                operation["status"].as_str().expect("a status"),
            )
        })
        .collect();
    assert_eq!(
        days,
        [("2026-12-02", "failed"), ("2026-12-01", "completed")]
    );
    let unopened = sandbox.eod(&["status", "--property", "grand", "--date", "2026-12-03"]);
    assert_code(&unopened, 3);

    let property_state = sandbox
        .eod(&["--json", "property", "show", "--property", "grand"])
        .json();
    assert_eq!(property_state["business_date"], "2026-12-02");
}

#[test]
fn release_frees_abandoned_operation() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan("manual.toml", MANUAL_PLAN);
    for date in ["2026-12-04", "2026-12-05"] {
        let open = sandbox.eod(&[
            "open",
            "--property",
            "grand",
            "--date",
            date,
            "--plan",
            &plan,
        ]);
        assert_code(&open, 0);
    }
    let abandoned = sandbox.eod(&[
        "step",
        "start",
        "--operation",
        "1",
        "--order",
        "10",
        "--lease-secs",
        "1",
        "--actor",
        "terminal-3",
    ]);
    assert_code(&abandoned, 0);

    let blocked = sandbox.eod(&["step", "start", "--operation", "2", "--order", "10"]);
    assert_code(&blocked, 3);
    assert!(
        blocked.stderr.contains(
            "the operation of property `grand` for 2026-12-05 cannot start: operation 1 \
             (business date 2026-12-04)"
        ),
        "{}",
        blocked.stderr
    );
    let property_state = sandbox.eod(&["property", "show", "--property", "grand"]);
    assert!(
        property_state
            .stdout
            .contains("\n  in progress: operation 1 (business date 2026-12-04), started at "),
        "{}",
        property_state.stdout
    );
    assert!(
        property_state
            .stdout
            .contains(" by `terminal-3`, no runner\n"),
        "{}",
        property_state.stdout
    );

    let release = [
        "release",
        "--operation",
        "1",
        "--reason",
        "terminal 3 was shut down",
    ];
    let while_claimed = sandbox.eod(&release);
    assert_code(&while_claimed, 3);
    assert!(
        while_claimed.stderr.contains(
            "operation 1 cannot be released while the claim on step 10 of `terminal-3` holds it"
        ),
        "{}",
        while_claimed.stderr
    );

    std::thread::sleep(Duration::from_millis(1100));
    let released = sandbox.eod(&release);
    assert_code(&released, 0);
    assert!(
        released.stdout.ends_with("\n  in progress: none\n"),
        "{}",
        released.stdout
    );
    assert!(
        released.stderr.contains("released operation 1: "),
        "{}",
        released.stderr
    );
    assert_eq!(
        event_kinds(&sandbox, "1").last().map(String::as_str),
        Some("released")
    );

    let again = sandbox.eod(&release);
    assert_code(&again, 3);
    assert!(
        again.stderr.contains("nothing to release"),
        "{}",
        again.stderr
    );

    let next = sandbox.eod(&["step", "start", "--operation", "2", "--order", "10"]);
    assert_code(&next, 0);
}

#[test]
fn racing_runs_one_wins() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan(
        "slow.toml",
        r#"
name = "slow"

[[steps]]
order = 10
code = "post"
name = "Posting"
command = "sleep 1"

[[steps]]
order = 20
code = "close"
name = "Close"
command = "sleep 1"
"#,
    );
    let run = |actor: &str| {
        sandbox.spawn(&[
            "run",
            "--date",
            "2026-12-04",
            "--plan",
            &plan,
            "--actor",
            actor,
        ])
    };
    let alpha = run("alpha");
    let beta = run("beta");
    let alpha = finish(alpha, None, Duration::from_secs(30));
    let beta = finish(beta, None, Duration::from_secs(30));

    let (winner, loser, winner_actor) = match (alpha.code, beta.code) {
        (0, 3) => (&alpha, &beta, "alpha"),
        (3, 0) => (&beta, &alpha, "beta"),
        _ => panic!("expected one run to exit 0 and one 3\nalpha: {alpha:?}\nbeta: {beta:?}"),
    };
    assert!(
        winner.stderr.ends_with("operation 1 completed\n"),
        "{}",
        winner.stderr
    );
    assert!(
        loser
            .stderr
            .contains("error: operation 1 (2026-12-04) is already running: "),
        "{}",
        loser.stderr
    );
    assert!(
        loser
            .stderr
            .contains(&format!("`{winner_actor}` (process ")),
        "{}",
        loser.stderr
    );
    assert_eq!(loser.stdout, "");

    let rerun = sandbox.eod(&[
        "run",
        "--date",
        "2026-12-04",
        "--plan",
        &plan,
        "--actor",
        "gamma",
    ]);
    assert_code(&rerun, 0);
    assert!(
        rerun.stderr.contains("operation 1 already finished at "),
        "{}",
        rerun.stderr
    );
    assert!(
        rerun
            .stderr
            .contains(&format!("finished by `{winner_actor}`; nothing was run")),
        "{}",
        rerun.stderr
    );
    let kinds = event_kinds(&sandbox, "1");
    let starts = kinds.iter().filter(|kind| *kind == "started").count();
    assert_eq!(starts, 2, "each step started once: {kinds:?}");
}

#[test]
fn retry_policy_attempts_in_status() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan(
        "flaky.toml",
        r#"
name = "flaky"

[[steps]]
order = 10
code = "post"
name = "Posting"
# Fails with exit code 1, then 2, then succeeds, counting its runs in the file `count`.
command = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ] || exit $n"
retry = { max_attempts = 3, delay_seconds = 0 }
"#,
    );

    let run = sandbox.eod(&["run", "--date", "2026-12-04", "--plan", &plan]);
    assert_code(&run, 0);
    let retries: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains(" is retried in "))
        .collect();
    assert_eq!(
        retries,
        [
            "step 10 `post` (Posting) is retried in 0.00s, as attempt 2 of at most 3 in this run",
            "step 10 `post` (Posting) is retried in 0.00s, as attempt 3 of at most 3 in this run",
        ]
    );

    let status = sandbox.eod(&["status", "--date", "2026-12-04"]);
    assert_code(&status, 0);
    let lines: Vec<&str> = status.stdout.lines().collect();
    let heading = lines
        .iter()
        .position(|line| *line == "attempts of step 10 `post` (Posting):")
        .unwrap_or_else(|| panic!("no attempts heading in\n{}", status.stdout));
    let rows = &lines[heading + 2..];
    assert_eq!(rows.len(), 3, "{}", status.stdout);
    let command = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ] || exit $n";
    for (row, (number, outcome)) in
        rows.iter()
            .zip([(1, "failed"), (2, "failed"), (3, "completed")])
    {
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(fields[0], number.to_string(), "{row}");
        assert_eq!(fields[3], outcome, "{row}");
    }
    assert!(
        rows[0].ends_with(&format!("`{command}` exited with code 1")),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].ends_with(&format!("`{command}` exited with code 2")),
        "{}",
        rows[1]
    );
    assert!(rows[2].ends_with("completed   ayşe"), "{}", rows[2]);

    let history = sandbox
        .eod(&["--json", "status", "--operation", "1"])
        .json();
    let attempts = history["steps"][0]["attempt_history"]
        .as_array()
        .expect("an attempt history");
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[2]["outcome"], "completed");
    assert_eq!(attempts[2]["error"], Value::Null);

    let kinds = event_kinds(&sandbox, "1");
    assert_eq!(kinds.iter().filter(|kind| *kind == "started").count(), 3);
    assert_eq!(kinds.iter().filter(|kind| *kind == "failed").count(), 2);
}

#[test]
fn watch_prints_other_process_changes() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan("manual.toml", MANUAL_PLAN);
    for property in ["grand", "annex"] {
        let open = sandbox.eod(&[
            "open",
            "--property",
            property,
            "--date",
            "2026-12-04",
            "--plan",
            &plan,
        ]);
        assert_code(&open, 0);
    }

    // Each watcher reports on stderr once it has read the last change, so the changes below
    // come after its starting point.
    let mut watchers = Vec::new();
    for json in [false, true] {
        let mut args = vec!["watch", "--count", "2", "--property", "grand"];
        if json {
            args.insert(0, "--json");
        }
        let mut child = sandbox.spawn(&args);
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut ready = String::new();
        stderr
            .read_line(&mut ready)
            .expect("read the first stderr line");
        assert!(
            ready.starts_with("watching `") && ready.contains("for changes of property `grand`"),
            "{ready}"
        );
        watchers.push((child, stderr));
    }

    let other = sandbox.eod(&["step", "start", "--operation", "2", "--order", "10"]);
    assert_code(&other, 0);
    let started = sandbox.eod(&["step", "start", "--operation", "1", "--order", "10"]);
    assert_code(&started, 0);
    let completed = sandbox.eod(&[
        "step",
        "complete",
        "--operation",
        "1",
        "--order",
        "10",
        "--claim",
        &claim_of(&started),
    ]);
    assert_code(&completed, 0);

    let mut watchers = watchers.into_iter();
    let (child, stderr) = watchers.next().expect("the text watcher");
    let text = finish(child, Some(stderr), Duration::from_secs(20));
    assert_code(&text, 0);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text.stdout);
    assert!(
        lines[0].ends_with(
            "  grand  2026-12-04  operation 1  started  step 10  pending -> running  by `ayşe`: \
             attempt 1"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(
            "  grand  2026-12-04  operation 1  completed  step 10  running -> completed  by `ayşe`"
        ),
        "{}",
        lines[1]
    );

    let (child, stderr) = watchers.next().expect("the JSON watcher");
    let json = finish(child, Some(stderr), Duration::from_secs(20));
    assert_code(&json, 0);
    let changes: Vec<Value> = json
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(changes.len(), 2, "{}", json.stdout);
    let kinds: Vec<&str> = changes
        .iter()
        .map(|change| change["kind"].as_str().expect("a kind"))
        .collect();
    assert_eq!(kinds, ["started", "completed"]);
    for change in &changes {
        assert_eq!(change["property"], "grand");
        assert_eq!(change["operation"], 1);
        assert_eq!(change["business_date"], "2026-12-04");
        assert_eq!(change["step_order"], 10);
        assert_eq!(change["actor"], "ayşe");
    }
    assert!(
        changes[0]["change"].as_u64() < changes[1]["change"].as_u64(),
        "{}",
        json.stdout
    );
}

#[test]
fn property_show_lists_properties() {
    let sandbox = Sandbox::new();
    let missing = sandbox.eod(&["property", "show"]);
    assert_code(&missing, 3);
    assert!(!sandbox.db().exists());

    for (property, date) in [("grand", "2026-12-04"), ("annex", "2026-12-09")] {
        let set = sandbox.eod(&[
            "property",
            "set-date",
            "--property",
            property,
            "--date",
            date,
        ]);
        assert_code(&set, 0);
    }
    let property_state = sandbox.eod(&["--json", "property", "show"]);
    assert_code(&property_state, 0);
    let properties = property_state.json();
    let listed: Vec<(&str, &str)> = properties
        .as_array()
        .expect("an array of properties")
        .iter()
        .map(|property| {
            (
                property["property"].as_str().expect("a property"),
                property["business_date"].as_str().expect("a date"),
            )
        })
        .collect();
    assert_eq!(listed, [("annex", "2026-12-09"), ("grand", "2026-12-04")]);
    assert_eq!(properties[0]["date_source"], "set by `ayşe`");
    assert_eq!(properties[0]["in_progress"], Value::Null);

    let unknown = sandbox.eod(&["property", "show", "--property", "harbor"]);
    assert_code(&unknown, 0);
    assert_eq!(
        unknown.stdout,
        "property `harbor`: no business date set, so operations of every date may start\n  in \
         progress: none\n"
    );
}

#[test]
fn run_date_options_are_checked() {
    let sandbox = Sandbox::new();
    for args in [
        &["run"][..],
        &["run", "--date", "2026-12-04", "--until", "2026-12-05"],
        &["run", "--until", "2026-12-05", "--override-date", "late"],
    ] {
        assert_code(&sandbox.eod(args), 2);
    }

    // Invalid input creates no database file.
    let bad_until = sandbox.eod(&["run", "--until", "2026-12-32"]);
    assert_code(&bad_until, 3);
    assert!(
        bad_until
            .stderr
            .starts_with("error: invalid business date `2026-12-32`"),
        "{}",
        bad_until.stderr
    );
    let bad_date = sandbox.eod(&["property", "set-date", "--date", "2026-02-30"]);
    assert_code(&bad_date, 3);
    let blank_reason = sandbox.eod(&["run", "--date", "2026-12-04", "--override-date", " "]);
    assert_code(&blank_reason, 3);
    assert!(!sandbox.db().exists());

    let open = sandbox.eod(&["open", "--date", "2026-12-04"]);
    assert_code(&open, 0);
    let no_date = sandbox.eod(&["run", "--until", "2026-12-05"]);
    assert_code(&no_date, 3);
    assert!(
        no_date.stderr.contains(&format!(
            "eod --db {} property set-date",
            sandbox.db().display()
        )),
        "{}",
        no_date.stderr
    );
}
