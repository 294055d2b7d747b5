//! Frame preview latency (`cargo bench --bench preview`): from `PreviewClient::request` to the
//! before/after RGBA images in the client, through the real `reframe worker preview` child.
//!
//! Source: 1080p H.264 generated with lavfi (testsrc2 + noise, 24 fps), x264 veryfast with a
//! 2-second GOP (keyint 48, 3 B-frames) — a typical streaming/web encode. Engine: Lanczos 2×
//! (the after image is 3840×2160). Random seeks (anywhere in the clip) and next-frame steps are
//! reported separately, p50 / p95 / max. `REFRAME_BENCH_SECONDS` sets the clip length
//! (default 20), `REFRAME_BENCH_SAMPLES` the requests per series (default 40).

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
    let work = tempfile::tempdir().expect("temp dir");
    let input = work.path().join("in1080.mp4");
    let started = Instant::now();
    generate(&input, seconds);
    println!(
        "preview benchmark: 1080p H.264 (GOP 48, 3 B-frames), {seconds} s at {FPS} fps, \
         Lanczos 2x; clip made in {:.1} s; load average {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );

    let worker = WorkerCommand::new(env!("CARGO_BIN_EXE_reframe"))
        .arg("worker")
        .arg("preview")
        .env("REFRAME_CACHE_DIR", work.path().join("cache"));
    let mut client = PreviewClient::new(worker, || {});
    let frames = seconds * FPS;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };

    // The first request also probes the input and lists its frames (once per input).
    let cold = latency(&mut client, &input, frames / 2);
    println!(
        "first request (probe + frame list + seek): {:.0} ms",
        ms(cold)
    );

    let seeks: Vec<Duration> = (0..samples)
        .map(|_| latency(&mut client, &input, random(frames)))
        .collect();
    let mut steps = Vec::new();
    while steps.len() < samples {
        // Land somewhere, then step forward ten times.
        let start = random(frames - 12);
        latency(&mut client, &input, start);
        for k in 1..=10 {
            steps.push(latency(&mut client, &input, start + k));
        }
    }
    report("random seek", &seeks);
    report("next frame ", &steps);
    println!("load average after: {}", load_average());
    client.shutdown();
}

/// Time from the request to the frame's images in the client.
fn latency(client: &mut PreviewClient, input: &Path, frame_index: u64) -> Duration {
    let started = Instant::now();
    let id = client.request(PreviewRequest::Frame {
        input: input.to_path_buf(),
        frame_index,
        engine: "lanczos".into(),
        scale: 2.0,
        denoise: None,
    });
    loop {
        for (got, reply) in client.poll() {
            if got != id {
                continue;
            }
            match reply {
                PreviewReply::Frame { after, .. } => {
                    assert_eq!((after.width, after.height), (3840, 2160));
                    return started.elapsed();
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

fn generate(path: &Path, seconds: u64) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size=1920x1080:rate={FPS}:duration={seconds},noise=alls=12:allf=t"
        ))
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"])
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
