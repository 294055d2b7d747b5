//! The settings side panel: engine, size, denoise, models folder, preset, output folder,
//! chunk length, language and the switches. Its widgets edit the settings in place (and return
//! `SettingsChanged` so that they are saved); everything else is a [`Command`].

use egui::{RichText, Ui};

use super::app::PresetChoice;
use super::command::Command;
use super::state::{HEIGHTS, OutputSize, UserSettings, format_scale};
use crate::engine::EngineInfo;
use crate::i18n::{self, Localizer, tr};

/// What the settings panel shows and edits.
pub(super) struct SettingsPanel<'a> {
    pub settings: &'a mut UserSettings,
    /// The engines the models folder gives.
    pub engines: &'a [EngineInfo],
    /// Models of the user's own that cannot run: (name, reason).
    pub unusable_models: &'a [(String, String)],
    pub presets: &'a [PresetChoice],
    /// The system's language tag.
    pub system_language: &'a str,
    pub i18n: &'a Localizer,
    /// The name being typed in the save-as-preset dialog (`Some`: the dialog is open).
    pub save_preset_name: &'a mut Option<String>,
}

pub(super) fn settings_ui(ui: &mut Ui, panel: SettingsPanel<'_>, commands: &mut Vec<Command>) {
    let SettingsPanel {
        settings,
        engines,
        unusable_models,
        presets,
        system_language,
        i18n,
        save_preset_name,
    } = panel;
    ui.add_space(6.0);
    ui.heading(tr!(i18n, "settings-heading"));
    ui.separator();
    let mut changed = false;
    egui::Grid::new("settings-grid")
        .num_columns(2)
        .spacing([10.0, 10.0])
        .min_col_width(70.0)
        .show(ui, |ui| {
            let label = ui.label(tr!(i18n, "settings-engine"));
            let engine = engines
                .iter()
                .find(|info| info.name == settings.engine)
                .cloned();
            let combo = egui::ComboBox::from_id_salt("engine")
                .width(180.0)
                .selected_text(settings.engine.as_str())
                .show_ui(ui, |ui| {
                    for info in engines {
                        changed |= ui
                            .selectable_value(&mut settings.engine, info.name.clone(), &info.name)
                            .on_hover_text(&info.description)
                            .changed();
                    }
                })
                .response
                .labelled_by(label.id);
            if combo.clicked() {
                // Model files copied in while the window is open show up in the list.
                commands.push(Command::RescanModels);
            }
            ui.end_row();

            let label = ui.label(tr!(i18n, "settings-size"));
            let scales = engine.as_ref().map_or(&[2.0][..], |info| &info.scales);
            egui::ComboBox::from_id_salt("size")
                .width(180.0)
                .selected_text(size_text(settings.size, i18n))
                .show_ui(ui, |ui| {
                    for scale in scales {
                        let value = OutputSize::Scale(*scale);
                        changed |= ui
                            .selectable_value(&mut settings.size, value, size_text(value, i18n))
                            .changed();
                    }
                    ui.separator();
                    for height in HEIGHTS {
                        let value = OutputSize::Height(height);
                        changed |= ui
                            .selectable_value(&mut settings.size, value, size_text(value, i18n))
                            .changed();
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();

            if let Some(info) = &engine
                && !info.denoise_levels.is_empty()
            {
                let label = ui.label(tr!(i18n, "settings-denoise"));
                let effective = settings.denoise_for(engines);
                let choices = settings
                    .runs_without_denoise(info)
                    .then_some(None)
                    .into_iter()
                    .chain(settings.denoise_levels(info).into_iter().map(Some));
                egui::ComboBox::from_id_salt("denoise")
                    .width(180.0)
                    .selected_text(denoise_text(effective, info, i18n))
                    .show_ui(ui, |ui| {
                        for choice in choices {
                            if ui
                                .selectable_label(
                                    effective == choice,
                                    denoise_text(choice, info, i18n),
                                )
                                .clicked()
                            {
                                settings.denoise = choice;
                                changed = true;
                            }
                        }
                    })
                    .response
                    .labelled_by(label.id)
                    .on_hover_text(tr!(i18n, "settings-denoise-hint"));
                ui.end_row();
            }

            models_row_ui(ui, settings, (engines, unusable_models), i18n, commands);

            let label = ui.label(tr!(i18n, "settings-preset"));
            let selected_summary = presets
                .iter()
                .find(|p| p.name == settings.preset)
                .map(|p| p.summary.clone());
            let combo = egui::ComboBox::from_id_salt("preset")
                .width(180.0)
                .height(420.0)
                .selected_text(settings.preset.as_str())
                .show_ui(ui, |ui| {
                    for preset in presets {
                        let label = if preset.user {
                            tr!(i18n, "settings-preset-yours", name = preset.name.as_str())
                        } else {
                            preset.name.clone()
                        };
                        changed |= ui
                            .selectable_value(&mut settings.preset, preset.name.clone(), label)
                            .on_hover_text(&preset.summary)
                            .changed();
                    }
                });
            let combo = combo.response.labelled_by(label.id);
            if let Some(summary) = selected_summary {
                combo.on_hover_text(summary);
            }
            ui.end_row();

            ui.label(tr!(i18n, "settings-output"));
            ui.vertical(|ui| {
                match &settings.output_dir {
                    Some(dir) => {
                        ui.add(egui::Label::new(dir.display().to_string()).truncate())
                            .on_hover_text(dir.display().to_string());
                    }
                    None => {
                        ui.label(tr!(i18n, "settings-output-beside"));
                    }
                }
                let reset = settings.output_dir.is_some().then(|| {
                    (
                        tr!(i18n, "settings-output-beside-button"),
                        tr!(i18n, "settings-output-beside-hint"),
                        Command::OutputBesideInput,
                    )
                });
                folder_buttons_ui(ui, i18n, Command::PickOutputFolder, reset, commands);
            });
            ui.end_row();

            let label = ui.label(tr!(i18n, "settings-chunk-length"));
            changed |= ui
                .add(
                    egui::DragValue::new(&mut settings.chunk_seconds)
                        .range(1.0..=60.0)
                        .speed(0.2)
                        .max_decimals(1)
                        .suffix(tr!(i18n, "settings-seconds-suffix")),
                )
                .labelled_by(label.id)
                .on_hover_text(tr!(i18n, "settings-chunk-length-hint"))
                .changed();
            ui.end_row();

            language_row_ui(ui, settings, system_language, i18n, commands);
        });
    ui.add_space(6.0);
    changed |= ui
        .checkbox(&mut settings.deinterlace, tr!(i18n, "settings-deinterlace"))
        .changed();
    changed |= ui
        .checkbox(&mut settings.overwrite, tr!(i18n, "settings-overwrite"))
        .changed();
    ui.add_space(10.0);
    if ui
        .button(tr!(i18n, "settings-save-preset"))
        .on_hover_text(tr!(i18n, "settings-save-preset-hint"))
        .clicked()
    {
        *save_preset_name = Some(String::new());
    }
    ui.add_space(10.0);
    ui.label(
        RichText::new(tr!(i18n, "settings-apply-note"))
            .small()
            .weak(),
    );
    if changed {
        commands.push(Command::SettingsChanged);
    }
}

/// A denoise level as the menu shows it; Real-CUGAN's level 0 is its "conservative" model.
fn denoise_text(level: Option<u8>, engine: &EngineInfo, i18n: &Localizer) -> String {
    match level {
        None => tr!(i18n, "settings-denoise-off"),
        Some(n) if engine.conservative_denoise() == Some(n) => {
            tr!(i18n, "settings-denoise-conservative", level = n)
        }
        Some(n) => n.to_string(),
    }
}

/// The window's language: the system's (named), or one of the catalogs, each in its own
/// script. Applies at once.
fn language_row_ui(
    ui: &mut Ui,
    settings: &UserSettings,
    system_language: &str,
    i18n: &Localizer,
    commands: &mut Vec<Command>,
) {
    let label = ui.label(tr!(i18n, "settings-language"));
    let system = tr!(
        i18n,
        "settings-language-system",
        language = i18n::language_name(system_language)
    );
    let selected = match &settings.language {
        Some(tag) => i18n::language_name(tag),
        None => system.clone(),
    };
    egui::ComboBox::from_id_salt("language")
        .width(180.0)
        .selected_text(selected)
        .show_ui(ui, |ui| {
            if ui
                .selectable_label(settings.language.is_none(), system)
                .clicked()
            {
                commands.push(Command::SetLanguage(None));
            }
            for language in i18n::languages() {
                let chosen = settings.language.as_deref() == Some(language.tag);
                if ui
                    .selectable_label(chosen, language.name.as_str())
                    .clicked()
                {
                    commands.push(Command::SetLanguage(Some(language.tag.to_owned())));
                }
            }
        })
        .response
        .labelled_by(label.id)
        .on_hover_text(tr!(i18n, "settings-language-hint"));
    ui.end_row();
}

/// Where the neural engines' model files are looked for, which engines that folder gives, and
/// how to get the missing ones.
fn models_row_ui(
    ui: &mut Ui,
    settings: &UserSettings,
    (engines, unusable): (&[EngineInfo], &[(String, String)]),
    i18n: &Localizer,
    commands: &mut Vec<Command>,
) {
    use crate::engine::models::Family;
    ui.label(tr!(i18n, "settings-models"));
    ui.vertical(|ui| {
        let folder = settings.models_folder();
        let shown = folder.as_ref().map_or_else(
            || tr!(i18n, "settings-models-none"),
            |dir| dir.display().to_string(),
        );
        ui.add(egui::Label::new(shown.clone()).truncate())
            .on_hover_text(tr!(i18n, "settings-models-hint", path = shown));
        let missing: Vec<Family> = Family::ALL
            .into_iter()
            .filter(|family| !engines.iter().any(|e| e.name == family.engine_name()))
            .collect();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|f| f.engine_name()).collect();
            let hints: Vec<String> = match &folder {
                Some(dir) => missing.iter().map(|f| f.install_hint(dir)).collect(),
                None => vec![tr!(i18n, "settings-models-choose-hint")],
            };
            ui.label(
                RichText::new(tr!(
                    i18n,
                    "settings-models-missing",
                    engines = names.join(", ")
                ))
                .small()
                .weak(),
            )
            .on_hover_text(hints.join("\n\n"));
        }
        if !unusable.is_empty() {
            let names: Vec<&str> = unusable.iter().map(|(name, _)| name.as_str()).collect();
            let reasons: Vec<String> = unusable
                .iter()
                .map(|(name, reason)| format!("{name}: {reason}"))
                .collect();
            ui.label(
                RichText::new(tr!(
                    i18n,
                    "settings-models-unusable",
                    models = names.join(", ")
                ))
                .small()
                .color(ui.visuals().warn_fg_color),
            )
            .on_hover_text(reasons.join("\n\n"));
        }
        let reset = settings.models_dir.is_some().then(|| {
            (
                tr!(i18n, "settings-models-default"),
                tr!(i18n, "settings-models-default-hint"),
                Command::SetModelsFolder(None),
            )
        });
        folder_buttons_ui(ui, i18n, Command::PickModelsFolder, reset, commands);
    });
    ui.end_row();
}

/// "Choose folder…" (`pick`) and, when the setting is not the default, a small button (label,
/// hover text, command) that goes back to it.
fn folder_buttons_ui(
    ui: &mut Ui,
    i18n: &Localizer,
    pick: Command,
    reset: Option<(String, String, Command)>,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        if ui.button(tr!(i18n, "choose-folder")).clicked() {
            commands.push(pick);
        }
        if let Some((label, hint, command)) = reset
            && ui.small_button(label).on_hover_text(hint).clicked()
        {
            commands.push(command);
        }
    });
}

fn size_text(size: OutputSize, i18n: &Localizer) -> String {
    match size {
        OutputSize::Scale(1.0) => tr!(i18n, "size-scale-denoise-only"),
        OutputSize::Scale(scale) => tr!(i18n, "size-scale", scale = format_scale(scale)),
        OutputSize::Height(height) => tr!(i18n, "size-height", height = height),
    }
}
