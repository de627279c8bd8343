//! One canary process at a time per release: an advisory lock on a file beside the journal, and
//! one in the repository's git directory, which every journal that works on the repository
//! shares (the common one, so worktrees share it too). The operating system drops a lock when
//! the process ends, however it ends, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

pub struct ReleaseLock {
    file: File,
    service: String,
}

impl ReleaseLock {
    fn let_go(&self) -> Result<(), Error> {
        Ok(self.file.unlock()?)
    }

    /// Take the lock back; [`Error::Busy`] when another process took it meanwhile.
    fn retake(&mut self) -> Result<(), Error> {
        hold(&mut self.file, &self.service)
    }
}

/// The locks a command holds on one release: the journal's and, where the repository is
/// there, the repository's.
pub struct Locks(Vec<ReleaseLock>);

impl Locks {
    pub fn new(locks: Vec<ReleaseLock>) -> Locks {
        Locks(locks)
    }

    /// Let go of every lock for a wait that reads and writes nothing (the gate's pause), so
    /// that another command on the release, `canary abort` first of all, is not refused
    /// meanwhile. Whoever lets go must read the release again once it has them back.
    pub fn let_go(&self) -> Result<(), Error> {
        self.0.iter().try_for_each(ReleaseLock::let_go)
    }

    /// Take every lock back; [`Error::Busy`] when another process holds one now.
    pub fn retake(&mut self) -> Result<(), Error> {
        self.0.iter_mut().try_for_each(ReleaseLock::retake)
    }
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
    hold(&mut file, service)?;
    Ok(ReleaseLock {
        file,
        service: service.to_string(),
    })
}

/// Lock the open lock file and write this process's id in it, or fail at once with
/// [`Error::Busy`], naming the holder.
fn hold(file: &mut File, service: &str) -> Result<(), Error> {
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            file.rewind()?;
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
    Ok(())
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
        // Let go for a wait, another process may take it; taken back once free again.
        let mut locks = Locks::new(vec![first]);
        locks.let_go().unwrap();
        let meanwhile = lock(&journal, "svc").unwrap();
        assert!(matches!(locks.retake(), Err(Error::Busy { .. })));
        drop(meanwhile);
        // As below: a forked child may hold the dropped lock for an instant.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Err(e) = locks.retake() {
            assert!(std::time::Instant::now() < deadline, "not taken back: {e}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(matches!(lock(&journal, "svc"), Err(Error::Busy { .. })));
        let Locks(mut held) = locks;
        let first = held.pop().unwrap();
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
