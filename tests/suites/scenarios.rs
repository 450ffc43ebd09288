//! Authorization as users run it, through a real client (async-nats): the
//! complete example of the nats-server docs (variables, default permissions), private
//! inboxes with custom inbox prefixes, `allow_responses` with limits, and the
//! JetStream API subjects as publish permissions. Permission errors reach
//! async-nats as `Event::ServerError`; the connection stays usable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::{
    Client, ConnectOptions, Event, Message, Request, RequestErrorKind, ServerError, Subscriber,
};
use futures::{FutureExt, StreamExt};
use tenet_tests::TestServer;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

/// A connected user and the server errors its connection has received.
struct User {
    client: Client,
    errors: mpsc::UnboundedReceiver<String>,
}

async fn login(server: &TestServer, user: &str, pass: &str) -> User {
    login_with(server, user, pass, ConnectOptions::new()).await
}

async fn login_with(server: &TestServer, user: &str, pass: &str, opts: ConnectOptions) -> User {
    let (tx, errors) = mpsc::unbounded_channel();
    let opts = opts
        .user_and_password(user.into(), pass.into())
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let Event::ServerError(err) = event {
                    let text = match err {
                        ServerError::Other(text) => text,
                        other => other.to_string(),
                    };
                    let _ = tx.send(text);
                }
            }
        });
    let client = tokio::time::timeout(WAIT, opts.connect(server.url()))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"));
    User { client, errors }
}

impl User {
    /// A round trip through the server that works whatever the user may do: a
    /// publish that is always refused (its subject if the user may not publish
    /// there, else its reserved `_R_.` reply). When its error arrives, the server
    /// has processed everything this user sent before, and every message it queued
    /// for this user earlier is in the subscriptions' channels. Returns the server
    /// errors that arrived before it.
    async fn barrier(&mut self) -> Vec<String> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let subject = format!("barrier.{n}");
        let reply = format!("_R_.barrier.{n}");
        self.client
            .publish_with_reply(subject.clone(), reply.clone(), "".into())
            .await
            .unwrap();
        self.client.flush().await.unwrap();
        let markers = [
            format!("Permissions Violation for Publish to \"{subject}\""),
            format!("Permissions Violation for Publish with Reply of \"{reply}\""),
        ];
        let mut before = Vec::new();
        loop {
            let err = tokio::time::timeout(WAIT, self.errors.recv())
                .await
                .unwrap_or_else(|_| panic!("barrier: no error within {WAIT:?}; before: {before:?}"))
                .expect("the event channel closed");
            if markers.contains(&err) {
                return before;
            }
            before.push(err);
        }
    }

    /// A barrier that expects no server error since the last one.
    async fn no_errors(&mut self) {
        assert_eq!(self.barrier().await, Vec::<String>::new());
    }

    async fn publish(&self, subject: &str, payload: &str) {
        self.client
            .publish(subject.to_string(), payload.to_string().into())
            .await
            .unwrap();
    }

    async fn subscribe(&self, subject: &str) -> Subscriber {
        self.client.subscribe(subject.to_string()).await.unwrap()
    }

    async fn request(&self, subject: &str, payload: &str) -> Message {
        tokio::time::timeout(
            WAIT,
            self.client
                .request(subject.to_string(), payload.to_string().into()),
        )
        .await
        .expect("request timed out")
        .expect("request")
    }
}

fn pub_err(subject: &str) -> String {
    format!("Permissions Violation for Publish to \"{subject}\"")
}

fn sub_err(subject: &str) -> String {
    format!("Permissions Violation for Subscription to \"{subject}\"")
}

/// The next message, failing after a timeout or if the subscription ended.
async fn next(sub: &mut Subscriber) -> Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no message within the timeout")
        .expect("subscription ended")
}

/// Messages already in the subscription's channel (see [`User::barrier`]).
fn drain(sub: &mut Subscriber) -> Vec<Message> {
    let mut got = Vec::new();
    while let Some(Some(msg)) = tokio::task::unconstrained(sub.next()).now_or_never() {
        got.push(msg);
    }
    got
}

/// `subject payload` of each message already in the channel.
fn drained(sub: &mut Subscriber) -> Vec<String> {
    drain(sub)
        .into_iter()
        .map(|m| format!("{} {}", m.subject, String::from_utf8_lossy(&m.payload)))
        .collect()
}

/// Answers every request on `subject` with `<prefix><payload>` until the client goes.
async fn serve(user: &User, subject: &str, prefix: &'static str) {
    let mut requests = user.subscribe(subject).await;
    let client = user.client.clone();
    tokio::spawn(async move {
        while let Some(req) = requests.next().await {
            let Some(reply) = req.reply else { continue };
            let mut answer = prefix.as_bytes().to_vec();
            answer.extend_from_slice(&req.payload);
            if client.publish(reply, answer.into()).await.is_err() {
                break;
            }
        }
    });
}

