//! The local system against real AWS APIs: an emulator (moto, LocalStack) at
//! `AWS_ENDPOINT_URL`, or an account. It provisions the topology (idempotently), then plays
//! what Lambda and EventBridge would: an event source mapping per queue (its pollers poll, deliver
//! batches, delete only successes; visibility timeout and DLQ are the queues' own), a reader
//! per table stream feeding the relays, and the sweep on a timer — all calling the very same
//! handlers as the Lambda functions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, ShardIteratorType};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use contract::Service;
use platform::batch::{SqsFunction, fill_batch, sqs_message};
use platform::clock::{Clock, SystemClock};
use platform::docstore::dynamodb::DynamoDocStore;
use platform::ids::{IdGenerator, RandomIds};
use platform::invocations::{Invocations, Meter};
use platform::lambda::SqsDeadLetters;
use platform::outbox;
use platform::packing::Packing;
use platform::ports::Ports;
use platform::publish::EventPublisher;
use platform::relay::{OutboxRecord, relay};
use platform::sns::SnsPublisher;
use platform::telemetry;
use tokio::sync::watch;
use tracing::Instrument;

use crate::config::LocalConfig;
use crate::system::{Running, World, spawn_sweep};
use crate::template::{QueueSource, Stack, StreamSource};

/// How long a poll of an SQS event source waits for messages, as Lambda's does (20 s, the
/// longest SQS allows): an idle queue costs one request every 20 s, and a message is handed
/// over as soon as it arrives.
const SQS_LONG_POLL_SECONDS: u64 = 20;

/// How long a received message stays invisible here: above a handler's run time, short
/// enough that a failed message comes back soon when developing.
pub const VISIBILITY_TIMEOUT_SECONDS: u64 = 5;

#[derive(Debug, thiserror::Error)]
#[error("provisioning {what} failed: {reason}")]
pub struct ProvisionError {
    what: String,
    reason: String,
}

fn failed(what: impl Into<String>) -> impl FnOnce(String) -> ProvisionError {
    let what = what.into();
    move |reason| ProvisionError { what, reason }
}

/// The names of what was provisioned.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub tables: BTreeMap<Service, String>,
    /// Each service's topic ARN (a topic is named after its service).
    pub topics: BTreeMap<Service, String>,
    /// consumed queue → (url, dead-letter queue url)
    pub queues: BTreeMap<String, (String, String)>,
    /// Every queue's url, dead-letter and failure queues included.
    pub urls: BTreeMap<String, String>,
}

fn text<E: std::error::Error>(e: E) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}

