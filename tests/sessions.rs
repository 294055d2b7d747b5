//! Sessions seen from outside: concurrent runs (same session refused, different sessions
//! independent and each cleaning only its own directory), `sessions list` / `clean`, and the
//! `presets` and `engines` listings.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use reframe::protocol::Event;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(240);

fn is_started(e: &Event) -> bool {
    matches!(e, Event::JobStarted { .. })
}

/// Leaves an interrupted (resumable) session behind: kill -9 after the first chunk.
fn interrupted_session(env: &TestEnv, input: &Path) -> Started {
    let out = env.path("interrupted.out.mp4");
    let mut run = env.spawn_json(run_args(input, &out, 0.5, &[]));
    let started = as_started(&run.wait_for("job-started", WAIT, is_started)).expect("started");
    run.wait_for("a chunk-done", WAIT, |e| {
        matches!(e, Event::ChunkDone { .. })
    });
    run.kill9();
    assert!(env.sessions_dir().join(&started.session_id).is_dir());
    started
}

/// A second process on a session that is being processed is refused; the first one is not
/// disturbed and finishes.
#[test]
fn same_session_twice_is_refused() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(3.0));
    let out = env.path("clip.out.mp4");
    let args = run_args(&input, &out, 0.5, &[]);
    let mut first = env.spawn_json(&args);
    let started = as_started(&first.wait_for("job-started", WAIT, is_started)).expect("started");
    // Freeze the first run so it is certainly still holding its session.
    first.signal(libc::SIGSTOP);
    let second = env.run(&args);
    first.signal(libc::SIGCONT);
    second
        .assert_failure()
        .assert_mentions_all(&["another reframe process"]);
    assert_eq!(second.code(), Some(1), "{}", second.describe());

    let first = first.finish(WAIT);
    first.assert_success();
    assert_eq!(single_output(&first.events), out);
    assert_eq!(count_video_frames(&out), 72);
    assert!(
        !env.sessions_dir().join(&started.session_id).exists(),
        "the finished session is cleaned"
    );
}

/// Two runs on different inputs at the same time both succeed, and each cleans only its own
/// session directory: an unrelated session directory is left exactly as it was.
#[test]
fn different_sessions_run_side_by_side() {
    let env = TestEnv::new();
    let decoy = env.sessions_dir().join("0123456789ab");
    fs::create_dir_all(decoy.join("chunks")).expect("decoy dir");
    fs::write(decoy.join("progress.json"), b"{ \"not\": \"ours\" }").expect("decoy");
    fs::write(decoy.join("chunks").join("000001.mkv"), b"decoy chunk").expect("decoy");
    let decoy_before: Vec<(PathBuf, Snapshot)> = list_files(&decoy)
        .into_iter()
        .map(|f| (f.clone(), snapshot(&decoy.join(&f))))
        .collect();

    let a = make_plain(&env.path("a.mp4"), Clip::secs(3.0));
    let b = make_vfr(&env.path("b.mp4"), Clip::secs(3.0));
    let (out_a, out_b) = (env.path("a.out.mp4"), env.path("b.out.mp4"));
    let mut run_a = env.spawn_json(run_args(&a, &out_a, 0.5, &[]));
    let mut run_b = env.spawn_json(run_args(&b, &out_b, 0.5, &[]));
    let sa = as_started(&run_a.wait_for("job-started a", WAIT, is_started)).expect("a");
    let sb = as_started(&run_b.wait_for("job-started b", WAIT, is_started)).expect("b");
    assert_ne!(sa.session_id, sb.session_id);
    let ra = run_a.finish(WAIT);
    let rb = run_b.finish(WAIT);
    ra.assert_success();
    rb.assert_success();
    assert_eq!(count_video_frames(&out_a), 72);
    assert_eq!(count_video_frames(&out_b), frame_times(&b).len() as u64);
    assert_eq!(env.session_ids(), vec!["0123456789ab".to_string()]);
    for (f, before) in &decoy_before {
        assert_untouched(&decoy.join(f), before);
    }
    assert_eq!(list_files(&decoy).len(), decoy_before.len());
}

/// Every string anywhere in a JSON value.
fn json_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| json_strings(x, out)),
        _ => {}
    }
}

