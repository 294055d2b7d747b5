//! The preview panel of the real `App`, driven through egui_kittest with a fake preview source
//! (no preview worker): the requests it sends for cursor moves, key steps, settings changes
//! and spectrogram zooms, the answers it shows or drops, the split line, the no-audio state,
//! and a running job's live thumbnail (from a scripted processing worker).
//!
//! Each harness step advances egui's clock by `STEP_SECS`, so the settle delays
//! (`FRAME_SETTLE_SECS`, `WINDOW_SETTLE_SECS`) are counted in steps, not slept.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use reframe::gui::{App, AppConfig, JobState, LayerKind, OutputSize, PreviewSource};
use reframe::preview::{PreviewReply, PreviewRequest, RgbaImage};
use reframe::spectrum::{FreqAxis, Spectrogram, Transform};
use reframe::supervisor::{SupervisorConfig, WorkerCommand};

mod gui_support;

use gui_support::TestDirs;

const STEP_SECS: f32 = 0.02;

#[derive(Default)]
struct FakeState {
    next_id: u64,
    requests: Vec<(u64, PreviewRequest)>,
    replies: Vec<(u64, PreviewReply)>,
}

/// Records requests; answers only what the test pushes.
#[derive(Clone, Default)]
struct Fake(Arc<Mutex<FakeState>>);

impl PreviewSource for Fake {
    fn request(&mut self, request: PreviewRequest) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        let id = state.next_id;
        state.requests.push((id, request));
        id
    }

    fn poll(&mut self) -> Vec<(u64, PreviewReply)> {
        std::mem::take(&mut self.state().replies)
    }

    fn shutdown(&mut self) {}
}

impl Fake {
    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reply(&self, id: u64, reply: PreviewReply) {
        self.state().replies.push((id, reply));
    }

    fn count(&self) -> usize {
        self.state().requests.len()
    }

    /// The last frame request: (id, frame_index, scale).
    fn last_frame(&self) -> Option<(u64, u64, f64)> {
        self.state()
            .requests
            .iter()
            .rev()
            .find_map(|(id, request)| match request {
                PreviewRequest::Frame {
                    frame_index, scale, ..
                } => Some((*id, *frame_index, *scale)),
                _ => None,
            })
    }

    /// The last frame request: (id, frame_index, approximate).
    fn last_frame_approximate(&self) -> Option<(u64, u64, bool)> {
        self.state()
            .requests
            .iter()
            .rev()
            .find_map(|(id, request)| match request {
                PreviewRequest::Frame {
                    frame_index,
                    approximate,
                    ..
                } => Some((*id, *frame_index, *approximate)),
                _ => None,
            })
    }

    fn frame_requests(&self) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|(_, r)| matches!(r, PreviewRequest::Frame { .. }))
            .count()
    }

    fn last_overview(&self) -> Option<u64> {
        self.state()
            .requests
            .iter()
            .rev()
            .find_map(|(id, r)| matches!(r, PreviewRequest::Overview { .. }).then_some(*id))
    }

    /// The last spectrogram window request: (id, start_secs, end_secs).
    fn last_window(&self) -> Option<(u64, f64, f64)> {
        self.state()
            .requests
            .iter()
            .rev()
            .find_map(|(id, request)| match request {
                PreviewRequest::Spectrogram {
                    start_secs,
                    end_secs,
                    ..
                } => Some((*id, *start_secs, *end_secs)),
                _ => None,
            })
    }
}

fn image(width: u32, height: u32, value: u8) -> RgbaImage {
    RgbaImage {
        width,
        height,
        pixels: vec![value; (width * height * 4) as usize],
    }
}

fn frame_reply(frame_index: u64) -> PreviewReply {
    PreviewReply::Frame {
        before: image(160, 90, 60),
        after: image(320, 180, 200),
        frame_index,
        time_secs: frame_index as f64 / 24.0,
    }
}

fn spectrogram(start_secs: f64, end_secs: f64, transform: Transform) -> Spectrogram {
    let (width, height) = (64, 16);
    Spectrogram {
        width,
        height,
        db: (0..width * height)
            .map(|i| -90.0 + (i % 90) as f32)
            .collect(),
        freq_axis: match transform {
            Transform::Stft => FreqAxis::Linear { max_hz: 24_000.0 },
            Transform::Cwt => FreqAxis::Log {
                min_hz: 20.0,
                max_hz: 20_000.0,
            },
        },
        start_secs,
        end_secs,
        transform,
        columns_done: width,
    }
}

