//! Models people bring: any ncnn super-resolution model (`NAME.param` + `NAME.bin`) in
//! `<models folder>/custom/` is an engine named `NAME` — the ESRGAN-family models converted
//! for Upscayl and realesrgan-ncnn-vulkan (remacri, ultrasharp, 4x-AnimeSharp…) among them.
//!
//! Nothing is taken from the file name: the model is loaded (every layer and weight checked,
//! an error names the line and layer), its one input and output come from the graph, and its
//! scale from shape inference (`out = scale·in` for RGB inputs of two sizes). A model that
//! cannot run is listed with the reason instead, never offered, never a crash.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::models::ModelFiles;
use crate::neural::{Net, tiled_output_shape};

/// The folder, inside the models folder, that holds custom models.
pub const CUSTOM_FOLDER: &str = "custom";

/// Largest scale offered below a model's own: the x2…x(n−1) outputs are the model's output
/// resized with ncnn's bicubic, as animevideov3's shipped x2/x3 models do.
const SMALLEST_SCALE: u32 = 2;

/// One `.param` found in the custom folder.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomModel {
    /// The engine name: the file name without `.param`.
    pub name: String,
    pub files: ModelFiles,
    /// The model's own scale, or why it cannot be used.
    pub status: Result<u32, String>,
}

impl CustomModel {
    /// Output scales offered: the model's own and the integers from 2 below it.
    pub fn scales(&self) -> Vec<f64> {
        match self.status {
            Ok(native) => (SMALLEST_SCALE..=native).map(f64::from).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// The custom models in `models_dir/custom`, by name; each checked by loading it.
/// `taken` are the names of the built-in engines: a custom model may not hide one.
pub fn scan(models_dir: &Path, taken: &[&str]) -> Vec<CustomModel> {
    let dir = models_dir.join(CUSTOM_FOLDER);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut params: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "param") && p.is_file())
        .collect();
    params.sort();
    params
        .into_iter()
        .filter_map(|param| {
            let name = param.file_stem()?.to_string_lossy().into_owned();
            let files = ModelFiles {
                bin: param.with_extension("bin"),
                param,
            };
            let status = if taken.contains(&name.as_str()) {
                Err(format!(
                    "`{name}` is the name of a built-in engine; rename both files"
                ))
            } else {
                check(&files)
            };
            Some(CustomModel {
                name,
                files,
                status,
            })
        })
        .collect()
}

/// What a model file is on disk: its path, length and modification time.
type Stamp = (PathBuf, u64, Option<std::time::SystemTime>);
/// The `.param`'s stamp and the `.bin`'s, if there is one.
type PairStamp = (Stamp, Option<Stamp>);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((path.to_owned(), meta.len(), meta.modified().ok()))
}

/// [`load_and_check`], remembered per file pair as it is on disk: the window rescans the folder
/// each time its engine list opens, and loading a large model takes a noticeable moment.
fn check(files: &ModelFiles) -> Result<u32, String> {
    static CHECKED: Mutex<Vec<(PairStamp, Result<u32, String>)>> = Mutex::new(Vec::new());
    let Some(param) = stamp(&files.param) else {
        return load_and_check(files);
    };
    let key = (param, stamp(&files.bin));
    if let Ok(checked) = CHECKED.lock()
        && let Some((_, status)) = checked.iter().find(|(k, _)| *k == key)
    {
        return status.clone();
    }
    let status = load_and_check(files);
    if let Ok(mut checked) = CHECKED.lock() {
        checked.retain(|((p, _), _)| p.0 != key.0.0);
        checked.push((key, status.clone()));
    }
    status
}

/// Loads the model and finds its scale; the reason it cannot be used otherwise.
fn load_and_check(files: &ModelFiles) -> Result<u32, String> {
    if !files.bin.is_file() {
        return Err(format!(
            "{} is missing (a model is a .param and a .bin of the same name)",
            file_name(&files.bin)
        ));
    }
    let net = Net::load(&files.param, &files.bin).map_err(|e| e.to_string())?;
    scale_of(&net)
}

/// The scale of an RGB → RGB model, from shape inference.
pub(crate) fn scale_of(net: &Net) -> Result<u32, String> {
    const SIDE: usize = 64;
    let (channels, height, width) =
        tiled_output_shape(net, 3, SIDE, SIDE).map_err(|e| e.to_string())?;
    if channels != 3 {
        return Err(format!(
            "it makes {channels} channels from an RGB image; an upscaling model makes 3"
        ));
    }
    let scale = height / SIDE;
    if scale < 2 || height != width || !height.is_multiple_of(SIDE) {
        return Err(format!(
            "it makes {width}×{height} from {SIDE}×{SIDE}: not an upscaling model"
        ));
    }
    u32::try_from(scale).map_err(|_| format!("its scale {scale} is out of range"))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::testutil::{self, Rng};

    fn write(dir: &Path, name: &str, param: &str, bin: &[u8]) {
        std::fs::write(dir.join(format!("{name}.param")), param).expect("write");
        std::fs::write(dir.join(format!("{name}.bin")), bin).expect("write");
    }

    #[test]
    fn custom_models_are_checked_by_loading_them() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join(CUSTOM_FOLDER);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut rng = Rng(21);
        let (param, bin) = testutil::mini_rrdb(&mut rng, 2);
        write(&dir, "4x-ミニ sharp", &param, &bin);
        let (param, bin) = testutil::mini_compact(&mut rng, Some(0.5));
        write(&dir, "compact-x2", &param, &bin);
        write(&dir, "lanczos", &param, &bin);
        // An unknown layer: the reason names it and its line.
        let bad = param.replace("PixelShuffle ps", "Swish ps");
        write(&dir, "unknown-layer", &bad, &bin);
        // A .param without its .bin, and garbage.
        std::fs::write(dir.join("lonely.param"), &param).expect("write");
        write(&dir, "garbage", "not a model", b"\x00\x01");
        std::fs::write(dir.join("readme.txt"), "not a model").expect("write");

        let found = scan(root.path(), &["lanczos"]);
        let by_name = |name: &str| {
            found
                .iter()
                .find(|m| m.name == name)
                .unwrap_or_else(|| panic!("{name} not listed: {found:?}"))
        };
        assert_eq!(found.len(), 6, "{found:?}");
        assert_eq!(by_name("4x-ミニ sharp").status, Ok(4));
        assert_eq!(by_name("4x-ミニ sharp").scales(), [2.0, 3.0, 4.0]);
        assert_eq!(by_name("compact-x2").status, Ok(2));
        assert_eq!(by_name("compact-x2").scales(), [2.0]);
        let reason = |name: &str| by_name(name).status.clone().expect_err(name);
        assert!(reason("lanczos").contains("built-in"));
        let unknown = reason("unknown-layer");
        assert!(
            unknown.contains("Swish") && unknown.contains("line"),
            "{unknown}"
        );
        assert!(reason("lonely").contains("lonely.bin"));
        assert!(!reason("garbage").is_empty());
        // No folder: nothing.
        assert!(scan(&root.path().join("none"), &[]).is_empty());
    }
}
