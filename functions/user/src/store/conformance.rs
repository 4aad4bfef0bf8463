//! The behaviour every [`UserStore`] adapter must have. `user_store_conformance!` turns each
//! case into a test for one adapter; the in-memory and DynamoDB test files both use it, so
//! the in-memory store cannot quietly differ from DynamoDB.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use contract::{Envelope, EventMeta, UserRegistered};
use platform::testing::OutboxProbe;

use super::{RegisterError, Registration, UserStore};
use crate::domain::{Email, User, UserName};
use platform::identity::Role;

/// A store under test and a way to read back what it wrote to its outbox.
pub struct Subject {
    pub store: Arc<dyn UserStore>,
    pub outbox: Box<dyn OutboxProbe>,
}

fn registration(user_id: &str, email: &str) -> (Registration, Envelope) {
    let user = User {
        user_id: user_id.to_owned(),
        email: Email::parse(email).expect("valid test e-mail"),
        name: UserName::parse("Kim").expect("valid test name"),
        role: Role::Customer,
        created_at: Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap(),
    };
    let meta = EventMeta {
        event_id: format!("ev-{user_id}"),
        occurred_at: user.created_at,
        correlation_id: user_id.to_owned(),
        causation_id: None,
    };
    let event = Envelope::new(
        meta,
        user_id,
        UserRegistered {
            user_id: user_id.to_owned(),
        },
    );
    (
        Registration {
            user,
            password_hash: format!("hash-of-{user_id}"),
        },
        event,
    )
}

pub async fn registers_a_user_with_its_event(s: Subject) {
    let (reg, event) = registration("u-1", "kim@shop.kr");
    s.store.register(reg.clone(), event.clone()).await.unwrap();

    assert_eq!(s.store.user("u-1").await.unwrap(), Some(reg.user.clone()));
    let creds = s
        .store
        .credentials(&reg.user.email)
        .await
        .unwrap()
        .expect("credentials by e-mail");
    assert_eq!(
        (creds.user_id.as_str(), creds.password_hash.as_str()),
        ("u-1", "hash-of-u-1")
    );
    assert_eq!(s.outbox.events().await, vec![event]);
}

pub async fn refuses_a_taken_email_and_changes_nothing(s: Subject) {
    let (first, first_event) = registration("u-1", "kim@shop.kr");
    s.store
        .register(first.clone(), first_event.clone())
        .await
        .unwrap();

    let (second, second_event) = registration("u-2", "kim@shop.kr");
    let err = s.store.register(second, second_event).await.unwrap_err();
    assert!(matches!(err, RegisterError::EmailTaken), "{err:?}");

    assert_eq!(s.store.user("u-2").await.unwrap(), None);
    let creds = s
        .store
        .credentials(&first.user.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.user_id, "u-1");
    assert_eq!(s.outbox.events().await, vec![first_event]);
}

pub async fn concurrent_signups_with_one_email_register_exactly_one(s: Subject) {
    let attempts = (0..10).map(|n| {
        let store = s.store.clone();
        let (reg, event) = registration(&format!("u-{n}"), "race@shop.kr");
        tokio::spawn(async move { store.register(reg, event).await })
    });
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => won += 1,
            Err(RegisterError::EmailTaken) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let events = s.outbox.events().await;
    assert_eq!(events.len(), 1);
    let creds = s
        .store
        .credentials(&Email::parse("race@shop.kr").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events[0].aggregate_id, creds.user_id);
}

pub async fn unknown_users_and_emails_are_absent(s: Subject) {
    assert_eq!(s.store.user("nobody").await.unwrap(), None);
    assert_eq!(
        s.store
            .credentials(&Email::parse("nobody@shop.kr").unwrap())
            .await
            .unwrap(),
        None
    );
    assert!(s.outbox.events().await.is_empty());
}

pub async fn a_role_is_stored_with_the_user_and_changed_only_for_an_existing_one(s: Subject) {
    let (reg, event) = registration("u-1", "kim@shop.kr");
    s.store.register(reg.clone(), event).await.unwrap();
    assert_eq!(
        s.store.user("u-1").await.unwrap().unwrap().role,
        Role::Customer
    );

    assert!(s.store.set_role("u-1", Role::Admin).await.unwrap());
    let user = s.store.user("u-1").await.unwrap().unwrap();
    assert_eq!(user.role, Role::Admin);
    assert_eq!(user.email, reg.user.email, "nothing else changed");
    assert!(s.store.set_role("u-1", Role::Customer).await.unwrap());
    assert_eq!(
        s.store.user("u-1").await.unwrap().unwrap().role,
        Role::Customer
    );

    assert!(!s.store.set_role("nobody", Role::Admin).await.unwrap());
    assert_eq!(
        s.store.user("nobody").await.unwrap(),
        None,
        "no user was made"
    );
}

/// One test per conformance case, for the adapter `$subject` (an async expression giving a
/// fresh [`Subject`]).
#[macro_export]
macro_rules! user_store_conformance {
    ($subject:expr) => {
        #[tokio::test]
        async fn registers_a_user_with_its_event() {
            $crate::store::conformance::registers_a_user_with_its_event($subject.await).await
        }

        #[tokio::test]
        async fn refuses_a_taken_email_and_changes_nothing() {
            $crate::store::conformance::refuses_a_taken_email_and_changes_nothing($subject.await)
                .await
        }

        #[tokio::test]
        async fn concurrent_signups_with_one_email_register_exactly_one() {
            $crate::store::conformance::concurrent_signups_with_one_email_register_exactly_one(
                $subject.await,
            )
            .await
        }

        #[tokio::test]
        async fn a_role_is_stored_with_the_user_and_changed_only_for_an_existing_one() {
            $crate::store::conformance::a_role_is_stored_with_the_user_and_changed_only_for_an_existing_one(
                $subject.await,
            )
            .await
        }

        #[tokio::test]
        async fn unknown_users_and_emails_are_absent() {
            $crate::store::conformance::unknown_users_and_emails_are_absent($subject.await).await
        }
    };
}
