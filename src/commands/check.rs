//! `canary check`: offline analysis of canary's objects in a repository.

use std::path::PathBuf;

use super::Globals;
use crate::check::{self, Journaled, Scope};
use crate::error::{Error, bad_input};
use crate::finding::Severity;
use crate::journal::Release;
use crate::output::{self};
use crate::repo::Repo;

/// Check canary's objects in a repository, offline.
///
/// The objects are checked as `istioctl analyze` would check them.
///
/// Every object validates against the Istio CRD schemas and Kubernetes' Service type; the
/// routes name only subsets the DestinationRule defines; each subset selects the pods of one
/// deployment; the Service patch selects web and web-v1 only; weights are whole numbers that
/// add up to 100; web-v1 admits what web admits plus the ingress and runs a pinned digest.
/// Nothing may stand in the way of a release: web takes ingress traffic, no other patch sets
/// what canary's patches set, no other deployment carries the labels canary selects by, web
/// defines no anchor. Where the journal knows the release, the files must agree with its
/// position. Each finding has a stable code (docs/check.md lists them). Exit 0 when no error
/// is found, 1 when one is.
///
/// Examples:
///   canary check                      # the only release in flight
///   canary check my-service --json
///   canary check --repo ~/src/deploy  # no release needed
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service; may be left out when exactly one release is in flight or --repo is given
    pub service: Option<String>,
    /// The repository to check [default: the release's]
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Print the findings as a JSON array
    #[arg(long)]
    pub json: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let shell = &globals.shell;
    if let Some(service) = &args.service {
        crate::names::check_service(service)?;
    }
    let release = release(globals, &args)?;
    let repo = match (&args.repo, &release) {
        (Some(dir), _) => Repo::open(dir)?,
        (None, Some(release)) => Repo::open(&release.config.repo)?,
        (None, None) => {
            return Err(bad_input(match &args.service {
                Some(s) => {
                    let near = super::read_journal(globals)?
                        .map(|journal| super::did_you_mean(&journal, s))
                        .unwrap_or_default();
                    format!(
                        "no release of {s} is in flight{near}; name the repository with --repo DIR"
                    )
                }
                None => "no release is in flight; name the repository with --repo DIR".into(),
            })
            .into());
        }
    };
    // The journal speaks for the repository it was started on, not for another copy.
    let release = release.filter(|r| r.config.repo == repo.root());
    let scope = match &release {
        Some(r) => Scope::of(&r.config),
        None => Scope::infer(&repo)?,
    };
    if let Some(service) = &args.service
        && *service != scope.service
    {
        return Err(bad_input(format!(
            "gap/gap.yaml in {} is for service {:?}, not {service:?}",
            repo.root().display(),
            scope.service
        ))
        .into());
    }
    let journaled = match &release {
        // A finished release has nothing left to agree with: its objects are gone.
        Some(r) if r.finished_at.is_some() => None,
        Some(r) if r.in_progress.is_some() => {
            shell.note(
                "a step was interrupted while writing its files; the files are not compared with \
                 the journal until `canary next` finishes it",
            );
            None
        }
        Some(r) => Some(journaled(globals, r)?),
        None => None,
    };
    let findings = check::analyze(&repo, &scope, journaled.as_ref())?;
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        for finding in &findings {
            println!("{finding}");
        }
        let warnings = findings.len() - errors;
        let against = if journaled.is_some() {
            " against the journal"
        } else {
            ""
        };
        shell.status(
            "Checked",
            format!(
                "{} in {}{against}: {}, {}",
                scope.service,
                repo.root().display(),
                output::count(errors as u64, "error"),
                output::count(warnings as u64, "warning")
            ),
        );
    }
    if errors > 0 {
        return Err(Error::Found(format!(
            "canary check found {}",
            output::count(errors as u64, "error")
        ))
        .into());
    }
    Ok(())
}

/// The release in flight that the check is about, if the journal has one.
fn release(globals: &Globals, args: &Args) -> anyhow::Result<Option<Release>> {
    let Some(journal) = super::read_journal(globals)? else {
        return Ok(None);
    };
    match &args.service {
        // After the release is done, its repository is still the one to check.
        Some(service) => Ok(match journal.in_flight(service)? {
            Some(release) => Some(release),
            None => journal.latest(service)?,
        }),
        None if args.repo.is_some() => {
            let mut in_flight = journal.releases(false)?;
            Ok((in_flight.len() == 1).then(|| in_flight.remove(0)))
        }
        None => super::find_release(&journal, None).map(Some),
    }
}

/// What the journal knows of a release, for the agreement rules.
pub fn journaled(globals: &Globals, release: &Release) -> anyhow::Result<Journaled> {
    let journal = super::read_journal(globals)?.expect("the release came from the journal");
    Ok(Journaled {
        config: release.config.clone(),
        position: release.position.clone(),
        written: check::state::written_from_events(&journal.files_written(release.id)?),
    })
}
