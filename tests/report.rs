//! `eod report` and `Store::report`: exact durations, medians and maxima on a store written with
//! a manual clock, filters, an empty selection, the JSON schema, HTML escaping, and the HTML page
//! rendered in headless Chromium without network access.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use eodstore::{
    Caller, DumpFilter, ManualClock, OperationStatus, Plan, PlanStep, StepStatus, Store,
    StoreOptions,
};
use jiff::SignedDuration;

/// A step name that must be escaped in HTML.
const MARKUP_NAME: &str = "<script>alert(1)</script> Folyo & \"Bakiye\"";

fn plan() -> Plan {
    let steps = [
        (10, "on_kontrol", "Ön Denetim Kontrolleri", true),
        (20, "folyo", MARKUP_NAME, true),
        (30, "is_tarihi", "İş Tarihi Devri: ığüşöç", false),
    ]
    .into_iter()
    .map(|(order, code, name, required)| PlanStep {
        order,
        code: code.into(),
        name: name.into(),
        required,
        command: None,
        timeout_seconds: None,
        schedule: None,
        retry: None,
    })
    .collect();
    Plan::new("rapor", steps).expect("valid plan")
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

/// Runs step `order`: starts it, advances the clock by `seconds`, then completes or fails it.
fn run_step(
    store: &Store,
    clock: &ManualClock,
    id: eodstore::OperationId,
    order: u32,
    seconds: i64,
    complete: bool,
    actor: &str,
) {
    let caller = Caller::new(actor);
    let started = store.start_step(id, order, &caller).expect("start step");
    clock.advance(secs(seconds));
    if complete {
        store
            .complete_step(id, order, &started.claim.token, None, &caller)
            .expect("complete step");
    } else {
        store
            .fail_step(id, order, &started.claim.token, "kur yok", None, &caller)
            .expect("fail step");
    }
}

/// Writes four operations with known durations, the clock starting at each night's 23:00:
///
/// - grand 2026-12-01: `on_kontrol` 60 s; `folyo` fails after 30 s, is retried 100 s later by
///   ayşe and completes in 120 s; `is_tarihi` 10 s. 320 s in all.
/// - grand 2026-12-02: `on_kontrol` 90 s, `folyo` 180 s, `is_tarihi` skipped. 270 s.
/// - grand 2026-12-03: `on_kontrol` 30 s, `folyo` left running.
/// - other 2026-12-02: `on_kontrol` 1000 s, nothing else.
fn fill(path: &Path) {
    let clock = std::sync::Arc::new(ManualClock::new(
        "2026-12-01T23:00:00Z".parse().expect("valid timestamp"),
    ));
    let store = Store::open_with(path, StoreOptions::new().create(true).clock(clock.clone()))
        .expect("create the store");
    let open = |property: &str, date: &str| {
        store
            .open_operation(property, common::date(date), &plan(), &Caller::new("açan"))
            .expect("open operation")
            .operation
            .id
    };

    let first = open("grand", "2026-12-01");
    run_step(&store, &clock, first, 10, 60, true, "gece");
    run_step(&store, &clock, first, 20, 30, false, "gece");
    clock.advance(secs(100));
    store
        .retry_step(first, 20, &Caller::new("ayşe"))
        .expect("retry");
    run_step(&store, &clock, first, 20, 120, true, "ayşe");
    run_step(&store, &clock, first, 30, 10, true, "ayşe");

    clock.set("2026-12-02T23:00:00Z".parse().expect("valid timestamp"));
    let second = open("grand", "2026-12-02");
    run_step(&store, &clock, second, 10, 90, true, "gece");
    run_step(&store, &clock, second, 20, 180, true, "gece");
    store
        .skip_step(second, 30, "gerek yok", &Caller::new("gece"))
        .expect("skip");

    clock.set("2026-12-03T23:00:00Z".parse().expect("valid timestamp"));
    let third = open("grand", "2026-12-03");
    run_step(&store, &clock, third, 10, 30, true, "gece");
    store
        .start_step(third, 20, &Caller::new("gece"))
        .expect("start the running step");

    let other = open("other", "2026-12-02");
    run_step(&store, &clock, other, 10, 1000, true, "mehmet");
}

fn filled_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("eod.redb");
    fill(&path);
    (dir, path)
}

