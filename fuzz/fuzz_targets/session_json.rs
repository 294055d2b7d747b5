//! A session's state files as read back after a crash: `progress.json` and `plan.json`. Either
//! is rejected as damaged or used; using it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reframe::pipeline::plan::Plan;
use reframe::session::progress::Progress;

fuzz_target!(|data: &[u8]| {
    if let Ok(progress) = serde_json::from_slice::<Progress>(data) {
        let _ = progress.is_resumable();
        let _ = progress.settings.differences(&progress.settings);
        let _ = serde_json::to_vec(&progress);
    }
    if let Ok(plan) = serde_json::from_slice::<Plan>(data)
        && plan.is_consistent()
    {
        let _ = plan.frame_count();
        for chunk in &plan.chunks {
            let _ = plan.chunk_frame_times(chunk);
            let _ = plan.chunk_end_secs(chunk);
        }
    }
});
