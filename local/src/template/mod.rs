//! `template.yaml`, read: the one statement of the topology. The local system (in memory and
//! on AWS APIs), the simulation, the provisioning and the benchmarks take their tables,
//! topics, queues, dead-letter queues, subscriptions, functions, event sources and schedule
//! from here; nothing else names them.
//!
//! Local names are the logical ids in kebab case, less their kind: `ProductOrderCreatedQueue`
//! is the queue `product-order-created`, `ProductOrderCreatedFunction` the function
//! `product-order-created`, `CouponSourceTable` the coupon-source service's table.
//!
//! What only operates the system on AWS is not read: alarms, log groups, the dashboard, the
//! alarm topic (a topic no service owns) and its e-mail subscription, and the `Fn::ForEach`
//! blocks that generate such resources (a block generating a table, topic, queue,
//! subscription or function is refused: the local system would not see it).

mod pattern;
mod yaml;

use std::collections::BTreeMap;
use std::time::Duration;

use contract::Service;
use platform::bus::FilterPolicy;
use yaml_serde::Value;

pub use pattern::EventPattern;
pub use yaml::local_name;
use yaml::{Reader, field};

/// The template the system was built with (a rebuild picks up an edit).
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template.yaml, {at}: {problem}")]
pub struct TemplateError {
    pub at: String,
    pub problem: String,
}

impl TemplateError {
    pub fn new(at: impl Into<String>, problem: impl Into<String>) -> TemplateError {
        TemplateError {
            at: at.into(),
            problem: problem.into(),
        }
    }
}

/// What the template declares, by local name.
#[derive(Debug, Clone)]
pub struct Stack {
    pub tables: Vec<Table>,
    pub topics: Vec<Topic>,
    pub queues: Vec<Queue>,
    pub subscriptions: Vec<Subscription>,
    pub functions: Vec<Function>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub id: String,
    pub name: String,
    /// The service that owns it (its name is the service's).
    pub service: Service,
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub id: String,
    pub name: String,
    pub visibility_timeout: Duration,
    pub redrive: Option<Redrive>,
}

/// Where a queue's messages go after too many receives.
#[derive(Debug, Clone)]
pub struct Redrive {
    pub dead_letters: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub topic: String,
    pub queue: String,
    pub filter: FilterPolicy,
    /// The filter policy as written, for provisioning.
    pub filter_policy: Option<String>,
    pub raw_message_delivery: bool,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub id: String,
    pub name: String,
    /// The binary `sam build` builds for it (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// Which code of the binary it runs: its `HANDLER` variable.
    pub handler: String,
    /// Its variables (the globals' first), resolved to local names and parameter defaults.
    pub environment: BTreeMap<String, EnvValue>,
    pub trigger: Trigger,
}

/// A function's variable: text, or the local name of a resource it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Text(String),
    Table(String),
    Topic(String),
    Queue(String),
}

/// What invokes a function.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Routes of the HTTP API: (method, path).
    Http(Vec<(String, String)>),
    Queue(QueueSource),
    Stream(StreamSource),
    /// An EventBridge schedule of `rate(…)`.
    Schedule(Duration),
    /// Nothing in the template: API Gateway calls it (the authorizer).
    Direct,
}

/// An SQS event source mapping.
#[derive(Debug, Clone)]
pub struct QueueSource {
    pub queue: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub max_concurrency: Option<u32>,
    pub reports_item_failures: bool,
}

impl QueueSource {
    /// How many batches run at once: `MaximumConcurrency`, else the five pollers Lambda
    /// starts an SQS event source with (it scales further on AWS; locally it stays there).
    pub fn pollers(&self) -> usize {
        self.max_concurrency.map_or(5, |c| c as usize)
    }
}

/// A DynamoDB stream event source mapping.
#[derive(Debug, Clone)]
pub struct StreamSource {
    pub table: String,
    pub batch_size: usize,
    /// A record invokes the function when it matches any (all pass when there are none).
    pub filters: Vec<EventPattern>,
    /// The queue that receives what could not be handled after the retries.
    pub on_failure: Option<String>,
}

