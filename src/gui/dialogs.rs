//! Modal dialogs: the resume dialog (DESIGN §2 mock-up), the close-while-running
//! confirmation, and the name prompt of "Save as preset…".

use egui::{RichText, Ui};

use super::app::App;
use super::command::Command;
use super::job_details::{chunks_row_ui, steps_ui};
use super::panels::AMBER;
use super::scan::ResumeOffer;
use super::state::format_scale;
use crate::i18n::{Localizer, tr};
use crate::session::{Setting, SettingDifference, SettingValue};

pub fn dialogs_ui(ctx: &egui::Context, app: &mut App) -> Vec<Command> {
    let mut commands = Vec::new();
    let i18n = std::sync::Arc::clone(&app.i18n);
    if let Some(offer) = app.offers.front() {
        let pending = app.offers.len() - 1;
        let response = egui::Modal::new(egui::Id::unique("resume-dialog")).show(ctx, |ui| {
            resume_dialog_ui(ui, offer, pending, &i18n, &mut commands)
        });
        if response.should_close() && commands.is_empty() {
            commands.push(Command::DismissOffer);
        }
    } else if app.confirm_close {
        let response = egui::Modal::new(egui::Id::unique("close-dialog")).show(ctx, |ui| {
            ui.set_width(380.0);
            ui.heading(tr!(i18n, "close-title"));
            ui.add_space(6.0);
            ui.label(tr!(i18n, "close-body"));
            ui.add_space(12.0);
            ui.horizontal(|ui| {
                if ui.button(tr!(i18n, "close-stop")).clicked() {
                    commands.push(Command::ConfirmClose);
                }
                if ui.button(tr!(i18n, "close-keep")).clicked() {
                    commands.push(Command::KeepOpen);
                }
            });
        });
        if response.should_close() && commands.is_empty() {
            commands.push(Command::KeepOpen);
        }
    } else if let Some(name) = &mut app.save_preset_name {
        let mut close = false;
        let preset = app.settings.preset.clone();
        let response = egui::Modal::new(egui::Id::unique("save-preset-dialog")).show(ctx, |ui| {
            ui.set_width(340.0);
            ui.heading(tr!(i18n, "preset-dialog-title"));
            ui.add_space(6.0);
            ui.label(tr!(i18n, "preset-dialog-body", preset = preset.as_str()));
            let edit = ui.add(egui::TextEdit::singleline(name).hint_text("my_preset"));
            if ui.memory(|memory| memory.focused().is_none()) {
                edit.request_focus();
            }
            let valid = is_valid_preset_name(name);
            if !name.is_empty() && !valid {
                ui.label(
                    RichText::new(tr!(i18n, "preset-dialog-invalid"))
                        .small()
                        .color(AMBER),
                );
            }
            ui.add_space(10.0);
            ui.horizontal(|ui| {
                let enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
                let save =
                    ui.add_enabled(valid, egui::Button::new(tr!(i18n, "preset-dialog-save")));
                if save.clicked() || (enter && valid) {
                    commands.push(Command::SavePresetAs(name.clone()));
                    close = true;
                }
                if ui.button(tr!(i18n, "dialog-cancel")).clicked() {
                    close = true;
                }
            });
        });
        if close || response.should_close() {
            app.save_preset_name = None;
        }
    }
    commands
}

fn is_valid_preset_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// "2025-01-16T21:13:32Z" → "2025-01-16 21:13:32 UTC" (the same in every language).
fn readable_time(iso: &str) -> String {
    match iso.strip_suffix('Z') {
        Some(rest) => format!("{} UTC", rest.replacen('T', " ", 1)),
        None => iso.replacen('T', " ", 1),
    }
}

