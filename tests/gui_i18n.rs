//! The window in Japanese, driven through egui_kittest: the language chosen in Settings applies
//! at once, is saved and comes back on the next start; the system locale picks the language
//! while none is chosen; a job run (from a scripted processing worker), its details and its
//! cancellation read in Japanese.
//!
//! egui's bundled fonts have no Japanese glyphs: the window's system-font fallback must find
//! them (a missing glyph fails the test; `scripts/deps.sh` installs fonts-noto-cjk).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use reframe::gui::{App, AppConfig, JobState, PreviewSource};
use reframe::preview::{PreviewReply, PreviewRequest};
use reframe::supervisor::{SupervisorConfig, WorkerCommand};

mod gui_support;

use gui_support::TestDirs;

/// Answers no preview request (the tests look at the window's words, not at frames).
#[derive(Clone, Default)]
struct Silent(Arc<Mutex<u64>>);

impl PreviewSource for Silent {
    fn request(&mut self, _request: PreviewRequest) -> u64 {
        let mut id = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *id += 1;
        *id
    }

    fn poll(&mut self) -> Vec<(u64, PreviewReply)> {
        Vec::new()
    }

    fn shutdown(&mut self) {}
}

/// The test's folders; how this file starts the window is added below (the shared module is
/// part of this test crate, so its type takes methods here).
type Env = TestDirs;

impl Env {
    fn harness(
        &self,
        locale: Option<&str>,
        worker: WorkerCommand,
        files: Vec<PathBuf>,
    ) -> Harness<'static, App> {
        let config = AppConfig {
            config_dir: Some(self.config_dir()),
            sessions_root: Some(self.sessions_root()),
            supervisor: SupervisorConfig::new(worker),
            preview_worker: WorkerCommand::new("unused"),
            locale: locale.map(str::to_owned),
        };
        Harness::builder()
            .with_size(egui::vec2(1200.0, 760.0))
            // No `allow_missing_glyphs`: a Japanese label without a glyph fails the test (the
            // system font fallback must find one; scripts/deps.sh installs fonts-noto-cjk).
            .build_eframe(move |cc| {
                App::with_preview_source(
                    cc.egui_ctx.clone(),
                    config,
                    files,
                    Box::new(Silent::default()),
                )
            })
    }

    fn saved_language(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.config_dir().join("gui-settings.json"))
            .expect("the settings were saved");
        let settings: serde_json::Value = serde_json::from_str(&text).expect("JSON settings");
        settings["language"].clone()
    }
}

