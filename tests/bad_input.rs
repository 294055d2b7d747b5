//! Bad input and hostile conditions. Each case: a clear message, a non-zero exit, no panic,
//! and nothing of the user's lost (the input untouched, an existing output untouched without
//! `--overwrite`).

mod common;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use reframe::protocol::Event;

/// Runs `reframe run INPUT -o OUT` on a file that cannot be processed and checks the common
/// promises; returns the run for case-specific checks.
fn run_bad(env: &TestEnv, input: &Path, keywords: &[&str]) -> RunOutput {
    let before = input.is_file().then(|| snapshot(input));
    let out = env.path("never.mp4");
    let run = env.run(run_args(input, &out, 0.5, &[]));
    run.assert_failure().assert_mentions_any(keywords);
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        run.stdout.contains(&name) || run.stderr.contains(&name),
        "the message does not name the file {name}\n{}",
        run.describe()
    );
    assert!(!out.exists(), "an output was written for a bad input");
    if let Some(before) = before {
        assert_untouched(input, &before);
    }
    run
}

#[test]
fn zero_byte_file() {
    let env = TestEnv::new();
    let input = make_zero_byte(&env.path("empty.mp4"));
    run_bad(&env, &input, &["empty", "zero", "0 bytes"]);
}

/// The human-mode error line names the input before the reason ("error: empty.mp4: …"),
/// also when the job fails before it started.
#[test]
fn error_line_names_the_input() {
    let env = TestEnv::new();
    let input = make_zero_byte(&env.path("empty.mp4"));
    let run = env.run(run_args(&input, &env.path("never.mp4"), 0.5, &[]));
    run.assert_failure();
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line\n{}", run.describe()));
    assert!(
        line.starts_with("error: empty.mp4")
            || line.starts_with(&format!("error: {}", input.display())),
        "error line without its subject: {line:?}"
    );
}

#[test]
fn text_file_named_mp4() {
    let env = TestEnv::new();
    let input = make_text_file(&env.path("notes.mp4"));
    run_bad(
        &env,
        &input,
        &[
            "not a video",
            "unreadable",
            "cannot read",
            "could not read",
            "invalid data",
            "not recognized",
            "unsupported",
            "no video",
        ],
    );
}

#[test]
fn truncated_mp4_without_index() {
    let env = TestEnv::new();
    let input = make_truncated(&env.path("cut.mp4"), Clip::default(), Truncation::NoIndex);
    run_bad(
        &env,
        &input,
        &[
            "truncated",
            "corrupt",
            "incomplete",
            "unreadable",
            "cannot read",
            "could not read",
            "invalid",
            "moov",
        ],
    );
}

/// Probes fine but frames are missing past the cut: the job must fail (frame count check),
/// not deliver a short video as if all were well.
#[test]
fn truncated_mp4_with_missing_frames() {
    let env = TestEnv::new();
    let input = make_truncated(
        &env.path("cut_fast.mp4"),
        Clip::default(),
        Truncation::MissingFrames,
    );
    run_bad(
        &env,
        &input,
        &[
            "truncated",
            "corrupt",
            "incomplete",
            "missing",
            "frame",
            "unreadable",
            "invalid",
        ],
    );
}

#[test]
fn audio_only_file() {
    let env = TestEnv::new();
    let input = make_audio_only(&env.path("song.mp4"), 2.0);
    run_bad(&env, &input, &["no video"]);
}

#[test]
fn missing_file() {
    let env = TestEnv::new();
    run_bad(
        &env,
        &env.path("not-here.mp4"),
        &["not found", "no such file", "does not exist", "missing"],
    );
}

#[test]
fn directory_without_videos() {
    let env = TestEnv::new();
    let dir = env.subdir("documents");
    make_text_file(&dir.join("notes.txt"));
    make_text_file(&with_parent(dir.join("sub").join("more.txt")));
    let run = env.run(["run", "documents"]);
    run.assert_failure().assert_mentions_any(&["no video"]);
    assert!(run.text_lower().contains("documents"), "{}", run.describe());
    assert_eq!(
        list_files(&dir),
        vec![PathBuf::from("notes.txt"), PathBuf::from("sub/more.txt")]
    );
}

/// Creates the parent directory of `path` and returns `path`.
fn with_parent(path: PathBuf) -> PathBuf {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("mkdir");
    }
    path
}

