//! What canary asks of git and does with it: which files are uncommitted, the branch and its
//! upstream, what a commit holds, a commit of exactly the bytes canary wrote, and a push.
//!
//! What is only read (refs, configuration, objects, history) is read in-process with gix, from
//! the repository opened once per [`Repo`]: a dry run or a status spawns no process. The `git`
//! command still does what runs the team's hooks or credentials, or changes the repository
//! (a commit, a fetch, a push), and `git status`, whose index refresh and filters are git's.
//!
//! A commit is built from a temporary index holding HEAD's tree and canary's blobs, and HEAD
//! moves to it by `git update-ref NEW OLD`: whatever else is staged or changed in the work tree
//! stays out of it, and a commit that lands meanwhile (a colleague's, pulled in another
//! terminal) makes canary's fail rather than be reverted by it. The team's pre-commit,
//! prepare-commit-msg and commit-msg hooks run on that index and message, as `git commit`
//! runs them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gix::bstr::{BStr, ByteSlice};
use gix::revision::walk::Sorting;

use crate::error::Context;

use super::{Repo, sha256_bytes};
use crate::error::{Error, bad_input};

/// The repository as gix opened it, and what canary derives from it once.
#[derive(Debug, Clone)]
pub(super) struct Opened {
    repo: gix::Repository,
    /// Where the repository's directory sits in the work tree, as git prints paths (`""` at
    /// its top, else `deploy/`).
    prefix: String,
    /// The markers of [`OPERATIONS`], then the index lock, in the git directory of this work
    /// tree (a linked worktree has its own).
    git_paths: Vec<PathBuf>,
}

/// What the decoded-object cache of one command's repository may hold.
const OBJECT_CACHE_BYTES: usize = 4 * 1024 * 1024;

impl Opened {
    /// Open the repository whose work tree holds `root` (absolute, with symbolic links
    /// resolved), as git finds it from there: upwards, stopping at `GIT_CEILING_DIRECTORIES`,
    /// with the system, global and repository configuration git would read. `Err(None)`: `root`
    /// is in no work tree.
    ///
    /// A repository owned by someone else is refused unless `safe.directory` names it, as git
    /// refuses it: its configuration could run programs of theirs (hooks, filters) as you.
    pub(super) fn at(root: &Path) -> Result<Opened, Option<Error>> {
        let upwards = || gix::discover::upwards::Options::default().apply_environment();
        let repo =
            gix::discover_opts(root, upwards(), gix::open::Options::default()).map_err(|_| None)?;
        let mut repo = match repo.git_dir_trust() {
            gix::sec::Trust::Full => repo,
            gix::sec::Trust::Reduced if safe_by_override(&repo, root) => {
                let trusted =
                    gix::open::Options::default().with_enforced_trust(gix::sec::Trust::Full);
                gix::discover_opts(root, upwards(), trusted).map_err(|_| None)?
            }
            gix::sec::Trust::Reduced => return Err(Some(not_safe(root))),
        };
        // A step's checks walk the same recent history several times (unpublished files, the
        // moved-on check, the unfinished release): decoded once, each commit is read from
        // memory after. Bounded, and gone with the command's repository.
        repo.object_cache_size_if_unset(OBJECT_CACHE_BYTES);
        let workdir = repo.workdir().ok_or(None)?;
        let inside = root
            .strip_prefix(workdir)
            .ok()
            .map(Path::to_path_buf)
            .or_else(|| {
                let workdir = workdir.canonicalize().ok()?;
                Some(root.strip_prefix(workdir).ok()?.to_path_buf())
            })
            .ok_or(None)?;
        // Inside the git directory is not in the work tree, as `git rev-parse` says.
        if root.starts_with(repo.git_dir()) || inside.starts_with(".git") {
            return Err(None);
        }
        let mut prefix = String::new();
        for part in inside.components() {
            prefix.push_str(&part.as_os_str().to_string_lossy());
            prefix.push('/');
        }
        let git_dir = repo.git_dir();
        let git_paths = OPERATIONS
            .iter()
            .map(|(marker, ..)| git_dir.join(marker))
            .chain([git_dir.join("index.lock")])
            .collect();
        Ok(Opened {
            repo,
            prefix,
            git_paths,
        })
    }
}

