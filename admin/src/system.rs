//! Where a system's queues and tables are: a deployed stack's outputs, or the local system on
//! AWS APIs (LocalStack, or an account without deploying), whose names are template.yaml's
//! under `STACK_PREFIX`.
//!
//! The queues an operator looks into are the ones whose logical ids end in `DeadLetters`
//! (what a consumer could not handle) or `RelayFailures` (Lambda's records of stream batches a
//! table's relay could not publish). A stack names them in its outputs `<LogicalId>Url` (or
//! `<LogicalId>Arn`) and its tables in `<Service>TableName`.

use std::collections::BTreeMap;

use contract::Service;

use crate::{AdminError, aws};

const DEAD_LETTERS: &str = "DeadLetters";
const RELAY_FAILURES: &str = "RelayFailures";

/// What a watched queue holds, and so where its messages came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Events a consumer could not handle, from the queue `source` (a logical id): by the
    /// template's naming, `…DeadLetters` is the dead-letter queue of `…Queue`.
    DeadLetters { source: String },
    /// Lambda's on-failure records of the relay of `table` (a logical id): `…RelayFailures`
    /// belongs to `…Table`'s stream, whose relay publishes to `…Topic`.
    RelayFailures { table: String },
}

/// The kind of the queue with this logical id, if it is one an operator watches.
pub fn kind_of(logical_id: &str) -> Option<Kind> {
    let stem = |suffix: &str| {
        logical_id
            .strip_suffix(suffix)
            .filter(|stem| !stem.is_empty())
            .map(str::to_owned)
    };
    if let Some(stem) = stem(DEAD_LETTERS) {
        Some(Kind::DeadLetters {
            source: format!("{stem}Queue"),
        })
    } else {
        stem(RELAY_FAILURES).map(|stem| Kind::RelayFailures {
            table: format!("{stem}Table"),
        })
    }
}

/// A resource's local name: its logical id in kebab case, less its kind
/// (`ProductOrderCreatedQueue` → `product-order-created`; a test checks this agrees with
/// `local::template` for every queue of the template).
pub fn local_name(logical_id: &str) -> String {
    let kind = ["Queue", "Table", "Topic"]
        .into_iter()
        .find(|kind| logical_id.strip_suffix(kind).is_some_and(|s| !s.is_empty()))
        .unwrap_or("");
    local::template::local_name(logical_id, kind)
}

/// Where a watched queue is: its URL, or (from a stack output `…Arn` alone) its ARN, or
/// the name SQS knows it by (its URL looked up when needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Url(String),
    Arn(String),
    Name(String),
}

/// What a stack's outputs say about its watched queues, their source queues and its tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// logical id → where the queue is (a URL when the stack gives one).
    pub queues: BTreeMap<String, Address>,
    /// The same for the other queues (`…Queue`: where a dead-letter queue's messages go back).
    pub sources: BTreeMap<String, Address>,
    pub tables: BTreeMap<Service, String>,
}

/// Reads a stack's outputs (key, value): `<LogicalId>Url` / `<LogicalId>Arn` of a queue (a
/// watched one when its id ends in `DeadLetters` or `RelayFailures`, a source when it ends in
/// `Queue`), and `<Service>TableName`. Others are ignored.
pub fn read_outputs<'a>(outputs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Outputs {
    let mut read = Outputs::default();
    for (key, value) in outputs {
        let queue = |suffix: &str| {
            key.strip_suffix(suffix)
                .filter(|id| kind_of(id).is_some() || id.len() > 5 && id.ends_with("Queue"))
        };
        let (id, address) = if let Some(id) = queue("Url") {
            (id, Address::Url(value.to_owned()))
        } else if let Some(id) = queue("Arn") {
            (id, Address::Arn(value.to_owned()))
        } else {
            if let Some(service) = key
                .strip_suffix("TableName")
                .and_then(|stem| Service::from_name(&local_name(stem)))
            {
                read.tables.insert(service, value.to_owned());
            }
            continue;
        };
        let known = if kind_of(id).is_some() {
            &mut read.queues
        } else {
            &mut read.sources
        };
        // A URL, when there is one too, is what SQS is called with.
        if matches!(address, Address::Url(_)) {
            known.insert(id.to_owned(), address);
        } else {
            known.entry(id.to_owned()).or_insert(address);
        }
    }
    read
}