/// Largest number under a key naming a size ("…bytes…", "…size…", "…disk…").
fn json_max_size(v: &Value) -> u64 {
    match v {
        Value::Array(a) => a.iter().map(json_max_size).max().unwrap_or(0),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| {
                let k = k.to_lowercase();
                let own = if k.contains("bytes") || k.contains("size") || k.contains("disk") {
                    x.as_u64().unwrap_or(0)
                } else {
                    0
                };
                own.max(json_max_size(x))
            })
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

/// `sessions list --json` output: one JSON document, or one per line.
fn parse_json_output(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|_| {
        Value::Array(
            stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str(l)
                        .unwrap_or_else(|e| panic!("not JSON: {l:?} ({e})\n{stdout}"))
                })
                .collect(),
        )
    })
}

#[test]
fn sessions_list_and_clean() {
    let env = TestEnv::new();
    let list = env.run(["sessions", "list"]);
    list.assert_success();

    let input = make_plain(&env.path("clip.mp4"), Clip::secs(3.0));
    let started = interrupted_session(&env, &input);
    let id = started.session_id.as_str();

    let list = env.run(["sessions", "list"]);
    list.assert_success();
    assert!(list.stdout.contains(id), "{}", list.describe());
    assert!(
        list.stdout.contains("clip.mp4"),
        "input not shown\n{}",
        list.describe()
    );

    let list = env.run(["sessions", "list", "--json"]);
    list.assert_success();
    let v = parse_json_output(&list.stdout);
    let mut strings = Vec::new();
    json_strings(&v, &mut strings);
    assert!(strings.iter().any(|s| s == id), "{}", list.describe());
    assert!(
        json_max_size(&v) > 0,
        "no disk usage in\n{}",
        list.describe()
    );

    // Recent: kept by an age limit.
    env.run(["sessions", "clean", "--older-than", "1"])
        .assert_success();
    assert_eq!(env.session_ids(), vec![id.to_string()]);

    env.run(["sessions", "clean", "--older-than", "0"])
        .assert_success();
    assert!(env.session_ids().is_empty(), "{:?}", env.session_ids());
    let list = env.run(["sessions", "list"]);
    list.assert_success();
    assert!(!list.stdout.contains(id));

    // The input was never touched by any of it.
    assert!(input.is_file());
}

/// `sessions clean` never removes a session another process is working on.
#[test]
fn sessions_clean_spares_a_session_in_use() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(3.0));
    let out = env.path("clip.out.mp4");
    let mut run = env.spawn_json(run_args(&input, &out, 0.5, &[]));
    let started = as_started(&run.wait_for("job-started", WAIT, is_started)).expect("started");
    run.signal(libc::SIGSTOP);
    let clean = env.run(["sessions", "clean", "--older-than", "0"]);
    let still_there = env.sessions_dir().join(&started.session_id).is_dir();
    let list = env.run(["sessions", "list"]);
    run.signal(libc::SIGCONT);
    clean.assert_success();
    assert!(
        still_there,
        "clean removed a session in use\n{}",
        clean.describe()
    );
    list.assert_success();
    assert!(
        list.stdout.contains(&started.session_id),
        "{}",
        list.describe()
    );
    let done = run.finish(WAIT);
    done.assert_success();
    assert_eq!(count_video_frames(&out), 72);
}

/// A corrupt progress.json shows up in `sessions list` as such instead of breaking it.
#[test]
fn sessions_list_survives_a_corrupt_session() {
    let env = TestEnv::new();
    let bad = env.sessions_dir().join("abcdefabcdef");
    fs::create_dir_all(&bad).expect("mkdir");
    fs::write(bad.join("progress.json"), b"{\"schema_version\": 1, \"sess").expect("write");
    let list = env.run(["sessions", "list"]);
    list.assert_success();
    assert!(list.stdout.contains("abcdefabcdef"), "{}", list.describe());
    env.run(["sessions", "clean", "--older-than", "0"])
        .assert_success();
    assert!(env.session_ids().is_empty());
}

const BUILTIN_PRESETS: [&str; 11] = [
    "h264_hq",
    "h265_hq",
    "720p_h264",
    "1080p_h264",
    "1080p_h265",
    "2160p_h265",
    "av1_crf30",
    "lossless_ffv1",
    "hls_720p",
    "hls_abr",
    "dash_1080p",
];

