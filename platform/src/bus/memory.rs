use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessage;
use chrono::{DateTime, Utc};
use contract::Envelope;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use super::topology::{FilterPolicy, QueueSpec, Topology, TopologyError};
use crate::batch::DeadLetters;
use crate::clock::Clock;
use crate::ids::IdGenerator;
use crate::publish::{EventPublisher, PublishError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("no topic named {0:?}")]
    UnknownTopic(String),
    #[error("no queue named {0:?}")]
    UnknownQueue(String),
    #[error("receipt handle {0:?} is not current")]
    StaleReceipt(String),
}

/// A message as a consumer receives it (the fields Lambda's SQS event carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// A message in a dead-letter queue, with why it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub receive_count: u32,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub visible: usize,
    pub in_flight: usize,
    pub dead: usize,
}

#[derive(Debug, Clone)]
pub(super) struct Message {
    pub(super) id: String,
    pub(super) body: String,
    pub(super) attributes: BTreeMap<String, String>,
    pub(super) receive_count: u32,
    pub(super) visible_at: DateTime<Utc>,
    /// Set while in flight; a delete must present the latest one.
    pub(super) receipt: Option<String>,
}

pub(super) struct Queue {
    pub(super) spec: QueueSpec,
    /// A test control: while held, nothing is received from this queue.
    pub(super) held: bool,
    pub(super) messages: Vec<Message>,
    pub(super) dead: Vec<DeadLetter>,
}

pub(super) struct State {
    /// topic → (queue, filter) in declaration order.
    pub(super) subscriptions: BTreeMap<String, Vec<(String, FilterPolicy)>>,
    pub(super) queues: BTreeMap<String, Queue>,
}

/// The in-memory SNS topics and SQS queues of one topology.
pub struct MemoryBus {
    state: Mutex<State>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) ids: Arc<dyn IdGenerator>,
    /// Woken whenever a message may have become receivable.
    pub(super) arrivals: Notify,
}

