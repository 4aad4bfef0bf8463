//! Hot counts spread over shard items: a first-come coupon source, a flash sale's stock.
//!
//! One item takes about 1,000 write units a second on DynamoDB, and a transaction holds
//! the items it writes while it runs, so a crowd taking from one count is limited by that
//! one item however many requests arrive. A count of `Q` is therefore split, when it is
//! created, over `N` shard items, each in a partition of its own: shard 0 is the item
//! itself (so a count of one shard is stored as it always was), shard `i > 0` the item
//! `<pk>#SHARD#<i>` with the same sort key. A take picks a shard at random among those not
//! known to be short and moves to another when its shard turns out short; "none left" is
//! answered only when a read of every shard says so. The count is the sum of the shards.
//! Shards are never re-balanced: one that runs dry early is simply not picked.
//!
//! What a process knows of which shards are short ([`ShortShards`]) is kept for a second
//! and then read again, so that stock given back to a shard is found again soon.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::{DocStore, Item, Key};
use crate::errors::StoreError;

/// The most shards a count may have: one `BatchGetItem` reads them all, one transaction
/// can write them all.
pub const MAX_SHARDS: u32 = 100;
/// Takes a second one shard is planned for. A take is a transaction over the shard and a
/// record (two write units each): 50 takes use a tenth of the shard's 1,000 units a second,
/// and keep the time the shard is held by one transaction while another arrives low.
pub const TAKES_PER_SHARD_PER_SECOND: u64 = 50;
/// How long a process trusts what it learnt of a shard being short.
pub const REMEMBER_FOR: Duration = Duration::seconds(1);

/// The most takes a second an admin may say to expect of one count.
pub const MAX_EXPECTED_RATE: u64 = 1_000_000;

/// An expected rate as an admin sends it: none is 0 (an ordinary count); `None` when it is
/// negative or over [`MAX_EXPECTED_RATE`].
pub fn expected_rate(raw: Option<i64>) -> Option<u64> {
    match raw {
        None => Some(0),
        Some(r) => u64::try_from(r).ok().filter(|r| *r <= MAX_EXPECTED_RATE),
    }
}

/// How many shards a count of `quantity` needs for `takes_per_second` expected at its
/// peak: `⌈rate ÷ 50⌉`, at least 1, at most 100, and no more than there are units (a
/// shard starts with one at least).
pub fn shard_count(takes_per_second: u64, quantity: u64) -> u32 {
    let wanted = takes_per_second.div_ceil(TAKES_PER_SHARD_PER_SECOND).max(1);
    let most = quantity.clamp(1, u64::from(MAX_SHARDS));
    // At most MAX_SHARDS, so it fits.
    u32::try_from(wanted.min(most)).unwrap_or(MAX_SHARDS)
}

/// `total` split over `shards` as evenly as it goes (the first shards take the remainder).
pub fn split(total: u64, shards: u32) -> Vec<u64> {
    let n = u64::from(shards.max(1));
    (0..n)
        .map(|i| total / n + u64::from(i < total % n))
        .collect()
}

/// The item of shard `shard` of the count kept on `base` (shard 0 is `base` itself).
pub fn shard_key(base: &Key, shard: u32) -> Key {
    if shard == 0 {
        base.clone()
    } else {
        Key::new(format!("{}#SHARD#{shard}", base.pk), base.sk.clone())
    }
}

/// Every shard's item, in shard order.
pub fn shard_keys(base: &Key, shards: u32) -> Vec<Key> {
    (0..shards.max(1)).map(|i| shard_key(base, i)).collect()
}

/// How much of `want` to take from which shard, given what each holds (read a moment ago):
/// from the shards holding most first, so a take touches as few items as it can. `None`
/// when they do not hold `want` between them.
pub fn take_from(holdings: &[u64], want: u64) -> Option<Vec<(u32, u64)>> {
    let mut order: Vec<(u32, u64)> = (0u32..)
        .zip(holdings.iter().copied())
        .filter(|(_, held)| *held > 0)
        .collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut left = want;
    let mut takes = Vec::new();
    for (shard, held) in order {
        if left == 0 {
            break;
        }
        let take = held.min(left);
        takes.push((shard, take));
        left -= take;
    }
    (left == 0 && want > 0).then_some(takes)
}

/// What a process learnt of some counts (a policy, which shards are short), each for a
/// while: a small map with an expiry, started afresh when it holds too many.
#[derive(Debug)]
pub struct Recent<T> {
    entries: Mutex<HashMap<String, (T, DateTime<Utc>)>>,
    keep_for: Duration,
}

/// Counts remembered at most; past it the memory starts afresh (a process sees few hot
/// counts at once).
const MAX_REMEMBERED: usize = 10_000;

