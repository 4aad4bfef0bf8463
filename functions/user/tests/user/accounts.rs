//! Sign-up, login and roles over the user table (the in-memory document store, which the
//! platform's conformance suite holds to DynamoDB's behaviour).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;
use platform::clock::SystemClock;
use platform::docstore::DocStore;
use platform::docstore::memory::MemoryDocStore;
use platform::identity::{Identity, Role};
use platform::ids::SequentialIds;
use platform::outbox::MemoryOutbox;
use user_service::app::{RoleError, SignUpError, UserService};
use user_service::config::{UserConfig, UserLimits};
use user_service::domain::{Email, RoleChangeError};
use user_service::keys::{JwtSecret, SigningKeys};
use user_service::repo;

struct Given {
    service: Arc<UserService>,
    store: Arc<dyn DocStore>,
    outbox: Arc<MemoryOutbox>,
}

fn given() -> Given {
    let outbox = Arc::new(MemoryOutbox::new());
    let store: Arc<dyn DocStore> = Arc::new(MemoryDocStore::new(outbox.clone()));
    let off = [
        ("SIGNUPS_PER_CLIENT_PER_HOUR", "0"),
        ("LOGIN_FAILURES_PER_CLIENT_PER_HOUR", "0"),
    ];
    let config = UserConfig {
        keys: SigningKeys::single(
            JwtSecret::parse("JWT_SECRET", "accounts-test-secret-of-32-bytes!!").unwrap(),
        ),
        token_ttl: Duration::hours(1),
        limits: UserLimits::from_env(&HashMap::from(off)).unwrap(),
    };
    let service = UserService::new(
        store.clone(),
        config,
        Arc::new(SystemClock),
        Arc::new(SequentialIds::new("u")),
    );
    Given {
        service: Arc::new(service),
        store,
        outbox,
    }
}

const PASSWORD: &str = "correct horse 1";

#[tokio::test]
async fn sign_up_stores_the_profile_the_email_claim_and_the_event_together() {
    let g = given();
    let id = g
        .service
        .sign_up("1.2.3.4", "Kim@Shop.kr", PASSWORD, "Kim")
        .await
        .unwrap();

    let user = repo::user(&*g.store, &id).await.unwrap().unwrap();
    assert_eq!(
        (user.email.as_str(), user.name.as_str(), user.role),
        ("kim@shop.kr", "Kim", Role::Customer)
    );
    let claim = repo::email_claim(&*g.store, &user.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.user_id, id);
    assert_ne!(claim.password_hash, PASSWORD, "only a hash is stored");
    let events = g.outbox.events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].event_type(), events[0].aggregate_id.as_str()),
        (contract::EventType::UserRegistered, id.as_str())
    );
    assert!(
        g.service
            .log_in("1.2.3.4", "kim@shop.kr", PASSWORD)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_taken_email_is_refused_and_changes_nothing() {
    let g = given();
    let first = g
        .service
        .sign_up("1.2.3.4", "kim@shop.kr", PASSWORD, "Kim")
        .await
        .unwrap();
    let err = g
        .service
        .sign_up("1.2.3.4", " KIM@shop.kr", "another pass 2", "Other")
        .await
        .unwrap_err();
    assert!(matches!(err, SignUpError::EmailTaken), "{err:?}");

    let claim = repo::email_claim(&*g.store, &Email::parse("kim@shop.kr").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.user_id, first);
    assert_eq!(g.outbox.events().len(), 1, "no second UserRegistered");
    assert!(
        g.service
            .log_in("1.2.3.4", "kim@shop.kr", PASSWORD)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_register_exactly_one() {
    let g = given();
    let attempts: Vec<_> = (0..10)
        .map(|n| {
            let service = g.service.clone();
            tokio::spawn(async move {
                service
                    .sign_up("1.2.3.4", "race@shop.kr", PASSWORD, &format!("Racer {n}"))
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(id) => won.push(id),
            Err(SignUpError::EmailTaken) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won.len(), 1);
    let events = g.outbox.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].aggregate_id, won[0]);
}

#[tokio::test]
async fn roles_change_only_by_a_stored_admin_and_only_for_a_user_that_exists() {
    let g = given();
    let boss = g
        .service
        .sign_up("1.2.3.4", "boss@shop.kr", PASSWORD, "Boss")
        .await
        .unwrap();
    let kim = g
        .service
        .sign_up("1.2.3.4", "kim@shop.kr", PASSWORD, "Kim")
        .await
        .unwrap();
    let as_admin = |user_id: &str| Identity {
        user_id: user_id.to_owned(),
        role: Role::Admin,
    };
    // A token saying admin is not enough: the stored role decides.
    let err = g
        .service
        .change_role(&as_admin(&boss), &kim, Role::Admin)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RoleError::Refused(RoleChangeError::NotAdmin)),
        "{err:?}"
    );

    g.service.grant_role(&boss, Role::Admin).await.unwrap();
    let kim_now = g
        .service
        .change_role(&as_admin(&boss), &kim, Role::Admin)
        .await
        .unwrap();
    assert_eq!(kim_now.role, Role::Admin);
    let stored = g.service.profile(&kim).await.unwrap();
    assert_eq!(
        (stored.role, stored.email.as_str()),
        (Role::Admin, "kim@shop.kr")
    );

    let err = g
        .service
        .change_role(&as_admin(&boss), &boss, Role::Customer)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RoleError::Refused(RoleChangeError::OwnRole)),
        "{err:?}"
    );
    for missing in [
        g.service
            .change_role(&as_admin(&boss), "nobody", Role::Admin)
            .await,
        g.service
            .grant_role("nobody", Role::Admin)
            .await
            .map(|()| stored.clone()),
    ] {
        assert!(matches!(missing, Err(RoleError::NotFound)), "{missing:?}");
    }
    assert!(
        repo::user(&*g.store, "nobody").await.unwrap().is_none(),
        "no user was made"
    );
}

#[tokio::test]
async fn a_stored_profile_that_no_longer_parses_is_corrupt_not_trusted() {
    use platform::docstore::{Commit, Expect, Write};
    let g = given();
    let bad = serde_json::json!({
        "userId": "u-x", "email": "not an address", "name": "X",
        "role": "customer", "createdAt": "2026-12-01T00:00:00Z"
    });
    let write = Write::put(repo::profile_key("u-x"), &bad, Expect::Absent).unwrap();
    g.store.commit(Commit::new().write(write)).await.unwrap();
    let err = g.service.profile("u-x").await.unwrap_err();
    let logged = platform::errors::chain(&err).to_string();
    assert!(
        matches!(
            err,
            user_service::app::ProfileError::Store(platform::errors::StoreError::Corrupt(_))
        ) && logged.contains("u-x"),
        "{logged}"
    );
}
