//! Neural engine benchmark (`cargo bench --bench neural`): milliseconds per 640×360 frame of
//! our CPU inference (2 tile threads, fast kernels) and of onnxruntime (2 intra-op threads) on
//! the same model converted by `tools/ncnn_onnx.py`, in the same run, medians; the GFLOP/s
//! that makes (the convolutions' work at each layer's own resolution, `Net::conv_flop`); and
//! the peak RSS of one frame at 1080p input, measured in a child process
//! (VmHWM) so that nothing else the benchmark holds counts.
//!
//! Models and the Python reference come from `scripts/fetch-models.sh --python`
//! (`REFRAME_TEST_MODELS_DIR`, `REFRAME_TEST_PYTHON` override). `REFRAME_BENCH_RUNS` sets the
//! repetitions (default 3); `REFRAME_BENCH_ONLY=TEXT` runs only the models whose label
//! contains TEXT (the RRDB nets take seconds to minutes per frame).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use reframe::engine::Family;
use reframe::engine::neural::Neural;
use reframe::neural::Tensor;

const CHILD_ENV: &str = "REFRAME_BENCH_NEURAL_CHILD";

struct Case {
    label: &'static str,
    family: Family,
    /// Model our engine loads.
    ours: &'static str,
    /// Model the reference runs (the shipped x2 for "x2 as shipped").
    reference: &'static str,
    scale: u32,
    pad_edge: usize,
}

const CASES: [Case; 8] = [
    Case {
        label: "animevideov3 x4 body",
        family: Family::AnimeVideoV3,
        ours: "realesr-animevideov3-x4",
        reference: "realesr-animevideov3-x4",
        scale: 4,
        pad_edge: 0,
    },
    Case {
        label: "animevideov3 x2 as shipped",
        family: Family::AnimeVideoV3,
        ours: "realesr-animevideov3-x4",
        reference: "realesr-animevideov3-x2",
        scale: 2,
        pad_edge: 0,
    },
    Case {
        label: "waifu2x upconv_7 anime, denoise 1",
        family: Family::Waifu2xAnime,
        ours: "WAIFU2X_ANIME_UP2X_DENOISE1X",
        reference: "WAIFU2X_ANIME_UP2X_DENOISE1X",
        scale: 2,
        pad_edge: 7,
    },
    Case {
        label: "x4plus-anime x4 (RRDB, 6 blocks)",
        family: Family::X4PlusAnime,
        ours: "realesrgan-x4plus-anime",
        reference: "realesrgan-x4plus-anime",
        scale: 4,
        pad_edge: 0,
    },
    Case {
        label: "x4plus x4 (RRDB, 23 blocks)",
        family: Family::X4Plus,
        ours: "realesrgan-x4plus",
        reference: "realesrgan-x4plus",
        scale: 4,
        pad_edge: 0,
    },
    Case {
        label: "Real-CUGAN se 2x conservative (SE U-Net)",
        family: Family::RealCugan,
        ours: "models-se/up2x-conservative",
        reference: "models-se/up2x-conservative",
        scale: 2,
        pad_edge: 18,
    },
    Case {
        label: "waifu2x cunet 2x, denoise 1 (SE U-Net)",
        family: Family::Waifu2xCunet,
        ours: "WAIFU2X_CUNET_UP2X_DENOISE1X",
        reference: "WAIFU2X_CUNET_UP2X_DENOISE1X",
        scale: 2,
        pad_edge: 18,
    },
    Case {
        label: "waifu2x cunet 1x, denoise 1 (SE U-Net)",
        family: Family::Waifu2xCunet,
        ours: "WAIFU2X_CUNET_UP1X_DENOISE1X",
        reference: "WAIFU2X_CUNET_UP1X_DENOISE1X",
        scale: 1,
        pad_edge: 28,
    },
];

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_peak_rss(&spec);
        return;
    }
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("neural benchmark: run it with `cargo bench --bench neural`");
        return;
    }
    let runs: usize = std::env::var("REFRAME_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (w, h) = (640, 360);
    let input = lavfi_image("testsrc2", w, h);
    println!(
        "neural benchmark: {w}x{h} input, median of {runs} runs, 2 threads each, load average {}",
        load_average()
    );
    println!(
        "| model | ours ms/frame | onnxruntime ms/frame | ours / onnxruntime | ours GFLOP/s | onnxruntime GFLOP/s |"
    );
    println!("|---|---|---|---|---|---|");
    let only = std::env::var("REFRAME_BENCH_ONLY").unwrap_or_default();
    for case in CASES.iter().filter(|c| c.label.contains(&only)) {
        let (param, bin) = model(case.ours);
        let mut engine = Neural::load_paths(case.family, &param, &bin, case.scale).expect("load");
        engine.set_threads(2);
        let mut ours_ms = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let out = engine.upscale_rgb(&input).expect("upscale");
            ours_ms.push(start.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(out);
        }
        let (rparam, rbin) = model(case.reference);
        let ort_ms = onnxruntime_ms(&rparam, &rbin, &input, case.pad_edge, runs);
        let flop = engine
            .net()
            .conv_flop(3, h + 2 * case.pad_edge, w + 2 * case.pad_edge)
            .expect("the net takes the frame");
        let (ours, ort) = (median(&mut ours_ms), median(&mut ort_ms.clone()));
        println!(
            "| {} | {ours:.0} | {ort:.0} | {:.2} | {:.1} | {:.1} |",
            case.label,
            ours / ort,
            flop / ours / 1e6,
            flop / ort / 1e6
        );
    }

    println!();
    println!("peak RSS, one frame at 1920x1080 input (child process, VmHWM):");
    for (label, spec) in [
        ("animevideov3 x2", "animevideov3:2"),
        ("waifu2x anime x2", "waifu2x:2"),
        ("x4plus-anime x4 (RRDB, 6 blocks)", "x4plus-anime:4"),
        ("Real-CUGAN se 2x conservative (SE U-Net)", "realcugan:2"),
        ("waifu2x cunet 2x, denoise 1 (SE U-Net)", "waifu2x-cunet:2"),
    ]
    .into_iter()
    .filter(|(label, _)| label.contains(&only))
    {
        let out = Command::new(std::env::current_exe().expect("current exe"))
            .env(CHILD_ENV, spec)
            .output()
            .expect("run child");
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("  {label}: {}", String::from_utf8_lossy(&out.stdout).trim());
    }
}

