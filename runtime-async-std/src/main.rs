//! The `tenet-async-std` binary: the shared command line and configuration around the async-std runtime.

fn main() -> std::process::ExitCode {
    // One executor thread unless the user chose otherwise: the engine is
    // serialized behind one lock, so a second thread adds only wake-ups
    // between threads (bcrypt jobs run on async-std's blocking pool either
    // way). Set here, before any thread exists.
    if std::env::var_os("ASYNC_STD_THREAD_COUNT").is_none() {
        std::env::set_var("ASYNC_STD_THREAD_COUNT", "1");
    }
    tenet_host::main::<tenet_async_std::AsyncStdRuntime>("tenet-async-std")
}
