//! The worker: passes over the due mail, the server-wide hold after trouble with the
//! server, dead letters for refused mail, and the stand-ins' rehearsals.

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
    /// One pass: sends every mail that is due. Returns what happened and, when mail remains
    /// that is not due yet, the time it will be.
    pub async fn deliver_due(&self) -> Result<(DeliveryReport, Option<i64>), Error> {
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let due = self
                .store
                .claim_mail(self.claim_size(), now, now + self.lease_secs())
                .await?;
            let expired_before = report.expired;
            let due = self.bury_expired(due, now, &mut report).await?;
            if due.is_empty() && report.expired > expired_before {
                continue; // a batch of expired mail may hide live mail behind it
            }
            if due.is_empty() {
                return Ok((report, self.store.next_mail_due(now).await?));
            }
            if let Some(until) = self.store.server_hold().await?.filter(|until| *until > now) {
                self.release(&due).await?;
                return Ok((report, Some(until)));
            }
            if let Err(trouble) = self.mailer.check().await {
                self.release(&due).await?;
                report.deferred += self.store.due_mail(now, BATCH).await?;
                let until = self.hold_for_server(&trouble.to_string()).await?;
                return Ok((report, Some(until)));
            }
            let batch = self.send_batch(due, &mut report).await?;
            if let Some(until) = batch.held_until {
                // The claim's untouched mail was counted; the rest of the queue (up to a
                // batch's worth, counted) waits too.
                let waiting = self.store.due_mail(self.clock.now(), BATCH).await?;
                report.deferred += waiting.saturating_sub(batch.untouched);
                return Ok((report, Some(until)));
            }
            if !batch.progressed {
                let now = self.clock.now();
                return Ok((report, self.store.next_mail_due(now).await?));
            }
        }
    }

    /// Gives claimed mail back untouched, due as it was.
    async fn release(&self, items: &[OutboxItem]) -> Result<(), Error> {
        let ids: Vec<u64> = items.iter().map(|item| item.id).collect();
        self.store.release_mail(&ids).await
    }

    /// Server-level trouble: the whole queue waits, longer after every failure in a row.
    /// One record for the queue, so a long backlog costs one write, not one per mail.
    async fn hold_for_server(&self, why: &str) -> Result<i64, Error> {
        let now = self.clock.now();
        let until = self.store.hold_for_server(why, now).await?;
        tracing::warn!(retry_in = until - now, reason = %why, "mail server unavailable; the queue waits");
        Ok(until)
    }

    /// Dead-letters the reset mail whose link expired (no server needed for that) and
    /// returns the rest.
    async fn bury_expired(
        &self,
        due: Vec<OutboxItem>,
        now: i64,
        report: &mut DeliveryReport,
    ) -> Result<Vec<OutboxItem>, Error> {
        let mut live = Vec::with_capacity(due.len());
        for item in due {
            if item.expires_at.is_some_and(|e| e <= now) {
                self.bury(
                    item,
                    "the reset link expired before the mail could be delivered",
                    now,
                    false,
                )
                .await?;
                report.expired += 1;
            } else {
                live.push(item);
            }
        }
        Ok(live)
    }

    /// Sends `due`, `concurrency` at a time. At the first sign of server-level trouble no
    /// further send starts (those in flight finish) and the queue is held for the server.
    async fn send_batch(&self, due: Vec<OutboxItem>, report: &mut DeliveryReport) -> Result<Batch, Error> {
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
        let mut untouched = Vec::new();
        while let Some(joined) = sends.join_next().await {
            let Ok((item, result)) = joined else { continue };
            match result {
                // Not tried, or the server failed it: the mail stays as it is, due.
                None => {
                    report.deferred += 1;
                    untouched.push(item);
                }
                Some(Err(SendError::ServerUnavailable(why))) => {
                    report.deferred += 1;
                    untouched.push(item);
                    trouble.get_or_insert(why);
                }
                Some(result) => {
                    if self.record(item, result, report).await? {
                        batch.progressed = true;
                    }
                }
            }
        }
        if batch.progressed {
            // Make "sent" stable at once: a process killed before sled's own flush (every
            // half second) would send the claim's mail again. At least once is the promise;
            // this keeps "more than once" rare. Once per claim, not per mail: a flush per mail
            // made each mail cost a request's worth of disk writes.
            self.store.flush().await?;
        }
        batch.untouched = untouched.len();
        self.release(&untouched).await?;
        if let Some(why) = trouble {
            batch.held_until = Some(self.hold_for_server(&why).await?);
        }
        Ok(batch)
    }

    /// Writes down what the server said about one message. Returns whether it left the queue.
    async fn record(
        &self,
        mut item: OutboxItem,
        result: Result<(), SendError>,
        report: &mut DeliveryReport,
    ) -> Result<bool, Error> {
        let now = self.clock.now();
        match result {
            Ok(()) => {
                self.store.delivered(item.id).await?;
                tracing::info!(id = item.id, kind = ?item.kind, "mail delivered");
                report.sent += 1;
                Ok(true)
            }
            Err(SendError::Rejected(why)) => {
                tracing::warn!(id = item.id, reason = %why, "mail refused for good");
                self.bury(item, &why, now, true).await?;
                report.rejected += 1;
                Ok(true)
            }
            // (Server trouble holds the whole queue before it gets here; were it to come
            // here, putting off this one mail is still safe.)
            Err(SendError::Retry(why) | SendError::ServerUnavailable(why)) => {
                item.attempts += 1;
                let wait = backoff(item.attempts);
                item.next_attempt_at = now + wait;
                tracing::warn!(id = item.id, attempts = item.attempts, retry_in = wait, reason = %why, "mail deferred");
                item.last_error = Some(why);
                self.store.deferred(&item).await?;
                report.deferred += 1;
                Ok(false)
            }
        }
    }

    /// Moves a mail to the dead letters. A dead reset or verification mail keeps no link:
    /// nobody will receive it, and whoever needs one asks again. Other mail keeps its sealed
    /// message, for `outbox retry`.
    async fn bury(&self, mut item: OutboxItem, reason: &str, now: i64, refused: bool) -> Result<(), Error> {
        if matches!(item.kind, MailKind::Reset | MailKind::Verify) {
            item.sealed = None;
            item.raw = None;
        }
        let event = AuditEvent::new(
            now,
            "mail_dead",
            None,
            None,
            format!("mail {} not delivered: {reason}", item.id),
        );
        let dead = DeadItem {
            item,
            reason: reason.to_string(),
            at: now,
        };
        self.store.bury(&dead, &event, refused).await
    }

    /// Stand-ins' mail waiting to be rehearsed.
    pub async fn stand_ins_waiting(&self) -> Result<u64, Error> {
        self.store.stand_ins_waiting().await
    }

    /// Goes through the motions of delivering the stand-ins' mail, which reset requests that
    /// get no mail leave in the store beside the outbox (see `Rekey::mint_reset`): as a pass
    /// does, it claims them, checks the server, opens each message, rehearses its send, takes
    /// it out of the queue and flushes once. Nothing reaches the stranger: the server sees only the
    /// checks, or, when the operator named a sink, a message to the sink. While the server is
    /// held or cannot be reached they wait, as mail does, until their link would expire.
    /// Returns how many went. (Rehearsals go one by one and may outlast their lease; another
    /// instance then rehearses the rest again, which costs work and sends nobody anything.)
    pub async fn rehearse(&self) -> Result<usize, Error> {
        let now = self.clock.now();
        let due = self
            .store
            .claim_stand_ins(BATCH, now, now + self.stand_in_lease_secs())
            .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let held = self.store.server_hold().await?.is_some_and(|until| until > now);
        let reachable = !held && self.mailer.check().await.is_ok();
        let mut waiting = Vec::new();
        let mut n = 0;
        for item in due {
            let expired = item.expires_at.is_some_and(|e| e <= now);
            if !expired {
                if !reachable {
                    waiting.push(item.id);
                    continue;
                }
                if let Ok(message) = self.message(&item) {
                    self.mailer.rehearse(&item.from, &message).await;
                }
            }
            self.store.stand_in_done(item.id).await?;
            n += 1;
        }
        if n > 0 {
            self.store.flush().await?; // as a delivery pass does
        }
        self.store.release_stand_ins(&waiting).await?;
        Ok(n)
    }

    /// Delivers until `shutdown` turns true: after every pass it sleeps until the next mail
    /// is due, new mail is queued, or its idle time passes (30 s on its own store; a clock
    /// moved by tests is seen then).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.deliver_due().await {
                Ok((_, Some(next))) => (next - self.clock.now()).clamp(0, self.idle_secs),
                Ok((_, None)) => self.idle_secs,
                Err(e) => {
                    tracing::error!(error = %e, "outbox pass failed");
                    5.min(self.idle_secs)
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
