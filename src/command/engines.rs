//! `reframe engines`: the upscaling engines available on this machine.

use std::process::ExitCode;

pub fn main() -> anyhow::Result<ExitCode> {
    for engine in reframe::engine::available() {
        let scales: Vec<String> = engine.scales.iter().map(|s| format!("{s}x")).collect();
        let denoise = if engine.denoise_levels.is_empty() {
            String::new()
        } else {
            format!("  denoise {:?}", engine.denoise_levels)
        };
        println!(
            "{:<12} {}  (scales {}){denoise}",
            engine.name,
            engine.description,
            scales.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
