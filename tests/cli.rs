//! The `eod` command-line tool, run as a built binary against real database files in temporary
//! directories: every subcommand, the global options and their defaults, the JSON schema, the
//! stdout/stderr split, the error messages and the documented exit codes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eodstore::{ConcurrencyMode, OperationId, Store, StoreOptions};
use serde_json::Value;

#[path = "common/sandbox.rs"]
mod sandbox;

use sandbox::{Run, Sandbox, assert_code, execute};

/// Returns the claim token of a `step start` line `claim=<token> lease_until=<time>`.
fn claim_of(run: &Run) -> String {
    let line = run.stdout.trim_end();
    let token = line
        .strip_prefix("claim=")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no claim in {line:?}"));
    token.to_owned()
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn is_rfc3339_utc(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| text.ends_with('Z') && text.parse::<jiff::Timestamp>().is_ok())
}

const STANDARD_TABLE: &str = "\
ORDER  CODE                STATUS     ATTEMPTS  REQUIRED  NAME
    1  pre_audit_checks    pending           0  yes       Pre-audit checks
    2  no_shows            pending           0  yes       No-show processing
    3  departures_check    pending           0  no        Departures check
    4  room_rate_check     pending           0  no        Room rate verification
    5  post_room_charges   pending           0  yes       Room and tax posting
    6  folio_balance       pending           0  yes       Folio balancing
    7  cashier_close       pending           0  no        Cashier close
    8  reports             pending           0  no        Reports
    9  backup              pending           0  no        Backup
   10  roll_business_date  pending           0  yes       Business date roll
";

const TURKISH_PLAN: &str = r#"
name = "küçük otel"

[[steps]]
order = 10
code = "checks"
name = "Ön Denetim Kontrolleri"

[[steps]]
order = 20
code = "cash"
name = "Kasa Kapanışı — ğüşıöç ĞÜŞİÖÇ"
required = false

[[steps]]
order = 30
code = "roll"
name = "Gün Sonu İşlemi"
"#;

#[test]
fn open_prints_standard_table() {
    let sandbox = Sandbox::new();
    let run = sandbox.eod(&["open", "--date", "2026-12-04"]);
    assert_code(&run, 0);
    assert_eq!(
        run.stdout,
        format!(
            "operation 1: property `default`, business date 2026-12-04, plan `standard`, status open\n{STANDARD_TABLE}"
        )
    );
    assert_eq!(run.stderr, "created operation 1 with 10 steps\n");

    let again = sandbox.eod(&["open", "--date", "2026-12-04"]);
    assert_code(&again, 0);
    assert_eq!(again.stdout, run.stdout);
    assert_eq!(again.stderr, "operation 1 already exists\n");
}

#[test]
fn open_json_matches_schema() {
    let sandbox = Sandbox::new();
    let first = sandbox
        .eod(&[
            "--json",
            "open",
            "--date",
            "2026-12-04",
            "--property",
            "grand",
        ])
        .json();
    assert_eq!(keys(&first), ["operation", "steps"]);

    let operation = &first["operation"];
    assert_eq!(
        keys(operation),
        [
            "business_date",
            "created_at",
            "finished_at",
            "id",
            "plan",
            "property",
            "status"
        ]
    );
    assert_eq!(operation["id"], 1);
    assert_eq!(operation["property"], "grand");
    assert_eq!(operation["business_date"], "2026-12-04");
    assert_eq!(operation["status"], "open");
    assert_eq!(operation["plan"], "standard");
    assert!(is_rfc3339_utc(&operation["created_at"]), "{operation}");
    assert_eq!(operation["finished_at"], Value::Null);

    let steps = first["steps"].as_array().expect("steps array");
    assert_eq!(steps.len(), 10);
    let step = &steps[0];
    assert_eq!(
        keys(step),
        [
            "actor",
            "attempts",
            "code",
            "created",
            "finished_at",
            "last_error",
            "name",
            "order",
            "required",
            "started_at",
            "status"
        ]
    );
    assert_eq!(step["order"], 1);
    assert_eq!(step["code"], "pre_audit_checks");
    assert_eq!(step["name"], "Pre-audit checks");
    assert_eq!(step["required"], true);
    assert_eq!(step["status"], "pending");
    assert_eq!(step["attempts"], 0);
    assert_eq!(step["started_at"], Value::Null);
    assert_eq!(step["actor"], Value::Null);
    assert_eq!(steps[2]["required"], false);
    assert!(steps.iter().all(|step| step["created"] == true));

    let second = sandbox
        .eod(&[
            "open",
            "--date",
            "2026-12-04",
            "--property",
            "grand",
            "--json",
        ])
        .json();
    assert_eq!(second["operation"]["id"], 1);
    let steps = second["steps"].as_array().expect("steps array");
    assert!(steps.iter().all(|step| step["created"] == false));
}

#[test]
fn open_turkish_names_round_trip() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan("plan.toml", TURKISH_PLAN);
    let run = sandbox.eod(&["--json", "open", "--date", "2026-12-04", "--plan", &plan]);
    assert_code(&run, 0);
    let value = run.json();
    assert_eq!(value["operation"]["plan"], "küçük otel");
    let names: Vec<&str> = value["steps"]
        .as_array()
        .expect("steps array")
        .iter()
        .map(|step| step["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "Ön Denetim Kontrolleri",
            "Kasa Kapanışı — ğüşıöç ĞÜŞİÖÇ",
            "Gün Sonu İşlemi"
        ]
    );

    let table = sandbox.eod(&["status", "--date", "2026-12-04"]);
    assert_code(&table, 0);
    assert_eq!(
        table.stdout,
        "\
operation 1: property `default`, business date 2026-12-04, plan `küçük otel`, status open
plan `küçük otel`, fingerprint e6525766
property `default`: no business date set, so operations of every date may start
  in progress: none
ORDER  CODE    STATUS     ATTEMPTS  REQUIRED  NAME
   10  checks  pending           0  yes       Ön Denetim Kontrolleri
   20  cash    pending           0  no        Kasa Kapanışı — ğüşıöç ĞÜŞİÖÇ
   30  roll    pending           0  yes       Gün Sonu İşlemi
"
    );
}

