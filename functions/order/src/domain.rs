//! The order's rules. Pure: no I/O, no clock (times come in as arguments).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use contract::{Discount, FailureReason, OrderItem, Won};
use serde::{Deserialize, Serialize};

pub const MAX_DISTINCT_ITEMS: usize = 50;
pub const MAX_QUANTITY: u32 = 1_000;
pub const MAX_ID_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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
}

/// The three parts of the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Stock,
    Coupon,
    Payment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepState {
    Pending,
    Done,
    Failed,
    NotRequired,
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

/// Which undo answers have arrived (`Some(did_something)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    pub stock: Option<bool>,
    pub coupon: Option<bool>,
    pub payment: Option<bool>,
}

impl Undo {
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
    #[serde(default)]
    pub undo: Undo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    /// When the sweep announces again: the undo of a FAILING / CANCELLING order whose answers
    /// are missing, or a recent confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce_again_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub was_confirmed: bool,
    /// For CONFIRMED: how many more times the sweep announces the confirmation.
    #[serde(default)]
    pub announcements_left: u8,
}

/// How many times a confirmation is announced again, one grace period apart.
pub const CONFIRMATION_REPEATS: u8 = 2;

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
                next.announce_again_at = Some(now + grace);
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
            // Nobody acknowledges a confirmation, so it is announced again a few times in
            // case it was lost on the way; its consumer counts a sale once per order.
            next.announcements_left = order.announcements_left.saturating_sub(1);
            next.announce_again_at = (next.announcements_left > 0).then(|| now + grace);
            vec![Emit::Confirmed]
        }
        (status, Input::Cancel) => return Err(NotCancellable(status)),
        // Everything else changes nothing: duplicates after the end, undo answers for an order
        // that is not undoing, a sweep of an order not due.
        _ => return Ok(None),
    };
    Ok(Some((next, emits)))
}

fn start_undo(order: &mut Order, status: Status, now: DateTime<Utc>, grace: Duration) {
    order.status = status;
    order.undo = Undo::default();
    order.announce_again_at = Some(now + grace);
}

/// An order line as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub product_id: String,
    pub quantity: i64,
}

/// What makes two order requests the same request, for an `Idempotency-Key`: the lines (in
/// any order) and the coupon, in one canonical form.
pub fn fingerprint(lines: &[Line], coupon_id: Option<&str>) -> String {
    let mut lines: Vec<(&str, i64)> = lines
        .iter()
        .map(|l| (l.product_id.as_str(), l.quantity))
        .collect();
    lines.sort_unstable();
    serde_json::json!({ "lines": lines, "couponId": coupon_id }).to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order needs 1 to 50 distinct products")]
    ItemCount,
    #[error("each quantity must be from 1 to 1,000")]
    Quantity,
    #[error("a product appears twice in the order")]
    DuplicateProduct,
    #[error("a product id is empty or too long")]
    ProductId,
    #[error("the coupon id is empty, too long or of another shape")]
    CouponId,
    #[error("the order's amount is too large")]
    AmountTooLarge,
    #[error("no such product: {0}")]
    UnknownProduct(String),
    /// Also another user's coupon: the answer does not tell whether the id exists.
    #[error("no such coupon")]
    UnknownCoupon,
    #[error("the coupon is used by another order")]
    CouponUsed,
    #[error("the coupon has expired")]
    CouponExpired,
    #[error("the order is below the coupon's minimum order amount")]
    BelowMinimum,
}

impl OrderError {
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::ItemCount => "INVALID_ITEM_COUNT",
            OrderError::Quantity => "INVALID_QUANTITY",
            OrderError::DuplicateProduct => "DUPLICATE_PRODUCT",
            OrderError::ProductId => "INVALID_PRODUCT_ID",
            OrderError::CouponId => "INVALID_COUPON_ID",
            OrderError::AmountTooLarge => "AMOUNT_TOO_LARGE",
            OrderError::UnknownProduct(_) => "UNKNOWN_PRODUCT",
            OrderError::UnknownCoupon => "UNKNOWN_COUPON",
            OrderError::CouponUsed => "COUPON_USED",
            OrderError::CouponExpired => "COUPON_EXPIRED",
            OrderError::BelowMinimum => "BELOW_MINIMUM_ORDER_AMOUNT",
        }
    }

    /// Shape problems are 400; problems with what the order refers to are 422.
    pub fn is_shape(&self) -> bool {
        matches!(
            self,
            OrderError::ItemCount
                | OrderError::Quantity
                | OrderError::DuplicateProduct
                | OrderError::ProductId
                | OrderError::CouponId
        )
    }
}

/// Checks the shape of a coupon id (before it is looked up).
pub fn validate_coupon_id(id: &str) -> Result<(), OrderError> {
    if contract::is_valid_id(id) {
        Ok(())
    } else {
        Err(OrderError::CouponId)
    }
}

/// Checks the shape of the lines (before anything is looked up).
pub fn validate_lines(lines: &[Line]) -> Result<(), OrderError> {
    if lines.is_empty() || lines.len() > MAX_DISTINCT_ITEMS {
        return Err(OrderError::ItemCount);
    }
    let mut seen = HashSet::new();
    for line in lines {
        if line.product_id.trim().is_empty() || line.product_id.chars().count() > MAX_ID_CHARS {
            return Err(OrderError::ProductId);
        }
        if !(1..=i64::from(MAX_QUANTITY)).contains(&line.quantity) {
            return Err(OrderError::Quantity);
        }
        if !seen.insert(line.product_id.as_str()) {
            return Err(OrderError::DuplicateProduct);
        }
    }
    Ok(())
}

