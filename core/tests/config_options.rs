//! Typed options from configuration text: server keys, authorization and
//! permissions, accounts, unknown and not-yet-supported keys.

use std::collections::HashMap;
use std::time::Duration;

use tenet_core::config::options::{
    read_config, Config, Permissions, ResponsePermission, SubjectPermission,
};
use tenet_core::config::{parse, ConfigError, MapResolver};

fn read(text: &str) -> (Config, Vec<ConfigError>) {
    let resolver = MapResolver(HashMap::new());
    let env = |name: &str| (name == "TENET_TEST_PORT").then(|| "4999".to_string());
    let parsed = parse("test.conf", text, &resolver, &env).expect("syntax");
    read_config(&parsed)
}

fn messages(errors: &[ConfigError]) -> Vec<String> {
    errors.iter().map(|e| e.to_string()).collect()
}

fn perm(allow: &[&str], deny: &[&str]) -> Option<SubjectPermission> {
    Some(SubjectPermission {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

#[test]
fn server_options_with_aliases_and_case_insensitive_keys() {
    let (c, errors) = read(
        "listen: 127.0.0.1:4333\nSERVER_NAME: n1\nmax_payload: 1MB\nmax_pending: 64MB\nmax_conn: 10\n\
         max_subs: 5\nmax_control_line: 512\nping_interval: \"30s\"\nping_max: 4\ndebug: true\n\
         trace: false\nlogtime: false\nlog_file: /tmp/x.log\npid_file: /tmp/x.pid\nno_sublist_cache: true\n",
    );
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    let s = &c.server;
    assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", Some(4333)));
    assert_eq!(s.server_name.as_deref(), Some("n1"));
    assert_eq!(
        (s.max_payload, s.max_pending, s.max_connections),
        (1 << 20, 64 << 20, 10)
    );
    assert_eq!(
        (s.max_subscriptions, s.max_control_line, s.ping_max),
        (5, 512, 4)
    );
    assert_eq!(s.ping_interval, Duration::from_secs(30));
    assert!(s.debug && !s.trace && s.disable_sublist_cache);
    assert_eq!(
        (c.log_time, c.log_file.as_deref(), c.pid_file.as_deref()),
        (Some(false), Some("/tmp/x.log"), Some("/tmp/x.pid"))
    );
}

#[test]
fn listen_forms_and_env_variables() {
    assert_eq!(read("listen: 4333").0.server.port, Some(4333));
    assert_eq!(read("listen: \":4333\"").0.server.port, Some(4333));
    assert_eq!(read("port: -1").0.server.port, None);
    assert_eq!(
        read("host: 10.0.0.1\nport: $TENET_TEST_PORT").0.server.port,
        Some(4999)
    );
    assert_eq!(read("host: 10.0.0.1").0.server.host, "10.0.0.1");
    // A bare integer ping interval is seconds, as in nats-server.
    assert_eq!(
        read("ping_interval: 5").0.server.ping_interval,
        Duration::from_secs(5)
    );
}

#[test]
fn client_limits_headers_write_deadline_and_lame_duck() {
    let (c, errors) = read(
        "max_sub_tokens: 4\nno_header_support: true\nwrite_deadline: \"250ms\"\n\
         lame_duck_duration: \"45s\"\nlame_duck_grace_period: \"3s\"\n",
    );
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    let s = &c.server;
    assert_eq!((s.max_sub_tokens, s.no_header_support), (4, true));
    assert_eq!(s.write_deadline, Duration::from_millis(250));
    assert_eq!(
        (s.lame_duck_duration, s.lame_duck_grace_period),
        (Duration::from_secs(45), Duration::from_secs(3))
    );
    // nats-server's defaults, and its alias and bare-seconds forms.
    let (c, _) = read("max_subscription_tokens: 255\nwrite_deadline: 3\n");
    assert_eq!(c.server.max_sub_tokens, 255);
    assert_eq!(c.server.write_deadline, Duration::from_secs(3));
    let defaults = read("").0.server;
    assert_eq!(defaults.max_sub_tokens, 0);
    assert!(!defaults.no_header_support);
    assert_eq!(defaults.write_deadline, Duration::from_secs(10));
    assert_eq!(defaults.lame_duck_duration, Duration::from_secs(120));
    assert_eq!(defaults.lame_duck_grace_period, Duration::from_secs(10));
}

#[test]
fn client_limit_and_lame_duck_mistakes_are_refused_as_nats_server_refuses_them() {
    let (_, errors) = read(
        "max_sub_tokens: 256\nmax_sub_tokens: 0\nno_header_support: 1\n\
         lame_duck_duration: \"10s\"\nlame_duck_duration: 60\nlame_duck_grace_period: \"-1s\"\n\
         write_deadline: \"soon\"\n",
    );
    assert_eq!(
        messages(&errors),
        [
            "test.conf:1:16: max_sub_tokens value is too big",
            "test.conf:2:17: max_sub_tokens value can not be negative",
            "test.conf:3:20: no_header_support: expected a boolean, got integer",
            "test.conf:4:22: invalid lame_duck_duration of 10s, minimum is 30 seconds",
            "test.conf:5:21: lame_duck_duration: expected a duration string like \"30s\", got integer",
            "test.conf:6:26: invalid lame_duck_grace_period, needs to be positive",
            "test.conf:7:18: invalid duration \"soon\" (use a number and a unit: ns, us, ms, s, m, h)",
        ]
        .map(String::from)
    );
    let (_, errors) = read("lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"30s\"\n");
    assert_eq!(
        messages(&errors),
        ["lame duck grace period (30s) should be strictly lower than lame duck duration (30s)"]
    );
}

#[test]
fn bad_values_name_their_position() {
    // Columns follow nats-server: 0-based on the first line, 1-based after it;
    // a quoted string's column is its first character inside the quote.
    let (_, errors) = read("port: 70000\nmax_payload: \"big\"\nping_interval: \"5 minutes\"\n");
    assert_eq!(
        messages(&errors),
        [
            "test.conf:1:6: invalid port 70000 (use 1-65535, or -1 for a random port)",
            "test.conf:2:15: max_payload: expected an integer, got string",
            "test.conf:3:17: invalid duration \"5 minutes\" (use a number and a unit: ns, us, ms, s, m, h)",
        ]
        .map(String::from)
    );
    let (_, errors) = read("max_payload: 2MB\nmax_pending: 1MB\n");
    assert_eq!(
        messages(&errors),
        ["max_payload (2097152) can not be larger than max_pending (1048576)"]
    );
}

#[test]
fn unknown_keys_are_errors_but_referenced_variables_are_not() {
    let (_, errors) = read("PORT_VAR = 4333\nport: $PORT_VAR\nmonitoring_port: 8222\n");
    assert_eq!(
        messages(&errors),
        ["test.conf:3:1: unknown field \"monitoring_port\""]
    );
    // A variable nobody references is an unknown field, as in nats-server 2.9.10.
    let (_, errors) = read("UNUSED = 1\n");
    assert_eq!(
        messages(&errors),
        ["test.conf:1:0: unknown field \"UNUSED\""]
    );
}

#[test]
fn max_closed_clients_is_an_unknown_field_as_in_nats_server_2_9_10() {
    // nats-server 2.9.10 has the option (always 10,000) but no key for it:
    // `nats-server -c` says `unknown field "max_closed_clients"`.
    let (_, errors) = read("max_closed_clients: 5\n");
    assert_eq!(
        messages(&errors),
        ["test.conf:1:0: unknown field \"max_closed_clients\""]
    );
    let (_, errors) = read("port: 4222\nmax_closed_clients = 100\n");
    assert_eq!(
        messages(&errors),
        ["test.conf:2:1: unknown field \"max_closed_clients\""]
    );
}

#[test]
fn keys_tenet_does_not_implement_yet_stop_the_start_and_say_why() {
    let (_, errors) =
        read("cluster { port: 6222 }\njetstream: { domain: hub }\nmqtt { port: 1883 }\nprof_port: 6060\n");
    assert_eq!(
        messages(&errors),
        [
            "test.conf:1:0: \"cluster\" is not supported by tenet yet (it arrives with clustering)",
            "test.conf:2:14: jetstream \"domain\" is not supported by tenet yet",
            "test.conf:3:1: \"mqtt\" is not supported by tenet yet (it arrives with MQTT)",
            "test.conf:4:1: \"prof_port\" is not supported by tenet yet (it arrives with profiling)",
        ]
        .map(String::from)
    );
}

#[test]
fn monitoring_ports_are_read_http_or_https() {
    let port = |text: &str| {
        let (c, errors) = read(text);
        assert!(errors.is_empty(), "{:?}", messages(&errors));
        (c.server.http_host.clone(), c.server.http_port)
    };
    assert_eq!(port("http_port: 8222\n"), (None, Some(8222)));
    assert_eq!(port("monitor_port: 8223\n"), (None, Some(8223)));
    assert_eq!(port("http_port: -1\n"), (None, Some(0)));
    assert_eq!(port("http_port: 0\n"), (None, None));
    assert_eq!(
        port("http: \"127.0.0.1:8224\"\n"),
        (Some("127.0.0.1".to_string()), Some(8224))
    );
    assert_eq!(port("http: 8225\n"), (None, Some(8225)));
    // Without its own host, monitoring listens where clients do.
    let (c, _) = read("host: 10.0.0.1\nhttp_port: 8222\n");
    assert_eq!(c.server.http_host(), "10.0.0.1");
    // `monitor()`: the port to bind and whether it speaks HTTPS, or why
    // monitoring cannot start (found at start-up, not by `-t`, as in
    // nats-server).
    let tls = "tls { cert_file: a, key_file: b }\n";
    let monitor = |text: &str| {
        let (c, errors) = read(text);
        assert!(errors.is_empty(), "{:?}", messages(&errors));
        (c.server.http_host.clone(), c.server.monitor())
    };
    assert_eq!(
        monitor(&format!("{tls}https_port: 8443\n")),
        (None, Ok(Some((8443, true))))
    );
    assert_eq!(
        monitor(&format!("{tls}https: \"127.0.0.1:8444\"\n")),
        (Some("127.0.0.1".to_string()), Ok(Some((8444, true))))
    );
    assert_eq!(
        monitor(&format!("{tls}https_port: -1\n")),
        (None, Ok(Some((0, true))))
    );
    assert_eq!(
        monitor("http_port: 8222\n"),
        (None, Ok(Some((8222, false))))
    );
    assert_eq!(monitor("http_port: 0\nhttps_port: 0\n"), (None, Ok(None)));
    assert_eq!(
        monitor("https_port: 8443\n").1,
        Err("TLS cert and key required for HTTPS".to_string())
    );
    assert_eq!(
        monitor(&format!("{tls}http_port: -1\nhttps_port: 8443\n")).1,
        Err("can't specify both HTTP (-1) and HTTPs (8443) ports".to_string())
    );
    let (_, errors) = read("http_port: 70000\nhttps_port: 70001\n");
    assert_eq!(
        messages(&errors),
        [
            "test.conf:1:11: invalid monitoring port 70000 (use 1-65535, -1 for a random port, 0 for none)",
            "test.conf:2:13: invalid monitoring port 70001 (use 1-65535, -1 for a random port, 0 for none)",
        ]
        .map(String::from)
    );
}

/// The seed configuration of the configuration issue.
const SEED: &str = r#"
authorization {
  ADMIN = { publish = ">", subscribe = ">" }
  REQUESTOR = { publish = ["req.foo", "req.bar"], subscribe = "_INBOX.>" }
  DEFAULT_PERMISSIONS = { publish = "SANDBOX.*", subscribe = ["PUBLIC.>", "_INBOX.>"] }
  PASS: abcdefghijklmnopqrstuvwxwz0123456789
  users = [
    {user: alice, password: foo, permissions: $ADMIN}
    {user: bob,   password: bar, permissions: $REQUESTOR}
    {user: joe,   password: $PASS}
  ]
}
"#;

#[test]
fn seed_configuration_parses_to_the_expected_users_and_permissions() {
    let (config, errors) = read(SEED);
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    let auth = config.authorization.expect("authorization");
    let users: Vec<(&str, &str, Option<&Permissions>)> = auth
        .users
        .iter()
        .map(|u| {
            (
                u.name.as_deref().unwrap(),
                u.password.as_deref().unwrap(),
                u.permissions.as_ref(),
            )
        })
        .collect();
    let admin = Permissions {
        publish: perm(&[">"], &[]),
        subscribe: perm(&[">"], &[]),
        allow_responses: None,
        ..Default::default()
    };
    let requestor = Permissions {
        publish: perm(&["req.foo", "req.bar"], &[]),
        subscribe: perm(&["_INBOX.>"], &[]),
        allow_responses: None,
        ..Default::default()
    };
    assert_eq!(
        users,
        [
            ("alice", "foo", Some(&admin)),
            ("bob", "bar", Some(&requestor)),
            ("joe", "abcdefghijklmnopqrstuvwxwz0123456789", None),
        ]
    );
    // DEFAULT_PERMISSIONS written as a variable is the default_permissions setting (keys are case-insensitive).
    assert_eq!(
        auth.default_permissions,
        Some(Permissions {
            publish: perm(&["SANDBOX.*"], &[]),
            subscribe: perm(&["PUBLIC.>", "_INBOX.>"], &[]),
            allow_responses: None,
            ..Default::default()
        })
    );
}

#[test]
fn permission_forms_and_allow_responses() {
    let (config, _) = read(
        r#"authorization { users = [
             {user: a, password: x, permissions: {publish: {allow: ["a.>"], deny: "a.secret"}, subscribe: {deny: ["b.*", "> *.prod"]}, allow_responses: true}}
             {user: b, password: x, permissions: {publish: "p", allow_responses: {max: 10, expires: "50ms"}}}
             {user: c, password: x, permissions: {allow_responses: {max: -1, ttl: "-1s"}}}
           ] }"#,
    );
    let perms: Vec<Permissions> = config
        .authorization
        .unwrap()
        .users
        .into_iter()
        .map(|u| u.permissions.unwrap())
        .collect();
    assert_eq!(perms[0].publish, perm(&["a.>"], &["a.secret"]));
    assert_eq!(perms[0].subscribe, perm(&[], &["b.*", "> *.prod"]));
    assert_eq!(
        perms[0].allow_responses,
        Some(ResponsePermission {
            max: Some(1),
            expires: Some(Duration::from_secs(120))
        })
    );
    assert_eq!(
        perms[1].allow_responses,
        Some(ResponsePermission {
            max: Some(10),
            expires: Some(Duration::from_millis(50))
        })
    );
    assert_eq!(
        perms[2].allow_responses,
        Some(ResponsePermission {
            max: None,
            expires: None
        })
    );
}

#[test]
fn permission_mistakes_are_reported() {
    let (_, errors) = read(
        r#"authorization { users = [
             {user: a, password: x, permissions: {publish: "foo..bar", inboxes: 1}}
             {user: b, password: x, permissions: {subscribe: {allow: "x", denied: "y"}}}
             {user: c, password: x, permissions: {publish: "foo q"}}
             {password: x}
           ] }"#,
    );
    let m = messages(&errors);
    assert!(
        m.iter()
            .any(|e| e.ends_with("subject \"foo..bar\" is not a valid subject")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|e| e.ends_with("unknown field \"inboxes\" parsing permissions")),
        "{m:?}"
    );
    assert!(
        m.iter().any(|e| e.ends_with(
            "Unknown field name \"denied\" parsing subject permissions, only 'allow' or 'deny' are permitted"
        )),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|e| e.ends_with("a queue group is only allowed in subscribe permissions")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|e| e.ends_with("a user needs a \"user\" or an \"nkey\"")),
        "{m:?}"
    );
}

