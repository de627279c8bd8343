//! A finding: one way in which what canary reads differs from what it expects, with a stable
//! code for scripts, a severity, the file and line it concerns, and a one-line message.

use std::fmt;

use console::style;
use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The state is wrong: `canary check` and `canary verify` exit 1, a step or a deploy waits
    /// until it is gone.
    Error,
    /// Worth a look, but not proof that anything is wrong.
    Warning,
    /// What canary read, for the record (an Argo CD Application's sync and health); never a
    /// difference.
    Info,
}

/// The one kind of finding, of `canary check` (the files) and of `canary verify` (a cluster).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    /// The environment whose cluster was read, for findings about a cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The repository file the finding is about (relative path), if any.
    pub file: Option<String>,
    /// 1-based line in `file`; `null` when the finding is about a file that is not there.
    pub line: Option<usize>,
    pub message: String,
    /// What was read, for scripts: an Argo CD Application's sync, revision and health.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl Finding {
    pub fn error(code: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            code,
            severity: Severity::Error,
            env: None,
            file: None,
            line: None,
            message: message.into(),
            detail: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, message)
        }
    }

    pub fn info(code: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Info,
            ..Finding::error(code, message)
        }
    }

    /// The place in the repository the finding is about.
    pub fn at(mut self, file: &str, line: Option<usize>) -> Finding {
        self.file = Some(file.to_string());
        self.line = line;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// As [`Display`](fmt::Display) says it, the severity in colour where the terminal shows
    /// colour, for a finding printed on its own line.
    pub fn styled(&self) -> String {
        let label = match self.severity {
            Severity::Error => style(self.label()).red().bold(),
            Severity::Warning => style(self.label()).yellow().bold(),
            Severity::Info => style(self.label()).cyan(),
        };
        format!("{label}{}", self.place_and_message())
    }

    fn label(&self) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        format!("{severity}[{}]", self.code)
    }

    fn place_and_message(&self) -> String {
        let mut out = String::new();
        if let Some(env) = &self.env {
            out.push_str(&format!(" {env}:"));
        }
        match (&self.file, self.line) {
            (Some(file), Some(line)) => out.push_str(&format!(" {file}:{line}:")),
            (Some(file), None) => out.push_str(&format!(" {file}:")),
            _ => {}
        }
        out.push_str(&format!(" {}", self.message));
        out
    }
}

/// `error[code] env: file:line: message`, as compilers and linters print theirs; plain, as it
/// goes into a message.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.label(), self.place_and_message())
    }
}

pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(Finding::is_error)
}

/// The 1-based number of the first line of `text` that contains `needle`.
pub fn first_line_containing(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_reads_like_a_compiler_message() {
        console::set_colors_enabled(false);
        let finding = Finding::error("live-weights-differ", "v2 has 30% live, 0% in the file")
            .at("gap/staging/vs.yaml", Some(16));
        let finding = Finding {
            env: Some("staging".into()),
            ..finding
        };
        assert_eq!(
            finding.to_string(),
            "error[live-weights-differ] staging: gap/staging/vs.yaml:16: v2 has 30% live, 0% in \
             the file"
        );
        assert_eq!(first_line_containing("a\nb: x\nc\n", "b:"), Some(2));
    }
}
