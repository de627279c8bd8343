//! Who the journal records as acting.

use std::cell::OnceCell;
use std::path::Path;
use std::process::{Command, Stdio};

/// Who the journal records as acting: `CANARY_OPERATOR`, else git's `user.name` (the release's
/// repository's, which git falls back from to the global one), else the login name (`USER`,
/// `USERNAME`). Git is asked when the first event is written, and only then: read commands are
/// measured against the sqlite3 tool and must not spawn a process to learn a name they never
/// write. One process acts for one person, so the name is worked out once.
#[derive(Debug, Clone)]
pub struct Operator {
    name: OnceCell<String>,
}

impl Operator {
    /// This process's operator, as its environment (and, when needed, git) says.
    pub fn from_env() -> Operator {
        Operator {
            name: var("CANARY_OPERATOR")
                .map(OnceCell::from)
                .unwrap_or_default(),
        }
    }

    /// The name, worked out on first need; `repo` is the repository of the release acted on.
    pub fn name(&self, repo: Option<&Path>) -> &str {
        self.name.get_or_init(|| {
            git_user_name(repo)
                .or_else(|| ["USER", "USERNAME"].into_iter().find_map(var))
                .unwrap_or_else(|| "unknown".into())
        })
    }
}

impl From<&str> for Operator {
    fn from(name: &str) -> Operator {
        Operator {
            name: OnceCell::from(name.to_string()),
        }
    }
}

impl From<&Operator> for Operator {
    fn from(operator: &Operator) -> Operator {
        operator.clone()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `git config user.name` as `repo` sees it (its own config, else the global and system ones),
/// or the global config's when no repository is known or it is gone.
fn git_user_name(repo: Option<&Path>) -> Option<String> {
    let mut git = Command::new("git");
    match repo.filter(|r| r.is_dir()) {
        Some(repo) => git.arg("-C").arg(repo).args(["config", "user.name"]),
        None => git.args(["config", "--global", "user.name"]),
    };
    let out = git
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !name.is_empty()).then_some(name)
}
