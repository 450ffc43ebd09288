//! The per-message path (parse, match, deliver, flush) allocates nothing once warm.
//!
//! A counting global allocator wraps the system one for this test binary
//! only; it counts per thread, so tests running side by side do not count
//! each other's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::IoSlice;

use tenet_core::auth::Users;
use tenet_core::config::options::read_config;
use tenet_core::config::options::{Authorization, Permissions, SubjectPermission, User};
use tenet_core::config::{parse, MapResolver};
use tenet_core::options::JetStreamOptions;
use tenet_core::{Accounts, Auth, ClientId, Event, Options, Peer, Server, Time};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Allocations made on this thread so far.
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn count() {
    // A thread being torn down has no counter left: nothing to count.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Drains events the way a runtime would, writing every flushed byte to nowhere.
fn pump(server: &mut Server) -> usize {
    let mut written = 0;
    while let Some(event) = server.poll_event() {
        if let Event::Log(_, line) = &event {
            eprintln!("{line}");
        }
        if let Event::Flush(id) = event {
            loop {
                let n = {
                    let mut slices = [IoSlice::new(&[]); 16];
                    let used = server.outbound(id, &mut slices);
                    slices[..used].iter().map(|s| s.len()).sum::<usize>()
                };
                if n == 0 {
                    break;
                }
                server.handle_written(id, n, Time::ZERO);
                written += n;
            }
        }
    }
    written
}

fn connect(server: &mut Server, port: u16, subs: &[u8]) -> ClientId {
    connect_as(server, "u", port, subs)
}

fn connect_as(server: &mut Server, user: &str, port: u16, subs: &[u8]) -> ClientId {
    let id = server.accept(
        Peer {
            ip: "127.0.0.1".into(),
            port,
        },
        Time::ZERO,
    );
    let connect = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"user\":\"{user}\",\"pass\":\"p\"}}\r\n"
    );
    server.handle_read(id, connect.as_bytes(), Time::ZERO);
    server.handle_read(id, subs, Time::ZERO);
    pump(server);
    id
}

/// A user whose publish and subscribe rights are checked on every message.
fn restricted_users() -> Users {
    let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let perms = Permissions {
        publish: Some(SubjectPermission {
            allow: list(&["bench.>", "metrics.*"]),
            deny: list(&["bench.secret"]),
            ..Default::default()
        }),
        subscribe: Some(SubjectPermission {
            allow: list(&["bench.*", ">"]),
            deny: list(&["bench.secret"]),
            ..Default::default()
        }),
        allow_responses: None,
        ..Default::default()
    };
    let user = User {
        name: Some("u".into()),
        password: Some("p".into()),
        permissions: Some(perms),
        ..User::default()
    };
    Users::new(
        Some(&Authorization {
            users: vec![user],
            ..Authorization::default()
        }),
        &[],
        None,
        None,
        None,
        None,
    )
    .unwrap()
}

#[test]
fn publishing_allocates_nothing_per_message() {
    assert_no_allocations(Server::new(Options::default(), 7));
}

#[test]
fn publishing_with_permissions_allocates_nothing_per_message() {
    assert_no_allocations(Server::with_users(
        Options::default(),
        restricted_users(),
        7,
    ));
}

#[test]
fn publishing_to_importing_accounts_allocates_nothing_per_message() {
    let config = r#"accounts {
        A: { users: [{user: u, password: p}], exports: [{stream: "bench.>"}] }
        B: { users: [{user: v, password: p}],
             imports: [{stream: {account: A, subject: "bench.>"}, prefix: "in"}] }
        C: { users: [{user: w, password: p}],
             imports: [{stream: {account: A, subject: "bench.*"}, to: "mapped.*"}] }
    }"#;
    let resolver = MapResolver(Default::default());
    let parsed = parse("t.conf", config, &resolver, &|_| None).unwrap();
    let (config, errors) = read_config(&parsed);
    assert!(errors.is_empty(), "{errors:?}");
    let users = Users::new(None, &config.accounts, None, None, None, None).unwrap();
    let accounts = Accounts::from_config(&config).unwrap();
    let mut server = Server::with_auth(Options::default(), Auth { users, accounts }, 7);
    connect_as(&mut server, "v", 10, b"SUB in.bench.x 1\r\nSUB > 2\r\n");
    connect_as(&mut server, "w", 11, b"SUB mapped.* 1\r\n");
    // Four deliveries in A per publish, as in the other tests, and three more
    // through the imports.
    assert_eq!(assert_no_allocations(server), 7 * 204 * 110);
}