/// In the child: upscale one 1080p frame, print the peak RSS and the time.
fn child_peak_rss(spec: &str) {
    let (name, scale) = spec.split_once(':').expect("engine:scale");
    let scale: u32 = scale.parse().expect("scale");
    let (family, model_name) = match name {
        "animevideov3" => (Family::AnimeVideoV3, "realesr-animevideov3-x4"),
        "x4plus-anime" => (Family::X4PlusAnime, "realesrgan-x4plus-anime"),
        "realcugan" => (Family::RealCugan, "models-se/up2x-conservative"),
        "waifu2x-cunet" => (Family::Waifu2xCunet, "WAIFU2X_CUNET_UP2X_DENOISE1X"),
        _ => (Family::Waifu2xAnime, "WAIFU2X_ANIME_UP2X_DENOISE1X"),
    };
    let (param, bin) = model(model_name);
    let mut engine = Neural::load_paths(family, &param, &bin, scale).expect("load");
    engine.set_threads(2);
    let input = lavfi_image("testsrc2", 1920, 1080);
    let before = vm_hwm_kib();
    let start = Instant::now();
    let out = engine.upscale_rgb(&input).expect("upscale");
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(&out);
    println!(
        "{:.0} MiB peak ({:.0} MiB before the frame: model + input), {secs:.1} s",
        vm_hwm_kib() as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::var_os("REFRAME_TEST_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/models"));
    let (param, bin) = (
        dir.join(format!("{name}.param")),
        dir.join(format!("{name}.bin")),
    );
    assert!(
        param.is_file() && bin.is_file(),
        "run scripts/fetch-models.sh --python first: {}",
        param.display()
    );
    (param, bin)
}

fn onnxruntime_ms(
    param: &Path,
    bin: &Path,
    input: &Tensor,
    pad_edge: usize,
    runs: usize,
) -> Vec<f64> {
    let python = std::env::var_os("REFRAME_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/pyenv/bin/python"));
    let dir = tempfile::tempdir().expect("temp dir");
    let (inp, out) = (dir.path().join("in.f32"), dir.path().join("out.f32"));
    let bytes: Vec<u8> = input.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&inp, bytes).expect("write input");
    let result = Command::new(python)
        .arg(repo().join("tools/ncnn_onnx.py"))
        .arg("run")
        .args([param, bin])
        .arg("--input")
        .arg(&inp)
        .arg("--shape")
        .args([input.channels, input.height, input.width].map(|v| v.to_string()))
        .arg("--output")
        .arg(&out)
        .args(["--threads", "2", "--pad-edge", &pad_edge.to_string()])
        .args(["--repeat", &runs.to_string()])
        .output()
        .expect("run tools/ncnn_onnx.py (scripts/fetch-models.sh --python)");
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&result.stdout).expect("JSON");
    info["times_ms"]
        .as_array()
        .expect("times")
        .iter()
        .filter_map(|v| v.as_f64())
        .collect()
}

fn lavfi_image(source: &str, width: usize, height: usize) -> Tensor {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("{source}=size={width}x{height}:rate=1"))
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success());
    let mut data = vec![0f32; 3 * width * height];
    for (i, px) in out.stdout.chunks_exact(3).enumerate() {
        for c in 0..3 {
            data[c * width * height + i] = px[c] as f32 / 255.0;
        }
    }
    Tensor {
        channels: 3,
        height,
        width,
        data,
    }
}
