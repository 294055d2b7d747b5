//! Pictures of an input's keyframes: what a seek shows at once, plainly labelled approximate,
//! while the exact frame is decoded (as mpv's thumbfast and editors' scrubbing previews do).
//!
//! A background ffmpeg decodes the keyframes alone (`-discard nokey` drops the other packets
//! in the demuxer, `-skip_frame nokey` whatever the decoder would still not need), scaled to
//! fit [`MAX_SIZE`], [`SPAN_KEYFRAMES`] at a time from the keyframe nearest the frame last
//! asked for; each picture is kept as a JPEG in memory, [`BUDGET_BYTES`] in all. The
//! filling runs on one decoder thread and is stopped (`SIGSTOP`) while the frame lane works on
//! a request, so it never slows the frame the user waits for. Between requests it shares the
//! CPU with the prefetching at the same priority: at the lowest one, the prefetching starved
//! it and a 20-second 1080p clip took 8 s to fill instead of 0.6 s.
//!
//! Pictures are matched to frames by pts against the frame list; a picture is only offered for
//! a frame whose own keyframe (the one before it, or the next one) has been filled, so an
//! approximation is never from farther away than the group of pictures it belongs to.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Sender, unbounded};

use super::RgbaImage;
use super::converter::enlarge_pipe;
use super::decode::{FrameError, InputInfo};
use crate::media::frames::FrameTimes;
use crate::media::process;
use crate::media::tools::{Tools, file_arg, seek_arg};

/// The largest picture kept (fitted inside, aspect kept): about half a 1080p frame, plenty
/// for a picture that is replaced a moment later.
pub const MAX_SIZE: (u32, u32) = (960, 540);
/// Memory for the JPEGs of one input (~70 KB each at 960×540: about 700 keyframes, a
/// 24-minute episode with a keyframe every 2 seconds).
pub const BUDGET_BYTES: usize = 48 << 20;
/// JPEG quality of the pictures.
const QUALITY: u8 = 85;
/// Keyframes decoded by one ffmpeg (its start, ~0.1 s, is paid once per span).
const SPAN_KEYFRAMES: usize = 24;
/// How long a decoded picture may wait for its `showinfo` line.
const INFO_WAIT: Duration = Duration::from_secs(5);

/// One keyframe's picture.
#[derive(Debug, Clone)]
struct Picture {
    width: u32,
    height: u32,
    jpeg: Vec<u8>,
}

/// A picture offered for a frame: the keyframe it shows and its pixels.
#[derive(Debug)]
pub struct Approximation {
    /// The index of the keyframe the picture is of.
    pub picture_index: u64,
    pub picture: RgbaImage,
}

#[derive(Debug, Default)]
struct Store {
    pictures: BTreeMap<u64, Picture>,
    /// The keyframes pictured, in the order they were.
    made: Vec<u64>,
    bytes: usize,
    /// The filling ffmpeg while it runs (cleared before it is reaped, under this lock, so a
    /// signal never reaches a recycled pid).
    pid: Option<u32>,
    /// Whether it should be stopped: set by [`KeyframePictures::pause`].
    paused: bool,
    /// The filling ended (every keyframe done, the budget reached, or a failure).
    finished: bool,
}

#[derive(Debug, Default)]
struct Shared {
    store: Mutex<Store>,
    quit: AtomicBool,
    /// The frame last asked for: the filling goes on from the keyframes nearest it.
    cursor: AtomicU64,
}

impl Shared {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The keyframe pictures of one input, filled in the background from [`KeyframePictures::start`]
/// on; dropping it stops the filling.
pub struct KeyframePictures {
    shared: Arc<Shared>,
    loaded: Arc<InputInfo>,
}

impl std::fmt::Debug for KeyframePictures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = self.shared.store();
        write!(
            f,
            "KeyframePictures({} pictures, {} bytes, finished: {})",
            store.pictures.len(),
            store.bytes,
            store.finished
        )
    }
}