impl StreamSource {
    pub fn passes(&self, record: &serde_json::Value) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| f.matches(record))
    }
}

impl Stack {
    /// The template this system was built with.
    pub fn load() -> Result<Stack, TemplateError> {
        Stack::parse(TEMPLATE)
    }

    pub fn parse(text: &str) -> Result<Stack, TemplateError> {
        let root: Value = yaml_serde::from_str(text)
            .map_err(|e| TemplateError::new("the document", e.to_string()))?;
        let mut parameters = BTreeMap::new();
        if let Some(declared) = field(&root, "Parameters").and_then(Value::as_mapping) {
            for (name, declaration) in declared {
                if let (Some(name), Some(default)) = (name.as_str(), field(declaration, "Default"))
                {
                    let default = match default {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => continue,
                    };
                    parameters.insert(name.to_owned(), default);
                }
            }
        }
        let reader = Reader {
            parameters: &parameters,
        };
        let resources = field(&root, "Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| TemplateError::new("Resources", "missing"))?;
        let mut by_kind: BTreeMap<&str, Vec<(String, &Value)>> = BTreeMap::new();
        for (id, resource) in resources {
            let id = id
                .as_str()
                .ok_or_else(|| TemplateError::new("Resources", "a logical id is not text"))?;
            if id.starts_with(FOR_EACH) {
                generates_nothing_run_locally(id, resource)?;
                continue;
            }
            let kind = field(resource, "Type")
                .and_then(Value::as_str)
                .ok_or_else(|| TemplateError::new(format!("Resources.{id}"), "no Type"))?;
            by_kind
                .entry(kind)
                .or_default()
                .push((id.to_owned(), resource));
        }
        let of = |kind: &str| by_kind.get(kind).cloned().unwrap_or_default();
        let names = Names {
            ids: resources
                .iter()
                .filter_map(|(id, r)| {
                    Some((
                        id.as_str()?.to_owned(),
                        field(r, "Type")?.as_str()?.to_owned(),
                    ))
                })
                .collect(),
        };
        let mut stack = Stack {
            tables: Vec::new(),
            topics: Vec::new(),
            queues: Vec::new(),
            subscriptions: Vec::new(),
            functions: Vec::new(),
        };
        for (id, resource) in of("AWS::DynamoDB::Table") {
            index_projections(&reader, &id, resource)?;
            let name = local_name(&id, "Table");
            let service = Service::from_name(&name).ok_or_else(|| {
                TemplateError::new(
                    format!("Resources.{id}"),
                    format!(
                        "the table {name:?} is no service's (a table is named after its service)"
                    ),
                )
            })?;
            stack.tables.push(Table { id, name, service });
        }
        for (id, _) in of(TOPIC) {
            let name = local_name(&id, "Topic");
            // A topic no service owns (the alarm topic) carries no events.
            if Service::from_name(&name).is_some() {
                stack.topics.push(Topic { name, id });
            }
        }
        for (id, resource) in of("AWS::SQS::Queue") {
            stack.queues.push(queue(&reader, &names, id, resource)?);
        }
        for (id, resource) in of(SUBSCRIPTION) {
            if let Some(subscription) = subscription(&reader, &names, id, resource)? {
                stack.subscriptions.push(subscription);
            }
        }
        let globals = field(&root, "Globals").and_then(|g| field(g, "Function"));
        for (id, resource) in of("AWS::Serverless::Function") {
            stack
                .functions
                .push(function(&reader, &names, globals, id, resource)?);
        }
        Ok(stack)
    }

    pub fn table_of(&self, service: Service) -> Option<&Table> {
        self.tables.iter().find(|t| t.service == service)
    }

    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.name == name)
    }

    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The subscriptions that deliver to `queue`.
    pub fn subscriptions_of<'a>(
        &'a self,
        queue: &'a str,
    ) -> impl Iterator<Item = &'a Subscription> {
        self.subscriptions.iter().filter(move |s| s.queue == queue)
    }

    /// The queues some function consumes, with that function's event source.
    pub fn consumed_queues(&self) -> impl Iterator<Item = (&Function, &QueueSource)> {
        self.functions.iter().filter_map(|f| match &f.trigger {
            Trigger::Queue(source) => Some((f, source)),
            _ => None,
        })
    }
}

