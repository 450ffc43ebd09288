//! `tenet_mio::spawn`: a whole server in-process, for embedding and tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tenet_core::Auth;
use tenet_core::Options;

#[test]
fn spawned_server_serves_clients_and_shuts_down() {
    let opts = Options {
        host: "127.0.0.1".into(),
        port: None,
        max_payload: 64,
        ..Options::default()
    };
    let handle = tenet_mio::spawn(opts, Auth::none()).expect("spawn");
    let mut stream = TcpStream::connect(handle.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut info = String::new();
    reader.read_line(&mut info).unwrap();
    assert!(info.contains("\"max_payload\":64"), "{info}");
    assert!(
        info.contains(&format!("\"port\":{}", handle.port())),
        "{info}"
    );
    stream
        .write_all(b"CONNECT {\"verbose\":false}\r\nSUB a 1\r\nPUB a 2\r\nhi\r\nPING\r\n")
        .unwrap();
    let mut got = vec![0u8; "MSG a 1 2\r\nhi\r\nPONG\r\n".len()];
    reader.read_exact(&mut got).unwrap();
    assert_eq!(got, b"MSG a 1 2\r\nhi\r\nPONG\r\n");

    let addr = handle.addr();
    handle.shutdown().expect("clean shutdown");
    // The server closed the connection on shutdown.
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap_or(0), 0);
    // And stopped listening.
    assert!(TcpStream::connect(addr).is_err());
}
