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
//! (`platform::docstore::shards::Recent`); a change made here is seen here at once,
//! elsewhere within that second.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use contract::Discount;
use platform::docstore::shards::{self, Recent, ShortShards};
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
    shard_item, source_key,
};

pub struct CouponSourceService {
    ports: Ports,
    throttle: Throttle,
    issue_limit: Limit,
    /// Each source's policy as this process read it lately.
    policies: Recent<CouponSource>,
    /// Which shards of each source it saw empty lately.
    empty: ShortShards,
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
            policies: Recent::new(shards::REMEMBER_FOR),
            empty: ShortShards::for_a_while(),
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

    /// Each shard's `(issued, left)`: shard 0 from `source` as stored, the others read.
    async fn counts(&self, source: &CouponSource) -> Result<Vec<(u64, u64)>, StoreError> {
        let base = source_key(&source.source_id);
        let others = shards::other_shards(self.ports.store.as_ref(), &base, source.shards).await?;
        shard_counts(source, &others)
    }

    /// `source` with the counts of all its shards (as stored it has its first shard's).
    async fn with_totals(&self, mut source: CouponSource) -> Result<CouponSource, StoreError> {
        let counts = self.counts(&source).await?;
        source.issued = counts.iter().map(|c| c.0).sum();
        source.left = counts.iter().map(|c| c.1).sum();
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
                let counts = self.counts(&source).await?;
                let quantity = domain::quantity(q, counts.iter().map(|c| c.0).sum())?;
                let lefts: Vec<u64> = counts.iter().map(|c| c.1).collect();
                // Both at most a million: the difference fits.
                let delta = i128::from(quantity) - i128::from(source.quantity);
                let delta = i64::try_from(delta).map_err(|_| PolicyError::Quantity)?;
                // Over the shards' `left`, each under its bound; the source's own with it.
                let moves =
                    shards::spread(&lefts, delta).ok_or(PolicyError::QuantityBelowIssued)?;
                for (shard, delta) in moves {
                    if shard == 0 {
                        source.left = source.left.saturating_add_signed(delta);
                    } else {
                        let write = Write::add(shard_item(source_id, shard), [(LEFT, delta)]);
                        commit = commit.write(write);
                    }
                }
                source.quantity = quantity;
            }
            let write = Write::replace(&item, &source)?;
            Ok::<_, SourceFailure>(Decision::Commit(commit.write(write), source))
        })
        .await?;
        self.policies.forget(source_id);
        self.empty.forget(source_id);
        Ok(self.with_totals(updated).await?)
    }

    /// The source's policy, read afresh once a second with which of its shards are empty.
    async fn policy(&self, source_id: &str) -> Result<CouponSource, SourceFailure> {
        let now = self.ports.clock.now();
        if let Some(policy) = self.policies.get(source_id, now) {
            return Ok(policy);
        }
        let policy: CouponSource = self
            .ports
            .store
            .get(&source_key(source_id))
            .await?
            .ok_or(SourceFailure::NotFound)?
            .parse()?;
        let lefts: Vec<u64> = self.counts(&policy).await?.iter().map(|c| c.1).collect();
        self.empty.learn(source_id, &lefts, now);
        self.policies.put(source_id, policy.clone(), now);
        Ok(policy)
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
        let policy = self.policy(source_id).await?;
        self.refused(&policy, source_id, user_id).await?;
        if let Err(throttled) = self
            .throttle
            .hit("issue-client", client, self.issue_limit)
            .await?
        {
            return Err(SourceFailure::Throttled(throttled));
        }
        let store = self.ports.store.as_ref();
        let coupon_id = self.ports.ids.next_id();
        // Shards this request found empty, beside what the process knows.
        let mut tried = BTreeSet::new();
        let mut retries = Retries::new();
        loop {
            let now = self.ports.clock.now();
            let mut short = self.empty.get(source_id, now).unwrap_or_default();
            short.extend(&tried);
            let Some(shard) = shards::pick(policy.shards, &short, &coupon_id) else {
                return Err(self.sold_out(source_id, user_id).await);
            };
            // Once a shard is empty the others run dry soon, and several requests may pick
            // the same last coupon: a read (one unit) before the transaction (four, billed
            // even when its bound refuses it) skips a shard already empty.
            let empty = !short.is_empty() && self.shard_is_empty(source_id, shard).await?;
            if !empty {
                let issued = domain::issue(&policy, &coupon_id, user_id, now)?;
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
                    // The shard is empty: another one, at once (nobody to wait for).
                    Err(CommitError::Conflict(_)) => {}
                    Err(CommitError::Store(StoreError::Throttled)) => {
                        if retries.wait().await {
                            continue;
                        }
                        tracing::warn!(
                            attempts = MAX_ATTEMPTS,
                            "gave up issuing on a throttled source"
                        );
                        return Err(StoreError::Throttled.into());
                    }
                    Err(CommitError::Store(e)) => return Err(e.into()),
                }
            }
            tried.insert(shard);
            self.empty.mark_short(source_id, shard, now);
        }
    }

    /// Whether `shard` of the source has no coupon left, as read now.
    async fn shard_is_empty(&self, source_id: &str, shard: u32) -> Result<bool, StoreError> {
        let left = match self.ports.store.get(&shard_item(source_id, shard)).await? {
            Some(item) if shard == 0 => item.parse::<CouponSource>()?.left,
            Some(item) => item.parse::<ShardCount>()?.left,
            None => 0,
        };
        Ok(left == 0)
    }

    /// Refuses at once what no shard can change: an inactive source, outside its window,
    /// every shard seen empty.
    async fn refused(
        &self,
        policy: &CouponSource,
        source_id: &str,
        user_id: &str,
    ) -> Result<(), SourceFailure> {
        let now = self.ports.clock.now();
        let any_left = !self.empty.all_short(source_id, policy.shards, now);
        match domain::refusal(policy, any_left, now) {
            Err(IssueRefusal::SoldOut) => Err(self.sold_out(source_id, user_id).await),
            refused => Ok(refused?),
        }
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