/// The declared resources' kinds, to turn a reference into a local name of the right kind.
struct Names {
    ids: BTreeMap<String, String>,
}

impl Names {
    fn of_kind(&self, id: &str, kind: &str, at: &str) -> Result<String, TemplateError> {
        match self.ids.get(id).map(String::as_str) {
            Some(k) if k == kind => Ok(local_name(id, suffix(kind))),
            Some(other) => Err(TemplateError::new(
                at,
                format!("{id} is a {other}, not a {kind}"),
            )),
            None => Err(TemplateError::new(at, format!("{id} is not declared"))),
        }
    }
}

fn suffix(kind: &str) -> &'static str {
    match kind {
        "AWS::SQS::Queue" => "Queue",
        "AWS::SNS::Topic" => "Topic",
        "AWS::DynamoDB::Table" => "Table",
        "AWS::Serverless::Function" => "Function",
        _ => "",
    }
}

const QUEUE: &str = "AWS::SQS::Queue";
const TOPIC: &str = "AWS::SNS::Topic";
const TABLE: &str = "AWS::DynamoDB::Table";
const SUBSCRIPTION: &str = "AWS::SNS::Subscription";
const FUNCTION: &str = "AWS::Serverless::Function";
const FOR_EACH: &str = "Fn::ForEach::";

/// `Fn::ForEach::<Loop>: [Identifier, [values…], {<key>: <resource>, …}]` (the
/// `AWS::LanguageExtensions` transform) generates resources the local system does not read;
/// one that would generate a kind it runs is refused rather than silently left out.
fn generates_nothing_run_locally(id: &str, block: &Value) -> Result<(), TemplateError> {
    let at = format!("Resources.{id}");
    let fragment = block
        .as_sequence()
        .and_then(|parts| parts.get(2))
        .and_then(Value::as_mapping)
        .ok_or_else(|| TemplateError::new(&at, "expected [identifier, collection, fragment]"))?;
    for (key, resource) in fragment {
        let kind = field(resource, "Type").and_then(Value::as_str);
        let nested = key.as_str().is_some_and(|k| k.starts_with(FOR_EACH));
        if nested || kind.is_none_or(|k| [TABLE, TOPIC, QUEUE, SUBSCRIPTION, FUNCTION].contains(&k))
        {
            return Err(TemplateError::new(
                format!("{at}.{}", key.as_str().unwrap_or("?")),
                format!(
                    "{} generated by Fn::ForEach is not run locally; write it out",
                    kind.unwrap_or("a resource of no plain Type")
                ),
            ));
        }
    }
    Ok(())
}

/// The service whose topic `id` is: a topic no service owns is not run locally.
fn service_topic(names: &Names, id: &str, at: &str) -> Result<String, TemplateError> {
    let name = names.of_kind(id, TOPIC, at)?;
    match Service::from_name(&name) {
        Some(_) => Ok(name),
        None => Err(no_services_topic(id, at)),
    }
}

/// Where a service's topic is needed, `id` is a topic no service owns.
fn no_services_topic(id: &str, at: &str) -> TemplateError {
    TemplateError::new(
        at,
        format!("{id} is no service's topic (the local system runs only theirs)"),
    )
}

fn properties(resource: &Value) -> &Value {
    static EMPTY: Value = Value::Null;
    field(resource, "Properties").unwrap_or(&EMPTY)
}

/// Every index of a table projects what the store's table creation and queries assume
/// ([`platform::dynamo::INDEX_PROJECTION`]): the template and the code must not disagree.
fn index_projections(reader: &Reader, id: &str, resource: &Value) -> Result<(), TemplateError> {
    let indexes = field(properties(resource), "GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, index) in indexes.iter().enumerate() {
        let at = format!("Resources.{id}.Properties.GlobalSecondaryIndexes[{i}].Projection");
        let projection = field(index, "Projection")
            .and_then(|p| field(p, "ProjectionType"))
            .ok_or_else(|| TemplateError::new(&at, "no ProjectionType"))?;
        let projection = reader.text(projection, &at)?;
        if projection != platform::dynamo::INDEX_PROJECTION {
            return Err(TemplateError::new(
                at,
                format!(
                    "ProjectionType {projection}; the document store reads its indexes as {} \
                     (platform::dynamo::INDEX_PROJECTION)",
                    platform::dynamo::INDEX_PROJECTION
                ),
            ));
        }
    }
    Ok(())
}

