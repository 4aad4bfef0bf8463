//! Driving the bus one delivery at a time, with a seeded random choice of what comes next.
//!
//! Each [`Stepper::step`] picks one visible message from any queue (so messages are
//! reordered within and across queues), may lose it or deliver it twice, and hands it over
//! in flight. The driver runs the consumer and then calls [`Stepper::settle`] with the ids
//! the consumer reported as failed. With the same seed, the same topology and the same
//! publishes, the sequence of steps is the same.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::BusError;
use super::memory::{Delivered, MemoryBus, Message, dead_letter_exhausted, queue_mut};

/// Fault rates, each a probability in `[0, 1]`, applied per step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// The chosen message is also left on the queue as a second copy (at-least-once).
    pub duplicate: f64,
    /// The chosen message disappears without being delivered (lost between topic and queue).
    pub drop: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A message to hand to the queue's consumer. Settle it afterwards.
    Deliver { queue: String, message: Delivered },
    /// A message was lost on the way.
    Lost { queue: String, message_id: String },
}

pub struct Stepper {
    bus: Arc<MemoryBus>,
    rng: ChaCha8Rng,
    faults: Faults,
}

impl Stepper {
    pub fn new(bus: Arc<MemoryBus>, seed: u64, faults: Faults) -> Self {
        Stepper {
            bus,
            rng: ChaCha8Rng::seed_from_u64(seed),
            faults,
        }
    }

    /// The next step, or `None` when no message is visible now (advance the clock, or the
    /// system is quiet).
    pub fn step(&mut self) -> Option<Step> {
        let now = self.bus.clock.now();
        let mut state = self.bus.lock();
        for q in state.queues.values_mut() {
            dead_letter_exhausted(q, now);
        }
        // Every visible message, in a deterministic order: queues by name, then arrival.
        let candidates: Vec<(String, usize)> = state
            .queues
            .iter()
            .filter(|(_, q)| !q.held)
            .flat_map(|(name, q)| {
                q.messages
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.visible_at <= now)
                    .map(move |(i, _)| (name.clone(), i))
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let (queue, index) = candidates[self.rng.random_range(0..candidates.len())].clone();
        let lose = self.rng.random_bool(self.faults.drop.clamp(0.0, 1.0));
        let duplicate = self.rng.random_bool(self.faults.duplicate.clamp(0.0, 1.0));
        let q = queue_mut(&mut state, &queue).ok()?;
        if lose {
            let m = q.messages.remove(index);
            return Some(Step::Lost {
                queue,
                message_id: m.id,
            });
        }
        if duplicate {
            let copy = Message {
                id: self.bus.ids.next_id(),
                receive_count: 0,
                receipt: None,
                ..q.messages[index].clone()
            };
            q.messages.push(copy);
        }
        let message = self.bus.take_in_flight(q, index, now);
        Some(Step::Deliver { queue, message })
    }

    /// After the consumer ran: delete the message unless it failed. A failed message stays
    /// in flight until its visibility timeout, then comes back.
    pub fn settle(&self, queue: &str, message: &Delivered, failed: bool) -> Result<(), BusError> {
        if failed {
            Ok(())
        } else {
            self.bus.delete(queue, &message.receipt_handle)
        }
    }
}
