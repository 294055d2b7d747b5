//! The real `App` driven through egui_kittest (AccessKit labels, no display): dropping files,
//! the resume dialog, and jobs run by the real `reframe worker process` child — to the end,
//! cancelled, and killed with SIGKILL.
//!
//! Each test gets its own config dir and session store; the worker is the built `reframe`
//! binary. Tests take a lock so that two real jobs never share the two cores.

use std::path::PathBuf;
use std::process::Command as Process;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use reframe::gui::{App, AppConfig, JobState};
use reframe::protocol::{Step, StepStatus};
use reframe::supervisor::{SupervisorConfig, WorkerCommand};

mod gui_support;
mod neural_support;

use gui_support::{TestDirs, drop_file};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The test's folders; how this file starts the window is added below (the shared module is
/// part of this test crate, so its type takes methods here).
type Env = TestDirs;

impl Env {
    fn app_config(&self) -> AppConfig {
        let worker = WorkerCommand::new(env!("CARGO_BIN_EXE_reframe"))
            .arg("worker")
            .arg("process")
            .env("REFRAME_CACHE_DIR", self.cache_dir())
            .env("REFRAME_CONFIG_DIR", self.config_dir());
        let mut supervisor = SupervisorConfig::new(worker);
        supervisor.cancel_grace = Duration::from_secs(3);
        AppConfig {
            config_dir: Some(self.config_dir()),
            sessions_root: Some(self.sessions_root()),
            supervisor,
            preview_worker: WorkerCommand::new(env!("CARGO_BIN_EXE_reframe"))
                .arg("worker")
                .arg("preview")
                .env("REFRAME_CACHE_DIR", self.cache_dir()),
            // English whatever the machine's locale: the tests find widgets by their labels.
            locale: None,
        }
    }

    fn harness(&self, files: Vec<PathBuf>) -> Harness<'static, App> {
        let config = self.app_config();
        Harness::builder()
            .with_size(egui::vec2(1200.0, 760.0))
            .build_eframe(move |cc| App::new(cc.egui_ctx.clone(), config, files))
    }
}

