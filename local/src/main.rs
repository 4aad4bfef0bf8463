//! `cargo run -p local`: the whole system on 127.0.0.1, in one process.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use local::config::LocalConfig;
use local::system::LocalSystem;
use platform::config::ProcessEnv;
use platform::telemetry::{self, LogTarget};

const USAGE: &str = "usage: shop-local [--demo] [--aws]\n  --demo  create an admin (admin@shop.kr / admin1234), three products and a coupon source\n  --aws   run on AWS APIs instead of in memory (implied when AWS_ENDPOINT_URL is set):\n          provision the topology under STACK_PREFIX (default shop-local-), then poll the\n          queues, read the table streams and run the sweep";

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init(LogTarget::Stderr);
    let mut demo = false;
    let mut aws = std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty());
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--demo" => demo = true,
            "--aws" => aws = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("shop-local: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let mut config = match LocalConfig::from_env(&ProcessEnv) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("shop-local: {error}");
            return ExitCode::from(2);
        }
    };
    if demo {
        match user_service::domain::Email::parse(local::demo::ADMIN_EMAIL) {
            Ok(admin) => config.user.admin_emails.insert(admin),
            Err(error) => {
                eprintln!("shop-local: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
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
    if aws {
        return run_on_aws(config, listener).await;
    }
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
    if demo {
        match local::demo::seed(&system).await {
            Ok(seeded) => {
                println!(
                    "demo admin: {} / {}",
                    local::demo::ADMIN_EMAIL,
                    local::demo::ADMIN_PASSWORD
                );
                for (id, name, price) in &seeded.products {
                    println!("demo product: {id}  {name}  {price} KRW");
                }
                println!(
                    "demo coupon source: {}  (10% off, up to 5,000 KRW, orders from 10,000 KRW)",
                    seeded.coupon_source
                );
            }
            Err(error) => {
                eprintln!("shop-local: {error}");
                system.shutdown().await;
                return ExitCode::FAILURE;
            }
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

/// The same system on AWS APIs (`--aws`, or `AWS_ENDPOINT_URL` set).
async fn run_on_aws(config: LocalConfig, listener: tokio::net::TcpListener) -> ExitCode {
    let prefix = std::env::var("STACK_PREFIX")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "shop-local-".to_owned());
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let system = match local::aws::AwsSystem::start(config, &sdk, &prefix).await {
        Ok(system) => system,
        Err(error) => {
            eprintln!("shop-local: {error}");
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
        Ok(addr) => println!(
            "shop-local listening on http://{addr} (on AWS APIs, resources prefixed {prefix})"
        ),
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
        Ok(()) => ExitCode::SUCCESS,
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
