//! The user service on a real table: sign-up's one commit (profile, e-mail claim, event) and
//! the operator's bootstrap of the first admin.

use std::collections::HashMap;
use std::sync::Arc;

use platform::clock::SystemClock;
use platform::docstore::dynamodb::DynamoDocStore;
use platform::identity::Role;
use platform::ids::SequentialIds;
use platform::testing::aws::endpoint;
use platform::testing::stream_events;
use shop_admin::{AdminError, Who, grant_role};
use user_service::app::{SignUpError, UserService};
use user_service::config::{UserConfig, UserLimits};
use user_service::keys::{JwtSecret, SigningKeys};
use user_service::repo;

#[tokio::test]
async fn sign_up_is_one_commit_and_the_first_admin_is_made_only_for_a_user_that_exists() {
    let client = endpoint().dynamodb().await;
    let table = endpoint().table(&client, "user").await;
    let store = Arc::new(DynamoDocStore::new(client.clone(), table.name.clone()));
    let config = UserConfig {
        keys: SigningKeys::single(
            JwtSecret::parse("JWT_SECRET", "user-table-test-secret-of-32-bytes").unwrap(),
        ),
        token_ttl: chrono::Duration::hours(1),
        limits: UserLimits::from_env(&HashMap::from([("SIGNUPS_PER_CLIENT_PER_HOUR", "0")]))
            .unwrap(),
    };
    let users = UserService::new(
        store.clone(),
        config,
        Arc::new(SystemClock),
        Arc::new(SequentialIds::new("boss")),
    );
    let boss = users
        .sign_up("1.2.3.4", "boss@shop.kr", "boss password 1", "Boss")
        .await
        .unwrap();
    let taken = users
        .sign_up("1.2.3.4", "BOSS@shop.kr", "other password 2", "Other")
        .await;
    assert!(matches!(taken, Err(SignUpError::EmailTaken)), "{taken:?}");
    let events = stream_events(&endpoint().sdk_config().await, &table.name).await;
    assert_eq!(events.len(), 1, "one UserRegistered: {events:?}");
    assert_eq!(events[0].aggregate_id, boss);

    let by_email = Who::Email("Boss@Shop.kr".into());
    let granted = grant_role(client.clone(), &table.name, &by_email, Role::Admin).await;
    assert_eq!(granted.unwrap().user_id, boss);
    assert_eq!(
        repo::user(&*store, &boss).await.unwrap().unwrap().role,
        Role::Admin
    );
    let by_id = Who::UserId(boss.clone());
    grant_role(client.clone(), &table.name, &by_id, Role::Customer)
        .await
        .unwrap();
    assert_eq!(
        repo::user(&*store, &boss).await.unwrap().unwrap().role,
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
    assert!(
        repo::user(&*store, "nobody").await.unwrap().is_none(),
        "no user was made"
    );
}
