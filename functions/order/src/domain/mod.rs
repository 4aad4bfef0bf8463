//! The order's rules. Pure: no I/O, no clock (times come in as arguments). Here the
//! order's life after it is placed (the transition table); placing it is in `place`.

use chrono::{DateTime, Duration, Utc};
use contract::{FailureReason, OrderItem, Won};
use serde::{Deserialize, Serialize};

mod place;

pub use place::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = OrderStatus)]
pub enum Status {
    Pending,
    Confirmed,
    Failing,
    Failed,
    Cancelling,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Confirmed,
        Status::Failing,
        Status::Failed,
        Status::Cancelling,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Confirmed => "CONFIRMED",
            Status::Failing => "FAILING",
            Status::Failed => "FAILED",
            Status::Cancelling => "CANCELLING",
            Status::Cancelled => "CANCELLED",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Confirmed | Status::Failed | Status::Cancelled)
    }

    /// FAILED or CANCELLED: the order lets go of its coupon.
    pub fn ended_unconfirmed(self) -> bool {
        matches!(self, Status::Failed | Status::Cancelled)
    }
}

/// The three parts of the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Stock,
    Coupon,
    Payment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepState {
    Pending,
    Done,
    Failed,
    NotRequired,
}

impl StepState {
    pub const ALL: [StepState; 4] = [
        StepState::Pending,
        StepState::Done,
        StepState::Failed,
        StepState::NotRequired,
    ];

    /// As the API and the stored order spell it (`NOT_REQUIRED`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "PENDING",
            StepState::Done => "DONE",
            StepState::Failed => "FAILED",
            StepState::NotRequired => "NOT_REQUIRED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Steps {
    pub stock: StepState,
    pub coupon: StepState,
    pub payment: StepState,
}

impl Steps {
    fn get_mut(&mut self, step: Step) -> &mut StepState {
        match step {
            Step::Stock => &mut self.stock,
            Step::Coupon => &mut self.coupon,
            Step::Payment => &mut self.payment,
        }
    }

    fn all_done(&self) -> bool {
        [self.stock, self.coupon, self.payment]
            .iter()
            .all(|s| matches!(s, StepState::Done | StepState::NotRequired))
    }
}

/// Which undo answers have arrived (`Some(did_something)`). Stored without what has not
/// arrived (every byte of an order is billed, see `platform::packing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<bool>,
}

impl Undo {
    /// No undo answer yet: the undo of an order that never needed one, left out when stored.
    fn is_empty(&self) -> bool {
        *self == Undo::default()
    }

    fn get_mut(&mut self, step: Step) -> &mut Option<bool> {
        match step {
            Step::Stock => &mut self.stock,
            Step::Coupon => &mut self.coupon,
            Step::Payment => &mut self.payment,
        }
    }

