# The window's messages in English: the reference catalog. Every other catalog has the same
# message ids, with the same variables; a message missing there is taken from here.
# Adding a language: copy this file to i18n/<language tag>.ftl (ja, pt-BR, …) and translate it.

language-name = English

## Toolbar, status bar, activity log

toolbar-add-files = 📂 Add files…
toolbar-add-files-hint = Choose videos to add to the queue (Ctrl+O)
toolbar-add-folder = 📁 Add folder…
toolbar-add-folder-hint = Add every video in a folder and its subfolders
toolbar-scanning = looking at the files…
activity-log = Activity log
activity-log-hint = Show or hide the worker's messages and errors
tools-missing = ⚠ ffmpeg is missing
tools-check-again = Check again
start = ▶ Start
start-hint = Process the queued videos one after another (Space)
cancel = ■ Cancel
cancel-hint = Stop the running job; it can be resumed later (Space)
status-cancelling = Cancelling…
status-chunk = chunk { $done }/{ $total }
status-ready = Ready
status-ready-queued = Ready · { $count } queued
log-clear = Clear
log-copy = Copy
log-empty = Nothing yet.
drop-overlay = Drop to add to the queue
# Between the parts of a list such as "2 done, 1 failed".
list-separator = {", "}

## Queue

queue-heading = Queue
queue-clear-finished = Clear finished
queue-clear-finished-hint = Remove finished jobs from the list
queue-empty = No videos yet.
queue-thumbnail-alt = Live thumbnail of { $name }
menu-resume = Resume
menu-retry = Retry
menu-move-up = Move up
menu-move-down = Move down
remove = Remove
show-in-folder = Show in folder

## Job states and one-line summaries

state-queued = queued
state-running = running
state-done = done
state-failed = failed
state-cancelled = cancelled
state-interrupted = interrupted
summary-queued-resume = queued · will resume
summary-queued-restart = queued · will start over
summary-starting = starting…
# $step is validate, upscale, package or verify; $percent a whole number.
summary-step-percent = { $step ->
        [validate] validate
        [package] package
        [verify] verify
       *[upscale] upscale
    } { $percent }%
summary-fps = { $fps } fps
summary-eta = ETA { $time }
summary-done-in = done in { $time }
summary-resumable = { $state } · resumable
summary-done = { $count } done
summary-failed = { $count } failed
summary-cancelled = { $count } cancelled
summary-nothing-left = nothing left to do

## Steps (as the progress lists name them)

step-title = { $step ->
        [validate] Validate
        [package] Package
        [verify] Verify
       *[upscale] Upscale
    }

## Settings panel

settings-heading = Settings
settings-engine = Engine
settings-size = Size
size-scale = { $scale }× scale
size-scale-denoise-only = 1× (denoise only)
size-height = { $height }p height
settings-denoise = Denoise
settings-denoise-off = Off
settings-denoise-conservative = { $level } (conservative)
settings-denoise-hint = Noise removal by the model: off, or level 0 (least) to 3 (most)
settings-models = Models
settings-models-none = none
settings-models-hint = Folder of the neural engines' model files: { $path }
settings-models-missing = Not found here: { $engines }
settings-models-unusable = Cannot use (hover for why): { $models }
settings-models-choose-hint = choose a folder for the model files
settings-models-default = Default
settings-models-default-hint = Look in $REFRAME_MODELS_DIR or the default models folder again
settings-preset = Preset
settings-preset-yours = { $name } (yours)
settings-output = Output
settings-output-beside = beside each input
settings-output-beside-button = Beside input
settings-output-beside-hint = Write each output next to its input again
choose-folder = Choose folder…
settings-chunk-length = Chunk length
settings-seconds-suffix = {" "}s
settings-chunk-length-hint = Length of the pieces processed one at a time; at most one piece is lost when a run is interrupted
settings-language = Language
# $language: the system's language, named in its own script.
settings-language-system = System ({ $language })
settings-language-hint = The language of the window; it changes at once
settings-deinterlace = Deinterlace interlaced videos
settings-overwrite = Replace existing outputs
settings-save-preset = Save as preset…
settings-save-preset-hint = Save the selected preset under a name of your own
settings-apply-note = Settings apply to jobs when they start; a started job keeps its own.

## Empty window

empty-title = Drop videos or a folder here
empty-subtitle = They join the queue; press Start to upscale and re-encode them.
empty-add-files = Add files…
empty-add-folder = Add folder…
empty-output-note = Outputs go beside each input unless you choose a folder in Settings.

## The selected job

