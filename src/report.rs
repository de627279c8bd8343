//! How an error reaches the person: one line that says what happened, and for a refusal the
//! step that must come first and the command that takes it.

use crate::error::Error;

pub fn render(err: &anyhow::Error) -> String {
    let mut out = format!("error: {err:#}\n");
    if let Some(Error::Refused { first, run, .. }) =
        err.downcast_ref::<Error>().map(Error::innermost)
    {
        if let Some(first) = first {
            out.push_str(&format!("  first: {first}\n"));
        }
        if let Some(run) = run {
            out.push_str(&format!("  run:   {run}\n"));
        }
    }
    out
}