/// Creates (or finds) every table, topic, queue, dead-letter queue and subscription that
/// `template.yaml` declares, named `prefix` + the local name.
pub async fn provision(sdk: &SdkConfig, prefix: &str) -> Result<Names, ProvisionError> {
    let stack = Stack::load().map_err(|e| failed("the template")(e.to_string()))?;
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let streams = aws_sdk_dynamodbstreams::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut names = Names::default();
    for table in &stack.tables {
        let name = format!("{prefix}{}", table.name);
        platform::dynamo::create_table(&dynamodb, &streams, &name)
            .await
            .map_err(|e| failed(&name)(platform::errors::chain(&e).to_string()))?;
        names.tables.insert(table.service, name);
    }
    if let Some(missing) = Service::ALL.iter().find(|s| !names.tables.contains_key(s)) {
        return Err(failed("the template")(format!(
            "it declares no table for the {missing} service"
        )));
    }
    for topic in &stack.topics {
        let service = Service::from_name(&topic.name).ok_or_else(|| {
            failed(&topic.id)(format!("the topic {:?} is no service's", topic.name))
        })?;
        let name = format!("{prefix}{}", topic.name);
        let arn = sns
            .create_topic()
            .name(&name)
            .send()
            .await
            .map_err(|e| failed(&name)(text(e)))?
            .topic_arn
            .unwrap_or_default();
        names.topics.insert(service, arn);
    }
    // Dead-letter queues first: a redrive policy names its target's ARN.
    let mut queues: Vec<_> = stack.queues.iter().collect();
    queues.sort_by_key(|q| q.redrive.is_some());
    let mut arns = BTreeMap::new();
    let windows: BTreeMap<&str, Duration> = stack
        .consumed_queues()
        .map(|(_, source)| (source.queue.as_str(), source.batching_window))
        .collect();
    for queue in queues {
        let name = format!("{prefix}{}", queue.name);
        // Locally a failed message comes back sooner than the template's timeout says; a
        // batch waiting for its window holds its messages that much longer.
        let visibility = queue
            .visibility_timeout
            .min(Duration::from_secs(VISIBILITY_TIMEOUT_SECONDS))
            + windows
                .get(queue.name.as_str())
                .copied()
                .unwrap_or_default();
        let mut create = sqs.create_queue().queue_name(&name).attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.as_secs().to_string(),
        );
        if let Some(redrive) = &queue.redrive {
            let target = arns.get(&redrive.dead_letters).ok_or_else(|| {
                failed(&name)(format!(
                    "its dead-letter queue {} is not declared",
                    redrive.dead_letters
                ))
            })?;
            let policy = serde_json::json!({"deadLetterTargetArn": target, "maxReceiveCount": redrive.max_receive_count.to_string()});
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = create
            .send()
            .await
            .map_err(|e| failed(&name)(text(e)))?
            .queue_url
            .unwrap_or_default();
        arns.insert(
            queue.name.clone(),
            queue_arn(&sqs, &url).await.map_err(failed(&name))?,
        );
        names.urls.insert(queue.name.clone(), url);
    }
    for queue in &stack.queues {
        if let Some(redrive) = &queue.redrive {
            names.queues.insert(
                queue.name.clone(),
                (
                    names.urls[&queue.name].clone(),
                    names.urls[&redrive.dead_letters].clone(),
                ),
            );
        }
    }
    for subscription in &stack.subscriptions {
        let topic = Service::from_name(&subscription.topic)
            .and_then(|s| names.topics.get(&s))
            .ok_or_else(|| failed(&subscription.id)(format!("no topic {}", subscription.topic)))?;
        let queue = arns
            .get(&subscription.queue)
            .ok_or_else(|| failed(&subscription.id)(format!("no queue {}", subscription.queue)))?;
        subscribe_with(
            &sns,
            topic,
            queue,
            subscription.raw_message_delivery,
            subscription.filter_policy.as_deref(),
        )
        .await
        .map_err(failed(&subscription.id))?;
    }
    Ok(names)
}

/// Subscribes an observer's queue to a topic as the consumers are: raw delivery, filtered
/// on `type`.
pub async fn subscribe(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue_arn: &str,
    types: &[&str],
) -> Result<(), String> {
    let policy = serde_json::json!({ "type": types }).to_string();
    subscribe_with(sns, topic_arn, queue_arn, true, Some(&policy)).await
}

async fn subscribe_with(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue_arn: &str,
    raw_message_delivery: bool,
    filter_policy: Option<&str>,
) -> Result<(), String> {
    let mut subscribe = sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", raw_message_delivery.to_string());
    if let Some(policy) = filter_policy {
        subscribe = subscribe.attributes("FilterPolicy", policy);
    }
    subscribe.send().await.map(|_| ()).map_err(text)
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(text)?;
    out.attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| "no queue ARN".to_owned())
}

/// The system running against an AWS API.
pub struct AwsSystem {
    pub running: Running,
    pub services: crate::system::Services,
    pub names: Names,
    /// Every function's invocations, as Lambda would count and bill them.
    pub invocations: Arc<Invocations>,
    /// Every function's metrics and trace segments.
    pub telemetry: crate::system::Telemetry,
}

/// The clients the system calls AWS with.
#[derive(Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> AwsClients {
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }
}

