//! A deterministic simulation of the whole system under faults.
//!
//! All services run on the in-memory adapters, driven one step at a time: one seeded
//! random generator chooses every action and every fault, a manual clock (skewed per
//! service within a bound) is the only time, and ids come from a sequence — so a seed
//! always gives the same run. Faults are injected while orders are placed; then they stop,
//! the system is drained (relays, deliveries, sweeps) until quiet, and the invariants of
//! `shared/spec/invariants.md` are checked. The "at every moment" ones are checked after
//! every step.

pub mod checks;
pub mod run;
pub mod stale;
pub mod world;

pub use run::{Faults, Report, Sabotage, SimConfig, run_seed};