fn queue(
    reader: &Reader,
    names: &Names,
    id: String,
    resource: &Value,
) -> Result<Queue, TemplateError> {
    let at = format!("Resources.{id}.Properties");
    let props = properties(resource);
    let visibility = reader
        .number_at(props, "VisibilityTimeout", &at)?
        .unwrap_or(30);
    let redrive = match field(props, "RedrivePolicy") {
        None => None,
        Some(policy) => {
            let at = format!("{at}.RedrivePolicy");
            let target = field(policy, "deadLetterTargetArn")
                .ok_or_else(|| TemplateError::new(&at, "no deadLetterTargetArn"))?;
            let target = reader.attribute_of(target, "Arn", &at)?;
            let count = reader
                .number_at(policy, "maxReceiveCount", &at)?
                .ok_or_else(|| TemplateError::new(&at, "no maxReceiveCount"))?;
            Some(Redrive {
                dead_letters: names.of_kind(&target, QUEUE, &at)?,
                max_receive_count: u32::try_from(count)
                    .ok()
                    .filter(|c| *c >= 1)
                    .ok_or_else(|| TemplateError::new(&at, "maxReceiveCount is 1 to 1000"))?,
            })
        }
    };
    Ok(Queue {
        name: local_name(&id, "Queue"),
        id,
        visibility_timeout: Duration::from_secs(visibility),
        redrive,
    })
}

/// A subscription of a queue to a service's topic; `None` for one other than a queue's to a
/// topic no service owns (the alarm topic's e-mail), which the local system does not run.
fn subscription(
    reader: &Reader,
    names: &Names,
    id: String,
    resource: &Value,
) -> Result<Option<Subscription>, TemplateError> {
    let at = format!("Resources.{id}.Properties");
    let props = properties(resource);
    let required =
        |key: &str| field(props, key).ok_or_else(|| TemplateError::new(&at, format!("no {key}")));
    let topic_id = reader.ref_of(required("TopicArn")?, &format!("{at}.TopicArn"))?;
    let protocol = reader.text(required("Protocol")?, &at)?;
    let topic = names.of_kind(&topic_id, TOPIC, &at)?;
    match (Service::from_name(&topic), protocol == "sqs") {
        (Some(_), true) => {}
        (None, false) => return Ok(None),
        (None, true) => return Err(no_services_topic(&topic_id, &at)),
        (Some(_), false) => {
            return Err(TemplateError::new(
                &at,
                format!("protocol {protocol:?}: only sqs subscriptions are run locally"),
            ));
        }
    }
    let queue = reader.attribute_of(required("Endpoint")?, "Arn", &format!("{at}.Endpoint"))?;
    if let Some(scope) = field(props, "FilterPolicyScope") {
        let scope = reader.text(scope, &at)?;
        if scope != "MessageAttributes" {
            return Err(TemplateError::new(
                &at,
                format!("FilterPolicyScope {scope}: only MessageAttributes is applied locally"),
            ));
        }
    }
    let (filter, written) = match field(props, "FilterPolicy") {
        None => (FilterPolicy::All, None),
        Some(policy) => {
            let policy = reader.json(policy, &format!("{at}.FilterPolicy"))?;
            let written = policy.to_string();
            let filter = filter_policy(policy)
                .map_err(|problem| TemplateError::new(format!("{at}.FilterPolicy"), problem))?;
            (filter, Some(written))
        }
    };
    let raw = match field(props, "RawMessageDelivery") {
        None => false,
        Some(v) => reader.text(v, &at)? == "true",
    };
    Ok(Some(Subscription {
        id,
        topic,
        queue: names.of_kind(&queue, QUEUE, &at)?,
        filter,
        filter_policy: written,
        raw_message_delivery: raw,
    }))
}

