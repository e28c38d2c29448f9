//! The window's language: the one chosen in the settings (`app_language`), else the system's
//! (LC_ALL, LC_MESSAGES, LANG), among the languages there are words for. The window's words
//! and the app's refusals are both written in it.

use std::collections::BTreeMap;
use std::sync::{LazyLock, RwLock};

use rekey_core::letters::Sender;
use rekey_core::words::{Arg, Words};
use serde::Serialize;

/// Who speaks for the window: the core's words and product name, in the window's language.
/// `None` until the core opens (or when it cannot): then the shipped words under "Rekey".
static SPEAKER: RwLock<Option<Sender>> = RwLock::new(None);

/// Shipped words in the system's language, for when the core (and an operator's words with
/// it) did not open.
static SHIPPED: LazyLock<(Words, String)> = LazyLock::new(|| {
    let words = Words::shipped();
    let lang = pick(&words, None);
    (words, lang)
});

/// The language for the window: `chosen` (the setting) if there are words for it, else the
/// system's, else English.
pub fn pick(words: &Words, chosen: Option<&str>) -> String {
    let system = rekey_core::words::os_locale();
    let fallback = words.negotiate(system.as_deref(), "en");
    words.negotiate(chosen, &fallback)
}

/// From now on the window speaks `sender`'s language, with its words and product name.
pub fn set(sender: Sender) {
    if let Ok(mut s) = SPEAKER.write() {
        *s = Some(sender);
    }
}

fn with<T>(f: impl FnOnce(&Words, &str, &str) -> T) -> T {
    match SPEAKER.read().ok().as_deref().and_then(Option::as_ref) {
        Some(sender) => f(sender.words(), sender.locale(), sender.product()),
        None => f(&SHIPPED.0, &SHIPPED.1, "Rekey"),
    }
}

/// A core refusal in the window's language.
pub fn refusal(e: &rekey_core::Error) -> String {
    with(|words, locale, product| e.message_in(words, locale, product))
}

/// Message `id` in the window's language, with the product's name and `args`.
pub fn say(id: &str, args: &[(&str, &str)]) -> String {
    with(|words, locale, product| {
        let mut all = vec![("product", Arg::Text(product))];
        all.extend(args.iter().map(|(name, value)| (*name, Arg::Text(value))));
        words.text(locale, id, &all)
    })
}

/// A language the window can be set to.
#[derive(Serialize)]
pub struct Choice {
    tag: String,
    /// Its name in itself: "Deutsch".
    name: String,
}

/// What the window needs to write itself.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowWords {
    /// The language the window is in (`<html lang>`).
    lang: String,
    /// The system's language, for "As the system (…)".
    system: String,
    /// Every `app-…` message, the product's name filled in and each other variable left as
    /// `{name}` for the window to fill.
    words: BTreeMap<String, String>,
    languages: Vec<Choice>,
}

/// The window's words in its language.
pub fn window_words() -> WindowWords {
    with(|words, locale, product| {
        let lang = words.language_of(locale).to_string();
        WindowWords {
            words: words.all_with_prefix(&lang, "app-", &[("product", Arg::Text(product))]),
            system: pick(words, None),
            languages: words
                .languages()
                .into_iter()
                .map(|tag| Choice {
                    tag: tag.to_string(),
                    name: words.text(tag, "app-language-name", &[]),
                })
                .collect(),
            lang,
        }
    })
}

/// The window's language, as a tag (`de`): the one servers are asked to answer in.
pub fn tag() -> String {
    with(|words, locale, _| words.language_of(locale).to_string())
}

/// The language tags there are words for (the settings refuse others).
pub fn known(tag: &str) -> bool {
    with(|words, _, _| words.languages().iter().any(|l| l.eq_ignore_ascii_case(tag)))
}
