//! The worker: passes over the due mail, the server-wide hold after trouble with the
//! server, dead letters for refused mail, and the stand-ins' rehearsals.

use super::queue::{in_queue, parse_due_key, put_tx, read_depth, take_tx, DEPTH, DUE_END, DUE_PREFIX};
use super::*;

const BACKOFF_BASE: i64 = 10;
const BACKOFF_CAP: i64 = 30 * 60;

/// Seconds to wait after the `attempts`-th failure: 10 s doubling to 30 min, with jitter
/// (a random point in the upper half) so a recovered server is not hit by every mail at once.
pub fn backoff(attempts: u32) -> i64 {
    let full = BACKOFF_BASE
        .saturating_mul(1 << attempts.min(20).saturating_sub(1))
        .min(BACKOFF_CAP);
    rand::thread_rng().gen_range(full / 2..=full)
}

impl Outbox {
    pub(super) fn server_hold(&self) -> Result<Option<ServerHold>, StoreError> {
        Store::get(&self.store.meta, SERVER_HOLD)
    }

    /// Server-level trouble: the whole queue waits, longer after every failure in a row.
    /// One record for the queue, so a long backlog costs one write, not one per mail.
    fn hold_for_server(&self, why: &str, now: i64) -> Result<i64, StoreError> {
        let failures = self.server_hold()?.unwrap_or_default().failures.saturating_add(1);
        let wait = backoff(failures);
        let hold = ServerHold {
            failures,
            until: now + wait,
        };
        let mut batch = sled::Batch::default();
        batch.insert(SERVER_HOLD, encode(&hold));
        batch.insert(LAST_ERROR, why.as_bytes());
        self.store.meta.apply_batch(batch)?;
        self.store.bump("outbox.failures")?;
        tracing::warn!(failures, retry_in = wait, reason = %why, "mail server unavailable; the queue waits");
        Ok(hold.until)
    }

