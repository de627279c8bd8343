//! The user's GitOps repository: paths that cannot escape it, atomic compare-and-swap writes;
//! what canary asks of git and does with it is in [`git`].

mod git;

pub use git::{Branch, CanaryCommit, CommitFacts, Content, Upstream, short_id};

use std::cell::OnceCell;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use crate::error::Context;
use sha2::{Digest, Sha256};

use crate::error::{Error, bad_input};

/// Files larger than this are not deploy configuration; refusing them keeps memory bounded.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One command's repository, opened by [`Repo::open`] where a part of the command first needs
/// it and handed to every part after: opening it reads git's configuration and references,
/// which a step would otherwise pay for in each of its checks.
#[derive(Debug, Default)]
pub struct OpenOnce(OnceCell<Rc<Repo>>);

impl OpenOnce {
    /// The repository another part of the command opened first (the release's lock, which
    /// lives in its git directory).
    pub fn opened(repo: Repo) -> OpenOnce {
        OpenOnce(OnceCell::from(Rc::new(repo)))
    }

    /// The repository at `dir`; a command works in one repository, its release's.
    pub fn open(&self, dir: &Path) -> Result<Rc<Repo>, Error> {
        if let Some(repo) = self.0.get() {
            return Ok(Rc::clone(repo));
        }
        let repo = Rc::new(Repo::open(dir)?);
        Ok(Rc::clone(self.0.get_or_init(|| repo)))
    }
}

#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    /// The git repository `root` is in, read in-process: opened with the work tree by
    /// [`Repo::open`], on first need by [`Repo::for_reading`] (whose reads need no git).
    git: OnceCell<git::Opened>,
}

impl Repo {
    /// Open the work tree at `dir`, which must hold `gap/gap.yaml`.
    pub fn open(dir: &Path) -> Result<Repo, Error> {
        let shown = dir.display();
        let meta = std::fs::metadata(dir)
            .map_err(|e| bad_input(format!("repository {shown}: {}", io_reason(&e))))?;
        if !meta.is_dir() {
            return Err(bad_input(format!("repository {shown} is not a directory")));
        }
        let root = dir
            .canonicalize()
            .map_err(|e| bad_input(format!("repository {shown}: {e}")))?;
        let opened =
            git::Opened::at(&root).map_err(|e| e.unwrap_or_else(|| not_a_work_tree(dir)))?;
        let repo = Repo {
            root,
            git: OnceCell::from(opened),
        };
        if !repo.holds_gap_yaml()? {
            return Err(bad_input(format!("repository {shown} has no gap/gap.yaml")));
        }
        Ok(repo)
    }

    /// The repository of a release, to read its files: `dir` is the absolute path that
    /// [`Repo::open`] checked when the release started. It must still hold `gap/gap.yaml`, but
    /// no git runs (read commands cost a few file reads per release, not a process each);
    /// paths are still refused, when read, if they would leave the repository.
    pub fn for_reading(dir: &Path) -> Result<Repo, Error> {
        let repo = Repo {
            root: dir.to_path_buf(),
            git: OnceCell::new(),
        };
        repo.check_holds_gap_yaml()?;
        Ok(repo)
    }

    fn check_holds_gap_yaml(&self) -> Result<(), Error> {
        let shown = self.root.display();
        let meta = std::fs::metadata(&self.root)
            .map_err(|e| bad_input(format!("--repo {shown}: {}", io_reason(&e))))?;
        if !meta.is_dir() {
            return Err(bad_input(format!("--repo {shown} is not a directory")));
        }
        if !self.holds_gap_yaml()? {
            return Err(bad_input(format!("--repo {shown} has no gap/gap.yaml")));
        }
        Ok(())
    }

