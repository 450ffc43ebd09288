//! Every `-ERR` the server sends a client, with its exact wire text and whether it closes the connection.
//!
//! The texts are byte-exact copies of nats-server's (clients match on them, e.g.
//! nats.go treats a `Permissions Violation` prefix as a non-fatal async error and
//! any unknown `-ERR` as fatal). Keeping them in one table is what lets the
//! differential tests check every one.

/// An error reported to a client as `-ERR '<text>'\r\n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// Unknown op, bad framing, or a payload not followed by CRLF.
    UnknownProtocolOperation,
    /// A control line longer than `max_control_line`.
    MaxControlLineExceeded,
    /// A PUB/HPUB whose declared size is over `max_payload`.
    MaxPayloadViolation,
    /// Authentication failed.
    AuthorizationViolation,
    /// No CONNECT within the authentication timeout.
    AuthenticationTimeout,
    /// `ping_max` server PINGs went unanswered.
    StaleConnection,
    /// The server is at `max_connections`.
    MaxConnectionsExceeded,
    /// The client's account is at its `max_connections` limit.
    MaxAccountConnectionsExceeded,
    /// A SUB over the per-connection subscription limit.
    MaxSubscriptionsExceeded,
    /// CONNECT `protocol` outside 0..=1.
    InvalidClientProtocol,
    /// CONNECT `no_responders` without `headers`.
    NoRespondersRequiresHeaders,
    /// A SUB subject that is not a valid subject.
    InvalidSubject,
    /// Pedantic mode only: a PUB/HPUB subject with wildcards or empty tokens.
    InvalidPublishSubject,
}

impl ClientError {
    /// The text between the quotes of `-ERR '...'`.
    pub fn text(self) -> &'static str {
        match self {
            ClientError::UnknownProtocolOperation => "Unknown Protocol Operation",
            ClientError::MaxControlLineExceeded => "maximum control line exceeded",
            ClientError::MaxPayloadViolation => "Maximum Payload Violation",
            ClientError::AuthorizationViolation => "Authorization Violation",
            ClientError::AuthenticationTimeout => "Authentication Timeout",
            ClientError::StaleConnection => "Stale Connection",
            ClientError::MaxConnectionsExceeded => "maximum connections exceeded",
            ClientError::MaxAccountConnectionsExceeded => {
                "maximum account active connections exceeded"
            }
            ClientError::MaxSubscriptionsExceeded => "maximum subscriptions exceeded",
            ClientError::InvalidClientProtocol => "invalid client protocol",
            ClientError::NoRespondersRequiresHeaders => "no responders requires headers support",
            ClientError::InvalidSubject => "Invalid Subject",
            ClientError::InvalidPublishSubject => "Invalid Publish Subject",
        }
    }

    /// Whether the server closes the connection right after sending this error.
    pub fn closes_connection(self) -> bool {
        !matches!(
            self,
            ClientError::MaxSubscriptionsExceeded
                | ClientError::InvalidSubject
                | ClientError::InvalidPublishSubject
        )
    }

    /// Why the connection was closed, when this error closes it.
    pub fn close_reason(self) -> CloseReason {
        match self {
            ClientError::UnknownProtocolOperation => CloseReason::ProtocolViolation,
            ClientError::MaxControlLineExceeded => CloseReason::MaxControlLineExceeded,
            ClientError::MaxPayloadViolation => CloseReason::MaxPayloadExceeded,
            ClientError::AuthorizationViolation => CloseReason::AuthenticationViolation,
            ClientError::AuthenticationTimeout => CloseReason::AuthenticationTimeout,
            ClientError::StaleConnection => CloseReason::StaleConnection,
            ClientError::MaxConnectionsExceeded => CloseReason::MaxConnectionsExceeded,
            ClientError::MaxAccountConnectionsExceeded => {
                CloseReason::MaxAccountConnectionsExceeded
            }
            ClientError::InvalidClientProtocol => CloseReason::BadClientProtocolVersion,
            ClientError::NoRespondersRequiresHeaders => CloseReason::NoRespondersRequiresHeaders,
            ClientError::MaxSubscriptionsExceeded
            | ClientError::InvalidSubject
            | ClientError::InvalidPublishSubject => CloseReason::ProtocolViolation,
        }
    }
}