impl AwsSystem {
    /// Provisions under `prefix` and starts the pollers, stream readers and the sweep.
    pub async fn start(
        config: LocalConfig,
        sdk: &SdkConfig,
        prefix: &str,
    ) -> Result<AwsSystem, ProvisionError> {
        let names = provision(sdk, prefix).await?;
        AwsSystem::start_with(config, AwsClients::new(sdk), names).await
    }

    /// The same on provisioned `names`, calling AWS with the `clients` given (a benchmark
    /// counts their requests).
    pub async fn start_with(
        config: LocalConfig,
        clients: AwsClients,
        names: Names,
    ) -> Result<AwsSystem, ProvisionError> {
        let dynamodb = clients.dynamodb.clone();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
        let sweep_interval = config.sweep_interval;
        // As the template gives every function (`ITEM_PACKING`, default deflate), or as set.
        let packing = Packing::from_env(&config.env)
            .map_err(|e| failed("the configuration")(e.to_string()))?;
        let world = World::build(config, clock.clone(), ids.clone(), |service, _| {
            Ports::new(
                Arc::new(
                    DynamoDocStore::new(dynamodb.clone(), names.tables[&service].clone())
                        .packing(packing),
                ),
                clock.clone(),
                ids.clone(),
            )
        })
        .map_err(|e| failed("the topology")(e.to_string()))?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let sqs = clients.sqs.clone();
        for consumer in &world.consumers {
            let (url, dlq) = names.queues.get(&consumer.queue).cloned().ok_or_else(|| {
                failed(&consumer.queue)("not provisioned with a dead-letter queue".to_owned())
            })?;
            let dead_letters = Box::new(SqsDeadLetters::new(sqs.clone(), dlq));
            let function = world.sqs_function(consumer, dead_letters);
            for _ in 0..consumer.source.pollers() {
                let poll = poll_queue(
                    sqs.clone(),
                    url.clone(),
                    consumer.source.clone(),
                    function.clone(),
                    stopped.clone(),
                );
                tasks.push(tokio::spawn(
                    poll.instrument(telemetry::function_span(&consumer.function)),
                ));
            }
        }
        let sns = clients.sns.clone();
        let streams = clients.streams.clone();
        for relay in &world.relays {
            let topic = Service::from_name(&relay.topic)
                .and_then(|s| names.topics.get(&s))
                .ok_or_else(|| failed(&relay.topic)("no such topic provisioned".to_owned()))?;
            let publisher: Arc<dyn EventPublisher> =
                Arc::new(SnsPublisher::new(sns.clone(), topic.clone()));
            let read = read_stream(
                Reader {
                    dynamodb: dynamodb.clone(),
                    streams: streams.clone(),
                    table: names.tables[&relay.service].clone(),
                    source: relay.source.clone(),
                },
                publisher,
                world.meter(&relay.function),
                stopped.clone(),
            );
            tasks.push(tokio::spawn(
                read.instrument(telemetry::function_span(&relay.function)),
            ));
        }
        tasks.extend(spawn_sweep(&world, sweep_interval, stopped.clone()));
        Ok(AwsSystem {
            running: Running::new(world.router(), stop, tasks),
            services: world.services.clone(),
            names,
            invocations: world.invocations,
            telemetry: world.telemetry,
        })
    }

    pub fn router(&self) -> axum::Router {
        self.running.router()
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await
    }
}

/// Sleeps `duration`, or less if asked to stop.
async fn pause(duration: Duration, stopped: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stopped.changed() => {}
    }
}

