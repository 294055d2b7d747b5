//! One module per subcommand, each with its own `Args` and `main` (ab-av1 style).

pub mod engines;
pub mod gui;
pub mod presets;
pub mod report;
pub mod run;
pub mod sessions;
pub mod worker;
