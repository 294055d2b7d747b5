//! What the process benchmarks share: the encoder settings on both sides, settings from the
//! environment, timing, medians, and running a command that must succeed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The preset reframe encodes with: x264 veryfast CRF 20, yuv420p, audio copied, MP4.
pub const PRESET: &str = r#"{
  "name": "bench_x264_veryfast",
  "description": "x264 veryfast crf 20 (benchmark)",
  "output": { "kind": "file", "container": "mp4" },
  "video": { "codec": "h264", "crf": 20, "speed": "veryfast", "pix_fmt": "yuv420p" },
  "audio": { "mode": "copy" }
}"#;

/// The same encoder settings for plain ffmpeg.
#[allow(dead_code)] // the cluster benchmark has no ffmpeg-alone run
pub const BASELINE_ENCODER: [&str; 8] = [
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
];

/// `$name` parsed, else `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Cores this process may use.
#[allow(dead_code)] // not every benchmark prints it
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The middle value (sorts `v`).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Wall seconds `f` takes.
pub fn time(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// Runs `cmd` to its end; what it printed is shown only if it failed.
pub fn check(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test clip at `out`: testsrc2 of `width`×`height` at `rate` frames/s with noise (so the
/// encoder has real work), a sine tone, H.264 (x264 veryfast CRF 18; keyframe interval `gop`,
/// else x264's own) + AAC.
pub fn generate(
    out: &Path,
    (width, height): (u32, u32),
    rate: &str,
    seconds: u32,
    gop: Option<u32>,
) -> PathBuf {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={width}x{height}:rate={rate}:duration={seconds},noise=alls=3:allf=t"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]);
    if let Some(g) = gop {
        cmd.args(["-g", &g.to_string()]);
    }
    check(cmd.args(["-c:a", "aac", "-shortest"]).arg(out));
    out.to_path_buf()
}
