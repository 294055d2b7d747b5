//! The window's fonts: egui's own (Ubuntu, Hack, the emoji fonts), then whatever the system
//! has for the scripts those lack. File names, subtitles and folders are often Japanese,
//! Chinese or Korean, and egui ships no CJK glyphs.
//!
//! System fonts come from `egui_system_font_provider` (the egui project's own crate; fontique
//! underneath): it asks the platform's font fallback (fontconfig, DirectWrite, CoreText) for
//! a font that has a character no installed font has, memory-maps it, and appends it to the
//! family. Nothing is bundled and nothing is looked up for text that egui's fonts cover: the
//! enumeration of the system fonts runs on a background thread from start-up, and only the
//! first character that needs it waits for it.
//!
//! [`FallbackFonts`] wraps that provider so that a script with no font at all on this system
//! is reported once, with the package that brings one, instead of only showing boxes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use egui::{FallbackRequest, FontInsert, FontProvider};
use egui_system_font_provider::SystemFontProvider;

/// A script the window met that no font on this system can draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingFont {
    /// The script's id (`cjk`, `arabic`, …), which the message catalogs name in each language
    /// (`log-missing-font`).
    pub script: &'static str,
    /// A character of it that showed as a box.
    pub example: char,
    /// The Debian/Ubuntu package that brings a font for it.
    pub debian_package: &'static str,
}

/// egui's default fonts, with Hack behind Ubuntu in the proportional family: it has the
/// arrows and symbols of messages such as "scale: 2 → 3".
pub fn definitions() -> egui::FontDefinitions {
    let mut fonts = egui::FontDefinitions::default();
    if fonts.font_data.contains_key("Hack")
        && let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional)
    {
        let at = family.len().min(1);
        family.insert(at, "Hack".to_owned());
    }
    fonts
}

/// Installs egui's fonts and the system fallback on `ctx`. `locale` (a BCP-47 tag such as
/// `ja`: the window's language when the user chose one) picks between the Japanese, Chinese
/// and Korean forms of the same ideographs, from the next start on when it changes; `None`
/// follows the system. `on_missing` hears once per script that nothing can draw.
pub fn install(
    ctx: &egui::Context,
    locale: Option<&str>,
    on_missing: impl Fn(MissingFont) + Send + Sync + 'static,
) {
    ctx.set_fonts(definitions());
    ctx.set_font_providers(vec![Arc::new(FallbackFonts::new(
        SystemFontProvider::new().with_locale(locale),
        on_missing,
    ))]);
}

/// A [`FontProvider`] that asks `inner` and reports the scripts it finds nothing for.
pub struct FallbackFonts<P, F> {
    inner: P,
    on_missing: F,
    reported: Mutex<HashSet<&'static str>>,
}

impl<P: FontProvider, F: Fn(MissingFont) + Send + Sync> FallbackFonts<P, F> {
    pub fn new(inner: P, on_missing: F) -> Self {
        Self {
            inner,
            on_missing,
            reported: Mutex::new(HashSet::new()),
        }
    }
}

impl<P: FontProvider, F: Fn(MissingFont) + Send + Sync> FontProvider for FallbackFonts<P, F> {
    fn fonts_for_family(&self, family: &egui::FontFamily) -> Vec<FontInsert> {
        self.inner.fonts_for_family(family)
    }

    fn font_for(&self, request: &FallbackRequest<'_>) -> Option<FontInsert> {
        let found = self.inner.font_for(request);
        if found.is_none()
            && let Some(example) = request.cluster.chars().next()
            && let Some((script, debian_package)) = script_font_package(example)
        {
            let first = self
                .reported
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(script);
            if first {
                (self.on_missing)(MissingFont {
                    script,
                    example,
                    debian_package,
                });
            }
        }
        found
    }
}

/// The script of `c` (an id the catalogs name), and the Debian/Ubuntu package with a font for
/// it; `None` for characters of no script worth a notice (symbols, punctuation, private use).
pub fn script_font_package(c: char) -> Option<(&'static str, &'static str)> {
    const CJK: (&str, &str) = ("cjk", "fonts-noto-cjk");
    let code = u32::from(c);
    let named = match code {
        0x1100..=0x11FF | 0x3130..=0x318F | 0xA960..=0xA97F | 0xAC00..=0xD7FF => CJK,
        0x2E80..=0x2FDF | 0x3000..=0x303F => CJK,
        0x3040..=0x30FF | 0x3100..=0x312F | 0x31A0..=0x31FF | 0x3200..=0x4DBF => CJK,
        0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF | 0x20000..=0x3FFFF => CJK,
        0x0590..=0x05FF => ("hebrew", "fonts-noto-core"),
        0x0600..=0x06FF | 0x0750..=0x077F => ("arabic", "fonts-noto-core"),
        0x0900..=0x097F => ("devanagari", "fonts-noto-core"),
        0x0980..=0x0DFF => ("indic", "fonts-noto-core"),
        0x0E00..=0x0E7F => ("thai", "fonts-noto-core"),
        0x0E80..=0x0EFF => ("lao", "fonts-noto-core"),
        0x10A0..=0x10FF => ("georgian", "fonts-noto-core"),
        0x0530..=0x058F => ("armenian", "fonts-noto-core"),
        0x1780..=0x17FF => ("khmer", "fonts-noto-core"),
        0x1000..=0x109F => ("myanmar", "fonts-noto-core"),
        0x1200..=0x139F => ("ethiopic", "fonts-noto-core"),
        _ => return None,
    };
    Some(named)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A provider that never finds anything, like a system without the fonts.
    struct Nothing;
    impl FontProvider for Nothing {}

    fn request<'a>(cluster: &'a str) -> FallbackRequest<'a> {
        FallbackRequest {
            cluster,
            family: &egui::FontFamily::Proportional,
        }
    }

    #[test]
    fn a_script_without_a_font_is_reported_once_with_its_package() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let fonts = FallbackFonts::new(Nothing, move |missing| {
            sink.lock().expect("test lock").push(missing);
        });
        for cluster in ["エ", "ピ", "한", "日", "→", "ก"] {
            assert!(fonts.font_for(&request(cluster)).is_none());
        }
        let seen = seen.lock().expect("test lock");
        assert_eq!(
            *seen,
            vec![
                MissingFont {
                    script: "cjk",
                    example: 'エ',
                    debian_package: "fonts-noto-cjk",
                },
                MissingFont {
                    script: "thai",
                    example: 'ก',
                    debian_package: "fonts-noto-core",
                },
            ]
        );
    }

    #[test]
    fn found_fonts_are_not_reported() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let finds = |request: &FallbackRequest<'_>| {
            Some(FontInsert {
                name: request.cluster.to_owned(),
                data: egui::FontData::from_static(&[]),
                families: Vec::new(),
            })
        };
        let fonts = FallbackFonts::new(finds, move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        assert!(fonts.font_for(&request("日")).is_some());
        assert_eq!(calls.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn scripts_of_file_names() {
        assert_eq!(script_font_package('a'), None);
        assert_eq!(script_font_package('「'), script_font_package('エ'));
        assert_eq!(script_font_package('０'), script_font_package('エ'));
        assert_eq!(
            script_font_package('测').map(|(_, p)| p),
            Some("fonts-noto-cjk")
        );
        assert_eq!(
            script_font_package('ع').map(|(_, p)| p),
            Some("fonts-noto-core")
        );
    }
}
