//! The supervisor: owns the processing worker child (`reframe worker process`) on behalf of the
//! GUI, so that the GUI thread never waits on a pipe or a process.
//!
//! * At most one worker is alive. It is started on the first [`Supervisor::run`] and kept for
//!   the next jobs until [`Supervisor::shutdown`] or [`Supervisor::cancel`].
//! * Requests go to the worker's stdin through a writer thread; its stdout is parsed into
//!   [`protocol::Event`]s on a reader thread; its stderr is drained on a third thread into a
//!   bounded [`TailBuffer`] (the log tail shown when it crashes) and forwarded line by line.
//! * A monitor thread watches the process: it reports its exit with the exit status and the
//!   stderr tail ([`SupervisorEvent::WorkerExited`]), kills it when it stays silent for longer
//!   than [`SupervisorConfig::silence_timeout`] while it should be working (watchdog), and kills
//!   it when a cancel or shutdown is not honoured within [`SupervisorConfig::cancel_grace`].
//! * Everything reaches the GUI through one crossbeam channel; each message also calls the
//!   `notify` callback (the GUI's `request_repaint`), so an idle window costs nothing.
//! * The worker runs in its own process group, and the whole group is killed, so its ffmpeg
//!   children go with it. It exits by itself on stdin EOF: when the GUI dies, it stops.

mod ring;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

pub use ring::TailBuffer;

use crate::protocol::{Event, JobId, JobSpec, PROTOCOL_VERSION, Request};

/// How much of the worker's stderr is kept for the crash report.
pub const STDERR_TAIL_BYTES: usize = 32 * 1024;
/// Longest stderr line forwarded as a [`SupervisorEvent::Log`] (the tail keeps everything).
const LOG_LINE_MAX_CHARS: usize = 2000;
/// How often the monitor thread looks at the child.
const MONITOR_PERIOD: Duration = Duration::from_millis(50);
/// How long the monitor waits for the pipe readers to finish after the child exited.
const READER_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The program and arguments that start a processing worker.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Extra environment variables for the worker (tests point it at their own dirs).
    pub envs: Vec<(OsString, OsString)>,
}

impl WorkerCommand {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
        }
    }

    /// This executable in its `worker process` role.
    pub fn processing_worker() -> io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?)
            .arg("worker")
            .arg("process"))
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorConfig {
    pub worker: WorkerCommand,
    /// The watchdog kills a worker that sends nothing for this long while it runs a job
    /// (workers report progress every few seconds while they work).
    pub silence_timeout: Duration,
    /// How long a worker gets to stop by itself after a cancel or shutdown before it is killed.
    pub cancel_grace: Duration,
}

