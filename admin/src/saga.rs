//! An order's saga as the order service keeps it: the order (its state, each step's state,
//! the undo answers) and its timeline, read through the order service's own code
//! (`OrderService::order`, `OrderService::timeline`), so its keys and item shapes are
//! written in one place.

use std::sync::Arc;

use order_service::app::{OrderService, OrderSettings};
use order_service::domain::{Order, Status};
use order_service::repo::TimelineEntry;
use platform::clock::SystemClock;
use platform::docstore::DocStore;
use platform::ids::RandomIds;
use platform::ports::Ports;

use crate::AdminError;

/// An order and every event of its saga the order service saw, in the order it saw them.
#[derive(Debug, Clone)]
pub struct Saga {
    pub order: Order,
    pub timeline: Vec<TimelineEntry>,
}

/// The saga of `order_id` in the order table `store` (`None`: no such order).
pub async fn saga(store: Arc<dyn DocStore>, order_id: &str) -> Result<Option<Saga>, AdminError> {
    // Reading only: the clock, ids and settings are never used.
    let service = OrderService::new(
        Ports::new(store, Arc::new(SystemClock), Arc::new(RandomIds)),
        OrderSettings {
            order_ttl: chrono::Duration::minutes(10),
            undo_grace: chrono::Duration::minutes(1),
        },
    );
    let Some(order) = service.order(order_id).await? else {
        return Ok(None);
    };
    let timeline = service.timeline(order_id).await?;
    Ok(Some(Saga { order, timeline }))
}

fn undo(answer: Option<bool>) -> &'static str {
    match answer {
        None => "awaited",
        Some(true) => "undone",
        Some(false) => "nothing to undo",
    }
}

fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The saga as the operator reads it.
pub fn render(saga: &Saga) -> String {
    let o = &saga.order;
    let mut out = format!("order {}  {}\n", o.order_id, o.status.as_str());
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("  {label:<9} {value}\n"));
    };
    line("user", o.user_id.clone());
    line(
        "created",
        format!("{}, expires {}", time(o.created_at), time(o.expires_at)),
    );
    line(
        "amounts",
        format!(
            "total {}, discount {}, to pay {}{}",
            o.total_amount,
            o.discount_amount,
            o.payment_amount,
            o.coupon_id
                .as_ref()
                .map(|c| format!(" (coupon {c})"))
                .unwrap_or_default()
        ),
    );
    line(
        "steps",
        format!(
            "stock {}, coupon {}, payment {}",
            o.steps.stock.as_str(),
            o.steps.coupon.as_str(),
            o.steps.payment.as_str()
        ),
    );
    if let Some(reason) = o.failure_reason {
        line("failure", reason.as_str().to_owned());
    }
    let u = &o.undo;
    let compensating = matches!(
        o.status,
        Status::Failing | Status::Failed | Status::Cancelling | Status::Cancelled
    );
    if compensating || u.stock.is_some() || u.coupon.is_some() || u.payment.is_some() {
        line(
            "undo",
            format!(
                "stock {}, coupon {}, payment {}",
                undo(u.stock),
                undo(u.coupon),
                undo(u.payment)
            ),
        );
    }
    out.push_str(&format!(
        "timeline ({} events, as they occurred; seen: when the order service recorded it)\n",
        saga.timeline.len()
    ));
    let mut events: Vec<&TimelineEntry> = saga.timeline.iter().collect();
    events.sort_by_key(|e| (e.occurred_at, e.seen_at));
    let width = events.iter().map(|e| e.event_type.len()).max().unwrap_or(0);
    for e in events {
        let late = (e.seen_at - e.occurred_at).num_milliseconds() as f64 / 1000.0;
        out.push_str(&format!(
            "  {}  {:<width$}  {:<13}  {}  seen +{late:.1} s\n",
            time(e.occurred_at),
            e.event_type,
            e.source,
            e.event_id,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use contract::{StockReserved, Won};
    use order_service::domain::{Line, OrderRequest};
    use platform::docstore::memory::MemoryDocStore;
    use platform::events::Cause;
    use platform::ids::SequentialIds;
    use platform::outbox::MemoryOutbox;

    use super::*;

    /// Read through the order service's own code: an order it placed, and its timeline.
    #[tokio::test]
    async fn the_saga_is_read_as_the_order_service_wrote_it() {
        let outbox = Arc::new(MemoryOutbox::new());
        let store: Arc<dyn DocStore> = Arc::new(MemoryDocStore::new(outbox.clone()));
        let ports = Ports::new(
            store.clone(),
            Arc::new(SystemClock),
            Arc::new(SequentialIds::new("id")),
        );
        let events = ports.events.clone();
        let service = OrderService::new(
            ports,
            OrderSettings {
                order_ttl: chrono::Duration::minutes(10),
                undo_grace: chrono::Duration::minutes(1),
            },
        );
        service
            .copy_price("p-1", Won(3_000), Utc::now())
            .await
            .unwrap();
        let request = OrderRequest::parse(
            vec![Line {
                product_id: "p-1".into(),
                quantity: 2,
            }],
            None,
        )
        .unwrap();
        let order = service.create("u-1", &request, None).await.unwrap();
        let created = outbox.events().pop().expect("OrderCreated");
        let reserved = events.envelope(
            Cause::Event(&created),
            "p-1",
            StockReserved {
                order_id: order.order_id.clone(),
            },
        );
        service.record(&created).await.unwrap();
        service.record(&reserved).await.unwrap();

        let found = saga(store.clone(), &order.order_id).await.unwrap().unwrap();
        assert_eq!(found.order.status, Status::Pending);
        assert_eq!(found.order.payment_amount, Won(6_000));
        let types: Vec<&str> = found
            .timeline
            .iter()
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(types, ["OrderCreated", "StockReserved"]);
        assert!(saga(store, "nobody").await.unwrap().is_none());
    }

    #[test]
    fn the_saga_shows_the_state_each_step_and_the_timeline_in_order() {
        let at = |s| Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, s).unwrap();
        let order: Order = serde_json::from_value(serde_json::json!({
            "orderId": "o-42", "userId": "u-1", "status": "CONFIRMED",
            "items": [{"productId": "p-1", "quantity": 2, "unitPrice": 3000}],
            "totalAmount": 6000, "discountAmount": 0, "paymentAmount": 6000,
            "createdAt": at(0), "expiresAt": at(0) + chrono::Duration::minutes(10),
            "steps": {"stock": "DONE", "coupon": "NOT_REQUIRED", "payment": "DONE"},
        }))
        .expect("an order");
        let entry = |id: &str, kind: &str, source: &str, s| TimelineEntry {
            event_id: id.into(),
            event_type: kind.into(),
            source: source.into(),
            occurred_at: at(s),
            // Seen in one batch, later.
            seen_at: at(3) + chrono::Duration::milliseconds(500),
            causation_id: None,
        };
        let mut saga = Saga {
            order,
            timeline: vec![
                entry("e-3", "OrderConfirmed", "order", 3),
                entry("e-1", "OrderCreated", "order", 1),
                entry("e-2", "StockReserved", "product", 2),
            ],
        };
        let text = render(&saga);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "order o-42  CONFIRMED");
        assert!(
            text.contains("  steps     stock DONE, coupon NOT_REQUIRED, payment DONE\n"),
            "{text}"
        );
        assert!(!text.contains("undo"), "{text}");
        assert!(
            text.contains("timeline (3 events, as they occurred"),
            "{text}"
        );
        assert!(
            text.contains(
                "  2026-05-01T10:00:02.000Z  StockReserved   product        e-2  seen +1.5 s\n"
            ),
            "{text}"
        );
        let events: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.split_whitespace().nth(1))
            .skip_while(|w| *w != "OrderCreated")
            .collect();
        assert_eq!(events, ["OrderCreated", "StockReserved", "OrderConfirmed"]);

        saga.order.status = Status::Cancelling;
        saga.order.undo.stock = Some(true);
        let text = render(&saga);
        assert!(
            text.contains("  undo      stock undone, coupon awaited, payment awaited\n"),
            "{text}"
        );
    }
}
