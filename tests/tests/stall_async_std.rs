//! The stall suite (tests/suites/stall.rs) against tenet-async-std.

#[path = "../suites/stall.rs"]
mod suite;
