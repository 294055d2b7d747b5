//! Sessions: one (input file, settings) pair being processed, stored on disk so that a killed
//! job can resume. (Filled in by its owner.)

pub mod progress;
