//! Batch benchmark (`cargo bench --bench batch`): a folder of short clips through `reframe
//! run FOLDER` against a loop of plain ffmpeg doing the same scale and encode one file after
//! another, in the same run, so the machine's speed cancels.
//!
//! * batch: wall time of both, their ratio, and the cost per job beyond ffmpeg's
//!   ((reframe − ffmpeg loop) / clips);
//! * one job alone: a 2 s clip through `reframe run` against ffmpeg, the fixed cost a job
//!   pays when nothing overlaps it (probe, frame listing, package, verify, process starts).
//!
//! Clips are 640x360 testsrc2 with noise, H.264 + AAC, 2 to 5 s long (cycling), scaled 2×
//! with Lanczos and encoded with x264 veryfast CRF 20. `REFRAME_BENCH_CLIPS` sets how many
//! (default 100), `REFRAME_BENCH_RUNS` the repetitions (default 1; the median is reported).

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::{BASELINE_ENCODER, PRESET, check, cores, env_or, median, time};

const SINGLE_RUNS: usize = 5;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("batch benchmark: run it with `cargo bench --bench batch`");
        return;
    }
    let clips: u32 = env_or("REFRAME_BENCH_CLIPS", 100).max(1);
    let runs: usize = env_or("REFRAME_BENCH_RUNS", 1).max(1);
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    let preset = dir.join("bench.json");
    std::fs::write(&preset, PRESET).expect("write preset");
    let folder = dir.join("clips");
    std::fs::create_dir_all(&folder).expect("clips folder");
    let mut inputs = Vec::new();
    let mut seconds_total = 0;
    for n in 0..clips {
        let seconds = 2 + n % 4;
        seconds_total += seconds;
        inputs.push(generate(&folder, &format!("clip{n:03}.mp4"), seconds));
    }
    println!(
        "reframe batch benchmark: {clips} clips of 2–5 s ({seconds_total} s in all), 640x360 → 1280x720, median of {runs} run(s), {} cores",
        cores()
    );

    let mut loop_s = Vec::new();
    let mut batch_s = Vec::new();
    for run in 0..runs {
        let out = dir.join(format!("ffmpeg{run}"));
        std::fs::create_dir_all(&out).expect("ffmpeg output folder");
        loop_s.push(time(|| {
            for input in &inputs {
                baseline(input, &out.join(input.file_name().expect("clip name")));
            }
        }));
        let out = dir.join(format!("reframe{run}"));
        batch_s.push(time(|| reframe(dir, &folder, &preset, &out)));
        let made = std::fs::read_dir(&out).map_or(0, |d| d.count());
        assert_eq!(made, inputs.len(), "reframe made {made} outputs");
    }
    let (ffmpeg, batch) = (median(&mut loop_s), median(&mut batch_s));
    println!("\nbatch of {clips} clips");
    println!("  ffmpeg, one file after another  {ffmpeg:7.2} s");
    println!(
        "  reframe run FOLDER              {batch:7.2} s  ratio {:.3}",
        batch / ffmpeg
    );
    println!(
        "  cost per job beyond ffmpeg      {:7.3} s",
        (batch - ffmpeg) / f64::from(clips)
    );

    let single = generate(dir, "single.mp4", 2);
    let mut ffmpeg_s = Vec::new();
    let mut reframe_s = Vec::new();
    for run in 0..SINGLE_RUNS {
        ffmpeg_s.push(time(|| {
            baseline(&single, &dir.join(format!("single{run}.mp4")))
        }));
        let out = dir.join(format!("single-reframe{run}.mp4"));
        reframe_s.push(time(|| reframe(dir, &single, &preset, &out)));
    }
    let (ffmpeg, alone) = (median(&mut ffmpeg_s), median(&mut reframe_s));
    println!("\none 2 s clip alone (median of {SINGLE_RUNS})");
    println!("  ffmpeg alone                    {ffmpeg:7.2} s");
    println!(
        "  reframe run                     {alone:7.2} s  fixed cost {:.3} s",
        alone - ffmpeg
    );
}

fn baseline(input: &Path, out: &Path) {
    check(
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(input)
            .args(["-vf", "scale=1280:720:flags=lanczos"])
            .args(BASELINE_ENCODER)
            .args(["-c:a", "copy"])
            .arg(out),
    );
}

/// `reframe run INPUT -o OUT` (a folder or a file), with its own session folder.
fn reframe(dir: &Path, input: &Path, preset: &Path, out: &Path) {
    check(
        Command::new(env!("CARGO_BIN_EXE_reframe"))
            .env("REFRAME_CACHE_DIR", dir.join("cache"))
            .args(["run", "--scale", "2", "--preset"])
            .arg(preset)
            .arg("-o")
            .arg(out)
            .arg(input),
    );
}

fn generate(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    support::generate(&dir.join(name), (640, 360), "24", seconds, None)
}
