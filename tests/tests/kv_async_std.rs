//! The kv suite (tests/suites/kv.rs) against tenet-async-std.

#[path = "../suites/kv.rs"]
mod suite;
