//! canary's one error type, and the one table that maps an error to its exit code.
//!
//! Every module of the library returns [`Error`]; the journal's own [`JournalError`] is one of
//! its kinds, defined here rather than in `journal` so that this module imports no other and
//! every module can sit above it. `anyhow` adds what a command was doing at the command edge (`commands/`), and
//! [`exit_code`] reads the exit code off whatever reaches `main`.

/// Exit codes, as documented in `canary --help` and relied upon by scripts.
pub mod exit {
    pub const FAILURE: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const REFUSED: i32 = 3;
    /// The metric gate cannot judge yet (too little v2 traffic, or the weight not deployed
    /// for the window): nothing changed; run the command again later.
    pub const NOT_YET: i32 = 4;
    /// Another process got there first: another canary holds the release (or the journal past
    /// its busy timeout), a file changed under canary's plan, or a git process holds the
    /// repository's index (`index.lock`). Running the command again is the answer.
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
    /// The metric gate cannot judge yet; the message says what it waits for.
    #[error("{0}")]
    NotYet(String),
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
    /// Another canary, elsewhere (a pipeline's other runner), pushed steps of this service's
    /// release since this clone was pulled: that one is moving the release on.
    #[error("{0}")]
    Overtaken(String),
    /// The analysis of `canary check` found errors where a step would write or deploy, or where
    /// `start`'s walk of the release would take it: the same refusal, the same exit code.
    #[error("{0}")]
    Broken(String),
    /// `canary check` found errors (it printed them).
    #[error("{0}")]
    Found(String),
    /// The operator said no.
    #[error("{0}")]
    Declined(String),
    /// A check found that what is differs from what should be (the findings were printed).
    #[error("{0}")]
    Mismatch(String),
    /// The journal could not be opened, read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Something failed that no input of the person's explains (a git command, a write,
    /// canary's own self-check of an edit); the message says what.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// What canary was doing when the error beneath happened, which keeps its exit code.
    #[error("{what}")]
    Context {
        what: String,
        #[source]
        source: Box<Error>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path} is not a canary journal (not an SQLite database); it was left untouched")]
    NotAJournal { path: String },
    #[error(
        "the journal has schema version {version}, newer than this canary knows ({known}); \
         it was left untouched: use a newer canary"
    )]
    Newer { version: u32, known: u32 },
    #[error("the journal is locked by another process past the busy timeout; try again")]
    Busy,
    #[error("journal: {0}")]
    Sqlite(rusqlite::Error),
    /// The cause is part of the message, not a source: a chain would say it twice.
    #[error("journal {path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("the journal's record of {service} is not what canary wrote: {detail}")]
    Corrupt { service: String, detail: String },
}

impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> JournalError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                JournalError::Busy
            }
            Some(rusqlite::ErrorCode::NotADatabase) => JournalError::NotAJournal {
                path: "the journal".into(),
            },
            _ => JournalError::Sqlite(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
    #[error("writing the export: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<rusqlite::Error> for ExportError {
    fn from(e: rusqlite::Error) -> ExportError {
        ExportError::Journal(e.into())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Journal(e.into())
    }
}

impl Error {
    /// The exit code scripts see for this error: the one table of them.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BadInput(_) => exit::BAD_INPUT,
            Error::Refused { .. } | Error::Broken(_) => exit::REFUSED,
            Error::NotYet(_) => exit::NOT_YET,
            Error::Busy { .. } | Error::Stale { .. } | Error::GitBusy(_) | Error::Overtaken(_) => {
                exit::BUSY
            }
            Error::Declined(_)
            | Error::Mismatch(_)
            | Error::Found(_)
            | Error::Failed(_)
            | Error::Io(_)
            | Error::Json(_) => exit::FAILURE,
            Error::Journal(e) => journal_exit_code(e),
            Error::Context { source, .. } => source.exit_code(),
        }
    }

    /// This error with what canary was doing said before it.
    pub fn context(self, what: impl Into<String>) -> Error {
        Error::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }

    /// The error beneath every context.
    pub fn innermost(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.innermost(),
            e => e,
        }
    }
}

/// The words of the innermost cause of a library's error: "connection refused", where the
/// outer ones say only that a request failed.
pub fn deepest_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// The exit code of an error that reached `main`: canary's own error in its chain decides
/// (the command edge may have said what it was doing around it), anything else is a failure.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|cause| {
            let own = cause.downcast_ref::<Error>().map(Error::exit_code);
            // A command's read of the journal may reach the edge as the journal's own error, or
            // inside the export's: a transparent wrapper hides it from the chain, so each
            // wrapper is looked into here.
            own.or_else(|| cause.downcast_ref::<JournalError>().map(journal_exit_code))
                .or_else(|| cause.downcast_ref::<ExportError>().map(export_exit_code))
        })
        .unwrap_or(exit::FAILURE)
}

/// The export's rows of the table: the journal's error keeps its code.
fn export_exit_code(e: &ExportError) -> i32 {
    match e {
        ExportError::Journal(e) => journal_exit_code(e),
        ExportError::Write(_) | ExportError::Json(_) => exit::FAILURE,
    }
}

/// The journal's rows of [`Error::exit_code`]'s table.
fn journal_exit_code(e: &JournalError) -> i32 {
    match e {
        JournalError::NotAJournal { .. } | JournalError::Newer { .. } => exit::BAD_INPUT,
        JournalError::Io { .. } => exit::BAD_INPUT,
        JournalError::Busy => exit::BUSY,
        JournalError::Sqlite(_) | JournalError::Corrupt { .. } => exit::FAILURE,
    }
}

/// Say what canary was doing around an error, as `anyhow`'s `context` does at the edge.
pub trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T, Error>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T, Error> {
        self.map_err(|e| e.into().context(what))
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|e| e.into().context(what()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl Into<String>) -> Result<T, Error> {
        self.ok_or_else(|| Error::Failed(what.into()))
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.ok_or_else(|| Error::Failed(what()))
    }
}

/// The refusal of a state in which `canary check`'s analysis finds errors: `what` canary was
/// about to do, the findings, and the command that lists every one.
pub fn broken(what: &str, findings: &[String], run: &str) -> Error {
    Error::Broken(format!(
        "refusing to {what}:\n  {}\n  (`{run}` lists every finding)",
        findings.join("\n  ")
    ))
}

/// Shorthand for the most common error.
pub fn bad_input(message: impl Into<String>) -> Error {
    Error::BadInput(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_error_inside_the_export_s_keeps_its_code() {
        let busy = anyhow::Error::from(ExportError::Journal(JournalError::Busy));
        assert_eq!(exit_code(&busy), exit::BUSY);
        let said = anyhow::Error::from(ExportError::Journal(JournalError::Busy))
            .context("exporting the journal");
        assert_eq!(exit_code(&said), exit::BUSY);
        let write = ExportError::Write(std::io::Error::other("broken pipe"));
        assert_eq!(exit_code(&anyhow::Error::from(write)), exit::FAILURE);
    }
}