#[test]
fn authorization_conflicts() {
    let (_, errors) = read("authorization { token: t, user: u, password: p }");
    assert!(messages(&errors)
        .iter()
        .any(|e| e.ends_with("can not have a token and a user/password")));
}

#[test]
fn accounts_are_read() {
    let (config, errors) = read(
        r#"accounts {
             A: { users: [{user: a, password: x}], default_permissions: {subscribe: "a.>"},
                  exports: [{stream: "pub.>"}, {service: "svc.>", accounts: [B], response: stream}],
                  limits: {max_connections: 5, max_subs: 10, max_payload: 32k} }
             B: { users: [{user: b, password: y}],
                  imports: [{stream: {account: A, subject: "pub.>"}, prefix: from_a}, {service: {account: A, subject: "svc.x"}, to: "req.a"}] }
           }"#,
    );
    assert_eq!(messages(&errors), Vec::<String>::new());
    let [a, b] = &config.accounts[..] else {
        panic!("{:?}", config.accounts)
    };
    assert_eq!((a.name.as_str(), b.name.as_str()), ("A", "B"));
    assert_eq!(a.exports.len(), 2);
    assert!(a.exports[1].service && a.exports[1].accounts == Some(vec!["B".to_string()]));
    assert_eq!(a.exports[1].response_type.as_deref(), Some("stream"));
    assert_eq!(
        (
            a.limits.max_connections,
            a.limits.max_subscriptions,
            a.limits.max_payload
        ),
        (Some(5), Some(10), Some(32_000))
    );
    assert_eq!(b.imports[0].prefix.as_deref(), Some("from_a"));
    assert!(b.imports[1].service && b.imports[1].to.as_deref() == Some("req.a"));
}

