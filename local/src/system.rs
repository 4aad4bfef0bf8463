//! Wiring every service, and running it.
//!
//! [`World`] builds the seven services on the given ports, the in-memory bus with the
//! topology of `template.yaml`, and each function's code — and runs nothing. [`LocalSystem`] drives a world on
//! tokio: a relay per outbox, an event source mapping per queue, the sweep on a timer, and
//! stops cleanly on [`LocalSystem::shutdown`]. The deterministic simulation drives the same
//! world one step at a time instead.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use std::time::Duration;

use balance_service::app::BalanceService;
use contract::Service;
use coupon_service::app::CouponService;
use coupon_source_service::app::CouponSourceService;
use order_service::app::{OrderService, OrderSettings};
use payment_service::app::PaymentService;
use platform::batch::{BatchProcessor, DeadLetters, EventHandler, SqsFunction};
use platform::bus::{
    BusDeadLetters, BusPublisher, MemoryBus, QueueSpec, Topology, TopologyError, mapping,
};
use platform::clock::{Clock, SystemClock};
use platform::docstore::DocStore;
use platform::docstore::memory::MemoryDocStore;
use platform::http::ServedBy;
use platform::ids::{IdGenerator, RandomIds};
use platform::invocations::{Invocations, Meter, Metered};
use platform::metrics::MemoryMetrics;
use platform::outbox::MemoryOutbox;
use platform::ports::Ports;
use platform::publish::EventPublisher;
use platform::relay::run_memory_relay;
use platform::telemetry::{self, Sinks};
use platform::xray::MemoryTraces;
use product_service::app::ProductService;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;
use user_service::app::UserService;
use user_service::auth::TokenCodec;
use user_service::config::UserConfig;

use crate::config::LocalConfig;
use crate::gateway::observed_gateway;
use crate::registry::{self, Code, RegistryError};
use crate::template::{
    EnvValue, Function, QueueSource, Stack, StreamSource, TemplateError, Trigger,
};

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

/// What the system's functions report, as CloudWatch and X-Ray would hold it: their metrics
/// (`GET /metrics`, Prometheus text) and their trace segments (`GET /traces/{id}`).
#[derive(Clone, Default)]
pub struct Telemetry {
    pub metrics: Arc<MemoryMetrics>,
    pub traces: Arc<MemoryTraces>,
}

impl Telemetry {
    pub fn sinks(&self) -> Sinks {
        Sinks {
            metrics: Some(self.metrics.clone()),
            segments: Some(self.traces.clone()),
        }
    }
}

/// Why a system could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the topology of template.yaml: {0}")]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Config(#[from] platform::config::ConfigError),
}