header-details = Details
header-details-hint = Input, output, settings and per-step progress of this job
header-remove-hint = Remove from the queue (Delete)
header-resume = ⟲ Resume
header-resume-hint = Queue it again; it goes on from the last finished chunk
header-retry = ⟲ Retry
header-retry-hint = Queue it again
details-input = Input
details-output = Output
details-output-later = decided when the job starts
details-settings = Settings
# engine · size · preset · chunk length
details-spec = { $engine } · { $size } · { $preset } · { $seconds } s chunks
details-spec-from-panel = { $spec } (from the panel)
details-chunks = Chunks
chunks-done-of = { $done } of { $total } done
details-speed = Speed
details-fps = { $fps } frames/s
details-time-left = Time left
details-session = Session
details-error = What went wrong
details-worker-log = Worker log (last lines)
details-warnings = Warnings

## Preview

preview-reading-file = Reading the file…
preview-unreadable = No preview: the file could not be read
preview-probe-failed = could not start looking at the file: { $error }
preview-fit = Fit
preview-fit-hint = Show the whole frame (double-click the frame)
preview-one-to-one-hint = One output pixel per screen pixel
preview-position = frame { $frame } / { $frames } · { $time } / { $duration }
preview-try-again = ⟲ Try again
preview-try-again-hint = Ask the preview worker again for what failed
preview-keys = ⌨ Keys
preview-before-after = Before and after
preview-preparing = Preparing the frame…
preview-split = Split
preview-split-hint = Drag to move the split between before (left) and after (right)
preview-before-size = before { $width }×{ $height }
preview-after-size = after { $width }×{ $height }
preview-after-pending-size = after { $width }×{ $height } · pending
preview-after-pending = Upscaling this frame… (a neural engine takes seconds per frame)
preview-approx-before = ≈ keyframe, { $frames ->
        [one] 1 frame
       *[other] { $frames } frames
    } before
preview-approx-after = ≈ keyframe, { $frames ->
        [one] 1 frame
       *[other] { $frames } frames
    } after
preview-approx-same = ≈ keyframe, reduced
preview-after-approximate = Decoding the exact frame…
preview-timeline = Timeline
preview-timeline-hint = Drag to move through the video (←/→ one frame, Shift one second)
preview-spectrogram = Spectrogram
preview-spectrogram-hint = Ctrl+wheel: zoom · Shift+wheel or drag: pan · click: move the cursor here
preview-no-audio = No audio track
preview-reading-audio = Reading the audio…
preview-computing = computing…
spectrum-cwt-log = CWT · log Hz
spectrum-stft-log = STFT · log Hz
spectrum-stft-linear = STFT · linear Hz

## Keys help (keys, then what they do)

keys-frame = ←  →
keys-frame-what = one frame back / forward
keys-second = Shift+←  →
keys-second-what = one second back / forward
keys-ends = Home  End
keys-ends-what = first / last frame
keys-wheel = Wheel on the frame
keys-wheel-what = zoom about the pointer
keys-drag-frame = Drag the frame
keys-drag-frame-what = pan; double-click: fit
keys-drag-split = Drag the split line
keys-drag-split-what = move the before/after split
keys-timeline = Drag or click the timeline
keys-timeline-what = move the cursor
keys-spectrum-zoom = Ctrl+wheel on the spectrogram
keys-spectrum-zoom-what = zoom its time window
keys-spectrum-pan = Shift+wheel or drag
keys-spectrum-pan-what = pan the spectrogram
keys-spectrum-click = Click the spectrogram
keys-spectrum-click-what = move the cursor there
keys-space = Space
keys-space-what = start / cancel the queue
keys-delete = Delete
keys-delete-what = remove the selected job
keys-open = Ctrl+O
keys-open-what = add files

## Dialogs

dialog-add-videos = Add videos
dialog-filter-videos = Videos
dialog-filter-all = All files
dialog-add-folder = Add a folder of videos
dialog-output-folder = Output folder
dialog-models-folder = Folder of the model files
dialog-cancel = Cancel
close-title = A job is running
close-body = Closing stops it. It can be resumed from its last finished chunk the next time you open reframe.
close-stop = Stop and close
close-keep = Keep working
preset-dialog-title = Save as preset
preset-dialog-body = A copy of “{ $preset }” under your own name:
preset-dialog-invalid = Use letters, digits, - and _ only.
preset-dialog-save = Save
resume-title = A previous run was found
resume-file = File
resume-last-updated = Last updated
resume-settings = Settings
resume-settings-value = Size: { $size }   Engine: { $engine }   Preset: { $preset }
resume-explain = Resume goes on from the last finished chunk. Restart discards that work and starts over.
resume-differences = Your current settings differ from that run:
resume-difference = { $setting ->
        [engine] engine
        [model] model
        [scale] scale
        [target-height] target height
        [denoise] denoise
        [preset] preset
        [chunk-length] chunk length
        [deinterlace] deinterlace
       *[other] { $setting }
    }: { $from } → { $to }