/// One poller of a queue's event source mapping, as Lambda's: long-poll for up to a batch,
/// fill it for the batching window, hand it over, delete only the successes.
async fn poll_queue(
    sqs: aws_sdk_sqs::Client,
    url: String,
    source: QueueSource,
    function: Arc<dyn SqsFunction>,
    mut stopped: watch::Receiver<bool>,
) {
    // SQS hands over at most 10 messages a receive (`receive` asks for no more); a larger
    // batch is filled by more receives within the batching window, as Lambda does.
    let batch_size = source.batch_size;
    while !*stopped.borrow() {
        let wait = Duration::from_secs(SQS_LONG_POLL_SECONDS);
        let messages = match receive(&sqs, &url, batch_size, wait, &mut stopped).await {
            Some(Ok(messages)) => messages,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "receive failed; trying again");
                pause(Duration::from_millis(500), &mut stopped).await;
                continue;
            }
            None => break,
        };
        if messages.is_empty() {
            continue;
        }
        let messages = fill_batch(
            messages,
            batch_size,
            source.batching_window,
            |wanted, left| {
                let (sqs, url, mut stopped) = (sqs.clone(), url.clone(), stopped.clone());
                async move {
                    match receive(&sqs, &url, wanted, left, &mut stopped).await? {
                        Ok(messages) => Some(messages),
                        Err(e) => {
                            tracing::warn!(error = %e, "receive failed; the batch goes as it is");
                            None
                        }
                    }
                }
            },
        )
        .await;
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let attributes: std::collections::BTreeMap<String, String> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .filter_map(|(k, v)| {
                                v.string_value().map(|s| (k.clone(), s.to_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                sqs_message(
                    m.message_id().unwrap_or_default(),
                    m.receipt_handle().unwrap_or_default(),
                    m.body().unwrap_or_default(),
                    &attributes,
                    receive_count,
                )
            })
            .collect();
        let response = function.handle_batch(event).await;
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                !response
                    .batch_item_failures
                    .iter()
                    .any(|f| Some(f.item_identifier.as_str()) == m.message_id())
            })
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        // One request per ten of the batch's successes (SQS's most), as Lambda's event
        // source mapping deletes them. What is not deleted comes back after the visibility
        // timeout: at least once.
        for entries in done.chunks(10) {
            if let Err(e) = sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries.to_vec()))
                .send()
                .await
            {
                tracing::warn!(error = %text(e), "deleting the handled messages failed; they will come back");
            }
        }
    }
}

/// Up to `max` messages, long-polling up to `wait` (whole seconds, at most SQS's 20). None
/// when the system stops meanwhile: what the poll would have received stays in the queue
/// (or comes back after the visibility timeout).
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max: usize,
    wait: Duration,
    stopped: &mut watch::Receiver<bool>,
) -> Option<Result<Vec<aws_sdk_sqs::types::Message>, String>> {
    if *stopped.borrow() {
        return None;
    }
    let wait_seconds = wait.as_secs().clamp(1, SQS_LONG_POLL_SECONDS);
    let receive = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
        .wait_time_seconds(wait_seconds as i32)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .message_attribute_names("All")
        .send();
    tokio::select! {
        received = receive => Some(received.map(|out| out.messages.unwrap_or_default()).map_err(text)),
        _ = stopped.changed() => None,
    }
}

/// A stream record as the event source's filter sees it: its event name and the text,
/// number and binary attributes of its new image.
fn filtered_view(record: &aws_sdk_dynamodbstreams::types::Record) -> serde_json::Value {
    let image: serde_json::Map<String, serde_json::Value> = record
        .dynamodb()
        .and_then(|c| c.new_image())
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| {
            let typed = match value {
                StreamValue::S(s) => serde_json::json!({ "S": s }),
                StreamValue::N(n) => serde_json::json!({ "N": n }),
                // As Lambda's filter sees binary: base64.
                StreamValue::B(b) => serde_json::json!({ "B": BASE64.encode(b.as_ref()) }),
                _ => return None,
            };
            Some((name.clone(), typed))
        })
        .collect();
    serde_json::json!({
        "eventName": record.event_name().map(|n| n.as_str()).unwrap_or_default(),
        "dynamodb": { "NewImage": image },
    })
}

