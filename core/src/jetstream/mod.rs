//! JetStream: each account's streams, their stored messages and limits.
//!
//! Work in progress on the `jetstream` branch (issue 18): so far the message
//! store ([`store`]) with nats-server's limits and accounting, and stream
//! configurations ([`config`]) with its defaults, checks and errors
//! ([`api_error`]); the API, the server configuration, the file store and
//! the engine's hooks follow.

pub mod api;
pub mod api_error;
pub mod config;
pub mod json;
pub mod log_format;
pub mod store;
pub mod stream;
