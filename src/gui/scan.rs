//! Turns dropped or opened paths into queue entries, off the UI thread: folders are walked
//! recursively, non-videos are listed with the reason they were skipped, and each video is
//! looked up in the session store so that a previous run can be offered for resuming.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::i18n::{Localizer, tr};
use crate::protocol::{Step, StepStatus};
use crate::session::{InputIdentity, SessionStore, Settings};

/// File extensions treated as videos (lower case).
pub use crate::pipeline::{VIDEO_EXTENSIONS, is_video_path};

/// Most entries of one folder walk (a dropped home folder must not freeze the scan thread).
const MAX_ENTRIES: usize = 50_000;

/// A previous run of a video that can be resumed: what the resume dialog shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeOffer {
    pub input: PathBuf,
    pub session_id: String,
    pub last_updated: String,
    /// The settings that run used.
    pub settings: Settings,
    /// validate / upscale / package / verify: status and percent.
    pub steps: Vec<(Step, StepStatus, f64)>,
    pub chunks_done: usize,
    pub chunks_total: usize,
    /// How the settings panel differs from that run (`"scale: 2 → 3"`); empty when the same.
    pub differences: Vec<crate::session::SettingDifference>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FoundVideo {
    pub path: PathBuf,
    pub offer: Option<ResumeOffer>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanResult {
    pub videos: Vec<FoundVideo>,
    /// Path and why it was skipped.
    pub skipped: Vec<(PathBuf, String)>,
    /// Problems that did not stop the scan (e.g. an unreadable session).
    pub notes: Vec<String>,
}

/// Where the scan looks for sessions, and the settings they are compared with.
#[derive(Clone)]
pub struct ScanContext {
    pub sessions_root: Option<PathBuf>,
    /// The settings panel as session settings; `None` when they cannot be built (e.g. the
    /// preset is unknown), in which case offers list no differences.
    pub current: Option<Settings>,
    /// The language the reasons and notes are written in.
    pub i18n: Arc<Localizer>,
}

/// Runs [`scan`] on a named thread and sends the result.
pub fn spawn_scan(
    paths: Vec<PathBuf>,
    context: ScanContext,
    results: Sender<ScanResult>,
    notify: impl Fn() + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("gui-scan".into())
        .spawn(move || {
            let result = scan(&paths, &context);
            let _ = results.send(result);
            notify();
        })
        .map(|_| ())
}

/// Finds the videos among `paths` (folders walked recursively, in name order).
pub fn scan(paths: &[PathBuf], context: &ScanContext) -> ScanResult {
    let i18n = &*context.i18n;
    let mut result = ScanResult::default();
    let mut found = Vec::new();
    for path in paths {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        match std::fs::metadata(&path) {
            Err(error) => {
                let reason = tr!(i18n, "skip-unreadable", error = error.to_string());
                result.skipped.push((path, reason));
            }
            Ok(meta) if meta.is_dir() => walk(&path, &mut found, &mut result.skipped, i18n),
            Ok(_) if is_video_path(&path) => found.push(path),
            Ok(_) => result.skipped.push((path, tr!(i18n, "skip-not-a-video"))),
        }
    }
    let store = open_store(context.sessions_root.as_deref(), i18n);
    for path in found {
        let offer = match &store {
            Ok(store) => find_offer(
                store,
                &path,
                context.current.as_ref(),
                &mut result.notes,
                i18n,
            ),
            Err(_) => None,
        };
        result.videos.push(FoundVideo { path, offer });
    }
    if let Err(error) = store {
        result.notes.push(error);
    }
    result
}

fn walk(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    skipped: &mut Vec<(PathBuf, String)>,
    i18n: &Localizer,
) {
    let mut stack = vec![dir.to_owned()];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.filter_map(Result::ok).collect(),
            Err(error) => {
                let reason = tr!(i18n, "skip-folder-unreadable", error = error.to_string());
                skipped.push((dir, reason));
                continue;
            }
        };
        entries.sort_by_key(|entry| entry.file_name());
        let mut subdirs = Vec::new();
        for entry in entries {
            seen += 1;
            if seen > MAX_ENTRIES {
                let reason = tr!(i18n, "skip-too-many-entries", count = MAX_ENTRIES);
                skipped.push((dir.clone(), reason));
                return;
            }
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            // file_type does not follow symlinks: a link to a folder is not walked (no loops).
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => subdirs.push(path),
                Ok(_) if is_video_path(&path) => found.push(path),
                Ok(_) => skipped.push((path, tr!(i18n, "skip-not-a-video"))),
                Err(error) => {
                    let reason = tr!(i18n, "skip-unreadable", error = error.to_string());
                    skipped.push((path, reason));
                }
            }
        }
        // Depth-first in name order: push reversed so the first name is walked first.
        stack.extend(subdirs.into_iter().rev());
    }
}

