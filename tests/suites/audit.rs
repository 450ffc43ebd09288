//! The permission audit from the outside: the warnings of `-t` (text, JSON,
//! `--strict`), the answers of `--explain` and `--who` with the configuration
//! positions they cite and their exit statuses, the audit run over every
//! configuration of `tests/data` and of the conformance corpus without a crash,
//! its decisions checked against what the live server does with the same
//! file, and the warnings the server logs when it starts and when it reloads.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tenet_core::config::options::{read_config, Config, Permissions};
use tenet_core::config::{parse_file, Resolver};
use tenet_core::Auth;
use tenet_tests::{
    runtime_binary_name, server_binary, skip_on_reference, wire, write_config_file, RawClient,
    TestServer,
};

/// Why every test here returns early against nats-server.
const SKIP: &str = "nats-server has no permission audit";

/// The README's first private-inbox configuration: every requester may
/// subscribe to `_INBOX.>` (line 3), so each can read the other's replies.
const SHARED_INBOXES: &str = r#"authorization {
  GREETER = { subscribe: "services.greet", allow_responses: true }
  REQUESTER = { publish: "services.*", subscribe: "_INBOX.>" }
  users = [
    {user: greeter, password: g, permissions: $GREETER}
    {user: joe, password: j, permissions: $REQUESTER}
    {user: pam, password: p, permissions: $REQUESTER}
  ]
}
"#;

/// The README's second private-inbox configuration (each requester has an
/// inbox prefix of its own), with the three passwords as given (plain text
/// or bcrypt hashes).
fn private_inboxes(greeter: &str, joe: &str, pam: &str) -> String {
    format!(
        r#"authorization {{
  users = [
    {{user: greeter, password: "{greeter}", permissions: {{subscribe: "services.greet", allow_responses: true}}}}
    {{user: joe, password: "{joe}", permissions: {{publish: "services.*", subscribe: "_INBOX_joe.>"}}}}
    {{user: pam, password: "{pam}", permissions: {{publish: "services.*", subscribe: "_INBOX_pam.>"}}}}
  ]
}}
"#
    )
}

/// The second private-inbox configuration with bcrypt hashes (cost 4) of
/// the passwords `g`, `j` and `p`.
fn private_inboxes_bcrypt() -> String {
    let hash = |p: &str| bcrypt::hash(p, 4).expect("bcrypt");
    private_inboxes(&hash("g"), &hash("j"), &hash("p"))
}

/// Users for `--explain`: carl with publish allow and deny entries and a
/// queue-only subscribe entry, dan with a wildcard subscribe allow narrowed
/// by a deny, greeter with `allow_responses` only, erin with queue entries
/// whose group names are wildcards.
const EXPLAIN_CONF: &str = r#"authorization {
  users = [
    {user: carl, password: c, permissions: {
      publish: {allow: ["orders.>"], deny: ["orders.secret"]}
      subscribe: ["orders.* workers", "foo.*"]
    }}
    {user: dan, password: d, permissions: {subscribe: {allow: ["feed.>"], deny: ["feed.secret"]}}}
    {user: greeter, password: g, permissions: {subscribe: "services.greet", allow_responses: true}}
    {user: erin, password: e, permissions: {subscribe: {
      allow: ["jobs.> pool.*", "jobs.urgent", "tasks.*"], deny: ["jobs.secret", "tasks.x pool"]
    }}}
  ]
}
"#;

/// Every kind of warning `-t` names.
const WARNING_KINDS: [&str; 9] = [
    "reads_others_replies",
    "allow_never_applies",
    "deny_never_applies",
    "duplicate_entry",
    "wider_than_its_neighbours",
    "plaintext_password",
    "unrestricted_user",
    "public_service_export",
    "responses_without_effect",
];

/// Every decision `--explain` gives.
const DECISIONS: [&str; 4] = ["allowed", "allowed_filtered", "replies_only", "denied"];

// ----- running the binary ----------------------------------------------------

/// A configuration file in the temporary directory, removed when dropped.
struct TempConf(PathBuf);

impl TempConf {
    fn new(text: &str) -> TempConf {
        TempConf(write_config_file(text))
    }

