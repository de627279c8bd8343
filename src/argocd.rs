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
use crate::names::check_label;
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
    /// Where it deploys from and to.
    #[serde(skip)]
    pub deploys: Deploys,
}

/// Where an Application deploys from and to, as its spec says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deploys {
    /// `spec.destination.namespace`; `None` where it leaves the namespace to the manifests.
    pub namespace: Option<String>,
    /// `spec.source`, or each of a multi-source Application's `spec.sources`.
    pub sources: Vec<AppSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSource {
    /// `spec.source` or `spec.sources[N]`, as messages name it.
    pub field: String,
    pub repo_url: String,
    pub path: String,
}

impl Deploys {
    pub fn read(app: &Value) -> Deploys {
        let spec = &app["spec"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let source = |field: String, s: &Value| AppSource {
            field,
            repo_url: text(&s["repoURL"]),
            path: text(&s["path"]),
        };
        let sources = match spec["sources"].as_array().filter(|s| !s.is_empty()) {
            Some(sources) => sources
                .iter()
                .enumerate()
                .map(|(i, s)| source(format!("spec.sources[{i}]"), s))
                .collect(),
            None if spec["source"].is_object() => {
                vec![source("spec.source".into(), &spec["source"])]
            }
            None => Vec::new(),
        };
        Deploys {
            namespace: spec["destination"]["namespace"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            sources,
        }
    }
}

/// What the release's Application must deploy: to the release's namespace, from the
/// repository canary commits to, the environment's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDeploy {
    pub env: String,
    pub namespace: String,
    /// The URL of the remote the branch's upstream is on; `None` without one (not compared).
    pub repo_url: Option<String>,
    /// The gap directory in the repository (`gap`, or under a prefix): an Application deploys
    /// the environment's files from it, or from its `ENV` directory.
    pub gap_dir: String,
}

/// A repository URL in one form, whatever way it is written: `https://host/org/repo.git`,
/// `ssh://git@host:22/org/repo`, `git@host:org/repo.git` and `host/org/repo` are one
/// repository; a local path stays a path.
pub fn normalise_repo_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let (authority, path) = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').unwrap_or((rest, "")),
        // scp-like `user@host:path`, unless it is a local path.
        None => match url.split_once(':') {
            Some((host, path)) if !host.contains('/') => (host, path),
            _ => return url.to_string(),
        },
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    format!("{host}/{}", path.trim_start_matches('/'))
}

fn normalise_path(path: &str) -> &str {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    if path == "." { "" } else { path }
}

/// Where the Application deploys something else than the release: the field, the
/// Application's value and the release's, in one line. `None` when it deploys the release.
pub fn differs(app: &AppRef, release: &ReleaseDeploy, live: &Deploys) -> Option<String> {
    if let Some(ns) = live
        .namespace
        .as_ref()
        .filter(|ns| **ns != release.namespace)
    {
        return Some(format!(
            "Argo CD Application {app} deploys to namespace {ns} (spec.destination.namespace), \
             the release to {}",
            release.namespace
        ));
    }
    let Some(first) = live.sources.first() else {
        return Some(format!(
            "Argo CD Application {app} names no source (spec.source): it cannot deploy the \
             release's files"
        ));
    };
    let ours: Vec<&AppSource> = match &release.repo_url {
        Some(url) => {
            let url_n = normalise_repo_url(url);
            let ours: Vec<&AppSource> = live
                .sources
                .iter()
                .filter(|s| normalise_repo_url(&s.repo_url) == url_n)
                .collect();
            if ours.is_empty() {
                return Some(format!(
                    "Argo CD Application {app} deploys from {} ({}.repoURL), the release's \
                     repository is {url}",
                    first.repo_url, first.field
                ));
            }
            ours
        }
        None => live.sources.iter().collect(),
    };
    let env_dir = format!("{}/{}", release.gap_dir, release.env);
    if ours
        .iter()
        .any(|s| [release.gap_dir.as_str(), &env_dir].contains(&normalise_path(&s.path)))
    {
        return None;
    }
    Some(format!(
        "Argo CD Application {app} deploys path {} ({}.path), the release's {} files are in {} \
         (or {}, the gap directory)",
        if ours[0].path.is_empty() {
            "(the repository's root)"
        } else {
            &ours[0].path
        },
        ours[0].field,
        release.env,
        env_dir,
        release.gap_dir
    ))
}

