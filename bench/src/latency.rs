//! How long an order takes on LocalStack, POST → CONFIRMED, one at a time and from several
//! clients at once; and how many requests the system sends LocalStack while idle (the long
//! polls of its event source mappings and the stream readers' polls).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use local::aws::AwsSystem;
use local::config::{LocalConfig, NO_CLIENT_LIMITS};
use tokio::sync::watch;

use crate::bill::{Requests, clients, listen_for_outcomes, provisioned, settle};
use crate::measure::{ms, percentile};
use crate::shop::{self, BenchResult, Outcome, Placed, Shop};

pub struct Settings {
    /// Orders placed one at a time.
    pub sequential: usize,
    /// Orders placed by `clients` at once, each client one at a time.
    pub orders: usize,
    pub clients: usize,
    /// How long the idle request rate is counted.
    pub idle: Duration,
}

const ORDER_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn latency(settings: Settings) -> BenchResult<String> {
    let at = provisioned("latency").await?;
    let (sdk, names) = (&at.sdk, &at.names);
    let requests = Arc::new(Requests::default());
    // The defaults, the sweep's included: the idle rate is the system's as it runs.
    let mut env = HashMap::from([("JWT_SECRET", "benchmark-secret-of-at-least-32-bytes!")]);
    env.extend(NO_CLIENT_LIMITS);
    let config = LocalConfig::from_env(&env).map_err(|e| e.to_string())?;
    let system = AwsSystem::start_with(config, clients(sdk, &requests), names.clone())
        .await
        .map_err(|e| e.to_string())?;
    let outcomes = shop::Outcomes::default();
    let (stop, stopped) = watch::channel(false);
    listen_for_outcomes(&at, outcomes.clone(), stopped).await?;
    let plain_sqs = aws_sdk_sqs::Client::new(sdk);
    let shop = Shop::new(system.router(), system.services.users.clone());
    let total = settings.sequential + settings.orders;
    eprintln!("latency: setting up {} customers…", settings.clients);
    let scenario = Arc::new(shop::set_up(&shop, settings.clients, total).await?);
    settle(&plain_sqs, names, &system.invocations).await?;

    eprintln!(
        "latency: counting requests while idle for {:?}…",
        settings.idle
    );
    let before = requests.snapshot();
    tokio::time::sleep(settings.idle).await;
    let after = requests.snapshot();
    // (service, operation) → requests per second.
    let idle: Vec<(&(&str, String), f64)> = after
        .iter()
        .map(|(k, t)| {
            let since = t.since(&before.get(k).copied().unwrap_or_default());
            (k, since.requests as f64 / settings.idle.as_secs_f64())
        })
        .filter(|(_, rate)| *rate > 0.0)
        .collect();

    eprintln!("latency: {} orders one at a time…", settings.sequential);
    let one_at_a_time = shop::closed_loop(
        &shop,
        &outcomes,
        &scenario,
        1,
        settings.sequential,
        ORDER_TIMEOUT,
    )
    .await?;
    eprintln!(
        "latency: {} orders from {} clients…",
        settings.orders, settings.clients
    );
    // The first customer's coupon was used by the first phase.
    let mut second = (*scenario).clone();
    if let Some(first) = second.customers.first_mut() {
        first.coupon = None;
    }
    let concurrent = shop::closed_loop(
        &shop,
        &outcomes,
        &Arc::new(second),
        settings.clients,
        settings.orders,
        ORDER_TIMEOUT,
    )
    .await?;
    let _ = stop.send(true);
    system.shutdown().await;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Order latency on LocalStack\n\nWith the system on LocalStack's DynamoDB, Streams, SNS and SQS APIs (`bench latency`): *to CONFIRMED* is sending POST /orders → the order service confirming it (its `OrderConfirmed` event's time); *to heard* is → that event heard by a subscriber to the order topic (one hop more).\n"
    );
    let _ = writeln!(
        out,
        "| orders | confirmed | to CONFIRMED median | p95 | max | to heard median | p95 |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (label, placed) in [
        (
            format!("{} one at a time", settings.sequential),
            &one_at_a_time,
        ),
        (
            format!("{} from {} clients", settings.orders, settings.clients),
            &concurrent,
        ),
    ] {
        let confirmed: Vec<&Placed> = placed
            .iter()
            .filter(|p| matches!(p.outcome, Some(Outcome::Confirmed)))
            .collect();
        let mut heard: Vec<Duration> = confirmed.iter().map(|p| p.latency).collect();
        heard.sort();
        let mut decided: Vec<Duration> = confirmed.iter().filter_map(|p| p.decided).collect();
        decided.sort();
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {} |",
            confirmed.len(),
            ms(percentile(&decided, 50.0)),
            ms(percentile(&decided, 95.0)),
            ms(percentile(&decided, 100.0)),
            ms(percentile(&heard, 50.0)),
            ms(percentile(&heard, 95.0)),
        );
    }
    let queues = names.queues.len() as f64;
    let tables = names.tables.len() as f64;
    let rate = |op: &str| {
        idle.iter()
            // "ReceiveMessage (empty)" is a ReceiveMessage too.
            .filter(|((_, operation), _)| operation.split(' ').next() == Some(op))
            .fold(0.0, |sum, (_, r)| sum + r)
    };
    let all = idle.iter().fold(0.0, |sum, (_, r)| sum + r);
    let _ = writeln!(
        out,
        "\nIdle, over {:.0} s: {all:.2} requests/s in all; ReceiveMessage {:.2}/s ({:.3} per queue, {queues} queues); GetRecords {:.2}/s ({:.2} per table, {tables} tables).\n",
        settings.idle.as_secs_f64(),
        rate("ReceiveMessage"),
        rate("ReceiveMessage") / queues,
        rate("GetRecords"),
        rate("GetRecords") / tables,
    );
    let _ = writeln!(out, "| request while idle | per second |");
    let _ = writeln!(out, "| --- | ---: |");
    for ((service, operation), r) in &idle {
        let _ = writeln!(out, "| {service} {operation} | {r:.2} |");
    }
    Ok(out)
}