/// The events of a stream record that passes the relay's filter criteria.
fn outbox_record(
    source: &StreamSource,
    record: &aws_sdk_dynamodbstreams::types::Record,
) -> Option<OutboxRecord> {
    if !source.passes(&filtered_view(record)) {
        return None;
    }
    let change = record.dynamodb()?;
    let image: &HashMap<String, StreamValue> = change.new_image()?;
    let events = outbox::decode_events(
        image
            .get(outbox::EVENTS_ATTRIBUTE)
            .and_then(platform::dynamo::stream_stored),
    );
    let written_at = change
        .approximate_creation_date_time()
        .and_then(|at| chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()));
    Some(OutboxRecord {
        sequence_number: change.sequence_number().unwrap_or_default().to_owned(),
        events,
        written_at,
    })
}

/// Where the relay of one shard goes on from.
#[derive(Debug, Clone)]
enum Position {
    /// After this record: it and those before were relayed.
    After(String),
    /// At this record: relaying it failed, it is read again.
    At(String),
}

/// How often a stream reader polls a shard that had nothing new: Lambda's rate for a
/// DynamoDB stream event source (four times a second per shard).
const STREAM_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often a stream reader looks for shards opened since (DynamoDB rolls them over every
/// few hours; a closed shard makes it look at once).
const SHARD_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// An iterator for every shard of the stream, each at its relay position (new shards from
/// their start).
async fn iterators_at(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    positions: &BTreeMap<String, Position>,
    finished: &std::collections::BTreeSet<String>,
) -> BTreeMap<String, String> {
    let shards = streams
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .ok()
        .and_then(|d| d.stream_description)
        .map(|d| d.shards.unwrap_or_default())
        .unwrap_or_default();
    let mut iterators = BTreeMap::new();
    for shard in shards {
        let Some(id) = shard.shard_id.filter(|id| !finished.contains(id)) else {
            continue;
        };
        let request = streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(&id);
        let request = match positions.get(&id) {
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Some(Position::After(seq)) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            Some(Position::At(seq)) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(seq),
        };
        if let Ok(Some(it)) = request.send().await.map(|o| o.shard_iterator) {
            iterators.insert(id, it);
        }
    }
    iterators
}

/// The stream relay of one table: reads every shard from its start, relays outbox inserts,
/// and after a failure reads again from the failed record.
/// Where a relay reads: a table's stream, with its event source's settings.
struct Reader {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    source: StreamSource,
}

async fn read_stream(
    reader: Reader,
    publisher: Arc<dyn EventPublisher>,
    meter: Meter,
    mut stopped: watch::Receiver<bool>,
) {
    let Reader {
        dynamodb,
        streams,
        table,
        source,
    } = reader;
    let stream_arn = match dynamodb.describe_table().table_name(&table).send().await {
        Ok(out) => out.table.and_then(|t| t.latest_stream_arn),
        Err(e) => {
            tracing::error!(%table, error = %text(e), "no stream to relay");
            None
        }
    };
    let Some(stream_arn) = stream_arn else { return };
    let mut positions: BTreeMap<String, Position> = BTreeMap::new();
    let mut iterators: BTreeMap<String, String> = BTreeMap::new();
    let mut shards = 0;
    // Closed shards read to their end.
    let mut finished = std::collections::BTreeSet::new();
    let mut refreshed = tokio::time::Instant::now();
    while !*stopped.borrow() {
        // Fresh iterators for every shard when one was lost (closed, expired, failed) or new
        // shards may have opened.
        if iterators.len() < shards
            || iterators.is_empty()
            || refreshed.elapsed() > SHARD_REFRESH_INTERVAL
        {
            iterators = iterators_at(&streams, &stream_arn, &positions, &finished).await;
            shards = iterators.len();
            refreshed = tokio::time::Instant::now();
        }
        let mut read_any = false;
        for (shard, iterator) in iterators.clone() {
            let out = match streams
                .get_records()
                .shard_iterator(&iterator)
                .limit(i32::try_from(source.batch_size).unwrap_or(100))
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    tracing::warn!(%table, error = %text(e), "reading the stream failed; trying again");
                    iterators.remove(&shard);
                    continue;
                }
            };
            let last = out
                .records()
                .last()
                .and_then(|r| r.dynamodb())
                .and_then(|c| c.sequence_number())
                .map(str::to_owned);
            let records: Vec<OutboxRecord> = out
                .records()
                .iter()
                .filter_map(|r| outbox_record(&source, r))
                .collect();
            read_any |= !out.records().is_empty();
            // The event source mapping's filter passes only outbox items: a batch without
            // any invokes nothing.
            let relayed = if records.is_empty() {
                Ok(0)
            } else {
                meter
                    .time(records.len(), relay(records, publisher.as_ref()))
                    .await
            };
            match relayed {
                Ok(_) => {
                    if let Some(last) = last {
                        positions.insert(shard.clone(), Position::After(last));
                    }
                    match out.next_shard_iterator {
                        Some(next) => {
                            iterators.insert(shard, next);
                        }
                        None => {
                            iterators.remove(&shard);
                            finished.insert(shard);
                        }
                    }
                }
                Err(failure) => {
                    tracing::warn!(%table, sequence_number = %failure.sequence_number, reason = %failure.reason, "relay failed; reading again from there");
                    positions.insert(shard.clone(), Position::At(failure.sequence_number));
                    // Read again from the failed record, after a pause.
                    iterators.remove(&shard);
                    pause(Duration::from_millis(500), &mut stopped).await;
                }
            }
        }
        if !read_any {
            pause(STREAM_POLL_INTERVAL, &mut stopped).await;
        }
    }
}

