//! Frame preview latency (`cargo bench --bench preview`): from `PreviewClient::request` to the
//! before/after RGBA images in the client, through the real `reframe worker preview` child.
//!
//! Sources: 1080p H.264 generated with lavfi (testsrc2 + temporal noise, 24 fps), x264
//! veryfast, 2-second GOP (keyint 48, 3 B-frames), at two bitrates: capped at 8 Mbit/s (a
//! typical web/streaming 1080p encode) and CRF 23 on the noise (~56 Mbit/s, decoding-bound: a
//! stress case). Engine: Lanczos 2× (the after image is 3840×2160). Series, as a person uses
//! the timeline, each request after the previous one was shown and looked at for a moment:
//! random seeks anywhere in the clip, next frame (→), previous frame (←) and one-second jumps
//! (Shift+←/→); p50 / p95 / max. Each clip runs twice: with `REFRAME_PREVIEW_SEEKER=0` (a
//! fresh ffmpeg per seek, the way previews worked before the seeker: the baseline) and with
//! the seeker. Then "decoding alone": what ffmpeg's own decoding from the keyframe to each
//! random seek's frame costs, measured with no worker running (see [`DecodeFloor`]): the
//! floor for any preview that decodes the file.
//!
//! `REFRAME_BENCH_SECONDS` sets the clip length (default 20), `REFRAME_BENCH_SAMPLES` the
//! requests per series (default 40), `REFRAME_BENCH_CLIPS` which clips (`8M,crf`) and
//! `REFRAME_BENCH_MODES` which ways (`baseline`, `seeker-plain`: the seeker without keyframe pictures, `seeker`; default `seeker-plain,seeker`), `REFRAME_BENCH_WORKER_LOG` a file for
//! the worker's log. Clips are kept in
//! `target/bench-preview/` for later runs.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reframe::preview::{PreviewClient, PreviewReply, PreviewRequest};
use reframe::supervisor::WorkerCommand;

const FPS: u64 = 24;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("preview benchmark: run it with `cargo bench --bench preview`");
        return;
    }
    let seconds: u64 = env_or("REFRAME_BENCH_SECONDS", 20);
    let samples: usize = env_or("REFRAME_BENCH_SAMPLES", 40);
    let clips: String = env_or("REFRAME_BENCH_CLIPS", "8M,crf".to_string());
    let modes: String = env_or("REFRAME_BENCH_MODES", "seeker-plain,seeker".to_string());
    let work = tempfile::tempdir().expect("temp dir");
    let clip_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-preview");
    std::fs::create_dir_all(&clip_dir).expect("clip directory");
    println!("load average before: {}", load_average());
    for (tag, name, rate) in [
        (
            "8M",
            "8 Mbit/s",
            &["-b:v", "8M", "-maxrate", "8M", "-bufsize", "16M"][..],
        ),
        ("crf", "CRF 23, ~56 Mbit/s", &["-crf", "23"][..]),
    ] {
        if !clips.split(',').any(|c| c == tag) {
            continue;
        }
        let input = clip_dir.join(format!("in1080-{tag}-{seconds}s.mp4"));
        let started = Instant::now();
        if !input.exists() {
            generate(&input, seconds, rate);
        }
        println!(
            "\n## 1080p H.264 {name} (GOP 48, 3 B-frames), {seconds} s at {FPS} fps, Lanczos 2x \
             (clip ready in {:.1} s, {:.1} MB)",
            started.elapsed().as_secs_f64(),
            std::fs::metadata(&input).map_or(0.0, |m| m.len() as f64 / 1e6)
        );
        let mut targets = Vec::new();
        for (mode, what, seeker, keyframes) in [
            ("baseline", "fresh ffmpeg per seek (baseline)", "0", "0"),
            ("seeker-plain", "seeker, no keyframe pictures", "1", "0"),
            ("seeker", "seeker and keyframe pictures", "1", "1"),
        ] {
            if modes.split(',').any(|m| m == mode) {
                println!("### {what}");
                targets = series(&work, &input, seconds * FPS, samples, seeker, keyframes);
            }
        }
        // The same random targets (the same seed in every series), with no worker running.
        let floor = DecodeFloor::probe(&input);
        let floors: Vec<Duration> = targets
            .iter()
            .map(|&t| floor.to(&input, t, false))
            .collect();
        let skipping: Vec<Duration> = targets.iter().map(|&t| floor.to(&input, t, true)).collect();
        println!("### decoding alone, the random seeks' frames");
        report("every frame     ", &floors);
        report("refs only       ", &skipping);
    }
    println!("load average after: {}", load_average());
}

