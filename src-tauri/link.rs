//! Reading a `rekey://reset?token=…` or `rekey://verify?token=…` link. The URL comes from
//! outside (a mail, another program, the command line), so it is parsed strictly: the
//! scheme, the action, one token of the shape a JWT has, nothing else. Whether the token is
//! good is the core's call.

use serde::Serialize;

/// Longest URL we look at; a real link is well under 1 KiB.
const MAX_URL: usize = 4096;

/// Why a link was not taken. The shell words it (`UiError::from`): this parser stays free
/// of everything but the URL, so the fuzzer can take it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError {
    pub code: &'static str,
    /// The id of the message that says why (`app-error-link-…`).
    pub why: &'static str,
}

fn refuse(why: &'static str) -> LinkError {
    LinkError {
        code: "link_invalid",
        why,
    }
}

/// Whether `arg` looks like one of our links at all (the rest of a command line is not).
pub fn is_rekey_url(arg: &str) -> bool {
    arg.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("rekey://"))
}

/// What a link asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `rekey://reset`: choose a new password.
    Reset,
    /// `rekey://verify`: finish creating an account.
    Verify,
}

/// The reset token in a `rekey://reset?token=…` link.
pub fn reset_token(raw: &str) -> Result<String, LinkError> {
    match parse(raw)? {
        (Action::Reset, token) => Ok(token),
        (Action::Verify, _) => Err(refuse("app-error-link-not-reset")),
    }
}

/// The action and token of a Rekey link.
pub fn parse(raw: &str) -> Result<(Action, String), LinkError> {
    if raw.len() > MAX_URL {
        return Err(refuse("app-error-link-too-long"));
    }
    let raw = raw.trim();
    // The URL parser silently drops tabs and line breaks anywhere in its input, so a link with
    // text spliced into it would still read; a real link has none, so refuse them first.
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refuse("app-error-link-spaces"));
    }
    let url = url::Url::parse(raw).map_err(|_| refuse("app-error-link-unreadable"))?;
    if url.scheme() != "rekey" {
        return Err(refuse("app-error-link-not-ours"));
    }
    let action = match url.host_str() {
        Some("reset") => Action::Reset,
        Some("verify") => Action::Verify,
        _ => return Err(refuse("app-error-link-not-reset")),
    };
    if !matches!(url.path(), "" | "/") {
        return Err(refuse("app-error-link-not-reset"));
    }
    if url.username() != "" || url.password().is_some() || url.port().is_some() || url.fragment().is_some() {
        return Err(refuse("app-error-link-extra"));
    }
    // The parser resolves dot segments (`rekey://reset/..?token=…` reads as `rekey://reset/`),
    // so the text before the query is checked as it was written too.
    let before_query = raw.split(['?', '#']).next().unwrap_or_default();
    let host = match action {
        Action::Reset => "reset",
        Action::Verify => "verify",
    };
    if ![format!("rekey://{host}"), format!("rekey://{host}/")]
        .iter()
        .any(|ok| before_query.eq_ignore_ascii_case(ok))
    {
        return Err(refuse("app-error-link-not-reset"));
    }
    let mut token = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "token" if token.is_none() => token = Some(value.into_owned()),
            "token" => return Err(refuse("app-error-link-two-tokens")),
            _ => return Err(refuse("app-error-link-extra")),
        }
    }
    // `query_pairs` skips empty pieces (`?token=…&`, `?&token=…`); a reset link has none.
    if url.query().is_some_and(|q| q.split('&').count() != 1) {
        return Err(refuse("app-error-link-extra"));
    }
    let token = token.ok_or_else(|| refuse("app-error-link-no-token"))?;
    let shaped = token.split('.').count() == 3
        && token.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        });
    if !shaped {
        return Err(refuse("app-error-link-damaged"));
    }
    Ok((action, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    #[test]
    fn a_reset_link_gives_its_token() {
        assert_eq!(reset_token(&format!("rekey://reset?token={T}")).unwrap(), T);
        assert_eq!(reset_token(&format!("REKEY://reset/?token={T}")).unwrap(), T);
        assert!(is_rekey_url("Rekey://reset") && !is_rekey_url("--flag"));
    }

    #[test]
    fn a_verify_link_gives_its_token_and_is_no_reset_link() {
        assert_eq!(
            parse(&format!("rekey://verify?token={T}")).unwrap(),
            (Action::Verify, T.to_string())
        );
        assert_eq!(
            parse(&format!("rekey://reset?token={T}")).unwrap(),
            (Action::Reset, T.to_string())
        );
        assert!(reset_token(&format!("rekey://verify?token={T}")).is_err());
        for bad in [
            format!("rekey://verify/../reset?token={T}"),
            format!("rekey://verify?token={T}&x=1"),
            format!("rekey://verifyx?token={T}"),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn anything_else_is_refused_in_plain_words() {
        let cases = [
            format!("https://reset?token={T}"),
            format!("rekey://other?token={T}"),
            format!("rekey://reset/../x?token={T}"),
            format!("rekey://user@reset?token={T}"),
            format!("rekey://reset:99?token={T}"),
            format!("rekey://reset?token={T}&token={T}"),
            format!("rekey://reset?token={T}&next=https://evil.example"),
            format!("rekey://reset?token={T}#frag"),
            "rekey://reset?token=".to_string(),
            "rekey://reset".to_string(),
            "rekey://reset?token=abc".to_string(),
            "rekey://reset?token=a.b.<script>".to_string(),
            format!("rekey://reset?token={}", "a.".repeat(3000)),
            "not a url".to_string(),
        ];
        for case in cases {
            let e = reset_token(&case).expect_err(&case);
            assert_eq!(e.code, "link_invalid");
            assert!(e.why.starts_with("app-error-link-"), "{}", e.why);
        }
    }
}