/// The queue name in an SQS ARN (`arn:aws:sqs:<region>:<account>:<name>`).
pub fn queue_name_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn") && parts.nth(1) == Some("sqs"))
        .then(|| arn.rsplit(':').next())
        .flatten()
        .filter(|name| !name.is_empty())
}

/// Which system `shop-admin` works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A deployed CloudFormation stack, by name: its outputs name the queues and tables.
    Stack(String),
    /// The local system on AWS APIs: template.yaml's names under this prefix.
    Prefix(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Stack(name) => write!(f, "stack {name}"),
            Location::Prefix(prefix) => write!(f, "prefix {prefix}"),
        }
    }
}

/// A dead-letter or relay-failure queue, found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub id: String,
    /// Its local name (`product-order-created-dead-letters`), as operators name it.
    pub name: String,
    pub kind: Kind,
    /// Where it is: a URL, or a name ([`System::url`]).
    pub address: Address,
}

/// The system's watched queues and tables.
#[derive(Debug, Clone)]
pub struct System {
    pub location: Location,
    pub queues: Vec<Watched>,
    pub tables: BTreeMap<Service, String>,
    /// A stack's source queues, by logical id (none for a prefix: their names are known).
    sources: BTreeMap<String, Address>,
    clients: Clients,
}

#[derive(Debug, Clone)]
struct Clients {
    sqs: aws_sdk_sqs::Client,
    cloudformation: aws_sdk_cloudformation::Client,
}

impl System {
    /// Finds the watched queues and the tables at `location`, with the SDK's configuration
    /// (the usual environment: `AWS_ENDPOINT_URL`, `AWS_REGION`, credentials, profile).
    pub async fn find(
        sdk: &aws_config::SdkConfig,
        location: Location,
    ) -> Result<System, AdminError> {
        let clients = Clients {
            sqs: aws_sdk_sqs::Client::new(sdk),
            cloudformation: aws_sdk_cloudformation::Client::new(sdk),
        };
        let outputs = match &location {
            Location::Stack(stack) => from_stack(&clients, stack).await?,
            Location::Prefix(prefix) => from_template(prefix)?,
        };
        Ok(System {
            location,
            queues: outputs
                .queues
                .into_iter()
                .map(|(id, address)| watched(id, address))
                .collect(),
            tables: outputs.tables,
            sources: outputs.sources,
            clients,
        })
    }

    /// A watched queue by its local name (`product-order-created-dead-letters`) or logical
    /// id (`ProductOrderCreatedDeadLetters`).
    pub fn queue(&self, name: &str) -> Result<&Watched, AdminError> {
        self.queues
            .iter()
            .find(|q| q.name == name || q.id == name)
            .ok_or_else(|| {
                let mut known: Vec<&str> = self.queues.iter().map(|q| q.name.as_str()).collect();
                known.sort_unstable();
                AdminError::Usage(format!(
                    "no dead-letter or relay-failure queue {name:?} in {}; there are: {}",
                    self.location,
                    known.join(", ")
                ))
            })
    }

    /// A watched queue's URL.
    pub async fn url(&self, queue: &Watched) -> Result<String, AdminError> {
        self.resolve(&queue.id, &queue.address).await
    }

    async fn resolve(&self, id: &str, address: &Address) -> Result<String, AdminError> {
        match address {
            Address::Url(url) => Ok(url.clone()),
            Address::Name(name) => queue_url(&self.clients.sqs, name).await,
            Address::Arn(arn) => match queue_name_of_arn(arn) {
                Some(name) => queue_url(&self.clients.sqs, name).await,
                None => Err(AdminError::Missing(format!(
                    "the output {id}Arn is no SQS ARN: {arn}"
                ))),
            },
        }
    }

