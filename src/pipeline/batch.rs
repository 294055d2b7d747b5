//! Many jobs on one machine, overlapped: while one job packages and verifies its output (a
//! stream copy and a probe: a process or two that leave cores idle), the next job validates
//! its input and encodes its chunks.
//!
//! At most two jobs are open at once: one in its chunks, one in package/verify; the next job
//! starts only once the finishing stage has taken the previous one. What the caller sees is
//! unchanged from jobs run one after another: outcomes come in the jobs' order, and so do the
//! events (a job's events are held back until every job before it has ended, then passed on as
//! they come).

use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::{Context, JobFailure, OpenJob, Outcome, Reporter, Role, open_job, report_outcome};
use crate::protocol::{Event, JobId, JobSpec};
use crate::session::progress::Step;

/// The steps of a job's first stage; the finishing stage runs the rest.
const FIRST_STAGE: [Step; 2] = [Step::Validate, Step::Upscale];
const FINISHING_STAGE: [Step; 2] = [Step::Package, Step::Verify];

/// What the first stage hands to the finishing stage.
struct Handover {
    reporter: Reporter,
    started: Instant,
    state: Stage,
}

enum Stage {
    /// The job ended before its package step (failed, cancelled).
    Ended(Outcome),
    /// Its chunks are done: package and verify it.
    Chunked(Box<OpenJob<'static>>),
}

/// Run `jobs` in order on this machine, overlapping each job's package and verify with the
/// next job's first steps, and call `on_outcome` with each job's outcome, in the jobs' order.
/// Stops starting jobs once `ctx.cancel` is set.
pub fn run_batch(
    ctx: &Context,
    jobs: impl IntoIterator<Item = (JobId, JobSpec)>,
    mut on_outcome: impl FnMut(JobId, Outcome) + Send,
) {
    std::thread::scope(|scope| {
        let (order_tx, order_rx) = unbounded::<Receiver<Event>>();
        let events = ctx.events.clone();
        scope.spawn(move || pass_on_in_order(order_rx, &events));

        // A rendezvous: the first stage waits for the finishing stage to take its job, so at
        // most one job finishes while the next one runs.
        let (handover_tx, handover_rx) = bounded::<Handover>(0);
        scope.spawn(move || {
            for Handover {
                reporter,
                started,
                state,
            } in handover_rx
            {
                let outcome = match state {
                    Stage::Ended(outcome) => outcome,
                    Stage::Chunked(mut open) => match open.run(ctx, &reporter, &FINISHING_STAGE) {
                        Ok(()) => Outcome::Finished {
                            output: open.close(&reporter),
                        },
                        Err(failure) => failure.into(),
                    },
                };
                report_outcome(&reporter, started, &outcome);
                let job = reporter.job;
                // The job's last event is sent: the next job's events may follow.
                drop(reporter);
                on_outcome(job, outcome);
            }
        });

        for (job, spec) in jobs {
            if ctx.cancel.is_cancelled() {
                break;
            }
            let (events, job_events) = unbounded();
            if order_tx.send(job_events).is_err() {
                break;
            }
            let reporter = Reporter { job, events };
            let started = Instant::now();
            let state = match first_stage(ctx, &reporter, &spec) {
                Ok(open) => Stage::Chunked(Box::new(open)),
                Err(failure) => Stage::Ended(failure.into()),
            };
            let handover = Handover {
                reporter,
                started,
                state,
            };
            if handover_tx.send(handover).is_err() {
                break;
            }
        }
        drop(order_tx);
        drop(handover_tx);
    });
}

fn first_stage(
    ctx: &Context,
    reporter: &Reporter,
    spec: &JobSpec,
) -> Result<OpenJob<'static>, JobFailure> {
    let mut open = open_job(ctx, reporter, spec, Role::Local)?;
    open.run(ctx, reporter, &FIRST_STAGE)?;
    Ok(open)
}

/// Forward each job's events, job after job: a job's channel closes when its last event is
/// sent, and only then does the next job's (buffered meanwhile) come through.
fn pass_on_in_order(jobs: Receiver<Receiver<Event>>, out: &Sender<Event>) {
    for job_events in jobs {
        for event in job_events {
            let _ = out.send(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(job: JobId, message: &str) -> Event {
        Event::Warning {
            job,
            message: message.to_owned(),
        }
    }

    #[test]
    fn a_later_jobs_events_wait_for_the_earlier_job_to_end() {
        let (out, printed) = unbounded();
        let (order, jobs) = unbounded();
        let (first, first_rx) = unbounded();
        let (second, second_rx) = unbounded();
        order.send(first_rx).expect("send");
        order.send(second_rx).expect("send");
        drop(order);
        // The second job speaks first, while the first is still finishing.
        second.send(warning(2, "early")).expect("send");
        first.send(warning(1, "packaging")).expect("send");
        let forwarder = std::thread::spawn(move || pass_on_in_order(jobs, &out));
        first.send(warning(1, "done")).expect("send");
        drop(first);
        second.send(warning(2, "late")).expect("send");
        drop(second);
        forwarder.join().expect("forwarder");
        let seen: Vec<String> = printed
            .iter()
            .map(|e| match e {
                Event::Warning { job, message } => format!("{job}:{message}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(seen, ["1:packaging", "1:done", "2:early", "2:late"]);
    }
}
