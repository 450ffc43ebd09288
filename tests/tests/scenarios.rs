//! The scenarios suite (tests/suites/scenarios.rs) against tenet-mio.

#[path = "../suites/scenarios.rs"]
mod suite;
