//! One runner at a time on a release, across machines: `canary run` holds a
//! `coordination.k8s.io/v1` Lease, `canary-SERVICE` in the release's namespace, on the cluster
//! of the last environment that has a context (production's, usually). It renews the Lease
//! while it runs and gives it up when it ends. A Lease whose holder stopped renewing (a killed
//! runner) is taken over once its time is out; until then the next runner waits, saying so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::{ClusterError, Session, Target};
use crate::error::Error;

/// How long a Lease holds without being renewed.
const DURATION: Duration = Duration::from_secs(60);
/// How often its holder renews it: a third of its time, so that two renewals may fail.
const RENEW: Duration = Duration::from_secs(20);
/// How often a waiting runner, and the renewer, look.
const LOOK: Duration = Duration::from_secs(1);

/// Now, for the Lease's times (built from the system clock: jiff's own clock needs a feature
/// that only the cluster build turns on).
fn now() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(since.as_secs() as i64, since.subsec_nanos() as i32).unwrap_or_default()
}

/// The Lease's name for a service's releases.
pub fn name(service: &str) -> String {
    format!("canary-{service}")
}

/// Who holds a Lease: this machine and process.
pub fn holder() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer it is given.
    let written = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let host = if written == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown-host".into()
    };
    format!("{host}/{}", std::process::id())
}

/// A Lease this process holds, renewed in the background until it is dropped, which gives it up.
pub struct Held {
    stop: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<String>>>,
    renewer: Option<JoinHandle<()>>,
}

impl Held {
    /// Why the Lease is no longer this process's, once another holder has taken it.
    pub fn lost(&self) -> Option<String> {
        self.lost
            .lock()
            .expect("the renewer does not panic")
            .clone()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
    }
}

/// What a look at the Lease found.
enum Look {
    Taken,
    /// Another holder, whose Lease runs out in this long.
    HeldBy {
        other: String,
        left: Duration,
    },
    /// Someone wrote it between the read and the write: look again.
    Raced,
}

/// Take `service`'s Lease on `target`'s cluster for `holder`, waiting while a live holder has
/// it (said once through `waiting`), up to `patience`; then renew it in the background.
pub fn take(
    target: &Target,
    service: &str,
    holder: &str,
    patience: Duration,
    waiting: &dyn Fn(String),
) -> anyhow::Result<Held> {
    let session = Session::connect(target)?;
    let name = name(service);
    let deadline = Instant::now() + patience;
    let mut told = false;
    loop {
        match look(&session, &name, holder)? {
            Look::Taken => break,
            Look::Raced => continue,
            Look::HeldBy { other, left } => {
                if Instant::now() + left.min(LOOK) > deadline {
                    return Err(Error::Busy {
                        service: service.to_string(),
                        holder: format!(
                            " ({other}, by the Lease {name} in namespace {} of {}'s cluster)",
                            target.namespace, target.env
                        ),
                    }
                    .into());
                }
                if !told {
                    waiting(format!(
                        "for the Lease {name}, held by {other}: it runs out in {}s unless its \
                         holder renews it",
                        left.as_secs()
                    ));
                    told = true;
                }
                std::thread::sleep(left.min(LOOK));
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(Mutex::new(None));
    let renewer = {
        let (stop, lost) = (Arc::clone(&stop), Arc::clone(&lost));
        let (target, holder) = (target.clone(), holder.to_string());
        std::thread::spawn(move || renew(&target, &name, &holder, &stop, &lost))
    };
    Ok(Held {
        stop,
        lost,
        renewer: Some(renewer),
    })
}

/// Read the Lease and take it if it is free, run out, or already `holder`'s.
fn look(session: &Session, name: &str, holder: &str) -> Result<Look, ClusterError> {
    let now = now();
    let Some(mut lease) = session.lease(name)? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_string()),
                lease_duration_seconds: Some(DURATION.as_secs() as i32),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return Ok(written(session.create_lease(&lease)?));
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let other = spec.holder_identity.clone().filter(|h| !h.is_empty());
    if let Some(other) = other.as_ref().filter(|other| *other != holder) {
        let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref());
        let seconds = spec.lease_duration_seconds.unwrap_or(0).max(0);
        let ends = renewed.map(|t| t.0 + SignedDuration::from_secs(seconds.into()));
        if let Some(ends) = ends.filter(|ends| *ends > now) {
            let left = Duration::try_from(ends.duration_since(now)).unwrap_or_default();
            return Ok(Look::HeldBy {
                other: other.clone(),
                left,
            });
        }
    }
    if other.as_deref() != Some(holder) {
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        spec.acquire_time = Some(MicroTime(now));
    }
    spec.holder_identity = Some(holder.to_string());
    spec.lease_duration_seconds = Some(DURATION.as_secs() as i32);
    spec.renew_time = Some(MicroTime(now));
    Ok(written(session.replace_lease(&lease)?))
}

fn written(done: bool) -> Look {
    if done { Look::Taken } else { Look::Raced }
}

/// Renew the Lease every [`RENEW`] until `stop`, then give it up; a Lease found in another's
/// hands is `lost`, and no longer touched.
fn renew(
    target: &Target,
    name: &str,
    holder: &str,
    stop: &AtomicBool,
    lost: &Mutex<Option<String>>,
) {
    let Ok(session) = Session::connect(target) else {
        return;
    };
    let mut renewed = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(LOOK);
        if renewed.elapsed() < RENEW {
            continue;
        }
        match session.lease(name) {
            Ok(Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if spec.holder_identity.as_deref() != Some(holder) {
                    *lost.lock().expect("one renewer") = Some(format!(
                        "the Lease {name} was taken by {}",
                        spec.holder_identity.as_deref().unwrap_or("no one")
                    ));
                    return;
                }
                spec.renew_time = Some(MicroTime(now()));
                if session.replace_lease(&lease).unwrap_or(false) {
                    renewed = Instant::now();
                }
            }
            Ok(None) => {
                *lost.lock().expect("one renewer") = Some(format!("the Lease {name} was deleted"));
                return;
            }
            // An unreachable cluster: the Lease holds for its time, and the next look retries.
            Err(_) => {}
        }
    }
    // Given up: free at once for the next runner, rather than when its time runs out.
    if let Ok(Some(mut lease)) = session.lease(name) {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() == Some(holder) {
            spec.holder_identity = None;
            spec.renew_time = None;
            let _ = session.replace_lease(&lease);
        }
    }
}
