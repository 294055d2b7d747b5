//! reframe: upscale and re-encode local video files.
//!
//! The crate is one binary with several roles (see `ARCHITECTURE.md`): the GUI, the headless
//! `run` command, session management, and worker child processes. This library holds
//! everything those roles share so that integration tests and benchmarks can reach it too.

pub mod cluster;
pub mod engine;
pub mod fsutil;
pub mod gui;
pub mod i18n;
pub mod media;
pub mod neural;
pub mod pipeline;
pub mod presets;
pub mod preview;
pub mod protocol;
pub mod session;
pub mod spectrum;
pub mod supervisor;
