//! From a configuration file to an engine in one call, for programs that embed
//! tenet in an event loop of their own.

use tenet_core::config::ConfigError;
use tenet_core::{Auth, Options, Server};

use crate::cli::Flags;
use crate::config_files::FsResolver;

/// Reads a nats-server configuration file (its includes relative to it, `$VAR`s
/// from the environment) and runs every check the tenet binaries run before
/// they start: the engine's options and the users and accounts. Errors carry
/// their `file:line:col`.
pub fn load_file(path: &str) -> Result<(Options, Auth), Vec<ConfigError>> {
    let flags = Flags {
        config_file: Some(path.to_string()),
        ..Flags::default()
    };
    let env = |name: &str| std::env::var(name).ok();
    let (config, auth) = flags.load(&FsResolver, &env)?;
    Ok((config.server, auth))
}

/// A [`Server`] configured by the file at `path` ([`load_file`]); `seed` drives
/// its random choices (server id, nonces), as in [`Server::with_auth`]. The
/// caller owns the sockets: `options().host`/`port` say what to bind, and
/// [`Server::set_listen_port`] reports the port bound.
pub fn server_from_file(path: &str, seed: u64) -> Result<Server, Vec<ConfigError>> {
    let (options, auth) = load_file(path)?;
    Ok(Server::with_auth(options, auth, seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_core::{Event, Peer, Time};

    fn file(name: &str, text: &str) -> String {
        let path = std::env::temp_dir().join(format!("tenet-load-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write");
        path.to_string_lossy().into_owned()
    }

    /// Everything the engine queued for `id`, after draining its events.
    fn drained(server: &mut Server, id: tenet_core::ClientId) -> String {
        let mut out = Vec::new();
        while let Some(event) = server.poll_event() {
            if event == Event::Flush(id) {
                let mut slices = [std::io::IoSlice::new(&[]); 8];
                let n = server.outbound(id, &mut slices);
                let bytes: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
                server.handle_written(id, bytes.len(), Time::ZERO);
                out.extend(bytes);
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_file_becomes_a_server_with_its_users_and_limits() {
        let path = file(
            "good.conf",
            "max_payload: 1KB\nauthorization { users = [ {user: joe, password: s3cret} ] }\n",
        );
        let mut server = server_from_file(&path, 1).expect("loads");
        assert_eq!(server.options().max_payload, 1024);
        let peer = || Peer {
            ip: "127.0.0.1".into(),
            port: 1,
        };
        let joe = server.accept(peer(), Time::ZERO);
        let connect = br#"CONNECT {"verbose":false,"user":"joe","pass":"s3cret"}
PING
"#;
        let connect = String::from_utf8_lossy(connect).replace('\n', "\r\n");
        server.handle_read(joe, connect.as_bytes(), Time::ZERO);
        assert!(drained(&mut server, joe).ends_with("PONG\r\n"));
        let stranger = server.accept(peer(), Time::ZERO);
        server.handle_read(stranger, b"CONNECT {\"verbose\":false}\r\n", Time::ZERO);
        assert!(drained(&mut server, stranger).ends_with("-ERR 'Authorization Violation'\r\n"));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn every_start_up_check_is_made_with_positions() {
        let path = file(
            "dup.conf",
            "authorization { users = [ {user: a, password: x}, {user: a, password: y} ] }\n",
        );
        let errors = load_file(&path).unwrap_err();
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [format!("{path}:1:50: Duplicate user \"a\" detected")]
        );
        let _ = std::fs::remove_file(path);
        assert!(load_file("/nonexistent/tenet.conf").is_err());
    }
}
