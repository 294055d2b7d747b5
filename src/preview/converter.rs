//! The converter: a running ffmpeg writing a frame's "before" (RGBA, on stdout) and "after"
//! (on fd 3: the pipeline's Lanczos scale as RGBA, or the yuv420p frame for a frame engine),
//! decoding the input file itself ([`Source::File`]) or converting raw frames fed to its stdin
//! ([`Source::Raw`], from the seeker). One filter graph either way, so both give the same
//! images; [`yuv420p_to_rgba`] converts a frame engine's output the same way.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};

use super::RgbaImage;
use super::decode::{CANCEL_POLL, FrameError, InputInfo, InputKey};
use crate::engine::Frame;
use crate::media::process::{self, Spawned};
use crate::media::tools::{Tools, file_arg};

/// Which second stream the decoder writes on fd 3.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum After {
    /// `scale=W:H:flags=<flags>` then RGBA.
    Scale {
        width: u32,
        height: u32,
        flags: &'static str,
    },
    /// The decoded frame as yuv420p, for a frame engine.
    Yuv420p,
}

/// Where a [`Decoder`] takes its frames from.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Source {
    /// The input file, from frame `frame_index` on.
    File { frame_index: u64 },
    /// Raw frames written to its stdin one at a time ([`Decoder::render`]): decoded frames
    /// from the [`Seeker`], in the decoder's pixel format, tagged with the stream's colour
    /// range and matrix as the decoder tags them.
    Raw {
        pix_fmt: String,
        width: u32,
        height: u32,
        params: String,
    },
}

/// A running ffmpeg writing the before and after images of each frame it gets: decoding the
/// input (positioned at `next_index`), or converting raw frames fed to it.
pub(super) struct Decoder {
    pub(super) input: InputKey,
    pub(super) after: After,
    pub(super) next_index: u64,
    pub(super) before_len: usize,
    pub(super) after_len: usize,
    pub(super) before_rx: Receiver<Vec<u8>>,
    pub(super) after_rx: Receiver<Vec<u8>>,
    pub(super) stdin: Option<ChildStdin>,
    pub(super) child: Spawned,
}

/// A frame's before and after pixels (RGBA; the after of a frame engine is yuv420p).
pub(super) type Images = (Vec<u8>, Vec<u8>);

