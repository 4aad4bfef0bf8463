//! The bill per order: the system on LocalStack's DynamoDB, Streams, SNS and SQS APIs (the
//! local system playing Lambda's event source mappings), every AWS request counted by an SDK
//! interceptor, every function invocation timed, then priced per million orders.
//!
//! Read and write units are not taken from the responses (DynamoDB Local reports none unless
//! asked, and an account's figures would mix in other traffic): they are computed from the
//! items by DynamoDB's rules: a write is 1 unit per KiB of the item written, a strongly
//! consistent read 1 unit per 4 KiB read (eventually consistent: half), at least one
//! KiB / 4 KiB; a transaction counts every item double; a write whose condition fails is
//! still paid. Where the size is not in the request or response (the item a delete
//! removes, an item a transaction only checks), 1 KiB is assumed: our items are smaller.
//! Each write's index writes are billed as well (see [`crate::index_writes`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::ConfigBag;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef, Input, Output,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use contract::Service;
use local::aws::{AwsClients, AwsSystem, Names};
use local::config::{LocalConfig, NO_CLIENT_LIMITS};
use platform::invocations::FunctionStats;
use tokio::sync::watch;

use crate::index_writes::{self, Changes, IndexedItems};
use crate::measure::ms;
use crate::monolith;
use crate::prices::{PRICES_AS_OF, US_EAST_1};
use crate::request_latency::{self, MODEL_AS_OF};
use crate::shop::{self, BenchResult, OUTCOME_EVENTS, Outcome, Outcomes, Placed, Shop};

const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Settings {
    pub orders: usize,
    pub clients: usize,
}

/// One kind of request's totals.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub(crate) requests: u64,
    /// Requests that answered an error (a failed condition, a cancelled transaction).
    failed: u64,
    /// Billed requests: SNS and SQS bill each 64 KiB of payload as one request.
    billed: u64,
    read_units: f64,
    write_units: f64,
    /// Messages received, or published in a batch.
    messages: u64,
}

impl Tally {
    pub(crate) fn since(&self, e: &Tally) -> Tally {
        Tally {
            requests: self.requests - e.requests,
            failed: self.failed - e.failed,
            billed: self.billed - e.billed,
            read_units: self.read_units - e.read_units,
            write_units: self.write_units - e.write_units,
            messages: self.messages - e.messages,
        }
    }
}

