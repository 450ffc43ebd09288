//! JetStream with the official async-nats client (its `jetstream` module):
//! streams made and read through the API, publishes acknowledged, accounts
//! kept apart. Each test starts its own server.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectOptions};

use tenet_tests::{nats_py, skip_on_reference, TestServer};

const WAIT: Duration = Duration::from_secs(5);

async fn connect(server: &TestServer, user: Option<(&str, &str)>) -> Client {
    let opts = match user {
        Some((u, p)) => ConnectOptions::with_user_and_password(u.into(), p.into()),
        None => ConnectOptions::new(),
    };
    tokio::time::timeout(WAIT, opts.connect(server.url()))
        .await
        .expect("connect timed out")
        .expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_created_and_published_to_with_async_nats() {
    if skip_on_reference(
        "async-nats 0.51 cannot read nats-server 2.9.10's account info (see the README's differences)",
    ) {
        return;
    }
    let dir = store_dir("create");
    let server = TestServer::start_with_args(&["-js", "-sd", dir.to_str().expect("utf-8")]);
    let client = connect(&server, None).await;
    let js = jetstream::new(client);
    let mut stream = js
        .create_stream(stream::Config {
            name: "student".into(),
            subjects: vec!["student.>".into()],
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .expect("stream created");
    for n in 1..=3u64 {
        let ack = js
            .publish("student.Created", format!("student {n}").into())
            .await
            .expect("published")
            .await
            .expect("acknowledged");
        assert_eq!(
            (ack.stream.as_str(), ack.sequence, ack.duplicate),
            ("student", n, false)
        );
    }
    let info = stream.info().await.expect("info");
    assert_eq!(info.state.messages, 3);
    assert_eq!(info.state.first_sequence, 1);
    assert_eq!(info.state.last_sequence, 3);
    // Times are wall-clock times.
    let created = SystemTime::from(info.created);
    let age = SystemTime::now()
        .duration_since(created)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "created {age:?} ago");
    let message = stream.get_raw_message(2).await.expect("message 2");
    assert_eq!(&message.payload[..], b"student 2");
    assert_eq!(message.subject.as_str(), "student.Created");
    let account = js.query_account().await.expect("account info");
    assert_eq!(account.streams, 1);
    js.delete_stream("student").await.expect("deleted");
    assert!(js.get_stream("student").await.is_err(), "gone");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_each_with_a_stream_named_student() {
    let dir = store_dir("accounts");
    let config = format!(
        "jetstream: {{ store_dir: {dir:?} }}\naccounts {{\n\
        A: {{ jetstream: enabled, users: [{{user: a, password: p}}] }}\n\
        B: {{ jetstream: enabled, users: [{{user: b, password: p}}] }}\n\
    }}\n"
    );
    let server = TestServer::with_config(&config, &[]);
    let a = jetstream::new(connect(&server, Some(("a", "p"))).await);
    let b = jetstream::new(connect(&server, Some(("b", "p"))).await);
    for js in [&a, &b] {
        js.create_stream(stream::Config {
            name: "student".into(),
            subjects: vec!["student.>".into()],
            ..Default::default()
        })
        .await
        .expect("stream created");
    }
    for _ in 0..2 {
        a.publish("student.Created", "a".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let ack = b
        .publish("student.Created", "b".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 1, "B's stream saw none of A's messages");
    let mut a_stream = a.get_stream("student").await.unwrap();
    assert_eq!(a_stream.info().await.unwrap().state.messages, 2);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory of its own under the system's temporary directory.
fn store_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tenet-js-{name}-{}-{}",
        std::process::id(),
        tenet_tests::runtime_binary_name()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_stream_is_back_after_a_restart() {
    if skip_on_reference("tenet's own file store") {
        return;
    }
    let dir = store_dir("restart");
    let dir_arg = dir.to_str().expect("utf-8 path").to_string();
    {
        let mut server = TestServer::start_with_args(&["-js", "-sd", &dir_arg]);
        let js = jetstream::new(connect(&server, None).await);
        js.create_stream(stream::Config {
            name: "orders".into(),
            subjects: vec!["orders.*".into()],
            max_messages_per_subject: 3,
            ..Default::default()
        })
        .await
        .expect("stream created");
        for n in 1..=5u64 {
            let subject = if n % 2 == 0 {
                "orders.even"
            } else {
                "orders.odd"
            };
            let ack = js
                .publish(subject, format!("order {n}").into())
                .await
                .unwrap()
                .await
                .unwrap();
            assert_eq!(ack.sequence, n);
        }
        let stream = js.get_stream("orders").await.unwrap();
        stream.delete_message(2).await.expect("deleted");
        server.signal(libc::SIGTERM);
        assert!(
            server.wait_exit(Duration::from_secs(10)).is_some(),
            "stopped"
        );
    }
    let server = TestServer::start_with_args(&["-js", "-sd", &dir_arg]);
    let js = jetstream::new(connect(&server, None).await);
    let mut stream = js.get_stream("orders").await.expect("the stream is back");
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.max_messages_per_subject, 3);
    assert_eq!(info.state.messages, 4);
    assert_eq!(
        (info.state.first_sequence, info.state.last_sequence),
        (1, 5)
    );
    let message = stream.get_raw_message(4).await.unwrap();
    assert_eq!(&message.payload[..], b"order 4");
    assert!(stream.get_raw_message(2).await.is_err(), "still deleted");
    let ack = js
        .publish("orders.odd", "order 6".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 6, "sequences go on");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_block_is_reported_and_cut_and_the_other_blocks_stay() {
    if skip_on_reference("tenet's own file store") {
        return;
    }
    let dir = store_dir("corrupt");
    let dir_arg = dir.to_str().expect("utf-8 path").to_string();
    // 300 messages of 10 kB: three blocks of 1 MiB and some.
    let payload = |n: u64| format!("{n:05}").repeat(2_000);
    {
        let mut server = TestServer::start_with_args(&["-js", "-sd", &dir_arg]);
        let js = jetstream::new(connect(&server, None).await);
        js.create_stream(stream::Config {
            name: "S".into(),
            subjects: vec!["s".into()],
            ..Default::default()
        })
        .await
        .expect("stream created");
        for n in 1..=300u64 {
            let ack = js.publish("s", payload(n).into()).await.unwrap();
            assert_eq!(ack.await.unwrap().sequence, n);
        }
        server.signal(libc::SIGTERM);
        assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    }
    let stream_dir = dir.join("jetstream/$G/streams/S");
    let block = stream_dir.join("2.blk");
    let mut bytes = std::fs::read(&block).expect("a second block");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&block, &bytes).unwrap();
    // Without the blocks' summaries, the blocks are read at the restart.
    let mut summaries = 0;
    for entry in std::fs::read_dir(&stream_dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("summaries.")
        {
            std::fs::remove_file(path).unwrap();
            summaries += 1;
        }
    }
    assert_eq!(summaries, 1, "the closed blocks' summaries are in one file");

    let mut server = TestServer::start_with_args(&["-js", "-sd", &dir_arg]);
    assert!(
        server.wait_for_log("Restored", Duration::from_secs(10)),
        "{}",
        server.logs()
    );
    let logs = server.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("block 2 ends in a checksum mismatch"))
        .unwrap_or_else(|| panic!("the corruption is reported:\n{logs}"));
    assert!(
        line.contains("[WRN]") && line.contains("'$G > S'") && line.contains("after sequence"),
        "{line}"
    );
    assert!(
        stream_dir.join("2.blk.corrupt").exists(),
        "the block as it was is kept"
    );
    let js = jetstream::new(connect(&server, None).await);
    let mut stream = js.get_stream("S").await.expect("the stream is back");
    let messages = stream.info().await.unwrap().state.messages;
    let lost = 300 - messages;
    assert!(
        lost > 0 && lost < 100,
        "only what followed the flip in block 2: {lost}"
    );
    // Every message of the other blocks, and of block 2 before the flip.
    let mut kept = 0;
    for seq in 1..=300u64 {
        if let Ok(message) = stream.get_raw_message(seq).await {
            assert_eq!(
                &message.payload[..],
                payload(seq).as_bytes(),
                "message {seq}"
            );
            kept += 1;
        }
    }
    assert_eq!(kept, messages);
    assert!(
        stream.get_raw_message(300).await.is_ok(),
        "the last block stays"
    );
    let ack = js.publish("s", "next".into()).await.unwrap().await.unwrap();
    assert_eq!(ack.sequence, 301, "sequences go on");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_py_publishes_with_acks_into_a_file_stream_that_survives_a_restart() {
    if skip_on_reference("tenet's own file store") {
        return;
    }
    let dir = store_dir("nats-py");
    let config = format!(
        "jetstream {{ store_dir: {dir:?} }}\naccounts {{\n\
           A: {{ jetstream: enabled, users: [{{user: bob, password: p}}] }}\n\
         }}\n"
    );
    let script = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1], user="bob", password="p")
    js = nc.jetstream()
    await js.add_stream(name="student", subjects=["student.>"], storage="file")
    for n in range(1, 11):
        ack = await js.publish("student.Created", f"student {n}".encode())
        assert ack.stream == "student" and ack.seq == n, ack
    print("acked", ack.seq)
    await nc.close()
asyncio.run(main())
"#;
    {
        let mut server = TestServer::with_config(&config, &[]);
        let url = format!("nats://127.0.0.1:{}", server.port());
        assert!(nats_py(script, &[&url]).contains("acked 10"));
        server.signal(libc::SIGTERM);
        assert!(
            server.wait_exit(Duration::from_secs(10)).is_some(),
            "stopped"
        );
    }
    let server = TestServer::with_config(&config, &[]);
    let js = jetstream::new(connect(&server, Some(("bob", "p"))).await);
    let mut stream = js.get_stream("student").await.expect("the stream is back");
    let info = stream.info().await.unwrap();
    assert_eq!((info.state.messages, info.state.last_sequence), (10, 10));
    for n in 1..=10u64 {
        let message = stream.get_raw_message(n).await.unwrap();
        assert_eq!(message.payload, format!("student {n}").as_bytes());
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_pull_consumer_with_async_nats() {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    use futures::StreamExt;
    let dir = store_dir("pull");
    let server = TestServer::start_with_args(&["-js", "-sd", dir.to_str().expect("utf-8")]);
    let js = jetstream::new(connect(&server, None).await);
    let stream = js
        .create_stream(stream::Config {
            name: "student".into(),
            subjects: vec!["student.>".into()],
            ..Default::default()
        })
        .await
        .expect("stream created");
    for n in 1..=5u64 {
        js.publish("student.Created", format!("student {n}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("tom".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("consumer created");
    let mut got = Vec::new();
    let mut messages = consumer
        .fetch()
        .max_messages(3)
        .messages()
        .await
        .expect("fetch");
    while let Some(message) = messages.next().await {
        let message = message.expect("a message");
        got.push(String::from_utf8(message.payload.to_vec()).unwrap());
        message.ack().await.expect("acked");
    }
    assert_eq!(got, ["student 1", "student 2", "student 3"]);
    let mut rest = consumer
        .fetch()
        .max_messages(5)
        .messages()
        .await
        .expect("fetch");
    let mut more = Vec::new();
    while let Some(message) = rest.next().await {
        let message = message.expect("a message");
        more.push(String::from_utf8(message.payload.to_vec()).unwrap());
        message.double_ack().await.expect("acked and confirmed");
    }
    assert_eq!(more, ["student 4", "student 5"]);
    let mut consumer = consumer;
    let info = consumer.info().await.expect("info");
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
    assert_eq!(info.ack_floor.stream_sequence, 5);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The multi-tenant setup of the consumers issue, verbatim (plus a store
/// directory and a second account with its own `student` stream).
fn tenant_config(dir: &std::path::Path) -> String {
    format!(
        r#"jetstream {{ store_dir: {dir:?} }}
accounts {{
    A: {{
        jetstream: enabled
        users = [
            {{
                user: "Admin",
                password: "123456",
                permissions: {{
                    publish: {{
                        allow: [
                            "$JS.API.INFO",
                            "$JS.API.STREAM.>",
                            "$JS.API.CONSUMER.>"
                        ]
                    }}
                }}
            }},
            {{
                user: "Bob",
                password: "123456",
                permissions: {{
                    publish: {{
                        allow: [
                            "$JS.API.INFO",
                            "$JS.API.STREAM.*.student",
                            "student.Created"
                        ]
                    }}
                }}
            }},
            {{
                user: "Tom",
                password: "123456",
                permissions: {{
                    publish: {{
                        allow: [
                            "$JS.API.INFO",
                            "$JS.API.STREAM.NAMES",
                            "$JS.API.CONSUMER.*.student.*",
                            "$JS.API.CONSUMER.DURABLE.CREATE.student.*",
                            "$JS.ACK.student.>"
                        ]
                    }},
                    subscribe: {{
                        allow: [
                            "_INBOX.>"
                        ]
                    }}
                }}
            }}
        ]
    }}
    B: {{
        jetstream: enabled
        users = [ {{ user: "Other", password: "123456" }} ]
    }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_publishes_and_tom_consumes_within_their_permissions() {
    use async_nats::jetstream::consumer::{push, AckPolicy};
    use futures::StreamExt;
    let dir = store_dir("tenants");
    let server = TestServer::with_config(&tenant_config(&dir), &[]);
    let bob = jetstream::new(connect(&server, Some(("Bob", "123456"))).await);
    bob.create_stream(stream::Config {
        name: "student".into(),
        subjects: vec!["student.>".into()],
        ..Default::default()
    })
    .await
    .expect("Bob creates the stream");
    for n in 1..=3 {
        let ack = bob
            .publish("student.Created", format!("student {n}").into())
            .await
            .unwrap()
            .await
            .expect("acknowledged");
        assert_eq!(ack.sequence, n);
    }
    // Tom: a durable push consumer delivering to his inbox, acked on $JS.ACK.student.>.
    let tom = jetstream::new(connect(&server, Some(("Tom", "123456"))).await);
    let consumer: async_nats::jetstream::consumer::PushConsumer = tom
        .create_consumer_on_stream(
            push::Config {
                durable_name: Some("tom".into()),
                deliver_subject: "_INBOX.tom.deliver".into(),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
            "student",
        )
        .await
        .expect("Tom creates his consumer");
    let mut messages = consumer.messages().await.expect("subscribed");
    for n in 1..=3 {
        let message = tokio::time::timeout(WAIT, messages.next())
            .await
            .expect("a message in time")
            .expect("a message")
            .expect("not an error");
        assert_eq!(message.payload, format!("student {n}").as_bytes());
        assert_eq!(message.subject.as_str(), "student.Created");
        message.ack().await.expect("Tom acks");
    }
    // Bob cannot make consumers; Tom cannot publish to the stream's subject
    // (the server refuses the publish: the request just gets no answer).
    let (mut bob, mut tom) = (bob, tom);
    bob.set_timeout(Duration::from_millis(500));
    tom.set_timeout(Duration::from_millis(500));
    let bob_consumer = bob
        .create_consumer_on_stream(
            push::Config {
                durable_name: Some("bob".into()),
                deliver_subject: "_INBOX.bob".into(),
                ..Default::default()
            },
            "student",
        )
        .await;
    assert!(bob_consumer.is_err(), "Bob may not create consumers");
    let tom_publish = tom.publish("student.Created", "x".into()).await;
    let acked = match tom_publish {
        Ok(ack) => tokio::time::timeout(Duration::from_secs(2), ack)
            .await
            .is_ok_and(|a| a.is_ok()),
        Err(_) => false,
    };
    assert!(!acked, "Tom may not publish");
    // Account B has its own `student`, with nothing of A's.
    let other = jetstream::new(connect(&server, Some(("Other", "123456"))).await);
    let mut theirs = other
        .create_stream(stream::Config {
            name: "student".into(),
            subjects: vec!["student.>".into()],
            ..Default::default()
        })
        .await
        .expect("B's stream");
    assert_eq!(theirs.info().await.unwrap().state.messages, 0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_goes_on_where_it_was_after_a_restart() {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    use futures::StreamExt;
    let dir = store_dir("consumer-restart");
    let args = ["-js", "-sd", dir.to_str().expect("utf-8")];
    async fn fetch(
        consumer: &async_nats::jetstream::consumer::PullConsumer,
        n: usize,
        ack: bool,
    ) -> Vec<String> {
        let mut got = Vec::new();
        let mut messages = consumer
            .fetch()
            .max_messages(n)
            .messages()
            .await
            .expect("fetch");
        while let Some(message) = messages.next().await {
            let message = message.expect("a message");
            got.push(String::from_utf8(message.payload.to_vec()).unwrap());
            if ack {
                message.double_ack().await.expect("acked");
            }
        }
        got
    }
    {
        let mut server = TestServer::start_with_args(&args);
        let js = jetstream::new(connect(&server, None).await);
        let stream = js
            .create_stream(stream::Config {
                name: "student".into(),
                subjects: vec!["student.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        for n in 1..=5 {
            js.publish("student.Created", format!("s{n}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .create_consumer(pull::Config {
                durable_name: Some("tom".into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(1),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(fetch(&consumer, 2, true).await, ["s1", "s2"]);
        // Delivered, never acknowledged: must come again.
        assert_eq!(fetch(&consumer, 1, false).await, ["s3"]);
        server.signal(libc::SIGTERM);
        assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    }
    let server = TestServer::start_with_args(&args);
    let js = jetstream::new(connect(&server, None).await);
    let stream = js.get_stream("student").await.expect("stream back");
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer("tom").await.expect("consumer back");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut again = fetch(&consumer, 5, true).await;
    again.sort();
    assert_eq!(
        again,
        ["s3", "s4", "s5"],
        "nothing acknowledged comes again, the rest does"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_multi_tenant_setup_with_nats_py() {
    let dir = store_dir("tenants-py");
    let server = TestServer::with_config(&tenant_config(&dir), &[]);
    let url = format!("nats://127.0.0.1:{}", server.port());
    // Tom subscribes as nats-py users do: a durable push consumer, the
    // stream found by subject through $JS.API.STREAM.NAMES.
    let script = r#"
import asyncio, sys, nats
async def main():
    bob = await nats.connect(sys.argv[1], user="Bob", password="123456")
    bjs = bob.jetstream()
    await bjs.add_stream(name="student", subjects=["student.>"])
    for n in range(1, 4):
        ack = await bjs.publish("student.Created", f"student {n}".encode())
        assert ack.seq == n, ack
    tom = await nats.connect(sys.argv[1], user="Tom", password="123456")
    tjs = tom.jetstream()
    sub = await tjs.subscribe("student.Created", durable="tom")
    for n in range(1, 4):
        msg = await sub.next_msg(timeout=5)
        assert msg.data == f"student {n}".encode(), msg.data
        await msg.ack()
    print("tom acked 3")
    await bob.close()
    await tom.close()
asyncio.run(main())
"#;
    assert!(nats_py(script, &[&url]).contains("tom acked 3"));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stream `student` with `n` messages of `size` bytes, each starting with its number.
async fn student_stream(js: &jetstream::Context, n: usize, size: usize) -> stream::Stream {
    let stream = js
        .create_stream(stream::Config {
            name: "student".into(),
            subjects: vec!["student.>".into()],
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .expect("stream created");
    for i in 0..n {
        let mut payload = format!("{i:08}").into_bytes();
        payload.resize(size.max(8), b'.');
        js.publish("student.Created", payload.into())
            .await
            .expect("published")
            .await
            .expect("acknowledged");
    }
    stream
}

fn number(payload: &[u8]) -> usize {
    std::str::from_utf8(&payload[..8]).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_consumer_reads_past_the_flow_control_window() {
    use async_nats::jetstream::consumer::push;
    use futures::StreamExt;
    let server =
        TestServer::start_with_args(&["-js", "-sd", store_dir("ordered").to_str().unwrap()]);
    let client = connect(&server, None).await;
    let js = jetstream::new(client.clone());
    // 6 MB: three times the first flow-control window, so the client's
    // answers are what keeps the messages coming.
    let (n, size) = (300, 20_000);
    let stream = student_stream(&js, n, size).await;
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    for expected in 0..n {
        let message = tokio::time::timeout(WAIT, messages.next())
            .await
            .unwrap_or_else(|_| panic!("message {expected} never came (flow control stuck?)"))
            .expect("a message")
            .expect("no error");
        assert_eq!(number(&message.payload), expected);
        assert_eq!(message.payload.len(), size);
    }
    let _ = std::fs::remove_dir_all(store_dir("ordered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_consumer_streams_messages_with_heartbeats_and_acks() {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    use futures::StreamExt;
    let server =
        TestServer::start_with_args(&["-js", "-sd", store_dir("messages").to_str().unwrap()]);
    let js = jetstream::new(connect(&server, None).await);
    let n = 450;
    let stream = student_stream(&js, n, 100).await;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("tom".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("consumer created");
    // `messages()` asks in batches (200, with max_bytes, expires and idle
    // heartbeats) and asks again as they are used up.
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(200)
        .heartbeat(Duration::from_secs(1))
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("messages");
    for expected in 0..n {
        let message = tokio::time::timeout(WAIT, messages.next())
            .await
            .unwrap_or_else(|_| panic!("message {expected} never came"))
            .expect("a message")
            .expect("no error");
        assert_eq!(number(&message.payload), expected);
        message.ack().await.expect("acked");
    }
    // Idle for longer than the heartbeat: the stream stays healthy and
    // takes a message published later.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    js.publish("student.Created", b"00000999".as_slice().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let late = tokio::time::timeout(WAIT, messages.next())
        .await
        .expect("the late message came")
        .expect("a message")
        .expect("no error (heartbeats arrived in time)");
    assert_eq!(number(&late.payload), 999);
    late.double_ack().await.expect("acked");
    let mut consumer = consumer;
    let info = consumer.info().await.expect("info");
    assert_eq!(info.ack_floor.stream_sequence, n as u64 + 1);
    assert_eq!(info.num_ack_pending, 0);
    let _ = std::fs::remove_dir_all(store_dir("messages"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_advisories_and_an_ephemeral_that_goes_when_unused() {
    use async_nats::jetstream::consumer::{pull, push};
    use async_nats::StatusCode;
    use futures::StreamExt;
    let server = TestServer::start_with_args(&["-js", "-sd", store_dir("idle").to_str().unwrap()]);
    let client = connect(&server, None).await;
    let js = jetstream::new(client.clone());
    let stream = student_stream(&js, 0, 8).await;
    let mut advisories = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.>")
        .await
        .unwrap();
    // A push consumer's deliver subject, read raw: its heartbeats are
    // status messages.
    let inbox = client.new_inbox();
    let mut raw = client.subscribe(inbox.clone()).await.unwrap();
    let _push: async_nats::jetstream::consumer::PushConsumer = stream
        .create_consumer(push::Config {
            durable_name: Some("beats".into()),
            deliver_subject: inbox,
            idle_heartbeat: Duration::from_millis(200),
            ..Default::default()
        })
        .await
        .expect("push consumer");
    let beat = tokio::time::timeout(WAIT, raw.next())
        .await
        .expect("a heartbeat")
        .unwrap();
    assert_eq!(beat.status, Some(StatusCode::IDLE_HEARTBEAT));
    let created = tokio::time::timeout(WAIT, advisories.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        created.subject.as_str(),
        "$JS.EVENT.ADVISORY.CONSUMER.CREATED.student.beats"
    );
    // An ephemeral pull consumer nobody pulls from goes after its threshold.
    let ephemeral: async_nats::jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            inactive_threshold: Duration::from_millis(500),
            ..Default::default()
        })
        .await
        .expect("ephemeral");
    let mut ephemeral = ephemeral;
    let name = ephemeral.info().await.unwrap().name.clone();
    let deleted = format!("$JS.EVENT.ADVISORY.CONSUMER.DELETED.student.{name}");
    let advisory = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let m = advisories.next().await.unwrap();
            if m.subject.as_str() == deleted {
                return m;
            }
        }
    })
    .await
    .expect("the deletion is advised");
    let json: serde_json::Value = serde_json::from_slice(&advisory.payload).unwrap();
    assert_eq!(
        json["type"],
        "io.nats.jetstream.advisory.v1.consumer_action"
    );
    assert_eq!(json["action"], "delete");
    assert!(stream.consumer_info(&name).await.is_err(), "gone");
    let _ = std::fs::remove_dir_all(store_dir("idle"));
}
