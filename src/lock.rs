//! One canary process at a time per release: an advisory lock on a file beside the journal, and
//! one in the repository's git directory, which every journal that works on the repository
//! shares (the common one, so worktrees share it too). The operating system drops a lock when
//! the process ends, however it ends, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

pub struct ReleaseLock {
    _file: File,
}

fn lock_path(journal: &Path, service: &str) -> PathBuf {
    let name = journal
        .file_name()
        .map_or_else(|| "journal.db".into(), |n| n.to_string_lossy().into_owned());
    journal
        .with_file_name(format!("{name}.locks"))
        .join(format!("{service}.lock"))
}

/// Take the lock of `service`'s release, or fail at once with [`Error::Busy`].
pub fn lock(journal: &Path, service: &str) -> Result<ReleaseLock, Error> {
    lock_at(&lock_path(journal, service), service)
}

/// Take the lock of `service` in the repository, whichever journal this process uses: two
/// operators with two journals never work on the same service's files at once.
pub fn lock_in_repo(repo: &crate::repo::Repo, service: &str) -> Result<ReleaseLock, Error> {
    let dir = repo.common_dir()?.join("canary-locks");
    lock_at(&dir.join(format!("{service}.lock")), service)
}

fn lock_at(path: &Path, service: &str) -> Result<ReleaseLock, Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::Busy {
                service: service.to_string(),
                holder: if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                },
            });
        }
        Err(TryLockError::Error(e)) => return Err(e.into()),
    }
    // The pid only helps the message of whoever waits; the lock itself is what counts.
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    Ok(ReleaseLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.db");
        let first = lock(&journal, "svc").unwrap();
        let busy = lock(&journal, "svc").err().unwrap();
        assert!(matches!(busy, Error::Busy { .. }), "{busy}");
        assert!(
            busy.to_string()
                .contains(&format!("pid {}", std::process::id()))
        );
        let _other = lock(&journal, "other").unwrap();
        drop(first);
        // flock belongs to the open file, and a child that another test thread forks holds a
        // copy of every descriptor until it execs: for that instant the dropped lock is still
        // held. Only a lock that stays held past any such instant is a bug.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match lock(&journal, "svc") {
                Ok(_) => break,
                Err(Error::Busy { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("the lock was not let go: {e}"),
            }
        }
    }
}
