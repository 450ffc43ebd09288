//! README.md's examples, read from the README itself so that none can go
//! stale. Fenced blocks are tagged with what they are (the convention is in
//! README.md, "The README's examples"):
//!
//! - `conf`: a complete configuration file; `-t -c` must call each valid, and
//!   the main ones are run with raw clients, checking what the text around them
//!   says (and the wire strings it quotes);
//! - `rust`: a doctest of tenet-tests (`tests/src/lib.rs` includes the README);
//!   a `no_run` program needs a server, so its lines are copied here, checked
//!   line for line against the README, and run against one;
//! - `toml`: the dependencies those programs need, checked against the versions
//!   the doctests are built with;
//! - `sh` and `console`: every command is run here or named in [`COMMANDS`] as
//!   one that cannot be, and the README says why next to it;
//! - `text`: output samples; the start-up log is compared with a real start.
//!
//! Blocks are found by a phrase of the text before them, so an example that
//! moves is still found, and one that disappears fails its test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use tenet_core::config::value::to_text;
use tenet_core::config::{parse, MapResolver};
use tenet_tests::wire::{msg, msg_reply, publish, request};
use tenet_tests::{
    is_reference_server, run_binary, runtime_binary_name, server_binary, show, skip_on_reference,
    write_config_file, RawClient, TestServer, TIMEOUT,
};

/// The README, as the test was built with it.
const README: &str = include_str!("../../README.md");
/// This file: the README's `no_run` programs are copied here line for line.
const SOURCE: &str = include_str!("readme.rs");
/// The address the README's examples use.
const README_URL: &str = "nats://127.0.0.1:4222";
/// How long async-nats waits for what must arrive.
const WAIT: Duration = Duration::from_secs(5);

// ----- the README's blocks ----------------------------------------------------

/// A fenced block of README.md.
#[derive(Debug)]
struct Block {
    /// The fence's info string: `conf`, `rust,no_run`, `sh`, ... (empty if untagged).
    tag: String,
    /// The lines between the fences, each ending in `\n`.
    text: String,
    /// The 1-based line of the opening fence.
    line: usize,
    /// Byte offset of the opening fence in the README.
    offset: usize,
}

/// Every fenced block, in order.
fn blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    let mut offset = 0;
    for (i, line) in README.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        match &mut open {
            None => {
                if let Some(tag) = trimmed.strip_prefix("```") {
                    open = Some(Block {
                        tag: tag.trim().to_string(),
                        text: String::new(),
                        line: i + 1,
                        offset,
                    });
                }
            }
            Some(block) => {
                if trimmed == "```" {
                    blocks.push(open.take().expect("an open block"));
                } else {
                    block.text.push_str(line);
                }
            }
        }
        offset += line.len();
    }
    assert!(open.is_none(), "README.md ends inside a fenced block");
    blocks
}

/// The first block tagged `tag` after the one place the README says `phrase`.
fn block_after(phrase: &str, tag: &str) -> Block {
    let at = README
        .find(phrase)
        .unwrap_or_else(|| panic!("README.md no longer says {phrase:?}"));
    assert!(
        README[at + 1..].find(phrase).is_none(),
        "README.md says {phrase:?} more than once: which example is meant?"
    );
    blocks()
        .into_iter()
        .find(|b| b.offset > at && b.tag == tag)
        .unwrap_or_else(|| panic!("no `{tag}` block after {phrase:?} in README.md"))
}

/// `text` with every run of whitespace made one space.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Returns `claim` after checking that the README's prose says it (line breaks
/// and indentation aside), so a test checks the very words a reader sees.
fn claimed(claim: &str) -> &str {
    assert!(
        squeeze(README).contains(&squeeze(claim)),
        "README.md no longer says {claim:?}"
    );
    claim
}

/// The repository's root directory.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

#[test]
fn every_fence_is_tagged_with_a_known_kind() {
    const KINDS: &[&str] = &[
        "conf",
        "rust",
        "rust,no_run",
        "toml",
        "sh",
        "console",
        "text",
    ];
    let blocks = blocks();
    let wrong: Vec<String> = blocks
        .iter()
        .filter(|b| !KINDS.contains(&b.tag.as_str()))
        .map(|b| format!("README.md:{}: ```{}", b.line, b.tag))
        .collect();
    assert!(
        wrong.is_empty(),
        "fences must be tagged with one of {KINDS:?} (an untagged one is compiled as \
         Rust by the doctests):\n{}",
        wrong.join("\n")
    );
    for kind in KINDS {
        assert!(
            blocks.iter().any(|b| b.tag == *kind),
            "no `{kind}` block found: is the README read right?"
        );
    }
}

// ----- configuration files ------------------------------------------------------

