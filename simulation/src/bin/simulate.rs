//! `cargo run -p simulation --release -- [--seeds N] [--from S] [--seed S] [--orders N]`
//!
//! Runs seeds of the deterministic simulation, printing progress and a summary; a failing
//! seed prints the command that reproduces it and the timelines of the orders involved.

use std::process::ExitCode;
use std::time::Instant;

use simulation::{Report, SimConfig, run_seed};

const USAGE: &str =
    "usage: simulate [--seeds N] [--from FIRST] [--seed ONE] [--orders PER_SEED] [--fault-scale X]";

fn number(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<u64, String> {
    args.next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} needs a whole number\n{USAGE}"))
}

fn main() -> ExitCode {
    let (mut seeds, mut from, mut orders, mut scale) = (100u64, 1u64, 20usize, 1.0f64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let parsed = match arg.as_str() {
            "--seeds" => number(&mut args, "--seeds").map(|n| seeds = n),
            "--from" => number(&mut args, "--from").map(|n| from = n),
            "--seed" => number(&mut args, "--seed").map(|n| {
                from = n;
                seeds = 1;
            }),
            "--orders" => number(&mut args, "--orders").map(|n| orders = n as usize),
            "--fault-scale" => match args
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|x| x.is_finite() && *x >= 0.0)
            {
                Some(x) => {
                    scale = x;
                    Ok(())
                }
                None => Err(format!(
                    "--fault-scale needs a non-negative number\n{USAGE}"
                )),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        if let Err(message) = parsed {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    }
    let started = Instant::now();
    let mut totals = Report::default();
    let mut failing = Vec::new();
    for (i, seed) in (from..from.saturating_add(seeds)).enumerate() {
        let config = SimConfig {
            orders,
            faults: simulation::Faults::default().scaled(scale),
            ..SimConfig::new(seed)
        };
        let report = run_seed(&config);
        add(&mut totals, &report);
        if !report.violations.is_empty() {
            println!("seed {seed}: {} violation(s)", report.violations.len());
            for v in &report.violations {
                println!("  {v}");
            }
            for t in &report.timelines {
                println!("{t}");
            }
            println!(
                "  reproduce: cargo run -p simulation --release -- --seed {seed} --orders {orders}"
            );
            failing.push(seed);
        }
        if (i + 1) % 25 == 0 || i + 1 == seeds as usize {
            println!(
                "{} / {seeds} seeds, {:.1} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!("seeds: {seeds} (from {from}), {orders} orders each, fault scale {scale}");
    println!(
        "orders: {} placed, {} refused; {} confirmed, {} failed, {} cancelled",
        totals.orders_placed,
        totals.orders_refused,
        totals.confirmed,
        totals.failed,
        totals.cancelled
    );
    let refusals: Vec<String> = totals
        .refusals
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!("refused because: {}", refusals.join(", "));
    println!("steps: {}, deliveries: {}", totals.steps, totals.deliveries);
    let faults: Vec<String> = totals
        .faults
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!("faults injected: {}", faults.join(", "));
    println!("violations: {}", totals.violations.len());
    if failing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn add(totals: &mut Report, r: &Report) {
    totals.orders_placed += r.orders_placed;
    totals.orders_refused += r.orders_refused;
    totals.confirmed += r.confirmed;
    totals.failed += r.failed;
    totals.cancelled += r.cancelled;
    totals.steps += r.steps;
    totals.deliveries += r.deliveries;
    for (k, n) in &r.faults {
        *totals.faults.entry(k).or_default() += n;
    }
    for (k, n) in &r.refusals {
        *totals.refusals.entry(k.clone()).or_default() += n;
    }
    totals.violations.extend(r.violations.iter().cloned());
}