/// Why a connection ended; the wording is nats-server's `/connz` closed-reason vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its side.
    ClientClosed,
    /// Writing to the socket failed.
    WriteError,
    /// Reading from the socket failed (anything but an orderly close).
    ReadError,
    /// The client sent `-ERR`.
    ParseError,
    /// No CONNECT within the authentication timeout.
    AuthenticationTimeout,
    /// Authentication failed.
    AuthenticationViolation,
    /// Outbound bytes exceeded `max_pending`.
    SlowConsumerPendingBytes,
    /// The socket took no bytes for `write_deadline`.
    SlowConsumerWriteDeadline,
    /// Too many unanswered server PINGs.
    StaleConnection,
    /// Malformed protocol, closed with or without `-ERR`.
    ProtocolViolation,
    /// The server was at `max_connections`.
    MaxConnectionsExceeded,
    /// The account was at its `max_connections` limit.
    MaxAccountConnectionsExceeded,
    /// A PUB/HPUB over `max_payload`.
    MaxPayloadExceeded,
    /// A control line over `max_control_line`.
    MaxControlLineExceeded,
    /// CONNECT `protocol` outside 0..=1.
    BadClientProtocolVersion,
    /// CONNECT `no_responders` without `headers`.
    NoRespondersRequiresHeaders,
    /// The server is shutting down.
    ServerShutdown,
    /// The TLS handshake failed or took longer than its timeout.
    TlsHandshakeError,
}

impl CloseReason {
    /// nats-server's wording, as shown in logs and `/connz`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
            CloseReason::ParseError => "Parse Error",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::TlsHandshakeError => "TLS Handshake Failure",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Permissions Violation for Subscription to "<subject>"[ using queue "<queue>"]`,
/// quoted as nats-server quotes it. Sent with the connection kept open.
pub fn subscription_violation(subject: &[u8], queue: Option<&[u8]>) -> String {
    let mut text = String::from("Permissions Violation for Subscription to ");
    crate::proto::encode::go_quote(subject, &mut text);
    if let Some(queue) = queue {
        text.push_str(" using queue ");
        crate::proto::encode::go_quote(queue, &mut text);
    }
    text
}

/// `Permissions Violation for Subscription to "<subject>" (sid "<sid>")`: an
/// existing subscription taken away because the permissions changed (never
/// with the queue part, as in nats-server 2.9.10). The connection stays open.
pub fn removed_subscription_violation(subject: &[u8], sid: &[u8]) -> String {
    let mut text = subscription_violation(subject, None);
    text.push_str(" (sid ");
    crate::proto::encode::go_quote(sid, &mut text);
    text.push(')');
    text
}

/// `Permissions Violation for Publish to "<subject>"`. Sent with the connection kept open.
pub fn publish_violation(subject: &[u8]) -> String {
    let mut text = String::from("Permissions Violation for Publish to ");
    crate::proto::encode::go_quote(subject, &mut text);
    text
}

/// `Permissions Violation for Publish with Reply of "<reply>"`, for a reserved reply prefix.
pub fn reply_violation(reply: &[u8]) -> String {
    let mut text = String::from("Permissions Violation for Publish with Reply of ");
    crate::proto::encode::go_quote(reply, &mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_soft_errors_keep_the_connection() {
        let open: Vec<_> = [
            ClientError::UnknownProtocolOperation,
            ClientError::MaxControlLineExceeded,
            ClientError::MaxPayloadViolation,
            ClientError::AuthorizationViolation,
            ClientError::AuthenticationTimeout,
            ClientError::StaleConnection,
            ClientError::MaxConnectionsExceeded,
            ClientError::MaxAccountConnectionsExceeded,
            ClientError::MaxSubscriptionsExceeded,
            ClientError::InvalidClientProtocol,
            ClientError::NoRespondersRequiresHeaders,
            ClientError::InvalidSubject,
            ClientError::InvalidPublishSubject,
        ]
        .into_iter()
        .filter(|e| !e.closes_connection())
        .map(|e| e.text())
        .collect();
        assert_eq!(
            open,
            [
                "maximum subscriptions exceeded",
                "Invalid Subject",
                "Invalid Publish Subject"
            ]
        );
    }
}
