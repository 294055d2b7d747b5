//! The GUI side of previews: [`PreviewClient`] owns the preview worker child through a manager
//! thread, so that no call made on the UI thread waits on the child.
//!
//! * Ids: every request gets the next id; the newest request of each kind is the *current*
//!   one. Replies to anything else are dropped twice over (by the manager, and again in
//!   [`PreviewClient::poll`] for replies that crossed a newer request), so the UI never sees a
//!   stale answer.
//! * Supersession: when a request replaces one still running in the worker, the worker gets a
//!   `cancel`; if it has not answered `cancelled` within [`CANCEL_GRACE`] (a decoder or an
//!   engine in a call that does not check), its process group is killed and reaped, a fresh
//!   worker is started, and the current requests of every kind are sent to it again.
//! * Timeouts: a request past its time ([`PreviewTimeouts`]) kills the worker and is answered
//!   with an error; the other kinds' current requests go to the fresh worker.
//! * Crashes: the worker dying on its own answers every current request with an error that
//!   carries the end of its log; the next request starts a fresh worker.
//! * At most one worker exists at any instant: the old one is reaped before a new one starts.
//!   Between requests it stays alive and warm (probes, frame lists, decoder, audio cache).

use std::io::{BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, never, select, unbounded};

use super::wire::{
    self, Message, PREVIEW_PROTOCOL_VERSION, WorkerReply, WorkerRequest, spectrogram_from_wire,
};
use super::{CANCEL_GRACE, PreviewReply, PreviewRequest, RequestKind};
use crate::engine::{self, EngineKind};
use crate::supervisor::{TailBuffer, WorkerCommand};

/// How much of the worker's stderr is kept for a crash report.
const STDERR_TAIL_BYTES: usize = 16 * 1024;
/// How long a worker asked to shut down gets before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);
/// Longest the manager sleeps when nothing is due (it wakes on every message anyway).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// How long each kind of request may take before the worker is killed and the request
/// answered with an error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreviewTimeouts {
    /// A frame through an engine ffmpeg runs itself (Lanczos): decode + scale, well under a
    /// second on a 1080p source; generous for a slow disk or a 4K source.
    pub ffmpeg_frame: Duration,
    /// A frame through one of our own frame engines (neural): several seconds per 1080p frame
    /// on a CPU, minutes for a 4K source at ×4. The whole frame is previewed, not a crop: the
    /// split view compares whole frames.
    pub engine_frame: Duration,
    /// A spectrogram of a time window (decoding the audio first if it is not cached).
    pub spectrogram: Duration,
    /// An overview that sends no new partial image for this long.
    pub overview_silence: Duration,
}

impl Default for PreviewTimeouts {
    fn default() -> Self {
        Self {
            ffmpeg_frame: Duration::from_secs(20),
            engine_frame: Duration::from_secs(300),
            spectrogram: Duration::from_secs(60),
            overview_silence: Duration::from_secs(30),
        }
    }
}

impl PreviewTimeouts {
    fn for_request(&self, request: &PreviewRequest) -> Duration {
        match request {
            // The built-in engines are known without looking at a models folder; any other
            // runs in the worker's process.
            PreviewRequest::Frame { engine, .. } => {
                let ffmpeg = engine::available_in(None)
                    .iter()
                    .any(|info| &info.name == engine && info.kind != EngineKind::Frames);
                if ffmpeg {
                    self.ffmpeg_frame
                } else {
                    self.engine_frame
                }
            }
            PreviewRequest::Overview { .. } => self.overview_silence,
            PreviewRequest::Spectrogram { .. } => self.spectrogram,
        }
    }
}

/// This executable in its `worker preview` role.
pub fn preview_worker_command() -> std::io::Result<WorkerCommand> {
    Ok(WorkerCommand::new(std::env::current_exe()?)
        .arg("worker")
        .arg("preview"))
}

enum ToManager {
    Request { id: u64, request: PreviewRequest },
    SetTimeouts(PreviewTimeouts),
    Shutdown,
}

type Reply = (u64, RequestKind, PreviewReply);