/// A coupon as the order service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponTerms {
    pub discount: Discount,
    pub minimum_order_amount: Won,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    pub total: Won,
    pub discount: Won,
    pub payment: Won,
}

/// Prices an order. A FIXED discount takes its amount; a PERCENT one takes
/// `floor(total × rate / 100)` (rounded down to the won, in the customer's disfavour by
/// less than one won), capped at `maxAmount`. No discount exceeds the total.
pub fn price(items: &[OrderItem], coupon: Option<&CouponTerms>) -> Result<Amounts, OrderError> {
    let mut total = Won::ZERO;
    for item in items {
        let line = item
            .unit_price
            .checked_mul(u64::from(item.quantity))
            .ok_or(OrderError::AmountTooLarge)?;
        total = total.checked_add(line).ok_or(OrderError::AmountTooLarge)?;
    }
    let discount = match coupon {
        None => Won::ZERO,
        Some(terms) => {
            if total < terms.minimum_order_amount {
                return Err(OrderError::BelowMinimum);
            }
            match &terms.discount {
                Discount::Fixed { amount } => *amount,
                Discount::Percent { rate, max_amount } => {
                    let raw = u128::from(total.0) * u128::from(*rate) / 100;
                    let raw = Won(u64::try_from(raw).map_err(|_| OrderError::AmountTooLarge)?);
                    max_amount.map_or(raw, |cap| raw.min(cap))
                }
            }
        }
    }
    .min(total);
    Ok(Amounts {
        total,
        discount,
        payment: total.checked_sub(discount).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut all = vec![Input::Sweep, Input::Cancel];
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

    #[test]
    fn a_confirmation_is_announced_again_a_bounded_number_of_times() {
        let mut o = order(Status::Pending, false);
        for step in [Step::Stock, Step::Payment] {
            o = transition(&o, &Input::StepResult(step, true), t0(), GRACE)
                .unwrap()
                .unwrap()
                .0;
        }
        assert_eq!(o.status, Status::Confirmed);
        let mut now = t0();
        for _ in 0..CONFIRMATION_REPEATS {
            now += GRACE;
            let (next, emits) = transition(&o, &Input::Sweep, now, GRACE).unwrap().unwrap();
            assert_eq!(
                (next.status, emits),
                (Status::Confirmed, vec![Emit::Confirmed])
            );
            o = next;
        }
        assert_eq!(o.sweep_due_at(), None);
        assert!(
            transition(&o, &Input::Sweep, now + GRACE, GRACE)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn pricing_applies_fixed_and_percent_discounts() {
        let items = vec![
            OrderItem {
                product_id: "a".into(),
                quantity: 3,
                unit_price: Won(1_999),
            },
            OrderItem {
                product_id: "b".into(),
                quantity: 1,
                unit_price: Won(10_000),
            },
        ];
        assert_eq!(
            price(&items, None).unwrap(),
            Amounts {
                total: Won(15_997),
                discount: Won(0),
                payment: Won(15_997)
            }
        );
        let fixed = CouponTerms {
            discount: Discount::Fixed { amount: Won(500) },
            minimum_order_amount: Won(10_000),
        };
        assert_eq!(price(&items, Some(&fixed)).unwrap().payment, Won(15_497));
        let pct = CouponTerms {
            discount: Discount::Percent {
                rate: 15,
                max_amount: None,
            },
            minimum_order_amount: Won(0),
        };
        // 15% of 15,997 is 2,399.55: rounded down to 2,399.
        assert_eq!(price(&items, Some(&pct)).unwrap().discount, Won(2_399));
        let capped = CouponTerms {
            discount: Discount::Percent {
                rate: 15,
                max_amount: Some(Won(1_000)),
            },
            minimum_order_amount: Won(0),
        };
        assert_eq!(price(&items, Some(&capped)).unwrap().discount, Won(1_000));
        let big = CouponTerms {
            discount: Discount::Fixed {
                amount: Won(1_000_000),
            },
            minimum_order_amount: Won(0),
        };
        assert_eq!(
            price(&items, Some(&big)).unwrap(),
            Amounts {
                total: Won(15_997),
                discount: Won(15_997),
                payment: Won(0)
            }
        );
        let high_minimum = CouponTerms {
            discount: Discount::Fixed { amount: Won(1) },
            minimum_order_amount: Won(20_000),
        };
        assert_eq!(
            price(&items, Some(&high_minimum)),
            Err(OrderError::BelowMinimum)
        );
        let huge = vec![OrderItem {
            product_id: "a".into(),
            quantity: 1_000,
            unit_price: Won(u64::MAX / 10),
        }];
        assert_eq!(price(&huge, None), Err(OrderError::AmountTooLarge));
    }

    #[test]
    fn lines_are_validated() {
        let line = |p: &str, q: i64| Line {
            product_id: p.into(),
            quantity: q,
        };
        assert_eq!(validate_lines(&[]), Err(OrderError::ItemCount));
        assert_eq!(validate_lines(&[line("a", 0)]), Err(OrderError::Quantity));
        assert_eq!(
            validate_lines(&[line("a", 1_001)]),
            Err(OrderError::Quantity)
        );
        assert_eq!(validate_lines(&[line("a", -1)]), Err(OrderError::Quantity));
        assert_eq!(
            validate_lines(&[line("a", 1), line("a", 2)]),
            Err(OrderError::DuplicateProduct)
        );
        assert_eq!(validate_lines(&[line("", 1)]), Err(OrderError::ProductId));
        let many: Vec<Line> = (0..51).map(|i| line(&format!("p{i}"), 1)).collect();
        assert_eq!(validate_lines(&many), Err(OrderError::ItemCount));
        assert_eq!(validate_lines(&many[..50]), Ok(()));
    }
}