impl MemoryBus {
    pub fn new(
        topology: &Topology,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Result<MemoryBus, TopologyError> {
        topology.validate()?;
        let mut subscriptions: BTreeMap<String, Vec<(String, FilterPolicy)>> = topology
            .topics
            .iter()
            .map(|t| (t.clone(), Vec::new()))
            .collect();
        for q in &topology.queues {
            for s in &q.subscriptions {
                subscriptions
                    .entry(s.topic.clone())
                    .or_default()
                    .push((q.name.clone(), s.filter.clone()));
            }
        }
        let queues = topology
            .queues
            .iter()
            .map(|q| {
                let queue = Queue {
                    spec: q.clone(),
                    held: false,
                    messages: Vec::new(),
                    dead: Vec::new(),
                };
                (q.name.clone(), queue)
            })
            .collect();
        Ok(MemoryBus {
            state: Mutex::new(State {
                subscriptions,
                queues,
            }),
            clock,
            ids,
            arrivals: Notify::new(),
        })
    }

    /// SQS `CreateQueue` and SNS `Subscribe` while running: a queue for an observer (a
    /// notification consumer, a benchmark's probe). Checked by the same rules as a topology.
    pub fn add_queue(&self, spec: QueueSpec) -> Result<(), TopologyError> {
        let mut state = self.lock();
        let mut check = Topology {
            topics: state.subscriptions.keys().cloned().collect(),
            queues: state.queues.values().map(|q| q.spec.clone()).collect(),
        };
        check.queues.push(spec.clone());
        check.validate()?;
        for s in &spec.subscriptions {
            state
                .subscriptions
                .entry(s.topic.clone())
                .or_default()
                .push((spec.name.clone(), s.filter.clone()));
        }
        let queue = Queue {
            spec: spec.clone(),
            held: false,
            messages: Vec::new(),
            dead: Vec::new(),
        };
        state.queues.insert(spec.name, queue);
        Ok(())
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data (every mutation is
        // a single push/remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SNS `Publish`: one copy to every subscribed queue whose filter matches.
    /// Returns how many queues received it.
    pub fn publish(
        &self,
        topic: &str,
        body: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<usize, BusError> {
        let now = self.clock.now();
        let mut state = self.lock();
        let targets: Vec<String> = state
            .subscriptions
            .get(topic)
            .ok_or_else(|| BusError::UnknownTopic(topic.to_owned()))?
            .iter()
            .filter(|(_, f)| f.matches(attributes))
            .map(|(q, _)| q.clone())
            .collect();
        for name in &targets {
            let id = self.ids.next_id();
            if let Some(q) = state.queues.get_mut(name) {
                q.messages.push(Message {
                    id,
                    body: body.to_owned(),
                    attributes: attributes.clone(),
                    receive_count: 0,
                    visible_at: now,
                    receipt: None,
                });
            }
        }
        drop(state);
        if !targets.is_empty() {
            self.arrivals.notify_waiters();
        }
        Ok(targets.len())
    }

    /// SQS `ReceiveMessage`: up to `max` visible messages, oldest first. Each becomes
    /// invisible for the queue's visibility timeout. A message already received
    /// `maxReceiveCount` times is moved to the dead-letter queue instead.
    pub fn receive(&self, queue: &str, max: usize) -> Result<Vec<Delivered>, BusError> {
        let now = self.clock.now();
        let mut state = self.lock();
        let q = queue_mut(&mut state, queue)?;
        if q.held {
            return Ok(Vec::new());
        }
        dead_letter_exhausted(q, now);
        let visible: Vec<usize> = (0..q.messages.len())
            .filter(|&i| q.messages[i].visible_at <= now)
            .take(max)
            .collect();
        Ok(visible
            .into_iter()
            .map(|i| self.take_in_flight(q, i, now))
            .collect())
    }

    /// Marks message `index` of `q` in flight and hands out a fresh receipt.
    pub(super) fn take_in_flight(
        &self,
        q: &mut Queue,
        index: usize,
        now: DateTime<Utc>,
    ) -> Delivered {
        let timeout =
            chrono::Duration::from_std(q.spec.visibility_timeout).unwrap_or(chrono::Duration::MAX);
        let receipt = self.ids.next_id();
        let m = &mut q.messages[index];
        m.receive_count += 1;
        m.visible_at = now
            .checked_add_signed(timeout)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        m.receipt = Some(receipt.clone());
        Delivered {
            message_id: m.id.clone(),
            receipt_handle: receipt,
            body: m.body.clone(),
            attributes: m.attributes.clone(),
            receive_count: m.receive_count,
        }
    }

    /// SQS `DeleteMessage`, by the receipt of the latest receive.
    pub fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), BusError> {
        let mut state = self.lock();
        let q = queue_mut(&mut state, queue)?;
        let i = position_of_receipt(q, receipt_handle)?;
        q.messages.remove(i);
        Ok(())
    }

    /// SQS `ChangeMessageVisibility`: zero makes a message receivable again at once.
    pub fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        timeout: std::time::Duration,
    ) -> Result<(), BusError> {
        let now = self.clock.now();
        let mut state = self.lock();
        let q = queue_mut(&mut state, queue)?;
        let i = position_of_receipt(q, receipt_handle)?;
        let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        q.messages[i].visible_at = now
            .checked_add_signed(timeout)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        drop(state);
        self.arrivals.notify_waiters();
        Ok(())
    }

    /// Moves an in-flight message straight to the dead-letter queue: for poison messages,
    /// which no retry can fix.
    pub fn dead_letter(
        &self,
        queue: &str,
        receipt_handle: &str,
        reason: &str,
    ) -> Result<(), BusError> {
        let mut state = self.lock();
        let q = queue_mut(&mut state, queue)?;
        let i = position_of_receipt(q, receipt_handle)?;
        let m = q.messages.remove(i);
        q.dead.push(dead_letter(m, reason.to_owned()));
        Ok(())
    }

    pub fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetter>, BusError> {
        let mut state = self.lock();
        Ok(queue_mut(&mut state, queue)?.dead.clone())
    }

    /// Moves every dead letter of `queue` back onto it, as new messages. Returns how many.
    pub fn redrive(&self, queue: &str) -> Result<usize, BusError> {
        let now = self.clock.now();
        let mut state = self.lock();
        let q = queue_mut(&mut state, queue)?;
        let dead = std::mem::take(&mut q.dead);
        let n = dead.len();
        for d in dead {
            q.messages.push(Message {
                id: self.ids.next_id(),
                body: d.body,
                attributes: d.attributes,
                receive_count: 0,
                visible_at: now,
                receipt: None,
            });
        }
        drop(state);
        self.arrivals.notify_waiters();
        Ok(n)
    }

    pub fn depth(&self, queue: &str) -> Result<QueueDepth, BusError> {
        let now = self.clock.now();
        let mut state = self.lock();
        let q = queue_mut(&mut state, queue)?;
        let visible = q.messages.iter().filter(|m| m.visible_at <= now).count();
        Ok(QueueDepth {
            visible,
            in_flight: q.messages.len() - visible,
            dead: q.dead.len(),
        })
    }

    /// A test control: holds back every message of `queue` (it keeps them) until
    /// [`MemoryBus::release`]. Lets a test stall one step of a saga.
    pub fn hold(&self, queue: &str) -> Result<(), BusError> {
        let mut state = self.lock();
        queue_mut(&mut state, queue)?.held = true;
        Ok(())
    }

    pub fn release(&self, queue: &str) -> Result<(), BusError> {
        let mut state = self.lock();
        queue_mut(&mut state, queue)?.held = false;
        drop(state);
        self.arrivals.notify_waiters();
        Ok(())
    }

    pub fn queue_names(&self) -> Vec<String> {
        self.lock().queues.keys().cloned().collect()
    }

    /// What `queue` was declared with.
    pub fn spec(&self, queue: &str) -> Result<QueueSpec, BusError> {
        let mut state = self.lock();
        Ok(queue_mut(&mut state, queue)?.spec.clone())
    }

    /// The earliest time an invisible message of `queue` becomes visible again.
    pub fn next_visible_at(&self, queue: &str) -> Result<Option<DateTime<Utc>>, BusError> {
        let mut state = self.lock();
        Ok(queue_mut(&mut state, queue)?
            .messages
            .iter()
            .map(|m| m.visible_at)
            .min())
    }

    /// Resolves when something is published, redriven or made visible again.
    /// `enable()` it before looking at the queue so nothing in between is missed.
    pub fn arrival(&self) -> Notified<'_> {
        self.arrivals.notified()
    }
}

pub(super) fn queue_mut<'a>(state: &'a mut State, name: &str) -> Result<&'a mut Queue, BusError> {
    state
        .queues
        .get_mut(name)
        .ok_or_else(|| BusError::UnknownQueue(name.to_owned()))
}

