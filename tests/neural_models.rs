//! The neural engines on the real models against an independent reference: the same ncnn
//! files converted to ONNX by `tools/ncnn_onnx.py` and run by onnxruntime. Also: tiled ==
//! untiled, fast kernels == reference kernels, and x2/x3 (x4 body + our bicubic) == the
//! shipped x2/x3 models, all on small images with real texture.

mod neural_support;

use neural_support::*;
use reframe::engine::Family;
use reframe::engine::neural::Neural;
use reframe::neural::{Kernels, Tensor};

const ONNX_TOLERANCE: f32 = 1e-3;
const SAME_TOLERANCE: f32 = 1e-4;

fn engine(family: Family, name: &str, scale: u32) -> Neural {
    let (param, bin) = model(name);
    Neural::load_paths(family, &param, &bin, scale).expect("load model")
}

fn texture() -> Tensor {
    lavfi_image("mandelbrot", 48, 40)
}

fn check_against_onnx(family: Family, name: &str, scale: u32, pad_edge: usize) {
    let input = texture();
    let ours = engine(family, name, scale)
        .upscale_rgb(&input)
        .expect("upscale");
    let (param, bin) = model(name);
    let reference = onnx_reference(&param, &bin, &input, pad_edge, 2);
    let diff = max_abs_diff(&ours, &reference);
    println!("{name} x{scale}: max abs diff {diff:e} against onnxruntime");
    assert!(
        diff <= ONNX_TOLERANCE,
        "{name} x{scale}: max abs diff {diff} against onnxruntime"
    );
}

#[test]
fn animevideov3_x4_matches_onnxruntime() {
    check_against_onnx(Family::AnimeVideoV3, "realesr-animevideov3-x4", 4, 0);
}

/// x2 here = x4 body + bicubic 0.5× in Rust; the reference runs the shipped x2 .param, whose
/// own Interp layer does the resize.
#[test]
fn animevideov3_x2_matches_the_shipped_x2_model() {
    let input = texture();
    let ours = engine(Family::AnimeVideoV3, "realesr-animevideov3-x4", 2)
        .upscale_rgb(&input)
        .expect("upscale");
    let (param, bin) = model("realesr-animevideov3-x2");
    let reference = onnx_reference(&param, &bin, &input, 0, 2);
    let diff = max_abs_diff(&ours, &reference);
    println!("x2: max abs diff {diff:e} against onnxruntime on the shipped x2");
    assert!(diff <= ONNX_TOLERANCE, "x2 vs onnxruntime: {diff}");

    // And the shipped x2 network run whole by our own inference (its Interp layer included).
    let shipped = reframe::neural::Net::load(&param, &bin).expect("load x2");
    let whole = shipped.forward(&input, Kernels::Fast).expect("forward");
    let diff = max_abs_diff(&ours, &whole);
    println!("x2: max abs diff {diff:e} against the shipped x2 run whole here");
    assert!(diff <= SAME_TOLERANCE, "x2 vs the shipped x2 net: {diff}");
}

#[test]
fn animevideov3_x3_matches_the_shipped_x3_model() {
    let input = lavfi_image("testsrc2", 32, 24);
    let ours = engine(Family::AnimeVideoV3, "realesr-animevideov3-x4", 3)
        .upscale_rgb(&input)
        .expect("upscale");
    let (param, bin) = model("realesr-animevideov3-x3");
    let reference = onnx_reference(&param, &bin, &input, 0, 2);
    assert_eq!((ours.height, ours.width), (72, 96));
    let diff = max_abs_diff(&ours, &reference);
    println!("x3: max abs diff {diff:e} against onnxruntime on the shipped x3");
    assert!(diff <= ONNX_TOLERANCE, "x3 vs onnxruntime: {diff}");
}

/// upconv_7's convolutions are unpadded: the reference gets the input edge-padded by 7 px,
/// as waifu2x-ncnn-vulkan feeds it.
#[test]
fn waifu2x_anime_denoise1_matches_onnxruntime() {
    check_against_onnx(Family::Waifu2xAnime, "WAIFU2X_ANIME_UP2X_DENOISE1X", 2, 7);
}

#[test]
fn waifu2x_photo_matches_onnxruntime() {
    check_against_onnx(Family::Waifu2xPhoto, "WAIFU2X_PHOTO_UP2X", 2, 7);
}

