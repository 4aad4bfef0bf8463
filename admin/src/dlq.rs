//! The dead-letter and relay-failure queues: their depths, their messages (looked at, left
//! in place) and the redrive of a dead-letter queue's messages to the queue they came from.
//!
//! The logic runs on a small port, [`Queues`], so that what it takes and in which order is
//! tested without AWS ([`AwsQueues`] is SQS).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use chrono::{DateTime, Utc};

use crate::message::{self, Message};
use crate::system::{Kind, System, Watched, local_name};
use crate::{AdminError, aws, unbuilt};

/// How many messages a queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// `ApproximateNumberOfMessages`: there to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received by someone, not yet deleted.
    pub in_flight: u64,
}

/// A received message and the handle to delete it or give it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message: Message,
    pub receipt: String,
}

/// What `shop-admin` does with a queue.
#[async_trait]
pub trait Queues: Send + Sync {
    async fn depth(&self, url: &str) -> Result<Depth, AdminError>;
    /// Up to `max` (1 to 10) messages, invisible to others for `hold`; none when the queue
    /// has none to give (after a short wait).
    async fn receive(
        &self,
        url: &str,
        max: usize,
        hold: Duration,
    ) -> Result<Vec<Received>, AdminError>;
    /// Sends `message`'s body with the attributes it was published with.
    async fn send(&self, url: &str, message: &Message) -> Result<(), AdminError>;
    async fn delete(&self, url: &str, receipt: &str) -> Result<(), AdminError>;
    /// Makes received messages visible again at once.
    async fn release(&self, url: &str, receipts: &[String]) -> Result<(), AdminError>;
}

/// How long `show` keeps the messages it looks at from others while it reads more (then they
/// are made visible at once; should it die, they come back after this).
const PEEK_HOLD: Duration = Duration::from_secs(30);
/// How long `redrive` keeps a message it received while it sends it back and deletes it, and
/// the ones it passes over while it looks for one by id.
const REDRIVE_HOLD: Duration = Duration::from_secs(120);
/// SQS hands out at most this many messages a receive.
const RECEIVE_MAX: usize = 10;

/// One line of `dlq list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub depth: Depth,
    /// Where its messages came from.
    pub from: String,
}

