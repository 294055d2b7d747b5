//! The catalogs against each other and against the code: same messages and variables in every
//! language, every id the window asks for is in English, and no English message is unused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fluent_syntax::ast;

use super::*;

/// Message id → the variables its value and attributes use.
type Messages = BTreeMap<String, BTreeSet<String>>;

fn messages(tag: &str, source: &str) -> Messages {
    let resource = match fluent_syntax::parser::parse(source) {
        Ok(resource) => resource,
        Err((_, errors)) => panic!("{tag}.ftl does not parse: {errors:#?}"),
    };
    let mut messages = Messages::new();
    for entry in resource.body {
        match entry {
            ast::Entry::Message(message) => {
                let mut variables = BTreeSet::new();
                if let Some(value) = &message.value {
                    pattern_variables(value, &mut variables);
                }
                for attribute in &message.attributes {
                    pattern_variables(&attribute.value, &mut variables);
                }
                let id = message.id.name.to_owned();
                assert!(
                    messages.insert(id.clone(), variables).is_none(),
                    "{tag}.ftl defines {id} twice"
                );
            }
            ast::Entry::Junk { content } => panic!("{tag}.ftl has junk: {content}"),
            _ => {}
        }
    }
    messages
}

fn pattern_variables(pattern: &ast::Pattern<&str>, out: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            expression_variables(expression, out);
        }
    }
}

fn expression_variables(expression: &ast::Expression<&str>, out: &mut BTreeSet<String>) {
    match expression {
        ast::Expression::Inline(inline) => inline_variables(inline, out),
        ast::Expression::Select { selector, variants } => {
            inline_variables(selector, out);
            for variant in variants {
                pattern_variables(&variant.value, out);
            }
        }
    }
}

fn inline_variables(inline: &ast::InlineExpression<&str>, out: &mut BTreeSet<String>) {
    match inline {
        ast::InlineExpression::VariableReference { id } => {
            out.insert(id.name.to_owned());
        }
        ast::InlineExpression::FunctionReference { arguments, .. } => {
            for argument in &arguments.positional {
                inline_variables(argument, out);
            }
            for named in &arguments.named {
                inline_variables(&named.value, out);
            }
        }
        ast::InlineExpression::Placeable { expression } => expression_variables(expression, out),
        _ => {}
    }
}

fn english() -> Messages {
    messages(FALLBACK, source(FALLBACK))
}

#[test]
fn english_comes_first_and_every_catalog_loads_without_errors() {
    assert_eq!(CATALOGS[0].0, FALLBACK);
    assert!(CATALOGS.len() >= 2, "English and Japanese at least");
    for (tag, source) in CATALOGS {
        messages(tag, source);
        assert!(
            FluentResource::try_new((*source).to_owned()).is_ok(),
            "{tag}.ftl"
        );
        let mut bundle = Bundle::new_concurrent(vec![tag.parse().expect("a language tag")]);
        let resource = FluentResource::try_new((*source).to_owned()).expect("parsed above");
        assert!(bundle.add_resource(resource).is_ok(), "{tag}.ftl");
    }
}

