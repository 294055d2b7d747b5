//! Drawing of the preview panel (DESIGN §5): the before/after frame with its split line, the
//! timeline under it and the audio spectrogram under that. It reads `App::preview` and returns
//! [`Command`]s for everything the user changes; the only thing it writes is where it drew
//! (`PreviewLayout`, `spectrum_px`), which sizes the next requests.

use egui::{Align2, Color32, FontId, Pos2, Rect, RichText, Sense, Stroke, Ui, Vec2, pos2, vec2};

use super::app::App;
use super::command::Command;
use super::panels::{RED, format_duration};
use super::preview::{
    CEIL_DB, FLOOR_DB, LayerKind, MediaFacts, PreviewPanel, ProbeState, SpecTexture,
};
use super::preview_view::{
    FrameView, TimeWindow, format_hz, format_time, fraction_of_freq, freq_at, freq_ticks,
    nice_step, time_ticks,
};
use crate::i18n::{Localizer, tr};
use crate::spectrum::{FreqAxis, Spectrogram, Transform};

/// The keyboard and mouse help shown on the panel's "Keys" label: (keys, what they do).
pub fn shortcuts_help(i18n: &Localizer) -> Vec<(String, String)> {
    vec![
        (tr!(i18n, "keys-frame"), tr!(i18n, "keys-frame-what")),
        (tr!(i18n, "keys-second"), tr!(i18n, "keys-second-what")),
        (tr!(i18n, "keys-ends"), tr!(i18n, "keys-ends-what")),
        (tr!(i18n, "keys-wheel"), tr!(i18n, "keys-wheel-what")),
        (
            tr!(i18n, "keys-drag-frame"),
            tr!(i18n, "keys-drag-frame-what"),
        ),
        (
            tr!(i18n, "keys-drag-split"),
            tr!(i18n, "keys-drag-split-what"),
        ),
        (tr!(i18n, "keys-timeline"), tr!(i18n, "keys-timeline-what")),
        (
            tr!(i18n, "keys-spectrum-zoom"),
            tr!(i18n, "keys-spectrum-zoom-what"),
        ),
        (
            tr!(i18n, "keys-spectrum-pan"),
            tr!(i18n, "keys-spectrum-pan-what"),
        ),
        (
            tr!(i18n, "keys-spectrum-click"),
            tr!(i18n, "keys-spectrum-click-what"),
        ),
        (tr!(i18n, "keys-space"), tr!(i18n, "keys-space-what")),
        (tr!(i18n, "keys-delete"), tr!(i18n, "keys-delete-what")),
        (tr!(i18n, "keys-open"), tr!(i18n, "keys-open-what")),
    ]
}

const TIMELINE_HEIGHT: f32 = 40.0;
const FREQ_AXIS_WIDTH: f32 = 58.0;
const LEGEND_WIDTH: f32 = 62.0;
const TIME_AXIS_HEIGHT: f32 = 16.0;
/// Points one wheel "line" is worth.
const POINTS_PER_LINE: f32 = 40.0;
/// Zoom per point of wheel movement.
const WHEEL_ZOOM_PER_POINT: f32 = 0.005;

pub fn preview_ui(ui: &mut Ui, app: &mut App, commands: &mut Vec<Command>) {
    let i18n = std::sync::Arc::clone(&app.i18n);
    let previous_frame_rect = std::mem::take(&mut app.preview.layout).frame;
    let facts = match &app.preview.probe {
        None => return,
        Some(ProbeState::Probing) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new(tr!(i18n, "preview-reading-file")).weak());
            });
            return;
        }
        Some(ProbeState::Failed(message)) => {
            ui.label(RichText::new(tr!(i18n, "preview-unreadable")).color(RED));
            ui.add(egui::Label::new(RichText::new(message).weak()).wrap());
            return;
        }
        Some(ProbeState::Ready(facts)) => facts.clone(),
    };
    let split = app.settings.preview_split;
    toolbar_ui(ui, &app.preview, previous_frame_rect, &facts, commands);
    let spacing = ui.spacing().item_spacing.y;
    let spectrum_height = (ui.available_height() * 0.3).clamp(110.0, 220.0);
    let frame_height =
        (ui.available_height() - TIMELINE_HEIGHT - spectrum_height - 2.0 * spacing).max(80.0);
    frame_ui(ui, &mut app.preview, split, frame_height, commands);
    timeline_ui(ui, &mut app.preview, &facts, commands);
    spectrum_ui(ui, &mut app.preview, &facts, spectrum_height, commands);
}

