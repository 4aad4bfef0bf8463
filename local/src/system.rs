//! Wiring every service, and running it.
//!
//! [`World`] builds the seven services on the given ports, the in-memory bus with the
//! topology, and each queue's handler — and runs nothing. [`LocalSystem`] drives a world on
//! tokio: a relay per outbox, an event source mapping per queue, the sweep on a timer, and
//! stops cleanly on [`LocalSystem::shutdown`]. The deterministic simulation drives the same
//! world one step at a time instead.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use balance_service::app::{BalanceConsumer, BalanceService};
use contract::Service;
use coupon_service::app::{CouponConsumer, CouponService};
use coupon_source_service::app::CouponSourceService;
use order_service::app::{OrderConsumer, OrderService, OrderSettings, TimelineConsumer};
use payment_service::app::{PaymentConsumer, PaymentService};
use platform::batch::{BatchProcessor, DeadLetters, EventHandler, SqsFunction};
use platform::bus::{BusDeadLetters, BusPublisher, MemoryBus, TopologyError, mapping};
use platform::clock::{Clock, SystemClock};
use platform::docstore::DocStore;
use platform::docstore::memory::MemoryDocStore;
use platform::ids::{IdGenerator, RandomIds};
use platform::invocations::{Invocations, Meter, Metered};
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
use user_service::store::UserStore;
use user_service::store::memory::MemoryUserStore;

use crate::config::LocalConfig;
use crate::gateway::gateway;
use crate::topology::{CONSUMERS, TIMELINE_QUEUE, topology};

/// The services of a system, for tests and tools that look inside.
#[derive(Clone)]
pub struct Services {
    pub users: Arc<UserService>,
    pub balance: Arc<BalanceService>,
    pub products: Arc<ProductService>,
    pub coupon_sources: Arc<CouponSourceService>,
    pub coupons: Arc<CouponService>,
    pub payments: Arc<PaymentService>,
    pub orders: Arc<OrderService>,
}

/// Everything wired, nothing running.
pub struct World {
    pub bus: Arc<MemoryBus>,
    pub services: Services,
    /// Each service's outbox: the events it wrote, in order (a running system drops those
    /// its relay published; a driven world keeps them all).
    pub outboxes: BTreeMap<Service, Arc<MemoryOutbox>>,
    /// Each queue's consuming function.
    pub consumers: Vec<(&'static str, Arc<dyn EventHandler>)>,
    /// Every function's invocations, as Lambda would count and bill them.
    pub invocations: Arc<Invocations>,
    tokens: TokenCodec,
}

impl World {
    /// `ports` gives each service its ports, given the outbox its relay reads; `clock` and
    /// `ids` are the bus's and the user service's; `users` is the user store (default: in
    /// memory, on the user outbox).
    pub fn build(
        config: LocalConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        users: Option<Arc<dyn UserStore>>,
        ports: impl Fn(Service, Arc<MemoryOutbox>) -> Ports,
    ) -> Result<World, TopologyError> {
        let bus = Arc::new(MemoryBus::new(&topology(), clock.clone(), ids.clone())?);
        let outboxes: BTreeMap<Service, Arc<MemoryOutbox>> = Service::ALL
            .iter()
            .map(|s| (*s, Arc::new(MemoryOutbox::new())))
            .collect();
        let ports_of = |service: Service| ports(service, outboxes[&service].clone());
        let tokens = TokenCodec::new(&config.user.keys, config.user.token_ttl, clock.clone());
        let user_store = users
            .unwrap_or_else(|| Arc::new(MemoryUserStore::new(outboxes[&Service::User].clone())));
        let settings = OrderSettings {
            order_ttl: chrono::Duration::from_std(config.order_ttl)
                .unwrap_or(chrono::Duration::minutes(10)),
            undo_grace: chrono::Duration::from_std(config.undo_grace)
                .unwrap_or(chrono::Duration::minutes(1)),
        };
        let services = Services {
            users: Arc::new(UserService::new(
                user_store,
                ports_of(Service::User).store,
                config.user,
                clock.clone(),
                ids.clone(),
            )),
            balance: Arc::new(BalanceService::new(ports_of(Service::Balance))),
            products: Arc::new(ProductService::new(ports_of(Service::Product))),
            coupon_sources: Arc::new(
                CouponSourceService::new(ports_of(Service::CouponSource))
                    .with_issue_limit(config.coupon_issue_limit),
            ),
            coupons: Arc::new(CouponService::new(ports_of(Service::Coupon))),
            payments: Arc::new(PaymentService::new(ports_of(Service::Payment))),
            orders: Arc::new(OrderService::new(ports_of(Service::Order), settings)),
        };
        let consumers = CONSUMERS
            .iter()
            .filter_map(|consumer| {
                let handler: Arc<dyn EventHandler> = match (consumer.service, consumer.queue) {
                    (Service::Order, TIMELINE_QUEUE) => {
                        Arc::new(TimelineConsumer(services.orders.clone()))
                    }
                    (Service::Order, _) => Arc::new(OrderConsumer(services.orders.clone())),
                    (Service::Balance, _) => Arc::new(BalanceConsumer(services.balance.clone())),
                    (Service::Product, _) => Arc::new(ProductConsumer(services.products.clone())),
                    (Service::Coupon, _) => Arc::new(CouponConsumer(services.coupons.clone())),
                    (Service::Payment, _) => Arc::new(PaymentConsumer(services.payments.clone())),
                    (Service::User | Service::CouponSource, _) => return None,
                };
                Some((consumer.queue, handler))
            })
            .collect();
        Ok(World {
            bus,
            services,
            outboxes,
            consumers,
            invocations: Arc::new(Invocations::new()),
            tokens,
        })
    }

