//! The readme suite (tests/suites/readme.rs) against tenet-async-std.

#[path = "../suites/readme.rs"]
mod suite;