/// The size a picture of a `display`-sized frame is made at.
pub fn picture_size(display: (u32, u32)) -> (u32, u32) {
    let (w, h) = (display.0.max(1) as f64, display.1.max(1) as f64);
    let factor = (MAX_SIZE.0 as f64 / w).min(MAX_SIZE.1 as f64 / h).min(1.0);
    let even = |v: f64| (((v * factor) / 2.0).round() as u32 * 2).max(2);
    (even(w), even(h))
}

impl KeyframePictures {
    /// Starts filling the pictures of `path` (whose probe and frame list are `loaded`), from
    /// the keyframes nearest frame `cursor` on.
    pub fn start(
        tools: &Tools,
        path: &Path,
        loaded: Arc<InputInfo>,
        cursor: u64,
    ) -> KeyframePictures {
        Self::start_spans(tools, path, loaded, cursor, SPAN_KEYFRAMES)
    }

    fn start_spans(
        tools: &Tools,
        path: &Path,
        loaded: Arc<InputInfo>,
        cursor: u64,
        span: usize,
    ) -> KeyframePictures {
        let shared = Arc::new(Shared {
            cursor: AtomicU64::new(cursor),
            ..Shared::default()
        });
        let (thread_shared, thread_loaded) = (Arc::clone(&shared), Arc::clone(&loaded));
        let (tools, path) = (tools.clone(), path.to_path_buf());
        let spawned = std::thread::Builder::new()
            .name("preview-keyframes".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                if let Err(e) = fill(&tools, &path, &thread_loaded, &thread_shared, span) {
                    log::info!("keyframe pictures stopped: {e}");
                }
                let mut store = thread_shared.store();
                store.finished = true;
                log::debug!(
                    "{} keyframe pictures ({} KiB) in {:.0} ms",
                    store.pictures.len(),
                    store.bytes >> 10,
                    started.elapsed().as_secs_f64() * 1000.0
                );
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the keyframe pictures thread: {e}");
            shared.store().finished = true;
        }
        KeyframePictures { shared, loaded }
    }

    /// The picture for frame `index`: its keyframe's, or the next keyframe's when that is
    /// nearer, if filled. Decodes the JPEG.
    pub fn approximation(&self, index: u64) -> Option<Approximation> {
        let (picture_index, picture) = {
            let store = self.shared.store();
            let found = neighbour_keyframes(&self.loaded.times, index)
                .into_iter()
                .flatten()
                .filter_map(|k| store.pictures.get(&k).map(|p| (k, p)))
                .min_by_key(|(k, _)| k.abs_diff(index))?;
            (found.0, found.1.clone())
        };
        let decoded = image::load_from_memory_with_format(&picture.jpeg, image::ImageFormat::Jpeg)
            .map_err(|e| log::warn!("a keyframe picture does not decode: {e}"))
            .ok()?
            .into_rgba8();
        if decoded.dimensions() != (picture.width, picture.height) {
            return None;
        }
        Some(Approximation {
            picture_index,
            picture: RgbaImage {
                width: picture.width,
                height: picture.height,
                pixels: decoded.into_raw(),
            },
        })
    }

    /// Frame `index` is being looked at: the pictures not made yet are made from there on.
    pub fn look_at(&self, index: u64) {
        self.shared.cursor.store(index, Ordering::SeqCst);
    }

    /// Stops the filling process until [`KeyframePictures::resume`].
    pub fn pause(&self) {
        self.signal(true);
    }

    pub fn resume(&self) {
        self.signal(false);
    }