/// Every request made through the counting clients, by (service, operation).
#[derive(Debug, Default)]
pub(crate) struct Requests {
    by_operation: Mutex<BTreeMap<(&'static str, String), Tally>>,
    indexed: IndexedItems,
}

impl Requests {
    pub(crate) fn snapshot(&self) -> BTreeMap<(&'static str, String), Tally> {
        self.by_operation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The SDK interceptor that counts one service's requests.
#[derive(Debug)]
struct Count {
    service: &'static str,
    requests: Arc<Requests>,
}

/// What a request's input says about its bill, read before the SDK serialises (and drops) it.
#[derive(Debug, Clone, Default)]
struct Facts {
    /// The DynamoDB table the request is for (a transaction: its first item's).
    table: Option<String>,
    /// What kind of item it is for: its sort key up to the first `#` (a transaction: its
    /// first item's; a batch or a query: none).
    kind: Option<String>,
    consistent_read: bool,
    write_units: f64,
    /// SNS: billed requests and messages published.
    published: (u64, u64),
    /// The items the request writes, for their indexes.
    changes: Changes,
}

impl Storable for Facts {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Count {
    fn name(&self) -> &'static str {
        "bench-request-count"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let facts = match self.service {
            "dynamodb" => {
                let (table, kind) = addressed(input);
                Facts {
                    table,
                    kind,
                    consistent_read: consistent_read(input),
                    write_units: write_capacity(input),
                    changes: index_writes::changes(input, self.requests.indexed.projection()),
                    ..Facts::default()
                }
            }
            "sns" => Facts {
                published: sns_billed(input),
                ..Facts::default()
            },
            _ => Facts::default(),
        };
        cfg.interceptor_state().store_put(facts);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut operation = cfg
            .load::<Metadata>()
            .map_or_else(|| "unknown".to_owned(), |m| m.name().to_owned());
        // Charged to the invocation that made it, if a function made it.
        platform::invocations::note_request(self.service, &operation);
        let output = context.output_or_error().and_then(Result::ok);
        let failed = output.is_none();
        let facts = cfg.load::<Facts>().cloned().unwrap_or_default();
        match (&facts.table, &facts.kind) {
            (Some(table), Some(kind)) => {
                operation = format!("{operation} ({} {kind})", service_of(table));
            }
            (Some(table), None) => operation = format!("{operation} ({})", service_of(table)),
            _ => {}
        }
        let mut tally = Tally {
            requests: 1,
            failed: u64::from(failed),
            billed: 1,
            ..Tally::default()
        };
        match self.service {
            "dynamodb" => {
                tally.read_units = read_capacity(output, facts.consistent_read);
                tally.write_units = facts.write_units;
            }
            "sqs" if operation == "ReceiveMessage" => {
                let received = output
                    .and_then(|o| {
                        o.downcast_ref::<aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput>()
                    })
                    .map_or(0, |o| o.messages().len());
                tally.messages = received as u64;
                if received == 0 {
                    operation = "ReceiveMessage (empty)".to_owned();
                }
            }
            "sns" => (tally.billed, tally.messages) = facts.published,
            _ => {}
        }
        let index_units = match failed {
            true => HashMap::new(),
            false => self.requests.indexed.apply(facts.changes),
        };
        let mut all = self
            .requests
            .by_operation
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (table, units) in index_units.into_iter().filter(|(_, u)| *u > 0.0) {
            let name = format!("index writes ({})", service_of(&table));
            all.entry((self.service, name)).or_default().write_units += units;
        }
        let t = all.entry((self.service, operation)).or_default();
        t.requests += tally.requests;
        t.failed += tally.failed;
        t.billed += tally.billed;
        t.read_units += tally.read_units;
        t.write_units += tally.write_units;
        t.messages += tally.messages;
        Ok(())
    }
}

/// Tables are named <prefix><service>: the service says whose requests they are.
fn service_of(table: &str) -> &'static str {
    Service::ALL
        .iter()
        .map(|s| s.name())
        .filter(|s| table.ends_with(s))
        .max_by_key(|s| s.len())
        .unwrap_or("?")
}

/// SNS bills every 64 KiB of published payload as one request; returns (billed, messages).
fn sns_billed(input: &Input) -> (u64, u64) {
    use aws_sdk_sns::operation::publish::PublishInput;
    use aws_sdk_sns::operation::publish_batch::PublishBatchInput;
    let chunks = |bytes: usize| (bytes.max(1)).div_ceil(64 * 1024) as u64;
    if let Some(p) = input.downcast_ref::<PublishInput>() {
        return (chunks(p.message().map_or(0, str::len)), 1);
    }
    if let Some(b) = input.downcast_ref::<PublishBatchInput>() {
        let entries = b.publish_batch_request_entries();
        let bytes = entries.iter().map(|e| e.message().len()).sum();
        return (chunks(bytes), entries.len() as u64);
    }
    (1, 0)
}

/// The size of an item by DynamoDB's rules: names plus values.
pub fn item_size<'a>(
    attributes: impl IntoIterator<Item = (&'a String, &'a AttributeValue)>,
) -> usize {
    attributes
        .into_iter()
        .map(|(k, v)| k.len() + value_size(v))
        .sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        // About one byte per two significant digits, plus one.
        AttributeValue::N(n) => {
            let digits = n.chars().filter(char::is_ascii_digit).count();
            digits.div_ceil(2) + 1
        }
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
        _ => 1,
    }
}

const KIB: usize = 1024;

fn write_units(size: usize) -> f64 {
    size.max(1).div_ceil(KIB) as f64
}

fn read_units(size: usize, consistent: bool) -> f64 {
    let units = size.max(1).div_ceil(4 * KIB) as f64;
    if consistent { units } else { units / 2.0 }
}