/// `{"type": ["A", "B"], "hasCoupon": ["true"]}`: exact values of message attributes, what
/// the local bus filters on. Operators (`prefix`, `anything-but`, …) are refused.
fn filter_policy(policy: serde_json::Value) -> Result<FilterPolicy, String> {
    let attributes = policy
        .as_object()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| {
            format!("{policy}: only {{\"<attribute>\": [values…], …}} is applied locally")
        })?;
    let mut filter = FilterPolicy::All;
    for (name, values) in attributes {
        let values: Option<Vec<&str>> = values
            .as_array()
            .and_then(|v| v.iter().map(|v| v.as_str()).collect());
        let values = values.ok_or_else(|| {
            format!("{policy}: {name} must list exact values; operators are not applied locally")
        })?;
        filter = filter.and(name, values);
    }
    Ok(filter)
}

fn function(
    reader: &Reader,
    names: &Names,
    globals: Option<&Value>,
    id: String,
    resource: &Value,
) -> Result<Function, TemplateError> {
    let at = format!("Resources.{id}");
    let binary = field(resource, "Metadata")
        .and_then(|m| field(m, "BuildProperties"))
        .and_then(|b| field(b, "Binary"))
        .ok_or_else(|| TemplateError::new(&at, "no Metadata.BuildProperties.Binary"))?;
    let binary = reader.text(binary, &at)?;
    let props = properties(resource);
    let mut environment = BTreeMap::new();
    for source in [globals, Some(props)].into_iter().flatten() {
        let Some(variables) = field(source, "Environment")
            .and_then(|e| field(e, "Variables"))
            .and_then(Value::as_mapping)
        else {
            continue;
        };
        for (name, value) in variables {
            let name = name
                .as_str()
                .ok_or_else(|| TemplateError::new(&at, "a variable's name is not text"))?;
            let at = format!("{at}.Properties.Environment.Variables.{name}");
            environment.insert(name.to_owned(), env_value(reader, names, value, &at)?);
        }
    }
    let handler = match environment.get("HANDLER") {
        Some(EnvValue::Text(handler)) => handler.clone(),
        _ => {
            return Err(TemplateError::new(
                &at,
                "no HANDLER variable: it names the code the function's binary runs",
            ));
        }
    };
    let trigger = trigger(reader, names, props, &at)?;
    Ok(Function {
        name: local_name(&id, "Function"),
        id,
        binary,
        handler,
        environment,
        trigger,
    })
}

fn env_value(
    reader: &Reader,
    names: &Names,
    value: &Value,
    at: &str,
) -> Result<EnvValue, TemplateError> {
    if matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
        return reader.text(value, at).map(EnvValue::Text);
    }
    let id = reader.ref_of(value, at)?;
    match names.ids.get(&id).map(String::as_str) {
        Some(TABLE) => names.of_kind(&id, TABLE, at).map(EnvValue::Table),
        Some(TOPIC) => service_topic(names, &id, at).map(EnvValue::Topic),
        Some(QUEUE) => names.of_kind(&id, QUEUE, at).map(EnvValue::Queue),
        Some(kind) => Err(TemplateError::new(
            at,
            format!("!Ref {id}: a {kind} has no local value"),
        )),
        None => reader.text(value, at).map(EnvValue::Text),
    }
}

