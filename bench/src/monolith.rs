//! The floor under the saga's bill: the same orders as the monolith the seed splits would
//! serve them — one request, one invocation, one transaction over the items the order
//! touches, no events, no queues. A model, stated here, priced with the same table:
//!
//! - reads: each product of the order, the buyer's account and the coupon, one strongly
//!   consistent `GetItem` each (1 read unit: our items are under 4 KiB);
//! - a confirmed order: one `TransactWriteItems` of the order, its products, the account,
//!   the ledger entry and the coupon (2 write units each: under 1 KiB without events), and
//!   their index writes as the saga's tables index them (`crate::index_writes`, keys only):
//!   the new order into its buyer's list (1 unit); the products and the coupon stay where
//!   they are in theirs, which a keys-only index does not write;
//! - a failed order (out of stock, not enough balance): one `PutItem` of the failed order,
//!   and its write into the buyer's list;
//! - Lambda: the authorizer and one function, whose duration is the order API's measured
//!   CPU time per invocation plus the modelled latency of those requests.

use std::collections::BTreeMap;

use platform::invocations::FunctionStats;

use crate::request_latency::latency;
use crate::shop::{Outcome, Placed};

/// What the monolith would use per order, in the bill's units.
pub struct Floor {
    pub api_requests: f64,
    pub lambda_requests: f64,
    pub lambda_ms: f64,
    pub write_units: f64,
    pub read_units: f64,
}

fn cpu_ms_per_invocation(invocations: &BTreeMap<String, FunctionStats>, function: &str) -> f64 {
    invocations.get(function).map_or(0.0, |s| {
        s.cpu.as_secs_f64() * 1000.0 / s.invocations.max(1) as f64
    })
}

pub fn floor(placed: &[Placed], invocations: &BTreeMap<String, FunctionStats>) -> Floor {
    let n = placed.len().max(1) as f64;
    let ms = |service, operation| latency(service, operation).as_secs_f64() * 1000.0;
    let (mut lambda_ms, mut write_units, mut read_units) = (0.0, 0.0, 0.0);
    let api_cpu = cpu_ms_per_invocation(invocations, "order-api");
    let authorizer_cpu = cpu_ms_per_invocation(invocations, "user-authorizer");
    for order in placed {
        let reads = order.lines + 1 + usize::from(order.coupon);
        read_units += reads as f64;
        let write_ms = if order.outcome == Some(Outcome::Confirmed) {
            // The order, its products, the account, the ledger entry, the coupon.
            let items = 1 + order.lines + 2 + usize::from(order.coupon);
            write_units += 2.0 * items as f64 + 1.0;
            ms("dynamodb", "TransactWriteItems")
        } else {
            // The failed order, and its entry into the buyer's list.
            write_units += 1.0 + 1.0;
            ms("dynamodb", "PutItem")
        };
        let function = api_cpu + reads as f64 * ms("dynamodb", "GetItem") + write_ms;
        // Each invocation is billed in whole milliseconds.
        lambda_ms += function.ceil() + authorizer_cpu.ceil().max(1.0);
    }
    Floor {
        api_requests: 1.0,
        lambda_requests: 2.0,
        lambda_ms: lambda_ms / n,
        write_units: write_units / n,
        read_units: read_units / n,
    }
}