/// The table a DynamoDB request is for (a transaction: its first item's), and the kind of
/// item when it names one (not a query or a batch): its sort key up to the first `#`
/// (`ORDER`, `EVENT`, `RESERVATION`, `TX`…).
fn addressed(input: &Input) -> (Option<String>, Option<String>) {
    use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
    use aws_sdk_dynamodb::operation::get_item::GetItemInput;
    use aws_sdk_dynamodb::operation::put_item::PutItemInput;
    use aws_sdk_dynamodb::operation::query::QueryInput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
    let (table, key) = if let Some(get) = input.downcast_ref::<GetItemInput>() {
        (get.table_name(), get.key())
    } else if let Some(put) = input.downcast_ref::<PutItemInput>() {
        (put.table_name(), put.item())
    } else if let Some(query) = input.downcast_ref::<QueryInput>() {
        (query.table_name(), None)
    } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
        (delete.table_name(), delete.key())
    } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
        (update.table_name(), update.key())
    } else if let Some(first) = input
        .downcast_ref::<TransactWriteItemsInput>()
        .and_then(|t| t.transact_items().first())
    {
        if let Some(put) = first.put() {
            (Some(put.table_name()), Some(put.item()))
        } else if let Some(update) = first.update() {
            (Some(update.table_name()), Some(update.key()))
        } else if let Some(delete) = first.delete() {
            (Some(delete.table_name()), Some(delete.key()))
        } else if let Some(check) = first.condition_check() {
            (Some(check.table_name()), Some(check.key()))
        } else {
            (None, None)
        }
    } else {
        (None, None)
    };
    let kind = key
        .and_then(|k| k.get("sk"))
        .and_then(|sk| sk.as_s().ok())
        .map(|sk| sk.split('#').next().unwrap_or(sk).to_owned());
    (table.map(str::to_owned), kind)
}

fn consistent_read(input: &Input) -> bool {
    use aws_sdk_dynamodb::operation::get_item::GetItemInput;
    use aws_sdk_dynamodb::operation::query::QueryInput;
    let get = input
        .downcast_ref::<GetItemInput>()
        .and_then(GetItemInput::consistent_read);
    let query = input
        .downcast_ref::<QueryInput>()
        .and_then(QueryInput::consistent_read);
    get.or(query).unwrap_or(false)
}

/// The write units of a DynamoDB request, from the items it writes.
fn write_capacity(input: &Input) -> f64 {
    use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
    use aws_sdk_dynamodb::operation::put_item::PutItemInput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
    if let Some(put) = input.downcast_ref::<PutItemInput>() {
        return write_units(put.item().map_or(KIB, item_size));
    }
    if input.downcast_ref::<DeleteItemInput>().is_some()
        || input.downcast_ref::<UpdateItemInput>().is_some()
    {
        return write_units(KIB);
    }
    input
        .downcast_ref::<TransactWriteItemsInput>()
        .map_or(0.0, |t| {
            t.transact_items()
                .iter()
                .map(|item| 2.0 * write_units(item.put().map_or(KIB, |p| item_size(p.item()))))
                .sum()
        })
}

/// The read units of a DynamoDB request, from the items it read (none for a write).
fn read_capacity(output: Option<&Output>, consistent: bool) -> f64 {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    let Some(output) = output else {
        return 0.0;
    };
    let size = if let Some(get) = output.downcast_ref::<GetItemOutput>() {
        get.item().map_or(0, item_size)
    } else if let Some(query) = output.downcast_ref::<QueryOutput>() {
        query.items().iter().map(item_size).sum()
    } else {
        return 0.0;
    };
    read_units(size, consistent)
}

pub(crate) fn clients(sdk: &aws_config::SdkConfig, requests: &Arc<Requests>) -> AwsClients {
    let count = |service| Count {
        service,
        requests: requests.clone(),
    };
    AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(count("dynamodb"))
                .build(),
        ),
        streams: aws_sdk_dynamodbstreams::Client::from_conf(
            aws_sdk_dynamodbstreams::config::Builder::from(sdk)
                .interceptor(count("dynamodbstreams"))
                .build(),
        ),
        sns: aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(sdk)
                .interceptor(count("sns"))
                .build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(sdk)
                .interceptor(count("sqs"))
                .build(),
        ),
    }
}

fn text<E: std::error::Error>(e: E) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}

