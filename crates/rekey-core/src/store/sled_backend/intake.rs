//! The intake in sled: requests under sequence keys, in the order they came. One process
//! holds a sled store, so a claim needs no lease here.

use async_trait::async_trait;
use sled::Transactional;

use super::Store;
use crate::audit::AuditEvent;
use crate::error::Error;
use crate::service::tx;
use crate::store::steps::Waiting;
use crate::store::{decode, encode, seq_key, Intake, IntakeSteps};

#[async_trait]
impl IntakeSteps for Store {
    async fn queue_request(&self, request: &Intake) -> Result<(), Error> {
        let id = self.db.generate_id()?;
        self.intake.insert(seq_key(id), encode(request))?;
        Ok(())
    }

    async fn waiting_requests(&self) -> Result<usize, Error> {
        Ok(self.intake.len())
    }

    async fn claim_requests(&self, n: usize, _now: i64, _lease_until: i64) -> Result<Vec<Waiting>, Error> {
        let mut waiting = Vec::new();
        for entry in self.intake.iter().take(n) {
            let (key, value) = entry?;
            let id = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| crate::error::internal("intake", "a request's key is not a sequence number"))?,
            );
            match decode::<Intake>(&value) {
                Ok(request) => waiting.push(Waiting { id, request }),
                // Kept for a look; the ones behind it go on.
                Err(e) => tracing::error!(error = %e, "a request could not be read; it stays queued"),
            }
        }
        Ok(waiting)
    }

    async fn drop_requests(&self, ids: &[u64], counted_as: Option<&str>) -> Result<(), Error> {
        for id in ids {
            if let (Some(_), Some(counter)) = (self.intake.remove(seq_key(*id))?, counted_as) {
                self.bump(counter)?;
            }
        }
        Ok(())
    }

    async fn refuse_request(&self, id: u64, event: &AuditEvent) -> Result<(), Error> {
        tx((&self.intake, &self.audit).transaction(|(intake, audit)| {
            if intake.remove(&seq_key(id))?.is_some() {
                event.append_tx(audit)?;
            }
            Ok(())
        }))
    }
}