fn eod(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eod"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("EOD_DB")
        .env("RUST_LOG", "off")
        .output()
        .expect("run eod")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "eod failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output)).expect("JSON output")
}

#[test]
fn report_numbers_are_exact() {
    let (_dir, path) = filled_store();
    let store = Store::open(&path).expect("open");
    let report = store
        .report(&DumpFilter::all().property("grand"))
        .expect("report");

    let dates: Vec<String> = report
        .operations
        .iter()
        .map(|operation| operation.business_date.to_string())
        .collect();
    assert_eq!(dates, ["2026-12-01", "2026-12-02", "2026-12-03"]);

    let first = &report.operations[0];
    assert_eq!(first.status, OperationStatus::Completed);
    assert_eq!(first.start, Some("2026-12-01T23:00:00Z".parse().unwrap()));
    assert_eq!(first.end, Some("2026-12-01T23:05:20Z".parse().unwrap()));
    assert_eq!(first.duration, Some(secs(320)));
    assert_eq!(first.failed_steps.len(), 1);
    assert_eq!(first.failed_steps[0].code, "folyo");
    assert_eq!(first.failed_steps[0].failures, 1);
    assert_eq!(first.failed_steps[0].attempts, 2);
    assert_eq!(first.failed_steps[0].status, StepStatus::Completed);
    assert_eq!(first.retried_steps.len(), 1);
    assert_eq!(first.retried_steps[0].retries, 1);
    assert_eq!(first.actors, ["gece", "ayşe"]);
    // The retried step's duration is that of its last, successful attempt.
    assert_eq!(first.steps[1].duration, Some(secs(120)));

    let second = &report.operations[1];
    assert_eq!(second.duration, Some(secs(270)));
    assert!(second.failed_steps.is_empty());
    assert!(second.retried_steps.is_empty());
    assert_eq!(second.steps[2].status, StepStatus::Skipped);
    assert_eq!(second.actors, ["gece"]);

    // A running operation ends, for now, where its last step ended.
    let third = &report.operations[2];
    assert_eq!(third.status, OperationStatus::Running);
    assert_eq!(third.duration, Some(secs(30)));
    assert_eq!(third.steps[1].status, StepStatus::Running);
    assert_eq!(third.steps[1].duration, None);

    let stats: Vec<(&str, usize, SignedDuration, SignedDuration)> = report
        .step_codes
        .iter()
        .map(|stats| (stats.code.as_str(), stats.count, stats.median, stats.max))
        .collect();
    assert_eq!(
        stats,
        [
            ("folyo", 2, secs(150), secs(180)),
            ("is_tarihi", 1, secs(10), secs(10)),
            ("on_kontrol", 3, secs(60), secs(90)),
        ]
    );
}

#[test]
fn report_filters_select_operations() {
    let (_dir, path) = filled_store();
    let store = Store::open(&path).expect("open");

    let all = store.report(&DumpFilter::all()).expect("report");
    assert_eq!(all.operations.len(), 4);
    let on_kontrol = &all.step_codes[2];
    assert_eq!(on_kontrol.code, "on_kontrol");
    assert_eq!(on_kontrol.count, 4);
    assert_eq!(on_kontrol.median, secs(75));
    assert_eq!(on_kontrol.max, secs(1000));

    let day = common::date("2026-12-02");
    let one_day = store
        .report(&DumpFilter::all().from_date(day).to_date(day))
        .expect("report");
    let properties: Vec<&str> = one_day
        .operations
        .iter()
        .map(|operation| operation.property.as_str())
        .collect();
    assert_eq!(properties, ["grand", "other"]);

    let output = eod(
        &path,
        &[
            "report",
            "--json",
            "--property",
            "grand",
            "--from",
            "2026-12-02",
        ],
    );
    let value = json(&output);
    let dates: Vec<&str> = value["operations"]
        .as_array()
        .expect("operations array")
        .iter()
        .map(|operation| operation["business_date"].as_str().expect("date"))
        .collect();
    assert_eq!(dates, ["2026-12-02", "2026-12-03"]);
}

