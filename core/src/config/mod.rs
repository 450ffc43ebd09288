//! Configuration files in nats-server's format: the value tree, the parser, typed options.

pub mod duration;
mod lex;
pub mod options;
pub mod parse;
pub mod value;

pub use parse::{parse, parse_file, ConfigError, MapResolver, Resolver};
pub use value::{Key, Pos, Value, ValueKind};
