//! `reframe run --cluster slurm` on a real one-node Slurm cluster (`scripts/slurm-cluster.sh
//! start`, run by `scripts/test.sh`, which sets `REFRAME_REQUIRE_SLURM=1` so that these tests
//! fail rather than skip when the cluster is not there): the output of a cluster run is the
//! local run's, frame for frame; a cancelled chunk task is the only chunk submitted again; a
//! recording damaged in the middle is salvaged on the nodes as locally; a chunk that fails on
//! its node is reported with its reason and its task's log; no Slurm commands is a clear
//! error.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use reframe::protocol::Event;

/// 3 s at 24 fps in 0.5 s chunks: 6 chunks.
const CLIP_SECS: f64 = 3.0;
const CHUNK_SECS: f64 = 0.5;
const CHUNKS: usize = 6;

/// Is the test cluster up, with a node that takes jobs? Without it the tests are skipped,
/// unless the suite asked for it.
fn slurm_ready() -> bool {
    let node_up = || {
        Command::new("sinfo")
            .args(["--noheader", "--format=%t"])
            .output()
            .is_ok_and(|o| {
                o.status.success()
                    && String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .any(|state| matches!(state, "idle" | "mix" | "alloc" | "comp"))
            })
    };
    let start = Instant::now();
    let mut up = node_up();
    while !up
        && std::env::var_os("REFRAME_REQUIRE_SLURM").is_some()
        && start.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(500));
        up = node_up();
    }
    if !up {
        assert!(
            std::env::var_os("REFRAME_REQUIRE_SLURM").is_none(),
            "REFRAME_REQUIRE_SLURM is set but no Slurm node takes jobs (scripts/slurm-cluster.sh start, then export SLURM_CONF)"
        );
        eprintln!("no Slurm cluster here: skipped (scripts/slurm-cluster.sh start)");
    }
    up
}

fn cluster_args(input: &Path, out: &Path, work: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args = run_args(input, out, CHUNK_SECS, &["--preset", "h264_hq"]);
    args.extend(
        ["--cluster", "slurm", "--work-dir"]
            .iter()
            .map(OsString::from),
    );
    args.push(work.as_os_str().to_owned());
    args.extend(extra.iter().map(OsString::from));
    args
}

fn submitted(events: &[Event]) -> Vec<(String, Vec<usize>, Vec<String>, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ClusterSubmitted {
                session_id,
                chunks,
                arrays,
                package,
                ..
            } => Some((
                session_id.clone(),
                chunks.clone(),
                arrays.clone(),
                package.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn chunks_done(events: &[Event]) -> Vec<usize> {
    let mut done: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::ChunkDone { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    done.sort_unstable();
    done
}

fn local_reference(env: &TestEnv, input: &Path) -> Vec<String> {
    let out = env.subdir("local").join("clip.out.mp4");
    env.run(run_args(input, &out, CHUNK_SECS, &["--preset", "h264_hq"]))
        .assert_success();
    framemd5(&out)
}

/// Slurm jobs named after the session that are still queued or running.
fn live_jobs(session_id: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args([
            "--noheader",
            "--array",
            "--states=all",
            &format!("--name=reframe-{session_id}"),
            "--format=%i|%T",
        ])
        .output()
        .expect("squeue runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let state = l.split('|').nth(1).unwrap_or("");
            matches!(
                state,
                "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED"
            )
        })
        .map(str::to_owned)
        .collect()
}

fn wait_until_idle(session_id: &str, timeout: Duration) {
    let start = Instant::now();
    while !live_jobs(session_id).is_empty() {
        assert!(
            start.elapsed() < timeout,
            "the cluster jobs did not end: {:?}",
            live_jobs(session_id)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn slurm(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// Submits a run with every task held (`--detach`); its session, chunks, arrays and package job.
fn submit_held(
    env: &TestEnv,
    input: &Path,
    out: &Path,
    work: &Path,
) -> (String, Vec<usize>, Vec<String>, String) {
    let run = env
        .spawn_json(cluster_args(
            input,
            out,
            work,
            &["--detach", "--sbatch-arg=--hold"],
        ))
        .finish(RUN_TIMEOUT);
    run.assert_success();
    submitted(&run.events)
        .first()
        .expect("a submission")
        .clone()
}

/// Releases held chunk arrays and the package job (it may be gone already), and waits until
/// the session's jobs have left the queue.
fn release(session_id: &str, arrays: &[String], package: &str) {
    for array in arrays {
        slurm("scontrol", &["release", array]);
    }
    let _ = Command::new("scontrol").args(["release", package]).status();
    wait_until_idle(session_id, Duration::from_secs(120));
}

fn no_parts(dir: &Path) {
    let parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("test setup")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".part"))
        .collect();
    assert!(
        parts.is_empty(),
        "leftovers in the output folder: {parts:?}"
    );
}

#[test]
fn a_clip_through_slurm_is_the_local_run_frame_for_frame() {
    if !slurm_ready() {
        return;
    }
    let env = TestEnv::new();
    let input = make_long_gop(&env.path("クリップ one.mp4"), Clip::secs(CLIP_SECS));
    let reference = local_reference(&env, &input);
    let work = env.subdir("shared work");
    let out_dir = env.subdir("out");
    let out = out_dir.join("clip.out.mp4");
    let run = env
        .spawn_json(cluster_args(&input, &out, &work, &["--max-parallel", "2"]))
        .finish(RUN_TIMEOUT);
    run.assert_success();
    let subs = submitted(&run.events);
    assert_eq!(subs.len(), 1, "one submission: {subs:?}");
    let (session_id, chunks, arrays, package) = &subs[0];
    assert_eq!(chunks, &(0..CHUNKS).collect::<Vec<_>>());
    assert_eq!(arrays.len(), 1);
    assert!(!package.is_empty());
    assert_eq!(chunks_done(&run.events), (0..CHUNKS).collect::<Vec<_>>());
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, Event::JobFinished { .. })),
        "no job-finished event"
    );
    assert_eq!(framemd5(&out), reference, "the cluster's output differs");
    assert!(
        !work.join(session_id).exists(),
        "the finished session was not removed"
    );
    no_parts(&out_dir);
}

#[test]
fn a_cancelled_chunk_task_is_the_only_chunk_submitted_again() {
    if !slurm_ready() {
        return;
    }
    let env = TestEnv::new();
    let input = make_long_gop(&env.path("clip.mp4"), Clip::secs(CLIP_SECS));
    let reference = local_reference(&env, &input);
    let work = env.subdir("work");
    let out_dir = env.subdir("out");
    let out = out_dir.join("clip.out.mp4");
    // Held, so that chunk 2's task is cancelled before anything runs.
    let (session_id, chunks, arrays, package) = submit_held(&env, &input, &out, &work);
    assert_eq!(chunks.len(), CHUNKS);
    slurm("scancel", &[&format!("{}_2", arrays[0])]);
    release(&session_id, &arrays, &package);

    // Following it again reports the cancelled chunk.
    let status = env.run([
        OsString::from("sessions"),
        "--work-dir".into(),
        work.clone().into_os_string(),
        "status".into(),
        session_id.clone().into(),
    ]);
    status.assert_code(1);
    status.assert_mentions_all(&["chunk 2", "cancelled"]);

    // The same command again: only chunk 2 is submitted, and the output is the local one.
    let second = env
        .spawn_json(cluster_args(&input, &out, &work, &[]))
        .finish(RUN_TIMEOUT);
    second.assert_success();
    let subs = submitted(&second.events);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].0, session_id, "not the same session");
    assert_eq!(subs[0].1, [2], "chunks submitted again");
    assert_eq!(chunks_done(&second.events), [2]);
    assert_eq!(framemd5(&out), reference);
    no_parts(&out_dir);
}

