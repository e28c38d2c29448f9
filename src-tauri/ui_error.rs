//! A refusal as the pages see it (`{code, message}`), made from the core's errors and the
//! link checks; shared by the commands, the backends and the shell.

use serde::Serialize;

use crate::link::LinkError;

/// A refusal as the page sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UiError {
    pub code: String,
    pub message: String,
}

impl From<rekey_core::Error> for UiError {
    fn from(e: rekey_core::Error) -> Self {
        UiError {
            code: e.code().to_string(),
            message: crate::language::refusal(&e),
        }
    }
}

impl From<LinkError> for UiError {
    /// Why, and what to do instead, in the window's language.
    fn from(e: LinkError) -> Self {
        let why = crate::language::say(e.why, &[]);
        UiError {
            code: e.code.to_string(),
            message: crate::language::say("app-error-link", &[("why", &why)]),
        }
    }
}
