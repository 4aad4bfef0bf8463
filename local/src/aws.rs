//! The local system against real AWS APIs: an emulator (moto, LocalStack) at
//! `AWS_ENDPOINT_URL`, or an account. It provisions the topology (idempotently), then plays
//! what Lambda and EventBridge would: an event source mapping per queue (poll, deliver
//! batches, delete only successes; visibility timeout and DLQ are the queues' own), a reader
//! per table stream feeding the relays, and the sweep on a timer — all calling the very same
//! handlers as the Lambda functions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue as StreamValue, OperationType, ShardIteratorType,
};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use contract::{Envelope, Service};
use platform::batch::{SqsFunction, sqs_message};
use platform::clock::{Clock, SystemClock};
use platform::docstore::dynamodb::DynamoDocStore;
use platform::ids::{IdGenerator, RandomIds};
use platform::invocations::{Invocations, Meter};
use platform::lambda::SqsDeadLetters;
use platform::outbox::OUTBOX_PK_PREFIX;
use platform::ports::Ports;
use platform::publish::EventPublisher;
use platform::relay::{OutboxRecord, relay};
use platform::sns::SnsPublisher;
use platform::telemetry;
use tokio::sync::watch;
use tracing::Instrument;
use user_service::store::dynamodb::DynamoUserStore;

use crate::config::LocalConfig;
use crate::system::{Running, World, spawn_sweep};
use crate::topology::{CONSUMERS, MAX_RECEIVE_COUNT, SQS_BATCH_SIZE, SQS_LONG_POLL_SECONDS};

/// How long a received message stays invisible here: above a handler's run time, short
/// enough that a failed message comes back soon when developing.
pub const VISIBILITY_TIMEOUT_SECONDS: i32 = 5;

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
    pub topics: BTreeMap<Service, String>,
    /// queue → (url, dead-letter queue url)
    pub queues: BTreeMap<&'static str, (String, String)>,
}

fn text<E: std::error::Error>(e: E) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}

/// Creates (or finds) every table, topic, queue, dead-letter queue and subscription.
pub async fn provision(sdk: &SdkConfig, prefix: &str) -> Result<Names, ProvisionError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let streams = aws_sdk_dynamodbstreams::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut names = Names::default();
    for service in Service::ALL {
        let table = format!("{prefix}{}", service.name());
        platform::dynamo::create_table(&dynamodb, &streams, &table)
            .await
            .map_err(|e| failed(&table)(e.to_string()))?;
        names.tables.insert(service, table);
        let topic = format!("{prefix}{}", service.name());
        let arn = sns
            .create_topic()
            .name(&topic)
            .send()
            .await
            .map_err(|e| failed(&topic)(text(e)))?
            .topic_arn
            .unwrap_or_default();
        names.topics.insert(service, arn);
    }
    for consumer in CONSUMERS {
        let dlq_name = format!("{prefix}{}-dlq", consumer.queue);
        let dlq = sqs
            .create_queue()
            .queue_name(&dlq_name)
            .send()
            .await
            .map_err(|e| failed(&dlq_name)(text(e)))?
            .queue_url
            .unwrap_or_default();
        let dlq_arn = queue_arn(&sqs, &dlq).await.map_err(failed(&dlq_name))?;
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT.to_string()}).to_string();
        let name = format!("{prefix}{}", consumer.queue);
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                VISIBILITY_TIMEOUT_SECONDS.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .map_err(|e| failed(&name)(text(e)))?
            .queue_url
            .unwrap_or_default();
        let arn = queue_arn(&sqs, &url).await.map_err(failed(&name))?;
        for (topic, types) in consumer.subscriptions {
            subscribe(&sns, &names.topics[topic], &arn, types)
                .await
                .map_err(failed(format!("{name} subscription to {}", topic.name())))?;
        }
        names.queues.insert(consumer.queue, (url, dlq));
    }
    Ok(names)
}

