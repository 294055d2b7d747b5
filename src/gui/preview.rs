//! The preview panel's state and logic, apart from its drawing (`preview_ui.rs`) and its
//! geometry (`preview_view.rs`): which file is shown, what ffprobe said about it, the timeline
//! cursor, the before/after view (zoom, pan), the spectrogram's time window, the requests in
//! flight and the textures of their answers.
//!
//! Requests go out from [`PreviewPanel::update`], once per frame, by comparing what should be
//! shown with what was last asked for: a cursor dragged along the timeline is asked for once
//! it rests for [`FRAME_SETTLE_SECS`] (key steps at once), a zoomed or panned spectrogram window
//! once it rests for [`WINDOW_SETTLE_SECS`]; while the worker has keyframe pictures, a dragged
//! cursor asks for them as it moves (approximate requests, one at a time). Answers are matched to the id of the current
//! request, so a late answer to an older one is dropped. Each answer is uploaded as a texture
//! once. The zoom state lives only as long as the window; the split position is a setting.

use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender};
use egui::{Rect, Vec2};

use super::preview_view::{FrameView, TimeWindow};
use super::source::PreviewSource;
use super::state::{OutputSize, UserSettings};
use crate::preview::{PreviewReply, PreviewRequest, RgbaImage};
use crate::spectrum::{FreqAxis, Spectrogram, Transform};

/// A dragged timeline cursor is requested once it rests this long.
pub const FRAME_SETTLE_SECS: f64 = 0.08;
/// A zoomed or panned spectrogram window is requested once it rests this long.
pub const WINDOW_SETTLE_SECS: f64 = 0.1;
/// Size of the whole-track overview asked for when a file is selected.
pub const OVERVIEW_WIDTH: u32 = 2048;
pub const OVERVIEW_HEIGHT: u32 = 256;
/// The colour map's ends (dB, full scale = 0).
pub const FLOOR_DB: f32 = -90.0;
pub const CEIL_DB: f32 = 0.0;
/// What the timeline needs to know about a file (from ffprobe).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaFacts {
    pub duration_secs: f64,
    pub frame_rate: f64,
    pub frame_count: u64,
    /// Display size of the source.
    pub width: u32,
    pub height: u32,
    pub has_audio: bool,
}

impl MediaFacts {
    pub fn from_info(info: &crate::media::probe::MediaInfo) -> Self {
        let video = &info.video;
        let duration = info
            .duration_secs
            .or(video.duration_secs)
            .filter(|d| d.is_finite() && *d > 0.0);
        let rate = video.frame_rate().filter(|r| r.is_finite() && *r > 0.0);
        let counted = video.frame_count.filter(|n| *n > 0);
        let frame_rate = match (rate, counted, duration) {
            (Some(rate), _, _) => rate,
            (None, Some(count), Some(duration)) => count as f64 / duration,
            // Nothing says: a common rate keeps Shift+arrow steps about a second.
            _ => 25.0,
        };
        let frame_count = counted
            .or_else(|| duration.map(|d| (d * frame_rate).round().max(1.0) as u64))
            .unwrap_or(1);
        let duration_secs = duration.unwrap_or(frame_count as f64 / frame_rate);
        let (width, height) = video.display_size();
        Self {
            duration_secs,
            frame_rate,
            frame_count,
            width,
            height,
            has_audio: !info.audio.is_empty(),
        }
    }

    pub fn last_frame(&self) -> u64 {
        self.frame_count.saturating_sub(1)
    }

    /// Approximate time of a frame (the worker's answer carries the exact one).
    pub fn time_of(&self, frame_index: u64) -> f64 {
        frame_index as f64 / self.frame_rate
    }

