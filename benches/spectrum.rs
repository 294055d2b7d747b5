//! Spectrogram benchmark: `cargo bench --bench spectrum`.
//!
//! 1. Makes a 2-hour 48 kHz stereo FLAC with ffmpeg lavfi (a beeping 440 Hz sine left, pink
//!    noise right; kept in `target/bench-spectrum/` for later runs).
//! 2. Overview: plain `ffmpeg -i X -ac 1 -f f32le -` read through a pipe and discarded,
//!    against `AudioCache::open` with a cold cache (in a child process of this benchmark, so
//!    that its peak RSS is its own): time to the first overview image, total time, peak RSS.
//!    Then a warm open (the cache file reused).
//! 3. Viewports from that cache: STFT 1600 columns over random 60 s windows and over the whole
//!    track; CWT 200×1600 over random 30 s and 5 s windows; p50/p95. Cancellation latency.
//! 4. The same windows and sizes through `tools/spectrum_ref.py` (scipy.signal.stft,
//!    pywt.cwt(method='fft')) in the same run, when `REFRAME_BENCH_PYTHON` (default
//!    `python3`) has scipy and pywt. The STFT twice: the same 1600 frames, and scipy's
//!    defaults for the same segment length (what a scipy user writes); each in memory and
//!    with the window read from the file (numpy.fromfile against our mapped cache file).
//!
//! `REFRAME_BENCH_OVERVIEW_SECS` (default 7200) sets the track length, `REFRAME_BENCH_RUNS`
//! (default 20) the repetitions of each viewport figure. `REFRAME_BENCH_ONLY_STFT=1` runs the
//! STFT figures and scipy's alone (no overview rounds, no CWT, no pywt; about 20 s), for a
//! quick look while working on the STFT; the figures to record come from a full run.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reframe::media::{Tools, file_arg};
use reframe::spectrum::{AudioCache, viewport};

const CHILD_ENV: &str = "REFRAME_SPECTRUM_BENCH_CHILD";
const OVERVIEW_WIDTH: usize = 1600;
const OVERVIEW_HEIGHT: usize = 256;
const WIDTH: usize = 1600;
const STFT_HEIGHT: usize = 256;
const CWT_HEIGHT: usize = 200;

