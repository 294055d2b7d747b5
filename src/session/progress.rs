//! The `progress.json` schema of a session. (Filled in by its owner.)

use serde::{Deserialize, Serialize};

/// The four steps of a job, in order.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Validate,
    Upscale,
    Package,
    Verify,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Validate, Step::Upscale, Step::Package, Step::Verify];

    pub fn label(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::Upscale => "upscale",
            Step::Package => "package",
            Step::Verify => "verify",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    #[default]
    Pending,
    InProgress,
    Completed,
    Failed,
}

/// Status of a whole session.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    #[default]
    Created,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}
