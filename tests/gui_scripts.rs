//! Japanese, Chinese and Korean file names in the real `App` (egui_kittest): the queue, the
//! details of the selected job and the resume dialog show each name, and every character of
//! it has a glyph in the fonts egui loaded (egui's own plus the system fallback). The fonts
//! are asked, not the pixels: a missing glyph would render as a box.
//!
//! Each runs with the window in English and in Japanese (a Japanese system locale). Needs a
//! CJK font on the system (`scripts/deps.sh` installs `fonts-noto-cjk`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use reframe::gui::{App, AppConfig, Command};
use reframe::supervisor::{SupervisorConfig, WorkerCommand};

mod gui_support;

use gui_support::{TestDirs, drop_file};

const NAMES: [&str; 3] = [
    "エピソード01 「テスト」.mp4",
    "第一集 测试视频.mkv",
    "에피소드 테스트.mp4",
];

/// The test's folders; how this file starts the window is added below (the shared module is
/// part of this test crate, so its type takes methods here).
type Env = TestDirs;

impl Env {
    fn config(&self, locale: Option<&str>) -> AppConfig {
        let worker = WorkerCommand::new(env!("CARGO_BIN_EXE_reframe"))
            .arg("worker")
            .arg("process")
            .env("REFRAME_CACHE_DIR", self.path("cache"))
            .env("REFRAME_CONFIG_DIR", self.path("config"));
        AppConfig {
            config_dir: Some(self.path("config")),
            sessions_root: Some(self.sessions_root()),
            supervisor: SupervisorConfig::new(worker),
            preview_worker: WorkerCommand::new(env!("CARGO_BIN_EXE_reframe"))
                .arg("worker")
                .arg("preview")
                .env("REFRAME_CACHE_DIR", self.path("cache")),
            locale: locale.map(str::to_owned),
        }
    }

    fn harness(&self, files: Vec<PathBuf>, locale: Option<&str>) -> Harness<'static, App> {
        let config = self.config(locale);
        Harness::builder()
            .with_size(egui::vec2(1200.0, 760.0))
            .build_eframe(move |cc| App::new(cc.egui_ctx.clone(), config, files))
    }
}

fn step_until(harness: &mut Harness<'static, App>, what: &str, mut done: impl FnMut(&App) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.run_steps(2);
}

/// The characters of `text` that no loaded font has.
fn missing_glyphs(harness: &Harness<'static, App>, text: &str) -> Vec<char> {
    let font = egui::FontId::proportional(14.0);
    harness.ctx.fonts_mut(|fonts| {
        text.chars()
            .filter(|&c| !c.is_whitespace() && !fonts.has_glyph(&font, c))
            .collect()
    })
}

fn assert_all_glyphs(harness: &Harness<'static, App>, text: &str, place: &str) {
    let missing = missing_glyphs(harness, text);
    assert!(
        missing.is_empty(),
        "{place}: no font has {missing:?} of {text:?} (a CJK font is needed: scripts/deps.sh installs fonts-noto-cjk)"
    );
}

/// The window in English (no locale) and in Japanese.
const LOCALES: [(Option<&str>, &str); 2] = [(None, "en"), (Some("ja_JP.UTF-8"), "ja")];

#[test]
fn queue_and_details_show_cjk_names_with_every_glyph() {
    let env = Env::new();
    let clips: Vec<PathBuf> = NAMES
        .iter()
        .map(|name| env.pattern_clip(name, 1, "160x120"))
        .collect();
    for (locale, language) in LOCALES {
        queue_and_details(&env, &clips, locale, language);
    }
}

fn queue_and_details(env: &Env, clips: &[PathBuf], locale: Option<&str>, language: &str) {
    let mut harness = env.harness(clips.to_vec(), locale);
    assert_eq!(harness.state().language(), language);
    step_until(&mut harness, "the files are queued", |app| {
        app.queue().jobs.len() == NAMES.len()
    });
    // egui's own fonts have none of these: the fallback is what draws them.
    let egui_only = egui::Context::default();
    let mut output = egui_only.run_ui(Default::default(), |_| {});
    output.textures_delta.clear();
    let kana_in_egui =
        egui_only.fonts_mut(|fonts| fonts.has_glyph(&egui::FontId::proportional(14.0), 'エ'));
    assert!(
        !kana_in_egui,
        "egui's own fonts now have kana: this test proves nothing"
    );

    for (name, clip) in NAMES.iter().zip(clips) {
        assert!(
            harness.query_all_by_label(name).next().is_some(),
            "{name} is not in the queue"
        );
        assert_all_glyphs(&harness, name, "queue");
        // The details of the selected job show its full path.
        let id = harness
            .state()
            .queue()
            .jobs
            .iter()
            .find(|job| job.input == *clip)
            .map(|job| job.id)
            .expect("queued");
        harness.state_mut().apply(Command::Select(id));
        harness.run_steps(3);
        assert_eq!(harness.state().selected(), Some(id));
        assert_all_glyphs(&harness, &clip.display().to_string(), "details");
    }
}

/// A run stopped just after it started leaves a session: dropping the file again offers it.
#[test]
fn the_resume_dialog_shows_a_cjk_name_with_every_glyph() {
    let env = Env::new();
    let clip = env.pattern_clip(NAMES[0], 6, "160x120");
    interrupted_run(&env, &clip);
    for ((locale, language), title) in LOCALES
        .into_iter()
        .zip(["A previous run was found", RESUME_TITLE_JA])
    {
        resume_dialog(&env, &clip, locale, language, title);
    }
}

/// `resume-title` in i18n/ja.ftl.
const RESUME_TITLE_JA: &str = "以前の実行が見つかりました";

fn resume_dialog(env: &Env, clip: &Path, locale: Option<&str>, language: &str, title: &str) {
    let mut harness = env.harness(vec![], locale);
    assert_eq!(harness.state().language(), language);
    drop_file(&mut harness, clip);
    step_until(&mut harness, "the resume dialog opens", |app| {
        app.resume_offer().is_some()
    });
    assert!(harness.query_by_label(title).is_some(), "no {title:?}");
    assert_all_glyphs(&harness, title, "resume dialog title");
    assert!(
        harness.query_all_by_label(NAMES[0]).next().is_some(),
        "the dialog names the file"
    );
    assert_all_glyphs(&harness, NAMES[0], "resume dialog");
}

/// `reframe run` killed once its first chunk is done (the session has progress to resume).
fn interrupted_run(env: &Env, clip: &Path) {
    let mut child = Process::new(env!("CARGO_BIN_EXE_reframe"))
        .args(["run", "--json", "--chunk-seconds", "0.5"])
        .arg(clip)
        .env("REFRAME_CACHE_DIR", env.path("cache"))
        .env("REFRAME_CONFIG_DIR", env.path("config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("reframe runs");
    let stdout = child.stdout.take().expect("piped");
    let started = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("\"chunk-done\""));
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "the run never started its job");
}