impl<T: Clone> Recent<T> {
    pub fn new(keep_for: Duration) -> Recent<T> {
        Recent {
            entries: Mutex::new(HashMap::new()),
            keep_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (T, DateTime<Utc>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What was learnt of `key`, if still fresh at `now`.
    pub fn get(&self, key: &str, now: DateTime<Utc>) -> Option<T> {
        self.lock()
            .get(key)
            .filter(|(_, at)| now >= *at && now - *at < self.keep_for)
            .map(|(value, _)| value.clone())
    }

    /// Learnt at `now`.
    pub fn put(&self, key: &str, value: T, now: DateTime<Utc>) {
        let mut entries = self.lock();
        if entries.len() >= MAX_REMEMBERED && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_owned(), (value, now));
    }

    /// Changes what is known of `key` (nothing if nothing is).
    pub fn update(&self, key: &str, change: impl FnOnce(&mut T)) {
        if let Some((value, _)) = self.lock().get_mut(key) {
            change(value);
        }
    }

    /// Forgets `key` (this process changed it).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// Which shards of each count this process saw short (of one unit: empty), trusted for
/// [`REMEMBER_FOR`].
pub type ShortShards = Recent<BTreeSet<u32>>;

impl ShortShards {
    pub fn for_a_while() -> ShortShards {
        Recent::new(REMEMBER_FOR)
    }

    /// What a read of every shard of `count` at `now` said each holds: the empty ones are
    /// short.
    pub fn learn(&self, count: &str, holdings: &[u64], now: DateTime<Utc>) {
        let empty = (0u32..)
            .zip(holdings)
            .filter(|(_, held)| **held == 0)
            .map(|(shard, _)| shard)
            .collect();
        self.put(count, empty, now);
    }

    /// Whether every one of `shards` was seen short (within the memory's second).
    pub fn all_short(&self, count: &str, shards: u32, now: DateTime<Utc>) -> bool {
        self.get(count, now)
            .is_some_and(|short| short.len() >= shards.max(1) as usize)
    }

    /// A take from `shard` of `count` was refused at `now`: it is short.
    pub fn mark_short(&self, count: &str, shard: u32, now: DateTime<Utc>) {
        let mut entries = self.lock();
        match entries.get_mut(count) {
            Some((short, at)) if now >= *at && now - *at < self.keep_for => {
                short.insert(shard);
            }
            _ => {
                drop(entries);
                self.put(count, BTreeSet::from([shard]), now);
            }
        }
    }
}

/// How a change of `delta` to a count held as `holdings` (one per shard) moves its shards:
/// an addition spread over them all, a removal taken from the fullest first. Every move is
/// non-zero; `None` when the shards do not hold what is removed.
pub fn spread(holdings: &[u64], delta: i64) -> Option<Vec<(u32, i64)>> {
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let moves: Vec<(u32, i64)> = if delta >= 0 {
        let shards = u32::try_from(holdings.len()).unwrap_or(MAX_SHARDS);
        (0u32..)
            .zip(split(delta.unsigned_abs(), shards))
            .map(|(shard, part)| (shard, signed(part)))
            .collect()
    } else {
        take_from(holdings, delta.unsigned_abs())?
            .into_iter()
            .map(|(shard, part)| (shard, -signed(part)))
            .collect()
    };
    Some(moves.into_iter().filter(|(_, d)| *d != 0).collect())
}

/// The items of shards 1 to `shards − 1` of the count kept on `base` (shard 0 is the item
/// itself, which the caller has): one `get_many`, or nothing to read for one shard.
pub async fn other_shards(
    store: &dyn DocStore,
    base: &Key,
    shards: u32,
) -> Result<Vec<Option<Item>>, StoreError> {
    if shards <= 1 {
        return Ok(Vec::new());
    }
    store.get_many(&shard_keys(base, shards)[1..]).await
}

/// A shard of `shards` not in `short`, chosen by `seed` (a request's own id: ids are random,
/// so the choice is, yet a run of the deterministic simulation stays the same); `None` when
/// every one is short.
pub fn pick(shards: u32, short: &BTreeSet<u32>, seed: &str) -> Option<u32> {
    let open: Vec<u32> = (0..shards.max(1)).filter(|s| !short.contains(s)).collect();
    if open.is_empty() {
        return None;
    }
    // FNV-1a: a few lines, well spread for any text.
    let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let at = usize::try_from(hash % open.len() as u64).unwrap_or(0);
    Some(open[at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_count_follows_the_expected_rate_within_its_bounds() {
        assert_eq!(shard_count(0, 1_000), 1);
        assert_eq!(shard_count(50, 1_000), 1);
        assert_eq!(shard_count(51, 1_000), 2);
        assert_eq!(shard_count(1_000, 1_000), 20);
        // 10,000 a second wants 200: at most 100.
        assert_eq!(shard_count(10_000, 1_000), MAX_SHARDS);
        // No shard starts empty.
        assert_eq!(shard_count(10_000, 35), 35);
        assert_eq!(shard_count(10_000, 0), 1);
    }

    #[test]
    fn an_expected_rate_is_from_0_to_a_million() {
        assert_eq!(expected_rate(None), Some(0));
        assert_eq!(expected_rate(Some(10_000)), Some(10_000));
        assert_eq!(expected_rate(Some(-1)), None);
        assert_eq!(expected_rate(Some(1_000_001)), None);
    }

    #[test]
    fn a_split_is_even_and_adds_up() {
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(split(7, 0), vec![7]);
        for (total, shards) in [(1_000, 100), (999, 7), (0, 5)] {
            let parts = split(total, shards);
            assert_eq!(parts.len(), shards as usize);
            assert_eq!(parts.iter().sum::<u64>(), total);
            assert!(parts.iter().max().unwrap_or(&0) - parts.iter().min().unwrap_or(&0) <= 1);
        }
    }

    #[test]
    fn shard_zero_is_the_item_itself_and_the_others_have_partitions_of_their_own() {
        let base = Key::new("SOURCE#s", "SOURCE");
        assert_eq!(shard_key(&base, 0), base);
        assert_eq!(shard_key(&base, 3), Key::new("SOURCE#s#SHARD#3", "SOURCE"));
        let keys = shard_keys(&base, 3);
        let partitions: BTreeSet<&str> = keys.iter().map(|k| k.pk.as_str()).collect();
        assert_eq!(partitions.len(), 3);
    }

    #[test]
    fn a_take_uses_the_fullest_shards_and_only_what_is_there() {
        assert_eq!(take_from(&[1, 5, 2], 6), Some(vec![(1, 5), (2, 1)]));
        assert_eq!(take_from(&[1, 5, 2], 8), Some(vec![(1, 5), (2, 2), (0, 1)]));
        assert_eq!(take_from(&[1, 5, 2], 9), None);
        assert_eq!(take_from(&[0, 0], 1), None);
        assert_eq!(take_from(&[3], 0), None);
    }

    #[test]
    fn a_change_is_spread_over_the_shards_or_taken_from_the_fullest() {
        assert_eq!(spread(&[4, 0, 1], 5), Some(vec![(0, 2), (1, 2), (2, 1)]));
        assert_eq!(spread(&[4, 0, 1], 1), Some(vec![(0, 1)]));
        assert_eq!(spread(&[4, 0, 1], -5), Some(vec![(0, -4), (2, -1)]));
        assert_eq!(spread(&[4, 0, 1], -6), None);
        assert_eq!(spread(&[4, 0, 1], 0), Some(vec![]));
        assert_eq!(spread(&[7], 3), Some(vec![(0, 3)]));
    }

    #[test]
    fn what_a_read_of_every_shard_said_is_learnt_as_the_empty_ones() {
        let memory = ShortShards::for_a_while();
        let now = Utc::now();
        memory.learn("s", &[0, 3, 0], now);
        assert_eq!(memory.get("s", now), Some(BTreeSet::from([0, 2])));
        assert!(!memory.all_short("s", 3, now));
        memory.mark_short("s", 1, now);
        assert!(memory.all_short("s", 3, now));
        assert!(!memory.all_short("s", 3, now + REMEMBER_FOR));
        assert!(!memory.all_short("never", 1, now));
    }

    #[test]
    fn a_pick_avoids_short_shards_and_finds_none_when_all_are() {
        let short = BTreeSet::from([0, 2]);
        for n in 0..100 {
            assert_eq!(pick(3, &short, &format!("request-{n}")), Some(1));
        }
        assert_eq!(pick(3, &BTreeSet::from([0, 1, 2]), "r"), None);
        assert_eq!(
            pick(3, &BTreeSet::new(), "r"),
            pick(3, &BTreeSet::new(), "r")
        );
        // Spread: 4,000 ids over 4 shards, each about a quarter.
        let mut counts = [0u32; 4];
        for _ in 0..4_000 {
            if let Some(s) = pick(4, &BTreeSet::new(), &uuid::Uuid::new_v4().to_string()) {
                counts[s as usize] += 1;
            }
        }
        assert!(
            counts.iter().all(|c| (800..1_200).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn what_was_learnt_of_short_shards_is_trusted_for_a_second() {
        let memory = ShortShards::for_a_while();
        let t0 = Utc::now();
        assert_eq!(memory.get("s", t0), None);
        memory.put("s", BTreeSet::from([1]), t0);
        memory.mark_short("s", 2, t0);
        assert_eq!(memory.get("s", t0), Some(BTreeSet::from([1, 2])));
        assert_eq!(memory.get("s", t0 + REMEMBER_FOR), None);
        // Learnt "in the future" (a clock moved back) is not trusted either.
        assert_eq!(memory.get("s", t0 - Duration::milliseconds(1)), None);
        memory.forget("s");
        assert_eq!(memory.get("s", t0), None);
        // A refusal of a count never read is remembered from then on.
        memory.mark_short("t", 0, t0);
        assert_eq!(memory.get("t", t0), Some(BTreeSet::from([0])));
        assert_eq!(memory.get("t", t0 + REMEMBER_FOR), None);
    }
}