/// Steps the app until `done` holds, failing with `what` after `timeout`.
fn step_until(
    harness: &mut Harness<'static, App>,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&mut App) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        harness.step();
        if done(harness.state_mut()) {
            harness.step();
            return;
        }
        if Instant::now() > deadline {
            let log: Vec<String> = harness
                .state()
                .log_lines()
                .map(|line| line.text.clone())
                .collect();
            panic!(
                "timed out waiting until {what}; queue: {:#?}\nlog:\n{}",
                harness.state().queue().jobs,
                log.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn first_state(app: &App) -> Option<JobState> {
    app.queue().jobs.first().map(|job| job.state)
}

/// Steps until the first job has ended (`what` names the wait) and returns it, failing unless
/// it finished.
fn wait_finished(
    harness: &mut Harness<'static, App>,
    timeout: Duration,
    what: &str,
) -> reframe::gui::Job {
    step_until(harness, timeout, what, |app| {
        matches!(
            first_state(app),
            Some(JobState::Finished | JobState::Failed)
        )
    });
    let job = harness.state().queue().jobs[0].clone();
    assert_eq!(job.state, JobState::Finished, "error: {:?}", job.error);
    job
}

fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Every live process whose parent chain leads to `root` (ffmpeg children of the worker).
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((_, rest)) = stat.rsplit_once(')')
            && let Some(ppid) = rest.split_whitespace().nth(1)
            && let Ok(ppid) = ppid.parse::<u32>()
        {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found
}

#[test]
fn dropping_a_video_adds_a_queue_entry_and_a_text_file_is_skipped() {
    let _serial = serial();
    let env = Env::new();
    let video = env.videos().join("holiday.mp4");
    std::fs::write(&video, b"not really a video").unwrap();
    let notes = env.videos().join("notes.txt");
    std::fs::write(&notes, b"x").unwrap();
    let mut harness = env.harness(vec![]);
    harness.step();
    assert!(
        harness
            .query_by_label("Drop videos or a folder here")
            .is_some(),
        "the empty state invites a drop"
    );

    drop_file(&mut harness, &video);
    drop_file(&mut harness, &notes);
    step_until(
        &mut harness,
        Duration::from_secs(10),
        "the drop is scanned",
        |app| !app.is_busy() && app.queue().jobs.len() == 1,
    );
    let job = &harness.state().queue().jobs[0];
    assert_eq!(job.input, video);
    assert_eq!(job.state, JobState::Queued);
    assert!(
        !harness
            .get_all_by_label("holiday.mp4")
            .collect::<Vec<_>>()
            .is_empty()
    );
    assert!(
        harness
            .query_by_label("Drop videos or a folder here")
            .is_none()
    );
    assert!(
        harness
            .state()
            .log_lines()
            .any(|line| line.text.contains("skipped, not a video file")
                && line.text.ends_with("notes.txt")),
        "the skipped file is listed with its reason"
    );

    // Delete removes the selected job; a second drop brings it back.
    harness.key_press(egui::Key::Delete);
    harness.step();
    assert!(harness.state().queue().jobs.is_empty());
    drop_file(&mut harness, &video);
    step_until(
        &mut harness,
        Duration::from_secs(10),
        "the drop is scanned",
        |app| !app.is_busy() && app.queue().jobs.len() == 1,
    );

    // Dropping it again does not queue it twice.
    drop_file(&mut harness, &video);
    step_until(
        &mut harness,
        Duration::from_secs(10),
        "the second drop is scanned",
        |app| !app.is_busy(),
    );
    assert_eq!(harness.state().queue().jobs.len(), 1);

    // The queue survives a restart.
    harness.state().flush_saves();
    drop(harness);
    let mut again = env.harness(vec![]);
    again.step();
    assert_eq!(again.state().queue().jobs.len(), 1);
    assert_eq!(again.state().queue().jobs[0].input, video);
}

#[test]
fn start_runs_a_job_to_completion_through_the_worker() {
    let _serial = serial();
    let env = Env::new();
    let clip = env.pattern_clip("short.mp4", 2, "160x90");
    let mut harness = env.harness(vec![clip.clone()]);
    step_until(
        &mut harness,
        Duration::from_secs(10),
        "the file is queued",
        |app| app.queue().jobs.len() == 1 && !app.is_busy(),
    );
    harness.get_by_label("▶ Start").click();
    let job = wait_finished(&mut harness, Duration::from_secs(180), "the job finishes");
    let output = job.output.clone().expect("a finished job has an output");
    assert!(output.exists(), "{}", output.display());
    for step in Step::ALL {
        assert_eq!(job.step(step).status, StepStatus::Completed);
    }
    assert!(harness.query_by_label("Show in folder").is_some());
    // The queue ran dry: the worker is stopped.
    step_until(
        &mut harness,
        Duration::from_secs(10),
        "the idle worker stops",
        |app| app.worker_pid().is_none(),
    );
}

#[test]
fn a_models_folder_chosen_in_the_window_offers_its_engines_and_jobs_use_it() {
    let _serial = serial();
    let env = Env::new();
    // Eight tiny frames: the neural engine runs unoptimised in test builds.
    let clip = env.videos().join("tiny clip.mp4");
    let status = Process::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=32x24:rate=24",
        ])
        .args(["-frames:v", "8", "-pix_fmt", "yuv420p", "-c:v", "libx264"])
        .arg(&clip)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not make the test clip");
    let mut harness = env.harness(vec![]);
    // The worker's own default models folder (under its config dir) is empty: the job can
    // only find the models through the folder chosen here.
    let empty = env.path("no models");
    std::fs::create_dir_all(&empty).expect("a test dir");
    harness
        .state_mut()
        .apply(reframe::gui::Command::SetModelsFolder(Some(empty.clone())));
    harness.step();
    let missing = "Not found here: animevideov3, waifu2x, waifu2x-photo, x4plus, x4plus-anime, \
                   realcugan, realcugan-pro, realcugan-nose, waifu2x-cunet";
    assert!(harness.query_by_label(missing).is_some());

    // Files copied into the folder while the window is open: opening the engine list looks
    // again.
    for name in ["WAIFU2X_ANIME_UP2X", "WAIFU2X_ANIME_UP2X_DENOISE1X"] {
        for ext in ["param", "bin"] {
            let file = format!("{name}.{ext}");
            std::fs::copy(neural_support::models_dir().join(&file), empty.join(&file))
                .expect("copy a model file");
        }
    }
    // And a model of the user's own, with one that cannot run.
    let custom = empty.join("custom");
    std::fs::create_dir_all(&custom).expect("a test dir");
    neural_support::write_esrgan_shaped_model(&custom, "my-esrgan", false);
    neural_support::write_esrgan_shaped_model(&custom, "broken", true);
    click(&mut harness, "Engine");
    assert!(harness.query_by_label("waifu2x").is_some());
    assert!(harness.query_by_label("waifu2x-photo").is_none());
    assert!(harness.query_by_label("my-esrgan").is_some());
    assert!(harness.query_by_label("broken").is_none());
    assert!(
        harness
            .query_by_label("Cannot use (hover for why): broken")
            .is_some()
    );
    harness.get_by_label("Engine").click();
    harness.step();

    harness
        .state_mut()
        .apply(reframe::gui::Command::SetModelsFolder(Some(
            neural_support::models_dir(),
        )));
    harness.step();
    assert!(harness.query_by_label_contains("Not found here").is_none());
    // Real-CUGAN's level 0 is its conservative model, and says so.
    click(&mut harness, "Engine");
    click(&mut harness, "realcugan");
    click(&mut harness, "Denoise");
    assert!(harness.query_by_label("0 (conservative)").is_some());
    assert!(harness.query_by_label("1").is_some());
    click(&mut harness, "Denoise");
    // At 4× it has no level 1 or 2 model: the menu does not offer them.
    click(&mut harness, "Size");
    click(&mut harness, "4× scale");
    click(&mut harness, "Denoise");
    assert!(harness.query_by_label("0 (conservative)").is_some());
    assert!(harness.query_by_label("3").is_some());
    assert!(harness.query_by_label("1").is_none());
    click(&mut harness, "Denoise");
    // waifu2x cunet at 1× only removes noise: no "Off", the lowest level asked for. (Picked
    // through the settings: it is below the fold of the engine list.)
    harness.state_mut().settings_mut().engine = "waifu2x-cunet".into();
    harness.step();
    click(&mut harness, "Size");
    click(&mut harness, "1× (denoise only)");
    assert_eq!(
        harness.get_by_label("Denoise").value().as_deref(),
        Some("0")
    );
    click(&mut harness, "Denoise");
    assert!(harness.query_by_label("Off").is_none());
    assert!(harness.query_by_label("3").is_some());
    click(&mut harness, "Denoise");
    click(&mut harness, "Size");
    click(&mut harness, "2× scale");
    click(&mut harness, "Denoise");
    assert!(harness.query_by_label("Off").is_some());
    click(&mut harness, "Denoise");
    // The engine list now has waifu2x; its denoise starts off (the plain model is there).
    click(&mut harness, "Engine");
    click(&mut harness, "waifu2x");
    assert_eq!(harness.state().settings().engine, "waifu2x");
    assert_eq!(
        harness.get_by_label("Denoise").value().as_deref(),
        Some("Off")
    );
    assert_eq!(harness.state().settings().denoise, None);

    drop_file(&mut harness, &clip);
    step_until(
        &mut harness,
        Duration::from_secs(10),
        "the file is queued",
        |app| app.queue().jobs.len() == 1 && !app.is_busy(),
    );
    harness.get_by_label("▶ Start").click();
    let job = wait_finished(&mut harness, Duration::from_secs(300), "the job finishes");
    let spec = job.spec.clone().expect("a started job keeps its spec");
    assert_eq!(spec.models_dir, Some(neural_support::models_dir()));
    assert_eq!((spec.engine.as_str(), spec.denoise), ("waifu2x", None));
    let output = job.output.clone().expect("a finished job has an output");
    let probe = Process::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(&output)
        .output()
        .expect("ffprobe runs");
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "64,48");

    // Back to the default folder (the Models row's button): without waifu2x there, the panel
    // falls back to the built-in engine.
    click(&mut harness, "Default");
    assert_eq!(harness.state().settings().models_dir, None);
    let default_has_it = reframe::engine::available()
        .iter()
        .any(|info| info.name == "waifu2x");
    let engine = harness.state().settings().engine.clone();
    assert_eq!(engine == "waifu2x", default_has_it, "{engine}");
}