// ----- 1. The complete example -------------------------------------------------

const EXAMPLE: &str = "authorization {
  ADMIN = { publish = \">\", subscribe = \">\" }
  REQUESTOR = { publish = [\"req.foo\", \"req.bar\"], subscribe = \"_INBOX.>\" }
  DEFAULT_PERMISSIONS = { publish = \"SANDBOX.*\", subscribe = [\"PUBLIC.>\", \"_INBOX.>\"] }
  PASS: abcdefghijklmnopqrstuvwxwz0123456789
  users = [
    {user: alice, password: foo, permissions: $ADMIN}
    {user: bob, password: bar, permissions: $REQUESTOR}
    {user: joe, password: $PASS}
  ]
}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_alice_may_do_anything() {
    let server = TestServer::with_config(EXAMPLE, &[]);
    let mut alice = login(&server, "alice", "foo").await;
    let mut all = alice.subscribe(">").await;
    alice.no_errors().await;
    for subject in [
        "req.foo",
        "SANDBOX.a",
        "PUBLIC.news",
        "private.deep.subject",
        "_INBOX.x",
    ] {
        alice.publish(subject, "hi").await;
    }
    alice.no_errors().await;
    assert_eq!(
        drained(&mut all),
        [
            "req.foo hi",
            "SANDBOX.a hi",
            "PUBLIC.news hi",
            "private.deep.subject hi",
            "_INBOX.x hi"
        ]
    );
    drop(all);
    serve(&alice, "svc.echo", "echo:").await;
    alice.no_errors().await;
    assert_eq!(&alice.request("svc.echo", "x").await.payload[..], b"echo:x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_bob_is_a_requestor() {
    let server = TestServer::with_config(EXAMPLE, &[]);
    let mut alice = login(&server, "alice", "foo").await;
    let mut watched = alice.subscribe("req.*").await;
    let mut sandbox = alice.subscribe("SANDBOX.>").await;
    alice.no_errors().await;

    let mut bob = login(&server, "bob", "bar").await;
    let mut public = bob.subscribe("PUBLIC.>").await;
    bob.publish("req.foo", "1").await;
    bob.publish("req.baz", "2").await;
    bob.publish("SANDBOX.x", "3").await;
    bob.publish("req.bar", "4").await;
    bob.publish("PUBLIC.x", "5").await;
    assert_eq!(
        bob.barrier().await,
        [
            sub_err("PUBLIC.>"),
            pub_err("req.baz"),
            pub_err("SANDBOX.x"),
            pub_err("PUBLIC.x")
        ]
    );
    alice.publish("PUBLIC.news", "for everyone").await;
    alice.no_errors().await;
    assert_eq!(drained(&mut watched), ["req.foo 1", "req.bar 4"]);
    assert!(drained(&mut sandbox).is_empty());
    // The refused subscription never delivers.
    bob.no_errors().await;
    assert!(drained(&mut public).is_empty());

    // Requests work: bob may subscribe to _INBOX.> for the replies.
    serve(&alice, "req.foo", "done:").await;
    alice.no_errors().await;
    assert_eq!(
        &bob.request("req.foo", "job").await.payload[..],
        b"done:job"
    );
    // And the connection is still usable after all the errors.
    bob.publish("req.bar", "6").await;
    bob.no_errors().await;
    alice.no_errors().await;
    assert_eq!(drained(&mut watched), ["req.foo job", "req.bar 6"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_joe_gets_the_default_permissions() {
    let server = TestServer::with_config(EXAMPLE, &[]);
    let mut alice = login(&server, "alice", "foo").await;
    let mut sandbox = alice.subscribe("SANDBOX.>").await;
    let mut req = alice.subscribe("req.>").await;
    alice.no_errors().await;

    let mut joe = login(&server, "joe", "abcdefghijklmnopqrstuvwxwz0123456789").await;
    let mut public = joe.subscribe("PUBLIC.>").await;
    let mut own = joe.subscribe("SANDBOX.>").await;
    joe.publish("SANDBOX.a", "1").await;
    joe.publish("SANDBOX.a.b", "2").await;
    joe.publish("req.foo", "3").await;
    joe.publish("PUBLIC.x", "4").await;
    assert_eq!(
        joe.barrier().await,
        [
            sub_err("SANDBOX.>"),
            pub_err("SANDBOX.a.b"),
            pub_err("req.foo"),
            pub_err("PUBLIC.x")
        ]
    );
    alice.publish("PUBLIC.news", "hello").await;
    alice.publish("SANDBOX.b", "hidden").await;
    alice.no_errors().await;
    assert_eq!(drained(&mut sandbox), ["SANDBOX.a 1", "SANDBOX.b hidden"]);
    assert!(drained(&mut req).is_empty());
    joe.no_errors().await;
    assert_eq!(drained(&mut public), ["PUBLIC.news hello"]);
    assert!(drained(&mut own).is_empty());

    // Requests into the sandbox get their replies on _INBOX.>.
    serve(&alice, "SANDBOX.echo", "echo:").await;
    alice.no_errors().await;
    assert_eq!(
        &joe.request("SANDBOX.echo", "x").await.payload[..],
        b"echo:x"
    );
    joe.no_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_wrong_passwords_are_refused() {
    let server = TestServer::with_config(EXAMPLE, &[]);
    for (user, pass) in [
        ("alice", "bar"),
        ("joe", "$PASS"),
        ("joe", "PASS"),
        ("nobody", "foo"),
    ] {
        let opts = ConnectOptions::with_user_and_password(user.into(), pass.into());
        let result = tokio::time::timeout(WAIT, opts.connect(server.url()))
            .await
            .expect("connect timed out");
        match result {
            Ok(_) => panic!("{user}/{pass} was accepted"),
            Err(e) => assert_eq!(
                e.kind(),
                async_nats::ConnectErrorKind::AuthorizationViolation,
                "{user}/{pass}: {e}"
            ),
        }
    }
}

// ----- 2. Private inboxes -------------------------------------------------------

/// The greeter, and joe and pam who may call services and subscribe to `joe_inbox`
/// and `pam_inbox`.
fn greeting_server(joe_inbox: &str, pam_inbox: &str) -> TestServer {
    TestServer::with_config(
        &format!(
            "authorization {{ users = [
  {{user: greeter, password: g, permissions: {{subscribe: \"services.greet\", allow_responses: true}}}}
  {{user: joe, password: j, permissions: {{publish: \"services.*\", subscribe: \"{joe_inbox}\"}}}}
  {{user: pam, password: p, permissions: {{publish: \"services.*\", subscribe: \"{pam_inbox}\"}}}}
] }}
"
        ),
        &[],
    )
}

async fn start_greeter(server: &TestServer) -> User {
    let mut greeter = login(server, "greeter", "g").await;
    serve(&greeter, "services.greet", "hello, ").await;
    greeter.no_errors().await;
    greeter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_inbox_lets_pam_read_joes_replies() {
    let server = greeting_server("_INBOX.>", "_INBOX.>");
    let mut greeter = start_greeter(&server).await;
    let mut pam = login(&server, "pam", "p").await;
    let mut spy = pam.subscribe("_INBOX.>").await;
    pam.no_errors().await;

    let mut joe = login(&server, "joe", "j").await;
    let reply = joe.request("services.greet", "joe").await;
    assert_eq!(&reply.payload[..], b"hello, joe");
    joe.no_errors().await;
    greeter.no_errors().await;

    pam.no_errors().await;
    let seen = drain(&mut spy);
    assert_eq!(seen.len(), 1, "pam sees joe's reply");
    assert_eq!(seen[0].subject, reply.subject);
    assert_eq!(&seen[0].payload[..], b"hello, joe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_inbox_prefixes_keep_replies_private() {
    let server = greeting_server("_INBOX_joe.>", "_INBOX_pam.>");
    let mut greeter = start_greeter(&server).await;
    let mut pam = login_with(
        &server,
        "pam",
        "p",
        ConnectOptions::new().custom_inbox_prefix("_INBOX_pam"),
    )
    .await;
    let mut spy_all = pam.subscribe("_INBOX.>").await;
    let mut spy_joe = pam.subscribe("_INBOX_joe.>").await;
    assert_eq!(
        pam.barrier().await,
        [sub_err("_INBOX.>"), sub_err("_INBOX_joe.>")]
    );

    let mut joe = login_with(
        &server,
        "joe",
        "j",
        ConnectOptions::new().custom_inbox_prefix("_INBOX_joe"),
    )
    .await;
    let reply = joe.request("services.greet", "joe").await;
    assert_eq!(&reply.payload[..], b"hello, joe");
    assert!(
        reply.subject.starts_with("_INBOX_joe."),
        "{}",
        reply.subject
    );
    let reply = pam.request("services.greet", "pam").await;
    assert_eq!(&reply.payload[..], b"hello, pam");
    assert!(
        reply.subject.starts_with("_INBOX_pam."),
        "{}",
        reply.subject
    );
    joe.no_errors().await;
    greeter.no_errors().await;

    pam.no_errors().await;
    assert!(drain(&mut spy_all).is_empty());
    assert!(drain(&mut spy_joe).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_inbox_without_the_custom_prefix_fails_the_request() {
    let server = greeting_server("_INBOX_joe.>", "_INBOX_pam.>");
    let _greeter = start_greeter(&server).await;
    let mut joe = login(&server, "joe", "j").await;
    let request = Request::new()
        .payload("joe".into())
        .timeout(Some(Duration::from_millis(300)));
    let err = joe
        .client
        .send_request("services.greet", request)
        .await
        .expect_err("no reply can reach the default inbox");
    assert_eq!(err.kind(), RequestErrorKind::TimedOut);
    // The response subscription (`_INBOX.<id>.*`) was refused.
    let errors = joe.barrier().await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("Permissions Violation for Subscription to \"_INBOX.")
            && errors[0].ends_with(".*\""),
        "{errors:?}"
    );
}

// ----- 3. allow_responses with limits -----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_limited_to_two_replies_within_500ms() {
    let server = TestServer::with_config(
        "authorization { users = [
  {user: svc, password: s, permissions: {subscribe: \"svc.>\", allow_responses: {max: 2, expires: \"500ms\"}}}
  {user: app, password: a}
] }
",
        &[],
    );
    let mut svc = login(&server, "svc", "s").await;
    let mut requests = svc.subscribe("svc.echo").await;
    svc.no_errors().await;
    let mut app = login(&server, "app", "a").await;
    let inbox = app.client.new_inbox();
    let mut replies = app.subscribe(&inbox).await;
    app.no_errors().await;

    let asker = app.client.clone();
    let ask_inbox = inbox.clone();
    let ask = move |payload: &'static str| {
        let client = asker.clone();
        let inbox = ask_inbox.clone();
        async move {
            client
                .publish_with_reply("svc.echo", inbox, payload.into())
                .await
                .unwrap();
        }
    };

    // The responder answers three times: two get through.
    ask("q1").await;
    let req = next(&mut requests).await;
    let reply_to = req.reply.clone().expect("a reply subject");
    assert_eq!(reply_to.as_str(), inbox);
    for answer in ["a1", "a2", "a3"] {
        svc.publish(&reply_to, answer).await;
    }
    assert_eq!(svc.barrier().await, [pub_err(&inbox)]);
    app.no_errors().await;
    let got: Vec<String> = drain(&mut replies)
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    assert_eq!(got, ["a1", "a2"]);

    // A reply 600 ms after the request is refused.
    ask("q2").await;
    next(&mut requests).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    svc.publish(&reply_to, "late").await;
    assert_eq!(svc.barrier().await, [pub_err(&inbox)]);
    app.no_errors().await;
    assert!(drain(&mut replies).is_empty());

    // A new request re-arms the reply subject.
    ask("q3").await;
    next(&mut requests).await;
    svc.publish(&reply_to, "again").await;
    svc.no_errors().await;
    app.no_errors().await;
    let got: Vec<Message> = drain(&mut replies);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].payload[..], b"again");
}

// ----- 4. JetStream API subjects as publish permissions ------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_subjects_in_publish_permissions() {
    let server = TestServer::with_config(
        "authorization { users = [
  {user: student, password: s, permissions: {publish: {allow: [
    \"$JS.API.INFO\", \"$JS.API.STREAM.*.student\",
    \"$JS.API.CONSUMER.DURABLE.CREATE.student.*\", \"$JS.ACK.student.>\"
  ]}}}
  {user: teacher, password: t}
] }
",
        &[],
    );
    let mut teacher = login(&server, "teacher", "t").await;
    let mut watched = teacher.subscribe("$JS.>").await;
    teacher.no_errors().await;

    let allowed = [
        "$JS.API.INFO",
        "$JS.API.STREAM.CREATE.student",
        "$JS.API.STREAM.INFO.student",
        "$JS.API.CONSUMER.DURABLE.CREATE.student.worker",
        "$JS.ACK.student.worker.1.2.3.4.5",
    ];
    let denied = [
        "$JS.API.STREAM.CREATE.teacher",
        "$JS.ACK.teacher.x",
        "$JS.API.STREAM.CREATE.student.extra",
        "$JS.API.CONSUMER.DURABLE.CREATE.teacher.worker",
        "$JS.API.STREAM.LIST",
        "$JS.API.INFO.x",
    ];
    let mut student = login(&server, "student", "s").await;
    for (a, d) in allowed.iter().zip(denied.iter()) {
        student.publish(a, "ok").await;
        student.publish(d, "no").await;
    }
    student.publish(denied[5], "no").await;
    let want: Vec<String> = denied.iter().map(|s| pub_err(s)).collect();
    assert_eq!(student.barrier().await, want);
    teacher.no_errors().await;
    let want: Vec<String> = allowed.iter().map(|s| format!("{s} ok")).collect();
    assert_eq!(drained(&mut watched), want);
}
