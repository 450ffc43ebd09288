//! The monitoring endpoints on a fake clock: nats-server's JSON shapes and
//! field names, the values after traffic, and every query option.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{login, server_from_config, Sim};
use tenet_core::{MonitorHost, MonitorResponse, Options, Time};

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
    // news.x was matched once in A (a's second publish reused its own last
    // match, which nats-server does not count either) and twice in B (the
    // stream import), the second time from the cache.
    assert_eq!(s["num_matches"], 3);
    assert_eq!(
        s["cache_hit_rate"].as_f64().map(|r| (r * 1000.0).round()),
        Some(333.0)
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
            {"account": "A", "subject": "news.x", "sid": "1", "msgs": 2, "cid": 1},
            {"account": "A", "subject": "calc.add", "qgroup": "q", "sid": "2", "msgs": 0, "cid": 1},
            {"account": "B", "subject": "from_a.news.>", "sid": "7", "msgs": 2, "cid": 2}
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
    for path in ["/routez", "/varz/", "/jsz", "varz", ""] {
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
        serde_json::json!({"/": 1, "/healthz": 1, "/varz": 1})
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
