//! Parses nats-server's own configuration files and compares with what nats-server
//! 2.9.10 said of each (`nats-server -t -c FILE`, run from the file's top folder).
//!
//! The whole corpus lives in `../shared/conformance/` beside the repository; a small
//! committed subset under `tests/data/config/` (in the tests crate) is checked too, so that this test never
//! silently checks nothing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use tenet_core::config::options::read_config;
use tenet_core::config::parse::Parsed;
use tenet_core::config::{parse_file, ConfigError, Resolver};
use tenet_core::Auth;

/// Reads files under one top folder (`conf/`, `server/` or `test/`), naming them as
/// nats-server does: an include is relative to the including file's directory
/// (joined like Go's `filepath.Join`, which keeps even an absolute path under it).
struct FsResolver {
    root: PathBuf,
}

impl Resolver for FsResolver {
    fn read(&self, path: &str, from: &str) -> Result<(String, String), String> {
        let dir = Path::new(from).parent().unwrap_or(Path::new(""));
        let name = clean(&dir.join(path.trim_start_matches('/')));
        let text = std::fs::read_to_string(self.root.join(&name)).map_err(|e| e.to_string())?;
        Ok((name, text))
    }
}

/// Removes `.` and `name/..` steps without touching the file system.
fn clean(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if parts.last().is_some_and(|p| p != "..") => {
                parts.pop();
            }
            other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    parts.join("/")
}

/// What nats-server's verdict means for the parser.
#[derive(Debug)]
enum Expect {
    /// Accepted, or refused for what a key means: the text must parse.
    Parses,
    /// A syntax error on this line.
    SyntaxErrorOnLine(u32),
    /// An included file is missing.
    MissingInclude,
}

fn expectation(verdict: &str, message: &str) -> Expect {
    if let Some(rest) = message.split("Parse error on line ").nth(1) {
        let line = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok());
        return Expect::SyntaxErrorOnLine(line.expect("a line number after 'Parse error on line'"));
    }
    if message.contains("error parsing include file") {
        return Expect::MissingInclude;
    }
    assert!(
        verdict == "valid" || verdict == "rejected",
        "unknown verdict {verdict:?}"
    );
    Expect::Parses
}

/// A file nats-server accepts must be accepted by tenet's typed layer too, or
/// refused only for features tenet does not implement yet, each named with its
/// position.
fn typed_verdict(parsed: &Parsed) -> (String, bool) {
    let (config, errors) = read_config(parsed);
    if errors.is_empty() {
        // The accounts and users must compile too (imports checked against
        // exports, users unique, credentials well formed).
        let compiled = Auth::from_config(&config, None, None, None);
        return match compiled {
            Ok(_) => ("accepted".to_string(), true),
            Err(e) => (format!("WRONG: {e}"), false),
        };
    }
    // A feature not built yet, or a setting tenet will not offer (a cipher
    // suite rustls lacks), named where it is written.
    let not_yet =
        |e: &ConfigError| e.pos.is_some() && e.message.contains("is not supported by tenet");
    let good = errors.iter().all(not_yet);
    let shown = errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    (
        format!("{}: {shown}", if good { "not yet" } else { "WRONG" }),
        good,
    )
}

