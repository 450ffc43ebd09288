//! JetStream: each account's streams, their stored messages and limits.
//!
//! Work in progress on the `jetstream` branch (issue 18): so far the message
//! store ([`store`]) with nats-server's limits and accounting; the API, the
//! configuration, the file store and the engine's hooks follow.

pub mod store;
