//! A stream's configuration as the API carries it: read from a request's
//! JSON, completed with nats-server's defaults and checked in nats-server's
//! order with its error texts, and written back in its field order.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::api_error::ApiError;
use crate::config::duration::format_duration;
use crate::subject::{is_subset, is_valid_subject, subjects_collide};

/// Longest stream name.
pub const MAX_NAME_LEN: usize = 255;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// Most replicas nats-server accepts in a configuration.
const MAX_REPLICAS: i64 = 5;
/// The default duplicate window: two minutes, in nanoseconds.
pub const DEFAULT_DUPLICATE_WINDOW: i64 = 120_000_000_000;
/// The shortest `max_age` and `duplicate_window`: 100 ms.
const MIN_WINDOW: i64 = 100_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    #[default]
    Limits,
    Interest,
    WorkQueue,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    #[default]
    File,
    Memory,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscardPolicy {
    #[default]
    Old,
    New,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `StreamConfig`, field for field in nats-server 2.9.10's JSON order.
/// Durations are nanoseconds. Unknown fields are ignored, as nats-server
/// ignores them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    pub retention: Retention,
    pub max_consumers: i64,
    pub max_msgs: i64,
    pub max_bytes: i64,
    pub max_age: i64,
    pub max_msgs_per_subject: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_msg_size: i64,
    pub discard: DiscardPolicy,
    pub storage: Storage,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub no_ack: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub template_owner: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicate_window: i64,
    /// Placement, mirrors, sources and republishing are not implemented:
    /// kept only to refuse a configuration that asks for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<serde_json::Value>,
    pub allow_direct: bool,
    pub mirror_direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    pub sealed: bool,
    pub deny_delete: bool,
    pub deny_purge: bool,
    pub allow_rollup_hdrs: bool,
}

/// nats-server's rule for stream (and consumer) names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.bytes().any(|b| {
            matches!(
                b,
                b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'.' | b'*' | b'>'
            )
        })
}