/// The test's folders; how this file starts the window is added below (the shared module is
/// part of this test crate, so its type takes methods here).
type Env = TestDirs;

impl Env {
    fn config(&self, worker: WorkerCommand) -> AppConfig {
        AppConfig {
            config_dir: Some(self.config_dir()),
            sessions_root: Some(self.sessions_root()),
            supervisor: SupervisorConfig::new(worker),
            preview_worker: WorkerCommand::new("unused"),
            // English whatever the machine's locale: the tests find widgets by their labels.
            locale: None,
        }
    }

    /// A 2 s, 24 fps, 320×180 clip (48 frames), with a 1 kHz tone when `audio`.
    fn clip(&self, name: &str, audio: bool) -> PathBuf {
        let path = self.videos().join(name);
        let mut command = Process::new("ffmpeg");
        command.args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x180:rate=24",
        ]);
        if audio {
            command.args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"]);
        }
        command.args(["-t", "2", "-pix_fmt", "yuv420p", "-c:v", "libx264"]);
        if audio {
            command.args(["-c:a", "aac"]);
        }
        let status = command.arg(&path).status().expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg could not make the test clip");
        path
    }

    fn harness(&self, clip: &Path, fake: &Fake, worker: WorkerCommand) -> Harness<'static, App> {
        let config = self.config(worker);
        let files = vec![clip.to_owned()];
        let source = fake.clone();
        Harness::builder()
            .with_size(egui::vec2(1200.0, 760.0))
            .with_step_dt(STEP_SECS)
            .build_eframe(move |cc| {
                App::with_preview_source(cc.egui_ctx.clone(), config, files, Box::new(source))
            })
    }
}

fn step_until(
    harness: &mut Harness<'static, App>,
    what: &str,
    mut done: impl FnMut(&mut App) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        harness.step();
        if done(harness.state_mut()) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A harness whose clip is queued, probed, and whose first frame was asked for.
fn ready(env: &Env, clip: &Path, fake: &Fake) -> Harness<'static, App> {
    let mut harness = env.harness(clip, fake, WorkerCommand::new("unused"));
    step_until(&mut harness, "the clip is probed", |app| {
        app.preview_facts().is_some()
    });
    harness.step();
    harness
}

#[test]
fn keys_step_the_cursor_and_each_step_asks_for_its_frame_at_once() {
    let env = Env::new();
    let clip = env.clip("keys.mp4", false);
    let fake = Fake::default();
    let mut harness = ready(&env, &clip, &fake);
    let facts = harness.state().preview_facts().cloned().unwrap();
    assert_eq!((facts.frame_count, facts.frame_rate), (48, 24.0));
    assert_eq!(fake.last_frame().map(|f| f.1), Some(0));

    let mut press = |modifiers: egui::Modifiers, key: egui::Key| {
        harness.key_press_modifiers(modifiers, key);
        harness.step();
        fake.last_frame().map(|f| f.1)
    };
    assert_eq!(press(egui::Modifiers::NONE, egui::Key::ArrowRight), Some(1));
    assert_eq!(
        press(egui::Modifiers::SHIFT, egui::Key::ArrowRight),
        Some(25)
    );
    assert_eq!(press(egui::Modifiers::NONE, egui::Key::ArrowLeft), Some(24));
    assert_eq!(press(egui::Modifiers::NONE, egui::Key::End), Some(47));
    assert_eq!(
        press(egui::Modifiers::NONE, egui::Key::ArrowRight),
        Some(47)
    );
    assert_eq!(press(egui::Modifiers::NONE, egui::Key::Home), Some(0));
    assert_eq!(press(egui::Modifiers::SHIFT, egui::Key::ArrowLeft), Some(0));
    assert_eq!(harness.state().preview_cursor(), 0);

    // A settings change asks again for the same frame.
    let before = fake.frame_requests();
    harness.state_mut().settings_mut().size = OutputSize::Scale(3.0);
    harness.step();
    assert_eq!(fake.frame_requests(), before + 1);
    assert_eq!(fake.last_frame().map(|f| (f.1, f.2)), Some((0, 3.0)));
    harness.step();
    assert_eq!(fake.frame_requests(), before + 1, "asked once per change");
}

