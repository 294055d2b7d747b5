//! Shared by the neural tests: where the real models and the onnxruntime reference are
//! (`scripts/fetch-models.sh --python` puts them in `target/`; CI runs it through
//! `scripts/deps.sh --test`), test images from ffmpeg's generators, and tensor comparisons.
//! A missing model or reference is a test failure that says what to run, never a skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use reframe::neural::Tensor;

const FETCH: &str = "run scripts/fetch-models.sh --python (CI runs it via scripts/deps.sh --test)";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$REFRAME_TEST_MODELS_DIR`, else `target/models`; fails unless the models are there.
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("REFRAME_TEST_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/models"));
    for name in [
        "realesr-animevideov3-x4",
        "realesr-animevideov3-x2",
        "WAIFU2X_ANIME_UP2X_DENOISE1X",
        "WAIFU2X_PHOTO_UP2X",
    ] {
        for ext in ["param", "bin"] {
            let p = dir.join(format!("{name}.{ext}"));
            assert!(p.is_file(), "model file missing: {FETCH}: {}", p.display());
        }
    }
    dir
}

/// A model's `.param` and `.bin` paths.
pub fn model(name: &str) -> (PathBuf, PathBuf) {
    let dir = models_dir();
    (
        dir.join(format!("{name}.param")),
        dir.join(format!("{name}.bin")),
    )
}

/// Python with onnx + onnxruntime: `$REFRAME_TEST_PYTHON`, else `target/pyenv/bin/python`.
pub fn python() -> PathBuf {
    let py = std::env::var_os("REFRAME_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/pyenv/bin/python"));
    let ok = Command::new(&py)
        .args(["-c", "import onnx, onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "no Python with onnx and onnxruntime: {FETCH}: {}",
        py.display()
    );
    py
}

/// The reference: the ncnn model converted to ONNX by tools/ncnn_onnx.py, run by onnxruntime
/// on `input` (edge-padded by `pad_edge` first).
pub fn onnx_reference(
    param: &Path,
    bin: &Path,
    input: &Tensor,
    pad_edge: usize,
    threads: usize,
) -> Tensor {
    let dir = tempfile::tempdir().expect("temp dir");
    let (inp, out) = (dir.path().join("in.f32"), dir.path().join("out.f32"));
    write_f32(&inp, &input.data);
    let result = Command::new(python())
        .arg(repo().join("tools/ncnn_onnx.py"))
        .arg("run")
        .args([param, bin])
        .arg("--input")
        .arg(&inp)
        .arg("--shape")
        .args([input.channels, input.height, input.width].map(|v| v.to_string()))
        .arg("--output")
        .arg(&out)
        .args(["--threads", &threads.to_string()])
        .args(["--pad-edge", &pad_edge.to_string()])
        .output()
        .expect("run tools/ncnn_onnx.py");
    assert!(
        result.status.success(),
        "ncnn_onnx.py failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let info: serde_json::Value =
        serde_json::from_slice(&result.stdout).expect("ncnn_onnx.py prints JSON");
    let shape: Vec<usize> = info["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|v| v.as_u64().expect("int") as usize)
        .collect();
    Tensor {
        channels: shape[0],
        height: shape[1],
        width: shape[2],
        data: read_f32(&out),
    }
}

pub fn write_f32(path: &Path, data: &[f32]) {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write f32");
}

pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .expect("read f32")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Frame 0 of an ffmpeg lavfi source (`testsrc2`, `mandelbrot`, …) as RGB [0, 1].
pub fn lavfi_image(source: &str, width: usize, height: usize) -> Tensor {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("{source}=size={width}x{height}:rate=1"))
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), width * height * 3);
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

/// Largest absolute difference; the shapes must agree.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(
        (a.channels, a.height, a.width),
        (b.channels, b.height, b.width),
        "shapes differ"
    );
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// Writes a small ESRGAN-shaped ncnn model, as a user's own model would be, into `dir` as
/// `name.param` + `name.bin`: a first conv, two convs with leaky ReLU, a conv added to the
/// first's output, then two nearest 2× upsamplings each followed by a conv (4×, RGB → RGB).
/// Weights are small fixed values (fp32-tagged), so the output is a plausible image.
/// `unknown_layer` puts a layer type no ncnn build has in the middle.
pub fn write_esrgan_shaped_model(dir: &Path, name: &str, unknown_layer: bool) {
    const C: usize = 4;
    let convs: [(&str, &str, &str, usize, usize, bool); 6] = [
        ("first", "data", "f", 3, C, false),
        ("b0", "f1", "b0", C, C, true),
        ("b1", "b0", "b1", C, C, true),
        ("body", "b1", "body", C, C, false),
        ("c1", "u1", "c1", C, C, true),
        ("last", "u2", "output", C, 3, false),
    ];
    let conv_line =
        |(name, from, to, c_in, c_out, leaky): (&str, &str, &str, usize, usize, bool)| {
            let act = if leaky {
                " 9=2 -23310=1,2.000000e-01"
            } else {
                ""
            };
            format!(
                "Convolution {name} 1 1 {from} {to} 0={c_out} 1=3 4=1 5=1 6={}{act}\n",
                c_in * c_out * 9
            )
        };
    let mut param = String::from("7767517\n11 12\nInput in 0 1 data\n");
    param.push_str(&conv_line(convs[0]));
    param.push_str("Split split 1 2 f f0 f1\n");
    param.push_str(&conv_line(convs[1]));
    if unknown_layer {
        param.push_str("Swish b1 1 1 b0 b1\n");
    } else {
        param.push_str(&conv_line(convs[2]));
    }
    param.push_str(&conv_line(convs[3]));
    param.push_str("BinaryOp add 2 1 f0 body sum 0=0\n");
    param.push_str("Interp up1 1 1 sum u1 0=1 1=2.000000e+00 2=2.000000e+00\n");
    param.push_str(&conv_line(convs[4]));
    param.push_str("Interp up2 1 1 c1 u2 0=1 1=2.000000e+00 2=2.000000e+00\n");
    param.push_str(&conv_line(convs[5]));
    let mut bin = Vec::new();
    for (i, &(_, _, _, c_in, c_out, _)) in convs.iter().enumerate() {
        if unknown_layer && i == 2 {
            continue;
        }
        bin.extend(0u32.to_le_bytes());
        for k in 0..c_in * c_out * 9 {
            let w = 0.05 * ((k * 7 + i * 3) as f32 * 0.37).sin();
            bin.extend(w.to_le_bytes());
        }
        for k in 0..c_out {
            bin.extend((0.01 * k as f32).to_le_bytes());
        }
    }
    std::fs::write(dir.join(format!("{name}.param")), param).expect("write the model");
    std::fs::write(dir.join(format!("{name}.bin")), bin).expect("write the model");
}