/// Every watched queue of the system with its depth, in name order.
pub async fn list(queues: &dyn Queues, system: &System) -> Result<Vec<Row>, AdminError> {
    let mut rows = Vec::with_capacity(system.queues.len());
    for queue in &system.queues {
        rows.push(Row {
            name: queue.name.clone(),
            depth: queues.depth(&system.url(queue).await?).await?,
            from: from(&queue.kind),
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

fn from(kind: &Kind) -> String {
    match kind {
        Kind::DeadLetters { source } => format!("queue {}", local_name(source)),
        Kind::RelayFailures { table } => format!("relay of table {}", local_name(table)),
    }
}

/// `dlq list` as a table; queues holding messages are marked.
pub fn render_list(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "  {:<width$}  {:>9}  {:>9}  FROM\n",
        "QUEUE", "MESSAGES", "IN FLIGHT"
    );
    for row in rows {
        let mark = if row.depth.visible + row.depth.in_flight > 0 {
            '!'
        } else {
            ' '
        };
        out.push_str(&format!(
            "{mark} {:<width$}  {:>9}  {:>9}  {}\n",
            row.name, row.depth.visible, row.depth.in_flight, row.from
        ));
    }
    let holding = rows
        .iter()
        .filter(|r| r.depth.visible + r.depth.in_flight > 0)
        .count();
    out.push_str(&format!(
        "{holding} of {} queues hold messages\n",
        rows.len()
    ));
    out
}

/// Up to `max` messages of the queue, each once, left in it: they are received (held from
/// others for a moment, so that the next receive gives others) and made visible again
/// before this returns, also when it fails.
pub async fn peek(queues: &dyn Queues, url: &str, max: usize) -> Result<Vec<Message>, AdminError> {
    let mut seen = HashSet::new();
    let mut shown = Vec::new();
    let mut held = Vec::new();
    // A receive gives at least one new message or ends the loop; duplicates can only slow
    // it, never keep it going: at most this many receives.
    let receives = max.div_ceil(RECEIVE_MAX) + 3;
    let mut result = Ok(());
    for _ in 0..receives {
        if shown.len() >= max {
            break;
        }
        let wanted = (max - shown.len()).min(RECEIVE_MAX);
        let received = match queues.receive(url, wanted, PEEK_HOLD).await {
            Ok(received) => received,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        if received.is_empty() {
            break;
        }
        for r in received {
            held.push(r.receipt);
            if shown.len() < max && seen.insert(r.message.message_id.clone()) {
                shown.push(r.message);
            }
        }
    }
    let released = queues.release(url, &held).await;
    result.and(released).map(|()| shown)
}

/// Which messages to move back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    All,
    Message(String),
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    /// How many messages the queue held when called: the most it moves.
    pub held: u64,
    pub moved: Vec<Message>,
    /// Messages looked at and left (other ids, or a second copy of one already taken).
    pub left: usize,
}

/// Moves messages of the dead-letter queue `dlq` back to `source`: each is sent (its body
/// and the attributes it was published with), then deleted from the dead-letter queue, and
/// handed to `moved` as it goes. Only what the queue held when called: at most as many
/// messages as it held then, each message id once, so a message that fails again and comes
/// back while this runs is not moved round in circles. Messages passed over are made
/// visible again before it returns.
pub async fn redrive(
    queues: &dyn Queues,
    dlq: &str,
    source: &str,
    pick: &Pick,
    moved: &mut (dyn FnMut(&Message) + Send),
) -> Result<Redriven, AdminError> {
    let held = queues.depth(dlq).await?.visible;
    let bound = usize::try_from(held).unwrap_or(usize::MAX);
    let mut report = Redriven {
        held,
        ..Redriven::default()
    };
    let mut seen = HashSet::new();
    let mut passed = Vec::new();
    let receives = bound.div_ceil(RECEIVE_MAX) + 3;
    let mut result = Ok(());
    'receiving: for _ in 0..receives {
        let looked_at = seen.len();
        let done = match pick {
            Pick::All => looked_at >= bound,
            Pick::Message(_) => !report.moved.is_empty() || looked_at >= bound,
        };
        if done {
            break;
        }
        let wanted = (bound - looked_at).min(RECEIVE_MAX);
        let received = match queues.receive(dlq, wanted, REDRIVE_HOLD).await {
            Ok(received) => received,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        if received.is_empty() {
            break;
        }
        let mut batch = received.into_iter();
        while let Some(Received { message, receipt }) = batch.next() {
            let wanted = match pick {
                Pick::All => true,
                Pick::Message(id) => *id == message.message_id,
            };
            // Beyond the bound, a second copy of an id already seen, or not the one asked for.
            if seen.len() >= bound || !seen.insert(message.message_id.clone()) || !wanted {
                passed.push(receipt);
                report.left += 1;
                continue;
            }
            if let Err(e) = queues.send(source, &message).await {
                passed.push(receipt);
                passed.extend(batch.map(|r| r.receipt));
                result = Err(AdminError::Partly(format!(
                    "message {} could not be sent back, and stays in the dead-letter queue: {e}",
                    message.message_id
                )));
                break 'receiving;
            }
            if let Err(e) = queues.delete(dlq, &receipt).await {
                moved(&message);
                report.moved.push(message.clone());
                passed.extend(batch.map(|r| r.receipt));
                result = Err(AdminError::Partly(format!(
                    "message {} was sent back but could not be deleted from the dead-letter \
                     queue, so it is in both (its consumer handles a repeat once): {e}",
                    message.message_id
                )));
                break 'receiving;
            }
            moved(&message);
            report.moved.push(message);
        }
    }
    let released = queues.release(dlq, &passed).await;
    result.and(released)?;
    if let Pick::Message(id) = pick
        && report.moved.is_empty()
    {
        return Err(AdminError::Missing(format!(
            "no message {id} among the {held} the queue held"
        )));
    }
    Ok(report)
}

/// `redrive` of a watched queue: the URL of where its messages go back to, or why they cannot.
pub async fn source_of(system: &System, queue: &Watched) -> Result<String, AdminError> {
    system.source_url(redrive_source(queue)?).await
}

/// `redrive` of a watched queue: the logical id of the queue its messages go back to, or why
/// they cannot.
pub fn redrive_source(queue: &Watched) -> Result<&str, AdminError> {
    match &queue.kind {
        Kind::DeadLetters { source } => Ok(source),
        Kind::RelayFailures { table } => Err(AdminError::Usage(format!(
            "{} holds Lambda's records of stream batches the relay of table {} could not \
             publish, not the events: there is nothing to send back. Each record names the \
             shard and sequence numbers of its batch (`shop-admin dlq show {}`); the records \
             stay on the table's stream for 24 hours, to be relayed again from there",
            queue.name,
            local_name(table),
            queue.name
        ))),
    }
}

/// One line per moved message: its id, and its event's type and order when it is one.
pub fn render_moved(message: &Message) -> String {
    let summary = message::decode(message);
    let what = match &summary.content {
        message::Content::Event(e) => format!(
            "{} of order {}",
            e.event_type,
            e.order_id.as_deref().unwrap_or("-")
        ),
        message::Content::RelayFailure(_) => "a relay failure record".to_owned(),
        message::Content::Unreadable { .. } => "no event".to_owned(),
    };
    format!("moved {} ({what})", message.message_id)
}

/// SQS.
pub struct AwsQueues(pub aws_sdk_sqs::Client);

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[async_trait]
impl Queues for AwsQueues {
    async fn depth(&self, url: &str) -> Result<Depth, AdminError> {
        let attributes = self
            .0
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(aws(format!("the depth of {url}")))?
            .attributes
            .unwrap_or_default();
        let count = |name| {
            attributes
                .get(&name)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(Depth {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    async fn receive(
        &self,
        url: &str,
        max: usize,
        hold: Duration,
    ) -> Result<Vec<Received>, AdminError> {
        let out = self
            .0
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max.clamp(1, RECEIVE_MAX)).unwrap_or(1))
            .visibility_timeout(seconds(hold))
            // A short long poll: every server of the queue is asked, so an empty answer
            // means an empty queue rather than an unlucky sample.
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(aws(format!("receiving from {url}")))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let system = m.attributes.unwrap_or_default();
                let system_text = |name| system.get(&name).cloned();
                let message = Message {
                    message_id: m.message_id?,
                    body: m.body.unwrap_or_default(),
                    attributes: m
                        .message_attributes
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|(name, value)| {
                            let text = value.string_value?;
                            Some((name, (value.data_type, text)))
                        })
                        .collect::<BTreeMap<_, _>>(),
                    receive_count: system_text(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|n| n.parse().ok()),
                    sent_at: system_text(MessageSystemAttributeName::SentTimestamp)
                        .and_then(|ms| ms.parse().ok())
                        .and_then(DateTime::<Utc>::from_timestamp_millis),
                    dead_letter_source: system_text(
                        MessageSystemAttributeName::DeadLetterQueueSourceArn,
                    ),
                };
                Some(Received {
                    message,
                    receipt: m.receipt_handle?,
                })
            })
            .collect())
    }

    async fn send(&self, url: &str, message: &Message) -> Result<(), AdminError> {
        let mut send = self
            .0
            .send_message()
            .queue_url(url)
            .message_body(&message.body);
        for (name, data_type, value) in message.attributes_to_resend() {
            let attribute = MessageAttributeValue::builder()
                .data_type(data_type)
                .string_value(value)
                .build()
                .map_err(unbuilt("a message attribute"))?;
            send = send.message_attributes(name, attribute);
        }
        send.send()
            .await
            .map(|_| ())
            .map_err(aws(format!("sending to {url}")))
    }

    async fn delete(&self, url: &str, receipt: &str) -> Result<(), AdminError> {
        self.0
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(aws(format!("deleting from {url}")))
    }

    async fn release(&self, url: &str, receipts: &[String]) -> Result<(), AdminError> {
        for chunk in receipts.chunks(RECEIVE_MAX) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, receipt) in chunk.iter().enumerate() {
                entries.push(
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .build()
                        .map_err(unbuilt("a visibility change"))?,
                );
            }
            let out = self
                .0
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(aws(format!("making messages of {url} visible again")))?;
            // A message deleted meanwhile cannot be released; that is no failure.
            let failed = out.failed().iter().filter(|f| !f.sender_fault).count();
            if failed > 0 {
                return Err(AdminError::Aws {
                    what: format!("making messages of {url} visible again"),
                    reason: format!("{failed} stay invisible until their hold ends"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// An SQS queue in memory: received messages are invisible until released or deleted;
    /// `duplicate` hands out a message's second copy, as SQS's at-least-once delivery may.
    #[derive(Default)]
    struct Fake {
        queues: Mutex<BTreeMap<String, Vec<Stored>>>,
        duplicate: Mutex<Option<String>>,
        arrive_while_moving: Mutex<Vec<Message>>,
        receives: Mutex<usize>,
        fail_send: bool,
    }

    #[derive(Clone)]
    struct Stored {
        message: Message,
        visible: bool,
        receipt: u64,
    }

    fn msg(id: &str) -> Message {
        Message {
            message_id: id.into(),
            body: format!("body of {id}"),
            attributes: BTreeMap::from([
                ("type".into(), ("String".into(), "OrderCreated".into())),
                ("poisonReason".into(), ("String".into(), "boom".into())),
            ]),
            ..Message::default()
        }
    }

    impl Fake {
        fn with(dlq: &[&str]) -> Fake {
            let fake = Fake::default();
            for id in dlq {
                fake.put("dlq", msg(id));
            }
            fake
        }

        fn put(&self, queue: &str, message: Message) {
            let mut queues = self.queues.lock().unwrap();
            let receipt = queues.values().map(Vec::len).sum::<usize>() as u64 + 1000;
            queues.entry(queue.into()).or_default().push(Stored {
                message,
                visible: true,
                receipt,
            });
        }

        fn ids(&self, queue: &str) -> Vec<String> {
            let queues = self.queues.lock().unwrap();
            queues
                .get(queue)
                .map(|q| q.iter().map(|s| s.message.message_id.clone()).collect())
                .unwrap_or_default()
        }

        fn invisible(&self, queue: &str) -> usize {
            let queues = self.queues.lock().unwrap();
            queues
                .get(queue)
                .map(|q| q.iter().filter(|s| !s.visible).count())
                .unwrap_or_default()
        }
    }

    #[async_trait]
    impl Queues for Fake {
        async fn depth(&self, url: &str) -> Result<Depth, AdminError> {
            let queues = self.queues.lock().unwrap();
            let q = queues.get(url).cloned().unwrap_or_default();
            Ok(Depth {
                visible: q.iter().filter(|s| s.visible).count() as u64,
                in_flight: q.iter().filter(|s| !s.visible).count() as u64,
            })
        }

        async fn receive(
            &self,
            url: &str,
            max: usize,
            _hold: Duration,
        ) -> Result<Vec<Received>, AdminError> {
            assert!((1..=10).contains(&max), "{max}");
            *self.receives.lock().unwrap() += 1;
            let mut queues = self.queues.lock().unwrap();
            let q = queues.entry(url.into()).or_default();
            let mut out = Vec::new();
            if let Some(id) = self.duplicate.lock().unwrap().take() {
                // Hands out a copy of `id` again, with a new receipt that deletes nothing.
                let copy = q.iter().find(|s| s.message.message_id == id).cloned();
                if let Some(copy) = copy {
                    out.push(Received {
                        message: copy.message,
                        receipt: "stale".into(),
                    });
                }
            }
            for stored in q.iter_mut().filter(|s| s.visible).take(max - out.len()) {
                stored.visible = false;
                stored.receipt += 1;
                out.push(Received {
                    message: stored.message.clone(),
                    receipt: stored.receipt.to_string(),
                });
            }
            Ok(out)
        }

        async fn send(&self, url: &str, message: &Message) -> Result<(), AdminError> {
            if self.fail_send {
                return Err(AdminError::Aws {
                    what: format!("sending to {url}"),
                    reason: "denied".into(),
                });
            }
            let mut resent = message.clone();
            resent.attributes = message
                .attributes_to_resend()
                .map(|(n, t, v)| (n.to_owned(), (t.to_owned(), v.to_owned())))
                .collect();
            self.put(url, resent);
            // A consumer that fails it again sends it back to the dead-letter queue at once.
            for late in self.arrive_while_moving.lock().unwrap().drain(..) {
                self.put("dlq", late);
            }
            Ok(())
        }

        async fn delete(&self, url: &str, receipt: &str) -> Result<(), AdminError> {
            let mut queues = self.queues.lock().unwrap();
            if let Some(q) = queues.get_mut(url) {
                q.retain(|s| s.visible || s.receipt.to_string() != receipt);
            }
            Ok(())
        }

        async fn release(&self, url: &str, receipts: &[String]) -> Result<(), AdminError> {
            let mut queues = self.queues.lock().unwrap();
            if let Some(q) = queues.get_mut(url) {
                for s in q.iter_mut() {
                    if receipts.contains(&s.receipt.to_string()) {
                        s.visible = true;
                    }
                }
            }
            Ok(())
        }
    }

    async fn redrive_all(fake: &Fake, pick: Pick) -> (Result<Redriven, AdminError>, Vec<String>) {
        let mut printed = Vec::new();
        let result = redrive(fake, "dlq", "source", &pick, &mut |m: &Message| {
            printed.push(m.message_id.clone())
        })
        .await;
        (result, printed)
    }

    #[tokio::test]
    async fn show_looks_at_each_message_once_and_leaves_them_all_visible() {
        let ids: Vec<String> = (0..25).map(|i| format!("m{i:02}")).collect();
        let fake = Fake::with(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        *fake.duplicate.lock().unwrap() = Some("m00".into());
        let shown = peek(&fake, "dlq", 12).await.unwrap();
        let shown: Vec<&str> = shown.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(
            shown,
            ids[..12].iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert_eq!(fake.invisible("dlq"), 0, "all released");
        assert_eq!(fake.ids("dlq").len(), 25, "none deleted");
        let all = peek(&fake, "dlq", 100).await.unwrap();
        assert_eq!(all.len(), 25);
        assert!(peek(&fake, "empty", 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn redrive_all_moves_what_was_there_without_the_error_attribute() {
        let fake = Fake::with(&["a", "b", "c"]);
        let (result, printed) = redrive_all(&fake, Pick::All).await;
        let report = result.unwrap();
        assert_eq!(report.held, 3);
        assert_eq!(printed, ["a", "b", "c"]);
        assert_eq!(fake.ids("dlq"), Vec::<String>::new());
        assert_eq!(fake.ids("source"), ["a", "b", "c"]);
        let queues = fake.queues.lock().unwrap();
        let attributes = &queues["source"][0].message.attributes;
        assert!(attributes.contains_key("type") && !attributes.contains_key("poisonReason"));
    }

    #[tokio::test]
    async fn messages_that_come_back_while_it_runs_are_not_moved_again() {
        let fake = Fake::with(&["a", "b"]);
        // Every message fails again at once and is back in the DLQ before the next receive.
        fake.arrive_while_moving
            .lock()
            .unwrap()
            .extend([msg("a"), msg("b"), msg("late")]);
        let (result, printed) = redrive_all(&fake, Pick::All).await;
        assert_eq!(result.unwrap().held, 2);
        assert_eq!(printed, ["a", "b"], "at most what was held, each once");
        assert_eq!(
            fake.invisible("dlq"),
            0,
            "what it passed over is visible again"
        );
        assert!(*fake.receives.lock().unwrap() <= 3);
    }

    #[tokio::test]
    async fn a_second_copy_of_a_message_is_never_taken_twice() {
        let fake = Fake::with(&["a", "b", "c"]);
        *fake.duplicate.lock().unwrap() = Some("a".into());
        // The copy of "a" comes first and is taken; the original is then passed over (and
        // stays: the copy's receipt deleted nothing).
        let (result, printed) = redrive_all(&fake, Pick::All).await;
        let report = result.unwrap();
        assert_eq!(printed, ["a", "b", "c"]);
        assert_eq!(report.left, 1);
        assert_eq!(fake.ids("dlq"), ["a"]);
        assert_eq!(fake.invisible("dlq"), 0);
    }

    #[tokio::test]
    async fn one_message_by_id_moves_only_it() {
        let ids: Vec<String> = (0..15).map(|i| format!("m{i:02}")).collect();
        let fake = Fake::with(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        let (result, printed) = redrive_all(&fake, Pick::Message("m12".into())).await;
        assert_eq!(result.unwrap().moved.len(), 1);
        assert_eq!(printed, ["m12"]);
        assert_eq!(fake.ids("source"), ["m12"]);
        assert_eq!(fake.ids("dlq").len(), 14);
        assert_eq!(fake.invisible("dlq"), 0, "the others are visible again");

        let (result, printed) = redrive_all(&fake, Pick::Message("nope".into())).await;
        let error = result.unwrap_err().to_string();
        assert!(error.contains("no message nope among the 14"), "{error}");
        assert!(printed.is_empty());
        assert_eq!(fake.invisible("dlq"), 0);
    }

    #[tokio::test]
    async fn an_empty_queue_moves_nothing_and_a_failed_send_keeps_the_message() {
        let fake = Fake::default();
        let (result, _) = redrive_all(&fake, Pick::All).await;
        assert_eq!(result.unwrap(), Redriven::default());

        let fake = Fake {
            fail_send: true,
            ..Fake::with(&["a", "b"])
        };
        let (result, printed) = redrive_all(&fake, Pick::All).await;
        let error = result.unwrap_err();
        assert!(matches!(error, AdminError::Partly(_)), "{error}");
        assert!(
            error
                .to_string()
                .contains("message a could not be sent back")
        );
        assert!(printed.is_empty());
        assert_eq!(fake.ids("dlq"), ["a", "b"]);
        assert_eq!(fake.invisible("dlq"), 0, "both visible again");
    }

    #[test]
    fn the_list_is_a_table_with_the_queues_that_hold_messages_marked() {
        let rows = [
            Row {
                name: "product-order-created-dead-letters".into(),
                depth: Depth {
                    visible: 1,
                    in_flight: 0,
                },
                from: from(&Kind::DeadLetters {
                    source: "ProductOrderCreatedQueue".into(),
                }),
            },
            Row {
                name: "user-relay-failures".into(),
                depth: Depth::default(),
                from: from(&Kind::RelayFailures {
                    table: "UserTable".into(),
                }),
            },
        ];
        let text = render_list(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "  QUEUE                                MESSAGES  IN FLIGHT  FROM",
                "! product-order-created-dead-letters          1          0  queue product-order-created",
                "  user-relay-failures                         0          0  relay of table user",
                "1 of 2 queues hold messages",
            ]
        );
    }
}
