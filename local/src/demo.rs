//! Demo data, so that a newcomer can place an order within a minute: an administrator, a
//! few products and a coupon source, created through the services' own handlers (so their
//! events reach every copy, as any data would).

use chrono::Duration;
use contract::{Discount, Won};
use coupon_source_service::app::NewSource;

use crate::system::Services;

pub const ADMIN_EMAIL: &str = "admin@shop.kr";
pub const ADMIN_PASSWORD: &str = "admin1234";

/// What the demo created, to tell the user.
pub struct Demo {
    pub products: Vec<(String, String, u64)>,
    pub coupon_source: String,
}

impl Demo {
    /// One shell line exporting what the README's order walkthrough uses: `B` (the
    /// system's address), `SOURCE` (the coupon source) and `TEA` (the first product).
    pub fn exports(&self, base: &str) -> String {
        let tea = self.products.first().map_or("", |(id, _, _)| id.as_str());
        format!("export B={base} SOURCE={} TEA={tea}", self.coupon_source)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the demo data could not be created: {0}")]
pub struct DemoError(String);

fn failed(e: impl std::fmt::Display) -> DemoError {
    DemoError(e.to_string())
}

/// Creates the demo data, in memory or on AWS APIs. The administrator is made one the way
/// an operator bootstraps the first admin: straight on the store, not through the API.
pub async fn seed(services: &Services) -> Result<Demo, DemoError> {
    let admin = services
        .users
        .sign_up("local-demo", ADMIN_EMAIL, ADMIN_PASSWORD, "Demo admin")
        .await
        .map_err(failed)?;
    services
        .users
        .grant_role(&admin, platform::identity::Role::Admin)
        .await
        .map_err(failed)?;
    let mut products = Vec::new();
    for (name, price, stock) in [
        ("Green tea", 3_000, 100),
        ("Ceramic cup", 12_000, 20),
        ("Tea kettle", 45_000, 5),
    ] {
        let product = services
            .products
            .register(name, price, stock, None)
            .await
            .map_err(failed)?;
        products.push((product.product_id, product.name, product.price.0));
    }
    let now = chrono::Utc::now();
    let source = services
        .coupon_sources
        .create(NewSource {
            name: "Welcome 10%".into(),
            discount: Discount::Percent {
                rate: 10,
                max_amount: Some(Won(5_000)),
            },
            minimum_order_amount: Some(10_000),
            quantity: 1_000,
            issuable_from: now - Duration::minutes(1),
            issuable_until: now + Duration::days(30),
            coupon_valid_days: 7,
            expected_issues_per_second: None,
        })
        .await
        .map_err(failed)?;
    Ok(Demo {
        products,
        coupon_source: source.source_id,
    })
}
