//! What the system tells about itself: one order's trace across every hop of its saga
//! (`GET /traces/{id}`), and the saga's metrics (`GET /metrics`), after a confirmed and a
//! failed order.

use std::collections::BTreeSet;
use std::time::Duration;

use platform::xray::{Segment, TraceHeader};
use serde_json::json;

use crate::support;

/// A GET of the local system's own text routes: status and body.
async fn text(base: &str, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Waits until `done` holds of `path`'s text.
async fn await_text(base: &str, path: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = text(base, path).await;
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never came to what was expected:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_relay(segment: &Segment) -> bool {
    segment.name.ends_with("-relay")
}

#[tokio::test]
async fn one_orders_trace_holds_every_hop_of_its_saga_and_the_metrics_add_up() {
    let system = support::start(&[]).await;
    let admin = system.admin().await;
    let kim = system.user("kim@shop.kr").await;
    kim.charge(10_000).await;
    let tea = admin.product("Green tea", 3_000, 10).await;

    // A confirmed order, placed as a client would, reading the trace header it is answered.
    let response = reqwest::Client::new()
        .post(format!("{}/orders", system.base))
        .bearer_auth(&kim.token)
        .json(&json!({"items": [{"productId": tea, "quantity": 2}]}))
        .send()
        .await
        .expect("POST /orders");
    assert_eq!(response.status().as_u16(), 201);
    let header = response.headers()["x-amzn-trace-id"]
        .to_str()
        .expect("a trace header")
        .to_owned();
    let trace_id = TraceHeader::parse(&header)
        .expect("a well-formed header")
        .root;
    let created: serde_json::Value = response.json().await.expect("JSON");
    let order_id = created["orderId"].as_str().expect("an order id").to_owned();
    let order = kim.await_order(&order_id, &["CONFIRMED", "FAILED"]).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");

    // The trace is whole once its last hop, the confirmation's consumers, handled it.
    let traces = system.system.telemetry.traces.clone();
    let text_trace = await_text(&system.base, &format!("/traces/{trace_id}"), |t| {
        t.contains("OrderConfirmed → handled")
    })
    .await;
    let segments = traces.trace(&trace_id);
    // Every hop of the order's saga is in this one trace: no other trace has any.
    assert_eq!(traces.traces_of(&order_id), std::slice::from_ref(&trace_id));

    // One root: the API's request, which the rest descends from.
    let roots: Vec<&Segment> = segments.iter().filter(|s| s.parent_id.is_none()).collect();
    assert_eq!(roots.len(), 1, "{text_trace}");
    let api = roots[0];
    assert_eq!(api.name, "order-api");
    assert_eq!(api.annotations["operation"], "POST /orders");
    assert_eq!(api.http.as_ref().map(|h| h.response.status), Some(201));
    assert_eq!(
        TraceHeader::parse(&header).and_then(|h| h.parent),
        Some(api.id.clone())
    );
    assert_eq!(
        api.annotations["correlationId"], order_id,
        "the saga it started"
    );
    let parent_of = |s: &Segment| {
        let parent = s.parent_id.as_deref();
        segments.iter().find(|p| Some(p.id.as_str()) == parent)
    };
    for segment in &segments {
        if segment.id == api.id {
            continue;
        }
        let parent = parent_of(segment)
            .unwrap_or_else(|| panic!("{} has no parent in the trace:\n{text_trace}", segment.id));
        assert!(parent.start_time <= segment.start_time, "{text_trace}");
        let event = &segment.annotations["eventId"];
        if is_relay(segment) {
            // An event is relayed from where it was made: the request, or a consumer.
            assert!(!is_relay(parent), "{text_trace}");
            assert_eq!(segment.annotations["outcome"], "published");
        } else {
            // An event is handled as the relay sent it on.
            assert!(is_relay(parent), "{text_trace}");
            assert_eq!(&parent.annotations["eventId"], event, "{text_trace}");
            assert_eq!(segment.annotations["outcome"], "handled", "{text_trace}");
        }
        assert_eq!(segment.annotations["correlationId"], order_id);
    }
    let handled: BTreeSet<&str> = segments
        .iter()
        .filter(|s| !is_relay(s) && s.id != api.id)
        .map(|s| s.annotations["operation"].as_str())
        .collect();
    for step in [
        "OrderCreated",
        "StockReserved",
        "PaymentRequested",
        "BalanceDeducted",
        "PaymentApproved",
        "OrderConfirmed",
    ] {
        assert!(
            handled.contains(step),
            "{step} not handled in:\n{text_trace}"
        );
    }
    // As text: a line per hop, in time, indented under its parent.
    let lines: Vec<&str> = text_trace.lines().collect();
    assert!(lines[0].starts_with(&format!("trace {trace_id}: {} segments", segments.len())));
    assert!(
        lines[1].contains("order-api  POST /orders → 201"),
        "{text_trace}"
    );
    assert!(
        lines[2].contains("  order-relay  OrderCreated → published"),
        "{text_trace}"
    );
    // An order's id finds its traces too.
    let (status, by_order) = text(&system.base, &format!("/traces/{order_id}")).await;
    assert_eq!(
        (status, by_order.lines().next()),
        (200, lines.first().copied())
    );
    let (status, _) = text(&system.base, "/traces/1-00000000-000000000000000000000000").await;
    assert_eq!(status, 404);

    // A failed order: more than the balance holds.
    let failed_id = kim
        .placed(json!([{"productId": tea, "quantity": 3}]), None)
        .await;
    let failed = kim.await_order(&failed_id, &["FAILED", "CONFIRMED"]).await;
    assert_eq!(failed["failureReason"], "PAYMENT_FAILED", "{failed}");

    let metrics = await_text(&system.base, "/metrics", |m| {
        m.contains("OrdersFailed{Service=\"order\",Reason=\"PAYMENT_FAILED\"} 1")
    })
    .await;
    for line in [
        "OrdersCreated{Service=\"order\"} 2",
        "OrdersConfirmed{Service=\"order\"} 1",
        "SagaDuration_count{Service=\"order\",Outcome=\"confirmed\"} 1",
        "SagaDuration_count{Service=\"order\",Outcome=\"failed\"} 1",
        // The failed order's stock and payment answered its undo (it had no coupon).
        "UndoAnswers{Service=\"order\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in:\n{metrics}"
        );
    }
    for absent in ["OrdersCancelled", "PoisonMessages"] {
        assert!(!metrics.contains(absent), "{absent} in:\n{metrics}");
    }
    // Every service's relay published with its lag.
    for service in ["order", "product", "payment", "balance"] {
        let lag = format!("RelayLag_count{{Service=\"{service}\"}}");
        assert!(metrics.contains(&lag), "no {lag} in:\n{metrics}");
    }
    let (status, _) = text(&system.base, "/metrics").await;
    assert_eq!(status, 200, "public, like /openapi.json");
}

#[test]
fn every_functions_handler_names_the_service_its_binary_serves() {
    // On Lambda a function's metrics are its service's, known from its handler's name.
    let stack = local::template::Stack::load().expect("template.yaml");
    for function in &stack.functions {
        // A service's binary is named after it (the authorizer's after it too: user-…); the
        // relay's serves every table.
        let binary = contract::Service::from_name(&function.binary)
            .or_else(|| platform::lambda::service_of(&function.binary));
        assert_eq!(
            platform::lambda::service_of(&function.handler),
            binary,
            "{}: handler {} of binary {}",
            function.id,
            function.handler,
            function.binary
        );
    }
}

#[test]
fn the_metrics_written_are_the_contract_the_template_and_the_operations_doc_name() {
    use platform::metrics::Metric;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |file: &str| std::fs::read_to_string(root.join(file)).expect(file);
    let (template, doc) = (read("template.yaml"), read("docs/operations.md"));
    for metric in Metric::ALL {
        let name = metric.name();
        assert!(template.contains(name), "template.yaml never reads {name}");
        let row = format!("| `{name}` | {} |", metric.unit());
        assert!(doc.contains(&row), "docs/operations.md has no row {row}");
        if let Some(dimension) = metric.dimension() {
            let set = format!("`[Service, {dimension}]`");
            assert!(doc.contains(&set), "docs/operations.md: {name} by {set}");
        }
    }
}
