//! The simulation in CI: a fixed set of seeds must find no violation, the same seed must
//! give the same run, and a rule broken on purpose must be caught.

use simulation::{Report, Sabotage, SimConfig, run_seed};

/// Orders per seed in CI: enough to race and fail in every way, small enough for 200 seeds
/// in a few minutes of an unoptimised build.
const ORDERS: usize = 8;

fn run_range(seeds: std::ops::Range<u64>) {
    let mut failures = Vec::new();
    for seed in seeds {
        let report = run_seed(&SimConfig {
            orders: ORDERS,
            ..SimConfig::new(seed)
        });
        if !report.violations.is_empty() {
            failures.push(format!(
                "seed {seed}: {:?}\n{}\n  reproduce: cargo run -p simulation --profile sim -- --seed {seed} --orders {ORDERS}",
                report.violations,
                report.timelines.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seeds_1_to_50() {
    run_range(1..51);
}

#[test]
fn seeds_51_to_100() {
    run_range(51..101);
}

#[test]
fn seeds_101_to_150() {
    run_range(101..151);
}

#[test]
fn seeds_151_to_200() {
    run_range(151..201);
}

fn fingerprint(r: &Report) -> String {
    format!(
        "{} {} {} {} {} {} {} {:?} {:?}",
        r.orders_placed,
        r.orders_refused,
        r.confirmed,
        r.failed,
        r.cancelled,
        r.steps,
        r.deliveries,
        r.faults,
        r.violations
    )
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let config = SimConfig {
        orders: ORDERS,
        ..SimConfig::new(7)
    };
    let first = run_seed(&config);
    assert_eq!(fingerprint(&first), fingerprint(&run_seed(&config)));
    assert_ne!(
        fingerprint(&first),
        fingerprint(&run_seed(&SimConfig {
            orders: ORDERS,
            ..SimConfig::new(8)
        }))
    );
    assert!(first.orders_placed > 0 && first.deliveries > 0 && !first.faults.is_empty());
}

#[test]
fn the_checker_catches_a_handler_without_de_duplication() {
    // Product reserving stock without its per-order record: a duplicate OrderCreated takes
    // the stock twice. Some seed among the first twenty must show it.
    let caught = (1..=20).find_map(|seed| {
        let report = run_seed(&SimConfig {
            orders: ORDERS,
            sabotage: Some(Sabotage::ForgetReservations),
            ..SimConfig::new(seed)
        });
        report
            .violations
            .into_iter()
            .find(|v| v.starts_with("stock of"))
    });
    assert!(
        caught.is_some(),
        "no seed caught the missing de-duplication"
    );
}

#[test]
fn eventual_reads_are_answered_stale_and_the_run_holds() {
    // The fault is wired: some seed among the first forty answers an eventual read with an
    // older version (or absent), and the seeds above show no violation all the same.
    let stale = (1..=40).find(|seed| {
        let report = run_seed(&SimConfig {
            orders: ORDERS,
            ..SimConfig::new(*seed)
        });
        report.faults.get("stale read").is_some_and(|n| *n > 0)
    });
    assert!(stale.is_some(), "no seed served a stale read");
}

/// A run that loses an `OrderConfirmed` on its way to the product service (seed 202 did
/// first; which seeds do moves as the handlers' reads change). Announced once (the design
/// before the sweep re-announced confirmations), that order's sale never reaches the
/// statistics; announced again, it does.
#[test]
fn regression_a_lost_confirmation_is_announced_again() {
    let caught = (202..=240).find(|seed| {
        let once = run_seed(&SimConfig {
            sabotage: Some(Sabotage::AnnounceConfirmationsOnce),
            ..SimConfig::new(*seed)
        });
        once.violations
            .iter()
            .any(|v| v.starts_with("statistics of"))
    });
    let Some(seed) = caught else {
        panic!("no seed from 202 to 240 lost a confirmation announced once");
    };
    let fixed = run_seed(&SimConfig::new(seed));
    assert!(
        fixed.violations.is_empty(),
        "seed {seed}: {:?}",
        fixed.violations
    );
    assert!(fixed.faults.get("message lost").is_some_and(|n| *n > 0));
}