/// "Save as preset…" in the settings panel asks for a name; Save writes the user preset and
/// the panel uses it.
#[test]
fn save_as_preset_asks_for_a_name_and_the_panel_uses_the_new_preset() {
    let _serial = serial();
    let env = Env::new();
    let mut harness = env.harness(vec![]);
    assert!(harness.query_by_label("Save as preset").is_none());
    click(&mut harness, "Save as preset…");
    assert!(
        harness.query_by_label("Save as preset").is_some(),
        "the dialog"
    );
    harness
        .get_by_role(egui::accesskit::Role::TextInput)
        .type_text("my_preset");
    harness.step();
    click(&mut harness, "Save");
    assert!(harness.query_by_label("Save as preset").is_none(), "closed");
    assert_eq!(harness.state().settings().preset, "my_preset");
    let saved = env.config_dir().join("presets").join("my_preset.json");
    assert!(saved.is_file(), "{} was not written", saved.display());
}

/// Starts a job long enough to be interrupted; returns once the upscale step is under way.
/// Clicks the widget labelled `label` and lets the window answer (a menu opens or closes).
fn click(harness: &mut Harness<'static, App>, label: &str) {
    harness.get_by_label(label).click();
    harness.step();
    harness.step();
}

fn start_long_job(env: &Env) -> (Harness<'static, App>, u32) {
    let clip = env.pattern_clip("long.mp4", 12, "320x180");
    let mut harness = env.harness(vec![clip]);
    harness.state_mut().settings_mut().chunk_seconds = 2.0;
    harness.state_mut().settings_mut().size = reframe::gui::OutputSize::Scale(4.0);
    step_until(
        &mut harness,
        Duration::from_secs(10),
        "the file is queued",
        |app| app.queue().jobs.len() == 1 && !app.is_busy(),
    );
    harness.get_by_label("▶ Start").click();
    step_until(
        &mut harness,
        Duration::from_secs(120),
        "the upscale step runs",
        |app| {
            app.queue().jobs[0].step(Step::Upscale).status == StepStatus::InProgress
                || app.queue().jobs[0].state != JobState::Running
                    && app.queue().jobs[0].state != JobState::Queued
        },
    );
    assert_eq!(first_state(harness.state()), Some(JobState::Running));
    let pid = harness
        .state_mut()
        .worker_pid()
        .expect("a worker runs the job");
    (harness, pid)
}

