//! Checks `config::parse` and `config::options::read_config` on arbitrary text: no panic, non-empty error messages, error lines within the text; and the permission audit of every text that loads: no panic, warnings within the text.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use tenet_core::audit::{Audit, Operation};
use tenet_core::config::options::read_config;
use tenet_core::config::{parse, ConfigError, MapResolver};
use tenet_core::Auth;

fn check(errors: &[ConfigError], lines: usize) {
    for e in errors {
        let shown = e.to_string();
        assert!(!shown.is_empty(), "empty error display: {e:?}");
        assert!(!e.message.is_empty(), "empty error message: {e:?}");
        if let Some(pos) = &e.pos {
            assert!(
                (pos.line as usize) <= lines + 1,
                "error on line {} of a {lines}-line text: {e:?}",
                pos.line
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    let resolver = MapResolver(HashMap::new());
    match parse("fuzz.conf", &text, &resolver, &|_| None) {
        Ok(parsed) => {
            let (config, errors) = read_config(&parsed);
            check(&errors, lines);
            if errors.is_empty() {
                if let Ok(auth) = Auth::from_config(&config, None, None, None) {
                    audit(&auth, config.server.jetstream.is_some(), lines);
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "Err with no errors");
            check(&errors, lines);
        }
    }
});

/// The audit of a loaded configuration: every warning within the text, and
/// each user's answers on a few subjects, explained and rendered.
fn audit(auth: &Auth, jetstream: bool, lines: usize) {
    let audit = Audit::new(auth, jetstream);
    for warning in audit.warnings() {
        assert!(!warning.message.is_empty() && !warning.fix.is_empty());
        if let Some(at) = &warning.at {
            assert!((at.line as usize) <= lines + 1, "{warning:?}");
        }
        let _ = (warning.to_text(), warning.to_json());
    }
    let names: Vec<String> = auth
        .users
        .identities()
        .map(|u| u.name.to_string())
        .collect();
    for subject in [
        "a",
        "a.b",
        "_INBOX.x",
        "$JS.API.STREAM.CREATE.s",
        "a.*",
        ">",
    ] {
        for operation in [Operation::Publish, Operation::Subscribe] {
            for name in names.iter().take(4) {
                if let Ok(e) = audit.explain(name, operation, subject, None) {
                    let _ = (e.to_text(), e.to_json());
                }
            }
            if let Ok(w) = audit.who(operation, subject, None) {
                let _ = (w.to_text(), w.to_json());
            }
        }
    }
}