#[test]
fn presets_list_and_show() {
    let env = TestEnv::new();
    fs::write(
        env.user_presets_dir().join("mine.json"),
        FFV1_8BIT_PRESET.replace("test_ffv1_8bit", "mine"),
    )
    .expect("user preset");
    let list = env.run(["presets", "list"]);
    list.assert_success();
    for p in BUILTIN_PRESETS.iter().chain(["mine"].iter()) {
        assert!(
            list.stdout
                .lines()
                .any(|l| l.split_whitespace().any(|w| w == *p)),
            "{p} not listed\n{}",
            list.describe()
        );
    }

    let show = env.run(["presets", "show", "h264_hq"]);
    show.assert_success();
    assert!(show.stdout.contains("h264_hq"), "{}", show.describe());
    assert!(show.stdout.contains("crf") || show.stdout.contains("CRF"));

    let show = env.run(["presets", "show", "mine"]);
    show.assert_success();
    assert!(show.stdout.contains("ffv1"), "{}", show.describe());

    let show = env.run(["presets", "show", "no_such_preset"]);
    show.assert_failure()
        .assert_mentions_all(&["no_such_preset"]);
}

#[test]
fn engines_lists_lanczos() {
    let env = TestEnv::new();
    let run = env.run(["engines"]);
    run.assert_success();
    assert!(run.stdout.contains("lanczos"), "{}", run.describe());
}

/// Before a run, sessions untouched for longer than REFRAME_SESSION_MAX_AGE_HOURS are removed,
/// but never one that another process is working on.
#[test]
fn abandoned_sessions_are_removed_before_a_run_but_not_busy_ones() {
    let env = TestEnv::new();
    let old_input = make_plain(&env.path("old.mp4"), Clip::secs(3.0));
    let busy_input = make_plain(&env.path("busy.mp4"), Clip::secs(3.0));
    let new_input = make_plain(&env.path("new.mp4"), Clip::secs(1.0));
    let old = interrupted_session(&env, &old_input);

    let busy_out = env.path("busy.out.mp4");
    let mut busy = env.spawn_json(run_args(&busy_input, &busy_out, 0.5, &[]));
    let busy_started = as_started(&busy.wait_for("job-started", WAIT, is_started)).expect("busy");
    busy.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(1500));
    let run = env.run_with(
        run_args(&new_input, &env.path("new.out.mp4"), 0.5, &[]),
        |c| {
            // 0.36 s: both other sessions are older than that.
            c.env("REFRAME_SESSION_MAX_AGE_HOURS", "0.0001");
        },
    );
    let busy_kept = env.sessions_dir().join(&busy_started.session_id).is_dir();
    busy.signal(libc::SIGCONT);
    run.assert_success();
    assert!(
        !env.sessions_dir().join(&old.session_id).exists(),
        "the abandoned session was kept\n{}",
        run.describe()
    );
    assert!(run.stderr.contains("abandoned"), "{}", run.describe());
    assert!(
        busy_kept,
        "a session in use was removed\n{}",
        run.describe()
    );
    busy.finish(WAIT).assert_success();
    assert_eq!(count_video_frames(&busy_out), 72);
}

/// What a person reads in a terminal: a warning once (not once more as a log line), a failed
/// input named once, `-o` with a new name without an extension taken as a folder, and a
/// mistyped command answered with the commands instead of the window.
#[test]
fn the_terminal_says_each_thing_once() {
    let env = TestEnv::new();
    let silent = make_silent(&env.path("silent.mp4"), Clip::secs(1.0));
    let bad = make_text_file(&env.path("bad.mp4"));
    let out = env.path("out");
    let run = env.run([
        "run".as_ref(),
        silent.as_os_str(),
        bad.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--chunk-seconds".as_ref(),
        "0.5".as_ref(),
    ]);
    run.assert_code(1);
    assert_eq!(
        run.stderr.matches("no audio track").count(),
        1,
        "{}",
        run.describe()
    );
    assert!(out.join("silent.2x.mp4").is_file(), "{}", run.describe());
    let failed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.contains("failed:"))
        .collect();
    assert_eq!(failed.len(), 1, "{}", run.describe());
    let bad_path = bad.display().to_string();
    assert_eq!(failed[0].matches(&bad_path).count(), 1, "{}", failed[0]);
    assert_eq!(
        run.stderr.matches(&bad_path).count(),
        1,
        "{}",
        run.describe()
    );

    // One input and `-o` naming a folder that does not exist yet.
    let single = env.path("single");
    env.run([
        "run".as_ref(),
        silent.as_os_str(),
        "-o".as_ref(),
        single.as_os_str(),
    ])
    .assert_success();
    assert!(single.join("silent.2x.mp4").is_file());

    let typo = env.run(["enignes"]);
    typo.assert_code(2).assert_mentions_all(&[
        "enignes",
        "reframe engines",
        "run, presets, sessions, engines",
    ]);
    assert!(
        !typo.text_lower().contains("graphical"),
        "{}",
        typo.describe()
    );
}