    /// The service's table.
    pub fn table(&self, service: Service) -> Result<&str, AdminError> {
        self.tables
            .get(&service)
            .map(String::as_str)
            .ok_or_else(|| {
                let id = format!("{}Table", pascal(service.name()));
                AdminError::Missing(format!(
                    "{} names no {service} table (its output {id}Name)",
                    self.location
                ))
            })
    }

    /// The URL of the queue a dead-letter queue's messages came from (its `source`, a
    /// logical id): `STACK_PREFIX` + its local name; on a stack, its output `<source>Url`
    /// (or `Arn`), else the stack's resource of that id.
    pub async fn source_url(&self, source: &str) -> Result<String, AdminError> {
        if let Some(address) = self.sources.get(source) {
            return self.resolve(source, address).await;
        }
        match &self.location {
            Location::Prefix(prefix) => {
                queue_url(
                    &self.clients.sqs,
                    &format!("{prefix}{}", local_name(source)),
                )
                .await
            }
            Location::Stack(stack) => self
                .clients
                .cloudformation
                .describe_stack_resource()
                .stack_name(stack)
                .logical_resource_id(source)
                .send()
                .await
                .map_err(aws(format!("the resource {source} of stack {stack}")))?
                .stack_resource_detail
                .and_then(|d| d.physical_resource_id)
                .ok_or_else(|| {
                    AdminError::Missing(format!("stack {stack} has no queue {source} (yet)"))
                }),
        }
    }
}

