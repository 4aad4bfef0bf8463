//! Wires every service on in-memory adapters and runs the background work: a relay per
//! outbox, an event source mapping per queue, the sweep on a timer. Stops cleanly on
//! [`LocalSystem::shutdown`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use balance_service::app::{BalanceConsumer, BalanceService};
use contract::Service;
use coupon_service::app::{CouponConsumer, CouponService};
use coupon_source_service::app::CouponSourceService;
use order_service::app::{OrderConsumer, OrderService, OrderSettings, TimelineConsumer};
use payment_service::app::{PaymentConsumer, PaymentService};
use platform::batch::{BatchProcessor, EventHandler, SqsFunction};
use platform::bus::{BusDeadLetters, BusPublisher, MemoryBus, TopologyError, mapping};
use platform::clock::{Clock, SystemClock};
use platform::docstore::DocStore;
use platform::docstore::memory::MemoryDocStore;
use platform::ids::{IdGenerator, RandomIds};
use platform::outbox::MemoryOutbox;
use platform::ports::Ports;
use platform::publish::EventPublisher;
use platform::relay::run_memory_relay;
use platform::telemetry;
use product_service::app::{ProductConsumer, ProductService};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;
use user_service::app::UserService;
use user_service::auth::TokenCodec;
use user_service::store::memory::MemoryUserStore;

use crate::config::LocalConfig;
use crate::gateway::gateway;
use crate::topology::{CONSUMERS, TIMELINE_QUEUE, topology};

/// The services of a running local system, for tests and tools that look inside.
pub struct Services {
    pub users: Arc<UserService>,
    pub balance: Arc<BalanceService>,
    pub products: Arc<ProductService>,
    pub coupon_sources: Arc<CouponSourceService>,
    pub coupons: Arc<CouponService>,
    pub payments: Arc<PaymentService>,
    pub orders: Arc<OrderService>,
}

pub struct LocalSystem {
    router: Router,
    pub bus: Arc<MemoryBus>,
    pub services: Services,
    /// Each service's outbox: every event it ever wrote.
    pub outboxes: BTreeMap<Service, Arc<MemoryOutbox>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalSystem {
    /// Builds the system and starts its background tasks on the current runtime.
    pub fn start(config: LocalConfig) -> Result<LocalSystem, TopologyError> {
        LocalSystem::start_with(config, Arc::new(SystemClock), Arc::new(RandomIds))
    }

    /// The same, with the clock and id ports given (tests move time with a `ManualClock`).
    pub fn start_with(
        config: LocalConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Result<LocalSystem, TopologyError> {
        LocalSystem::start_on(config, clock, ids, |_, outbox| {
            Arc::new(MemoryDocStore::new(outbox))
        })
    }

    /// The same, with each service's document store made by `store` (given the service and
    /// the outbox its relay reads).
    pub fn start_on(
        config: LocalConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        store: impl Fn(Service, Arc<MemoryOutbox>) -> Arc<dyn DocStore>,
    ) -> Result<LocalSystem, TopologyError> {
        let bus = Arc::new(MemoryBus::new(&topology(), clock.clone(), ids.clone())?);
        let publisher: Arc<dyn EventPublisher> = Arc::new(BusPublisher::new(bus.clone()));
        let (stop, stopped) = watch::channel(false);

        let outboxes: BTreeMap<Service, Arc<MemoryOutbox>> = Service::ALL
            .iter()
            .map(|s| (*s, Arc::new(MemoryOutbox::new())))
            .collect();
        let ports = |service: Service| {
            Ports::new(
                store(service, outboxes[&service].clone()),
                clock.clone(),
                ids.clone(),
            )
        };

        let tokens = TokenCodec::new(
            &config.user.jwt_secret,
            config.user.token_ttl,
            clock.clone(),
        );
        let services = Services {
            users: Arc::new(UserService::new(
                Arc::new(MemoryUserStore::new(outboxes[&Service::User].clone())),
                config.user,
                clock.clone(),
                ids.clone(),
            )),
            balance: Arc::new(BalanceService::new(ports(Service::Balance))),
            products: Arc::new(ProductService::new(ports(Service::Product))),
            coupon_sources: Arc::new(CouponSourceService::new(ports(Service::CouponSource))),
            coupons: Arc::new(CouponService::new(ports(Service::Coupon))),
            payments: Arc::new(PaymentService::new(ports(Service::Payment))),
            orders: Arc::new(OrderService::new(
                ports(Service::Order),
                OrderSettings {
                    order_ttl: chrono::Duration::from_std(config.order_ttl)
                        .unwrap_or(chrono::Duration::minutes(10)),
                    undo_grace: chrono::Duration::from_std(config.undo_grace)
                        .unwrap_or(chrono::Duration::minutes(1)),
                },
            )),
        };

        let mut tasks = Vec::new();
        for (service, outbox) in &outboxes {
            let relay = run_memory_relay(outbox.clone(), publisher.clone(), stopped.clone());
            tasks.push(tokio::spawn(relay.instrument(telemetry::function_span(
                &format!("{}-relay", service.name()),
            ))));
        }
        for consumer in CONSUMERS {
            let handler: Arc<dyn EventHandler> = match (consumer.service, consumer.queue) {
                (Service::Order, TIMELINE_QUEUE) => {
                    Arc::new(TimelineConsumer(services.orders.clone()))
                }
                (Service::Order, _) => Arc::new(OrderConsumer(services.orders.clone())),
                (Service::Balance, _) => Arc::new(BalanceConsumer(services.balance.clone())),
                (Service::Product, _) => Arc::new(ProductConsumer(services.products.clone())),
                (Service::Coupon, _) => Arc::new(CouponConsumer(services.coupons.clone())),
                (Service::Payment, _) => Arc::new(PaymentConsumer(services.payments.clone())),
                (Service::User | Service::CouponSource, _) => continue,
            };
            let dead_letters = Box::new(BusDeadLetters::new(bus.clone(), consumer.queue));
            let function: Arc<dyn SqsFunction> =
                Arc::new(BatchProcessor::new(consumer.queue, handler, dead_letters));
            let run = mapping::run(
                bus.clone(),
                consumer.queue.to_owned(),
                function,
                stopped.clone(),
            );
            tasks.push(tokio::spawn(async move {
                run.await;
            }));
        }
        tasks.push(tokio::spawn(
            run_sweep(
                services.orders.clone(),
                config.sweep_interval,
                stopped.clone(),
            )
            .instrument(telemetry::function_span("order-sweep")),
        ));
        let router = gateway(
            vec![
                user_service::api::router(services.users.clone()),
                balance_service::api::router(services.balance.clone()),
                product_service::api::router(services.products.clone()),
                coupon_source_service::api::router(services.coupon_sources.clone()),
                coupon_service::api::router(services.coupons.clone()),
                payment_service::api::router(services.payments.clone()),
                order_service::api::router(services.orders.clone()),
            ],
            tokens,
            &user_service::api::PUBLIC_ROUTES,
        );
        Ok(LocalSystem {
            router,
            bus,
            services,
            outboxes,
            stop,
            tasks,
        })
    }

    /// The gateway: every route of every service, behind the authorizer.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Stops the relays, event source mappings and the sweep, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The EventBridge schedule, played locally: the order sweep every `interval`.
async fn run_sweep(
    orders: Arc<OrderService>,
    interval: std::time::Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stopped.borrow() {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => continue,
        }
        match orders.sweep().await {
            Ok(report) if report.due > 0 => {
                tracing::info!(due = report.due, changed = report.changed, "sweep")
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "sweep failed; the next one tries again"),
        }
    }
}