#[test]
fn global_options_before_and_after_command() {
    let sandbox = Sandbox::new();
    let db = sandbox.path("custom.redb");
    let db = db.to_str().expect("UTF-8 path");

    let before = sandbox.eod_raw(&["--db", db, "--json", "open", "--date", "2026-12-04"]);
    assert_code(&before, 0);
    assert_eq!(before.json()["operation"]["id"], 1);

    let after = sandbox.eod_raw(&["status", "--date", "2026-12-04", "--db", db, "--json"]);
    assert_code(&after, 0);
    assert_eq!(after.json()["operation"]["id"], 1);

    let nested = sandbox.eod_raw(&["step", "skip", "--json", "--operation", "1", "--order", "3"]);
    assert_code(&nested, 2);

    let nested = sandbox.eod_raw(&[
        "step",
        "skip",
        "--operation",
        "1",
        "--order",
        "3",
        "--reason",
        "no departures",
        "--db",
        db,
        "--json",
    ]);
    assert_code(&nested, 0);
    assert_eq!(nested.json()["step"]["status"], "skipped");
    assert!(!sandbox.db().exists(), "the default path was used");
}

#[test]
fn database_path_from_eod_db() {
    let sandbox = Sandbox::new();
    let db = sandbox.path("from-env.redb");
    let run = execute(
        sandbox
            .command()
            .env("EOD_DB", &db)
            .args(["open", "--date", "2026-12-04"]),
    );
    assert_code(&run, 0);
    assert!(db.exists());
    assert!(!sandbox.db().exists());

    // `--db` wins over `EOD_DB`.
    let flag = sandbox.path("from-flag.redb");
    let run = execute(
        sandbox
            .command()
            .env("EOD_DB", &db)
            .arg("--db")
            .arg(&flag)
            .args(["open", "--date", "2026-12-05"]),
    );
    assert_code(&run, 0);
    assert!(flag.exists());
}

#[test]
fn database_defaults_to_working_directory() {
    let sandbox = Sandbox::new();
    let run = sandbox.eod_raw(&["open", "--date", "2026-12-04"]);
    assert_code(&run, 0);
    assert!(sandbox.db().exists(), "./eod.redb was not created");
}

#[test]
fn run_failure_then_fix_resumes() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan(
        "plan.toml",
        r#"
name = "commands"

[[steps]]
order = 10
code = "checks"
name = "Ön Denetim"
command = "echo checks ok"

[[steps]]
order = 20
code = "post"
name = "Oda Kayıtları"
command = "echo posting; test -f fixed || { echo 'posting broken' >&2; exit 3; }"
"#,
    );

    let failed = sandbox.eod_raw(&["run", "--date", "2026-12-04", "--plan", &plan]);
    assert_code(&failed, 4);
    assert_eq!(
        failed.stdout,
        "\
operation 1: property `default`, business date 2026-12-04, plan `commands`, status failed
ORDER  CODE    STATUS     ATTEMPTS  REQUIRED  NAME
   10  checks  completed         1  yes       Ön Denetim
   20  post    failed            1  yes       Oda Kayıtları
"
    );
    let error = "`echo posting; test -f fixed || { echo 'posting broken' >&2; exit 3; }` exited with code 3";
    let lines: Vec<&str> = failed.stderr.lines().collect();
    assert_eq!(lines[0], "created operation 1 with 2 steps");
    assert_eq!(lines[1], "step 10 `checks` (Ön Denetim) started, attempt 1");
    assert!(
        lines[2].starts_with("step 10 `checks` (Ön Denetim) completed in "),
        "{}",
        lines[2]
    );
    assert!(lines[2].ends_with('s'), "{}", lines[2]);
    assert_eq!(
        lines[3],
        "step 20 `post` (Oda Kayıtları) started, attempt 1"
    );
    assert!(
        lines[4].starts_with("step 20 `post` (Oda Kayıtları) failed after "),
        "{}",
        lines[4]
    );
    assert_eq!(
        lines[5],
        format!("error: step 20 (`post`) of operation 1 failed: {error}")
    );
    assert_eq!(lines[6], "output tail:");
    assert_eq!(lines[7], "  | posting");
    assert_eq!(lines[8], "  | posting broken");
    assert_eq!(
        lines[9],
        format!(
            "fix the cause and run `eod run --date 2026-12-04 --property default --plan {plan}` \
             again, which retries the step; or return it to pending with `eod step retry \
             --operation 1 --order 20`, do the step yourself and record it with `step start` and \
             `step complete`"
        )
    );
    assert_eq!(lines.len(), 10);

    // The error and the output tail are stored on the step.
    let step = &sandbox.store().steps(OperationId(1)).expect("steps")[1];
    assert_eq!(step.last_error.as_deref(), Some(error));
    assert_eq!(
        step.output_tail.as_deref(),
        Some("posting\nposting broken\n")
    );

    std::fs::write(sandbox.path("fixed"), "").expect("write the fix marker");
    let resumed = sandbox.eod(&["--json", "run", "--date", "2026-12-04", "--plan", &plan]);
    assert_code(&resumed, 0);
    let value = resumed.json();
    assert_eq!(
        value["outcome"],
        serde_json::json!({"outcome": "completed"})
    );
    assert_eq!(value["operation"]["status"], "completed");
    assert!(is_rfc3339_utc(&value["operation"]["finished_at"]));
    let steps = value["steps"].as_array().expect("steps array");
    assert_eq!(steps[0]["attempts"], 1, "the completed step ran again");
    assert_eq!(steps[1]["attempts"], 2);
    assert_eq!(steps[1]["status"], "completed");
    assert!(steps.iter().all(|step| step["created"] == false));
    assert!(
        resumed
            .stderr
            .contains("step 10 `checks` (Ön Denetim) was already completed\n")
    );
    assert!(
        resumed.stderr.ends_with("operation 1 completed\n"),
        "{}",
        resumed.stderr
    );
}

