//! `cargo run -p local`: the whole system on 127.0.0.1, in one process.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use local::config::LocalConfig;
use local::system::LocalSystem;
use platform::config::ProcessEnv;
use platform::telemetry::{self, LogTarget};

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init(LogTarget::Stderr);
    let config = match LocalConfig::from_env(&ProcessEnv) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("shop-local: {error}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "shop-local: cannot listen on 127.0.0.1:{}: {error}",
                config.port
            );
            return ExitCode::FAILURE;
        }
    };
    let system = match LocalSystem::start(config) {
        Ok(system) => system,
        Err(error) => {
            eprintln!("shop-local: the event topology is invalid: {error}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = match shutdown_requested() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            eprintln!("shop-local: cannot watch for Ctrl-C: {error}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("shop-local listening on http://{addr}"),
        Err(error) => {
            eprintln!("shop-local: {error}");
            return ExitCode::FAILURE;
        }
    }
    let served = axum::serve(listener, system.router())
        .with_graceful_shutdown(shutdown)
        .await;
    system.shutdown().await;
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shop-local: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C, or SIGTERM from a process manager. The handlers are registered when this is
/// called, so a signal that arrives any time after start-up shuts down cleanly.
fn shutdown_requested() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