    /// All three answered (the coupon's is not awaited when the order had none).
    fn complete(&self, coupon_required: bool) -> bool {
        self.stock.is_some()
            && self.payment.is_some()
            && (!coupon_required || self.coupon.is_some())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: String,
    pub user_id: String,
    pub status: Status,
    pub items: Vec<OrderItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_id: Option<String>,
    pub total_amount: Won,
    pub discount_amount: Won,
    pub payment_amount: Won,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub steps: Steps,
    #[serde(default, skip_serializing_if = "Undo::is_empty")]
    pub undo: Undo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    /// When the sweep announces again: the undo of a FAILING / CANCELLING order whose answers
    /// are missing, or a confirmation whose sale the product service has not yet recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce_again_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub was_confirmed: bool,
    /// For CONFIRMED: how many more times the sweep announces the confirmation if its sale is
    /// still unrecorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub announcements_left: u8,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// How many times, at most, a confirmation is announced again, one grace period apart, while
/// the product service has not answered `SaleRecorded` (a lost `OrderConfirmed` or a lost
/// answer). Normally none: the answer comes first.
pub const CONFIRMATION_REPEATS: u8 = 5;

impl Order {
    /// A new order: PENDING, every step pending (the coupon's only if it has one), due to
    /// expire `ttl` after `now`.
    pub fn pending(
        order_id: String,
        user_id: String,
        items: Vec<OrderItem>,
        coupon_id: Option<String>,
        amounts: Amounts,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Order {
        let coupon = if coupon_id.is_some() {
            StepState::Pending
        } else {
            StepState::NotRequired
        };
        Order {
            order_id,
            user_id,
            status: Status::Pending,
            items,
            coupon_id,
            total_amount: amounts.total,
            discount_amount: amounts.discount,
            payment_amount: amounts.payment,
            created_at: now,
            expires_at: now + ttl,
            steps: Steps {
                stock: StepState::Pending,
                coupon,
                payment: StepState::Pending,
            },
            undo: Undo::default(),
            failure_reason: None,
            announce_again_at: None,
            was_confirmed: false,
            announcements_left: 0,
        }
    }

    /// When the sweep must look at this order next (`None`: never again).
    pub fn sweep_due_at(&self) -> Option<DateTime<Utc>> {
        match self.status {
            Status::Pending => Some(self.expires_at),
            Status::Failing | Status::Cancelling | Status::Confirmed => self.announce_again_at,
            _ => None,
        }
    }
}

/// What can happen to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A step's result: `Ok` done, `Err` failed.
    StepResult(Step, bool),
    /// An undo answer (`StockReleased`, `CouponRestored`, `PaymentCancelled`).
    Undone(Step, bool),
    /// The sweep, at `now`.
    Sweep,
    /// The owner asks to cancel.
    Cancel,
    /// The product service counted the confirmed order's sale (`SaleRecorded`): the
    /// confirmation arrived, and need not be announced again.
    SaleRecorded,
}

/// What the order publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emit {
    Confirmed,
    Failed(FailureReason),
    Cancelled { was_confirmed: bool },
    FailureCompleted(FailureReason),
    CancellationCompleted,
}

/// `Cancel` of an order that is not PENDING or CONFIRMED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order that is {0:?} cannot be cancelled")]
pub struct NotCancellable(pub Status);

fn failure_of(step: Step) -> FailureReason {
    match step {
        Step::Stock => FailureReason::OutOfStock,
        Step::Coupon => FailureReason::CouponRejected,
        Step::Payment => FailureReason::PaymentFailed,
    }
}

/// The transition table: the order after `input` at `now`, and what it publishes.
/// `Ok(None)`: nothing changes (a duplicate, or a late result whose undo is on its way).
/// `grace`: how long FAILING/CANCELLING orders wait for undo answers before the sweep
/// publishes the undo again.
pub fn transition(
    order: &Order,
    input: &Input,
    now: DateTime<Utc>,
    grace: Duration,
) -> Result<Option<(Order, Vec<Emit>)>, NotCancellable> {
    let mut next = order.clone();
    let emits = match (order.status, input) {
        (Status::Pending, Input::StepResult(step, true)) => {
            if *next.steps.get_mut(*step) == StepState::Done {
                return Ok(None);
            }
            *next.steps.get_mut(*step) = StepState::Done;
            if next.steps.all_done() {
                next.status = Status::Confirmed;
                next.was_confirmed = true;
                next.announcements_left = CONFIRMATION_REPEATS;
                // Not before the order's expiry: that is its place in the sweep index since
                // it was placed, so confirming moves nothing there (a move is two index
                // writes), and the answer normally comes within a second.
                next.announce_again_at = Some((now + grace).max(order.expires_at));
                vec![Emit::Confirmed]
            } else {
                vec![]
            }
        }
        (Status::Pending, Input::StepResult(step, false)) => {
            *next.steps.get_mut(*step) = StepState::Failed;
            start_undo(&mut next, Status::Failing, now, grace);
            next.failure_reason = Some(failure_of(*step));
            vec![Emit::Failed(failure_of(*step))]
        }
        (Status::Pending, Input::Sweep) if now >= order.expires_at => {
            start_undo(&mut next, Status::Failing, now, grace);
            next.failure_reason = Some(FailureReason::Expired);
            vec![Emit::Failed(FailureReason::Expired)]
        }
        (Status::Pending, Input::Cancel) => {
            start_undo(&mut next, Status::Cancelling, now, grace);
            vec![Emit::Cancelled {
                was_confirmed: false,
            }]
        }
        (Status::Confirmed, Input::Cancel) => {
            next.announcements_left = 0;
            start_undo(&mut next, Status::Cancelling, now, grace);
            vec![Emit::Cancelled {
                was_confirmed: true,
            }]
        }
        (Status::Failing | Status::Cancelling, Input::StepResult(step, ok)) => {
            // Late: its undo is already on its way. Recorded for the record, nothing sent.
            let state = if *ok {
                StepState::Done
            } else {
                StepState::Failed
            };
            if *next.steps.get_mut(*step) == state {
                return Ok(None);
            }
            *next.steps.get_mut(*step) = state;
            vec![]
        }
        (Status::Failing | Status::Cancelling, Input::Undone(step, did)) => {
            if next.undo.get_mut(*step).is_some() {
                return Ok(None);
            }
            *next.undo.get_mut(*step) = Some(*did);
            if !next.undo.complete(next.coupon_id.is_some()) {
                vec![]
            } else if order.status == Status::Failing {
                next.status = Status::Failed;
                next.announce_again_at = None;
                vec![Emit::FailureCompleted(
                    next.failure_reason.unwrap_or(FailureReason::Expired),
                )]
            } else {
                next.status = Status::Cancelled;
                next.announce_again_at = None;
                vec![Emit::CancellationCompleted]
            }
        }
        (Status::Failing, Input::Sweep)
            if order.announce_again_at.is_some_and(|due| now >= due) =>
        {
            next.announce_again_at = Some(now + grace);
            vec![Emit::Failed(
                order.failure_reason.unwrap_or(FailureReason::Expired),
            )]
        }
        (Status::Cancelling, Input::Sweep)
            if order.announce_again_at.is_some_and(|due| now >= due) =>
        {
            next.announce_again_at = Some(now + grace);
            vec![Emit::Cancelled {
                was_confirmed: order.was_confirmed,
            }]
        }
        (Status::Confirmed, Input::Sweep)
            if order.announce_again_at.is_some_and(|due| now >= due) =>
        {
            // No `SaleRecorded` yet: the confirmation (or its answer) may have been lost on
            // the way, so it is announced again, a bounded number of times; the product
            // service counts a sale once per order and answers every announcement.
            next.announcements_left = order.announcements_left.saturating_sub(1);
            next.announce_again_at = (next.announcements_left > 0).then(|| now + grace);
            vec![Emit::Confirmed]
        }
        (Status::Confirmed, Input::SaleRecorded) if order.announce_again_at.is_some() => {
            next.announcements_left = 0;
            next.announce_again_at = None;
            vec![]
        }
        (status, Input::Cancel) => return Err(NotCancellable(status)),
        // Everything else changes nothing: duplicates after the end, undo answers for an order
        // that is not undoing, a sweep of an order not due.
        _ => return Ok(None),
    };
    Ok(Some((next, emits)))
}

/// Where a change took an order's saga, for its figures: an end it reached, once (a change
/// from another status), with how long the saga took to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    Confirmed {
        took: Duration,
    },
    /// Failed, and every undo answered.
    Failed {
        reason: FailureReason,
        took: Duration,
    },
    /// Cancelled, and every undo answered.
    Cancelled,
}

