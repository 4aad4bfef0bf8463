//! The coupon-source service's handlers. Written per handler:
//! - create: the source and its shards (`platform::docstore::shards`, as many as the
//!   expected rate of issues needs): one conditional put, or one transaction of them all.
//! - update: the source (version), and for a smaller quantity the shards' `left` taken down
//!   in place (never below zero), in one commit.
//! - issue: the user's issue record (absent), one shard's counters moved in place
//!   (`left − 1`, never below zero; `issued + 1`) and `CouponIssued`, in one transaction.
//!   No read comes first: the bound keeps a shard from issuing more than its share with no
//!   version to race on, the absent condition keeps a user from a second coupon under any
//!   concurrency, and an empty shard is only skipped for another.
//!
//! A source's policy and which of its shards are empty are read once a second per process
//! ([`Known`]); a change made here is seen here at once, elsewhere within that second.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use contract::Discount;
use platform::docstore::shards::{self, Recent, take_from};
use platform::docstore::{
    Commit, CommitError, ConflictAt, Decision, Expect, Index, MAX_ATTEMPTS, Query, Retries, Write,
    commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;
use platform::ports::Ports;
use platform::throttle::{Limit, Throttle, Throttled};

use crate::domain::{self, CouponSource, IssueRefusal, PolicyError};
use crate::repo::{
    ISSUED, IssueRecord, LEFT, SOURCES, ShardCount, issue_key, listing_key, shard_counts,
    shard_item, shard_items, source_key,
};

/// What this process read of a source lately: its policy, and its shards seen empty.
#[derive(Debug, Clone)]
struct Known {
    policy: CouponSource,
    empty: BTreeSet<u32>,
}

pub struct CouponSourceService {
    ports: Ports,
    throttle: Throttle,
    issue_limit: Limit,
    known: Recent<Known>,
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
    /// Issues a second to expect at the peak; how many shards the count is spread over.
    pub expected_issues_per_second: Option<i64>,
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

/// A page of sources, and where the next one starts.
pub struct SourcePage {
    pub sources: Vec<CouponSource>,
    pub cursor: Option<String>,
}

impl CouponSourceService {
    /// With the default issue limit per client address (see [`issue_limit`]).
    pub fn new(ports: Ports) -> Self {
        let throttle = Throttle::new(ports.store.clone(), ports.clock.clone());
        CouponSourceService {
            ports,
            throttle,
            issue_limit: Limit::new(DEFAULT_ISSUES_PER_MINUTE, Duration::minutes(1)),
            known: Recent::new(shards::REMEMBER_FOR),
        }
    }

    pub fn with_issue_limit(mut self, limit: Limit) -> Self {
        self.issue_limit = limit;
        self
    }

    pub async fn create(&self, new: NewSource) -> Result<CouponSource, SourceFailure> {
        domain::discount(&new.discount)?;
        domain::window(new.issuable_from, new.issuable_until)?;
        let quantity = domain::quantity(new.quantity, 0)?;
        let rate = domain::expected_rate(new.expected_issues_per_second)?;
        let shares = shards::split(quantity, shards::shard_count(rate, quantity));
        let mut source = CouponSource {
            source_id: self.ports.ids.next_id(),
            name: domain::name(&new.name)?,
            discount: new.discount,
            minimum_order_amount: domain::minimum(new.minimum_order_amount.unwrap_or(0))?,
            quantity,
            issued: 0,
            left: shares[0],
            issuable_from: new.issuable_from,
            issuable_until: new.issuable_until,
            coupon_valid_days: domain::valid_days(new.coupon_valid_days)?,
            active: true,
            shards: u32::try_from(shares.len()).unwrap_or(1),
        };
        let id = source.source_id.clone();
        let listed = listing_key(&id, self.ports.clock.now());
        let mut commit = Commit::new().write(
            Write::put(source_key(&id), &source, Expect::Absent)?
                .indexed(Some(listed), None)
                .counting([ISSUED, LEFT]),
        );
        for (shard, left) in (1u32..).zip(shares.into_iter().skip(1)) {
            let count = ShardCount {
                source_id: id.clone(),
                shard,
                issued: 0,
                left,
            };
            let write = Write::put(shard_item(&id, shard), &count, Expect::Absent)?;
            commit = commit.write(write.counting([ISSUED, LEFT]));
        }
        self.ports.store.commit(commit).await.map_err(|e| match e {
            CommitError::Store(e) => e,
            CommitError::Conflict(_) => StoreError::unavailable("source id collision"),
        })?;
        source.left = source.quantity;
        Ok(source)
    }

    /// `source` with the counts of all its shards (as stored it has its first shard's).
    async fn with_totals(&self, mut source: CouponSource) -> Result<CouponSource, StoreError> {
        if source.shards > 1 {
            let others = &shard_items(&source.source_id, source.shards)[1..];
            let items = self.ports.store.get_many(others).await?;
            let counts = shard_counts(&source, &items)?;
            source.issued = counts.iter().map(|c| c.0).sum();
            source.left = counts.iter().map(|c| c.1).sum();
        }
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
        let mut sources = Vec::with_capacity(page.items.len());
        for source in page.parse::<CouponSource>()? {
            sources.push(self.with_totals(source).await?);
        }
        Ok(SourcePage {
            sources,
            cursor: page.cursor,
        })
    }

    /// A source, with how many coupons all its shards issued and have left.
    pub async fn source(&self, source_id: &str) -> Result<Option<CouponSource>, StoreError> {
        match self.ports.store.get(&source_key(source_id)).await? {
            Some(item) => Ok(Some(self.with_totals(item.parse()?).await?)),
            None => Ok(None),
        }
    }

    pub async fn update(
        &self,
        source_id: &str,
        change: SourceChange,
    ) -> Result<CouponSource, SourceFailure> {
        let store = self.ports.store.as_ref();
        let updated: CouponSource = commit_with_retries(store, || async {
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
            let mut commit = Commit::new();
            if let Some(q) = change.quantity {
                let others = &shard_items(source_id, source.shards)[1..];
                let counts = shard_counts(&source, &store.get_many(others).await?)?;
                let issued = counts.iter().map(|c| c.0).sum();
                let quantity = domain::quantity(q, issued)?;
                if quantity >= source.quantity {
                    // More: the first shard has them.
                    source.left += quantity - source.quantity;
                } else {
                    // Fewer: taken from what the shards have left, each under its bound.
                    let lefts: Vec<u64> = counts.iter().map(|c| c.1).collect();
                    let takes = take_from(&lefts, source.quantity - quantity)
                        .ok_or(PolicyError::QuantityBelowIssued)?;
                    for (shard, take) in takes {
                        if shard == 0 {
                            source.left -= take;
                        } else {
                            let minus = -i64::try_from(take).unwrap_or(i64::MAX);
                            commit = commit
                                .write(Write::add(shard_item(source_id, shard), [(LEFT, minus)]));
                        }
                    }
                }
                source.quantity = quantity;
            }
            let write = Write::replace(&item, &source)?;
            Ok::<_, SourceFailure>(Decision::Commit(commit.write(write), source))
        })
        .await?;
        self.known.forget(source_id);
        Ok(self.with_totals(updated).await?)
    }

    /// What this process knows of the source: read afresh once a second.
    async fn known(&self, source_id: &str) -> Result<Known, SourceFailure> {
        let now = self.ports.clock.now();
        if let Some(known) = self.known.get(source_id, now) {
            return Ok(known);
        }
        let store = self.ports.store.as_ref();
        let item = store
            .get(&source_key(source_id))
            .await?
            .ok_or(SourceFailure::NotFound)?;
        let policy: CouponSource = item.parse()?;
        let others = store
            .get_many(&shard_items(source_id, policy.shards)[1..])
            .await?;
        let empty = (0u32..)
            .zip(shard_counts(&policy, &others)?)
            .filter(|(_, (_, left))| *left == 0)
            .map(|(shard, _)| shard)
            .collect();
        let known = Known { policy, empty };
        self.known.put(source_id, known.clone(), now);
        Ok(known)
    }

    /// Issues a coupon to `user_id`, first come, first served (the rules:
    /// [`domain::issue`]); answers the new coupon's id. Each request that may get one counts
    /// against its client address's limit; one that cannot (an inactive or sold-out source)
    /// is answered without writing anything.
    pub async fn issue(
        &self,
        client: &str,
        source_id: &str,
        user_id: &str,
    ) -> Result<String, SourceFailure> {
        let mut known = self.known(source_id).await?;
        let shards = known.policy.shards;
        self.refused(&known, source_id, user_id).await?;
        if let Err(throttled) = self
            .throttle
            .hit("issue-client", client, self.issue_limit)
            .await?
        {
            return Err(SourceFailure::Throttled(throttled));
        }
        let store = self.ports.store.as_ref();
        let coupon_id = self.ports.ids.next_id();
        let mut retries = Retries::new();
        loop {
            // What other requests of this process found empty meanwhile, too.
            if let Some(shared) = self.known.get(source_id, self.ports.clock.now()) {
                known.empty.extend(shared.empty);
            }
            let Some(shard) = shards::pick(shards, &known.empty, &coupon_id) else {
                return Err(self.sold_out(source_id, user_id).await);
            };
            if self.probably_empty(source_id, shard, &known).await? {
                known.empty.insert(shard);
                continue;
            }
            let issued = domain::issue(
                &known.policy,
                true,
                &coupon_id,
                user_id,
                self.ports.clock.now(),
            )?;
            let event = self.ports.events.envelope(
                Cause::Request {
                    correlation_id: &coupon_id,
                },
                &coupon_id,
                issued,
            );
            let record = IssueRecord {
                coupon_id: coupon_id.clone(),
            };
            let commit = Commit::new()
                .write(Write::put(
                    issue_key(source_id, user_id),
                    &record,
                    Expect::Absent,
                )?)
                .write(Write::add(
                    shard_item(source_id, shard),
                    [(LEFT, -1), (ISSUED, 1)],
                ))
                .event(event);
            match store.commit(commit).await {
                Ok(()) => return Ok(coupon_id),
                Err(CommitError::Conflict(ConflictAt::Write(0))) => {
                    return self.issued_before(source_id, user_id, &coupon_id).await;
                }
                // That shard is empty: another one, at once (nobody to wait for).
                Err(CommitError::Conflict(_)) => {
                    known.empty.insert(shard);
                    self.known.update(source_id, |k| {
                        k.empty.insert(shard);
                    });
                    continue;
                }
                Err(CommitError::Store(StoreError::Throttled)) => {}
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
            if !retries.wait().await {
                tracing::warn!(
                    attempts = MAX_ATTEMPTS,
                    "gave up issuing on a throttled source"
                );
                return Err(StoreError::Throttled.into());
            }
        }
    }

    /// Once a shard is empty, the others run dry soon and several requests may pick the
    /// same last coupon of one: a read of the shard (one read unit) before the transaction
    /// (four write units, billed even when its bound refuses it) skips one already empty.
    async fn probably_empty(
        &self,
        source_id: &str,
        shard: u32,
        known: &Known,
    ) -> Result<bool, StoreError> {
        let shards = known.policy.shards;
        if shards < 2 || known.empty.is_empty() {
            return Ok(false);
        }
        let left = match self.ports.store.get(&shard_item(source_id, shard)).await? {
            Some(item) if shard == 0 => item.parse::<CouponSource>()?.left,
            Some(item) => item.parse::<ShardCount>()?.left,
            None => 0,
        };
        if left == 0 {
            self.known.update(source_id, |k| {
                k.empty.insert(shard);
            });
        }
        Ok(left == 0)
    }

    /// Refuses at once what no shard can change: an inactive source, outside its window,
    /// every shard empty.
    async fn refused(
        &self,
        known: &Known,
        source_id: &str,
        user_id: &str,
    ) -> Result<(), SourceFailure> {
        domain::issuing(&known.policy, self.ports.clock.now())?;
        if known.empty.len() >= known.policy.shards.max(1) as usize {
            return Err(self.sold_out(source_id, user_id).await);
        }
        Ok(())
    }

    /// Every shard is empty: sold out, unless this user has one already (that answer first).
    async fn sold_out(&self, source_id: &str, user_id: &str) -> SourceFailure {
        match self.ports.store.get(&issue_key(source_id, user_id)).await {
            Ok(Some(_)) => IssueRefusal::AlreadyIssued.into(),
            Ok(None) => IssueRefusal::SoldOut.into(),
            Err(e) => e.into(),
        }
    }

    /// The user's issue record exists: ours (an earlier attempt of this request committed
    /// though it was told it failed) or another request's.
    async fn issued_before(
        &self,
        source_id: &str,
        user_id: &str,
        coupon_id: &str,
    ) -> Result<String, SourceFailure> {
        let record = self
            .ports
            .store
            .get(&issue_key(source_id, user_id))
            .await?
            .ok_or(StoreError::Contention)?;
        if record.parse::<IssueRecord>()?.coupon_id == coupon_id {
            Ok(coupon_id.to_owned())
        } else {
            Err(IssueRefusal::AlreadyIssued.into())
        }
    }
}
