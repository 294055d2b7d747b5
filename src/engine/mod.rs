//! Upscaling engines: what turns a decoded frame into a larger one.
//!
//! Two kinds exist because they run in different places (DESIGN §3):
//! * filter engines (Lanczos) are ffmpeg's own scalers and run inside ffmpeg's filter graph,
//!   so frames never leave ffmpeg (a pipe round trip measured 3× slower);
//! * frame engines implement [`Upscaler`] in this process and sit between a decoding and an
//!   encoding ffmpeg (the "pipe path"). Neural engines are frame engines.
//!
//! The registry here is the one place that knows which engines exist and what they accept.
//! Neural engines are listed only when their model files are in the models folder
//! ([`models`]); asking for one that is not there says where to put its files.

pub mod custom;
mod identity;
pub mod models;
pub mod neural;

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use thiserror::Error;

pub use identity::Identity;
pub use models::Family;
pub use neural::ColorMatrix;

/// One planar yuv420p frame (the pipe path's wire format: 1.5 bytes per pixel, half of rgb24).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// Y plane, then U, then V; chroma planes are `ceil(w/2) × ceil(h/2)`.
    pub data: Vec<u8>,
}

impl Frame {
    /// Bytes of a yuv420p frame of this size.
    pub fn yuv420p_len(width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
    }
}

/// An engine of our own that runs on decoded frames.
pub trait Upscaler: Send {
    /// Size of the frame [`Upscaler::process`] returns for an input of this size.
    fn output_size(&self, width: u32, height: u32) -> (u32, u32);
    /// Upscale one frame.
    fn process(&mut self, input: &Frame) -> anyhow::Result<Frame>;
}

/// How an engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// Inside ffmpeg's filter graph: `scale=W:H:flags=<flags>`.
    FfmpegScale { flags: &'static str },
    /// In this process, between a decoding and an encoding ffmpeg.
    Frames,
}

/// What the user can pick.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineInfo {
    pub name: String,
    pub description: String,
    pub kind: EngineKind,
    /// Scale factors the engine accepts.
    pub scales: Vec<f64>,
    /// Available denoise levels (empty: the engine has no denoise setting).
    pub denoise_levels: Vec<u8>,
    /// Whether it runs without a denoise level (for an engine with levels: its plain model is
    /// there too).
    pub runs_without_denoise: bool,
    /// Neural engines: where the model comes from.
    pub model: Option<ModelSource>,
}

/// The model files of a neural engine.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    /// A known family, from the models folder it was found in.
    Family(Family, PathBuf),
    /// A model of the user's own (`<models folder>/custom/`), with its own scale.
    Custom {
        files: models::ModelFiles,
        native_scale: u32,
    },
}

/// What a frame engine needs to know about the job to start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameSetup {
    /// The engine's own scale factor (one of [`EngineInfo::scales`]).
    pub scale: f64,
    pub denoise: Option<u8>,
    /// Matrix of the yuv420p frames on the pipe.
    pub matrix: ColorMatrix,
}

impl EngineInfo {
    /// A fresh frame engine instance (loads the model of a neural engine).
    pub fn instantiate(&self, setup: &FrameSetup) -> anyhow::Result<Box<dyn Upscaler>> {
        let scale = setup.scale as u32;
        match &self.model {
            Some(ModelSource::Family(family, dir)) => {
                let installed = models::scan(dir, *family);
                let files = installed.model(scale, setup.denoise).ok_or_else(|| {
                    anyhow!(
                        "the {} model files for {scale}× are missing; {}",
                        self.name,
                        family.install_hint(dir)
                    )
                })?;
                let engine = neural::Neural::load(*family, files, scale, setup.matrix)?;
                Ok(Box::new(engine))
            }
            Some(ModelSource::Custom { files, .. }) => {
                let engine = neural::Neural::load_custom(files, scale, setup.matrix)?;
                Ok(Box::new(engine))
            }
            None if self.name == "identity" => Ok(Box::new(Identity)),
            None => Err(anyhow!("engine {} does not run on frames", self.name)),
        }
    }

