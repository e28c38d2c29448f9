//! The words of Rekey's mail, pages, refusals and window, from Fluent files: English, German, French and Spanish ship
//! inside the binary (`locales/*.ftl`), and an operator's `messages_dir` overrides any message
//! or adds a regional variant (`de-AT.ftl`). A language falls back message by message:
//! de-AT → de → en.
//!
//! Overrides are checked when they load: a file that does not parse, a message English does
//! not have, or a variable the message is never given is refused with the file, line and key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_syntax::ast;
use unic_langid::LanguageIdentifier;

/// One shipped language's messages: the mail's and pages' (`locales/TAG.ftl`), the refusals'
/// (`locales/errors/TAG.ftl`) and the desktop app's window (`locales/app/TAG.ftl`), as one
/// source, so that one check covers them all and one override file can change any of them.
macro_rules! shipped {
    ($tag:literal) => {
        (
            $tag,
            concat!(
                include_str!(concat!("../locales/", $tag, ".ftl")),
                "\n",
                include_str!(concat!("../locales/errors/", $tag, ".ftl")),
                "\n",
                include_str!(concat!("../locales/app/", $tag, ".ftl")),
            ),
        )
    };
}

/// The languages that ship, English first: the last fallback of every chain.
pub const SHIPPED: &[(&str, &str)] = &[shipped!("en"), shipped!("de"), shipped!("fr"), shipped!("es")];

/// One language's messages.
struct Book {
    tag: String,
    bundle: FluentBundle<FluentResource>,
}

/// Every language's messages, shipped and overridden.
pub struct Words {
    books: Vec<Book>,
    /// English's messages and the variables each is given: what an override may name.
    english: BTreeMap<String, BTreeSet<String>>,
}

impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.books.iter().map(|b| &b.tag)).finish()
    }
}

/// Why an override could not be used, naming the file, the line and the key.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {reason}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct WordsError {
    /// The file, as the operator named its directory.
    pub file: String,
    /// The line, counted from 1, where there is one.
    pub line: Option<usize>,
    /// What is wrong, in plain words.
    pub reason: String,
}

/// A value for a message's variable.
#[derive(Clone, Copy)]
pub enum Arg<'a> {
    /// Words: a name, an address, a time already written out.
    Text(&'a str),
    /// A count, which picks the plural form.
    Number(i64),
}

impl Words {
    /// The shipped languages, without overrides.
    pub fn shipped() -> Words {
        Words::load(None).expect("the shipped messages parse")
    }

    /// The shipped languages with the `.ftl` files of `dir` over them.
    pub fn load(dir: Option<&Path>) -> Result<Words, WordsError> {
        let mut books = Vec::new();
        for (tag, source) in SHIPPED {
            let resource = parse(tag, source.to_string(), &format!("locales/{tag}.ftl"))?;
            books.push(Book {
                tag: tag.to_string(),
                bundle: bundle(tag, resource),
            });
        }
        let mut words = Words {
            books,
            english: variables_by_message(SHIPPED[0].1),
        };
        if let Some(dir) = dir {
            words.override_from(dir)?;
        }
        Ok(words)
    }