    fn signal(&self, pause: bool) {
        let mut store = self.shared.store();
        if store.paused == pause {
            return;
        }
        store.paused = pause;
        if let Some(pid) = store.pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
            let signal = if pause { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: kill(2) on our own child, which is not reaped while `pid` is set.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

impl Drop for KeyframePictures {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::SeqCst);
        let store = self.shared.store();
        if let Some(pid) = store.pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: as in `signal`; SIGKILL ends a stopped process too.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The keyframe at or before `index` and the first one after it.
fn neighbour_keyframes(times: &FrameTimes, index: u64) -> [Option<u64>; 2] {
    if index >= times.len() as u64 {
        return [None, None];
    }
    let after = times.frames[index as usize + 1..]
        .iter()
        .position(|f| f.keyframe)
        .map(|i| index + 1 + i as u64);
    [times.keyframe_at_or_before(index), after]
}

/// Decodes the keyframes of `path` into `shared`'s store until all are made, the budget is
/// reached or the pictures are dropped: `span` keyframes at a time, each span starting
/// at the keyframe nearest the frame last asked for that has no picture yet, so that a long
/// file has pictures where the user looks first.
fn fill(
    tools: &Tools,
    path: &Path,
    loaded: &InputInfo,
    shared: &Shared,
    span: usize,
) -> Result<(), FrameError> {
    let times = &loaded.times;
    let keyframes: Vec<u64> = (0..times.len() as u64)
        .filter(|&i| times.frames[i as usize].keyframe)
        .collect();
    let mut tried = vec![false; keyframes.len()];
    while !shared.quit.load(Ordering::SeqCst) {
        let cursor = shared.cursor.load(Ordering::SeqCst);
        let Some(first) = (0..keyframes.len())
            .filter(|&i| !tried[i])
            .min_by_key(|&i| (keyframes[i].abs_diff(cursor), keyframes[i] > cursor))
        else {
            return Ok(());
        };
        let last = (first..keyframes.len())
            .take_while(|&i| !tried[i])
            .take(span.max(1))
            .last()
            .unwrap_or(first);
        let time = |i: usize| times.frames[keyframes[i] as usize].time_secs;
        let start = loaded.info.start_time_secs;
        let seek = (first > 0).then(|| time(first) - start);
        // Up to just past the span's last keyframe (whose picture is the last one wanted).
        let until = (last + 1 < keyframes.len()).then(|| time(last) - time(first) + 1e-3);
        fill_span(tools, path, loaded, shared, seek, until)?;
        tried[first..=last].fill(true);
    }
    Ok(())
}

/// One ffmpeg decoding the keyframes from `seek` seconds (from the file's start; `None`: the
/// start) for `until` seconds (`None`: to the end).
fn fill_span(
    tools: &Tools,
    path: &Path,
    loaded: &InputInfo,
    shared: &Shared,
    seek: Option<f64>,
    until: Option<f64>,
) -> Result<(), FrameError> {
    let (width, height) = picture_size(loaded.info.video.display_size());
    let frame_len = width as usize * height as usize * 3;
    let mut cmd = Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]);
    cmd.args(["-discard", "nokey", "-skip_frame", "nokey", "-threads", "1"]);
    if let Some(seek) = seek {
        cmd.args(["-ss", &seek_arg(seek)]);
    }
    if let Some(until) = until {
        cmd.args(["-t", &format!("{until:.6}")]);
    }
    // The stream's own timestamps, which the frame list has.
    cmd.arg("-copyts").arg("-i").arg(file_arg(path));
    cmd.arg("-map")
        .arg(format!("0:{}", loaded.info.video.index));
    cmd.args([
        "-an",
        "-sn",
        "-dn",
        "-threads",
        "1",
        "-fps_mode",
        "passthrough",
    ]);
    cmd.arg("-vf").arg(format!(
        "scale={width}:{height}:flags=bilinear,format=rgb24,showinfo=checksum=0"
    ));
    cmd.args(["-f", "rawvideo", "pipe:1"]);
    cmd.stdout(Stdio::piped());
    let (info_tx, infos) = unbounded::<Option<i64>>();
    let mut child = {
        // The pid is published under the lock, so `pause` cannot miss a process it should stop.
        let mut store = shared.store();
        if shared.quit.load(Ordering::SeqCst) {
            return Ok(());
        }
        let child =
            process::spawn_watching_stderr(cmd, "preview-keyframes", Stdio::null(), move |line| {
                if let Some(pts) = showinfo_pts(line) {
                    let _ = Sender::send(&info_tx, pts);
                }
            })
            .map_err(FrameError::failed)?;
        store.pid = Some(child.pid());
        if store.paused {
            // SAFETY: our child, just started.
            unsafe { libc::kill(child.pid() as libc::pid_t, libc::SIGSTOP) };
        }
        child
    };
    let result = (|| {
        let mut stdout = child
            .take_stdout()
            .ok_or_else(|| FrameError::Failed("no output pipe".into()))?;
        enlarge_pipe(&stdout);
        let mut rgb = vec![0u8; frame_len];
        loop {
            if shared.quit.load(Ordering::SeqCst) {
                return Ok(());
            }
            match stdout.read_exact(&mut rgb) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(FrameError::failed(e)),
            }
            let pts = infos
                .recv_timeout(INFO_WAIT)
                .map_err(|_| FrameError::Failed("a picture came without its pts".into()))?;
            let Some(index) = pts.and_then(|pts| index_of_keyframe(&loaded.times, pts)) else {
                continue;
            };
            let mut jpeg = Vec::with_capacity(frame_len / 10);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
                .encode(&rgb, width, height, image::ExtendedColorType::Rgb8)
                .map_err(FrameError::failed)?;
            let mut store = shared.store();
            if store.bytes + jpeg.len() > BUDGET_BYTES {
                return Err(FrameError::Failed(format!(
                    "the memory budget ({} MiB) is reached after {} pictures",
                    BUDGET_BYTES >> 20,
                    store.pictures.len()
                )));
            }
            store.bytes += jpeg.len();
            store.made.push(index);
            store.pictures.insert(
                index,
                Picture {
                    width,
                    height,
                    jpeg,
                },
            );
        }
    })();
    shared.store().pid = None;
    drop(child);
    result
}

