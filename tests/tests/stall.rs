//! The stall suite (tests/suites/stall.rs) against tenet-mio.

#[path = "../suites/stall.rs"]
mod suite;