/// A frame engine's "before" image comes first: the frame shows at once, its "after" side
/// says it is pending (never the previous frame's result), and the result replaces it.
#[test]
fn the_frame_shows_before_a_slow_engine_finishes() {
    let env = Env::new();
    let clip = env.clip("slow.mp4", false);
    let fake = Fake::default();
    let mut harness = ready(&env, &clip, &fake);
    let (first, _, _) = fake.last_frame().unwrap();
    fake.reply(first, frame_reply(0));
    harness.run_steps(2);
    assert_eq!(harness.state().shown_frame(), Some(0));
    assert!(!harness.state().shown_frame_after_pending());

    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    let (second, index, _) = fake.last_frame().unwrap();
    assert_eq!(index, 1);
    fake.reply(
        second,
        PreviewReply::FrameBefore {
            before: image(160, 90, 90),
            frame_index: 1,
            time_secs: 1.0 / 24.0,
        },
    );
    harness.run_steps(2);
    assert_eq!(harness.state().shown_frame(), Some(1));
    assert!(harness.state().shown_frame_after_pending());
    assert!(
        harness
            .query_by_label_contains("Upscaling this frame")
            .is_some(),
        "the after side says it is being made"
    );

    fake.reply(second, frame_reply(1));
    harness.run_steps(2);
    assert_eq!(harness.state().shown_frame(), Some(1));
    assert!(!harness.state().shown_frame_after_pending());
    assert!(
        harness
            .query_by_label_contains("Upscaling this frame")
            .is_none()
    );
}

#[test]
fn a_dragged_timeline_cursor_is_asked_for_once_it_rests() {
    let env = Env::new();
    let clip = env.clip("drag.mp4", false);
    let fake = Fake::default();
    let mut harness = ready(&env, &clip, &fake);
    let timeline = harness
        .state()
        .preview_layout()
        .timeline
        .expect("a timeline");
    let before = fake.frame_requests();
    let y = timeline.top() + 11.0;
    let x_of = |fraction: f32| timeline.left() + 58.0 + fraction * (timeline.width() - 58.0 - 62.0);
    harness.hover_at(egui::pos2(x_of(0.1), y));
    harness.drag_at(egui::pos2(x_of(0.1), y));
    harness.hover_at(egui::pos2(x_of(0.3), y));
    harness.hover_at(egui::pos2(x_of(0.5), y));
    harness.step();
    let moved = harness.state().preview_cursor();
    assert!((22..=25).contains(&moved), "cursor at {moved}");
    assert_eq!(
        fake.frame_requests(),
        before,
        "nothing asked while it moves"
    );
    // 0.08 s of rest = 4 steps of 0.02 s.
    harness.run_steps(5);
    assert_eq!(fake.last_frame().map(|f| f.1), Some(moved));
    assert_eq!(fake.frame_requests(), before + 1);
    harness.drop_at(egui::pos2(x_of(0.5), y));
    harness.run_steps(6);
    assert_eq!(
        fake.frame_requests(),
        before + 1,
        "the resting cursor is asked once"
    );
}

fn approx_reply(frame_index: u64, picture_index: u64, done: bool) -> PreviewReply {
    PreviewReply::FrameApprox {
        picture: image(80, 45, 120),
        display: (160, 90),
        frame_index,
        picture_index,
        time_secs: frame_index as f64 / 24.0,
        done,
    }
}

