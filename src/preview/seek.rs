//! Random access to decoded frames for the frame preview: a warm ffmpeg that seeks on command
//! ([`Seeker`]) and a byte-budgeted cache of the frames it decoded ([`FrameStore`]).
//!
//! Why: a fresh ffmpeg per seek pays ~0.3 s here (start-up, opening and probing the input,
//! starting the decoder) before it decodes from the keyframe to the wanted frame. The seeker
//! is started once per input: its `movie` source filter opens the file, and every seek is the
//! filter's `seek` command typed on ffmpeg's stdin (its interactive `c` command), so a seek
//! costs only the decoding from the keyframe. Frames leave in the decoder's own pixel format
//! (no conversion) with their pts, which `showinfo` writes to stderr before the frame goes out;
//! the two streams are paired by showinfo's frame counter. Every decoded frame is kept in the
//! store, so stepping back within what was decoded, or to what was prefetched while the user
//! looked, decodes nothing.
//!
//! The file is opened through a symlink in a private directory, made the child's working
//! directory, so the path never appears in the filter graph (no escaping, no injection).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

use super::converter::{enlarge_pipe, spawn_reader};
use super::decode::FrameError;
use crate::media::process::{self, Spawned};
use crate::media::tools::Tools;

/// How often a wait checks for cancellation.
const CANCEL_POLL: Duration = Duration::from_millis(2);
/// showinfo's line for a frame is written before the frame itself; a frame whose line does not
/// follow within this time means the two streams are out of step.
const INFO_WAIT: Duration = Duration::from_secs(2);

/// Bytes of one frame of `pix_fmt` as ffmpeg's rawvideo muxer packs it (no padding), for the
/// planar and semi-planar formats decoders commonly produce; `None` for others.
pub fn raw_frame_len(pix_fmt: &str, width: u32, height: u32) -> Option<usize> {
    let (w, h) = (width as usize, height as usize);
    let (base, depth_suffix) = match pix_fmt.find('p') {
        Some(i) if pix_fmt.starts_with("yuv") => pix_fmt.split_at(i + 1),
        _ => (pix_fmt, ""),
    };
    let sample_bytes = match depth_suffix {
        "" => 1,
        "9le" | "10le" | "12le" | "14le" | "16le" => 2,
        _ => return None,
    };
    let ceil_shift = |v: usize, s: u32| (v + (1 << s) - 1) >> s;
    let (cw, ch, alpha) = match base {
        "yuv420p" | "yuvj420p" => (1, 1, false),
        "yuva420p" => (1, 1, true),
        "yuv422p" | "yuvj422p" => (1, 0, false),
        "yuv444p" | "yuvj444p" => (0, 0, false),
        "yuv440p" | "yuvj440p" => (0, 1, false),
        "yuv411p" => (2, 0, false),
        "yuv410p" => (2, 2, false),
        "gray" => return Some(w * h),
        "nv12" | "nv21" => return Some(w * h + 2 * ceil_shift(w, 1) * ceil_shift(h, 1)),
        _ => return None,
    };
    let luma = w * h;
    let chroma = ceil_shift(w, cw) * ceil_shift(h, ch);
    let planes = luma + 2 * chroma + if alpha { luma } else { 0 };
    Some(planes * sample_bytes)
}

/// Decoded frames by index, least recently used evicted beyond a byte budget.
pub struct FrameStore {
    budget_bytes: usize,
    bytes: usize,
    frames: HashMap<u64, Arc<Vec<u8>>>,
    /// Oldest use first.
    order: VecDeque<u64>,
}

impl FrameStore {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            bytes: 0,
            frames: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// How many frames of `frame_len` bytes fit.
    pub fn capacity(&self, frame_len: usize) -> usize {
        self.budget_bytes / frame_len.max(1)
    }

    pub fn contains(&self, index: u64) -> bool {
        self.frames.contains_key(&index)
    }

    /// The frame, marked as just used.
    pub fn get(&mut self, index: u64) -> Option<Arc<Vec<u8>>> {
        let frame = Arc::clone(self.frames.get(&index)?);
        self.touch(index);
        Some(frame)
    }