fn main() {
    if let Ok(input) = std::env::var(CHILD_ENV) {
        overview_child(Path::new(&input));
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let tools = Tools::locate().expect("ffmpeg and ffprobe are needed");
    let secs: u64 = env_number("REFRAME_BENCH_OVERVIEW_SECS", 7200);
    let runs: usize = env_number("REFRAME_BENCH_RUNS", 20);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-spectrum");
    std::fs::create_dir_all(&dir).expect("bench directory");
    let input = make_track(&tools, &dir, secs);
    let cache_dir = dir.join(format!("cache-{}", std::process::id()));
    println!("# Spectrogram benchmark");
    println!("input: {} s stereo 48 kHz FLAC ({})", secs, input.display());
    println!("load before: {}", load_average());

    // Overview: baseline and ours alternately, twice (REFRAME_BENCH_SKIP_OVERVIEW=1: only
    // make the cache).
    let only_stft = std::env::var_os("REFRAME_BENCH_ONLY_STFT").is_some();
    let rounds = if only_stft || std::env::var_os("REFRAME_BENCH_SKIP_OVERVIEW").is_some() {
        let _ = std::fs::remove_dir_all(&cache_dir);
        run_overview_child(&input, &cache_dir);
        0
    } else {
        2
    };
    let mut baseline = Vec::new();
    let mut ours = Vec::new();
    for round in 0..rounds {
        baseline.push(plain_decode_secs(&tools, &input));
        let _ = std::fs::remove_dir_all(&cache_dir);
        let report = run_overview_child(&input, &cache_dir);
        println!(
            "round {round}: ffmpeg alone {:.2} s; AudioCache::open first image {:.3} s, complete {:.2} s, {} overview callbacks, peak RSS {:.1} MB",
            baseline[round],
            report.first_image_secs,
            report.total_secs,
            report.callbacks,
            report.max_rss_mb
        );
        ours.push(report);
    }
    if rounds > 0 {
        let base = median(&mut baseline.clone());
        let total = median(&mut ours.iter().map(|r| r.total_secs).collect::<Vec<_>>());
        let first = median(&mut ours.iter().map(|r| r.first_image_secs).collect::<Vec<_>>());
        let rss = ours.iter().map(|r| r.max_rss_mb).fold(0.0, f64::max);
        println!(
            "overview: first image {first:.3} s; complete {total:.2} s vs ffmpeg alone {base:.2} s = {:.3}×; peak RSS {rss:.1} MB",
            total / base
        );
    }

    // Warm open: the cache file is reused.
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let cache = AudioCache::open_in(
        &tools,
        &input,
        &cache_dir,
        OVERVIEW_WIDTH,
        OVERVIEW_HEIGHT,
        &cancel,
        &mut |_| {},
    )
    .expect("warm open");
    println!(
        "warm open (cache reused, overview from the file): {:.3} s",
        started.elapsed().as_secs_f64()
    );
    let duration = cache.duration_secs();

    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut random_start = |len: f64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64 * (duration - len).max(0.0)
    };
    let stft_starts: Vec<f64> = (0..runs).map(|_| random_start(60.0)).collect();
    let cwt_runs = if only_stft { 0 } else { runs };
    let cwt30_starts: Vec<f64> = (0..cwt_runs).map(|_| random_start(30.0)).collect();
    let cwt5_starts: Vec<f64> = (0..cwt_runs).map(|_| random_start(5.0)).collect();

    let time = |start: f64, len: f64, height: usize| {
        let t = Instant::now();
        let spec = viewport(&cache, start, start + len, WIDTH, height, &cancel).expect("viewport");
        assert_eq!(spec.columns_done, WIDTH);
        t.elapsed().as_secs_f64()
    };
    // First request of each kind plans its FFTs: reported apart, then warm p50/p95.
    let cold_stft = time(stft_starts[0], 60.0, STFT_HEIGHT);
    let mut stft: Vec<f64> = stft_starts
        .iter()
        .map(|&s| time(s, 60.0, STFT_HEIGHT))
        .collect();
    let mut whole: Vec<f64> = (0..runs.min(10))
        .map(|_| time(0.0, duration, STFT_HEIGHT))
        .collect();
    let cold_cwt30 = cwt30_starts
        .first()
        .map_or(f64::NAN, |&s| time(s, 30.0, CWT_HEIGHT));
    let mut cwt30: Vec<f64> = cwt30_starts
        .iter()
        .map(|&s| time(s, 30.0, CWT_HEIGHT))
        .collect();
    let cold_cwt5 = cwt5_starts
        .first()
        .map_or(f64::NAN, |&s| time(s, 5.0, CWT_HEIGHT));
    let mut cwt5: Vec<f64> = cwt5_starts
        .iter()
        .map(|&s| time(s, 5.0, CWT_HEIGHT))
        .collect();
    // The same images from samples already in memory (what the Python references time:
    // they copy the window out of the cache file before the clock starts).
    let mut planner = reframe::spectrum::Planner::new();
    let mut in_memory = |start: f64, len: f64, height: usize, cwt: bool| {
        let mut samples = vec![0.0f32; ((len + 1.0) * cache.sample_rate() as f64) as usize];
        let first = (start * cache.sample_rate() as f64) as i64;
        reframe::spectrum::SampleSource::read(&cache, first, &mut samples).expect("read");
        let source = reframe::spectrum::SliceSource {
            samples: &samples,
            sample_rate: cache.sample_rate(),
        };
        let t = Instant::now();
        if cwt {
            let nyquist = cache.sample_rate() as f32 / 2.0;
            planner
                .cwt(&source, 0.0, len, WIDTH, height, 20.0, nyquist, &cancel)
                .expect("cwt");
        } else {
            planner
                .stft(&source, 0.0, len, WIDTH, height, &cancel)
                .expect("stft");
        }
        t.elapsed().as_secs_f64()
    };
    // Alternating with the same request from the cache file, so that a change of load
    // during the run touches both series alike (the ratios below compare them).
    let mut mem_stft = Vec::new();
    let mut file_stft = Vec::new();
    for &s in &stft_starts {
        mem_stft.push(in_memory(s, 60.0, STFT_HEIGHT, false));
        file_stft.push(time(s, 60.0, STFT_HEIGHT));
    }
    let mut mem_cwt5: Vec<f64> = cwt5_starts
        .iter()
        .map(|&s| in_memory(s, 5.0, CWT_HEIGHT, true))
        .collect();
    report(
        "in memory STFT 60 s, 1600×256 (Planner::stft on a slice)",
        f64::NAN,
        &mut mem_stft,
    );
    report(
        "in memory CWT 5 s, 1600×200 (Planner::cwt on a slice)",
        f64::NAN,
        &mut mem_cwt5,
    );
    report(
        "viewport STFT 60 s again, alternating with the in-memory runs",
        f64::NAN,
        &mut file_stft,
    );
    report("viewport STFT 60 s, 1600×256", cold_stft, &mut stft);
    report("viewport STFT whole track, 1600×256", f64::NAN, &mut whole);
    report("viewport CWT 30 s, 1600×200", cold_cwt30, &mut cwt30);
    report("viewport CWT 5 s, 1600×200", cold_cwt5, &mut cwt5);

    // Cancellation: flag set 5–60 ms into a 30 s CWT; time from the flag to the return.
    let mut latencies = Vec::new();
    for i in 0..cwt_runs {
        let flag = AtomicBool::new(false);
        let delay = Duration::from_millis(5 + (i as u64 * 11) % 56);
        let start = cwt30_starts[i % cwt30_starts.len()];
        let latency = std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let result = viewport(&cache, start, start + 30.0, WIDTH, CWT_HEIGHT, &flag);
                (result.is_err(), Instant::now())
            });
            std::thread::sleep(delay);
            let set_at = Instant::now();
            flag.store(true, Ordering::Relaxed);
            let (cancelled, ended) = worker.join().expect("worker");
            cancelled.then(|| ended.saturating_duration_since(set_at).as_secs_f64())
        });
        if let Some(latency) = latency {
            latencies.push(latency);
        }
    }
    if !latencies.is_empty() {
        latencies.sort_by(f64::total_cmp);
        println!(
            "cancel latency (30 s CWT, {} cancelled runs): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            latencies.len(),
            percentile(&latencies, 50.0) * 1e3,
            percentile(&latencies, 95.0) * 1e3,
            latencies[latencies.len() - 1] * 1e3
        );
    }

    // The Python references on the same samples (read from the cache file).
    let python = std::env::var("REFRAME_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/spectrum_ref.py");
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .arg(cache.path())
        .args(["--rate", &cache.sample_rate().to_string()])
        .args(["--stft-start", &stft_starts[0].to_string()]);
    match (cwt30_starts.first(), cwt5_starts.first()) {
        (Some(cwt30), Some(cwt5)) => command
            .args(["--cwt30-start", &cwt30.to_string()])
            .args(["--cwt5-start", &cwt5.to_string()]),
        _ => command.arg("--skip-cwt"),
    };
    let output = command
        .args(["--width", &WIDTH.to_string()])
        .args(["--stft-height", &STFT_HEIGHT.to_string()])
        .args(["--cwt-height", &CWT_HEIGHT.to_string()])
        .stderr(Stdio::inherit())
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            print!("{text}");
            let value = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{key}=")))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            };
            let ours_stft = median(&mut file_stft.clone());
            let ours_cwt30 = median(&mut cwt30.clone());
            let ours_cwt5 = median(&mut cwt5.clone());
            let ours_mem_stft = median(&mut mem_stft.clone());
            // Each line: scipy from memory / ours from memory, then scipy reading the window
            // with numpy.fromfile / ours from the (mapped) cache file.
            for (what, memory, file) in [
                (
                    "the same 1600 frames".to_string(),
                    "scipy_stft_60s_secs",
                    "scipy_stft_60s_file_secs",
                ),
                (
                    format!(
                        "scipy's defaults, nperseg=2048 noverlap=1024 ({} frames)",
                        value("scipy_stft_default_60s_frames").unwrap_or(f64::NAN)
                    ),
                    "scipy_stft_default_60s_secs",
                    "scipy_stft_default_60s_file_secs",
                ),
            ] {
                if let (Some(memory), Some(file)) = (value(memory), value(file)) {
                    println!(
                        "ratio STFT 60 s, {what}: scipy / ours = {:.1}× in memory ({:.1} / {:.1} ms), {:.1}× from the file ({:.1} / {:.1} ms)",
                        memory / ours_mem_stft,
                        memory * 1e3,
                        ours_mem_stft * 1e3,
                        file / ours_stft,
                        file * 1e3,
                        ours_stft * 1e3
                    );
                }
            }
            if let Some(pywt) = value("pywt_cwt_5s_secs") {
                println!("ratio CWT 5 s: pywt / ours = {:.1}×", pywt / ours_cwt5);
            }
            if let Some(pywt) = value("pywt_cwt_30s_secs") {
                println!("ratio CWT 30 s: pywt / ours = {:.1}×", pywt / ours_cwt30);
            }
        }
        Ok(out) => println!(
            "python reference skipped: {} exited with {} (pip install scipy pywavelets)",
            python, out.status
        ),
        Err(e) => println!("python reference skipped: cannot run {python}: {e}"),
    }
    println!("load after: {}", load_average());
    drop(cache);
    let _ = std::fs::remove_dir_all(&cache_dir);
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// NaN for none.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    percentile(values, 50.0)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn report(name: &str, cold: f64, values: &mut [f64]) {
    if values.is_empty() {
        return;
    }
    values.sort_by(f64::total_cmp);
    println!(
        "{name}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms over {} runs{}",
        percentile(values, 50.0) * 1e3,
        percentile(values, 95.0) * 1e3,
        values[values.len() - 1] * 1e3,
        values.len(),
        if cold.is_nan() {
            String::new()
        } else {
            format!(" (first request, planning FFTs: {:.1} ms)", cold * 1e3)
        }
    );
}

