//! Where a job's output goes: default names beside the input, `--output` as a file or a
//! folder, and which files of a folder count as videos.

use std::path::{Path, PathBuf};

/// File extensions taken as video when a folder is scanned.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mkv", "mov", "avi", "webm", "mpg", "mpeg", "m2v", "ts", "m2ts", "mts", "wmv",
    "flv", "vob", "ogv", "3gp", "3g2", "mxf", "y4m", "divx", "asf", "rm", "rmvb",
];

/// Whether a folder scan should take this file as a video (by extension).
pub fn is_video_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// `clip.mp4` upscaled 2× into `.mp4` → `clip.2x.mp4`; with a target height → `clip.1080p.mp4`;
/// HLS/DASH outputs are folders: `clip.2x.hls`, `clip.2x.dash`.
pub fn default_output_name(
    input: &Path,
    scale: Option<f64>,
    height: Option<u32>,
    extension: &str,
) -> String {
    let stem = input
        .file_stem()
        .map_or_else(|| "output".into(), |s| s.to_string_lossy().into_owned());
    let label = match (height, scale) {
        (Some(h), _) => format!("{h}p"),
        (None, Some(s)) => format!("{s}x"),
        (None, None) => "reframe".to_owned(),
    };
    format!("{stem}.{label}.{extension}")
}

/// The output path for a job: `requested` may be a file, an existing folder, or a folder to
/// create (a path ending in a separator, or one that does not exist and has no extension);
/// `None` puts the output beside the input.
pub fn resolve(input: &Path, requested: Option<&Path>, default_name: &str) -> PathBuf {
    match requested {
        None => input.with_file_name(default_name),
        Some(p) if names_a_folder(p) => p.join(default_name),
        Some(p) => p.to_path_buf(),
    }
}

/// An existing folder, a path ending in a separator, or a new path without an extension.
fn names_a_folder(path: &Path) -> bool {
    path.is_dir()
        || path
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::MAIN_SEPARATOR)
        || (path.extension().is_none() && !path.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        let p = Path::new("/v/my clip.mkv");
        assert_eq!(
            default_output_name(p, Some(2.0), None, "mp4"),
            "my clip.2x.mp4"
        );
        assert_eq!(
            default_output_name(p, Some(1.5), None, "mp4"),
            "my clip.1.5x.mp4"
        );
        assert_eq!(
            default_output_name(p, Some(2.0), Some(1080), "hls"),
            "my clip.1080p.hls"
        );
    }

    #[test]
    fn resolve_output_paths() {
        let dir = tempfile::tempdir().unwrap();
        let input = Path::new("/videos/a.mp4");
        assert_eq!(
            resolve(input, None, "a.2x.mp4"),
            Path::new("/videos/a.2x.mp4")
        );
        assert_eq!(
            resolve(input, Some(dir.path()), "a.2x.mp4"),
            dir.path().join("a.2x.mp4")
        );
        let new_dir = format!("{}/new/", dir.path().display());
        assert_eq!(
            resolve(input, Some(Path::new(&new_dir)), "a.2x.mp4"),
            dir.path().join("new/a.2x.mp4")
        );
        let file = dir.path().join("x.mp4");
        assert_eq!(resolve(input, Some(&file), "a.2x.mp4"), file);
        // A new path without an extension is a folder to create…
        let bare = dir.path().join("out");
        assert_eq!(
            resolve(input, Some(&bare), "a.2x.mp4"),
            bare.join("a.2x.mp4")
        );
        // …but an existing file without one is still that file.
        std::fs::write(&bare, b"").unwrap();
        assert_eq!(resolve(input, Some(&bare), "a.2x.mp4"), bare);
    }

    #[test]
    fn video_extensions() {
        assert!(is_video_path(Path::new("a/B.MKV")));
        assert!(!is_video_path(Path::new("notes.txt")));
        assert!(!is_video_path(Path::new("noext")));
    }
}
