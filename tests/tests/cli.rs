//! The cli suite (tests/suites/cli.rs) against tenet-mio.

#[path = "../suites/cli.rs"]
mod suite;
