//! The preview panel's geometry and axes, apart from its state: the spectrogram's time window
//! (zoom about a point, pan, kept inside the track), the before/after view's zoom and pan,
//! and the ticks and labels of the frequency and time axes. Numbers in, numbers out.

use egui::{Rect, Vec2};

use crate::spectrum::FreqAxis;

/// The narrowest spectrogram window.
pub const MIN_WINDOW_SECS: f64 = 0.05;
/// Zoom limits of the before/after view, in screen points per output pixel.
pub const MIN_FRAME_SCALE: f32 = 0.02;
pub const MAX_FRAME_SCALE: f32 = 64.0;

/// A span of the audio track shown by the spectrogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeWindow {
    pub start_secs: f64,
    pub end_secs: f64,
}

impl TimeWindow {
    pub fn whole(duration_secs: f64) -> Self {
        Self {
            start_secs: 0.0,
            end_secs: duration_secs.max(MIN_WINDOW_SECS),
        }
    }

    pub fn len_secs(&self) -> f64 {
        self.end_secs - self.start_secs
    }

    /// True when it shows the whole track (the overview covers it).
    pub fn is_whole(&self, duration_secs: f64) -> bool {
        self.start_secs <= 1e-9 && self.end_secs >= duration_secs - 1e-9
    }

    /// Narrower by `factor` (> 1 zooms in) about `anchor_secs`, which stays where it is on
    /// screen; kept inside the track.
    pub fn zoom(self, anchor_secs: f64, factor: f64, duration_secs: f64) -> Self {
        let duration = duration_secs.max(MIN_WINDOW_SECS);
        let len = self.len_secs();
        if !(factor.is_finite() && factor > 0.0 && len > 0.0) {
            return self;
        }
        let new_len = (len / factor).clamp(MIN_WINDOW_SECS.min(duration), duration);
        let anchor = anchor_secs.clamp(self.start_secs, self.end_secs);
        let fraction = (anchor - self.start_secs) / len;
        let start = anchor - fraction * new_len;
        Self {
            start_secs: start,
            end_secs: start + new_len,
        }
        .clamped(duration)
    }

    /// Moved by `delta_secs`, kept inside the track.
    pub fn pan(self, delta_secs: f64, duration_secs: f64) -> Self {
        Self {
            start_secs: self.start_secs + delta_secs,
            end_secs: self.end_secs + delta_secs,
        }
        .clamped(duration_secs.max(MIN_WINDOW_SECS))
    }

    fn clamped(self, duration: f64) -> Self {
        let len = self.len_secs().min(duration);
        let start = self.start_secs.clamp(0.0, duration - len);
        Self {
            start_secs: start,
            end_secs: start + len,
        }
    }

    /// Screen x of `secs` in `rect`.
    pub fn x_of(&self, secs: f64, rect: Rect) -> f32 {
        rect.left() + ((secs - self.start_secs) / self.len_secs()) as f32 * rect.width()
    }

    /// Time at screen x in `rect`.
    pub fn secs_at(&self, x: f32, rect: Rect) -> f64 {
        self.start_secs + f64::from((x - rect.left()) / rect.width().max(1.0)) * self.len_secs()
    }
}

/// How the before/after images sit in their viewport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameView {
    /// Follows the viewport: the whole image, as large as fits.
    pub fit: bool,
    /// Screen points per output pixel (when not `fit`).
    pub scale: f32,
    /// The output pixel at the viewport's centre (when not `fit`).
    pub center: Vec2,
}

impl Default for FrameView {
    fn default() -> Self {
        Self {
            fit: true,
            scale: 1.0,
            center: Vec2::ZERO,
        }
    }
}

impl FrameView {
    /// Scale and centre for a viewport of `viewport` points showing an `image` of pixels.
    pub fn resolve(&self, viewport: Vec2, image: Vec2) -> (f32, Vec2) {
        if self.fit || image.x <= 0.0 || image.y <= 0.0 {
            let scale = (viewport.x / image.x.max(1.0)).min(viewport.y / image.y.max(1.0));
            (scale.max(MIN_FRAME_SCALE), image / 2.0)
        } else {
            (self.scale, self.center)
        }
    }

    /// The screen rectangle of the whole image in `viewport`.
    pub fn image_rect(&self, viewport: Rect, image: Vec2) -> Rect {
        let (scale, center) = self.resolve(viewport.size(), image);
        let min = viewport.center() - center * scale;
        Rect::from_min_size(min, image * scale)
    }

    /// Zoomed by `factor` about the screen point `pointer`, which keeps showing the same pixel.
    pub fn zoom_about(
        &self,
        viewport: Rect,
        image: Vec2,
        pointer: egui::Pos2,
        factor: f32,
    ) -> Self {
        let (scale, center) = self.resolve(viewport.size(), image);
        let offset = pointer - viewport.center();
        let under_pointer = center + offset / scale;
        let new_scale = (scale * factor).clamp(MIN_FRAME_SCALE, MAX_FRAME_SCALE);
        Self {
            fit: false,
            scale: new_scale,
            center: under_pointer - offset / new_scale,
        }
    }