/// Writes `config` to a file, runs `-t -c <file>` and returns what the server
/// said, or why the file is not valid.
fn check_config(config: &str) -> Result<(), String> {
    let config = with_certificates(config);
    let path = write_config_file(&config);
    let (status, text) = run_binary(&["-t", "-c", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(&path);
    let binary = server_binary()
        .file_name()
        .expect("a file name")
        .to_string_lossy();
    let valid = format!(
        "{binary}: configuration file {} is valid",
        path.to_string_lossy()
    );
    if status.success() && text.contains(&valid) {
        Ok(())
    } else {
        Err(format!("{status}: {}", text.trim_end()))
    }
}

/// `config` with its `certs/` files (the TLS example's) made for the test:
/// a certificate authority, and a server certificate for 127.0.0.1.
fn with_certificates(config: &str) -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    if !config.contains("\"certs/") {
        return config.to_string();
    }
    let dir = std::env::temp_dir().join(format!("tenet-readme-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for certificates");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("a key");
    let ca = ca_params.self_signed(&ca_key).expect("a CA");
    let key = KeyPair::generate().expect("a key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("a certificate");
    for (name, pem) in [
        ("ca.pem", ca.pem()),
        ("server-cert.pem", cert.pem()),
        ("server-key.pem", key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).expect("write");
    }
    config.replace("\"certs/", &format!("\"{}/", dir.display()))
}

#[test]
fn every_configuration_block_is_a_file_the_server_calls_valid() {
    claimed("`tenet-mio -t -c server.conf` checks a file and exits: `tenet-mio: configuration file server.conf is valid`");
    let blocks: Vec<Block> = blocks().into_iter().filter(|b| b.tag == "conf").collect();
    let mut failures = Vec::new();
    for block in &blocks {
        // `sync_interval` is newer than nats-server 2.9.10 (2.10 reads it;
        // a row of the README's differences says so).
        if is_reference_server() && block.text.contains("sync_interval") {
            continue;
        }
        if let Err(why) = check_config(&block.text) {
            failures.push(format!("README.md:{}: {why}", block.line));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} configuration blocks are not valid files:\n{}",
        failures.len(),
        blocks.len(),
        failures.join("\n")
    );
}

#[test]
fn a_broken_configuration_is_not_called_valid() {
    // The check above must be able to fail: the first example with a typo.
    let block = block_after("Permissions are usually written once as variables", "conf");
    let broken = block.text.replace("users = [", "userz = [");
    let why = check_config(&broken).expect_err("a typo in a key is not a valid file");
    assert!(why.contains("userz"), "{why}");
}

// ----- raw clients --------------------------------------------------------------

/// A raw client logged in as `user` (not verbose; protocol 0, so neither
/// server sends an INFO after the first PONG).
fn login(server: &TestServer, user: &str, pass: &str) -> RawClient {
    let mut c = server.client();
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\n"
    ));
    c.ping();
    c
}

/// Reads a request `MSG <subject> <sid> <reply> <len>` with `payload` whose
/// reply subject the server chose, and returns that reply subject.
fn read_request(c: &mut RawClient, subject: &str, sid: u32, payload: &str) -> String {
    let line = c.read_line();
    let text = String::from_utf8_lossy(&line);
    let parts: Vec<&str> = text.split_whitespace().collect();
    let shape = format!("MSG {subject} {sid} <reply> {}", payload.len());
    assert!(
        parts.len() == 5
            && parts[0] == "MSG"
            && parts[1] == subject
            && parts[2] == sid.to_string()
            && parts[4] == payload.len().to_string(),
        "expected {shape}, got {}",
        show(&line)
    );
    c.expect(format!("{payload}\r\n"));
    parts[3].to_string()
}

/// Reads one message per entry of `want`, in whatever order the server sends
/// them (nats-server does not deliver one message to two subscriptions of a
/// client in the order they were made).
fn expect_msgs_in_any_order(c: &mut RawClient, want: &[String]) {
    let mut got: Vec<String> = want
        .iter()
        .map(|_| {
            let line = c.read_line();
            let payload = c.read_line();
            String::from_utf8_lossy(&[line, payload].concat()).into_owned()
        })
        .collect();
    let mut want = want.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

/// Subscribes and waits until the server has the subscription.
fn subscribe(c: &mut RawClient, subject: &str, sid: u32) {
    c.send(format!("SUB {subject} {sid}\r\n"));
    c.ping();
}

// ----- Users and permissions -------------------------------------------------------

#[test]
fn the_users_and_permissions_example_grants_what_it_says() {
    let block = block_after("Permissions are usually written once as variables", "conf");
    let server = TestServer::with_config(&block.text, &[]);
    let denied_publish = claimed(r#"-ERR 'Permissions Violation for Publish to "x"'"#);
    let denied_sub = claimed(r#"-ERR 'Permissions Violation for Subscription to "x"'"#);
    let queue = claimed(r#" using queue "q""#);
    let denied_queue_sub = format!("{}{queue}'", denied_sub.trim_end_matches('\''));

    // alice is ADMIN: she reads everything.
    let mut alice = login(&server, "alice", "foo");
    subscribe(&mut alice, ">", 1);

    // bob is a REQUESTOR: req.foo and req.bar only, replies on _INBOX.>.
    let mut bob = login(&server, "bob", "bar");
    bob.send(publish("x", "no"));
    bob.expect(format!("{denied_publish}\r\n"));
    bob.send("SUB x 1\r\n");
    bob.expect(format!("{denied_sub}\r\n"));
    bob.send("SUB x q 2\r\n");
    bob.expect(format!("{denied_queue_sub}\r\n"));
    subscribe(&mut bob, "_INBOX.bob", 3);
    // The connection stays open, and the refused publish went nowhere: the
    // next thing alice gets is bob's allowed one.
    bob.send(request("req.foo", "_INBOX.bob", "yes"));
    alice.expect(msg_reply("req.foo", 1, "_INBOX.bob", "yes"));
    alice.send(publish("_INBOX.bob", "answer"));
    bob.expect(msg("_INBOX.bob", 3, "answer"));
    alice.expect(msg("_INBOX.bob", 1, "answer"));

    // joe has no permissions of his own: the block's DEFAULT_PERMISSIONS, and
    // his password is the $PASS variable.
    let mut joe = login(&server, "joe", "abcdefghijklmnopqrstuvwxwz0123456789");
    joe.send(publish("req.foo", "no"));
    joe.expect("-ERR 'Permissions Violation for Publish to \"req.foo\"'\r\n");
    joe.send("SUB secret 1\r\n");
    joe.expect("-ERR 'Permissions Violation for Subscription to \"secret\"'\r\n");
    subscribe(&mut joe, "PUBLIC.>", 2);
    joe.send(publish("SANDBOX.joe", "hi"));
    alice.expect(msg("SANDBOX.joe", 1, "hi"));
    alice.send(publish("PUBLIC.news", "read me"));
    joe.expect(msg("PUBLIC.news", 2, "read me"));
    alice.expect(msg("PUBLIC.news", 1, "read me"));
}

// ----- allow_responses and private inboxes ---------------------------------------

#[test]
fn the_allow_responses_example_answers_once_and_shows_the_leak() {
    let block = block_after("Without a `publish` list the service may", "conf");
    let server = TestServer::with_config(&block.text, &[]);
    let mut greeter = login(&server, "greeter", "g");
    subscribe(&mut greeter, "services.greet", 1);
    let mut joe = login(&server, "joe", "j");
    subscribe(&mut joe, "_INBOX.joe", 1);
    let mut pam = login(&server, "pam", "p");
    subscribe(&mut pam, "_INBOX.>", 1);

    joe.send(request("services.greet", "_INBOX.joe", "hi"));
    greeter.expect(msg_reply("services.greet", 1, "_INBOX.joe", "hi"));
    // One reply to the request's reply subject...
    greeter.send(publish("_INBOX.joe", "hello joe"));
    joe.expect(msg("_INBOX.joe", 1, "hello joe"));
    // ... which pam, allowed `_INBOX.>`, reads too: the leak the text describes.
    pam.expect(msg("_INBOX.joe", 1, "hello joe"));
    // No second reply, and nothing else.
    greeter.send(publish("_INBOX.joe", "again"));
    greeter.expect("-ERR 'Permissions Violation for Publish to \"_INBOX.joe\"'\r\n");
    greeter.send(publish("services.greet", "me"));
    greeter.expect("-ERR 'Permissions Violation for Publish to \"services.greet\"'\r\n");
    joe.ping();
    pam.ping();
}

/// The private inbox program of the README (its lines between `main`'s first
/// line and `Ok(())`, with the README's address as `url`), returning the reply.
async fn private_inbox_program(url: &str) -> Result<async_nats::Message, async_nats::Error> {
    let joe = async_nats::ConnectOptions::with_user_and_password("joe".into(), "j".into())
        .custom_inbox_prefix("_INBOX_joe")
        .connect(url)
        .await?;
    let reply = joe.request("services.greet", "hi".into()).await?;
    println!("{}", std::str::from_utf8(&reply.payload)?);
    Ok(reply)
}

/// Answers each request on services.greet with `hello <payload>`; sends the
/// reply subject of each request on `seen`.
async fn greeter(url: &str, seen: tokio::sync::mpsc::UnboundedSender<String>) {
    let greeter = async_nats::ConnectOptions::with_user_and_password("greeter".into(), "g".into())
        .connect(url)
        .await
        .expect("greeter connects");
    let mut requests = greeter
        .subscribe("services.greet")
        .await
        .expect("greeter subscribes");
    greeter.flush().await.expect("flush");
    tokio::spawn(async move {
        while let Some(req) = requests.next().await {
            let Some(reply) = req.reply else { continue };
            let _ = seen.send(reply.to_string());
            let mut answer = b"hello ".to_vec();
            answer.extend_from_slice(&req.payload);
            if greeter.publish(reply, answer.into()).await.is_err() {
                break;
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_inbox_example_keeps_each_users_replies_to_that_user() {
    let block = block_after("nats.go `nats.CustomInboxPrefix`):", "conf");
    let server = TestServer::with_config(&block.text, &[]);
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    greeter(&server.url(), seen_tx).await;

    // joe's program gets its answer, through its own inbox prefix.
    let reply = tokio::time::timeout(WAIT, private_inbox_program(&server.url()))
        .await
        .expect("joe's program timed out")
        .expect("joe's program");
    assert_eq!(&reply.payload[..], b"hello hi");
    let subject = seen.recv().await.expect("the greeter saw the request");
    assert!(subject.starts_with("_INBOX_joe."), "{subject}");

    // pam may not read the shared inboxes, nor joe's.
    let mut pam = login(&server, "pam", "p");
    for subject in ["_INBOX.>", "_INBOX_joe.>"] {
        pam.send(format!("SUB {subject} 1\r\n"));
        pam.expect(format!(
            "-ERR 'Permissions Violation for Subscription to \"{subject}\"'\r\n"
        ));
    }
    claimed("pam's subscription to `_INBOX.>` or `_INBOX_joe.>` is refused; joe and pam each get their own replies");
    // With her own prefix, pam gets her own replies.
    let pam = async_nats::ConnectOptions::with_user_and_password("pam".into(), "p".into())
        .custom_inbox_prefix("_INBOX_pam")
        .connect(server.url())
        .await
        .expect("pam connects");
    let reply = tokio::time::timeout(WAIT, pam.request("services.greet", "pam".into()))
        .await
        .expect("pam's request timed out")
        .expect("pam's request");
    assert_eq!(&reply.payload[..], b"hello pam");
    let subject = seen.recv().await.expect("the greeter saw the request");
    assert!(subject.starts_with("_INBOX_pam."), "{subject}");
}

// ----- Accounts -------------------------------------------------------------------

#[test]
fn the_accounts_example_shares_news_and_the_calc_service_with_b() {
    let block = block_after("`system_account` names a configured one", "conf");
    let server = TestServer::with_config(&block.text, &[]);
    let mut a = login(&server, "a", "a_secret");
    subscribe(&mut a, "calc.>", 1);
    let mut b = login(&server, "b", "b_secret");
    subscribe(&mut b, "from_a.news.>", 1);
    subscribe(&mut b, "_INBOX.b", 2);

    // A's news arrive in B under the import's prefix.
    claimed("under `prefix` (`from_a.news.x`)");
    a.send(publish("news.x", "extra!"));
    b.expect(msg("from_a.news.x", 1, "extra!"));

    // B requests calc_a.add; A's service gets calc.add with a `_R_` reply
    // and streams its answers back, ended by an empty message.
    claimed("B requests calc_a.add");
    b.send(request("calc_a.add", "_INBOX.b", "1 2"));
    let reply = read_request(&mut a, "calc.add", 1, "1 2");
    assert!(reply.starts_with("_R_."), "{reply}");
    for part in ["3", "three", ""] {
        a.send(publish(&reply, part));
        b.expect(msg("_INBOX.b", 2, part));
    }

    // A's users publish only what their default permissions allow.
    a.send(publish("b.x", "no"));
    a.expect("-ERR 'Permissions Violation for Publish to \"b.x\"'\r\n");
    b.ping();
}

// ----- Tenancy patterns -------------------------------------------------------------

/// The README's block for the tenancy file `name`.
fn tenancy_block(name: &str) -> Block {
    block_after(&format!("(`{name}`)"), "conf")
}

/// The configuration tree of `text`, printed without positions or comments.
fn configuration(name: &str, text: &str) -> String {
    let parsed = parse(name, text, &MapResolver::default(), &|_| None)
        .unwrap_or_else(|e| panic!("{name} does not parse: {e:?}"));
    to_text(&parsed.map)
}

#[test]
fn each_tenancy_block_is_the_configuration_of_its_file() {
    claimed("Each below is a file in `tests/data/tenancy/` (with comments there)");
    for name in [
        "one-account-per-tenant.conf",
        "shared-account.conf",
        "runtime-account.conf",
    ] {
        let path = repository().join("tests/data/tenancy").join(name);
        let file =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            configuration("README.md", &tenancy_block(name).text),
            configuration(name, &file),
            "README.md's block for {name} and the file differ"
        );
    }
}

#[test]
fn one_account_per_tenant_keeps_each_tenants_orders_apart() {
    let block = tenancy_block("one-account-per-tenant.conf");
    let server = TestServer::with_config(&block.text, &[]);
    let mut acme_ops = login(&server, "acme_ops", "acme_secret");
    subscribe(&mut acme_ops, "orders.new", 1);
    let mut globex = login(&server, "globex_app", "globex_secret");
    subscribe(&mut globex, "orders.new", 1);
    subscribe(&mut globex, ">", 2);
    let mut acme_app = login(&server, "acme_app", "acme_secret");

    acme_app.send(publish("orders.new", "acme order"));
    acme_ops.expect(msg("orders.new", 1, "acme order"));
    // Routed before globex's PING is read: had it reached globex, it would come first.
    globex.ping();
    globex.send(publish("orders.new", "globex order"));
    expect_msgs_in_any_order(
        &mut globex,
        &[
            msg("orders.new", 1, "globex order"),
            msg("orders.new", 2, "globex order"),
        ],
    );
    acme_ops.ping();
}

#[test]
fn a_shared_account_takes_posts_and_feeds_every_tenant() {
    let block = tenancy_block("shared-account.conf");
    let server = TestServer::with_config(&block.text, &[]);
    let mut board = login(&server, "board", "board_secret");
    subscribe(&mut board, "shared.post.>", 1);
    let mut acme = login(&server, "acme_app", "acme_secret");
    subscribe(&mut acme, "shared.feed.>", 1);
    let mut globex = login(&server, "globex_app", "globex_secret");
    subscribe(&mut globex, "shared.feed.>", 1);
    subscribe(&mut globex, "shared.post.>", 2);

    // ACME posts: the post arrives in SHARED, not in GLOBEX.
    acme.send(publish("shared.post.news", "hello from acme"));
    board.expect(msg("shared.post.news", 1, "hello from acme"));
    // The board republishes it to the feed, which every tenant reads.
    board.send(publish("shared.feed.news", "hello from acme"));
    acme.expect(msg("shared.feed.news", 1, "hello from acme"));
    globex.expect(msg("shared.feed.news", 1, "hello from acme"));
    globex.ping();
}

#[test]
fn a_runtime_account_serves_every_tenant_under_its_local_name() {
    let block = tenancy_block("runtime-account.conf");
    let server = TestServer::with_config(&block.text, &[]);
    let mut runtime = login(&server, "runtime", "runtime_secret");
    subscribe(&mut runtime, "runtime.>", 1);
    let mut acme = login(&server, "acme_app", "acme_secret");
    subscribe(&mut acme, "_INBOX.acme", 1);
    let mut globex = login(&server, "globex_app", "globex_secret");
    subscribe(&mut globex, "_INBOX.globex", 1);
    subscribe(&mut globex, "runtime.>", 2);

    for (tenant, inbox) in [(&mut acme, "_INBOX.acme"), (&mut globex, "_INBOX.globex")] {
        tenant.send(request("time", inbox, "now?"));
        // RUNTIME sees the request under the exported name, with a `_R_` reply.
        let reply = read_request(&mut runtime, "runtime.time", 1, "now?");
        assert!(reply.starts_with("_R_."), "{reply}");
        runtime.send(publish(&reply, "12:00"));
        tenant.expect(msg(inbox, 1, "12:00"));
    }
    // GLOBEX's own runtime.> saw none of it.
    globex.ping();
}

// ----- Multi-tenant JetStream -------------------------------------------------------

/// The multi-tenant program of the README (its lines between `main`'s first
/// line and `Ok(())`, with the README's address as `url`), returning what
/// Tom read.
async fn multi_tenant_program(
    url: &str,
) -> Result<async_nats::jetstream::Message, async_nats::Error> {
    use async_nats::jetstream::{self, consumer::push, consumer::AckPolicy, stream};
    // Bob makes the stream and publishes into it, each message acknowledged.
    let bob = async_nats::ConnectOptions::with_user_and_password("Bob".into(), "123456".into())
        .connect(url)
        .await?;
    let bob = jetstream::new(bob);
    let config = stream::Config {
        name: "student".into(),
        subjects: vec!["student.>".into()],
        ..Default::default()
    };
    bob.create_stream(config).await?;
    let ack = bob
        .publish("student.Created", "alice".into())
        .await?
        .await?;
    println!("stored as {} in {}", ack.sequence, ack.stream);

    // Tom reads through his durable push consumer and acknowledges.
    let tom = async_nats::ConnectOptions::with_user_and_password("Tom".into(), "123456".into())
        .connect(url)
        .await?;
    let tom = jetstream::new(tom);
    let config = push::Config {
        durable_name: Some("tom".into()),
        deliver_subject: "_INBOX.tom.deliver".into(),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    let consumer: jetstream::consumer::PushConsumer =
        tom.create_consumer_on_stream(config, "student").await?;
    let mut messages = consumer.messages().await?;
    let message = messages.next().await.unwrap()?;
    println!("{}", std::str::from_utf8(&message.payload)?); // alice
    message.ack().await?;
    Ok(message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_multi_tenant_program_runs_within_bob_and_toms_permissions() {
    let block = block_after(
        "a publisher and a consumer, each confined by subject",
        "conf",
    );
    let dir = std::env::temp_dir().join(format!("tenet-readme-js-{}", std::process::id()));
    let config = block.text.replace(
        "\"/var/lib/tenet\"",
        &format!("{:?}", dir.display().to_string()),
    );
    assert_ne!(
        config, block.text,
        "the example's store directory is replaced"
    );
    let server = TestServer::with_config(&config, &[]);
    let message = tokio::time::timeout(WAIT, multi_tenant_program(&server.url()))
        .await
        .expect("the program timed out")
        .expect("the program");
    assert_eq!(&message.payload[..], b"alice");
    assert_eq!(message.subject.as_str(), "student.Created");
    claimed("he cannot pull, on nats-server as on tenet");
    // Tom's pull request is refused by his permissions.
    let mut tom = login(&server, "Tom", "123456");
    tom.send("PUB $JS.API.CONSUMER.MSG.NEXT.student.tom _INBOX.tom.x 1\r\n1\r\n");
    tom.expect(
        "-ERR 'Permissions Violation for Publish to \"$JS.API.CONSUMER.MSG.NEXT.student.tom\"'\r\n",
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- Rust programs ----------------------------------------------------------------

/// The quick start program of the README (its lines between `main`'s first line
/// and `Ok(())`, with the README's address as `url`), returning the message.
async fn quick_start_program(url: &str) -> Result<async_nats::Message, async_nats::Error> {
    let client = async_nats::connect(url).await?;
    let mut sub = client.subscribe("greet.*").await?;
    client.publish("greet.joe", "hello".into()).await?;
    let msg = sub.next().await.unwrap();
    println!("{}: {}", msg.subject, std::str::from_utf8(&msg.payload)?); // greet.joe: hello
    Ok(msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_program_gets_its_message() {
    let server = TestServer::start();
    let msg = tokio::time::timeout(WAIT, quick_start_program(&server.url()))
        .await
        .expect("the program timed out")
        .expect("the program");
    let printed = format!("{}: {}", msg.subject, String::from_utf8_lossy(&msg.payload));
    assert_eq!(printed, "greet.joe: hello");
}

#[test]
fn every_no_run_program_is_run_here_line_for_line() {
    let programs: Vec<Block> = blocks()
        .into_iter()
        .filter(|b| b.tag == "rust,no_run")
        .collect();
    for block in &programs {
        let lines: Vec<&str> = block.text.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.starts_with("async fn main() -> Result<(), async_nats::Error> {"))
            .unwrap_or_else(|| panic!("README.md:{}: no async main", block.line));
        let end = lines
            .iter()
            .position(|l| *l == "    Ok(())")
            .unwrap_or_else(|| panic!("README.md:{}: no `Ok(())`", block.line));
        assert!(
            block.text.contains(README_URL),
            "README.md:{}: the program no longer connects to {README_URL}",
            block.line
        );
        let body: String = lines[start + 1..end]
            .iter()
            .map(|l| format!("{}\n", l.replace(&format!("\"{README_URL}\""), "url")))
            .collect();
        assert!(
            SOURCE.contains(&body),
            "README.md:{}: the program's lines are not run by tests/suites/readme.rs; \
             copy them into a function there (with `url` for the address):\n{body}",
            block.line
        );
    }
    assert_eq!(programs.len(), 3, "the README's no_run programs");
}

#[test]
fn the_dependencies_are_those_the_doctests_are_built_with() {
    let block = block_after("a program with these dependencies", "toml");
    let manifest =
        std::fs::read_to_string(repository().join("tests/Cargo.toml")).expect("tests/Cargo.toml");
    let dev = manifest
        .split("[dev-dependencies]")
        .nth(1)
        .expect("tests/Cargo.toml has dev-dependencies");
    let mut names = Vec::new();
    for line in block
        .text
        .lines()
        .skip_while(|l| *l != "[dependencies]")
        .skip(1)
    {
        let (name, spec) = line.split_once(" = ").expect("`name = spec`");
        let ours = dev
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("{name} is not a dev-dependency of tenet-tests"));
        // The same version, and no feature the doctests are built without.
        let version = |spec: &str| spec.split('"').nth(1).map(str::to_string);
        assert_eq!(version(spec), version(ours), "{name}");
        if let Some(features) = spec.split("features = [").nth(1) {
            for feature in features.split('"').skip(1).step_by(2) {
                assert!(
                    ours.contains(&format!("\"{feature}\"")),
                    "{name}: {feature}"
                );
            }
        }
        names.push(name);
    }
    assert_eq!(names, ["async-nats", "tokio", "futures"]);
}

// ----- commands -----------------------------------------------------------------

/// How a README command is checked.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// `cargo run --release -p <runtime> -- <flags>`: the runtime's binary is
    /// started with the same flags (a free port for 4222) by the suite of that runtime.
    Server,
    /// The curl request, sent to a server started with `-m -1`.
    Monitor,
    /// A command CI runs (`.ci/run` holds it): a test cannot run the test command.
    Ci(&'static [&'static str]),
    /// The fuzzing commands: they need nightly and minutes; the target and seed
    /// directory they name must exist.
    Fuzz,
    /// A benchmark script: without the harness it must stop and say so.
    WithoutHarness,
    /// Needs the benchmark harness outside the repository (and minutes).
    NeedsHarness,
    /// The session of a `console` block, replayed over TCP.
    Session,
    /// A permission audit command, run on the configurations the README
    /// saves under the names it uses; its output must be the `text` block
    /// after it.
    Audit,
}

/// Every command of the README (`sh` lines, `console` `$` lines) and its check.
const COMMANDS: &[(&str, Check)] = &[
    ("cargo run --release -p tenet-mio -- -p 4222", Check::Server),
    ("cargo test --workspace", Check::Ci(&["cargo test --workspace"])),
    ("nc -C 127.0.0.1 4222", Check::Session),
    ("tenet-mio -t -c shared-inbox.conf", Check::Audit),
    (
        "tenet-mio --who sub _INBOX.abc --account '$G' -c shared-inbox.conf",
        Check::Audit,
    ),
    ("tenet-mio -t --strict -c private-inbox.conf", Check::Audit),
    (
        "tenet-mio --explain pam sub '_INBOX_joe.>' -c private-inbox.conf",
        Check::Audit,
    ),
    (
        "tenet-mio --explain Tom pub '$JS.API.CONSUMER.MSG.NEXT.student.tom' -c multi-tenant.conf",
        Check::Audit,
    ),
    ("cargo run --release -p tenet-async-std -- -p 4222", Check::Server),
    (
        "curl -s 'http://127.0.0.1:8222/connz?auth=1&subs=1&sort=msgs_from&limit=10'",
        Check::Monitor,
    ),
    (
        "TENET_TEST_BINARY=/usr/sbin/nats-server cargo test -p tenet-tests",
        Check::Ci(&["TENET_TEST_BINARY=", "cargo test -p tenet-tests"]),
    ),
    (
        "cargo install --locked cargo-fuzz",
        Check::Ci(&["cargo install --locked cargo-fuzz"]),
    ),
    ("mkdir -p /tmp/fuzz-parser", Check::Fuzz),
    (
        "cd fuzz && cargo +nightly fuzz run parser /tmp/fuzz-parser corpus/parser -- -max_total_time=600",
        Check::Fuzz,
    ),
    ("bash ../shared/bench/build_tools.sh", Check::NeedsHarness),
    ("tests/bench/compare.sh --runs 5", Check::WithoutHarness),
    (
        "cargo build --release -p tenet-mio -p tenet-async-std",
        Check::NeedsHarness,
    ),
    (
        "../shared/bench/bench.sh --start-cmd \"$PWD/target/release/tenet-mio -a 127.0.0.1 -p 14222\" --label tenet-mio",
        Check::NeedsHarness,
    ),
    (
        "../shared/bench/bench.sh --start-cmd \"$PWD/target/release/tenet-async-std -a 127.0.0.1 -p 14222\" --label tenet-async-std",
        Check::NeedsHarness,
    ),
];

/// Every command in the README's `sh` blocks (comments dropped) and `console`
/// blocks (the `$` lines), in order.
fn readme_commands() -> Vec<String> {
    let mut commands = Vec::new();
    for block in blocks() {
        for line in block.text.lines() {
            let command = match block.tag.as_str() {
                "sh" => match line.find(" #") {
                    Some(i) => &line[..i],
                    None if line.starts_with('#') => "",
                    None => line,
                },
                "console" => line.strip_prefix("$ ").unwrap_or(""),
                _ => "",
            };
            if !command.trim().is_empty() {
                commands.push(command.trim().to_string());
            }
        }
    }
    commands
}

/// The check of a README command.
fn check_of(command: &str) -> Check {
    COMMANDS
        .iter()
        .find(|(c, _)| *c == command)
        .unwrap_or_else(|| panic!("README command `{command}` is not in COMMANDS"))
        .1
}

#[test]
fn every_command_is_run_here_or_said_why_not() {
    let commands = readme_commands();
    let listed: Vec<String> = COMMANDS.iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(
        commands, listed,
        "the README's commands and this suite's COMMANDS differ: a new command needs \
         a check (or a reason it cannot be run, written next to it in the README)"
    );
}

/// The flags of the README's `cargo run -p <runtime> -- <flags>` for the
/// runtime this suite runs.
fn readme_flags_for_this_runtime() -> Vec<String> {
    let prefix = format!("cargo run --release -p {} -- ", runtime_binary_name());
    let command = COMMANDS
        .iter()
        .filter(|(_, check)| matches!(check, Check::Server))
        .find_map(|(c, _)| c.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}...` command in the README"));
    command.split_whitespace().map(str::to_string).collect()
}

/// A start-up log line with its pid, time and server id replaced, and `port` as 4222.
fn normalised_log_line(line: &str, port: u16) -> String {
    let (pid, rest) = line.split_once("] ").unwrap_or(("", line));
    let pid_ok = pid
        .strip_prefix('[')
        .is_some_and(|p| p.parse::<u32>().is_ok());
    // `2026/11/23 14:41:18.088326 `
    let time_ok = rest.len() > 27
        && rest.as_bytes()[4] == b'/'
        && rest.as_bytes()[10] == b' '
        && rest.as_bytes()[19] == b'.'
        && rest.as_bytes()[26] == b' ';
    assert!(
        pid_ok && time_ok,
        "not a log line with pid and time: {line:?}"
    );
    let text: Vec<String> = rest[27..]
        .split(' ')
        .map(|word| {
            let id = word.len() == 56
                && word.starts_with('N')
                && word
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if id {
                "<server id>".to_string()
            } else {
                word.replace(&format!(":{port}"), ":4222")
            }
        })
        .collect();
    format!("[<pid>] <time> {}", text.join(" "))
}

#[test]
fn the_run_command_starts_the_server_and_it_logs_the_quick_start_sample() {
    let flags = readme_flags_for_this_runtime();
    assert_eq!(flags, ["-p", "4222"], "the README's flags");
    // The same flags; the port is one the kernel picks, not 4222.
    let flags: Vec<&str> = flags
        .iter()
        .map(|f| if f == "4222" { "-1" } else { f.as_str() })
        .collect();
    let mut server = TestServer::start_with_exact_args(&flags);
    assert!(
        server.wait_for_log("Server is ready", TIMEOUT),
        "{}",
        server.logs()
    );
    server.client().handshake();
    if skip_on_reference("nats-server logs its own start-up lines") {
        return;
    }
    let sample = block_after("The server logs like nats-server:", "text");
    let want: Vec<String> = sample
        .text
        .lines()
        .map(|l| normalised_log_line(l, 4222))
        .collect();
    let logs = server.logs();
    let got: Vec<String> = logs
        .lines()
        .take_while(|l| !l.contains("Server is ready"))
        .chain(
            logs.lines()
                .filter(|l| l.contains("Server is ready"))
                .take(1),
        )
        .map(|l| normalised_log_line(l, server.port()))
        .collect();
    assert_eq!(
        got, want,
        "the start-up log differs from the README's sample"
    );
}

/// `pattern` matches `text`, where `...` in `pattern` stands for anything.
fn matches_with_ellipses(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A line of a `console` session.
#[derive(Debug)]
enum SessionLine {
    /// What the user types (sent with `\r\n`, as `nc -C` does).
    Typed(String),
    /// What the server answers.
    Shown(String),
}

/// The README's `nc` session: its command and its lines.
fn nc_session() -> (String, Vec<SessionLine>) {
    let block = block_after("or by hand, since the protocol is text", "console");
    let mut lines = block.text.lines();
    let command = lines
        .next()
        .and_then(|l| l.strip_prefix("$ "))
        .expect("the session starts with `$ command`")
        .to_string();
    let mut session = Vec::new();
    // The payload line after a PUB is typed, after a MSG shown.
    let mut payload_of: Option<bool> = None;
    for line in lines {
        let shown = match payload_of.take() {
            Some(shown) => shown,
            None => {
                let op = line.split(' ').next().unwrap_or("");
                let shown = ["INFO", "+OK", "-ERR", "MSG", "PONG"].contains(&op);
                if op == "PUB" || op == "MSG" {
                    payload_of = Some(shown);
                }
                shown
            }
        };
        session.push(if shown {
            SessionLine::Shown(line.trim_end().to_string())
        } else {
            SessionLine::Typed(line.to_string())
        });
    }
    (command, session)
}

#[test]
fn the_nc_session_gets_the_answers_shown() {
    let (command, session) = nc_session();
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words, ["nc", "-C", "127.0.0.1", "4222"], "{command}");
    let server = TestServer::start();
    let mut nc = RawClient::connect_tcp(server.port());
    for line in &session {
        match line {
            SessionLine::Typed(text) => nc.send(format!("{text}\r\n")),
            SessionLine::Shown(text) if text.starts_with("INFO ") => {
                let info = nc.read_line();
                let info = String::from_utf8_lossy(&info);
                assert!(
                    matches_with_ellipses(text, info.trim_end()),
                    "the INFO line {info:?} does not match the README's {text:?}"
                );
            }
            SessionLine::Shown(text) => nc.expect(format!("{text}\r\n")),
        }
    }
    nc.ping();

    // Without -C, the payload line ends in a bare \n: the error the README names.
    let error = claimed(
        "the `hello` line gets `-ERR 'Unknown Protocol Operation'` and the connection is closed",
    );
    let error = error.split('`').nth(3).expect("the quoted error");
    let mut plain = server.client();
    for line in &session {
        if let SessionLine::Typed(text) = line {
            plain.send(format!("{text}\n"));
        }
    }
    let rest = plain.read_until_closed();
    assert!(
        rest.ends_with(format!("{error}\r\n").as_bytes()),
        "{}",
        show(&rest)
    );
}

/// `GET target` on the monitoring port; the status and the body.
fn http_get(port: u16, target: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the monitor");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("the answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let status = head.lines().next().unwrap_or("").to_string();
    (status, body.to_string())
}

#[test]
fn the_curl_request_lists_the_connections() {
    let command = COMMANDS
        .iter()
        .find(|(_, check)| matches!(check, Check::Monitor))
        .expect("the curl command")
        .0;
    let url = command.split('\'').nth(1).expect("a quoted URL");
    let target = url
        .strip_prefix("http://127.0.0.1:8222")
        .expect("the README's monitoring address");
    claimed("`-m 8222` (or `http_port: 8222`, `http: \"127.0.0.1:8222\"` in the file)");
    let mut server = TestServer::start_with_args(&["-m", "-1"]);
    assert!(
        server.wait_for_log("Starting http monitor on ", TIMEOUT),
        "{}",
        server.logs()
    );
    let logs = server.logs();
    let port: u16 = logs
        .split("Starting http monitor on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("the monitoring port");
    let mut client = server.client();
    client.handshake();
    subscribe(&mut client, "foo", 1);
    let (status, body) = http_get(port, target);
    assert!(status.contains(" 200 "), "{status}: {body}");
    let connz: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(connz["num_connections"], 1, "{body}");
    assert_eq!(connz["limit"], 10, "{body}");
    assert_eq!(
        connz["connections"][0]["subscriptions_list"],
        serde_json::json!(["foo"]),
        "{body}"
    );
}

#[test]
fn the_test_commands_are_what_ci_runs() {
    let ci = std::fs::read_to_string(repository().join(".ci/run")).expect(".ci/run");
    for (command, check) in COMMANDS {
        if let Check::Ci(parts) = check {
            assert!(
                ci.lines().any(|l| parts.iter().all(|p| l.contains(p))),
                "`{command}`: .ci/run has no line with {parts:?}"
            );
        }
    }
}

#[test]
fn the_fuzz_command_names_a_target_and_its_seeds() {
    let fuzz = repository().join("fuzz");
    let command = COMMANDS
        .iter()
        .find_map(|(c, _)| c.strip_prefix("cd fuzz && cargo +nightly fuzz run "))
        .expect("the fuzz command");
    let args: Vec<&str> = command.split_whitespace().collect();
    let (target, scratch, seeds) = (args[0], args[1], args[2]);
    assert!(
        fuzz.join("fuzz_targets")
            .join(format!("{target}.rs"))
            .exists(),
        "no fuzz target {target}"
    );
    assert!(fuzz.join(seeds).is_dir(), "no seed directory {seeds}");
    // libFuzzer needs the scratch corpus to exist: the command before makes it.
    assert!(
        COMMANDS
            .iter()
            .any(|(c, _)| *c == format!("mkdir -p {scratch}")),
        "nothing creates {scratch}"
    );
    assert!(matches!(
        check_of(&format!("mkdir -p {scratch}")),
        Check::Fuzz
    ));
}

#[test]
fn a_benchmark_script_without_its_harness_says_so() {
    for (command, check) in COMMANDS {
        if !matches!(check, Check::WithoutHarness) {
            continue;
        }
        let missing = std::env::temp_dir().join(format!("tenet-no-harness-{}", std::process::id()));
        let mut words = command.split_whitespace();
        let out = Command::new("bash")
            .arg(words.next().expect("a script"))
            .args(words)
            .current_dir(repository())
            .env("TENET_SHARED", &missing)
            .output()
            .expect("run bash");
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "`{command}`: {text}");
        assert!(
            text.contains("needs the benchmark harness, which is not in this repository"),
            "`{command}`: {text}"
        );
    }
}

/// Splits a README command into words: spaces separate them, single quotes
/// keep what they enclose (all the audit commands need).
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut word, mut quoted, mut any) = (String::new(), false, false);
    for c in command.chars() {
        match c {
            '\'' => (quoted, any) = (!quoted, true),
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

#[test]
fn the_audit_commands_print_what_the_readme_shows() {
    if skip_on_reference("nats-server has no permission audit") {
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "tenet-readme-audit-{}-{}",
        runtime_binary_name(),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, phrase) in [
        (
            "shared-inbox.conf",
            "Without a `publish` list the service may",
        ),
        (
            "private-inbox.conf",
            "Give each user an inbox prefix of their own",
        ),
        ("multi-tenant.conf", "The setup tenet was built for"),
    ] {
        std::fs::write(dir.join(name), block_after(phrase, "conf").text).unwrap();
    }
    let section = README.find("## Auditing permissions").expect("the section");
    let end = section
        + README[section..]
            .find("\n## TLS")
            .expect("the next section");
    let blocks = blocks();
    let mut checked = 0;
    for (i, block) in blocks.iter().enumerate() {
        if block.tag != "sh" || block.offset < section || block.offset > end {
            continue;
        }
        let mut output = String::new();
        for command in block.text.lines() {
            assert!(matches!(check_of(command), Check::Audit), "{command}");
            let words = shell_words(command);
            assert_eq!(words[0], "tenet-mio", "{command}");
            let out = Command::new(server_binary())
                .args(&words[1..])
                .current_dir(&dir)
                .output()
                .expect("run the binary");
            // Warnings (stderr) come before the verdict line (stdout).
            output.push_str(&String::from_utf8_lossy(&out.stderr));
            output.push_str(&String::from_utf8_lossy(&out.stdout));
            checked += 1;
        }
        let shown = blocks[i + 1..]
            .iter()
            .find(|b| b.tag == "text")
            .expect("a text block after the commands");
        let output = output.replace(runtime_binary_name(), "tenet-mio");
        assert_eq!(
            output, shown.text,
            "README line {}: the output differs",
            block.line
        );
    }
    assert_eq!(checked, 5, "the audit commands the README shows");
    std::fs::remove_dir_all(&dir).ok();
}