    /// Identity of the model weights used for the engine's own `scale` and `denoise` (file
    /// name and content digest), for the session id; `None` for engines without model files.
    pub fn model_identity(
        &self,
        scale: f64,
        denoise: Option<u8>,
    ) -> anyhow::Result<Option<String>> {
        let installed;
        let files = match &self.model {
            None => return Ok(None),
            Some(ModelSource::Custom { files, .. }) => files,
            Some(ModelSource::Family(family, dir)) => {
                installed = models::scan(dir, *family);
                let Some(files) = installed.model(scale as u32, denoise) else {
                    return Ok(None);
                };
                files
            }
        };
        let id = files
            .identity()
            .map_err(|e| anyhow!("cannot read {}: {e}", files.bin.display()))?;
        Ok(Some(id))
    }

    /// The denoise levels offered for a job at `scale` (`None`: any scale, e.g. a target
    /// height): those of a family upstream ships at the engine scale that serves it (Real-CUGAN
    /// has levels 1 and 2 at 2× only).
    pub fn denoise_levels_at(&self, scale: Option<f64>) -> Vec<u8> {
        match (&self.model, scale) {
            (Some(ModelSource::Family(family, _)), Some(scale)) => {
                let engine_scale = self.engine_scale(scale) as u32;
                self.denoise_levels
                    .iter()
                    .copied()
                    .filter(|&level| family.ships(engine_scale, Some(level)))
                    .collect()
            }
            _ => self.denoise_levels.clone(),
        }
    }

    /// Whether a job at `scale` (`None`: any scale) may run without denoise: the plain model
    /// is there, and upstream has one at the engine scale that serves it (cunet has none at 1×).
    pub fn runs_without_denoise_at(&self, scale: Option<f64>) -> bool {
        match (&self.model, scale) {
            (Some(ModelSource::Family(family, _)), Some(scale)) => {
                self.runs_without_denoise && family.ships(self.engine_scale(scale) as u32, None)
            }
            _ => self.runs_without_denoise,
        }
    }

    /// The denoise level that is the family's "conservative" model (Real-CUGAN's level 0).
    pub fn conservative_denoise(&self) -> Option<u8> {
        match &self.model {
            Some(ModelSource::Family(
                Family::RealCugan | Family::RealCuganPro | Family::RealCuganNose,
                _,
            )) => Some(0),
            _ => None,
        }
    }

    /// Neural engines use every core inside one frame, so chunks run one at a time.
    pub fn uses_all_cores(&self) -> bool {
        self.model.is_some()
    }

    /// The engine's own scale for a job wanting `wanted` (a `--height` fit may ask for any
    /// factor): the smallest supported scale at least as large, else the largest.
    pub fn engine_scale(&self, wanted: f64) -> f64 {
        self.fit_scale(wanted, |_| true)
    }

    /// [`EngineInfo::engine_scale`] for a job that runs with `denoise`: the smallest scale at
    /// least `wanted` that has a model for it. A height fit without denoise on waifu2x cunet
    /// runs its 2× net, not the 1× nets that only denoise (a scale the user picked was checked
    /// against the level before: there the two agree).
    pub fn engine_scale_with(&self, wanted: f64, denoise: Option<u8>) -> f64 {
        match &self.model {
            Some(ModelSource::Family(family, _)) => {
                self.fit_scale(wanted, |s| family.ships(s as u32, denoise))
            }
            _ => self.engine_scale(wanted),
        }
    }