    /// Whether `gap/gap.yaml` is a file here (a link there is refused).
    fn holds_gap_yaml(&self) -> Result<bool, Error> {
        let (_, gap) = self.locate("gap/gap.yaml")?;
        Ok(gap.is_some_and(|gap| gap.is_file()))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of a repo-relative one, refusing anything that would leave the repo:
    /// absolute paths, `..`, and symbolic links (in the path or as the file itself).
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, Error> {
        Ok(self.locate(rel)?.0)
    }

    /// [`Repo::resolve`], with what the walk learned of the path itself (`None`: it, or a
    /// directory on the way, does not exist), so that a read asks the system once more only
    /// to open it.
    fn locate(&self, rel: &str) -> Result<(PathBuf, Option<std::fs::Metadata>), Error> {
        let outside = || bad_input(format!("path {rel:?} is outside the repository"));
        let rel_path = Path::new(rel);
        if rel.is_empty()
            || !rel_path
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(outside());
        }
        let mut at = self.root.clone();
        let mut last = None;
        for part in rel_path.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(symbolic_link(
                        &at.strip_prefix(&self.root).unwrap_or(&at).display(),
                    ));
                }
                Ok(meta) => last = Some(meta),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    last = None;
                    break;
                }
                Err(e) => return Err(bad_input(format!("{rel}: {}", io_reason(&e)))),
            }
        }
        Ok((self.root.join(rel_path), last))
    }

    /// The file's text, or `None` when it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<String>, Error> {
        let (path, meta) = self.locate(rel)?;
        let Some(meta) = meta else {
            return Ok(None);
        };
        if !meta.is_file() {
            return Err(bad_input(format!("{rel} is not a regular file")));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(bad_input(format!(
                "{rel} is {} bytes, more than the {MAX_FILE_BYTES} canary reads",
                meta.len()
            )));
        }
        let unreadable = |e: std::io::Error| bad_input(format!("{rel}: {e}"));
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            // Deleted since it was looked at.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unreadable(e)),
        };
        // Sized as it was looked at, without asking again; bounded, should it have grown.
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        (&file)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(bad_input(format!(
                "{rel} grew past the {MAX_FILE_BYTES} bytes canary reads while it was read"
            )));
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| bad_input(format!("{rel} is not UTF-8 text")))
    }

    /// Compare and swap: replace the file (or with `None`, delete it) only if it still holds
    /// `expected` (`None`: it does not exist), the content a plan was made from. A file that
    /// changed since (an editor's save, a pull) is left as it is and named in the error.
    ///
    /// The comparison and the rename are two system calls, so a write landing between them is
    /// not caught; what a person or a `git pull` changes while canary waits at a prompt is.
    pub fn replace(
        &self,
        rel: &str,
        expected: Option<&str>,
        content: Option<&str>,
    ) -> Result<(), Error> {
        self.unchanged(rel, expected)?;
        self.write(rel, content)
    }

    /// Refuse, naming the file, when it no longer holds `expected`.
    pub fn unchanged(&self, rel: &str, expected: Option<&str>) -> Result<(), Error> {
        if self.read(rel)?.as_deref() != expected {
            return Err(Error::Stale {
                path: rel.to_string(),
            });
        }
        Ok(())
    }

    /// Replace (or with `None`, delete) a file atomically: a temporary file in the same
    /// directory, flushed, then renamed over the target, and the directory flushed. A write
    /// that fails names the file, never its temporary file, which is gone with the error.
    fn write(&self, rel: &str, content: Option<&str>) -> Result<(), Error> {
        let path = self.resolve(rel)?;
        let dir = path.parent().context("a file has a directory")?;
        match content {
            Some(text) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {rel}'s directory"))?;
                let replace = || -> std::io::Result<()> {
                    let mut tmp = tempfile::Builder::new()
                        .prefix(".canary-")
                        .suffix(".tmp")
                        .tempfile_in(dir)?;
                    if crate::failpoint::disk_full("disk-full-writing-files") {
                        return Err(std::io::Error::from_raw_os_error(NO_SPACE));
                    }
                    tmp.write_all(text.as_bytes())?;
                    let permissions = match std::fs::metadata(&path) {
                        Ok(meta) => meta.permissions(),
                        Err(_) => default_permissions(),
                    };
                    tmp.as_file().set_permissions(permissions)?;
                    tmp.as_file().sync_all()?;
                    tmp.persist(&path).map_err(|e| e.error)?;
                    Ok(())
                };
                replace().map_err(|e| Error::Failed(format!("writing {rel}: {}", io_cause(&e))))?;
            }
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e).with_context(|| format!("deleting {rel}")),
            },
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("flushing {rel}'s directory"))?;
        Ok(())
    }
}

