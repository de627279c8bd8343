//! How an error reaches the person: one line that says what happened, for a refusal the step
//! that must come first and the command that takes it, and the exit code scripts rely on.

use crate::error::{Error, exit};
use crate::journal::JournalError;

pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<JournalError>() {
            return match e {
                JournalError::NotAJournal { .. } | JournalError::Newer { .. } => exit::BAD_INPUT,
                JournalError::Io { .. } => exit::BAD_INPUT,
                JournalError::Busy => exit::BUSY,
                JournalError::Sqlite(_) | JournalError::Corrupt { .. } => exit::FAILURE,
            };
        }
    }
    exit::FAILURE
}

pub fn render(err: &anyhow::Error) -> String {
    let mut out = format!("error: {err:#}\n");
    if let Some(Error::Refused { first, run, .. }) = err.downcast_ref::<Error>() {
        if let Some(first) = first {
            out.push_str(&format!("  first: {first}\n"));
        }
        if let Some(run) = run {
            out.push_str(&format!("  run:   {run}\n"));
        }
    }
    out
}