fn make_track(tools: &Tools, dir: &Path, secs: u64) -> PathBuf {
    let path = dir.join(format!("track-{secs}s.flac"));
    if path.exists() {
        return path;
    }
    let partial = dir.join(format!("track-{secs}s.partial.flac"));
    let started = Instant::now();
    let status = Command::new(&tools.ffmpeg)
        .args(["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:beep_factor=4:sample_rate=48000:duration={secs}"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "anoisesrc=color=pink:amplitude=0.05:sample_rate=48000:duration={secs}"
        ))
        .args([
            "-filter_complex",
            "[0:a][1:a]amerge=inputs=2[a]",
            "-map",
            "[a]",
        ])
        .args(["-c:a", "flac", "-sample_fmt", "s16"])
        .arg(file_arg(&partial))
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "making the test track failed");
    std::fs::rename(&partial, &path).expect("rename track");
    println!(
        "made the test track in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    path
}

/// `ffmpeg -i X -ac 1 -f f32le -`, its output read through a pipe and discarded.
fn plain_decode_secs(tools: &Tools, input: &Path) -> f64 {
    let started = Instant::now();
    let mut child = Command::new(&tools.ffmpeg)
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(file_arg(input))
        .args(["-ac", "1", "-f", "f32le", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    let mut stdout = child.stdout.take().expect("piped");
    let mut buf = vec![0u8; 256 * 1024];
    while stdout.read(&mut buf).map(|n| n > 0).unwrap_or(false) {}
    assert!(child.wait().expect("wait").success());
    started.elapsed().as_secs_f64()
}

struct OverviewReport {
    first_image_secs: f64,
    total_secs: f64,
    callbacks: usize,
    max_rss_mb: f64,
}

fn run_overview_child(input: &Path, cache_dir: &Path) -> OverviewReport {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, input)
        .env("REFRAME_CACHE_DIR", cache_dir.parent().expect("parent"))
        .env("REFRAME_SPECTRUM_BENCH_CACHE", cache_dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("benchmark child runs");
    assert!(output.status.success(), "overview child failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    let mut next = || fields.next().unwrap_or(f64::NAN);
    OverviewReport {
        first_image_secs: next(),
        total_secs: next(),
        callbacks: next() as usize,
        max_rss_mb: next(),
    }
}

/// In the child: a cold `AudioCache::open`, then "first total callbacks rss_mb" on stdout.
fn overview_child(input: &Path) {
    let tools = Tools::locate().expect("ffmpeg");
    let cache_dir = std::env::var_os("REFRAME_SPECTRUM_BENCH_CACHE").expect("cache dir");
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let mut first = None;
    let mut callbacks = 0;
    let cache = AudioCache::open_in(
        &tools,
        input,
        Path::new(&cache_dir),
        OVERVIEW_WIDTH,
        OVERVIEW_HEIGHT,
        &cancel,
        &mut |spec| {
            callbacks += 1;
            if first.is_none() && spec.columns_done > 0 {
                first = Some(started.elapsed().as_secs_f64());
            }
        },
    )
    .expect("overview");
    let total = started.elapsed().as_secs_f64();
    assert!(cache.duration_secs() > 0.0);
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    println!(
        "{} {} {} {}",
        first.unwrap_or(f64::NAN),
        total,
        callbacks,
        usage.ru_maxrss as f64 / 1024.0
    );
}