/// The window's handle on the preview worker. Every method returns at once.
pub struct PreviewClient {
    to_manager: Sender<ToManager>,
    replies: Receiver<Reply>,
    latest: [Option<u64>; 3],
    next_id: u64,
    pid: Arc<AtomicU32>,
    manager: Option<JoinHandle<()>>,
}

impl PreviewClient {
    /// A client that starts `worker` (see [`preview_worker_command`]) on the first request.
    /// `notify` is called after every reply is queued (the GUI passes `request_repaint`).
    pub fn new(worker: WorkerCommand, notify: impl Fn() + Send + Sync + 'static) -> Self {
        let (to_manager, from_client) = unbounded();
        let (replies_tx, replies) = unbounded();
        let pid = Arc::new(AtomicU32::new(0));
        let manager = Manager {
            command: worker,
            timeouts: PreviewTimeouts::default(),
            notify: Box::new(notify),
            replies: replies_tx,
            pid: Arc::clone(&pid),
            worker: None,
            current: [None, None, None],
            stale: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("preview-manager".into())
            .spawn(move || manager.run(&from_client));
        let manager = match handle {
            Ok(handle) => Some(handle),
            Err(e) => {
                // Without its thread the client cannot work; every request will say why.
                log::error!("cannot start the preview manager thread: {e}");
                None
            }
        };
        Self {
            to_manager,
            replies,
            latest: [None; 3],
            next_id: 1,
            pid,
            manager,
        }
    }

    /// Replaces the timeouts for requests made from now on.
    pub fn set_timeouts(&mut self, timeouts: PreviewTimeouts) {
        let _ = self.to_manager.send(ToManager::SetTimeouts(timeouts));
    }

    /// Sends a request; it supersedes the previous request of the same kind. Returns its id.
    pub fn request(&mut self, req: PreviewRequest) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.latest[req.kind().index()] = Some(id);
        if self.manager.is_none()
            || self
                .to_manager
                .send(ToManager::Request { id, request: req })
                .is_err()
        {
            log::error!("the preview manager is not running; request {id} is lost");
        }
        id
    }

    /// Replies that arrived since the last call, for current requests only.
    pub fn poll(&mut self) -> Vec<(u64, PreviewReply)> {
        self.replies
            .try_iter()
            .filter(|(id, kind, _)| self.latest[kind.index()] == Some(*id))
            .map(|(id, _, reply)| (id, reply))
            .collect()
    }