/// A folder: videos found recursively, the rest skipped with a reason, exit 0.
#[test]
fn folder_with_videos_and_other_files() {
    let env = TestEnv::new();
    let dir = env.subdir("shoot");
    make_plain(&dir.join("a.mp4"), Clip::secs(1.0));
    make_silent(
        &with_parent(dir.join("day2").join("b.mkv")),
        Clip::secs(1.0),
    );
    make_text_file(&dir.join("notes.txt"));
    let out_dir = env.path("out");
    let run = env.run([
        "run".as_ref(),
        "shoot".as_ref(),
        "-o".as_ref(),
        out_dir.as_os_str(),
        "--chunk-seconds".as_ref(),
        "0.5".as_ref(),
        "--json".as_ref(),
    ]);
    run.assert_success();
    let events = run.events();
    let outs = finished_outputs(&events);
    assert_eq!(outs.len(), 2, "{}", run.describe());
    for o in &outs {
        assert_eq!(count_video_frames(o), 24, "{}", o.display());
    }
    let mut inputs: Vec<String> = started_events(&events)
        .iter()
        .map(|s| {
            s.input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    inputs.sort();
    assert_eq!(inputs, vec!["a.mp4", "b.mkv"]);
    // The text file is skipped with a reason: on stderr, or as a warning event.
    let mut said = run.stderr.clone();
    said.push_str(&warnings(&events).join("\n"));
    let said = said.to_lowercase();
    assert!(
        said.lines()
            .any(|l| l.contains("notes.txt") && l.contains("skip")),
        "notes.txt not reported as skipped\n{}",
        run.describe()
    );
}

/// One bad input among good ones: the others are still done, exit 1, and the summary on
/// stdout names the failure.
#[test]
fn one_failure_does_not_stop_the_others() {
    let env = TestEnv::new();
    make_plain(&env.path("good1.mp4"), Clip::secs(1.0));
    make_zero_byte(&env.path("broken.mp4"));
    make_plain(&env.path("good2.mp4"), Clip::secs(1.0));
    let run = env.run([
        "run",
        "good1.mp4",
        "broken.mp4",
        "good2.mp4",
        "--chunk-seconds",
        "0.5",
    ]);
    run.assert_code(1);
    assert_eq!(count_video_frames(&env.path("good1.2x.mp4")), 24);
    assert_eq!(count_video_frames(&env.path("good2.2x.mp4")), 24);
    assert!(!env.path("broken.2x.mp4").exists());
    assert!(
        run.stdout.contains("broken.mp4"),
        "the summary on stdout does not list the failure\n{}",
        run.describe()
    );
}

/// A batch keeps its order: each job's events come together, job after job (a job's package
/// and verify overlap the next job's chunks, but what is reported does not interleave), and
/// the outcomes are in the inputs' order, a failure in the middle included.
#[test]
fn a_batch_reports_jobs_in_order() {
    let env = TestEnv::new();
    make_plain(&env.path("a.mp4"), Clip::secs(1.0));
    make_zero_byte(&env.path("b.mp4"));
    make_plain(&env.path("c.mp4"), Clip::secs(1.0));
    make_plain(&env.path("d.mp4"), Clip::secs(1.0));
    let run = env.run([
        "run",
        "a.mp4",
        "b.mp4",
        "c.mp4",
        "d.mp4",
        "--chunk-seconds",
        "0.5",
        "--json",
    ]);
    run.assert_code(1);
    let events = run.events();
    let jobs: Vec<u64> = events.iter().filter_map(|e| e.job()).collect();
    assert!(
        jobs.windows(2).all(|w| w[0] <= w[1]),
        "events of different jobs interleave: {jobs:?}"
    );
    let ends: Vec<(u64, &str)> = events
        .iter()
        .filter_map(|e| match e {
            Event::JobFinished { job, .. } => Some((*job, "finished")),
            Event::JobFailed { job, .. } => Some((*job, "failed")),
            Event::JobCancelled { job } => Some((*job, "cancelled")),
            _ => None,
        })
        .collect();
    assert_eq!(
        ends,
        [
            (1, "finished"),
            (2, "failed"),
            (3, "finished"),
            (4, "finished")
        ],
        "{}",
        run.describe()
    );
    for name in ["a", "c", "d"] {
        assert_eq!(count_video_frames(&env.path(format!("{name}.2x.mp4"))), 24);
    }
    assert!(env.session_ids().is_empty(), "sessions left behind");
}

/// Names with spaces, quotes, unicode, a leading dash, or what looks like an ffmpeg protocol
/// are just files: processed, output beside them, never read as an option or a URL.
#[test]
fn awkward_file_names_are_just_files() {
    let env = TestEnv::new();
    let mut args: Vec<OsString> = vec![
        "run".into(),
        "--chunk-seconds".into(),
        "1".into(),
        "--".into(),
    ];
    let mut snaps = Vec::new();
    for name in AWKWARD_NAMES {
        let p = make_plain(&env.path(name), Clip::secs(1.0));
        snaps.push((p.clone(), snapshot(&p)));
        args.push(name.into());
    }
    let run = env.run(args);
    run.assert_success();
    for (p, before) in &snaps {
        assert_untouched(p, before);
        let stem = p.file_stem().expect("stem").to_string_lossy().into_owned();
        let out = env.path(format!("{stem}.2x.mp4"));
        assert!(
            out.is_file(),
            "no output for {}\n{}",
            p.display(),
            run.describe()
        );
        assert_eq!(count_video_frames(&out), 24, "{}", out.display());
        assert_eq!(video_size(&out), (640, 480));
    }
    assert_eq!(list_files(&env.work_dir).len(), 2 * AWKWARD_NAMES.len());
}

/// An awkward absolute output path given with `-o`.
#[test]
fn awkward_output_path() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let out = env.subdir("-o dir 'x' ü").join("-out file.mp4");
    env.run(run_args(&input, &out, 1.0, &[])).assert_success();
    assert_eq!(count_video_frames(&out), 24);
}

#[test]
fn existing_output_is_kept_without_overwrite() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let out = env.path("clip.out.mp4");
    fs::write(&out, b"precious work of the user").expect("write");
    let before = snapshot(&out);
    let run = env.run(run_args(&input, &out, 0.5, &[]));
    run.assert_failure().assert_mentions_all(&["--overwrite"]);
    assert_untouched(&out, &before);

    // The default output name beside the input is protected the same way.
    let default_out = env.path("clip.2x.mp4");
    fs::write(&default_out, b"also precious").expect("write");
    let before_default = snapshot(&default_out);
    let run = env.run(["run", "clip.mp4", "--chunk-seconds", "0.5"]);
    run.assert_failure().assert_mentions_all(&["--overwrite"]);
    assert_untouched(&default_out, &before_default);

    let run = env.run(run_args(&input, &out, 0.5, &["--overwrite"]));
    run.assert_success();
    assert_eq!(count_video_frames(&out), 24);
}