    /// The gateway: every route of every service, behind the authorizer. Each request
    /// counts as an invocation of its service's API function (and of the authorizer).
    pub fn router(&self) -> Router {
        let s = &self.services;
        let api = |service: Service, router: Router| {
            let meter = self.meter(&format!("{}-api", service.name()));
            router.route_layer(middleware::from_fn(move |request: Request, next: Next| {
                let meter = meter.clone();
                async move { meter.time(1, next.run(request)).await }
            }))
        };
        gateway(
            vec![
                api(Service::User, user_service::api::router(s.users.clone())),
                api(
                    Service::Balance,
                    balance_service::api::router(s.balance.clone()),
                ),
                api(
                    Service::Product,
                    product_service::api::router(s.products.clone()),
                ),
                api(
                    Service::CouponSource,
                    coupon_source_service::api::router(s.coupon_sources.clone()),
                ),
                api(
                    Service::Coupon,
                    coupon_service::api::router(s.coupons.clone()),
                ),
                api(
                    Service::Payment,
                    payment_service::api::router(s.payments.clone()),
                ),
                api(Service::Order, order_service::api::router(s.orders.clone())),
            ],
            self.tokens.clone(),
            &user_service::api::PUBLIC_ROUTES,
            self.meter("user-authorizer"),
        )
    }

    /// The meter of one function, by its name in `template.yaml`.
    pub fn meter(&self, function: &str) -> Meter {
        Meter::new(self.invocations.clone(), function)
    }

    /// A queue's consuming function as its event source mapping invokes it: poison
    /// messages to `dead_letters`, every invocation counted.
    pub fn sqs_function(
        &self,
        queue: &'static str,
        handler: Arc<dyn EventHandler>,
        dead_letters: Box<dyn DeadLetters>,
    ) -> Arc<dyn SqsFunction> {
        let function = Arc::new(BatchProcessor::new(queue, handler, dead_letters));
        Arc::new(Metered::new(function, self.meter(queue)))
    }
}

/// The gateway and the background tasks of a started system, until it is shut down.
pub struct Running {
    router: Router,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub(crate) fn new(
        router: Router,
        stop: watch::Sender<bool>,
        tasks: Vec<JoinHandle<()>>,
    ) -> Running {
        Running {
            router,
            stop,
            tasks,
        }
    }

    /// The gateway: every route of every service, behind the authorizer.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Stops the background tasks and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A world running on tokio.
pub struct LocalSystem {
    pub running: Running,
    pub bus: Arc<MemoryBus>,
    pub services: Services,
    pub outboxes: BTreeMap<Service, Arc<MemoryOutbox>>,
    pub invocations: Arc<Invocations>,
}

impl LocalSystem {
    /// Builds the system on in-memory tables and starts its background tasks on the
    /// current runtime.
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
        let sweep_interval = config.sweep_interval;
        let world = World::build(
            config,
            clock.clone(),
            ids.clone(),
            None,
            |service, outbox| Ports::new(store(service, outbox), clock.clone(), ids.clone()),
        )?;
        let publisher: Arc<dyn EventPublisher> = Arc::new(BusPublisher::new(world.bus.clone()));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for (service, outbox) in &world.outboxes {
            let function = format!("{}-relay", service.name());
            let relay = run_memory_relay(
                outbox.clone(),
                publisher.clone(),
                world.meter(&function),
                stopped.clone(),
            );
            let span = telemetry::function_span(&function);
            tasks.push(tokio::spawn(relay.instrument(span)));
        }
        for (queue, handler) in &world.consumers {
            let dead_letters = Box::new(BusDeadLetters::new(world.bus.clone(), *queue));
            let function = world.sqs_function(queue, handler.clone(), dead_letters);
            let run = mapping::run(
                world.bus.clone(),
                (*queue).to_owned(),
                function,
                stopped.clone(),
            );
            tasks.push(tokio::spawn(async move {
                run.await;
            }));
        }
        tasks.push(spawn_sweep(&world, sweep_interval, stopped.clone()));
        Ok(LocalSystem {
            running: Running::new(world.router(), stop, tasks),
            bus: world.bus,
            services: world.services,
            outboxes: world.outboxes,
            invocations: world.invocations,
        })
    }

    /// The gateway: every route of every service, behind the authorizer.
    pub fn router(&self) -> Router {
        self.running.router()
    }

    /// Stops the relays, event source mappings and the sweep, and waits for them.
    pub async fn shutdown(self) {
        self.running.shutdown().await
    }
}
/// Starts the schedule's stand-in: the order sweep every `interval`, until `stopped`.
pub(crate) fn spawn_sweep(
    world: &World,
    interval: std::time::Duration,
    stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let sweep = run_sweep(
        world.services.orders.clone(),
        world.meter("order-sweep"),
        interval,
        stopped,
    );
    tokio::spawn(sweep.instrument(telemetry::function_span("order-sweep")))
}

/// The EventBridge schedule, played locally: the order sweep every `interval`.
async fn run_sweep(
    orders: Arc<OrderService>,
    meter: Meter,
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
        match meter.time(0, orders.sweep()).await {
            Ok(report) if report.due > 0 => {
                tracing::info!(due = report.due, changed = report.changed, "sweep")
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "sweep failed; the next one tries again"),
        }
    }
}