/// What decoding alone costs to reach a frame: ffmpeg seeking to the keyframe before the frame
/// and decoding from it to the frame, less the same run stopping at the keyframe (its start-up,
/// opening the file and the decoder's reordering delay). A lower bound for any preview that
/// decodes the file: it leaves out conversion and transfer.
struct DecodeFloor {
    /// Display index and time of each key frame.
    keyframes: Vec<(u64, f64)>,
}

impl DecodeFloor {
    fn probe(input: &Path) -> DecodeFloor {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .args([
                "frame=key_frame,best_effort_timestamp_time",
                "-of",
                "csv=p=0",
            ])
            .arg(input)
            .output()
            .expect("ffprobe runs");
        let keyframes = String::from_utf8_lossy(&out.stdout)
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let (key, time) = line.trim().split_once(',')?;
                let time: f64 = time.parse().ok()?;
                (key == "1").then_some((i as u64, time))
            })
            .collect();
        DecodeFloor { keyframes }
    }

    /// Decoding from the keyframe at or before `frame_index` to it; with `refs_only`, with
    /// the non-reference frames skipped (`-skip_frame noref`, as mpv's exact seek decodes
    /// the frames before its target), up to the frame's time.
    fn to(&self, input: &Path, frame_index: u64, refs_only: bool) -> Duration {
        let (key, time) = self
            .keyframes
            .iter()
            .rev()
            .find(|(k, _)| *k <= frame_index)
            .copied()
            .unwrap_or((0, 0.0));
        let run = |frames: u64| {
            let started = Instant::now();
            let mut cmd = Command::new("ffmpeg");
            cmd.args(["-nostdin", "-v", "error", "-ss", &format!("{time:.6}")]);
            if refs_only {
                cmd.args(["-skip_frame", "noref"]);
            }
            cmd.arg("-i").arg(input);
            if refs_only && frames > 1 {
                let span = (frames as f64 - 0.5) / FPS as f64;
                cmd.args(["-t", &format!("{span:.6}")]);
            } else {
                cmd.args(["-frames:v", &frames.to_string()]);
            }
            let status = cmd.args(["-f", "null", "-"]).status().expect("ffmpeg runs");
            assert!(status.success());
            started.elapsed()
        };
        let opening = run(1);
        run(frame_index - key + 1).saturating_sub(opening)
    }
}

