//! `reframe engines`: the upscaling engines available on this machine, the neural models found
//! in the models folder (scales, denoise levels), where to put the ones that are missing, and
//! the user's own models in its `custom/` folder (with the reason for any that cannot run).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use reframe::engine::{self, models};

#[derive(Parser, Debug)]
pub struct Args {
    /// Folder of the neural engines' model files (default: $REFRAME_MODELS_DIR, else
    /// <config dir>/models).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let dir = models::models_dir(args.models_dir.as_deref());
    for engine in engine::available_in(dir.as_deref()) {
        let scales: Vec<String> = engine.scales.iter().map(|s| format!("{s}x")).collect();
        let denoise = if engine.denoise_levels.is_empty() {
            String::new()
        } else {
            format!("  denoise {:?}", engine.denoise_levels)
        };
        println!(
            "{:<14} {}  (scales {}){denoise}",
            engine.name,
            engine.description,
            scales.join(" ")
        );
    }
    let Some(dir) = dir else {
        println!(
            "\nno models folder: no home directory; set REFRAME_MODELS_DIR or use --models-dir"
        );
        return Ok(ExitCode::SUCCESS);
    };
    println!("\nmodels folder: {}", dir.display());
    for installed in models::scan_all(&dir) {
        let family = installed.family;
        let name = family.engine_name();
        if installed.is_empty() {
            println!("  {name:<14} missing: {}", family.install_hint(&dir));
            continue;
        }
        let several_nets = installed
            .models
            .iter()
            .any(|(net, _, _)| *net != installed.models[0].0);
        let found: Vec<String> = installed
            .models
            .iter()
            .map(|(net, level, files)| {
                let what = match level {
                    None => "upscale".to_owned(),
                    Some(n) => format!("denoise {n}"),
                };
                let at = if several_nets {
                    format!("{net}× ")
                } else {
                    String::new()
                };
                format!("{at}{what} ({})", file_name(&files.param))
            })
            .collect();
        println!("  {name:<14} {}", found.join(", "));
        let missing = installed.missing_denoise();
        if !installed.has_plain() || !missing.is_empty() {
            let mut what = Vec::new();
            if !installed.has_plain() {
                what.push("no-denoise".to_owned());
            }
            what.extend(missing.iter().map(|n| format!("denoise {n}")));
            println!(
                "  {:<14} not found: {} ({})",
                "",
                what.join(", "),
                family.install_hint(&dir)
            );
        }
    }
    let custom = engine::custom_models(&dir);
    println!(
        "\nyour own models ({}, NAME.param + NAME.bin): {}",
        dir.join(engine::custom::CUSTOM_FOLDER).display(),
        if custom.is_empty() { "none" } else { "" }
    );
    for model in custom {
        match model.status {
            Ok(scale) => println!(
                "  {:<14} {scale}× ({})",
                model.name,
                file_name(&model.files.param)
            ),
            Err(reason) => println!("  {:<14} cannot be used: {reason}", model.name),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
