//! The resources suite (tests/suites/resources.rs) against tenet-async-std.

#[path = "../suites/resources.rs"]
mod suite;
