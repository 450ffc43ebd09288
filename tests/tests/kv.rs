//! The kv suite (tests/suites/kv.rs) against tenet-mio.

#[path = "../suites/kv.rs"]
mod suite;
