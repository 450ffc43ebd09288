//! The errors suite (tests/suites/errors.rs) against tenet-async-std.

#[path = "../suites/errors.rs"]
mod suite;
