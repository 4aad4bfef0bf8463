use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

/// Which messages of a topic a subscription lets through, by their message attributes: an
/// SNS filter policy of exact values (`{"type": ["A", "B"], "hasCoupon": ["true"]}`): every
/// attribute named must be present with one of its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterPolicy {
    All,
    Attributes(BTreeMap<String, BTreeSet<String>>),
}

impl FilterPolicy {
    /// Messages whose `type` is one of `types`.
    pub fn types<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        FilterPolicy::All.and("type", types)
    }

    /// This policy, and `attribute` one of `values`.
    pub fn and<I, S>(self, attribute: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut attributes = match self {
            FilterPolicy::All => BTreeMap::new(),
            FilterPolicy::Attributes(a) => a,
        };
        attributes.insert(
            attribute.to_owned(),
            values.into_iter().map(Into::into).collect(),
        );
        FilterPolicy::Attributes(attributes)
    }

    pub fn matches(&self, attributes: &BTreeMap<String, String>) -> bool {
        match self {
            FilterPolicy::All => true,
            // Like SNS: a message without a filtered attribute does not match.
            FilterPolicy::Attributes(wanted) => wanted
                .iter()
                .all(|(name, values)| attributes.get(name).is_some_and(|v| values.contains(v))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topic: String,
    pub filter: FilterPolicy,
}

/// One consuming function's queue, with its redrive policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub subscriptions: Vec<Subscription>,
    pub visibility_timeout: Duration,
    /// After this many receives without a delete, the next receive moves it to the DLQ.
    pub max_receive_count: u32,
    /// The consuming function's event source mapping: how many messages a batch holds at
    /// most, how long it waits to fill one, and how many batches run at once.
    pub batch_size: usize,
    pub batching_window: Duration,
    pub pollers: usize,
}

impl QueueSpec {
    pub fn new(name: impl Into<String>) -> Self {
        QueueSpec {
            name: name.into(),
            subscriptions: Vec::new(),
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: 5,
            batch_size: 10,
            batching_window: Duration::ZERO,
            pollers: 1,
        }
    }

    pub fn subscribe(mut self, topic: impl Into<String>, filter: FilterPolicy) -> Self {
        self.subscriptions.push(Subscription {
            topic: topic.into(),
            filter,
        });
        self
    }

    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    pub fn max_receive_count(mut self, count: u32) -> Self {
        self.max_receive_count = count;
        self
    }

    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size;
        self
    }

    pub fn batching_window(mut self, window: Duration) -> Self {
        self.batching_window = window;
        self
    }

    pub fn pollers(mut self, pollers: usize) -> Self {
        self.pollers = pollers;
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub topics: Vec<String>,
    pub queues: Vec<QueueSpec>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error("topic {0:?} is declared twice")]
    DuplicateTopic(String),
    #[error("queue {0:?} is declared twice")]
    DuplicateQueue(String),
    #[error("queue {queue:?} subscribes to unknown topic {topic:?}")]
    UnknownTopic { queue: String, topic: String },
    #[error(
        "queue {0:?} needs a max receive count, a batch size and a number of pollers of at least 1"
    )]
    InvalidRedrive(String),
}

impl Topology {
    pub fn validate(&self) -> Result<(), TopologyError> {
        let mut topics = HashSet::new();
        for t in &self.topics {
            if !topics.insert(t.as_str()) {
                return Err(TopologyError::DuplicateTopic(t.clone()));
            }
        }
        let mut queues = HashSet::new();
        for q in &self.queues {
            if !queues.insert(q.name.as_str()) {
                return Err(TopologyError::DuplicateQueue(q.name.clone()));
            }
            if q.max_receive_count == 0 || q.batch_size == 0 || q.pollers == 0 {
                return Err(TopologyError::InvalidRedrive(q.name.clone()));
            }
            if let Some(s) = q
                .subscriptions
                .iter()
                .find(|s| !topics.contains(s.topic.as_str()))
            {
                return Err(TopologyError::UnknownTopic {
                    queue: q.name.clone(),
                    topic: s.topic.clone(),
                });
            }
        }
        Ok(())
    }
}