#[test]
fn run_kills_command_after_timeout() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan(
        "plan.toml",
        r#"
name = "slow"

[[steps]]
order = 1
code = "slow"
name = "Yavaş Adım"
required = false
command = "echo started; sleep 30"
timeout_seconds = 1
"#,
    );
    let began = Instant::now();
    let run = sandbox.eod_raw(&["--json", "run", "--date", "2026-12-04", "--plan", &plan]);
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "the command was not killed"
    );
    assert_code(&run, 4);
    let value = run.json();
    assert_eq!(
        value["outcome"],
        serde_json::json!({
            "outcome": "failed",
            "order": 1,
            "code": "slow",
            "error": "`echo started; sleep 30` timed out after 1 s and was killed"
        })
    );
    assert_eq!(value["steps"][0]["created"], true);
    assert_eq!(
        value["steps"][0]["last_error"],
        "`echo started; sleep 30` timed out after 1 s and was killed"
    );
    assert!(run.stderr.contains("  | started\n"), "{}", run.stderr);
    // The step is optional, so skipping it is offered.
    assert!(
        run.stderr.contains(
            "; or, since it is optional, skip it with `eod step skip --operation 1 --order 1 --reason TEXT`\n"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn run_pauses_at_manual_step() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan(
        "plan.toml",
        r#"
name = "mixed"

[[steps]]
order = 1
code = "auto"
name = "Otomatik"
command = "test -n \"$EOD_DB\" && test -n \"$EOD_OPERATION_ID\""

[[steps]]
order = 2
code = "count_cash"
name = "Kasa Sayımı"

[[steps]]
order = 3
code = "after"
name = "Sonra"
command = "true"
"#,
    );
    let paused = sandbox.eod_raw(&["run", "--date", "2026-12-04", "--plan", &plan, "--json"]);
    assert_code(&paused, 5);
    let value = paused.json();
    assert_eq!(
        value["outcome"],
        serde_json::json!({"outcome": "paused", "order": 2, "code": "count_cash"})
    );
    assert_eq!(value["steps"][0]["status"], "completed");
    assert_eq!(value["steps"][1]["status"], "pending");
    assert_eq!(
        paused.stderr.lines().last(),
        Some(
            format!(
                "paused at step 2 (`count_cash`, Kasa Sayımı) of operation 1, a manual step \
                 without a command: run `eod step start --operation 1 --order 2`, do the work, \
                 then run `eod step complete --operation 1 --order 2 --claim TOKEN` with the \
                 printed claim token; then run `eod run --date 2026-12-04 --property default \
                 --plan {plan}` again"
            )
            .as_str()
        )
    );

    let started = sandbox.eod(&["step", "start", "--operation", "1", "--order", "2"]);
    assert_code(&started, 0);
    let claim = claim_of(&started);

    // A run while the manual step is running pauses at it again and names its holder.
    let waiting = sandbox.eod_raw(&["run", "--date", "2026-12-04", "--plan", &plan]);
    assert_code(&waiting, 5);
    assert!(
        waiting
            .stderr
            .contains("it is running, started by `ayşe`; its holder completes it"),
        "{}",
        waiting.stderr
    );

    let completed = sandbox.eod(&[
        "step",
        "complete",
        "--operation",
        "1",
        "--order",
        "2",
        "--claim",
        &claim,
    ]);
    assert_code(&completed, 0);
    let finished = sandbox.eod_raw(&["run", "--date", "2026-12-04", "--plan", &plan]);
    assert_code(&finished, 0);
    assert!(
        finished
            .stdout
            .ends_with("    3  after       completed         1  yes       Sonra\n"),
        "{}",
        finished.stdout
    );
}

#[test]
fn run_rejects_zero_lease() {
    let sandbox = Sandbox::new();
    let run = sandbox.eod(&["run", "--date", "2026-12-04", "--lease-secs", "0"]);
    assert_code(&run, 3);
    assert_eq!(
        run.stderr,
        "error: invalid --lease-secs `0`: a lease longer than zero and at most 7 days (604800 seconds)\n"
    );
}

#[test]
fn run_standard_plan_pauses_first() {
    let sandbox = Sandbox::new();
    let run = sandbox.eod_raw(&["run", "--date", "2026-12-04", "--lease-secs", "60"]);
    assert_code(&run, 5);
    assert_eq!(
        run.stderr,
        "created operation 1 with 10 steps\n\
         paused at step 1 (`pre_audit_checks`, Pre-audit checks) of operation 1, a manual step \
         without a command: run `eod step start --operation 1 --order 1`, do the work, then run \
         `eod step complete --operation 1 --order 1 --claim TOKEN` with the printed claim token; \
         then run `eod run --date 2026-12-04 --property default` again\n"
    );
    assert_eq!(
        run.stdout,
        format!(
            "operation 1: property `default`, business date 2026-12-04, plan `standard`, status open\n{STANDARD_TABLE}"
        )
    );
}

#[test]
fn run_passes_absolute_database_path() {
    let sandbox = Sandbox::new();
    let plan = sandbox.plan(
        "plan.toml",
        r#"
name = "env"

[[steps]]
order = 1
code = "show_db"
name = "Veritabanı"
command = "echo \"$EOD_DB\"; cd /; test -f \"$EOD_DB\""
"#,
    );
    let run = sandbox.eod_raw(&[
        "--db",
        "relative.redb",
        "run",
        "--date",
        "2026-12-04",
        "--plan",
        &plan,
    ]);
    assert_code(&run, 0);

    let absolute = sandbox
        .dir
        .path()
        .canonicalize()
        .expect("canonical sandbox path")
        .join("relative.redb");
    let store = Store::open(&absolute).expect("open the database");
    let step = &store.steps(OperationId(1)).expect("steps")[0];
    assert_eq!(step.output_tail, Some(format!("{}\n", absolute.display())));
}

#[test]
fn step_start_prints_claim_and_lease() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);

    let text = sandbox.eod(&["step", "start", "--operation", "1", "--order", "1"]);
    assert_code(&text, 0);
    let line = text.stdout.trim_end();
    let (claim, lease) = line.split_once(' ').expect("two fields");
    let token = claim.strip_prefix("claim=").expect("claim= prefix");
    assert_eq!(token.len(), 32, "{line}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
    let lease = lease
        .strip_prefix("lease_until=")
        .expect("lease_until= prefix");
    assert!(is_rfc3339_utc(&Value::from(lease)), "{line}");
    assert_eq!(text.stdout.lines().count(), 1);

    // Manual claims record no process, so they end by lease only.
    let step = &sandbox.store().steps(OperationId(1)).expect("steps")[0];
    let stored = step.claim.as_ref().expect("a claim");
    assert_eq!(stored.token, token);
    assert_eq!(stored.process, None);
    assert_eq!(stored.actor, "ayşe");
    let started_at = step.started_at.expect("a start time");
    assert_eq!(
        stored.lease_until.duration_since(started_at),
        eodstore::DEFAULT_LEASE
    );

    assert_code(
        &sandbox.eod(&[
            "step",
            "complete",
            "--operation",
            "1",
            "--order",
            "1",
            "--claim",
            token,
        ]),
        0,
    );
    let json = sandbox.eod(&[
        "--json",
        "step",
        "start",
        "--operation",
        "1",
        "--order",
        "2",
        "--lease-secs",
        "120",
    ]);
    assert_code(&json, 0);
    let value = json.json();
    assert_eq!(keys(&value), ["claim", "lease_until", "step"]);
    assert_eq!(value["step"]["order"], 2);
    assert_eq!(value["step"]["status"], "running");
    assert_eq!(value["step"]["attempts"], 1);
    assert_eq!(value["step"]["actor"], "ayşe");
    assert!(value["step"].get("created").is_none());
    let started: jiff::Timestamp = value["step"]["started_at"]
        .as_str()
        .expect("time")
        .parse()
        .expect("RFC 3339");
    let until: jiff::Timestamp = value["lease_until"]
        .as_str()
        .expect("time")
        .parse()
        .expect("RFC 3339");
    assert_eq!(
        until.duration_since(started),
        jiff::SignedDuration::from_secs(120)
    );
}

