//! The permission audit on the command line: `--explain`, `--who`, and the warnings `-t` prints, as text or JSON.

use std::process::ExitCode;

use serde_json::json;
use tenet_core::audit::{Audit, Verdict, Warning};
use tenet_core::auth::Auth;
use tenet_core::config::ConfigError;

use crate::cli::Question;

/// Exit status of `--explain` when the answer is "denied" (allowed is 0).
const DENIED: u8 = 1;
/// Exit status of a question the audit cannot answer (unknown user, bad subject).
const UNANSWERABLE: u8 = 2;

/// Answers `question` about the loaded configuration, prints the answer and
/// returns the exit status: 0 allowed, 1 denied, 2 unanswerable.
pub fn answer(
    binary: &str,
    question: &Question,
    account: Option<&str>,
    auth: &Auth,
    jetstream: bool,
    json: bool,
) -> ExitCode {
    let audit = Audit::new(auth, jetstream);
    let result = match question {
        Question::Explain {
            user,
            operation,
            subject,
            queue,
        } => audit
            .explain(user, *operation, subject, queue.as_deref())
            .map(|e| {
                let denied = e.verdict == Verdict::Denied;
                let text = if json {
                    pretty(&e.to_json())
                } else {
                    e.to_text()
                };
                (text, if denied { DENIED } else { 0 })
            }),
        Question::Who { operation, subject } => audit.who(*operation, subject, account).map(|w| {
            let text = if json {
                pretty(&w.to_json())
            } else {
                w.to_text()
            };
            (text, 0)
        }),
    };
    match result {
        Ok((text, status)) => {
            print!("{text}");
            ExitCode::from(status)
        }
        Err(e) => {
            if json {
                println!("{}", pretty(&json!({"error": e.to_string()})));
            } else {
                eprintln!("{binary}: {e}");
            }
            ExitCode::from(UNANSWERABLE)
        }
    }
}

/// Configuration errors of an audit command, printed as JSON or text.
pub fn report_errors(binary: &str, errors: &[ConfigError], json: bool) -> ExitCode {
    if json {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        println!("{}", pretty(&json!({"valid": false, "errors": list})));
    } else {
        for error in errors {
            eprintln!("{binary}: {error}");
        }
    }
    ExitCode::from(1)
}

/// `-t` on a valid file: says so, with its warnings (stderr, or all of it as
/// JSON on stdout); with `strict`, warnings make the exit status 1.
pub fn check(binary: &str, file: &str, warnings: &[Warning], json: bool, strict: bool) -> ExitCode {
    if json {
        let list: Vec<_> = warnings.iter().map(Warning::to_json).collect();
        println!(
            "{}",
            pretty(&json!({"file": file, "valid": true, "warnings": list}))
        );
    } else {
        for warning in warnings {
            eprint!("{}", warning.to_text());
        }
        println!("{binary}: configuration file {file} is valid");
    }
    if strict && !warnings.is_empty() {
        if !json {
            eprintln!(
                "{binary}: {} warning(s), and --strict makes them errors",
                warnings.len()
            );
        }
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    text.push('\n');
    text
}