/// The four series on one input, through one fresh worker (`seeker`: `REFRAME_PREVIEW_SEEKER`).
fn series(
    work: &tempfile::TempDir,
    input: &Path,
    frames: u64,
    samples: usize,
    seeker: &str,
    keyframes: &str,
) -> Vec<u64> {
    // REFRAME_BENCH_WORKER_LOG=FILE appends the worker's log there (with RUST_LOG=debug: where
    // each request's time goes).
    let worker = match std::env::var_os("REFRAME_BENCH_WORKER_LOG") {
        Some(log) => WorkerCommand::new("sh")
            .arg("-c")
            .arg("exec \"$0\" worker preview 2>>\"$1\"")
            .arg(env!("CARGO_BIN_EXE_reframe"))
            .arg(log),
        None => WorkerCommand::new(env!("CARGO_BIN_EXE_reframe"))
            .arg("worker")
            .arg("preview"),
    };
    let worker = worker
        .env("REFRAME_CACHE_DIR", work.path().join("cache"))
        .env("REFRAME_PREVIEW_SEEKER", seeker)
        .env("REFRAME_PREVIEW_KEYFRAMES", keyframes);
    let mut client = PreviewClient::new(worker, || {});
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let look = Duration::from_millis(300);
    let key_repeat = Duration::from_millis(100);

    // The first request also starts the worker, probes the input and lists its frames.
    let cold = latency(&mut client, input, frames / 2).exact;
    println!(
        "first request (worker start, probe, frame list, seek): {:.0} ms",
        ms(cold)
    );
    std::thread::sleep(look);

    let mut targets = Vec::new();
    let seeks: Vec<Timing> = (0..samples)
        .map(|_| {
            let target = random(frames);
            targets.push(target);
            let took = latency(&mut client, input, target);
            std::thread::sleep(look);
            took
        })
        .collect();
    let second = FPS;
    let mut steps = Vec::new();
    let mut back = Vec::new();
    let mut jumps = Vec::new();
    while steps.len() < samples || back.len() < samples || jumps.len() < samples {
        // Land somewhere, then step forward ten times; land again, step back ten times.
        let start = 12 + random(frames - 24);
        latency(&mut client, input, start);
        std::thread::sleep(look);
        for k in 1..=10 {
            steps.push(latency(&mut client, input, start + k));
            std::thread::sleep(key_repeat);
        }
        let start = 12 + random(frames - 24);
        latency(&mut client, input, start);
        std::thread::sleep(look);
        for k in 1..=10 {
            back.push(latency(&mut client, input, start - k));
            std::thread::sleep(key_repeat);
        }
        // One-second jumps either way from a random place.
        let mut at = second + random(frames - 2 * second);
        latency(&mut client, input, at);
        std::thread::sleep(look);
        for _ in 0..4 {
            at = if random(2) == 0 && at >= 2 * second || at + second >= frames {
                at - second
            } else {
                at + second
            };
            jumps.push(latency(&mut client, input, at));
            std::thread::sleep(look);
        }
    }
    for (what, series) in [
        ("random seek", &seeks),
        ("next frame", &steps),
        ("previous frame", &back),
        ("one-second jump", &jumps),
    ] {
        let first: Vec<Duration> = series.iter().map(|t| t.first).collect();
        let exact: Vec<Duration> = series.iter().map(|t| t.exact).collect();
        let approximate = series.iter().filter(|t| t.approximate).count();
        report(&format!("{what}: first picture"), &first);
        report(&format!("{what}: exact frame  "), &exact);
        println!(
            "  ({approximate} of {} first showed a keyframe picture)",
            series.len()
        );
    }
    if let Some(pid) = client.worker_pid() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map_or("unknown", str::trim)
                .to_owned()
        };
        println!(
            "preview worker's memory: {} now (caches full), {} at its peak",
            field("VmRSS:"),
            field("VmHWM:")
        );
    }
    client.shutdown();
    targets
}

/// When a request's first picture and its exact images reached the client.
#[derive(Debug, Clone, Copy)]
struct Timing {
    first: Duration,
    exact: Duration,
    /// The first picture was a keyframe's.
    approximate: bool,
}

/// Times from the request to its first picture and to the frame's images in the client.
fn latency(client: &mut PreviewClient, input: &Path, frame_index: u64) -> Timing {
    let started = Instant::now();
    let id = client.request(PreviewRequest::Frame {
        input: input.to_path_buf(),
        frame_index,
        engine: "lanczos".into(),
        scale: 2.0,
        denoise: None,
        models_dir: None,
        approximate: false,
    });
    let mut first = None;
    loop {
        for (got, reply) in client.poll() {
            if got != id {
                continue;
            }
            match reply {
                PreviewReply::FrameApprox { .. } => {
                    first.get_or_insert(started.elapsed());
                }
                PreviewReply::Frame { after, .. } => {
                    assert_eq!((after.width, after.height), (3840, 2160));
                    let exact = started.elapsed();
                    return Timing {
                        first: first.unwrap_or(exact),
                        exact,
                        approximate: first.is_some(),
                    };
                }
                other => panic!("frame {frame_index}: {other:?}"),
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn report(what: &str, samples: &[Duration]) {
    let mut sorted: Vec<f64> = samples.iter().map(|d| ms(*d)).collect();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms ({} requests)",
        at(0.5),
        at(0.95),
        at(1.0),
        sorted.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn generate(path: &Path, seconds: u64, rate: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size=1920x1080:rate={FPS}:duration={seconds},noise=alls=12:allf=t"
        ))
        .args(["-c:v", "libx264", "-preset", "veryfast"])
        .args(rate)
        .args(["-g", "48", "-bf", "3", "-pix_fmt", "yuv420p"])
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "could not generate the 1080p clip");
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
