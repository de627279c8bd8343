//! Argo CD: the Application that deploys an environment, what it reports (read from the
//! Application object as the API server returns it), and whether that says the deploy is done:
//! `Synced` at canary's commit or a later one, and `Healthy`. Plain data and pure functions:
//! the session reads the object, the caller says how a revision relates to canary's commit.

use std::fmt;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, bad_input};
use crate::finding::Finding;
use crate::release::check_label;
use crate::repo::short_id;

/// The API group and version that serve `Application`, and its plural.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";
pub const KIND: &str = "Application";
pub const PLURAL: &str = "applications";

/// An Argo CD Application, `NAMESPACE/NAME` (the namespace Argo CD keeps it in, most often
/// `argocd`, not the service's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppRef {
    pub namespace: String,
    pub name: String,
}

impl std::str::FromStr for AppRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<AppRef, Error> {
        let (namespace, name) = s.split_once('/').ok_or_else(|| {
            bad_input(format!(
                "Argo CD Application {s:?} is not NAMESPACE/NAME (such as argocd/my-service-staging)"
            ))
        })?;
        check_label("Argo CD Application namespace", namespace, 63)?;
        // A resource name: a DNS subdomain, dots allowed.
        let ok = !name.is_empty()
            && name.len() <= 253
            && name
                .split('.')
                .all(|label| check_label("", label, 63).is_ok());
        if !ok {
            return Err(bad_input(format!(
                "Argo CD Application name {name:?} is not valid: use lower-case letters, digits, \
                 '-' and '.', starting and ending with a letter or digit, at most 253 characters"
            )));
        }
        Ok(AppRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl TryFrom<String> for AppRef {
    type Error = Error;

    fn try_from(s: String) -> Result<AppRef, Error> {
        s.parse()
    }
}

impl From<AppRef> for String {
    fn from(app: AppRef) -> String {
        app.to_string()
    }
}

impl fmt::Display for AppRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What an Application reports, as Argo CD writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppStatus {
    /// `status.sync.status`: `Synced`, `OutOfSync` or `Unknown`; `None` before Argo CD wrote it.
    pub sync: Option<String>,
    /// `status.sync.revision` (a multi-source Application's first `revisions` entry): the git
    /// commit it is synced to, or compared with when OutOfSync.
    pub revision: Option<String>,
    /// `status.health.status`: `Healthy`, `Progressing`, `Degraded`, `Suspended`, `Missing`…
    pub health: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_message: Option<String>,
    /// The message of the last sync operation when it failed or errored
    /// (`status.operationState`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_error: Option<String>,
    /// `spec.syncPolicy.automated.prune`: Argo CD deletes what the files no longer have on its
    /// own. `false` without automated sync.
    pub prunes: bool,
}

impl AppStatus {
    /// Read from an Application object.
    pub fn read(app: &Value) -> AppStatus {
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        let status = &app["status"];
        let operation = &status["operationState"];
        let failed = matches!(operation["phase"].as_str(), Some("Failed" | "Error"));
        AppStatus {
            sync: text(&status["sync"]["status"]),
            revision: text(&status["sync"]["revision"])
                .or_else(|| text(&status["sync"]["revisions"][0])),
            health: text(&status["health"]["status"]),
            health_message: text(&status["health"]["message"]),
            sync_error: if failed {
                text(&operation["message"]).or_else(|| Some("no message".into()))
            } else {
                None
            },
            prunes: app["spec"]["syncPolicy"]["automated"]["prune"] == true,
        }
    }

    pub fn is_synced(&self) -> bool {
        self.sync.as_deref() == Some("Synced")
    }

    pub fn is_healthy(&self) -> bool {
        self.health.as_deref() == Some("Healthy")
    }

    /// `Synced at 1a2b3c4, Healthy`.
    pub fn summary(&self) -> String {
        let mut out = self.sync.as_deref().unwrap_or("no sync status").to_string();
        if let Some(revision) = &self.revision {
            out.push_str(&format!(" at {}", short_id(revision)));
        }
        out.push_str(", ");
        out.push_str(self.health.as_deref().unwrap_or("no health status"));
        out
    }
}

/// How the revision an Application reports stands to canary's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Canary's commit itself.
    At,
    /// A commit that has canary's commit among its ancestors.
    Later,
    /// An ancestor of canary's commit: Argo CD has not seen canary's commit yet.
    Older,
    /// A commit this clone has, on another line of history, without canary's commit.
    Lacks,
    /// A revision this clone does not have (or that is not a commit id): it cannot say.
    Unknown,
}

/// Says how a revision stands to canary's commit (the caller asks git).
pub type Relate = Rc<dyn Fn(&str) -> Relation>;

/// What the environment's Application must report for a deploy to be done.
#[derive(Clone)]
pub struct Wanted {
    pub app: AppRef,
    /// Canary's commit, which the Application must be synced at or past; `None` when canary
    /// knows no commit of the release (only Synced and Healthy are asked then).
    pub commit: Option<String>,
    pub relate: Relate,
}

impl fmt::Debug for Wanted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wanted")
            .field("app", &self.app)
            .field("commit", &self.commit)
            .finish_non_exhaustive()
    }
}

