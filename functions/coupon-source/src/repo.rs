//! The coupon-source table:
//!
//! | pk                       | sk              | body | index |
//! |--------------------------|-----------------|------|-------|
//! | `SOURCE#<id>`            | `SOURCE`        | [`CouponSource`] (counters `issued`, `left`: shard 0) | gsi1 `SOURCES` / `<createdAt>#<id>` |
//! | `SOURCE#<id>#SHARD#<i>`  | `SOURCE`        | [`ShardCount`] (counters `issued`, `left`: shard `i`) | |
//! | `SOURCE#<id>`            | `USER#<userId>` | [`IssueRecord`]: who got which coupon | |
//! | `THROTTLE#…`             | `WINDOW`        | issue requests per client address | |
//!
//! A source's count is spread over `shards` items (`platform::docstore::shards`): its own
//! item is shard 0, so a source of one shard is one item.

use chrono::{DateTime, Utc};
use platform::docstore::shards::shard_key;
use platform::docstore::{IndexKey, Item, Key};
use platform::errors::StoreError;
use platform::ports::sortable_time;
use serde::{Deserialize, Serialize};

use crate::domain::CouponSource;

/// The counters of every shard, moved together by each issue: `left` never below zero is
/// what keeps `issued` from passing the shard's share (`issued + left` = its share).
pub const ISSUED: &str = "issued";
pub const LEFT: &str = "left";

/// A shard other than the first: its counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardCount {
    pub source_id: String,
    pub shard: u32,
    pub issued: u64,
    pub left: u64,
}

/// Which coupon a user got: the de-duplication record of one user's issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueRecord {
    pub coupon_id: String,
}

pub fn source_key(source_id: &str) -> Key {
    Key::new(format!("SOURCE#{source_id}"), "SOURCE")
}

/// The item of shard `shard` of the source (0: the source itself).
pub fn shard_item(source_id: &str, shard: u32) -> Key {
    shard_key(&source_key(source_id), shard)
}

/// Every source, oldest first (gsi1).
pub const SOURCES: &str = "SOURCES";

pub fn listing_key(source_id: &str, created_at: DateTime<Utc>) -> IndexKey {
    IndexKey::new(
        SOURCES,
        format!("{}#{source_id}", sortable_time(created_at)),
    )
}

pub fn issue_key(source_id: &str, user_id: &str) -> Key {
    Key::new(format!("SOURCE#{source_id}"), format!("USER#{user_id}"))
}

/// Each shard's `(issued, left)`, shard 0 from the source, the others from their items as
/// read (`others`, in shard order; a missing one counts nothing).
pub fn shard_counts(
    source: &CouponSource,
    others: &[Option<Item>],
) -> Result<Vec<(u64, u64)>, StoreError> {
    let mut counts = vec![(source.issued, source.left)];
    for item in others {
        counts.push(match item {
            Some(item) => {
                let shard: ShardCount = item.parse()?;
                (shard.issued, shard.left)
            }
            None => (0, 0),
        });
    }
    Ok(counts)
}