#[test]
fn account_keys_of_later_features_are_refused_by_name() {
    let (_, errors) = read(
        "accounts {\n  A: {\n    jetstream: { max_ha_assets: 1 }\n    mappings: {\"a\": \"b\"}\n    nkey: ABC\n  }\n}\n",
    );
    assert_eq!(
        messages(&errors),
        [
            "test.conf:3:18: account jetstream \"max_ha_assets\" is not supported by tenet yet",
            "test.conf:4:5: \"mappings\" in an account is not supported by tenet yet (it arrives with subject mappings)",
            "test.conf:5:5: \"nkey\" in an account is not supported by tenet yet (it arrives with operator mode)",
        ]
    );
}

#[test]
fn error_report_intervals_of_leaf_nodes_and_routes() {
    let reports = |text: &str| {
        let (c, errors) = read(text);
        assert!(errors.is_empty(), "{:?}", messages(&errors));
        (
            c.server.connect_error_reports,
            c.server.reconnect_error_reports,
        )
    };
    // nats-server's defaults: every 3600th first-connect failure, every reconnect failure.
    assert_eq!(reports(""), (3600, 1));
    assert_eq!(
        reports("connect_error_reports: 10\nreconnect_error_reports: 5\n"),
        (10, 5)
    );
    // 0 is the default, as in nats-server; a negative count acts as its absolute value.
    assert_eq!(
        reports("connect_error_reports: 0\nreconnect_error_reports: 0\n"),
        (3600, 1)
    );
    assert_eq!(
        reports("CONNECT_ERROR_REPORTS: -7\nreconnect_error_reports: -2\n"),
        (7, 2)
    );
    let (_, errors) = read(
        "connect_error_reports: \"often\"\nreconnect_error_reports: 1.5\nconnect_error_reports: true\n",
    );
    assert_eq!(
        messages(&errors),
        [
            "test.conf:1:24: connect_error_reports: expected an integer, got string",
            "test.conf:2:26: reconnect_error_reports: expected an integer, got float",
            "test.conf:3:24: connect_error_reports: expected an integer, got boolean",
        ]
        .map(String::from)
    );
}