#[test]
fn tiled_equals_untiled() {
    let input = lavfi_image("testsrc2", 40, 36);
    for (family, name) in [
        (Family::AnimeVideoV3, "realesr-animevideov3-x4"),
        (Family::Waifu2xAnime, "WAIFU2X_ANIME_UP2X"),
    ] {
        let mut neural = engine(family, name, 2);
        neural.set_threads(2);
        let whole = neural.upscale_rgb_tiled(&input, 64).expect("one tile");
        let tiled = neural.upscale_rgb_tiled(&input, 16).expect("tiles");
        let diff = max_abs_diff(&whole, &tiled);
        println!("{name}: tiled vs untiled max abs diff {diff:e}");
        assert!(diff <= SAME_TOLERANCE, "{name}: tiled vs untiled {diff}");
    }
}

#[test]
fn fast_kernels_equal_reference_kernels() {
    let input = lavfi_image("mandelbrot", 24, 20);
    for (family, name) in [
        (Family::AnimeVideoV3, "realesr-animevideov3-x4"),
        (Family::Waifu2xPhoto, "WAIFU2X_PHOTO_UP2X_DENOISE3X"),
    ] {
        let mut neural = engine(family, name, 2);
        let fast = neural.upscale_rgb(&input).expect("fast");
        neural.set_reference_kernels(true);
        let reference = neural.upscale_rgb(&input).expect("reference");
        let diff = max_abs_diff(&fast, &reference);
        println!("{name}: fast vs reference max abs diff {diff:e}");
        assert!(diff <= SAME_TOLERANCE, "{name}: fast vs reference {diff}");
    }
}

/// A flat colour through the whole engine (yuv420p in and out) comes back as the network
/// makes it from the exact RGB colour: the conversions around the network cost no more than
/// 8-bit rounding. (The network itself moves flat colours by up to ~0.025.)
#[test]
fn flat_colour_survives_the_engine() {
    use reframe::engine::neural::{rgb_to_yuv420p, yuv420p_to_rgb};
    use reframe::engine::{ColorMatrix, Upscaler};
    // `load_paths` engines convert with BT.709.
    let mut neural = engine(Family::AnimeVideoV3, "realesr-animevideov3-x4", 2);
    for rgb in [[0.8f32, 0.3, 0.2], [0.2, 0.5, 0.7], [0.9, 0.85, 0.1]] {
        let flat = Tensor {
            channels: 3,
            height: 16,
            width: 20,
            data: (0..3)
                .flat_map(|c| std::iter::repeat_n(rgb[c], 320))
                .collect(),
        };
        let direct = neural.upscale_rgb(&flat).expect("rgb path");
        let frame = rgb_to_yuv420p(&flat, ColorMatrix::Bt709);
        let out = neural.process(&frame).expect("process");
        assert_eq!((out.width, out.height), (40, 32));
        let back = yuv420p_to_rgb(&out, ColorMatrix::Bt709);
        // Away from the borders (the network treats the frame edge differently).
        let (mut worst, mut shift) = (0f32, 0f32);
        for (c, want) in rgb.iter().enumerate() {
            for y in 4..28 {
                for x in 4..36 {
                    let i = c * 40 * 32 + y * 40 + x;
                    let net = direct.data[i].clamp(0.0, 1.0);
                    worst = worst.max((back.data[i] - net).abs());
                    shift = shift.max((net - want).abs());
                }
            }
        }
        assert!(
            worst < 0.012,
            "{rgb:?}: the yuv420p path is off the RGB path by {worst}"
        );
        assert!(shift < 0.04, "{rgb:?}: the network moved it by {shift}");
    }
}

/// The model `name` run whole on `input` by our inference, with both kernel sets, against
/// onnxruntime on the same graph; returns the output's (channels, height, width).
fn whole_net_matches_onnxruntime(name: &str, input: &Tensor) -> (usize, usize, usize) {
    let (param, bin) = model(name);
    let net = reframe::neural::Net::load(&param, &bin).expect("load the model");
    let reference = onnx_reference(&param, &bin, input, 0, 2);
    for kernels in [Kernels::Reference, Kernels::Fast] {
        let ours = net.forward(input, kernels).expect("forward");
        assert_eq!(
            (ours.channels, ours.height, ours.width),
            (reference.channels, reference.height, reference.width)
        );
        let diff = max_abs_diff(&ours, &reference);
        println!(
            "{name} ({kernels:?}): {}x{} → {}x{}, max abs diff {diff:e} against onnxruntime",
            input.width, input.height, ours.width, ours.height
        );
        assert!(diff <= ONNX_TOLERANCE, "{name} {kernels:?}: {diff}");
    }
    (reference.channels, reference.height, reference.width)
}