/// Moves the messages a dead-letter queue holds now back onto its queue (after the cause was
/// fixed). Only as many as it held when called: a message that fails again comes back to the
/// DLQ and is not moved around in circles. Returns how many were moved.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
) -> Result<usize, String> {
    let held: usize = sqs
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(text)?
        .attributes
        .and_then(|a| {
            a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    let mut moved = 0;
    while moved < held {
        let out = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(i32::try_from((held - moved).min(10)).unwrap_or(10))
            .message_attribute_names("All")
            .send()
            .await
            .map_err(text)?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let mut send = sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(m.body().unwrap_or_default());
            for (name, value) in m.message_attributes().into_iter().flatten() {
                send = send.message_attributes(name, value.clone());
            }
            send.send().await.map_err(text)?;
            if let Some(receipt) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(text)?;
            }
            moved += 1;
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodbstreams::types::{OperationType, Record, StreamRecord};

    use super::*;
    use crate::template::Trigger;

    fn record(events: Option<StreamValue>) -> Record {
        let mut image = HashMap::from([("pk".to_owned(), StreamValue::S("ORDER#o-1".to_owned()))]);
        if let Some(events) = events {
            image.insert(outbox::EVENTS_ATTRIBUTE.to_owned(), events);
        }
        Record::builder()
            .event_name(OperationType::Modify)
            .dynamodb(StreamRecord::builder().set_new_image(Some(image)).build())
            .build()
    }

    /// Every relay's filter in the template, as the local event source applies it, passes a
    /// record that carries events as text or deflated (binary), and no record without them.
    #[test]
    fn every_relay_passes_events_as_text_or_binary_and_nothing_else() {
        let stack = Stack::load().unwrap_or_else(|e| panic!("{e}"));
        let relays: Vec<&StreamSource> = stack
            .functions
            .iter()
            .filter_map(|f| match &f.trigger {
                Trigger::Stream(source) => Some(source),
                _ => None,
            })
            .collect();
        assert_eq!(relays.len(), Service::ALL.len());
        let text = record(Some(StreamValue::S("[]".to_owned())));
        let deflated = record(Some(StreamValue::B(vec![3, 0].into())));
        let without = record(None);
        for relay in relays {
            assert!(relay.passes(&filtered_view(&text)), "{}: text", relay.table);
            assert!(
                relay.passes(&filtered_view(&deflated)),
                "{}: binary",
                relay.table
            );
            assert!(
                !relay.passes(&filtered_view(&without)),
                "{}: none",
                relay.table
            );
        }
    }
}
