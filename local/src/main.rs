//! `cargo run -p local`: the whole system on 127.0.0.1, in one process — in memory, or on
//! AWS APIs with `--aws` / `AWS_ENDPOINT_URL`.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use local::aws::AwsSystem;
use local::config::LocalConfig;
use local::system::{LocalSystem, Running, Services};
use platform::config::ProcessEnv;
use platform::telemetry::{self, LogTarget};

const USAGE: &str = "usage: shop-local [--demo] [--aws] | --openapi
  --demo  create an admin (admin@shop.kr / admin1234), three products and a coupon source
  --aws   run on AWS APIs instead of in memory (implied when AWS_ENDPOINT_URL is set):
          provision the topology under STACK_PREFIX (default shop-local-), then poll the
          queues, read the table streams and run the sweep
  --openapi  print the OpenAPI document (docs/openapi.json) and exit";

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init(LogTarget::Stderr);
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("shop-local: {message}");
            ExitCode::from(code)
        }
    }
}

async fn run() -> Result<(), (u8, String)> {
    let mut demo = false;
    let mut aws = std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty());
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--demo" => demo = true,
            "--aws" => aws = true,
            "--openapi" => {
                let document = local::gateway::openapi()
                    .to_pretty_json()
                    .map_err(|e| (1, e.to_string()))?;
                println!("{document}");
                return Ok(());
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err((2, format!("unknown argument {other:?}\n{USAGE}"))),
        }
    }
    let config = LocalConfig::from_env(&ProcessEnv).map_err(|e| (2, e.to_string()))?;
    let port = config.port;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| (1, format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| (1, e.to_string()))?;
    let shutdown =
        shutdown_requested().map_err(|e| (1, format!("cannot watch for Ctrl-C: {e}")))?;

    let running = if aws {
        let prefix = std::env::var("STACK_PREFIX")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "shop-local-".to_owned());
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let system = AwsSystem::start(config, &sdk, &prefix)
            .await
            .map_err(|e| (1, e.to_string()))?;
        println!("shop-local listening on http://{addr}");
        println!("on AWS APIs: resources prefixed {prefix}");
        if demo {
            seed_demo(&system.services, addr).await?;
        }
        system.running
    } else {
        let system =
            LocalSystem::start(config).map_err(|e| (1, format!("cannot build the system: {e}")))?;
        println!("shop-local listening on http://{addr}");
        if demo {
            seed_demo(&system.services, addr).await?;
        }
        system.running
    };
    serve(listener, running, shutdown).await
}

async fn seed_demo(services: &Services, addr: std::net::SocketAddr) -> Result<(), (u8, String)> {
    let seeded = local::demo::seed(services)
        .await
        .map_err(|e| (1, e.to_string()))?;
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
    // What the README's order walkthrough needs, to paste into another shell.
    println!("{}", seeded.exports(&format!("http://{addr}")));
    Ok(())
}

/// Serves until `shutdown`, then stops the system's background work.
async fn serve(
    listener: tokio::net::TcpListener,
    running: Running,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), (u8, String)> {
    local::server::serve(
        listener,
        running.router(),
        local::server::Limits::default(),
        shutdown,
    )
    .await;
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
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