/// Writing the output over the input would destroy it: refused even with --overwrite.
#[test]
fn output_over_the_input_is_refused() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let before = snapshot(&input);
    let run = env.run(run_args(&input, &input, 0.5, &["--overwrite"]));
    run.assert_failure();
    assert_untouched(&input, &before);
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `reframe` in a private mount namespace after `setup` (a shell snippet, `$D` = `dir`).
/// None when this machine cannot make mount namespaces (then the caller falls back or skips).
fn in_mount_namespace(
    env: &TestEnv,
    dir: &Path,
    setup: &str,
    script: &str,
    args: &[OsString],
) -> Option<RunOutput> {
    let unshare = if is_root() {
        vec!["-m", "--propagation", "private"]
    } else {
        vec!["-U", "-r", "-m", "--propagation", "private"]
    };
    // Can this machine do it? (A throwaway namespace: the mount vanishes with it.)
    let probe = Command::new("unshare")
        .args(&unshare)
        .args(["sh", "-c", "mount -t tmpfs -o size=64k tmpfs \"$0\""])
        .arg(dir)
        .status()
        .ok()?;
    if !probe.success() {
        return None;
    }
    let mut cmd = Command::new("unshare");
    env.apply_env(&mut cmd);
    cmd.args(&unshare)
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "set -e; D=\"$0\"; BIN=\"$1\"; shift; {setup}; set +e; {script}"
        ))
        .arg(dir)
        .arg(reframe_bin())
        .args(args);
    Some(run_command(cmd, RUN_TIMEOUT))
}

#[test]
fn read_only_output_folder() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let before = snapshot(&input);
    let ro = env.subdir("readonly");
    let out = ro.join("clip.out.mp4");
    let args = run_args(&input, &out, 0.5, &[]);
    let run = if is_root() {
        // Permission bits do not stop root: make the folder a read-only mount instead.
        in_mount_namespace(
            &env,
            &ro,
            "mount -t tmpfs -o ro,size=1m tmpfs \"$D\"",
            "exec \"$BIN\" \"$@\"",
            &args,
        )
        .expect("this test needs mount namespaces when run as root (unshare -m)")
    } else {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).expect("chmod");
        let r = env.run(&args);
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).expect("chmod back");
        r
    };
    run.assert_failure().assert_mentions_any(&[
        "read-only",
        "read only",
        "permission",
        "not writable",
        "cannot write",
        "can't write",
    ]);
    assert!(
        run.text_lower().contains("readonly"),
        "folder not named\n{}",
        run.describe()
    );
    assert_untouched(&input, &before);
    assert!(!out.exists());
}