#[test]
fn cancel_stops_the_worker_and_leaves_no_child_process() {
    let _serial = serial();
    let env = Env::new();
    let (mut harness, worker) = start_long_job(&env);
    let family = descendants(worker);
    assert!(
        family.len() > 1,
        "the worker runs ffmpeg children: {family:?}"
    );

    // Closing the window while the job runs asks first; "Keep working" keeps it running.
    harness
        .input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    harness.step();
    harness.step();
    assert!(harness.query_by_label("A job is running").is_some());
    click(&mut harness, "Keep working");
    assert!(harness.query_by_label("A job is running").is_none());
    assert_eq!(first_state(harness.state()), Some(JobState::Running));

    harness.get_by_label("■ Cancel").click();
    step_until(
        &mut harness,
        Duration::from_secs(20),
        "the job is cancelled",
        |app| first_state(app) == Some(JobState::Cancelled) && app.worker_pid().is_none(),
    );
    for pid in family {
        assert!(!process_alive(pid), "process {pid} survived the cancel");
    }
    let job = &harness.state().queue().jobs[0];
    assert!(job.resumable);
    assert!(harness.query_by_label("⟲ Resume").is_some());
}

#[test]
fn a_worker_killed_with_sigkill_fails_the_job_resumably_and_resume_finishes_it() {
    let _serial = serial();
    let env = Env::new();
    let (mut harness, worker) = start_long_job(&env);
    // SAFETY: plain syscall on the pid of our own child.
    assert_eq!(unsafe { libc::kill(worker as i32, libc::SIGKILL) }, 0);
    step_until(
        &mut harness,
        Duration::from_secs(20),
        "the crash is reported",
        |app| first_state(app) == Some(JobState::Failed),
    );
    let job = harness.state().queue().jobs[0].clone();
    assert!(job.resumable);
    let error = job.error.unwrap_or_default();
    assert!(
        error.contains("crashed") && error.contains("SIGKILL"),
        "{error}"
    );
    assert!(harness.query_by_label("What went wrong").is_some());
    assert!(!process_alive(worker));

    // The app keeps working: Resume goes on from the session.
    harness.get_by_label("⟲ Resume").click();
    wait_finished(
        &mut harness,
        Duration::from_secs(600),
        "the resumed job ends",
    );
    assert!(
        harness
            .state()
            .log_lines()
            .any(|line| line.text.contains("resuming")),
        "the second run resumed the session"
    );
}