    pub fn insert(&mut self, index: u64, data: Vec<u8>) {
        let len = data.len();
        if let Some(old) = self.frames.insert(index, Arc::new(data)) {
            self.bytes -= old.len();
        }
        self.bytes += len;
        self.touch(index);
        while self.bytes > self.budget_bytes {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.frames.remove(&oldest) {
                self.bytes -= old.len();
            }
        }
    }

    pub fn clear(&mut self) {
        self.frames.clear();
        self.order.clear();
        self.bytes = 0;
    }

    fn touch(&mut self, index: u64) {
        if let Some(at) = self.order.iter().position(|&i| i == index) {
            self.order.remove(at);
        }
        self.order.push_back(index);
    }
}

/// A frame as the seeker decoded it.
#[derive(Debug)]
pub struct DecodedFrame {
    pub pts: Option<i64>,
    pub data: Vec<u8>,
}

/// One frame's line from `showinfo`: its counter, pts, pixel format and size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShowInfo {
    n: u64,
    pts: Option<i64>,
    format: String,
    size: (u32, u32),
}

/// Parses `[Parsed_showinfo_1 @ 0x…] n:  12 pts:  25600 pts_time:2 … fmt:yuv420p … s:1920x1080 …`.
fn parse_showinfo(line: &str) -> Option<ShowInfo> {
    if !line.contains("Parsed_showinfo") {
        return None;
    }
    let field = |name: &str| -> Option<&str> {
        let at = line.find(&format!(" {name}:"))? + name.len() + 2;
        line[at..].split_whitespace().next()
    };
    let n = field("n")?.parse().ok()?;
    let pts = field("pts")?.parse().ok();
    let format = field("fmt")?.to_owned();
    let (w, h) = field("s")?.split_once('x')?;
    Some(ShowInfo {
        n,
        pts,
        format,
        size: (w.parse().ok()?, h.parse().ok()?),
    })
}

/// A private directory holding a symlink to the input; removed on drop.
struct LinkDir {
    dir: PathBuf,
}

impl LinkDir {
    const LINK: &'static str = "input";

    fn new(target: &Path) -> std::io::Result<LinkDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "reframe-preview-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir)?;
        let made = LinkDir { dir };
        std::os::unix::fs::symlink(target, made.dir.join(Self::LINK))?;
        Ok(made)
    }
}

impl Drop for LinkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running ffmpeg decoding one input's video stream, repositioned by [`Seeker::seek`].
pub struct Seeker {
    stream_index: usize,
    format: String,
    size: (u32, u32),
    frame_len: usize,
    stdin: ChildStdin,
    frames: Receiver<Vec<u8>>,
    infos: Receiver<ShowInfo>,
    /// Frames taken so far (showinfo's counter of the next one).
    taken: u64,
    /// The first frame, read before the first seek.
    pending: Option<DecodedFrame>,
    child: Spawned,
    _link: LinkDir,
}

