//! Cluster benchmarks (`cargo bench --bench cluster`), on a running cluster:
//! `export SLURM_CONF=$(scripts/slurm-cluster.sh start)` first (one node: this machine).
//!
//! * overhead: the same Lanczos 2× job (360p, x264's default GOP) through `--cluster slurm`
//!   against a local run, in the same run (median of `REFRAME_BENCH_RUNS`, default 3; clip
//!   length `REFRAME_BENCH_SECONDS`, default 60);
//! * what a neural job is made of, measured on this node: animevideov3 2× seconds per frame
//!   from the chunk tasks' own markers (`REFRAME_BENCH_NEURAL_SECONDS` of 360p, default 4,
//!   2-second chunks, a whole node per task), the scheduler's delays from `squeue` (task
//!   start after the node fell free, package start after the last task), and on a 360p episode
//!   (`REFRAME_BENCH_EPISODE_SECONDS`, default 1440): validate + plan + submit of the neural
//!   job (submitted held, then cancelled), its real chunk plan, and package and verify (timed
//!   in a local Lanczos run of the same episode at the same output size);
//! * the model (`reframe::cluster::model`) fed with those figures: the episode's wall time
//!   and speed-up on 1–64 nodes of this machine's kind, with the serial parts shown.
//!
//! Models: `target/models` (scripts/fetch-models.sh), or `REFRAME_TEST_MODELS_DIR`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reframe::cluster::model::JobTimes;

/// x264 veryfast for every run here: the default preset's `slow` would make the episode's
/// Lanczos run take a quarter of an hour; package and verify only remux and read the output.
mod support;
use support::{PRESET, check, env_or, median, time};

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("cluster benchmark: run it with `cargo bench --bench cluster`");
        return;
    }
    if !Command::new("sinfo")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!(
            "no Slurm cluster answers: start one with\n  \
             export SLURM_CONF=$(scripts/slurm-cluster.sh start)"
        );
        std::process::exit(1);
    }
    let seconds: u32 = env_or("REFRAME_BENCH_SECONDS", 60);
    let runs: usize = env_or("REFRAME_BENCH_RUNS", 3);
    let neural_seconds: u32 = env_or("REFRAME_BENCH_NEURAL_SECONDS", 4);
    let episode_seconds: u32 = env_or("REFRAME_BENCH_EPISODE_SECONDS", 1440);
    let models = std::env::var_os("REFRAME_TEST_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/models"));
    assert!(
        models.join("realesr-animevideov3-x4.param").is_file(),
        "run scripts/fetch-models.sh first (models in {})",
        models.display()
    );
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    std::fs::write(dir.join("bench.json"), PRESET).expect("write preset");
    println!(
        "reframe cluster benchmark: one-node Slurm cluster, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    overhead(dir, seconds, runs);
    let neural = neural_chunks(dir, &models, neural_seconds);
    let episode = episode(dir, &models, episode_seconds);

    let chunks: Vec<f64> = episode
        .chunk_frames
        .iter()
        .map(|&f| f as f64 * neural.seconds_per_frame)
        .collect();
    let times = JobTimes {
        submit: episode.submit,
        dispatch: neural.dispatch,
        chunks,
        dependency: neural.dependency,
        package: episode.package,
        verify: episode.verify,
    };
    let frames: usize = episode.chunk_frames.iter().sum();
    println!(
        "\nmodel: {episode_seconds} s episode, 640x360 → 1280x720 animevideov3, {frames} frames in \
         {} chunks of {}–{} frames, {:.1} node-hours of chunk work",
        episode.chunk_frames.len(),
        episode.chunk_frames.iter().min().unwrap_or(&0),
        episode.chunk_frames.iter().max().unwrap_or(&0),
        times.chunk_work() / 3600.0
    );
    println!(
        "  serial: validate+plan+submit {:.1} s, dependency {:.1} s, package {:.1} s, verify {:.1} s",
        times.submit, times.dependency, times.package, times.verify
    );
    println!("  nodes      wall   chunks  serial  speed-up  efficiency");
    let one = times.makespan(1).total();
    for nodes in [1, 2, 4, 8, 16, 32, 64] {
        let m = times.makespan(nodes);
        let speedup = one / m.total();
        println!(
            "  {nodes:5}  {:>8}  {:>7}  {:5.0} s  {speedup:7.1}×  {:9.0} %",
            clock(m.total()),
            clock(m.chunks),
            m.serial(),
            100.0 * speedup / nodes as f64
        );
    }
}

