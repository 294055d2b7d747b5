//! Interrupted runs and resume: kill -9 at an early chunk, a late chunk and during package,
//! then the same command again must say it resumes, skip the finished chunks and decode to
//! exactly the frames of an uninterrupted run. Also Ctrl-C, `--restart`, `--resume` with
//! nothing to resume, a corrupted progress.json, and changed settings or input.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use reframe::protocol::{Event, Step, StepStatus};

/// 4 s at 24 fps in 0.5 s chunks: 8 chunks of 12 frames.
const CLIP_SECS: f64 = 4.0;
const CHUNK_SECS: f64 = 0.5;
const PRESET: &str = "h264_hq";
const WAIT: Duration = Duration::from_secs(240);

struct Reference {
    input_hashes: Vec<String>,
    output_md5: Vec<String>,
}

/// framemd5 of an uninterrupted run (computed once per test binary, in its own environment).
fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let env = TestEnv::new();
        let input = make_long_gop(&env.path("reference.mp4"), Clip::secs(CLIP_SECS));
        let out = env.path("reference.out.mp4");
        let run = env.spawn_json(args(&input, &out)).finish(WAIT);
        run.assert_success();
        let started = single_start(&run.events);
        assert!(!started.resumed);
        assert_eq!(chunk_done_indices(&run.events).len(), started.chunks_total);
        Reference {
            input_hashes: frame_hashes(&input),
            output_md5: framemd5(&out),
        }
    })
}

fn args(input: &Path, out: &Path) -> Vec<std::ffi::OsString> {
    run_args(input, out, CHUNK_SECS, &["--preset", PRESET])
}

/// A fresh test environment with the 4 s input and `out/` for the output.
fn setup() -> (TestEnv, PathBuf, PathBuf) {
    let env = TestEnv::new();
    let input = make_long_gop(&env.path("long.mp4"), Clip::secs(CLIP_SECS));
    assert_eq!(
        frame_hashes(&input),
        reference().input_hashes,
        "fixture generation is not deterministic: the reference run proves nothing"
    );
    let out = env.subdir("out").join("long.out.mp4");
    (env, input, out)
}

fn is_started(e: &Event) -> bool {
    matches!(e, Event::JobStarted { .. })
}

fn is_chunk_done(e: &Event) -> bool {
    matches!(e, Event::ChunkDone { .. })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillPoint {
    /// Right after the first `chunk-done`.
    FirstChunk,
    /// After a `chunk-done` with at most two chunks left.
    LateChunk,
    /// Right after `step-changed` to package in progress.
    Package,
}

/// Starts a run, kills it -9 at `point`, checks what it left; returns the first run's
/// `job-started` and the chunks it reported done.
fn interrupted_run(
    env: &TestEnv,
    input: &Path,
    out: &Path,
    point: KillPoint,
) -> (Started, Vec<usize>) {
    let mut run = env.spawn_json(args(input, out));
    let started = as_started(&run.wait_for("job-started", WAIT, is_started)).expect("started");
    assert!(!started.resumed, "{started:?}");
    assert!(
        started.chunks_total >= 6,
        "need several chunks: {started:?}"
    );
    match point {
        KillPoint::FirstChunk => {
            run.wait_for("a chunk-done", WAIT, is_chunk_done);
        }
        KillPoint::LateChunk => {
            run.wait_for("a late chunk-done", WAIT, |e| {
                matches!(e, Event::ChunkDone { chunks_done, chunks_total, .. }
                    if *chunks_done + 2 >= *chunks_total)
            });
        }
        KillPoint::Package => {
            run.wait_for("package in progress", WAIT, |e| {
                matches!(
                    e,
                    Event::StepChanged {
                        step: Step::Package,
                        status: StepStatus::InProgress,
                        ..
                    }
                )
            });
        }
    }
    run.kill9();
    assert!(
        finished_outputs(&run.events).is_empty(),
        "the job finished before the kill: the test proves nothing"
    );
    assert!(
        !out.exists(),
        "a killed run left a file under the final output name {}",
        out.display()
    );
    assert_eq!(
        env.session_ids(),
        vec![started.session_id.clone()],
        "the killed run's session is kept"
    );
    let done = chunk_done_indices(&run.events);
    if point == KillPoint::Package {
        assert_eq!(done.len(), started.chunks_total);
    }
    (started, done)
}

fn kill_and_resume(point: KillPoint) {
    let (env, input, out) = setup();
    let before = snapshot(&input);
    let (first, done_before) = interrupted_run(&env, &input, &out, point);

    let run = env.spawn_json(args(&input, &out)).finish(WAIT);
    run.assert_success();
    let second = single_start(&run.events);
    assert!(second.resumed, "the rerun must resume: {second:?}");
    assert_eq!(second.session_id, first.session_id);
    assert_eq!(second.chunks_total, first.chunks_total);
    assert!(second.chunks_done > 0, "{second:?}");
    assert!(
        second.chunks_done >= done_before.len(),
        "chunks reported done before the kill were lost: {} reported, {} kept",
        done_before.len(),
        second.chunks_done
    );
    let redone = chunk_done_indices(&run.events);
    assert_eq!(
        redone.len(),
        second.chunks_total - second.chunks_done,
        "the rerun encodes exactly the missing chunks: {redone:?}"
    );
    for i in &redone {
        assert!(
            !done_before.contains(i),
            "chunk {i} was done before the kill and encoded again"
        );
    }
    assert_eq!(single_output(&run.events), out);
    assert_eq!(
        framemd5(&out),
        reference().output_md5,
        "resumed output differs from an uninterrupted run"
    );
    assert_untouched(&input, &before);
    assert!(env.session_ids().is_empty(), "session kept after success");
    assert_eq!(
        list_files(out.parent().expect("out dir")),
        vec![PathBuf::from("long.out.mp4")],
        "temp files left in the output folder"
    );
}

#[test]
fn kill9_after_first_chunk_then_resume() {
    kill_and_resume(KillPoint::FirstChunk);
}

#[test]
fn kill9_after_late_chunk_then_resume() {
    kill_and_resume(KillPoint::LateChunk);
}

#[test]
fn kill9_during_package_then_resume() {
    kill_and_resume(KillPoint::Package);
}

/// Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops the run without
/// leaving processes behind; the same command resumes.
#[test]
fn ctrl_c_then_resume() {
    let (env, input, out) = setup();
    let mut run = env.spawn_json(args(&input, &out));
    run.wait_for("a chunk-done", WAIT, is_chunk_done);
    run.signal_group(libc::SIGINT);
    let stopped = run.finish(Duration::from_secs(60));
    stopped.output.assert_no_panic().assert_no_leftovers();
    assert_ne!(
        stopped.output.code(),
        Some(0),
        "{}",
        stopped.output.describe()
    );
    assert!(!out.exists());
    let done_before = chunk_done_indices(&stopped.events);

    let run = env.spawn_json(args(&input, &out)).finish(WAIT);
    run.assert_success();
    let second = single_start(&run.events);
    assert!(second.resumed, "{second:?}");
    assert!(second.chunks_done >= done_before.len());
    assert_eq!(framemd5(&out), reference().output_md5);
}

/// Human mode says it resumes, with the session id and K/N chunks.
#[test]
fn human_mode_says_it_resumes() {
    let (env, input, out) = setup();
    let (first, _) = interrupted_run(&env, &input, &out, KillPoint::FirstChunk);
    let run = env.run(args(&input, &out));
    run.assert_success();
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("resuming session"))
        .unwrap_or_else(|| panic!("no `resuming session` line\n{}", run.describe()));
    assert!(line.contains(&first.session_id), "{line}");
    assert!(
        line.contains(&format!("/{} chunks done", first.chunks_total)),
        "{line}"
    );
    assert!(
        run.stdout.lines().any(|l| l.starts_with("done: ")),
        "{}",
        run.describe()
    );
    assert_eq!(framemd5(&out), reference().output_md5);
}