#[test]
fn report_of_empty_range() {
    let (_dir, path) = filled_store();
    let output = eod(&path, &["report", "--from", "2027-01-01"]);
    assert_eq!(stdout(&output), "");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no operations match"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let value = json(&eod(&path, &["report", "--json", "--from", "2027-01-01"]));
    assert_eq!(
        value,
        serde_json::json!({ "operations": [], "step_codes": [] })
    );

    let reversed = eod(
        &path,
        &["report", "--from", "2026-12-03", "--to", "2026-12-01"],
    );
    assert_eq!(reversed.status.code(), Some(3));
}

#[test]
fn report_json_schema() {
    let (_dir, path) = filled_store();
    let value = json(&eod(&path, &["report", "--json", "--property", "grand"]));

    let keys = |value: &serde_json::Value| -> Vec<String> {
        value.as_object().expect("object").keys().cloned().collect()
    };
    let mut top = keys(&value);
    top.sort();
    assert_eq!(top, ["operations", "step_codes"]);

    let first = &value["operations"][0];
    let mut operation_keys = keys(first);
    operation_keys.sort();
    assert_eq!(
        operation_keys,
        [
            "actors",
            "business_date",
            "duration_seconds",
            "end",
            "failed_steps",
            "operation",
            "plan",
            "property",
            "retried_steps",
            "start",
            "status",
            "steps"
        ]
    );
    assert_eq!(first["duration_seconds"], 320.0);
    assert_eq!(first["start"], "2026-12-01T23:00:00Z");
    assert_eq!(first["failed_steps"][0]["code"], "folyo");
    assert_eq!(first["failed_steps"][0]["failures"], 1);
    assert_eq!(first["retried_steps"][0]["retries"], 1);
    assert_eq!(first["steps"][1]["duration_seconds"], 120.0);
    assert_eq!(first["steps"][1]["name"], MARKUP_NAME);

    let running = &value["operations"][2]["steps"][1];
    assert_eq!(running["status"], "running");
    assert!(running["duration_seconds"].is_null());

    let folyo = &value["step_codes"][0];
    assert_eq!(folyo["code"], "folyo");
    assert_eq!(folyo["count"], 2);
    assert_eq!(folyo["median_seconds"], 150.0);
    assert_eq!(folyo["max_seconds"], 180.0);
}

#[test]
fn report_text_tables() {
    let (_dir, path) = filled_store();
    let text = stdout(&eod(&path, &["report", "--property", "grand"]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("BUSINESS DATE  PROPERTY  STATUS"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("2026-12-01     grand     completed"),
        "{text}"
    );
    assert!(lines[1].contains("0:05:20"), "{text}");
    assert!(lines[1].contains("folyo x1"), "{text}");
    assert!(lines[1].ends_with("gece, ayşe"), "{text}");
    assert!(lines[2].contains("0:04:30"), "{text}");
    assert_eq!(lines[4], "", "{text}");
    assert!(lines[5].starts_with("CODE"), "{text}");
    assert_eq!(
        lines[6],
        format!("folyo           2  0:02:30  0:03:00  {MARKUP_NAME}")
    );
    assert_eq!(
        lines[8],
        "on_kontrol      3  0:01:00  0:01:30  Ön Denetim Kontrolleri"
    );
}

#[test]
fn html_escapes_names_and_has_no_urls() {
    let (dir, path) = filled_store();
    let page_path = dir.path().join("rapor.html");
    let output = eod(
        &path,
        &["report", "--html", page_path.to_str().expect("UTF-8 path")],
    );
    assert!(stdout(&output).starts_with("wrote the report of 4 operations"));
    let page = std::fs::read_to_string(&page_path).expect("read the page");

    assert!(!page.contains("<script"), "unescaped markup in the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; Folyo &amp; &quot;Bakiye&quot;"));
    assert!(page.contains("İş Tarihi Devri: ığüşöç"));
    assert!(page.contains("<svg"));
    assert_no_resource_references(&page);

    // An existing file is never replaced.
    let again = eod(
        &path,
        &["report", "--html", page_path.to_str().expect("UTF-8 path")],
    );
    assert_eq!(again.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing exists yet"));
    assert_eq!(
        std::fs::read_to_string(&page_path).expect("read the page"),
        page
    );
}

/// Asserts that the page has no attribute or CSS rule that could load anything, and no URL.
fn assert_no_resource_references(page: &str) {
    let lower = page.to_lowercase();
    for needle in [
        "http:", "https:", "ftp:", "ws:", "wss:", "//", "src=", "href=", "url(", "@import",
        "<link", "<script", "<img", "<iframe", "<object", "<embed",
    ] {
        assert!(!lower.contains(needle), "the page contains `{needle}`");
    }
}

/// Returns the Chromium binary on PATH. Under CI (`CI` set) a missing Chromium fails the test,
/// because `.ci/run` installs it; elsewhere the test is skipped with a message.
fn find_chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is missing under CI: neither `chromium` nor `chromium-browser` is on PATH; \
             .ci/run installs Debian's `chromium` package"
        );
        eprintln!(
            "skipped: neither `chromium` nor `chromium-browser` is on PATH; install Debian's \
             `chromium` package (`apt-get install chromium`) to run this test"
        );
    }
    found
}