fn toolbar_ui(
    ui: &mut Ui,
    preview: &PreviewPanel,
    frame_rect: Option<Rect>,
    facts: &MediaFacts,
    commands: &mut Vec<Command>,
) {
    let i18n = Localizer::of(ui.ctx());
    ui.horizontal(|ui| {
        let image = preview.frame.as_ref().map(|frame| frame.size);
        let fit = ui
            .selectable_label(preview.view.fit, tr!(i18n, "preview-fit"))
            .on_hover_text(tr!(i18n, "preview-fit-hint"));
        if fit.clicked() {
            commands.push(Command::SetFrameView(FrameView::default()));
        }
        let one = ui
            .button("1:1")
            .on_hover_text(tr!(i18n, "preview-one-to-one-hint"));
        let ppp = ui.ctx().pixels_per_point();
        if one.clicked() {
            let viewport =
                frame_rect.unwrap_or(Rect::from_min_size(Pos2::ZERO, vec2(640.0, 360.0)));
            let image = image.unwrap_or(vec2(facts.width as f32, facts.height as f32));
            commands.push(Command::SetFrameView(
                preview.view.one_to_one(viewport, image, ppp),
            ));
        }
        if let (Some(viewport), Some(image)) = (frame_rect, image) {
            let percent = preview.view.percent(viewport, image, ppp);
            ui.label(RichText::new(format!("{percent:.0}%")).monospace().weak());
        }
        ui.separator();
        let time = match &preview.frame {
            Some(frame) if frame.frame_index == preview.cursor => frame.time_secs,
            _ => facts.time_of(preview.cursor),
        };
        ui.label(tr!(
            i18n,
            "preview-position",
            frame = preview.cursor + 1,
            frames = facts.frame_count,
            time = format_time(time, 0.01),
            duration = format_duration(facts.duration_secs)
        ));
        if preview.frame_pending() {
            ui.spinner();
        }
        if (preview.frame_error.is_some() || preview.spectrum_error.is_some())
            && ui
                .small_button(tr!(i18n, "preview-try-again"))
                .on_hover_text(tr!(i18n, "preview-try-again-hint"))
                .clicked()
        {
            commands.push(Command::RetryPreview);
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(RichText::new(tr!(i18n, "preview-keys")).weak())
                .on_hover_ui(|ui| shortcuts_ui(ui, &i18n));
        });
    });
}

fn shortcuts_ui(ui: &mut Ui, i18n: &Localizer) {
    egui::Grid::new("shortcuts").num_columns(2).show(ui, |ui| {
        for (keys, what) in shortcuts_help(i18n) {
            ui.label(RichText::new(keys).strong());
            ui.label(what);
            ui.end_row();
        }
    });
}

/// "≈ keyframe, 17 frames before": what an approximate picture shows, from where.
pub fn approximate_label(i18n: &Localizer, keyframe: u64, frame_index: u64) -> String {
    let frames = keyframe.abs_diff(frame_index);
    match keyframe.cmp(&frame_index) {
        std::cmp::Ordering::Less => tr!(i18n, "preview-approx-before", frames = frames),
        std::cmp::Ordering::Greater => tr!(i18n, "preview-approx-after", frames = frames),
        std::cmp::Ordering::Equal => tr!(i18n, "preview-approx-same"),
    }
}

