//! End-to-end behaviour seen through a real client (async-nats): pub/sub,
//! wildcards, queue groups, request/reply, headers, no-responders, echo, auto-unsubscribe,
//! many connections and large payloads.

use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, HeaderMap, Message, Subscriber};
use futures::{FutureExt, StreamExt};
use tenet_core::Options;
use tenet_tests::TestServer;

const WAIT: Duration = Duration::from_secs(5);

async fn connect(server: &TestServer) -> Client {
    connect_with(server, ConnectOptions::new()).await
}

async fn connect_with(server: &TestServer, opts: ConnectOptions) -> Client {
    tokio::time::timeout(WAIT, opts.connect(server.url()))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// The next message, failing after a timeout or if the subscription ended.
async fn next(sub: &mut Subscriber) -> Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no message within the timeout")
        .expect("subscription ended")
}

/// A round trip through the server (async-nats' flush only writes the socket):
/// the client sends itself a message on a fresh inbox and waits for it. When it
/// returns, the server has processed everything this client sent before, and every
/// message the server queued for this client earlier is in its subscriptions' channels.
/// Not usable by a no-echo client.
async fn sync(client: &Client) {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "sync".into()).await.unwrap();
    assert_eq!(&next(&mut sub).await.payload[..], b"sync");
}

/// Messages already in the subscription's channel (see [`sync`]), without waiting.
fn drain(sub: &mut Subscriber) -> Vec<Message> {
    let mut got = Vec::new();
    // unconstrained: tokio's cooperative budget must not make a ready channel look empty.
    while let Some(Some(msg)) = tokio::task::unconstrained(sub.next()).now_or_never() {
        got.push(msg);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_subscribe() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("greet.joe").await.unwrap();
    sync(&client).await;
    client.publish("greet.joe", "hello".into()).await.unwrap();
    client.publish("greet.ann", "nope".into()).await.unwrap();
    client.publish("greet.joe", "".into()).await.unwrap();
    sync(&client).await;
    let first = next(&mut sub).await;
    assert_eq!(first.subject.as_str(), "greet.joe");
    assert_eq!(&first.payload[..], b"hello");
    assert!(first.reply.is_none());
    let second = next(&mut sub).await;
    assert_eq!(&second.payload[..], b"");
    assert!(drain(&mut sub).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_connections_in_order() {
    let server = TestServer::start();
    let subscriber = connect(&server).await;
    let publisher = connect(&server).await;
    let mut sub = subscriber.subscribe("seq").await.unwrap();
    sync(&subscriber).await;
    for i in 0..200 {
        publisher
            .publish("seq", i.to_string().into())
            .await
            .unwrap();
    }
    sync(&publisher).await;
    for i in 0..200 {
        assert_eq!(next(&mut sub).await.payload, i.to_string().as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_and_full_wildcards() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let mut star = client.subscribe("a.*").await.unwrap();
    let mut full = client.subscribe("a.>").await.unwrap();
    let mut mid = client.subscribe("*.b.*").await.unwrap();
    sync(&client).await;
    for subject in ["a", "a.b", "a.b.c", "b.b.b", "a.b.c.d", "x.y"] {
        client.publish(subject, subject.into()).await.unwrap();
    }
    sync(&client).await;
    let subjects = |msgs: Vec<Message>| -> Vec<String> {
        msgs.into_iter().map(|m| m.subject.to_string()).collect()
    };
    assert_eq!(subjects(drain(&mut star)), ["a.b"]);
    assert_eq!(subjects(drain(&mut full)), ["a.b", "a.b.c", "a.b.c.d"]);
    assert_eq!(subjects(drain(&mut mid)), ["a.b.c", "b.b.b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_delivers_each_message_to_one_member() {
    let server = TestServer::start();
    let mut members = Vec::new();
    for _ in 0..3 {
        let client = connect(&server).await;
        let sub = client
            .queue_subscribe("jobs", "workers".to_string())
            .await
            .unwrap();
        sync(&client).await;
        members.push((client, sub));
    }
    let watcher = connect(&server).await;
    let mut all = watcher.subscribe("jobs").await.unwrap();
    sync(&watcher).await;

    let publisher = connect(&server).await;
    for i in 0..300 {
        publisher
            .publish("jobs", i.to_string().into())
            .await
            .unwrap();
    }
    sync(&publisher).await;

    let mut seen = Vec::new();
    let mut counts = Vec::new();
    for (client, sub) in &mut members {
        sync(client).await;
        let got = drain(sub);
        counts.push(got.len());
        seen.extend(
            got.into_iter()
                .map(|m| String::from_utf8(m.payload.to_vec()).unwrap()),
        );
    }
    seen.sort_by_key(|s| s.parse::<u32>().unwrap());
    let want: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    assert_eq!(
        seen, want,
        "each message to exactly one member (counts {counts:?})"
    );
    // Random member selection: each of three gets about 100.
    assert!(counts.iter().all(|&n| n >= 50), "uneven spread: {counts:?}");
    // A plain subscription on the same subject gets everything.
    sync(&watcher).await;
    assert_eq!(drain(&mut all).len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply() {
    let server = TestServer::start();
    let service = connect(&server).await;
    let mut requests = service.subscribe("svc.echo").await.unwrap();
    sync(&service).await;
    let responder = tokio::spawn({
        let service = service.clone();
        async move {
            for _ in 0..10 {
                let req = next(&mut requests).await;
                let reply = req.reply.expect("request has a reply subject");
                let mut answer = b"re:".to_vec();
                answer.extend_from_slice(&req.payload);
                service.publish(reply, answer.into()).await.unwrap();
            }
        }
    });
    let client = connect(&server).await;
    for i in 0..10 {
        let response =
            tokio::time::timeout(WAIT, client.request("svc.echo", format!("q{i}").into()))
                .await
                .expect("request timed out")
                .expect("request");
        assert_eq!(response.payload, format!("re:q{i}").as_bytes());
    }
    responder.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_round_trip() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("hdr").await.unwrap();
    sync(&client).await;
    let mut headers = HeaderMap::new();
    headers.insert("X-Trace", "abc-123");
    headers.append("X-Multi", "one");
    headers.append("X-Multi", "two");
    client
        .publish_with_headers("hdr", headers, "body".into())
        .await
        .unwrap();
    let msg = next(&mut sub).await;
    assert_eq!(&msg.payload[..], b"body");
    let got = msg.headers.expect("headers delivered");
    assert_eq!(got.get("X-Trace").map(|v| v.as_str()), Some("abc-123"));
    let multi: Vec<&str> = got.get_all("X-Multi").map(|v| v.as_str()).collect();
    assert_eq!(multi, ["one", "two"]);
    assert!(msg.status.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_without_responders_fails_fast() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let started = Instant::now();
    let err = tokio::time::timeout(WAIT, client.request("nobody.listens", "x".into()))
        .await
        .expect("request hung")
        .expect_err("a request nobody can answer must fail");
    assert_eq!(
        err.kind(),
        async_nats::client::RequestErrorKind::NoResponders,
        "{err}"
    );
    // Well before the client's own 10 s request timeout.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The connection is still usable.
    sync(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_echo_hides_own_messages() {
    let server = TestServer::start();
    let quiet = connect_with(&server, ConnectOptions::new().no_echo()).await;
    let other = connect(&server).await;
    // A no-echo client cannot sync with itself: it uses a request to `other` instead.
    let mut barrier = other.subscribe("barrier").await.unwrap();
    let mut theirs = other.subscribe("chat").await.unwrap();
    sync(&other).await;
    let answering = tokio::spawn({
        let other = other.clone();
        async move {
            for _ in 0..2 {
                let req = next(&mut barrier).await;
                other
                    .publish(req.reply.unwrap(), "ok".into())
                    .await
                    .unwrap();
            }
        }
    });
    let quiet_sync = || async {
        tokio::time::timeout(WAIT, quiet.request("barrier", "".into()))
            .await
            .expect("barrier request timed out")
            .expect("barrier request");
    };
    let mut own = quiet.subscribe("chat").await.unwrap();
    quiet_sync().await;
    quiet.publish("chat", "from quiet".into()).await.unwrap();
    quiet_sync().await;
    other.publish("chat", "from other".into()).await.unwrap();
    // An echoed "from quiet" would have arrived first.
    assert_eq!(&next(&mut own).await.payload[..], b"from other");
    // Its own message still reaches others.
    assert_eq!(&next(&mut theirs).await.payload[..], b"from quiet");
    assert_eq!(&next(&mut theirs).await.payload[..], b"from other");
    answering.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_after_delivers_exactly_n() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("limited").await.unwrap();
    sub.unsubscribe_after(3).await.unwrap();
    sync(&client).await;
    for i in 0..10 {
        client
            .publish("limited", i.to_string().into())
            .await
            .unwrap();
    }
    sync(&client).await;
    for i in 0..3 {
        assert_eq!(next(&mut sub).await.payload, i.to_string().as_bytes());
    }
    let end = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("stream did not end");
    assert!(end.is_none(), "a fourth message arrived");
    sync(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_publish_and_subscribe() {
    const CLIENTS: usize = 50;
    const EACH: usize = 10;
    let server = TestServer::start();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let client = connect(&server).await;
        let sub = client.subscribe("many.*").await.unwrap();
        clients.push((client, sub));
    }
    for (client, _) in &clients {
        sync(client).await;
    }
    // Everyone publishes at once.
    let publishers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, (client, _))| {
            let client = client.clone();
            tokio::spawn(async move {
                for n in 0..EACH {
                    client
                        .publish(format!("many.{i}"), n.to_string().into())
                        .await
                        .unwrap();
                }
                sync(&client).await;
            })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    // Every subscriber got every message, each sender's in order.
    for (client, sub) in &mut clients {
        let mut per_sender = vec![Vec::new(); CLIENTS];
        let deadline = Instant::now() + WAIT;
        let mut total = 0;
        while total < CLIENTS * EACH && Instant::now() < deadline {
            sync(client).await;
            for msg in drain(sub) {
                let sender: usize = msg.subject.as_str()["many.".len()..].parse().unwrap();
                per_sender[sender].push(String::from_utf8(msg.payload.to_vec()).unwrap());
                total += 1;
            }
        }
        let want: Vec<String> = (0..EACH).map(|n| n.to_string()).collect();
        for (sender, got) in per_sender.iter().enumerate() {
            assert_eq!(got, &want, "messages from client {sender}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_at_max_payload() {
    let server = TestServer::start();
    let client = connect(&server).await;
    assert_eq!(client.server_info().max_payload, 1_048_576);
    let mut sub = client.subscribe("big").await.unwrap();
    sync(&client).await;
    let payload: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    client.publish("big", payload.clone().into()).await.unwrap();
    let msg = next(&mut sub).await;
    assert!(msg.payload == payload, "large payload corrupted");
    // One byte more is refused by the client, from the max_payload in INFO.
    assert!(client
        .publish("big", vec![0u8; 1_048_577].into())
        .await
        .is_err());
    sync(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowered_max_payload_is_advertised_and_enforced() {
    let server = TestServer::with_options(Options {
        max_payload: 2048,
        ..Options::default()
    });
    let client = connect(&server).await;
    assert_eq!(client.server_info().max_payload, 2048);
    let mut sub = client.subscribe("sized").await.unwrap();
    client
        .publish("sized", vec![7u8; 2048].into())
        .await
        .unwrap();
    assert_eq!(next(&mut sub).await.payload.len(), 2048);
}