    pub fn frame_at(&self, secs: f64) -> u64 {
        let frame = (secs.max(0.0) * self.frame_rate).round() as u64;
        frame.min(self.last_frame())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeState {
    Probing,
    Ready(MediaFacts),
    Failed(String),
}

/// What the frame request depends on.
#[derive(Debug, Clone, PartialEq)]
struct FrameKey {
    input: PathBuf,
    frame_index: u64,
    engine: String,
    scale: f64,
    denoise: Option<u8>,
    models_dir: Option<PathBuf>,
    /// A keyframe picture is enough (sent while the cursor is dragged).
    approximate: bool,
}

/// The before/after pair of the current frame, as textures.
pub struct FrameTextures {
    pub before: egui::TextureHandle,
    /// `None` while a frame engine is still making it: the after side shows "pending" and
    /// never another frame's result.
    pub after: Option<egui::TextureHandle>,
    /// Size of the after image in pixels (expected from the scale while it is pending): the
    /// coordinates both are drawn in.
    pub size: Vec2,
    pub before_size: Vec2,
    pub frame_index: u64,
    pub time_secs: f64,
    /// `Some(k)`: "before" is a smaller picture of keyframe `k` shown until frame
    /// `frame_index` is decoded (labelled so; `after` is then `None`).
    pub approximate_of: Option<u64>,
}

impl FrameTextures {
    /// True when these are frame `frame_index`'s own images (not an approximation).
    pub fn is_exact_for(&self, frame_index: u64) -> bool {
        self.frame_index == frame_index && self.approximate_of.is_none()
    }
}

/// One spectrogram answer, as a texture with what its pixels mean.
pub struct SpecTexture {
    pub texture: egui::TextureHandle,
    pub start_secs: f64,
    pub end_secs: f64,
    pub freq_axis: FreqAxis,
    pub transform: Transform,
    /// Share of the columns filled (an overview still streaming is < 1).
    pub done_fraction: f32,
}

/// Which texture a painted spectrogram layer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    Overview,
    Detail,
}

/// Where the panel's parts were drawn last frame (requests are sized from these; tests
/// point at them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreviewLayout {
    pub frame: Option<Rect>,
    pub split_x: Option<f32>,
    pub timeline: Option<Rect>,
    pub spectrum: Option<Rect>,
    /// Spectrogram layers painted, bottom first: the texture and the screen rect it was
    /// stretched to (which may reach beyond the panel; it is clipped).
    pub spectrum_layers: Vec<(LayerKind, Rect)>,
}

type ProbeResult = (PathBuf, Result<MediaFacts, String>);

pub struct PreviewPanel {
    source: Box<dyn PreviewSource>,
    probe_tx: Sender<ProbeResult>,
    probe_rx: Receiver<ProbeResult>,
    pub input: Option<PathBuf>,
    pub probe: Option<ProbeState>,
    /// The timeline cursor.
    pub cursor: u64,
    /// egui time at which a moved cursor is requested.
    seek_due: Option<f64>,
    frame_sent: Option<FrameKey>,
    frame_request: Option<u64>,
    /// The worker answered an approximate request with a keyframe picture for this input:
    /// while the cursor is dragged, pictures follow it.
    pictures_follow: bool,
    pub frame: Option<FrameTextures>,
    pub frame_error: Option<String>,
    pub view: FrameView,
    pub window: Option<TimeWindow>,
    window_changed_at: Option<f64>,
    overview_request: Option<u64>,
    pub overview: Option<SpecTexture>,
    detail_request: Option<(u64, TimeWindow)>,
    pub detail: Option<SpecTexture>,
    /// A window request is out and not answered.
    detail_waiting: bool,
    pub spectrum_error: Option<String>,
    /// Pixel size of the spectrogram area, for sizing window requests.
    pub spectrum_px: [u32; 2],
    pub layout: PreviewLayout,
}

impl PreviewPanel {
    pub fn new(source: Box<dyn PreviewSource>) -> Self {
        let (probe_tx, probe_rx) = crossbeam_channel::unbounded();
        Self {
            source,
            probe_tx,
            probe_rx,
            input: None,
            probe: None,
            cursor: 0,
            seek_due: None,
            frame_sent: None,
            frame_request: None,
            pictures_follow: false,
            frame: None,
            frame_error: None,
            view: FrameView::default(),
            window: None,
            window_changed_at: None,
            overview_request: None,
            overview: None,
            detail_request: None,
            detail: None,
            detail_waiting: false,
            spectrum_error: None,
            spectrum_px: [0, 0],
            layout: PreviewLayout::default(),
        }
    }

