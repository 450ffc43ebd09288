//! A hash map keyed by byte strings whose resizes stay short: past a few
//! thousand entries it splits into shards, so growing or shrinking rehashes
//! one shard, never a million entries at once (one client's subscriptions by
//! sid, one trie level's children).

use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;

/// Entries at which a single table splits into shards (a split rehashes
/// this many once; a shard's own resizes stay around this size per million).
const SPLIT_AT: usize = 8 * 1024;
/// Shards of a split map: a resize rehashes at most ~1/64 of the entries.
const SHARDS: usize = 64;
/// Which hash bits pick the shard: below hashbrown's control byte (the top
/// seven bits) and above the bucket index bits a shard uses, so shard
/// choice does not correlate with either.
const SHARD_SHIFT: u32 = 32;
/// Shard `i` takes a share of the keys proportional to `SHARDS + i`: with
/// equal shares every shard would reach its doubling point at the same
/// moment, and the rehashes would come together as one long pause; with
/// shares spread over a factor of two, they come one at a time.
const SHARD_BOUNDS: [u32; SHARDS] = shard_bounds();

const fn shard_bounds() -> [u32; SHARDS] {
    let total = (SHARDS * SHARDS + SHARDS * (SHARDS - 1) / 2) as u64;
    let mut bounds = [0u32; SHARDS];
    let mut cumulative = 0u64;
    let mut i = 0;
    while i < SHARDS {
        cumulative += (SHARDS + i) as u64;
        // The last bound is 2^32: every 32-bit value falls below it.
        bounds[i] = ((cumulative << 32) / total - 1) as u32;
        i += 1;
    }
    bounds
}

type Table<V> = HashTable<(Box<[u8]>, V)>;

/// A map from byte strings to `V` with bounded resize pauses.
pub struct BytesMap<V> {
    hasher: DefaultHashBuilder,
    len: usize,
    tables: Tables<V>,
}

enum Tables<V> {
    One(Table<V>),
    Sharded(Box<[Table<V>]>),
}

impl<V> Default for BytesMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for BytesMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (String::from_utf8_lossy(k), v)))
            .finish()
    }
}