fn step_until(
    harness: &mut Harness<'static, App>,
    what: &str,
    mut done: impl FnMut(&mut Harness<'static, App>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        harness.step();
        if done(harness) {
            harness.step();
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_language_chosen_in_settings_applies_at_once_and_is_remembered() {
    let env = Env::new();
    let mut harness = env.harness(None, WorkerCommand::new("unused"), Vec::new());
    harness.run_steps(2);
    assert_eq!(harness.state().language(), "en", "no locale: English");
    assert!(harness.query_by_label("▶ Start").is_some());
    assert!(
        harness
            .query_by_label("Drop videos or a folder here")
            .is_some()
    );

    harness.get_by_label("Language").click();
    harness.run_steps(2);
    assert!(
        harness.query_by_label("English").is_some(),
        "each catalog is offered"
    );
    harness.get_by_label("日本語").click();
    harness.run_steps(3);
    assert_eq!(harness.state().language(), "ja");
    assert!(harness.query_by_label("▶ Start").is_none());
    assert!(harness.query_by_label("▶ 開始").is_some());
    assert!(harness.query_by_label("設定").is_some());
    assert!(
        harness
            .query_by_label("ここに動画またはフォルダーをドロップ")
            .is_some()
    );
    assert!(harness.query_by_label("書き出し先").is_some());
    harness.state().flush_saves();
    assert_eq!(env.saved_language(), "ja");
    drop(harness);

    // The next start speaks Japanese from its first frame.
    let mut harness = env.harness(None, WorkerCommand::new("unused"), Vec::new());
    harness.run_steps(2);
    assert_eq!(harness.state().language(), "ja");
    assert!(harness.query_by_label("▶ 開始").is_some());

    // Back to the system's language, named in its own script.
    harness.get_by_label("言語").click();
    harness.run_steps(2);
    harness.get_by_label("システム（English）").click();
    harness.run_steps(3);
    assert_eq!(harness.state().language(), "en");
    assert!(harness.query_by_label("▶ Start").is_some());
    harness.state().flush_saves();
    assert_eq!(env.saved_language(), serde_json::Value::Null);
}

#[test]
fn a_japanese_system_locale_is_followed_until_a_language_is_chosen() {
    let env = Env::new();
    let mut harness = env.harness(
        Some("ja_JP.UTF-8"),
        WorkerCommand::new("unused"),
        Vec::new(),
    );
    harness.run_steps(2);
    assert_eq!(harness.state().language(), "ja");
    assert!(harness.query_by_label("▶ 開始").is_some());
    assert!(harness.query_by_label("言語").is_some());

    let mut harness = env.harness(
        Some("fr_FR.UTF-8"),
        WorkerCommand::new("unused"),
        Vec::new(),
    );
    harness.run_steps(2);
    assert_eq!(
        harness.state().language(),
        "en",
        "no French catalog: English"
    );
}

/// A processing worker that starts the job, reports the upscale step half done, then answers
/// the window's cancel.
fn scripted_worker() -> WorkerCommand {
    let script = r#"read hello
echo '{"type":"hello","version":1,"pid":'$$'}'
read run
job=$(echo "$run" | sed 's/.*"job":\([0-9]*\).*/\1/')
echo '{"type":"job-started","job":'$job',"input":"/in.mp4","output":"/out.mkv","session_id":"s","resumed":false,"chunks_total":2,"chunks_done":0,"frames_total":48}'
echo '{"type":"step-changed","job":'$job',"step":"validate","status":"completed"}'
echo '{"type":"step-changed","job":'$job',"step":"upscale","status":"in-progress"}'
echo '{"type":"progress","job":'$job',"step":"upscale","percent":50.0,"frames_done":24,"frames_total":48,"fps":12.5,"eta_secs":30.0}'
echo '{"type":"chunk-done","job":'$job',"index":0,"chunks_done":1,"chunks_total":2}'
read cancel
echo '{"type":"job-cancelled","job":'$job'}'
read next
"#;
    WorkerCommand::new("sh").arg("-c").arg(script)
}

fn fake_video(env: &Env, name: &str) -> PathBuf {
    let path = env.videos().join(name);
    std::fs::write(&path, b"not really a video").expect("a test file");
    path
}

fn has(harness: &Harness<'static, App>, text: &str) -> bool {
    harness.query_all_by_label_contains(text).next().is_some()
}

#[test]
fn a_job_runs_shows_its_details_and_is_cancelled_in_japanese() {
    let env = Env::new();
    let clip = fake_video(&env, "live.mp4");
    let mut harness = env.harness(Some("ja-JP"), scripted_worker(), vec![clip.clone()]);
    step_until(&mut harness, "the file is queued", |h| {
        let app = h.state_mut();
        app.queue().jobs.len() == 1 && !app.is_busy()
    });
    assert!(
        has(&harness, "1 本の動画を追加しました"),
        "the notice counts videos"
    );
    assert!(has(&harness, "待機中"));

    harness.get_by_label("▶ 開始").click();
    step_until(&mut harness, "the upscale step is half done", |h| {
        has(h, "アップスケール 50%")
    });
    assert_eq!(harness.state().queue().jobs[0].state, JobState::Running);
    assert!(has(&harness, "12.5 fps"));
    assert!(has(&harness, "残り 0:30"));
    assert!(has(&harness, "チャンク 1/2"));
    assert!(
        harness
            .state()
            .log_lines()
            .any(|line| line.text == "live.mp4 を開始します"),
        "the activity log speaks Japanese too"
    );

    harness.get_by_label("詳細").click();
    harness.run_steps(2);
    for label in [
        "入力",
        "出力",
        "検証",
        "アップスケール",
        "パッケージ化",
        "最終確認",
    ] {
        assert!(
            harness.query_by_label(label).is_some(),
            "details show {label}"
        );
    }
    assert!(has(&harness, "2 個中 1 個完了"));

    harness.get_by_label("■ キャンセル").click();
    step_until(&mut harness, "the job is cancelled", |h| {
        h.state().queue().jobs[0].state == JobState::Cancelled
    });
    assert!(harness.query_by_label("⟲ 再開").is_some());
    assert!(has(&harness, "キャンセル済み · 再開できます"));
    assert!(
        harness
            .state()
            .log_lines()
            .any(|line| line.text == "live.mp4：キャンセルしました。再開できます")
    );
}