#[test]
fn step_complete_wrong_claim_rejected() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);
    assert_code(
        &sandbox.eod(&[
            "step",
            "start",
            "--operation",
            "1",
            "--order",
            "1",
            "--actor",
            "mehmet",
        ]),
        0,
    );

    let run = sandbox.eod(&[
        "step",
        "complete",
        "--operation",
        "1",
        "--order",
        "1",
        "--claim",
        "nope",
    ]);
    assert_code(&run, 3);
    assert_eq!(
        run.stderr,
        "error: step 1 of operation 1 is running, claimed by `mehmet`; the given claim `nope` is \
         not its current claim, so only the current holder may finish it\n"
    );
    assert_eq!(run.stdout, "");
    let fail = sandbox.eod(&[
        "step",
        "fail",
        "--operation",
        "1",
        "--order",
        "1",
        "--claim",
        "nope",
        "--reason",
        "x",
    ]);
    assert_code(&fail, 3);
    let step = &sandbox.store().steps(OperationId(1)).expect("steps")[0];
    assert_eq!(step.status, eodstore::StepStatus::Running);
}

#[test]
fn step_fail_retry_skip_cycle() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);
    for order in ["1", "2"] {
        let started = sandbox.eod(&["step", "start", "--operation", "1", "--order", order]);
        assert_code(&started, 0);
        let claim = claim_of(&started);
        let done = sandbox.eod(&[
            "step",
            "complete",
            "--operation",
            "1",
            "--order",
            order,
            "--claim",
            &claim,
        ]);
        assert_code(&done, 0);
    }

    let started = sandbox.eod(&["step", "start", "--operation", "1", "--order", "3"]);
    let claim = claim_of(&started);
    let failed = sandbox.eod(&[
        "step",
        "fail",
        "--operation",
        "1",
        "--order",
        "3",
        "--claim",
        &claim,
        "--reason",
        "yazıcı çalışmıyor",
    ]);
    assert_code(&failed, 0);
    assert_eq!(
        failed.stdout,
        "\
ORDER  CODE              STATUS     ATTEMPTS  REQUIRED  NAME
    3  departures_check  failed            1  no        Departures check
"
    );

    let retried = sandbox.eod(&[
        "--json",
        "step",
        "retry",
        "--operation",
        "1",
        "--order",
        "3",
    ]);
    assert_code(&retried, 0);
    let step = &retried.json()["step"];
    assert_eq!(step["status"], "pending");
    assert_eq!(step["last_error"], "yazıcı çalışmıyor");

    let skipped = sandbox.eod(&[
        "--json",
        "step",
        "skip",
        "--operation",
        "1",
        "--order",
        "3",
        "--reason",
        "bugün gerek yok",
    ]);
    assert_code(&skipped, 0);
    let step = &skipped.json()["step"];
    assert_eq!(step["status"], "skipped");
    assert_eq!(step["last_error"], "bugün gerek yok");
    assert!(is_rfc3339_utc(&step["finished_at"]));

    let retry_again = sandbox.eod(&["step", "retry", "--operation", "1", "--order", "3"]);
    assert_code(&retry_again, 3);
    assert_eq!(
        retry_again.stderr,
        "error: cannot retry step 3 (`departures_check`) of operation 1: its status is skipped; only a \
         failed step can be retried\n"
    );

    let events = sandbox
        .eod(&["--json", "events", "--operation", "1"])
        .json();
    let kinds: Vec<&str> = events
        .as_array()
        .expect("events array")
        .iter()
        .map(|event| event["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        [
            "operation_created",
            "steps_seeded",
            "started",
            "completed",
            "started",
            "completed",
            "started",
            "failed",
            "retried",
            "skipped"
        ]
    );
}