/// Subscribes a queue to a topic as every consumer is: raw delivery, filtered on `type`.
pub async fn subscribe(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue_arn: &str,
    types: &[&str],
) -> Result<(), String> {
    sns.subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .attributes(
            "FilterPolicy",
            serde_json::json!({ "type": types }).to_string(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(text)
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
        let users = Arc::new(DynamoUserStore::new(
            dynamodb.clone(),
            names.tables[&Service::User].clone(),
        ));
        let world = World::build(
            config,
            clock.clone(),
            ids.clone(),
            Some(users),
            |service, _| {
                Ports::new(
                    Arc::new(DynamoDocStore::new(
                        dynamodb.clone(),
                        names.tables[&service].clone(),
                    )),
                    clock.clone(),
                    ids.clone(),
                )
            },
        )
        .map_err(|e| failed("the topology")(e.to_string()))?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let sqs = clients.sqs.clone();
        for (queue, handler) in &world.consumers {
            let (url, dlq) = names.queues[queue].clone();
            let dead_letters = Box::new(SqsDeadLetters::new(sqs.clone(), dlq));
            let function = world.sqs_function(queue, handler.clone(), dead_letters);
            let poll = poll_queue(sqs.clone(), url, function, stopped.clone());
            tasks.push(tokio::spawn(
                poll.instrument(telemetry::function_span(queue)),
            ));
        }
        let sns = clients.sns.clone();
        let streams = clients.streams.clone();
        for service in Service::ALL {
            let function = format!("{}-relay", service.name());
            let publisher: Arc<dyn EventPublisher> = Arc::new(SnsPublisher::new(
                sns.clone(),
                names.topics[&service].clone(),
            ));
            let read = read_stream(
                dynamodb.clone(),
                streams.clone(),
                names.tables[&service].clone(),
                publisher,
                world.meter(&function),
                stopped.clone(),
            );
            tasks.push(tokio::spawn(
                read.instrument(telemetry::function_span(&function)),
            ));
        }
        tasks.push(spawn_sweep(&world, sweep_interval, stopped.clone()));
        Ok(AwsSystem {
            running: Running::new(world.router(), stop, tasks),
            services: world.services.clone(),
            names,
            invocations: world.invocations,
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

/// The event source mapping of one queue, as Lambda's: long-poll for up to a batch, hand it
/// over, delete only the successes.
async fn poll_queue(
    sqs: aws_sdk_sqs::Client,
    url: String,
    function: Arc<dyn SqsFunction>,
    mut stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        let receive = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(SQS_BATCH_SIZE)
            .wait_time_seconds(SQS_LONG_POLL_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send();
        // A long poll is abandoned when the system stops: what it would have received stays
        // in the queue (or comes back after the visibility timeout).
        let received = tokio::select! {
            received = receive => received,
            _ = stopped.changed() => break,
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %text(e), "receive failed; trying again");
                pause(Duration::from_millis(500), &mut stopped).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
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
        // One request for the batch's successes, as Lambda's event source mapping deletes
        // them. What is not deleted comes back after the visibility timeout: at least once.
        if !done.is_empty()
            && let Err(e) = sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(done))
                .send()
                .await
        {
            tracing::warn!(error = %text(e), "deleting the handled messages failed; they will come back");
        }
    }
}

/// The outbox record of a stream record, if it is an inserted outbox item.
fn outbox_record(record: &aws_sdk_dynamodbstreams::types::Record) -> Option<OutboxRecord> {
    if record.event_name() != Some(&OperationType::Insert) {
        return None;
    }
    let change = record.dynamodb()?;
    let image: &HashMap<String, StreamValue> = change.new_image()?;
    let text = |name: &str| image.get(name).and_then(|v| v.as_s().ok()).cloned();
    if !text("pk")?.starts_with(OUTBOX_PK_PREFIX) {
        return None;
    }
    let event = text("event")
        .ok_or_else(|| "outbox item without an event".to_owned())
        .and_then(|e| Envelope::from_json(&e).map_err(|e| e.to_string()));
    Some(OutboxRecord {
        sequence_number: change.sequence_number().unwrap_or_default().to_owned(),
        event,
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
async fn read_stream(
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    publisher: Arc<dyn EventPublisher>,
    meter: Meter,
    mut stopped: watch::Receiver<bool>,
) {
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
                .limit(100)
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
            let records: Vec<OutboxRecord> =
                out.records().iter().filter_map(outbox_record).collect();
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