/// Whether `safe.directory` given on the command line's stand-ins (`GIT_CONFIG_COUNT`,
/// `GIT_CONFIG_PARAMETERS`) names the repository: git reads it there as well as in the system
/// and global files, which gix has already consulted when it opened the repository.
fn safe_by_override(repo: &gix::Repository, root: &Path) -> bool {
    let is_override = |meta: &gix::config::file::Metadata| {
        meta.source.kind() == gix::config::source::Kind::Override
    };
    let config = repo.config_snapshot();
    let Some(values) = config
        .plumbing()
        .strings_filter("safe.directory", is_override)
    else {
        return false;
    };
    let workdir = repo.workdir().unwrap_or(root);
    let mut safe = false;
    // As git: the values are read in order, and an empty one resets the list.
    for value in values {
        let value = value.to_str_lossy();
        if value.is_empty() {
            safe = false;
        } else if value == "*" {
            safe = true;
        } else {
            let named = value.strip_suffix("/*");
            let dir = Path::new(named.unwrap_or(&value));
            safe |= match named {
                Some(_) => workdir.starts_with(dir) || repo.git_dir().starts_with(dir),
                None => workdir == dir || repo.git_dir() == dir,
            };
        }
    }
    safe
}

fn not_safe(root: &Path) -> Error {
    let shown = root.display();
    bad_input(format!(
        "repository {shown} is owned by someone else, and git trusts it only once \
         `safe.directory` names it (its configuration could run their programs as you): \
         git config --global --add safe.directory {shown}"
    ))
}

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
        Ok(&self.opened()?.prefix)
    }

    /// The repository as gix opened it; one opened for reading is opened now, once.
    fn opened(&self) -> Result<&Opened, Error> {
        if let Some(opened) = self.git.get() {
            return Ok(opened);
        }
        // Its `.git` may be gone since the release began: it was not asked when it was opened.
        let opened = Opened::at(&self.root)
            .map_err(|e| e.unwrap_or_else(|| super::not_a_work_tree(&self.root)))?;
        Ok(self.git.get_or_init(|| opened))
    }

    fn gix(&self) -> Result<&gix::Repository, Error> {
        Ok(&self.opened()?.repo)
    }

    /// The error of a read of the repository that failed (a corrupt object, an unreadable ref).
    fn unreadable(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Failed(format!(
            "reading {what} in the repository {}: {e}",
            self.root.display()
        ))
    }

    /// The commit `rev` names (`HEAD`, `main@{upstream}`, an id or a prefix of one); `None` when
    /// it names none here.
    fn commit_of(&self, rev: &str) -> Result<Option<gix::ObjectId>, Error> {
        let repo = self.gix()?;
        if rev == "HEAD" {
            // Through HEAD and its branch, each read once: the rev-spec parser reads them
            // several times over, and every check of a step asks for HEAD.
            return Ok(repo.head_commit().ok().map(|commit| commit.id));
        }
        let spec = format!("{rev}^{{commit}}");
        Ok(repo
            .rev_parse_single(spec.as_str())
            .ok()
            .map(gix::Id::detach))
    }

    /// The same, refusing a `rev` that names no commit.
    fn commit_named(&self, rev: &str) -> Result<gix::ObjectId, Error> {
        self.commit_of(rev)?.ok_or_else(|| {
            Error::Failed(format!(
                "{rev} names no commit in the repository {}",
                self.root.display()
            ))
        })
    }

    /// The branch HEAD is on and its upstream. Refused: a git operation under way (see
    /// [`Repo::refuse_git_operation`]), and a detached HEAD, since Argo CD deploys a branch and
    /// a commit made there belongs to none.
    pub fn branch(&self) -> Result<Branch, Error> {
        self.refuse_git_operation()?;
        let repo = self.gix()?;
        let head = repo.head_name().map_err(|e| self.unreadable("HEAD", e))?;
        let Some(name) = head
            .as_ref()
            .and_then(|head| head.as_bstr().strip_prefix(b"refs/heads/"))
            .map(|name| name.to_str_lossy().into_owned())
        else {
            return Err(bad_input(format!(
                "HEAD is detached in {}: canary commits to the branch Argo CD deploys; check it \
                 out first (`git switch BRANCH`)",
                self.root.display()
            )));
        };
        let settings = repo.config_snapshot();
        let config = |key: &str| -> Option<String> {
            // As `git config --get`: the last value wins, and an empty one is none.
            settings
                .plumbing()
                .string_by("branch", Some(name.as_bytes().as_bstr()), key)
                .map(|value| value.to_str_lossy().trim().to_string())
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

    /// The absolute paths of the markers of [`OPERATIONS`], then of the index lock.
    fn git_paths(&self) -> Result<&Vec<PathBuf>, Error> {
        Ok(&self.opened()?.git_paths)
    }

    /// The sha256 of each path's content at `rev` (`None` where `rev` has no such file), or
    /// `None` for every path when `rev` names no commit here.
    pub fn contents_at(&self, rev: &str, rels: &[&str]) -> Result<Vec<Option<String>>, Error> {
        self.blobs_at(rev, rels, sha256_bytes)
    }

    /// The text of a file at `rev`, as git holds it (`None`: `rev` has no such file, or names
    /// no commit); an error when it is not UTF-8.
    pub fn text_at(&self, rev: &str, rel: &str) -> Result<Option<String>, Error> {
        let blob = self.blobs_at(rev, &[rel], <[u8]>::to_vec)?.pop().flatten();
        blob.map(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| crate::error::bad_input(format!("{rel} at {rev} is not UTF-8 text")))
        })
        .transpose()
    }

    /// `read` of each path's blob at `rev` (`None` where there is none).
    fn blobs_at<T>(
        &self,
        rev: &str,
        rels: &[&str],
        read: impl Fn(&[u8]) -> T,
    ) -> Result<Vec<Option<T>>, Error> {
        let Some(commit) = self.commit_of(rev)? else {
            return Ok(rels.iter().map(|_| None).collect());
        };
        let repo = self.gix()?;
        let prefix = self.prefix()?;
        let tree = repo
            .find_commit(commit)
            .and_then(|commit| commit.tree())
            .map_err(|e| self.unreadable(rev, e))?;
        let mut found = Vec::with_capacity(rels.len());
        for rel in rels {
            // Paths are relative to the repository's directory, which may sit below the work
            // tree's top.
            let entry = tree
                .lookup_entry_by_path(format!("{prefix}{rel}"))
                .map_err(|e| self.unreadable(rel, e))?;
            // A directory or a submodule where canary expects a file is not its content; a
            // symbolic link's target is, as git stores it.
            let blob = entry
                .and_then(|entry| repo.find_object(entry.object_id()).ok())
                .filter(|object| object.kind == gix::object::Kind::Blob);
            found.push(blob.map(|blob| read(&blob.data)));
        }
        Ok(found)
    }

    /// The git directory every worktree of the repository shares.
    pub fn common_dir(&self) -> Result<PathBuf, Error> {
        Ok(self.gix()?.common_dir().to_path_buf())
    }

    /// The URL of the remote the branch's upstream is on, rewritten by `url.*.insteadOf` as
    /// git rewrites it; `None` without an upstream.
    pub fn upstream_url(&self) -> Result<Option<String>, Error> {
        let Some(upstream) = self.branch()?.upstream else {
            return Ok(None);
        };
        let remote = self
            .gix()?
            .find_remote(upstream.remote.as_str())
            .map_err(|e| self.unreadable(&format!("remote {}", upstream.remote), e))?;
        let url = remote
            .url(gix::remote::Direction::Fetch)
            .ok_or_else(|| Error::Failed(format!("remote {} has no URL", upstream.remote)))?;
        Ok(Some(url.to_bstring().to_string()))
    }

    /// The full id of HEAD's commit.
    pub fn head(&self) -> Result<String, Error> {
        Ok(self.commit_named("HEAD")?.to_string())
    }

    /// The commits a push of the branch would send: on HEAD and not on its upstream.
    pub fn unpushed_commits(&self, branch: &Branch) -> Result<Vec<String>, Error> {
        self.rev_list(&format!("{}@{{upstream}}", branch.name), "HEAD")
    }

    /// The commits `tip` has and `hidden` lacks, newest first, as `git rev-list HIDDEN..TIP`
    /// lists them.
    fn rev_list(&self, hidden: &str, tip: &str) -> Result<Vec<String>, Error> {
        let hidden = self.commit_named(hidden)?;
        let walk = self
            .gix()?
            .rev_walk([self.commit_named(tip)?])
            .with_hidden([hidden])
            .sorting(NEWEST_FIRST)
            .all()
            .map_err(|e| self.unreadable("the history", e))?;
        walk.map(|info| {
            info.map(|info| info.id.to_string())
                .map_err(|e| self.unreadable("the history", e))
        })
        .collect()
    }

    /// The trailers of `commit` and what it changes.
    pub fn commit_facts(&self, commit: &str) -> Result<CommitFacts, Error> {
        let repo = self.gix()?;
        let unreadable = |e: gix::Error| self.unreadable(commit, e);
        let found = repo
            .find_commit(self.commit_named(commit)?)
            .map_err(unreadable)?;
        let message = found.message_raw().map_err(unreadable)?;
        let mut facts = CommitFacts {
            commit: commit.to_string(),
            service: trailer(message, "Canary-Service"),
            release: trailer(message, "Canary-Release"),
            step: trailer(message, "Canary-Step"),
            changed: None,
        };
        let parents: Vec<_> = found.parent_ids().collect();
        let [parent] = parents[..] else {
            return Ok(facts);
        };
        let before = parent
            .object()
            .and_then(|parent| parent.peel_to_tree())
            .map_err(unreadable)?;
        let after = found.tree().map_err(unreadable)?;
        let prefix = self.prefix()?;
        let mut paths = Vec::new();
        let changed = changed_paths(repo, &before, &after).map_err(|e| self.unreadable(commit, e));
        for path in changed? {
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
        let line = format!("Canary-Release: {release}");
        let mut naming = Vec::new();
        self.walk(&[self.commit_named("HEAD")?], |commit, message| {
            if has_line(message, &line) {
                naming.push(commit.id.to_string());
            }
            true
        })?;
        Ok(naming)
    }

    /// Show `visit` each commit `tips` reach with its message, newest first as `git log` lists
    /// them, while it says to go on.
    fn walk(
        &self,
        tips: &[gix::ObjectId],
        mut visit: impl FnMut(&gix::Commit, &BStr) -> bool,
    ) -> Result<(), Error> {
        let unreadable = |e| self.unreadable("the history", e);
        let walk = self
            .gix()?
            .rev_walk(tips.iter().copied())
            .sorting(NEWEST_FIRST)
            .all()
            .map_err(unreadable)?;
        for info in walk {
            let commit = info.and_then(|info| info.object()).map_err(unreadable)?;
            let message = commit.message_raw().map_err(unreadable)?;
            if !visit(&commit, message) {
                break;
            }
        }
        Ok(())
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
        self.rev_list("HEAD", rev)
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
        // As `git log --ignore-missing`: an unborn HEAD or an upstream not fetched yet adds
        // nothing.
        let mut tips = Vec::new();
        for rev in revs {
            tips.extend(self.commit_of(rev)?);
        }
        let line = format!("Canary-Service: {service}");
        let mut newest = None;
        self.walk(&tips, |commit, message| {
            if !has_line(message, &line) {
                return true;
            }
            newest = Some(CanaryCommit {
                commit: commit.id.to_string(),
                author: commit
                    .author()
                    .map(|author| author.name.to_str_lossy().into_owned())
                    .unwrap_or_default(),
                release: trailer(message, "Canary-Release"),
                step: trailer(message, "Canary-Step"),
            });
            false
        })?;
        Ok(newest.filter(|newest| !newest.is_last_edit() && !newest.release.is_empty()))
    }

    /// The full id of the commit `rev` names; `None` when this clone has no such commit.
    pub fn commit_id(&self, rev: &str) -> Result<Option<String>, Error> {
        Ok(self.commit_of(rev)?.map(|id| id.to_string()))
    }

    /// Whether `commit` is `rev` or one of its ancestors.
    pub fn is_ancestor(&self, commit: &str, rev: &str) -> Result<bool, Error> {
        let (Some(commit), Some(rev)) = (self.commit_of(commit)?, self.commit_of(rev)?) else {
            return Ok(false);
        };
        // As `git merge-base --is-ancestor`, whose failure reads as "no".
        Ok(self.gix()?.is_ancestor(commit, rev).unwrap_or(false))
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
        self.gix()
            .is_ok_and(|repo| repo.config_snapshot().boolean(key) == Some(true))
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

/// `git log`'s order: newest commit first.
const NEWEST_FIRST: Sorting =
    Sorting::ByCommitTime(gix::revision::walk::CommitTimeOrder::NewestFirst);

/// Whether one line of `message` is `line`, as `git log --grep=^LINE$` finds it.
fn has_line(message: &BStr, line: &str) -> bool {
    message.lines().any(|l| l == line.as_bytes())
}

/// The values of the message's trailers named `key`, found as git finds trailers and matched
/// as git matches keys (in any case), joined by `,`: what
/// `%(trailers:key=KEY,valueonly,separator=%x2c)` prints. Empty without one.
fn trailer(message: &BStr, key: &str) -> String {
    let message = gix::objs::commit::MessageRef::from_bytes(message);
    let Some(body) = message.body() else {
        return String::new();
    };
    body.trailers()
        .filter(|trailer| trailer.token.eq_ignore_ascii_case(key.as_bytes()))
        .map(|trailer| trailer.value.to_str_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(",")
        .trim()
        .to_string()
}

/// The paths of the files (blobs, links, submodules) that differ between two trees, as `git
/// diff-tree -r --no-renames --name-only` lists them.
fn changed_paths(
    repo: &gix::Repository,
    before: &gix::Tree,
    after: &gix::Tree,
) -> Result<Vec<String>, gix::diff::tree::Error> {
    use gix::diff::tree::recorder::Change;
    let mut recorder = gix::diff::tree::Recorder::default();
    gix::diff::tree(
        gix::objs::TreeRefIter::from_bytes(&before.data, repo.object_hash()),
        gix::objs::TreeRefIter::from_bytes(&after.data, repo.object_hash()),
        gix::diff::tree::State::default(),
        &repo.objects,
        &mut recorder,
    )?;
    let mut paths: Vec<String> = recorder
        .records
        .into_iter()
        .filter_map(|change| match change {
            Change::Addition {
                entry_mode, path, ..
            }
            | Change::Deletion {
                entry_mode, path, ..
            } => (!entry_mode.is_tree()).then_some(path),
            Change::Modification {
                previous_entry_mode,
                entry_mode,
                path,
                ..
            } => (!entry_mode.is_tree() || !previous_entry_mode.is_tree()).then_some(path),
        })
        .map(|path| path.to_str_lossy().into_owned())
        .collect();
    // The diff goes breadth first; git lists depth first, which is the paths' byte order.
    paths.sort();
    paths.dedup();
    Ok(paths)
}