#[test]
fn step_skip_required_rejected() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);
    let run = sandbox.eod(&[
        "step",
        "skip",
        "--operation",
        "1",
        "--order",
        "1",
        "--reason",
        "r",
    ]);
    assert_code(&run, 3);
    assert_eq!(
        run.stderr,
        "error: cannot skip step 1 (`pre_audit_checks`) of operation 1: it is required; run it, \
         or retry it if it failed\n"
    );
}

#[test]
fn step_start_out_of_order_rejected() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);
    let run = sandbox.eod(&["step", "start", "--operation", "1", "--order", "2"]);
    assert_code(&run, 3);
    assert_eq!(
        run.stderr,
        "error: step 2 of operation 1 cannot start: required step 1 (`pre_audit_checks`) has \
         status pending; complete it first\n"
    );
}

#[test]
fn step_request_id_replays_start() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);
    let args = [
        "step",
        "start",
        "--operation",
        "1",
        "--order",
        "1",
        "--request-id",
        "req-1",
    ];
    let first = sandbox.eod(&args);
    let second = sandbox.eod(&args);
    assert_code(&first, 0);
    assert_code(&second, 0);
    assert_eq!(first.stdout, second.stdout);

    let reused = sandbox.eod(&[
        "step",
        "retry",
        "--operation",
        "1",
        "--order",
        "1",
        "--request-id",
        "req-1",
    ]);
    assert_code(&reused, 3);
    assert!(
        reused
            .stderr
            .starts_with("error: request id `req-1` was already used for "),
        "{}",
        reused.stderr
    );
}

#[test]
fn step_arguments_are_required() {
    let sandbox = Sandbox::new();
    let cases: [&[&str]; 4] = [
        &["step", "complete", "--operation", "1", "--order", "1"],
        &[
            "step",
            "fail",
            "--operation",
            "1",
            "--order",
            "1",
            "--claim",
            "c",
        ],
        &["step", "skip", "--operation", "1", "--order", "3"],
        &["step", "start", "--operation", "1"],
    ];
    for args in cases {
        let run = sandbox.eod(args);
        assert_code(&run, 2);
        assert!(
            run.stderr
                .starts_with("error: the following required arguments were not provided:"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(!sandbox.db().exists());
}

#[test]
fn status_by_date_and_operation() {
    let sandbox = Sandbox::new();
    assert_code(
        &sandbox.eod(&["open", "--date", "2026-12-04", "--property", "grand"]),
        0,
    );
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);

    let by_date = sandbox.eod(&["status", "--date", "2026-12-04", "--property", "grand"]);
    assert_code(&by_date, 0);
    assert_eq!(
        by_date.stdout,
        format!(
            "operation 1: property `grand`, business date 2026-12-04, plan `standard`, status open\n\
             plan `standard`, fingerprint {}\n\
             property `grand`: no business date set, so operations of every date may start\n  \
             in progress: none\n{STANDARD_TABLE}",
            eodstore::Plan::standard().fingerprint()
        )
    );
    assert_eq!(by_date.stderr, "");

    let by_id = sandbox.eod(&["status", "--operation", "1"]);
    assert_code(&by_id, 0);
    assert_eq!(by_id.stdout, by_date.stdout);

    let default_property = sandbox
        .eod(&["--json", "status", "--date", "2026-12-04"])
        .json();
    assert_eq!(default_property["operation"]["id"], 2);
    assert!(default_property["steps"][0].get("created").is_none());

    let missing_day = sandbox.eod(&["status", "--date", "2026-12-05", "--property", "grand"]);
    assert_code(&missing_day, 3);
    // Suggested commands name this run's `--db`, which is not the default.
    assert_eq!(
        missing_day.stderr,
        format!(
            "error: no operation for property `grand` on 2026-12-05: open one with `eod --db {} \
             open --date 2026-12-05 --property grand`\n",
            sandbox.db().display()
        )
    );

    for args in [
        &["status"][..],
        &["status", "--operation", "1", "--date", "2026-12-04"],
        &["status", "--operation", "1", "--property", "grand"],
    ] {
        assert_code(&sandbox.eod(args), 2);
    }
}

#[test]
fn history_lists_newest_date_first() {
    let sandbox = Sandbox::new();
    for date in ["2026-12-03", "2026-12-05", "2026-12-04"] {
        assert_code(&sandbox.eod(&["open", "--date", date]), 0);
    }
    assert_code(
        &sandbox.eod(&["open", "--date", "2026-12-06", "--property", "other"]),
        0,
    );

    let value = sandbox.eod(&["--json", "history"]).json();
    let operations = value.as_array().expect("an array");
    let dates: Vec<&str> = operations
        .iter()
        .map(|operation| operation["business_date"].as_str().expect("date"))
        .collect();
    assert_eq!(dates, ["2026-12-05", "2026-12-04", "2026-12-03"]);
    let ids: Vec<u64> = operations
        .iter()
        .map(|operation| operation["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, [2, 3, 1]);
    assert_eq!(
        keys(&operations[0]),
        [
            "business_date",
            "created_at",
            "finished_at",
            "id",
            "plan",
            "property",
            "status"
        ]
    );

    let limited = sandbox.eod(&["history", "--limit", "2"]);
    assert_code(&limited, 0);
    let lines: Vec<&str> = limited.stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        "ID  BUSINESS DATE  STATUS     CREATED               FINISHED              PLAN"
    );
    assert!(
        lines[1].starts_with(" 2  2026-12-05     open       "),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with("  -                     standard"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(" 3  2026-12-04     open       "),
        "{}",
        lines[2]
    );

    let other = sandbox
        .eod(&["--json", "history", "--property", "other"])
        .json();
    assert_eq!(other.as_array().map(Vec::len), Some(1));

    let empty = sandbox.eod(&["--json", "history", "--property", "nowhere"]);
    assert_code(&empty, 0);
    assert_eq!(empty.json(), serde_json::json!([]));
    assert_eq!(empty.stderr, "no operations for property `nowhere`\n");
}

#[test]
fn events_list_audit_trail() {
    let sandbox = Sandbox::new();
    assert_code(
        &sandbox.eod(&["open", "--date", "2026-12-04", "--actor", "zeynep"]),
        0,
    );
    let started = sandbox.eod(&[
        "step",
        "start",
        "--operation",
        "1",
        "--order",
        "1",
        "--actor",
        "zeynep",
    ]);
    assert_code(&started, 0);

    let value = sandbox
        .eod(&["events", "--operation", "1", "--json"])
        .json();
    let events = value.as_array().expect("an array");
    assert_eq!(events.len(), 3);
    assert_eq!(
        keys(&events[2]),
        [
            "actor",
            "at",
            "from",
            "kind",
            "message",
            "seq",
            "step_order",
            "to"
        ]
    );
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[0]["kind"], "operation_created");
    assert_eq!(events[0]["step_order"], Value::Null);
    assert_eq!(events[0]["actor"], "zeynep");
    assert_eq!(
        events[0]["message"],
        "property `default`, business date 2026-12-04, plan `standard`"
    );
    assert_eq!(events[2]["kind"], "started");
    assert_eq!(events[2]["step_order"], 1);
    assert_eq!(events[2]["from"], "pending");
    assert_eq!(events[2]["to"], "running");
    assert_eq!(events[2]["message"], "attempt 1");
    assert!(is_rfc3339_utc(&events[2]["at"]));

    let text = sandbox.eod(&["events", "--operation", "1"]);
    assert_code(&text, 0);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        " SEQ  AT                    KIND               STEP  CHANGE                 ACTOR   MESSAGE"
    );
    assert!(lines[3].starts_with("   3  20"), "{}", lines[3]);
    assert!(
        lines[3].ends_with("Z  started               1  pending -> running     zeynep  attempt 1"),
        "{}",
        lines[3]
    );
}

#[test]
fn actor_defaults_from_environment() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);

    let from_username = execute(
        sandbox
            .command()
            .env_remove("USER")
            .env("USERNAME", "bülent")
            .arg("--db")
            .arg(sandbox.db())
            .args(["open", "--date", "2026-12-05"]),
    );
    assert_code(&from_username, 0);
    let from_host = execute(
        sandbox
            .command()
            .env_remove("USER")
            .arg("--db")
            .arg(sandbox.db())
            .args(["open", "--date", "2026-12-06"]),
    );
    assert_code(&from_host, 0);

    let store = sandbox.store();
    let actor = |id: u64| {
        store.events(OperationId(id)).expect("events")[0]
            .actor
            .clone()
    };
    assert_eq!(actor(1), "ayşe");
    assert_eq!(actor(2), "bülent");
    assert_eq!(actor(3), eodstore::process::current_process().host);
}