impl Decoder {
    pub(super) fn start(
        tools: &Tools,
        key: &InputKey,
        loaded: &InputInfo,
        source: Source,
        after: After,
    ) -> Result<Decoder, FrameError> {
        let (src_w, src_h) = loaded.info.video.display_size();
        let mut cmd = Command::new(&tools.ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]);
        let input_label = match &source {
            Source::File { frame_index } => {
                let index = *frame_index as usize;
                if index > 0 {
                    // Half-way between the previous frame and this one: a rounded timestamp
                    // can neither keep the previous frame nor drop this one (the pipeline
                    // seeks the same way).
                    let frames = &loaded.times.frames;
                    let seek = (frames[index - 1].time_secs + frames[index].time_secs) / 2.0;
                    let from_start = (seek - loaded.info.start_time_secs).max(0.0);
                    cmd.args(["-ss", &format!("{from_start:.6}")]);
                }
                cmd.arg("-copyts").arg("-i").arg(file_arg(&key.path));
                format!("[0:{}]", loaded.info.video.index)
            }
            Source::Raw {
                pix_fmt,
                width,
                height,
                params,
            } => {
                // Nothing to probe: every parameter is given, and probing would wait for
                // frames that only come with the first request.
                cmd.args([
                    "-fpsprobesize",
                    "0",
                    "-probesize",
                    "32",
                    "-analyzeduration",
                    "0",
                ]);
                cmd.args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-video_size"]);
                cmd.arg(format!("{width}x{height}"));
                cmd.args(["-framerate", "25", "-i", "pipe:0"]);
                format!("[0:v]{params}")
            }
        };
        // Every conversion is an explicit `scale` after the split: `split` shares one format
        // across its outputs, and a bare `format=rgba` branch would make ffmpeg convert before
        // the split, so the engine would scale RGBA instead of the decoded frame.
        let second = match &after {
            After::Scale {
                width,
                height,
                flags,
            } => {
                // The engine's output keeps the decoded frame's format (what the encoder gets).
                let pix_fmt = loaded
                    .info
                    .video
                    .pix_fmt
                    .as_deref()
                    .filter(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or("yuv420p");
                format!("scale={width}:{height}:flags={flags},format={pix_fmt},scale,format=rgba")
            }
            After::Yuv420p => "scale,format=yuv420p".to_owned(),
        };
        let graph =
            format!("{input_label}split=2[b][a];[b]scale,format=rgba[before];[a]{second}[after]");
        cmd.args(["-filter_complex", &graph]);
        for (label, target) in [("[before]", "pipe:1"), ("[after]", "pipe:3")] {
            // One encoder thread: a frame-threaded rawvideo encoder holds each frame back
            // until the next one arrives.
            cmd.args(["-map", label, "-threads", "1", "-fps_mode", "passthrough"]);
            cmd.args(["-f", "rawvideo", target]);
        }
        cmd.stdout(Stdio::piped());

        let (fd3_reader, fd3_writer) = std::io::pipe()
            .map_err(|e| FrameError::Failed(format!("cannot create a pipe: {e}")))?;
        let fd = fd3_writer.as_raw_fd();
        // SAFETY: runs in the forked child before exec; dup2 and fcntl are async-signal-safe
        // and nothing is allocated. fd 3 becomes the pipe's write end, inherited by ffmpeg.
        unsafe {
            cmd.pre_exec(move || {
                if fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    if flags == -1 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (label, stdin) = match &source {
            Source::File { .. } => ("preview-decode", Stdio::null()),
            Source::Raw { .. } => ("preview-render", Stdio::piped()),
        };
        let mut child = process::spawn_with_stdin(cmd, label, stdin).map_err(FrameError::failed)?;
        // Only the child may hold the write end, or the reader never sees end of file.
        drop(fd3_writer);
        let stdin = child.take_stdin();
        let stdout = child
            .take_stdout()
            .ok_or_else(|| FrameError::Failed("the decoder has no output pipe".into()))?;

        let before_len = src_w as usize * src_h as usize * 4;
        let after_len = match &after {
            After::Scale { width, height, .. } => *width as usize * *height as usize * 4,
            After::Yuv420p => Frame::yuv420p_len(src_w, src_h),
        };
        enlarge_pipe(&stdout);
        enlarge_pipe(&fd3_reader);
        let before_rx = spawn_reader(stdout, before_len, "preview-before")?;
        let after_rx = spawn_reader(fd3_reader, after_len, "preview-after")?;
        let next_index = match &source {
            Source::File { frame_index } => *frame_index,
            Source::Raw { .. } => 0,
        };
        Ok(Decoder {
            input: key.clone(),
            after,
            next_index,
            before_len,
            after_len,
            before_rx,
            after_rx,
            stdin,
            child,
        })
    }

    /// The two images of one raw frame (a [`Source::Raw`] decoder).
    pub(super) fn render(
        &mut self,
        frame: &[u8],
        cancel: &AtomicBool,
    ) -> Result<Images, FrameError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(FrameError::Failed("the converter has no input pipe".into()));
        };
        // ffmpeg reads the whole frame before it writes anything, so this cannot deadlock
        // with the readers.
        if let Err(e) = stdin.write_all(frame).and_then(|()| stdin.flush()) {
            return Err(FrameError::Failed(format!(
                "the converter stopped ({e}): {}",
                self.child.stderr_tail()
            )));
        }
        self.read(cancel)
    }

    /// The next frame's two images.
    pub(super) fn read(&mut self, cancel: &AtomicBool) -> Result<Images, FrameError> {
        let before = self.receive(true, cancel)?;
        let after = self.receive(false, cancel)?;
        self.next_index += 1;
        Ok((before, after))
    }

    pub(super) fn receive(
        &mut self,
        before: bool,
        cancel: &AtomicBool,
    ) -> Result<Vec<u8>, FrameError> {
        let (rx, len) = if before {
            (&self.before_rx, self.before_len)
        } else {
            (&self.after_rx, self.after_len)
        };
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(FrameError::Cancelled);
            }
            match rx.recv_timeout(CANCEL_POLL) {
                Ok(data) if data.len() == len => return Ok(data),
                Ok(_) => return Err(FrameError::Failed("the decoder sent a torn frame".into())),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.kill();
                    return Err(match self.child.wait() {
                        Err(e) => FrameError::Failed(format!("cannot decode this frame: {e}")),
                        Ok(()) => FrameError::Failed(format!(
                            "the video ended before frame {}: it may be damaged or cut",
                            self.next_index
                        )),
                    });
                }
            }
        }
    }
}

