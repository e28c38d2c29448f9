//! Reading every record of a sled store, for a move to PostgreSQL.

use super::Store;
use crate::error::Error;
use crate::outbox::{DeadItem, OutboxItem};
use crate::store::copy::Records;
use crate::store::{decode, seq_key};

/// Every record of `tree` (from `start`, before `end`) with its key, decoded.
fn all<T: serde::de::DeserializeOwned>(tree: &sled::Tree, end: Option<&[u8]>) -> Result<Vec<(Vec<u8>, T)>, Error> {
    let entries: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match end {
        Some(end) => Box::new(tree.range(..end)),
        None => Box::new(tree.iter()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let (k, v) = entry?;
        out.push((k.to_vec(), decode(&v)?));
    }
    Ok(out)
}

fn text(key: Vec<u8>) -> String {
    String::from_utf8_lossy(&key).into_owned()
}

impl Store {
    /// A queued or dead mail's message, opened with this store's mail key (`None` when it
    /// kept none).
    fn message(&self, item: &OutboxItem) -> Result<Option<Vec<u8>>, Error> {
        Ok(match (&item.sealed, &item.raw) {
            (Some(sealed), _) => Some(
                self.mail_key
                    .open(sealed, &seq_key(item.id))
                    .map_err(|e| crate::error::internal("queued mail", e))?,
            ),
            (None, Some(raw)) => Some(raw.clone().into_bytes()),
            (None, None) => None,
        })
    }

    /// Every record this store holds, queued mail opened with its mail key.
    pub fn records(&self) -> Result<Records, Error> {
        let mut mail = Vec::new();
        // Mail sits under sequence keys, before the outbox's own index (keys from 0xFF).
        for (_, item) in all::<OutboxItem>(&self.outbox, Some(b"\xff"))? {
            if let Some(message) = self.message(&item)? {
                mail.push((item, message));
            }
        }
        let mut dead = Vec::new();
        for (_, gone) in all::<DeadItem>(&self.dead, None)? {
            let message = self.message(&gone.item)?;
            dead.push((gone, message));
        }
        // Counters are the meta tree's 8-byte values under dotted names ("outbox.delivered");
        // its other values (install id, issuers, the server hold) are copied as themselves.
        let mut counters = Vec::new();
        for entry in self.meta.iter() {
            let (k, v) = entry?;
            let name = text(k.to_vec());
            if let (true, Ok(n)) = (name.contains('.'), <[u8; 8]>::try_from(v.as_ref())) {
                counters.push((name, u64::from_be_bytes(n)));
            }
        }
        let mut limits = Vec::new();
        for entry in self.limits.iter() {
            let (k, v) = entry?;
            if let Ok(tat) = <[u8; 8]>::try_from(v.as_ref()) {
                limits.push((text(k.to_vec()), i64::from_be_bytes(tat)));
            }
        }
        // `id/<id>` holds the pending account; `email/<address>` only points at it.
        let mut pending = Vec::new();
        for entry in self.pending.scan_prefix("id/") {
            pending.push(decode(&entry?.1)?);
        }
        // Requests still waiting: not those handled whose removal a crash cut short.
        let mut intake = Vec::new();
        for (key, request) in all(&self.intake, None)? {
            if !self.handled.contains_key(key)? {
                intake.push(request);
            }
        }
        Ok(Records {
            users: all(&self.users, None)?.into_iter().map(|(_, u)| u).collect(),
            resets: all(&self.resets, None)?
                .into_iter()
                .map(|(k, r)| (text(k), r))
                .collect(),
            retired: all(&self.retired, None)?
                .into_iter()
                .map(|(k, r)| (text(k), r))
                .collect(),
            codes: all(&self.codes, None)?.into_iter().map(|(k, c)| (text(k), c)).collect(),
            sessions: all(&self.sessions, None)?,
            pending,
            intake,
            limits,
            mail,
            dead,
            counters,
            audit: all(&self.audit, None)?.into_iter().map(|(_, e)| e).collect(),
            install_id: self.meta.get("install_id")?.map(|v| text(v.to_vec())),
            issuers: self
                .meta
                .get("issuers")?
                .and_then(|v| serde_json::from_slice(&v).ok())
                .unwrap_or_default(),
        })
    }
}