/// The refusal of a symbolic link where canary reads or writes a file: a link could lead out
/// of the repository, or make two paths one file.
pub fn symbolic_link(rel: &dyn std::fmt::Display) -> Error {
    bad_input(format!(
        "{rel} is a symbolic link; canary writes only regular files inside the repository"
    ))
}

fn not_a_work_tree(dir: &Path) -> Error {
    bad_input(format!(
        "repository {} is not a git work tree; canary edits files that git tracks",
        dir.display()
    ))
}

pub fn sha256(text: &str) -> String {
    sha256_bytes(text.as_bytes())
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn default_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o644)
}

/// ENOSPC on Linux and the BSDs alike.
const NO_SPACE: i32 = 28;

/// What went wrong, without the path that some errors carry (tempfile names its temporary
/// file): the system's own words for an OS error.
fn io_cause(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.kind().to_string(),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("gap")).unwrap();
        std::fs::write(dir.path().join("gap/gap.yaml"), "name: x\n").unwrap();
        let ok = Command::new("git")
            .args(["init", "-q"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success());
        let repo = Repo::open(dir.path()).unwrap();
        (dir, repo)
    }

    #[test]
    fn paths_that_leave_the_repository_are_refused() {
        let (dir, repo) = repo();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("gap/out")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("gap/pw.yaml")).unwrap();
        for bad in [
            "../x",
            "/etc/passwd",
            "gap/../../x",
            "",
            "gap/out/x.yaml",
            "gap/pw.yaml",
        ] {
            assert!(repo.resolve(bad).is_err(), "{bad:?} accepted");
            assert!(repo.write(bad, Some("x")).is_err(), "{bad:?} written");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(repo.resolve("gap/new/file.yaml").is_ok());
    }

    #[test]
    fn writes_are_atomic_keep_permissions_and_leave_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, repo) = repo();
        let gap = dir.path().join("gap/gap.yaml");
        std::fs::set_permissions(&gap, std::fs::Permissions::from_mode(0o640)).unwrap();
        repo.write("gap/gap.yaml", Some("name: y\n")).unwrap();
        repo.write("gap/staging/new.yaml", Some("a: 1\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&gap).unwrap(), "name: y\n");
        assert_eq!(
            std::fs::metadata(&gap).unwrap().permissions().mode() & 0o777,
            0o640
        );
        repo.write("gap/staging/new.yaml", None).unwrap();
        repo.write("gap/staging/new.yaml", None).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path().join("gap/staging"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn reading_needs_no_git_and_still_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Repo::for_reading(dir.path()).is_err(), "no gap/gap.yaml");
        std::fs::create_dir_all(dir.path().join("gap")).unwrap();
        std::fs::write(dir.path().join("gap/gap.yaml"), "name: x\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("gap/pw.yaml")).unwrap();
        let repo = Repo::for_reading(dir.path()).unwrap();
        assert_eq!(repo.read("gap/gap.yaml").unwrap().unwrap(), "name: x\n");
        assert_eq!(repo.read("gap/missing.yaml").unwrap(), None);
        assert!(repo.read("gap/pw.yaml").is_err());
        assert!(repo.read("../x").is_err());
    }

    #[test]
    fn a_repository_opened_for_reading_asks_git_where_it_sits_when_needed() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("deploy");
        std::fs::create_dir_all(dir.join("gap")).unwrap();
        std::fs::write(dir.join("gap/gap.yaml"), "name: x\n").unwrap();
        let ok = Command::new("git")
            .args(["init", "-q"])
            .arg(top.path())
            .status()
            .unwrap();
        assert!(ok.success());
        let repo = Repo::for_reading(&dir.canonicalize().unwrap()).unwrap();
        assert_eq!(
            repo.uncommitted(&["gap/gap.yaml"]).unwrap(),
            ["gap/gap.yaml"]
        );
    }

    #[test]
    fn a_directory_without_git_or_gap_yaml_is_not_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        let err = Repo::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a git work tree"), "{err}");
        let err = Repo::open(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