/// The topology provisioned on the tests' endpoint (LocalStack, or `AWS_ENDPOINT_URL`) under
/// a fresh prefix, for one benchmark.
pub(crate) struct Provisioned {
    pub sdk: aws_config::SdkConfig,
    pub prefix: String,
    pub names: Names,
    /// Deletes every table, topic and queue when the benchmark is done.
    pub cleanup: platform::testing::aws::Cleanup,
}

/// Installs the tools if needed, then provisions the topology for the benchmark `what`.
pub(crate) async fn provisioned(what: &str) -> BenchResult<Provisioned> {
    crate::size::ensure_test_tools()?;
    let endpoint = platform::testing::aws::endpoint();
    let sdk = endpoint.sdk_config().await;
    let prefix = format!("{}-", platform::testing::aws::unique_name(what));
    eprintln!("{what}: provisioning the topology on LocalStack under {prefix}…");
    let names = local::aws::provision(&sdk, &prefix)
        .await
        .map_err(|e| e.to_string())?;
    let cleanup = platform::testing::aws::Cleanup::new(endpoint);
    names.tables.values().for_each(|t| cleanup.table(t));
    names.topics.values().for_each(|t| cleanup.topic(t));
    // Every queue: consumed ones, their dead-letter queues and the relays' failure queues.
    for queue in names.urls.values() {
        cleanup.queue(queue);
    }
    Ok(Provisioned {
        sdk,
        prefix,
        names,
        cleanup,
    })
}

/// A queue subscribed to the order topic's outcomes, read with clients that are not counted
/// (it is the benchmark's, not the system's); deleted with the rest of `at`.
pub(crate) async fn listen_for_outcomes(
    at: &Provisioned,
    outcomes: Outcomes,
    stopped: watch::Receiver<bool>,
) -> BenchResult<()> {
    let sqs = aws_sdk_sqs::Client::new(&at.sdk);
    let sns = aws_sdk_sns::Client::new(&at.sdk);
    let url = sqs
        .create_queue()
        .queue_name(format!("{}bench-outcomes", at.prefix))
        .send()
        .await
        .map_err(text)?
        .queue_url
        .ok_or("no queue url")?;
    at.cleanup.queue(&url);
    let arn = local::aws::queue_arn(&sqs, &url).await?;
    local::aws::subscribe(
        &sns,
        &at.names.topics[&Service::Order],
        &arn,
        &OUTCOME_EVENTS,
    )
    .await?;
    tokio::spawn(async move {
        while !*stopped.borrow() {
            // Long polls of a second: an outcome is heard as soon as it arrives, and the
            // loop sees the stop soon.
            let Ok(out) = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
            else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let now = Instant::now();
            for m in out.messages() {
                outcomes.heard(m.body().unwrap_or_default(), now);
                if let Some(receipt) = m.receipt_handle() {
                    let _ = sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(receipt)
                        .send()
                        .await;
                }
            }
        }
    });
    Ok(())
}