    /// Moved by `delta` screen points (the image follows the pointer).
    pub fn pan(&self, viewport: Rect, image: Vec2, delta: Vec2) -> Self {
        let (scale, center) = self.resolve(viewport.size(), image);
        Self {
            fit: false,
            scale,
            center: center - delta / scale,
        }
    }

    /// One output pixel per screen pixel, about the viewport's centre.
    pub fn one_to_one(&self, viewport: Rect, image: Vec2, pixels_per_point: f32) -> Self {
        let (_, center) = self.resolve(viewport.size(), image);
        Self {
            fit: false,
            scale: 1.0 / pixels_per_point.max(0.01),
            center,
        }
    }

    /// Zoom in percent of screen pixels per output pixel ("100%" at 1:1).
    pub fn percent(&self, viewport: Rect, image: Vec2, pixels_per_point: f32) -> f32 {
        self.resolve(viewport.size(), image).0 * pixels_per_point * 100.0
    }
}

/// Frequency of the point `fraction` down from the top of the axis.
pub fn freq_at(axis: FreqAxis, fraction_from_top: f32) -> f32 {
    let up = 1.0 - fraction_from_top.clamp(0.0, 1.0);
    match axis {
        FreqAxis::Linear { max_hz } => max_hz * up,
        FreqAxis::Log { min_hz, max_hz } => {
            let min = min_hz.max(1.0);
            min * (max_hz.max(min) / min).powf(up)
        }
    }
}

/// Where `hz` sits on the axis, as a fraction from the top (`None` outside it).
pub fn fraction_of_freq(axis: FreqAxis, hz: f32) -> Option<f32> {
    let up = match axis {
        FreqAxis::Linear { max_hz } => hz / max_hz.max(1.0),
        FreqAxis::Log { min_hz, max_hz } => {
            let min = min_hz.max(1.0);
            (hz.max(f32::MIN_POSITIVE) / min).ln() / (max_hz.max(min * 1.0001) / min).ln()
        }
    };
    (0.0..=1.0).contains(&up).then_some(1.0 - up)
}

/// Frequencies worth a label on `axis`, at most `max_ticks`.
pub fn freq_ticks(axis: FreqAxis, max_ticks: usize) -> Vec<f32> {
    let max_ticks = max_ticks.max(2);
    match axis {
        FreqAxis::Linear { max_hz } => {
            let step = nice_step(f64::from(max_hz), max_ticks) as f32;
            (0..)
                .map(|i| i as f32 * step)
                .take_while(|hz| *hz <= max_hz)
                .collect()
        }
        FreqAxis::Log { min_hz, max_hz } => {
            let mut ticks: Vec<f32> = [1.0f32, 2.0, 5.0]
                .iter()
                .flat_map(|m| (0..6).map(move |e| m * 10f32.powi(e)))
                .filter(|hz| *hz >= min_hz && *hz <= max_hz)
                .collect();
            ticks.sort_by(f32::total_cmp);
            while ticks.len() > max_ticks {
                // Keep the decades, drop the 2s then the 5s.
                let before = ticks.len();
                if ticks.iter().any(|hz| leading_digit(*hz) == 2) {
                    ticks.retain(|hz| leading_digit(*hz) != 2);
                } else {
                    ticks.retain(|hz| leading_digit(*hz) != 5);
                }
                if ticks.len() == before {
                    break;
                }
            }
            ticks
        }
    }
}

fn leading_digit(hz: f32) -> u32 {
    let exponent = hz.log10().floor();
    (hz / 10f32.powf(exponent)).round() as u32
}

/// "500 Hz", "2 kHz", "12.5 kHz".
pub fn format_hz(hz: f32) -> String {
    if hz >= 1000.0 {
        let khz = hz / 1000.0;
        if (khz - khz.round()).abs() < 0.05 {
            format!("{:.0} kHz", khz)
        } else {
            format!("{:.1} kHz", khz)
        }
    } else {
        format!("{:.0} Hz", hz)
    }
}