#[test]
fn read_commands_need_existing_file() {
    let sandbox = Sandbox::new();
    let message = format!(
        "error: no database at `{}`: check the path (or `--db`/`EOD_DB`), or create one by \
         opening an operation or setting a business date\n",
        sandbox.db().display()
    );
    let cases: [&[&str]; 5] = [
        &["status", "--date", "2026-12-04"],
        &["status", "--operation", "1"],
        &["history"],
        &["events", "--operation", "1"],
        &["step", "start", "--operation", "1", "--order", "1"],
    ];
    for args in cases {
        let run = sandbox.eod(args);
        assert_code(&run, 3);
        assert_eq!(run.stderr, message, "{args:?}");
        assert_eq!(run.stdout, "");
        assert!(!sandbox.db().exists(), "{args:?} created the file");
    }
}

#[test]
fn malformed_date_rejected_with_value() {
    let sandbox = Sandbox::new();
    for command in ["open", "run", "status"] {
        let run = sandbox.eod(&[command, "--date", "12/04/2026"]);
        assert_code(&run, 3);
        assert_eq!(
            run.stderr,
            "error: invalid business date `12/04/2026`: expected a date as YYYY-MM-DD, such as \
             2026-12-04\n",
            "{command}"
        );
        assert!(!sandbox.db().exists(), "{command} created the file");
    }
    let run = sandbox.eod(&["open", "--date", "2026-02-30"]);
    assert_code(&run, 3);
    assert!(
        run.stderr
            .starts_with("error: invalid business date `2026-02-30`: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .ends_with("; expected a real calendar date as YYYY-MM-DD\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_operation_rejected() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);
    let message = format!(
        "error: operation 99 not found: list operations with `eod --db {} history`\n",
        sandbox.db().display()
    );
    let cases: [&[&str]; 4] = [
        &["status", "--operation", "99"],
        &["events", "--operation", "99"],
        &["step", "start", "--operation", "99", "--order", "1"],
        &["step", "retry", "--operation", "99", "--order", "1"],
    ];
    for args in cases {
        let run = sandbox.eod(args);
        assert_code(&run, 3);
        assert_eq!(run.stderr, message, "{args:?}");
    }
    let run = sandbox.eod(&["step", "start", "--operation", "1", "--order", "11"]);
    assert_code(&run, 3);
    assert_eq!(
        run.stderr,
        "error: operation 1 has no step at order 11: its orders are 1, 2, 3, 4, 5, 6, 7, 8, 9, 10\n"
    );
}

#[test]
fn foreign_file_rejected_untouched() {
    let sandbox = Sandbox::new();
    let contents = "name,rooms\ngrand,120\n";
    std::fs::write(sandbox.db(), contents).expect("write a foreign file");
    for args in [
        &["status", "--date", "2026-12-04"][..],
        &["open", "--date", "2026-12-04"],
    ] {
        let run = sandbox.eod(args);
        assert_code(&run, 3);
        assert_eq!(
            run.stderr,
            format!(
                "error: `{}` is not an eodstore database (it does not start with the redb file \
                 signature): check the path; eodstore never writes into a file it did not create\n",
                sandbox.db().display()
            )
        );
    }
    assert_eq!(
        std::fs::read_to_string(sandbox.db()).expect("read back"),
        contents
    );
}

#[test]
fn plan_file_errors_rejected() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path("missing.toml");
    let missing = missing.to_str().expect("UTF-8 path");
    let run = sandbox.eod(&["open", "--date", "2026-12-04", "--plan", missing]);
    assert_code(&run, 3);
    assert_eq!(
        run.stderr,
        format!(
            "error: cannot read plan file `{missing}`: No such file or directory (os error 2); \
             check the path, or pass `standard` for the built-in plan\n"
        )
    );
    assert!(!sandbox.db().exists());

    let plan = sandbox.plan("plan.toml", TURKISH_PLAN);
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);
    let conflict = sandbox.eod(&["open", "--date", "2026-12-04", "--plan", &plan]);
    assert_code(&conflict, 3);
    assert_eq!(
        conflict.stderr,
        "error: operation 1 was seeded with plan `standard`, which differs from the given plan: \
         only the stored plan has order 1 (step `pre_audit_checks` (required)); open it with its \
         original plan, or use another date or property\n"
    );
}

