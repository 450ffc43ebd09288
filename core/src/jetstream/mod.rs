//! JetStream: each account's streams, their stored messages, the `$JS.API`
//! requests that manage them, and the on-disk form of file streams.
//!
//! The engine (`server::jetstream`) hands this module API requests and
//! published messages, and sends what it answers; the host writes what file
//! streams need (`api::StoreWrite`) and gives them back at start-up.
//! Consumers (`consumers`, their state in `consumer`) deliver through
//! `delivery`; what JetStream sends of its own leaves through `outbox`.

pub mod advisory;
pub mod api;
pub mod api_error;
pub mod block;
pub mod config;
pub mod consumer;
pub mod consumer_config;
pub mod consumers;
pub mod delivery;
pub mod flow_control;
pub mod json;
pub mod log_format;
pub mod outbox;
pub mod pacing;
pub mod store;
pub mod stream;