#[test]
fn the_monitoring_base_path_is_kept_as_written() {
    let (c, errors) = read("http_port: 8222\nhttp_base_path: \"nats/\"\n");
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    assert_eq!(c.server.http_base_path, "nats/");
    assert_eq!(read("").0.server.http_base_path, "");
    let (_, errors) = read("http_base_path: 8222\nhttp_base_path: [a]\n");
    assert_eq!(
        messages(&errors),
        [
            "test.conf:1:16: http_base_path: expected a string, got integer",
            "test.conf:2:17: http_base_path: expected a string, got array",
        ]
        .map(String::from)
    );
}

#[test]
fn syslog_and_remote_syslog() {
    use tenet_core::config::options::SyslogAddress;
    let (c, errors) = read("syslog: true\nremote_syslog: \"udp://127.0.0.1:514\"\n");
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    assert!(c.syslog);
    assert_eq!(c.remote_syslog.as_deref(), Some("udp://127.0.0.1:514"));
    let (c, errors) = read("");
    assert!(errors.is_empty());
    assert_eq!((c.syslog, c.remote_syslog), (false, None));
    // An empty remote_syslog is none, as in nats-server.
    assert_eq!(read("remote_syslog: \"\"\n").0.remote_syslog, None);

    let (_, errors) = read(
        "syslog: \"yes please\"\nremote_syslog: 514\nremote_syslog: \"localhost:514\"\n\
         remote_syslog: \"127.0.0.1:514\"\nremote_syslog: \"udp://\"\nremote_syslog: \"unix://\"\n",
    );
    assert_eq!(
        messages(&errors),
        [
            "test.conf:1:9: syslog: expected a boolean, got string",
            "test.conf:2:16: remote_syslog: expected a string, got integer",
            "test.conf:3:17: remote_syslog \"localhost:514\": invalid network type \"localhost\" (use udp://host:port, tcp://host:port or unix:///path)",
            "test.conf:4:17: remote_syslog \"127.0.0.1:514\": no network type (use udp://host:port, tcp://host:port or unix:///path)",
            "test.conf:5:17: remote_syslog \"udp://\": udp needs host:port (use udp://host:port, tcp://host:port or unix:///path)",
            "test.conf:6:17: remote_syslog \"unix://\": unix needs a socket path (use udp://host:port, tcp://host:port or unix:///path)",
        ]
        .map(String::from)
    );

    // nats-server's URL forms: the scheme in any case; a path after host:port is ignored.
    let parse = SyslogAddress::parse;
    assert_eq!(
        parse("udp://127.0.0.1:514"),
        Ok(SyslogAddress::Udp("127.0.0.1:514".into()))
    );
    assert_eq!(
        parse("TCP://logs.example.com:601/x"),
        Ok(SyslogAddress::Tcp("logs.example.com:601".into()))
    );
    assert_eq!(
        parse("udp://[::1]:514"),
        Ok(SyslogAddress::Udp("[::1]:514".into()))
    );
    assert_eq!(
        parse("unix:///var/run/syslog.sock"),
        Ok(SyslogAddress::Unix("/var/run/syslog.sock".into()))
    );
    assert_eq!(
        parse("unix:/dev/log"),
        Ok(SyslogAddress::Unix("/dev/log".into()))
    );
    assert_eq!(
        parse("udp://127.0.0.1:514").unwrap().to_string(),
        "udp://127.0.0.1:514"
    );
    for bad in [
        "http://x:80",
        "udp://host",
        "udp://:514",
        "tcp://h:99999",
        "/dev/log",
        "",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn jetstream_forms_as_nats_server_reads_them() {
    use tenet_core::options::{JetStreamOptions, StoreSync};
    for (text, want) in [
        ("jetstream: enabled\n", Some(JetStreamOptions::default())),
        ("jetstream: true\n", Some(JetStreamOptions::default())),
        ("jetstream: disabled\n", None),
        ("jetstream: { enabled: false }\n", None),
        (
            "jetstream { store_dir: \"/tmp/js\", max_mem: 1MB, max_file: 2G }\n",
            Some(JetStreamOptions {
                store_dir: Some("/tmp/js".into()),
                max_memory: Some(1 << 20),
                max_store: Some(2_000_000_000),
                ..JetStreamOptions::default()
            }),
        ),
        (
            "jetstream { sync_interval: always }\n",
            Some(JetStreamOptions {
                sync: StoreSync::Always,
                ..JetStreamOptions::default()
            }),
        ),
        (
            "jetstream { sync: \"10s\" }\n",
            Some(JetStreamOptions {
                sync: StoreSync::Every(std::time::Duration::from_secs(10)),
                ..JetStreamOptions::default()
            }),
        ),
        (
            "store_dir: /tmp/top\njetstream: enabled\n",
            Some(JetStreamOptions {
                store_dir: Some("/tmp/top".into()),
                ..JetStreamOptions::default()
            }),
        ),
    ] {
        let (config, errors) = read(text);
        assert!(errors.is_empty(), "{text}: {:?}", messages(&errors));
        assert_eq!(config.server.jetstream, want, "{text}");
    }
    let (_, errors) = read("jetstream { sync_interval: 0 }\n");
    assert_eq!(
        messages(&errors),
        ["test.conf:1:27: sync_interval must be more than zero, or \"always\""]
    );
    let (_, errors) = read("store_dir: /a\njetstream { store_dir: /b }\n");
    assert_eq!(
        messages(&errors),
        ["test.conf:1:11: Duplicate 'store_dir' configuration"]
    );
    let (config, errors) = read(
        "accounts { A: { jetstream: enabled }, B: { jetstream: { max_mem: 1k, max_streams: 2 } }, C: {} }\n",
    );
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    let js: Vec<_> = config
        .accounts
        .iter()
        .map(|a| a.jetstream.clone())
        .collect();
    assert_eq!(js[0], Some(Default::default()));
    assert_eq!(
        js[1]
            .as_ref()
            .map(|l| (l.max_memory, l.max_streams, l.max_storage)),
        Some((1000, 2, -1))
    );
    assert_eq!(js[2], None);
}

#[test]
fn jetstream_on_the_system_account_is_refused() {
    use tenet_core::config::options::read_config;
    use tenet_core::config::{parse, MapResolver};
    let text =
        "jetstream: enabled\nsystem_account: SYS\naccounts { SYS: { jetstream: enabled } }\n";
    let parsed = parse("test.conf", text, &MapResolver(Default::default()), &|_| {
        None
    })
    .unwrap();
    let (config, errors) = read_config(&parsed);
    assert!(errors.is_empty());
    let error = tenet_core::Auth::from_config(&config, None, None, None).unwrap_err();
    assert!(
        format!("{error:?}").contains("Not allowed to enable JetStream on the system account"),
        "{error:?}"
    );
}

#[test]
fn the_tls_block_is_read_and_its_keys_tenet_lacks_are_refused_by_name() {
    let (c, errors) = read(
        "tls {\n  cert_file: \"s.pem\"\n  key_file: \"s.key\"\n  ca_file: \"ca.pem\"\n  verify: true\n  timeout: \"750ms\"\n}\nallow_non_tls: true\n",
    );
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    let tls = c.server.tls.expect("tls");
    assert_eq!(
        (
            &*tls.cert_file,
            &*tls.key_file,
            tls.ca_file.as_deref(),
            tls.verify
        ),
        ("s.pem", "s.key", Some("ca.pem"), true)
    );
    assert_eq!(tls.timeout(), Duration::from_millis(750));
    assert!(c.server.allow_non_tls);
    let (c, _) = read("tls { cert_file: a, key_file: b, timeout: 3 }\n");
    assert_eq!(c.server.tls.expect("tls").timeout(), Duration::from_secs(3));

    let (_, errors) = read("tls { cert_file: a }\n");
    assert_eq!(
        messages(&errors),
        ["test.conf:1:4: missing 'key_file' in TLS configuration"]
    );
    let (c, errors) = read(
        "tls {\n  cert_file: a\n  key_file: b\n  insecure: true\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP384]\n  pinned_certs: [\"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\"]\n}\n",
    );
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    let tls = c.server.tls.expect("tls");
    assert_eq!(tls.cipher_suites.as_deref().map(<[String]>::len), Some(2));
    assert_eq!(
        tls.curve_preferences,
        Some(vec!["X25519".to_string(), "CurveP384".to_string()])
    );
    assert_eq!(
        tls.pinned_certs,
        Some(vec![
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".to_string()
        ])
    );

    let (_, errors) = read(
        "tls {\n  cert_file: a\n  key_file: b\n  cipher_suites: []\n  curve_preferences: [CurveP521]\n  verify_cert_and_check_known_urls: true\n  colour: blue\n}\n",
    );
    assert_eq!(
        messages(&errors),
        [
            "test.conf:4:18: error parsing tls config, 'cipher_suites' cannot be empty",
            "test.conf:5:23: curve preference CurveP521 is not supported by tenet (rustls with ring has no P-521)",
            "test.conf:6:3: tls \"verify_cert_and_check_known_urls\" is not supported by tenet yet",
            "test.conf:7:3: error parsing tls config, unknown field [\"colour\"]",
        ]
        .map(String::from)
    );
    let (_, errors) = read(
        "tls {\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n  pinned_certs: [abc]\n}\ntls { cert_file: a, key_file: b, cipher_suites: [TLS_NONE] }\n",
    );
    assert_eq!(
        messages(&errors),
        [
            "test.conf:4:19: cipher suite TLS_RSA_WITH_AES_128_CBC_SHA is not supported by tenet (rustls offers only ECDHE with AES-GCM or ChaCha20-Poly1305)",
            "test.conf:5:18: error parsing tls config, 'pinned_certs' key abc does not look like hex-encoded sha256 of DER encoded SubjectPublicKeyInfo",
            "test.conf:7:50: unrecognized cipher TLS_NONE",
        ]
        .map(String::from)
    );
}

#[test]
fn a_duration_too_long_for_a_number_of_seconds_is_an_error_not_a_panic() {
    // Found by the config fuzz target: Duration::from_secs_f64 panicked.
    let (_, errors) = read("authorization { token: abc, timeout 1000000000000000000000.5 }\n");
    assert_eq!(
        messages(&errors),
        ["test.conf:1:36: timeout: 1000000000000000000000 seconds is too long"]
    );
    let (c, errors) = read("authorization { token: abc, timeout 2.5 }\n");
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    assert_eq!(
        c.authorization.unwrap().timeout,
        Some(Duration::from_millis(2500))
    );
}