/// The Lanczos job locally and through the cluster, side by side.
fn overhead(dir: &Path, seconds: u32, runs: usize) {
    let input = generate(dir, "clip360.mp4", seconds, None);
    let mut local = Vec::new();
    let mut cluster = Vec::new();
    let mut ffmpeg = Vec::new();
    for run in 0..runs {
        ffmpeg.push(time(|| {
            check(
                Command::new("ffmpeg")
                    .args(["-v", "error", "-y", "-i"])
                    .arg(&input)
                    .args(["-vf", "scale=1280:720:flags=lanczos"])
                    .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"])
                    .args(["-pix_fmt", "yuv420p", "-c:a", "copy"])
                    .arg(dir.join(format!("ffmpeg{run}.mp4"))),
            )
        }));
        local.push(time(|| {
            check(
                reframe(dir)
                    .args(["--scale", "2", "-o"])
                    .arg(dir.join(format!("local{run}.mp4")))
                    .arg(&input),
            )
        }));
        cluster.push(time(|| {
            check(
                reframe(dir)
                    .args(["--scale", "2", "--cluster", "slurm", "--work-dir"])
                    .arg(dir.join("work"))
                    .arg("-o")
                    .arg(dir.join(format!("cluster{run}.mp4")))
                    .arg(&input),
            )
        }));
    }
    let (ffmpeg, local, cluster) = (
        median(&mut ffmpeg),
        median(&mut local),
        median(&mut cluster),
    );
    println!(
        "\noverhead: {seconds} s 640x360 → 1280x720 Lanczos, x264 veryfast crf 20, median of {runs}"
    );
    println!("  ffmpeg alone                    {ffmpeg:7.2} s");
    println!("  reframe run, local              {local:7.2} s");
    println!(
        "  reframe run --cluster slurm     {cluster:7.2} s  ratio to local {:.3} (+{:.1} s)",
        cluster / local,
        cluster - local
    );
}

struct NeuralChunks {
    seconds_per_frame: f64,
    dispatch: f64,
    dependency: f64,
}

/// A short neural job through the cluster: the tasks' markers give seconds per frame,
/// `squeue` the scheduler's delays.
fn neural_chunks(dir: &Path, models: &Path, seconds: u32) -> NeuralChunks {
    let input = generate(dir, "neural360.mp4", seconds, Some(48));
    let work = dir.join("work-neural");
    let events = run_json(
        reframe(dir)
            .args(["--engine", "animevideov3", "--scale", "2", "--models-dir"])
            .arg(models)
            .args([
                "--chunk-seconds",
                "2",
                "--cluster",
                "slurm",
                "--detach",
                "--json",
            ])
            .arg("--work-dir")
            .arg(&work)
            .arg("-o")
            .arg(dir.join("neural.mp4"))
            .arg(&input),
    );
    let submitted = events
        .iter()
        .find(|(_, e)| e["type"] == "cluster-submitted")
        .map(|(_, e)| e.clone())
        .expect("a cluster-submitted event");
    let id = submitted["session_id"].as_str().expect("session id");
    let package = submitted["package"]
        .as_str()
        .expect("package job")
        .to_owned();
    let arrays: Vec<String> = submitted["arrays"]
        .as_array()
        .expect("arrays")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    // Wait for the package task to end.
    let jobs = loop {
        let jobs = queue_times(id);
        match jobs.get(&package) {
            Some(j) if j.state != "PENDING" && j.state != "RUNNING" => break jobs,
            _ => std::thread::sleep(Duration::from_secs(2)),
        }
    };
    assert_eq!(jobs[&package].state, "COMPLETED", "{jobs:?}");
    let markers: Vec<serde_json::Value> = std::fs::read_dir(work.join(id).join("cluster/done"))
        .expect("markers")
        .flatten()
        .map(|e| {
            serde_json::from_slice(&std::fs::read(e.path()).expect("marker")).expect("marker json")
        })
        .collect();
    let node_seconds: f64 = markers.iter().filter_map(|m| m["seconds"].as_f64()).sum();
    let frames: f64 = markers.iter().filter_map(|m| m["frames"].as_f64()).sum();
    let mut tasks: Vec<&QueueTimes> = jobs
        .iter()
        .filter(|(k, _)| arrays.iter().any(|a| k.starts_with(&format!("{a}_"))))
        .map(|(_, v)| v)
        .collect();
    tasks.sort_by_key(|t| t.start);
    // One task at a time on the node: the next one starts after the previous one's end.
    let gaps: Vec<f64> = tasks
        .windows(2)
        .map(|w| (w[1].start - w[0].end) as f64)
        .collect();
    let dispatch = if gaps.is_empty() {
        0.0
    } else {
        gaps.iter().sum::<f64>() / gaps.len() as f64
    };
    let last_end = tasks.iter().map(|t| t.end).max().unwrap_or(0);
    let dependency = (jobs[&package].start - last_end) as f64;
    let seconds_per_frame = node_seconds / frames;
    println!(
        "\nneural chunks: {seconds} s 640x360 → 1280x720 animevideov3, {} tasks, {frames} frames",
        markers.len()
    );
    println!(
        "  {seconds_per_frame:.3} s per frame ({:.2} fps) on one node, task start-up included",
        1.0 / seconds_per_frame
    );
    println!(
        "  task start after the node fell free {dispatch:.1} s, package start after the last task \
         {dependency:.1} s (squeue, 1 s resolution)"
    );
    NeuralChunks {
        seconds_per_frame,
        dispatch,
        dependency,
    }
}