/// Output of one `reframe` run made by a script inside a namespace (files in `logs`).
fn scripted_run(logs: &Path, n: u32, what: &str) -> (i32, RunOutput) {
    let read = |name: String| fs::read_to_string(logs.join(name)).unwrap_or_default();
    let rc: i32 = read(format!("rc{n}")).trim().parse().unwrap_or(-1);
    let out = RunOutput {
        cmdline: what.to_string(),
        status: std::process::ExitStatus::default(),
        stdout: read(format!("out{n}")),
        stderr: read(format!("err{n}")),
        elapsed: Duration::ZERO,
        leftovers: Vec::new(),
    };
    assert_ne!(rc, 101, "panic\n{}", out.describe());
    assert_ne!(rc, -1, "the script did not run it\n{}", out.describe());
    (rc, out)
}

/// Too little room for the session at the start: refused up front with a clear message;
/// with room again the same command works.
#[test]
fn not_enough_space_at_start() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(2.0));
    let out = env.path("clip.out.mp4");
    let logs = env.subdir("logs");
    let args = run_args(&input, &out, 0.5, &["--json"]);
    let script = format!(
        "\"$BIN\" \"$@\" >{l}/out1 2>{l}/err1; echo $? >{l}/rc1; \
         if [ -e {o} ]; then touch {l}/output_after_run1; fi; \
         mount -o remount,size=512m \"$D\"; \
         \"$BIN\" \"$@\" >{l}/out2 2>{l}/err2; echo $? >{l}/rc2",
        l = logs.display(),
        o = out.display()
    );
    let wrapper = in_mount_namespace(
        &env,
        &env.cache_dir,
        "mount -t tmpfs -o size=160k tmpfs \"$D\"",
        &script,
        &args,
    )
    .expect("this test needs mount namespaces (unshare -m, or unshare -Urm as a user)");
    wrapper.assert_success();
    let (rc1, first) = scripted_run(&logs, 1, "first run (160 KB for the session)");
    assert_ne!(rc1, 0, "{}", first.describe());
    first.assert_mentions_any(&["disk space", "disk is nearly full", "no space"]);
    assert!(
        !logs.join("output_after_run1").exists(),
        "output written by the failed run"
    );
    let (rc2, second) = scripted_run(&logs, 2, "second run (512 MB)");
    assert_eq!(rc2, 0, "{}", second.describe());
    assert_eq!(count_video_frames(&out), 48);
}

/// The disk holding the session fills up while chunks are being made (another program takes
/// the space): the job stops with a clear message, keeps its session, and once space is
/// freed the same command resumes and finishes.
#[test]
fn disk_full_during_chunks_then_resume() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(4.0));
    let out = env.path("clip.out.mp4");
    let logs = env.subdir("logs");
    let args = run_args(&input, &out, 0.5, &["--json", "--preset", "h264_hq"]);
    // Run 1 in the background; at its first chunk-done, fill the disk to 40 KB of free space.
    let script = format!(
        "\"$BIN\" \"$@\" >{l}/out1 2>{l}/err1 & pid=$!; \
         while kill -0 $pid 2>/dev/null && ! grep -q chunk-done {l}/out1; do sleep 0.02; done; \
         free=$(df -B1 --output=avail \"$D\" | tail -n 1); \
         head -c $((free - 40960)) /dev/zero >\"$D/filler\" 2>/dev/null; \
         df -B1 --output=avail \"$D\" | tail -n 1 >{l}/free_after_fill; \
         wait $pid; echo $? >{l}/rc1; \
         if [ -e {o} ]; then touch {l}/output_after_run1; fi; \
         rm -f \"$D/filler\"; \
         \"$BIN\" \"$@\" >{l}/out2 2>{l}/err2; echo $? >{l}/rc2",
        l = logs.display(),
        o = out.display()
    );
    let wrapper = in_mount_namespace(
        &env,
        &env.cache_dir,
        "mount -t tmpfs -o size=96m tmpfs \"$D\"",
        &script,
        &args,
    )
    .expect("this test needs mount namespaces (unshare -m, or unshare -Urm as a user)");
    wrapper.assert_success();
    let (rc1, first) = scripted_run(&logs, 1, "first run (disk filled after its first chunk)");
    let events1 = first.events();
    let done1 = chunk_done_indices(&events1);
    let total = single_start(&events1).chunks_total;
    assert!(
        done1.len() < total,
        "every chunk was done before the disk filled up: the test proves nothing\n{}",
        first.describe()
    );
    assert_eq!(rc1, 1, "{}", first.describe());
    first.assert_mentions_any(&["disk", "space"]);
    let fails = failures(&events1);
    assert!(
        fails.iter().any(|(_, resumable)| *resumable),
        "a job stopped by a full disk must stay resumable: {fails:?}"
    );
    assert!(
        !logs.join("output_after_run1").exists(),
        "output written by the failed run"
    );

    let (rc2, second) = scripted_run(&logs, 2, "second run (space freed)");
    assert_eq!(rc2, 0, "{}", second.describe());
    let s = single_start(&second.events());
    assert!(s.resumed, "{s:?}");
    assert!(
        s.chunks_done >= done1.len(),
        "chunks reported done by the first run were lost: {s:?} after {done1:?}\n{}\n{}",
        first.describe(),
        second.describe()
    );
    assert_eq!(
        chunk_done_indices(&second.events()).len(),
        s.chunks_total - s.chunks_done
    );
    assert_eq!(count_video_frames(&out), 96);
}