#[test]
fn locked_database_exits_six() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);
    let holder = Store::open_with(
        sandbox.db(),
        StoreOptions::new().concurrency(ConcurrencyMode::ExclusiveWriter),
    )
    .expect("hold the file exclusively");

    let run = sandbox.eod(&["status", "--date", "2026-12-04"]);
    assert_code(&run, 6);
    let prefix = format!("error: `{}` is locked: ", sandbox.db().display());
    assert!(run.stderr.starts_with(&prefix), "{}", run.stderr);
    drop(holder);

    assert_code(&sandbox.eod(&["status", "--date", "2026-12-04"]), 0);
}

#[test]
fn usage_errors_exit_two() {
    let sandbox = Sandbox::new();
    let cases: [(&[&str], &str); 6] = [
        (
            &["frobnicate"],
            "error: unrecognized subcommand 'frobnicate'\n",
        ),
        (
            &["open"],
            "error: the following required arguments were not provided:\n  --date <YYYY-MM-DD>\n",
        ),
        (
            &["open", "--date", "2026-12-04", "--bogus"],
            "error: unexpected argument '--bogus' found\n",
        ),
        (
            &["status", "--operation", "one"],
            "error: invalid value 'one' for '--operation <ID>': invalid digit found in string\n",
        ),
        (
            &["history", "--limit", "0"],
            "error: invalid value '0' for '--limit <N>': 0 is not in 1..18446744073709551615\n",
        ),
        (
            &[],
            "error: 'eod' requires a subcommand but one was not provided\n",
        ),
    ];
    for (args, start) in cases {
        let run = sandbox.eod(args);
        assert_code(&run, 2);
        assert!(run.stderr.starts_with(start), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    assert!(!sandbox.db().exists());
}

#[test]
fn help_documents_exit_codes() {
    let run = Sandbox::new().eod_raw(&["--help"]);
    assert_code(&run, 0);
    assert!(
        run.stdout.ends_with(
            "\
Exit codes:
  0  success
  1  storage or internal error (the file failed or is damaged)
  2  usage error (unknown command or option, missing or malformed argument)
  3  rejected request (invalid input, not found, conflict, wrong state); nothing changed
  4  a run stopped at a failed step
  5  a run paused at a manual step
  6  the database is busy or locked by another process
  7  `eod check` found problems in the file
"
        ),
        "{}",
        run.stdout
    );
    for option in [
        "--db <PATH>",
        "[env: EOD_DB=]",
        "[default: ./eod.redb]",
        "--json",
        "--verbose",
    ] {
        assert!(run.stdout.contains(option), "{option}");
    }
}

#[test]
fn verbose_flag_enables_debug_logs() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);

    let quiet = sandbox.eod(&["status", "--operation", "1"]);
    assert_eq!(quiet.stderr, "");
    let verbose = sandbox.eod(&["status", "--operation", "1", "-v"]);
    assert_code(&verbose, 0);
    assert!(verbose.stderr.contains("DEBUG"), "{}", verbose.stderr);
    assert!(
        verbose.stderr.contains("opened store"),
        "{}",
        verbose.stderr
    );
    assert!(
        !verbose.stderr.contains('\u{1b}'),
        "colors on a pipe: {:?}",
        verbose.stderr
    );
    assert_eq!(verbose.stdout, quiet.stdout);

    let from_env = execute(
        sandbox
            .command()
            .env("RUST_LOG", "eodstore=debug")
            .arg("--db")
            .arg(sandbox.db())
            .args(["status", "--operation", "1"]),
    );
    assert!(
        from_env.stderr.contains("opened store"),
        "{}",
        from_env.stderr
    );
}

/// A command left running by a killed `eod run` would overlap the resumed run's attempt, so the
/// command must die with its runner, even when the runner is killed with SIGKILL.
#[test]
fn killed_run_ends_its_command() {
    let sandbox = Sandbox::new();
    let pid_file = sandbox.path("command.pid");
    let marker = sandbox.path("finished");
    let plan = sandbox.plan(
        "slow.toml",
        &format!(
            "name = \"slow\"\n[[steps]]\norder = 1\ncode = \"slow\"\nname = \"Yavaş adım\"\n\
             command = \"echo $$ > '{}'; sleep 30; touch '{}'\"\n",
            pid_file.display(),
            marker.display()
        ),
    );
    let mut runner = sandbox
        .command()
        .arg("--db")
        .arg(sandbox.db())
        .args(["run", "--date", "2026-12-04", "--plan", &plan])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start eod run");

    // Wait, bounded, until the command has started and written its pid.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let command_pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::yield_now();
    };
    runner.kill().expect("kill eod run");
    runner.wait().expect("reap eod run");

    let proc_entry = PathBuf::from(format!("/proc/{command_pid}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while proc_entry.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command outlived its runner"
        );
        std::thread::yield_now();
    }
    assert!(!marker.exists());

    // The next run takes the step over and runs the command again; make it quick this time.
    let quick = sandbox.plan(
        "slow.toml",
        "name = \"slow\"\n[[steps]]\norder = 1\ncode = \"slow\"\nname = \"Yavaş adım\"\ncommand = \"true\"\n",
    );
    let resumed = sandbox.eod(&["run", "--date", "2026-12-04", "--plan", &quick]);
    assert_code(&resumed, 0);
    let events = sandbox.store().events(eodstore::OperationId(1)).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == eodstore::EventKind::TakenOver)
    );
}