struct Episode {
    submit: f64,
    chunk_frames: Vec<usize>,
    package: f64,
    verify: f64,
}

/// The episode's serial parts: submit of the neural job (held, then cancelled), its plan, and
/// package and verify from a local Lanczos run at the same output size.
fn episode(dir: &Path, models: &Path, seconds: u32) -> Episode {
    let input = generate(dir, "episode360.mp4", seconds, None);
    let work = dir.join("work-episode");
    let started = Instant::now();
    let events = run_json(
        reframe(dir)
            .args(["--engine", "animevideov3", "--scale", "2", "--models-dir"])
            .arg(models)
            .args([
                "--cluster",
                "slurm",
                "--detach",
                "--json",
                "--sbatch-arg=--hold",
            ])
            .arg("--work-dir")
            .arg(&work)
            .arg("-o")
            .arg(dir.join("episode-neural.mp4"))
            .arg(&input),
    );
    let submit = started.elapsed().as_secs_f64();
    let id = events
        .iter()
        .find_map(|(_, e)| (e["type"] == "cluster-submitted").then(|| e["session_id"].clone()))
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("a cluster-submitted event");
    check(Command::new("scancel").arg(format!("--name=reframe-{id}")));
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join(&id).join("plan.json")).expect("plan"))
            .expect("plan json");
    let chunk_frames: Vec<usize> = plan["chunks"]
        .as_array()
        .expect("chunks")
        .iter()
        .filter_map(|c| c["frame_count"].as_u64().map(|n| n as usize))
        .collect();

    let events = run_json(
        reframe(dir)
            .args(["--scale", "2", "--json", "-o"])
            .arg(dir.join("episode-lanczos.mp4"))
            .arg(&input),
    );
    let at = |step: &str| {
        events
            .iter()
            .find(|(_, e)| {
                e["type"] == "step-changed" && e["step"] == step && e["status"] == "in-progress"
            })
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("no {step} step in the events"))
    };
    let end = events.last().map(|(t, _)| *t).expect("events");
    let (upscale, package, verify) = (at("upscale"), at("package"), at("verify"));
    println!(
        "\nepisode: {seconds} s 640x360, {} frames in {} chunks",
        chunk_frames.iter().sum::<usize>(),
        chunk_frames.len()
    );
    println!("  neural job: validate + plan + submit {submit:.1} s (submitted held, cancelled)");
    println!(
        "  local Lanczos run: validate {upscale:.1} s, upscale {:.1} s, package {:.1} s, verify {:.1} s",
        package - upscale,
        verify - package,
        end - verify
    );
    Episode {
        submit,
        chunk_frames,
        package: verify - package,
        verify: end - verify,
    }
}

#[derive(Debug)]
struct QueueTimes {
    state: String,
    start: i64,
    end: i64,
}

/// This session's jobs in `squeue` (finished ones included), by job id (`A_T` for tasks).
fn queue_times(session_id: &str) -> BTreeMap<String, QueueTimes> {
    let out = Command::new("squeue")
        .args([
            "--noheader",
            "--array",
            "--states=all",
            "--format=%i|%T|%S|%e",
        ])
        .arg(format!("--name=reframe-{session_id}"))
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.trim().split('|').collect();
            let [id, state, start, end] = f[..] else {
                return None;
            };
            Some((
                id.to_owned(),
                QueueTimes {
                    state: state.to_owned(),
                    start: slurm_time(start).unwrap_or(0),
                    end: slurm_time(end).unwrap_or(0),
                },
            ))
        })
        .collect()
}

/// Seconds since 1970 of a Slurm time `YYYY-MM-DDTHH:MM:SS` (the cluster's local time; only
/// differences are used).
fn slurm_time(text: &str) -> Option<i64> {
    let (date, clock) = text.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let c: Vec<i64> = clock
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let (&[y, m, day], &[hh, mm, ss]) = (&d[..], &c[..]) else {
        return None;
    };
    // Days from the civil date (proleptic Gregorian).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Runs `cmd` with `--json` output; each event with the seconds since the start it was read.
fn run_json(cmd: &mut Command) -> Vec<(f64, serde_json::Value)> {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn reframe");
    let stdout = child.stdout.take().expect("stdout");
    let events: Vec<(f64, serde_json::Value)> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str(&line).ok())
        .map(|e| (started.elapsed().as_secs_f64(), e))
        .collect();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{cmd:?} failed: {events:?}");
    events
}

/// `reframe run` with the benchmark's preset and its own session folder.
fn reframe(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reframe"));
    cmd.env("REFRAME_CACHE_DIR", dir.join("cache"))
        .arg("run")
        .arg("--preset")
        .arg(dir.join("bench.json"));
    cmd
}

/// `h:mm:ss`.
fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn generate(dir: &Path, name: &str, seconds: u32, gop: Option<u32>) -> PathBuf {
    support::generate(&dir.join(name), (640, 360), "24000/1001", seconds, gop)
}
