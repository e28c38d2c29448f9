//! Group commit: one flush of sled's log at a time, shared by every caller waiting for one.
//!
//! sled 0.34 holds its global concurrency lock (shared) for the whole of a flush, I/O
//! included, and a transaction's commit takes that lock exclusively. With every answer
//! flushing on its own, some flush was always under way: each transaction (a minted reset,
//! a delivered mail) waited out the I/O of every flush in flight, and every write queued
//! behind the waiting transaction. Measured on 2 cores, 16 connections: forgot for known
//! addresses (one transaction per request, another per delivery) ran at 0.23× the rate for
//! strangers' addresses (none while the worker is behind). With one flush at a time a
//! transaction slips in between two flushes, and a caller whose write the running flush
//! does not cover waits for the next one, which it needed anyway.

use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;

/// Tickets for flushes (see the module's comment).
#[derive(Default)]
pub(super) struct GroupCommit {
    /// Tickets handed out: a caller takes one after its writes and before it waits.
    asked: AtomicU64,
    /// Every ticket up to this one is durable.
    done: AtomicU64,
    /// Held while a flush runs.
    running: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// Returns once everything the caller wrote before calling is durable.
    pub(super) async fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
        let ticket = self.asked.fetch_add(1, Ordering::AcqRel) + 1;
        let _running = self.running.lock().await;
        if self.done.load(Ordering::Acquire) >= ticket {
            return Ok(()); // a flush that began after this caller's writes has ended
        }
        // Every ticket handed out by now belongs to writes already made, so this flush
        // covers them all.
        let covers = self.asked.load(Ordering::Acquire);
        let db = db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|_| StoreError::Corrupt("the flush was interrupted".into()))??;
        self.done.fetch_max(covers, Ordering::AcqRel);
        Ok(())
    }
}
