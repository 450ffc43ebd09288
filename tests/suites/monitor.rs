//! Monitoring over HTTP (`-m`, `http_port`): `/varz`, `/connz`, `/subsz`,
//! `/accountz`, `/healthz` and `/` of the real binary, read with a small HTTP
//! client after raw-protocol traffic. Every check here also holds for
//! nats-server 2.9.10 (`TENET_TEST_BINARY=/usr/sbin/nats-server`) unless it
//! says otherwise; and when nats-server is installed, tenet's JSON is checked
//! field by field against nats-server's for the same configuration and traffic.
//!
//! The nats-server fields tenet does not produce, and why. The comparison
//! test prints those it meets (for its configuration and traffic):
//!
//! - `/varz`: `cluster`, `gateway`, `leaf`, `mqtt`, `websocket`, `jetstream`
//!   (tenet has no clustering, gateways, leaf nodes, MQTT, websockets or
//!   JetStream); `gomaxprocs` (a Go runtime figure).
//! - `/accountz?acc=<account>`: `imports` of an account that imports nothing
//!   itself, and the `$SYS` account's `exports`: nats-server's system
//!   services (`$SYS.REQ.ACCOUNT.PING.CONNZ`, ...), which tenet does not
//!   offer yet.
//! - `/connz`, `/subsz`: every field is produced, for open and closed
//!   connections; the lists hold no internal subscriptions (nats-server's
//!   system account and import subscriptions).
//! - Fields nats-server writes only in cases tenet never has: `jwt`,
//!   `issuer_key`, `name_tag`, `tags`, `decoded_jwt`,
//!   `validation_result_jwt`, `revoked_user` (no operator mode),
//!   `mqtt_client` (no MQTT), `mappings` (no subject mappings), `responses`
//!   (service answers in flight are not listed).
//! - Endpoints: `/routez`, `/gatewayz`, `/leafz`, `/jsz`, `/accstatz`,
//!   `/stacksz`, `/ipqueuesz` answer 404.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tenet_tests::{is_reference_server, skip_on_reference, RawClient, TestServer, TIMEOUT};

// ----- HTTP ------------------------------------------------------------------

/// An HTTP answer.
struct Http {
    status: u16,
    /// The header lines, lower-cased.
    headers: String,
    body: String,
}

/// `GET target` on 127.0.0.1:`port`, `Connection: close`, read to the end.
fn http_get(port: u16, target: &str) -> Http {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to the monitoring port {port}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let headers = head.to_ascii_lowercase();
    let body = if headers.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Http {
        status,
        headers,
        body,
    }
}

/// The body of a chunked response (Go answers `/` that way).
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    body
}

/// `GET target`, which must answer 200 with JSON.
fn json(port: u16, target: &str) -> Value {
    let r = http_get(port, target);
    assert_eq!(r.status, 200, "{target}: {}", r.body);
    assert!(
        r.headers.contains("content-type: application/json"),
        "{target}: {}",
        r.headers
    );
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{target}: {e}: {}", r.body))
}

// ----- servers and clients ----------------------------------------------------

/// The monitoring port, from the `Starting http monitor on <host>:<port>` line.
fn monitor_port(server: &mut TestServer) -> u16 {
    assert!(
        server.wait_for_log("Starting http monitor on ", TIMEOUT),
        "no monitoring line in the log:\n{}",
        server.logs()
    );
    port_after(&server.logs(), "Starting http monitor on ")
}

fn port_after(log: &str, marker: &str) -> u16 {
    let rest = log.split(marker).nth(1).expect("the marker");
    let addr = rest.split_whitespace().next().expect("an address");
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

/// The binary with monitoring on a free port (`-m -1`).
fn start(args: &[&str]) -> (TestServer, u16) {
    let args = [&["-m", "-1"][..], args].concat();
    let mut server = TestServer::start_with_args(&args);
    let port = monitor_port(&mut server);
    (server, port)
}

/// The binary with `config` (which turns monitoring on itself, or not).
fn start_with_config(config: &str) -> (TestServer, u16) {
    let mut server = TestServer::with_config(config, &[]);
    let port = monitor_port(&mut server);
    (server, port)
}

/// A client named `name` that logged in (as `user`/`p`, when given) and
/// completed a PING. Protocol 0, so that no INFO follows the first PONG.
fn client(port: u16, name: &str, user: Option<&str>) -> RawClient {
    let mut c = RawClient::connect(port);
    let login = user
        .map(|u| format!(",\"user\":\"{u}\",\"pass\":\"p\""))
        .unwrap_or_default();
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"{name}\",\
         \"lang\":\"raw\",\"version\":\"1.2.3\"{login}}}\r\n"
    ));
    c.ping();
    c
}