/// Runs 110 batches of 204 publishes; returns the deliveries made.
fn assert_no_allocations(mut server: Server) -> u64 {
    connect(
        &mut server,
        1,
        b"SUB bench.x 1\r\nSUB bench.* 2\r\nSUB > 3\r\n",
    );
    connect(&mut server, 2, b"SUB bench.x q 1\r\n");
    connect(&mut server, 3, b"SUB bench.x q 1\r\n");
    let publisher = connect(&mut server, 4, b"");

    // A read buffer holding many messages, one of them split across two reads,
    // and an HPUB delivered both with and without headers.
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend_from_slice(b"PUB bench.x reply.1 16\r\n0123456789abcdef\r\n");
        if i % 50 == 0 {
            batch.extend_from_slice(b"HPUB bench.x 12 16\r\nNATS/1.0\r\n\r\nbody\r\n");
        }
    }
    let (first, second) = batch.split_at(batch.len() / 2 + 7);

    let run = |server: &mut Server| {
        server.handle_read(publisher, first, Time::ZERO);
        server.handle_read(publisher, second, Time::ZERO);
        pump(server)
    };
    // Warm up: caches, pooled chunks, event queue capacity.
    for _ in 0..10 {
        run(&mut server);
    }
    let before = allocations();
    let mut written = 0;
    for _ in 0..100 {
        written += run(&mut server);
    }
    let allocations = allocations() - before;
    let delivered = server.stats().out_msgs;
    assert!(written > 1_000_000, "{written} bytes written");
    assert!(delivered > 80_000, "{delivered} deliveries");
    assert_eq!(allocations, 0, "allocations over 20,400 publishes");
    delivered
}

/// A JetStream server with stream `S` (on `s.>`, `storage`) and maybe a
/// consumer delivering it (push to `d`, subscribed; or pull, one request
/// for each batch of 200 publishes): what a publish costs on the way into
/// the store and out to the consumer, in allocations per message.
fn jetstream_allocations_per_message(storage: &str, consumer: Option<&str>) -> f64 {
    let opts = Options {
        jetstream: Some(JetStreamOptions::default()),
        ..Options::default()
    };
    let mut server = Server::new(opts, 7);
    server.set_wall_clock(1_700_000_000_000_000_000, Time::ZERO);
    // As a runtime: store writes made (and, here, synced) after each input.
    let drain = |server: &mut Server| {
        let written = pump(server);
        while server.poll_store_write().is_some() {}
        let synced = server.store_writes_taken();
        server.handle_store_synced(synced, Time::ZERO);
        written + pump(server)
    };
    let client = connect(&mut server, 1, b"SUB _INBOX.a 1\r\nSUB d 2\r\n");
    let api = |server: &mut Server, subject: &str, body: &str| {
        let line = format!("PUB {subject} _INBOX.a {}\r\n{body}\r\n", body.len());
        server.handle_read(client, line.as_bytes(), Time::ZERO);
        drain(server);
    };
    let create =
        format!(r#"{{"name":"S","subjects":["s.>"],"storage":"{storage}","max_msgs":100000}}"#);
    api(&mut server, "$JS.API.STREAM.CREATE.S", &create);
    let mut batch = Vec::new();
    match consumer {
        Some("push") => {
            let config = r#"{"stream_name":"S","config":{"durable_name":"C","deliver_subject":"d","ack_policy":"none"}}"#;
            api(&mut server, "$JS.API.CONSUMER.DURABLE.CREATE.S.C", config);
        }
        Some("pull") => {
            let config = r#"{"stream_name":"S","config":{"durable_name":"C","ack_policy":"none"}}"#;
            api(&mut server, "$JS.API.CONSUMER.DURABLE.CREATE.S.C", config);
            let pull = r#"{"batch":200}"#;
            let line = format!(
                "PUB $JS.API.CONSUMER.MSG.NEXT.S.C _INBOX.a {}\r\n{pull}\r\n",
                pull.len()
            );
            batch.extend_from_slice(line.as_bytes());
        }
        _ => {}
    }
    for _ in 0..200 {
        batch.extend_from_slice(b"PUB s.x _INBOX.a 16\r\n0123456789abcdef\r\n");
    }
    let run = |server: &mut Server| {
        server.handle_read(client, &batch, Time::ZERO);
        drain(server)
    };
    for _ in 0..10 {
        run(&mut server);
    }
    let before = allocations();
    let delivered_before = server.stats().out_msgs;
    for _ in 0..50 {
        run(&mut server);
    }
    let per_message = (allocations() - before) as f64 / 10_000.0;
    let delivered = server.stats().out_msgs - delivered_before;
    let expected = if consumer.is_some() { 20_000 } else { 10_000 };
    assert_eq!(delivered, expected, "a PubAck (and a delivery) per message");
    eprintln!("{storage} stream, consumer {consumer:?}: {per_message:.2} allocations per message");
    per_message
}

/// Storing a message (with its PubAck) and delivering it to a push or pull
/// consumer allocate nothing per message once warm; what is left is per
/// batch of input (a block's new records handed to the host, a pull
/// request): under 50 per batch of 200 messages.
#[test]
fn jetstream_publish_and_delivery_allocate_nothing_per_message() {
    for storage in ["memory", "file"] {
        for consumer in [None, Some("push"), Some("pull")] {
            let per_message = jetstream_allocations_per_message(storage, consumer);
            assert!(
                per_message < 0.25,
                "{storage} stream, consumer {consumer:?}: {per_message} allocations per message"
            );
        }
    }
}