/// A keyframe's picture stands for the frame until it is decoded, labelled so, with no
/// "after"; once the worker has pictures, they follow a dragged cursor, and the release asks
/// for the exact frame at once.
#[test]
fn keyframe_pictures_stand_in_until_the_exact_frame_and_follow_a_drag() {
    let env = Env::new();
    let clip = env.clip("approx.mp4", false);
    let fake = Fake::default();
    let mut harness = ready(&env, &clip, &fake);
    let (first, _, _) = fake.last_frame().unwrap();
    fake.reply(first, frame_reply(0));
    harness.run_steps(2);

    harness.key_press(egui::Key::End);
    harness.step();
    let (id, index, approximate) = fake.last_frame_approximate().unwrap();
    assert_eq!((index, approximate), (47, false));
    fake.reply(id, approx_reply(47, 40, false));
    harness.run_steps(2);
    assert_eq!(harness.state().shown_frame(), Some(47));
    assert_eq!(harness.state().shown_frame_approximate_of(), Some(40));
    assert!(harness.state().shown_frame_after_pending());
    assert!(
        harness
            .query_by_label_contains("≈ keyframe, 7 frames before")
            .is_some(),
        "the picture is labelled approximate"
    );
    assert!(
        harness
            .query_by_label_contains("Decoding the exact frame")
            .is_some()
    );
    fake.reply(id, frame_reply(47));
    harness.run_steps(2);
    assert_eq!(harness.state().shown_frame_approximate_of(), None);
    assert!(!harness.state().shown_frame_after_pending());
    assert!(harness.query_by_label_contains("≈ keyframe").is_none());
    // A late picture never replaces the exact frame.
    fake.reply(id, approx_reply(47, 40, false));
    harness.run_steps(2);
    assert_eq!(harness.state().shown_frame_approximate_of(), None);

    // Dragging: a picture request as soon as the cursor moves, one at a time.
    let timeline = harness.state().preview_layout().timeline.unwrap();
    let y = timeline.top() + 11.0;
    let x_of = |fraction: f32| timeline.left() + 58.0 + fraction * (timeline.width() - 58.0 - 62.0);
    let asked = fake.frame_requests();
    harness.hover_at(egui::pos2(x_of(0.1), y));
    harness.drag_at(egui::pos2(x_of(0.1), y));
    harness.hover_at(egui::pos2(x_of(0.3), y));
    harness.step();
    harness.step();
    let (id, index, approximate) = fake.last_frame_approximate().unwrap();
    assert!(approximate, "a moving cursor asks for a picture");
    assert_eq!(index, harness.state().preview_cursor());
    assert_eq!(fake.frame_requests(), asked + 1);
    harness.hover_at(egui::pos2(x_of(0.4), y));
    harness.step();
    harness.step();
    assert_eq!(
        fake.frame_requests(),
        asked + 1,
        "one picture request at a time"
    );
    fake.reply(id, approx_reply(index, 12, true));
    harness.step();
    harness.step();
    assert_eq!(harness.state().shown_frame_approximate_of(), Some(12));
    let (_, next, approximate) = fake.last_frame_approximate().unwrap();
    assert!(approximate);
    assert_eq!(next, harness.state().preview_cursor());
    assert_eq!(fake.frame_requests(), asked + 2);
    // Released: the exact frame at once.
    harness.drop_at(egui::pos2(x_of(0.4), y));
    harness.step();
    harness.step();
    let (_, index, approximate) = fake.last_frame_approximate().unwrap();
    assert_eq!(
        (index, approximate),
        (harness.state().preview_cursor(), false)
    );
    assert_eq!(fake.frame_requests(), asked + 3);
}

#[test]
fn a_stale_answer_is_dropped_and_the_current_one_shown() {
    let env = Env::new();
    let clip = env.clip("stale.mp4", false);
    let fake = Fake::default();
    let mut harness = ready(&env, &clip, &fake);
    let (first, _, _) = fake.last_frame().unwrap();
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    let (second, index, _) = fake.last_frame().unwrap();
    assert_eq!(index, 1);
    fake.reply(first, frame_reply(0));
    harness.run_steps(2);
    assert_eq!(
        harness.state().shown_frame(),
        None,
        "the answer for frame 0 came too late"
    );
    fake.reply(second, frame_reply(1));
    harness.run_steps(2);
    assert_eq!(harness.state().shown_frame(), Some(1));
    assert!(harness.query_by_label("Preparing the frame…").is_none());

    // An error for the current request is shown in the panel.
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    let (third, _, _) = fake.last_frame().unwrap();
    fake.reply(
        third,
        PreviewReply::Error {
            message: "the preview timed out after 10 s".into(),
        },
    );
    harness.run_steps(2);
    assert_eq!(
        harness.state().shown_frame(),
        Some(1),
        "the last image stays"
    );
    let error = harness.state().preview_frame_error().unwrap_or_default();
    assert!(error.contains("timed out"), "{error:?}");
    // "Try again" asks for the same frame once more.
    harness.get_by_label("⟲ Try again").click();
    harness.run_steps(2);
    let (fourth, index, _) = fake.last_frame().unwrap();
    assert!(fourth > third && index == 2);
    assert!(harness.state().preview_frame_error().is_none());
}