/// A message in the middle of `rect` (a label, so that screen readers and tests find it).
fn centered_message(ui: &mut Ui, rect: Rect, text: &str, color: Color32) {
    let line = Rect::from_center_size(rect.center(), vec2(rect.width() - 16.0, 40.0));
    overlay_label(
        ui,
        line,
        egui::Label::new(RichText::new(text).size(14.0).color(color))
            .selectable(false)
            .wrap(),
    );
}

/// A label placed over what is already drawn, without taking room in the layout.
fn overlay_label(ui: &mut Ui, rect: Rect, label: egui::Label) {
    let mut child = ui.new_child(egui::UiBuilder::new().max_rect(rect).layout(
        egui::Layout::centered_and_justified(egui::Direction::TopDown),
    ));
    child.add(label);
}

/// Sum of this frame's wheel movement (in points) while the pointer is over `rect`, with the
/// modifiers held.
fn wheel_over(ui: &Ui, rect: Rect) -> Option<(Vec2, egui::Modifiers, Pos2)> {
    let pointer = ui.ctx().pointer_hover_pos()?;
    if !rect.contains(pointer) || !ui.rect_contains_pointer(rect) {
        return None;
    }
    ui.input(|input| {
        let mut total = Vec2::ZERO;
        let mut modifiers = input.modifiers;
        for event in &input.events {
            if let egui::Event::MouseWheel {
                unit,
                delta,
                modifiers: held,
                ..
            } = event
            {
                total += match unit {
                    egui::MouseWheelUnit::Point => *delta,
                    egui::MouseWheelUnit::Line => *delta * POINTS_PER_LINE,
                    egui::MouseWheelUnit::Page => *delta * rect.height(),
                };
                modifiers = *held;
            }
        }
        (total != Vec2::ZERO).then_some((total, modifiers, pointer))
    })
}

