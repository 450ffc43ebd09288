//! JetStream API errors: nats-server's HTTP-like code, its five-digit
//! `err_code` and description, as they appear in every API answer.

use serde::Serialize;

/// One error of an API answer (`"error":{...}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: u16,
    pub err_code: u32,
    pub description: String,
}

impl ApiError {
    fn new(code: u16, err_code: u32, description: impl Into<String>) -> ApiError {
        ApiError {
            code,
            err_code,
            description: description.into(),
        }
    }

    /// The `"error":{...}` value.
    pub fn to_json(&self) -> String {
        super::config::go_json(&serde_json::to_string(self).expect("an error serializes"))
    }

    /// 10109.
    pub fn sealed() -> ApiError {
        ApiError::new(400, 10109, "invalid operation on sealed stream")
    }

    /// 10060.
    pub fn expected_stream_mismatch() -> ApiError {
        ApiError::new(400, 10060, "expected stream does not match")
    }

    /// 10071.
    pub fn wrong_last_sequence(last: u64) -> ApiError {
        ApiError::new(400, 10071, format!("wrong last sequence: {last}"))
    }

    /// 10070.
    pub fn wrong_last_msg_id(last: &str) -> ApiError {
        ApiError::new(400, 10070, format!("wrong last msg ID: {last}"))
    }

    /// 10111.
    pub fn rollup_not_permitted() -> ApiError {
        ApiError::new(500, 10111, "rollup not permitted")
    }

    /// 10054.
    pub fn message_too_big() -> ApiError {
        ApiError::new(400, 10054, "message size exceeds maximum allowed")
    }

    /// 10097.
    pub fn header_too_big() -> ApiError {
        ApiError::new(400, 10097, "header size exceeds maximum allowed of 64k")
    }

    /// 10077: the store refused the message (a limit with discard new).
    pub fn store_failed(reason: &str) -> ApiError {
        ApiError::new(503, 10077, reason)
    }

    /// 10037.
    pub fn no_message_found() -> ApiError {
        ApiError::new(404, 10037, "no message found")
    }

    /// 10043.
    pub fn sequence_not_found(seq: u64) -> ApiError {
        ApiError::new(400, 10043, format!("sequence {seq} not found"))
    }

    /// 10057, with the reason.
    pub fn delete_failed(reason: &str) -> ApiError {
        ApiError::new(500, 10057, reason)
    }

    /// 10110, with the reason.
    pub fn purge_failed(reason: &str) -> ApiError {
        ApiError::new(500, 10110, reason)
    }

    /// 10002.
    pub fn account_resources_exceeded() -> ApiError {
        ApiError::new(400, 10002, "resource limits exceeded for account")
    }

    /// 10028.
    pub fn insufficient_memory() -> ApiError {
        ApiError::new(500, 10028, "insufficient memory resources available")
    }

    /// 10047.
    pub fn insufficient_storage() -> ApiError {
        ApiError::new(500, 10047, "insufficient storage resources available")
    }

    /// 10023: the server's store is full.
    pub fn insufficient_resources() -> ApiError {
        ApiError::new(503, 10023, "insufficient resources")
    }

    /// 10027.
    pub fn max_streams() -> ApiError {
        ApiError::new(400, 10027, "maximum number of streams reached")
    }

    /// A consumer error with its code (the consumer checks have many).
    pub fn consumer(code: u16, err_code: u32, description: impl Into<String>) -> ApiError {
        ApiError::new(code, err_code, description)
    }

    /// 10052: a stream configuration refused, with the reason.
    pub fn invalid_stream_config(reason: impl Into<String>) -> ApiError {
        ApiError::new(500, 10052, reason)
    }

    /// 10025.
    pub fn invalid_json() -> ApiError {
        ApiError::new(400, 10025, "invalid JSON")
    }

    /// 10003.
    pub fn bad_request() -> ApiError {
        ApiError::new(400, 10003, "bad request")
    }

    /// 10038.
    pub fn not_empty_request() -> ApiError {
        ApiError::new(400, 10038, "expected an empty request payload")
    }

    /// 10039.
    pub fn not_enabled_for_account() -> ApiError {
        ApiError::new(503, 10039, "JetStream not enabled for account")
    }

    /// 10056.
    pub fn stream_name_mismatch() -> ApiError {
        ApiError::new(400, 10056, "stream name in subject does not match request")
    }

    /// 10058.
    pub fn stream_name_in_use() -> ApiError {
        ApiError::new(
            400,
            10058,
            "stream name already in use with a different configuration",
        )
    }

    /// 10059.
    pub fn stream_not_found() -> ApiError {
        ApiError::new(404, 10059, "stream not found")
    }

    /// 10065.
    pub fn subjects_overlap() -> ApiError {
        ApiError::new(400, 10065, "subjects overlap with an existing stream")
    }

    /// 10074.
    pub fn replicas_not_supported() -> ApiError {
        ApiError::new(
            500,
            10074,
            "replicas > 1 not supported in non-clustered mode",
        )
    }

    /// 10128.
    pub fn stream_name_has_path_separators() -> ApiError {
        ApiError::new(400, 10128, "Stream name can not contain path separators")
    }

    /// 10133.
    pub fn negative_replicas() -> ApiError {
        ApiError::new(400, 10133, "replicas count cannot be negative")
    }
}