fn trigger(
    reader: &Reader,
    names: &Names,
    props: &Value,
    at: &str,
) -> Result<Trigger, TemplateError> {
    let Some(events) = field(props, "Events").and_then(Value::as_mapping) else {
        return Ok(Trigger::Direct);
    };
    let mut routes = Vec::new();
    let mut other = None;
    for (name, event) in events {
        let at = format!("{at}.Properties.Events.{}", name.as_str().unwrap_or("?"));
        let kind = field(event, "Type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let props = properties(event);
        let text = |key: &str| -> Result<String, TemplateError> {
            let value =
                field(props, key).ok_or_else(|| TemplateError::new(&at, format!("no {key}")))?;
            reader.text(value, &at)
        };
        let trigger = match kind {
            "HttpApi" => {
                routes.push((text("Method")?, text("Path")?));
                continue;
            }
            "SQS" => Trigger::Queue(queue_source(reader, names, props, &at)?),
            "DynamoDB" => Trigger::Stream(stream_source(reader, names, props, &at)?),
            "Schedule" | "ScheduleV2" => {
                Trigger::Schedule(rate(&text("ScheduleExpression")?, &at)?)
            }
            other => {
                return Err(TemplateError::new(
                    &at,
                    format!("an event of type {other:?} is not run locally"),
                ));
            }
        };
        if other.replace(trigger).is_some() {
            return Err(TemplateError::new(
                at,
                "a function has one queue, stream or schedule locally",
            ));
        }
    }
    match (routes.is_empty(), other) {
        (false, None) => Ok(Trigger::Http(routes)),
        (true, Some(trigger)) => Ok(trigger),
        (true, None) => Ok(Trigger::Direct),
        (false, Some(_)) => Err(TemplateError::new(
            at,
            "a function serves routes or consumes events, not both",
        )),
    }
}

fn queue_source(
    reader: &Reader,
    names: &Names,
    props: &Value,
    at: &str,
) -> Result<QueueSource, TemplateError> {
    let queue = field(props, "Queue").ok_or_else(|| TemplateError::new(at, "no Queue"))?;
    let queue = reader.attribute_of(queue, "Arn", at)?;
    let max_concurrency = match field(props, "ScalingConfig") {
        Some(scaling) => reader.number_at(scaling, "MaximumConcurrency", at)?,
        None => None,
    };
    // What Lambda accepts; outside it, CloudFormation would refuse the template.
    if let Some(c) = max_concurrency.filter(|c| !(2..=1000).contains(c)) {
        return Err(TemplateError::new(
            at,
            format!("MaximumConcurrency {c} is outside 2..=1000"),
        ));
    }
    let window = reader
        .number_at(props, "MaximumBatchingWindowInSeconds", at)?
        .unwrap_or(0);
    if window > 300 {
        return Err(TemplateError::new(
            at,
            format!("MaximumBatchingWindowInSeconds {window} is over 300"),
        ));
    }
    Ok(QueueSource {
        queue: names.of_kind(&queue, QUEUE, at)?,
        batch_size: count(reader.number_at(props, "BatchSize", at)?.unwrap_or(10), at)?,
        batching_window: Duration::from_secs(window),
        max_concurrency: max_concurrency.map(|c| c as u32),
        reports_item_failures: reports_item_failures(props),
    })
}

fn stream_source(
    reader: &Reader,
    names: &Names,
    props: &Value,
    at: &str,
) -> Result<StreamSource, TemplateError> {
    let stream = field(props, "Stream").ok_or_else(|| TemplateError::new(at, "no Stream"))?;
    let table = reader.attribute_of(stream, "StreamArn", at)?;
    let mut filters = Vec::new();
    let patterns = field(props, "FilterCriteria")
        .and_then(|c| field(c, "Filters"))
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, filter) in patterns.iter().enumerate() {
        let at = format!("{at}.FilterCriteria.Filters[{i}].Pattern");
        let pattern = field(filter, "Pattern").ok_or_else(|| TemplateError::new(&at, "missing"))?;
        let pattern = EventPattern::parse(reader.json(pattern, &at)?)
            .map_err(|problem| TemplateError::new(&at, problem))?;
        filters.push(pattern);
    }
    let on_failure = match field(props, "DestinationConfig")
        .and_then(|d| field(d, "OnFailure"))
        .and_then(|o| field(o, "Destination"))
    {
        Some(destination) => {
            let id = reader.attribute_of(destination, "Arn", at)?;
            Some(names.of_kind(&id, QUEUE, at)?)
        }
        None => None,
    };
    Ok(StreamSource {
        table: names.of_kind(&table, TABLE, at)?,
        batch_size: count(reader.number_at(props, "BatchSize", at)?.unwrap_or(100), at)?,
        filters,
        on_failure,
    })
}

