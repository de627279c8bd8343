//! What canary asks of git and does with it: which files are uncommitted, the branch and its
//! upstream, what a commit holds, a commit of exactly the bytes canary wrote, and a push.
//!
//! A commit is built from a temporary index holding HEAD's tree and canary's blobs, and HEAD
//! moves to it by `git update-ref NEW OLD`: whatever else is staged or changed in the work tree
//! stays out of it, and a commit that lands meanwhile (a colleague's, pulled in another
//! terminal) makes canary's fail rather than be reverted by it. The team's pre-commit,
//! prepare-commit-msg and commit-msg hooks run on that index and message, as `git commit`
//! runs them.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::error::Context;

use super::{Repo, sha256_bytes};
use crate::error::{Error, bad_input};

/// The branch HEAD is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// Its short name (`main`).
    pub name: String,
    pub upstream: Option<Upstream>,
}

/// Where a branch is pushed to, as `branch.NAME.remote` and `branch.NAME.merge` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub remote: String,
    /// The remote's ref (`refs/heads/main`).
    pub merge: String,
    /// The remote-tracking ref that stands for it here (`origin/main`), as people name it.
    pub tracking: String,
}

/// A file as a commit should hold it: its content, or `None` for a deleted file.
pub struct Content<'a> {
    pub path: &'a str,
    pub text: Option<&'a str>,
}

/// A commit canary made, as its trailers name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryCommit {
    pub commit: String,
    pub author: String,
    /// Its `Canary-Release:`.
    pub release: String,
    /// Its `Canary-Step:` (`PHASE: STEP`).
    pub step: String,
}

/// What one commit says in its trailers and what it changes: enough to tell a commit of
/// canary's by what it is, whatever its id (a rebase, a cherry-pick or an amend gives it a new
/// one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFacts {
    pub commit: String,
    /// Its `Canary-Service:`, `Canary-Release:` and `Canary-Step:` (empty where absent).
    pub service: String,
    pub release: String,
    pub step: String,
    /// Each path it changes, relative to the repository's directory, with the sha256 of the
    /// content it leaves there (`None`: deleted); `None` for the whole list when the commit
    /// is a merge, a root commit, or changes a file outside the repository's directory.
    pub changed: Option<Vec<(String, Option<String>)>>,
}

impl CanaryCommit {
    /// Whether the release it belongs to had nothing left to commit: its last edit is made.
    fn is_last_edit(&self) -> bool {
        self.step.starts_with("cleanup-3:")
    }

    /// The commit's short id, as people read it.
    pub fn short(&self) -> &str {
        short_id(&self.commit)
    }
}