impl SupervisorConfig {
    pub fn new(worker: WorkerCommand) -> Self {
        Self {
            worker,
            silence_timeout: Duration::from_secs(120),
            cancel_grace: Duration::from_secs(5),
        }
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitInfo {
    fn from_status(status: std::process::ExitStatus) -> Self {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal = None;
        Self {
            code: status.code(),
            signal,
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => {
                write!(f, "killed by signal {signal} ({})", signal_name(signal))
            }
            (None, None) => write!(f, "unknown exit status"),
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// Why a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// It stopped cleanly when asked to (shutdown or stdin closed) with no job running.
    Stopped,
    /// It died on its own: non-zero exit, a signal nobody here sent, or exit mid-job.
    Crashed,
    /// The watchdog killed it after it stayed silent for too long during a job.
    Unresponsive,
    /// It was cancelled (and killed if it did not stop within the grace period).
    Cancelled,
    /// It speaks another protocol version (a different reframe build); it was stopped.
    VersionMismatch { worker_version: u32 },
}

/// What the supervisor reports to the GUI.
#[derive(Debug, Clone, PartialEq)]
pub enum SupervisorEvent {
    WorkerStarted {
        pid: u32,
    },
    /// A protocol event from the worker.
    Worker(Event),
    /// A line of the worker's log (its stderr), or a stdout line that was not a protocol event.
    Log(String),
    /// The worker process ended. `job` is the job it was running and did not finish.
    WorkerExited {
        pid: u32,
        job: Option<JobId>,
        exit: ExitInfo,
        reason: ExitReason,
        stderr_tail: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(
        "could not start the processing worker: {source}; reinstall reframe or check that this file is executable: {}",
        program.display()
    )]
    Spawn { program: PathBuf, source: io::Error },
    #[error("the processing worker is busy with job {job}; cancel it first")]
    Busy { job: JobId },
    #[error("the previous processing worker is still stopping; try again in a moment")]
    Stopping,
}

/// Called after every message sent to the GUI (the GUI passes `ctx.request_repaint()`).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// State shared between the GUI-side handle and the threads of one worker.
#[derive(Debug)]
struct Shared {
    active_job: Option<JobId>,
    hello_received: bool,
    last_activity: Instant,
    /// A kill the monitor thread must carry out, and the reason it will report.
    kill_request: Option<ExitReason>,
    /// After a cancel or shutdown: when to kill if the worker is still alive, and why.
    stop_deadline: Option<(Instant, ExitReason)>,
    /// Set by the monitor when the process is gone.
    exited: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding this lock cannot leave `Shared` inconsistent (plain fields).
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct WorkerHandle {
    pid: u32,
    /// `None` once stdin is closed (the worker is stopping).
    requests: Option<Sender<Request>>,
    shared: Arc<Mutex<Shared>>,
}

impl WorkerHandle {
    fn send(&self, request: Request) {
        if let Some(requests) = &self.requests {
            // The writer thread only disappears when the worker is gone; the monitor reports that.
            let _ = requests.send(request);
        }
    }
}

/// The GUI's handle on the processing worker.
pub struct Supervisor {
    config: SupervisorConfig,
    events_tx: Sender<SupervisorEvent>,
    events_rx: Receiver<SupervisorEvent>,
    notify: Notify,
    worker: Option<WorkerHandle>,
}

impl Supervisor {
    pub fn new(config: SupervisorConfig, notify: Notify) -> Self {
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        Self {
            config,
            events_tx,
            events_rx,
            notify,
            worker: None,
        }
    }

    pub fn config(&self) -> &SupervisorConfig {
        &self.config
    }

    /// Everything reported since the last call, without waiting.
    pub fn try_events(&self) -> impl Iterator<Item = SupervisorEvent> + '_ {
        self.events_rx.try_iter()
    }

    /// The events channel itself, for callers that want to wait on it (tests).
    pub fn events(&self) -> &Receiver<SupervisorEvent> {
        &self.events_rx
    }

    fn forget_exited(&mut self) {
        if self
            .worker
            .as_ref()
            .is_some_and(|worker| lock(&worker.shared).exited)
        {
            self.worker = None;
        }
    }

    /// Pid of the live worker process, if there is one.
    pub fn worker_pid(&mut self) -> Option<u32> {
        self.forget_exited();
        self.worker.as_ref().map(|worker| worker.pid)
    }

    /// The job the worker is running (from `run` until the job's final event or the exit).
    pub fn active_job(&mut self) -> Option<JobId> {
        self.forget_exited();
        self.worker
            .as_ref()
            .and_then(|worker| lock(&worker.shared).active_job)
    }

    /// True when [`Supervisor::run`] would start the job now: no job running and no worker
    /// still stopping.
    pub fn is_ready(&mut self) -> bool {
        self.forget_exited();
        match &self.worker {
            None => true,
            Some(worker) => worker.requests.is_some() && lock(&worker.shared).active_job.is_none(),
        }
    }

    /// Sends `spec` to the worker as job `job`, starting a worker first if none is alive.
    pub fn run(&mut self, job: JobId, spec: JobSpec) -> Result<(), SupervisorError> {
        self.forget_exited();
        if let Some(worker) = &self.worker {
            if let Some(active) = lock(&worker.shared).active_job {
                return Err(SupervisorError::Busy { job: active });
            }
            if worker.requests.is_none() {
                return Err(SupervisorError::Stopping);
            }
        }
        if self.worker.is_none() {
            self.worker = Some(self.spawn()?);
        }
        if let Some(worker) = &self.worker {
            {
                let mut shared = lock(&worker.shared);
                shared.active_job = Some(job);
                shared.last_activity = Instant::now();
            }
            worker.send(Request::Run { job, spec });
        }
        Ok(())
    }

    /// Cancels the running job and stops the worker: `cancel` and `shutdown` requests, stdin
    /// closed, and a kill if it is still alive after the grace period. The job's session stays
    /// on disk, so the job can be resumed.
    pub fn cancel(&mut self) {
        self.stop(ExitReason::Cancelled);
    }

    /// Stops an idle worker (asks, then kills after the grace period). A running job is
    /// cancelled.
    pub fn shutdown(&mut self) {
        let reason = if self.active_job().is_some() {
            ExitReason::Cancelled
        } else {
            ExitReason::Stopped
        };
        self.stop(reason);
    }

    fn stop(&mut self, reason: ExitReason) {
        self.forget_exited();
        let grace = self.config.cancel_grace;
        let Some(worker) = &mut self.worker else {
            return;
        };
        let active = {
            let mut shared = lock(&worker.shared);
            if shared.stop_deadline.is_none() {
                shared.stop_deadline = Some((Instant::now() + grace, reason));
            }
            shared.active_job
        };
        if let Some(job) = active {
            worker.send(Request::Cancel { job });
        }
        worker.send(Request::Shutdown);
        // Dropping the sender ends the writer thread, which closes stdin: the worker sees EOF.
        worker.requests = None;
    }

    /// Kills the worker now (the monitor reports the exit with `reason`).
    pub fn kill(&mut self, reason: ExitReason) {
        self.forget_exited();
        if let Some(worker) = &mut self.worker {
            lock(&worker.shared).kill_request = Some(reason);
            worker.requests = None;
        }
    }

    fn spawn(&self) -> Result<WorkerHandle, SupervisorError> {
        let spec = &self.config.worker;
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        log::info!("starting processing worker: {command:?}");
        let spawn_error = |source| SupervisorError::Spawn {
            program: spec.program.clone(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let pid = child.id();
        let shared = Arc::new(Mutex::new(Shared {
            active_job: None,
            hello_received: false,
            last_activity: Instant::now(),
            kill_request: None,
            stop_deadline: None,
            exited: false,
        }));
        let (requests_tx, requests_rx) = crossbeam_channel::unbounded();
        let tail = Arc::new(Mutex::new(TailBuffer::new(STDERR_TAIL_BYTES)));
        let (readers_done_tx, readers_done_rx) = crossbeam_channel::bounded::<()>(2);

        let threads = (|| -> io::Result<()> {
            let stdin = child
                .stdin
                .take()
                .ok_or_else(|| io::Error::other("no stdin pipe"))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| io::Error::other("no stdout pipe"))?;
            let stderr = child
                .stderr
                .take()
                .ok_or_else(|| io::Error::other("no stderr pipe"))?;
            thread::Builder::new()
                .name(format!("worker-{pid}-stdin"))
                .spawn(move || write_requests(stdin, requests_rx))?;
            let out = StdoutReader {
                shared: Arc::clone(&shared),
                events: self.events_tx.clone(),
                notify: Arc::clone(&self.notify),
                done: readers_done_tx.clone(),
            };
            thread::Builder::new()
                .name(format!("worker-{pid}-stdout"))
                .spawn(move || out.run(stdout))?;
            let err = StderrReader {
                tail: Arc::clone(&tail),
                events: self.events_tx.clone(),
                notify: Arc::clone(&self.notify),
                done: readers_done_tx,
            };
            thread::Builder::new()
                .name(format!("worker-{pid}-stderr"))
                .spawn(move || err.run(stderr))?;
            Ok(())
        })();
        if let Err(error) = threads {
            kill_group(&mut child);
            let _ = child.wait();
            return Err(spawn_error(error));
        }

        let monitor = Monitor {
            child,
            pid,
            shared: Arc::clone(&shared),
            tail,
            readers_done: readers_done_rx,
            events: self.events_tx.clone(),
            notify: Arc::clone(&self.notify),
            silence_timeout: self.config.silence_timeout,
        };
        // Without its monitor the child could not be watched: kill it through its pid.
        let monitor_thread = thread::Builder::new()
            .name(format!("worker-{pid}-monitor"))
            .spawn(move || monitor.run());
        if let Err(error) = monitor_thread {
            kill_pid_group(pid);
            return Err(spawn_error(error));
        }
        let _ = requests_tx.send(Request::Hello {
            version: PROTOCOL_VERSION,
        });
        let _ = self.events_tx.send(SupervisorEvent::WorkerStarted { pid });
        (self.notify)();
        Ok(WorkerHandle {
            pid,
            requests: Some(requests_tx),
            shared,
        })
    }
}

impl Drop for Supervisor {
    /// Asks the worker to stop (its running job stays resumable); the monitor thread kills it
    /// after the grace period if it does not.
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_requests(mut stdin: ChildStdin, requests: Receiver<Request>) {
    for request in requests {
        let line = match serde_json::to_string(&request) {
            Ok(line) => line,
            Err(error) => {
                log::error!("could not encode a request for the worker: {error}");
                continue;
            }
        };
        if writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .is_err()
        {
            // The worker closed its stdin or died; the monitor reports the exit.
            break;
        }
    }
}

struct StdoutReader {
    shared: Arc<Mutex<Shared>>,
    events: Sender<SupervisorEvent>,
    notify: Notify,
    done: Sender<()>,
}

impl StdoutReader {
    fn run(self, stdout: impl Read) {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let message = match serde_json::from_str::<Event>(line) {
                Ok(event) => {
                    self.observe(&event);
                    SupervisorEvent::Worker(event)
                }
                Err(_) => SupervisorEvent::Log(format!(
                    "worker wrote a line that is not a protocol message: {}",
                    truncate_chars(line, LOG_LINE_MAX_CHARS)
                )),
            };
            if self.events.send(message).is_err() {
                break;
            }
            (self.notify)();
        }
        let _ = self.done.send(());
    }

    fn observe(&self, event: &Event) {
        let mut shared = lock(&self.shared);
        shared.last_activity = Instant::now();
        match event {
            Event::Hello { version, .. } => {
                shared.hello_received = true;
                if *version != PROTOCOL_VERSION {
                    shared.kill_request = Some(ExitReason::VersionMismatch {
                        worker_version: *version,
                    });
                }
            }
            Event::JobFinished { job, .. }
            | Event::JobFailed { job, .. }
            | Event::JobCancelled { job }
                if shared.active_job == Some(*job) =>
            {
                shared.active_job = None;
            }
            _ => {}
        }
    }
}

struct StderrReader {
    tail: Arc<Mutex<TailBuffer>>,
    events: Sender<SupervisorEvent>,
    notify: Notify,
    done: Sender<()>,
}

impl StderrReader {
    fn run(self, stderr: impl Read) {
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            self.tail
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(&buf);
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            // The GUI may be gone (channel closed): keep draining so the child never blocks.
            if self
                .events
                .send(SupervisorEvent::Log(truncate_chars(
                    line,
                    LOG_LINE_MAX_CHARS,
                )))
                .is_ok()
            {
                (self.notify)();
            }
        }
        let _ = self.done.send(());
    }
}

fn truncate_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

struct Monitor {
    child: Child,
    pid: u32,
    shared: Arc<Mutex<Shared>>,
    tail: Arc<Mutex<TailBuffer>>,
    readers_done: Receiver<()>,
    events: Sender<SupervisorEvent>,
    notify: Notify,
    silence_timeout: Duration,
}

impl Monitor {
    fn run(mut self) {
        let mut killed_for: Option<ExitReason> = None;
        loop {
            if has_exited(&mut self.child) {
                break;
            }
            let kill_now = {
                let mut shared = lock(&self.shared);
                let should_talk = shared.active_job.is_some() || !shared.hello_received;
                if let Some(reason) = shared.kill_request.take() {
                    Some(reason)
                } else if let Some((deadline, reason)) = shared.stop_deadline
                    && Instant::now() >= deadline
                {
                    Some(reason)
                } else if should_talk && shared.last_activity.elapsed() >= self.silence_timeout {
                    Some(ExitReason::Unresponsive)
                } else {
                    None
                }
            };
            if let Some(reason) = kill_now
                && killed_for.is_none()
            {
                log::warn!("killing processing worker {} ({reason:?})", self.pid);
                killed_for = Some(reason);
                kill_group(&mut self.child);
            }
            thread::sleep(MONITOR_PERIOD);
        }
        // The child is a zombie (not reaped yet), so its pid and process group id cannot have
        // been reused: sweep what is left of its group (ffmpeg children), then reap it.
        kill_group(&mut self.child);
        let exit = match self.child.wait() {
            Ok(status) => ExitInfo::from_status(status),
            Err(_) => ExitInfo {
                code: None,
                signal: None,
            },
        };
        // Let the readers deliver the last events and stderr lines before the exit report.
        for _ in 0..2 {
            if self
                .readers_done
                .recv_timeout(READER_DRAIN_TIMEOUT)
                .is_err()
            {
                break;
            }
        }
        let (job, stop_reason) = {
            let mut shared = lock(&self.shared);
            shared.exited = true;
            (
                shared.active_job.take(),
                shared.stop_deadline.map(|(_, reason)| reason),
            )
        };
        let reason = match (killed_for, stop_reason) {
            (Some(reason), _) => reason,
            (None, Some(ExitReason::Cancelled)) => ExitReason::Cancelled,
            (None, _) if exit.success() && job.is_none() => ExitReason::Stopped,
            (None, _) => ExitReason::Crashed,
        };
        let stderr_tail = self
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .text();
        log::info!("processing worker {} ended: {exit} ({reason:?})", self.pid);
        let _ = self.events.send(SupervisorEvent::WorkerExited {
            pid: self.pid,
            job,
            exit,
            reason,
            stderr_tail,
        });
        (self.notify)();
    }
}

/// True once the child has exited, without reaping it (so its pid stays reserved).
#[cfg(target_os = "linux")]
fn has_exited(child: &mut Child) -> bool {
    // SAFETY: waitid only writes into the zeroed siginfo_t we own; WNOWAIT leaves the child
    // waitable, WNOHANG makes the call return at once.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            child.id() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc != 0 {
        // Cannot tell without reaping: fall back to the std call.
        return !matches!(child.try_wait(), Ok(None));
    }
    // SAFETY: waitid succeeded and filled `info` for a child-state change (or left it zeroed).
    unsafe { info.si_pid() != 0 }
}

#[cfg(not(target_os = "linux"))]
fn has_exited(child: &mut Child) -> bool {
    !matches!(child.try_wait(), Ok(None))
}

/// Kills the child and everything in its process group.
fn kill_group(child: &mut Child) {
    kill_pid_group(child.id());
    let _ = child.kill();
}

fn kill_pid_group(pid: u32) {
    #[cfg(unix)]
    if let Ok(pgid) = libc::pid_t::try_from(pid) {
        // SAFETY: plain syscall; the worker leads its own group (process_group(0)), and it is
        // not reaped yet when this runs, so the group id cannot belong to anyone else.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests;
