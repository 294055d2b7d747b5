//! The preview worker through its client, as the window uses it: the real `reframe worker
//! preview` child, real ffmpeg, small lavfi clips.
//!
//! Frames are checked byte for byte against ffmpeg's own extraction (`select=eq(n\,K)`); the
//! churn test samples /proc while 200 requests supersede each other; timeouts and a SIGKILL
//! must give an error and then a working fresh worker.

mod common;
mod neural_support;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Clip, TestEnv, ff_path, make_plain, make_silent, tool};
use reframe::preview::{PreviewClient, PreviewReply, PreviewRequest, PreviewTimeouts};
use reframe::supervisor::WorkerCommand;

const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A client whose worker runs `program` (the test binary's reframe, or a renamed link to it).
fn client_with(env: &TestEnv, program: &Path) -> PreviewClient {
    let worker = WorkerCommand::new(program)
        .arg("worker")
        .arg("preview")
        .env("REFRAME_CACHE_DIR", &env.cache_dir)
        .env("REFRAME_CONFIG_DIR", &env.config_dir)
        .env("REFRAME_TEST_ENGINES", "1");
    PreviewClient::new(worker, || {})
}

fn client(env: &TestEnv) -> PreviewClient {
    client_with(env, &common::reframe_bin())
}

fn frame(input: &Path, frame_index: u64, engine: &str) -> PreviewRequest {
    PreviewRequest::Frame {
        input: input.to_path_buf(),
        frame_index,
        engine: engine.into(),
        scale: 2.0,
        denoise: None,
        models_dir: None,
        approximate: false,
    }
}

/// Waits for the final reply of request `id` (overview partials and "before" images are skipped).
fn wait_reply(client: &mut PreviewClient, id: u64) -> PreviewReply {
    wait_replies(client, id).1
}

/// The replies of request `id` that came before its final one, and the final one.
fn wait_replies(client: &mut PreviewClient, id: u64) -> (Vec<PreviewReply>, PreviewReply) {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let mut partial = Vec::new();
    loop {
        for (got, reply) in client.poll() {
            // Another kind's current request may answer meanwhile.
            if got != id {
                continue;
            }
            match reply {
                PreviewReply::Overview(ref s) if s.columns_done < s.width => partial.push(reply),
                PreviewReply::FrameBefore { .. } => partial.push(reply),
                PreviewReply::FrameApprox { done: false, .. } => partial.push(reply),
                reply => return (partial, reply),
            }
        }
        assert!(Instant::now() < deadline, "no reply to request {id}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The "before" images a frame request sent ahead of its result.
fn early_befores(partial: &[PreviewReply]) -> Vec<(&reframe::preview::RgbaImage, u64)> {
    partial
        .iter()
        .filter_map(|reply| match reply {
            PreviewReply::FrameBefore {
                before,
                frame_index,
                ..
            } => Some((before, *frame_index)),
            _ => None,
        })
        .collect()
}

/// ffmpeg's own extraction of frame `k` through `chain` (after `select`), as RGBA.
fn reference(input: &Path, k: u64, chain: &str) -> Vec<u8> {
    let graph = format!("[0:v]select=eq(n\\,{k}){chain}");
    let args: Vec<OsString> = vec![
        "-nostdin".into(),
        "-v".into(),
        "error".into(),
        "-i".into(),
        ff_path(input),
        "-filter_complex".into(),
        graph.into(),
        "-frames:v".into(),
        "1".into(),
        "-pix_fmt".into(),
        "rgba".into(),
        "-f".into(),
        "rawvideo".into(),
        "-".into(),
    ];
    tool("ffmpeg", args)
}

fn expect_frame(
    reply: PreviewReply,
) -> (
    reframe::preview::RgbaImage,
    reframe::preview::RgbaImage,
    u64,
) {
    match reply {
        PreviewReply::Frame {
            before,
            after,
            frame_index,
            ..
        } => (before, after, frame_index),
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[test]
fn frames_equal_ffmpeg_extraction_before_and_after() {
    let env = TestEnv::new();
    let clip = make_plain(&env.path("clip.mp4"), Clip::secs(3.0));
    let mut client = client(&env);
    // Seek, step (reuses the decoder), skip ahead, seek back, last frame.
    let mut pid = None;
    for k in [30u64, 31, 32, 34, 5, 0, 71] {
        let id = client.request(frame(&clip, k, "lanczos"));
        let (partial, reply) = wait_replies(&mut client, id);
        assert!(
            early_befores(&partial).is_empty(),
            "Lanczos answers at once"
        );
        let (before, after, index) = expect_frame(reply);
        assert_eq!(index, k);
        assert_eq!((before.width, before.height), (320, 240));
        assert_eq!((after.width, after.height), (640, 480));
        assert!(
            before.pixels == reference(&clip, k, ""),
            "before of frame {k} differs from ffmpeg's"
        );
        assert!(
            after.pixels == reference(&clip, k, ",scale=640:480:flags=lanczos,format=yuv420p"),
            "after of frame {k} differs from ffmpeg's Lanczos"
        );
        // One warm worker answers them all.
        let now = client.worker_pid();
        assert!(now.is_some());
        assert!(pid.is_none() || pid == now, "the worker was restarted");
        pid = now;
    }

    // A frame engine: identity's output is the decoded frame itself.
    // A frame engine sends the frame itself first.
    let id = client.request(frame(&clip, 40, "identity"));
    let (partial, reply) = wait_replies(&mut client, id);
    let (before, after, _) = expect_frame(reply);
    assert!(before.pixels == reference(&clip, 40, ""));
    match early_befores(&partial)[..] {
        [(early, 40)] => assert!(early.pixels == before.pixels, "the early before differs"),
        ref other => panic!("expected one early before of frame 40, got {other:?}"),
    }
    assert_eq!((after.width, after.height), (320, 240));
    assert!(after.pixels == before.pixels, "identity changed the frame");

    // Bad requests are errors, and the worker stays.
    let id = client.request(frame(&clip, 72, "lanczos"));
    match wait_reply(&mut client, id) {
        PreviewReply::Error { message } => assert!(message.contains("past the end"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    let id = client.request(frame(&env.path("missing.mp4"), 0, "lanczos"));
    assert!(matches!(
        wait_reply(&mut client, id),
        PreviewReply::Error { .. }
    ));
    assert_eq!(client.worker_pid(), pid);
    client.shutdown();
    assert_eq!(client.worker_pid(), None);
}

/// Mean absolute difference of two RGBA images' colour channels.
fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .map(|(p, q)| (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>())
        .sum();
    total as f64 / (a.len() / 4 * 3) as f64
}

#[test]
fn a_seek_shows_its_keyframe_at_once_then_the_exact_frame() {
    let env = TestEnv::new();
    // Colours turn 90° a second, so that keyframes a group apart look different.
    let clip = common::make_custom(
        &env.path("hue.mp4"),
        Clip::secs(8.0),
        Some("hue=h=90*t"),
        "-g 12 -sc_threshold 0",
    );
    let tools = reframe::media::tools::Tools::locate().expect("ffmpeg");
    let info = reframe::media::probe::probe(&tools, &clip).expect("probe");
    let times =
        reframe::media::frames::frame_times(&tools, &clip, info.video.index).expect("frames");
    let keyframes: Vec<u64> = (0..times.frames.len() as u64)
        .filter(|&i| times.frames[i as usize].keyframe)
        .collect();
    assert!(keyframes.len() >= 12, "keyframes: {keyframes:?}");
    let mut client = client(&env);
    // The first request loads the input; the pictures are made while the worker is idle.
    let id = client.request(frame(&clip, 0, "lanczos"));
    expect_frame(wait_reply(&mut client, id));

    // While dragging: an approximate request is answered with a picture alone, here of the
    // next keyframe (3 frames after, against 9 before). The pictures are made in file order
    // once the worker is idle: a request that finds none yet is answered exactly (and decodes
    // around its frame: the next try is a few groups on); one that finds only the keyframe
    // before came while the filling was between the two.
    let approximate = |k: u64| PreviewRequest::Frame {
        input: clip.clone(),
        frame_index: k,
        engine: "lanczos".into(),
        scale: 2.0,
        denoise: None,
        models_dir: None,
        approximate: true,
    };
    let mut answered = None;
    let mut group = 3;
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(500));
        let (k, next) = (keyframes[group], keyframes[group + 1]);
        let target = next - 3;
        assert!(target - k > next - target);
        let id = client.request(approximate(target));
        match wait_reply(&mut client, id) {
            PreviewReply::FrameApprox {
                picture,
                display,
                frame_index,
                picture_index,
                done,
                ..
            } => {
                assert_eq!((frame_index, done), (target, true));
                assert_eq!(display, (320, 240));
                assert_eq!((picture.width, picture.height), (320, 240));
                if picture_index == next {
                    answered = Some((picture, next));
                    break;
                }
                assert_eq!(picture_index, k, "a picture from another group");
            }
            PreviewReply::Frame { frame_index, .. } => {
                assert_eq!(frame_index, target);
                group += 3;
                assert!(group + 1 < keyframes.len(), "no keyframe picture was made");
            }
            other => panic!("expected a picture or the frame, got {other:?}"),
        }
    }
    let (picture, next) = answered.expect("no picture of the next keyframe within 30 s");
    let own = mean_abs_diff(&picture.pixels, &reference(&clip, next, ""));
    let other = mean_abs_diff(&picture.pixels, &reference(&clip, next - 24, ""));
    assert!(own < 6.0, "the picture is not of its keyframe: {own:.1}");
    assert!(
        other > 2.0 * own,
        "keyframes are told apart: {own:.1} vs {other:.1}"
    );

    // A click on a frame not decoded yet (approximate answers decode nothing): the picture of
    // its own keyframe first, then the exact frame.
    let k = keyframes[(group + 2).min(keyframes.len() - 2)];
    let target = k + 4;
    let id = client.request(frame(&clip, target, "lanczos"));
    let (partial, reply) = wait_replies(&mut client, id);
    match &partial[..] {
        [
            PreviewReply::FrameApprox {
                frame_index,
                picture_index,
                done: false,
                ..
            },
        ] => assert_eq!((*frame_index, *picture_index), (target, k)),
        other => panic!("expected one keyframe picture first, got {other:?}"),
    }
    let (before, _, index) = expect_frame(reply);
    assert_eq!(index, target);
    assert!(
        before.pixels == reference(&clip, target, ""),
        "the exact frame differs"
    );
    // The next frame was decoded ahead: no picture before it.
    let id = client.request(frame(&clip, target + 1, "lanczos"));
    let (partial, reply) = wait_replies(&mut client, id);
    assert!(
        partial.is_empty(),
        "a picture for a frame at hand: {partial:?}"
    );
    assert_eq!(expect_frame(reply).2, target + 1);
    client.shutdown();
}

#[test]
fn a_neural_preview_uses_the_models_folder_of_its_request() {
    let env = TestEnv::new();
    // Tiny: the neural engine runs unoptimised in test builds.
    let clip = make_plain(
        &env.path("tiny.mp4"),
        Clip {
            width: 32,
            height: 24,
            fps: 24,
            duration_secs: 0.5,
        },
    );
    let mut client = client(&env);
    let waifu2x = |models_dir: Option<PathBuf>, denoise: Option<u8>| PreviewRequest::Frame {
        input: clip.clone(),
        frame_index: 3,
        engine: "waifu2x".into(),
        scale: 2.0,
        denoise,
        models_dir,
        approximate: false,
    };
    // The worker's own default folder (under its config dir) has no models.
    let id = client.request(waifu2x(None, None));
    match wait_reply(&mut client, id) {
        PreviewReply::Error { message } => assert!(message.contains("waifu2x"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    let models = neural_support::models_dir();
    let mut afters = Vec::new();
    for denoise in [None, Some(3)] {
        let id = client.request(waifu2x(Some(models.clone()), denoise));
        let (partial, reply) = wait_replies(&mut client, id);
        let (before, after, index) = expect_frame(reply);
        assert_eq!(index, 3);
        assert!(before.pixels == reference(&clip, 3, ""));
        // The frame came before the engine's result.
        assert!(
            matches!(early_befores(&partial)[..], [(early, 3)] if early.pixels == before.pixels),
            "no early before image of frame 3"
        );
        assert_eq!((after.width, after.height), (64, 48));
        afters.push(after.pixels);
    }
    assert!(afters[0] != afters[1], "denoise level 3 changed nothing");
    client.shutdown();
}

/// Command lines of the processes whose parent is `parent`.
fn child_cmdlines(parent: u32) -> Vec<String> {
    let parent = parent.to_string();
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        if stat[close + 1..].split_whitespace().nth(1) != Some(parent.as_str()) {
            continue;
        }
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            out.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
        }
    }
    out
}

/// Frames of `clip` (320×240, 3 s, GOP 24) requested as a person steps and jumps, with
/// pauses that let the worker prefetch, each equal to ffmpeg's own extraction; `after_format`
/// is the format the engine's output keeps (the source's). Returns the worker's children as
/// they were after the first reply.
fn check_frames_like_a_person(
    client: &mut PreviewClient,
    clip: &Path,
    after_format: &str,
) -> Vec<String> {
    let mut children = None;
    for (k, pause_ms) in [
        (40u64, 400),
        (41, 0),
        (42, 0),
        (39, 0),
        (30, 300),
        (23, 0),
        (22, 300),
        (71, 0),
        (3, 0),
        (50, 0),
        (49, 0),
    ] {
        let id = client.request(frame(clip, k, "lanczos"));
        let (before, after, index) = expect_frame(wait_reply(client, id));
        assert_eq!(index, k);
        assert!(
            before.pixels == reference(clip, k, ""),
            "before of frame {k} of {} differs from ffmpeg's",
            clip.display()
        );
        let chain = format!(",scale=640:480:flags=lanczos,format={after_format}");
        assert!(
            after.pixels == reference(clip, k, &chain),
            "after of frame {k} of {} differs from ffmpeg's Lanczos",
            clip.display()
        );
        if children.is_none() {
            children = Some(child_cmdlines(client.worker_pid().expect("a worker")));
        }
        std::thread::sleep(Duration::from_millis(pause_ms));
    }
    children.unwrap_or_default()
}

#[test]
fn seeking_decoder_frames_equal_ffmpeg_extraction_across_formats() {
    let env = TestEnv::new();
    let clip = Clip::secs(3.0);
    let tagged = common::make_custom(
        &env.path("bt709 tv.mp4"),
        clip,
        None,
        "-colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv",
    );
    let full_range = common::make_custom(
        &env.path("-full range.mp4"),
        clip,
        None,
        "-colorspace smpte170m -color_range pc",
    );
    let ten_bit = common::make_custom(
        &env.path("ten bit é.mkv"),
        clip,
        None,
        "-pix_fmt yuv420p10le",
    );
    let mut client = client(&env);
    for (input, format) in [
        (&tagged, "yuv420p"),
        // H.264's decoder gives full-range 4:2:0 as yuvj420p.
        (&full_range, "yuvj420p"),
        (&ten_bit, "yuv420p10le"),
    ] {
        let children = check_frames_like_a_person(&mut client, input, format);
        // These went through the seeking decoder, not a fresh ffmpeg per seek.
        assert!(
            children.iter().any(|c| c.contains("movie=filename=input")),
            "no seeking decoder among {children:?}"
        );
        assert!(
            !children.iter().any(|c| c.contains(" -ss ")),
            "a per-seek decoder ran: {children:?}"
        );
    }
    client.shutdown();
}

#[test]
fn rotated_and_seeker_disabled_inputs_decode_from_the_file() {
    let env = TestEnv::new();
    let rotated = common::make_rotated(&env.path("rot.mp4"), Clip::secs(3.0), 90);
    let plain = make_plain(&env.path("plain.mp4"), Clip::secs(3.0));
    let mut client = client(&env);
    // A rotated source: the seeker (which does not rotate) is not used; frames come upright.
    for k in [30u64, 31, 5] {
        let id = client.request(frame(&rotated, k, "lanczos"));
        let (before, after, _) = expect_frame(wait_reply(&mut client, id));
        assert_eq!((before.width, before.height), (240, 320));
        assert_eq!((after.width, after.height), (480, 640));
        assert!(before.pixels == reference(&rotated, k, ""), "frame {k}");
    }
    client.shutdown();
    // The baseline switch: a fresh ffmpeg per seek, same frames.
    let worker = WorkerCommand::new(common::reframe_bin())
        .arg("worker")
        .arg("preview")
        .env("REFRAME_CACHE_DIR", &env.cache_dir)
        .env("REFRAME_PREVIEW_SEEKER", "0");
    let mut baseline = PreviewClient::new(worker, || {});
    let children = check_frames_like_a_person(&mut baseline, &plain, "yuv420p");
    assert!(children.iter().any(|c| c.contains(" -ss ")), "{children:?}");
    assert!(
        !children.iter().any(|c| c.contains("movie=")),
        "{children:?}"
    );
    baseline.shutdown();
}

/// Children of this process whose command name is `comm`: (pid, state).
fn children_named(comm: &str) -> Vec<(i32, char)> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if &stat[open + 1..close] == comm && rest.get(1) == Some(&me.as_str()) {
            out.push((pid, rest[0].chars().next().unwrap_or('?')));
        }
    }
    out
}

#[test]
fn churn_never_two_workers_no_zombies_last_answer_wins() {
    let env = TestEnv::new();
    let clip = make_plain(&env.path("clip.mp4"), Clip::secs(4.0));
    // A uniquely named link to the binary: its processes (zombies included) are recognisable
    // by their command name among this test process's children.
    let link = env.root().join("rf-churn");
    std::os::unix::fs::symlink(common::reframe_bin(), &link).unwrap();
    let mut client = client_with(&env, &link);

    let stop = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, max_seen, samples) = (stop.clone(), max_seen.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n = children_named("rf-churn").len();
                max_seen.fetch_max(n, Ordering::SeqCst);
                samples.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let frames = 96u64;
    let mut last = (0, 0);
    let started = Instant::now();
    for i in 0..200 {
        let k = next() % frames;
        let id = client.request(frame(&clip, k, "lanczos"));
        last = (id, k);
        if i % 50 == 0 {
            client.request(PreviewRequest::Spectrogram {
                input: clip.clone(),
                start_secs: 0.5,
                end_secs: 2.5,
                width: 64,
                height: 32,
            });
        }
        // Anything polled meanwhile must be for a current request.
        for (id, reply) in client.poll() {
            assert!(id > 0, "{reply:?}");
        }
        std::thread::sleep(Duration::from_micros(next() % 8000));
    }
    let churn_secs = started.elapsed().as_secs_f64();
    let (id, k) = last;
    let (before, _, index) = expect_frame(wait_reply(&mut client, id));
    assert_eq!(index, k);
    assert!(before.pixels == reference(&clip, k, ""));

    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    eprintln!(
        "churn: 200 requests in {churn_secs:.2} s, {} /proc samples, at most {} worker(s)",
        samples.load(Ordering::SeqCst),
        max_seen.load(Ordering::SeqCst)
    );
    assert!(samples.load(Ordering::SeqCst) > 100, "too few samples");
    assert_eq!(
        max_seen.load(Ordering::SeqCst),
        1,
        "two preview workers at once"
    );
    let now = children_named("rf-churn");
    assert!(
        now.iter().all(|(_, state)| *state != 'Z'),
        "zombie: {now:?}"
    );
    client.shutdown();
    assert!(
        children_named("rf-churn").is_empty(),
        "worker left after shutdown"
    );
}

#[test]
fn timeout_is_an_error_and_the_next_request_gets_a_fresh_worker() {
    let env = TestEnv::new();
    let clip = make_plain(&env.path("clip.mp4"), Clip::secs(2.0));
    let mut client = client(&env);
    client.set_timeouts(PreviewTimeouts {
        ffmpeg_frame: Duration::from_millis(30),
        ..PreviewTimeouts::default()
    });
    let id = client.request(frame(&clip, 40, "lanczos"));
    match wait_reply(&mut client, id) {
        PreviewReply::Error { message } => assert!(message.contains("longer than"), "{message}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        client.worker_pid(),
        None,
        "the timed-out worker is still there"
    );

    client.set_timeouts(PreviewTimeouts::default());
    let id = client.request(frame(&clip, 40, "lanczos"));
    let (before, _, _) = expect_frame(wait_reply(&mut client, id));
    assert!(before.pixels == reference(&clip, 40, ""));
}

#[test]
fn killed_worker_is_an_error_then_a_fresh_worker_answers() {
    let env = TestEnv::new();
    let clip = make_plain(&env.path("clip.mp4"), Clip::secs(2.0));
    let mut client = client(&env);
    let id = client.request(frame(&clip, 45, "lanczos"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = client.worker_pid() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no worker started");
        std::thread::sleep(Duration::from_millis(1));
    };
    // SAFETY: kill(2) on the worker this test's client started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    match wait_reply(&mut client, id) {
        PreviewReply::Error { message } => {
            assert!(message.contains("stopped unexpectedly"), "{message}");
            assert!(message.contains("signal 9"), "{message}");
        }
        other => panic!("expected the crash to be reported, got {other:?}"),
    }
    let id = client.request(frame(&clip, 45, "lanczos"));
    let (before, _, _) = expect_frame(wait_reply(&mut client, id));
    assert!(before.pixels == reference(&clip, 45, ""));
    assert_ne!(client.worker_pid(), Some(pid));
}

#[test]
fn spectrograms_overview_viewport_and_no_audio() {
    let env = TestEnv::new();
    let clip = make_plain(&env.path("clip.mp4"), Clip::secs(3.0));
    let silent = make_silent(&env.path("silent.mp4"), Clip::secs(1.0));
    let mut client = client(&env);

    let id = client.request(PreviewRequest::Overview {
        input: clip.clone(),
        width: 120,
        height: 40,
    });
    match wait_reply(&mut client, id) {
        PreviewReply::Overview(s) => {
            assert_eq!((s.width, s.height, s.columns_done), (120, 40, 120));
            assert_eq!(s.db.len(), 120 * 40);
            assert!((s.end_secs - 3.0).abs() < 0.1, "{}", s.end_secs);
        }
        other => panic!("expected the overview, got {other:?}"),
    }
    let id = client.request(PreviewRequest::Spectrogram {
        input: clip.clone(),
        start_secs: 1.0,
        end_secs: 2.0,
        width: 50,
        height: 30,
    });
    match wait_reply(&mut client, id) {
        PreviewReply::Spectrogram(s) => {
            assert_eq!((s.width, s.height), (50, 30));
            assert_eq!((s.start_secs, s.end_secs), (1.0, 2.0));
            // The 440 Hz tone is loud somewhere in every column.
            for x in 0..s.width {
                let loudest = (0..s.height)
                    .map(|y| s.db[y * s.width + x])
                    .fold(f32::MIN, f32::max);
                assert!(loudest > -40.0, "column {x}: {loudest} dB");
            }
        }
        other => panic!("expected a spectrogram, got {other:?}"),
    }
    let id = client.request(PreviewRequest::Overview {
        input: silent,
        width: 10,
        height: 10,
    });
    match wait_reply(&mut client, id) {
        PreviewReply::Error { message } => assert!(message.contains("no audio"), "{message}"),
        other => panic!("expected no audio, got {other:?}"),
    }
}

/// The processing pipeline reports each finished chunk's last frame as a small JPEG, on both
/// the ffmpeg path (Lanczos) and the pipe path (a frame engine).
#[test]
fn running_job_emits_thumbnails_that_decode() {
    use reframe::protocol::Event;
    let env = TestEnv::new();
    let clip = make_plain(&env.path("clip.mp4"), Clip::secs(6.0));
    for engine in ["lanczos", "identity"] {
        let out = env.path(format!("out-{engine}.mp4"));
        let args = common::run_args(&clip, &out, 1.0, &["--engine", engine]);
        let mut run = env.spawn_json_with(args, |cmd| {
            cmd.env("REFRAME_TEST_ENGINES", "1");
        });
        let event = run.wait_for("a thumbnail", Duration::from_secs(120), |e| {
            matches!(e, Event::Thumbnail { .. })
        });
        let Event::Thumbnail { path, .. } = event else {
            unreachable!()
        };
        // Read at once: the session folder goes when the job is done.
        let jpeg = fs::read(&path).unwrap();
        let image = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
            .unwrap_or_else(|e| panic!("{engine}: the thumbnail is not a JPEG: {e}"));
        assert_eq!((image.width(), image.height()), (320, 240), "{engine}");
        let finished = run.finish(Duration::from_secs(120));
        finished.assert_success();
        let thumbnails = finished
            .events
            .iter()
            .filter(|e| matches!(e, Event::Thumbnail { .. }))
            .count();
        let chunks = common::chunk_done_indices(&finished.events).len();
        assert_eq!(thumbnails, chunks, "{engine}: one thumbnail per chunk");
    }
}
