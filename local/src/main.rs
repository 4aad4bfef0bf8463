//! `cargo run -p local`: the whole system on 127.0.0.1, in one process — in memory, or on
//! AWS APIs with `--aws` / `AWS_ENDPOINT_URL`.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use local::aws::AwsSystem;
use local::config::LocalConfig;
use local::system::{LocalSystem, Running, Services};
use platform::config::ProcessEnv;
use platform::telemetry::{self, LogTarget};

const USAGE: &str = "usage: shop-local [--demo] [--aws] | --openapi | --function-env FUNCTION
  --demo  create an admin (admin@shop.kr / admin1234), three products and a coupon source
  --aws   run on AWS APIs instead of in memory (implied when AWS_ENDPOINT_URL is set):
          provision the topology under STACK_PREFIX (default shop-local-), then poll the
          queues, read the table streams and run the sweep
  --openapi  print the OpenAPI document (docs/openapi.json) and exit
  --function-env FUNCTION
          on AWS APIs (AWS_ENDPOINT_URL): provision the topology under STACK_PREFIX, put
          development signing keys in SSM if there are none, and print the environment
          template.yaml gives FUNCTION (its logical id, e.g. OrderSweepFunction) as
          KEY=value lines, for `cargo lambda watch --env-file` (scripts/lambda-dev.sh)";

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
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--function-env" => {
                let function = args
                    .next()
                    .ok_or_else(|| (2, format!("--function-env needs a function\n{USAGE}")))?;
                return function_env(&function).await.map_err(|e| (1, e));
            }
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

/// `--function-env`: what `function` needs to run under `cargo lambda watch`.
async fn function_env(function: &str) -> Result<(), String> {
    use local::lambda_dev::{
        dev_signing_keys, endpoint_environment, function_environment, with_valid_token,
    };
    let stack = local::template::Stack::load().map_err(|e| e.to_string())?;
    let Some(function) = stack.functions.iter().find(|f| f.id == function) else {
        let ids: Vec<&str> = stack.functions.iter().map(|f| f.id.as_str()).collect();
        return Err(format!(
            "template.yaml has no function {function:?}; it has {}",
            ids.join(", ")
        ));
    };
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        return Err(
            "--function-env provisions on AWS APIs: set AWS_ENDPOINT_URL (LocalStack)".into(),
        );
    }
    let prefix = std::env::var("STACK_PREFIX")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "shop-local-".to_owned());
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let names = local::aws::provision(&sdk, &prefix)
        .await
        .map_err(|e| e.to_string())?;
    let mut env = endpoint_environment(&sdk);
    env.extend(function_environment(function, &names)?);
    if let Some(parameter) = env.get("JWT_KEYS_PARAMETER") {
        let keys = dev_signing_keys(&sdk, parameter).await?;
        if function.handler == "user-authorizer" {
            let sample = format!("events/{}.json", function.name);
            let text = std::fs::read_to_string(&sample).map_err(|e| format!("{sample}: {e}"))?;
            let valid = format!(".cache/lambda-dev/{}-valid-token.json", function.name);
            std::fs::create_dir_all(".cache/lambda-dev").map_err(|e| e.to_string())?;
            std::fs::write(&valid, with_valid_token(&text, &keys)?)
                .map_err(|e| format!("{valid}: {e}"))?;
            eprintln!("a sample with a token valid for an hour: {valid}");
        }
    }
    for (name, value) in &env {
        println!("{name}={value}");
    }
    eprintln!(
        "then: cargo lambda invoke {} --data-file events/{}.json",
        function.binary, function.name
    );
    Ok(())
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
