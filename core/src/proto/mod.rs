//! The NATS client protocol: parsing what clients send, encoding what the server sends.

pub mod connect;
pub mod encode;
pub mod parser;

pub use connect::ConnectOptions;
pub use parser::{Op, ParseError, Parser, Publish};
