//! The admins' view of the coupon sources: the list that tells them (and the README's
//! walkthrough) a source's id.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::start;

#[tokio::test]
async fn admins_list_the_coupon_sources_a_page_at_a_time_and_customers_may_not() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let first = admin
        .coupon_source(json!({"type": "FIXED", "amount": 500}), 0, 10)
        .await;
    let second = admin
        .coupon_source(json!({"type": "PERCENT", "rate": 10}), 10_000, 3)
        .await;

    let all = admin.get("/coupon-sources").await;
    let ids: Vec<&str> = all["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["sourceId"].as_str())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "oldest first");
    assert_eq!(all["items"][1]["remaining"], 3);
    assert!(all.get("nextCursor").is_none(), "{all}");

    let page = admin.get("/coupon-sources?limit=1").await;
    assert_eq!(page["items"][0]["sourceId"], first.as_str());
    let cursor = page["nextCursor"].as_str().expect("a second page");
    let rest = admin
        .get(&format!("/coupon-sources?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(rest["items"][0]["sourceId"], second.as_str());
    assert!(rest.get("nextCursor").is_none(), "{rest}");

    let (status, body) = admin
        .call(Method::GET, "/coupon-sources?limit=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let kim = sys.user("kim@shop.kr").await;
    let (status, body) = kim.call(Method::GET, "/coupon-sources", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("FORBIDDEN"))
    );
}

/// A customer with a token of their own (no sign-up: the issue needs only the identity).
fn customer(sys: &crate::support::TestSystem, n: usize) -> crate::support::Client {
    let user_id = format!("shopper-{n}");
    let token = sys
        .system
        .services
        .users
        .tokens
        .issue(&user_id, platform::identity::Role::Customer)
        .unwrap()
        .token;
    crate::support::Client {
        base: sys.base.clone(),
        token,
        user_id,
    }
}

#[tokio::test]
async fn a_sharded_source_resizes_over_its_shards_and_answers_winners_already_issued() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    // 30 coupons for 1,000 issues a second: 20 shards (2, or 1, each).
    let source = admin
        .coupon_source_for(json!({"type": "FIXED", "amount": 500}), 30, 1_000)
        .await;
    let path = format!("/coupon-sources/{source}");
    let issue = |n: usize| {
        let client = customer(&sys, n);
        let path = format!("{path}/issue");
        async move { client.post(&path, json!({})).await }
    };
    for n in 0..10 {
        let (status, body) = issue(n).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let read = admin.get(&path).await;
    assert_eq!(
        (read["issued"].as_u64(), read["remaining"].as_u64()),
        (Some(10), Some(20))
    );

    // Below what was issued: refused. To 15: 5 left, taken off whichever shards have them.
    let (status, body) = admin
        .call(Method::PATCH, &path, Some(json!({"quantity": 9})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("QUANTITY_BELOW_ISSUED")
        )
    );
    let (status, body) = admin
        .call(Method::PATCH, &path, Some(json!({"quantity": 15})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["issued"].as_u64(), body["remaining"].as_u64()),
        (Some(10), Some(5))
    );

    // Ten more ask: five get one, five find every shard empty.
    let mut answers = Vec::new();
    for n in 10..20 {
        let (status, body) = issue(n).await;
        answers.push((
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        ));
    }
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 5, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, c)| *s == StatusCode::CREATED
                || (*s == StatusCode::CONFLICT && c == "SOLD_OUT")),
        "{answers:?}"
    );
    // A winner asking again is told so, though the source is sold out.
    let (status, body) = issue(0).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("ALREADY_ISSUED"))
    );
    // Raised by 3: those come back to be issued.
    let (status, body) = admin
        .call(Method::PATCH, &path, Some(json!({"quantity": 18})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for n in 20..23 {
        let (status, body) = issue(n).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let read = admin.get(&path).await;
    assert_eq!(
        (
            read["quantity"].as_u64(),
            read["issued"].as_u64(),
            read["remaining"].as_u64()
        ),
        (Some(18), Some(18), Some(0))
    );
}

#[tokio::test]
async fn an_expected_rate_out_of_bounds_is_refused() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let now = chrono::Utc::now();
    for rate in [json!(-1), json!(1_000_001), json!("fast")] {
        let body = json!({
            "name": "Flash", "discount": {"type": "FIXED", "amount": 500}, "quantity": 10,
            "issuableFrom": now.to_rfc3339(), "issuableUntil": (now + chrono::Duration::days(1)).to_rfc3339(),
            "couponValidDays": 7, "expectedIssuesPerSecond": rate,
        });
        let (status, answer) = admin.post("/coupon-sources", body).await;
        assert!(
            matches!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST
            ),
            "{rate}: {status} {answer}"
        );
    }
    assert_eq!(admin.get("/coupon-sources").await["items"], json!([]));
}