    /// The path as given to `-c` (and so as positions name the file).
    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }

    fn rewrite(&self, text: &str) {
        std::fs::write(&self.0, text).expect("rewrite the configuration file");
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A finished run of the server binary.
struct Ran {
    args: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The exit code; fails if a signal ended the process.
    fn code(&self) -> i32 {
        match self.status.code() {
            Some(code) => code,
            None => panic!(
                "`{}` was ended by a signal ({})\nstdout: {}\nstderr: {}",
                self.args, self.status, self.stdout, self.stderr
            ),
        }
    }

    /// Standard output as one JSON value.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` printed no JSON ({e}); exit {}\nstdout: {}\nstderr: {}",
                self.args, self.status, self.stdout, self.stderr
            )
        })
    }

    /// Everything printed, for failure messages.
    fn shown(&self) -> String {
        format!(
            "`{}` exited {}\nstdout: {}\nstderr: {}",
            self.args, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs the server binary with `args` in `dir` (or the test's directory) to
/// its end (bounded), keeping standard output and error apart.
fn run_in(dir: Option<&Path>, args: &[&str]) -> Ran {
    let mut cmd = Command::new(server_binary());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", server_binary().display()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let shown_args = args.join(" ");
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => {
            let out = out.expect("the binary's output");
            Ran {
                args: shown_args,
                status: out.status,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            // SAFETY: kill(2) on the process we spawned, still running a
            // moment ago (its waiter thread has not reaped it).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("`{shown_args}` did not exit within 20 s");
        }
    }
}

fn run(args: &[&str]) -> Ran {
    run_in(None, args)
}

/// `--explain USER OP SUBJECT [QUEUE] -c FILE --format json` in `dir`.
fn explain_json(
    dir: Option<&Path>,
    file: &str,
    user: &str,
    op: &str,
    subject: &str,
    queue: Option<&str>,
) -> Ran {
    let mut args = vec!["--explain", user, op, subject];
    args.extend(queue);
    args.extend(["-c", file, "--format", "json"]);
    run_in(dir, &args)
}

/// `--explain` of `config` as JSON: the exit code and the answer, checked to
/// echo the question.
fn explain(
    config: &TempConf,
    user: &str,
    op: &str,
    subject: &str,
    queue: Option<&str>,
) -> (i32, Value) {
    let ran = explain_json(None, config.path(), user, op, subject, queue);
    let answer = ran.json();
    assert_eq!(answer["user"], user, "{}", ran.shown());
    let operation = if op == "pub" { "publish" } else { "subscribe" };
    assert_eq!(answer["operation"], operation, "{}", ran.shown());
    assert_eq!(answer["subject"], subject, "{}", ran.shown());
    assert_eq!(answer["queue"], json!(queue), "{}", ran.shown());
    let decision = answer["decision"].as_str().unwrap_or_default();
    assert!(DECISIONS.contains(&decision), "{}", ran.shown());
    // Denied, and only denied, exits 1.
    let code = ran.code();
    assert_eq!(code, i32::from(decision == "denied"), "{}", ran.shown());
    (code, answer)
}

/// The reasons of an answer, as (text, position) pairs.
fn reasons(answer: &Value) -> Vec<(String, Value)> {
    answer["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("no reasons list: {answer}"))
        .iter()
        .map(|r| {
            let text = r["text"]
                .as_str()
                .unwrap_or_else(|| panic!("reason without text: {r}"));
            (text.to_string(), r["at"].clone())
        })
        .collect()
}

/// The first reason whose text contains `needle`, with its position.
fn reason_with(answer: &Value, needle: &str) -> (String, Value) {
    reasons(answer)
        .into_iter()
        .find(|(text, _)| text.contains(needle))
        .unwrap_or_else(|| panic!("no reason mentions {needle:?}: {answer:#}"))
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    nth_line_of(text, needle, 0)
}

/// The 1-based line of the `n`-th (from 0) line of `text` containing `needle`.
fn nth_line_of(text: &str, needle: &str, n: usize) -> u64 {
    let index = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(n)
        .unwrap_or_else(|| panic!("{needle:?} is not in the configuration {n} time(s)"))
        .0;
    index as u64 + 1
}

/// The 1-based column of `needle`'s first character on the first line holding it.
fn column_of(text: &str, needle: &str) -> u64 {
    let line = text.lines().find(|l| l.contains(needle)).expect("needle");
    line.find(needle).expect("needle") as u64 + 1
}

/// Checks that `at` is a position on `line` of `file`.
fn assert_at(at: &Value, file: &str, line: u64, context: &Value) {
    assert_eq!(at["file"], file, "{context:#}");
    assert_eq!(at["line"], line, "{context:#}");
    assert!(at["column"].as_u64().is_some_and(|c| c >= 1), "{context:#}");
}

/// The warnings of a `-t --format json` report.
fn warnings(report: &Value) -> &Vec<Value> {
    report["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings list: {report:#}"))
}

fn kinds(report: &Value) -> Vec<&str> {
    warnings(report)
        .iter()
        .map(|w| w["kind"].as_str().unwrap_or_default())
        .collect()
}

// ----- 1. the README's private inboxes under -t ---------------------------------

#[test]
fn a_shared_inbox_warns_each_requester_that_it_reads_the_others_replies() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf = TempConf::new(SHARED_INBOXES);
    let path = conf.path();
    // The warnings point at the content of the `_INBOX.>` entry, line 3.
    let line = line_of(SHARED_INBOXES, "\"_INBOX.>\"");
    assert_eq!(line, 3);
    let column = column_of(SHARED_INBOXES, "_INBOX.>");

    let ran = run(&["-t", "-c", path, "--format", "json"]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    assert_eq!(
        ran.stderr, "",
        "JSON mode prints the warnings in the JSON only"
    );
    let report = ran.json();
    assert_eq!(report["valid"], true, "{report:#}");
    assert_eq!(report["file"], path, "{report:#}");
    let reads: Vec<&Value> = warnings(&report)
        .iter()
        .filter(|w| w["kind"] == "reads_others_replies")
        .collect();
    assert_eq!(reads.len(), 2, "one for joe, one for pam: {report:#}");
    for (reader, victim) in [("pam", "joe"), ("joe", "pam")] {
        let said = format!("{reader} can read {victim}'s replies");
        let warning = reads
            .iter()
            .find(|w| w["message"].as_str().is_some_and(|m| m.contains(&said)))
            .unwrap_or_else(|| panic!("no warning says {said:?}: {report:#}"));
        assert_eq!(
            warning["at"],
            json!({"file": path, "line": line, "column": column}),
            "{warning:#}"
        );
        let fix = warning["fix"].as_str().unwrap_or_default();
        assert!(fix.contains(&format!("_INBOX_{reader}.>")), "{warning:#}");
    }
    // The greeter subscribes only to its service: it reads nobody's replies.
    assert!(
        !reads.iter().any(|w| w.to_string().contains("greeter")),
        "{report:#}"
    );
    // And the passwords are plain text.
    assert_eq!(
        kinds(&report)
            .iter()
            .filter(|k| **k == "plaintext_password")
            .count(),
        1,
        "{report:#}"
    );
    for warning in warnings(&report) {
        assert!(WARNING_KINDS.contains(&warning["kind"].as_str().unwrap_or_default()));
    }

    // The text form: stdout says valid, stderr has each warning with its fix.
    let ran = run(&["-t", "-c", path]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    assert_eq!(
        ran.stdout,
        format!(
            "{}: configuration file {path} is valid\n",
            runtime_binary_name()
        )
    );
    for reader in ["pam", "joe"] {
        let victim = if reader == "pam" { "joe" } else { "pam" };
        let head =
            format!("{path}:{line}:{column}: warning: {reader} can read {victim}'s replies: ");
        let at = ran
            .stderr
            .find(&head)
            .unwrap_or_else(|| panic!("no {head:?} in {}", ran.shown()));
        let next_line = ran.stderr[at..].lines().nth(1).unwrap_or_default();
        assert!(
            next_line.starts_with("  fix: ") && next_line.contains(&format!("_INBOX_{reader}.>")),
            "{}",
            ran.shown()
        );
    }

    // --strict turns the warnings into a failure, in both forms.
    let ran = run(&["-t", "-c", path, "--strict"]);
    assert_eq!(ran.code(), 1, "{}", ran.shown());
    assert!(
        ran.stderr.contains("pam can read joe's replies"),
        "{}",
        ran.shown()
    );
    let ran = run(&["-t", "-c", path, "--strict", "--format", "json"]);
    assert_eq!(ran.code(), 1, "{}", ran.shown());
    assert_eq!(ran.json()["valid"], true, "{}", ran.shown());
}

#[test]
fn private_inboxes_with_bcrypt_hashes_are_clean() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf = TempConf::new(&private_inboxes_bcrypt());
    let path = conf.path();
    let ran = run(&["-t", "-c", path, "--format", "json"]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    let report = ran.json();
    assert_eq!(
        report,
        json!({"file": path, "valid": true, "warnings": []}),
        "{report:#}"
    );
    let ran = run(&["-t", "-c", path, "--strict"]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    assert_eq!(ran.stderr, "", "{}", ran.shown());
    assert!(ran.stdout.contains("is valid"), "{}", ran.shown());
    let ran = run(&["-t", "-c", path, "--strict", "--format", "json"]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
}

#[test]
fn private_inboxes_with_plain_passwords_only_warn_of_the_passwords() {
    if skip_on_reference(SKIP) {
        return;
    }
    let text = private_inboxes("g", "j", "p");
    let conf = TempConf::new(&text);
    let path = conf.path();
    let ran = run(&["-t", "-c", path, "--format", "json"]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    let report = ran.json();
    assert_eq!(kinds(&report), ["plaintext_password"], "{report:#}");
    let warning = &warnings(&report)[0];
    assert_eq!(
        warning["message"], "Plaintext passwords detected, use nkeys or bcrypt",
        "{warning:#}"
    );
    assert!(!warning["fix"].as_str().unwrap_or_default().is_empty());
    // At the first user with a plain password.
    assert_at(
        &warning["at"],
        path,
        line_of(&text, "user: greeter"),
        warning,
    );
    let ran = run(&["-t", "-c", path, "--strict"]);
    assert_eq!(ran.code(), 1, "{}", ran.shown());
    assert!(
        ran.stderr
            .contains("warning: Plaintext passwords detected, use nkeys or bcrypt"),
        "{}",
        ran.shown()
    );
}

// ----- 2. --explain -----------------------------------------------------------

#[test]
fn explain_names_the_allow_entry_that_allows() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf = TempConf::new(EXPLAIN_CONF);
    let path = conf.path();
    let (_, answer) = explain(&conf, "carl", "pub", "orders.new", None);
    assert_eq!(answer["decision"], "allowed", "{answer:#}");
    assert_eq!(answer["account"], "$G", "{answer:#}");
    let (text, at) = &reasons(&answer)[0];
    assert!(text.contains("allow \"orders.>\""), "{answer:#}");
    let line = line_of(EXPLAIN_CONF, "\"orders.>\"");
    assert_eq!(
        at,
        &json!({"file": path, "line": line, "column": column_of(EXPLAIN_CONF, "orders.>")}),
        "{answer:#}"
    );

    // The text form: the verdict, then the reason with its position.
    let ran = run(&["--explain", "carl", "pub", "orders.new", "-c", path]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    let mut lines = ran.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("allowed: carl (account $G) may publish to \"orders.new\""),
        "{}",
        ran.shown()
    );
    let reason = lines.next().unwrap_or_default();
    assert!(
        reason.starts_with("  - ")
            && reason.contains("\"orders.>\"")
            && reason.contains(&format!("({path}:{line}:")),
        "{}",
        ran.shown()
    );
}

#[test]
fn explain_a_deny_entry_wins_over_an_allow_entry() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf = TempConf::new(EXPLAIN_CONF);
    let path = conf.path();
    let (code, answer) = explain(&conf, "carl", "pub", "orders.secret", None);
    assert_eq!(
        (code, answer["decision"].as_str()),
        (1, Some("denied")),
        "{answer:#}"
    );
    let (text, at) = &reasons(&answer)[0];
    assert!(
        text.contains("deny \"orders.secret\""),
        "the deny decides: {answer:#}"
    );
    assert_at(
        at,
        path,
        line_of(EXPLAIN_CONF, "\"orders.secret\""),
        &answer,
    );

    let ran = run(&["--explain", "carl", "pub", "orders.secret", "-c", path]);
    assert_eq!(ran.code(), 1, "{}", ran.shown());
    assert!(
        ran.stdout
            .starts_with("denied: carl (account $G) may not publish to \"orders.secret\"\n"),
        "{}",
        ran.shown()
    );

    // Outside every allow entry: denied, naming the allow list.
    let (code, answer) = explain(&conf, "carl", "pub", "billing.x", None);
    assert_eq!(
        (code, answer["decision"].as_str()),
        (1, Some("denied")),
        "{answer:#}"
    );
    let (_, at) = reason_with(&answer, "\"orders.>\"");
    assert_at(&at, path, line_of(EXPLAIN_CONF, "\"orders.>\""), &answer);
}

#[test]
fn explain_allow_responses_permits_replies_only() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf = TempConf::new(EXPLAIN_CONF);
    let path = conf.path();
    let (code, answer) = explain(&conf, "greeter", "pub", "_INBOX.abc", None);
    assert_eq!(code, 0, "replies_only is not a denial: {answer:#}");
    assert_eq!(answer["decision"], "replies_only", "{answer:#}");
    let (_, at) = reason_with(&answer, "allow_responses");
    assert_at(&at, path, line_of(EXPLAIN_CONF, "allow_responses"), &answer);

    let ran = run(&["--explain", "greeter", "pub", "_INBOX.abc", "-c", path]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    assert!(
        ran.stdout.starts_with(
            "replies_only: greeter (account $G) may, only as a reply, publish to \"_INBOX.abc\"\n"
        ),
        "{}",
        ran.shown()
    );

    // Its subscription is plainly allowed.
    let (_, answer) = explain(&conf, "greeter", "sub", "services.greet", None);
    assert_eq!(answer["decision"], "allowed", "{answer:#}");
    let (_, at) = reason_with(&answer, "\"services.greet\"");
    assert_at(&at, path, line_of(EXPLAIN_CONF, "user: greeter"), &answer);
}

#[test]
fn explain_a_queue_entry_allows_only_its_group() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf = TempConf::new(EXPLAIN_CONF);
    let path = conf.path();
    let entry_line = line_of(EXPLAIN_CONF, "\"orders.* workers\"");

    let (code, answer) = explain(&conf, "carl", "sub", "orders.x", Some("workers"));
    assert_eq!(
        (code, answer["decision"].as_str()),
        (0, Some("allowed")),
        "{answer:#}"
    );
    let (_, at) = reason_with(&answer, "orders.* workers");
    assert_at(&at, path, entry_line, &answer);

    // Without a group, or in another one: denied, and the entry is named.
    let (code, answer) = explain(&conf, "carl", "sub", "orders.x", None);
    assert_eq!(
        (code, answer["decision"].as_str()),
        (1, Some("denied")),
        "{answer:#}"
    );
    let (_, at) = reason_with(&answer, "only in queue group");
    assert_at(&at, path, entry_line, &answer);
    let (code, answer) = explain(&conf, "carl", "sub", "orders.x", Some("other"));
    assert_eq!(
        (code, answer["decision"].as_str()),
        (1, Some("denied")),
        "{answer:#}"
    );

    let ran = run(&[
        "--explain",
        "carl",
        "sub",
        "orders.x",
        "workers",
        "-c",
        path,
    ]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    assert!(
        ran.stdout.starts_with(
            "allowed: carl (account $G) may subscribe to \"orders.x\" in queue group \"workers\"\n"
        ),
        "{}",
        ran.shown()
    );
}

#[test]
fn explain_a_wildcard_subscription_needs_one_entry_covering_it() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf = TempConf::new(EXPLAIN_CONF);
    let path = conf.path();
    // `foo.*` covers foo.a and foo.* but only part of foo.>.
    let (code, answer) = explain(&conf, "carl", "sub", "foo.>", None);
    assert_eq!(
        (code, answer["decision"].as_str()),
        (1, Some("denied")),
        "{answer:#}"
    );
    let (text, at) = reason_with(&answer, "allow \"foo.*\"");
    assert!(text.contains("only some"), "{answer:#}");
    assert_at(&at, path, line_of(EXPLAIN_CONF, "\"foo.*\""), &answer);
    for subject in ["foo.*", "foo.a"] {
        let (code, answer) = explain(&conf, "carl", "sub", subject, None);
        assert_eq!(
            (code, answer["decision"].as_str()),
            (0, Some("allowed")),
            "{answer:#}"
        );
    }
    let (code, _) = explain(&conf, "carl", "sub", "foo.a.b", None);
    assert_eq!(code, 1);

    // A wildcard inside an allow entry, minus a deny: accepted, filtered.
    let (code, answer) = explain(&conf, "dan", "sub", "feed.>", None);
    assert_eq!(code, 0, "{answer:#}");
    assert_eq!(answer["decision"], "allowed_filtered", "{answer:#}");
    let (_, at) = reason_with(&answer, "\"feed.secret\"");
    assert_at(&at, path, line_of(EXPLAIN_CONF, "\"feed.secret\""), &answer);
    let (code, answer) = explain(&conf, "dan", "sub", "feed.secret", None);
    assert_eq!(
        (code, answer["decision"].as_str()),
        (1, Some("denied")),
        "{answer:#}"
    );
    let (_, answer) = explain(&conf, "dan", "sub", "feed.news", None);
    assert_eq!(answer["decision"], "allowed", "{answer:#}");
}

#[test]
fn explain_an_unknown_user_or_a_bad_subject_is_unanswerable() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf = TempConf::new(EXPLAIN_CONF);
    let path = conf.path();
    let ran = run(&["--explain", "nobody", "pub", "x", "-c", path]);
    assert_eq!(ran.code(), 2, "{}", ran.shown());
    assert_eq!(ran.stdout, "", "{}", ran.shown());
    assert_eq!(
        ran.stderr,
        format!(
            "{}: no user \"nobody\" (users: carl, dan, greeter, erin)\n",
            runtime_binary_name()
        )
    );
    let ran = run(&[
        "--explain",
        "nobody",
        "sub",
        "x",
        "-c",
        path,
        "--format",
        "json",
    ]);
    assert_eq!(ran.code(), 2, "{}", ran.shown());
    assert_eq!(
        ran.json(),
        json!({"error": "no user \"nobody\" (users: carl, dan, greeter, erin)"})
    );

    for (op, subject) in [
        ("sub", "foo..bar"),
        ("pub", "foo bar"),
        ("sub", "foo.>.bar"),
        ("pub", ""),
    ] {
        let ran = run(&["--explain", "carl", op, subject, "-c", path]);
        assert_eq!(ran.code(), 2, "{}", ran.shown());
        assert!(
            ran.stderr.contains("is not a valid subject"),
            "{}",
            ran.shown()
        );
        assert_eq!(ran.stdout, "", "{}", ran.shown());
    }
}

#[test]
fn explain_of_a_broken_configuration_fails_with_its_errors() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf =
        TempConf::new("authorization {\n  users = [\n    {user: a, password: \"x\"\n  ]\n}\n");
    let ran = run(&["--explain", "a", "pub", "x", "-c", conf.path()]);
    assert_eq!(ran.code(), 1, "{}", ran.shown());
    assert!(ran.stderr.contains(conf.path()), "{}", ran.shown());
    let ran = run(&[
        "--explain",
        "a",
        "pub",
        "x",
        "-c",
        conf.path(),
        "--format",
        "json",
    ]);
    assert_eq!(ran.code(), 1, "{}", ran.shown());
    let answer = ran.json();
    assert_eq!(answer["valid"], false, "{answer:#}");
    assert!(
        answer["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{answer:#}"
    );
}

#[test]
fn explain_says_what_a_jetstream_api_subject_does() {
    if skip_on_reference(SKIP) {
        return;
    }
    let store = std::env::temp_dir().join(format!(
        "tenet-audit-js-{}-{}",
        std::process::id(),
        runtime_binary_name()
    ));
    let text = format!(
        r#"jetstream {{ store_dir: {store:?} }}
accounts {{
  A: {{
    jetstream: enabled
    users = [
      {{ user: bob, password: b,
        permissions: {{ publish: {{ allow: ["$JS.API.INFO", "$JS.API.STREAM.*.student", "student.Created"] }} }} }}
    ]
  }}
}}
"#
    );
    let conf = TempConf::new(&text);
    let path = conf.path();
    let (code, answer) = explain(&conf, "bob", "pub", "$JS.API.STREAM.CREATE.student", None);
    assert_eq!(
        (code, answer["decision"].as_str()),
        (0, Some("allowed")),
        "{answer:#}"
    );
    assert_eq!(answer["account"], "A", "{answer:#}");
    let js = answer["jetstream"].as_str().unwrap_or_default();
    assert!(js.contains("create stream student"), "{answer:#}");
    assert!(js.contains("account A"), "{answer:#}");
    let (_, at) = reason_with(&answer, "$JS.API.STREAM.*.student");
    assert_at(
        &at,
        path,
        line_of(&text, "$JS.API.STREAM.*.student"),
        &answer,
    );

    let (code, answer) = explain(&conf, "bob", "pub", "$JS.API.STREAM.DELETE.other", None);
    assert_eq!(
        (code, answer["decision"].as_str()),
        (1, Some("denied")),
        "{answer:#}"
    );
    let js = answer["jetstream"].as_str().unwrap_or_default();
    assert!(js.contains("delete stream other"), "{answer:#}");

    // Not a JetStream subject: no JetStream meaning.
    let (_, answer) = explain(&conf, "bob", "pub", "student.Created", None);
    assert_eq!(answer["decision"], "allowed", "{answer:#}");
    assert_eq!(answer["jetstream"], Value::Null, "{answer:#}");
    let _ = std::fs::remove_dir_all(&store);
}

// ----- 3. --who ----------------------------------------------------------------

/// A committed configuration of `tests/data/tenancy`: its path and text.
fn tenancy(name: &str) -> (String, String) {
    let path = format!("{}/data/tenancy/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("a tenancy configuration");
    (path, text)
}

/// `--who OP SUBJECT [--account A] -c FILE --format json`: exit 0, the answer.
fn who(file: &str, op: &str, subject: &str, account: Option<&str>) -> Value {
    let mut args = vec!["--who", op, subject];
    if let Some(account) = account {
        args.extend(["--account", account]);
    }
    args.extend(["-c", file, "--format", "json"]);
    let ran = run(&args);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    let answer = ran.json();
    assert_eq!(answer["subject"], subject, "{answer:#}");
    assert_eq!(answer["account"], json!(account), "{answer:#}");
    answer
}

/// The (user, account) pairs of a `--who` answer, in order.
fn reached(answer: &Value) -> Vec<(String, String)> {
    answer["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users list: {answer:#}"))
        .iter()
        .map(|u| {
            (
                u["user"].as_str().unwrap_or_default().to_string(),
                u["account"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The entry of `user` in a `--who` answer.
fn entry<'a>(answer: &'a Value, user: &str) -> &'a Value {
    answer["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["user"] == user))
        .unwrap_or_else(|| panic!("{user} is not in {answer:#}"))
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(u, a)| (u.to_string(), a.to_string()))
        .collect()
}

#[test]
fn who_may_publish_to_the_shared_service() {
    if skip_on_reference(SKIP) {
        return;
    }
    let (path, text) = tenancy("shared-account.conf");
    let answer = who(&path, "pub", "shared.post.x", Some("SHARED"));
    assert_eq!(answer["operation"], "publish");
    assert_eq!(
        reached(&answer),
        pairs(&[
            ("board", "SHARED"),
            ("acme_app", "ACME"),
            ("globex_app", "GLOBEX")
        ]),
        "{answer:#}"
    );
    for user in ["board", "acme_app", "globex_app"] {
        assert_eq!(entry(&answer, user)["decision"], "allowed", "{answer:#}");
    }
    // The tenants through their service imports, each at its own line.
    for (n, user) in ["acme_app", "globex_app"].into_iter().enumerate() {
        let (_, at) = reason_with(entry(&answer, user), "service import");
        assert_at(
            &at,
            &path,
            nth_line_of(&text, "{service: {account: SHARED", n),
            &answer,
        );
    }
    assert!(
        !entry(&answer, "board").to_string().contains("import"),
        "board publishes in its own account: {answer:#}"
    );

    let ran = run(&[
        "--who",
        "pub",
        "shared.post.x",
        "--account",
        "SHARED",
        "-c",
        &path,
    ]);
    assert_eq!(ran.code(), 0, "{}", ran.shown());
    assert!(
        ran.stdout
            .starts_with("3 user(s) may publish to \"shared.post.x\" in account SHARED\n"),
        "{}",
        ran.shown()
    );
}

#[test]
fn who_receives_the_shared_feed() {
    if skip_on_reference(SKIP) {
        return;
    }
    let (path, text) = tenancy("shared-account.conf");
    let answer = who(&path, "sub", "shared.feed.a", Some("SHARED"));
    assert_eq!(answer["operation"], "subscribe");
    assert_eq!(
        reached(&answer),
        pairs(&[
            ("board", "SHARED"),
            ("acme_app", "ACME"),
            ("globex_app", "GLOBEX")
        ]),
        "{answer:#}"
    );
    for (n, user) in ["acme_app", "globex_app"].into_iter().enumerate() {
        let (_, at) = reason_with(entry(&answer, user), "stream import");
        assert_at(
            &at,
            &path,
            nth_line_of(&text, "{stream: {account: SHARED", n),
            &answer,
        );
    }
}

#[test]
fn who_in_one_account_leaves_the_other_accounts_out() {
    if skip_on_reference(SKIP) {
        return;
    }
    let (path, _) = tenancy("shared-account.conf");
    let answer = who(&path, "pub", "foo", Some("ACME"));
    assert_eq!(
        reached(&answer),
        pairs(&[("acme_app", "ACME")]),
        "{answer:#}"
    );
    // What SHARED publishes on its feed reaches ACME; nothing goes back.
    let answer = who(&path, "sub", "shared.feed.a", Some("ACME"));
    assert_eq!(
        reached(&answer),
        pairs(&[("acme_app", "ACME")]),
        "{answer:#}"
    );
    // Every account: each user at least once, and only the users of the file.
    let answer = who(&path, "pub", "shared.post.x", None);
    let users: BTreeSet<String> = reached(&answer).into_iter().map(|(u, _)| u).collect();
    let expected: BTreeSet<String> = ["board", "acme_app", "globex_app"].map(String::from).into();
    assert_eq!(users, expected, "{answer:#}");

    // A service import under a local name: the tenant publishes on "time".
    let (path, text) = tenancy("runtime-account.conf");
    let answer = who(&path, "pub", "runtime.time", Some("RUNTIME"));
    assert_eq!(
        reached(&answer),
        pairs(&[
            ("runtime", "RUNTIME"),
            ("acme_app", "ACME"),
            ("globex_app", "GLOBEX")
        ]),
        "{answer:#}"
    );
    let acme = entry(&answer, "acme_app");
    assert_eq!(acme["subject"], "time", "{answer:#}");
    let (_, at) = reason_with(acme, "service import");
    assert_at(
        &at,
        &path,
        line_of(&text, "subject: \"runtime.time\"}, to: \"time\""),
        &answer,
    );
    // Nobody but RUNTIME's own user may receive its requests.
    let answer = who(&path, "sub", "runtime.time", Some("RUNTIME"));
    assert_eq!(
        reached(&answer),
        pairs(&[("runtime", "RUNTIME")]),
        "{answer:#}"
    );
}

#[test]
fn who_with_an_unknown_account_is_unanswerable() {
    if skip_on_reference(SKIP) {
        return;
    }
    let (path, _) = tenancy("shared-account.conf");
    let ran = run(&[
        "--who",
        "pub",
        "shared.post.x",
        "--account",
        "NOPE",
        "-c",
        &path,
    ]);
    assert_eq!(ran.code(), 2, "{}", ran.shown());
    assert_eq!(ran.stdout, "", "{}", ran.shown());
    assert!(
        ran.stderr.contains("no account \"NOPE\""),
        "{}",
        ran.shown()
    );
    for account in ["SHARED", "ACME", "GLOBEX"] {
        assert!(ran.stderr.contains(account), "{}", ran.shown());
    }
    let ran = run(&[
        "--who",
        "pub",
        "x",
        "--account",
        "NOPE",
        "-c",
        &path,
        "--format",
        "json",
    ]);
    assert_eq!(ran.code(), 2, "{}", ran.shown());
    assert!(
        ran.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("no account \"NOPE\"")),
        "{}",
        ran.shown()
    );
}

#[test]
fn who_reads_the_replies_with_shared_and_private_inboxes() {
    if skip_on_reference(SKIP) {
        return;
    }
    let shared = TempConf::new(SHARED_INBOXES);
    let answer = who(shared.path(), "sub", "_INBOX.joe.1", None);
    assert_eq!(
        reached(&answer),
        pairs(&[("joe", "$G"), ("pam", "$G")]),
        "{answer:#}"
    );
    // The greeter may publish there only as a reply.
    let answer = who(shared.path(), "pub", "_INBOX.joe.1", None);
    assert_eq!(reached(&answer), pairs(&[("greeter", "$G")]), "{answer:#}");
    assert_eq!(entry(&answer, "greeter")["decision"], "replies_only");

    let private = TempConf::new(&private_inboxes("g", "j", "p"));
    let answer = who(private.path(), "sub", "_INBOX.joe.1", None);
    assert_eq!(reached(&answer), vec![], "{answer:#}");
    let answer = who(private.path(), "sub", "_INBOX_joe.1", None);
    assert_eq!(reached(&answer), pairs(&[("joe", "$G")]), "{answer:#}");
}

// ----- 4. every configuration of tests/data and of the corpus ---------------------

/// Reads a configuration as the binary does from `root`: an include is
/// relative to the including file's directory, an absolute one stays absolute.
struct FilesUnder(PathBuf);

impl Resolver for FilesUnder {
    fn read(&self, path: &str, from: &str) -> Result<(String, String), String> {
        let base = Path::new(from)
            .parent()
            .filter(|_| !from.is_empty())
            .unwrap_or(Path::new(""));
        let name = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            base.join(path)
        };
        let text = std::fs::read_to_string(self.0.join(&name)).map_err(|e| e.to_string())?;
        Ok((name.to_string_lossy().into_owned(), text))
    }
}

/// The configuration `name` read from `dir`, with its users and accounts.
fn load(dir: &Path, name: &str) -> Result<(Config, Auth), String> {
    let env = |var: &str| std::env::var(var).ok();
    let parsed = parse_file(name, &FilesUnder(dir.to_path_buf()), &env).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let (config, errors) = read_config(&parsed);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; "));
    }
    let auth = Auth::from_config(&config, None, None, None).map_err(|e| e.to_string())?;
    Ok((config, auth))
}

/// A subject matched by `pattern`: `*` becomes `x`, `>` becomes `x.y`.
fn literal(pattern: &str) -> String {
    pattern
        .split('.')
        .map(|t| match t {
            "*" => "x",
            ">" => "x.y",
            t => t,
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn is_literal(subject: &str) -> bool {
    subject.split('.').all(|t| t != "*" && t != ">")
}

/// One `--explain` question about a user, with what the answer must be
/// when the configuration settles it on its own.
struct Question {
    op: &'static str,
    subject: String,
    queue: Option<String>,
    must_be: Option<&'static str>,
}

/// Questions about a user with `permissions`: the subjects of its entries
/// (wildcards made literal), and `foo.bar`; `cap` at most per operation. A
/// literal deny entry must be denied; a literal allow entry with no deny
/// entries beside it must be allowed.
fn questions(permissions: Option<&Permissions>, cap: usize) -> Vec<Question> {
    let mut out = Vec::new();
    for op in ["pub", "sub"] {
        let list = permissions.and_then(|p| {
            if op == "pub" {
                p.publish.as_ref()
            } else {
                p.subscribe.as_ref()
            }
        });
        let mut mine: Vec<Question> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut add = |entry: &str, deny: bool, no_deny: bool| {
            let mut words = entry.split_whitespace();
            let Some(pattern) = words.next() else { return };
            let queue = if op == "sub" {
                words.next().map(str::to_string)
            } else {
                None
            };
            let subject = literal(pattern);
            if !seen.insert((subject.clone(), queue.clone())) {
                return;
            }
            let settled = is_literal(pattern)
                && queue.is_none()
                && words.next().is_none()
                && !subject.starts_with("_GR_.");
            let must_be = match (settled, deny, no_deny) {
                (true, true, _) => Some("denied"),
                (true, false, true) => Some("allowed"),
                _ => None,
            };
            mine.push(Question {
                op,
                subject,
                queue,
                must_be,
            });
        };
        if let Some(list) = list {
            let no_deny = list.deny.is_empty();
            for entry in &list.deny {
                add(entry, true, no_deny);
            }
            for entry in &list.allow {
                add(entry, false, no_deny);
            }
        }
        // The first entries, and foo.bar.
        mine.truncate(cap - 1);
        if !mine
            .iter()
            .any(|q| q.subject == "foo.bar" && q.queue.is_none())
        {
            mine.push(Question {
                op,
                subject: "foo.bar".to_string(),
                queue: None,
                must_be: None,
            });
        }
        out.extend(mine);
    }
    out
}

/// A configuration to audit: run from `dir` with `-c name`.
struct Target {
    dir: PathBuf,
    name: String,
}

impl Target {
    fn shown(&self) -> String {
        self.dir.join(&self.name).display().to_string()
    }
}

/// Every `.conf` file under `dir`, as paths relative to it, sorted.
fn conf_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for entry in entries.flatten() {
            let rel = rel.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &rel, out);
            } else if rel.extension().is_some_and(|e| e == "conf") {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out);
    out.sort();
    out
}

/// The files of a tree laid out as nats-server's (`conf/`, `server/`,
/// `test/`), each run from its top folder as nats-server's verdicts were.
fn tree_targets(root: &Path) -> Vec<Target> {
    let mut out = Vec::new();
    for top in ["conf", "server", "test"] {
        let dir = root.join(top);
        for name in conf_files(&dir) {
            out.push(Target {
                dir: dir.clone(),
                name,
            });
        }
    }
    out
}

/// What auditing one file found.
#[derive(Default)]
struct Audited {
    accepted: bool,
    calls: usize,
    decisions: usize,
    /// How many answers of each decision.
    by_decision: BTreeMap<String, usize>,
    /// Answers the configuration settles on its own (and so checked).
    settled: usize,
    failures: Vec<String>,
}

/// `-t --format json` on `target`, then, if it is accepted, `--explain` for
/// up to three of its users and `--who` for `foo.bar`, checking that nothing
/// crashes and that every answer is well formed and consistent.
fn audit_file(target: &Target) -> Audited {
    let mut found = Audited::default();
    let shown = target.shown();
    let dir = Some(target.dir.as_path());
    let name = target.name.as_str();
    let fail = |found: &mut Audited, why: String| found.failures.push(format!("{shown}: {why}"));

    let ran = run_in(dir, &["-t", "-c", name, "--format", "json"]);
    found.calls += 1;
    let Some(code) = ran.status.code() else {
        fail(&mut found, format!("-t crashed: {}", ran.shown()));
        return found;
    };
    let Ok(report) = serde_json::from_str::<Value>(&ran.stdout) else {
        fail(&mut found, format!("-t printed no JSON: {}", ran.shown()));
        return found;
    };
    match code {
        0 => {}
        1 => {
            if report["valid"] != false || report["errors"].as_array().is_none_or(|e| e.is_empty())
            {
                fail(&mut found, format!("refused without errors: {report}"));
            }
            return found;
        }
        _ => {
            fail(&mut found, format!("-t exited {code}: {}", ran.shown()));
            return found;
        }
    }
    found.accepted = true;
    if report["valid"] != true || report["file"] != name {
        fail(&mut found, format!("not a valid report: {report}"));
    }
    let Some(list) = report["warnings"].as_array() else {
        fail(&mut found, format!("no warnings list: {report}"));
        return found;
    };
    for w in list {
        let kind_ok = WARNING_KINDS.contains(&w["kind"].as_str().unwrap_or_default());
        let text_ok = [&w["message"], &w["fix"]]
            .iter()
            .all(|t| t.as_str().is_some_and(|t| !t.is_empty()));
        let at_ok = w["at"].is_null()
            || (w["at"]["line"].as_u64().is_some_and(|l| l >= 1)
                && w["at"]["column"].as_u64().is_some_and(|c| c >= 1)
                && w["at"]["file"].is_string());
        if !(kind_ok && text_ok && at_ok) {
            fail(&mut found, format!("malformed warning: {w}"));
        }
    }

    let (_config, auth) = match load(&target.dir, name) {
        Ok(loaded) => loaded,
        Err(e) => {
            fail(
                &mut found,
                format!("-t accepts it, tenet_core does not: {e}"),
            );
            return found;
        }
    };
    let mut users = Vec::new();
    for user in auth.users.identities() {
        if !user.name.is_empty() && !users.iter().any(|(n, _)| *n == user.name) {
            users.push((user.name, user.permissions));
        }
    }
    // Users the explained ones say may publish to or receive foo.bar.
    let mut may_use_foo_bar: Vec<(&str, String, &'static str)> = Vec::new();
    for (user, permissions) in users.iter().take(3) {
        for q in questions(*permissions, 6) {
            let ran = explain_json(dir, name, user, q.op, &q.subject, q.queue.as_deref());
            found.calls += 1;
            let asked = format!("--explain {user} {} {:?} {:?}", q.op, q.subject, q.queue);
            let Some(code) = ran.status.code() else {
                fail(&mut found, format!("{asked} crashed: {}", ran.shown()));
                continue;
            };
            let answer = serde_json::from_str::<Value>(&ran.stdout).unwrap_or(Value::Null);
            let decision = answer["decision"].as_str().unwrap_or_default();
            if !DECISIONS.contains(&decision) {
                fail(&mut found, format!("{asked}: no decision: {}", ran.shown()));
                continue;
            }
            found.decisions += 1;
            *found.by_decision.entry(decision.to_string()).or_default() += 1;
            if code != i32::from(decision == "denied") {
                fail(&mut found, format!("{asked}: {decision} exited {code}"));
            }
            if answer["user"] != *user || answer["subject"] != q.subject.as_str() {
                fail(
                    &mut found,
                    format!("{asked}: answers another question: {answer}"),
                );
            }
            if answer["reasons"].as_array().is_none_or(|r| r.is_empty()) {
                fail(&mut found, format!("{asked}: no reasons: {answer}"));
            }
            if let Some(must) = q.must_be {
                found.settled += 1;
                if decision != must {
                    fail(
                        &mut found,
                        format!("{asked}: {decision}, expected {must}: {answer:#}"),
                    );
                }
            }
            if q.subject == "foo.bar" && decision != "denied" {
                let account = answer["account"].as_str().unwrap_or_default().to_string();
                may_use_foo_bar.push((user, account, q.op));
            }
        }
    }

    // --who foo.bar in every account: well formed, consistent with --explain.
    for op in ["pub", "sub"] {
        let ran = run_in(
            dir,
            &["--who", op, "foo.bar", "-c", name, "--format", "json"],
        );
        found.calls += 1;
        if ran.status.code() != Some(0) {
            fail(&mut found, format!("--who {op} foo.bar: {}", ran.shown()));
            continue;
        }
        let answer = serde_json::from_str::<Value>(&ran.stdout).unwrap_or(Value::Null);
        let Some(reaches) = answer["users"].as_array() else {
            fail(
                &mut found,
                format!("--who {op} foo.bar: no users: {}", ran.shown()),
            );
            continue;
        };
        for reach in reaches {
            let decision = reach["decision"].as_str().unwrap_or_default();
            if !DECISIONS.contains(&decision) || decision == "denied" {
                fail(&mut found, format!("--who {op} foo.bar lists {reach}"));
            }
        }
        // Each explained user who may use foo.bar in its own account is listed.
        for (user, account, _) in may_use_foo_bar.iter().filter(|(_, _, o)| *o == op) {
            let listed = reaches.iter().any(|r| {
                r["user"] == *user && r["account"] == account.as_str() && r["subject"] == "foo.bar"
            });
            if !listed {
                fail(
                    &mut found,
                    format!("--explain lets {user} {op} foo.bar, --who does not list it: {answer}"),
                );
            }
        }
        // And a few of the listed users (by name) get the same decision
        // from --explain on the subject --who names for them.
        let named = reaches
            .iter()
            .filter(|r| r["user"].as_str().is_some_and(|u| !u.starts_with('(')))
            .take(3);
        for reach in named {
            let user = reach["user"].as_str().unwrap_or_default();
            let subject = reach["subject"].as_str().unwrap_or_default();
            let ran = explain_json(dir, name, user, op, subject, None);
            found.calls += 1;
            let answer = serde_json::from_str::<Value>(&ran.stdout).unwrap_or(Value::Null);
            if answer["decision"] != reach["decision"] {
                fail(
                    &mut found,
                    format!(
                        "--who {op} foo.bar says {reach}, --explain {user} {op} {subject} says {}",
                        ran.shown()
                    ),
                );
            }
        }
    }
    found
}

/// What auditing a set of files found.
struct Summary {
    files: usize,
    accepted: usize,
    calls: usize,
    decisions: usize,
    by_decision: BTreeMap<String, usize>,
    settled: usize,
    failures: Vec<String>,
}

/// Audits `targets` on a few threads.
fn audit_all(targets: &[Target]) -> Summary {
    let next = Mutex::new(0usize);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = {
                    let mut next = next.lock().unwrap();
                    *next += 1;
                    *next - 1
                };
                let Some(target) = targets.get(i) else { return };
                let audited = audit_file(target);
                results.lock().unwrap().push(audited);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut by_decision = BTreeMap::new();
    for r in &results {
        for (decision, n) in &r.by_decision {
            *by_decision.entry(decision.clone()).or_default() += n;
        }
    }
    Summary {
        files: targets.len(),
        accepted: results.iter().filter(|r| r.accepted).count(),
        calls: results.iter().map(|r| r.calls).sum(),
        decisions: results.iter().map(|r| r.decisions).sum(),
        by_decision,
        settled: results.iter().map(|r| r.settled).sum(),
        failures: results.into_iter().flat_map(|r| r.failures).collect(),
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} files, {} accepted, {} runs, {} decisions {:?} ({} settled by the file)",
            self.files, self.accepted, self.calls, self.decisions, self.by_decision, self.settled
        )
    }
}

#[test]
fn every_configuration_of_the_tests_and_the_corpus_is_audited_without_a_crash() {
    if skip_on_reference(SKIP) {
        return;
    }
    // Built (once per test process) before the clock starts.
    server_binary();
    let started = Instant::now();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut committed: Vec<Target> = conf_files(&data.join("tenancy"))
        .into_iter()
        .map(|name| Target {
            dir: data.join("tenancy"),
            name,
        })
        .collect();
    assert_eq!(committed.len(), 3, "the tenancy configurations");
    committed.extend(tree_targets(&data.join("config")));
    let data_summary = audit_all(&committed);
    println!("tests/data: {data_summary}");
    assert!(data_summary.accepted >= 8, "tests/data: {data_summary}");
    assert!(data_summary.decisions >= 40, "tests/data: {data_summary}");
    let mut failures = data_summary.failures;

    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/nats-configs");
    if corpus.is_dir() {
        let summary = audit_all(&tree_targets(&corpus));
        println!("corpus: {summary}");
        assert!(summary.files >= 100, "{}: {summary}", corpus.display());
        assert!(summary.accepted >= 40, "corpus: {summary}");
        assert!(summary.decisions >= 120, "corpus: {summary}");
        for decision in ["allowed", "denied"] {
            assert!(
                summary.by_decision.get(decision).is_some_and(|n| *n >= 10),
                "corpus: {summary}"
            );
        }
        assert!(summary.settled >= 10, "corpus: {summary}");
        failures.extend(summary.failures);
    } else {
        // Written past the test harness's capture, so that it shows in every run.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** audit: {} is missing: the corpus is NOT audited (only tests/data is) ***\n",
            corpus.display()
        );
    }
    println!("audited in {:?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ----- 5. the audit against the live server ------------------------------------

/// The logins of a configuration: each user with a password kept in plain
/// text, and each with a bcrypt hash when the test knows its password.
fn logins(config: &Config, bcrypt_password: Option<&str>) -> Vec<(String, String)> {
    let mut users: Vec<&tenet_core::config::options::User> = Vec::new();
    if let Some(block) = &config.authorization {
        users.extend(&block.users);
    }
    for account in &config.accounts {
        users.extend(&account.users);
    }
    users
        .into_iter()
        .filter_map(|u| {
            let password = u.password.clone()?;
            let password = match bcrypt_password {
                _ if !password.starts_with("$2") => password,
                Some(known) if bcrypt::verify(known, &password).unwrap_or(false) => {
                    known.to_string()
                }
                _ => return None,
            };
            Some((u.name.clone()?, password))
        })
        .collect()
}

/// Sends `command` then a PING; returns the `-ERR` lines that came before the
/// PONG (answering the server's PINGs, passing INFO lines and deliveries by).
fn errors_before_pong(c: &mut RawClient, command: &str) -> Vec<String> {
    c.send(format!("{command}PING\r\n"));
    let mut errors = Vec::new();
    loop {
        let line = String::from_utf8(c.read_line()).expect("a UTF-8 line");
        match line.as_str() {
            "PONG\r\n" => return errors,
            "PING\r\n" => c.send("PONG\r\n"),
            l if l.starts_with("INFO ") => {}
            l if l.starts_with("MSG ") => {
                c.read_line();
            }
            l if l.starts_with("-ERR ") => errors.push(l.trim_end().to_string()),
            other => panic!("unexpected line from the server: {other:?}"),
        }
    }
}

/// A raw client logged in as `user`, verbose off, past the INFO that follows
/// tenet's first PONG.
fn login(server: &TestServer, user: &str, password: &str) -> RawClient {
    let mut c = server.client();
    // `"protocol": 1` spelled with a space: the INFO after the first PONG is
    // passed by here, not checked by the harness.
    let connect = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\": 1,\
         \"user\":{},\"pass\":{}}}\r\n",
        json!(user),
        json!(password)
    );
    let errors = errors_before_pong(&mut c, &connect);
    assert!(errors.is_empty(), "{user} cannot log in: {errors:?}");
    let errors = errors_before_pong(&mut c, "");
    assert!(errors.is_empty(), "{user}: {errors:?}");
    c
}

/// Subscriptions tried for every user: (subject, queue).
const LIVE_SUBSCRIPTIONS: &[(&str, Option<&str>)] = &[
    ("foo", None),
    ("foo.bar", None),
    ("foo.*", None),
    ("foo.>", None),
    (">", None),
    ("_INBOX.>", None),
    ("_INBOX.abc", None),
    ("_INBOX_joe.>", None),
    ("_INBOX_pam.1", None),
    ("services.greet", None),
    ("services.*", None),
    ("shared.feed.>", None),
    ("shared.post.x", None),
    ("runtime.time", None),
    ("time", None),
    ("orders.x", None),
    ("orders.x", Some("workers")),
    ("orders.x", Some("other")),
    ("orders.*", Some("workers")),
    ("orders.>", Some("workers")),
    ("feed.>", None),
    ("feed.secret", None),
    ("foo", Some("_sys_")),
    ("$SYS.>", None),
    ("jobs.a", Some("pool.x")),
    ("jobs.a", Some("pool")),
    ("jobs.a", Some("pool.*")),
    ("jobs.a", Some("pool.>")),
    ("jobs.>", Some("pool.x")),
    ("jobs.urgent", None),
    ("jobs.secret", Some("pool.x")),
    ("tasks.x", Some("pool")),
    ("tasks.*", Some("pool")),
    ("tasks.*", None),
];

/// Subjects published by every user.
const LIVE_PUBLISHES: &[&str] = &[
    "foo",
    "foo.bar",
    "services.greet",
    "services.other",
    "_INBOX.abc",
    "_INBOX_joe.1",
    "shared.post.x",
    "shared.feed.a",
    "time",
    "runtime.time",
    "runtime.kv.a",
    "orders.new",
    "orders.secret",
    "billing.x",
    "feed.x",
    "$SYS.REQ.SERVER.PING",
    "_GR_.abc.def",
    // Wildcards in a published subject (accepted without pedantic mode).
    "services.*",
    "orders.>",
    "foo.*",
];

/// Starts the server with the file `path` (absolute), logs in each user whose
/// password is known, tries each subscription and publish, and compares the
/// live answer with `--explain`'s decision on the same file. Returns the
/// disagreements and the number of live answers, allowed and denied.
fn compare_with_live_server(
    label: &str,
    path: &str,
    bcrypt_password: Option<&str>,
) -> (Vec<String>, [usize; 2]) {
    let (config, auth) = load(Path::new("/"), path).expect("the configuration loads");
    let logins = logins(&config, bcrypt_password);
    assert!(logins.len() >= 2, "{label}: too few users to log in");
    let server = TestServer::start_with_args(&["-c", path]);
    let mut disagreements = Vec::new();
    // Live answers: [allowed, denied].
    let mut compared = [0, 0];
    for (user, password) in &logins {
        let permissions = auth
            .users
            .identities()
            .find(|u| u.name == user)
            .and_then(|u| u.permissions);
        // The fixed cases, and those of the user's own entries.
        let mut subs: Vec<(String, Option<String>)> = LIVE_SUBSCRIPTIONS
            .iter()
            .map(|(s, q)| (s.to_string(), q.map(str::to_string)))
            .collect();
        let mut pubs: Vec<String> = LIVE_PUBLISHES.iter().map(|s| s.to_string()).collect();
        for q in questions(permissions, 64) {
            if q.op == "pub" {
                pubs.push(q.subject);
            } else {
                subs.push((q.subject, q.queue));
            }
        }
        let mut c = login(&server, user, password);
        let mut cases: Vec<(&str, String, Option<String>)> = Vec::new();
        cases.extend(subs.into_iter().map(|(s, q)| ("sub", s, q)));
        cases.extend(pubs.into_iter().map(|s| ("pub", s, None)));
        let mut unsub = String::new();
        for (sid, (op, subject, queue)) in cases.iter().enumerate() {
            let command = match (*op, queue) {
                ("sub", Some(q)) => format!("SUB {subject} {q} {sid}\r\n"),
                ("sub", None) => format!("SUB {subject} {sid}\r\n"),
                _ => format!("PUB {subject} 0\r\n\r\n"),
            };
            let errors =
                errors_before_pong(&mut c, &format!("{}{command}", std::mem::take(&mut unsub)));
            let live_allowed = errors.is_empty();
            assert!(
                errors.iter().all(|e| e.contains("Permissions Violation")),
                "{label}: {user} {command:?}: {errors:?}"
            );
            if live_allowed && *op == "sub" {
                unsub = format!("UNSUB {sid}\r\n");
            }
            let ran = explain_json(None, path, user, op, subject, queue.as_deref());
            let answer = ran.json();
            let decision = answer["decision"].as_str().unwrap_or_default();
            assert!(DECISIONS.contains(&decision), "{label}: {}", ran.shown());
            // replies_only is denied here: no request was received.
            let explained_allowed = matches!(decision, "allowed" | "allowed_filtered");
            compared[usize::from(!live_allowed)] += 1;
            if live_allowed != explained_allowed {
                disagreements.push(format!(
                    "{label}: {user} {command:?}: live {}, --explain {decision}: {}",
                    if live_allowed {
                        "allowed".to_string()
                    } else {
                        format!("{errors:?}")
                    },
                    ran.stdout
                ));
            }
        }
    }
    (disagreements, compared)
}

#[test]
fn explain_agrees_with_what_the_live_server_does() {
    if skip_on_reference(SKIP) {
        return;
    }
    let written = [
        ("shared inboxes", TempConf::new(SHARED_INBOXES)),
        (
            "private inboxes",
            TempConf::new(&private_inboxes("g", "j", "p")),
        ),
        ("explain", TempConf::new(EXPLAIN_CONF)),
    ];
    let mut configs: Vec<(String, String, Option<&str>)> = written
        .iter()
        .map(|(label, conf)| (label.to_string(), conf.path().to_string(), None))
        .collect();
    for name in [
        "shared-account.conf",
        "runtime-account.conf",
        "one-account-per-tenant.conf",
    ] {
        configs.push((name.to_string(), tenancy(name).0, None));
    }
    // nats-server's own role examples: default permissions, allow_responses,
    // allow and deny lists (the second through an include, every password
    // the bcrypt hash of "foo").
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/config");
    for (name, password) in [
        ("server/configs/authorization.conf", None),
        ("test/configs/authorization.conf", Some("foo")),
    ] {
        configs.push((name.to_string(), format!("{data}/{name}"), password));
    }
    let mut disagreements = Vec::new();
    let (mut allowed, mut denied) = (0, 0);
    for (label, path, password) in &configs {
        let (found, [a, d]) = compare_with_live_server(label, path, *password);
        disagreements.extend(found);
        allowed += a;
        denied += d;
    }
    println!("compared with the live server: {allowed} allowed, {denied} denied");
    assert!(
        allowed >= 200 && denied >= 100,
        "{allowed} allowed, {denied} denied"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements between --explain and the live server:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// What `replies_only` means live: the greeter may publish to joe's inbox
/// once, in reply to the request it received there, and not otherwise.
#[test]
fn replies_only_is_one_reply_to_a_request_received() {
    if skip_on_reference(SKIP) {
        return;
    }
    let conf = TempConf::new(SHARED_INBOXES);
    for subject in ["_INBOX.joe.1", "_INBOX.joe.2"] {
        let (_, answer) = explain(&conf, "greeter", "pub", subject, None);
        assert_eq!(answer["decision"], "replies_only", "{answer:#}");
    }
    let (_, answer) = explain(&conf, "joe", "pub", "services.greet", None);
    assert_eq!(answer["decision"], "allowed", "{answer:#}");

    let server = TestServer::start_with_args(&["-c", conf.path()]);
    let mut greeter = login(&server, "greeter", "g");
    let mut joe = login(&server, "joe", "j");
    assert_eq!(
        errors_before_pong(&mut greeter, "SUB services.greet 1\r\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        errors_before_pong(&mut joe, "SUB _INBOX.joe.1 1\r\n"),
        Vec::<String>::new()
    );
    let request = wire::request("services.greet", "_INBOX.joe.1", "hi");
    assert_eq!(errors_before_pong(&mut joe, &request), Vec::<String>::new());
    greeter.expect(wire::msg_reply("services.greet", 1, "_INBOX.joe.1", "hi"));
    // The reply goes through, once.
    let reply = wire::publish("_INBOX.joe.1", "hello");
    assert_eq!(
        errors_before_pong(&mut greeter, &reply),
        Vec::<String>::new()
    );
    joe.expect(wire::msg("_INBOX.joe.1", 1, "hello"));
    let again = errors_before_pong(&mut greeter, &reply);
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].contains("Permissions Violation"), "{again:?}");
    // No request came on this inbox: denied.
    let other = errors_before_pong(&mut greeter, &wire::publish("_INBOX.joe.2", "x"));
    assert_eq!(other.len(), 1, "{other:?}");
    assert!(other[0].contains("Permissions Violation"), "{other:?}");
}

/// What `c` receives until `needle` is in it: within 5 s when it is
/// `expected`, else in a quiet 200 ms (to see that it does not come).
fn read_until(c: &mut RawClient, needle: &str, expected: bool) -> String {
    let wait = if expected {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(200)
    };
    let deadline = Instant::now() + wait;
    let mut text = String::new();
    while !text.contains(needle) && Instant::now() < deadline {
        text.push_str(&String::from_utf8_lossy(
            &c.read_for(Duration::from_millis(20)),
        ));
    }
    text
}

/// `--who` against live deliveries in the tenancy configurations: with
/// `observer` publishing (sub) or subscribed (pub) on `subject` in
/// `account`, the users whose messages arrive, or who receive, are exactly
/// those `--who` lists, each on the subject it names.
#[test]
fn who_agrees_with_what_the_live_server_delivers() {
    if skip_on_reference(SKIP) {
        return;
    }
    let cases = [
        (
            "shared-account.conf",
            "sub",
            "shared.feed.a",
            "SHARED",
            "board",
        ),
        (
            "shared-account.conf",
            "pub",
            "shared.post.x",
            "SHARED",
            "board",
        ),
        (
            "runtime-account.conf",
            "pub",
            "runtime.time",
            "RUNTIME",
            "runtime",
        ),
        (
            "runtime-account.conf",
            "pub",
            "runtime.kv.a",
            "RUNTIME",
            "runtime",
        ),
        (
            "one-account-per-tenant.conf",
            "pub",
            "foo",
            "ACME",
            "acme_ops",
        ),
        (
            "one-account-per-tenant.conf",
            "sub",
            "foo",
            "GLOBEX",
            "globex_app",
        ),
    ];
    for (name, op, subject, account, observer) in cases {
        let (path, _) = tenancy(name);
        let answer = who(&path, op, subject, Some(account));
        let listed: BTreeSet<(String, String)> = answer["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| {
                let user = u["user"].as_str().unwrap_or_default().to_string();
                (user, u["subject"].as_str().unwrap_or_default().to_string())
            })
            .collect();
        let (config, _) = load(Path::new("/"), &path).expect("loads");
        let users = logins(&config, None);
        let password = |user: &str| {
            users
                .iter()
                .find(|(u, _)| u == user)
                .map(|(_, p)| p.clone())
                .expect("a user of the file")
        };
        let server = TestServer::start_with_args(&["-c", &path]);
        let mut seen = BTreeSet::new();
        if op == "sub" {
            // Everyone listens to everything in its own account; the observer publishes.
            let mut listeners: Vec<(String, RawClient)> = users
                .iter()
                .map(|(user, pass)| {
                    let mut c = login(&server, user, pass);
                    assert_eq!(
                        errors_before_pong(&mut c, "SUB > 1\r\n"),
                        Vec::<String>::new()
                    );
                    (user.clone(), c)
                })
                .collect();
            let mut publisher = login(&server, observer, &password(observer));
            let sent = wire::publish(subject, "x");
            assert_eq!(
                errors_before_pong(&mut publisher, &sent),
                Vec::<String>::new()
            );
            for (user, c) in &mut listeners {
                let expected = listed.iter().any(|(u, _)| u == user);
                let text = read_until(c, "MSG ", expected);
                if let Some(rest) = text.split("MSG ").nth(1) {
                    let got = rest.split(' ').next().unwrap_or_default().to_string();
                    seen.insert((user.clone(), got));
                }
            }
        } else {
            // The observer listens; everyone publishes its name on the subject
            // --who names for it, or on `subject` if it is not listed.
            let mut listener = login(&server, observer, &password(observer));
            let sub = format!("SUB {subject} 1\r\n");
            assert_eq!(
                errors_before_pong(&mut listener, &sub),
                Vec::<String>::new()
            );
            for (user, pass) in &users {
                let on = listed
                    .iter()
                    .find(|(u, _)| u == user)
                    .map_or(subject, |(_, s)| s.as_str());
                let mut c = login(&server, user, pass);
                let sent = wire::publish(on, user);
                assert_eq!(errors_before_pong(&mut c, &sent), Vec::<String>::new());
                let expected = listed.iter().any(|(u, _)| u == user);
                let payload = format!("\r\n{user}\r\n");
                if read_until(&mut listener, &payload, expected).contains(&payload) {
                    seen.insert((user.clone(), on.to_string()));
                }
            }
        }
        assert_eq!(
            seen, listed,
            "{name}: --who {op} {subject} --account {account} against live deliveries\n{answer:#}"
        );
    }
}

// ----- 6. the warnings in the server's log ----------------------------------------

#[test]
fn the_server_logs_the_warnings_when_it_starts() {
    if skip_on_reference(SKIP) {
        return;
    }
    let mut server = TestServer::with_config(SHARED_INBOXES, &[]);
    assert!(server.wait_for_log("Server is ready", Duration::from_secs(5)));
    let logs = server.logs();
    let column = column_of(SHARED_INBOXES, "_INBOX.>");
    for (reader, victim) in [("pam", "joe"), ("joe", "pam")] {
        let said = format!(".conf:3:{column}: {reader} can read {victim}'s replies: ");
        let line = logs
            .lines()
            .find(|l| l.contains(&said))
            .unwrap_or_else(|| panic!("no {said:?} in the log:\n{logs}"));
        assert!(line.contains("[WRN] "), "{line}");
        assert!(line.ends_with(')') && line.contains(" (fix: "), "{line}");
    }
    assert!(
        logs.lines()
            .any(|l| l.ends_with("[WRN] Plaintext passwords detected, use nkeys or bcrypt")),
        "{logs}"
    );
    assert_eq!(
        logs.lines().filter(|l| l.contains("[WRN]")).count(),
        3,
        "{logs}"
    );
}

#[test]
fn a_reload_logs_the_warnings_of_the_new_configuration() {
    if skip_on_reference(SKIP) {
        return;
    }
    let clean = private_inboxes_bcrypt();
    let conf = TempConf::new(&clean);
    let mut server = TestServer::start_with_args(&["-c", conf.path()]);
    assert!(server.wait_for_log("Server is ready", Duration::from_secs(5)));
    let logs = server.logs();
    assert!(
        !logs.contains("[WRN]"),
        "a clean file warns of nothing:\n{logs}"
    );

    // To everyone's `_INBOX.>` and plain passwords.
    conf.rewrite(SHARED_INBOXES);
    server.signal(libc::SIGHUP);
    let column = column_of(SHARED_INBOXES, "_INBOX.>");
    let line = format!(
        "[WRN] {}:3:{column}: pam can read joe's replies: it may subscribe to \"_INBOX.>\" (fix: ",
        conf.path()
    );
    assert!(
        server.wait_for_log(&line, Duration::from_secs(5)),
        "no {line:?} after the reload:\n{}",
        server.logs()
    );
    assert!(server.wait_for_log("Reloaded server configuration", Duration::from_secs(5)));
    assert!(server.wait_for_log(
        "[WRN] Plaintext passwords detected, use nkeys or bcrypt",
        Duration::from_secs(5)
    ));
    let warned = server.logs().matches("[WRN]").count();
    assert_eq!(warned, 3, "{}", server.logs());

    // Back to the clean file: a second reload, and no warning more.
    conf.rewrite(&clean);
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server
        .logs()
        .matches("Reloaded server configuration")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "no second reload:\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        server.logs().matches("[WRN]").count(),
        3,
        "{}",
        server.logs()
    );
}