/// `coupon-source` → `CouponSource`.
fn pascal(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

async fn from_stack(clients: &Clients, stack: &str) -> Result<Outputs, AdminError> {
    let described = clients
        .cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(aws(format!("the stack {stack}")))?;
    let outputs = described
        .stacks()
        .first()
        .map(|s| s.outputs())
        .unwrap_or_default();
    let outputs = read_outputs(
        outputs
            .iter()
            .filter_map(|o| Some((o.output_key()?, o.output_value()?))),
    );
    if outputs.queues.is_empty() {
        return Err(AdminError::Missing(format!(
            "stack {stack} has no outputs <LogicalId>Url or <LogicalId>Arn for its \
             …DeadLetters and …RelayFailures queues (template.yaml's Outputs)"
        )));
    }
    Ok(outputs)
}

fn from_template(prefix: &str) -> Result<Outputs, AdminError> {
    let template =
        local::template::Stack::load().map_err(|e| AdminError::Missing(e.to_string()))?;
    let queues = template
        .queues
        .iter()
        .filter(|q| kind_of(&q.id).is_some())
        .map(|q| (q.id.clone(), Address::Name(format!("{prefix}{}", q.name))))
        .collect();
    let tables = template
        .tables
        .iter()
        .map(|t| (t.service, format!("{prefix}{}", t.name)))
        .collect();
    Ok(Outputs {
        queues,
        sources: BTreeMap::new(),
        tables,
    })
}

fn watched(id: String, address: Address) -> Watched {
    Watched {
        name: local_name(&id),
        // Only ids of a kind are read.
        kind: kind_of(&id).unwrap_or(Kind::RelayFailures { table: id.clone() }),
        id,
        address,
    }
}

async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String, AdminError> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => out
            .queue_url
            .ok_or_else(|| AdminError::Missing(format!("SQS gave no URL for queue {name}"))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            Err(AdminError::Missing(format!(
                "there is no queue {name}: is the local system provisioned under this prefix? \
                 (`cargo run -p local` with the same STACK_PREFIX and AWS_ENDPOINT_URL \
                 provisions it)"
            )))
        }
        Err(e) => Err(aws(format!("the queue {name}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_watched_by_their_logical_ids_and_dead_letters_come_from_their_queue() {
        assert_eq!(
            kind_of("ProductOrderCreatedDeadLetters"),
            Some(Kind::DeadLetters {
                source: "ProductOrderCreatedQueue".into()
            })
        );
        assert_eq!(
            kind_of("CouponSourceRelayFailures"),
            Some(Kind::RelayFailures {
                table: "CouponSourceTable".into()
            })
        );
        for other in [
            "ProductOrderCreatedQueue",
            "DeadLetters",
            "RelayFailures",
            "UserTable",
        ] {
            assert_eq!(kind_of(other), None, "{other}");
        }
        assert_eq!(
            local_name("ProductOrderCreatedDeadLetters"),
            "product-order-created-dead-letters"
        );
        assert_eq!(
            local_name("ProductOrderCreatedQueue"),
            "product-order-created"
        );
        assert_eq!(local_name("CouponSourceTable"), "coupon-source");
    }

    /// The naming rule is what the template says: every dead-letter queue's source is the
    /// queue whose redrive policy names it, and every relay-failure queue is the on-failure
    /// destination of its table's relay; the local names are the local system's.
    #[test]
    fn the_naming_rule_agrees_with_template_yaml() {
        let template = local::template::Stack::load().expect("template.yaml");
        let mut dead_letters = 0;
        let mut relay_failures = 0;
        for queue in &template.queues {
            assert_eq!(local_name(&queue.id), queue.name, "{}", queue.id);
            match kind_of(&queue.id) {
                Some(Kind::DeadLetters { source }) => {
                    dead_letters += 1;
                    let redriven: Vec<&str> = template
                        .queues
                        .iter()
                        .filter(|q| {
                            q.redrive
                                .as_ref()
                                .is_some_and(|r| r.dead_letters == queue.name)
                        })
                        .map(|q| q.id.as_str())
                        .collect();
                    assert_eq!(redriven, [source.as_str()], "{}", queue.id);
                }
                Some(Kind::RelayFailures { table }) => {
                    relay_failures += 1;
                    let relays: Vec<&str> = template
                        .functions
                        .iter()
                        .filter_map(|f| match &f.trigger {
                            local::template::Trigger::Stream(s)
                                if s.on_failure.as_deref() == Some(queue.name.as_str()) =>
                            {
                                Some(s.table.as_str())
                            }
                            _ => None,
                        })
                        .collect();
                    assert_eq!(relays, [local_name(&table)], "{}", queue.id);
                }
                None => {}
            }
        }
        assert!(dead_letters > 0 && relay_failures == Service::ALL.len());
    }

    #[test]
    fn stack_outputs_name_the_watched_queues_and_the_tables() {
        let outputs = read_outputs([
            ("ApiUrl", "https://abc.execute-api.eu-west-1.amazonaws.com"),
            ("UserTableName", "shop-UserTable-1AB"),
            ("CouponSourceTableName", "shop-CouponSourceTable-2CD"),
            ("UserTopicArn", "arn:aws:sns:eu-west-1:1:shop-UserTopic-3EF"),
            (
                "ProductOrderCreatedDeadLettersUrl",
                "https://sqs.eu-west-1.amazonaws.com/1/shop-ProductOrderCreatedDeadLetters-4GH",
            ),
            (
                "ProductOrderCreatedDeadLettersArn",
                "arn:aws:sqs:eu-west-1:1:shop-ProductOrderCreatedDeadLetters-4GH",
            ),
            (
                "UserRelayFailuresArn",
                "arn:aws:sqs:eu-west-1:1:shop-UserRelayFailures-5IJ",
            ),
            (
                "ProductOrderCreatedQueueUrl",
                "https://sqs.eu-west-1.amazonaws.com/1/shop-ProductOrderCreatedQueue-6KL",
            ),
            ("SomethingElseUrl", "https://example.com"),
            ("QueueUrl", "https://example.com"),
            ("NobodyTableName", "x"),
        ]);
        assert_eq!(
            outputs.queues,
            BTreeMap::from([
                (
                    "ProductOrderCreatedDeadLetters".to_owned(),
                    Address::Url(
                        "https://sqs.eu-west-1.amazonaws.com/1/shop-ProductOrderCreatedDeadLetters-4GH"
                            .into()
                    )
                ),
                (
                    "UserRelayFailures".to_owned(),
                    Address::Arn("arn:aws:sqs:eu-west-1:1:shop-UserRelayFailures-5IJ".into())
                ),
            ])
        );
        assert_eq!(
            outputs.tables,
            BTreeMap::from([
                (Service::User, "shop-UserTable-1AB".to_owned()),
                (
                    Service::CouponSource,
                    "shop-CouponSourceTable-2CD".to_owned()
                ),
            ])
        );
        assert_eq!(
            outputs.sources,
            BTreeMap::from([(
                "ProductOrderCreatedQueue".to_owned(),
                Address::Url(
                    "https://sqs.eu-west-1.amazonaws.com/1/shop-ProductOrderCreatedQueue-6KL"
                        .into()
                )
            )])
        );
        // The URL wins whichever comes first.
        let arn_first = read_outputs([
            ("XDeadLettersArn", "arn:aws:sqs:r:1:x"),
            ("XDeadLettersUrl", "https://q/x"),
        ]);
        assert_eq!(
            arn_first.queues["XDeadLetters"],
            Address::Url("https://q/x".into())
        );
        assert_eq!(
            queue_name_of_arn("arn:aws:sqs:eu-west-1:1:shop-UserRelayFailures-5IJ"),
            Some("shop-UserRelayFailures-5IJ")
        );
        assert_eq!(queue_name_of_arn("arn:aws:sns:eu-west-1:1:topic"), None);
        assert_eq!(queue_name_of_arn("https://sqs/1/q"), None);
        assert_eq!(pascal("coupon-source"), "CouponSource");
    }

    /// The outputs template.yaml declares (its `Fn::ForEach` loops expanded) name every
    /// watched queue, every dead-letter queue's source and every table: what `--stack` reads.
    #[test]
    fn template_yaml_declares_the_outputs_shop_admin_reads() {
        use yaml_serde::Value;
        let root: Value = yaml_serde::from_str(local::template::TEMPLATE).expect("YAML");
        let outputs = root
            .get("Outputs")
            .and_then(Value::as_mapping)
            .expect("Outputs");
        let mut keys = Vec::new();
        for (key, value) in outputs {
            let key = key.as_str().expect("a key");
            let Some(_) = key.strip_prefix("Fn::ForEach::") else {
                keys.push(key.to_owned());
                continue;
            };
            let each = value.as_sequence().expect("[variable, items, outputs]");
            let variable = format!("${{{}}}", each[0].as_str().expect("a variable"));
            for item in each[1].as_sequence().expect("items") {
                for name in each[2].as_mapping().expect("outputs").keys() {
                    let name = name.as_str().expect("an output name");
                    keys.push(name.replace(&variable, item.as_str().expect("an item")));
                }
            }
        }
        let read = read_outputs(keys.iter().map(|k| (k.as_str(), "https://sqs/q")));
        let template = local::template::Stack::load().expect("template.yaml");
        let mut watched: Vec<&str> = template
            .queues
            .iter()
            .filter(|q| kind_of(&q.id).is_some())
            .map(|q| q.id.as_str())
            .collect();
        watched.sort_unstable();
        assert_eq!(
            read.queues.keys().map(String::as_str).collect::<Vec<_>>(),
            watched,
            "every …DeadLetters and …RelayFailures queue has an output <LogicalId>Url"
        );
        for id in &watched {
            if let Some(Kind::DeadLetters { source }) = kind_of(id) {
                assert!(read.sources.contains_key(&source), "{source}Url");
            }
        }
        assert_eq!(read.tables.len(), Service::ALL.len(), "{:?}", read.tables);
    }
}