/// The connection named `name` in a `/connz` answer.
fn conn<'a>(connz: &'a Value, name: &str) -> &'a Value {
    connz["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no connection {name:?} in {connz:#}"))
}

fn names(connz: &Value) -> Vec<&str> {
    connz["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect()
}

fn number(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v:#}"))
}

/// `/varz` reports the monitoring port: tenet the one it bound, nats-server
/// 2.9.10 what it was asked for (`-1` here).
fn assert_http_port(varz: &Value, bound: u16) {
    if is_reference_server() {
        assert_eq!(varz["http_port"], -1);
    } else {
        assert_eq!(number(varz, "http_port"), u64::from(bound));
    }
}

/// The subscriptions of a `/subsz` list that clients made, as `/connz`
/// lists them (nats-server also lists its internal ones: the system
/// account's, and those that carry stream and service imports).
fn user_subs(port: u16, list: &Value) -> Vec<Value> {
    let connz = json(port, "/connz?subs=detail");
    let made: Vec<(Value, Value, Value)> = connz["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .flat_map(|c| {
            c["subscriptions_list_detail"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|d| (d["cid"].clone(), d["sid"].clone(), d["subject"].clone()))
        .collect();
    list.as_array()
        .map(|l| {
            l.iter()
                .filter(|s| {
                    made.contains(&(s["cid"].clone(), s["sid"].clone(), s["subject"].clone()))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn subjects(subs: &[Value]) -> Vec<&str> {
    subs.iter()
        .map(|s| s["subject"].as_str().expect("a subject"))
        .collect()
}

const ACCOUNTS: &str = r#"
http_port: -1
accounts {
  A: {
    users: [{user: a, password: p}, {user: a2, password: p}]
    exports: [
      {stream: "news.>"}
      {service: "calc.>", accounts: [B], response: stream}
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

// ----- tests -------------------------------------------------------------------

#[test]
fn the_monitor_starts_with_a_log_line_and_answers_healthz() {
    let (mut server, port) = start(&[]);
    assert!(server
        .logs()
        .contains(&format!("[INF] Starting http monitor on 127.0.0.1:{port}")));
    let r = http_get(port, "/healthz");
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("content-type: application/json"));
    assert_eq!(r.body, r#"{"status":"ok"}"#);
    if !is_reference_server() {
        // nats-server 2.9.10 leaves it out; browsers' dashboards want it.
        assert!(
            r.headers.contains("access-control-allow-origin: *"),
            "{}",
            r.headers
        );
    }
    let index = http_get(port, "/");
    assert_eq!(index.status, 200);
    assert!(index.headers.contains("content-type: text/html"));
    for link in ["./varz", "./connz", "./accountz", "./subsz", "./healthz"] {
        assert!(index.body.contains(&format!("href={link}")), "{link}");
    }
    let missing = http_get(port, "/varz/nope");
    assert_eq!(missing.status, 404);
}

#[test]
fn without_m_there_is_no_monitor() {
    let mut server = TestServer::start();
    assert!(server.wait_for_log("Server is ready", TIMEOUT));
    assert!(!server.logs().contains("http monitor"));
}

#[test]
fn varz_counts_connections_subscriptions_and_messages() {
    let (server, port) = start(&[]);
    let before = json(port, "/varz");
    assert_http_port(&before, port);
    assert_eq!(number(&before, "port"), u64::from(server.port()));
    assert_eq!(before["host"], "127.0.0.1");
    assert_eq!(before["max_payload"], 1024 * 1024);

    let mut sub = client(server.port(), "sub", None);
    let mut publisher = client(server.port(), "pub", None);
    sub.send("SUB greet.* 1\r\nSUB other 2\r\n");
    sub.ping();
    publisher.send("PUB greet.joe 5\r\nhello\r\nPUB greet.pam 3\r\nhey\r\nPUB nobody 2\r\nhi\r\n");
    publisher.ping();
    sub.expect("MSG greet.joe 1 5\r\nhello\r\nMSG greet.pam 1 3\r\nhey\r\n");

    let after = json(port, "/varz");
    let delta = |key: &str| number(&after, key) - number(&before, key);
    assert_eq!(number(&after, "connections"), 2);
    assert_eq!(delta("total_connections"), 2);
    assert_eq!(delta("subscriptions"), 2);
    assert_eq!((delta("in_msgs"), delta("in_bytes")), (3, 10));
    assert_eq!((delta("out_msgs"), delta("out_bytes")), (2, 8));
    assert_eq!(after["server_id"], before["server_id"]);
    assert_eq!(after["start"], before["start"]);
    assert!(after["now"].as_str() > before["now"].as_str());
    assert!(after["http_req_stats"]["/varz"].as_u64() >= Some(2));
}

#[test]
fn connz_shows_each_connection_with_its_subscriptions_and_traffic() {
    let (server, port) = start(&[]);
    let mut joe = client(server.port(), "joe", None);
    joe.send("SUB foo 1\r\nSUB bar workers 2\r\nUNSUB 2 10\r\nPUB foo 5\r\nhello\r\n");
    joe.expect("MSG foo 1 5\r\nhello\r\n");
    joe.ping();
    let _idle = client(server.port(), "idle", None);

    // What a connection owes is counted down when the runtime hears that
    // its write went out, which can come just after the client read it.
    let mut connz = json(port, "/connz");
    for _ in 0..200 {
        if number(conn(&connz, "joe"), "pending_bytes") == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        connz = json(port, "/connz");
    }
    assert_eq!(
        (number(&connz, "num_connections"), number(&connz, "total")),
        (2, 2)
    );
    assert_eq!(
        (number(&connz, "offset"), number(&connz, "limit")),
        (0, 1024)
    );
    let c = conn(&connz, "joe");
    assert_eq!(
        (c["kind"].as_str(), c["type"].as_str()),
        (Some("Client"), Some("nats"))
    );
    assert_eq!(
        (c["lang"].as_str(), c["version"].as_str()),
        (Some("raw"), Some("1.2.3"))
    );
    assert_eq!(c["ip"], "127.0.0.1");
    assert_eq!(number(c, "port"), u64::from(joe.local_port()));
    assert_eq!((number(c, "in_msgs"), number(c, "in_bytes")), (1, 5));
    assert_eq!((number(c, "out_msgs"), number(c, "out_bytes")), (1, 5));
    assert_eq!(number(c, "subscriptions"), 2);
    assert_eq!(number(c, "pending_bytes"), 0);
    assert!(c.get("subscriptions_list").is_none());
    for time in ["start", "last_activity"] {
        assert!(
            c[time].as_str().is_some_and(|t| t.ends_with('Z')),
            "{time}: {c}"
        );
    }

    let connz = json(port, "/connz?subs=1");
    let mut list: Vec<&str> = conn(&connz, "joe")["subscriptions_list"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    list.sort();
    assert_eq!(list, ["bar", "foo"]);
    assert!(conn(&connz, "idle").get("subscriptions_list").is_none());

    let connz = json(port, "/connz?subs=detail");
    let mut detail = conn(&connz, "joe")["subscriptions_list_detail"]
        .as_array()
        .expect("a detailed list")
        .clone();
    detail.sort_by_key(|d| d["sid"].as_str().unwrap().to_string());
    let cid = conn(&connz, "joe")["cid"].clone();
    assert_eq!(
        detail,
        [
            serde_json::json!({"subject": "foo", "sid": "1", "msgs": 1, "cid": cid}),
            serde_json::json!({"subject": "bar", "qgroup": "workers", "sid": "2", "msgs": 0, "max": 10, "cid": cid}),
        ]
    );
}

#[test]
fn connz_sorts_and_pages() {
    let (server, port) = start(&[]);
    let mut one = client(server.port(), "one", None);
    let mut two = client(server.port(), "two", None);
    let mut three = client(server.port(), "three", None);
    one.send("SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPUB x 1\r\n1\r\n");
    two.send("SUB a 1\r\nPUB x 1\r\n1\r\nPUB x 1\r\n1\r\nPUB x 4\r\n1234\r\n");
    three.send("SUB a 1\r\nSUB b 2\r\nPUB x 2\r\n12\r\nPUB x 2\r\n12\r\n");
    for c in [&mut one, &mut two, &mut three] {
        c.ping();
    }
    assert_eq!(names(&json(port, "/connz")), ["one", "two", "three"]);
    assert_eq!(
        names(&json(port, "/connz?sort=cid")),
        ["one", "two", "three"]
    );
    assert_eq!(
        names(&json(port, "/connz?sort=start")),
        ["one", "two", "three"]
    );
    assert_eq!(
        names(&json(port, "/connz?sort=subs")),
        ["one", "three", "two"]
    );
    assert_eq!(
        names(&json(port, "/connz?sort=msgs_from")),
        ["two", "three", "one"]
    );
    assert_eq!(
        names(&json(port, "/connz?sort=bytes_from")),
        ["two", "three", "one"]
    );
    for sort in ["pending", "msgs_to", "bytes_to", "last", "idle", "uptime"] {
        let connz = json(port, &format!("/connz?sort={sort}"));
        assert_eq!(number(&connz, "total"), 3, "{sort}");
    }

    let page = json(port, "/connz?sort=subs&offset=1&limit=1");
    assert_eq!(names(&page), ["three"]);
    assert_eq!(
        (number(&page, "num_connections"), number(&page, "total")),
        (1, 3)
    );
    assert_eq!((number(&page, "offset"), number(&page, "limit")), (1, 1));
    let last = json(port, "/connz?offset=2");
    assert_eq!(names(&last), ["three"]);
    let past = json(port, "/connz?offset=5");
    assert_eq!((names(&past).len(), number(&past, "total")), (0, 3));
    let cid = number(conn(&json(port, "/connz"), "two"), "cid");
    assert_eq!(names(&json(port, &format!("/connz?cid={cid}"))), ["two"]);

    for (target, body) in [
        ("/connz?sort=bogus", "invalid sorting option: bogus"),
        (
            "/connz?sort=stop",
            "sort by stop only valid on closed connections",
        ),
        (
            "/connz?offset=x",
            "Error decoding int for 'offset': strconv.Atoi: parsing \"x\": invalid syntax",
        ),
        (
            "/connz?subs=x",
            "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"x\": invalid syntax",
        ),
    ] {
        let r = http_get(port, target);
        assert_eq!((r.status, r.body.as_str()), (400, body), "{target}");
    }
}

#[test]
fn connz_shows_users_and_accounts_and_filters_by_account() {
    let (server, port) = start_with_config(ACCOUNTS);
    let _a = client(server.port(), "app-a", Some("a"));
    let _a2 = client(server.port(), "app-a2", Some("a2"));
    let _b = client(server.port(), "app-b", Some("b"));
    let connz = json(port, "/connz?auth=1");
    for (name, user, account) in [
        ("app-a", "a", "A"),
        ("app-a2", "a2", "A"),
        ("app-b", "b", "B"),
    ] {
        let c = conn(&connz, name);
        assert_eq!(
            (c["authorized_user"].as_str(), c["account"].as_str()),
            (Some(user), Some(account))
        );
    }
    let plain = json(port, "/connz");
    assert!(conn(&plain, "app-a").get("authorized_user").is_none());
    assert_eq!(names(&json(port, "/connz?acc=A")), ["app-a", "app-a2"]);
    assert_eq!(names(&json(port, "/connz?acc=B")), ["app-b"]);
    assert_eq!(json(port, "/varz")["auth_required"], true);
}

#[test]
fn subsz_counts_and_lists_subscriptions() {
    let (server, port) = start_with_config(ACCOUNTS);
    let mut a = client(server.port(), "app-a", Some("a"));
    let mut b = client(server.port(), "app-b", Some("b"));
    let before = json(port, "/subsz");
    a.send("SUB news.sport 1\r\nSUB calc.add adders 2\r\n");
    a.ping();
    b.send("SUB from_a.news.> 9\r\n");
    b.ping();
    a.send("PUB news.sport 4\r\ngoal\r\n");
    a.expect("MSG news.sport 1 4\r\ngoal\r\n");
    b.expect("MSG from_a.news.sport 9 4\r\ngoal\r\n");

    let after = json(port, "/subsz");
    let added = number(&after, "num_subscriptions") - number(&before, "num_subscriptions");
    if is_reference_server() {
        // nats-server adds an internal one for the service import's answers.
        assert!(added >= 3, "{added}");
    } else {
        assert_eq!(added, 3);
    }
    assert!(after.get("subscriptions_list").is_none());

    let listed = json(port, "/subsz?subs=1");
    let mut list: Vec<(String, String, String)> = user_subs(port, &listed["subscriptions_list"])
        .iter()
        .map(|s| {
            (
                format!(
                    "{} {}",
                    s["account"].as_str().unwrap(),
                    s["subject"].as_str().unwrap()
                ),
                s["qgroup"].as_str().unwrap_or("-").to_string(),
                s["msgs"].to_string(),
            )
        })
        .collect();
    list.sort();
    let row =
        |sub: &str, queue: &str, msgs: &str| (sub.to_string(), queue.to_string(), msgs.to_string());
    // nats-server counts the stream's deliveries on its internal import
    // subscription, not on the subscriber's.
    let imported = if is_reference_server() { "0" } else { "1" };
    assert_eq!(
        list,
        [
            row("A calc.add", "adders", "0"),
            row("A news.sport", "-", "1"),
            row("B from_a.news.>", "-", imported)
        ]
    );
    let only_b = user_subs(
        port,
        &json(port, "/subsz?subs=1&acc=B")["subscriptions_list"],
    );
    assert_eq!(subjects(&only_b), ["from_a.news.>"]);
    let tested = user_subs(
        port,
        &json(port, "/subsz?subs=1&test=calc.add")["subscriptions_list"],
    );
    assert_eq!(subjects(&tested), ["calc.add"]);
    let page = json(port, "/subsz?subs=1&offset=1&limit=1");
    assert_eq!((number(&page, "offset"), number(&page, "limit")), (1, 1));
    assert_eq!(page["subscriptions_list"].as_array().map(Vec::len), Some(1));
}

#[test]
fn accountz_lists_the_accounts_and_details_one() {
    let (server, port) = start_with_config(ACCOUNTS);
    let mut a = client(server.port(), "app-a", Some("a"));
    a.send("SUB news.x 1\r\n");
    a.ping();
    let z = json(port, "/accountz");
    assert_eq!(z["system_account"], "$SYS");
    let mut accounts: Vec<&str> = z["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    accounts.sort();
    assert_eq!(accounts, ["$G", "$SYS", "A", "B"]);

    let detail = &json(port, "/accountz?acc=A")["account_detail"];
    assert_eq!(detail["account_name"], "A");
    assert_eq!(number(detail, "client_connections"), 1);
    let mut exports: Vec<String> = detail["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["type"].as_str().unwrap(),
                e["subject"].as_str().unwrap(),
                e["response_type"].as_str().unwrap_or("-"),
                e["approved_accounts"]
            )
        })
        .collect();
    exports.sort();
    assert_eq!(
        exports,
        ["service calc.> Streamed [\"B\"]", "stream news.> - null"]
    );

    let detail = &json(port, "/accountz?acc=B")["account_detail"];
    let imports: Vec<&Value> = detail["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["account"] == "A")
        .collect();
    let stream = imports
        .iter()
        .find(|i| i["type"] == "stream")
        .expect("the stream import");
    assert_eq!(
        (stream["subject"].as_str(), stream["local_subject"].as_str()),
        (Some("news.>"), Some("from_a.news.>"))
    );
    let service = imports
        .iter()
        .find(|i| i["type"] == "service")
        .expect("the service import");
    assert_eq!(
        (service["subject"].as_str(), service["to"].as_str()),
        (Some("calc_a.>"), Some("calc.>"))
    );
    assert_eq!(
        json(port, "/accountz?acc=%24SYS")["account_detail"]["is_system"],
        true
    );
    let r = http_get(port, "/accountz?acc=NOPE");
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Account NOPE does not exist")
    );
}

#[test]
fn monitor_port_from_the_configuration_file_and_the_command_line() {
    let (mut server, port) = start_with_config("http_port: -1\n");
    assert_http_port(&json(port, "/varz"), port);
    assert!(server
        .logs()
        .contains("Starting http monitor on 127.0.0.1:"));
    // -m over the file.
    let mut server = TestServer::with_config("http_port: -1\n", &["-m", "-1"]);
    let port = monitor_port(&mut server);
    assert_eq!(http_get(port, "/healthz").status, 200);
}

#[test]
fn a_base_path_moves_every_endpoint_under_it() {
    let (_server, port) = start_with_config("http_port: -1\nhttp_base_path: \"/nats/\"\n");
    let varz = json(port, "/nats/varz");
    assert_eq!(varz["http_base_path"], "/nats/");
    assert_http_port(&varz, port);
    assert_eq!(http_get(port, "/nats/healthz").body, r#"{"status":"ok"}"#);
    json(port, "/nats/connz");
    json(port, "/nats/subsz");
    let index = http_get(port, "/nats");
    assert_eq!(index.status, 200);
    for link in ["varz", "connz", "accountz", "subsz", "healthz"] {
        assert!(
            index.body.contains(&format!("href=./nats/{link}")),
            "{link}: {}",
            index.body
        );
    }
    for path in [
        "/varz",
        "/",
        "/healthz",
        "/nats/",
        "/nats/nope",
        "/natsvarz",
    ] {
        let r = http_get(port, path);
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.body.trim_end(), "404 page not found", "{path}");
    }
}

#[test]
fn token_logins_are_not_shown() {
    if skip_on_reference("nats-server 2.9.10 shows the token itself as authorized_user") {
        return;
    }
    let (server, port) = start(&["--auth", "s3cret"]);
    let mut c = RawClient::connect(server.port());
    c.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"t\",\"auth_token\":\"s3cret\"}\r\n");
    c.ping();
    let connz = http_get(port, "/connz?auth=1");
    assert!(!connz.body.contains("s3cret"), "{}", connz.body);
    assert!(conn(&json(port, "/connz?auth=1"), "t")
        .get("authorized_user")
        .is_none());
}

/// `GET target` until it lists connections with each of these names (a
/// closed connection is kept once the server has noticed the close, which
/// takes a moment).
fn wait_for(port: u16, target: &str, wanted: &[&str]) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let answer = json(port, target);
        if wanted.iter().all(|w| names(&answer).contains(w)) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{target}: not all of {wanted:?}: {answer:#}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The names of the connections that sent one, in the order listed (the
/// test harness's readiness probe is a closed connection without a CONNECT).
fn named(connz: &Value) -> Vec<&str> {
    names(connz).into_iter().filter(|n| !n.is_empty()).collect()
}

#[test]
fn closed_connections_are_kept_with_their_reason_and_subscriptions() {
    let (server, port) = start(&[]);
    let mut gone = client(server.port(), "gone", None);
    gone.send("SUB orders.> 1\r\nSUB work q 2\r\nPUB orders.new 2\r\nhi\r\n");
    gone.expect("MSG orders.new 1 2\r\nhi\r\n");
    gone.ping();
    let _open = client(server.port(), "open", None);
    let gone_port = gone.local_port();
    assert!(named(&json(port, "/connz?state=closed")).is_empty());
    drop(gone);

    let closed = wait_for(port, "/connz?state=closed&subs=1", &["gone"]);
    let listed = closed["connections"].as_array().unwrap().len() as u64;
    assert_eq!(
        (number(&closed, "num_connections"), number(&closed, "total")),
        (listed, listed)
    );
    let c = conn(&closed, "gone");
    assert_eq!(c["reason"], "Client Closed");
    assert_eq!(number(c, "port"), u64::from(gone_port));
    assert_eq!(
        (c["lang"].as_str(), c["version"].as_str()),
        (Some("raw"), Some("1.2.3"))
    );
    assert_eq!((number(c, "in_msgs"), number(c, "out_msgs")), (1, 1));
    assert_eq!(number(c, "subscriptions"), 2);
    let mut list: Vec<&str> = c["subscriptions_list"]
        .as_array()
        .expect("the subscriptions it had")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    list.sort();
    assert_eq!(list, ["orders.>", "work"]);
    let (start, stop) = (c["start"].as_str().unwrap(), c["stop"].as_str().unwrap());
    assert!(
        start.ends_with('Z') && stop.ends_with('Z') && stop >= start,
        "{c}"
    );
    let cid = c["cid"].clone();

    // The open connections are the other one; both states list both, by cid.
    assert_eq!(named(&json(port, "/connz")), ["open"]);
    assert_eq!(named(&json(port, "/connz?state=all")), ["gone", "open"]);
    assert!(conn(&json(port, "/connz?state=all"), "open")
        .get("reason")
        .is_none());
    // Details name the account ($G too) and no max. (With auth=1: nats-server
    // 2.9.10 keeps the details of a subs=detail answer without it in the
    // record, so later answers show them unasked.)
    let detailed = json(port, "/connz?state=closed&subs=detail&auth=1");
    let mut detail = conn(&detailed, "gone")["subscriptions_list_detail"]
        .as_array()
        .expect("a detailed list")
        .clone();
    detail.sort_by_key(|d| d["sid"].as_str().unwrap().to_string());
    assert_eq!(
        detail,
        [
            serde_json::json!({"account": "$G", "subject": "orders.>", "sid": "1", "msgs": 1, "cid": cid}),
            serde_json::json!({"account": "$G", "subject": "work", "qgroup": "q", "sid": "2", "msgs": 0, "cid": cid}),
        ]
    );

    // A connection reset is a read error.
    let reset = client(server.port(), "reset", None);
    reset.abort();
    let closed = wait_for(port, "/connz?state=closed", &["reset"]);
    assert_eq!(conn(&closed, "reset")["reason"], "Read Error");
    assert_eq!(
        named(&json(port, "/connz?state=closed&sort=stop")),
        ["reset", "gone"]
    );
    assert_eq!(
        named(&json(port, "/connz?state=closed&sort=reason")),
        ["gone", "reset"]
    );
    let one = json(port, &format!("/connz?state=closed&cid={cid}"));
    assert_eq!(names(&one), ["gone"]);
    assert_eq!(number(&one, "limit"), 1);
    let all = json(port, "/connz?state=closed");
    let total = number(&all, "total");
    let page = json(port, "/connz?state=closed&offset=1&limit=1");
    assert_eq!(names(&page), [names(&all)[1]]);
    assert_eq!(
        (number(&page, "num_connections"), number(&page, "total")),
        (1, total)
    );
    for (target, body) in [
        (
            "/connz?state=all&sort=stop",
            "sort by stop only valid on closed connections",
        ),
        ("/connz?state=later", "Error decoding state for later"),
    ] {
        let r = http_get(port, target);
        assert_eq!((r.status, r.body.as_str()), (400, body), "{target}");
    }
}

#[test]
fn closed_logins_keep_their_user_and_account() {
    let (server, port) = start_with_config(ACCOUNTS);
    let a = client(server.port(), "app-a", Some("a"));
    let _b = client(server.port(), "app-b", Some("b"));
    let mut refused = RawClient::connect(server.port());
    refused.send("CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"wrong\",\"user\":\"b\",\"pass\":\"x\"}\r\n");
    refused.expect("-ERR 'Authorization Violation'\r\n");
    drop(a);
    let closed = wait_for(port, "/connz?state=closed&auth=1", &["app-a", "wrong"]);
    let who = |name: &str| {
        let c = conn(&closed, name);
        (
            c["reason"].as_str().unwrap().to_string(),
            c["authorized_user"].as_str().map(str::to_string),
            c["account"].as_str().map(str::to_string),
        )
    };
    assert_eq!(
        who("app-a"),
        ("Client Closed".into(), Some("a".into()), Some("A".into()))
    );
    // A failed login keeps the user it tried, in no account.
    assert_eq!(
        who("wrong"),
        ("Authentication Failure".into(), Some("b".into()), None)
    );
    assert_eq!(names(&json(port, "/connz?state=closed&acc=A")), ["app-a"]);
    assert_eq!(names(&json(port, "/connz?state=closed&user=b")), ["wrong"]);
    assert_eq!(names(&json(port, "/connz?state=all&acc=B")), ["app-b"]);
}

// ----- against nats-server -----------------------------------------------------

/// nats-server started next to tenet, for the field comparison.
struct Reference {
    child: Child,
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Reference {
    /// Starts `binary -c config -a 127.0.0.1 -p -1`; returns it with its client
    /// and monitoring ports once it is ready.
    fn start(binary: &Path, config: &str) -> (Reference, u16, u16) {
        let path = tenet_tests::write_config_file(config);
        let mut child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nats-server");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !log.lock().unwrap().contains("Server is ready") {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start: {}",
                log.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(path);
        let text = log.lock().unwrap().clone();
        let client = port_after(&text, "Listening for client connections on ");
        let http = port_after(&text, "Starting http monitor on ");
        (Reference { child }, client, http)
    }
}

/// nats-server on the PATH or in /usr/sbin.
fn find_nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|p| p.is_file())
}

/// Every field of a JSON answer as a path (`connections[].cid`); the
/// elements of an array share one path. The keys of `http_req_stats` are
/// data (request paths), not fields.
fn field_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                if key != "http_req_stats" {
                    field_paths(v, &path, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                field_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The same traffic on a server (`port`, monitoring on `http`): two
/// tenants' clients with subscriptions, a queue subscription with an
/// auto-unsubscribe, messages both ways, and a client with subscriptions
/// that has left (once the server keeps it as closed).
fn drive(port: u16, http: u16) -> Vec<RawClient> {
    let mut a = client(port, "app-a", Some("a"));
    let mut b = client(port, "app-b", Some("b"));
    a.send("SUB news.sport 1\r\nSUB calc.add adders 2\r\nUNSUB 2 10\r\n");
    a.ping();
    b.send("SUB from_a.news.> 9\r\n");
    b.ping();
    a.send("PUB news.sport 4\r\ngoal\r\n");
    a.expect("MSG news.sport 1 4\r\ngoal\r\n");
    b.expect("MSG from_a.news.sport 9 4\r\ngoal\r\n");
    let mut gone = client(port, "app-gone", Some("a2"));
    gone.send("SUB news.> 1\r\nSUB calc.sub adders 2\r\n");
    gone.ping();
    drop(gone);
    wait_for(http, "/connz?state=closed", &["app-gone"]);
    vec![a, b]
}

#[test]
fn every_field_tenet_writes_is_a_nats_server_field() {
    if skip_on_reference("compares tenet with nats-server") {
        return;
    }
    let Some(nats) = find_nats_server() else {
        println!("note: nats-server is not installed: the field comparison is skipped");
        return;
    };
    let (tenet, tenet_http) = start_with_config(ACCOUNTS);
    let (reference, nats_port, nats_http) = Reference::start(&nats, ACCOUNTS);
    let _tenet_clients = drive(tenet.port(), tenet_http);
    let _nats_clients = drive(nats_port, nats_http);

    let mut not_produced = BTreeSet::new();
    for target in [
        "/varz",
        "/connz",
        "/connz?subs=1&auth=1",
        "/connz?subs=detail&auth=1",
        "/connz?state=closed",
        "/connz?state=closed&subs=1&auth=1",
        "/connz?state=closed&subs=detail&auth=1",
        "/connz?state=all&subs=detail&auth=1",
        "/subsz",
        "/subsz?subs=1",
        "/accountz",
        "/accountz?acc=A",
        "/accountz?acc=B",
        "/accountz?acc=%24SYS",
    ] {
        let (mut ours, mut theirs) = (BTreeSet::new(), BTreeSet::new());
        field_paths(&json(tenet_http, target), "", &mut ours);
        field_paths(&json(nats_http, target), "", &mut theirs);
        let extra: Vec<&String> = ours.difference(&theirs).collect();
        assert!(
            extra.is_empty(),
            "{target}: tenet writes fields nats-server does not: {extra:?}\n(nats-server: {theirs:?})"
        );
        for field in theirs.difference(&ours) {
            not_produced.insert(format!("{target} {field}"));
        }
    }
    let healthz = (
        http_get(tenet_http, "/healthz").body,
        http_get(nats_http, "/healthz").body,
    );
    assert_eq!(healthz.0, healthz.1);
    println!("nats-server fields tenet does not produce:");
    for field in &not_produced {
        println!("  {field}");
    }
    drop(reference);
    let _ = tenet;
}

#[test]
fn a_callback_answers_jsonp() {
    let (_server, port) = start(&[]);
    for endpoint in ["/varz", "/connz", "/subsz", "/accountz", "/healthz"] {
        let r = http_get(port, &format!("{endpoint}?callback=show"));
        assert_eq!(r.status, 200, "{endpoint}: {}", r.body);
        assert!(
            r.headers.contains("content-type: application/javascript"),
            "{endpoint}: {}",
            r.headers
        );
        let inner = r
            .body
            .strip_prefix("show(")
            .and_then(|b| b.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{endpoint}: {}", r.body));
        let value: Value = serde_json::from_str(inner).expect("JSON inside the call");
        assert!(value.is_object(), "{endpoint}: {inner}");
    }
}