    /// The live worker's pid, if one is running.
    pub fn worker_pid(&self) -> Option<u32> {
        match self.pid.load(Ordering::SeqCst) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// Stops the worker (asks, then kills after a short grace) and the manager thread. Waits
    /// at most about a tenth of a second.
    pub fn shutdown(&mut self) {
        let _ = self.to_manager.send(ToManager::Shutdown);
        if let Some(handle) = self.manager.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for PreviewClient {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the reader thread of a worker reports.
enum FromWorker {
    Message(Message),
    /// stdout closed (the worker exited) or carried something that is not a reply.
    Closed {
        protocol_error: Option<String>,
    },
}

struct Worker {
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    messages: Receiver<FromWorker>,
    tail: Arc<Mutex<TailBuffer>>,
}

/// A current request: sent to the worker (or about to be), not answered yet.
struct Pending {
    id: u64,
    request: PreviewRequest,
    deadline: Instant,
}

/// A superseded request the worker was told to cancel and has not acknowledged yet.
struct Stale {
    id: u64,
    cancelled_at: Instant,
}

struct Manager {
    command: WorkerCommand,
    timeouts: PreviewTimeouts,
    notify: Box<dyn Fn() + Send + Sync>,
    replies: Sender<Reply>,
    pid: Arc<AtomicU32>,
    worker: Option<Worker>,
    current: [Option<Pending>; 3],
    stale: Vec<Stale>,
}

impl Manager {
    fn run(mut self, from_client: &Receiver<ToManager>) {
        loop {
            let wake = self.next_due().map_or(IDLE_WAKE, |due| {
                due.saturating_duration_since(Instant::now())
            });
            let from_worker = self
                .worker
                .as_ref()
                .map_or_else(never, |w| w.messages.clone());
            select! {
                recv(from_client) -> msg => match msg {
                    Ok(ToManager::Request { id, request }) => self.on_request(id, request),
                    Ok(ToManager::SetTimeouts(timeouts)) => self.timeouts = timeouts,
                    Ok(ToManager::Shutdown) | Err(_) => break,
                },
                recv(from_worker) -> msg => match msg {
                    Ok(FromWorker::Message(message)) => self.on_message(message),
                    Ok(FromWorker::Closed { protocol_error }) => self.on_closed(protocol_error),
                    Err(_) => self.on_closed(None),
                },
                default(wake) => {}
            }
            self.check_due();
        }
        self.stop_worker();
    }

    /// The earliest instant something must be checked: a cancel grace or a timeout.
    fn next_due(&self) -> Option<Instant> {
        let graces = self.stale.iter().map(|s| s.cancelled_at + CANCEL_GRACE);
        let deadlines = self.current.iter().flatten().map(|p| p.deadline);
        graces.chain(deadlines).min()
    }

    fn on_request(&mut self, id: u64, request: PreviewRequest) {
        let kind = request.kind();
        if let Some(old) = self.current[kind.index()].take()
            && self.worker.is_some()
        {
            self.send(&WorkerRequest::Cancel { id: old.id });
            self.stale.push(Stale {
                id: old.id,
                cancelled_at: Instant::now(),
            });
        }
        let deadline = Instant::now() + self.timeouts.for_request(&request);
        self.current[kind.index()] = Some(Pending {
            id,
            request: request.clone(),
            deadline,
        });
        if self.worker.is_none()
            && let Err(message) = self.start_worker()
        {
            self.current[kind.index()] = None;
            self.reply(id, kind, PreviewReply::Error { message });
            return;
        }
        self.send(&WorkerRequest::Preview { id, request });
    }

    fn on_message(&mut self, message: Message) {
        let Message { header, parts } = message;
        if let WorkerReply::Hello { version, .. } = header {
            if version != PREVIEW_PROTOCOL_VERSION {
                self.kill_worker();
                self.fail_all(&format!(
                    "the preview worker speaks protocol {version}, not {PREVIEW_PROTOCOL_VERSION}: \
                     it is another reframe build; reinstall reframe"
                ));
            }
            return;
        }
        let Some(id) = header.id() else { return };
        let terminal = header.is_terminal();
        if terminal {
            self.stale.retain(|s| s.id != id);
        }
        let Some(kind) = RequestKind::ALL
            .into_iter()
            .find(|k| self.current[k.index()].as_ref().is_some_and(|p| p.id == id))
        else {
            return;
        };
        let reply = match (header, parts) {
            (
                WorkerReply::Frame {
                    frame_index,
                    time_secs,
                    before,
                    after,
                    ..
                },
                parts,
            ) => {
                let mut parts = parts.into_iter();
                PreviewReply::Frame {
                    before: before.image(parts.next().unwrap_or_default()),
                    after: after.image(parts.next().unwrap_or_default()),
                    frame_index,
                    time_secs,
                }
            }
            (
                WorkerReply::FrameBefore {
                    frame_index,
                    time_secs,
                    before,
                    ..
                },
                parts,
            ) => PreviewReply::FrameBefore {
                before: before.image(parts.into_iter().next().unwrap_or_default()),
                frame_index,
                time_secs,
            },
            (
                WorkerReply::FrameApprox {
                    frame_index,
                    picture_index,
                    time_secs,
                    picture,
                    display,
                    done,
                    ..
                },
                parts,
            ) => PreviewReply::FrameApprox {
                picture: picture.image(parts.into_iter().next().unwrap_or_default()),
                display: (display.width, display.height),
                frame_index,
                picture_index,
                time_secs,
                done,
            },
            (
                WorkerReply::Spectrogram {
                    overview,
                    spectrogram,
                    ..
                },
                parts,
            ) => {
                let s = spectrogram_from_wire(
                    &spectrogram,
                    parts.first().map(Vec::as_slice).unwrap_or_default(),
                );
                if overview {
                    PreviewReply::Overview(s)
                } else {
                    PreviewReply::Spectrogram(s)
                }
            }
            (WorkerReply::Error { message, .. }, _) => PreviewReply::Error { message },
            // Only stale requests are cancelled; a current one answering so was cancelled by
            // the worker itself (shutting down): nothing to show.
            (WorkerReply::Cancelled { .. }, _) => {
                self.current[kind.index()] = None;
                return;
            }
            (WorkerReply::Hello { .. }, _) => return,
        };
        if terminal {
            self.current[kind.index()] = None;
        } else if let Some(pending) = &mut self.current[kind.index()] {
            // A streaming overview is alive as long as it keeps sending; a frame engine's
            // request gets its whole time again once its "before" image came.
            pending.deadline = Instant::now() + self.timeouts.for_request(&pending.request);
        }
        self.reply(id, kind, reply);
    }

    /// The worker's stdout closed: it exited (or broke the protocol, then it is killed).
    fn on_closed(&mut self, protocol_error: Option<String>) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        kill_group(worker.pid);
        let status = worker.child.wait();
        self.pid.store(0, Ordering::SeqCst);
        let tail = last_lines(
            &worker
                .tail
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .text(),
            6,
        );
        let how = match (protocol_error, status) {
            (Some(e), _) => format!("sent something that is not a preview reply ({e})"),
            (None, Ok(status)) => describe_exit(status),
            (None, Err(e)) => format!("could not be waited for ({e})"),
        };
        log::warn!("preview worker {} stopped: {how}", worker.pid);
        let mut message = format!(
            "the preview worker stopped unexpectedly ({how}); the next preview starts a new one"
        );
        if !tail.is_empty() {
            message.push_str(&format!("; its last words: {tail}"));
        }
        self.fail_all(&message);
    }

    /// Kills a worker that let a cancel grace or a timeout pass.
    fn check_due(&mut self) {
        let now = Instant::now();
        let mut restart = false;
        if self
            .stale
            .iter()
            .any(|s| now >= s.cancelled_at + CANCEL_GRACE)
        {
            log::debug!("preview worker did not stop a stale request within {CANCEL_GRACE:?}");
            restart = true;
        }
        let mut timed_out = Vec::new();
        for kind in RequestKind::ALL {
            let Some(pending) = &self.current[kind.index()] else {
                continue;
            };
            if now >= pending.deadline {
                let limit = self.timeouts.for_request(&pending.request);
                timed_out.push((pending.id, kind, limit));
                self.current[kind.index()] = None;
                restart = true;
            }
        }
        if !restart {
            return;
        }
        // Gone before anyone hears of the timeout.
        self.kill_worker();
        for (id, kind, limit) in timed_out {
            self.reply(
                id,
                kind,
                PreviewReply::Error {
                    message: format!(
                        "the preview took longer than {} s and was stopped",
                        limit.as_secs_f64()
                    ),
                },
            );
        }
        // The requests still current were not at fault: send them to a fresh worker.
        let resend: Vec<(u64, PreviewRequest)> = self
            .current
            .iter()
            .flatten()
            .map(|p| (p.id, p.request.clone()))
            .collect();
        if resend.is_empty() {
            return;
        }
        if let Err(message) = self.start_worker() {
            self.fail_all(&message);
            return;
        }
        for (id, request) in resend {
            if let Some(pending) = self
                .current
                .iter_mut()
                .flatten()
                .find(|pending| pending.id == id)
            {
                pending.deadline = Instant::now() + self.timeouts.for_request(&request);
            }
            self.send(&WorkerRequest::Preview { id, request });
        }
    }

    fn fail_all(&mut self, message: &str) {
        self.stale.clear();
        for kind in RequestKind::ALL {
            if let Some(pending) = self.current[kind.index()].take() {
                self.reply(
                    pending.id,
                    kind,
                    PreviewReply::Error {
                        message: message.to_owned(),
                    },
                );
            }
        }
    }

    fn reply(&self, id: u64, kind: RequestKind, reply: PreviewReply) {
        if self.replies.send((id, kind, reply)).is_ok() {
            (self.notify)();
        }
    }

    fn send(&mut self, request: &WorkerRequest) {
        let Some(worker) = &mut self.worker else {
            return;
        };
        let Some(stdin) = &mut worker.stdin else {
            return;
        };
        let line = match serde_json::to_string(request) {
            Ok(line) => line,
            Err(e) => {
                log::error!("cannot encode a preview request: {e}");
                return;
            }
        };
        if writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .is_err()
        {
            // The worker is gone; its reader reports the exit.
            worker.stdin = None;
        }
    }

    fn start_worker(&mut self) -> Result<(), String> {
        let spec = &self.command;
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: runs in the forked child before exec; prctl is async-signal-safe. The
        // worker is killed when this (manager) thread ends, i.e. when the client is gone.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        log::info!("starting preview worker: {command:?}");
        let spawn_error = |e: &dyn std::fmt::Display| {
            format!(
                "could not start the preview worker ({e}); reinstall reframe or check that this file is executable: {}",
                spec.program.display()
            )
        };
        let mut child = command.spawn().map_err(|e| spawn_error(&e))?;
        let pid = child.id();
        let (tx, messages) = unbounded();
        let tail = Arc::new(Mutex::new(TailBuffer::new(STDERR_TAIL_BYTES)));
        let threads = (|| -> std::io::Result<ChildStdin> {
            let stdin = child
                .stdin
                .take()
                .ok_or_else(|| std::io::Error::other("no stdin pipe"))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
            let stderr = child
                .stderr
                .take()
                .ok_or_else(|| std::io::Error::other("no stderr pipe"))?;
            std::thread::Builder::new()
                .name(format!("preview-{pid}-stdout"))
                .spawn(move || read_replies(stdout, &tx))?;
            let tail = Arc::clone(&tail);
            std::thread::Builder::new()
                .name(format!("preview-{pid}-stderr"))
                .spawn(move || drain_stderr(stderr, &tail))?;
            Ok(stdin)
        })();
        let stdin = match threads {
            Ok(stdin) => stdin,
            Err(e) => {
                kill_group(pid);
                let _ = child.kill();
                let _ = child.wait();
                return Err(spawn_error(&e));
            }
        };
        self.pid.store(pid, Ordering::SeqCst);
        self.worker = Some(Worker {
            child,
            pid,
            stdin: Some(stdin),
            messages,
            tail,
        });
        self.send(&WorkerRequest::Hello {
            version: PREVIEW_PROTOCOL_VERSION,
        });
        Ok(())
    }

    /// Kills the worker's process group and reaps it, now.
    fn kill_worker(&mut self) {
        self.stale.clear();
        if let Some(mut worker) = self.worker.take() {
            log::debug!("killing preview worker {}", worker.pid);
            kill_group(worker.pid);
            let _ = worker.child.kill();
            let _ = worker.child.wait();
            self.pid.store(0, Ordering::SeqCst);
        }
    }

    /// Asks the worker to exit, closes its stdin, kills it after a short grace, reaps it.
    fn stop_worker(&mut self) {
        self.send(&WorkerRequest::Shutdown);
        if let Some(worker) = &mut self.worker {
            worker.stdin = None;
            let deadline = Instant::now() + SHUTDOWN_GRACE;
            while Instant::now() < deadline {
                if matches!(worker.child.try_wait(), Ok(Some(_)) | Err(_)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.kill_worker();
    }
}

fn read_replies(stdout: impl Read, tx: &Sender<FromWorker>) {
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    loop {
        match wire::read_message(&mut reader) {
            Ok(Some(message)) => {
                if tx.send(FromWorker::Message(message)).is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = tx.send(FromWorker::Closed {
                    protocol_error: None,
                });
                return;
            }
            Err(e) => {
                let protocol_error =
                    (e.kind() == std::io::ErrorKind::InvalidData).then(|| e.to_string());
                let _ = tx.send(FromWorker::Closed { protocol_error });
                return;
            }
        }
    }
}

fn drain_stderr(mut stderr: impl Read, tail: &Mutex<TailBuffer>) {
    let mut buf = [0u8; 8192];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => tail
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(&buf[..n]),
        }
    }
}

fn kill_group(pid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pid) {
        // SAFETY: plain syscall; the worker leads its own group (process_group(0)) and is not
        // reaped yet when this runs, so the group id cannot belong to anyone else.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown exit status".to_owned(),
    }
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(count)..].join(" / ")
}