fn open_store(root: Option<&Path>, i18n: &Localizer) -> Result<SessionStore, String> {
    match root {
        Some(root) => Ok(SessionStore::at(root)),
        None => SessionStore::open_default().map_err(|error| {
            tr!(
                i18n,
                "note-sessions-unavailable",
                error = format!("{error:#}")
            )
        }),
    }
}

/// The best resumable session of `path`: one with the current settings, else the latest.
fn find_offer(
    store: &SessionStore,
    path: &Path,
    current: Option<&Settings>,
    notes: &mut Vec<String>,
    i18n: &Localizer,
) -> Option<ResumeOffer> {
    let identity = InputIdentity::of(path).ok()?;
    let mut offers = Vec::new();
    for entry in store.find_for_input(&identity) {
        match entry.progress {
            Ok(progress) if progress.is_resumable() && !entry.locked => {
                let differences = current
                    .map(|current| {
                        let mut current = current.clone();
                        if current.target_height.is_some() {
                            // With a target height the scale follows from the video, which is
                            // the same file: only the height can differ.
                            current.scale = progress.settings.scale;
                        }
                        progress.settings.differences(&current)
                    })
                    .unwrap_or_default();
                let steps = Step::ALL
                    .iter()
                    .map(|step| {
                        let state = progress.steps.get(*step);
                        (*step, state.status, state.progress)
                    })
                    .collect();
                offers.push(ResumeOffer {
                    input: path.to_owned(),
                    session_id: entry.id,
                    last_updated: progress.last_updated.clone(),
                    settings: progress.settings.clone(),
                    steps,
                    chunks_done: progress.completed_chunks.len(),
                    chunks_total: progress.chunks_total,
                    differences,
                });
            }
            Ok(_) => {}
            Err(error) => notes.push(tr!(
                i18n,
                "note-session-unreadable",
                error = error.to_string(),
                path = entry.dir.display().to_string()
            )),
        }
    }
    offers.sort_by(|a, b| {
        (a.differences.is_empty(), &a.last_updated)
            .cmp(&(b.differences.is_empty(), &b.last_updated))
    });
    offers.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(root: &Path) -> ScanContext {
        ScanContext {
            sessions_root: Some(root.to_owned()),
            current: None,
            i18n: Arc::new(Localizer::english()),
        }
    }

    #[test]
    fn video_extensions_ignore_case() {
        assert!(is_video_path(Path::new("/a/B.MKV")));
        assert!(is_video_path(Path::new("clip.mp4")));
        assert!(!is_video_path(Path::new("notes.txt")));
        assert!(!is_video_path(Path::new("mp4")));
    }

    #[test]
    fn folders_are_walked_and_non_videos_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        std::fs::create_dir_all(root.join("season1")).unwrap();
        std::fs::write(root.join("b.mkv"), b"x").unwrap();
        std::fs::write(root.join("a.mp4"), b"x").unwrap();
        std::fs::write(root.join("cover.jpg"), b"x").unwrap();
        std::fs::write(root.join(".hidden.mp4"), b"x").unwrap();
        std::fs::write(root.join("season1").join("ep01.mkv"), b"x").unwrap();
        let loose = dir.path().join("readme.txt");
        std::fs::write(&loose, b"x").unwrap();
        let missing = dir.path().join("gone.mp4");
        let sessions = dir.path().join("sessions");

        let result = scan(
            &[root.clone(), loose.clone(), missing.clone()],
            &context(&sessions),
        );
        let videos: Vec<_> = result.videos.iter().map(|v| v.path.clone()).collect();
        assert_eq!(
            videos,
            [
                root.join("a.mp4"),
                root.join("b.mkv"),
                root.join("season1").join("ep01.mkv")
            ]
        );
        assert!(result.videos.iter().all(|v| v.offer.is_none()));
        let skipped: Vec<_> = result.skipped.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(skipped, [root.join("cover.jpg"), loose, missing]);
        assert!(result.skipped[2].1.starts_with("cannot be read"));
    }
}