fn frame_ui(
    ui: &mut Ui,
    preview: &mut PreviewPanel,
    split: f32,
    height: f32,
    commands: &mut Vec<Command>,
) {
    let size = vec2(ui.available_width(), height);
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    let response = ui
        .interact(
            rect,
            egui::Id::unique("preview-frame"),
            Sense::click_and_drag(),
        )
        .on_hover_cursor(egui::CursorIcon::Grab);
    let i18n = Localizer::of(ui.ctx());
    let label = tr!(i18n, "preview-before-after");
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    preview.layout.frame = Some(rect);
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, Color32::from_gray(18));
    let Some(frame) = &preview.frame else {
        let (text, color) = match &preview.frame_error {
            Some(error) => (error.clone(), RED),
            None => (tr!(i18n, "preview-preparing"), Color32::GRAY),
        };
        centered_message(ui, rect, &text, color);
        return;
    };
    let image_rect = preview.view.image_rect(rect, frame.size);
    let split_x = rect.left() + split.clamp(0.0, 1.0) * rect.width();
    let full_uv = Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0));
    let mut left = rect;
    left.max.x = split_x;
    let mut right = rect;
    right.min.x = split_x;
    // The smaller "before" is stretched onto the same output pixels as "after".
    painter
        .with_clip_rect(left)
        .image(frame.before.id(), image_rect, full_uv, Color32::WHITE);
    match &frame.after {
        Some(after) => {
            painter
                .with_clip_rect(right)
                .image(after.id(), image_rect, full_uv, Color32::WHITE);
        }
        None => {
            // The engine is still at work: its side shows the frame dimmed, and says so.
            painter.with_clip_rect(right).image(
                frame.before.id(),
                image_rect,
                full_uv,
                Color32::from_gray(70),
            );
            if split_x < rect.right() - 40.0 {
                let pending = Rect::from_min_max(pos2(split_x, rect.top()), rect.max);
                let text = match frame.approximate_of {
                    Some(_) => tr!(i18n, "preview-after-approximate"),
                    None => tr!(i18n, "preview-after-pending"),
                };
                centered_message(ui, pending, &text, Color32::from_gray(220));
            }
        }
    }

    // Split line and its handle.
    let handle_rect =
        Rect::from_center_size(pos2(split_x, rect.center().y), vec2(14.0, rect.height()));
    let handle = ui
        .interact(
            handle_rect,
            egui::Id::unique("preview-split"),
            Sense::drag(),
        )
        .on_hover_cursor(egui::CursorIcon::ResizeHorizontal)
        .on_hover_text(tr!(i18n, "preview-split-hint"));
    let label = tr!(i18n, "preview-split");
    handle.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Slider, true, &label));
    let active = handle.hovered() || handle.dragged();
    let line_color = if active {
        Color32::WHITE
    } else {
        Color32::from_white_alpha(200)
    };
    painter.line_segment(
        [pos2(split_x, rect.top()), pos2(split_x, rect.bottom())],
        Stroke::new(if active { 2.0 } else { 1.5 }, line_color),
    );
    painter.circle(
        pos2(split_x, rect.center().y),
        9.0,
        Color32::from_black_alpha(160),
        Stroke::new(1.5, line_color),
    );
    painter.text(
        pos2(split_x, rect.center().y),
        Align2::CENTER_CENTER,
        "↔",
        FontId::proportional(12.0),
        line_color,
    );
    preview.layout.split_x = Some(split_x);
    let badge = |pos: Pos2, align: Align2, text: String| {
        let galley = painter.layout_no_wrap(text, FontId::proportional(12.0), Color32::WHITE);
        let text_rect = align.anchor_size(pos, galley.size()).expand(4.0);
        painter.rect_filled(text_rect, 3.0, Color32::from_black_alpha(150));
        painter.galley(text_rect.min + vec2(4.0, 4.0), galley, Color32::WHITE);
    };
    if let Some(keyframe) = frame.approximate_of {
        // Said even when the split hides the before side: the whole picture is approximate.
        // A label (not only paint), so that screen readers and tests find it.
        let label = approximate_label(&i18n, keyframe, frame.frame_index);
        let font = FontId::proportional(12.0);
        let galley = painter.layout_no_wrap(label.clone(), font.clone(), Color32::WHITE);
        let text_rect = Align2::LEFT_TOP
            .anchor_size(rect.left_top() + vec2(10.0, 10.0), galley.size())
            .expand(4.0);
        painter.rect_filled(
            text_rect,
            3.0,
            Color32::from_rgba_unmultiplied(120, 80, 0, 200),
        );
        overlay_label(
            ui,
            text_rect,
            egui::Label::new(RichText::new(label).font(font).color(Color32::WHITE))
                .selectable(false),
        );
    } else if split_x > rect.left() + 40.0 {
        badge(
            rect.left_top() + vec2(10.0, 10.0),
            Align2::LEFT_TOP,
            tr!(
                i18n,
                "preview-before-size",
                width = frame.before_size.x,
                height = frame.before_size.y
            ),
        );
    }
    if split_x < rect.right() - 40.0 {
        badge(
            rect.right_top() + vec2(-10.0, 10.0),
            Align2::RIGHT_TOP,
            match frame.after {
                Some(_) => tr!(
                    i18n,
                    "preview-after-size",
                    width = frame.size.x,
                    height = frame.size.y
                ),
                None => tr!(
                    i18n,
                    "preview-after-pending-size",
                    width = frame.size.x,
                    height = frame.size.y
                ),
            },
        );
    }
    if let Some(error) = &preview.frame_error {
        badge(
            rect.left_bottom() + vec2(10.0, -10.0),
            Align2::LEFT_BOTTOM,
            error.clone(),
        );
    }

    // Interaction: split drag, wheel zoom, drag pan, double-click fit.
    if handle.dragged()
        && let Some(pointer) = handle.interact_pointer_pos()
    {
        let fraction = ((pointer.x - rect.left()) / rect.width().max(1.0)).clamp(0.0, 1.0);
        commands.push(Command::SetSplit(fraction));
    }
    if handle.drag_stopped() {
        commands.push(Command::SettingsChanged);
    }
    let mut view = preview.view;
    if let Some((delta, _, pointer)) = wheel_over(ui, rect) {
        let factor = ((delta.x + delta.y) * WHEEL_ZOOM_PER_POINT).exp();
        view = view.zoom_about(rect, frame.size, pointer, factor);
    }
    if response.dragged() {
        view = view.pan(rect, frame.size, response.drag_delta());
    }
    if response.double_clicked() {
        view = FrameView::default();
    }
    if view != preview.view {
        commands.push(Command::SetFrameView(view));
    }
}