    fn override_from(&mut self, dir: &Path) -> Result<(), WordsError> {
        let unreadable = |e: std::io::Error| WordsError {
            file: dir.display().to_string(),
            line: None,
            reason: format!("cannot read the directory: {e}"),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(unreadable)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "ftl"))
            .collect();
        files.sort();
        for path in files {
            let name = path.display().to_string();
            let tag = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let lang = tag
                .parse::<LanguageIdentifier>()
                .ok()
                .filter(|l| l.language.as_str().len() <= 3 && !l.language.is_empty())
                .ok_or_else(|| WordsError {
                    file: name.clone(),
                    line: None,
                    reason: format!("'{tag}' is not a language tag; name the file like de.ftl or de-AT.ftl"),
                })?;
            let source = std::fs::read_to_string(&path).map_err(|e| WordsError {
                file: name.clone(),
                line: None,
                reason: format!("cannot read it: {e}"),
            })?;
            for (id, used) in variables_by_message(&source) {
                let line = line_of_message(&source, &id);
                let Some(given) = self.english.get(&id) else {
                    return Err(WordsError {
                        file: name,
                        line,
                        reason: format!("unknown message '{id}' (no such message in Rekey's en.ftl)"),
                    });
                };
                if let Some(var) = used.difference(given).next() {
                    return Err(WordsError {
                        file: name,
                        line,
                        reason: format!(
                            "message '{id}' uses ${var}, which it is never given (it has: {})",
                            given.iter().map(|v| format!("${v}")).collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
            }
            let resource = parse(&tag, source, &name)?;
            let tag = lang.to_string();
            match self.books.iter_mut().find(|b| b.tag == tag) {
                Some(book) => book.bundle.add_resource_overriding(resource),
                None => self.books.push(Book {
                    bundle: bundle(&tag, resource),
                    tag,
                }),
            }
        }
        Ok(())
    }

    /// The languages there are words for.
    pub fn languages(&self) -> Vec<&str> {
        self.books.iter().map(|b| b.tag.as_str()).collect()
    }

    /// The books to look in for `locale`, most specific first: de-AT → de → en.
    fn chain(&self, locale: &str) -> Vec<&Book> {
        let mut chain = Vec::new();
        let mut push = |tag: &str| {
            if let Some(book) = self.books.iter().find(|b| b.tag.eq_ignore_ascii_case(tag)) {
                if !chain.iter().any(|b: &&Book| std::ptr::eq(*b, book)) {
                    chain.push(book);
                }
            }
        };
        if let Ok(lang) = locale.parse::<LanguageIdentifier>() {
            push(&lang.to_string());
            push(lang.language.as_str());
        }
        push(SHIPPED[0].0);
        chain
    }

    /// Every message whose id starts with `prefix`, in `locale`, with `fixed` filled in and
    /// each of its other variables left as `{name}`: the words a page's script (or the app's
    /// window) needs, by id, to fill in itself.
    pub fn all_with_prefix(&self, locale: &str, prefix: &str, fixed: &[(&str, Arg)]) -> BTreeMap<String, String> {
        self.english
            .iter()
            .filter(|(id, _)| id.starts_with(prefix))
            .map(|(id, variables)| {
                let marks: Vec<(&str, String)> = variables
                    .iter()
                    .filter(|v| !fixed.iter().any(|(name, _)| name == v))
                    .map(|v| (v.as_str(), format!("{{{v}}}")))
                    .collect();
                let mut args: Vec<(&str, Arg)> = fixed.to_vec();
                args.extend(marks.iter().map(|(name, mark)| (*name, Arg::Text(mark))));
                (id.clone(), self.text(locale, id, &args))
            })
            .collect()
    }

    /// The language there are words for that best matches an `Accept-Language` header: the
    /// first wanted tag (by `q`) that has a book of its own, else its language's; else
    /// `fallback` (the install's language). `fr-CA,de;q=0.5` → `fr`.
    pub fn negotiate(&self, accept_language: Option<&str>, fallback: &str) -> String {
        for tag in wanted_languages(accept_language.unwrap_or_default()) {
            let language = tag.split('-').next().unwrap_or_default();
            for candidate in [tag.as_str(), language] {
                if let Some(book) = self.books.iter().find(|b| b.tag.eq_ignore_ascii_case(candidate)) {
                    return book.tag.clone();
                }
            }
        }
        fallback.to_string()
    }

    /// The language a mail for `locale` is written in (its `Content-Language`).
    pub fn language_of(&self, locale: &str) -> &str {
        &self.chain(locale)[0].tag
    }

    /// Message `id` in `locale`, with `args`.
    pub fn text(&self, locale: &str, id: &str, args: &[(&str, Arg)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            match value {
                Arg::Text(s) => fluent_args.set(*name, FluentValue::from(*s)),
                Arg::Number(n) => fluent_args.set(*name, FluentValue::from(*n)),
            }
        }
        for book in self.chain(locale) {
            if let Some(pattern) = book.bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                let text = book.bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
                if errors.is_empty() {
                    return text.into_owned();
                }
                tracing::warn!(locale = %book.tag, id, ?errors, "a message could not be filled in; using the next language");
            }
        }
        // Every shipped language has every message (see the tests), so only a bug gets here.
        id.to_string()
    }

    /// Message `id` as HTML: its words escaped, and the variables named in `strong` in bold.
    pub fn html(&self, locale: &str, id: &str, args: &[(&str, Arg)], strong: &[&str]) -> String {
        // Placeholders stand in for the text variables while the words are escaped, so no
        // value (an address) and no operator's message can put markup into the mail.
        let marks: Vec<String> = (0..args.len()).map(|i| format!("\u{E000}{i}\u{E001}")).collect();
        let marked: Vec<(&str, Arg)> = args
            .iter()
            .zip(&marks)
            .map(|((name, value), mark)| match value {
                Arg::Text(_) => (*name, Arg::Text(mark.as_str())),
                Arg::Number(n) => (*name, Arg::Number(*n)),
            })
            .collect();
        let mut html = crate::letters::escape(&self.text(locale, id, &marked));
        for ((name, value), mark) in args.iter().zip(&marks) {
            if let Arg::Text(s) = value {
                let value = crate::letters::escape(s);
                let value = if strong.contains(name) {
                    format!("<strong>{value}</strong>")
                } else {
                    value
                };
                html = html.replace(mark.as_str(), &value);
            }
        }
        html
    }

    /// `14:05 UTC on 26 November 2026`, the locale's way, in `zone` (an IANA name like
    /// `Europe/Berlin`, checked by [`time_zone`]; `None` or unknown: UTC), which is named by
    /// its abbreviation: `15:05 CET on 26 November 2026`.
    pub fn when(&self, locale: &str, unix: i64, zone: Option<&str>) -> String {
        let Ok(instant) = jiff::Timestamp::from_second(unix) else {
            return format!("{unix} (Unix time)");
        };
        let tz = zone
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let t = instant.to_zoned_datetime(tz);
        let month = self.text(locale, "month", &[("month", Arg::Number(t.month() as i64))]);
        let (hour, minute, day, year) = (
            format!("{:02}", t.hour()),
            format!("{:02}", t.minute()),
            t.day().to_string(),
            t.year().to_string(),
        );
        let abbreviation = t.strftime("%Z").to_string();
        self.text(
            locale,
            "time",
            &[
                ("hour", Arg::Text(&hour)),
                ("minute", Arg::Text(&minute)),
                ("zone", Arg::Text(&abbreviation)),
                ("day", Arg::Text(&day)),
                ("month", Arg::Text(&month)),
                ("year", Arg::Text(&year)),
            ],
        )
    }

    /// `30 minutes`, `2 hours`, `1 hour 30 minutes`, the locale's way.
    pub fn span(&self, locale: &str, seconds: i64) -> String {
        let (h, m) = (seconds / 3600, (seconds % 3600) / 60);
        let minutes = |n| self.text(locale, "span-minutes", &[("n", Arg::Number(n))]);
        let hours = |n| self.text(locale, "span-hours", &[("n", Arg::Number(n))]);
        match (h, m) {
            (0, m) => minutes(m.max(1)),
            (h, 0) => hours(h),
            (h, m) => self.text(
                locale,
                "span-hours-minutes",
                &[("hours", Arg::Text(&hours(h))), ("minutes", Arg::Text(&minutes(m)))],
            ),
        }
    }
}

/// `name` as an account's time zone, in the tz database's spelling (`europe/berlin` →
/// `Europe/Berlin`): a zone the database knows, by its IANA name.
pub fn time_zone(name: &str) -> Result<String, crate::error::Error> {
    let name = name.trim();
    let invalid = || crate::error::Error::TimeZoneInvalid(name.chars().take(64).collect());
    if name.is_empty() || name.len() > 64 {
        return Err(invalid());
    }
    let tz = jiff::tz::TimeZone::get(name).map_err(|_| invalid())?;
    tz.iana_name().map(str::to_string).ok_or_else(invalid)
}

/// The time zone this computer is set to (`TZ`, else `/etc/localtime`), by its IANA name.
pub fn os_time_zone() -> Option<String> {
    let tz = jiff::tz::TimeZone::try_system().ok()?;
    tz.iana_name()
        .filter(|n| *n != "UTC" && *n != "Etc/Unknown")
        .map(str::to_string)
}

/// `tag` as a language for an account's mail, in its canonical form (`de-at` → `de-AT`):
/// a BCP 47 tag whose language is two or three letters.
pub fn locale(tag: &str) -> Result<String, crate::error::Error> {
    let tag = tag.trim();
    tag.parse::<LanguageIdentifier>()
        .ok()
        .filter(|l| tag.len() <= 35 && (2..=3).contains(&l.language.as_str().len()))
        .map(|l| l.to_string())
        .ok_or_else(|| crate::error::Error::LocaleInvalid(tag.chars().take(40).collect()))
}

/// The language an `Accept-Language` header asks for first (highest `q`, then order), if
/// any of its tags is one: `de-AT,de;q=0.9,en;q=0.5` → `de-AT`.
pub fn from_accept_language(header: &str) -> Option<String> {
    wanted_languages(header).into_iter().next()
}

/// The languages an `Accept-Language` header wants, most wanted first (by `q`, then by
/// order); `*`, `q=0` and anything that is not a language tag left out. At most 20 items are
/// read, so a long header costs little.
fn wanted_languages(header: &str) -> Vec<String> {
    let mut wanted: Vec<(f32, usize, String)> = Vec::new();
    for (i, item) in header.split(',').take(20).enumerate() {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
            .unwrap_or(0.0);
        if let (true, Ok(tag)) = (q > 0.0, locale(tag)) {
            wanted.push((q, i, tag));
        }
    }
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    wanted.into_iter().map(|(_, _, tag)| tag).collect()
}

/// The language of this computer's user, from `LC_ALL`, `LC_MESSAGES` or `LANG` (the first
/// that is set, as POSIX orders them): `de_DE.UTF-8` → `de-DE`. `None` for `C` or `POSIX`.
pub fn os_locale() -> Option<String> {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|v| !v.is_empty())
        .and_then(|v| from_posix_locale(&v))
}

/// `de_DE.UTF-8@euro` → `de-DE`; `C` and `POSIX` name no language.
pub fn from_posix_locale(value: &str) -> Option<String> {
    let tag = value.split(['.', '@']).next()?.replace('_', "-");
    if tag == "C" || tag == "POSIX" {
        return None;
    }
    locale(&tag).ok()
}

fn bundle(tag: &str, resource: FluentResource) -> FluentBundle<FluentResource> {
    let lang: LanguageIdentifier = tag.parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![lang]);
    // No Unicode isolation marks around values: mail is left to right here, and the marks
    // would ride along when a reader copies an address or a code.
    bundle.set_use_isolating(false);
    bundle.add_resource_overriding(resource);
    bundle
}