/// Waits until every queue of the system is empty and no function ran, three looks in a
/// row (a record still in a table's stream shows up as a relay invocation).
pub(crate) async fn settle(
    sqs: &aws_sdk_sqs::Client,
    names: &Names,
    invocations: &platform::invocations::Invocations,
) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut quiet = 0;
    let mut last = invocations.snapshot();
    let mut still_busy = String::new();
    while quiet < 3 {
        if Instant::now() > deadline {
            return Err(format!(
                "the system did not settle within 180 s; still busy: {still_busy}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = invocations.snapshot();
        let mut busy: Vec<String> = now
            .iter()
            .filter(|(f, s)| last.get(*f) != Some(*s))
            .map(|(f, _)| f.clone())
            .collect();
        last = now;
        for (url, dlq) in names.queues.values() {
            for queue in [url, dlq] {
                let attributes = sqs
                    .get_queue_attributes()
                    .queue_url(queue)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send()
                    .await
                    .map_err(text)?
                    .attributes
                    .unwrap_or_default();
                if attributes
                    .values()
                    .any(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
                {
                    busy.push(queue.rsplit('/').next().unwrap_or(queue).to_owned());
                }
            }
        }
        if !busy.is_empty() {
            still_busy = busy.join(", ");
        }
        quiet = if busy.is_empty() { quiet + 1 } else { 0 };
    }
    Ok(())
}

/// The template's `MemorySize` (Globals), in GB: what Lambda bills duration at.
fn lambda_memory_gb() -> f64 {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
    )
    .unwrap_or_default();
    let mb = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(128.0);
    mb / 1024.0
}

pub async fn bill(settings: Settings) -> BenchResult<String> {
    let at = provisioned("bill").await?;
    let (sdk, names) = (&at.sdk, &at.names);
    let requests = Arc::new(Requests::default());
    let mut env = HashMap::from([
        ("JWT_SECRET", "benchmark-secret-of-at-least-32-bytes!"),
        // The schedule's runs are a fixed cost, not the orders': none during the run. What
        // the sweep does for these orders is theirs, and is counted: see `sweep_rounds`.
        ("SWEEP_INTERVAL_SECONDS", "3600"),
        ("UNDO_GRACE_SECONDS", "1"),
    ]);
    env.extend(NO_CLIENT_LIMITS);
    let config = LocalConfig::from_env(&env).map_err(|e| e.to_string())?;
    let system = AwsSystem::start_with(config, clients(sdk, &requests), names.clone())
        .await
        .map_err(|e| e.to_string())?;
    system.invocations.model_requests(request_latency::latency);
    let outcomes = Outcomes::default();
    let (stop, stopped) = watch::channel(false);
    listen_for_outcomes(&at, outcomes.clone(), stopped).await?;
    let plain_sqs = aws_sdk_sqs::Client::new(sdk);
    let shop = Shop::new(system.router(), system.services.users.clone());
    eprintln!("bill: setting up {} customers…", settings.clients);
    let scenario = Arc::new(shop::set_up(&shop, settings.clients, settings.orders).await?);
    settle(&plain_sqs, names, &system.invocations).await?;

    let requests_before = requests.snapshot();
    let invocations_before = system.invocations.snapshot();
    eprintln!(
        "bill: {} orders from {} clients…",
        settings.orders, settings.clients
    );
    let t0 = Instant::now();
    let placed = shop::closed_loop(
        &shop,
        &outcomes,
        &scenario,
        settings.clients,
        settings.orders,
        ORDER_TIMEOUT,
    )
    .await?;
    let elapsed = t0.elapsed();
    settle(&plain_sqs, names, &system.invocations).await?;
    let swept = sweep_rounds(&system, &plain_sqs, names).await?;
    let window = t0.elapsed();
    let requests_after = requests.snapshot();
    let invocations_after = system.invocations.snapshot();
    let _ = stop.send(true);
    system.shutdown().await;

    let requests: BTreeMap<(&'static str, String), Tally> = requests_after
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.since(&requests_before.get(k).copied().unwrap_or_default()),
            )
        })
        // Index writes are billed units without a request of their own.
        .filter(|(_, t)| t.requests > 0 || t.write_units > 0.0)
        .collect();
    let invocations: BTreeMap<String, FunctionStats> = invocations_after
        .iter()
        .map(|(f, s)| {
            (
                f.clone(),
                s.since(&invocations_before.get(f).copied().unwrap_or_default()),
            )
        })
        .filter(|(_, s)| s.invocations > 0)
        .collect();
    Ok(report(
        &settings,
        &placed,
        (elapsed, window, swept),
        &requests,
        &invocations,
    ))
}

/// The sweep's work for the orders, done now rather than over the next minutes: with a grace
/// of one second (60 on AWS: the same work, later), the sweep runs until nothing is due, and
/// what it publishes is relayed and handled. A confirmation, for one, is announced again a
/// bounded number of times. Each round's query and reads are counted with the orders (the
/// schedule's own invocations are not: see the note under the bill). Returns how many
/// orders the rounds found due.
async fn sweep_rounds(
    system: &AwsSystem,
    sqs: &aws_sdk_sqs::Client,
    names: &Names,
) -> BenchResult<usize> {
    const MOST_ROUNDS: usize = 8;
    let mut swept = 0;
    for _ in 0..MOST_ROUNDS {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let report = system
            .services
            .orders
            .sweep()
            .await
            .map_err(|e| format!("the sweep failed: {e}"))?;
        if report.due == 0 {
            return Ok(swept);
        }
        swept += report.due;
        settle(sqs, names, &system.invocations).await?;
    }
    Err(format!("orders were still due after {MOST_ROUNDS} sweeps"))
}

