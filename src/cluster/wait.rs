//! Waiting for a deploy to show in the cluster: the environment's objects read again each time
//! the cluster says one of them changed, until they match its files, with a spinner that says
//! what is still missing.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::{ClusterError, Expected, Session, compare};
use crate::finding::Finding;
use crate::output::Shell;

#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub timeout: Duration,
}

/// How long a wait lasted, for the journal and the messages.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(
        "{env} (context {context}) did not show the deploy within {waited}: {still}; nothing was \
         recorded: run this again once it is deployed, or pass --no-verify to confirm by hand"
    )]
    TimedOut {
        env: String,
        context: String,
        waited: String,
        still: String,
    },
}

/// Read the environment until no error finding is left; returns the warnings that remain.
pub fn wait_until_matching(
    shell: &Shell,
    session: &Session,
    expected: &Expected,
    wait: Wait,
) -> Result<Vec<Finding>, WaitError> {
    let target = session.target();
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"),
    );
    let mut first = true;
    let mut last = Vec::new();
    // An Application that deploys something else will not show this deploy: no waiting.
    let mut other_application = None;
    let matched = session.wait(expected, wait.timeout, |snapshot| {
        let findings = compare(expected, snapshot);
        if let Some(finding) = findings.iter().find(|f| f.code == "argocd-app-differs") {
            other_application = Some(finding.message.clone());
            return true;
        }
        let errors: Vec<&Finding> = findings.iter().filter(|f| f.is_error()).collect();
        if errors.is_empty() {
            last = findings;
            return true;
        }
        if first {
            // What the deploy still has to change, once, in words that stay in the scrollback.
            shell.status(
                "Waiting",
                format!(
                    "for {} (context {}) to match its files; up to {}",
                    target.env,
                    target.context,
                    format_duration(wait.timeout)
                ),
            );
            for finding in &errors {
                shell.detail(finding.styled());
            }
            spinner.enable_steady_tick(Duration::from_millis(120));
            first = false;
        }
        let more = match errors.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        spinner.set_message(format!(
            "waiting for {}: {}{more}",
            target.env, errors[0].message
        ));
        last = findings;
        false
    });
    spinner.finish_and_clear();
    let matched = matched?;
    if let Some(why) = other_application {
        return Err(target.error(super::Problem::Other(why)).into());
    }
    if matched {
        return Ok(last);
    }
    Err(WaitError::TimedOut {
        env: target.env.clone(),
        context: target.context.clone(),
        waited: format_duration(wait.timeout),
        still: last
            .iter()
            .filter(|f| f.is_error())
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// `90s`, `10m`, `1h30m`: whole seconds, minutes and hours, as `--timeout` takes them.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration such as 90s, 10m or 1h30m");
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(invalid()),
        };
        let n: u64 = digits.parse().map_err(|_| invalid())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
        digits.clear();
    }
    if !digits.is_empty() || text.is_empty() {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        for (text, secs) in [("90s", 90), ("10m", 600), ("1h30m", 5400), ("0s", 0)] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
            assert_eq!(
                parse_duration(&format_duration(Duration::from_secs(secs))),
                Ok(Duration::from_secs(secs))
            );
        }
        for bad in ["", "10", "m", "1.5m", "-1s", "1d", "10 m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
