//! The errors that decide canary's exit code. Anything else is exit 1.

/// Exit codes, as documented in `canary --help` and relied upon by scripts.
pub mod exit {
    pub const FAILURE: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const REFUSED: i32 = 3;
    /// Another process got there first (another canary, or an edit of a file canary was
    /// about to write): running the command again is the answer.
    pub const BUSY: i32 = 75;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or bad input: nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// The workflow does not allow this now.
    #[error("refused: {reason}")]
    Refused {
        reason: String,
        /// The step that must come first.
        first: Option<String>,
        /// The command that takes it.
        run: Option<String>,
    },
    /// A file no longer holds the bytes a plan was made from, so nothing was written.
    #[error(
        "{path} changed since canary read it (an editor's save or a pull, say); nothing was \
         written. Run the command again: it plans on the new content"
    )]
    Stale { path: String },
    /// Another canary process holds this release.
    #[error(
        "another canary process{holder} is working on {service} right now; try again when it is done"
    )]
    Busy { service: String, holder: String },
    /// A git process holds the repository's index (its `index.lock`).
    #[error("{0}")]
    GitBusy(String),
    /// The analysis of `canary check` found errors where a step would write or deploy.
    #[error("refusing to {what}:\n  {}\n  (`{run}` lists every finding)", findings.join("\n  "))]
    Broken {
        what: String,
        findings: Vec<String>,
        run: String,
    },
    /// `canary check` found errors (it printed them).
    #[error("{0}")]
    Found(String),
    /// The operator said no.
    #[error("{0}")]
    Declined(String),
    /// A check found that what is differs from what should be (the findings were printed).
    #[error("{0}")]
    Mismatch(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BadInput(_) => exit::BAD_INPUT,
            Error::Refused { .. } => exit::REFUSED,
            Error::Busy { .. } | Error::Stale { .. } | Error::GitBusy(_) => exit::BUSY,
            Error::Declined(_) | Error::Mismatch(_) | Error::Broken { .. } | Error::Found(_) => {
                exit::FAILURE
            }
        }
    }
}

/// Shorthand for the most common error.
pub fn bad_input(message: impl Into<String>) -> Error {
    Error::BadInput(message.into())
}