    pub fn facts(&self) -> Option<&MediaFacts> {
        match &self.probe {
            Some(ProbeState::Ready(facts)) => Some(facts),
            _ => None,
        }
    }

    /// True while the frame at the cursor has been asked for and not answered.
    pub fn frame_pending(&self) -> bool {
        self.frame_request.is_some() || self.seek_due.is_some()
    }

    /// True while a spectrogram (overview or window) has been asked for and not answered.
    pub fn spectrum_pending(&self) -> bool {
        self.detail_waiting
            || self.window_changed_at.is_some()
            || self.overview_request.is_some()
                && self.overview.is_none()
                && self.spectrum_error.is_none()
    }

    /// Moves the cursor; `immediate` asks at once, else once the cursor rests.
    pub fn seek(&mut self, frame_index: u64, immediate: bool, now: f64) {
        let last = self.facts().map_or(0, MediaFacts::last_frame);
        self.cursor = frame_index.min(last);
        self.seek_due = Some(if immediate {
            now
        } else {
            now + FRAME_SETTLE_SECS
        });
    }

    /// A new spectrogram window; asked for once it rests.
    pub fn set_window(&mut self, window: TimeWindow, now: f64) {
        let Some(facts) = self.facts() else {
            return;
        };
        if window.is_whole(facts.duration_secs) {
            self.window = Some(TimeWindow::whole(facts.duration_secs));
            self.window_changed_at = None;
            self.detail_request = None;
            self.detail = None;
            self.detail_waiting = false;
        } else {
            self.window = Some(window);
            self.window_changed_at = Some(now);
        }
    }

    /// Asks again for what failed (a crashed worker is started afresh by the next request).
    pub fn retry(&mut self, now: f64) {
        if self.frame_error.take().is_some() {
            self.frame_sent = None;
        }
        if self.spectrum_error.take().is_some() {
            if self.overview.is_none() {
                self.overview_request = None;
            }
            if self.detail_request.take().is_some() {
                self.window_changed_at = Some(now - WINDOW_SETTLE_SECS);
            }
        }
    }

    pub fn shutdown(&mut self) {
        self.source.shutdown();
    }

    /// Reads answers and sends what is due. `now` is egui's time; returns the seconds until
    /// something else falls due (the caller asks for a repaint then).
    pub fn update(
        &mut self,
        ctx: &egui::Context,
        now: f64,
        selected: Option<&Path>,
        settings: &UserSettings,
        engines: &[crate::engine::EngineInfo],
    ) -> Option<f64> {
        if self.input.as_deref() != selected {
            self.select(ctx, selected.map(Path::to_owned));
        }
        while let Ok((path, result)) = self.probe_rx.try_recv() {
            if self.input.as_ref() == Some(&path) {
                self.on_probe(result);
            }
        }
        for (id, reply) in self.source.poll() {
            self.on_reply(ctx, id, reply);
        }
        let facts = self.facts().cloned()?;
        let input = self.input.clone()?;
        let mut next_due: Option<f64> = None;
        let mut due_in = |secs: f64| {
            next_due = Some(next_due.map_or(secs, |d: f64| d.min(secs)));
        };

        // The frame at the cursor with the panel's engine settings.
        let key = FrameKey {
            input: input.clone(),
            frame_index: self.cursor,
            engine: settings.engine.clone(),
            scale: match settings.size {
                OutputSize::Scale(scale) => scale,
                OutputSize::Height(height) => f64::from(height) / f64::from(facts.height.max(1)),
            },
            denoise: settings.denoise_for(engines),
            models_dir: settings.models_dir.clone(),
            approximate: false,
        };
        match self.seek_due {
            Some(due) if due > now => {
                // The cursor moves: keyframe pictures follow it, one request at a time, once
                // the worker has them; the exact frame when the cursor rests.
                let approximate = FrameKey {
                    approximate: true,
                    ..key.clone()
                };
                let shown = self
                    .frame
                    .as_ref()
                    .is_some_and(|f| f.is_exact_for(key.frame_index));
                if self.pictures_follow
                    && self.frame_request.is_none()
                    && !shown
                    && self.frame_sent.as_ref() != Some(&approximate)
                    && self.frame_sent.as_ref() != Some(&key)
                {
                    self.send_frame(approximate);
                }
                due_in(due - now);
            }
            _ => {
                self.seek_due = None;
                if self.frame_sent.as_ref() != Some(&key) {
                    self.send_frame(key);
                }
            }
        }

        // The spectrogram: the overview once, the window once it rests.
        if facts.has_audio {
            if self.overview_request.is_none() {
                self.overview_request = Some(self.source.request(PreviewRequest::Overview {
                    input: input.clone(),
                    width: OVERVIEW_WIDTH,
                    height: OVERVIEW_HEIGHT,
                }));
            }
            if let (Some(window), Some(changed)) = (self.window, self.window_changed_at) {
                let [width, height] = self.spectrum_px;
                if now - changed < WINDOW_SETTLE_SECS {
                    due_in(changed + WINDOW_SETTLE_SECS - now);
                } else if width > 0 && height > 0 {
                    self.window_changed_at = None;
                    if self.detail_request.map(|(_, w)| w) != Some(window) {
                        let id = self.source.request(PreviewRequest::Spectrogram {
                            input,
                            start_secs: window.start_secs,
                            end_secs: window.end_secs,
                            width,
                            height,
                        });
                        self.detail_request = Some((id, window));
                        self.detail_waiting = true;
                    }
                }
            }
        }
        next_due
    }

