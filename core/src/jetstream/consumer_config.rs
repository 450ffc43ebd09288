//! A consumer's configuration as the API carries it: read from a create
//! request's JSON, given nats-server 2.9.10's defaults, checked in its
//! order with its errors, and written back in its field order.

use serde::{Deserialize, Serialize};

use super::api_error::ApiError;
use super::config::{
    go_json, is_valid_name, Retention, StreamConfig, MAX_DESCRIPTION_LEN, MAX_NAME_LEN,
};
use crate::subject::{is_subset, is_valid_literal_subject, is_valid_subject};

/// The default `ack_wait`: 30 s, in nanoseconds.
pub const DEFAULT_ACK_WAIT: i64 = 30_000_000_000;
/// The default `max_ack_pending` with acknowledgements.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// The default queue of pull requests.
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// The shortest `idle_heartbeat`: 100 ms.
const MIN_HEARTBEAT: i64 = 100_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    #[default]
    #[serde(alias = "undefined")]
    All,
    Last,
    New,
    ByStartSequence,
    ByStartTime,
    LastPerSubject,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckPolicy {
    /// The zero value: clients always send one.
    #[default]
    None,
    All,
    Explicit,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayPolicy {
    #[default]
    Instant,
    Original,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `ConsumerConfig`, field for field in nats-server 2.9.10's JSON order.
/// Durations are nanoseconds; unknown fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub durable_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub deliver_policy: DeliverPolicy,
    #[serde(skip_serializing_if = "is_zero")]
    pub opt_start_seq: i64,
    /// RFC 3339, kept as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    pub ack_policy: AckPolicy,
    #[serde(skip_serializing_if = "is_zero")]
    pub ack_wait: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_deliver: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    pub replay_policy: ReplayPolicy,
    #[serde(skip_serializing_if = "is_zero")]
    pub rate_limit_bps: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sample_freq: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_waiting: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub idle_heartbeat: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_batch: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_expires: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_bytes: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_group: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub inactive_threshold: i64,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub mem_storage: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub direct: bool,
}

/// A create request's body: `{"stream_name": ..., "config": {...}}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateRequest {
    pub stream_name: String,
    pub config: ConsumerConfig,
}

impl CreateRequest {
    /// Reads a body; anything that is not such an object is `invalid JSON`.
    pub fn from_json(body: &[u8]) -> Result<CreateRequest, ApiError> {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(object @ serde_json::Value::Object(_)) => {
                serde_json::from_value(object).map_err(|_| ApiError::invalid_json())
            }
            _ => Err(ApiError::invalid_json()),
        }
    }
}

impl ConsumerConfig {
    /// Whether it is a push consumer (it has a deliver subject).
    pub fn is_push(&self) -> bool {
        !self.deliver_subject.is_empty()
    }

    /// Whether it is durable.
    pub fn is_durable(&self) -> bool {
        !self.durable_name.is_empty()
    }

    /// nats-server's defaults (`setConsumerConfigDefaults`), before the checks.
    pub fn with_defaults(mut self) -> ConsumerConfig {
        let acks = matches!(self.ack_policy, AckPolicy::Explicit | AckPolicy::All);
        if !self.is_push() && self.max_waiting == 0 {
            self.max_waiting = DEFAULT_MAX_WAITING;
        }
        if self.ack_wait == 0 && acks {
            self.ack_wait = DEFAULT_ACK_WAIT;
        }
        if self.max_deliver == 0 {
            self.max_deliver = -1;
        }
        if let Some(&first) = self.backoff.first() {
            self.ack_wait = first;
        }
        if acks && self.max_ack_pending == 0 {
            self.max_ack_pending = DEFAULT_MAX_ACK_PENDING;
        }
        self
    }

