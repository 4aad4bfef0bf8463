//! `cargo run -p bench --profile sim -- <what>`: the benchmarks. Each prints its figures as
//! Markdown on stdout (progress on stderr); nothing is asserted. docs/benchmarks.md records
//! them with the machine and the date.

mod bill;
mod cold_start;
mod flash_sale;
mod index_writes;
mod latency;
mod measure;
mod monolith;
mod prices;
mod request_latency;
mod shop;
mod size;
mod throughput;

use std::process::ExitCode;

const USAGE: &str = "usage: bench <what> [options]
  throughput [--orders N] [--clients M]   whole saga in memory, in this process (default 10000, 100)
  bill [--orders K] [--clients M]         requests and cost per order on LocalStack (default 100, 10)
  latency [--sequential S] [--orders K] [--clients M] [--idle-seconds T]
                                          POST -> CONFIRMED on LocalStack, and the idle request rate
                                          (default 20, 100, 10, 20)
  cold-start [--runs R] [--no-build]      every function's release binary against a Runtime API stub (default 5);
                                          --no-build measures the binaries already in target/release
  flash-sale [--users N] [--quantity Q] [--stock S] [--concurrency C] [--hold-ms H]
                                          N users on one coupon source of Q and on one product of stock S,
                                          DynamoDB's per-item limits modelled (default 10000, 1000, 1000, 500, 5)
  size                                    release arm64 binaries and zips (cargo lambda build)
  all                                     every one of them, with their defaults";

fn main() -> ExitCode {
    // The system's logs only when asked for (RUST_LOG): writing them costs time too.
    if std::env::var_os("RUST_LOG").is_some() {
        platform::telemetry::init(platform::telemetry::LogTarget::Stderr);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The value of `--name`, or `default`.
fn option(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("{name} needs a positive number\n{USAGE}")),
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let what = args.first().map(String::as_str).unwrap_or("");
    let rest = args.get(1..).unwrap_or_default();
    let known = [
        "--orders",
        "--clients",
        "--runs",
        "--sequential",
        "--idle-seconds",
        "--users",
        "--quantity",
        "--stock",
        "--concurrency",
        "--hold-ms",
    ];
    for (i, a) in rest.iter().enumerate() {
        let is_value = i > 0 && known.contains(&rest[i - 1].as_str());
        if !is_value && !known.contains(&a.as_str()) && a != "--no-build" {
            return Err(format!("unknown argument {a:?}\n{USAGE}"));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let header = format!(
        "# Benchmark: {what}\n\nMachine: {}. Date: {}.\n",
        measure::machine(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let body = match what {
        "throughput" => runtime.block_on(throughput::throughput(throughput::Settings {
            orders: option(rest, "--orders", 10_000)?,
            clients: option(rest, "--clients", 100)?,
        }))?,
        "bill" => runtime.block_on(bill::bill(bill::Settings {
            orders: option(rest, "--orders", 100)?,
            clients: option(rest, "--clients", 10)?,
        }))?,
        "latency" => runtime.block_on(latency::latency(latency::Settings {
            sequential: option(rest, "--sequential", 20)?,
            orders: option(rest, "--orders", 100)?,
            clients: option(rest, "--clients", 10)?,
            idle: std::time::Duration::from_secs(option(rest, "--idle-seconds", 20)? as u64),
        }))?,
        "cold-start" => runtime.block_on(cold_start::cold_start(
            option(rest, "--runs", 5)?,
            !rest.iter().any(|a| a == "--no-build"),
        ))?,
        "flash-sale" => runtime.block_on(flash_sale::flash_sale(flash_sale::Settings {
            users: option(rest, "--users", 10_000)?,
            quantity: option(rest, "--quantity", 1_000)?,
            stock: option(rest, "--stock", 1_000)?,
            concurrency: option(rest, "--concurrency", 500)?,
            hold: std::time::Duration::from_millis(option(rest, "--hold-ms", 5)? as u64),
        }))?,
        "size" => size::size()?,
        "all" => {
            let mut all = runtime.block_on(throughput::throughput(throughput::Settings {
                orders: 10_000,
                clients: 100,
            }))?;
            all += &runtime.block_on(bill::bill(bill::Settings {
                orders: 100,
                clients: 10,
            }))?;
            all += &runtime.block_on(cold_start::cold_start(5, true))?;
            all += &size::size()?;
            all
        }
        "-h" | "--help" | "" => return Ok(USAGE.to_owned()),
        other => return Err(format!("unknown benchmark {other:?}\n{USAGE}")),
    };
    Ok(format!("{header}\n{body}"))
}