    fn send_frame(&mut self, key: FrameKey) {
        let id = self.source.request(PreviewRequest::Frame {
            input: key.input.clone(),
            frame_index: key.frame_index,
            engine: key.engine.clone(),
            scale: key.scale,
            denoise: key.denoise,
            models_dir: key.models_dir.clone(),
            approximate: key.approximate,
        });
        self.frame_request = Some(id);
        self.frame_sent = Some(key);
    }

    fn select(&mut self, ctx: &egui::Context, input: Option<PathBuf>) {
        let source = std::mem::replace(&mut self.source, Box::new(NoSource));
        *self = Self {
            source,
            probe_tx: self.probe_tx.clone(),
            probe_rx: self.probe_rx.clone(),
            ..Self::new(Box::new(NoSource))
        };
        self.input = input.clone();
        let Some(input) = input else {
            return;
        };
        self.probe = Some(ProbeState::Probing);
        let tx = self.probe_tx.clone();
        let i18n = crate::i18n::Localizer::of(ctx);
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("gui-preview-probe".into())
            .spawn(move || {
                let result = crate::media::tools::Tools::locate()
                    .map_err(|error| format!("{error:#}"))
                    .and_then(|tools| {
                        crate::media::probe::probe(&tools, &input)
                            .map(|info| MediaFacts::from_info(&info))
                            .map_err(|error| error.to_string())
                    });
                let _ = tx.send((input, result));
                ctx.request_repaint();
            });
        if let Err(error) = spawned {
            self.probe = Some(ProbeState::Failed(crate::i18n::tr!(
                i18n,
                "preview-probe-failed",
                error = error.to_string()
            )));
        }
    }

    fn on_probe(&mut self, result: Result<MediaFacts, String>) {
        match result {
            Ok(facts) => {
                self.window = Some(TimeWindow::whole(facts.duration_secs));
                self.cursor = self.cursor.min(facts.last_frame());
                self.probe = Some(ProbeState::Ready(facts));
            }
            Err(message) => self.probe = Some(ProbeState::Failed(message)),
        }
    }

