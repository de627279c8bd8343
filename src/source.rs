//! Where canary reads a repository's files: the work tree itself, or the work tree as steps
//! would leave it ([`Overlay`]). A step is planned and checked on a [`Source`], so that it can
//! be planned on a state nothing has written yet: the state the step before it would leave.

use crate::error::{Error, bad_input};
use crate::repo::{Repo, symbolic_link};
use crate::yaml::{Document, YamlError};

/// One file's content before and after (`None`: the file does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// `after` as the edit that made it read it back, handed on to the check of the step so
    /// that a file is read once per edit, not once more per reader.
    pub document: Option<Document>,
}

pub trait Source {
    /// The file's text, or `None` when it does not exist.
    fn read(&self, path: &str) -> Result<Option<String>, Error>;

    /// The file read as YAML, or `None` when it does not exist.
    fn document(&self, path: &str) -> Result<Option<Result<Document, YamlError>>, Error> {
        Ok(self.read(path)?.map(Document::parse))
    }

    /// The YAML files directly in `dir` (repo-relative paths), sorted; none when `dir` is not
    /// there.
    fn yaml_files(&self, dir: &str) -> Result<Vec<String>, Error>;

    /// Every YAML file under `gap/`, at any depth, sorted: where a patch of the service may be.
    fn gap_files(&self) -> Result<Vec<String>, Error>;
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

impl Source for Repo {
    fn read(&self, path: &str) -> Result<Option<String>, Error> {
        Repo::read(self, path)
    }

    fn yaml_files(&self, dir: &str) -> Result<Vec<String>, Error> {
        list_yaml(self, dir, false)
    }

    fn gap_files(&self) -> Result<Vec<String>, Error> {
        list_yaml(self, "gap", true)
    }
}

/// Repo-relative YAML files directly in `dir`, sorted; with `deep`, in its subdirectories too.
/// Links are not followed: canary reads and writes regular files only, and a YAML file that is
/// a link is refused.
fn list_yaml(repo: &Repo, dir: &str, deep: bool) -> Result<Vec<String>, Error> {
    let path = repo.resolve(dir)?;
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(bad_input(format!("{dir}: {e}"))),
    };
    let mut files = Vec::new();
    for entry in entries.filter_map(|entry| entry.ok()) {
        let (Ok(kind), Ok(name)) = (entry.file_type(), entry.file_name().into_string()) else {
            continue;
        };
        let rel = format!("{dir}/{name}");
        if kind.is_symlink() && is_yaml(&name) {
            // Refused, not skipped: skipped, a patch would go without its twin, or a twin
            // survive cleanup.
            return Err(symbolic_link(&rel));
        } else if kind.is_file() && is_yaml(&name) {
            files.push(rel);
        } else if deep && kind.is_dir() {
            files.extend(list_yaml(repo, &rel, deep)?);
        }
    }
    files.sort();
    Ok(files)
}

/// The repository with changes applied, without writing them: a step's changes, or (for
/// `canary start`'s walk) every change of the steps so far, each path once.
pub struct Overlay<'a> {
    pub repo: &'a Repo,
    pub changes: &'a [FileChange],
}

impl Source for Overlay<'_> {
    fn read(&self, path: &str) -> Result<Option<String>, Error> {
        match self.changes.iter().find(|c| c.path == path) {
            Some(change) => Ok(change.after.clone()),
            None => self.repo.read(path),
        }
    }

    /// A file a change's edit made is handed on as that edit read it back.
    fn document(&self, path: &str) -> Result<Option<Result<Document, YamlError>>, Error> {
        match self.changes.iter().find(|c| c.path == path) {
            Some(FileChange {
                document: Some(doc),
                ..
            }) => Ok(Some(Ok(doc.clone()))),
            Some(change) => Ok(change.after.clone().map(Document::parse)),
            None => Ok(self.repo.read(path)?.map(Document::parse)),
        }
    }

    fn yaml_files(&self, dir: &str) -> Result<Vec<String>, Error> {
        let in_dir = |path: &str| {
            path.strip_prefix(dir)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.contains('/') && is_yaml(name))
        };
        Ok(self.with_changes(self.repo.yaml_files(dir)?, in_dir))
    }

    fn gap_files(&self) -> Result<Vec<String>, Error> {
        let in_gap = |path: &str| path.starts_with("gap/") && is_yaml(path);
        Ok(self.with_changes(self.repo.gap_files()?, in_gap))
    }
}

impl Overlay<'_> {
    /// The repository's files of a listing, with those the changes create (where `listed`
    /// says a path belongs to it) and without those they delete.
    fn with_changes(&self, mut files: Vec<String>, listed: impl Fn(&str) -> bool) -> Vec<String> {
        for change in self.changes.iter().filter(|c| listed(&c.path)) {
            let listed = files.iter().position(|f| *f == change.path);
            match (listed, &change.after) {
                (None, Some(_)) => files.push(change.path.clone()),
                (Some(i), None) => {
                    files.remove(i);
                }
                _ => {}
            }
        }
        files.sort();
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlay_lists_the_files_its_changes_create_and_not_those_they_delete() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("gap/staging")).unwrap();
        for file in [
            "gap/gap.yaml",
            "gap/a.yaml",
            "gap/notes.txt",
            "gap/staging/b.yml",
        ] {
            std::fs::write(dir.path().join(file), "x: 1\n").unwrap();
        }
        let repo = Repo::for_reading(dir.path()).unwrap();
        let change = |path: &str, after: Option<&str>| FileChange {
            path: path.into(),
            before: None,
            after: after.map(str::to_string),
            document: None,
        };
        let changes = [
            change("gap/a.yaml", None),
            change("gap/c.yaml", Some("y: 2\n")),
            change("gap/staging/d.yaml", Some("z: 3\n")),
            change("gap/gap.yaml", Some("name: x\n")),
        ];
        let overlay = Overlay {
            repo: &repo,
            changes: &changes,
        };
        assert_eq!(
            repo.yaml_files("gap").unwrap(),
            ["gap/a.yaml", "gap/gap.yaml"]
        );
        assert_eq!(
            overlay.yaml_files("gap").unwrap(),
            ["gap/c.yaml", "gap/gap.yaml"]
        );
        assert_eq!(
            overlay.yaml_files("gap/staging").unwrap(),
            ["gap/staging/b.yml", "gap/staging/d.yaml"]
        );
        assert_eq!(
            overlay.yaml_files("gap/nowhere").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(overlay.read("gap/a.yaml").unwrap(), None);
        assert_eq!(overlay.read("gap/gap.yaml").unwrap().unwrap(), "name: x\n");
        assert_eq!(
            overlay.read("gap/staging/b.yml").unwrap().unwrap(),
            "x: 1\n"
        );
    }
}