impl AppStatus {
    /// Read from an Application object.
    pub fn read(app: &Value) -> AppStatus {
        // Argo CD's words, shown to the operator: control characters escaped and long text
        // cut, whatever the Application holds.
        let text = |v: &Value| {
            v.as_str()
                .filter(|s| !s.is_empty())
                .map(|s| crate::output::outside(s, 300))
        };
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
            deploys: Deploys::read(app),
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
    /// What it must deploy; `None`: not compared.
    pub release: Option<ReleaseDeploy>,
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
            release: None,
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
    if let Some(why) = wanted
        .release
        .as_ref()
        .and_then(|release| differs(app, release, &live.deploys))
    {
        let mut finding = Finding::error(
            "argocd-app-differs",
            format!(
                "{why}: it deploys something else than this release; `canary context` names \
                 the right one (--argocd NAMESPACE/NAME)"
            ),
        );
        finding.detail = Some(serde_json::json!({"application": app.to_string()}));
        return finding;
    }
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
            release: None,
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
        // What the Application says is printed inert: no escape reaches the terminal, and a
        // message the length of a log is cut.
        object["status"]["health"]["message"] =
            json!(format!("\u{1b}]0;owned\u{7}\u{1b}[2J{}", "x".repeat(5000)));
        let message = AppStatus::read(&object).health_message.unwrap();
        assert!(
            message.starts_with("\\u{1b}]0;owned\\u{7}\\u{1b}[2J"),
            "{message}"
        );
        assert!(!message.contains('\u{1b}'), "{message}");
        assert!(message.ends_with("characters cut)"), "{message}");
        assert!(message.len() < 400, "{message}");
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
    fn one_repository_is_one_url_whatever_its_form() {
        for url in [
            "https://github.com/Team/deploy.git",
            "https://user@GitHub.com:443/Team/deploy/",
            "ssh://git@github.com:22/Team/deploy.git",
            "git@github.com:Team/deploy.git",
            "github.com:Team/deploy",
        ] {
            assert_eq!(normalise_repo_url(url), "github.com/Team/deploy", "{url}");
        }
        assert_eq!(normalise_repo_url("/srv/git/deploy.git"), "/srv/git/deploy");
        assert_eq!(
            normalise_repo_url("file:///srv/git/deploy.git/"),
            "/srv/git/deploy"
        );
        assert_ne!(
            normalise_repo_url("git@github.com:team/deploy.git"),
            normalise_repo_url("git@github.com:team/other.git")
        );
    }

    #[test]
    fn an_application_is_the_releases_when_namespace_repository_and_path_are() {
        let app: AppRef = "argocd/web".parse().unwrap();
        let release = ReleaseDeploy {
            env: "staging".into(),
            namespace: "relational-data".into(),
            repo_url: Some("git@git.example:team/deploy.git".into()),
            gap_dir: "gap".into(),
        };
        let deploys = |namespace: Option<&str>, url: &str, path: &str| {
            Deploys::read(&json!({"spec": {
                "destination": {"namespace": namespace},
                "source": {"repoURL": url, "path": path}}}))
        };
        let ours = "https://git.example/team/deploy";
        for path in ["gap/staging", "./gap/staging/", "gap"] {
            assert_eq!(
                differs(
                    &app,
                    &release,
                    &deploys(Some("relational-data"), ours, path)
                ),
                None
            );
        }
        assert_eq!(differs(&app, &release, &deploys(None, ours, "gap")), None);
        let said = |d: Deploys| differs(&app, &release, &d).unwrap();
        assert!(said(deploys(Some("other"), ours, "gap")).contains("namespace other"));
        assert!(said(deploys(None, "https://git.example/x", "gap")).contains("repoURL"));
        assert!(said(deploys(None, ours, "gap/production")).contains("gap/production"));
        // Multi-source: the source of the release's repository is the one whose path counts.
        let multi = Deploys::read(&json!({"spec": {"sources": [
            {"repoURL": "https://charts.example/x", "path": "gap/staging"},
            {"repoURL": ours, "path": "deploy"}]}}));
        assert!(said(multi).contains("deploy (spec.sources[1].path)"));
        let no_remote = ReleaseDeploy {
            repo_url: None,
            ..release.clone()
        };
        assert_eq!(
            differs(
                &app,
                &no_remote,
                &deploys(None, "https://anything/x", "gap/staging")
            ),
            None
        );
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