    /// nats-server's checks (`checkConsumerCfg`) against the stream, in its order.
    pub fn check(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        if self.num_replicas > 0 && self.num_replicas > stream.num_replicas {
            return Err(ApiError::consumer(
                400,
                10126,
                "consumer config replica count exceeds parent stream",
            ));
        }
        if self.num_replicas < 0 {
            return Err(ApiError::negative_replicas());
        }
        if !self.backoff.is_empty() && self.max_deliver <= self.backoff.len() as i64 {
            return Err(ApiError::consumer(
                400,
                10116,
                "max deliver is required to be > length of backoff values",
            ));
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(ApiError::consumer(
                400,
                10107,
                format!(
                    "consumer description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
                ),
            ));
        }
        if self.is_push() {
            let deliver = self.deliver_subject.as_bytes();
            if !is_valid_literal_subject(deliver) && is_valid_subject(deliver) {
                return Err(ApiError::consumer(
                    400,
                    10079,
                    "consumer deliver subject has wildcards",
                ));
            }
            if !is_valid_subject(deliver) {
                return Err(ApiError::consumer(
                    400,
                    10112,
                    "invalid push consumer deliver subject",
                ));
            }
            if stream
                .subjects
                .iter()
                .any(|s| is_subset(deliver, s.as_bytes()))
            {
                return Err(ApiError::consumer(
                    400,
                    10081,
                    "consumer deliver subject forms a cycle",
                ));
            }
            if self.max_waiting != 0 {
                return Err(ApiError::consumer(
                    400,
                    10080,
                    "consumer in push mode can not set max waiting",
                ));
            }
            if self.max_ack_pending > 0 && self.ack_policy == AckPolicy::None {
                return Err(ApiError::consumer(
                    400,
                    10082,
                    "consumer requires ack policy for max ack pending",
                ));
            }
            if self.idle_heartbeat > 0 && self.idle_heartbeat < MIN_HEARTBEAT {
                return Err(ApiError::consumer(
                    400,
                    10083,
                    "consumer idle heartbeat needs to be >= 100ms",
                ));
            }
        } else {
            if self.ack_policy == AckPolicy::None && stream.retention == Retention::WorkQueue {
                return Err(ApiError::consumer(
                    400,
                    10084,
                    "consumer in pull mode requires ack policy",
                ));
            }
            if self.rate_limit_bps > 0 {
                return Err(ApiError::consumer(
                    400,
                    10086,
                    "consumer in pull mode can not have rate limit set",
                ));
            }
            if self.max_waiting < 0 {
                return Err(ApiError::consumer(
                    400,
                    10087,
                    "consumer max waiting needs to be positive",
                ));
            }
            if self.idle_heartbeat > 0 {
                return Err(ApiError::consumer(
                    400,
                    10088,
                    "consumer idle heartbeat requires a push based consumer",
                ));
            }
            if self.flow_control {
                return Err(ApiError::consumer(
                    400,
                    10089,
                    "consumer flow control requires a push based consumer",
                ));
            }
            if self.max_batch < 0 {
                return Err(ApiError::consumer(
                    400,
                    10114,
                    "consumer max request batch needs to be > 0",
                ));
            }
            if self.max_expires != 0 && self.max_expires < 1_000_000 {
                return Err(ApiError::consumer(
                    400,
                    10115,
                    "consumer max request expires needs to be >= 1ms",
                ));
            }
        }
        if self.direct {
            if !self.is_push() {
                return Err(ApiError::consumer(
                    400,
                    10090,
                    "consumer direct requires a push based consumer",
                ));
            }
            if self.is_durable() {
                return Err(ApiError::consumer(
                    400,
                    10091,
                    "consumer direct requires an ephemeral consumer",
                ));
            }
        }
        if !self.filter_subject.is_empty() && !valid_filter(&self.filter_subject, &stream.subjects)
        {
            return Err(ApiError::consumer(
                400,
                10093,
                "consumer filter subject is not a valid subset of the interest subjects",
            ));
        }
        self.check_start()?;
        if !self.sample_freq.is_empty() {
            let n = self.sample_freq.trim_end_matches('%');
            if n.parse::<i64>().map_or(true, |n| n < 0) {
                let text = format!(
                    "failed to parse consumer sampling configuration: strconv.Atoi: parsing {n:?}: invalid syntax"
                );
                return Err(ApiError::consumer(400, 10095, text));
            }
        }
        if self.flow_control && self.idle_heartbeat == 0 {
            return Err(ApiError::consumer(
                400,
                10108,
                "consumer with flow control also needs heartbeats",
            ));
        }
        if self.is_durable() && !self.name.is_empty() && self.name != self.durable_name {
            return Err(ApiError::consumer(
                400,
                10132,
                "Consumer Durable and Name have to be equal if both are provided",
            ));
        }
        Ok(())
    }

