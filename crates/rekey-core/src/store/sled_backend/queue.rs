//! The layout of a mail queue tree (the outbox, and the stand-in tree's mail): the mail under
//! sequence keys, its index by due time and its count, changed together in one transaction;
//! and what the store does to the outbox tree at open.

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::Store;
use crate::letters::Letter;
use crate::outbox::{DeadItem, MailKind, OutboxItem};
use crate::sealed::MailKey;
use crate::store::{decode, encode, seq_key, StoreError};

/// Puts a letter in the outbox inside a transaction (with the outbox's index and count, so
/// they change together with the mail), sealed with `key`.
pub fn enqueue_tx<E>(
    tree: &TransactionalTree,
    key: &MailKey,
    letter: &Letter,
    kind: MailKind,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(), ConflictableTransactionError<E>> {
    let id = tree.generate_id()?;
    let item = OutboxItem {
        id,
        kind,
        from: letter.from.clone(),
        to: letter.to.clone(),
        sealed: Some(key.seal(&letter.raw, &seq_key(id))),
        raw: None,
        created_at: now,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        expires_at,
    };
    put_tx(tree, &item)?;
    Ok(())
}

// The outbox tree holds the mail under 8-byte sequence keys and, after all of them (keys
// starting 0xFF), two things of its own: an index of the mail by (next attempt, id), so a pass
// reads only what is due, and the number of mails waiting, so the status need not count.
// They live in the same tree as the mail because mail is queued inside the callers'
// transactions, which name only this tree: index, count and mail change in one transaction,
// so a process killed at any moment leaves them agreeing.
pub(super) const ITEMS_END: &[u8] = b"\xff";
pub(super) const DUE_PREFIX: &[u8] = b"\xffdue/";
pub(super) const DUE_END: &[u8] = b"\xffdue0";
pub(super) const DEPTH: &[u8] = b"\xffdepth";
/// Set once the index and count cover every mail (data made before them get them at open).
const INDEXED: &[u8] = b"\xffindexed";

/// The index key of a mail due at `at`: times sort as numbers (the sign bit flipped).
fn due_key(at: i64, id: u64) -> Vec<u8> {
    let mut key = DUE_PREFIX.to_vec();
    key.extend_from_slice(&((at as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&seq_key(id));
    key
}

/// (next attempt, id) from an index key.
pub(super) fn parse_due_key(key: &[u8]) -> Result<(i64, u64), StoreError> {
    let rest = key
        .strip_prefix(DUE_PREFIX)
        .filter(|r| r.len() == 16)
        .ok_or_else(|| StoreError::Corrupt("a broken key in the outbox index".into()))?;
    let number = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("8 bytes"));
    Ok(((number(&rest[..8]) ^ (1 << 63)) as i64, number(&rest[8..])))
}

pub(super) fn read_depth(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

fn add_depth_tx(tree: &TransactionalTree, delta: i64) -> Result<(), UnabortableTransactionError> {
    let depth = read_depth(tree.get(DEPTH)?.as_deref()).saturating_add_signed(delta);
    tree.insert(DEPTH, &depth.to_be_bytes())?;
    Ok(())
}

/// Writes `item` into the queue (new, or in place of its earlier self) with its index entry,
/// keeping the count.
pub(super) fn put_tx(tree: &TransactionalTree, item: &OutboxItem) -> Result<(), UnabortableTransactionError> {
    match tree.insert(&seq_key(item.id), encode(item))? {
        Some(before) => {
            if let Ok(before) = decode::<OutboxItem>(&before) {
                tree.remove(due_key(before.next_attempt_at, item.id))?;
            }
        }
        None => add_depth_tx(tree, 1)?,
    }
    tree.insert(due_key(item.next_attempt_at, item.id), &[][..])?;
    Ok(())
}

/// Takes mail `id` out of the queue with its index entry, keeping the count. Says whether it
/// was still there.
pub(super) fn take_tx(tree: &TransactionalTree, id: u64) -> Result<bool, UnabortableTransactionError> {
    let Some(before) = tree.remove(&seq_key(id))? else {
        return Ok(false);
    };
    add_depth_tx(tree, -1)?;
    if let Ok(item) = decode::<OutboxItem>(&before) {
        tree.remove(due_key(item.next_attempt_at, id))?;
    }
    Ok(true)
}

/// Runs a transaction over one queue tree alone.
pub(super) fn in_queue<T>(
    tree: &sled::Tree,
    f: impl Fn(&TransactionalTree) -> Result<T, UnabortableTransactionError>,
) -> Result<T, StoreError> {
    tree.transaction(|t| f(t).map_err(ConflictableTransactionError::<()>::from))
        .map_err(|e| match e {
            TransactionError::Storage(e) => StoreError::Sled(e),
            TransactionError::Abort(()) => StoreError::Corrupt("an outbox change was abandoned".into()),
        })
}

/// Builds the due index and the count from the mail, once. Runs at open, before this
/// process queues anything; the transaction also checks the count it started from, so a
/// mail queued meanwhile makes it start over rather than be missed.
pub(super) fn index_if_needed(tree: &sled::Tree) -> Result<(), StoreError> {
    while tree.get(INDEXED)?.is_none() {
        let depth_seen = tree.get(DEPTH)?;
        let mut waiting = 0u64;
        let mut items = Vec::new();
        for entry in tree.range(..ITEMS_END) {
            waiting += 1;
            // An unreadable mail is counted but cannot be scheduled; it stays for a look.
            match decode::<OutboxItem>(&entry?.1) {
                Ok(item) => items.push(item),
                Err(e) => tracing::error!(error = %e, "an outbox mail cannot be read"),
            }
        }
        let stale: Vec<sled::IVec> = tree.range(DUE_PREFIX..DUE_END).keys().collect::<Result<_, _>>()?;
        let done = in_queue(tree, |t| {
            if t.get(DEPTH)? != depth_seen {
                return Ok(false);
            }
            for key in &stale {
                t.remove(key.as_ref())?;
            }
            for item in &items {
                t.insert(due_key(item.next_attempt_at, item.id), &[][..])?;
            }
            t.insert(DEPTH, &waiting.to_be_bytes())?;
            t.insert(INDEXED, &[1u8][..])?;
            Ok(true)
        })?;
        if done {
            tracing::info!(waiting, "outbox index built");
        }
    }
    Ok(())
}

/// The mail an index entry points at; an entry that no longer matches its mail (left by
/// an older version that did not keep the index) is dropped.
pub(super) fn indexed(tree: &sled::Tree, at: i64, id: u64) -> Result<Option<OutboxItem>, StoreError> {
    if let Some(item) = Store::get::<OutboxItem>(tree, seq_key(id))? {
        if item.next_attempt_at == at {
            return Ok(Some(item));
        }
    }
    in_queue(tree, |t| {
        let current = t.get(seq_key(id))?.and_then(|v| decode::<OutboxItem>(&v).ok());
        if current.is_none_or(|item| item.next_attempt_at != at) {
            t.remove(due_key(at, id))?;
        }
        Ok(())
    })?;
    Ok(None)
}

/// Readies the outbox of a store just opened: data made before the outbox kept its index and
/// count get them, and mail that older versions queued (or buried) in the clear is sealed.
/// A failure is logged: delivery still works from the mail itself, and the next open (or
/// pass, for the index) tries again.
pub(super) fn prepare(store: &Store) {
    if let Err(e) = index_if_needed(&store.outbox) {
        tracing::error!(error = %e, "the outbox index could not be built");
    }
    if let Err(e) = seal_clear_mail(store) {
        tracing::error!(error = %e, "mail queued in the clear could not be sealed");
    }
}

fn seal_clear_mail(store: &Store) -> Result<(), StoreError> {
    let in_clear = |v: &sled::IVec| String::from_utf8_lossy(v).contains("\"raw\"");
    let seal = |item: &mut OutboxItem| {
        if let Some(raw) = item.raw.take() {
            item.sealed = Some(store.mail_key.seal(raw.as_bytes(), &seq_key(item.id)));
        }
    };
    for entry in store.outbox.range(..ITEMS_END) {
        let (k, v) = entry?;
        if in_clear(&v) {
            let mut item: OutboxItem = decode(&v)?;
            seal(&mut item);
            // Only if unchanged meanwhile; otherwise the next open tries again.
            let _ = store.outbox.compare_and_swap(k, Some(v), Some(encode(&item)))?;
        }
    }
    for entry in store.dead.iter() {
        let (k, v) = entry?;
        if in_clear(&v) {
            let mut dead: DeadItem = decode(&v)?;
            seal(&mut dead.item);
            let _ = store.dead.compare_and_swap(k, Some(v), Some(encode(&dead)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_time_then_id_and_after_all_mail() {
        let times = [i64::MIN, -5, 0, 7, 1_700_000_000, i64::MAX];
        let keys: Vec<Vec<u8>> = times.iter().flat_map(|t| [due_key(*t, 1), due_key(*t, 2)]).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (t, key) in times.iter().flat_map(|t| [(*t, 1), (*t, 2)]).zip(&keys) {
            assert_eq!(parse_due_key(key).unwrap(), t);
            assert!(key.as_slice() >= DUE_PREFIX && key.as_slice() < DUE_END);
        }
        assert!(seq_key(u64::MAX >> 8).as_slice() < ITEMS_END && ITEMS_END <= DUE_PREFIX);
        assert!(ITEMS_END <= DEPTH && ITEMS_END <= INDEXED);
    }
}