/// Real-ESRGAN x4plus-anime: an RRDB net (dense blocks of Concat, residuals scaled by
/// Eltwise, nearest-neighbour upsampling).
#[test]
fn x4plus_anime_net_matches_onnxruntime() {
    let out = whole_net_matches_onnxruntime(
        "realesrgan-x4plus-anime",
        &lavfi_image("mandelbrot", 14, 10),
    );
    assert_eq!(out, (3, 40, 56), "4× the input");
}

/// The x4plus engines: the RRDB body runs apart from its upsampling tail (see
/// `neural::net::Segment`), each tiled by memory; the engine matches onnxruntime, and cut into
/// many tiles by a small memory limit it equals the one-tile run.
#[test]
fn x4plus_engines_match_onnxruntime_and_tile_exactly() {
    // Small images: the nets are 30–100× animevideov3's work per pixel.
    let small = lavfi_image("mandelbrot", 20, 16);
    let (param, bin) = model("realesrgan-x4plus-anime");
    let anime = Neural::load_paths(Family::X4PlusAnime, &param, &bin, 4).expect("load");
    let whole = anime.upscale_rgb(&small).expect("upscale");
    let diff = max_abs_diff(&whole, &onnx_reference(&param, &bin, &small, 0, 2));
    println!("realesrgan-x4plus-anime x4: max abs diff {diff:e} against onnxruntime");
    assert!(diff <= ONNX_TOLERANCE, "x4plus-anime: {diff}");

    let (x4plus_param, x4plus_bin) = model("realesrgan-x4plus");
    let x4plus = Neural::load_paths(Family::X4Plus, &x4plus_param, &x4plus_bin, 4).expect("load");
    let smaller = lavfi_image("mandelbrot", 12, 8);
    let ours = x4plus.upscale_rgb(&smaller).expect("upscale");
    let reference = onnx_reference(&x4plus_param, &x4plus_bin, &smaller, 0, 2);
    let diff = max_abs_diff(&ours, &reference);
    println!("realesrgan-x4plus x4: max abs diff {diff:e} against onnxruntime");
    assert!(diff <= ONNX_TOLERANCE, "x4plus: {diff}");

    // A 1 MiB limit cuts the upsampling tail (8 KiB per input pixel) into many tiles.
    let mut opts = anime.tile_options(4096);
    opts.tile_bytes = 1 << 20;
    let tiled = reframe::neural::upscale_tiled(anime.net(), &small, &opts).expect("tiled");
    let diff = max_abs_diff(&tiled, &whole);
    assert!(diff <= SAME_TOLERANCE, "x4plus-anime tiled: {diff}");
    // x2 = the x4 body and our bicubic, as animevideov3's x2.
    let x2 = Neural::load_paths(Family::X4PlusAnime, &param, &bin, 2)
        .expect("load")
        .upscale_rgb(&small)
        .expect("x2");
    assert_eq!((x2.height, x2.width), (2 * small.height, 2 * small.width));
}

/// Real-CUGAN se 2× (conservative): an unpadded U-Net with squeeze-and-excitation blocks
/// (global average Pooling, InnerProduct with ReLU and sigmoid, per-channel BinaryOp) and Crop.
#[test]
fn realcugan_se_2x_net_matches_onnxruntime() {
    let out = whole_net_matches_onnxruntime("models-se/up2x-conservative", &texture_60x44());
    assert_eq!(
        out,
        (3, 16, 48),
        "2× the input less the 18 px it consumes at each edge"
    );
}

/// waifu2x cunet 2×: an unpadded U-Net whose skip connections are cropped to a reference
/// blob, with squeeze-and-excitation by Scale from a blob.
#[test]
fn waifu2x_cunet_2x_net_matches_onnxruntime() {
    let out = whole_net_matches_onnxruntime("WAIFU2X_CUNET_UP2X", &texture_60x44());
    assert_eq!(
        out,
        (3, 16, 48),
        "2× the input less the 18 px it consumes at each edge"
    );
}