    fn on_reply(&mut self, ctx: &egui::Context, id: u64, reply: PreviewReply) {
        let is_frame = self.frame_request == Some(id);
        let is_overview = self.overview_request == Some(id);
        let is_detail = self
            .detail_request
            .is_some_and(|(current, _)| current == id);
        match reply {
            PreviewReply::Frame {
                before,
                after,
                frame_index,
                time_secs,
            } if is_frame => {
                self.frame_request = None;
                let max_side = ctx.input(|i| i.max_texture_side);
                match (color_image(before, max_side), color_image(after, max_side)) {
                    (Ok(before), Ok(after)) => {
                        let size = |image: &egui::ColorImage| {
                            Vec2::new(image.size[0] as f32, image.size[1] as f32)
                        };
                        let (before_size, after_size) = (size(&before), size(&after));
                        self.frame = Some(FrameTextures {
                            before: ctx.load_texture("preview-before", before, FRAME_FILTER),
                            after: Some(ctx.load_texture("preview-after", after, FRAME_FILTER)),
                            size: after_size,
                            before_size,
                            frame_index,
                            time_secs,
                            approximate_of: None,
                        });
                        self.frame_error = None;
                    }
                    (Err(error), _) | (_, Err(error)) => self.frame_error = Some(error),
                }
            }
            PreviewReply::FrameBefore {
                before,
                frame_index,
                time_secs,
            } if is_frame => self.show_pending(ctx, before, None, frame_index, time_secs, None),
            PreviewReply::FrameApprox {
                picture,
                display,
                frame_index,
                picture_index,
                time_secs,
                done,
            } if is_frame => {
                self.pictures_follow = true;
                if done {
                    self.frame_request = None;
                }
                // Never over the frame's own images.
                if self
                    .frame
                    .as_ref()
                    .is_some_and(|f| f.is_exact_for(frame_index))
                {
                    return;
                }
                let display = Vec2::new(display.0 as f32, display.1 as f32);
                self.show_pending(
                    ctx,
                    picture,
                    Some(display),
                    frame_index,
                    time_secs,
                    Some(picture_index),
                );
            }
            PreviewReply::Overview(spectrogram) if is_overview => {
                match spec_texture(ctx, "preview-overview", &spectrogram) {
                    Ok(texture) => {
                        self.overview = Some(texture);
                        self.spectrum_error = None;
                    }
                    Err(error) => self.spectrum_error = Some(error),
                }
            }
            PreviewReply::Spectrogram(spectrogram) if is_detail => {
                self.detail_waiting = false;
                match spec_texture(ctx, "preview-spectrogram", &spectrogram) {
                    Ok(texture) => {
                        self.detail = Some(texture);
                        self.spectrum_error = None;
                    }
                    Err(error) => self.spectrum_error = Some(error),
                }
            }
            PreviewReply::Error { message } if is_frame => {
                self.frame_request = None;
                self.frame_error = Some(message);
            }
            PreviewReply::Error { message } if is_overview || is_detail => {
                if is_detail {
                    // Asking again for the same window after an error needs a new change.
                    self.detail_request = self.detail_request.map(|(_, w)| (u64::MAX, w));
                    self.detail_waiting = false;
                }
                self.spectrum_error = Some(message);
            }
            // An answer to a request that has been superseded: never shown.
            _ => log::debug!("preview answer {id} is stale; dropped"),
        }
    }

    /// Shows `image` on the before side with the after side pending: the frame itself ahead of
    /// a slow engine's result, or a smaller keyframe picture (`approximate_of`) standing in for
    /// the frame, drawn at the frame's `before_size`.
    fn show_pending(
        &mut self,
        ctx: &egui::Context,
        image: RgbaImage,
        before_size: Option<Vec2>,
        frame_index: u64,
        time_secs: f64,
        approximate_of: Option<u64>,
    ) {
        let max_side = ctx.input(|i| i.max_texture_side);
        match color_image(image, max_side) {
            Ok(image) => {
                let before_size =
                    before_size.unwrap_or(Vec2::new(image.size[0] as f32, image.size[1] as f32));
                let scale = self.frame_sent.as_ref().map_or(1.0, |key| key.scale);
                self.frame = Some(FrameTextures {
                    before: ctx.load_texture("preview-before", image, FRAME_FILTER),
                    after: None,
                    size: before_size * scale as f32,
                    before_size,
                    frame_index,
                    time_secs,
                    approximate_of,
                });
                self.frame_error = None;
            }
            Err(error) => self.frame_error = Some(error),
        }
    }
}

/// Before/after: smooth when shrunk, square pixels when enlarged (pixel peeping).
const FRAME_FILTER: egui::TextureOptions = egui::TextureOptions {
    magnification: egui::TextureFilter::Nearest,
    minification: egui::TextureFilter::Linear,
    wrap_mode: egui::TextureWrapMode::ClampToEdge,
    mipmap_mode: None,
};