/// Asks for a 1 MiB pipe buffer (Linux allows that unprivileged; the default is 64 KiB):
/// images of tens of megabytes then cross in fewer, larger copies. Best effort.
pub(crate) fn enlarge_pipe(pipe: &impl AsRawFd) {
    // SAFETY: fcntl on a descriptor the caller owns; F_SETPIPE_SZ only resizes the buffer.
    let _ = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
}

/// A thread reading whole frames of `len` bytes from `from` into a one-frame queue (so the
/// decoder runs at most a frame or two ahead of what is asked).
pub(super) fn spawn_reader(
    mut from: impl Read + Send + 'static,
    len: usize,
    name: &str,
) -> Result<Receiver<Vec<u8>>, FrameError> {
    let (tx, rx) = bounded::<Vec<u8>>(1);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(data) = super::wire::read_exact_vec(&mut from, len) {
                if tx.send(data).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| FrameError::Failed(format!("cannot start a thread: {e}")))?;
    Ok(rx)
}

/// `setparams=…,` giving raw frames the colour range and matrix the decoder gives them, so the
/// converter's RGBA equals the one made from decoded frames ("" when the stream has neither).
pub(super) fn colour_params(loaded: &InputInfo) -> String {
    let video = &loaded.info.video;
    let known = |v: &Option<String>| {
        v.as_deref()
            .filter(|v| !matches!(*v, "unknown" | "reserved" | "unspecified"))
            .filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .map(str::to_owned)
    };
    let mut options = Vec::new();
    if let Some(range) = known(&video.color_range) {
        options.push(format!("range={range}"));
    }
    if let Some(space) = known(&video.color_space) {
        options.push(format!("colorspace={space}"));
    }
    if options.is_empty() {
        String::new()
    } else {
        format!("setparams={},", options.join(":"))
    }
}

/// A yuv420p frame as RGBA, converted by ffmpeg exactly as the decoder converts "before".
pub(super) fn yuv420p_to_rgba(tools: &Tools, frame: &Frame) -> Result<RgbaImage, FrameError> {
    let mut cmd = Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]);
    cmd.args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size"]);
    cmd.arg(format!("{}x{}", frame.width, frame.height));
    cmd.args([
        "-i",
        "pipe:0",
        "-vf",
        "format=rgba",
        "-f",
        "rawvideo",
        "pipe:1",
    ]);
    cmd.stdout(Stdio::piped());
    let mut child = process::spawn_with_stdin(cmd, "preview-convert", Stdio::piped())
        .map_err(FrameError::failed)?;
    let mut stdin = child
        .take_stdin()
        .ok_or_else(|| FrameError::Failed("the converter has no input pipe".into()))?;
    let mut stdout = child
        .take_stdout()
        .ok_or_else(|| FrameError::Failed("the converter has no output pipe".into()))?;
    let mut pixels = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = stdin.write_all(&frame.data);
        });
        let _ = stdout.read_to_end(&mut pixels);
    });
    child.wait().map_err(FrameError::failed)?;
    let expected = frame.width as usize * frame.height as usize * 4;
    if pixels.len() != expected {
        return Err(FrameError::Failed(format!(
            "the colour conversion gave {} bytes instead of {expected}",
            pixels.len()
        )));
    }
    Ok(RgbaImage {
        width: frame.width,
        height: frame.height,
        pixels,
    })
}
