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
    match listener.local_addr() {
        Ok(addr) => println!("shop-local listening on http://{addr}"),
        Err(error) => {
            eprintln!("shop-local: {error}");
            return ExitCode::FAILURE;
        }
    }
    let served = axum::serve(listener, system.router())
        .with_graceful_shutdown(shutdown_requested())
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

/// Ctrl-C, or SIGTERM from a process manager.
async fn shutdown_requested() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