resume-difference-preset-contents = preset { $preset }: contents changed ({ $from } → { $to })
setting-value-unset = none
setting-value-on = on
setting-value-off = off
setting-value-seconds = { $seconds } s
resume-explain-differences = Resume continues with that run's settings. Restart starts over with your current settings.
resume-dialog-more = { $count ->
        [one] 1 more file with a previous run after this one.
       *[other] { $count } more files with a previous run after this one.
    }
resume-resume = Resume
resume-resume-hint = Go on from where it stopped
resume-restart = Restart
resume-restart-hint = Start over with the current settings
resume-cancel-hint = Do not add this file to the queue

## Activity log and notices

log-interrupted-last-time = { $count ->
        [one] 1 job was interrupted last time; select it and press Resume to go on
       *[other] { $count } jobs were interrupted last time; select one and press Resume to go on
    }
log-no-file-dialog = no file dialog could be shown (it needs xdg-desktop-portal or zenity); drop files or folders onto the window instead
log-missing-font = no font on this system can show { $script ->
        [cjk] Japanese, Chinese or Korean
        [hebrew] Hebrew
        [arabic] Arabic
        [devanagari] Devanagari
        [indic] Indic
        [thai] Thai
        [lao] Lao
        [georgian] Georgian
        [armenian] Armenian
        [khmer] Khmer
        [myanmar] Myanmar
        [ethiopic] Ethiopic
       *[other] { $script }
    } text such as "{ $example }" (it shows as boxes): install one, e.g. `sudo apt install { $package }` on Debian or Ubuntu
log-no-models-folder = no models folder: only the built-in engine is offered
log-models-folder-empty = models folder { $path }: no model files found (see `reframe engines`)
log-models-folder-found = models folder { $path }: { $engines }
log-scan-failed = could not look at the dropped files: { $error }
log-skipped = skipped, { $reason }: { $path }
log-skipped-more = … and { $count } more skipped
log-added = { $count ->
        [one] added 1 video to the queue
       *[other] added { $count } videos to the queue
    }
log-not-queued = not queued: { $path }
log-cannot-remove-running = the running job cannot be removed; cancel it first
log-cannot-start = cannot start: { $error }
log-cancelling = cancelling the running job…
log-queue-finished = queue finished: { $summary }
log-starting = starting { $name }
log-worker-started = processing worker started (pid { $pid })
log-worker-ended = processing worker { $pid } ended: { $exit }
log-job-resuming = { $name }: resuming, { $done }/{ $total } chunks already done
log-job-chunks = { $count ->
        [one] { $name }: 1 chunk of about { $seconds } s to process
       *[other] { $name }: { $count } chunks of about { $seconds } s to process
    }
log-job-done = done: { $path }
log-job-cancelled = { $name }: cancelled; it can be resumed
log-thumbnail-failed = could not start reading a live thumbnail: { $error }
log-thumbnail-unreadable = the live thumbnail could not be read ({ $error }): { $path }
log-preset-saved = saved preset { $name }: { $path }
log-preset-save-failed = could not save preset { $name }: { $error }
log-dialog-failed = could not open the file dialog: { $error }
log-file-manager-failed = could not open the file manager ({ $error }); the output is in { $path }
log-state-unreadable = could not read saved state ({ $error }); starting fresh: { $path }
log-state-broken = saved state was unreadable ({ $error }); starting fresh, the old file was kept as { $path }
notice-added = { $count ->
        [one] Added 1 video
       *[other] Added { $count } videos
    }
notice-added-skipped = { $count ->
        [one] Added 1 video
       *[other] Added { $count } videos
    }, { $skipped ->
        [one] skipped 1 item
       *[other] skipped { $skipped } items
    }: see the activity log
notice-nothing-queued = Nothing is queued: add videos, or press Resume on a job
notice-queue-finished = Queue finished: { $summary }
skip-already-queued = already in the queue
skip-unreadable = cannot be read ({ $error })
skip-folder-unreadable = folder cannot be read ({ $error })
skip-not-a-video = not a video file (by its extension)
skip-too-many-entries = stopped after { $count } entries; add smaller folders
note-sessions-unavailable = previous runs cannot be looked up: { $error }
note-session-unreadable = a previous run of this video could not be read ({ $error }); it is ignored: { $path }

## Errors the window writes on a job

error-worker-unresponsive = The processing worker stopped responding for { $seconds } s and was stopped. Press Resume to go on from the last finished chunk.
error-worker-version = The processing worker speaks protocol version { $worker }, this window { $window }: reinstall reframe so that both come from the same build.
error-worker-crashed = The processing worker crashed ({ $exit }). Press Resume to go on from the last finished chunk; the worker's last messages are below.
