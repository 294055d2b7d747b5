//! The window's words in several languages: Project Fluent message catalogs, one file per
//! language in `i18n/<language tag>.ftl` (embedded by `build.rs`, so a translator adds a
//! language by adding a file), English (`en.ftl`) being the reference and the fallback.
//!
//! A [`Localizer`] is one language's catalog with English behind it: a message missing in the
//! chosen language is taken from English, one missing in English too shows its id (and is
//! logged once). Plurals and counter words are the catalogs' business (Fluent selectors), so
//! Rust code passes numbers as numbers: `tr!(i18n, "notice-added", count = n)`.
//!
//! Where it lives: the [`crate::gui::App`] owns the current `Arc<Localizer>` (a UI setting,
//! remembered in `UserSettings::language`) and swaps it when the language changes, so the
//! switch applies on the next frame. Drawing code that has the app reads `app.i18n`; the
//! preview's drawing functions, which only get their panel, read the copy the app keeps in its
//! `egui::Context` ([`Localizer::of`]). There is no process-wide language: two windows (or two
//! tests in one process) can speak different languages. The CLI does not use this module; it
//! stays English, and so do messages that come from the worker or ffmpeg.
//!
//! Bidi isolation marks are off (`set_use_isolating(false)`): egui would draw them as boxes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use fluent::concurrent::FluentBundle;
use fluent::{FluentArgs, FluentResource};

pub use fluent::FluentValue;

mod catalogs {
    include!(concat!(env!("OUT_DIR"), "/catalogs.rs"));
}

/// Every embedded catalog: (language tag, Fluent source), English first.
pub use catalogs::CATALOGS;

/// The reference language, used for what another catalog lacks.
pub const FALLBACK: &str = "en";

/// The message each catalog has for its own name, in its own script ("日本語").
const LANGUAGE_NAME_ID: &str = "language-name";

/// Formats a message of a [`Localizer`]: `tr!(i18n, "id")` or
/// `tr!(i18n, "id", count = n, name = text)` (each value goes through `FluentValue::from`).
macro_rules! tr {
    ($i18n:expr, $id:literal) => {
        $i18n.tr($id)
    };
    ($i18n:expr, $id:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $i18n.tr_args(
            $id,
            &[$((stringify!($name), $crate::i18n::FluentValue::from($value))),+],
        )
    };
}
pub(crate) use tr;

type Bundle = FluentBundle<FluentResource>;

/// One language's messages, with English behind them.
pub struct Localizer {
    language: &'static str,
    bundle: Bundle,
    /// English, when `bundle` is another language.
    fallback: Option<Bundle>,
}

impl std::fmt::Debug for Localizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Localizer")
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

impl Localizer {
    /// The catalog of `language` (a tag of [`CATALOGS`]); an unknown tag gives English.
    pub fn new(language: &str) -> Self {
        let language = CATALOGS
            .iter()
            .map(|(tag, _)| *tag)
            .find(|tag| *tag == language)
            .unwrap_or(FALLBACK);
        let fallback = (language != FALLBACK).then(|| source(FALLBACK));
        Self::with_sources(language, source(language), fallback)
    }

    /// A localizer of `language` made from Fluent sources (tests give partial catalogs).
    fn with_sources(language: &'static str, source: &str, fallback: Option<&str>) -> Self {
        Self {
            language,
            bundle: bundle(language, source),
            fallback: fallback.map(|fallback| bundle(FALLBACK, fallback)),
        }
    }

    pub fn english() -> Self {
        Self::new(FALLBACK)
    }