/// Checks every row of `verdicts` against the files under `root`; returns the
/// summary table, the number of rows and the failures.
fn check_corpus(root: &Path, verdicts: &Path) -> (String, usize, Vec<String>) {
    let tsv = std::fs::read_to_string(verdicts).expect("readable verdicts");
    let env = |name: &str| std::env::var(name).ok();
    let mut table = format!("{:<58} {:<9} tenet\n", "file", "nats");
    let mut failures = Vec::new();
    let mut rows = 0;
    for row in tsv.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = row.splitn(3, '\t');
        let (path, verdict, message) = (
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
        );
        let (top, name) = path
            .split_once('/')
            .expect("a path under conf/, server/ or test/");
        let expect = expectation(verdict, message);
        let resolver = FsResolver {
            root: root.join(top),
        };
        let result = parse_file(name, &resolver, &env);
        rows += 1;
        let (shown, good) = match (&result, &expect) {
            (Ok(p), Expect::Parses) if verdict == "valid" => typed_verdict(p),
            (Ok(p), Expect::Parses) => (format!("parsed ({} top-level keys)", p.map.len()), true),
            (Ok(_), _) => ("parsed, but nats-server refused it".to_string(), false),
            (Err(errors), expect) => {
                let first = &errors[0];
                let line = first.pos.as_ref().map(|p| p.line);
                let good = match expect {
                    Expect::Parses => false,
                    Expect::SyntaxErrorOnLine(n) => line == Some(*n),
                    Expect::MissingInclude => first.message.contains("cannot read included file"),
                };
                (format!("refused: {first}"), good)
            }
        };
        let nats = match expect {
            Expect::Parses => verdict.to_string(),
            Expect::SyntaxErrorOnLine(n) => format!("line {n}"),
            Expect::MissingInclude => "include".to_string(),
        };
        let _ = writeln!(
            table,
            "{path:<58} {nats:<9} {}{shown}",
            if good { "" } else { "MISMATCH " }
        );
        if !good {
            failures.push(format!(
                "{path}: nats-server said {message:?}; tenet: {shown}"
            ));
        }
    }
    (table, rows, failures)
}

fn report(title: &str, root: &Path, verdicts: &Path) -> usize {
    let (table, rows, failures) = check_corpus(root, verdicts);
    println!("{title}\n{table}");
    assert!(
        failures.is_empty(),
        "{title}: {} mismatches:\n{}\n\n{table}",
        failures.len(),
        failures.join("\n")
    );
    rows
}

#[test]
fn nats_server_corpus() {
    let shared = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance"
    ));
    let root = shared.join("nats-configs");
    let verdicts = shared.join("nats-server-2.9.10-verdicts.tsv");
    if !root.is_dir() || !verdicts.is_file() {
        // Written past the test harness's capture, so that it shows in every run.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** config_corpus: {} is missing: the nats-server corpus is NOT checked (only the committed subset is) ***\n",
            shared.display()
        );
        return;
    }
    let rows = report("nats-server corpus", &root, &verdicts);
    assert!(rows >= 100, "only {rows} corpus rows");
}

#[test]
fn committed_subset() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/config"));
    let rows = report("committed subset", root, &root.join("verdicts.tsv"));
    assert!(rows >= 10, "only {rows} rows in the committed subset");
}

#[test]
fn include_paths_are_joined_like_go() {
    assert_eq!(clean(Path::new("configs/./x.conf")), "configs/x.conf");
    assert_eq!(
        clean(Path::new("includes/../passwords.conf")),
        "passwords.conf"
    );
    assert_eq!(clean(&Path::new("").join("simple.conf")), "simple.conf");
    assert_eq!(clean(Path::new("../a.conf")), "../a.conf");
}

/// The corpus's files with a `tls` block that nats-server 2.9.10 accepts:
/// the real binary's `-t` (which reads the certificate files, run from the
/// file's top folder as the verdicts were) accepts each, or refuses it
/// naming what tenet does not support.
#[test]
fn tls_files_pass_the_binarys_check() {
    let shared = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance"
    ));
    let root = shared.join("nats-configs");
    let Ok(tsv) = std::fs::read_to_string(shared.join("nats-server-2.9.10-verdicts.tsv")) else {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** config_corpus: {} is missing: its TLS files are NOT checked ***\n",
            shared.display()
        );
        return;
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for row in tsv.lines() {
        let mut cols = row.splitn(3, '\t');
        let (Some(path), Some("valid")) = (cols.next(), cols.next()) else {
            continue;
        };
        let (top, name) = path.split_once('/').expect("a top folder");
        let text = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        if !text.lines().any(|l| l.trim_start().starts_with("tls")) {
            continue;
        }
        checked += 1;
        let out = std::process::Command::new(tenet_tests::server_binary())
            .args(["-t", "-c", name])
            .current_dir(root.join(top))
            .output()
            .expect("the binary runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() && !said.contains("is not supported by tenet") {
            failures.push(format!("{path}: {said}"));
        }
    }
    assert!(checked >= 20, "only {checked} TLS files");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
