//! Progress while a chunk is being encoded: the frame count moves before the chunk ends (not
//! only from one finished chunk to the next), and the chunk's thumbnail is still its last
//! frame.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use reframe::protocol::Event;
use reframe::session::progress::Step;

/// A clip of one chunk: noisy (so the encoder has work for a few seconds on any machine) and
/// white in its last second (so the thumbnail tells the last frame from the others).
#[test]
fn a_chunk_reports_its_frames_before_it_ends() {
    let env = TestEnv::new();
    let clip = Clip {
        width: 320,
        height: 180,
        fps: 24,
        duration_secs: 6.0,
    };
    let input = make_custom(
        &env.path("noisy.mp4"),
        clip,
        Some("noise=alls=30:allf=t,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable=gte(t\\,5)"),
        "",
    );
    let out = env.path("noisy.out.mp4");
    let mut running = env.spawn_json(run_args(&input, &out, 100.0, &["--scale", "2"]));
    let thumbnail = running.wait_for("a thumbnail", Duration::from_secs(300), |e| {
        matches!(e, Event::Thumbnail { .. })
    });
    let Event::Thumbnail { path, .. } = thumbnail else {
        unreachable!()
    };
    // Read at once: the session folder goes when the job is done.
    let jpeg = fs::read(&path).expect("the thumbnail file");
    let run = running.finish(Duration::from_secs(300));
    run.assert_success();
    assert_eq!(chunk_done_indices(&run.events), [0], "one chunk");

    let image = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .expect("a JPEG thumbnail")
        .to_luma8();
    let mean = image.pixels().map(|p| f64::from(p.0[0])).sum::<f64>()
        / f64::from(image.width() * image.height());
    assert!(
        mean > 200.0,
        "the thumbnail is not the last (white) frame: mean luma {mean}"
    );

    let chunk_done = run
        .events
        .iter()
        .position(|e| matches!(e, Event::ChunkDone { .. }))
        .expect("a chunk-done event");
    let inside: Vec<u64> = run.events[..chunk_done]
        .iter()
        .filter_map(|e| match e {
            Event::Progress {
                step: Step::Upscale,
                frames_done,
                frames_total,
                ..
            } if *frames_done > 0 && frames_done < frames_total => Some(*frames_done),
            _ => None,
        })
        .collect();
    assert!(
        !inside.is_empty(),
        "no progress inside the chunk: {:?}",
        run.events
    );
    assert!(
        inside.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {inside:?}"
    );
}