    /// The language tag of this catalog ("en", "ja").
    pub fn language(&self) -> &'static str {
        self.language
    }

    /// The message `id`, without arguments.
    pub fn tr(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The message `id` with its variables (`$count` is `("count", n.into())`).
    pub fn tr_args(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let mut fluent_args = FluentArgs::with_capacity(args.len());
        for (name, value) in args {
            fluent_args.set(*name, value.clone());
        }
        self.format(id, Some(&fluent_args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        for bundle in std::iter::once(&self.bundle).chain(self.fallback.as_ref()) {
            let Some(pattern) = bundle.get_message(id).and_then(|message| message.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, args, &mut errors);
            if !errors.is_empty() {
                report_once(id, || {
                    format!("message {id} formatted with errors: {errors:?}")
                });
            }
            return text.into_owned();
        }
        report_once(id, || {
            format!("message {id} is in no catalog; its id is shown")
        });
        id.to_owned()
    }

    /// The localizer kept in `ctx` by [`Localizer::install`] (English if none was).
    pub fn of(ctx: &egui::Context) -> Arc<Localizer> {
        let id = context_id();
        if let Some(localizer) = ctx.data(|data| data.get_temp::<Arc<Localizer>>(id)) {
            return localizer;
        }
        let english = Arc::new(Localizer::english());
        ctx.data_mut(|data| data.insert_temp(id, Arc::clone(&english)));
        english
    }

    /// Makes `localizer` the one drawing code of `ctx` finds with [`Localizer::of`].
    pub fn install(ctx: &egui::Context, localizer: Arc<Localizer>) {
        ctx.data_mut(|data| data.insert_temp(context_id(), localizer));
    }
}

fn context_id() -> egui::Id {
    egui::Id::unique("reframe-i18n-localizer")
}

/// Logs a catalog problem once per message id (each frame would repeat it otherwise).
fn report_once(id: &str, message: impl FnOnce() -> String) {
    static REPORTED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut reported = REPORTED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if reported.insert(id.to_owned()) {
        log::warn!("{}", message());
    }
}

fn source(language: &str) -> &'static str {
    CATALOGS
        .iter()
        .find(|(tag, _)| *tag == language)
        .map_or("", |(_, source)| *source)
}

/// The bundle of a catalog. Parse errors are logged and the messages that parsed are kept;
/// the catalog tests make sure that none ship.
fn bundle(language: &str, source: &str) -> Bundle {
    let langid: unic_langid::LanguageIdentifier = language.parse().unwrap_or_default();
    let mut bundle = Bundle::new_concurrent(vec![langid]);
    bundle.set_use_isolating(false);
    let resource = match FluentResource::try_new(source.to_owned()) {
        Ok(resource) => resource,
        Err((resource, errors)) => {
            log::warn!("catalog {language}.ftl has syntax errors: {errors:?}");
            resource
        }
    };
    if let Err(errors) = bundle.add_resource(resource) {
        log::warn!("catalog {language}.ftl has conflicting messages: {errors:?}");
    }
    bundle
}

/// A language the window can be shown in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    /// The tag of its catalog ("ja").
    pub tag: &'static str,
    /// Its name in its own script ("日本語"), from its catalog's `language-name`.
    pub name: String,
}

/// The languages there are catalogs for, English first.
pub fn languages() -> &'static [Language] {
    static LANGUAGES: OnceLock<Vec<Language>> = OnceLock::new();
    LANGUAGES.get_or_init(|| {
        CATALOGS
            .iter()
            .map(|(tag, _)| Language {
                tag,
                name: Localizer::new(tag).tr(LANGUAGE_NAME_ID),
            })
            .collect()
    })
}

/// The name of `tag`'s language in its own script (the tag itself if there is no catalog).
pub fn language_name(tag: &str) -> String {
    languages()
        .iter()
        .find(|language| language.tag == tag)
        .map_or_else(|| tag.to_owned(), |language| language.name.clone())
}

/// The catalog for a system locale such as `ja-JP`, `ja_JP.UTF-8` or `en-US`: the one whose
/// tag matches it in full, else in its first subtag; English when none does or when the
/// locale is unknown.
pub fn for_locale(locale: Option<&str>) -> &'static str {
    let Some(locale) = locale else {
        return FALLBACK;
    };
    // POSIX style: strip the encoding and modifier, use '-' between subtags.
    let locale = locale
        .split(['.', '@'])
        .next()
        .unwrap_or_default()
        .replace('_', "-");
    let primary = locale.split('-').next().unwrap_or_default();
    let tags = || CATALOGS.iter().map(|(tag, _)| *tag);
    tags()
        .find(|tag| tag.eq_ignore_ascii_case(&locale))
        .or_else(|| tags().find(|tag| tag.eq_ignore_ascii_case(primary)))
        .unwrap_or(FALLBACK)
}

/// The system's locale as the OS reports it (`LANG`, `LC_ALL`, … on Linux).
pub fn system_locale() -> Option<String> {
    sys_locale::get_locale()
}

#[cfg(test)]
mod tests;