/// A commit id as people read it: its first 12 hex digits.
pub fn short_id(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

impl Repo {
    /// Which of these paths git sees as changed, added or deleted and not committed.
    pub fn uncommitted(&self, rels: &[&str]) -> Result<Vec<String>, Error> {
        if rels.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = self.prefix()?;
        let out = run_git(
            self.git()
                .args([
                    "status",
                    "--porcelain=v1",
                    "-z",
                    "--untracked-files=all",
                    "--",
                ])
                .args(rels),
            "status",
        )?;
        Ok(out
            .split(|&b| b == 0)
            .filter(|entry| entry.len() > 3)
            .map(|entry| String::from_utf8_lossy(&entry[3..]).into_owned())
            .map(|path| {
                path.strip_prefix(prefix.as_str())
                    .map_or(path.clone(), str::to_string)
            })
            .collect())
    }

    /// Where `root` sits in the git work tree, as git prints paths (`""`, or `deploy/`).
    pub fn prefix(&self) -> Result<&String, Error> {
        if let Some(prefix) = self.prefix.get() {
            return Ok(prefix);
        }
        let out = run_git(self.git().args(["rev-parse", "--show-prefix"]), "rev-parse")?;
        let stdout = String::from_utf8_lossy(&out);
        let prefix = stdout.strip_suffix('\n').unwrap_or(&stdout).to_string();
        Ok(self.prefix.get_or_init(|| prefix))
    }

    /// The branch HEAD is on and its upstream. Refused: a git operation under way (see
    /// [`Repo::refuse_git_operation`]), and a detached HEAD, since Argo CD deploys a branch and
    /// a commit made there belongs to none.
    pub fn branch(&self) -> Result<Branch, Error> {
        self.refuse_git_operation()?;
        let out = self
            .git()
            .args(["symbolic-ref", "--quiet", "--short", "HEAD"])
            .output()
            .map_err(|e| bad_input(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(bad_input(format!(
                "HEAD is detached in {}: canary commits to the branch Argo CD deploys; check it \
                 out first (`git switch BRANCH`)",
                self.root.display()
            )));
        }
        let name = line(&out.stdout);
        let config = self.branch_config(&name);
        let config = |key: &str| -> Option<String> {
            let key = format!("branch.{name}.{key}");
            // As `git config --get`: the last value wins, and an empty one is none.
            config
                .iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, value)| value.clone())
                .filter(|value| !value.is_empty())
        };
        let upstream = match (config("remote"), config("merge")) {
            // `.` is the repository itself: a branch tracking a local branch reaches no remote.
            (Some(remote), Some(merge)) if remote != "." => {
                let short = merge.strip_prefix("refs/heads/").unwrap_or(&merge);
                Some(Upstream {
                    tracking: format!("{remote}/{short}"),
                    remote,
                    merge,
                })
            }
            _ => None,
        };
        Ok(Branch { name, upstream })
    }

    /// Every `branch.*` setting, in the order git reads them, in one process: a branch's
    /// remote and merge are two of them. Keys are as git prints them (the section and the
    /// variable in lower case, the branch name as it is).
    fn branch_config(&self, name: &str) -> Vec<(String, String)> {
        // Only this branch's keys are of use: a regex of its escaped name would do the same,
        // and git matches `^branch\.` as cheaply.
        let Ok(out) = self
            .git()
            .args(["config", "-z", "--get-regexp", r"^branch\."])
            .output()
        else {
            return Vec::new();
        };
        if !out.status.success() {
            return Vec::new();
        }
        let prefix = format!("branch.{name}.");
        out.stdout
            .split(|&b| b == 0)
            .filter_map(|entry| {
                let entry = String::from_utf8_lossy(entry);
                let (key, value) = entry.split_once('\n').unwrap_or((&entry, ""));
                key.starts_with(&prefix)
                    .then(|| (key.to_string(), value.trim().to_string()))
            })
            .collect()
    }

    /// Refuse while someone else's git operation holds the repository: a merge, rebase, `git
    /// am`, cherry-pick, revert or bisect in progress (canary's commit would land in the middle
    /// of it, and a rebase's `--abort` drops it), or a git process holding the index. Named,
    /// with how to finish or abort it.
    pub fn refuse_git_operation(&self) -> Result<(), Error> {
        let mut paths = self.git_paths()?.iter();
        for ((_, operation, finish), path) in OPERATIONS.iter().zip(&mut paths) {
            if path.exists() {
                return Err(Error::Refused {
                    reason: format!(
                        "a {operation} is in progress in {}, and a commit canary made now \
                         would land in the middle of it",
                        self.root.display()
                    ),
                    first: Some(format!("finish the {operation}, or abort it")),
                    run: Some((*finish).to_string()),
                });
            }
        }
        match paths.next() {
            Some(lock) if lock.exists() => Err(Error::GitBusy(format!(
                "another git process is using the index of {} ({} exists): run this \
                 again once it is done, or, if no git process is running, remove {}",
                self.root.display(),
                lock.display(),
                lock.display()
            ))),
            _ => Ok(()),
        }
    }

    /// The absolute paths of the markers of [`OPERATIONS`], then of the index lock; asked of
    /// git on first need when the repository was opened for reading.
    fn git_paths(&self) -> Result<&Vec<std::path::PathBuf>, Error> {
        if let Some(paths) = self.git_paths.get() {
            return Ok(paths);
        }
        let mut cmd = self.git();
        cmd.arg("rev-parse");
        ask_git_paths(&mut cmd);
        let out = cmd
            .output()
            .map_err(|e| bad_input(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(bad_input(format!(
                "git cannot read the repository {}: {}",
                self.root.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let paths = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(std::path::PathBuf::from)
            .collect();
        Ok(self.git_paths.get_or_init(|| paths))
    }

    /// The sha256 of each path's content at `rev` (`None` where `rev` has no such file), or
    /// `None` for every path when `rev` names no commit here.
    pub fn contents_at(&self, rev: &str, rels: &[&str]) -> Result<Vec<Option<String>>, Error> {
        let mut input = String::new();
        for rel in rels {
            // `./` makes the path relative to the repository's directory, not the work tree's
            // top, which the repository may sit below.
            input.push_str(&format!("{rev}:./{rel}\n"));
        }
        let out = run_git_with_input(
            self.git().args(["cat-file", "--batch"]),
            input.into_bytes(),
            "cat-file",
        )?;
        let mut rest = out.as_slice();
        let mut found = Vec::with_capacity(rels.len());
        for _ in rels {
            let end = memchr::memchr(b'\n', rest).context("git cat-file stopped short")?;
            let header = String::from_utf8_lossy(&rest[..end]).into_owned();
            rest = &rest[end + 1..];
            match header.split(' ').collect::<Vec<_>>()[..] {
                [_, "blob", size] => {
                    let size: usize = size
                        .parse()
                        .map_err(|e| Error::Failed(format!("git cat-file's size: {e}")))?;
                    let blob = rest.get(..size).context("git cat-file stopped short")?;
                    found.push(Some(sha256_bytes(blob)));
                    rest = &rest[(size + 1).min(rest.len())..];
                }
                [_, "missing"] | [_, "ambiguous"] => found.push(None),
                // A directory or a submodule where canary expects a file: not its content.
                [_, _, size] => {
                    let size: usize = size
                        .parse()
                        .map_err(|e| Error::Failed(format!("git cat-file's size: {e}")))?;
                    found.push(None);
                    rest = &rest[(size + 1).min(rest.len())..];
                }
                _ => return Err(Error::Failed(format!("git cat-file answered {header:?}"))),
            }
        }
        Ok(found)
    }

    /// The git directory every worktree of the repository shares.
    pub fn common_dir(&self) -> Result<std::path::PathBuf, Error> {
        let out = self
            .git()
            .args(["rev-parse", "--path-format=absolute", "--git-common-dir"])
            .output()
            .context("running git rev-parse")?;
        // A repository opened for reading was not asked whether it is one (its `.git` may be
        // gone since the release began).
        if !out.status.success() {
            return Err(super::not_a_work_tree(&self.root));
        }
        Ok(line(&out.stdout).into())
    }

    /// The URL of the remote the branch's upstream is on; `None` without an upstream.
    pub fn upstream_url(&self) -> Result<Option<String>, Error> {
        let Some(upstream) = self.branch()?.upstream else {
            return Ok(None);
        };
        let out = run_git(
            self.git()
                .args(["remote", "get-url", "--end-of-options", &upstream.remote]),
            "remote get-url",
        )?;
        Ok(Some(line(&out)))
    }

    /// The full id of HEAD's commit.
    pub fn head(&self) -> Result<String, Error> {
        let out = run_git(
            self.git().args(["rev-parse", "--verify", "HEAD^{commit}"]),
            "rev-parse",
        )?;
        Ok(line(&out))
    }

    /// The commits a push of the branch would send: on HEAD and not on its upstream.
    pub fn unpushed_commits(&self, branch: &Branch) -> Result<Vec<String>, Error> {
        self.rev_list(&[&format!("{}@{{upstream}}..HEAD", branch.name)])
    }

    /// The ids `git rev-list ARGS` lists, newest first.
    fn rev_list(&self, args: &[&str]) -> Result<Vec<String>, Error> {
        let out = run_git(self.git().arg("rev-list").args(args), "rev-list")?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// The trailers of `commit` and what it changes.
    pub fn commit_facts(&self, commit: &str) -> Result<CommitFacts, Error> {
        let format = "%P%x1f%(trailers:key=Canary-Service,valueonly,separator=%x2c)\
                      %x1f%(trailers:key=Canary-Release,valueonly,separator=%x2c)\
                      %x1f%(trailers:key=Canary-Step,valueonly,separator=%x2c)";
        let out = run_git(
            self.git()
                .args(["log", "-1", "--no-show-signature"])
                .arg(format!("--format={format}"))
                .args([commit, "--"]),
            "log",
        )?;
        let text = String::from_utf8_lossy(&out);
        let fields: Vec<&str> = text.trim_end_matches('\n').split('\x1f').collect();
        let field = |i: usize| fields.get(i).map_or("", |f| f.trim()).to_string();
        let mut facts = CommitFacts {
            commit: commit.to_string(),
            service: field(1),
            release: field(2),
            step: field(3),
            changed: None,
        };
        if field(0).split(' ').filter(|p| !p.is_empty()).count() != 1 {
            return Ok(facts);
        }
        let out = run_git(
            self.git()
                .args([
                    "diff-tree",
                    "-r",
                    "--no-commit-id",
                    "--no-renames",
                    "--name-only",
                ])
                .args(["-z", commit]),
            "diff-tree",
        )?;
        let prefix = self.prefix()?.clone();
        let mut paths = Vec::new();
        for path in out.split(|&b| b == 0).filter(|p| !p.is_empty()) {
            let path = String::from_utf8_lossy(path);
            match path.strip_prefix(prefix.as_str()) {
                Some(rel) => paths.push(rel.to_string()),
                None => return Ok(facts),
            }
        }
        let rels: Vec<&str> = paths.iter().map(String::as_str).collect();
        let contents = self.contents_at(commit, &rels)?;
        facts.changed = Some(paths.into_iter().zip(contents).collect());
        Ok(facts)
    }

    /// The commits on HEAD whose `Canary-Release:` trailer is `release`, newest first.
    pub fn commits_naming(&self, release: &str) -> Result<Vec<String>, Error> {
        // A release id is hex and dashes: nothing in it is special to a regex.
        let out = run_git(
            self.git()
                .args(["log", "--format=%H", "--no-show-signature"])
                .arg(format!("--grep=^Canary-Release: {release}$"))
                .args(["HEAD", "--"]),
            "log",
        )?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Fetch the branch's upstream from its remote, so that `@{upstream}` is what the remote
    /// has now; nothing else changes here.
    pub fn fetch(&self, upstream: &Upstream) -> Result<(), Error> {
        let short = upstream
            .merge
            .strip_prefix("refs/heads/")
            .unwrap_or(&upstream.merge);
        let out = self
            .git()
            .args(["fetch", "--quiet", &upstream.remote])
            .arg(format!(
                "+{}:refs/remotes/{}",
                upstream.merge, upstream.tracking
            ))
            .stdin(Stdio::null())
            .output()
            .context("running git fetch")?;
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "git fetch of {short} from {} failed, so canary cannot tell whether its push \
                 would land; nothing was written: {}",
                upstream.remote,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// The commits `rev` has and HEAD lacks.
    pub fn missing_from_head(&self, rev: &str) -> Result<Vec<String>, Error> {
        self.rev_list(&[&format!("HEAD..{rev}"), "--"])
    }

    /// The release of `service` that the history (HEAD, and the branch's upstream where it has
    /// one) shows unfinished: the newest commit whose trailers say canary made it for
    /// `service`, unless that commit was the release's last edit. `None` also for commits made
    /// before releases had ids.
    pub fn unfinished_release(&self, service: &str) -> Result<Option<CanaryCommit>, Error> {
        let revs: &[&str] = match self.branch()?.upstream {
            Some(_) => &["HEAD", "@{upstream}"],
            None => &["HEAD"],
        };
        let format = "%H%x1f%an%x1f%(trailers:key=Canary-Release,valueonly,separator=%x2c)\
                      %x1f%(trailers:key=Canary-Step,valueonly,separator=%x2c)";
        let out = run_git(
            self.git()
                .args(["log", "-1", "--ignore-missing", "--no-show-signature"])
                .arg(format!("--format={format}"))
                // A service name is a DNS label: nothing in it is special to a regex.
                .arg(format!("--grep=^Canary-Service: {service}$"))
                .args(revs)
                .arg("--"),
            "log",
        )?;
        let text = String::from_utf8_lossy(&out);
        let fields: Vec<&str> = text.trim_end().split('\x1f').collect();
        let newest = match fields[..] {
            [commit, author, release, step] if !commit.is_empty() => CanaryCommit {
                commit: commit.to_string(),
                author: author.to_string(),
                release: release.trim().to_string(),
                step: step.trim().to_string(),
            },
            _ => return Ok(None),
        };
        Ok((!newest.is_last_edit() && !newest.release.is_empty()).then_some(newest))
    }

    /// The full id of the commit `rev` names; `None` when this clone has no such commit.
    pub fn commit_id(&self, rev: &str) -> Result<Option<String>, Error> {
        let out = self
            .git()
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"))
            .stderr(Stdio::null())
            .output()
            .context("running git rev-parse")?;
        Ok(out.status.success().then(|| line(&out.stdout)))
    }

    /// Whether `commit` is `rev` or one of its ancestors.
    pub fn is_ancestor(&self, commit: &str, rev: &str) -> Result<bool, Error> {
        let status = self
            .git()
            .args(["merge-base", "--is-ancestor", commit, rev])
            .stderr(Stdio::null())
            .status()
            .context("running git merge-base")?;
        Ok(status.success())
    }

    /// Commit exactly these contents on top of HEAD, on its branch, and nothing else; returns
    /// the new commit's full id. Fails, changing nothing, when HEAD moves meanwhile.
    pub fn commit_exact(&self, files: &[Content], message: &str) -> Result<String, Error> {
        let branch = self.branch()?;
        let head = self.head()?;
        let prefix = self.prefix()?.clone();
        let index = tempfile::Builder::new()
            .prefix("canary-index-")
            .tempfile()
            .context("creating a temporary index")?;
        // Every command below works on the temporary index, never on the person's.
        let indexed = || {
            let mut cmd = self.git();
            cmd.env("GIT_INDEX_FILE", index.path());
            cmd
        };
        run_git(indexed().args(["read-tree", &head]), "read-tree")?;
        let mut entries = String::new();
        for file in files {
            let top_path = format!("{prefix}{}", file.path);
            match file.text {
                Some(text) => {
                    let blob = self.write_blob(file.path, text)?;
                    let mode = if self.is_executable(file.path) {
                        "100755"
                    } else {
                        "100644"
                    };
                    entries.push_str(&format!("{mode} {blob}\t{top_path}\n"));
                }
                // Mode 0 removes the path from the index.
                None => entries.push_str(&format!(
                    "0 0000000000000000000000000000000000000000\t{top_path}\n"
                )),
            }
        }
        run_git_with_input(
            indexed().args(["update-index", "--index-info"]),
            entries.into_bytes(),
            "update-index",
        )?;
        // The team's hooks run as `git commit -m` runs them: pre-commit on the index being
        // committed, then prepare-commit-msg and commit-msg on the message, which they may
        // change (a sign-off, a ticket id). What is committed stays exactly canary's files.
        let tree = line(&run_git(indexed().arg("write-tree"), "write-tree")?);
        run_hook(indexed(), "pre-commit", &[])?;
        if line(&run_git(indexed().arg("write-tree"), "write-tree")?) != tree {
            return Err(Error::Failed(
                "the repository's pre-commit hook changed what the commit would hold, and canary \
                 commits exactly the files it wrote; nothing was committed"
                    .into(),
            ));
        }
        let mut message_file = tempfile::Builder::new()
            .prefix("canary-message-")
            .tempfile()
            .context("creating a temporary commit message")?;
        writeln!(message_file, "{message}").context("writing the commit message")?;
        let file = message_file.path().as_os_str();
        run_hook(indexed(), "prepare-commit-msg", &[file, "message".as_ref()])?;
        run_hook(indexed(), "commit-msg", &[file])?;
        let mut commit_tree = self.git();
        commit_tree
            .args(["commit-tree", &tree, "-p", &head, "-F"])
            .arg(message_file.path());
        // commit-tree does not read commit.gpgSign itself; a team that signs keeps signing.
        if self.config_bool("commit.gpgSign") {
            commit_tree.arg("-S");
        }
        let commit = line(&run_git(&mut commit_tree, "commit-tree")?);
        let reference = format!("refs/heads/{}", branch.name);
        let moved = self
            .git()
            .args([
                "update-ref",
                "-m",
                &format!("commit: {message}"),
                &reference,
                &commit,
                &head,
            ])
            .output()
            .context("running git update-ref")?;
        if !moved.status.success() {
            return Err(Error::Failed(format!(
                "{} moved while canary was committing (a commit landed meanwhile); nothing was \
                 committed: {}",
                branch.name,
                String::from_utf8_lossy(&moved.stderr).trim()
            )));
        }
        // The real index now follows the new HEAD for canary's files, and only for them.
        let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
        run_git(
            self.git().args(["reset", "--quiet", "--"]).args(&paths),
            "reset",
        )?;
        Ok(commit)
    }

    /// Store `text` as a blob, filtered as `git add` would filter the file at `rel`.
    fn write_blob(&self, rel: &str, text: &str) -> Result<String, Error> {
        let out = run_git_with_input(
            self.git()
                .args(["hash-object", "-w", "--stdin", "--path"])
                .arg(rel),
            text.as_bytes().to_vec(),
            "hash-object",
        )?;
        Ok(line(&out))
    }

    fn is_executable(&self, rel: &str) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(self.root.join(rel)).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
    }

    fn config_bool(&self, key: &str) -> bool {
        self.git()
            .args(["config", "--type=bool", "--get", key])
            .output()
            .is_ok_and(|out| out.status.success() && out.stdout.starts_with(b"true"))
    }

    /// Push HEAD to the branch's upstream. A rejected push changes nothing here.
    pub fn push(&self, upstream: &Upstream) -> Result<(), Error> {
        let out = self
            .git()
            .args(["push", "--quiet", &upstream.remote])
            .arg(format!("HEAD:{}", upstream.merge))
            .stdin(Stdio::null())
            .output()
            .context("running git push")?;
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "git push to {} was rejected, and the commit stays here unpushed: {}",
                upstream.tracking,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    pub(super) fn git(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.root);
        cmd
    }
}

/// What marks a git operation under way in the git directory, the operation, and how to
/// finish or abort it. `rebase-apply` is `git am`'s as well as an old rebase's; `applying`
/// inside it tells them apart, and comes first.
const OPERATIONS: [(&str, &str, &str); 7] = [
    (
        "rebase-apply/applying",
        "git am",
        "git am --continue, or git am --abort",
    ),
    (
        "rebase-merge",
        "rebase",
        "git rebase --continue, or git rebase --abort",
    ),
    (
        "rebase-apply",
        "rebase",
        "git rebase --continue, or git rebase --abort",
    ),
    (
        "MERGE_HEAD",
        "merge",
        "git merge --continue, or git merge --abort",
    ),
    (
        "CHERRY_PICK_HEAD",
        "cherry-pick",
        "git cherry-pick --continue, or git cherry-pick --abort",
    ),
    (
        "REVERT_HEAD",
        "revert",
        "git revert --continue, or git revert --abort",
    ),
    ("BISECT_LOG", "bisect", "git bisect reset"),
];

/// Ask `git rev-parse` for the absolute paths of the markers of [`OPERATIONS`], then of the
/// index lock, one a line.
pub(super) fn ask_git_paths(cmd: &mut Command) {
    cmd.arg("--path-format=absolute");
    for (marker, ..) in OPERATIONS {
        cmd.args(["--git-path", marker]);
    }
    cmd.args(["--git-path", "index.lock"]);
}

/// Run one of the repository's hooks, if it has it, as `git commit` would; a hook that fails
/// rejects the commit, in its own words.
fn run_hook(mut cmd: Command, hook: &str, args: &[&std::ffi::OsStr]) -> Result<(), Error> {
    cmd.args(["hook", "run", "--ignore-missing", hook, "--"]);
    cmd.args(args);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running the {hook} hook"))?;
    if !out.status.success() {
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return Err(Error::Failed(format!(
            "the repository's {hook} hook rejected the commit, and nothing was committed: {}",
            said.trim()
        )));
    }
    Ok(())
}

/// Run a git command; its standard output, or an error that says what git said.
pub(super) fn run_git(cmd: &mut Command, what: &str) -> Result<Vec<u8>, Error> {
    let out = cmd
        .output()
        .with_context(|| format!("running git {what}"))?;
    succeeded(out, what)
}

/// The same, with `input` on its standard input.
fn run_git_with_input(cmd: &mut Command, input: Vec<u8>, what: &str) -> Result<Vec<u8>, Error> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running git {what}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    // A thread feeds git while its answers are read, so that neither side's pipe fills.
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child
        .wait_with_output()
        .with_context(|| format!("running git {what}"))?;
    feeder
        .join()
        .expect("writing to a pipe does not panic")
        .with_context(|| format!("writing to git {what}"))?;
    succeeded(out, what)
}

fn succeeded(out: std::process::Output, what: &str) -> Result<Vec<u8>, Error> {
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "git {what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// A command's one line of output (an id, a name), without its line break.
fn line(out: &[u8]) -> String {
    String::from_utf8_lossy(out).trim().to_string()
}
