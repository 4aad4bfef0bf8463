//! Which code each handler name runs: the one table from a function's `HANDLER` in
//! `template.yaml` to Rust. A function whose handler no code has, or a handler no function
//! runs, is an error when the system is built, naming both sides.

use std::collections::BTreeSet;
use std::sync::Arc;

use balance_service::app::BalanceConsumer;
use contract::Service;
use coupon_service::app::CouponConsumer;
use order_service::app::{OrderConsumer, TimelineConsumer};
use payment_service::app::PaymentConsumer;
use platform::batch::EventHandler;
use product_service::app::ProductConsumer;

use crate::system::Services;
use crate::template::{Function, Stack, Trigger};

/// What a handler name stands for.
#[derive(Clone, Copy)]
pub enum Code {
    /// A service's HTTP routes.
    Api(Service),
    /// The HTTP API's authorizer.
    Authorizer,
    /// A table's stream relay, publishing its outbox.
    Relay,
    /// An SQS consumer of one service.
    Consumer(fn(&Services) -> Arc<dyn EventHandler>),
    /// The order service's expiry sweep.
    Sweep,
}

impl Code {
    fn expects(&self) -> &'static str {
        match self {
            Code::Api(_) => "HttpApi routes",
            Code::Authorizer => "no events (API Gateway calls it)",
            Code::Relay => "a DynamoDB stream",
            Code::Consumer(_) => "an SQS queue",
            Code::Sweep => "a schedule",
        }
    }

    fn fits(&self, trigger: &Trigger) -> bool {
        matches!(
            (self, trigger),
            (Code::Api(_), Trigger::Http(_))
                | (Code::Authorizer, Trigger::Direct)
                | (Code::Relay, Trigger::Stream(_))
                | (Code::Consumer(_), Trigger::Queue(_))
                | (Code::Sweep, Trigger::Schedule(_))
        )
    }
}

pub const REGISTRY: &[(&str, Code)] = &[
    (user_service::functions::API, Code::Api(Service::User)),
    (user_service::functions::AUTHORIZER, Code::Authorizer),
    (platform::lambda::RELAY, Code::Relay),
    (balance_service::functions::API, Code::Api(Service::Balance)),
    (
        balance_service::functions::EVENTS,
        Code::Consumer(|s| Arc::new(BalanceConsumer(s.balance.clone()))),
    ),
    (product_service::functions::API, Code::Api(Service::Product)),
    (
        product_service::functions::EVENTS,
        Code::Consumer(|s| Arc::new(ProductConsumer(s.products.clone()))),
    ),
    (
        coupon_source_service::functions::API,
        Code::Api(Service::CouponSource),
    ),
    (coupon_service::functions::API, Code::Api(Service::Coupon)),
    (
        coupon_service::functions::EVENTS,
        Code::Consumer(|s| Arc::new(CouponConsumer(s.coupons.clone()))),
    ),
    (payment_service::functions::API, Code::Api(Service::Payment)),
    (
        payment_service::functions::EVENTS,
        Code::Consumer(|s| Arc::new(PaymentConsumer(s.payments.clone()))),
    ),
    (order_service::functions::API, Code::Api(Service::Order)),
    (
        order_service::functions::EVENTS,
        Code::Consumer(|s| Arc::new(OrderConsumer(s.orders.clone()))),
    ),
    (
        order_service::functions::TIMELINE,
        Code::Consumer(|s| Arc::new(TimelineConsumer(s.orders.clone()))),
    ),
    (order_service::functions::SWEEP, Code::Sweep),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "template.yaml's {function} runs handler {handler:?}, which no code has (the handlers are: {known})"
    )]
    UnknownHandler {
        function: String,
        handler: String,
        known: String,
    },
    #[error("handler {handler:?} has code but no function in template.yaml runs it")]
    Unused { handler: String },
    #[error(
        "template.yaml's {first} and {second} both run handler {handler:?}, which serves one function (routes, the authorizer or the schedule)"
    )]
    RunTwice {
        handler: String,
        first: String,
        second: String,
    },
    #[error("template.yaml's {function} runs handler {handler:?}, which needs {needs}")]
    WrongTrigger {
        function: String,
        handler: String,
        needs: &'static str,
    },
}

/// The code of `function`'s handler.
pub fn code(function: &Function) -> Result<Code, RegistryError> {
    let (_, code) = REGISTRY
        .iter()
        .find(|(name, _)| *name == function.handler)
        .ok_or_else(|| RegistryError::UnknownHandler {
            function: function.id.clone(),
            handler: function.handler.clone(),
            known: REGISTRY
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    if !code.fits(&function.trigger) {
        return Err(RegistryError::WrongTrigger {
            function: function.id.clone(),
            handler: function.handler.clone(),
            needs: code.expects(),
        });
    }
    Ok(*code)
}

/// Every function's handler has code that fits its trigger, and every handler is run.
pub fn check(stack: &Stack) -> Result<(), RegistryError> {
    let mut used = BTreeSet::new();
    let mut single: std::collections::BTreeMap<&str, &str> = Default::default();
    for function in &stack.functions {
        let code = code(function)?;
        used.insert(function.handler.as_str());
        // Many functions may consume with one handler, or relay; an API's routes, the
        // authorizer and the sweep exist once.
        if matches!(code, Code::Api(_) | Code::Authorizer | Code::Sweep)
            && let Some(first) = single.insert(&function.handler, &function.id)
        {
            return Err(RegistryError::RunTwice {
                handler: function.handler.clone(),
                first: first.to_owned(),
                second: function.id.clone(),
            });
        }
    }
    match REGISTRY.iter().find(|(name, _)| !used.contains(name)) {
        Some((name, _)) => Err(RegistryError::Unused {
            handler: (*name).to_owned(),
        }),
        None => Ok(()),
    }
}