fn parse(tag: &str, source: String, name: &str) -> Result<FluentResource, WordsError> {
    FluentResource::try_new(source).map_err(|(resource, errors)| {
        let first = &errors[0];
        // The start of the entry that failed (the error's own position can be its end).
        let at = first
            .slice
            .as_ref()
            .map_or(first.pos.start, |s| s.start)
            .min(resource.source().len());
        WordsError {
            file: name.to_string(),
            line: Some(resource.source()[..at].matches('\n').count() + 1),
            reason: format!("{tag}: not Fluent syntax: {}", first.kind),
        }
    })
}

/// The line where message `id` starts, counted from 1.
fn line_of_message(source: &str, id: &str) -> Option<usize> {
    source
        .lines()
        .position(|l| {
            l.strip_prefix(id)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// Each message's id and the variables its value uses (unparsable entries are skipped: the
/// parse itself reports them).
fn variables_by_message(source: &str) -> BTreeMap<String, BTreeSet<String>> {
    let Ok(resource) = FluentResource::try_new(source.to_string()).or_else(|(r, _)| Ok::<_, ()>(r)) else {
        return BTreeMap::new();
    };
    resource
        .entries()
        .filter_map(|entry| match entry {
            ast::Entry::Message(m) => {
                let mut vars = BTreeSet::new();
                if let Some(pattern) = &m.value {
                    pattern_variables(pattern, &mut vars);
                }
                Some((m.id.name.to_string(), vars))
            }
            _ => None,
        })
        .collect()
}

fn pattern_variables(pattern: &ast::Pattern<&str>, vars: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            expression_variables(expression, vars);
        }
    }
}

fn expression_variables(expression: &ast::Expression<&str>, vars: &mut BTreeSet<String>) {
    match expression {
        ast::Expression::Select { selector, variants } => {
            inline_variables(selector, vars);
            for variant in variants {
                pattern_variables(&variant.value, vars);
            }
        }
        ast::Expression::Inline(inline) => inline_variables(inline, vars),
    }
}

fn inline_variables(inline: &ast::InlineExpression<&str>, vars: &mut BTreeSet<String>) {
    match inline {
        ast::InlineExpression::VariableReference { id } => {
            vars.insert(id.name.to_string());
        }
        ast::InlineExpression::FunctionReference { arguments, .. } => {
            for arg in &arguments.positional {
                inline_variables(arg, vars);
            }
            for arg in &arguments.named {
                inline_variables(&arg.value, vars);
            }
        }
        ast::InlineExpression::Placeable { expression } => expression_variables(expression, vars),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message_with_the_same_variables() {
        let english = variables_by_message(SHIPPED[0].1);
        assert!(english.len() > 30, "English has the mail's messages");
        for (tag, source) in &SHIPPED[1..] {
            FluentResource::try_new(source.to_string()).unwrap_or_else(|(_, e)| panic!("{tag}.ftl parses: {e:?}"));
            let theirs = variables_by_message(source);
            let missing: Vec<_> = english.keys().filter(|id| !theirs.contains_key(*id)).collect();
            assert!(missing.is_empty(), "{tag}.ftl lacks {missing:?}");
            let extra: Vec<_> = theirs.keys().filter(|id| !english.contains_key(*id)).collect();
            assert!(extra.is_empty(), "{tag}.ftl has messages English lacks: {extra:?}");
            for (id, vars) in &english {
                assert_eq!(
                    &theirs[id], vars,
                    "{tag}.ftl: '{id}' has the variables English gives it"
                );
            }
        }
    }

    #[test]
    fn falls_back_from_region_to_language_to_english() {
        let words = Words::shipped();
        let args = [("product", Arg::Text("Rekey"))];
        assert_eq!(
            words.text("de-AT", "reset-subject", &args),
            "Setzen Sie Ihr Rekey-Passwort zurück"
        );
        assert_eq!(
            words.text("fr", "reset-subject", &args),
            "Réinitialisez votre mot de passe Rekey"
        );
        assert_eq!(words.text("pt-BR", "reset-subject", &args), "Reset your Rekey password");
        assert_eq!(
            words.text("not a tag!", "reset-subject", &args),
            "Reset your Rekey password"
        );
        assert_eq!(words.language_of("de-AT"), "de");
        assert_eq!(words.language_of("pt"), "en");
    }

    #[test]
    fn accept_language_picks_the_first_wanted_tag() {
        assert_eq!(
            from_accept_language("de-AT,de;q=0.9,en;q=0.5").as_deref(),
            Some("de-AT")
        );
        assert_eq!(from_accept_language("en;q=0.3, fr-CA;q=0.8").as_deref(), Some("fr-CA"));
        assert_eq!(from_accept_language("*, es").as_deref(), Some("es"));
        assert_eq!(from_accept_language("de;q=0").as_deref(), None);
        assert_eq!(from_accept_language("").as_deref(), None);
        assert_eq!(from_accept_language("<script>").as_deref(), None);
        assert_eq!(locale("de-at").unwrap(), "de-AT");
        assert_eq!(from_posix_locale("de_DE.UTF-8").as_deref(), Some("de-DE"));
        assert_eq!(from_posix_locale("fr_FR@euro").as_deref(), Some("fr-FR"));
        assert_eq!(from_posix_locale("C.UTF-8"), None);
        assert_eq!(from_posix_locale("POSIX"), None);
        assert!(locale("deutsch").is_err());
        assert!(locale("").is_err());
    }

    #[test]
    fn pages_are_offered_in_the_best_language_there_is() {
        let words = Words::shipped();
        assert_eq!(words.negotiate(Some("fr-CA,fr;q=0.9,en;q=0.5"), "en"), "fr");
        assert_eq!(words.negotiate(Some("pt-BR, es;q=0.4"), "en"), "es");
        assert_eq!(words.negotiate(Some("en;q=0.2, de;q=0.8"), "en"), "de");
        assert_eq!(words.negotiate(Some("ja"), "en"), "en");
        assert_eq!(
            words.negotiate(Some("ja"), "de"),
            "de",
            "nothing wanted: the install's language"
        );
        assert_eq!(words.negotiate(None, "fr"), "fr");
        assert_eq!(words.negotiate(Some("\u{0}; q=abc,,;"), "en"), "en");
    }

    #[test]
    fn times_and_spans_in_each_language() {
        let words = Words::shipped();
        let t = 1_795_701_900; // 2026-11-26 14:05 UTC
        assert_eq!(words.when("en", t, None), "14:05 UTC on 26 November 2026");
        assert_eq!(words.when("de", t, None), "14:05 UTC am 26. November 2026");
        assert_eq!(words.when("fr", t, None), "14 h 05 UTC le 26 novembre 2026");
        assert_eq!(words.when("es", t, None), "14:05 UTC del 26 de noviembre de 2026");
        // In the account's zone, by its abbreviation; summer time where it applies.
        assert_eq!(
            words.when("de", t, Some("Europe/Berlin")),
            "15:05 CET am 26. November 2026"
        );
        assert_eq!(
            words.when("en", t, Some("America/New_York")),
            "09:05 EST on 26 November 2026"
        );
        assert_eq!(
            words.when("en", 1_783_000_000, Some("America/New_York")),
            "09:46 EDT on 2 July 2026"
        );
        assert_eq!(
            words.when("fr", t, Some("Asia/Kolkata")),
            "19 h 35 IST le 26 novembre 2026"
        );
        // Past midnight there: the date turns too.
        assert_eq!(
            words.when("es", t, Some("Pacific/Auckland")),
            "03:05 NZDT del 27 de noviembre de 2026"
        );
        assert_eq!(
            words.when("en", t, Some("Mars/Olympus")),
            "14:05 UTC on 26 November 2026"
        );
        assert_eq!(time_zone("europe/berlin").unwrap(), "Europe/Berlin");
        assert_eq!(time_zone(" Asia/Kolkata ").unwrap(), "Asia/Kolkata");
        assert!(time_zone("Mars/Olympus").is_err());
        assert!(time_zone("").is_err());
        assert_eq!(words.span("en", 1800), "30 minutes");
        assert_eq!(words.span("en", 60), "1 minute");
        assert_eq!(words.span("de", 5400), "1 Stunde 30 Minuten");
        assert_eq!(words.span("es", 7200), "2 horas");
    }

    #[test]
    fn html_escapes_words_and_values_and_bolds_what_is_asked() {
        let words = Words::shipped();
        let html = words.html(
            "en",
            "reset-lead",
            &[
                ("product", Arg::Text("A<b>")),
                ("address", Arg::Text("o'brien@example.com")),
            ],
            &["address"],
        );
        assert_eq!(
            html,
            "Someone asked to reset the password of the A&lt;b&gt; account for <strong>o&#39;brien@example.com</strong>."
        );
    }

    fn override_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn an_operator_overrides_a_message_and_adds_a_region() {
        let dir = override_dir(&[
            ("en.ftl", "reset-subject = { $product }: your password reset\n"),
            (
                "de-AT.ftl",
                "reset-ignore = Nicht angefordert? Dann einfach ignorieren.\n",
            ),
        ]);
        let words = Words::load(Some(dir.path())).unwrap();
        let args = [("product", Arg::Text("Acme"))];
        assert_eq!(words.text("en", "reset-subject", &args), "Acme: your password reset");
        assert_eq!(words.text("en", "reset-browser-button", &[]), "Reset in the browser");
        assert_eq!(
            words.text("de-AT", "reset-ignore", &[]),
            "Nicht angefordert? Dann einfach ignorieren."
        );
        assert_eq!(
            words.text("de-AT", "reset-browser-button", &[]),
            "Im Browser zurücksetzen"
        );
        assert!(words
            .text("de", "reset-ignore", &[])
            .starts_with("Wenn Sie das nicht verlangt haben"));
    }

    #[test]
    fn a_bad_override_is_named_by_file_line_and_key() {
        let dir = override_dir(&[("fr.ftl", "# ours\n\nreset-subject = Bonjour\nreset-subjet = Oups\n")]);
        let e = Words::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            e.contains("fr.ftl line 4") && e.contains("unknown message 'reset-subjet'"),
            "{e}"
        );

        let dir = override_dir(&[("es.ftl", "reset-subject = Hola { $name }\n")]);
        let e = Words::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            e.contains("es.ftl line 1") && e.contains("'reset-subject' uses $name"),
            "{e}"
        );

        let dir = override_dir(&[("de.ftl", "reset-subject = {\n")]);
        let e = Words::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("de.ftl line 1") && e.contains("not Fluent syntax"), "{e}");

        let dir = override_dir(&[("german.ftl", "reset-subject = Hallo\n")]);
        let e = Words::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("german.ftl") && e.contains("not a language tag"), "{e}");
    }
}