/// The result of loading one page in headless Chromium.
struct Rendered {
    dom: String,
    /// URLs that Chromium requested on behalf of the page.
    page_requests: Vec<String>,
}

/// Loads `page` in headless Chromium with `extra` arguments, in a fresh profile, and returns its
/// DOM and the network requests the page made.
///
/// Chromium runs with `--host-resolver-rules="MAP * ~NOTFOUND"`, so no host name resolves and
/// no request leaves the machine, and with `--log-net-log`, which records every URL request
/// the network stack starts, failed or not. Chromium itself requests a few update and account
/// URLs even with background networking disabled; a request is the page's when its network
/// isolation key is the `file://` site of the page. A `file://` load does not go through the
/// network stack, so any page request in the log is a network load.
fn render(chromium: &Path, page: &Path, work: &Path, extra: &[String]) -> Rendered {
    let profile = tempfile::tempdir_in(work).expect("profile directory");
    let net_log = work.join(format!(
        "netlog-{}.json",
        page.file_stem().unwrap().to_string_lossy()
    ));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--log-net-log={}", net_log.display()))
        .args(extra)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");

    // Stdout is read on a thread, so a full pipe cannot stall Chromium while we wait.
    let mut pipe = child.stdout.take().expect("chromium stdout");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut dom).map(|_| dom)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill chromium");
            child.wait().expect("reap chromium");
            panic!("chromium did not finish within 60 s and was killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium exited with {status}");
    let dom = reader
        .join()
        .expect("reader thread")
        .expect("read chromium's DOM");

    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&net_log).expect("chromium wrote its net log"))
            .expect("the net log is JSON");
    let page_requests = log["events"]
        .as_array()
        .expect("net log events")
        .iter()
        .filter_map(|event| {
            let params = &event["params"];
            let url = params["url"].as_str()?;
            let key = params["network_isolation_key"].as_str()?;
            key.contains("file://").then(|| url.to_owned())
        })
        .collect();
    Rendered { dom, page_requests }
}

#[test]
fn html_renders_in_chromium() {
    let Some(chromium) = find_chromium() else {
        return;
    };
    let (dir, path) = filled_store();
    let page_path = dir.path().join("rapor.html");
    let output = eod(
        &path,
        &["report", "--html", page_path.to_str().expect("UTF-8 path")],
    );
    stdout(&output);

    // The detector must see a page's network load, or its empty result proves nothing.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><body><img src=\"http://example.invalid/x.png\"></body></html>",
    )
    .expect("write the control page");
    let control_render = render(&chromium, &control, dir.path(), &[]);
    assert_eq!(
        control_render.page_requests,
        ["http://example.invalid/x.png"],
        "the net log check does not see the control page's image request"
    );

    let screenshot = dir.path().join("rapor.png");
    let rendered = render(
        &chromium,
        &page_path,
        dir.path(),
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1200,800".to_owned(),
        ],
    );
    assert!(
        rendered.page_requests.is_empty(),
        "the page loaded from the network: {:?}",
        rendered.page_requests
    );

    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10_000, "screenshot of {} bytes", png.len());

    // Chromium's DOM serializer escapes text as the page did.
    for name in [
        "Ön Denetim Kontrolleri",
        "&lt;script&gt;alert(1)&lt;/script&gt; Folyo &amp; \"Bakiye\"",
        "İş Tarihi Devri: ığüşöç",
    ] {
        assert!(
            rendered.dom.contains(name),
            "the rendered page lacks `{name}`"
        );
    }
    assert!(
        rendered.dom.contains("<svg"),
        "the rendered page has no SVG"
    );
}
