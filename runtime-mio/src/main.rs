//! The `tenet-mio` binary: the shared command line and configuration around the mio event loop.

fn main() -> std::process::ExitCode {
    tenet_host::main::<tenet_mio::EventLoop>("tenet-mio")
}