/// The redrive rule: a visible message already received `maxReceiveCount` times goes to the
/// dead-letter queue instead of to the consumer.
pub(super) fn dead_letter_exhausted(q: &mut Queue, now: DateTime<Utc>) {
    let max = q.spec.max_receive_count;
    let (exhausted, kept): (Vec<Message>, Vec<Message>) = std::mem::take(&mut q.messages)
        .into_iter()
        .partition(|m| m.visible_at <= now && m.receive_count >= max);
    q.messages = kept;
    for m in exhausted {
        let reason = format!("received {} times without success", m.receive_count);
        q.dead.push(dead_letter(m, reason));
    }
}

fn position_of_receipt(q: &Queue, receipt_handle: &str) -> Result<usize, BusError> {
    q.messages
        .iter()
        .position(|m| m.receipt.as_deref() == Some(receipt_handle))
        .ok_or_else(|| BusError::StaleReceipt(receipt_handle.to_owned()))
}

fn dead_letter(m: Message, reason: String) -> DeadLetter {
    DeadLetter {
        message_id: m.id,
        body: m.body,
        attributes: m.attributes,
        receive_count: m.receive_count,
        reason,
    }
}

/// Publishes envelopes to their producer's topic on the in-memory bus, as SNS would.
#[derive(Clone)]
pub struct BusPublisher {
    bus: Arc<MemoryBus>,
    /// The topic it publishes to; `None`: the topic named after each event's source.
    topic: Option<String>,
}

impl BusPublisher {
    pub fn new(bus: Arc<MemoryBus>) -> Self {
        BusPublisher { bus, topic: None }
    }

    /// Publishes every event to `topic`, as a relay publishes to its `TOPIC_ARN`.
    pub fn to_topic(bus: Arc<MemoryBus>, topic: &str) -> Self {
        BusPublisher {
            bus,
            topic: Some(topic.to_owned()),
        }
    }
}

#[async_trait]
impl EventPublisher for BusPublisher {
    async fn publish(&self, event: &Envelope) -> Result<(), PublishError> {
        let attributes = event
            .message_attributes()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.bus
            .publish(
                self.topic.as_deref().unwrap_or(event.source.name()),
                &event.to_json(),
                &attributes,
            )
            .map(|_| ())
            .map_err(|e| PublishError(e.to_string()))
    }
}

/// The dead-letter queue of one queue of the in-memory bus.
#[derive(Clone)]
pub struct BusDeadLetters {
    bus: Arc<MemoryBus>,
    queue: String,
}

impl BusDeadLetters {
    pub fn new(bus: Arc<MemoryBus>, queue: impl Into<String>) -> Self {
        BusDeadLetters {
            bus,
            queue: queue.into(),
        }
    }
}

#[async_trait]
impl DeadLetters for BusDeadLetters {
    async fn quarantine(&self, message: &SqsMessage, reason: &str) -> Result<(), String> {
        let receipt = message.receipt_handle.as_deref().unwrap_or_default();
        self.bus
            .dead_letter(&self.queue, receipt, reason)
            .map_err(|e| e.to_string())
    }
}
