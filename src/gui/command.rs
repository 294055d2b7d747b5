//! What the user asked for. Drawing code returns these instead of changing the app while it
//! draws; `App::apply` carries them out in one place, which tests call without a window.

use std::path::PathBuf;

use super::preview_view::{FrameView, TimeWindow};
use crate::protocol::JobId;

#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Files and folders to queue (folders are walked recursively).
    AddPaths(Vec<PathBuf>),
    /// The native "open files" dialog (Ctrl+O).
    OpenFilesDialog,
    OpenFolderDialog,
    PickOutputFolder,
    /// The native folder picker for the neural engines' model files.
    PickModelsFolder,
    /// Uses this models folder (`None`: the default one) and lists the engines again.
    SetModelsFolder(Option<PathBuf>),
    /// Lists the engines the models folder gives again (files may have been added).
    RescanModels,
    /// Outputs go beside their inputs again.
    OutputBesideInput,
    Select(JobId),
    Remove(JobId),
    MoveUp(JobId),
    MoveDown(JobId),
    /// Puts a failed, cancelled or interrupted job back in the queue (it resumes from its
    /// session when it can) and starts the queue.
    Retry(JobId),
    /// Removes finished jobs from the list.
    ClearFinished,
    StartQueue,
    /// Cancels the running job (the worker is stopped; the job stays resumable).
    Cancel,
    /// Opens the folder holding this path in the file manager.
    ShowInFolder(PathBuf),
    /// Resume dialog: go on from the previous run.
    Resume,
    /// Resume dialog: start over with the settings panel's values.
    Restart,
    /// Resume dialog: do not queue the file.
    DismissOffer,
    /// A settings widget changed: save them.
    SettingsChanged,
    /// The window's language: a catalog tag, or `None` to follow the system.
    SetLanguage(Option<String>),
    ToggleLog,
    ClearLog,
    /// Looks for ffmpeg again (after the user installed it).
    RecheckTools,
    /// Close-while-running confirmation: cancel the job and close.
    ConfirmClose,
    /// Close-while-running confirmation: keep the window.
    KeepOpen,
    /// Saves the selected preset under a new user preset name.
    SavePresetAs(String),
    /// Moves the timeline cursor; `immediate` asks for the frame at once (keys, clicks), else
    /// once the cursor rests (dragging).
    Seek {
        frame_index: u64,
        immediate: bool,
    },
    /// The before/after split line, as a fraction of the view's width (0 = all after).
    SetSplit(f32),
    /// Zoom and pan of the before/after view.
    SetFrameView(FrameView),
    /// The spectrogram's time window (zoom and pan).
    SetSpectrumWindow(TimeWindow),
    /// Asks the preview worker again for what failed.
    RetryPreview,
    /// Shows or hides the selected job's details above the preview.
    ToggleDetails,
}
