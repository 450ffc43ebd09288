//! The monitoring endpoints on a fake clock: nats-server's JSON shapes and
//! field names, the values after traffic, and every query option.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{login, server_from_config, Sim};
use tenet_core::{CloseReason, MonitorHost, MonitorResponse, Options, Time};

/// 2026-11-23T14:32:19Z, the wall-clock time of `Time::ZERO` in these tests.
const EPOCH_NANOS: u64 = 1_795_444_339_000_000_000;

const QUIET: &str =
    r#"{"verbose":false,"pedantic":false,"protocol":1,"name":"c1","lang":"rust","version":"9.9"}"#;

fn host(sim: &Sim) -> MonitorHost {
    MonitorHost {
        unix_nanos: EPOCH_NANOS + sim.now.as_nanos(),
        mem: 1234,
        cpu: 1.5,
        cores: 4,
    }
}

fn get(sim: &mut Sim, target: &str) -> MonitorResponse {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let host = host(sim);
    sim.server.monitor(path, query, sim.now, &host)
}

fn json(sim: &mut Sim, target: &str) -> Value {
    let r = get(sim, target);
    assert_eq!(
        (r.status, r.content_type),
        (200, "application/json"),
        "{target}: {}",
        r.body
    );
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{target}: {e}: {}", r.body))
}

/// The keys of the pretty-printed JSON `body` at nesting `depth` (1: the
/// top level), in the order written: nats-server's order.
fn keys(body: &str, depth: usize) -> Vec<String> {
    let indent = " ".repeat(2 * depth);
    body.lines()
        .filter_map(|line| line.strip_prefix(&indent))
        .filter(|rest| rest.starts_with('"'))
        .filter_map(|rest| Some(rest[1..].split_once("\": ")?.0.to_string()))
        .collect()
}

fn body(sim: &mut Sim, target: &str) -> String {
    let r = get(sim, target);
    assert_eq!(r.status, 200, "{target}: {}", r.body);
    r.body
}

fn cids(connz: &Value) -> Vec<u64> {
    connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cid"].as_u64().unwrap())
        .collect()
}