/// Checks an image from the worker and shrinks it (by whole factors) to fit a texture.
pub fn color_image(image: RgbaImage, max_side: usize) -> Result<egui::ColorImage, String> {
    let (width, height) = (image.width as usize, image.height as usize);
    if width == 0 || height == 0 || image.pixels.len() != width * height * 4 {
        return Err(format!(
            "the preview worker sent a malformed image ({width}×{height}, {} bytes)",
            image.pixels.len()
        ));
    }
    let factor = width.max(height).div_ceil(max_side.max(1)).max(1);
    if factor == 1 {
        return Ok(egui::ColorImage::from_rgba_unmultiplied(
            [width, height],
            &image.pixels,
        ));
    }
    let (out_w, out_h) = (width.div_ceil(factor), height.div_ceil(factor));
    let mut out = Vec::with_capacity(out_w * out_h * 4);
    for y in 0..out_h {
        for x in 0..out_w {
            let mut sum = [0u32; 4];
            let mut n = 0u32;
            for sy in y * factor..((y + 1) * factor).min(height) {
                for sx in x * factor..((x + 1) * factor).min(width) {
                    let at = (sy * width + sx) * 4;
                    for (c, total) in sum.iter_mut().enumerate() {
                        *total += u32::from(image.pixels[at + c]);
                    }
                    n += 1;
                }
            }
            out.extend(sum.iter().map(|total| (total / n.max(1)) as u8));
        }
    }
    Ok(egui::ColorImage::from_rgba_unmultiplied(
        [out_w, out_h],
        &out,
    ))
}

fn spec_texture(
    ctx: &egui::Context,
    name: &str,
    spectrogram: &Spectrogram,
) -> Result<SpecTexture, String> {
    let image = RgbaImage {
        width: spectrogram.width as u32,
        height: spectrogram.height as u32,
        pixels: spectrogram.to_rgba(FLOOR_DB, CEIL_DB),
    };
    let max_side = ctx.input(|i| i.max_texture_side);
    let image = color_image(image, max_side)?;
    let done_fraction = if spectrogram.width == 0 {
        0.0
    } else {
        (spectrogram.columns_done.min(spectrogram.width) as f32) / spectrogram.width as f32
    };
    Ok(SpecTexture {
        texture: ctx.load_texture(name, image, egui::TextureOptions::LINEAR),
        start_secs: spectrogram.start_secs,
        end_secs: spectrogram.end_secs,
        freq_axis: spectrogram.freq_axis,
        transform: spectrogram.transform,
        done_fraction,
    })
}

/// Stands in for the real source while the panel is being reset.
struct NoSource;

impl PreviewSource for NoSource {
    fn request(&mut self, _request: PreviewRequest) -> u64 {
        0
    }

    fn poll(&mut self) -> Vec<(u64, PreviewReply)> {
        Vec::new()
    }

    fn shutdown(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_images_are_shrunk_to_fit_a_texture_and_bad_ones_refused() {
        let image = RgbaImage {
            width: 5,
            height: 3,
            pixels: [200, 200, 200, 255].repeat(5 * 3),
        };
        let shrunk = color_image(image, 2).unwrap();
        assert_eq!(shrunk.size, [2, 1]);
        assert_eq!(shrunk.pixels[0].r(), 200);
        let bad = RgbaImage {
            width: 4,
            height: 4,
            pixels: vec![0; 7],
        };
        assert!(color_image(bad, 64).unwrap_err().contains("malformed"));
    }

    #[test]
    fn facts_count_frames_from_duration_when_the_container_does_not() {
        let facts = MediaFacts {
            duration_secs: 2.0,
            frame_rate: 24.0,
            frame_count: 48,
            width: 320,
            height: 180,
            has_audio: false,
        };
        assert_eq!(facts.last_frame(), 47);
        assert_eq!(facts.frame_at(1.0), 24);
        assert_eq!(facts.frame_at(99.0), 47);
        assert!((facts.time_of(12) - 0.5).abs() < 1e-12);
    }
}