impl Seeker {
    /// Starts decoding `path`'s stream `stream_index` from the start; frames are `pix_fmt`,
    /// `size`, as the decoder produces them (any other is an error at the first frame).
    pub fn start(
        tools: &Tools,
        path: &Path,
        stream_index: usize,
        pix_fmt: &str,
        size: (u32, u32),
    ) -> Result<Seeker, FrameError> {
        let frame_len = raw_frame_len(pix_fmt, size.0, size.1).ok_or_else(|| {
            FrameError::Failed(format!("no raw layout for the pixel format {pix_fmt}"))
        })?;
        let link = LinkDir::new(path)
            .map_err(|e| FrameError::Failed(format!("cannot make a private link: {e}")))?;
        let mut cmd = Command::new(&tools.ffmpeg);
        // No -nostdin: the seek commands arrive on stdin. Info level for showinfo's lines.
        cmd.args(["-hide_banner", "-nostats", "-loglevel", "info"]);
        cmd.arg("-filter_complex").arg(format!(
            "movie=filename={}:si={stream_index},showinfo=checksum=0[v]",
            LinkDir::LINK
        ));
        // One encoder thread: a frame-threaded rawvideo encoder holds each frame back until
        // the next one is decoded.
        cmd.args(["-map", "[v]", "-threads", "1", "-fps_mode", "passthrough"]);
        cmd.args(["-f", "rawvideo", "pipe:1"]);
        cmd.current_dir(&link.dir).stdout(Stdio::piped());
        let (info_tx, infos) = unbounded::<ShowInfo>();
        let mut child =
            process::spawn_watching_stderr(cmd, "preview-seek", Stdio::piped(), move |line| {
                if let Some(info) = parse_showinfo(line) {
                    let _ = Sender::send(&info_tx, info);
                }
            })
            .map_err(FrameError::failed)?;
        let stdin = child
            .take_stdin()
            .ok_or_else(|| FrameError::Failed("the seeker has no input pipe".into()))?;
        let stdout = child
            .take_stdout()
            .ok_or_else(|| FrameError::Failed("the seeker has no output pipe".into()))?;
        enlarge_pipe(&stdout);
        let frames = spawn_reader(stdout, frame_len, "preview-seek-frames")?;
        Ok(Seeker {
            stream_index,
            format: pix_fmt.to_owned(),
            size,
            frame_len,
            stdin,
            frames,
            infos,
            taken: 0,
            pending: None,
            child,
            _link: link,
        })
    }

    /// Repositions the decoder on the keyframe at or before `pts` (the stream's time base).
    /// Frames decoded before the command took effect still come first.
    pub fn seek(&mut self, pts: i64, cancel: &AtomicBool) -> Result<(), FrameError> {
        if self.taken == 0 && self.pending.is_none() {
            // ffmpeg sets its filter graph up with the first frame and drops commands that
            // come before: wait for that frame (kept for the next `next`).
            self.pending = self.next_decoded(cancel)?;
            if self.pending.is_none() {
                return Err(FrameError::Failed("the seeker ended at once".into()));
            }
        }
        let command = format!("cmovie -1 seek {}|{pts}|1\n", self.stream_index);
        self.stdin
            .write_all(command.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| FrameError::Failed(format!("the seeker stopped ({e})")))
    }

    /// The next decoded frame; `None` once the stream has ended (the seeker is then spent).
    pub fn next(&mut self, cancel: &AtomicBool) -> Result<Option<DecodedFrame>, FrameError> {
        match self.pending.take() {
            Some(frame) => Ok(Some(frame)),
            None => self.next_decoded(cancel),
        }
    }

    fn next_decoded(&mut self, cancel: &AtomicBool) -> Result<Option<DecodedFrame>, FrameError> {
        let data = loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(FrameError::Cancelled);
            }
            match self.frames.recv_timeout(CANCEL_POLL) {
                Ok(data) if data.len() == self.frame_len => break data,
                Ok(_) => return Ok(None),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        };
        let info = self
            .infos
            .recv_timeout(INFO_WAIT)
            .map_err(|_| FrameError::Failed("the seeker gave a frame without its pts".into()))?;
        if info.n != self.taken || info.format != self.format || info.size != self.size {
            return Err(FrameError::Failed(format!(
                "the seeker is out of step: frame {} came as {info:?}",
                self.taken
            )));
        }
        self.taken += 1;
        Ok(Some(DecodedFrame {
            pts: info.pts,
            data,
        }))
    }

    /// True while the ffmpeg process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Reads `seeker` until frame `target` — after seeking to `seek_pts` (a keyframe's pts) if