fn timeline_ui(
    ui: &mut Ui,
    preview: &mut PreviewPanel,
    facts: &MediaFacts,
    commands: &mut Vec<Command>,
) {
    let (rect, response) = ui.allocate_exact_size(
        vec2(ui.available_width(), TIMELINE_HEIGHT),
        Sense::click_and_drag(),
    );
    let i18n = Localizer::of(ui.ctx());
    let label = tr!(i18n, "preview-timeline");
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Slider, true, &label));
    preview.layout.timeline = Some(rect);
    let track = Rect::from_min_max(
        pos2(rect.left() + FREQ_AXIS_WIDTH, rect.top() + 8.0),
        pos2(rect.right() - LEGEND_WIDTH, rect.top() + 14.0),
    );
    let last = facts.last_frame().max(1) as f32;
    let x_of = |frame: u64| track.left() + frame as f32 / last * track.width();
    let visuals = ui.visuals();
    let painter = ui.painter();
    painter.rect_filled(track, 3.0, visuals.widgets.inactive.bg_fill);
    let cursor_x = x_of(preview.cursor);
    painter.rect_filled(
        Rect::from_min_max(track.min, pos2(cursor_x, track.max.y)),
        3.0,
        visuals.selection.bg_fill,
    );
    let whole = TimeWindow::whole(facts.duration_secs);
    let max_ticks = (track.width() / 80.0).max(2.0) as usize;
    let step = nice_step(facts.duration_secs, max_ticks);
    for t in time_ticks(whole, max_ticks) {
        let x = track.left() + (t / facts.duration_secs.max(1e-9)) as f32 * track.width();
        painter.line_segment(
            [pos2(x, track.bottom() + 2.0), pos2(x, track.bottom() + 6.0)],
            Stroke::new(1.0, visuals.weak_text_color()),
        );
        painter.text(
            pos2(x, track.bottom() + 7.0),
            Align2::CENTER_TOP,
            format_time(t, step),
            FontId::proportional(11.0),
            visuals.weak_text_color(),
        );
    }
    // The part of the track the spectrogram shows.
    if let Some(window) = preview.window
        && !window.is_whole(facts.duration_secs)
    {
        let scale = track.width() / facts.duration_secs.max(1e-9) as f32;
        let shown = Rect::from_min_max(
            pos2(
                track.left() + window.start_secs as f32 * scale,
                track.top() - 3.0,
            ),
            pos2(
                track.left() + window.end_secs as f32 * scale,
                track.bottom() + 3.0,
            ),
        );
        painter.rect_stroke(
            shown,
            2.0,
            Stroke::new(1.0, visuals.text_color()),
            egui::StrokeKind::Outside,
        );
    }
    let cursor_color = if response.hovered() || response.dragged() {
        visuals.strong_text_color()
    } else {
        visuals.text_color()
    };
    painter.circle_filled(pos2(cursor_x, track.center().y), 7.0, cursor_color);
    let response = response
        .on_hover_cursor(egui::CursorIcon::PointingHand)
        .on_hover_text(tr!(i18n, "preview-timeline-hint"));
    if (response.dragged() || response.clicked())
        && let Some(pointer) = response.interact_pointer_pos()
    {
        let fraction = ((pointer.x - track.left()) / track.width().max(1.0)).clamp(0.0, 1.0);
        let frame_index = (fraction * last).round() as u64;
        if frame_index != preview.cursor || response.clicked() {
            commands.push(Command::Seek {
                frame_index: frame_index.min(facts.last_frame()),
                immediate: response.clicked(),
            });
        }
    }
    if response.drag_stopped() {
        // Released: the exact frame now, not once the cursor has rested.
        commands.push(Command::Seek {
            frame_index: preview.cursor,
            immediate: true,
        });
    }
}

