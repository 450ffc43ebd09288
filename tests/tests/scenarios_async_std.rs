//! The scenarios suite (tests/suites/scenarios.rs) against tenet-async-std.

#[path = "../suites/scenarios.rs"]
mod suite;
