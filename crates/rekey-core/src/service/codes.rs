//! Typed codes, for resets and for verifying a new account's address: the route that takes an
//! address, so it must cost the same and say the same whoever the address belongs to.
//!
//! Every address typed costs: the client's and the address's attempt limits, one atomic
//! read-and-count of the address's code record (or of a stand-in of the same shape and size),
//! and one HMAC. A wrong, expired or retired code and an address with no
//! account or no code all get [`Error::CodeInvalid`]. Five wrong codes retire the code (never
//! the link) until the next one is issued. `side_channels.rs` measures it.

use subtle::ConstantTimeEq;

use super::Rekey;
use crate::email::Email;
use crate::error::Error;
use crate::store::CodeState;
use crate::token::{parse_code, Minted, Purpose};

/// What proves the right to act on a mailed link: the link's token, or the address plus the
/// code typed from the same mail.
#[derive(Clone)]
pub enum Proof {
    /// The JWT from the link.
    Token(String),
    /// The address the mail went to and the code in it.
    Code {
        /// The address, as typed.
        email: String,
        /// The code as typed (`ABCD-EFGH`, any case).
        code: String,
    },
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proof::Token(_) => f.write_str("Proof::Token(<redacted>)"),
            Proof::Code { .. } => f.write_str("Proof::Code(<redacted>)"),
        }
    }
}

/// Tries of a code for an address before it is retired (its link keeps working): the sixth
/// try fails whatever it is, so at most five guesses per code.
pub const MAX_CODE_FAILURES: u32 = 5;

/// The key of an address's code record for `purpose`.
pub(crate) fn code_key(purpose: Purpose, email: &Email) -> String {
    match purpose {
        Purpose::Reset => format!("reset/{email}"),
        Purpose::Verify => format!("verify/{email}"),
    }
}

/// The code record of a freshly minted token for `subject` (an account, or a pending one).
pub(crate) fn fresh_code(subject: &str, minted: &Minted) -> CodeState {
    CodeState {
        failures: 0,
        until: minted.claims.exp + crate::token::LEEWAY,
        user_id: subject.to_string(),
        kid: minted.kid.clone(),
        jti: minted.claims.jti.clone(),
        code_mac: minted.code_mac.clone(),
        expires_at: minted.claims.exp,
    }
}

impl Rekey {
    /// Checks a typed code for `email`. `Ok` with the code's record when the code is right,
    /// live and not retired: the caller then checks what it is for (the account, the pending
    /// registration) and calls [`Rekey::code_failed`] if that is gone.
    pub(crate) async fn check_code(
        &self,
        purpose: Purpose,
        email: &str,
        code: &str,
        client: &str,
    ) -> Result<CodeState, Error> {
        let email = Email::parse(email)?;
        let now = self.now();
        let c = &self.config;
        let (client_key, address_key) = (format!("code:client:{client}"), format!("code:address:{email}"));
        self.take_limits(
            &[(c.limit_code_client, &client_key), (c.limit_code_address, &address_key)],
            now,
        )
        .await?;
        let typed = parse_code(code);
        // Every try is counted first, in one atomic step (the record as it was comes back), so
        // parallel tries cannot all slip under the limit. It is also the one write every
        // address gets, known or not, right or wrong.
        let until = now + self.config.reset_ttl_secs + crate::token::LEEWAY;
        let state = self
            .resets()
            .count_code_try(&code_key(purpose, &email), &self.code_stand_in, until)
            .await?;
        let expected = self
            .code_mac(&state.kid, &state.jti, typed.as_deref().unwrap_or_default())
            .await?;
        let matches = bool::from(expected.as_bytes().ct_eq(state.code_mac.as_bytes()));
        if matches && typed.is_some() && state.failures < MAX_CODE_FAILURES && state.expires_at > now {
            return Ok(state);
        }
        Err(self.code_failed(&state, client))
    }

    /// The one answer every failed code gets (the try was counted already); the owner's trail
    /// learns when a code is retired.
    pub(crate) fn code_failed(&self, state: &CodeState, client: &str) -> Error {
        if state.expires_at != 0 && state.failures + 1 == MAX_CODE_FAILURES {
            self.tally("code_retired_after_5_wrong_tries", &state.user_id, client);
        }
        Error::CodeInvalid
    }
}