fn reports_item_failures(props: &Value) -> bool {
    field(props, "FunctionResponseTypes")
        .and_then(Value::as_sequence)
        .is_some_and(|types| {
            types
                .iter()
                .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
        })
}

fn count(n: u64, at: &str) -> Result<usize, TemplateError> {
    usize::try_from(n)
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| TemplateError::new(at, format!("a batch size of {n}: 1 to 10,000")))
}

/// `rate(1 minute)`, `rate(5 minutes)`, `rate(2 hours)`, `rate(1 day)`.
fn rate(expression: &str, at: &str) -> Result<Duration, TemplateError> {
    let refuse = || {
        TemplateError::new(
            at,
            format!("{expression:?}: only rate(<n> <unit>) schedules are run locally"),
        )
    };
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(refuse)?;
    let (n, unit) = inner.trim().split_once(' ').ok_or_else(refuse)?;
    let n: u64 = n.parse().map_err(|_| refuse())?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        _ => return Err(refuse()),
    };
    (n > 0)
        .then(|| Duration::from_secs(n * seconds))
        .ok_or_else(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPERATED: &str = r#"
Resources:
  OrderTopic:
    Type: AWS::SNS::Topic
  AlarmTopic:
    Type: AWS::SNS::Topic
  AlarmEmailSubscription:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref AlarmTopic
      Protocol: email
      Endpoint: ops@example.com
  Fn::ForEach::Operations:
    - Function
    - [OrderApiFunction, OrderSweepFunction]
    - ${Function}Logs:
        Type: AWS::Logs::LogGroup
"#;

    #[test]
    fn what_only_operates_the_system_on_aws_is_not_read() {
        let stack = Stack::parse(OPERATED).unwrap();
        let topics: Vec<&str> = stack.topics.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(topics, ["OrderTopic"]);
        assert!(stack.subscriptions.is_empty());
    }

    #[test]
    fn what_the_local_system_would_run_is_not_left_unread() {
        for (from, to, says) in [
            (
                "Type: AWS::Logs::LogGroup",
                "Type: AWS::SQS::Queue",
                "Resources.Fn::ForEach::Operations.${Function}Logs: AWS::SQS::Queue generated by Fn::ForEach is not run locally",
            ),
            (
                "Protocol: email",
                "Protocol: sqs",
                "AlarmTopic is no service's topic",
            ),
            (
                "TopicArn: !Ref AlarmTopic",
                "TopicArn: !Ref OrderTopic",
                "protocol \"email\": only sqs subscriptions are run locally",
            ),
        ] {
            let edited = OPERATED.replacen(from, to, 1);
            let error = Stack::parse(&edited).unwrap_err().to_string();
            assert!(error.contains(says), "{to}: {error}");
        }
    }

    #[test]
    fn schedules_are_rates() {
        assert_eq!(
            rate("rate(1 minute)", "x").unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            rate("rate(2 hours)", "x").unwrap(),
            Duration::from_secs(7_200)
        );
        for refused in [
            "cron(0 * * * ? *)",
            "rate(0 minutes)",
            "rate(5 weeks)",
            "rate(x minutes)",
        ] {
            assert!(rate(refused, "x").is_err(), "{refused}");
        }
    }

    #[test]
    fn filter_policies_of_exact_values_are_read_and_others_refused() {
        assert_eq!(
            filter_policy(serde_json::json!({"type": ["A", "B"]})).unwrap(),
            FilterPolicy::types(["A", "B"])
        );
        assert_eq!(
            filter_policy(serde_json::json!({"type": ["A"], "hasCoupon": ["true"]})).unwrap(),
            FilterPolicy::types(["A"]).and("hasCoupon", ["true"])
        );
        for refused in [
            serde_json::json!({"type": [{"prefix": "A"}]}),
            serde_json::json!({"type": "A"}),
            serde_json::json!({}),
            serde_json::json!(["A"]),
        ] {
            assert!(filter_policy(refused.clone()).is_err(), "{refused}");
        }
    }
}
