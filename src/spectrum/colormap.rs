//! The spectrogram's colour map: dark purple through red and orange to pale yellow (the
//! inferno/magma family), derived here rather than copied from a table.
//!
//! The ramp is defined in OKLCh (the polar form of OKLab, a perceptually uniform colour
//! space): lightness rises *linearly* from 0.12 to 0.97, so equal dB steps look like equal
//! brightness steps and the map reads correctly in greyscale; hue turns from violet (290°)
//! through red to yellow (465° ≡ 105°) and chroma swells in the middle, both interpolated
//! between five control points chosen by eye. Colours outside sRGB are brought in by
//! lowering chroma at constant lightness and hue. The 256-entry table is built once.

use std::sync::OnceLock;

/// Control points (position, chroma, hue in degrees, unwrapped) of the OKLCh ramp.
const CONTROL: [(f64, f64, f64); 5] = [
    (0.00, 0.04, 290.0),
    (0.25, 0.15, 318.0),
    (0.50, 0.19, 378.0),
    (0.75, 0.18, 420.0),
    (1.00, 0.12, 465.0),
];
const L_DARK: f64 = 0.12;
const L_LIGHT: f64 = 0.97;

/// The colour for `t` in [0, 1] (clamped; NaN is 0) as sRGB bytes.
pub fn color(t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    table()[(t * 255.0).round() as usize]
}

/// The 256-entry table behind [`color`].
pub fn table() -> &'static [[u8; 3]; 256] {
    static TABLE: OnceLock<[[u8; 3]; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [[0u8; 3]; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            *entry = ramp(i as f64 / 255.0);
        }
        table
    })
}

/// OKLCh at `t`, gamut-mapped to sRGB bytes.
fn ramp(t: f64) -> [u8; 3] {
    let lightness = L_DARK + (L_LIGHT - L_DARK) * t;
    let segment = CONTROL
        .windows(2)
        .find(|w| t <= w[1].0)
        .unwrap_or(&CONTROL[3..5]);
    let (t0, c0, h0) = segment[0];
    let (t1, c1, h1) = segment[1];
    let u = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
    let chroma = c0 + (c1 - c0) * u;
    let hue = (h0 + (h1 - h0) * u).to_radians();
    // Largest chroma ≤ the wanted one that is inside sRGB (bisection).
    let in_gamut = |c: f64| oklab_to_linear_srgb(lightness, c * hue.cos(), c * hue.sin());
    let inside = |rgb: [f64; 3]| rgb.iter().all(|v| (-1e-9..=1.0 + 1e-9).contains(v));
    let mut rgb = in_gamut(chroma);
    if !inside(rgb) {
        let (mut lo, mut hi) = (0.0, chroma);
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if inside(in_gamut(mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        rgb = in_gamut(lo);
    }
    rgb.map(|v| (linear_to_srgb(v.clamp(0.0, 1.0)) * 255.0).round() as u8)
}

/// OKLab → linear sRGB (Björn Ottosson's published matrices).
fn oklab_to_linear_srgb(l: f64, a: f64, b: f64) -> [f64; 3] {
    let l_ = l + 0.396_337_777_4 * a + 0.215_803_757_3 * b;
    let m_ = l - 0.105_561_345_8 * a - 0.063_854_172_8 * b;
    let s_ = l - 0.089_484_177_5 * a - 1.291_485_548 * b;
    let (l3, m3, s3) = (l_ * l_ * l_, m_ * m_ * m_, s_ * s_ * s_);
    [
        4.076_741_662_1 * l3 - 3.307_711_591_3 * m3 + 0.230_969_929_2 * s3,
        -1.268_438_004_6 * l3 + 2.609_757_401_1 * m3 - 0.341_319_396_5 * s3,
        -0.004_196_086_3 * l3 - 0.703_418_614_7 * m3 + 1.707_614_701 * s3,
    ]
}

fn linear_to_srgb(v: f64) -> f64 {
    if v <= 0.003_130_8 {
        12.92 * v
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

/// RGBA for a row-major dB image `width` wide: columns before `columns_done` through the map
/// between `floor_db` and `ceil_db`, later ones transparent.
pub(crate) fn db_to_rgba(
    db: &[f32],
    width: usize,
    columns_done: usize,
    floor_db: f32,
    ceil_db: f32,
) -> Vec<u8> {
    let mut rgba = vec![0u8; db.len() * 4];
    if width == 0 {
        return rgba;
    }
    let span = if ceil_db - floor_db > 1e-3 {
        ceil_db - floor_db
    } else {
        1e-3
    };
    let table = table();
    for (row_db, row_rgba) in db.chunks_exact(width).zip(rgba.chunks_exact_mut(width * 4)) {
        for (&value, pixel) in row_db[..columns_done]
            .iter()
            .zip(row_rgba.chunks_exact_mut(4))
        {
            let t = (value - floor_db) / span;
            let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
            let [r, g, b] = table[(t * 255.0).round() as usize];
            pixel.copy_from_slice(&[r, g, b, 255]);
        }
    }
    rgba
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OKLab lightness of an sRGB byte triple (inverse of the conversion above).
    fn lightness(rgb: [u8; 3]) -> f64 {
        let lin = rgb.map(|v| {
            let v = v as f64 / 255.0;
            if v <= 0.040_45 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        });
        let l = 0.412_221_470_8 * lin[0] + 0.536_332_536_3 * lin[1] + 0.051_445_992_9 * lin[2];
        let m = 0.211_903_498_2 * lin[0] + 0.680_699_545_1 * lin[1] + 0.107_396_956_6 * lin[2];
        let s = 0.088_302_461_9 * lin[0] + 0.281_718_837_6 * lin[1] + 0.629_978_700_5 * lin[2];
        0.210_454_255_3 * l.cbrt() + 0.793_617_785 * m.cbrt() - 0.004_072_046_8 * s.cbrt()
    }

    #[test]
    fn lightness_rises_evenly_from_dark_to_light() {
        let table = table();
        let mut previous = -1.0;
        for (i, &rgb) in table.iter().enumerate() {
            let l = lightness(rgb);
            let expected = L_DARK + (L_LIGHT - L_DARK) * i as f64 / 255.0;
            assert!(
                (l - expected).abs() < 0.01,
                "entry {i}: L {l}, expected {expected}"
            );
            assert!(l > previous, "entry {i} not brighter than {}", i - 1);
            previous = l;
        }
        // Dark violet at the bottom, warm and light at the top, red-orange in between.
        let [r, g, b] = table[0];
        assert!(b > r && b > g && r < 40, "{:?}", table[0]);
        let [r, g, b] = table[255];
        assert!(r > 240 && g > 230 && b > 120 && b < r, "{:?}", table[255]);
        let [r, g, b] = table[160];
        assert!(r > g && r > b, "{:?}", table[160]);
    }

    #[test]
    fn rgba_maps_the_range_and_leaves_undone_columns_transparent() {
        let db = [-120.0, -50.0, 0.0, 10.0, f32::NAN, -50.0];
        let rgba = db_to_rgba(&db, 3, 2, -100.0, 0.0);
        assert_eq!(rgba.len(), 24);
        assert_eq!(&rgba[0..3], &table()[0]);
        assert_eq!(&rgba[4..7], &table()[128]);
        assert_eq!(rgba[3], 255);
        assert_eq!(&rgba[8..12], &[0, 0, 0, 0]);
        assert_eq!(&rgba[12..15], &table()[255]);
        assert_eq!(&rgba[16..19], &table()[0]);
        assert_eq!(&rgba[20..24], &[0, 0, 0, 0]);
        assert_eq!(color(0.5), table()[128]);
    }
}
