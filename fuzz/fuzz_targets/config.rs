//! Checks `config::parse` and `config::options::read_config` on arbitrary text: no panic, non-empty error messages, error lines within the text.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use tenet_core::config::options::read_config;
use tenet_core::config::{parse, ConfigError, MapResolver};

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
            let (_config, errors) = read_config(&parsed);
            check(&errors, lines);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "Err with no errors");
            check(&errors, lines);
        }
    }
});
