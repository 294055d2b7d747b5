//! Pipeline benchmarks (`cargo bench --bench pipeline`): each figure is a ratio against plain
//! ffmpeg doing the same scaling and encode in the same run, so the machine's speed cancels.
//!
//! * overhead: `reframe run` (Lanczos 2×, chunked, resumable) vs one `ffmpeg -vf scale`;
//! * pipe path: the same through the test-only identity frame engine (decode → pipe →
//!   engine → pipe → encode), which bounds what any frame engine can reach;
//! * memory: peak RSS of reframe and all its children at 1080p → 2160p;
//! * disk: the session folder's high-water mark against the final output size.
//!
//! Inputs are generated with ffmpeg's lavfi sources (with noise, so the encoder has real work).
//! `REFRAME_BENCH_SECONDS` sets the clip length (default 20), `REFRAME_BENCH_RUNS` the
//! repetitions (default 3; the median is reported), `REFRAME_BENCH_HEIGHT` the source height
//! of the overhead runs (default 720, 16:9), `REFRAME_BENCH_GOP` the source's keyframe
//! interval in frames (default 48; x264's own default is 250), `REFRAME_BENCH_MEMORY=0`
//! skips the 1080p memory and disk run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;
use support::{BASELINE_ENCODER, PRESET, check, cores, env_or, median, time};

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("pipeline benchmark: run it with `cargo bench --bench pipeline`");
        return;
    }
    let seconds: u32 = env_or("REFRAME_BENCH_SECONDS", 20);
    let runs: usize = env_or("REFRAME_BENCH_RUNS", 3);
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    let preset = dir.join("bench.json");
    std::fs::write(&preset, PRESET).expect("write preset");

    println!(
        "reframe pipeline benchmark: {seconds} s clips, median of {runs} runs, {} cores",
        cores()
    );
    let height: u32 = env_or("REFRAME_BENCH_HEIGHT", 720) / 2 * 2;
    let width = (height * 16 / 9) / 2 * 2;
    let input720 = generate(dir, "in.mp4", width, height, seconds);

    let mut reframe_s = Vec::new();
    let mut identity_s = Vec::new();
    let mut ffmpeg_s = Vec::new();
    for run in 0..runs {
        ffmpeg_s.push(time(|| {
            baseline(
                &input720,
                &dir.join(format!("base{run}.mp4")),
                width * 2,
                height * 2,
            )
        }));
        reframe_s.push(time(|| {
            reframe(
                dir,
                &input720,
                &preset,
                &dir.join(format!("lanczos{run}.mp4")),
                "lanczos",
            );
        }));
        identity_s.push(time(|| {
            reframe(
                dir,
                &input720,
                &preset,
                &dir.join(format!("identity{run}.mp4")),
                "identity",
            );
        }));
    }
    let (base, lanczos, identity) = (
        median(&mut ffmpeg_s),
        median(&mut reframe_s),
        median(&mut identity_s),
    );
    let frames = f64::from(seconds * 24);
    println!(
        "\n{height}p → {}p, x264 veryfast crf 20, {frames} frames",
        height * 2
    );
    println!(
        "  ffmpeg alone                  {base:7.2} s  {:6.1} fps",
        frames / base
    );
    println!(
        "  reframe run, lanczos          {lanczos:7.2} s  {:6.1} fps  ratio {:.3}",
        frames / lanczos,
        lanczos / base
    );
    println!(
        "  reframe run, identity (pipe)  {identity:7.2} s  {:6.1} fps  ratio {:.3}",
        frames / identity,
        identity / base
    );

    if env_or("REFRAME_BENCH_MEMORY", 1) == 0 {
        return;
    }
    let input1080 = generate(dir, "in1080.mp4", 1920, 1080, seconds.min(10));
    let out4k = dir.join("out4k.mp4");
    let cache = dir.join("cache-4k");
    let (peak_own, peak_rss, peak_session) = watch(
        Command::new(env!("CARGO_BIN_EXE_reframe"))
            .env("REFRAME_CACHE_DIR", &cache)
            .args(["run", "--scale", "2", "--preset"])
            .arg(&preset)
            .arg("-o")
            .arg(&out4k)
            .arg(&input1080),
        &cache,
    );
    let out_bytes = std::fs::metadata(&out4k).map(|m| m.len()).unwrap_or(0);
    println!("\n1080p → 2160p, x264 veryfast crf 20, 5 s chunks");
    println!(
        "  peak RSS, reframe + children  {:7.1} MB",
        peak_rss as f64 / 1e6
    );
    println!(
        "  peak RSS, reframe process     {:7.1} MB",
        peak_own as f64 / 1e6
    );
    println!(
        "  session high-water            {:7.1} MB  (output {:.1} MB, ratio {:.2})",
        peak_session as f64 / 1e6,
        out_bytes as f64 / 1e6,
        peak_session as f64 / out_bytes.max(1) as f64
    );
}

fn baseline(input: &Path, out: &Path, w: u32, h: u32) {
    check(
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(input)
            .args(["-vf", &format!("scale={w}:{h}:flags=lanczos")])
            .args(BASELINE_ENCODER)
            .args(["-c:a", "copy"])
            .arg(out),
    );
}

fn reframe(dir: &Path, input: &Path, preset: &Path, out: &Path, engine: &str) {
    check(
        Command::new(env!("CARGO_BIN_EXE_reframe"))
            .env("REFRAME_CACHE_DIR", dir.join("cache"))
            .env("REFRAME_TEST_ENGINES", "1")
            .args(["run", "--scale", "2", "--engine", engine, "--preset"])
            .arg(preset)
            .arg("-o")
            .arg(out)
            .arg(input),
    );
}

/// Run `cmd`, sampling every 50 ms its RSS, the summed RSS of it and its descendants, and the
/// size of `session_root`; returns the three peaks in bytes.
fn watch(cmd: &mut Command, session_root: &Path) -> (u64, u64, u64) {
    let mut child = cmd.stdout(Stdio::null()).spawn().expect("spawn");
    let (mut peak_own, mut peak_rss, mut peak_disk) = (0u64, 0u64, 0u64);
    loop {
        peak_own = peak_own.max(rss_bytes(child.id()));
        peak_rss = peak_rss.max(tree_rss(child.id()));
        peak_disk = peak_disk.max(dir_size(session_root));
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "reframe failed");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (peak_own, peak_rss, peak_disk)
}

fn tree_rss(root: u32) -> u64 {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the command name (which may contain spaces) start after ") ".
            let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
                continue;
            };
            let ppid: u32 = rest
                .split(' ')
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree.iter().map(|pid| rss_bytes(*pid)).sum()
}

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// The benchmark's clip: `REFRAME_BENCH_GOP` frames between keyframes (default 48).
fn generate(dir: &Path, name: &str, w: u32, h: u32, seconds: u32) -> PathBuf {
    let gop = env_or("REFRAME_BENCH_GOP", 48u32);
    support::generate(&dir.join(name), (w, h), "24", seconds, Some(gop))
}