#[test]
fn ffmpeg_missing_from_path() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let empty_bin = env.subdir("empty-bin");
    let out = env.path("clip.out.mp4");
    let run = env.run_with(run_args(&input, &out, 0.5, &[]), |c| {
        c.env("PATH", &empty_bin);
    });
    run.assert_code(2)
        .assert_mentions_all(&["ffmpeg", "install"]);
    assert!(!out.exists());

    // An explicit REFRAME_FFMPEG that does not exist is named in the message.
    let run = env.run_with(run_args(&input, &out, 0.5, &[]), |c| {
        c.env("REFRAME_FFMPEG", "/nonexistent/bin/ffmpeg");
    });
    run.assert_code(2)
        .assert_mentions_any(&["/nonexistent/bin/ffmpeg", "REFRAME_FFMPEG"]);
}

#[test]
fn unknown_preset() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let out = env.path("clip.out.mp4");
    let run = env.run(run_args(
        &input,
        &out,
        0.5,
        &["--preset", "h264_ultra_mega"],
    ));
    run.assert_code(2)
        .assert_mentions_all(&["h264_ultra_mega", "h264_hq"]);
    assert!(!out.exists());
}

#[test]
fn invalid_preset_files() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let out = env.path("clip.out.mp4");

    let broken = write_preset_file(&env, "broken-preset.json", "{ \"name\": \"broken\", ");
    let run = env.run(run_args(
        &input,
        &out,
        0.5,
        &["--preset", broken.to_str().expect("utf-8")],
    ));
    run.assert_code(2)
        .assert_mentions_all(&["broken-preset.json"]);

    let bad_crf = FFV1_8BIT_PRESET
        .replace("\"codec\": \"ffv1\"", "\"codec\": \"h264\", \"crf\": 99")
        .replace("test_ffv1_8bit", "bad_crf");
    let bad_crf = write_preset_file(&env, "bad-crf.json", &bad_crf);
    let run = env.run(run_args(
        &input,
        &out,
        0.5,
        &["--preset", bad_crf.to_str().expect("utf-8")],
    ));
    run.assert_code(2)
        .assert_mentions_all(&["crf", "bad-crf.json"]);

    let bad_codec = FFV1_8BIT_PRESET
        .replace("\"codec\": \"ffv1\"", "\"codec\": \"divx\"")
        .replace("test_ffv1_8bit", "bad_codec");
    let bad_codec = write_preset_file(&env, "bad-codec.json", &bad_codec);
    let run = env.run(run_args(
        &input,
        &out,
        0.5,
        &["--preset", bad_codec.to_str().expect("utf-8")],
    ));
    run.assert_code(2).assert_mentions_all(&["codec", "divx"]);
    assert!(!out.exists());
}

#[test]
fn bad_options_are_usage_errors() {
    let env = TestEnv::new();
    make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let cases: [(&[&str], &str); 4] = [
        (&["run"], "input"),
        (&["run", "clip.mp4", "--scale", "5"], "scale"),
        (&["run", "clip.mp4", "--chunk-seconds", "0"], "chunk"),
        (&["run", "clip.mp4", "--resume", "--restart"], "restart"),
    ];
    for (args, word) in cases {
        let run = env.run(args);
        run.assert_code(2).assert_mentions_all(&[word]);
    }
    assert_eq!(list_files(&env.work_dir), vec![PathBuf::from("clip.mp4")]);
}