/// `--restart` discards the interrupted session and encodes every chunk again.
#[test]
fn restart_discards_the_session() {
    let (env, input, out) = setup();
    interrupted_run(&env, &input, &out, KillPoint::FirstChunk);
    let mut a = args(&input, &out);
    a.push("--restart".into());
    let run = env.spawn_json(a).finish(WAIT);
    run.assert_success();
    let s = single_start(&run.events);
    assert!(!s.resumed, "{s:?}");
    assert_eq!(s.chunks_done, 0);
    assert_eq!(chunk_done_indices(&run.events).len(), s.chunks_total);
    assert_eq!(framemd5(&out), reference().output_md5);
    assert!(env.session_ids().is_empty());
}

/// `--resume` when there is nothing to resume fails clearly and writes nothing.
#[test]
fn resume_with_nothing_to_resume_fails() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let out = env.path("clip.out.mp4");
    let mut a = run_args(&input, &out, CHUNK_SECS, &["--resume"]);
    a.push("--json".into());
    let run = env.run(a);
    run.assert_failure().assert_mentions_any(&[
        "nothing to resume",
        "no earlier run",
        "no session",
        "no previous",
        "no resumable",
    ]);
    assert!(!out.exists());
}

/// A torn progress.json is reported (naming the file and the way out), never a crash; then
/// `--restart` works.
#[test]
fn corrupted_progress_is_reported_and_restart_recovers() {
    let (env, input, out) = setup();
    let (first, _) = interrupted_run(&env, &input, &out, KillPoint::FirstChunk);
    let progress = env
        .sessions_dir()
        .join(&first.session_id)
        .join("progress.json");
    let text = fs::read_to_string(&progress).expect("progress.json of the killed run");
    let v: serde_json::Value = serde_json::from_str(&text).expect("progress.json is JSON");
    assert_eq!(v["session_id"], first.session_id.as_str());
    fs::write(&progress, &text[..text.len() / 2]).expect("tear progress.json");

    let run = env.run(args(&input, &out));
    run.assert_failure()
        .assert_mentions_all(&["progress.json", "--restart"]);
    assert!(!out.exists());

    let mut a = args(&input, &out);
    a.push("--restart".into());
    env.run(a).assert_success();
    assert_eq!(framemd5(&out), reference().output_md5);
}

/// Other settings, or a changed input file, are another session: nothing is resumed from
/// chunks that were made for something else.
#[test]
fn changed_settings_or_input_do_not_resume() {
    let (env, input, out) = setup();
    let (first, _) = interrupted_run(&env, &input, &out, KillPoint::FirstChunk);

    let run = env
        .spawn_json(run_args(&input, &out, 1.0, &["--preset", PRESET]))
        .finish(WAIT);
    run.assert_success();
    let s = single_start(&run.events);
    assert!(
        !s.resumed,
        "other chunk length resumed another session: {s:?}"
    );
    assert_ne!(s.session_id, first.session_id);
    fs::remove_file(&out).expect("remove output");

    // Same settings as the interrupted run, but the file changed meanwhile.
    std::thread::sleep(Duration::from_millis(20));
    make_plain(
        &input,
        Clip {
            width: 320,
            height: 240,
            fps: 24,
            duration_secs: 3.5,
        },
    );
    let run = env.spawn_json(args(&input, &out)).finish(WAIT);
    run.assert_success();
    let s = single_start(&run.events);
    assert!(
        !s.resumed,
        "resumed chunks made from another version of the file: {s:?}"
    );
    assert_eq!(count_video_frames(&out), 84);
}