/// What a service reads its settings from: the text variables `template.yaml` gives the
/// functions of its `binaries` (on Lambda each reads its own), with the locally set `local`
/// on top. Locally one service serves all of its functions, so they must agree. `HANDLER`
/// names a function's code, not a setting.
fn service_env(
    stack: &Stack,
    binaries: &[&str],
    local: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, BuildError> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let functions = stack
        .functions
        .iter()
        .filter(|f| binaries.contains(&f.binary.as_str()));
    for function in functions {
        for (name, value) in &function.environment {
            let EnvValue::Text(value) = value else {
                continue;
            };
            if name == "HANDLER" {
                continue;
            }
            if env
                .insert(name.clone(), value.clone())
                .is_some_and(|before| before != *value)
            {
                return Err(TemplateError::new(
                    &function.id,
                    format!(
                        "{name} differs between the {} functions; locally they share one service",
                        function.binary
                    ),
                )
                .into());
            }
        }
    }
    env.extend(local.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}

/// A function of the template that consumes a queue, with its code.
#[derive(Clone)]
pub struct Consumer {
    pub function: String,
    pub queue: String,
    pub source: QueueSource,
    pub handler: Arc<dyn EventHandler>,
}

/// A function of the template that relays a table's outbox to a topic.
#[derive(Debug, Clone)]
pub struct Relay {
    pub function: String,
    pub service: Service,
    pub topic: String,
    pub source: StreamSource,
}

/// Everything wired, nothing running.
pub struct World {
    /// What `template.yaml` declares.
    pub stack: Arc<Stack>,
    pub bus: Arc<MemoryBus>,
    pub services: Services,
    /// Each service's outbox: the events it wrote, in order (a running system drops those
    /// its relay published; a driven world keeps them all).
    pub outboxes: BTreeMap<Service, Arc<MemoryOutbox>>,
    /// Each queue's consuming function.
    pub consumers: Vec<Consumer>,
    /// Each table's relay.
    pub relays: Vec<Relay>,
    /// The scheduled sweep: its function's name.
    pub sweep: Option<String>,
    /// Every function's invocations, as Lambda would count and bill them.
    pub invocations: Arc<Invocations>,
    /// Every function's metrics and trace segments.
    pub telemetry: Telemetry,
    /// The API functions (name, service) and the authorizer's name.
    apis: Vec<(String, Service)>,
    authorizer: Option<String>,
    tokens: TokenCodec,
}

/// The in-memory bus's topology: the template's topics, and every queue that is subscribed
/// or consumed with its subscriptions, redrive and its consumer's batch size.
fn bus_topology(stack: &Stack, redelivery: Duration) -> Topology {
    let consumed: BTreeMap<&str, &QueueSource> = stack
        .consumed_queues()
        .map(|(_, source)| (source.queue.as_str(), source))
        .collect();
    let queues = stack
        .queues
        .iter()
        .filter(|q| {
            consumed.contains_key(q.name.as_str())
                || stack.subscriptions_of(&q.name).next().is_some()
        })
        .map(|queue| {
            let consumer = consumed.get(queue.name.as_str());
            let window = consumer.map_or(Duration::ZERO, |s| s.batching_window);
            let mut spec = QueueSpec::new(&queue.name)
                // A batch waiting for its window holds its messages: on AWS the visibility
                // timeout must cover the window too.
                .visibility_timeout(queue.visibility_timeout.min(redelivery) + window)
                .max_receive_count(
                    queue
                        .redrive
                        .as_ref()
                        .map_or(u32::MAX, |r| r.max_receive_count),
                );
            if let Some(source) = consumer {
                spec = spec
                    .batch_size(source.batch_size)
                    .batching_window(window)
                    .pollers(source.pollers());
            }
            stack
                .subscriptions_of(&queue.name)
                .fold(spec, |spec, s| spec.subscribe(&s.topic, s.filter.clone()))
        })
        .collect();
    Topology {
        topics: stack.topics.iter().map(|t| t.name.clone()).collect(),
        queues,
    }
}

impl World {
    /// `ports` gives each service its ports, given the outbox its relay reads; `clock` and
    /// `ids` are the bus's and the user service's. The topology is `template.yaml`'s.
    pub fn build(
        config: LocalConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        ports: impl Fn(Service, Arc<MemoryOutbox>) -> Ports,
    ) -> Result<World, BuildError> {
        World::build_on(Stack::load()?, config, clock, ids, ports)
    }

    /// The same on a stack given (a test's edit of the template).
    pub fn build_on(
        stack: Stack,
        config: LocalConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        ports: impl Fn(Service, Arc<MemoryOutbox>) -> Ports,
    ) -> Result<World, BuildError> {
        let stack = Arc::new(stack);
        registry::check(&stack)?;
        let bus = Arc::new(MemoryBus::new(
            &bus_topology(&stack, config.redelivery),
            clock.clone(),
            ids.clone(),
        )?);
        let outboxes: BTreeMap<Service, Arc<MemoryOutbox>> = Service::ALL
            .iter()
            .map(|s| (*s, Arc::new(MemoryOutbox::new())))
            .collect();
        let ports_of = |service: Service| ports(service, outboxes[&service].clone());
        let env_of = |binaries: &[&str]| service_env(&stack, binaries, &config.env);
        let user = UserConfig::local(&env_of(&["user", "user-authorizer"])?)?;
        let issue_limit = coupon_source_service::app::issue_limit(&env_of(&["coupon-source"])?)?;
        let settings = OrderSettings::from_env(&env_of(&["order"])?)?;
        let tokens = TokenCodec::new(&user.keys, user.token_ttl, clock.clone());
        let services = Services {
            users: Arc::new(UserService::new(
                ports_of(Service::User).store,
                user,
                clock.clone(),
                ids.clone(),
            )),
            balance: Arc::new(BalanceService::new(ports_of(Service::Balance))),
            products: Arc::new(ProductService::new(ports_of(Service::Product))),
            coupon_sources: Arc::new(
                CouponSourceService::new(ports_of(Service::CouponSource))
                    .with_issue_limit(issue_limit),
            ),
            coupons: Arc::new(CouponService::new(ports_of(Service::Coupon))),
            payments: Arc::new(PaymentService::new(ports_of(Service::Payment))),
            orders: Arc::new(OrderService::new(ports_of(Service::Order), settings)),
        };
        let mut world = World {
            stack: stack.clone(),
            bus,
            services,
            outboxes,
            consumers: Vec::new(),
            relays: Vec::new(),
            sweep: None,
            invocations: Arc::new(Invocations::new()),
            telemetry: Telemetry::default(),
            apis: Vec::new(),
            authorizer: None,
            tokens,
        };
        for function in &stack.functions {
            match (registry::code(function)?, &function.trigger) {
                (Code::Api(service), _) => world.apis.push((function.name.clone(), service)),
                (Code::Authorizer, _) => world.authorizer = Some(function.name.clone()),
                (Code::Consumer(make), Trigger::Queue(source)) => world.consumers.push(Consumer {
                    function: function.name.clone(),
                    queue: source.queue.clone(),
                    source: source.clone(),
                    handler: make(&world.services),
                }),
                (Code::Relay, Trigger::Stream(source)) => {
                    world.relays.push(relay(&stack, function, source)?)
                }
                (Code::Sweep, _) => world.sweep = Some(function.name.clone()),
                // registry::code checked that each code has its trigger.
                (Code::Consumer(_) | Code::Relay, _) => {}
            }
        }
        Ok(world)
    }

    /// The gateway: every route of every service, behind the authorizer. Each request
    /// counts as an invocation of its service's API function (and of the authorizer).
    pub fn router(&self) -> Router {
        let s = &self.services;
        let routes = |service: Service| match service {
            Service::User => user_service::api::router(s.users.clone()),
            Service::Balance => balance_service::api::router(s.balance.clone()),
            Service::Product => product_service::api::router(s.products.clone()),
            Service::CouponSource => coupon_source_service::api::router(s.coupon_sources.clone()),
            Service::Coupon => coupon_service::api::router(s.coupons.clone()),
            Service::Payment => payment_service::api::router(s.payments.clone()),
            Service::Order => order_service::api::router(s.orders.clone()),
        };
        let apis = self
            .apis
            .iter()
            .map(|(function, service)| {
                let meter = self.meter(function);
                let served = ServedBy {
                    function: function.clone(),
                };
                routes(*service).route_layer(middleware::from_fn(
                    move |request: Request, next: Next| {
                        let (meter, served) = (meter.clone(), served.clone());
                        async move {
                            // The gateway's request span and segment are this function's.
                            tracing::Span::current().record("function", served.function.as_str());
                            let mut response = meter.time(1, next.run(request)).await;
                            response.extensions_mut().insert(served);
                            response
                        }
                    },
                ))
            })
            .collect();
        observed_gateway(
            apis,
            self.tokens.clone(),
            &user_service::api::PUBLIC_ROUTES,
            self.meter(self.authorizer.as_deref().unwrap_or("authorizer")),
            self.telemetry.clone(),
        )
    }

    /// The meter of one function, by its name in `template.yaml`: its invocations counted and
    /// observed under its service (a relay's: its table's; a binary's: the service's).
    pub fn meter(&self, function: &str) -> Meter {
        let relayed = self.relays.iter().find(|r| r.function == function);
        let service = relayed.map(|r| r.service).or_else(|| {
            let binary = &self.stack.function(function)?.binary;
            Service::from_name(binary)
        });
        Meter::new(self.invocations.clone(), function).observed(service, self.telemetry.sinks())
    }

    /// A consuming function as its event source mapping invokes it: poison messages to
    /// `dead_letters`, every invocation counted.
    pub fn sqs_function(
        &self,
        consumer: &Consumer,
        dead_letters: Box<dyn DeadLetters>,
    ) -> Arc<dyn SqsFunction> {
        let function = Arc::new(BatchProcessor::new(
            consumer.function.clone(),
            consumer.handler.clone(),
            dead_letters,
        ));
        Arc::new(Metered::new(function, self.meter(&consumer.function)))
    }
}

/// A relay function: the service whose table its stream is, and the topic its `TOPIC_ARN`
/// names.
fn relay(
    stack: &Stack,
    function: &Function,
    source: &StreamSource,
) -> Result<Relay, TemplateError> {
    let at = format!("Resources.{}", function.id);
    let service = stack
        .tables
        .iter()
        .find(|t| t.name == source.table)
        .map(|t| t.service)
        .ok_or_else(|| TemplateError::new(&at, format!("no table {:?}", source.table)))?;
    let topic = match function.environment.get("TOPIC_ARN") {
        Some(EnvValue::Topic(topic)) => topic.clone(),
        _ => {
            return Err(TemplateError::new(
                at,
                "a relay's TOPIC_ARN is !Ref to its topic",
            ));
        }
    };
    Ok(Relay {
        function: function.name.clone(),
        service,
        topic,
        source: source.clone(),
    })
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
    pub telemetry: Telemetry,
}

impl LocalSystem {
    /// Builds the system on in-memory tables and starts its background tasks on the
    /// current runtime.
    pub fn start(config: LocalConfig) -> Result<LocalSystem, BuildError> {
        LocalSystem::start_with(config, Arc::new(SystemClock), Arc::new(RandomIds))
    }

    /// The same, with the clock and id ports given (tests move time with a `ManualClock`).
    pub fn start_with(
        config: LocalConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Result<LocalSystem, BuildError> {
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
    ) -> Result<LocalSystem, BuildError> {
        let sweep_interval = config.sweep_interval;
        let world = World::build(config, clock.clone(), ids.clone(), |service, outbox| {
            Ports::new(store(service, outbox), clock.clone(), ids.clone())
        })?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for relay in &world.relays {
            let publisher: Arc<dyn EventPublisher> =
                Arc::new(BusPublisher::to_topic(world.bus.clone(), &relay.topic));
            let run = run_memory_relay(
                world.outboxes[&relay.service].clone(),
                publisher,
                world.meter(&relay.function),
                stopped.clone(),
            );
            let span = telemetry::function_span(&relay.function);
            tasks.push(tokio::spawn(run.instrument(span)));
        }
        for consumer in &world.consumers {
            let dead_letters = Box::new(BusDeadLetters::new(world.bus.clone(), &consumer.queue));
            let function = world.sqs_function(consumer, dead_letters);
            let run = mapping::run(
                world.bus.clone(),
                consumer.queue.clone(),
                function,
                stopped.clone(),
            );
            tasks.push(tokio::spawn(async move {
                run.await;
            }));
        }
        tasks.extend(spawn_sweep(&world, sweep_interval, stopped.clone()));
        Ok(LocalSystem {
            running: Running::new(world.router(), stop, tasks),
            bus: world.bus,
            services: world.services,
            outboxes: world.outboxes,
            invocations: world.invocations,
            telemetry: world.telemetry,
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
/// Starts the schedule's stand-in: the order sweep every `interval` (locally shorter than
/// the template's rate, so that a short order lifetime is seen soon), until `stopped`. None
/// when the template schedules no sweep.
pub(crate) fn spawn_sweep(
    world: &World,
    interval: std::time::Duration,
    stopped: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let function = world.sweep.as_deref()?;
    let sweep = run_sweep(
        world.services.orders.clone(),
        world.meter(function),
        interval,
        stopped,
    );
    Some(tokio::spawn(
        sweep.instrument(telemetry::function_span(function)),
    ))
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
        match meter
            .time(0, telemetry::in_new_trace("sweep", orders.sweep()))
            .await
        {
            Ok(report) if report.due > 0 => {
                tracing::info!(due = report.due, changed = report.changed, "sweep")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %platform::errors::chain(&error), "sweep failed; the next one tries again")
            }
        }
    }
}