    /// One pass: sends every mail that is due. Returns what happened and, when mail remains
    /// that is not due yet, the time it will be.
    pub async fn deliver_due(&self) -> Result<(DeliveryReport, Option<i64>), StoreError> {
        self.index_if_needed()?;
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let (due, next) = self.due(now)?;
            let expired_before = report.expired;
            let due = self.bury_expired(due, now, &mut report)?;
            if due.is_empty() && report.expired > expired_before {
                continue; // a batch of expired mail may hide live mail behind it
            }
            if due.is_empty() {
                return Ok((report, next));
            }
            if let Some(hold) = self.server_hold()?.filter(|h| h.until > now) {
                return Ok((report, Some(hold.until)));
            }
            if let Err(trouble) = self.mailer.check().await {
                report.deferred += due.len();
                let until = self.hold_for_server(&trouble.to_string(), self.clock.now())?;
                return Ok((report, Some(until)));
            }
            let batch = self.send_batch(due, &mut report).await?;
            if let Some(until) = batch.held_until {
                return Ok((report, Some(until)));
            }
            if !batch.progressed {
                return Ok((report, self.due(self.clock.now())?.1));
            }
        }
    }

    /// Dead-letters the reset mail whose link expired (no server needed for that) and
    /// returns the rest.
    fn bury_expired(
        &self,
        due: Vec<OutboxItem>,
        now: i64,
        report: &mut DeliveryReport,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut live = Vec::with_capacity(due.len());
        for item in due {
            if item.expires_at.is_some_and(|e| e <= now) {
                self.bury(item, "the reset link expired before the mail could be delivered", now)?;
                report.expired += 1;
            } else {
                live.push(item);
            }
        }
        Ok(live)
    }

    /// Sends `due`, `concurrency` at a time. At the first sign of server-level trouble no
    /// further send starts (those in flight finish) and the queue is held for the server.
    async fn send_batch(&self, due: Vec<OutboxItem>, report: &mut DeliveryReport) -> Result<Batch, StoreError> {
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut sends = tokio::task::JoinSet::new();
        for item in due {
            let (mailer, gate, stop) = (self.mailer.clone(), gate.clone(), stop.clone());
            let message = self.message(&item);
            sends.spawn(async move {
                let _permit = gate.acquire_owned().await;
                if stop.load(Ordering::SeqCst) {
                    return (item, None);
                }
                let message = match message {
                    Ok(message) => message,
                    Err(why) => return (item, Some(Err(SendError::Rejected(why)))),
                };
                let result = mailer.send(&item.from, std::slice::from_ref(&item.to), &message).await;
                if matches!(result, Err(SendError::ServerUnavailable(_))) {
                    stop.store(true, Ordering::SeqCst);
                }
                (item, Some(result))
            });
        }
        let mut batch = Batch::default();
        let mut trouble: Option<String> = None;
        while let Some(joined) = sends.join_next().await {
            let Ok((item, result)) = joined else { continue };
            match result {
                // Not tried, or the server failed it: the mail stays as it is, due.
                None => report.deferred += 1,
                Some(Err(SendError::ServerUnavailable(why))) => {
                    report.deferred += 1;
                    trouble.get_or_insert(why);
                }
                Some(result) => {
                    if self.record(item, result, report)? {
                        batch.progressed = true;
                        // Make "sent" stable at once: a process killed before sled's own
                        // flush (every half second) would send this mail again. At least once
                        // is the promise; this keeps "more than once" rare.
                        self.store.flush().await?;
                    }
                }
            }
        }
        if let Some(why) = trouble {
            batch.held_until = Some(self.hold_for_server(&why, self.clock.now())?);
        }
        Ok(batch)
    }

    /// Writes down what the server said about one message. Returns whether it left the queue.
    fn record(
        &self,
        item: OutboxItem,
        result: Result<(), SendError>,
        report: &mut DeliveryReport,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        match result {
            Ok(()) => {
                in_queue(&self.store.outbox, |t| take_tx(t, item.id))?;
                self.store.bump("outbox.delivered")?;
                // The server works again: the last problem and the shared backoff are over.
                let mut batch = sled::Batch::default();
                batch.remove(LAST_ERROR);
                batch.remove(SERVER_HOLD);
                self.store.meta.apply_batch(batch)?;
                tracing::info!(id = item.id, kind = ?item.kind, "mail delivered");
                report.sent += 1;
                Ok(true)
            }
            Err(SendError::Rejected(why)) => {
                tracing::warn!(id = item.id, reason = %why, "mail refused for good");
                self.store.meta.insert(LAST_ERROR, why.as_bytes())?;
                self.store.bump("outbox.failures")?;
                self.bury(item, &why, now)?;
                report.rejected += 1;
                Ok(true)
            }
            // (Server trouble holds the whole queue before it gets here; were it to come
            // here, putting off this one mail is still safe.)
            Err(SendError::Retry(why) | SendError::ServerUnavailable(why)) => {
                let mut item = item;
                item.attempts += 1;
                let wait = backoff(item.attempts);
                item.next_attempt_at = now + wait;
                tracing::warn!(id = item.id, attempts = item.attempts, retry_in = wait, reason = %why, "mail deferred");
                item.last_error = Some(why.clone());
                self.store.meta.insert(LAST_ERROR, why.as_bytes())?;
                self.store.bump("outbox.failures")?;
                // Only update it if it is still queued: never bring back a removed mail.
                in_queue(&self.store.outbox, |t| {
                    if t.get(seq_key(item.id))?.is_some() {
                        put_tx(t, &item)?;
                    }
                    Ok(())
                })?;
                report.deferred += 1;
                Ok(false)
            }
        }
    }

    fn bury(&self, mut item: OutboxItem, reason: &str, now: i64) -> Result<(), StoreError> {
        let key = seq_key(item.id);
        let id = item.id;
        // A dead reset or verification mail keeps no link: nobody will receive it, and whoever
        // needs one asks again. Other mail keeps its sealed message, for `outbox retry`.
        if matches!(item.kind, MailKind::Reset | MailKind::Verify) {
            item.sealed = None;
            item.raw = None;
        }
        let dead = DeadItem {
            item,
            reason: reason.to_string(),
            at: now,
        };
        let event = AuditEvent::new(
            now,
            "mail_dead",
            None,
            None,
            format!("mail {} not delivered: {reason}", dead.item.id),
        );
        (&self.store.outbox, &self.store.dead, &self.store.audit)
            .transaction(|(o, d, a)| {
                take_tx(o, id)?;
                d.insert(&key, encode(&dead))?;
                event.append_tx(a)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| StoreError::Corrupt(format!("{e:?}")))
    }

    /// Stand-ins' mail waiting to be rehearsed.
    pub fn stand_ins_waiting(&self) -> u64 {
        read_depth(self.store.stand_ins.get(DEPTH).ok().flatten().as_deref())
    }

    /// Goes through the motions of delivering the stand-ins' mail, which reset requests that
    /// get no mail leave in the stand-in tree (see `Rekey::mint_reset`): as a pass does, it
    /// checks the server, opens each message, rehearses its send, takes it out of the queue
    /// and flushes. Nothing reaches the stranger: the server sees only the checks, or, when
    /// the operator named a sink, a message to the sink. While the server is
    /// held or cannot be reached they wait, as mail does, until their link would expire.
    /// Returns how many went.
    pub async fn rehearse(&self) -> Result<usize, StoreError> {
        let tree = &self.store.stand_ins;
        let now = self.clock.now();
        let mut due = Vec::new();
        for key in tree.range(DUE_PREFIX..DUE_END).keys() {
            let (_, id) = parse_due_key(&key?)?;
            if let Some(item) = Store::get::<OutboxItem>(tree, seq_key(id))? {
                due.push(item);
            }
            if due.len() == BATCH {
                break;
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        let held = self.server_hold()?.is_some_and(|h| h.until > now);
        let reachable = !held && self.mailer.check().await.is_ok();
        let mut n = 0;
        for item in due {
            let expired = item.expires_at.is_some_and(|e| e <= now);
            if !expired {
                if !reachable {
                    continue;
                }
                if let Ok(message) = self.message(&item) {
                    self.mailer.rehearse(&item.from, &message).await;
                }
            }
            in_queue(tree, |t| take_tx(t, item.id))?;
            self.store.bump("outbox.stand_ins")?;
            self.store.flush().await?;
            n += 1;
        }
        Ok(n)
    }

    /// Delivers until `shutdown` turns true: after every pass it sleeps until the next mail
    /// is due, new mail is queued, or 30 seconds pass (a clock moved by tests is seen then).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.deliver_due().await {
                Ok((_, Some(next))) => (next - self.clock.now()).clamp(0, 30),
                Ok((_, None)) => 30,
                Err(e) => {
                    tracing::error!(error = %e, "outbox pass failed");
                    5
                }
            };
            if let Err(e) = self.rehearse().await {
                tracing::error!(error = %e, "the stand-ins' pass failed");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(wait as u64)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for attempt in 1..30 {
            let b = backoff(attempt);
            let full = (10i64 << (attempt - 1).min(20)).min(1800);
            assert!(b >= full / 2 && b <= full, "attempt {attempt}: {b}");
        }
        assert!(backoff(1) <= 10);
        assert!(backoff(25) >= 900);
    }
}
