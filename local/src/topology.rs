//! The event topology: one topic per service, one queue per consuming function, each
//! subscribed with a filter policy on `type`. This table is the local system's; the same
//! queues, subscriptions and filters belong in `template.yaml`.

use std::time::Duration;

use contract::Service;
use platform::bus::{FilterPolicy, QueueSpec, Topology};

/// One consuming function: its queue, the service whose handler it runs, what it hears.
pub struct ConsumerSpec {
    pub queue: &'static str,
    pub service: Service,
    pub subscriptions: &'static [(Service, &'static [&'static str])],
}

const UNDO: &[&str] = &["OrderFailed", "OrderCancelled"];

pub const CONSUMERS: &[ConsumerSpec] = &[
    ConsumerSpec {
        queue: "balance-user-registered",
        service: Service::Balance,
        subscriptions: &[(Service::User, &["UserRegistered"])],
    },
    ConsumerSpec {
        queue: "balance-payment-requested",
        service: Service::Balance,
        subscriptions: &[(Service::Payment, &["PaymentRequested"])],
    },
    ConsumerSpec {
        queue: "balance-refund-requested",
        service: Service::Balance,
        subscriptions: &[(Service::Payment, &["PaymentRefundRequested"])],
    },
    ConsumerSpec {
        queue: "product-order-created",
        service: Service::Product,
        subscriptions: &[(Service::Order, &["OrderCreated"])],
    },
    ConsumerSpec {
        queue: "product-order-undo",
        service: Service::Product,
        subscriptions: &[(Service::Order, UNDO)],
    },
    ConsumerSpec {
        queue: "product-order-confirmed",
        service: Service::Product,
        subscriptions: &[(Service::Order, &["OrderConfirmed"])],
    },
    ConsumerSpec {
        queue: "coupon-coupon-issued",
        service: Service::Coupon,
        subscriptions: &[(Service::CouponSource, &["CouponIssued"])],
    },
    ConsumerSpec {
        queue: "coupon-order-created",
        service: Service::Coupon,
        subscriptions: &[(Service::Order, &["OrderCreated"])],
    },
    ConsumerSpec {
        queue: "coupon-order-undo",
        service: Service::Coupon,
        subscriptions: &[(Service::Order, UNDO)],
    },
    ConsumerSpec {
        queue: "payment-order-created",
        service: Service::Payment,
        subscriptions: &[(Service::Order, &["OrderCreated"])],
    },
    ConsumerSpec {
        queue: "payment-order-undo",
        service: Service::Payment,
        subscriptions: &[(Service::Order, UNDO)],
    },
    ConsumerSpec {
        queue: "payment-balance-answers",
        service: Service::Payment,
        subscriptions: &[(
            Service::Balance,
            &[
                "BalanceDeducted",
                "BalanceDeductionFailed",
                "BalanceRefunded",
            ],
        )],
    },
    ConsumerSpec {
        queue: "order-catalogue",
        service: Service::Order,
        subscriptions: &[
            (
                Service::Product,
                &["ProductRegistered", "ProductPriceChanged"],
            ),
            (Service::CouponSource, &["CouponIssued"]),
        ],
    },
    ConsumerSpec {
        queue: "order-step-results",
        service: Service::Order,
        subscriptions: &[
            (
                Service::Product,
                &["StockReserved", "StockReservationFailed", "StockReleased"],
            ),
            (
                Service::Coupon,
                &["CouponUsed", "CouponUseFailed", "CouponRestored"],
            ),
            (
                Service::Payment,
                &["PaymentApproved", "PaymentFailed", "PaymentCancelled"],
            ),
        ],
    },
    ConsumerSpec {
        queue: TIMELINE_QUEUE,
        service: Service::Order,
        subscriptions: &[
            (Service::Order, &order_service::app::SAGA_EVENTS),
            (Service::Product, &order_service::app::SAGA_EVENTS),
            (Service::Coupon, &order_service::app::SAGA_EVENTS),
            (Service::Payment, &order_service::app::SAGA_EVENTS),
            (Service::Balance, &order_service::app::SAGA_EVENTS),
        ],
    },
];

/// The order service's timeline recorder (the one consumer that is not a saga step).
pub const TIMELINE_QUEUE: &str = "order-timeline";

/// Locally a failed message comes back after this long (on AWS: above the function timeout).
pub const LOCAL_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(1);
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// Each SQS event source's batch size (`BatchSize` in `template.yaml`; no batching window).
pub const SQS_BATCH_SIZE: i32 = 10;

/// How long a poll of an SQS event source waits for messages, as Lambda's does (20 s, the
/// longest SQS allows): an idle queue costs one request every 20 s, and a message is handed
/// over as soon as it arrives.
pub const SQS_LONG_POLL_SECONDS: i32 = 20;

pub fn topology() -> Topology {
    Topology {
        topics: Service::ALL.iter().map(|s| s.name().to_owned()).collect(),
        queues: CONSUMERS
            .iter()
            .map(|c| {
                c.subscriptions.iter().fold(
                    QueueSpec::new(c.queue)
                        .visibility_timeout(LOCAL_VISIBILITY_TIMEOUT)
                        .max_receive_count(MAX_RECEIVE_COUNT),
                    |q, (topic, types)| {
                        q.subscribe(topic.name(), FilterPolicy::types(types.iter().copied()))
                    },
                )
            })
            .collect(),
    }
}
