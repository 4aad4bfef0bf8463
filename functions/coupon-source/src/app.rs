//! The coupon-source service's handlers. Written per handler:
//! - create / update: one conditional put of the source (absent / version).
//! - issue: the source's counters moved in place (`left − 1`, never below zero; `issued + 1`),
//!   the user's issue record (absent) and `CouponIssued`, in one transaction. The bound is
//!   what keeps `issued` from passing `quantity` with no version to race on, and the absent
//!   condition what keeps a user from a second coupon, under any concurrency.
//!
//! Table: `SOURCE#<id>`/`SOURCE` (the [`CouponSource`]; gsi1 `SOURCES` /
//! `<createdAt>#<id>`, the admins' list), `SOURCE#<id>`/`USER#<userId>`
//! (who got which coupon), `THROTTLE#…` (issue requests per client address, so one person
//! with many fresh accounts cannot drain a first-come source).

use chrono::{DateTime, Duration, Utc};
use contract::Discount;
use platform::docstore::{
    Commit, Decision, Expect, Index, IndexKey, Key, Query, Write, commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;
use platform::ports::{Ports, sortable_time};
use platform::throttle::{Limit, Throttle, Throttled};
use serde::{Deserialize, Serialize};

use crate::domain::{self, CouponSource, IssueRefusal, PolicyError};

pub struct CouponSourceService {
    ports: Ports,
    throttle: Throttle,
    issue_limit: Limit,
}

/// Issue requests a client address may send a minute, unless configured.
const DEFAULT_ISSUES_PER_MINUTE: u32 = 30;

/// Issue requests per client address: `COUPON_ISSUES_PER_CLIENT_PER_MINUTE` (default 30; 0
/// turns the limit off).
pub fn issue_limit(
    env: &dyn platform::config::Env,
) -> Result<Limit, platform::config::ConfigError> {
    let max = platform::config::number_in(
        env,
        "COUPON_ISSUES_PER_CLIENT_PER_MINUTE",
        DEFAULT_ISSUES_PER_MINUTE.into(),
        0,
        1_000_000,
    )?;
    Ok(Limit::new(max as u32, Duration::minutes(1)))
}

#[derive(Debug, thiserror::Error)]
pub enum SourceFailure {
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    #[error(transparent)]
    Refused(#[from] IssueRefusal),
    #[error("no such coupon source")]
    NotFound,
    #[error("too many coupon requests from this address")]
    Throttled(Throttled),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new policy, as an admin sends it.
pub struct NewSource {
    pub name: String,
    pub discount: Discount,
    pub minimum_order_amount: Option<i64>,
    pub quantity: i64,
    pub issuable_from: DateTime<Utc>,
    pub issuable_until: DateTime<Utc>,
    pub coupon_valid_days: i64,
}

/// What an admin may change.
#[derive(Default)]
pub struct SourceChange {
    pub name: Option<String>,
    pub issuable_from: Option<DateTime<Utc>>,
    pub issuable_until: Option<DateTime<Utc>>,
    pub active: Option<bool>,
    pub quantity: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssueRecord {
    coupon_id: String,
}

/// The source's counters (see [`CouponSource`]).
const ISSUED: &str = "issued";
const LEFT: &str = "left";

fn source_key(source_id: &str) -> Key {
    Key::new(format!("SOURCE#{source_id}"), "SOURCE")
}

/// Every source, oldest first (gsi1).
const SOURCES: &str = "SOURCES";

fn listing_key(source_id: &str, created_at: DateTime<Utc>) -> IndexKey {
    IndexKey::new(
        SOURCES,
        format!("{}#{source_id}", sortable_time(created_at)),
    )
}

/// A page of sources, and where the next one starts.
pub struct SourcePage {
    pub sources: Vec<CouponSource>,
    pub cursor: Option<String>,
}

fn issue_key(source_id: &str, user_id: &str) -> Key {
    Key::new(format!("SOURCE#{source_id}"), format!("USER#{user_id}"))
}

impl CouponSourceService {
    /// With the default issue limit per client address (see [`issue_limit`]).
    pub fn new(ports: Ports) -> Self {
        let throttle = Throttle::new(ports.store.clone(), ports.clock.clone());
        CouponSourceService {
            ports,
            throttle,
            issue_limit: Limit::new(DEFAULT_ISSUES_PER_MINUTE, Duration::minutes(1)),
        }
    }

    pub fn with_issue_limit(mut self, limit: Limit) -> Self {
        self.issue_limit = limit;
        self
    }

    pub async fn create(&self, new: NewSource) -> Result<CouponSource, SourceFailure> {
        domain::discount(&new.discount)?;
        domain::window(new.issuable_from, new.issuable_until)?;
        let mut source = CouponSource {
            source_id: self.ports.ids.next_id(),
            name: domain::name(&new.name)?,
            discount: new.discount,
            minimum_order_amount: domain::minimum(new.minimum_order_amount.unwrap_or(0))?,
            quantity: domain::quantity(new.quantity, 0)?,
            issued: 0,
            left: 0,
            issuable_from: new.issuable_from,
            issuable_until: new.issuable_until,
            coupon_valid_days: domain::valid_days(new.coupon_valid_days)?,
            active: true,
        };
        source.left = source.quantity;
        let listed = listing_key(&source.source_id, self.ports.clock.now());
        let write = Write::put(source_key(&source.source_id), &source, Expect::Absent)?
            .indexed(Some(listed), None)
            .counting([ISSUED, LEFT]);
        self.ports
            .store
            .commit(Commit::new().write(write))
            .await
            .map_err(|e| match e {
                platform::docstore::CommitError::Store(e) => e,
                platform::docstore::CommitError::Conflict(_) => {
                    StoreError::unavailable("source id collision")
                }
            })?;
        Ok(source)
    }

    /// Every source, oldest first, a page at a time.
    pub async fn list(
        &self,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<SourcePage, StoreError> {
        let query = Query::partition(Index::Gsi1, SOURCES)
            .limit(limit)
            .after(cursor);
        let page = self.ports.store.query(query).await?;
        Ok(SourcePage {
            sources: page.parse()?,
            cursor: page.cursor,
        })
    }

    pub async fn source(&self, source_id: &str) -> Result<Option<CouponSource>, StoreError> {
        self.ports
            .store
            .get(&source_key(source_id))
            .await?
            .map(|i| i.parse())
            .transpose()
    }

    pub async fn update(
        &self,
        source_id: &str,
        change: SourceChange,
    ) -> Result<CouponSource, SourceFailure> {
        let store = self.ports.store.as_ref();
        commit_with_retries(store, || async {
            let item = store
                .get(&source_key(source_id))
                .await?
                .ok_or(SourceFailure::NotFound)?;
            let mut source: CouponSource = item.parse()?;
            if let Some(name) = &change.name {
                source.name = domain::name(name)?;
            }
            source.issuable_from = change.issuable_from.unwrap_or(source.issuable_from);
            source.issuable_until = change.issuable_until.unwrap_or(source.issuable_until);
            domain::window(source.issuable_from, source.issuable_until)?;
            source.active = change.active.unwrap_or(source.active);
            if let Some(q) = change.quantity {
                source.quantity = domain::quantity(q, source.issued)?;
                source.left = source.quantity.saturating_sub(source.issued);
            }
            let write = Write::replace(&item, &source)?;
            Ok(Decision::Commit(Commit::new().write(write), source))
        })
        .await
    }

    /// Issues a coupon to `user_id`, first come, first served (the rules:
    /// [`domain::issue`]); answers the new coupon's id. Each request from `client` counts
    /// against its limit.
    pub async fn issue(
        &self,
        client: &str,
        source_id: &str,
        user_id: &str,
    ) -> Result<String, SourceFailure> {
        if let Err(throttled) = self
            .throttle
            .hit("issue-client", client, self.issue_limit)
            .await?
        {
            return Err(SourceFailure::Throttled(throttled));
        }
        let store = self.ports.store.as_ref();
        let coupon_id = self.ports.ids.next_id();
        commit_with_retries(store, || async {
            if let Some(record) = store.get(&issue_key(source_id, user_id)).await? {
                // Our own earlier attempt may have committed even though we were told it
                // failed (a retried write): then this request did issue the coupon.
                return match record.parse::<IssueRecord>()?.coupon_id == coupon_id {
                    true => Ok(Decision::Done(coupon_id.clone())),
                    false => Err(IssueRefusal::AlreadyIssued.into()),
                };
            }
            let item = store
                .get(&source_key(source_id))
                .await?
                .ok_or(SourceFailure::NotFound)?;
            let now = self.ports.clock.now();
            let issued = domain::issue(&item.parse()?, &coupon_id, user_id, now)?;
            let event = self.ports.events.envelope(
                Cause::Request {
                    correlation_id: &coupon_id,
                },
                &coupon_id,
                issued,
            );
            let commit = Commit::new()
                .write(Write::add(source_key(source_id), [(LEFT, -1), (ISSUED, 1)]))
                .write(Write::put(
                    issue_key(source_id, user_id),
                    &IssueRecord {
                        coupon_id: coupon_id.clone(),
                    },
                    Expect::Absent,
                )?)
                .event(event);
            Ok(Decision::Commit(commit, coupon_id.clone()))
        })
        .await
    }
}