    /// The deliver policy against the optional start sequence and time (10094).
    fn check_start(&self) -> Result<(), ApiError> {
        let (seq, time) = (self.opt_start_seq > 0, self.opt_start_time.is_some());
        let bad_start = |policy: &str, start: &str| {
            ApiError::consumer(
                400,
                10094,
                format!("consumer delivery policy is deliver {policy}, but optional start {start} is also set"),
            )
        };
        let not_set = |policy: &str, what: &str| {
            ApiError::consumer(
                400,
                10094,
                format!(
                    "consumer delivery policy is deliver {policy}, but optional {what} is not set"
                ),
            )
        };
        let name = match self.deliver_policy {
            DeliverPolicy::All => "all",
            DeliverPolicy::Last => "last",
            DeliverPolicy::LastPerSubject => "last per subject",
            DeliverPolicy::New => "new",
            DeliverPolicy::ByStartSequence => {
                return match (seq, time) {
                    (false, _) => Err(not_set("by start sequence", "start sequence")),
                    (true, true) => Err(bad_start("by start sequence", "time")),
                    _ => Ok(()),
                };
            }
            DeliverPolicy::ByStartTime => {
                return match (time, seq) {
                    (false, _) => Err(not_set("by start time", "start time")),
                    (true, true) => Err(bad_start("by start time", "start sequence")),
                    _ => Ok(()),
                };
            }
        };
        if seq {
            return Err(bad_start(name, "sequence"));
        }
        if time {
            return Err(bad_start(name, "time"));
        }
        if self.deliver_policy == DeliverPolicy::LastPerSubject && self.filter_subject.is_empty() {
            return Err(not_set("last per subject", "filter subject"));
        }
        Ok(())
    }

    /// The JSON nats-server writes for it (Go's escaping included).
    pub fn to_json(&self) -> String {
        go_json(&serde_json::to_string(self).expect("a config serializes"))
    }
}

/// nats-server's rule: the filter lies within one of the stream's
/// subjects, or (a wildcard filter) covers one.
fn valid_filter(filter: &str, subjects: &[String]) -> bool {
    let filter = filter.as_bytes();
    if !is_valid_subject(filter) {
        return false;
    }
    let wildcard = filter.split(|&b| b == b'.').any(|t| t == b"*" || t == b">");
    subjects.iter().any(|s| {
        let s = s.as_bytes();
        is_subset(filter, s) || (wildcard && is_subset(s, filter))
    })
}

