//! The resources suite (tests/suites/resources.rs) against tenet-mio.

#[path = "../suites/resources.rs"]
mod suite;
