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