/// given, else reading on — storing every frame read by index (`index_of` maps a pts to its
/// index). Gives up after `max_frames`.
pub fn read_until(
    seeker: &mut Seeker,
    store: &mut FrameStore,
    seek_pts: Option<i64>,
    target: u64,
    max_frames: u64,
    index_of: &dyn Fn(i64) -> Option<u64>,
    cancel: &AtomicBool,
) -> Result<Arc<Vec<u8>>, FrameError> {
    let started = Instant::now();
    if let Some(pts) = seek_pts {
        seeker.seek(pts, cancel)?;
    }
    let mut first_ms = None;
    for read in 1..=max_frames {
        let Some(frame) = seeker.next(cancel)? else {
            return Err(FrameError::Failed(format!(
                "the seeker reached the end before frame {target}"
            )));
        };
        let Some(index) = frame.pts.and_then(index_of) else {
            continue;
        };
        first_ms.get_or_insert(started.elapsed().as_secs_f64() * 1000.0);
        store.insert(index, frame.data);
        if index == target {
            log::debug!(
                "frame {target} decoded in {:.0} ms: {read} frames read, the first after {:.0} ms",
                started.elapsed().as_secs_f64() * 1000.0,
                first_ms.unwrap_or_default()
            );
            return store
                .get(target)
                .ok_or_else(|| FrameError::Failed("the frame store is too small".into()));
        }
    }
    Err(FrameError::Failed(format!(
        "the seeker did not reach frame {target} within {max_frames} frames"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_frame_lengths_match_ffmpeg_packing() {
        assert_eq!(raw_frame_len("yuv420p", 1920, 1080), Some(3_110_400));
        // Odd sizes round chroma up, as av_image_get_buffer_size(…, 1) does.
        assert_eq!(
            raw_frame_len("yuv420p", 321, 241),
            Some(321 * 241 + 2 * 161 * 121)
        );
        assert_eq!(
            raw_frame_len("yuv420p10le", 64, 32),
            Some(2 * (64 * 32 + 2 * 32 * 16))
        );
        assert_eq!(
            raw_frame_len("yuv422p", 64, 32),
            Some(64 * 32 + 2 * 32 * 32)
        );
        assert_eq!(raw_frame_len("yuvj444p", 8, 8), Some(3 * 64));
        assert_eq!(raw_frame_len("nv12", 6, 4), Some(24 + 2 * 3 * 2));
        assert_eq!(raw_frame_len("gray", 5, 5), Some(25));
        assert_eq!(raw_frame_len("yuva420p", 4, 4), Some(16 + 8 + 16));
        assert_eq!(raw_frame_len("rgb24", 4, 4), None);
        assert_eq!(raw_frame_len("yuv420p10be", 4, 4), None);
        assert_eq!(raw_frame_len("p010le", 4, 4), None);
    }

    #[test]
    fn showinfo_lines_parse() {
        let line = "[Parsed_showinfo_1 @ 0x55d0c1a3b2c0] n:  12 pts:  25600 pts_time:2       \
                    duration:512 pos:  3361954 fmt:yuv420p sar:1/1 s:1920x1080 i:P iskey:0 type:B";
        assert_eq!(
            parse_showinfo(line),
            Some(ShowInfo {
                n: 12,
                pts: Some(25600),
                format: "yuv420p".into(),
                size: (1920, 1080)
            })
        );
        let nopts = "[Parsed_showinfo_1 @ 0x1] n:   0 pts:NOPTS pts_time:NOPTS pos: 1 fmt:gray \
                     sar:0/1 s:4x2 i:P iskey:1 type:I";
        assert_eq!(parse_showinfo(nopts).map(|i| i.pts), Some(None));
        // Its second line (colour) and other filters' lines are not frames.
        assert_eq!(
            parse_showinfo("[Parsed_showinfo_1 @ 0x1]  color_range:tv color_space:bt709"),
            None
        );
        assert_eq!(
            parse_showinfo("[movie @ 0x1] n: 1 pts: 2 fmt:x s:1x1"),
            None
        );
    }

    #[test]
    fn store_evicts_least_recently_used_beyond_its_budget() {
        let mut store = FrameStore::new(30);
        for i in 0..3 {
            store.insert(i, vec![0; 10]);
        }
        assert!((0..3).all(|i| store.contains(i)));
        // Using 0 makes 1 the oldest.
        assert!(store.get(0).is_some());
        store.insert(3, vec![0; 10]);
        assert!(store.contains(0) && !store.contains(1) && store.contains(2) && store.contains(3));
        // Replacing an entry counts its bytes once.
        store.insert(3, vec![0; 10]);
        assert!(store.contains(0) && store.contains(2) && store.contains(3));
        assert_eq!(store.capacity(10), 3);
        store.clear();
        assert!(!store.contains(0) && store.get(3).is_none());
    }
}