fn spectrum_ui(
    ui: &mut Ui,
    preview: &mut PreviewPanel,
    facts: &MediaFacts,
    height: f32,
    commands: &mut Vec<Command>,
) {
    let (outer, response) =
        ui.allocate_exact_size(vec2(ui.available_width(), height), Sense::click_and_drag());
    let i18n = Localizer::of(ui.ctx());
    let label = tr!(i18n, "preview-spectrogram");
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    let plot = Rect::from_min_max(
        pos2(outer.left() + FREQ_AXIS_WIDTH, outer.top()),
        pos2(
            outer.right() - LEGEND_WIDTH,
            outer.bottom() - TIME_AXIS_HEIGHT,
        ),
    );
    preview.layout.spectrum = Some(plot);
    let ppp = ui.ctx().pixels_per_point();
    preview.spectrum_px = [
        (plot.width() * ppp).round().clamp(0.0, 4096.0) as u32,
        (plot.height() * ppp).round().clamp(0.0, 1024.0) as u32,
    ];
    let painter = ui.painter_at(outer);
    let plot_painter = ui.painter_at(plot);
    plot_painter.rect_filled(plot, 2.0, Color32::from_gray(12));
    let weak = ui.visuals().weak_text_color();
    let text_color = ui.visuals().text_color();
    if !facts.has_audio {
        centered_message(ui, plot, &tr!(i18n, "preview-no-audio"), weak);
        return;
    }
    let Some(window) = preview.window else {
        return;
    };

    // Layers: the overview under everything (never blank), the window's own answer on top,
    // each stretched to where its time span falls in the current window.
    let mut top: Option<&SpecTexture> = None;
    for (kind, layer) in [
        (LayerKind::Overview, preview.overview.as_ref()),
        (LayerKind::Detail, preview.detail.as_ref()),
    ] {
        if let Some(layer) = layer
            && let Some(full) = paint_layer(&plot_painter, plot, window, layer)
        {
            preview.layout.spectrum_layers.push((kind, full));
            top = Some(layer);
        }
    }
    match (top, &preview.spectrum_error) {
        (None, Some(error)) => centered_message(ui, plot, error, RED),
        (None, None) => centered_message(ui, plot, &tr!(i18n, "preview-reading-audio"), weak),
        (Some(_), Some(error)) => {
            let strip =
                Rect::from_min_max(plot.left_bottom() - vec2(0.0, 26.0), plot.right_bottom());
            plot_painter.rect_filled(strip, 0.0, Color32::from_black_alpha(170));
            overlay_label(
                ui,
                strip,
                egui::Label::new(RichText::new(error).color(RED))
                    .selectable(false)
                    .truncate(),
            );
        }
        (Some(_), None) => {}
    }
    if preview.spectrum_pending() && top.is_some() {
        plot_painter.text(
            plot.right_top() + vec2(-6.0, 4.0),
            Align2::RIGHT_TOP,
            tr!(i18n, "preview-computing"),
            FontId::proportional(11.0),
            Color32::from_white_alpha(180),
        );
    }

    // Frequency axis of what is on top; the transform in the corner.
    if let Some(layer) = top {
        let max_ticks = (plot.height() / 22.0).max(2.0) as usize;
        for hz in freq_ticks(layer.freq_axis, max_ticks) {
            let Some(fraction) = fraction_of_freq(layer.freq_axis, hz) else {
                continue;
            };
            let y = plot.top() + fraction * plot.height();
            painter.line_segment(
                [pos2(plot.left() - 4.0, y), pos2(plot.left(), y)],
                Stroke::new(1.0, weak),
            );
            painter.text(
                pos2(
                    plot.left() - 6.0,
                    y.clamp(plot.top() + 6.0, plot.bottom() - 6.0),
                ),
                Align2::RIGHT_CENTER,
                format_hz(hz),
                FontId::proportional(10.0),
                weak,
            );
        }
        let name = match (layer.transform, layer.freq_axis) {
            (Transform::Cwt, _) => tr!(i18n, "spectrum-cwt-log"),
            (Transform::Stft, FreqAxis::Log { .. }) => tr!(i18n, "spectrum-stft-log"),
            (Transform::Stft, FreqAxis::Linear { .. }) => tr!(i18n, "spectrum-stft-linear"),
        };
        let galley = plot_painter.layout_no_wrap(name, FontId::proportional(10.0), Color32::WHITE);
        let at = plot.left_top() + vec2(4.0, 4.0);
        plot_painter.rect_filled(
            Rect::from_min_size(at, galley.size()).expand(2.0),
            2.0,
            Color32::from_black_alpha(140),
        );
        plot_painter.galley(at, galley, Color32::WHITE);
    }

    // Time axis.
    let max_ticks = (plot.width() / 80.0).max(2.0) as usize;
    let step = nice_step(window.len_secs(), max_ticks);
    for t in time_ticks(window, max_ticks) {
        let x = window.x_of(t, plot);
        painter.line_segment(
            [pos2(x, plot.bottom()), pos2(x, plot.bottom() + 3.0)],
            Stroke::new(1.0, weak),
        );
        painter.text(
            pos2(x, plot.bottom() + 3.0),
            Align2::CENTER_TOP,
            format_time(t, step),
            FontId::proportional(10.0),
            weak,
        );
    }

    // The timeline cursor.
    let cursor_secs = facts.time_of(preview.cursor);
    if (window.start_secs..=window.end_secs).contains(&cursor_secs) {
        let x = window.x_of(cursor_secs, plot);
        plot_painter.line_segment(
            [pos2(x, plot.top()), pos2(x, plot.bottom())],
            Stroke::new(1.0, Color32::from_white_alpha(200)),
        );
    }

    // What is under the pointer.
    if let (Some(layer), Some(pointer)) = (top, response.hover_pos())
        && plot.contains(pointer)
    {
        let hz = freq_at(
            layer.freq_axis,
            (pointer.y - plot.top()) / plot.height().max(1.0),
        );
        let text = format!(
            "{} · {}",
            format_hz(hz),
            format_time(window.secs_at(pointer.x, plot), step / 10.0)
        );
        let galley = plot_painter.layout_no_wrap(text, FontId::proportional(11.0), Color32::WHITE);
        let mut at = pointer + vec2(12.0, -galley.size().y - 6.0);
        at.x = at.x.min(plot.right() - galley.size().x - 4.0);
        at.y = at.y.max(plot.top() + 2.0);
        plot_painter.rect_filled(
            Rect::from_min_size(at, galley.size()).expand(3.0),
            3.0,
            Color32::from_black_alpha(170),
        );
        plot_painter.galley(at, galley, Color32::WHITE);
    }

    legend_ui(&painter, plot, outer, text_color);

    // Interaction: Ctrl+wheel zooms the time window, Shift+wheel, sideways wheel or a drag
    // pans it, a click moves the cursor.
    let mut new_window = window;
    if let Some((delta, modifiers, pointer)) = wheel_over(ui, plot) {
        if modifiers.command || modifiers.ctrl {
            let factor = f64::from(((delta.x + delta.y) * WHEEL_ZOOM_PER_POINT).exp());
            new_window =
                new_window.zoom(window.secs_at(pointer.x, plot), factor, facts.duration_secs);
        } else {
            let points = if modifiers.shift {
                delta.x + delta.y
            } else {
                delta.x
            };
            let secs = -f64::from(points / plot.width().max(1.0)) * window.len_secs();
            new_window = new_window.pan(secs, facts.duration_secs);
        }
    }
    let response = response.on_hover_text(tr!(i18n, "preview-spectrogram-hint"));
    if response.dragged() {
        let secs = -f64::from(response.drag_delta().x / plot.width().max(1.0)) * window.len_secs();
        new_window = new_window.pan(secs, facts.duration_secs);
    }
    if response.clicked()
        && let Some(pointer) = response.interact_pointer_pos()
        && plot.contains(pointer)
    {
        commands.push(Command::Seek {
            frame_index: facts.frame_at(window.secs_at(pointer.x, plot)),
            immediate: true,
        });
    }
    if new_window != window {
        commands.push(Command::SetSpectrumWindow(new_window));
    }
}