impl<V> BytesMap<V> {
    /// An empty map; allocates nothing until the first insert.
    pub fn new() -> Self {
        BytesMap {
            hasher: DefaultHashBuilder::default(),
            len: 0,
            tables: Tables::One(HashTable::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn table(&self, hash: u64) -> &Table<V> {
        match &self.tables {
            Tables::One(t) => t,
            Tables::Sharded(shards) => &shards[shard_of(hash)],
        }
    }

    fn table_mut(&mut self, hash: u64) -> &mut Table<V> {
        match &mut self.tables {
            Tables::One(t) => t,
            Tables::Sharded(shards) => &mut shards[shard_of(hash)],
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let hash = self.hash(key);
        self.table(hash)
            .find(hash, |(k, _)| **k == *key)
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let hash = self.hash(key);
        self.table_mut(hash)
            .find_mut(hash, |(k, _)| **k == *key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The value under `key`, inserting `make()` (and copying the key) only
    /// when it is absent.
    pub fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> &mut V {
        self.split_if_due();
        let hash = self.hash(key);
        let hasher = self.hasher.clone();
        let rehash = move |(k, _): &(Box<[u8]>, V)| hasher.hash_one(&**k);
        let table = match &mut self.tables {
            Tables::One(t) => t,
            Tables::Sharded(shards) => &mut shards[shard_of(hash)],
        };
        match table.entry(hash, |(k, _)| **k == *key, rehash) {
            Entry::Occupied(o) => &mut o.into_mut().1,
            Entry::Vacant(v) => {
                self.len += 1;
                &mut v.insert((key.into(), make())).into_mut().1
            }
        }
    }

    /// Inserts `value` under `key`; returns the value it replaced.
    pub fn insert(&mut self, key: Box<[u8]>, value: V) -> Option<V> {
        self.split_if_due();
        let hash = self.hash(&key);
        let hasher = self.hasher.clone();
        let rehash = move |(k, _): &(Box<[u8]>, V)| hasher.hash_one(&**k);
        let table = match &mut self.tables {
            Tables::One(t) => t,
            Tables::Sharded(shards) => &mut shards[shard_of(hash)],
        };
        match table.entry(hash, |(k, _)| *k == key, rehash) {
            Entry::Occupied(mut o) => Some(std::mem::replace(&mut o.get_mut().1, value)),
            Entry::Vacant(v) => {
                v.insert((key, value));
                self.len += 1;
                None
            }
        }
    }

    /// Removes `key`; a table left mostly empty gives memory back (one
    /// table or one shard: a bounded rehash).
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let hash = self.hash(key);
        let hasher = self.hasher.clone();
        let table = self.table_mut(hash);
        let (_, value) = table
            .find_entry(hash, |(k, _)| **k == *key)
            .ok()?
            .remove()
            .0;
        if table.capacity() > 64 && table.len() * 4 < table.capacity() {
            table.shrink_to(table.len() * 2, |(k, _)| hasher.hash_one(&**k));
        }
        self.len -= 1;
        Some(value)
    }

    /// Splits the single table into shards once it is big enough that its
    /// next doubling would be a long pause.
    fn split_if_due(&mut self) {
        let Tables::One(table) = &mut self.tables else {
            return;
        };
        if table.len() < SPLIT_AT {
            return;
        }
        let mut shards: Box<[Table<V>]> = (0..SHARDS).map(|_| HashTable::new()).collect();
        let hasher = &self.hasher;
        for entry in std::mem::take(table) {
            let hash = hasher.hash_one(&*entry.0);
            shards[shard_of(hash)].insert_unique(hash, entry, |(k, _)| hasher.hash_one(&**k));
        }
        self.tables = Tables::Sharded(shards);
    }

    fn tables(&self) -> &[Table<V>] {
        match &self.tables {
            Tables::One(t) => std::slice::from_ref(t),
            Tables::Sharded(shards) => shards,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.tables()
            .iter()
            .flat_map(|t| t.iter().map(|(k, v)| (&**k, v)))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.tables().iter().flat_map(|t| t.iter().map(|(_, v)| v))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        let tables: &mut [Table<V>] = match &mut self.tables {
            Tables::One(t) => std::slice::from_mut(t),
            Tables::Sharded(shards) => shards,
        };
        tables.iter_mut().flat_map(|t| t.iter_mut().map(|(_, v)| v))
    }
}

/// The shard of a hash: where 32 of its bits fall among the shards' shares.
fn shard_of(hash: u64) -> usize {
    let point = (hash >> SHARD_SHIFT) as u32;
    SHARD_BOUNDS.partition_point(|&bound| bound < point)
}

impl<V> IntoIterator for BytesMap<V> {
    type Item = (Box<[u8]>, V);
    type IntoIter = IntoIter<V>;

    /// Consumes the map entry by entry, one table at a time.
    fn into_iter(self) -> IntoIter<V> {
        let tables = match self.tables {
            Tables::One(t) => vec![t],
            Tables::Sharded(shards) => shards.into_vec(),
        };
        IntoIter {
            left: self.len,
            tables: tables.into_iter(),
            current: None,
        }
    }
}

/// The owning iterator of a [`BytesMap`]; knows how many entries are left.
pub struct IntoIter<V> {
    left: usize,
    tables: std::vec::IntoIter<Table<V>>,
    current: Option<hashbrown::hash_table::IntoIter<(Box<[u8]>, V)>>,
}

impl<V> Iterator for IntoIter<V> {
    type Item = (Box<[u8]>, V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.current.as_mut().and_then(Iterator::next) {
                self.left -= 1;
                return Some(entry);
            }
            self.current = Some(self.tables.next()?.into_iter());
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<V> ExactSizeIterator for IntoIter<V> {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn shard_shares_cover_every_hash() {
        assert_eq!(shard_of(0), 0);
        assert_eq!(shard_of(u64::MAX), SHARDS - 1);
        assert_eq!(SHARD_BOUNDS[SHARDS - 1], u32::MAX);
        // The largest share is about twice the smallest.
        let share = |i: usize| SHARD_BOUNDS[i] - if i == 0 { 0 } else { SHARD_BOUNDS[i - 1] };
        let ratio = f64::from(share(SHARDS - 1)) / f64::from(share(0));
        assert!((1.9..2.1).contains(&ratio), "{ratio}");
    }

    #[test]
    fn splits_and_keeps_every_entry() {
        let mut map = BytesMap::new();
        let n = SPLIT_AT * 3;
        for i in 0..n {
            assert_eq!(map.insert(i.to_string().into_bytes().into(), i), None);
        }
        assert!(matches!(map.tables, Tables::Sharded(_)));
        assert_eq!(map.len(), n);
        for i in 0..n {
            assert_eq!(map.get(i.to_string().as_bytes()), Some(&i));
        }
        for i in (0..n).step_by(2) {
            assert_eq!(map.remove(i.to_string().as_bytes()), Some(i));
        }
        assert_eq!(map.len(), n / 2);
        let mut rest: Vec<usize> = map.into_iter().map(|(_, v)| v).collect();
        rest.sort();
        assert_eq!(rest, (1..n).step_by(2).collect::<Vec<_>>());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Upsert(u16),
        Remove(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Keys from a range wide enough to cross the split point.
        let key = 0..(SPLIT_AT as u16 * 2);
        prop_oneof![
            (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            key.clone().prop_map(Op::Upsert),
            key.prop_map(Op::Remove),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn agrees_with_a_btreemap(ops in prop::collection::vec(op(), 0..40_000)) {
            let mut map = BytesMap::new();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let key = k.to_be_bytes();
                        prop_assert_eq!(map.insert(key.into(), v), model.insert(key, v));
                    }
                    Op::Upsert(k) => {
                        let key = k.to_be_bytes();
                        *map.get_or_insert_with(&key, || 0) += 1;
                        *model.entry(key).or_insert(0) += 1;
                    }
                    Op::Remove(k) => {
                        let key = k.to_be_bytes();
                        prop_assert_eq!(map.remove(&key), model.remove(&key));
                    }
                }
                prop_assert_eq!(map.len(), model.len());
            }
            for (k, v) in &model {
                prop_assert_eq!(map.get(k), Some(v));
            }
            let mut all: Vec<(Vec<u8>, u32)> =
                map.into_iter().map(|(k, v)| (k.into_vec(), v)).collect();
            all.sort();
            let want: Vec<(Vec<u8>, u32)> = model.into_iter().map(|(k, v)| (k.to_vec(), v)).collect();
            prop_assert_eq!(all, want);
        }
    }
}
