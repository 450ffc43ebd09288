//! The `tenet-async-std` binary: the shared command line and configuration around the async-std runtime.

fn main() -> std::process::ExitCode {
    tenet_host::main::<tenet_async_std::AsyncStdRuntime>("tenet-async-std")
}
