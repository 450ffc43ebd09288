//! The auth suite (tests/suites/auth.rs) against tenet-async-std.

#[path = "../suites/auth.rs"]
mod suite;