/// The index of the keyframe with this pts in the frame list, if it is one.
fn index_of_keyframe(times: &FrameTimes, pts: i64) -> Option<u64> {
    times
        .index_of(pts)
        .filter(|&i| times.frames[i as usize].keyframe)
}

/// The pts from a `showinfo` frame line (`Some(None)` for a frame without one).
fn showinfo_pts(line: &str) -> Option<Option<i64>> {
    if !line.contains("Parsed_showinfo") || !line.contains(" n:") {
        return None;
    }
    let at = line.find(" pts:")? + " pts:".len();
    let word = line[at..].split_whitespace().next()?;
    Some(word.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::frames::{FrameTime, TimestampSource};
    use crate::media::probe::Rational;

    fn times(keyframes: &[bool]) -> FrameTimes {
        FrameTimes {
            stream_index: 0,
            time_base: Rational { num: 1, den: 24 },
            frames: keyframes
                .iter()
                .enumerate()
                .map(|(i, &keyframe)| FrameTime {
                    pts: i as i64 * 2,
                    time_secs: i as f64 / 12.0,
                    keyframe,
                })
                .collect(),
            source: TimestampSource::Packets,
        }
    }

    /// Waits until the filling has ended (a minute at most).
    fn wait_finished(pictures: &KeyframePictures) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !pictures.shared.store().finished {
            assert!(
                std::time::Instant::now() < deadline,
                "the filling never ended"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn every_keyframe_gets_a_picture_and_pause_holds_the_filling() {
        let tools = Tools::locate().expect("ffmpeg");
        let dir = tempfile::tempdir().expect("temp dir");
        let clip = dir.path().join("gop.mp4");
        let status = Command::new(&tools.ffmpeg)
            .args(["-v", "error", "-nostdin", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=1280x720:rate=24:duration=4")
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "10"])
            .args(["-sc_threshold", "0", "-pix_fmt", "yuv420p"])
            .arg(&clip)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
        let info = crate::media::probe::probe(&tools, &clip).expect("probe");
        let times =
            crate::media::frames::frame_times(&tools, &clip, info.video.index).expect("frame list");
        let keyframes: Vec<u64> = (0..times.len() as u64)
            .filter(|&i| times.frames[i as usize].keyframe)
            .collect();
        assert_eq!(keyframes.len(), 10, "{keyframes:?}");
        let loaded = Arc::new(InputInfo { info, times });

        // Paused before its process starts: nothing is made until it resumes.
        let pictures = KeyframePictures::start(&tools, &clip, Arc::clone(&loaded), 0);
        pictures.pause();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(pictures.approximation(0).is_none(), "made while paused");
        pictures.resume();
        let started = std::time::Instant::now();
        wait_finished(&pictures);
        eprintln!(
            "filled in {:.0} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
        let made: Vec<u64> = pictures.shared.store().pictures.keys().copied().collect();
        assert_eq!(made, keyframes);

        // Spans of 3 from the keyframe at or before the frame looked at, then the nearest
        // ones left: the same pictures, each once, the first near the cursor.
        let spans =
            KeyframePictures::start_spans(&tools, &clip, Arc::clone(&loaded), keyframes[6] + 2, 3);
        wait_finished(&spans);
        let made = spans.shared.store().made.clone();
        assert_eq!(made[..3], keyframes[6..9], "{made:?}");
        let mut sorted = made.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, keyframes, "{made:?}");

        // The nearer of the frame's keyframe and the next one.
        let (k, next) = (keyframes[3], keyframes[4]);
        let near = |index: u64| pictures.approximation(index).map(|a| a.picture_index);
        assert_eq!(near(k), Some(k));
        assert_eq!(near(k + 2), Some(k));
        assert_eq!(near(next - 2), Some(next));
        assert_eq!(
            near(loaded.times.len() as u64 - 1),
            keyframes.last().copied()
        );
        assert_eq!(near(loaded.times.len() as u64), None);
        let picture = pictures.approximation(k + 1).expect("a picture").picture;
        assert_eq!((picture.width, picture.height), (960, 540));
        assert_eq!(picture.pixels.len(), 960 * 540 * 4);

        // Dropping it while the filling runs ends its process.
        let again = KeyframePictures::start(&tools, &clip, Arc::clone(&loaded), 0);
        let shared = Arc::clone(&again.shared);
        drop(again);
        wait_finished(&KeyframePictures {
            shared,
            loaded: Arc::clone(&loaded),
        });
    }

    #[test]
    fn pictures_fit_the_box_and_keep_the_aspect() {
        assert_eq!(picture_size((1920, 1080)), (960, 540));
        assert_eq!(picture_size((3840, 2160)), (960, 540));
        assert_eq!(picture_size((640, 360)), (640, 360));
        assert_eq!(picture_size((1080, 1920)), (304, 540));
        assert_eq!(picture_size((1440, 1080)), (720, 540));
        assert_eq!(picture_size((0, 0)), (2, 2));
    }

    #[test]
    fn neighbours_are_the_keyframe_before_and_the_next() {
        let t = times(&[true, false, false, true, false, false, false]);
        assert_eq!(neighbour_keyframes(&t, 0), [Some(0), Some(3)]);
        assert_eq!(neighbour_keyframes(&t, 2), [Some(0), Some(3)]);
        assert_eq!(neighbour_keyframes(&t, 3), [Some(3), None]);
        assert_eq!(neighbour_keyframes(&t, 6), [Some(3), None]);
        assert_eq!(neighbour_keyframes(&t, 7), [None, None]);
        assert_eq!(index_of_keyframe(&t, 6), Some(3));
        assert_eq!(index_of_keyframe(&t, 4), None);
        assert_eq!(index_of_keyframe(&t, 5), None);
    }

    #[test]
    fn showinfo_lines_give_their_pts() {
        let line = "[Parsed_showinfo_2 @ 0x55] n:   3 pts:  25600 pts_time:2 duration:512";
        assert_eq!(showinfo_pts(line), Some(Some(25600)));
        let none = "[Parsed_showinfo_2 @ 0x55] n:   3 pts:NOPTS pts_time:NOPTS";
        assert_eq!(showinfo_pts(none), Some(None));
        assert_eq!(
            showinfo_pts("[Parsed_showinfo_2 @ 0x55] config in time_base"),
            None
        );
        assert_eq!(showinfo_pts("frame= 10 fps=0.0"), None);
    }
}