#[test]
fn every_catalog_has_the_same_messages_with_the_same_variables() {
    let english = english();
    for (tag, source) in &CATALOGS[1..] {
        let other = messages(tag, source);
        let missing: Vec<_> = english
            .keys()
            .filter(|id| !other.contains_key(*id))
            .collect();
        let extra: Vec<_> = other
            .keys()
            .filter(|id| !english.contains_key(*id))
            .collect();
        assert!(missing.is_empty(), "{tag}.ftl lacks {missing:?}");
        assert!(
            extra.is_empty(),
            "{tag}.ftl has ids English lacks: {extra:?}"
        );
        for (id, variables) in &english {
            assert_eq!(
                &other[id], variables,
                "{tag}.ftl: {id} uses other variables than in English"
            );
        }
    }
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The message ids passed as literals to `tr!(…, "id"…)`, `.tr("id")` and `.tr_args("id", …)`,
/// comments left out.
fn ids_used_in(code: &str) -> Vec<String> {
    let code: String = code
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut ids = Vec::new();
    for (pattern, key_is_first) in [("tr!(", false), (".tr(", true), (".tr_args(", true)] {
        for (at, _) in code.match_indices(pattern) {
            let before = code[..at].chars().next_back();
            if !key_is_first && before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = code[at + pattern.len()..].trim_start();
            let rest = if key_is_first {
                rest
            } else {
                // After the localizer expression and its comma.
                match rest.split_once(',') {
                    Some((_, rest)) => rest.trim_start(),
                    None => continue,
                }
            };
            if let Some(rest) = rest.strip_prefix('"')
                && let Some((id, _)) = rest.split_once('"')
            {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

#[test]
fn every_id_the_code_uses_is_in_english_and_every_english_message_is_used() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root.join("gui"), &mut files);
    rust_files(&root.join("i18n"), &mut files);
    let this_file = root.join("i18n").join("tests.rs");
    let english = english();
    let mut used = BTreeSet::from([LANGUAGE_NAME_ID.to_owned()]);
    for file in files.iter().filter(|file| **file != this_file) {
        let code = std::fs::read_to_string(file).expect("a readable source file");
        for id in ids_used_in(&code) {
            assert!(
                english.contains_key(&id),
                "{} asks for {id}, which en.ftl lacks",
                file.display()
            );
            used.insert(id);
        }
    }
    assert!(used.len() > 100, "the scan found only {used:?}");
    let unused: Vec<_> = english.keys().filter(|id| !used.contains(*id)).collect();
    assert!(
        unused.is_empty(),
        "en.ftl messages no code asks for: {unused:?}"
    );
}

#[test]
fn the_scan_finds_ids_in_each_form_and_skips_comments() {
    let code = r#"
        let a = tr!(app.i18n, "one");
        let b = tr!(
            i18n,
            "two",
            count = 3,
        );
        let c = i18n.tr("three");
        let d = i18n.tr_args("four", &[]);
        // tr!(i18n, "commented")
        let e = self.str!(x, "not-a-call");
    "#;
    assert_eq!(ids_used_in(code), ["one", "two", "three", "four"]);
}

#[test]
fn plurals_and_counters_read_naturally() {
    let en = Localizer::english();
    let ja = Localizer::new("ja");
    assert_eq!(tr!(en, "notice-added", count = 1), "Added 1 video");
    assert_eq!(tr!(en, "notice-added", count = 3), "Added 3 videos");
    assert_eq!(
        tr!(ja, "notice-added", count = 1),
        "1 本の動画を追加しました"
    );
    assert_eq!(
        tr!(ja, "notice-added", count = 3),
        "3 本の動画を追加しました"
    );
    assert_eq!(
        tr!(en, "resume-dialog-more", count = 1),
        "1 more file with a previous run after this one."
    );
    assert_eq!(
        tr!(en, "resume-dialog-more", count = 2),
        "2 more files with a previous run after this one."
    );
}

#[test]
fn an_unknown_language_is_english_and_the_system_locale_picks_a_catalog() {
    assert_eq!(Localizer::new("xx").language(), FALLBACK);
    assert_eq!(Localizer::new("ja").tr("start"), "▶ 開始");
    assert_eq!(Localizer::english().tr("start"), "▶ Start");
    assert_eq!(for_locale(Some("ja_JP.UTF-8")), "ja");
    assert_eq!(for_locale(Some("ja-JP")), "ja");
    assert_eq!(for_locale(Some("ja")), "ja");
    assert_eq!(for_locale(Some("en-GB")), "en");
    assert_eq!(for_locale(Some("fr_FR@euro")), "en");
    assert_eq!(for_locale(Some("C")), "en");
    assert_eq!(for_locale(None), "en");
    assert_eq!(language_name("ja"), "日本語");
    assert_eq!(language_name("en"), "English");
}

#[test]
fn a_message_missing_in_a_language_comes_from_english_and_an_unknown_id_shows_itself() {
    let partial = Localizer::with_sources(
        "ja",
        "start = ▶ 開始\n",
        Some("start = ▶ Start\ncancel = ■ Cancel\n"),
    );
    assert_eq!(partial.tr("start"), "▶ 開始");
    assert_eq!(partial.tr("cancel"), "■ Cancel");
    assert_eq!(partial.tr("no-such-message"), "no-such-message");
    // No bidi isolation marks around arguments (egui would draw them as boxes).
    let en = Localizer::english();
    assert_eq!(
        tr!(en, "log-starting", name = "a.mp4"),
        "starting a.mp4",
        "no U+2068/U+2069 around arguments"
    );
}
