//! Resume, proven harder: a job is killed (-9) at random instants across all of its steps —
//! validate, upscale, package, verify — and run again after each kill, from the command line
//! and through the window's worker (`reframe worker process`), on the filter-graph path
//! (Lanczos) and the pipe path (a neural engine). Every time it completes, its output is the
//! uninterrupted run's frame for frame, the output folder holds only the output (no `.part`
//! leftovers) and the session is gone.
//!
//! CI kills a few times per test; `scripts/kill-anywhere.sh` kills 20 times (any count:
//! `REFRAME_KILLS=N`). `REFRAME_KILL_SEED=S` repeats a run's instants; each test prints its
//! seed.

mod common;
mod neural_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use reframe::protocol::{Event, JobSpec, PROTOCOL_VERSION, Request, ResumeMode, Step, StepStatus};

const WAIT: Duration = Duration::from_secs(300);
const CI_KILLS: usize = 4;

/// Where the kills land, in turn from a random first one.
const PHASES: [Phase; 4] = [
    Phase::Validate,
    Phase::Upscale,
    Phase::Package,
    Phase::Verify,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// From the start to the upscale step: probe, frame list, plan, session.
    Validate,
    Upscale,
    Package,
    Verify,
}

impl Phase {
    /// The event that starts it (validate starts with the process).
    fn step(self) -> Option<Step> {
        match self {
            Phase::Validate => None,
            Phase::Upscale => Some(Step::Upscale),
            Phase::Package => Some(Step::Package),
            Phase::Verify => Some(Step::Verify),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    Cli,
    Worker,
}

/// One job: input, output and settings.
struct Job {
    input: PathBuf,
    out: PathBuf,
    chunk_seconds: f64,
    engine: &'static str,
    preset: String,
    models_dir: Option<PathBuf>,
}

impl Job {
    fn spawn(&self, env: &TestEnv, driver: Driver) -> JsonRun {
        match driver {
            Driver::Cli => {
                let mut args = run_args(
                    &self.input,
                    &self.out,
                    self.chunk_seconds,
                    &["--json", "--engine", self.engine, "--scale", "2"],
                );
                args.extend(["--preset".into(), self.preset.clone().into()]);
                if let Some(models) = &self.models_dir {
                    args.extend(["--models-dir".into(), models.clone().into_os_string()]);
                }
                env.spawn_json(args)
            }
            Driver::Worker => {
                let spec = JobSpec {
                    input: self.input.clone(),
                    engine: self.engine.to_owned(),
                    scale: Some(2.0),
                    height: None,
                    denoise: None,
                    preset: self.preset.clone(),
                    output: Some(self.out.clone()),
                    overwrite: false,
                    resume: ResumeMode::Auto,
                    chunk_seconds: self.chunk_seconds,
                    deinterlace: false,
                    models_dir: self.models_dir.clone(),
                };
                let requests = [
                    Request::Hello {
                        version: PROTOCOL_VERSION,
                    },
                    Request::Run { job: 1, spec },
                ]
                .map(|r| serde_json::to_string(&r).expect("a request as JSON"));
                let mut cmd = env.command();
                cmd.args(["worker", "process"]);
                JsonRun::spawn_with_requests(cmd, &requests)
            }
        }
    }
}

fn is_end(e: &Event) -> bool {
    matches!(e, Event::JobFinished { .. } | Event::JobFailed { .. })
}

fn starts(phase: Phase) -> impl Fn(&Event) -> bool {
    move |e| {
        is_end(e)
            || matches!(e, Event::StepChanged { step, status: StepStatus::InProgress, .. }
                if Some(*step) == phase.step())
    }
}

/// How long each phase of an uninterrupted run lasts, and its output's frames.
struct Reference {
    phase_secs: [f64; 4],
    framemd5: Vec<String>,
}

fn reference(env: &TestEnv, job: &Job) -> Reference {
    let mut run = job.spawn(env, Driver::Cli);
    let t0 = Instant::now();
    let mut at = [0.0f64; 5];
    for (i, phase) in PHASES.iter().enumerate().skip(1) {
        run.wait_for("the next step", WAIT, starts(*phase));
        at[i] = t0.elapsed().as_secs_f64();
    }
    run.wait_for("the end", WAIT, is_end);
    at[4] = t0.elapsed().as_secs_f64();
    run.finish(WAIT).assert_success();
    let phase_secs = [0, 1, 2, 3].map(|i| (at[i + 1] - at[i]).max(0.001));
    let framemd5 = framemd5(&job.out);
    std::fs::remove_file(&job.out).expect("remove the reference output");
    Reference {
        phase_secs,
        framemd5,
    }
}

/// xorshift64*: repeatable instants from a printed seed.
struct Instants(u64);

impl Instants {
    fn new(test: &str) -> Instants {
        let seed = std::env::var("REFRAME_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        eprintln!("{test}: REFRAME_KILL_SEED={seed}");
        Instants(seed)
    }

    fn fraction(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn kills() -> usize {
    std::env::var("REFRAME_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CI_KILLS)
}

/// A completed job: the reference frames, nothing else in the output folder, no session.
fn check_completed(env: &TestEnv, job: &Job, reference: &Reference, history: &[String]) {
    assert_eq!(
        framemd5(&job.out),
        reference.framemd5,
        "after {history:?}: the output differs from an uninterrupted run"
    );
    let folder = job.out.parent().expect("the output's folder");
    assert_eq!(
        list_files(folder),
        vec![PathBuf::from(job.out.file_name().expect("a file name"))],
        "after {history:?}: leftovers in the output folder"
    );
    assert!(
        env.session_ids().is_empty(),
        "after {history:?}: the finished job's session is left"
    );
    std::fs::remove_file(&job.out).expect("remove the output");
}

/// Kills `job` `kills()` times at random instants (phases in turn), running it again after
/// each kill, with every driver in `drivers` in turn.
fn kill_anywhere(test: &str, env: &TestEnv, job: &Job, drivers: &[Driver]) {
    let reference = reference(env, job);
    let mut instants = Instants::new(test);
    let first_phase = (instants.fraction() * PHASES.len() as f64) as usize;
    let wanted = kills();
    let mut history: Vec<String> = Vec::new();
    let mut killed = 0;
    let mut runs = 0;
    while killed < wanted {
        runs += 1;
        assert!(runs < wanted * 4 + 8, "{history:?}: too many runs");
        let driver = drivers[runs % drivers.len()];
        let phase = PHASES[(first_phase + killed) % PHASES.len()];
        let delay = instants.fraction() * reference.phase_secs[phase as usize];
        let mut run = job.spawn(env, driver);
        let started = Instant::now();
        // Into the phase (a resumed run may pass it, or end, first), then the delay.
        let ended_early = phase != Phase::Validate
            && match run.wait_until(started + WAIT, starts(phase)) {
                Some(e) => is_end(&e),
                None => panic!("{history:?}: the run ended without a result"),
            };
        let ended = ended_early
            || run
                .wait_until(Instant::now() + Duration::from_secs_f64(delay), is_end)
                .is_some();
        if ended {
            history.push(format!("{driver:?} run to the end"));
            if driver == Driver::Worker {
                run.close_input();
            }
            let finished = run.finish(WAIT);
            finished.assert_success();
            check_completed(env, job, &reference, &history);
            continue;
        }
        run.kill9();
        killed += 1;
        history.push(format!("{driver:?} killed in {phase:?} after {delay:.3} s"));
        if job.out.exists() {
            // Killed after the output took its name: it must be whole already, and the next
            // run starts a new job.
            history.push("the output was in place".into());
            check_completed_output_only(job, &reference, &history);
        }
    }
    // The last run completes.
    let mut run = job.spawn(env, drivers[0]);
    run.wait_for("the end", WAIT, is_end);
    if drivers[0] == Driver::Worker {
        run.close_input();
    }
    run.finish(WAIT).assert_success();
    history.push("run to the end".into());
    check_completed(env, job, &reference, &history);
    eprintln!("{test}: {history:#?}");
}

/// An output in place after a kill: whole; removed, so that the next run makes it again.
fn check_completed_output_only(job: &Job, reference: &Reference, history: &[String]) {
    assert_eq!(
        framemd5(&job.out),
        reference.framemd5,
        "after {history:?}: an output in place but not whole"
    );
    std::fs::remove_file(&job.out).expect("remove the output");
}

fn folder_job(env: &TestEnv, input: PathBuf, name: &str) -> Job {
    let out = env.subdir("out").join(name);
    Job {
        input,
        out,
        chunk_seconds: 0.5,
        engine: "lanczos",
        preset: "h264_hq".to_owned(),
        models_dir: None,
    }
}

#[test]
fn lanczos_killed_anywhere_from_the_cli_and_the_worker_resumes_to_the_same_output() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(3.0));
    let job = folder_job(&env, input, "clip.out.mp4");
    kill_anywhere("lanczos", &env, &job, &[Driver::Cli, Driver::Worker]);
}

#[test]
fn a_neural_engine_killed_anywhere_resumes_to_the_same_output() {
    let env = TestEnv::new();
    let clip = Clip {
        width: 32,
        height: 24,
        fps: 24,
        duration_secs: 0.5,
    };
    let input = make_plain(&env.path("tiny.mp4"), clip);
    let preset = write_preset_file(&env, "ffv1_8bit.json", FFV1_8BIT_PRESET);
    let job = Job {
        input,
        out: env.subdir("out").join("tiny.mkv"),
        chunk_seconds: 0.125,
        engine: "animevideov3",
        preset: preset.to_string_lossy().into_owned(),
        models_dir: Some(neural_support::models_dir()),
    };
    kill_anywhere("animevideov3", &env, &job, &[Driver::Worker, Driver::Cli]);
}