impl StreamConfig {
    /// Reads a request body; anything that is not a JSON object of the
    /// right field types is nats-server's `invalid JSON`.
    pub fn from_json(body: &[u8]) -> Result<StreamConfig, ApiError> {
        // An array would fill the fields in order: Go refuses it.
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(object @ serde_json::Value::Object(_)) => {
                serde_json::from_value(object).map_err(|_| ApiError::invalid_json())
            }
            _ => Err(ApiError::invalid_json()),
        }
    }

    /// The configuration with nats-server's defaults filled in, or the
    /// first of its checks that fails. `server_duplicate_window` is the
    /// server's `limits { duplicate_window }` (0: none).
    pub fn checked(&self, server_duplicate_window: i64) -> Result<StreamConfig, ApiError> {
        fn invalid(reason: impl Into<String>) -> ApiError {
            ApiError::invalid_stream_config(reason)
        }
        if !is_valid_name(&self.name) {
            return Err(invalid(
                "stream name is required and can not contain '.', '*', '>'",
            ));
        }
        if self.name.len() > MAX_NAME_LEN {
            return Err(invalid(format!(
                "stream name is too long, maximum allowed is {MAX_NAME_LEN}"
            )));
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(invalid(format!(
                "stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
            )));
        }
        let mut cfg = self.clone();
        if cfg.num_replicas == 0 {
            cfg.num_replicas = 1;
        }
        if cfg.num_replicas > MAX_REPLICAS {
            return Err(invalid(format!("maximum replicas is {MAX_REPLICAS}")));
        }
        if cfg.num_replicas < 0 {
            return Err(ApiError::negative_replicas());
        }
        for limit in [
            &mut cfg.max_msgs,
            &mut cfg.max_msgs_per_subject,
            &mut cfg.max_bytes,
            &mut cfg.max_msg_size,
            &mut cfg.max_consumers,
        ] {
            if *limit == 0 {
                *limit = -1;
            }
        }
        if cfg.duplicate_window == 0 && cfg.mirror.is_none() {
            let mut window = DEFAULT_DUPLICATE_WINDOW;
            if server_duplicate_window > 0 {
                window = window.min(server_duplicate_window);
            }
            cfg.duplicate_window = if cfg.max_age != 0 && cfg.max_age < window {
                cfg.max_age
            } else {
                window
            };
        }
        if cfg.max_age > 0 && cfg.max_age < MIN_WINDOW {
            return Err(invalid("max age needs to be >= 100ms"));
        }
        if cfg.duplicate_window < 0 {
            return Err(invalid("duplicates window can not be negative"));
        }
        if cfg.max_age != 0 && cfg.duplicate_window > cfg.max_age {
            return Err(invalid("duplicates window can not be larger then max age"));
        }
        if server_duplicate_window > 0 && cfg.duplicate_window > server_duplicate_window {
            return Err(invalid(format!(
                "duplicates window can not be larger then server limit of {}",
                format_duration(Duration::from_nanos(server_duplicate_window as u64))
            )));
        }
        if cfg.duplicate_window > 0 && cfg.duplicate_window < MIN_WINDOW {
            return Err(invalid("duplicates window needs to be >= 100ms"));
        }
        if cfg.deny_purge && cfg.allow_rollup_hdrs {
            return Err(invalid("roll-ups require the purge permission"));
        }
        if cfg.discard_new_per_subject {
            if cfg.discard != DiscardPolicy::New {
                return Err(invalid(
                    "discard new per subject requires discard new policy to be set",
                ));
            }
            if cfg.max_msgs_per_subject <= 0 {
                return Err(invalid(
                    "discard new per subject requires max msgs per subject > 0",
                ));
            }
        }
        for (present, what) in [
            (cfg.mirror.is_some(), "mirror"),
            (cfg.sources.is_some(), "sources"),
            (cfg.republish.is_some(), "republish"),
            (cfg.placement.is_some(), "placement"),
        ] {
            if present {
                return Err(invalid(format!(
                    "stream {what} is not supported by tenet yet"
                )));
            }
        }
        if cfg.mirror_direct {
            return Err(invalid("stream has no mirror but does have mirror direct"));
        }
        if cfg.subjects.is_empty() {
            cfg.subjects.push(cfg.name.clone());
        } else {
            for (i, subject) in cfg.subjects.iter().enumerate() {
                if cfg.subjects[..i].contains(subject) {
                    return Err(invalid("duplicate subjects detected"));
                }
                if is_subset(subject.as_bytes(), b"$JS.API.>") {
                    return Err(invalid("subjects overlap with jetstream api"));
                }
                if !is_valid_subject(subject.as_bytes()) {
                    return Err(invalid("invalid subject"));
                }
            }
        }
        for subject in &cfg.subjects {
            for other in &cfg.subjects {
                if other != subject && subjects_collide(other.as_bytes(), subject.as_bytes()) {
                    return Err(invalid(format!(
                        "subject {subject:?} overlaps with {other:?}"
                    )));
                }
            }
        }
        Ok(cfg)
    }

    /// The JSON nats-server writes for it (Go's escaping included).
    pub fn to_json(&self) -> String {
        go_json(&serde_json::to_string(self).expect("a config serializes"))
    }
}