/// Paints the part of `layer` that falls in `window`; returns the rect the whole layer spans
/// on screen (beyond `plot` when zoomed in), `None` when nothing of it is visible.
fn paint_layer(
    painter: &egui::Painter,
    plot: Rect,
    window: TimeWindow,
    layer: &SpecTexture,
) -> Option<Rect> {
    let span = layer.end_secs - layer.start_secs;
    if span <= 0.0 || layer.done_fraction <= 0.0 {
        return None;
    }
    let done_end = layer.start_secs + span * f64::from(layer.done_fraction);
    let start = window.start_secs.max(layer.start_secs);
    let end = window.end_secs.min(done_end);
    if end <= start {
        return None;
    }
    let uv = Rect::from_min_max(
        pos2(((start - layer.start_secs) / span) as f32, 0.0),
        pos2(((end - layer.start_secs) / span) as f32, 1.0),
    );
    let screen = Rect::from_min_max(
        pos2(window.x_of(start, plot), plot.top()),
        pos2(window.x_of(end, plot), plot.bottom()),
    );
    painter.image(layer.texture.id(), screen, uv, Color32::WHITE);
    Some(Rect::from_min_max(
        pos2(window.x_of(layer.start_secs, plot), plot.top()),
        pos2(window.x_of(layer.end_secs, plot), plot.bottom()),
    ))
}