/// Suggestions in messages name the database when it is not the default, so that they act on
/// the same file when copied as printed.
#[test]
fn run_hints_name_the_database() {
    let sandbox = Sandbox::new();
    let run = sandbox.eod(&["run", "--date", "2026-12-04"]);
    assert_code(&run, 5);
    let db = sandbox.db().display().to_string();
    assert!(
        run.stderr.contains(&format!(
            "run `eod --db {db} step start --operation 1 --order 1`"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "then run `eod --db {db} run --date 2026-12-04 --property default` again"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn check_healthy_file_exits_zero() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);

    let run = sandbox.eod(&["check"]);
    assert_code(&run, 0);
    assert!(
        run.stdout
            .contains("1 operations, 10 steps, 2 events, 0 requests"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with("no problems found\n"),
        "{}",
        run.stdout
    );

    let json = sandbox.eod(&["--json", "check"]).json();
    assert_eq!(json["healthy"], true);
    assert_eq!(json["pages_verified"], true);
    assert_eq!(json["steps"], 10);
    assert_eq!(json["problems"], serde_json::json!([]));
}

#[test]
fn check_damaged_file_exits_seven() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open(sandbox.db())
            .unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<(u64, u32), &[u8]>::new("steps"))
            .unwrap()
            .remove((1, 3))
            .unwrap();
        txn.commit().unwrap();
    }

    let run = sandbox.eod(&["check"]);
    assert_code(&run, 7);
    assert!(
        run.stdout.contains("problem [steps]: operation 1 has the steps [1:pre_audit_checks, 2:no_shows, 4:room_rate_check"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 problems found"), "{}", run.stdout);

    let json = sandbox.eod(&["--json", "check"]).json();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["problems"][0]["kind"], "steps");
    assert_eq!(json["problems"][0]["operation"], 1);
}

#[test]
fn migrate_old_file_keeps_backup() {
    let sandbox = Sandbox::new();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format1.redb");
    std::fs::copy(golden, sandbox.db()).unwrap();

    let rejected = sandbox.eod(&["open", "--date", "2026-12-05", "--property", "grand"]);
    assert_code(&rejected, 3);
    assert!(
        rejected
            .stderr
            .contains(&format!("eod --db {} migrate", sandbox.db().display())),
        "{}",
        rejected.stderr
    );

    // Reading needs no migration.
    let status = sandbox.eod(&["status", "--date", "2026-12-03", "--property", "grand"]);
    assert_code(&status, 0);

    let run = sandbox.eod(&["migrate"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("from format 1 to 3"), "{}", run.stdout);
    assert!(sandbox.path("eod.redb.format1.bak").exists());

    let again = sandbox.eod(&["--json", "migrate"]).json();
    assert_eq!(again["from"], 3);
    assert_eq!(again["backup"], Value::Null);

    assert_code(
        &sandbox.eod(&["open", "--date", "2026-12-05", "--property", "grand"]),
        0,
    );
    assert_code(&sandbox.eod(&["check"]), 0);
}

#[test]
fn check_old_format_reads_records() {
    let sandbox = Sandbox::new();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format1.redb");
    std::fs::copy(golden, sandbox.db()).unwrap();
    let before = std::fs::read(sandbox.db()).unwrap();

    let run = sandbox.eod(&["check"]);
    assert_code(&run, 0);
    assert!(
        run.stderr.contains("its pages are not verified"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("3 operations, 24 steps"),
        "{}",
        run.stdout
    );
    let json = sandbox.eod(&["--json", "check"]).json();
    assert_eq!(json["pages_verified"], false);
    assert!(
        std::fs::read(sandbox.db()).unwrap() == before,
        "the check changed the file"
    );
}

#[test]
fn check_cut_off_file_exits_seven() {
    let sandbox = Sandbox::new();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format2.redb");
    let bytes = std::fs::read(golden).unwrap();
    std::fs::write(sandbox.db(), &bytes[..bytes.len() / 2]).unwrap();

    let run = sandbox.eod(&["check"]);
    assert_code(&run, 7);
    assert!(
        run.stdout.starts_with("problem [pages]: "),
        "{}",
        run.stdout
    );
    let json = sandbox.eod(&["--json", "check"]).json();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["problems"][0]["kind"], "pages");
}

#[test]
fn backup_and_compact_report_sizes() {
    let sandbox = Sandbox::new();
    assert_code(&sandbox.eod(&["open", "--date", "2026-12-04"]), 0);

    let run = sandbox.eod(&["backup", "--to", "yedek.redb"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("to `yedek.redb`"), "{}", run.stdout);
    let copy = sandbox.path("yedek.redb");
    assert_code(
        &sandbox.eod_raw(&["--db", copy.to_str().unwrap(), "check"]),
        0,
    );

    let again = sandbox.eod(&["backup", "--to", "yedek.redb"]);
    assert_code(&again, 3);
    assert!(
        again.stderr.contains("invalid backup path `yedek.redb`"),
        "{}",
        again.stderr
    );

    let json = sandbox.eod(&["--json", "compact"]).json();
    assert!(json["bytes_after"].as_u64().unwrap() <= json["bytes_before"].as_u64().unwrap());
    assert_code(&sandbox.eod(&["check"]), 0);
}