    fn fit_scale(&self, wanted: f64, usable: impl Fn(f64) -> bool) -> f64 {
        let mut scales: Vec<f64> = self.scales.iter().copied().filter(|&s| usable(s)).collect();
        scales.sort_by(f64::total_cmp);
        scales
            .iter()
            .copied()
            .find(|s| *s >= wanted - 1e-9)
            .or_else(|| scales.last().copied())
            .unwrap_or(1.0)
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum EngineError {
    #[error("unknown engine \"{name}\"; available: {available}")]
    Unknown { name: String, available: String },
    #[error("engine {engine} does not support scale {scale}; supported: {supported}")]
    UnsupportedScale {
        engine: String,
        scale: f64,
        supported: String,
    },
    #[error("engine {engine} has no denoise setting")]
    NoDenoise { engine: String },
    #[error("engine {engine} supports denoise levels {supported}, not {level}")]
    UnsupportedDenoise {
        engine: String,
        level: u8,
        supported: String,
    },
    /// A scale at which the engine has denoise models only (waifu2x cunet at 1×).
    #[error("engine {engine} at {scale}× only removes noise: choose a denoise level ({levels})")]
    DenoiseRequired {
        engine: String,
        scale: f64,
        levels: String,
    },
    /// A neural engine whose model files are not in the models folder.
    #[error("the {what} is not installed: {hint}")]
    ModelMissing {
        engine: String,
        what: String,
        hint: String,
    },
    /// A model in the custom folder that cannot be run.
    #[error("the model {name} ({}) cannot be used: {reason}", param.display())]
    CustomUnusable {
        name: String,
        param: PathBuf,
        reason: String,
    },
}

const SCALES: &[f64] = &[1.5, 2.0, 3.0, 4.0];

/// An engine without model files.
fn built_in(name: &str, description: &str, kind: EngineKind) -> EngineInfo {
    EngineInfo {
        name: name.to_owned(),
        description: description.to_owned(),
        kind,
        scales: SCALES.to_vec(),
        denoise_levels: Vec::new(),
        runs_without_denoise: true,
        model: None,
    }
}

fn lanczos() -> EngineInfo {
    built_in(
        "lanczos",
        "ffmpeg's Lanczos scaler: fast, sharp, always available",
        EngineKind::FfmpegScale { flags: "lanczos" },
    )
}

/// Pass-through frame engine that exercises the pipe path; offered only when
/// `REFRAME_TEST_ENGINES=1` (tests and benchmarks), never to users.
fn identity() -> EngineInfo {
    built_in(
        "identity",
        "pass-through through the frame pipe (testing only)",
        EngineKind::Frames,
    )
}

/// Names no custom model may take.
fn built_in_names() -> Vec<&'static str> {
    let mut names = vec!["lanczos", "identity"];
    names.extend(Family::ALL.iter().map(|f| f.engine_name()));
    names
}

/// The custom models of `models_dir` (usable or not, with the reason).
pub fn custom_models(models_dir: &Path) -> Vec<custom::CustomModel> {
    custom::scan(models_dir, &built_in_names())
}

fn test_engines_enabled() -> bool {
    std::env::var_os("REFRAME_TEST_ENGINES").is_some_and(|v| v == "1")
}

/// Engines available on this machine, in display order, with the models of the default
/// models folder ([`models::models_dir`]).
pub fn available() -> Vec<EngineInfo> {
    available_in(models::models_dir(None).as_deref())
}

/// Engines available with the models in `models_dir`.
pub fn available_in(models_dir: Option<&Path>) -> Vec<EngineInfo> {
    let mut engines = vec![lanczos()];
    if test_engines_enabled() {
        engines.push(identity());
    }
    if let Some(dir) = models_dir {
        for installed in models::scan_all(dir) {
            if installed.is_empty() {
                continue;
            }
            let family = installed.family;
            engines.push(EngineInfo {
                name: family.engine_name().to_owned(),
                description: family.description().to_owned(),
                kind: EngineKind::Frames,
                scales: installed.scales(),
                denoise_levels: installed.denoise_levels().into_iter().collect(),
                runs_without_denoise: installed.has_plain(),
                model: Some(ModelSource::Family(family, dir.to_owned())),
            });
        }
        for model in custom_models(dir) {
            let Ok(native_scale) = model.status else {
                continue;
            };
            engines.push(EngineInfo {
                description: format!(
                    "your model {} ({native_scale}×, CPU)",
                    model.files.param.display()
                ),
                scales: model.scales(),
                name: model.name,
                kind: EngineKind::Frames,
                denoise_levels: Vec::new(),
                runs_without_denoise: true,
                model: Some(ModelSource::Custom {
                    files: model.files,
                    native_scale,
                }),
            });
        }
    }
    engines
}

/// Look up an engine (models from the default models folder) and check the requested scale
/// and denoise level against it.
pub fn resolve(
    name: &str,
    scale: Option<f64>,
    denoise: Option<u8>,
) -> Result<EngineInfo, EngineError> {
    resolve_in(models::models_dir(None).as_deref(), name, scale, denoise)
}

/// [`resolve`] with the models of `models_dir`.
pub fn resolve_in(
    models_dir: Option<&Path>,
    name: &str,
    scale: Option<f64>,
    denoise: Option<u8>,
) -> Result<EngineInfo, EngineError> {
    let engines = available_in(models_dir);
    let dir_or_default = || {
        models_dir
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("the models folder (set REFRAME_MODELS_DIR)"))
    };
    if let Some(family) = Family::from_engine_name(name) {
        let dir = dir_or_default();
        let installed = models::scan(&dir, family);
        if installed.is_empty() {
            return Err(EngineError::ModelMissing {
                engine: name.to_owned(),
                what: format!("{name} model"),
                hint: family.install_hint(&dir),
            });
        }
        let scales: Vec<u32> = match scale {
            Some(s) if family.scales().contains(&s) => vec![s as u32],
            _ => installed.scales().iter().map(|&s| s as u32).collect(),
        };
        let found = scales
            .iter()
            .any(|&s| installed.model(s, denoise).is_some());
        // Real-CUGAN ships some denoise levels at 2× only: no file to put anywhere.
        if let (Some(s), Some(level)) = (scale, denoise)
            && family.denoise_known(denoise)
            && !family.ships(s as u32, denoise)
        {
            return Err(EngineError::UnsupportedDenoise {
                engine: name.to_owned(),
                level,
                supported: format!("{} at {s}×", levels_text(family, s)),
            });
        }
        if let (Some(s), None) = (scale, denoise)
            && family.scales().contains(&s)
            && !family.ships(s as u32, None)
        {
            return Err(EngineError::DenoiseRequired {
                engine: name.to_owned(),
                scale: s,
                levels: levels_text(family, s),
            });
        }
        if !found && family.denoise_known(denoise) {
            // A family with a net per scale names the scale.
            let at = match scale {
                Some(s) if family.net_scales().len() > 1 => format!(" at {s}×"),
                _ => String::new(),
            };
            let what = match denoise {
                None => format!("{name} model without denoise{at}"),
                Some(n) => format!("{name} model for denoise level {n}{at}"),
            };
            return Err(EngineError::ModelMissing {
                engine: name.to_owned(),
                what,
                hint: family.install_hint(&dir),
            });
        }
    }
    let Some(info) = engines.iter().find(|e| e.name == name).cloned() else {
        if let Some(dir) = models_dir
            && let Some(unusable) = custom_models(dir).into_iter().find(|m| m.name == name)
            && let Err(reason) = unusable.status
        {
            return Err(EngineError::CustomUnusable {
                name: name.to_owned(),
                param: unusable.files.param,
                reason,
            });
        }
        return Err(EngineError::Unknown {
            name: name.to_owned(),
            available: engines
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    if let Some(scale) = scale
        && !info.scales.iter().any(|s| (s - scale).abs() < 1e-9)
    {
        return Err(EngineError::UnsupportedScale {
            engine: name.to_owned(),
            scale,
            supported: join_numbers(&info.scales),
        });
    }
    if let Some(level) = denoise {
        if info.denoise_levels.is_empty() {
            return Err(EngineError::NoDenoise {
                engine: name.to_owned(),
            });
        }
        if !info.denoise_levels.contains(&level) {
            return Err(EngineError::UnsupportedDenoise {
                engine: name.to_owned(),
                level,
                supported: info
                    .denoise_levels
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(info)
}

/// The denoise levels upstream ships for `family` at `scale`, for messages: "0, 3".
fn levels_text(family: Family, scale: f64) -> String {
    let levels: Vec<String> = family
        .denoise_levels_at(scale as u32)
        .iter()
        .map(u8::to_string)
        .collect();
    levels.join(", ")
}

fn join_numbers(values: &[f64]) -> String {
    values
        .iter()
        .map(f64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv420p_len_rounds_chroma_up() {
        assert_eq!(Frame::yuv420p_len(4, 2), 8 + 2 * 2);
        assert_eq!(Frame::yuv420p_len(5, 3), 15 + 2 * 3 * 2);
    }

    #[test]
    fn lanczos_accepts_listed_scales_only() {
        assert!(resolve("lanczos", Some(2.0), None).is_ok());
        assert!(resolve("lanczos", Some(1.5), None).is_ok());
        let err = resolve("lanczos", Some(2.5), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "engine lanczos does not support scale 2.5; supported: 1.5, 2, 3, 4"
        );
        assert_eq!(
            resolve("lanczos", Some(2.0), Some(1)).unwrap_err(),
            EngineError::NoDenoise {
                engine: "lanczos".into()
            }
        );
    }

    #[test]
    fn neural_engines_follow_the_models_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let err = resolve_in(Some(d), "animevideov3", Some(2.0), None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "the animevideov3 model is not installed: put realesr-animevideov3-x4.param"
            ) && text.ends_with(&d.display().to_string()),
            "{text}"
        );
        assert!(available_in(Some(d)).iter().all(|e| e.model.is_none()));

        for ext in ["param", "bin"] {
            std::fs::write(d.join(format!("realesr-animevideov3-x4.{ext}")), b"x").unwrap();
            std::fs::write(d.join(format!("WAIFU2X_PHOTO_UP2X_DENOISE2X.{ext}")), b"x").unwrap();
        }
        let info = resolve_in(Some(d), "animevideov3", Some(3.0), None).unwrap();
        assert_eq!(info.scales, &[2.0, 3.0, 4.0]);
        assert!(info.uses_all_cores());
        assert_eq!(info.engine_scale(2.5), 3.0);
        assert_eq!(info.engine_scale(6.0), 4.0);
        assert!(matches!(
            resolve_in(Some(d), "animevideov3", Some(1.5), None),
            Err(EngineError::UnsupportedScale { .. })
        ));
        assert!(matches!(
            resolve_in(Some(d), "animevideov3", Some(2.0), Some(1)),
            Err(EngineError::NoDenoise { .. })
        ));

        let photo = resolve_in(Some(d), "waifu2x-photo", Some(2.0), Some(2)).unwrap();
        assert_eq!(photo.denoise_levels, [2]);
        let err = resolve_in(Some(d), "waifu2x-photo", Some(2.0), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the waifu2x-photo model without denoise is not installed"),
            "{err}"
        );
        let err = resolve_in(Some(d), "waifu2x-photo", Some(2.0), Some(1)).unwrap_err();
        assert!(err.to_string().contains("denoise level 1"), "{err}");
        assert!(matches!(
            resolve_in(Some(d), "waifu2x", Some(2.0), None),
            Err(EngineError::ModelMissing { .. })
        ));
        let names: Vec<_> = available_in(Some(d)).into_iter().map(|e| e.name).collect();
        assert_eq!(names[names.len() - 2..], ["animevideov3", "waifu2x-photo"]);
    }

    #[test]
    fn realcugan_offers_the_scales_and_levels_its_files_have() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("models-se")).unwrap();
        for stem in ["up2x-no-denoise", "up2x-denoise1x", "up4x-conservative"] {
            for ext in ["param", "bin"] {
                std::fs::write(d.join(format!("models-se/{stem}.{ext}")), b"x").unwrap();
            }
        }
        let info = resolve_in(Some(d), "realcugan", Some(2.0), Some(1)).unwrap();
        assert_eq!(info.scales, [2.0, 4.0]);
        assert_eq!(info.denoise_levels, [0, 1]);
        assert_eq!(info.denoise_levels_at(Some(2.0)), [0, 1]);
        assert_eq!(info.denoise_levels_at(Some(4.0)), [0]);
        assert_eq!(info.denoise_levels_at(None), [0, 1]);
        assert!(info.runs_without_denoise);
        assert!(resolve_in(Some(d), "realcugan", Some(4.0), Some(0)).is_ok());
        // Upstream has no 4× denoise 1 model: no file to ask for.
        let err = resolve_in(Some(d), "realcugan", Some(4.0), Some(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "engine realcugan supports denoise levels 0, 3 at 4×, not 1"
        );
        // Upstream has a 4× plain model, and it is not here.
        let err = resolve_in(Some(d), "realcugan", Some(4.0), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the realcugan model without denoise at 4× is not installed"),
            "{err}"
        );
        assert!(matches!(
            resolve_in(Some(d), "realcugan", Some(3.0), None),
            Err(EngineError::ModelMissing { .. })
        ));
        assert!(matches!(
            resolve_in(Some(d), "realcugan-pro", Some(2.0), None),
            Err(EngineError::ModelMissing { .. })
        ));
    }

    #[test]
    fn cunet_at_1x_only_denoises() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for stem in ["WAIFU2X_CUNET_UP1X_DENOISE1X", "WAIFU2X_CUNET_UP2X"] {
            for ext in ["param", "bin"] {
                std::fs::write(d.join(format!("{stem}.{ext}")), b"x").unwrap();
            }
        }
        let info = resolve_in(Some(d), "waifu2x-cunet", Some(1.0), Some(1)).unwrap();
        assert_eq!(info.scales, [1.0, 2.0]);
        assert!(info.runs_without_denoise_at(Some(2.0)));
        assert!(!info.runs_without_denoise_at(Some(1.0)));
        assert!(info.runs_without_denoise_at(None));
        let err = resolve_in(Some(d), "waifu2x-cunet", Some(1.0), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "engine waifu2x-cunet at 1× only removes noise: choose a denoise level (0, 1, 2, 3)"
        );
        // A level upstream has at 1× and this folder lacks: where to put it.
        let err = resolve_in(Some(d), "waifu2x-cunet", Some(1.0), Some(3)).unwrap_err();
        assert!(
            err.to_string()
                .contains("noise0..3_model.param/.bin for 1×"),
            "{err}"
        );
        // 1× is no scale of the other engines.
        assert!(matches!(
            resolve_in(Some(d), "lanczos", Some(1.0), None),
            Err(EngineError::UnsupportedScale { .. })
        ));
    }

    #[test]
    fn a_height_fit_without_denoise_skips_cunets_denoise_only_scale() {
        let cunet = EngineInfo {
            name: "waifu2x-cunet".to_owned(),
            description: String::new(),
            kind: EngineKind::Frames,
            scales: vec![1.0, 2.0],
            denoise_levels: vec![0, 1, 2, 3],
            runs_without_denoise: true,
            model: Some(ModelSource::Family(Family::Waifu2xCunet, PathBuf::new())),
        };
        // Same height as the source, or smaller: 1× when denoising, 2× (then down) when not.
        assert_eq!(cunet.engine_scale_with(1.0, Some(1)), 1.0);
        assert_eq!(cunet.engine_scale_with(0.5, Some(3)), 1.0);
        assert_eq!(cunet.engine_scale_with(1.0, None), 2.0);
        assert_eq!(cunet.engine_scale_with(0.5, None), 2.0);
        assert_eq!(cunet.engine_scale_with(1.5, Some(1)), 2.0);
        assert_eq!(cunet.engine_scale(1.0), 1.0);
        // Engines without a family choose by scale alone.
        assert_eq!(lanczos().engine_scale_with(1.7, None), 2.0);
    }

    #[test]
    fn unknown_engine_lists_available_ones() {
        let err = resolve("esrgan-9000", None, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown engine \"esrgan-9000\"; available: lanczos")
        );
    }
}