/// A durable or consumer name nats-server accepts (10103 otherwise).
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if !is_valid_name(name) {
        return Err(ApiError::consumer(
            400,
            10103,
            "durable name can not contain '.', '*', '>'",
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ApiError::consumer(
            400,
            10102,
            format!("consumer name is too long, maximum allowed is {MAX_NAME_LEN}"),
        ));
    }
    if name.contains(['/', '\\']) {
        return Err(ApiError::consumer(
            400,
            10127,
            "Consumer name can not contain path separators",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(json: &str) -> StreamConfig {
        StreamConfig::from_json(json.as_bytes())
            .unwrap()
            .checked(0)
            .unwrap()
    }

    fn config(json: &str) -> ConsumerConfig {
        serde_json::from_str::<ConsumerConfig>(json)
            .unwrap()
            .with_defaults()
    }

    #[test]
    fn a_durable_pull_consumer_as_nats_server_answers_it() {
        let mut c = config(r#"{"durable_name":"W","ack_policy":"explicit","max_waiting":2}"#);
        c.name = "W".into();
        assert!(c.check(&stream(r#"{"name":"P"}"#)).is_ok());
        // The reference's live consumer info (§6.4), config part.
        assert_eq!(
            c.to_json(),
            r#"{"durable_name":"W","name":"W","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":2,"max_ack_pending":1000,"num_replicas":0}"#
        );
    }

    #[test]
    fn defaults_follow_the_ack_policy_and_backoff() {
        let none = config(r#"{}"#);
        assert_eq!(
            (none.ack_wait, none.max_ack_pending, none.max_waiting),
            (0, 0, 512)
        );
        let push = config(r#"{"deliver_subject":"d","ack_policy":"all"}"#);
        assert_eq!(
            (push.ack_wait, push.max_ack_pending, push.max_waiting),
            (DEFAULT_ACK_WAIT, 1000, 0)
        );
        let backoff = config(
            r#"{"ack_policy":"explicit","backoff":[1000000000,2000000000],"max_deliver":3}"#,
        );
        assert_eq!(backoff.ack_wait, 1_000_000_000);
        assert_eq!(
            config(r#"{"deliver_policy":"undefined"}"#).deliver_policy,
            DeliverPolicy::All
        );
    }

    #[test]
    fn refusals_with_nats_servers_codes() {
        let s = stream(r#"{"name":"S","subjects":["s.>"]}"#);
        let wq = stream(r#"{"name":"W","subjects":["w.>"],"retention":"workqueue"}"#);
        for (json, on, code) in [
            (r#"{"num_replicas":3}"#, &s, 10126),
            (
                r#"{"ack_policy":"explicit","backoff":[1000000000],"max_deliver":1}"#,
                &s,
                10116,
            ),
            (r#"{"deliver_subject":"d.*"}"#, &s, 10079),
            (r#"{"deliver_subject":"s.x"}"#, &s, 10081),
            (r#"{"deliver_subject":"d","max_waiting":5}"#, &s, 10080),
            (r#"{"deliver_subject":"d","max_ack_pending":5}"#, &s, 10082),
            (
                r#"{"deliver_subject":"d","idle_heartbeat":1000}"#,
                &s,
                10083,
            ),
            (r#"{}"#, &wq, 10084),
            (r#"{"rate_limit_bps":5}"#, &s, 10086),
            (r#"{"max_waiting":-1}"#, &s, 10087),
            (r#"{"idle_heartbeat":1000000000}"#, &s, 10088),
            (r#"{"flow_control":true}"#, &s, 10089),
            (r#"{"filter_subject":"t.x"}"#, &s, 10093),
            (r#"{"deliver_policy":"by_start_sequence"}"#, &s, 10094),
            (r#"{"opt_start_seq":3}"#, &s, 10094),
            (r#"{"deliver_policy":"last_per_subject"}"#, &s, 10094),
            (r#"{"deliver_subject":"d","flow_control":true}"#, &s, 10108),
            (r#"{"durable_name":"a","name":"b"}"#, &s, 10132),
        ] {
            let err = config(json).check(on).expect_err(json);
            assert_eq!(err.err_code, code, "{json}: {}", err.description);
        }
        let err = config(r#"{"deliver_policy":"by_start_sequence"}"#)
            .check(&s)
            .unwrap_err();
        assert_eq!(
            err.description,
            "consumer delivery policy is deliver by start sequence, but optional start sequence is not set"
        );
        // A wider wildcard filter that covers a stream subject is fine.
        assert!(config(r#"{"filter_subject":">"}"#).check(&s).is_ok());
        assert!(config(r#"{"filter_subject":"s.a.b"}"#).check(&s).is_ok());
    }

    #[test]
    fn names_as_nats_server_checks_them() {
        assert!(check_name("tom").is_ok());
        assert_eq!(check_name("a.b").unwrap_err().err_code, 10103);
        assert_eq!(check_name("a/b").unwrap_err().err_code, 10127);
        assert_eq!(check_name(&"x".repeat(256)).unwrap_err().err_code, 10102);
    }

    #[test]
    fn create_requests_read_as_go_reads_them() {
        let r = CreateRequest::from_json(
            br#"{"stream_name":"S","config":{"durable_name":"d","ack_policy":"explicit"}}"#,
        )
        .unwrap();
        assert_eq!(
            (r.stream_name.as_str(), r.config.durable_name.as_str()),
            ("S", "d")
        );
        assert_eq!(CreateRequest::from_json(b"").unwrap_err().err_code, 10025);
        assert_eq!(CreateRequest::from_json(b"[]").unwrap_err().err_code, 10025);
        assert_eq!(
            CreateRequest::from_json(br#"{"config":{"ack_policy":"bogus"}}"#)
                .unwrap_err()
                .err_code,
            10025
        );
    }
}
