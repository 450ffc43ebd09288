//! The command line shared by every tenet binary, with nats-server's flag names.

use crate::options::{Options, DEFAULT_PORT};

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run a server with these options.
    Run(Options),
    /// Print the usage text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// A command-line mistake; the binary prints it and exits with status 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// The usage text.
pub fn usage(binary: &str) -> String {
    format!(
        "Usage: {binary} [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222, -1 for random)
    -n, --name, --server_name <name> Server name (default: auto)

Logging Options:
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -DV                              Debug and trace

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
"
    )
}

/// Parses the arguments after the program name. Flags take `-flag value`,
/// `-flag=value` and the `--` forms, like nats-server's.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, CliError> {
    let mut opts = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((f, v)) if arg.starts_with('-') => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let name = flag.trim_start_matches('-');
        if !flag.starts_with('-') || name.is_empty() || flag.starts_with("---") {
            return Err(CliError(format!("unexpected argument: {arg}")));
        }
        let mut value = |what: &str| -> Result<String, CliError> {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| CliError(format!("flag needs an argument: {flag} ({what})")))
        };
        match name {
            "a" | "addr" | "net" => opts.host = value("host")?,
            "p" | "port" => opts.port = parse_port(&value("port")?)?,
            "n" | "name" | "server_name" => opts.server_name = Some(value("name")?),
            "D" | "debug" => opts.debug = true,
            "V" | "trace" => opts.trace = true,
            "DV" => {
                opts.debug = true;
                opts.trace = true;
            }
            "h" | "help" => return Ok(Command::Help),
            "v" | "version" => return Ok(Command::Version),
            _ => return Err(CliError(format!("flag provided but not defined: {flag}"))),
        }
    }
    Ok(Command::Run(opts))
}

/// `-1` asks for a random port and `0` for the default, as in nats-server.
fn parse_port(text: &str) -> Result<Option<u16>, CliError> {
    match text.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(0) => Ok(Some(DEFAULT_PORT)),
        Ok(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
        _ => Err(CliError(format!(
            "invalid port: {text:?} (use 1-65535, or -1 for a random port)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, CliError> {
        match parse_args(args.iter().map(|s| s.to_string()))? {
            Command::Run(o) => Ok(o),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn flags_in_every_form() {
        let o = run(&["-a", "127.0.0.1", "--port=4333", "-DV", "--name", "n1"]).unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.debug, o.trace),
            ("127.0.0.1", Some(4333), true, true)
        );
        assert_eq!(o.server_name.as_deref(), Some("n1"));
        assert_eq!(run(&["-p", "-1"]).unwrap().port, None);
        assert_eq!(run(&["-p", "0"]).unwrap().port, Some(4222));
        assert_eq!(run(&[]).unwrap(), Options::default());
        assert_eq!(parse_args(["-h".to_string()]), Ok(Command::Help));
        assert_eq!(parse_args(["--version".to_string()]), Ok(Command::Version));
    }

    #[test]
    fn mistakes_are_reported() {
        assert_eq!(
            run(&["--bogus"]).unwrap_err().0,
            "flag provided but not defined: --bogus"
        );
        assert!(run(&["-p"]).unwrap_err().0.contains("needs an argument"));
        assert!(run(&["-p", "70000"])
            .unwrap_err()
            .0
            .contains("invalid port"));
        assert!(run(&["stray"])
            .unwrap_err()
            .0
            .contains("unexpected argument"));
    }
}