fn resume_dialog_ui(
    ui: &mut Ui,
    offer: &ResumeOffer,
    pending: usize,
    i18n: &Localizer,
    commands: &mut Vec<Command>,
) {
    ui.set_width(460.0);
    ui.heading(tr!(i18n, "resume-title"));
    ui.add_space(8.0);
    let file = offer
        .input
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| offer.input.display().to_string());
    let settings = &offer.settings;
    let size = match settings.target_height {
        Some(height) => format!("{height}p"),
        None => format!("{}×", format_scale(settings.scale)),
    };
    egui::Grid::new("resume-facts")
        .num_columns(2)
        .spacing([12.0, 6.0])
        .show(ui, |ui| {
            ui.label(RichText::new(tr!(i18n, "resume-file")).weak());
            ui.label(RichText::new(file).strong())
                .on_hover_text(offer.input.display().to_string());
            ui.end_row();
            ui.label(RichText::new(tr!(i18n, "resume-last-updated")).weak());
            ui.label(readable_time(&offer.last_updated));
            ui.end_row();
            ui.label(RichText::new(tr!(i18n, "resume-settings")).weak());
            ui.label(tr!(
                i18n,
                "resume-settings-value",
                size = size,
                engine = settings.engine.as_str(),
                preset = settings.preset.as_str()
            ));
            ui.end_row();
            chunks_row_ui(ui, i18n, offer.chunks_done, offer.chunks_total);
        });
    ui.add_space(8.0);
    steps_ui(ui, "resume-steps", &offer.steps, i18n);
    ui.add_space(8.0);
    if offer.differences.is_empty() {
        ui.label(tr!(i18n, "resume-explain"));
    } else {
        egui::Frame::new()
            .fill(AMBER.gamma_multiply(0.15))
            .stroke(egui::Stroke::new(1.0, AMBER))
            .corner_radius(4.0)
            .inner_margin(8.0)
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.label(RichText::new(tr!(i18n, "resume-differences")).strong());
                for difference in &offer.differences {
                    ui.label(format!("• {}", difference_text(difference, i18n)));
                }
                ui.label(tr!(i18n, "resume-explain-differences"));
            });
    }
    if pending > 0 {
        ui.add_space(4.0);
        ui.label(
            RichText::new(tr!(i18n, "resume-dialog-more", count = pending))
                .small()
                .weak(),
        );
    }
    ui.add_space(12.0);
    ui.horizontal(|ui| {
        if ui
            .button(RichText::new(tr!(i18n, "resume-resume")).strong())
            .on_hover_text(tr!(i18n, "resume-resume-hint"))
            .clicked()
        {
            commands.push(Command::Resume);
        }
        if ui
            .button(tr!(i18n, "resume-restart"))
            .on_hover_text(tr!(i18n, "resume-restart-hint"))
            .clicked()
        {
            commands.push(Command::Restart);
        }
        if ui
            .button(tr!(i18n, "dialog-cancel"))
            .on_hover_text(tr!(i18n, "resume-cancel-hint"))
            .clicked()
        {
            commands.push(Command::DismissOffer);
        }
    });
}

/// A setting that differs from the earlier run, in the window's language.
fn difference_text(difference: &SettingDifference, i18n: &Localizer) -> String {
    let value = |value: &SettingValue| match value {
        SettingValue::Text(text) => text.clone(),
        SettingValue::Unset => tr!(i18n, "setting-value-unset"),
        SettingValue::On => tr!(i18n, "setting-value-on"),
        SettingValue::Off => tr!(i18n, "setting-value-off"),
        SettingValue::Seconds(seconds) => tr!(i18n, "setting-value-seconds", seconds = *seconds),
    };
    let (from, to) = (value(&difference.from), value(&difference.to));
    match &difference.setting {
        Setting::PresetContents(preset) => tr!(
            i18n,
            "resume-difference-preset-contents",
            preset = preset.as_str(),
            from = from,
            to = to
        ),
        setting => tr!(
            i18n,
            "resume-difference",
            setting = setting.id(),
            from = from,
            to = to
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_without_iso_letters() {
        assert_eq!(
            readable_time("2025-01-16T21:13:32Z"),
            "2025-01-16 21:13:32 UTC"
        );
        assert_eq!(
            readable_time("2025-01-16T21:13:32+01:00"),
            "2025-01-16 21:13:32+01:00"
        );
    }

    #[test]
    fn setting_differences_read_in_the_window_language() {
        use SettingValue::{Off, On, Seconds, Text, Unset};
        let differences = [
            (Setting::Scale, Text("4".into()), Text("2".into())),
            (Setting::ChunkLength, Seconds(2.0), Seconds(5.0)),
            (Setting::TargetHeight, Unset, Text("1080".into())),
            (Setting::Deinterlace, Off, On),
            (
                Setting::PresetContents("h264_hq".into()),
                Text("0123".into()),
                Text("abcd".into()),
            ),
        ]
        .map(|(setting, from, to)| SettingDifference { setting, from, to });
        // English is what the CLI prints too.
        let english = Localizer::new("en");
        for difference in &differences {
            assert_eq!(
                difference_text(difference, &english),
                difference.to_string()
            );
        }
        let japanese = Localizer::new("ja");
        let lines: Vec<String> = differences
            .iter()
            .map(|d| difference_text(d, &japanese))
            .collect();
        assert_eq!(
            lines,
            [
                "倍率：4 → 2",
                "チャンクの長さ：2 秒 → 5 秒",
                "目標の高さ：なし → 1080",
                "インターレース解除：オフ → オン",
                "プリセット h264_hq：内容が変更されています（0123 → abcd）",
            ]
        );
    }

    #[test]
    fn preset_names_are_file_safe() {
        assert!(is_valid_preset_name("my_preset-2"));
        assert!(!is_valid_preset_name(""));
        assert!(!is_valid_preset_name("../etc"));
        assert!(!is_valid_preset_name("a b"));
    }
}