/// Go's `encoding/json` escapes `<`, `>` and `&` in strings; outside strings
/// JSON never holds them, so a replacement over the whole text is exact.
pub fn go_json(json: &str) -> String {
    if !json.contains(['<', '>', '&']) {
        return json.to_string();
    }
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> StreamConfig {
        StreamConfig::from_json(json.as_bytes()).expect("parses")
    }

    fn refusal(json: &str) -> String {
        config(json).checked(0).expect_err("refused").description
    }

    #[test]
    fn a_minimal_create_gets_nats_servers_defaults_and_json() {
        let cfg = config(r#"{"name":"ORDERS","subjects":["orders.>"]}"#)
            .checked(0)
            .unwrap();
        // nats-server 2.9.10's answer to the same create (reference §4.1).
        assert_eq!(
            cfg.to_json(),
            r#"{"name":"ORDERS","subjects":["orders.\u003e"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"old","storage":"file","num_replicas":1,"duplicate_window":120000000000,"allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false}"#
        );
        // A check of the checked config changes nothing (idempotent create).
        assert_eq!(cfg.checked(0).unwrap(), cfg);
    }

    #[test]
    fn defaults_for_subjects_and_the_duplicate_window() {
        let cfg = config(r#"{"name":"S"}"#).checked(0).unwrap();
        assert_eq!(cfg.subjects, ["S"]);
        let cfg = config(r#"{"name":"S","max_age":1000000000}"#)
            .checked(0)
            .unwrap();
        assert_eq!(cfg.duplicate_window, 1_000_000_000, "max_age when smaller");
        let cfg = config(r#"{"name":"S"}"#).checked(30_000_000_000).unwrap();
        assert_eq!(cfg.duplicate_window, 30_000_000_000, "the server's limit");
    }

    #[test]
    fn refusals_with_nats_servers_texts() {
        for (json, text) in [
            (
                r#"{"name":""}"#,
                "stream name is required and can not contain '.', '*', '>'",
            ),
            (
                r#"{"name":"a.b"}"#,
                "stream name is required and can not contain '.', '*', '>'",
            ),
            (r#"{"name":"S","num_replicas":6}"#, "maximum replicas is 5"),
            (
                r#"{"name":"S","max_age":1000}"#,
                "max age needs to be >= 100ms",
            ),
            (
                r#"{"name":"S","duplicate_window":-1}"#,
                "duplicates window can not be negative",
            ),
            (
                r#"{"name":"S","max_age":1000000000,"duplicate_window":2000000000}"#,
                "duplicates window can not be larger then max age",
            ),
            (
                r#"{"name":"S","duplicate_window":1000}"#,
                "duplicates window needs to be >= 100ms",
            ),
            (
                r#"{"name":"S","deny_purge":true,"allow_rollup_hdrs":true}"#,
                "roll-ups require the purge permission",
            ),
            (
                r#"{"name":"S","discard_new_per_subject":true}"#,
                "discard new per subject requires discard new policy to be set",
            ),
            (
                r#"{"name":"S","discard":"new","discard_new_per_subject":true}"#,
                "discard new per subject requires max msgs per subject > 0",
            ),
            (
                r#"{"name":"S","mirror_direct":true}"#,
                "stream has no mirror but does have mirror direct",
            ),
            (
                r#"{"name":"S","subjects":["a","a"]}"#,
                "duplicate subjects detected",
            ),
            (
                r#"{"name":"S","subjects":["$JS.API.x"]}"#,
                "subjects overlap with jetstream api",
            ),
            (r#"{"name":"S","subjects":["a..b"]}"#, "invalid subject"),
            (
                r#"{"name":"S","subjects":["a.>","a.x"]}"#,
                r#"subject "a.>" overlaps with "a.x""#,
            ),
            (
                r#"{"name":"S","mirror":{"name":"M"}}"#,
                "stream mirror is not supported by tenet yet",
            ),
        ] {
            assert_eq!(refusal(json), text, "{json}");
        }
        let negative = config(r#"{"name":"S","num_replicas":-1}"#)
            .checked(0)
            .unwrap_err();
        assert_eq!(negative.err_code, 10133);
        // `$JS.>` is not inside the API space: accepted, as by nats-server.
        assert!(config(r#"{"name":"S","subjects":["$JS.>"]}"#)
            .checked(0)
            .is_ok());
    }

    #[test]
    fn bad_json_is_invalid_json() {
        for body in [
            &b""[..],
            b"[]",
            b"7",
            b"{\"max_age\":\"30s\"}",
            b"{\"retention\":\"x\"}",
        ] {
            assert_eq!(
                StreamConfig::from_json(body).unwrap_err().err_code,
                10025,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Unknown fields are ignored.
        assert!(StreamConfig::from_json(br#"{"name":"S","allow_msg_ttl":true}"#).is_ok());
    }
}