/// A step of 1, 2 or 5 × 10ⁿ giving at most `max_ticks` ticks over `span`.
pub fn nice_step(span: f64, max_ticks: usize) -> f64 {
    let raw = span.max(1e-9) / max_ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Times worth a label in `window` (at most `max_ticks`).
pub fn time_ticks(window: TimeWindow, max_ticks: usize) -> Vec<f64> {
    let step = nice_step(window.len_secs(), max_ticks);
    let first = (window.start_secs / step).ceil() as i64;
    (first..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= window.end_secs + 1e-9)
        .collect()
}

/// "1:05", or with fractions of a second when `step_secs` needs them ("0:01.25").
pub fn format_time(secs: f64, step_secs: f64) -> String {
    let secs = secs.max(0.0);
    let decimals = if step_secs >= 1.0 {
        0
    } else {
        (-step_secs.log10()).ceil().clamp(1.0, 3.0) as usize
    };
    let minutes = (secs / 60.0).floor();
    let rest = secs - minutes * 60.0;
    let width = if decimals == 0 { 2 } else { 3 + decimals };
    let text = format!("{rest:0width$.decimals$}");
    // Rounding up to 60 s carries into the minutes.
    if text.starts_with("60") {
        format!("{}:{:0width$.decimals$}", minutes as u64 + 1, 0.0)
    } else {
        format!("{}:{text}", minutes as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::{pos2, vec2};

    #[test]
    fn zooming_keeps_the_anchor_and_stays_inside_the_track() {
        let whole = TimeWindow::whole(100.0);
        let zoomed = whole.zoom(25.0, 4.0, 100.0);
        assert!((zoomed.len_secs() - 25.0).abs() < 1e-9);
        // 25 s was a quarter of the way in and still is.
        assert!(((25.0 - zoomed.start_secs) / zoomed.len_secs() - 0.25).abs() < 1e-9);
        // Zooming out past the whole track gives the whole track.
        assert_eq!(zoomed.zoom(50.0, 0.01, 100.0), whole);
        assert!(whole.is_whole(100.0) && !zoomed.is_whole(100.0));
        // The narrowest window is MIN_WINDOW_SECS.
        let narrow = whole.zoom(10.0, 1e9, 100.0);
        assert!((narrow.len_secs() - MIN_WINDOW_SECS).abs() < 1e-9);
        // Near the end the window is pushed back inside.
        let end = whole.zoom(100.0, 10.0, 100.0);
        assert!((end.end_secs - 100.0).abs() < 1e-9 && (end.len_secs() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn panning_stops_at_the_ends() {
        let window = TimeWindow {
            start_secs: 10.0,
            end_secs: 20.0,
        };
        assert_eq!(window.pan(5.0, 100.0).start_secs, 15.0);
        let left = window.pan(-50.0, 100.0);
        assert_eq!((left.start_secs, left.end_secs), (0.0, 10.0));
        let right = window.pan(500.0, 100.0);
        assert_eq!((right.start_secs, right.end_secs), (90.0, 100.0));
    }

    #[test]
    fn frame_zoom_keeps_the_pixel_under_the_pointer() {
        let viewport = Rect::from_min_size(pos2(100.0, 50.0), vec2(400.0, 300.0));
        let image = vec2(1280.0, 720.0);
        let fit = FrameView::default();
        let rect = fit.image_rect(viewport, image);
        assert!(
            (rect.width() - 400.0).abs() < 1e-3,
            "fit by width: {rect:?}"
        );
        assert!((rect.center() - viewport.center()).length() < 1e-3);

        let pointer = pos2(180.0, 120.0);
        let pixel = |view: &FrameView| {
            let rect = view.image_rect(viewport, image);
            (pointer - rect.min) / rect.width() * image.x
        };
        let zoomed = fit.zoom_about(viewport, image, pointer, 3.0);
        assert!(!zoomed.fit);
        assert!((pixel(&fit) - pixel(&zoomed)).length() < 1e-2);
        let back = zoomed.zoom_about(viewport, image, pointer, 0.5);
        assert!((pixel(&fit) - pixel(&back)).length() < 1e-2);

        let panned = zoomed.pan(viewport, image, vec2(10.0, -4.0));
        let moved = panned.image_rect(viewport, image).min - zoomed.image_rect(viewport, image).min;
        assert!((moved - vec2(10.0, -4.0)).length() < 1e-3);

        let one = zoomed.one_to_one(viewport, image, 2.0);
        assert!((one.percent(viewport, image, 2.0) - 100.0).abs() < 1e-3);
    }

    #[test]
    fn frequency_axes_and_labels() {
        let linear = FreqAxis::Linear { max_hz: 24_000.0 };
        assert_eq!(freq_at(linear, 0.0), 24_000.0);
        assert_eq!(freq_at(linear, 1.0), 0.0);
        assert_eq!(fraction_of_freq(linear, 12_000.0), Some(0.5));
        assert_eq!(
            freq_ticks(linear, 6),
            vec![0.0, 5000.0, 10000.0, 15000.0, 20000.0]
        );

        let log = FreqAxis::Log {
            min_hz: 20.0,
            max_hz: 20_000.0,
        };
        assert!((freq_at(log, 0.5) - 632.455).abs() < 0.01);
        assert!((fraction_of_freq(log, 632.455).unwrap() - 0.5).abs() < 1e-4);
        assert_eq!(fraction_of_freq(log, 10.0), None);
        assert_eq!(freq_ticks(log, 12).len(), 10);
        assert_eq!(freq_ticks(log, 4), vec![100.0, 1000.0, 10_000.0]);

        assert_eq!(format_hz(440.0), "440 Hz");
        assert_eq!(format_hz(2000.0), "2 kHz");
        assert_eq!(format_hz(12_500.0), "12.5 kHz");
    }

    #[test]
    fn time_ticks_and_labels() {
        let window = TimeWindow {
            start_secs: 0.3,
            end_secs: 2.1,
        };
        assert_eq!(nice_step(1.8, 5), 0.5);
        assert_eq!(time_ticks(window, 5), vec![0.5, 1.0, 1.5, 2.0]);
        assert_eq!(format_time(65.0, 10.0), "1:05");
        assert_eq!(format_time(1.25, 0.05), "0:01.25");
        assert_eq!(format_time(59.999, 1.0), "1:00");
    }
}