/// The milestone of a change from `before` to `after` at `now`, if it reached one.
pub fn milestone(before: Status, after: &Order, now: DateTime<Utc>) -> Option<Milestone> {
    if before == after.status {
        return None;
    }
    let took = now - after.created_at;
    match after.status {
        Status::Confirmed => Some(Milestone::Confirmed { took }),
        Status::Failed => Some(Milestone::Failed {
            reason: after.failure_reason.unwrap_or(FailureReason::Expired),
            took,
        }),
        Status::Cancelled => Some(Milestone::Cancelled),
        _ => None,
    }
}

fn start_undo(order: &mut Order, status: Status, now: DateTime<Utc>, grace: Duration) {
    order.status = status;
    order.undo = Undo::default();
    order.announce_again_at = Some(now + grace);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_and_a_step_state_are_spelled_as_they_are_serialized() {
        let spelled = |value: serde_json::Value| value.as_str().map(str::to_owned);
        for status in Status::ALL {
            let json = serde_json::to_value(status).ok();
            assert_eq!(json.and_then(spelled).as_deref(), Some(status.as_str()));
        }
        for state in StepState::ALL {
            let json = serde_json::to_value(state).ok();
            assert_eq!(json.and_then(spelled).as_deref(), Some(state.as_str()));
        }
    }

    #[test]
    fn an_order_is_stored_without_its_defaults_and_reads_back_with_or_without_them() {
        // Given a new order, and the same order as it was stored before defaults were left out
        let placed = order(Status::Pending, false);
        let stored = serde_json::to_value(&placed).unwrap();
        let mut written_before = stored.clone();
        written_before["undo"] =
            serde_json::json!({"stock": null, "coupon": null, "payment": null});
        written_before["wasConfirmed"] = false.into();
        written_before["announcementsLeft"] = 0.into();
        // Then the stored form leaves out what it has not got, and both read as the order
        for absent in [
            "undo",
            "wasConfirmed",
            "announcementsLeft",
            "announceAgainAt",
        ] {
            assert!(stored.get(absent).is_none(), "{absent} in {stored}");
        }
        assert_eq!(serde_json::from_value::<Order>(stored).unwrap(), placed);
        assert_eq!(
            serde_json::from_value::<Order>(written_before).unwrap(),
            placed
        );
        // And an undo that has begun keeps only its answers
        let mut failing = order(Status::Failing, true);
        failing.undo.stock = Some(true);
        let stored = serde_json::to_value(&failing).unwrap();
        assert_eq!(stored["undo"], serde_json::json!({"stock": true}));
        assert_eq!(serde_json::from_value::<Order>(stored).unwrap(), failing);
    }

    fn order(status: Status, with_coupon: bool) -> Order {
        let amounts = Amounts {
            total: Won(100),
            discount: Won(0),
            payment: Won(100),
        };
        let coupon = with_coupon.then(|| "c".to_owned());
        let o = Order::pending(
            "o".into(),
            "u".into(),
            vec![],
            coupon,
            amounts,
            t0(),
            Duration::minutes(10),
        );
        Order { status, ..o }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T09:00:00Z")
            .unwrap()
            .into()
    }

    const GRACE: Duration = Duration::seconds(30);

    fn inputs() -> Vec<Input> {
        let mut all = vec![Input::Sweep, Input::Cancel, Input::SaleRecorded];
        for step in [Step::Stock, Step::Coupon, Step::Payment] {
            for ok in [true, false] {
                all.push(Input::StepResult(step, ok));
                all.push(Input::Undone(step, ok));
            }
        }
        all
    }

    /// What each (state, input) does, for an order with a coupon, at a time when nothing
    /// is due: the whole table, written out.
    fn expected(status: Status, input: &Input) -> &'static str {
        use Input::*;
        match (status, input) {
            (Status::Pending, StepResult(_, true)) => "record",
            (Status::Pending, StepResult(_, false)) => "fail",
            (Status::Pending, Cancel) => "cancel",
            (Status::Confirmed, Cancel) => "cancel-confirmed",
            (Status::Failing | Status::Cancelling, StepResult(..)) => "record",
            (Status::Failing | Status::Cancelling, Undone(..)) => "record",
            (Status::Failing | Status::Failed | Status::Cancelling | Status::Cancelled, Cancel) => {
                "409"
            }
            _ => "nothing",
        }
    }

    #[test]
    fn the_transition_table_holds_for_every_state_and_input() {
        for status in Status::ALL {
            for input in inputs() {
                let mut o = order(status, true);
                if matches!(status, Status::Failing | Status::Cancelling) {
                    o.announce_again_at = Some(t0() + GRACE);
                }
                let got = match transition(&o, &input, t0(), GRACE) {
                    Err(NotCancellable(s)) => {
                        assert_eq!(s, status);
                        "409"
                    }
                    Ok(None) => "nothing",
                    Ok(Some((next, emits))) => match (next.status, emits.as_slice()) {
                        (s, []) if s == status => "record",
                        (Status::Failing, [Emit::Failed(_)]) => "fail",
                        (
                            Status::Cancelling,
                            [
                                Emit::Cancelled {
                                    was_confirmed: false,
                                },
                            ],
                        ) => "cancel",
                        (
                            Status::Cancelling,
                            [
                                Emit::Cancelled {
                                    was_confirmed: true,
                                },
                            ],
                        ) => "cancel-confirmed",
                        other => panic!("{status:?} + {input:?} gave {other:?}"),
                    },
                };
                assert_eq!(got, expected(status, &input), "{status:?} + {input:?}");
            }
        }
    }

    #[test]
    fn all_three_steps_confirm_and_a_coupon_free_order_needs_two() {
        let mut o = order(Status::Pending, true);
        for step in [Step::Payment, Step::Stock] {
            o = transition(&o, &Input::StepResult(step, true), t0(), GRACE)
                .unwrap()
                .unwrap()
                .0;
            assert_eq!(o.status, Status::Pending);
        }
        let (o, emits) = transition(&o, &Input::StepResult(Step::Coupon, true), t0(), GRACE)
            .unwrap()
            .unwrap();
        assert_eq!(
            (o.status, emits),
            (Status::Confirmed, vec![Emit::Confirmed])
        );
        assert!(
            transition(&o, &Input::StepResult(Step::Coupon, true), t0(), GRACE)
                .unwrap()
                .is_none(),
            "a duplicate changes nothing"
        );

        let mut o = order(Status::Pending, false);
        o = transition(&o, &Input::StepResult(Step::Stock, true), t0(), GRACE)
            .unwrap()
            .unwrap()
            .0;
        let (o, _) = transition(&o, &Input::StepResult(Step::Payment, true), t0(), GRACE)
            .unwrap()
            .unwrap();
        assert_eq!(o.status, Status::Confirmed);
    }

    #[test]
    fn a_failure_completes_when_every_undo_answered_once() {
        let o = order(Status::Pending, false);
        let (o, emits) = transition(&o, &Input::StepResult(Step::Stock, false), t0(), GRACE)
            .unwrap()
            .unwrap();
        assert_eq!(
            (o.status, emits),
            (
                Status::Failing,
                vec![Emit::Failed(FailureReason::OutOfStock)]
            )
        );
        let (o, _) = transition(&o, &Input::Undone(Step::Stock, false), t0(), GRACE)
            .unwrap()
            .unwrap();
        assert!(
            transition(&o, &Input::Undone(Step::Stock, true), t0(), GRACE)
                .unwrap()
                .is_none(),
            "the first answer counts"
        );
        let (o, emits) = transition(&o, &Input::Undone(Step::Payment, true), t0(), GRACE)
            .unwrap()
            .unwrap();
        assert_eq!(
            (o.status, emits),
            (
                Status::Failed,
                vec![Emit::FailureCompleted(FailureReason::OutOfStock)]
            )
        );
        assert_eq!(o.sweep_due_at(), None);
    }

    #[test]
    fn an_end_is_a_milestone_once_with_the_time_since_creation() {
        let later = t0() + Duration::milliseconds(1_250);
        let mut confirmed = order(Status::Confirmed, false);
        assert_eq!(
            milestone(Status::Pending, &confirmed, later),
            Some(Milestone::Confirmed {
                took: Duration::milliseconds(1_250)
            })
        );
        // A confirmation announced again is no new milestone.
        assert_eq!(milestone(Status::Confirmed, &confirmed, later), None);
        confirmed.status = Status::Failing;
        assert_eq!(
            milestone(Status::Pending, &confirmed, later),
            None,
            "not yet"
        );
        let failed = Order {
            status: Status::Failed,
            failure_reason: Some(FailureReason::PaymentFailed),
            ..order(Status::Failed, false)
        };
        assert_eq!(
            milestone(Status::Failing, &failed, later),
            Some(Milestone::Failed {
                reason: FailureReason::PaymentFailed,
                took: Duration::milliseconds(1_250)
            })
        );
        let cancelled = order(Status::Cancelled, false);
        assert_eq!(
            milestone(Status::Cancelling, &cancelled, later),
            Some(Milestone::Cancelled)
        );
    }

    #[test]
    fn the_sweep_expires_pending_orders_and_repeats_missing_undos() {
        let o = order(Status::Pending, true);
        assert!(
            transition(
                &o,
                &Input::Sweep,
                o.expires_at - Duration::seconds(1),
                GRACE
            )
            .unwrap()
            .is_none()
        );
        let (o, emits) = transition(&o, &Input::Sweep, o.expires_at, GRACE)
            .unwrap()
            .unwrap();
        assert_eq!(
            (o.status, emits),
            (Status::Failing, vec![Emit::Failed(FailureReason::Expired)])
        );
        let due = o.sweep_due_at().unwrap();
        assert!(
            transition(&o, &Input::Sweep, due - Duration::seconds(1), GRACE)
                .unwrap()
                .is_none()
        );
        let (again, emits) = transition(&o, &Input::Sweep, due, GRACE).unwrap().unwrap();
        assert_eq!(emits, vec![Emit::Failed(FailureReason::Expired)]);
        assert_eq!(again.sweep_due_at(), Some(due + GRACE));
    }

    fn confirmed() -> Order {
        let mut o = order(Status::Pending, false);
        for step in [Step::Stock, Step::Payment] {
            o = transition(&o, &Input::StepResult(step, true), t0(), GRACE)
                .unwrap()
                .unwrap()
                .0;
        }
        o
    }

    #[test]
    fn an_unanswered_confirmation_is_announced_again_a_bounded_number_of_times() {
        let mut o = confirmed();
        assert_eq!(o.status, Status::Confirmed);
        assert_eq!(
            o.sweep_due_at(),
            Some(o.expires_at),
            "until its sale is recorded, where it was in the sweep's index"
        );
        assert!(
            transition(&o, &Input::Sweep, o.expires_at - GRACE, GRACE)
                .unwrap()
                .is_none()
        );
        let mut now = o.expires_at - GRACE;
        for _ in 0..CONFIRMATION_REPEATS {
            now += GRACE;
            let (next, emits) = transition(&o, &Input::Sweep, now, GRACE).unwrap().unwrap();
            assert_eq!(
                (next.status, emits),
                (Status::Confirmed, vec![Emit::Confirmed])
            );
            o = next;
        }
        assert_eq!(o.sweep_due_at(), None, "given up");
        assert!(
            transition(&o, &Input::Sweep, now + GRACE, GRACE)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_recorded_sale_ends_the_announcements_once() {
        // Given a confirmed order, when the product service answers SaleRecorded,
        let o = confirmed();
        let (o, emits) = transition(&o, &Input::SaleRecorded, t0(), GRACE)
            .unwrap()
            .unwrap();
        // then nothing is published and the sweep has nothing more to do for it,
        assert_eq!((o.status, emits), (Status::Confirmed, vec![]));
        assert_eq!(o.sweep_due_at(), None);
        // and the answer again (or a sweep after it) changes nothing.
        assert!(
            transition(&o, &Input::SaleRecorded, t0(), GRACE)
                .unwrap()
                .is_none()
        );
        assert!(
            transition(&o, &Input::Sweep, t0() + GRACE, GRACE)
                .unwrap()
                .is_none()
        );
        // Given a pending order, an early SaleRecorded (impossible, but cheap to say) does
        // nothing either.
        let pending = order(Status::Pending, false);
        assert!(
            transition(&pending, &Input::SaleRecorded, t0(), GRACE)
                .unwrap()
                .is_none()
        );
    }
}