fn report(
    settings: &Settings,
    placed: &[Placed],
    (elapsed, window, swept): (Duration, Duration, usize),
    requests: &BTreeMap<(&'static str, String), Tally>,
    invocations: &BTreeMap<String, FunctionStats>,
) -> String {
    let n = placed.len().max(1) as f64;
    let count = |o: Option<Outcome>| placed.iter().filter(|p| p.outcome == o).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## The bill per order\n\n{} orders from {} clients on LocalStack (`bench bill --orders {} --clients {}`): {} confirmed, {} failed, {} without an outcome; {:.1} s, {:.1} s until every queue was empty and the sweep found nothing due ({:.2} sweeps of an order, a grace period of 1 s apart). Per order, everything between the first order and the last event they caused, the sweep's included (setup excluded).\n",
        placed.len(),
        settings.clients,
        settings.orders,
        settings.clients,
        count(Some(Outcome::Confirmed)),
        count(Some(Outcome::Failed)),
        count(None),
        elapsed.as_secs_f64(),
        window.as_secs_f64(),
        swept as f64 / n,
    );
    let _ = writeln!(out, "### AWS requests per order\n");
    let _ = writeln!(
        out,
        "| service | request | per order | failed | messages | read units | write units |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for ((service, operation), t) in requests {
        let _ = writeln!(
            out,
            "| {service} | {operation} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            t.requests as f64 / n,
            t.failed as f64 / n,
            t.messages as f64 / n,
            t.read_units / n,
            t.write_units / n
        );
    }
    let sum = |f: &dyn Fn(&(&'static str, String), &Tally) -> f64| -> f64 {
        requests.iter().map(|(k, t)| f(k, t)).sum::<f64>() / n
    };
    let is = |k: &(&'static str, String), service: &str| k.0 == service;
    let write_units = sum(&|_, t| t.write_units);
    let read_units = sum(&|_, t| t.read_units);
    let sns_billed = sum(&|k, t| if is(k, "sns") { t.billed as f64 } else { 0.0 });
    // Empty receives are the pollers' idling: a fixed cost per queue, not the orders'.
    let sqs_billed = sum(&|k, t| {
        if is(k, "sqs") && k.1 != "ReceiveMessage (empty)" {
            t.billed as f64
        } else {
            0.0
        }
    });
    let dynamodb_requests = sum(&|k, t| {
        if is(k, "dynamodb") {
            t.requests as f64
        } else {
            0.0
        }
    });
    let _ = writeln!(
        out,
        "\nDynamoDB: {dynamodb_requests:.2} requests, {write_units:.2} write units and {read_units:.2} read units per order. SNS: {sns_billed:.2} billed requests. SQS: {sqs_billed:.2} billed requests (without empty receives). Stream reads (`dynamodbstreams`) are free when Lambda reads the stream.\n"
    );

    let _ = writeln!(out, "### Lambda per order\n");
    let _ = writeln!(
        out,
        "| function | invocations per order | records per invocation | CPU per invocation | AWS requests per invocation | modelled ms per order | wall time per invocation here |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (function, s) in invocations {
        let per = s.invocations.max(1) as u32;
        let _ = writeln!(
            out,
            "| {function} | {:.2} | {:.1} | {} | {:.1} | {:.1} | {} |",
            s.invocations as f64 / n,
            s.records as f64 / f64::from(per),
            ms(s.cpu / per),
            s.requests as f64 / f64::from(per),
            s.modelled_ms as f64 / n,
            ms(s.busy / per),
        );
    }
    let total_of = |f: &dyn Fn(&FunctionStats) -> u64| -> f64 {
        invocations.values().map(|s| f(s) as f64).sum::<f64>() / n
    };
    let lambda_invocations = total_of(&|s| s.invocations);
    let modelled_ms = total_of(&|s| s.modelled_ms);
    let wall_ms = total_of(&|s| s.billed_ms);
    let api_requests: f64 = invocations
        .iter()
        .filter(|(f, _)| f.ends_with("-api"))
        .map(|(_, s)| s.invocations as f64)
        .sum::<f64>()
        / n;
    let memory_gb = lambda_memory_gb();
    let _ = writeln!(
        out,
        "\n{lambda_invocations:.2} invocations per order at {:.0} MB: {modelled_ms:.1} billed ms as modelled (each invocation's own CPU time, measured here, plus the latency of its AWS requests by the model of {MODEL_AS_OF} in bench/src/request_latency.rs, rounded up to the millisecond), {wall_ms:.1} ms of wall time here (waiting on LocalStack on two shared cores: not what Lambda would bill).\n",
        memory_gb * 1024.0
    );

    let p = &US_EAST_1;
    let million = 1.0e6;
    let floor = monolith::floor(placed, invocations);
    let gb_s = |ms: f64| ms / 1000.0 * memory_gb;
    let lines = [
        (
            "API Gateway HTTP API requests",
            api_requests,
            floor.api_requests,
            p.http_api_request,
        ),
        (
            "Lambda requests",
            lambda_invocations,
            floor.lambda_requests,
            p.lambda_request,
        ),
        (
            "Lambda duration (GB-s, arm64, modelled)",
            gb_s(modelled_ms),
            gb_s(floor.lambda_ms),
            p.lambda_arm64_gb_second * million,
        ),
        ("SNS requests", sns_billed, 0.0, p.sns_request),
        ("SQS requests", sqs_billed, 0.0, p.sqs_request),
        (
            "DynamoDB write request units",
            write_units,
            floor.write_units,
            p.dynamodb_write_unit,
        ),
        (
            "DynamoDB read request units",
            read_units,
            floor.read_units,
            p.dynamodb_read_unit,
        ),
    ];
    let _ = writeln!(
        out,
        "### Cost per 1M orders (us-east-1 list prices of {PRICES_AS_OF}, no free tier; bench/src/prices.rs)\n\nBeside the saga, its floor: the same orders as one monolith would serve them (one invocation, one transaction over the items an order touches; the model is in bench/src/monolith.rs).\n"
    );
    let _ = writeln!(
        out,
        "| item | USD per million | saga: per order | saga: USD per 1M orders | monolith: per order | monolith: USD per 1M orders |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: |");
    let (mut total, mut floor_total) = (0.0, 0.0);
    for (item, per_order, floor_per_order, usd_per_million) in lines {
        let (cost, floor_cost) = (
            per_order * usd_per_million,
            floor_per_order * usd_per_million,
        );
        total += cost;
        floor_total += floor_cost;
        let _ = writeln!(
            out,
            "| {item} | {usd_per_million:.3} | {per_order:.3} | {cost:.2} | {floor_per_order:.3} | {floor_cost:.2} |"
        );
    }
    let _ = writeln!(
        out,
        "| **total** | | | **{total:.2}** | | **{floor_total:.2}** |\n"
    );
    let _ = writeln!(
        out,
        "Saga ÷ monolith: **{:.2}**. With Lambda's wall time here instead of the model, the saga's duration line would be {:.2} USD.\n",
        total / floor_total.max(f64::MIN_POSITIVE),
        gb_s(wall_ms) * p.lambda_arm64_gb_second * million
    );

    let sweeps_per_month = 30.0 * 24.0 * 60.0;
    let _ = writeln!(
        out,
        "Not per order: the sweep's schedule ({sweeps_per_month:.0} runs a month: {:.3} USD in Lambda requests), the event source mappings' empty long polls (AWS bills them to the queue owner), storage and data transfer.\n",
        sweeps_per_month * p.lambda_request / million
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("ORDER#1".to_owned())),
            ("n".to_owned(), AttributeValue::N("12345".to_owned())),
            ("ok".to_owned(), AttributeValue::Bool(true)),
            (
                "l".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("ab".to_owned())]),
            ),
        ]);
        // pk: 2 + 7; n: 1 + (3 + 1); ok: 2 + 1; l: 1 + 3 + (1 + 2)
        assert_eq!(item_size(&item), 9 + 5 + 3 + 7);
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(100, false), 0.5);
    }
}