/// waifu2x cunet 1× (denoise only): a deeper U-Net that loses 28 px at each edge.
#[test]
fn waifu2x_cunet_1x_denoise_net_matches_onnxruntime() {
    let out = whole_net_matches_onnxruntime(
        "WAIFU2X_CUNET_UP1X_DENOISE1X",
        &lavfi_image("mandelbrot", 76, 68),
    );
    assert_eq!(
        out,
        (3, 12, 20),
        "the input less the 28 px it consumes at each edge"
    );
}

fn texture_60x44() -> Tensor {
    lavfi_image("mandelbrot", 60, 44)
}

/// The frame edge-replicated: `prepad` pixels on every side, and more at the right and bottom
/// up to `h`×`w` in all.
fn replicate(x: &Tensor, prepad: usize, h: usize, w: usize) -> Tensor {
    let mut data = Vec::with_capacity(x.channels * h * w);
    for c in 0..x.channels {
        for y in 0..h {
            let sy = (y as isize - prepad as isize).clamp(0, x.height as isize - 1) as usize;
            for xx in 0..w {
                let sx = (xx as isize - prepad as isize).clamp(0, x.width as isize - 1) as usize;
                data.push(x.data[(c * x.height + sy) * x.width + sx]);
            }
        }
    }
    Tensor::from_data(x.channels, h, w, data).expect("shape")
}

/// The top-left `h`×`w` of every channel.
fn top_left(x: &Tensor, h: usize, w: usize) -> Tensor {
    let mut data = Vec::with_capacity(x.channels * h * w);
    for c in 0..x.channels {
        for y in 0..h {
            data.extend_from_slice(&x.data[(c * x.height + y) * x.width..][..w]);
        }
    }
    Tensor::from_data(x.channels, h, w, data).expect("shape")
}

/// Real-CUGAN (se 2×/3×/4×, pro, nose) and waifu2x cunet pool the whole frame in their
/// squeeze-and-excitation blocks: tiled, each Pooling's value is computed for the frame first
/// (`neural::frame_stats`), so small tiles equal the untiled run on the frame pre-padded by
/// the net's loss (and extended to a size the net takes) by edge replication.
#[test]
fn squeeze_and_excitation_nets_tile_exactly() {
    // Odd sides: the pre-padded frame is extended by a column and a row. Two tiles side by
    // side (the unit tests of `frame_stats` cut both ways, on a miniature net).
    let x = lavfi_image("mandelbrot", 19, 9);
    for (name, scale, prepad) in [
        ("models-se/up2x-conservative", 2, 18),
        ("models-se/up3x-no-denoise", 3, 14),
        ("models-se/up4x-denoise3x", 4, 19),
        ("models-pro/up3x-conservative", 3, 14),
        ("models-nose/up2x-no-denoise", 2, 18),
        ("WAIFU2X_CUNET_UP2X", 2, 18),
        ("WAIFU2X_CUNET_UP1X_DENOISE2X", 1, 28),
    ] {
        let (param, bin) = model(name);
        let net = reframe::neural::Net::load(&param, &bin).expect("load");
        // The smallest pre-padded size the net takes (its output `scale ×` the frame's).
        let takes = |h: usize, w: usize| {
            net.output_shape(3, h, w).is_ok_and(|(_, oh, ow)| {
                (oh, ow) == (scale * (h - 2 * prepad), scale * (w - 2 * prepad))
            })
        };
        let side = |n: usize, other: usize| (n..n + 8).find(|&m| takes(m, other)).expect("size");
        let w = side(x.width + 2 * prepad, 128);
        let h = side(x.height + 2 * prepad, 128);
        let whole = net
            .forward(&replicate(&x, prepad, h, w), Kernels::Fast)
            .expect("untiled");
        assert_eq!(
            (whole.height, whole.width),
            (scale * (h - 2 * prepad), scale * (w - 2 * prepad)),
            "{name}: the net loses {prepad} px per side"
        );
        let reference = top_left(&whole, scale * x.height, scale * x.width);
        let opts = reframe::neural::TileOptions {
            tile: 10,
            overlap: 0,
            threads: 2,
            kernels: Kernels::Fast,
            tile_bytes: 0,
        };
        let tiled = reframe::neural::upscale_tiled(&net, &x, &opts).expect("tiled");
        let diff = max_abs_diff(&tiled, &reference);
        println!("{name}: 2 tiles against the untiled run, max abs diff {diff:e}");
        assert!(diff <= SAME_TOLERANCE, "{name}: {diff}");
    }
}
