//! The `tenet-async-std` binary: the shared command line and configuration around the async-std runtime.

fn main() -> std::process::ExitCode {
    tenet_mio::host::main::<tenet_async_std::AsyncStdRuntime>("tenet-async-std")
}