#[test]
fn the_resume_dialog_offers_a_previous_run_and_each_button_does_its_part() {
    let _serial = serial();
    let env = Env::new();
    // A real earlier run, cancelled after its first chunks: scale 4, 2 s chunks.
    let (mut first, _) = start_long_job(&env);
    step_until(
        &mut first,
        Duration::from_secs(120),
        "a chunk is done",
        |app| app.queue().jobs[0].chunks_done >= 1,
    );
    first.get_by_label("■ Cancel").click();
    step_until(
        &mut first,
        Duration::from_secs(20),
        "the job is cancelled",
        |app| first_state(app) == Some(JobState::Cancelled) && app.worker_pid().is_none(),
    );
    let clip = first.state().queue().jobs[0].input.clone();
    first.state().flush_saves();
    drop(first);
    std::fs::remove_file(env.config_dir().join("gui-queue.json")).expect("the queue was saved");

    // A fresh window with the default panel (scale 2, 5 s chunks).
    let mut harness = env.harness(vec![]);
    let offer_shown = |harness: &mut Harness<'static, App>, what: &str| {
        step_until(harness, Duration::from_secs(10), what, |app| {
            app.resume_offer().is_some()
        });
        assert!(harness.query_by_label("A previous run was found").is_some());
        assert!(
            harness
                .query_all_by_label_contains("scale: 4 → 2")
                .next()
                .is_some(),
            "the dialog says which settings differ"
        );
        assert!(
            harness
                .query_all_by_label_contains("chunk length: 2 s → 5 s")
                .next()
                .is_some()
        );
        assert!(
            harness.query_all_by_label("Upscale").next().is_some(),
            "per-step progress is shown"
        );
    };

    // Cancel: nothing is queued.
    drop_file(&mut harness, &clip);
    offer_shown(&mut harness, "the dialog opens");
    click(&mut harness, "Cancel");
    assert!(harness.state().resume_offer().is_none());
    assert!(harness.state().queue().jobs.is_empty());
    assert!(harness.query_by_label("A previous run was found").is_none());

    // Restart: the job runs from scratch with the panel's settings.
    drop_file(&mut harness, &clip);
    offer_shown(&mut harness, "the dialog opens again");
    harness.get_by_label("Restart").click();
    let job = wait_finished(
        &mut harness,
        Duration::from_secs(300),
        "the restarted job ends",
    );
    let spec = job.spec.expect("a started job keeps its settings");
    assert_eq!((spec.scale, spec.chunk_seconds), (Some(2.0), 5.0));
    assert!(
        !harness
            .state()
            .log_lines()
            .any(|l| l.text.contains("resuming"))
    );

    // Resume: the earlier run (other settings) goes on from its finished chunks.
    drop_file(&mut harness, &clip);
    offer_shown(&mut harness, "the dialog opens a third time");
    harness.get_by_label("Resume").click();
    step_until(
        &mut harness,
        Duration::from_secs(300),
        "the resumed job ends",
        |app| {
            app.queue().jobs.len() == 2
                && matches!(
                    app.queue().jobs[1].state,
                    JobState::Finished | JobState::Failed
                )
        },
    );
    let job = harness.state().queue().jobs[1].clone();
    assert_eq!(job.state, JobState::Finished, "error: {:?}", job.error);
    let spec = job
        .spec
        .expect("a resumed job has the earlier run's settings");
    assert_eq!((spec.scale, spec.chunk_seconds), (Some(4.0), 2.0));
    assert!(
        harness
            .state()
            .log_lines()
            .any(|l| l.text.contains("resuming")),
        "the worker resumed the session"
    );
}
