//! The key-value and object stores of the official clients, unchanged, on
//! tenet's JetStream: async-nats's `kv` and `object_store`, nats-py's
//! `key_value` and `object_store`, and each account's buckets its own.

use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use tenet_tests::{skip_on_reference, TestServer};

const WAIT: Duration = Duration::from_secs(5);

fn store_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tenet-kv-{name}-{}", std::process::id()))
}

fn server(name: &str) -> (TestServer, std::path::PathBuf) {
    let dir = store_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    let server = TestServer::start_with_args(&["-js", "-sd", dir.to_str().expect("utf-8")]);
    (server, dir)
}

async fn js(server: &TestServer) -> jetstream::Context {
    let client = tokio::time::timeout(WAIT, async_nats::connect(server.url()))
        .await
        .expect("connect in time")
        .expect("connects");
    jetstream::new(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_nats_bucket_puts_gets_updates_deletes_and_watches() {
    if skip_on_reference("async-nats 0.51 cannot read nats-server 2.9.10's account info") {
        return;
    }
    let (server, dir) = server("async");
    let js = js(&server).await;
    let kv = js
        .create_key_value(kv::Config {
            bucket: "cfg".into(),
            history: 2,
            max_value_size: 64,
            ..Default::default()
        })
        .await
        .expect("bucket created");
    assert_eq!(kv.put("a", "1".into()).await.unwrap(), 1);
    assert_eq!(kv.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
    let refused = kv.create("a", "2".into()).await;
    assert!(refused.is_err(), "create of an existing key fails");
    assert_eq!(kv.update("a", "3".into(), 1).await.unwrap(), 2);
    let stale = kv.update("a", "4".into(), 1).await.unwrap_err();
    assert!(stale.to_string().contains("wrong last"), "{stale}");
    let entry = kv.entry("a").await.unwrap().expect("an entry");
    assert_eq!((entry.revision, &entry.value[..]), (2, &b"3"[..]));
    assert!(
        kv.put("big", vec![b'x'; 128].into()).await.is_err(),
        "a value over max_value_size is refused"
    );
    kv.delete("a").await.unwrap();
    assert_eq!(kv.get("a").await.unwrap(), None, "deleted");
    // History keeps the last two revisions of a key (the delete marker included).
    let history: Vec<_> = kv.history("a").await.unwrap().collect().await;
    assert_eq!(history.len(), 2, "{history:?}");
    kv.put("b", "x".into()).await.unwrap();
    kv.put("c", "y".into()).await.unwrap();
    let mut keys: Vec<String> = kv
        .keys()
        .await
        .unwrap()
        .filter_map(|k| async { k.ok() })
        .collect()
        .await;
    keys.sort();
    assert_eq!(keys, ["b", "c"]);
    kv.purge("b").await.unwrap();
    assert_eq!(kv.get("b").await.unwrap(), None, "purged");
    // Watching one key and every key: updates as they happen.
    let mut one = kv.watch("c").await.unwrap();
    let mut all = kv.watch_all().await.unwrap();
    kv.put("c", "z".into()).await.unwrap();
    let seen = tokio::time::timeout(WAIT, one.next())
        .await
        .expect("the watcher saw it")
        .unwrap()
        .unwrap();
    assert_eq!((seen.key.as_str(), &seen.value[..]), ("c", &b"z"[..]));
    kv.put("d", "w".into()).await.unwrap();
    let mut keys_seen = Vec::new();
    while keys_seen.last().map(String::as_str) != Some("d") {
        let entry = tokio::time::timeout(WAIT, all.next())
            .await
            .expect("the watcher of every key saw d")
            .unwrap()
            .unwrap();
        keys_seen.push(entry.key);
    }
    assert!(keys_seen.contains(&"c".to_string()), "{keys_seen:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_expire_after_the_buckets_ttl() {
    if skip_on_reference("async-nats 0.51 cannot read nats-server 2.9.10's account info") {
        return;
    }
    let (server, dir) = server("ttl");
    let js = js(&server).await;
    let kv = js
        .create_key_value(kv::Config {
            bucket: "sessions".into(),
            max_age: Duration::from_millis(500),
            ..Default::default()
        })
        .await
        .expect("bucket created");
    kv.put("s1", "token".into()).await.unwrap();
    assert!(kv.get("s1").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(kv.get("s1").await.unwrap(), None, "expired");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_nats_object_store_keeps_a_multi_megabyte_object_in_chunks() {
    if skip_on_reference("async-nats 0.51 cannot read nats-server 2.9.10's account info") {
        return;
    }
    let (server, dir) = server("obj");
    let js = js(&server).await;
    let store = js
        .create_object_store(object_store::Config {
            bucket: "files".into(),
            ..Default::default()
        })
        .await
        .expect("object store created");
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let info = store.put("big.bin", &mut data.as_slice()).await.unwrap();
    assert_eq!(info.size, data.len());
    assert!(info.chunks > 1, "stored in chunks: {}", info.chunks);
    let mut object = store.get("big.bin").await.unwrap();
    let mut back = Vec::new();
    object.read_to_end(&mut back).await.unwrap();
    assert!(back == data, "the object read back is the object put");
    let listed: Vec<_> = store.list().await.unwrap().collect().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(store.info("big.bin").await.unwrap().size, data.len());
    store.delete("big.bin").await.unwrap();
    assert!(store.get("big.bin").await.is_err(), "deleted");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_accounts_buckets_are_its_own() {
    if skip_on_reference("async-nats 0.51 cannot read nats-server 2.9.10's account info") {
        return;
    }
    let dir = store_dir("accounts");
    let _ = std::fs::remove_dir_all(&dir);
    let config = format!(
        "jetstream {{ store_dir: {:?} }}\naccounts {{\n\
         A: {{ jetstream: enabled, users: [{{user: a, password: p}}] }}\n\
         B: {{ jetstream: enabled, users: [{{user: b, password: p}}] }}\n}}\n",
        dir.display().to_string()
    );
    let server = TestServer::with_config(&config, &[]);
    let connect = |user: &'static str| {
        let url = server.url();
        async move {
            let client =
                async_nats::ConnectOptions::with_user_and_password(user.into(), "p".into())
                    .connect(url)
                    .await
                    .expect("connects");
            jetstream::new(client)
        }
    };
    let (a, b) = (connect("a").await, connect("b").await);
    let config = kv::Config {
        bucket: "cfg".into(),
        ..Default::default()
    };
    let kv_a = a.create_key_value(config.clone()).await.unwrap();
    let kv_b = b.create_key_value(config).await.unwrap();
    kv_a.put("k", "from a".into()).await.unwrap();
    assert_eq!(kv_b.get("k").await.unwrap(), None, "B sees nothing of A's");
    kv_b.put("k", "from b".into()).await.unwrap();
    assert_eq!(
        kv_a.get("k").await.unwrap().as_deref(),
        Some(&b"from a"[..])
    );
    assert_eq!(
        kv_b.get("k").await.unwrap().as_deref(),
        Some(&b"from b"[..])
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// nats-py's key-value and object store calls, with what each gives.
const NATS_PY: &str = r#"
import asyncio, nats, sys

async def main(url):
    nc = await nats.connect(url)
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="cfg", history=5)
    print("put", await kv.put("a", b"1"))
    e = await kv.get("a")
    print("get", e.value, e.revision)
    try:
        await kv.create("a", b"2")
        print("create existing: accepted")
    except Exception as ex:
        print("create existing:", type(ex).__name__)
    print("update", await kv.update("a", b"3", last=1))
    try:
        await kv.update("a", b"4", last=1)
        print("stale update: accepted")
    except Exception as ex:
        print("stale update:", type(ex).__name__)
    await kv.delete("a")
    try:
        await kv.get("a")
        print("get deleted: found")
    except Exception as ex:
        print("get deleted:", type(ex).__name__)
    await kv.put("b", b"x")
    await kv.put("c", b"y")
    print("keys", sorted(await kv.keys()))
    print("history", len(await kv.history("a")))
    await kv.purge("b")
    w = await kv.watch("c")
    e = await w.updates(timeout=2)
    print("watch initial", e.value)
    await w.updates(timeout=2)  # the end of the initial values
    await kv.put("c", b"z")
    e = await w.updates(timeout=2)
    print("watch update", e.value)
    obj = await js.create_object_store("files")
    data = bytes(i % 251 for i in range(3_000_000))
    info = await obj.put("big.bin", data)
    print("obj put", info.size)
    res = await obj.get("big.bin")
    print("obj get", len(res.data), res.data == data)
    print("obj list", len(await obj.list()))
    await obj.delete("big.bin")
    try:
        await obj.get("big.bin")
        print("obj get deleted: found")
    except Exception as ex:
        print("obj get deleted:", type(ex).__name__)
    await nc.close()

asyncio.run(main(sys.argv[1]))
"#;

#[test]
fn nats_py_key_value_and_object_store() {
    let (server, dir) = server("py");
    let stdout = tenet_tests::nats_py(NATS_PY, &[&server.url()]);
    // What nats-py shows against nats-server 2.9.10 too.
    assert_eq!(
        stdout,
        "put 1\nget b'1' 1\ncreate existing: KeyWrongLastSequenceError\nupdate 2\n\
         stale update: KeyWrongLastSequenceError\nget deleted: KeyNotFoundError\n\
         keys ['b', 'c']\nhistory 3\nwatch initial b'y'\nwatch update b'z'\n\
         obj put 3000000\nobj get 3000000 True\nobj list 1\n\
         obj get deleted: ObjectNotFoundError\n"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
