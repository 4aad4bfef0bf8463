//! The user store conformance suite against the DynamoDB adapter.

use std::sync::Arc;

use platform::testing::DynamoOutboxProbe;
use platform::testing::aws::endpoint;
use user_service::store::conformance::Subject;
use user_service::store::dynamodb::DynamoUserStore;

async fn subject() -> Subject {
    let client = endpoint().dynamodb().await;
    let table = endpoint().table(&client, "user").await;
    Subject {
        store: Arc::new(DynamoUserStore::new(client.clone(), table.name.clone())),
        outbox: Box::new(DynamoOutboxProbe { client, table }),
    }
}

user_service::user_store_conformance!(subject());

/// The operator's bootstrap (`shop-admin grant-role`) on a real table.
#[tokio::test]
async fn the_first_admin_is_made_on_the_table_and_only_for_a_user_that_exists() {
    use platform::identity::Role;
    use shop_admin::{AdminError, Who, grant_role};
    use user_service::domain::{Email, User, UserName};
    use user_service::store::{Registration, UserStore};

    let client = endpoint().dynamodb().await;
    let table = endpoint().table(&client, "user").await;
    let store = DynamoUserStore::new(client.clone(), table.name.clone());
    let user = User {
        user_id: "boss-1".into(),
        email: Email::parse("boss@shop.kr").unwrap(),
        name: UserName::parse("Boss").unwrap(),
        role: Role::Customer,
        created_at: chrono::Utc::now(),
    };
    let registered = contract::Envelope::new(
        contract::EventMeta {
            event_id: "ev-boss".into(),
            occurred_at: user.created_at,
            correlation_id: "boss-1".into(),
            causation_id: None,
        },
        "boss-1",
        contract::UserRegistered {
            user_id: "boss-1".into(),
        },
    );
    store
        .register(
            Registration {
                user,
                password_hash: "hash".into(),
            },
            registered,
        )
        .await
        .unwrap();

    let by_email = Who::Email("Boss@Shop.kr".into());
    let granted = grant_role(client.clone(), &table.name, &by_email, Role::Admin).await;
    assert_eq!(granted.unwrap().user_id, "boss-1");
    assert_eq!(
        store.user("boss-1").await.unwrap().unwrap().role,
        Role::Admin
    );
    let by_id = Who::UserId("boss-1".into());
    grant_role(client.clone(), &table.name, &by_id, Role::Customer)
        .await
        .unwrap();
    assert_eq!(
        store.user("boss-1").await.unwrap().unwrap().role,
        Role::Customer
    );

    for (who, expected) in [
        (Who::Email("nobody@shop.kr".into()), "no user"),
        (Who::UserId("nobody".into()), "no user"),
        (Who::Email("not an address".into()), "not an e-mail"),
    ] {
        let err = grant_role(client.clone(), &table.name, &who, Role::Admin)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{who:?}: {err}");
        assert!(!matches!(err, AdminError::Store(_)), "{err}");
    }
    assert_eq!(
        store.user("nobody").await.unwrap(),
        None,
        "no user was made"
    );
}