#[test]
fn a_damaged_recording_is_salvaged_on_the_nodes_as_locally() {
    if !slurm_ready() {
        return;
    }
    let env = TestEnv::new();
    // Its damaged middle cannot be decoded as planned: the chunk's node finds the frames that
    // decode, and the package job (another node) places them from its record.
    let input = make_damaged_ts(&env.path("damaged.ts"), Clip::secs(4.0), 48);
    let reference = local_reference(&env, &input);
    let work = env.subdir("work");
    let out = env.subdir("out").join("damaged.out.mp4");
    let run = env
        .spawn_json(cluster_args(&input, &out, &work, &[]))
        .finish(RUN_TIMEOUT);
    run.assert_success();
    assert!(
        warnings(&run.events)
            .iter()
            .any(|w| w.contains("cannot be decoded and are left out")),
        "{:?}",
        run.events
    );
    assert_eq!(framemd5(&out), reference);
}

#[test]
fn a_chunk_that_fails_on_its_node_is_reported_with_its_reason_and_log() {
    if !slurm_ready() {
        return;
    }
    let env = TestEnv::new();
    let input = make_long_gop(&env.path("clip.mp4"), Clip::secs(CLIP_SECS));
    let work = env.subdir("work");
    let out = env.subdir("out").join("clip.out.mp4");
    // Held, then the input moves away before any task runs: every chunk fails on its node.
    let (session_id, _, arrays, package) = submit_held(&env, &input, &out, &work);
    std::fs::rename(&input, env.path("moved.mp4")).expect("test setup");
    release(&session_id, &arrays, &package);

    let status = env.run([
        OsString::from("sessions"),
        "--work-dir".into(),
        work.into_os_string(),
        "status".into(),
        session_id.clone().into(),
    ]);
    status.assert_code(1);
    status.assert_mentions_all(&["chunk ", " failed on ", "last lines of ", "slurm-chunk-"]);
    assert!(!out.exists());
    assert!(
        live_jobs(&session_id).is_empty(),
        "tasks left behind: {:?}",
        live_jobs(&session_id)
    );
}

#[test]
fn without_slurm_commands_the_error_says_what_to_install() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    // ffmpeg and its kin, but no Slurm.
    let bin = env.subdir("bin");
    for tool in ["ffmpeg", "ffprobe", "mkvmerge"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .expect("test setup");
        let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        std::os::unix::fs::symlink(path, bin.join(tool)).expect("test setup");
    }
    let run = env.run_with(
        cluster_args(&input, &env.path("out.mp4"), &env.subdir("w"), &[]),
        |cmd| {
            cmd.env("PATH", &bin);
        },
    );
    run.assert_code(1);
    run.assert_mentions_all(&["sbatch", "not on path", "slurm-client"]);
    assert!(!env.path("out.mp4").exists());
}