#[test]
fn dragging_the_split_moves_the_line_and_it_is_remembered() {
    let env = Env::new();
    let clip = env.clip("split.mp4", false);
    let fake = Fake::default();
    let mut harness = ready(&env, &clip, &fake);
    let (id, _, _) = fake.last_frame().unwrap();
    fake.reply(id, frame_reply(0));
    harness.run_steps(2);
    let layout = harness.state().preview_layout().clone();
    let frame = layout.frame.expect("the frame is drawn");
    let x = layout.split_x.expect("the split line is drawn");
    assert!((x - frame.center().x).abs() < 1.0, "starts in the middle");
    let y = frame.center().y;
    harness.hover_at(egui::pos2(x, y));
    harness.drag_at(egui::pos2(x, y));
    harness.hover_at(egui::pos2(x - 60.0, y));
    harness.hover_at(egui::pos2(x - 150.0, y));
    harness.drop_at(egui::pos2(x - 150.0, y));
    harness.run_steps(2);
    let moved = harness.state().preview_layout().split_x.unwrap();
    assert!(
        (moved - (x - 150.0)).abs() < 2.0,
        "line at {moved}, wanted {}",
        x - 150.0
    );
    let split = harness.state().settings().preview_split;
    assert!((split - (x - 150.0 - frame.left()) / frame.width()).abs() < 0.01);
    // The view did not pan while the line was dragged.
    assert!(harness.state().frame_view().fit);
    harness.state().flush_saves();
    let saved = std::fs::read_to_string(env.config_dir().join("gui-settings.json")).unwrap();
    assert!(saved.contains("\"preview_split\""), "{saved}");

    // Wheel zooms the frame about the pointer; Fit goes back.
    harness.hover_at(frame.center() + egui::vec2(80.0, 0.0));
    harness.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: egui::vec2(0.0, 3.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Unknown,
        modifiers: egui::Modifiers::NONE,
    });
    harness.run_steps(2);
    assert!(!harness.state().frame_view().fit);
    harness.get_by_label("Fit").click();
    harness.run_steps(2);
    assert!(harness.state().frame_view().fit);
}

#[test]
fn ctrl_wheel_narrows_the_spectrogram_window_and_the_old_image_stays_drawn() {
    let env = Env::new();
    let clip = env.clip("tone.mp4", true);
    let fake = Fake::default();
    let mut harness = ready(&env, &clip, &fake);
    let facts = harness.state().preview_facts().cloned().unwrap();
    assert!(facts.has_audio);
    let overview = fake.last_overview().expect("the overview is asked for");
    harness.run_steps(2);
    assert!(harness.query_by_label("Reading the audio…").is_some());
    let duration = facts.duration_secs;
    fake.reply(
        overview,
        PreviewReply::Overview(spectrogram(0.0, duration, Transform::Stft)),
    );
    harness.run_steps(2);
    let plot = harness
        .state()
        .preview_layout()
        .spectrum
        .expect("a spectrogram");
    assert_eq!(
        harness.state().preview_layout().spectrum_layers,
        vec![(LayerKind::Overview, plot)]
    );
    assert!(
        fake.last_window().is_none(),
        "the whole track is the overview"
    );

    let wheel = |harness: &mut Harness<'static, App>, at: egui::Pos2| {
        harness.hover_at(at);
        harness.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Line,
            delta: egui::vec2(0.0, 4.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::CTRL,
        });
        // One step applies the new window, the next draws it.
        harness.step();
        harness.step();
    };
    let at = plot.left_center() + egui::vec2(plot.width() * 0.25, 0.0);
    wheel(&mut harness, at);
    let window = harness.state().spectrum_window().unwrap();
    assert!(window.len_secs() < duration * 0.9, "{window:?}");
    // The pointer's time stays under the pointer.
    assert!((window.secs_at(at.x, plot) - duration * 0.25).abs() < 0.01);
    // Not asked yet (the user may go on zooming); the overview is drawn stretched meanwhile.
    assert!(fake.last_window().is_none());
    let layers = harness.state().preview_layout().spectrum_layers.clone();
    assert_eq!(layers.len(), 1);
    assert!(
        layers[0].1.width() > plot.width() * 1.1,
        "stretched: {layers:?}"
    );

    harness.run_steps(7);
    let (id, start, end) = fake
        .last_window()
        .expect("the window is asked for once it rests");
    assert!((start - window.start_secs).abs() < 1e-9 && (end - window.end_secs).abs() < 1e-9);
    fake.reply(
        id,
        PreviewReply::Spectrogram(spectrogram(start, end, Transform::Cwt)),
    );
    harness.run_steps(2);
    let layers = harness.state().preview_layout().spectrum_layers.clone();
    assert_eq!(layers.last().map(|l| l.0), Some(LayerKind::Detail));

    // Zooming further: both old images stay, stretched, until the new answer.
    wheel(&mut harness, at);
    let layers = harness.state().preview_layout().spectrum_layers.clone();
    assert_eq!(
        layers.iter().map(|l| l.0).collect::<Vec<_>>(),
        [LayerKind::Overview, LayerKind::Detail]
    );
    assert!(layers[1].1.width() > plot.width() * 1.1);
    harness.run_steps(7);
    let (newer, start2, end2) = fake.last_window().unwrap();
    assert!(newer != id && end2 - start2 < end - start);
    // A late answer for the previous window is dropped.
    fake.reply(
        id,
        PreviewReply::Spectrogram(spectrogram(start, end, Transform::Cwt)),
    );
    fake.reply(
        newer,
        PreviewReply::Error {
            message: "the spectrogram timed out".into(),
        },
    );
    harness.run_steps(2);
    assert!(harness.state().preview_layout().spectrum_layers.len() == 2);
    assert!(
        harness
            .query_by_label("the spectrogram timed out")
            .is_some()
    );
}

