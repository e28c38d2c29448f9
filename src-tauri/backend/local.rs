//! This computer's own store: the core in-process.

use std::sync::Arc;

use async_trait::async_trait;
use rekey_core::password::Strength;
use rekey_core::service::Proof;
use rekey_core::Rekey;

use super::{issuer_of, other_issuer, Answer, Backend, MailSettings, Place, Registered, Target};

/// The core, and this install as the client its limits count.
pub struct Local {
    core: Arc<Rekey>,
    client: String,
}

impl Local {
    pub fn new(core: Arc<Rekey>) -> Local {
        let client = format!("install:{}", core.install_id());
        Local { core, client }
    }

    /// A link made elsewhere (a server) is refused in words before the core looks at it.
    fn check_issuer(&self, token: &str) -> Answer<()> {
        match issuer_of(token) {
            Some(iss) if !self.core.issuers().contains(&iss) && iss != rekey_core::token::ISSUER => {
                Err(other_issuer(&iss, &Place::Local))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Backend for Local {
    fn place(&self) -> Place {
        Place::Local
    }

    async fn min_length(&self) -> Answer<usize> {
        Ok(self.core.config().password_min_length)
    }

    /// At once, without a verification mail: the person at the keyboard owns this store and
    /// its local mailbox, so a mail to prove the address would prove nothing and hide nothing.
    async fn register(&self, email: &str, password: &str) -> Answer<Registered> {
        // The account's mail speaks this computer's language, as the app does.
        let locale = rekey_core::words::os_locale();
        let user = self
            .core
            .create_account(email, password, locale.as_deref(), &self.client)
            .await?;
        Ok(Registered {
            email: user.email,
            verify_by_mail: false,
        })
    }

    async fn inspect_verify(&self, token: &str) -> Answer<Target> {
        self.check_issuer(token)?;
        let t = self.core.inspect_verify_link(token).await?;
        Ok(Target {
            email: t.email,
            expires_at: t.expires_at,
        })
    }

    async fn verify(&self, proof: Proof, password: &str) -> Answer<String> {
        if let Proof::Token(token) = &proof {
            self.check_issuer(token)?;
        }
        Ok(self.core.verify_account(proof, password, &self.client).await?.email)
    }

    async fn sign_in(&self, email: &str, password: &str) -> Answer<(String, String)> {
        let session = self.core.sign_in(email, password, &self.client).await?;
        let user = self.core.session_user(&session.0).await?;
        Ok((user.email, session.0))
    }

    async fn whoami(&self, session: &str) -> Answer<String> {
        Ok(self.core.session_user(session).await?.email)
    }

    async fn mail_settings(&self, session: &str) -> Answer<MailSettings> {
        let me = self.core.session_user(session).await?;
        Ok(MailSettings {
            locale: me.locale,
            time_zone: me.time_zone,
        })
    }

    async fn set_time_zone(&self, session: &str, zone: Option<&str>) -> Answer<()> {
        self.core.set_own_time_zone(session, zone, &self.client).await?;
        Ok(())
    }

    async fn set_mail_language(&self, session: &str, locale: Option<&str>) -> Answer<Option<String>> {
        Ok(self.core.set_own_locale(session, locale, &self.client).await?.locale)
    }

    async fn sign_out(&self, session: &str) -> Answer<()> {
        Ok(self.core.sign_out(session).await?)
    }

    async fn change_password(&self, session: &str, current: &str, new_password: &str) -> Answer<String> {
        Ok(self
            .core
            .change_password(session, current, new_password, &self.client)
            .await?
            .0)
    }

    async fn request_reset(&self, email: &str) -> Answer<()> {
        Ok(self.core.request_reset(email, &self.client).await?)
    }

    async fn inspect_reset(&self, token: &str) -> Answer<Target> {
        self.check_issuer(token)?;
        let t = self.core.inspect_reset_link(token).await?;
        Ok(Target {
            email: t.email,
            expires_at: t.expires_at,
        })
    }

    async fn confirm_reset(&self, proof: Proof, new_password: &str) -> Answer<()> {
        if let Proof::Token(token) = &proof {
            self.check_issuer(token)?;
        }
        Ok(self.core.confirm_reset(proof, new_password, &self.client).await?)
    }

    async fn strength(&self, password: &str, email: Option<&str>) -> Answer<Strength> {
        Ok(self
            .core
            .policy()
            .strength(password, email)
            .worded(crate::language::refusal))
    }
}
