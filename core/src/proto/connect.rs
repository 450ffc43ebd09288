//! The CONNECT options a client sends, with nats-server's defaults and merge rule.

use serde::Deserialize;

/// A connection's CONNECT options.
///
/// Before any CONNECT a connection has the defaults (verbose, pedantic and echo
/// on), and each CONNECT is applied on top of the current options: a field the
/// JSON leaves out keeps its value. That is nats-server's behaviour, and raw
/// protocol tests depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Send `+OK` after each accepted op.
    pub verbose: bool,
    /// Check publish subjects strictly.
    pub pedantic: bool,
    /// The client asks for TLS.
    pub tls_required: bool,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub pass: Option<String>,
    /// Authentication token.
    pub auth_token: Option<String>,
    /// nkey public key.
    pub nkey: Option<String>,
    /// Signature of the server nonce.
    pub sig: Option<String>,
    /// User JWT (operator mode only; ignored).
    pub jwt: Option<String>,
    /// Client name, for logs and monitoring.
    pub name: Option<String>,
    /// Client library language.
    pub lang: Option<String>,
    /// Client library version.
    pub version: Option<String>,
    /// Protocol level: 0 (original) or 1 (dynamic INFO).
    pub protocol: i64,
    /// Receive one's own publishes.
    pub echo: bool,
    /// The client understands HMSG.
    pub headers: bool,
    /// The client wants a 503 status when a request reaches no one.
    pub no_responders: bool,
    /// Legacy field; any value fails authentication.
    pub account: Option<String>,
    /// Legacy field; any value fails authentication.
    pub new_account: Option<bool>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            verbose: true,
            pedantic: true,
            tls_required: false,
            user: None,
            pass: None,
            auth_token: None,
            nkey: None,
            sig: None,
            jwt: None,
            name: None,
            lang: None,
            version: None,
            protocol: 0,
            echo: true,
            headers: false,
            no_responders: false,
            account: None,
            new_account: None,
        }
    }
}

/// The fields present in one CONNECT.
#[derive(Deserialize)]
struct ConnectJson {
    verbose: Option<bool>,
    pedantic: Option<bool>,
    tls_required: Option<bool>,
    user: Option<String>,
    pass: Option<String>,
    auth_token: Option<String>,
    nkey: Option<String>,
    sig: Option<String>,
    jwt: Option<String>,
    name: Option<String>,
    lang: Option<String>,
    version: Option<String>,
    protocol: Option<i64>,
    echo: Option<bool>,
    headers: Option<bool>,
    no_responders: Option<bool>,
    account: Option<String>,
    new_account: Option<bool>,
}

impl ConnectOptions {
    /// Applies a CONNECT's JSON on top of these options. Malformed JSON is an
    /// error (nats-server closes the connection without a message).
    ///
    /// Like Go's JSON decoder (which nats-server uses), field names match
    /// case-insensitively and `null` sets nothing.
    pub fn apply(&mut self, json: &[u8]) -> Result<(), serde_json::Error> {
        // Go's JSON decoder replaces invalid UTF-8 with U+FFFD; so does this.
        let value: serde_json::Value = match std::str::from_utf8(json) {
            Ok(text) => serde_json::from_str(text)?,
            Err(_) => serde_json::from_str(&String::from_utf8_lossy(json))?,
        };
        let value = match value {
            serde_json::Value::Null => return Ok(()),
            serde_json::Value::Object(map) => {
                // Exact-case keys win over other spellings of the same name.
                let mut lowered = serde_json::Map::new();
                for (key, v) in map.iter().filter(|(k, _)| k.to_lowercase() != **k) {
                    lowered.insert(key.to_lowercase(), v.clone());
                }
                for (key, v) in map.into_iter().filter(|(k, _)| k.to_lowercase() == *k) {
                    lowered.insert(key, v);
                }
                serde_json::Value::Object(lowered)
            }
            other => other,
        };
        let c: ConnectJson = serde_json::from_value(value)?;
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = c.$field { self.$field = v; }
            )*};
        }
        set!(
            verbose,
            pedantic,
            tls_required,
            protocol,
            echo,
            headers,
            no_responders
        );
        macro_rules! set_opt {
            ($($field:ident),*) => {$(
                if c.$field.is_some() { self.$field = c.$field; }
            )*};
        }
        set_opt!(
            user,
            pass,
            auth_token,
            nkey,
            sig,
            jwt,
            name,
            lang,
            version,
            account,
            new_account
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectOptions;

    #[test]
    fn omitted_fields_keep_their_values() {
        let mut o = ConnectOptions::default();
        o.apply(b"{}").unwrap();
        assert!(o.verbose && o.pedantic && o.echo && !o.headers);
        o.apply(br#"{"verbose":false,"name":"n","protocol":1,"headers":true}"#)
            .unwrap();
        o.apply(br#"{"lang":"rust"}"#).unwrap();
        assert!(!o.verbose && o.pedantic && o.headers);
        assert_eq!(
            (o.name.as_deref(), o.lang.as_deref(), o.protocol),
            (Some("n"), Some("rust"), 1)
        );
    }

    #[test]
    fn keys_match_case_insensitively_and_null_sets_nothing() {
        let mut o = ConnectOptions::default();
        o.apply(br#"{"VERBOSE":false,"Echo":false,"echo":true}"#)
            .unwrap();
        assert!(!o.verbose && o.echo);
        o.apply(b"null").unwrap();
        assert!(!o.verbose);
    }

    #[test]
    fn unknown_fields_are_ignored_and_bad_json_is_an_error() {
        let mut o = ConnectOptions::default();
        assert!(o
            .apply(br#"{"future_field":[1,2],"verbose":false}"#)
            .is_ok());
        assert!(!o.verbose);
        assert!(o.apply(b"{bad").is_err());
        assert!(o.apply(b"").is_err());
        assert!(o.apply(br#"{"verbose":"yes"}"#).is_err());
    }
}
