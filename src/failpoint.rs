//! Failpoints: named places where the recovery tests make canary crash or fail a write, set by
//! `CANARY_FAILPOINT`. A module of their own so that the lowest modules (`repo`'s writes) can
//! have them without reaching up into the runner.

/// Points where `CANARY_FAILPOINT` aborts the process on the spot, to test recovery.
pub fn failpoint(name: &str) {
    if std::env::var_os("CANARY_FAILPOINT").is_some_and(|v| v == name) {
        eprintln!("canary: failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Points where `CANARY_FAILPOINT` makes the write there fail as a full disk makes it fail,
/// to test what canary says and leaves behind when a write fails.
pub fn disk_full(name: &str) -> bool {
    std::env::var_os("CANARY_FAILPOINT").is_some_and(|v| v == name)
}