impl Wanted {
    /// Synced and Healthy only: no commit to compare with.
    pub fn any_revision(app: AppRef) -> Wanted {
        Wanted {
            app,
            commit: None,
            relate: Rc::new(|_| Relation::Unknown),
        }
    }

    /// `Synced at 1a2b3c4 or later and Healthy`.
    fn describe(&self) -> String {
        match &self.commit {
            Some(commit) => format!("Synced at {} or later and Healthy", short_id(commit)),
            None => "Synced and Healthy".into(),
        }
    }
}

/// A revision as git names it: a commit id, never an option or a range. Anything else (a Helm
/// chart's version) is a revision git cannot place.
pub fn is_commit_id(revision: &str) -> bool {
    (4..=64).contains(&revision.len()) && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The one finding about the environment's Application: an error while it is not yet what the
/// deploy needs, saying what it waits for and what the Application reports now; once it is,
/// an info that says what it reports. Both carry the Application's state for scripts.
pub fn verdict(wanted: &Wanted, live: Option<&AppStatus>) -> Finding {
    let app = &wanted.app;
    let Some(live) = live else {
        return Finding::error(
            "argocd-app-missing",
            format!(
                "Argo CD Application {app} is not in the cluster; `canary context` names \
                 another (--argocd NAMESPACE/NAME) or removes it (--no-argocd)"
            ),
        );
    };
    let relation = match (&wanted.commit, &live.revision) {
        // No commit to compare with: whatever it is synced at counts.
        (None, _) => Relation::Later,
        (Some(_), None) => Relation::Unknown,
        (Some(_), Some(revision)) => (wanted.relate)(revision),
    };
    let at_revision = matches!(relation, Relation::At | Relation::Later);
    let mut finding = if live.is_synced() && live.is_healthy() && at_revision {
        Finding::info(
            "argocd-application",
            format!("Argo CD Application {app} reports {}", live.summary()),
        )
    } else {
        Finding::error(
            "argocd-not-synced",
            format!(
                "Argo CD Application {app} is not yet {}: it reports {}",
                wanted.describe(),
                reports(wanted, live, relation)
            ),
        )
    };
    let mut detail = serde_json::to_value(live).expect("plain data");
    detail["application"] = app.to_string().into();
    finding.detail = Some(detail);
    finding
}

/// What an Application that is not yet done reports, in words.
fn reports(wanted: &Wanted, live: &AppStatus, relation: Relation) -> String {
    let mut now = live
        .sync
        .as_deref()
        .unwrap_or("no sync status yet")
        .to_string();
    if let Some(revision) = &live.revision {
        let short = short_id(revision);
        now.push_str(&match (&wanted.commit, relation) {
            (Some(commit), Relation::Older) => format!(
                " at {short}, older than canary's commit {}",
                short_id(commit)
            ),
            (Some(commit), Relation::Lacks) => format!(
                " at {short}, which does not have canary's commit {}",
                short_id(commit)
            ),
            (Some(commit), Relation::Unknown) => format!(
                " at {short}, which this clone does not have: `git fetch` brings it, and canary \
                 then sees whether it holds canary's commit {}",
                short_id(commit)
            ),
            _ => format!(" at {short}"),
        });
    }
    now.push_str(", ");
    now.push_str(live.health.as_deref().unwrap_or("no health status yet"));
    if let Some(message) = live
        .health_message
        .as_deref()
        .filter(|_| !live.is_healthy())
    {
        now.push_str(&format!(" ({message})"));
    }
    if let Some(error) = &live.sync_error {
        now.push_str(&format!("; its last sync failed: {error}"));
    }
    now
}

/// What the Application's next sync does about objects the files no longer have, for the note
/// at a cleanup's production deploy; `deleted` are the objects, `kind name` each.
pub fn prune_note(app: &AppRef, live: &AppStatus, deleted: &[String]) -> String {
    if live.prunes {
        format!(
            "Argo CD Application {app} prunes automatically (spec.syncPolicy.automated.prune): \
             its sync deletes {}",
            deleted.join(", ")
        )
    } else {
        format!(
            "Argo CD Application {app} does not prune automatically: sync it with Prune \
             (`argocd app sync {} --prune`, or Prune in the UI); that sync deletes {}",
            app_flag(app),
            deleted.join(", ")
        )
    }
}

/// How the argocd CLI names an Application outside its own namespace: `NS/NAME`.
fn app_flag(app: &AppRef) -> String {
    if app.namespace == "argocd" {
        app.name.clone()
    } else {
        app.to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CANARY: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
    const OLDER: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c";

    fn app(sync: &str, revision: &str, health: &str) -> Value {
        json!({"apiVersion": API_VERSION, "kind": KIND,
               "metadata": {"name": "web", "namespace": "argocd"},
               "spec": {"syncPolicy": {"automated": {"prune": true}}},
               "status": {"sync": {"status": sync, "revision": revision},
                          "health": {"status": health}}})
    }

    fn wanted(relation: Relation) -> Wanted {
        Wanted {
            app: "argocd/web".parse().unwrap(),
            commit: Some(CANARY.into()),
            relate: Rc::new(move |_| relation),
        }
    }

    #[test]
    fn application_references_are_namespace_slash_name() {
        let app: AppRef = "argocd/my-service.staging".parse().unwrap();
        assert_eq!(
            (app.namespace.as_str(), app.name.as_str()),
            ("argocd", "my-service.staging")
        );
        assert_eq!(app.to_string(), "argocd/my-service.staging");
        for bad in [
            "",
            "web",
            "/web",
            "argocd/",
            "argocd/web/x",
            "Argo/web",
            "argocd/We",
            "argocd/a..b",
            "argocd/-a",
            "a b/web",
        ] {
            assert!(bad.parse::<AppRef>().is_err(), "{bad:?} accepted");
        }
        let json = serde_json::to_value(&app).unwrap();
        assert_eq!(json, "argocd/my-service.staging");
        assert_eq!(serde_json::from_value::<AppRef>(json).unwrap(), app);
    }

    #[test]
    fn the_status_is_read_where_argo_cd_writes_it() {
        let mut object = app("OutOfSync", OLDER, "Degraded");
        object["status"]["health"]["message"] = json!("Deployment exceeded its deadline");
        object["status"]["operationState"] =
            json!({"phase": "Failed", "message": "one or more objects failed to apply"});
        let status = AppStatus::read(&object);
        assert_eq!(status.sync.as_deref(), Some("OutOfSync"));
        assert_eq!(status.revision.as_deref(), Some(OLDER));
        assert_eq!(status.health.as_deref(), Some("Degraded"));
        assert_eq!(
            status.sync_error.as_deref(),
            Some("one or more objects failed to apply")
        );
        assert!(status.prunes);
        object["status"]["operationState"]["phase"] = json!("Succeeded");
        object["spec"] = json!({"syncPolicy": {"automated": {}}});
        let status = AppStatus::read(&object);
        assert_eq!(status.sync_error, None);
        assert!(!status.prunes);
        assert_eq!(AppStatus::read(&json!({})), AppStatus::default());
    }

    #[test]
    fn a_deploy_is_done_when_synced_at_canarys_commit_or_later_and_healthy() {
        let live = AppStatus::read(&app("Synced", CANARY, "Healthy"));
        for relation in [Relation::At, Relation::Later] {
            let done = verdict(&wanted(relation), Some(&live));
            assert!(!done.is_error(), "{done}");
            assert_eq!(
                done.message,
                "Argo CD Application argocd/web reports Synced at 1a2b3c4d5e6f, Healthy"
            );
            let detail = done.detail.unwrap();
            assert_eq!(
                (&detail["application"], &detail["sync"], &detail["health"]),
                (&json!("argocd/web"), &json!("Synced"), &json!("Healthy"))
            );
            assert_eq!(detail["revision"], CANARY);
        }
        let lacks = verdict(&wanted(Relation::Lacks), Some(&live));
        assert!(lacks.is_error());
        assert!(
            lacks
                .message
                .contains("does not have canary's commit 1a2b3c4d5e6f"),
            "{lacks}"
        );
        let unknown = verdict(&wanted(Relation::Unknown), Some(&live));
        assert!(unknown.message.contains("`git fetch`"), "{unknown}");
        assert!(
            !verdict(
                &Wanted::any_revision("argocd/web".parse().unwrap()),
                Some(&live)
            )
            .is_error()
        );
    }

    #[test]
    fn the_verdict_says_what_it_waits_for_and_what_the_application_reports() {
        let live = AppStatus::read(&app("OutOfSync", OLDER, "Healthy"));
        let older = verdict(&wanted(Relation::Older), Some(&live));
        assert!(
            older.message.ends_with(
                "it reports OutOfSync at 9f8e7d6c5b4a, older than canary's commit 1a2b3c4d5e6f, \
                 Healthy"
            ),
            "{older}"
        );
        let finding = verdict(&wanted(Relation::Lacks), Some(&live));
        assert_eq!(
            finding.message,
            "Argo CD Application argocd/web is not yet Synced at 1a2b3c4d5e6f or later and \
             Healthy: it reports OutOfSync at 9f8e7d6c5b4a, which does not have canary's commit 1a2b3c4d5e6f, \
             Healthy"
        );
        let mut object = app("Synced", CANARY, "Degraded");
        object["status"]["health"]["message"] = json!("0/1 replicas ready");
        object["status"]["operationState"] = json!({"phase": "Error", "message": "boom"});
        let finding = verdict(&wanted(Relation::At), Some(&AppStatus::read(&object)));
        assert!(
            finding.message.ends_with(
                "it reports Synced at 1a2b3c4d5e6f, Degraded (0/1 replicas ready); its last sync \
                 failed: boom"
            ),
            "{finding}"
        );
        let missing = verdict(&wanted(Relation::At), None);
        assert_eq!(missing.code, "argocd-app-missing");
    }

    #[test]
    fn only_commit_ids_are_handed_to_git() {
        assert!(is_commit_id(CANARY));
        for bad in ["", "1.2.3", "--all", "HEAD", "main..x", "abc"] {
            assert!(!is_commit_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_prune_note_says_whether_a_sync_with_prune_is_needed() {
        let app: AppRef = "argocd/web".parse().unwrap();
        let deleted = ["Deployment my-service-web-v1".to_string()];
        let mut live = AppStatus::default();
        let note = prune_note(&app, &live, &deleted);
        assert!(
            note.contains("does not prune automatically: sync it with Prune"),
            "{note}"
        );
        assert!(note.contains("`argocd app sync web --prune`"), "{note}");
        assert!(
            note.ends_with("deletes Deployment my-service-web-v1"),
            "{note}"
        );
        live.prunes = true;
        assert!(prune_note(&app, &live, &deleted).contains("prunes automatically"));
    }
}
