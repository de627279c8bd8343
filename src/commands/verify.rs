//! `canary verify`: read each environment's cluster and report where it differs from the
//! repository files.

use super::Globals;
use crate::cluster::{self, Expected, Session, Target};
use crate::error::{Error, bad_input};
use crate::finding::Finding;
use crate::output::Shell;
use crate::repo::Repo;
use crate::settings::Settings;

/// Report where each cluster differs from the repository files.
///
/// Reads the cluster of every environment that has a kubeconfig context (or only ENV's) and
/// reports each difference from the repository files: the web and web-v1 Deployments and
/// their ready replicas, the image digest the v1 pods run against the pinned one, the live
/// VirtualService weights against the patch file, the DestinationRule and its subsets, the
/// Service selector and web-v1's AuthorizationPolicy. Where the environment names its Argo CD
/// Application, also its sync status, revision and health: an error unless it is Synced at
/// canary's newest commit (or a later one) and Healthy, an info otherwise.
///
/// Exit 0 when the clusters match the repository, 1 when they do not (or cannot be read).
///
/// Examples:
///   canary verify my-service
///   canary verify my-service --env production --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service; may be left out when exactly one release is in flight
    pub service: Option<String>,
    /// Only this environment
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Print the findings as a JSON array for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let shell = &globals.shell;
    let journal = super::read_journal(globals)?
        .ok_or_else(|| bad_input("no release is in flight; `canary start SERVICE` opens one"))?;
    let release = super::find_release(&journal, args.service.as_deref())?;
    let config = &release.config;
    let targets = targets(config, args.env.as_deref())?;
    // With one cluster to read, its error is the command's; with several, each is reported
    // and the others are read all the same.
    let several = targets.iter().filter(|(_, t)| t.is_some()).count() > 1;
    let repo = Repo::open(&config.repo)?;
    let mut findings = Vec::new();
    let mut unread = Vec::new();
    for (env, target) in targets {
        let Some(target) = target else {
            if !args.json {
                shell.note(format!(
                    "{} has no kubeconfig context and was not checked",
                    config.environments[env].name
                ));
            }
            continue;
        };
        let commit = crate::engine::canary_commit(&journal, &release, &repo)?;
        let env_findings = match verify_env(config, &repo, env, &target, commit) {
            Ok(findings) => findings,
            Err(err) if several => {
                let Some(error) = err.downcast_ref::<cluster::ClusterError>() else {
                    return Err(err);
                };
                let mut finding = Finding::error("cluster-unreadable", error.problem.to_string());
                finding.env = Some(target.env.clone());
                if !args.json {
                    shell.status("Unreadable", format!("{error}"));
                }
                unread.push(target.env.clone());
                findings.push(finding);
                continue;
            }
            Err(err) => return Err(err),
        };
        if !args.json {
            report(shell, &target, &env_findings);
        }
        findings.extend(env_findings);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    }
    let errors = findings.iter().filter(|f| f.is_error()).count() - unread.len();
    let differs = (errors > 0).then(|| {
        format!(
            "the cluster differs from the repository ({errors} error{})",
            if errors == 1 { "" } else { "s" }
        )
    });
    let unread = (!unread.is_empty())
        .then(|| format!("the cluster of {} could not be read", unread.join(" and ")));
    let failed: Vec<String> = [unread, differs].into_iter().flatten().collect();
    if !failed.is_empty() {
        return Err(Error::Mismatch(failed.join("; ")).into());
    }
    Ok(())
}

/// The findings of one environment's cluster against its files, and its Argo CD Application
/// against canary's `commit`.
pub fn verify_env(
    config: &Settings,
    repo: &Repo,
    env: usize,
    target: &Target,
    commit: Option<String>,
) -> anyhow::Result<Vec<Finding>> {
    let mut expected = Expected::read(config, repo, env)?;
    expected.synced_at(commit, repo);
    let session = Session::connect(target)?;
    Ok(cluster::compare(&expected, &session.snapshot(&expected)?))
}

/// The environments to verify, each with its cluster (`None`: no context, not checked).
fn targets(config: &Settings, only: Option<&str>) -> anyhow::Result<Vec<(usize, Option<Target>)>> {
    let service = &config.service;
    if let Some(name) = only {
        let env = config.env_index(name)?;
        let target = Target::of(config, env).ok_or_else(|| {
            bad_input(format!(
                "{name} has no kubeconfig context; `canary context {service} {name} CONTEXT` \
                 sets one"
            ))
        })?;
        return Ok(vec![(env, Some(target))]);
    }
    let all: Vec<_> = (0..config.environments.len())
        .map(|env| (env, Target::of(config, env)))
        .collect();
    if all.iter().all(|(_, t)| t.is_none()) {
        return Err(bad_input(format!(
            "no environment of {service} has a kubeconfig context; `canary context {service} ENV \
             CONTEXT` sets one"
        ))
        .into());
    }
    Ok(all)
}

fn report(shell: &Shell, target: &Target, findings: &[Finding]) {
    if findings.iter().any(Finding::is_error) {
        shell.status(
            "Differs",
            format!(
                "{} (context {}, namespace {})",
                target.env, target.context, target.namespace
            ),
        );
    } else {
        shell.status(
            "Verified",
            format!(
                "{} (context {}, namespace {}) matches the repository",
                target.env, target.context, target.namespace
            ),
        );
    }
    for finding in findings {
        println!("  {}", finding.styled());
    }
}