/// The dB colour scale beside the plot, drawn with the spectrogram's own colour map.
fn legend_ui(painter: &egui::Painter, plot: Rect, outer: Rect, text_color: Color32) {
    const STEPS: usize = 48;
    let bar = Rect::from_min_max(
        pos2(plot.right() + 8.0, plot.top() + 6.0),
        pos2(plot.right() + 18.0, plot.bottom() - 6.0),
    );
    if bar.right() > outer.right() || bar.height() < 20.0 {
        return;
    }
    let ramp = Spectrogram {
        width: 1,
        height: STEPS,
        db: (0..STEPS)
            .map(|i| CEIL_DB - (CEIL_DB - FLOOR_DB) * i as f32 / (STEPS - 1) as f32)
            .collect(),
        freq_axis: FreqAxis::Linear { max_hz: 1.0 },
        start_secs: 0.0,
        end_secs: 1.0,
        transform: Transform::Stft,
        columns_done: 1,
    };
    let rgba = ramp.to_rgba(FLOOR_DB, CEIL_DB);
    let step_height = bar.height() / STEPS as f32;
    for (i, pixel) in rgba.chunks_exact(4).enumerate() {
        let y = bar.top() + i as f32 * step_height;
        painter.rect_filled(
            Rect::from_min_max(
                pos2(bar.left(), y),
                pos2(bar.right(), y + step_height + 0.5),
            ),
            0.0,
            Color32::from_rgb(pixel[0], pixel[1], pixel[2]),
        );
    }
    for (db, y) in [
        (CEIL_DB, bar.top()),
        ((CEIL_DB + FLOOR_DB) / 2.0, bar.center().y),
        (FLOOR_DB, bar.bottom()),
    ] {
        painter.text(
            pos2(bar.right() + 4.0, y),
            Align2::LEFT_CENTER,
            format!("{db:.0} dB"),
            FontId::proportional(10.0),
            text_color,
        );
    }
}
