//! Wires every service on in-memory adapters and runs the background work: a relay per
//! outbox, an event source mapping per queue. Stops cleanly on [`LocalSystem::shutdown`].

use std::sync::Arc;

use axum::Router;
use platform::bus::{BusPublisher, MemoryBus, TopologyError};
use platform::clock::{Clock, SystemClock};
use platform::ids::{IdGenerator, RandomIds};
use platform::outbox::MemoryOutbox;
use platform::publish::EventPublisher;
use platform::relay::run_memory_relay;
use platform::telemetry;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;
use user_service::app::UserService;
use user_service::auth::TokenCodec;
use user_service::store::memory::MemoryUserStore;

use crate::config::LocalConfig;
use crate::gateway::gateway;
use crate::topology::topology;

pub struct LocalSystem {
    router: Router,
    pub bus: Arc<MemoryBus>,
    pub outboxes: Vec<(&'static str, Arc<MemoryOutbox>)>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalSystem {
    /// Builds the system and starts its background tasks on the current runtime.
    pub fn start(config: LocalConfig) -> Result<LocalSystem, TopologyError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
        let bus = Arc::new(MemoryBus::new(&topology(), clock.clone(), ids.clone())?);
        let publisher: Arc<dyn EventPublisher> = Arc::new(BusPublisher::new(bus.clone()));
        let (stop, stopped) = watch::channel(false);

        let tokens = TokenCodec::new(
            &config.user.jwt_secret,
            config.user.token_ttl,
            clock.clone(),
        );
        let user_outbox = Arc::new(MemoryOutbox::new());
        let users = Arc::new(UserService::new(
            Arc::new(MemoryUserStore::new(user_outbox.clone())),
            config.user,
            clock.clone(),
            ids.clone(),
        ));

        let outboxes = vec![("user", user_outbox)];
        let tasks = outboxes
            .iter()
            .map(|(service, outbox)| {
                let relay = run_memory_relay(outbox.clone(), publisher.clone(), stopped.clone());
                tokio::spawn(
                    relay.instrument(telemetry::function_span(&format!("{service}-relay"))),
                )
            })
            .collect();
        let router = gateway(
            vec![user_service::api::router(users)],
            tokens,
            &user_service::api::PUBLIC_ROUTES,
        );
        Ok(LocalSystem {
            router,
            bus,
            outboxes,
            stop,
            tasks,
        })
    }

    /// The gateway: every route of every service, behind the authorizer.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Stops the relays and event source mappings and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