#[test]
fn varz_reports_the_configuration_and_the_counters() {
    let mut sim = Sim::new(Options {
        http_port: Some(8222),
        ..Options::default()
    });
    sim.now = Time::from_millis(61_500);
    let a = sim.connect(QUIET);
    let b = sim.connect(QUIET);
    sim.send(a, b"SUB foo 1\r\nSUB bar 2\r\n");
    sim.send(b, b"PUB foo 5\r\nhello\r\nPUB nowhere 2\r\nhi\r\n");
    let v = json(&mut sim, "/varz");
    assert_eq!(
        keys(&body(&mut sim, "/varz"), 1),
        [
            "server_id",
            "server_name",
            "version",
            "proto",
            "go",
            "host",
            "port",
            "max_connections",
            "ping_interval",
            "ping_max",
            "http_host",
            "http_port",
            "http_base_path",
            "https_port",
            "auth_timeout",
            "max_control_line",
            "max_payload",
            "max_pending",
            "tls_timeout",
            "write_deadline",
            "start",
            "now",
            "uptime",
            "mem",
            "cores",
            "cpu",
            "connections",
            "total_connections",
            "routes",
            "remotes",
            "leafnodes",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "slow_consumers",
            "subscriptions",
            "http_req_stats",
            "config_load_time",
            "system_account"
        ]
    );
    assert_eq!(v["version"], "2.9.10");
    assert_eq!(v["port"], 4222);
    assert_eq!(v["http_host"], "0.0.0.0");
    assert_eq!(v["http_port"], 8222);
    assert_eq!(v["ping_interval"], 120_000_000_000u64);
    assert_eq!(v["write_deadline"], 10_000_000_000u64);
    // Whole floats are written as Go writes them.
    assert_eq!(v["auth_timeout"], 2);
    assert_eq!(v["max_payload"], 1_048_576);
    assert_eq!(v["start"], "2026-11-23T14:32:19Z");
    assert_eq!(v["config_load_time"], "2026-11-23T14:32:19Z");
    assert_eq!(v["now"], "2026-11-23T14:33:20.5Z");
    assert_eq!(v["uptime"], "1m1s");
    assert_eq!(
        (v["mem"].as_u64(), v["cores"].as_u64()),
        (Some(1234), Some(4))
    );
    assert_eq!(v["cpu"], 1.5);
    assert_eq!(
        (v["connections"].as_u64(), v["total_connections"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (v["in_msgs"].as_u64(), v["in_bytes"].as_u64()),
        (Some(2), Some(7))
    );
    assert_eq!(
        (v["out_msgs"].as_u64(), v["out_bytes"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(v["subscriptions"], 2);
    assert_eq!(v["system_account"], "$SYS");
    assert!(v.get("auth_required").is_none());
    assert_eq!(v["http_req_stats"], serde_json::json!({"/varz": 1}));
    json(&mut sim, "/connz");
    let v = json(&mut sim, "/varz");
    assert_eq!(
        v["http_req_stats"],
        serde_json::json!({"/connz": 1, "/varz": 3})
    );
    // The port the runtime bound wins over the configured one (-1: any).
    sim.server.set_http_port(40000);
    assert_eq!(json(&mut sim, "/varz")["http_port"], 40000);
}

#[test]
fn connz_lists_connections_with_nats_server_fields() {
    let mut sim = Sim::new(Options::default());
    let a = sim.connect(QUIET);
    sim.send(
        a,
        b"SUB foo 1\r\nSUB bar q 2\r\nUNSUB 2 5\r\nPUB foo 5\r\nhello\r\n",
    );
    // The server's first PING (about 2 s after CONNECT) measures the round trip.
    sim.take(a);
    while !sim.take_str(a).contains("PING") {
        let due = sim.server.poll_timeout().expect("a timer");
        sim.advance(due.saturating_since(sim.now));
    }
    sim.now = sim.now + Duration::from_micros(859);
    sim.send(a, b"PONG\r\n");
    sim.now = sim.now + Duration::from_secs(2);
    let c = json(&mut sim, "/connz");
    assert_eq!(
        keys(&body(&mut sim, "/connz"), 1),
        [
            "server_id",
            "now",
            "num_connections",
            "total",
            "offset",
            "limit",
            "connections"
        ]
    );
    assert_eq!(
        (c["num_connections"].as_u64(), c["total"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (c["offset"].as_u64(), c["limit"].as_u64()),
        (Some(0), Some(1024))
    );
    let conn = &c["connections"][0];
    assert_eq!(
        keys(&body(&mut sim, "/connz"), 3),
        [
            "cid",
            "kind",
            "type",
            "ip",
            "port",
            "start",
            "last_activity",
            "rtt",
            "uptime",
            "idle",
            "pending_bytes",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "subscriptions",
            "name",
            "lang",
            "version"
        ]
    );
    assert_eq!(
        (conn["kind"].as_str(), conn["type"].as_str()),
        (Some("Client"), Some("nats"))
    );
    assert_eq!(
        (conn["ip"].as_str(), conn["port"].as_u64()),
        (Some("127.0.0.1"), Some(1))
    );
    assert_eq!(conn["rtt"], "859µs");
    assert_eq!(conn["start"], "2026-11-23T14:32:20Z");
    assert_eq!(conn["uptime"], "4s");
    assert_eq!(conn["idle"], "2s");
    assert_eq!(
        (conn["in_msgs"].as_u64(), conn["out_msgs"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (conn["in_bytes"].as_u64(), conn["out_bytes"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(conn["subscriptions"], 2);
    assert_eq!(
        (conn["name"].as_str(), conn["lang"].as_str()),
        (Some("c1"), Some("rust"))
    );

    let c = json(&mut sim, "/connz?subs=1");
    assert_eq!(
        c["connections"][0]["subscriptions_list"],
        serde_json::json!(["foo", "bar"])
    );
    let c = json(&mut sim, "/connz?subs=detail");
    assert_eq!(
        c["connections"][0]["subscriptions_list_detail"],
        serde_json::json!([
            {"subject": "foo", "sid": "1", "msgs": 1, "cid": 1},
            {"subject": "bar", "qgroup": "q", "sid": "2", "msgs": 0, "max": 5, "cid": 1}
        ])
    );
    // No authentication: auth=1 has no user to show, and $G is never shown.
    let c = json(&mut sim, "/connz?auth=1");
    assert!(c["connections"][0].get("authorized_user").is_none());
    assert!(c["connections"][0].get("account").is_none());
}

const ACCOUNTS: &str = r#"
accounts {
  A: {
    users: [{user: a, password: p}, {user: a2, password: p}]
    exports: [
      {service: "calc.>", accounts: [B], response: stream}
      {stream: "news.>"}
    ]
  }
  B: {
    users: [{user: b, password: p}]
    imports: [
      {stream: {account: A, subject: "news.>"}, prefix: "from_a"}
      {service: {account: A, subject: "calc.>"}, to: "calc_a.>"}
    ]
  }
}
"#;

#[test]
fn connz_filters_sorts_and_pages() {
    let mut sim = Sim::with_server(server_from_config(ACCOUNTS));
    let a = sim.connect(&login("a"));
    let a2 = sim.connect(&login("a2"));
    let b = sim.connect(&login("b"));
    sim.send(a, b"SUB x 1\r\n");
    sim.send(b, b"SUB y 1\r\nSUB z 2\r\nSUB w 3\r\n");
    sim.send(
        a2,
        b"PUB x 3\r\nabc\r\nPUB x 3\r\nabc\r\nPUB x 3\r\nabc\r\n",
    );
    sim.send(b, b"PUB y 1\r\nq\r\n");
    sim.now = sim.now + Duration::from_secs(1);
    sim.send(a, b"PING\r\n");

    let c = json(&mut sim, "/connz?auth=1");
    let users: Vec<(&str, &str)> = c["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["authorized_user"].as_str().unwrap(),
                c["account"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(users, [("a", "A"), ("a2", "A"), ("b", "B")]);
    assert_eq!(cids(&json(&mut sim, "/connz?acc=A")), [1, 2]);
    assert_eq!(cids(&json(&mut sim, "/connz?acc=B")), [3]);
    assert_eq!(
        cids(&json(&mut sim, "/connz?acc=nobody")),
        Vec::<u64>::new()
    );
    assert_eq!(cids(&json(&mut sim, "/connz?user=a2")), [2]);
    assert_eq!(cids(&json(&mut sim, "/connz?cid=3")), [3]);

    assert_eq!(cids(&json(&mut sim, "/connz?sort=cid")), [1, 2, 3]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=start")), [1, 2, 3]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=subs")), [3, 1, 2]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=msgs_from")), [2, 3, 1]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=bytes_from")), [2, 3, 1]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=msgs_to")), [1, 3, 2]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=bytes_to")), [1, 3, 2]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=pending")), [1, 2, 3]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=last")), [1, 2, 3]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=idle")), [2, 3, 1]);
    assert_eq!(cids(&json(&mut sim, "/connz?sort=uptime")), [1, 2, 3]);

    let page = json(&mut sim, "/connz?sort=subs&offset=1&limit=1");
    assert_eq!(cids(&page), [1]);
    assert_eq!(
        (
            page["num_connections"].as_u64(),
            page["total"].as_u64(),
            page["offset"].as_u64(),
            page["limit"].as_u64()
        ),
        (Some(1), Some(3), Some(1), Some(1))
    );
    let past = json(&mut sim, "/connz?offset=10");
    assert_eq!((cids(&past).len(), past["total"].as_u64()), (0, Some(3)));

    for (query, status, body) in [
        ("sort=bogus", 400, "invalid sorting option: bogus"),
        ("sort=rtt", 400, "invalid sorting option: rtt"),
        ("sort=stop", 400, "sort by stop only valid on closed connections"),
        (
            "subs=maybe",
            400,
            "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"maybe\": invalid syntax",
        ),
        (
            "limit=x",
            400,
            "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax",
        ),
    ] {
        let r = get(&mut sim, &format!("/connz?{query}"));
        assert_eq!((r.status, r.body.as_str()), (status, body), "{query}");
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
    }
}

#[test]
fn subsz_gives_the_subject_space_statistics_and_lists() {
    let mut sim = Sim::with_server(server_from_config(ACCOUNTS));
    let a = sim.connect(&login("a"));
    let b = sim.connect(&login("b"));
    sim.send(a, b"SUB news.x 1\r\nSUB calc.add q 2\r\n");
    sim.send(b, b"SUB from_a.news.> 7\r\n");
    sim.send(a, b"PUB news.x 2\r\nhi\r\nPUB news.x 2\r\nhi\r\n");
    let a2 = sim.connect(&login("a"));
    sim.send(a2, b"PUB news.x 2\r\nhi\r\n");

    let s = json(&mut sim, "/subsz");
    assert_eq!(
        keys(&body(&mut sim, "/subsz"), 1),
        [
            "num_subscriptions",
            "num_cache",
            "num_inserts",
            "num_removes",
            "num_matches",
            "cache_hit_rate",
            "max_fanout",
            "avg_fanout"
        ]
    );
    assert_eq!(s["num_subscriptions"], 3);
    assert_eq!(s["num_inserts"], 3);
    // news.x was matched twice in A (a's second publish reused its own last
    // match, which nats-server does not count either), cached on its second
    // miss, and three times in B (the stream import), the third time from
    // the cache.
    assert_eq!(s["num_matches"], 5);
    assert_eq!(
        s["cache_hit_rate"].as_f64().map(|r| (r * 1000.0).round()),
        Some(200.0)
    );
    assert_eq!(
        (s["num_cache"].as_u64(), s["max_fanout"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(s["avg_fanout"], 1);

    let s = json(&mut sim, "/subsz?subs=1");
    assert_eq!(
        keys(&body(&mut sim, "/subsz?subs=1"), 1),
        [
            "server_id",
            "now",
            "num_subscriptions",
            "num_cache",
            "num_inserts",
            "num_removes",
            "num_matches",
            "cache_hit_rate",
            "max_fanout",
            "avg_fanout",
            "total",
            "offset",
            "limit",
            "subscriptions_list"
        ]
    );
    assert_eq!(
        s["subscriptions_list"],
        serde_json::json!([
            {"account": "A", "subject": "news.x", "sid": "1", "msgs": 3, "cid": 1},
            {"account": "A", "subject": "calc.add", "qgroup": "q", "sid": "2", "msgs": 0, "cid": 1},
            {"account": "B", "subject": "from_a.news.>", "sid": "7", "msgs": 3, "cid": 2}
        ])
    );
    let s = json(&mut sim, "/subsz?subs=1&acc=B");
    assert_eq!(
        (s["num_subscriptions"].as_u64(), s["total"].as_u64()),
        (Some(1), Some(1))
    );
    let s = json(&mut sim, "/subsz?subs=1&test=calc.add");
    assert_eq!(s["total"], 1);
    assert_eq!(s["subscriptions_list"][0]["subject"], "calc.add");
    let s = json(&mut sim, "/subsz?subs=1&offset=1&limit=1");
    assert_eq!(
        (
            s["total"].as_u64(),
            s["offset"].as_u64(),
            s["limit"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(s["subscriptions_list"][0]["subject"], "calc.add");
    assert_eq!(json(&mut sim, "/subscriptionsz")["num_subscriptions"], 3);
    let r = get(&mut sim, "/subsz?test=foo.*");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            "Invalid test subject, must be valid publish subject: foo.*"
        )
    );
    assert_eq!(get(&mut sim, "/subsz?acc=C").status, 400);
}

#[test]
fn accountz_lists_accounts_and_details_one() {
    let mut sim = Sim::with_server(server_from_config(ACCOUNTS));
    let a = sim.connect(&login("a"));
    sim.send(a, b"SUB news.x 1\r\n");
    let z = json(&mut sim, "/accountz");
    assert_eq!(
        keys(&body(&mut sim, "/accountz"), 1),
        ["server_id", "now", "system_account", "accounts"]
    );
    assert_eq!(z["accounts"], serde_json::json!(["$G", "A", "B", "$SYS"]));
    assert_eq!(z["system_account"], "$SYS");

    let z = json(&mut sim, "/accountz?acc=A");
    assert_eq!(
        keys(&body(&mut sim, "/accountz?acc=A"), 1),
        ["server_id", "now", "system_account", "account_detail"]
    );
    let d = &z["account_detail"];
    assert_eq!(
        keys(&body(&mut sim, "/accountz?acc=A"), 2),
        [
            "account_name",
            "update_time",
            "expired",
            "complete",
            "jetstream_enabled",
            "leafnode_connections",
            "client_connections",
            "subscriptions",
            "exports",
            "sublist_stats"
        ]
    );
    assert_eq!(
        (
            d["client_connections"].as_u64(),
            d["subscriptions"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        d["exports"],
        serde_json::json!([
            {"subject": "calc.>", "type": "service", "response_type": "Streamed", "approved_accounts": ["B"]},
            {"subject": "news.>", "type": "stream"}
        ])
    );
    assert_eq!(d["sublist_stats"]["num_subscriptions"], 1);

    let d = &json(&mut sim, "/accountz?acc=B")["account_detail"];
    assert_eq!(
        d["imports"],
        serde_json::json!([
            {"subject": "news.>", "account": "A", "local_subject": "from_a.news.>", "type": "stream",
             "invalid": false, "share": false, "tracking": false},
            {"subject": "calc_a.>", "account": "A", "to": "calc.>", "type": "service",
             "invalid": false, "share": false, "tracking": false}
        ])
    );
    assert!(d.get("exports").is_none());
    assert_eq!(
        json(&mut sim, "/accountz?acc=%24SYS")["account_detail"]["is_system"],
        true
    );
    let r = get(&mut sim, "/accountz?acc=NOPE");
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Account NOPE does not exist")
    );
}

#[test]
fn a_reload_moves_the_config_load_time() {
    let mut sim = Sim::with_server(server_from_config(ACCOUNTS));
    sim.now = Time::from_millis(5_000);
    let (opts, auth) = support::config(ACCOUNTS);
    sim.server.reload(opts, auth, sim.now).expect("reloadable");
    assert_eq!(
        json(&mut sim, "/varz")["config_load_time"],
        "2026-11-23T14:32:24Z"
    );
    assert_eq!(
        json(&mut sim, "/accountz?acc=A")["account_detail"]["update_time"],
        "2026-11-23T14:32:24Z"
    );
    // A reload may not move monitoring.
    let (mut opts, auth) = support::config(ACCOUNTS);
    opts.http_port = Some(8222);
    assert_eq!(
        sim.server.reload(opts, auth, sim.now).unwrap_err(),
        "config reload not supported for http_port: old=0, new=8222"
    );
}

#[test]
fn healthz_index_and_unknown_paths() {
    let mut sim = Sim::new(Options::default());
    let r = get(&mut sim, "/healthz");
    assert_eq!(
        (r.status, r.content_type, r.body.as_str()),
        (200, "application/json", r#"{"status":"ok"}"#)
    );
    let r = get(&mut sim, "/");
    assert_eq!(
        (r.status, r.content_type),
        (200, "text/html; charset=utf-8")
    );
    for link in ["./varz", "./connz", "./accountz", "./subsz", "./healthz"] {
        assert!(r.body.contains(&format!("href={link}>")), "{link}");
    }
    // Without JetStream, /jsz says so, as nats-server's does.
    let r = get(&mut sim, "/jsz");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"disabled\": true"), "{}", r.body);
    for path in ["/routez", "/varz/", "varz", ""] {
        let r = get(&mut sim, path);
        assert_eq!(
            (r.status, r.body.as_str()),
            (404, "404 page not found"),
            "{path:?}"
        );
    }
    // Unknown paths are not counted.
    assert_eq!(
        json(&mut sim, "/varz")["http_req_stats"],
        serde_json::json!({"/": 1, "/healthz": 1, "/jsz": 1, "/varz": 1})
    );
}

/// A difference from nats-server 2.9.10, which moves `last_activity` for
/// SUBs and messages but not for PINGs: tenet counts every read (the same
/// instant decides whether the client needs a server PING).
#[test]
fn every_read_counts_as_activity() {
    let mut sim = Sim::new(Options::default());
    let a = sim.connect(QUIET);
    sim.now = sim.now + Duration::from_secs(5);
    sim.send(a, b"PING\r\n");
    sim.now = sim.now + Duration::from_secs(1);
    let conn = &json(&mut sim, "/connz")["connections"][0];
    assert_eq!(conn["last_activity"], "2026-11-23T14:32:25Z");
    assert_eq!(conn["idle"], "1s");
}

#[test]
fn a_base_path_moves_every_endpoint_under_it() {
    let mut sim = Sim::new(Options {
        http_port: Some(8222),
        http_base_path: "nats/mon/".to_string(),
        ..Options::default()
    });
    // /varz reports the base path as configured.
    let v = json(&mut sim, "/nats/mon/varz");
    assert_eq!(v["http_base_path"], "nats/mon/");
    assert_eq!(json(&mut sim, "/nats/mon/healthz")["status"], "ok");
    json(&mut sim, "/nats/mon/connz?subs=1");
    json(&mut sim, "/nats/mon/subsz");
    json(&mut sim, "/nats/mon/subscriptionsz");
    json(&mut sim, "/nats/mon/accountz");
    let index = get(&mut sim, "/nats/mon");
    assert_eq!(
        (index.status, index.content_type),
        (200, "text/html; charset=utf-8")
    );
    assert!(
        index.body.contains("<a href=./mon/varz>General</a>"),
        "{}",
        index.body
    );
    // Nothing else answers: not the old paths, not the base with a slash.
    for path in [
        "/varz",
        "/",
        "/healthz",
        "/nats",
        "/nats/mon/",
        "/nats/monvarz",
        "/nats/mon/varz/",
        "/nats/mon/nope",
    ] {
        let r = get(&mut sim, path);
        assert_eq!(
            (r.status, r.body.as_str()),
            (404, "404 page not found"),
            "{path}"
        );
    }
    // Requests are counted by endpoint, as nats-server does.
    let v = json(&mut sim, "/nats/mon/varz");
    assert_eq!(v["http_req_stats"]["/varz"], 2);
    assert_eq!(v["http_req_stats"]["/"], 1);
}

#[test]
fn without_a_base_path_the_endpoints_are_at_the_root() {
    for base in ["", "/"] {
        let mut sim = Sim::new(Options {
            http_port: Some(8222),
            http_base_path: base.to_string(),
            ..Options::default()
        });
        assert_eq!(json(&mut sim, "/varz")["http_base_path"], base);
        assert_eq!(get(&mut sim, "/").status, 200);
        assert_eq!(get(&mut sim, "/varz/").status, 404);
    }
}

// ----- closed connections --------------------------------------------------------

/// The `(cid, reason)` of each connection in a `/connz` answer.
fn reasons(connz: &Value) -> Vec<(u64, String)> {
    connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cid"].as_u64().unwrap(),
                c["reason"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

/// `(num_connections, total, offset, limit)` of a `/connz` answer.
fn counts(connz: &Value) -> (u64, u64, u64, u64) {
    let n = |k: &str| connz[k].as_u64().unwrap();
    (n("num_connections"), n("total"), n("offset"), n("limit"))
}

#[test]
fn a_closed_connection_keeps_what_connz_showed_when_it_closed() {
    let mut sim = Sim::new(Options::default());
    let a = sim.connect(QUIET);
    sim.send(
        a,
        b"SUB foo 1\r\nSUB bar q 2\r\nUNSUB 2 5\r\nSUB baz 10\r\nPUB foo 5\r\nhello\r\n",
    );
    sim.take(a);
    while !sim.take_str(a).contains("PING") {
        let due = sim.server.poll_timeout().expect("a timer");
        sim.advance(due.saturating_since(sim.now));
    }
    sim.now = sim.now + Duration::from_micros(859);
    sim.send(a, b"PONG\r\n");
    let b = sim.connect(r#"{"verbose":false,"pedantic":false,"name":"b"}"#);
    sim.now = Time::from_millis(10_000);
    sim.send(a, b"PUB foo 2\r\nhi\r\n");
    sim.now = Time::from_millis(12_000);
    sim.disconnect(a);
    sim.now = Time::from_millis(20_000);

    // Gone from the open connections and the subject space.
    assert_eq!(cids(&json(&mut sim, "/connz")), [2]);
    assert_eq!(json(&mut sim, "/varz")["subscriptions"], 0);
    assert_eq!(json(&mut sim, "/subsz")["num_subscriptions"], 0);

    let c = json(&mut sim, "/connz?state=closed");
    assert_eq!(counts(&c), (1, 1, 0, 1024));
    assert_eq!(
        keys(&body(&mut sim, "/connz?state=closed"), 3),
        [
            "cid",
            "kind",
            "type",
            "ip",
            "port",
            "start",
            "last_activity",
            "stop",
            "reason",
            "rtt",
            "uptime",
            "idle",
            "pending_bytes",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "subscriptions",
            "name",
            "lang",
            "version"
        ]
    );
    let conn = &c["connections"][0];
    assert_eq!(conn["cid"], 1);
    assert_eq!(
        (conn["kind"].as_str(), conn["type"].as_str()),
        (Some("Client"), Some("nats"))
    );
    assert_eq!(
        (conn["ip"].as_str(), conn["port"].as_u64()),
        (Some("127.0.0.1"), Some(1))
    );
    assert_eq!(conn["start"], "2026-11-23T14:32:20Z");
    assert_eq!(conn["last_activity"], "2026-11-23T14:32:29Z");
    assert_eq!(conn["stop"], "2026-11-23T14:32:31Z");
    assert_eq!(conn["reason"], "Client Closed");
    assert_eq!(conn["rtt"], "859µs");
    // Both end when it closed, not now.
    assert_eq!(
        (conn["uptime"].as_str(), conn["idle"].as_str()),
        (Some("11s"), Some("2s"))
    );
    assert_eq!(conn["pending_bytes"], 0);
    assert_eq!(
        (conn["in_msgs"].as_u64(), conn["in_bytes"].as_u64()),
        (Some(2), Some(7))
    );
    assert_eq!(
        (conn["out_msgs"].as_u64(), conn["out_bytes"].as_u64()),
        (Some(2), Some(7))
    );
    assert_eq!(conn["subscriptions"], 3);
    assert_eq!(
        (
            conn["name"].as_str(),
            conn["lang"].as_str(),
            conn["version"].as_str()
        ),
        (Some("c1"), Some("rust"), Some("9.9"))
    );
    // The same record later: nothing moves.
    sim.now = Time::from_millis(99_000);
    assert_eq!(
        json(&mut sim, "/connz?state=closed")["connections"][0],
        *conn
    );

    let c = json(&mut sim, "/connz?state=closed&subs=1");
    assert_eq!(
        c["connections"][0]["subscriptions_list"],
        serde_json::json!(["foo", "bar", "baz"])
    );
    // Details name the account ($G too) and no `max`, as nats-server's.
    let c = json(&mut sim, "/connz?state=closed&subs=detail");
    assert_eq!(
        c["connections"][0]["subscriptions_list_detail"],
        serde_json::json!([
            {"account": "$G", "subject": "foo", "sid": "1", "msgs": 2, "cid": 1},
            {"account": "$G", "subject": "bar", "qgroup": "q", "sid": "2", "msgs": 0, "cid": 1},
            {"account": "$G", "subject": "baz", "sid": "10", "msgs": 0, "cid": 1}
        ])
    );
    // Without authentication there is no user or account to show.
    let c = json(&mut sim, "/connz?state=closed&auth=1");
    assert!(c["connections"][0].get("authorized_user").is_none());
    assert!(c["connections"][0].get("account").is_none());

    // Open and closed together, by cid; only the closed one has a stop.
    let all = json(&mut sim, "/connz?state=all");
    assert_eq!(
        reasons(&all),
        [(1, "Client Closed".to_string()), (2, "-".to_string())]
    );
    assert_eq!(counts(&all), (2, 2, 0, 1024));
    assert!(all["connections"][1].get("stop").is_none());
    assert_eq!(json(&mut sim, "/connz?state=ALL")["total"], 2);
    assert_eq!(json(&mut sim, "/connz?state=any")["total"], 2);
    assert_eq!(json(&mut sim, "/connz?state=Open")["total"], 1);
    let _ = b;
}

#[test]
fn every_way_of_closing_records_nats_server_reason() {
    let mut sim = Sim::new(Options {
        max_payload: 100,
        max_control_line: 256,
        max_pending: 64 * 1024,
        max_connections: 3,
        ping_interval: Duration::from_secs(10),
        ping_max: 1,
        write_deadline: Duration::from_secs(8),
        ..Options::default()
    });
    let named = |name: &str, extra: &str| {
        format!(r#"{{"verbose":false,"pedantic":false,"name":"{name}"{extra}}}"#)
    };
    let peer_closed = sim.connect(&named("peer closed", ""));
    sim.disconnect(peer_closed);
    let read = sim.connect(&named("read error", ""));
    sim.server
        .handle_closed(read, CloseReason::ReadError, sim.now);
    let write = sim.connect(&named("write error", ""));
    sim.server
        .handle_closed(write, CloseReason::WriteError, sim.now);
    for (name, extra, input) in [
        ("payload", "", &b"PUB foo 200\r\n"[..]),
        (
            "control line",
            "",
            &[&b"SUB "[..], &[b'x'; 300]].concat()[..],
        ),
        ("unknown op", "", b"FOO\r\n"),
        ("bad arguments", "", b"SUB foo\r\n"),
        ("client -ERR", "", b"-ERR 'boom'\r\n"),
        ("bad json", "", b"CONNECT {\"verbose\":\r\n"),
        (
            "hpub without headers",
            "",
            b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
        ),
        ("protocol 5", r#","protocol":5"#, b""),
        ("no responders", r#","no_responders":true"#, b""),
    ] {
        let id = sim.connect(&named(name, extra));
        sim.send(id, input);
        assert!(sim.closed.contains_key(&id), "{name} is still open");
    }
    // A subscriber that does not read.
    let slow = sim.connect(&named("slow", ""));
    let publisher = sim.connect(&named("publisher", ""));
    sim.send(slow, b"SUB big 1\r\n");
    sim.stuck.push(slow);
    let msg = [
        b"PUB big 100\r\n".to_vec(),
        vec![b'x'; 100],
        b"\r\n".to_vec(),
    ]
    .concat();
    while !sim.closed.contains_key(&slow) {
        sim.send(publisher, &msg);
        if !sim.server.can_read(publisher) {
            sim.advance(Duration::from_millis(20));
        }
    }
    sim.disconnect(publisher);
    // A subscriber whose socket takes nothing, with one message queued.
    let stuck = sim.connect(&named("write deadline", ""));
    sim.send(stuck, b"SUB wd 1\r\n");
    sim.stuck.push(stuck);
    let publisher = sim.connect(&named("publisher 2", ""));
    sim.send(publisher, b"PUB wd 1\r\nx\r\n");
    sim.disconnect(publisher);
    sim.advance(Duration::from_secs(8));
    assert!(sim.closed.contains_key(&stuck));
    // A client that never answers PINGs.
    let stale = sim.connect(&named("stale", ""));
    sim.advance(Duration::from_secs(30));
    assert!(sim.closed.contains_key(&stale));
    // Three allowed: the fourth is refused.
    let kept: Vec<_> = (0..3)
        .map(|i| sim.connect(&named(&format!("kept {i}"), "")))
        .collect();
    let refused = sim.server.accept(
        tenet_core::Peer {
            ip: "127.0.0.1".into(),
            port: 9,
        },
        sim.now,
    );
    sim.pump();
    assert!(sim.closed.contains_key(&refused));
    sim.server.shutdown(sim.now);
    sim.pump();
    assert!(kept.iter().all(|k| sim.closed.contains_key(k)));

    let c = json(&mut sim, "/connz?state=closed");
    let got: Vec<(String, String)> = c["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("(no CONNECT)").to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("peer closed", "Client Closed"),
        ("read error", "Read Error"),
        ("write error", "Write Error"),
        ("payload", "Maximum Message Payload Exceeded"),
        ("control line", "Maximum Control Line Exceeded"),
        ("unknown op", "Protocol Violation"),
        ("bad arguments", "Protocol Violation"),
        ("client -ERR", "Parse Error"),
        ("bad json", "Protocol Violation"),
        ("hpub without headers", "Protocol Violation"),
        ("protocol 5", "Bad Client Protocol Version"),
        ("no responders", "No Responders Requires Headers"),
        ("slow", "Slow Consumer (Pending Bytes)"),
        ("publisher", "Client Closed"),
        ("write deadline", "Slow Consumer (Write Deadline)"),
        ("publisher 2", "Client Closed"),
        ("stale", "Stale Connection"),
        ("kept 0", "Server Shutdown"),
        ("kept 1", "Server Shutdown"),
        ("kept 2", "Server Shutdown"),
        ("(no CONNECT)", "Maximum Connections Exceeded"),
    ]
    .iter()
    .map(|(n, r)| (n.to_string(), r.to_string()))
    .collect();
    assert_eq!(got, want);
    // What was queued when it closed: the -ERR, or the slow consumer's backlog.
    let pending = |name: &str| {
        c["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["pending_bytes"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        pending("payload"),
        "-ERR 'Maximum Payload Violation'\r\n".len() as u64
    );
    assert!(pending("slow") > 64 * 1024);
    assert_eq!(pending("peer closed"), 0);
}

const LOGINS: &str = r#"
authorization { timeout: 1 }
accounts {
  A: { users: [{user: a, password: p}, {user: gone, password: p}, {user: rotated, password: p}] }
  L: { users: [{user: l, password: p}], limits: {max_connections: 1} }
}
"#;

const LOGINS_RELOADED: &str = r#"
authorization { timeout: 1 }
accounts {
  A: { users: [{user: a, password: p}, {user: rotated, password: new}] }
  L: { users: [{user: l, password: p}], limits: {max_connections: 1} }
}
"#;

#[test]
fn closed_logins_show_the_user_they_named_and_their_account() {
    let mut sim = Sim::with_server(server_from_config(LOGINS));
    let quiet = |user: &str, pass: &str| {
        format!(
            r#"{{"verbose":false,"pedantic":false,"name":"{user}","user":"{user}","pass":"{pass}"}}"#
        )
    };
    // A failed login keeps the user it tried, in no account.
    let bad = sim.connect(&quiet("a", "wrong"));
    assert!(sim.closed.contains_key(&bad));
    // Anything but CONNECT first.
    let rude = sim.server.accept(
        tenet_core::Peer {
            ip: "127.0.0.1".into(),
            port: 2,
        },
        sim.now,
    );
    sim.pump();
    sim.send(rude, b"PING\r\n");
    // The account's only place is taken: the second is refused, in L.
    let l1 = sim.connect(&quiet("l", "p"));
    let l2 = sim.connect(&quiet("l", "p"));
    assert!(sim.closed.contains_key(&l2));
    // No CONNECT in time.
    let silent = sim.server.accept(
        tenet_core::Peer {
            ip: "127.0.0.1".into(),
            port: 3,
        },
        sim.now,
    );
    sim.pump();
    sim.advance(Duration::from_millis(1_500));
    // A reload: a removed user is closed, a changed password fails.
    let gone = sim.connect(&quiet("gone", "p"));
    let rotated = sim.connect(&quiet("rotated", "p"));
    let a = sim.connect(&quiet("a", "p"));
    sim.send(a, b"SUB x 1\r\n");
    let (opts, auth) = support::config(LOGINS_RELOADED);
    sim.server.reload(opts, auth, sim.now).expect("reloadable");
    sim.pump();
    sim.disconnect(a);
    let _ = (l1, gone, rotated, silent);

    let c = json(&mut sim, "/connz?state=closed&auth=1&subs=detail");
    let got: Vec<Value> = c["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            serde_json::json!([
                c["cid"],
                c["reason"],
                c["authorized_user"],
                c["account"],
                c["pending_bytes"]
            ])
        })
        .collect();
    let err = |text: &str| format!("-ERR '{text}'\r\n").len();
    assert_eq!(
        got,
        [
            serde_json::json!([
                1,
                "Authentication Failure",
                "a",
                null,
                err("Authorization Violation")
            ]),
            serde_json::json!([
                2,
                "Authentication Failure",
                null,
                null,
                err("Authorization Violation")
            ]),
            serde_json::json!([
                4,
                "Maximum Account Connections Exceeded",
                "l",
                "L",
                err("maximum account active connections exceeded")
            ]),
            serde_json::json!([
                5,
                "Authentication Timeout",
                null,
                null,
                err("Authentication Timeout")
            ]),
            serde_json::json!([6, "Client Closed", "gone", "A", 0]),
            serde_json::json!([
                7,
                "Authentication Failure",
                "rotated",
                "A",
                err("Authorization Violation")
            ]),
            serde_json::json!([8, "Client Closed", "a", "A", 0]),
        ]
    );
    let a = c["connections"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        a["subscriptions_list_detail"],
        serde_json::json!([{"account": "A", "subject": "x", "sid": "1", "msgs": 0, "cid": 8}])
    );
    // The timeout ran from the accept to the close.
    let silent = &c["connections"][3];
    assert_eq!(
        (silent["uptime"].as_str(), silent["idle"].as_str()),
        (Some("1s"), Some("1s"))
    );
    // Without auth=1, neither is shown.
    let plain = json(&mut sim, "/connz?state=closed");
    assert!(plain["connections"][0].get("authorized_user").is_none());
    assert!(plain["connections"][2].get("account").is_none());
}

#[test]
fn closed_anonymous_token_and_named_clients_show_the_user_nats_server_keeps() {
    // The no_auth_user a client without credentials was logged in as.
    let mut sim = Sim::with_server(server_from_config(
        "accounts { A: { users: [{user: a, password: p}, {user: anon, password: p}] } }\nno_auth_user: anon\n",
    ));
    let anonymous = sim.connect(QUIET);
    sim.disconnect(anonymous);
    let c = json(&mut sim, "/connz?state=closed&auth=1");
    assert_eq!(
        (
            c["connections"][0]["authorized_user"].as_str(),
            c["connections"][0]["account"].as_str()
        ),
        (Some("anon"), Some("A"))
    );
    // Never the token.
    let mut sim = Sim::with_server(server_from_config("authorization { token: s3cret }\n"));
    let t = sim.connect(r#"{"verbose":false,"pedantic":false,"auth_token":"s3cret"}"#);
    sim.disconnect(t);
    let r = get(&mut sim, "/connz?state=closed&auth=1");
    assert!(!r.body.contains("s3cret"), "{}", r.body);
    assert!(
        json(&mut sim, "/connz?state=closed&auth=1")["connections"][0]
            .get("authorized_user")
            .is_none()
    );
    // Without authentication, the user the CONNECT named, as nats-server.
    let mut sim = Sim::new(Options::default());
    let named = sim.connect(r#"{"verbose":false,"pedantic":false,"user":"someone"}"#);
    sim.disconnect(named);
    let c = json(&mut sim, "/connz?state=closed&auth=1&user=someone");
    assert_eq!(c["connections"][0]["authorized_user"], "someone");
}

const TENANTS: &str = r#"
authorization { users: [{user: g, password: p}] }
accounts {
  A: { users: [{user: a, password: p}, {user: a2, password: p}] }
  B: { users: [{user: b, password: p}] }
}
"#;

#[test]
fn closed_connections_sort_filter_and_page_as_nats_server() {
    let mut sim = Sim::with_server(server_from_config(TENANTS));
    let at = |sim: &mut Sim, secs: u64| sim.now = Time::from_millis(secs * 1000);
    at(&mut sim, 1);
    let c1 = sim.connect(&login("a"));
    sim.send(
        c1,
        b"SUB s1 1\r\nPUB x 1\r\n1\r\nPUB x 1\r\n1\r\nPUB x 1\r\n1\r\n",
    );
    at(&mut sim, 2);
    let c2 = sim.connect(&login("a2"));
    sim.send(c2, b"SUB s1 1\r\nSUB s2 2\r\nSUB s3 3\r\n");
    at(&mut sim, 3);
    let c3 = sim.connect(&login("b"));
    sim.send(c3, b"SUB s1 1\r\nSUB s2 2\r\n");
    at(&mut sim, 4);
    let c4 = sim.connect(&login("a"));
    at(&mut sim, 5);
    let c5 = sim.connect(&login("g"));
    sim.send(c2, b"-ERR 'bye'\r\n");
    at(&mut sim, 7);
    sim.disconnect(c5);
    at(&mut sim, 8);
    sim.send(c1, b"PING\r\n");
    at(&mut sim, 10);
    sim.disconnect(c1);
    at(&mut sim, 15);
    sim.send(c3, b"PING\r\n");
    at(&mut sim, 20);
    sim.disconnect(c3);
    at(&mut sim, 30);
    let _ = c4;
    let closed = |sim: &mut Sim, query: &str| {
        let c = json(sim, &format!("/connz?state=closed{query}"));
        (cids(&c), c["total"].as_u64().unwrap())
    };

    // Closed in the order 2, 5, 1, 3; listed by cid unless asked otherwise.
    assert_eq!(closed(&mut sim, ""), (vec![1, 2, 3, 5], 4));
    assert_eq!(closed(&mut sim, "&sort=cid"), (vec![1, 2, 3, 5], 4));
    assert_eq!(closed(&mut sim, "&sort=start"), (vec![1, 2, 3, 5], 4));
    // The most recent close first.
    assert_eq!(closed(&mut sim, "&sort=stop"), (vec![3, 1, 5, 2], 4));
    // By reason; equal reasons in the order they closed.
    assert_eq!(closed(&mut sim, "&sort=reason"), (vec![5, 1, 3, 2], 4));
    assert_eq!(closed(&mut sim, "&sort=subs"), (vec![2, 3, 1, 5], 4));
    assert_eq!(closed(&mut sim, "&sort=msgs_from"), (vec![1, 2, 5, 3], 4));
    assert_eq!(closed(&mut sim, "&sort=bytes_from"), (vec![1, 2, 5, 3], 4));
    // Uptime ends at the stop: 3 s, 2 s, 9 s, 17 s; the shortest first.
    assert_eq!(closed(&mut sim, "&sort=uptime"), (vec![5, 2, 1, 3], 4));
    // Last activity at 5 s (2 and 5), 8 s (1) and 15 s (3).
    assert_eq!(closed(&mut sim, "&sort=last"), (vec![3, 1, 2, 5], 4));
    assert_eq!(closed(&mut sim, "&sort=idle"), (vec![2, 5, 1, 3], 4));

    // Pages.
    let page = json(&mut sim, "/connz?state=closed&sort=stop&offset=1&limit=2");
    assert_eq!((cids(&page), counts(&page)), (vec![1, 5], (2, 4, 1, 2)));
    assert_eq!(closed(&mut sim, "&offset=9"), (vec![], 4));

    // One cid: a page of one; the total is still the state's.
    let one = json(&mut sim, "/connz?state=closed&cid=3");
    assert_eq!((cids(&one), counts(&one)), (vec![3], (1, 4, 0, 1)));
    assert_eq!(closed(&mut sim, "&cid=4"), (vec![], 4));
    assert_eq!(cids(&json(&mut sim, "/connz?cid=1")), Vec::<u64>::new());
    // With both states, an open connection first, else a closed one.
    let any = json(&mut sim, "/connz?state=all&cid=4");
    assert_eq!((cids(&any), counts(&any)), (vec![4], (1, 5, 0, 1)));
    assert_eq!(cids(&json(&mut sim, "/connz?state=all&cid=1")), [1]);

    // The user a closed connection named; the total is not lowered.
    assert_eq!(closed(&mut sim, "&user=a"), (vec![1], 4));
    assert_eq!(closed(&mut sim, "&user=a2&auth=1"), (vec![2], 4));
    assert_eq!(cids(&json(&mut sim, "/connz?state=all&user=a")), [1, 4]);
    // An account is kept unless it is $G, so acc=$G finds no closed one.
    assert_eq!(closed(&mut sim, "&acc=A"), (vec![1, 2], 2));
    assert_eq!(closed(&mut sim, "&acc=B"), (vec![3], 1));
    assert_eq!(closed(&mut sim, "&acc=%24G"), (vec![], 0));
    assert_eq!(closed(&mut sim, "&acc=nobody"), (vec![], 0));
    let all_a = json(&mut sim, "/connz?state=all&acc=A");
    assert_eq!(
        (cids(&all_a), all_a["total"].as_u64()),
        (vec![1, 2, 4], Some(3))
    );
    let auth = json(&mut sim, "/connz?state=closed&auth=1");
    let who: Vec<(Value, Value)> = auth["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["authorized_user"].clone(), c["account"].clone()))
        .collect();
    assert_eq!(
        who,
        [
            ("a".into(), "A".into()),
            ("a2".into(), "A".into()),
            ("b".into(), "B".into()),
            ("g".into(), Value::Null)
        ]
    );

    // Everything, open and closed.
    let all = json(&mut sim, "/connz?state=all");
    assert_eq!(
        (cids(&all), counts(&all)),
        (vec![1, 2, 3, 4, 5], (5, 5, 0, 1024))
    );
    assert_eq!(
        cids(&json(&mut sim, "/connz?state=all&sort=subs")),
        [2, 3, 1, 4, 5]
    );
    assert_eq!(cids(&json(&mut sim, "/connz?state=open")), [4]);

    for (query, text) in [
        ("sort=stop", "sort by stop only valid on closed connections"),
        ("state=all&sort=stop", "sort by stop only valid on closed connections"),
        ("state=open&sort=reason", "sort by reason only valid on closed connections"),
        ("state=closed&sort=rtt", "invalid sorting option: rtt"),
        ("state=bogus", "Error decoding state for bogus"),
        (
            "state=closed&cid=x",
            "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"x\": invalid syntax",
        ),
        (
            "cid=-1",
            "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"-1\": invalid syntax",
        ),
        (
            "cid=99999999999999999999",
            "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"99999999999999999999\": value out of range",
        ),
    ] {
        let r = get(&mut sim, &format!("/connz?{query}"));
        assert_eq!((r.status, r.body.as_str()), (400, text), "{query}");
    }
}

#[test]
fn the_newest_ten_thousand_closed_connections_are_kept() {
    let mut sim = Sim::new(Options::default());
    for port in 0..10_001u32 {
        sim.now = Time::from_millis(1_000 + u64::from(port));
        let id = sim.server.accept(
            tenet_core::Peer {
                ip: "10.0.0.1".into(),
                port: port as u16,
            },
            sim.now,
        );
        sim.pump();
        sim.take(id);
        sim.disconnect(id);
    }
    let c = json(&mut sim, "/connz?state=closed");
    assert_eq!(counts(&c), (1024, 10_000, 0, 1024));
    // The first one is forgotten.
    assert_eq!(cids(&c)[0], 2);
    assert_eq!(
        cids(&json(&mut sim, "/connz?state=closed&offset=9999")),
        [10_001]
    );
    assert_eq!(
        cids(&json(&mut sim, "/connz?state=closed&sort=stop&limit=2")),
        [10_001, 10_000]
    );
    assert_eq!(
        cids(&json(&mut sim, "/connz?state=closed&cid=1")),
        Vec::<u64>::new()
    );
}

#[test]
fn a_closed_connection_keeps_all_its_subscriptions() {
    let mut sim = Sim::new(Options::default());
    let a = sim.connect(QUIET);
    let subs: String = (1..=2_000).map(|i| format!("SUB s.{i} {i}\r\n")).collect();
    sim.send(a, subs.as_bytes());
    assert_eq!(sim.server.num_subscriptions(), 2_000);
    sim.disconnect(a);
    assert_eq!(sim.server.num_subscriptions(), 0);
    let c = json(&mut sim, "/connz?state=closed&subs=detail");
    let detail = c["connections"][0]["subscriptions_list_detail"]
        .as_array()
        .unwrap();
    assert_eq!(c["connections"][0]["subscriptions"], 2_000);
    assert_eq!(detail.len(), 2_000);
    assert_eq!(detail[1999]["subject"], "s.2000");
    assert_eq!(detail[1999]["sid"], "2000");
}

#[test]
fn rtt_is_estimated_from_info_to_connect_then_refined_by_pong() {
    let mut sim = Sim::new(Options::default());
    let a = sim.server.accept(
        tenet_core::Peer {
            ip: "127.0.0.1".into(),
            port: 1,
        },
        sim.now,
    );
    sim.pump();
    sim.take(a);
    let rtt = |sim: &mut Sim| json(sim, "/connz")["connections"][0]["rtt"].clone();
    assert_eq!(rtt(&mut sim), "0s");
    // As nats-server: the INFO went out on accept, the CONNECT came back 3 ms later.
    sim.advance(Duration::from_millis(3));
    sim.send(a, format!("CONNECT {QUIET}\r\n").as_bytes());
    assert_eq!(rtt(&mut sim), "3ms");
    // A CONNECT in the same instant as the INFO still shows a round trip.
    let b = sim.connect(QUIET);
    let connz = json(&mut sim, "/connz");
    assert_eq!(connz["connections"][1]["rtt"], "1ns", "{b:?}");
    // The first server PING answered refines it.
    while !sim.take_str(a).contains("PING") {
        let due = sim.server.poll_timeout().expect("a PING is scheduled");
        sim.advance(due.saturating_since(sim.now));
    }
    sim.advance(Duration::from_micros(250));
    sim.send(a, b"PONG\r\n");
    assert_eq!(rtt(&mut sim), "250µs");
}

#[test]
fn a_callback_wraps_every_json_answer_as_jsonp() {
    let mut sim = Sim::new(Options::default());
    sim.connect(QUIET);
    for endpoint in [
        "/varz",
        "/connz",
        "/subsz",
        "/subscriptionsz",
        "/accountz",
        "/healthz",
    ] {
        let plain = get(&mut sim, endpoint);
        let wrapped = get(&mut sim, &format!("{endpoint}?callback=show"));
        assert_eq!(wrapped.status, 200, "{endpoint}");
        assert_eq!(wrapped.content_type, "application/javascript", "{endpoint}");
        let inner = wrapped
            .body
            .strip_prefix("show(")
            .and_then(|b| b.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{endpoint}: {}", wrapped.body));
        let value: Value = serde_json::from_str(inner).expect("JSON inside");
        assert!(value.is_object(), "{endpoint}");
        if endpoint == "/healthz" {
            assert_eq!(wrapped.body, format!("show({})", plain.body));
        }
    }
    // An empty callback is plain JSON; errors and the HTML index are never wrapped.
    assert_eq!(
        get(&mut sim, "/varz?callback=").content_type,
        "application/json"
    );
    let bad = get(&mut sim, "/connz?callback=f&sort=nope");
    assert_eq!(
        (bad.status, bad.body.as_str()),
        (400, "invalid sorting option: nope")
    );
    assert!(!get(&mut sim, "/?callback=f").body.starts_with("f("));
}

/// A client with many subscriptions leaves: its subscriptions come out of the
/// trie a slice (2,000) per turn of the loop, not all in one input; they reach
/// nobody meanwhile, not even a new client in the same slot; its record is
/// kept, with all of them, once the last is out.
#[test]
fn a_huge_subscription_set_is_torn_down_in_slices() {
    let mut sim = Sim::new(Options {
        http_port: Some(8222),
        ..Options::default()
    });
    let big = sim.connect(QUIET);
    let subs: String = (0..10_000).map(|i| format!("SUB s.{i} {i}\r\n")).collect();
    sim.send(big, subs.as_bytes());
    assert_eq!(sim.server.num_subscriptions(), 10_000);
    sim.disconnect(big);
    // Gone for everyone at once, though still being taken out of the trie.
    assert_eq!(sim.server.num_subscriptions(), 0);
    let kept = |sim: &mut Sim| {
        json(sim, "/connz?state=closed&subs=1")["connections"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(kept(&mut sim), 0, "the record waits for the last slice");
    // A new client takes the freed slot and subscribes to one of the subjects.
    let newcomer = sim.connect(QUIET);
    sim.send(
        newcomer,
        b"SUB s.9999 new\r\nPUB s.9999 1\r\nx\r\nPUB s.5 1\r\ny\r\nPING\r\n",
    );
    let got = sim.take_str(newcomer);
    assert!(
        got.starts_with("MSG s.9999 new 1\r\nx\r\nPONG\r\n"),
        "{got}"
    );
    // One slice per timer: the first went with the close, four are left.
    for _ in 0..3 {
        let due = sim.server.poll_timeout().expect("a slice is due");
        sim.server.handle_timeout(due);
        sim.pump();
        assert_eq!(kept(&mut sim), 0);
    }
    let due = sim.server.poll_timeout().expect("the last slice is due");
    sim.server.handle_timeout(due);
    sim.pump();
    let c = json(&mut sim, "/connz?state=closed&subs=1");
    assert_eq!(c["connections"][0]["subscriptions"], 10_000);
    assert_eq!(
        c["connections"][0]["subscriptions_list"]
            .as_array()
            .unwrap()
            .len(),
        10_000
    );
    assert_eq!(json(&mut sim, "/subsz")["num_subscriptions"], 1);
}

#[test]
fn jsz_and_varz_report_jetstream_usage_with_nats_servers_fields() {
    let opts = Options {
        jetstream: Some(tenet_core::options::JetStreamOptions {
            store_dir: Some("/tmp/x/jetstream".into()),
            max_memory: Some(1 << 30),
            max_store: Some(1 << 32),
            ..Default::default()
        }),
        ..Options::default()
    };
    let mut sim = Sim::new(opts);
    let c = sim.connect(QUIET);
    let body = r#"{"name":"S","subjects":["s.>"]}"#;
    sim.send(
        c,
        format!("PUB $JS.API.STREAM.CREATE.S {}\r\n{body}\r\n", body.len()).as_bytes(),
    );
    for _ in 0..3 {
        sim.send(c, b"PUB s.a 5\r\nhello\r\n");
    }
    let r = get(&mut sim, "/jsz?accounts=true&streams=true");
    // nats-server 2.9.10's fields, in its order (recorded from a live one).
    assert_eq!(
        keys(&r.body, 1),
        [
            "server_id",
            "now",
            "config",
            "memory",
            "storage",
            "reserved_memory",
            "reserved_storage",
            "accounts",
            "ha_assets",
            "api",
            "streams",
            "consumers",
            "messages",
            "bytes",
            "account_details"
        ]
    );
    let jsz: Value = serde_json::from_str(&r.body).unwrap();
    // 3 x (22 + 3 + 5 + 8) bytes, nats-server's file accounting.
    assert_eq!(
        (jsz["messages"].clone(), jsz["bytes"].clone()),
        (3.into(), 114.into())
    );
    assert_eq!(jsz["config"]["store_dir"], "/tmp/x/jetstream");
    let detail = &jsz["account_details"][0];
    assert_eq!(detail["name"], "$G");
    assert_eq!(detail["stream_detail"][0]["state"]["messages"], 3);
    let varz = json(&mut sim, "/varz");
    assert_eq!(varz["jetstream"]["stats"]["storage"], 114);
    assert_eq!(varz["jetstream"]["config"]["max_memory"], 1 << 30);
    let accountz = json(&mut sim, "/accountz?acc=$G");
    assert_eq!(accountz["account_detail"]["jetstream_enabled"], true);
}
