//! `canary status`: where a release stands, as the journal and the repository files say.

use serde::Serialize;

use crate::cli::Globals;
use crate::edits::virtual_service_patch;
use crate::journal::Release;
use crate::output;
use crate::repo::Repo;
use crate::workflow::{NextStep, plan};
use crate::yaml;

/// Show a release's phase, its next step, and each environment's v2 weight as the repository
/// files say it.
///
/// Examples:
///   canary status
///   canary status my-service --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service; may be left out when exactly one release is in flight
    pub service: Option<String>,
    /// Print a JSON object for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub service: String,
    pub phase: String,
    /// The step that comes next, in words.
    pub step: String,
    pub done: bool,
    pub environments: Vec<EnvStatus>,
    /// The command that takes the next step; null when done.
    pub next: Option<String>,
    pub interrupted: bool,
    pub v1_image: String,
    pub repo: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct EnvStatus {
    pub name: String,
    /// null before the environment has a VirtualService patch.
    pub v2_weight: Option<u8>,
}

pub fn status_of(release: &Release) -> Status {
    let config = &release.config;
    let shape = config.shape();
    let plan = plan(&shape);
    let repo = Repo::open(&config.repo).ok();
    let weight = |env: &str| -> Option<u8> {
        let text = repo.as_ref()?.read(&virtual_service_patch(env)).ok()??;
        let weights = yaml::route_weights(&text).ok()?;
        let (_, w) = weights.iter().find(|(subset, _)| subset == "v2")?;
        u8::try_from(*w).ok()
    };
    Status {
        service: config.service.clone(),
        phase: release.position.phase(&plan).to_string(),
        step: release.position.describe_next(&shape, &plan),
        done: release.position.next(&plan) == NextStep::Done,
        environments: config
            .environments
            .iter()
            .map(|e| EnvStatus {
                name: e.name.clone(),
                v2_weight: weight(&e.name),
            })
            .collect(),
        next: super::next_command(release),
        interrupted: release.in_progress.is_some(),
        v1_image: config.v1_image.to_string(),
        repo: config.repo.display().to_string(),
        updated_at: release.updated_at.clone(),
    }
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let journal = super::read_journal(globals)?;
    let release = match (&journal, &args.service) {
        (Some(journal), Some(service)) => {
            crate::release::check_service(service)?;
            journal.latest(service)?.ok_or_else(|| {
                crate::error::bad_input(format!("no release of {service} in the journal"))
            })?
        }
        (Some(journal), None) => super::find_release(journal, None)?,
        (None, _) => {
            return Err(
                crate::error::bad_input("no release is in flight; the journal is empty").into(),
            );
        }
    };
    let status = status_of(&release);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!(
        "{}  {}",
        console::style(&status.service).bold(),
        status.phase
    );
    for env in &status.environments {
        let split = match env.v2_weight {
            Some(w) => format!("v1 {:>3}% / v2 {w:>3}%", 100 - w),
            None => "no canary route".into(),
        };
        println!("  {:<12} {split}", env.name);
    }
    println!("  {:<12} {}", "v1 image", status.v1_image);
    println!("  {:<12} {}", "repository", status.repo);
    if status.interrupted {
        output::note("a step was interrupted; `canary next` finishes it");
    }
    super::print_next(&release);
    Ok(())
}