#[test]
fn a_file_without_audio_says_so_and_asks_for_no_spectrogram() {
    let env = Env::new();
    let clip = env.clip("silent.mp4", false);
    let fake = Fake::default();
    let mut harness = ready(&env, &clip, &fake);
    harness.run_steps(2);
    assert!(harness.query_by_label("No audio track").is_some());
    assert!(fake.last_overview().is_none());
    assert_eq!(fake.count(), fake.frame_requests());
}

/// A processing worker that starts the job, reports one thumbnail and waits.
fn scripted_worker(thumbnail: &Path) -> WorkerCommand {
    let script = format!(
        r#"read hello
echo '{{"type":"hello","version":1,"pid":'$$'}}'
read run
job=$(echo "$run" | sed 's/.*"job":\([0-9]*\).*/\1/')
echo '{{"type":"job-started","job":'$job',"input":"/in.mp4","output":"/out.mkv","session_id":"s","resumed":false,"chunks_total":2,"chunks_done":0,"frames_total":48}}'
echo '{{"type":"thumbnail","job":'$job',"chunk":0,"path":"{}"}}'
read next
"#,
        thumbnail.display()
    );
    WorkerCommand::new("sh").arg("-c").arg(script)
}

#[test]
fn a_running_job_shows_its_live_thumbnail() {
    let env = Env::new();
    let clip = env.clip("live.mp4", false);
    let thumbnail = env.path("thumb.jpg");
    image::RgbImage::from_pixel(160, 90, image::Rgb([30, 160, 220]))
        .save(&thumbnail)
        .unwrap();
    let fake = Fake::default();
    let mut harness = env.harness(&clip, &fake, scripted_worker(&thumbnail));
    step_until(&mut harness, "the clip is queued", |app| {
        app.queue().jobs.len() == 1 && !app.is_busy()
    });
    let job = harness.state().queue().jobs[0].id;
    assert!(
        harness
            .query_by_label("Live thumbnail of live.mp4")
            .is_none()
    );
    harness.get_by_label("▶ Start").click();
    step_until(&mut harness, "the thumbnail is shown", |app| {
        app.thumbnail_size(job).is_some()
    });
    harness.step();
    assert_eq!(harness.state().queue().jobs[0].state, JobState::Running);
    assert_eq!(harness.state().thumbnail_size(job), Some([160, 90]));
    assert!(
        harness
            .query_by_label("Live thumbnail of live.mp4")
            .is_some()
    );

    harness.get_by_label("■ Cancel").click();
    step_until(&mut harness, "the job stops", |app| {
        app.queue().jobs[0].state != JobState::Running
    });
    harness.step();
    assert!(
        harness
            .query_by_label("Live thumbnail of live.mp4")
            .is_none()
    );
}
