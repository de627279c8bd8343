//! The steps that deploy and confirm: a deploy asked of the operator or read on the cluster, the
//! note a cleanup's deploy leaves on what to prune, and the observation of v2 during the ramp.

use super::{Act, Ask, Checks, IfNot, Plan, WouldPublish};
use crate::argocd;
use crate::cluster::{self, Expected, Session, Target};
use crate::edits;
use crate::journal::{AppReport, DeployConfirmed, Event, Journal, Release, StepDone};
use crate::repo::Repo;
use crate::runner::{Ready, Runner};
use crate::settings::Remote;
use crate::workflow::{Action, AnyEdit, Deleted, Delivery, Phase, Step, deploy_question};

pub(super) fn deploy(
    runner: &mut Runner,
    release: &Release,
    env: usize,
    after: AnyEdit,
    phase: Phase,
    checks: &Checks,
) -> anyhow::Result<(Release, Plan)> {
    // Argo CD deploys what the remote branch has: nothing is confirmed for files it lacks.
    let release = match runner.ready_to_deploy(release, checks.publish)? {
        Ready::Yes(release) => *release,
        Ready::Not(state) => return Err(WouldPublish(state).into()),
    };
    let config = &release.config;
    let name = &config.environments[env].name;
    let last = env == config.environments.len() - 1;
    let mut notes = Vec::new();
    if last {
        let application = argocd_application(config, env, checks)?;
        let application = application.as_ref().map(|(app, live)| (app, live));
        notes.extend(deleted_by(runner.journal, &release, phase, application)?);
    }
    let delivery = match config.remote {
        Remote::Operator => Delivery::OperatorPushes,
        Remote::Push => Delivery::Pushed,
        Remote::None => Delivery::Deploy,
    };
    let (question, doing) =
        deploy_question(name, &after.describe(&config.shape()).to_string(), delivery);
    let act = confirm_deploy(
        &release,
        env,
        checks,
        Deployed {
            question,
            doing,
            detail: DeployConfirmed {
                env: name.clone(),
                after: Some(after),
                ..DeployConfirmed::default()
            },
            v2_code: false,
        },
    );
    Ok((release, Plan { notes, act }))
}

/// The operator lands v2's code and deploys it; where the environment has a context, canary
/// waits until its cluster runs it (web no longer runs v1's image).
pub(super) fn deploy_v2(release: &Release, env: usize, checks: &Checks) -> Act {
    let config = &release.config;
    let step = Step::DeployV2 { env };
    confirm_deploy(
        release,
        env,
        checks,
        Deployed {
            question: step
                .question(&config.shape(), &config.service)
                .expect("asked"),
            doing: step.doing(&config.shape()).expect("a deploy"),
            detail: DeployConfirmed {
                env: config.environments[env].name.clone(),
                what: Some("v2 code".into()),
                ..DeployConfirmed::default()
            },
            v2_code: true,
        },
    )
}

/// A deploy to confirm: how it is asked, said and journaled.
pub struct Deployed {
    question: String,
    doing: String,
    /// The `deploy-confirmed` event, before how it was confirmed.
    detail: DeployConfirmed,
    /// v2's code deploy: web must run another image than v1's.
    v2_code: bool,
}

impl Deployed {
    /// The event that confirms the deploy, told `how` it was confirmed.
    fn event(&self, how: DeployConfirmed) -> Event {
        Event::DeployConfirmed(DeployConfirmed {
            env: self.detail.env.clone(),
            after: self.detail.after,
            what: self.detail.what.clone(),
            ..how
        })
    }
}

/// Confirm a deploy to `env`: asked where it has no context (or with --no-verify), else read on
/// its cluster (and its Argo CD Application) until it shows the deploy, whatever --yes says.
fn confirm_deploy(release: &Release, env: usize, checks: &Checks, deployed: Deployed) -> Act {
    let config = &release.config;
    let Some(target) = Target::of(config, env) else {
        return Act::Ask(Ask {
            event: deployed.event(DeployConfirmed::default()),
            question: deployed.question,
            if_not: IfNot::Stay,
            answered: None,
        });
    };
    if !checks.verify {
        return Act::Ask(Ask {
            event: deployed.event(DeployConfirmed {
                verified: Some(false),
                context: Some(target.context.clone()),
                note: Some("confirmed without verification (--no-verify)".into()),
                ..DeployConfirmed::default()
            }),
            question: deployed.question,
            if_not: IfNot::Stay,
            answered: None,
        });
    }
    Act::Verify {
        env,
        target,
        deployed,
    }
}

/// Wait until `env`'s cluster shows the deploy, and journal it as verified.
pub(super) fn verify(
    runner: &mut Runner,
    release: &Release,
    env: usize,
    target: &Target,
    deployed: Deployed,
    checks: &Checks,
) -> anyhow::Result<Release> {
    let shell = runner.shell;
    let config = &release.config;
    let name = &config.environments[env].name;
    let app = config.environments[env].argocd.as_ref();
    shell.status(
        "Deploy",
        format!(
            "{}; canary checks the cluster{}",
            deployed.doing,
            app.map(|app| format!(" and Argo CD Application {app}"))
                .unwrap_or_default()
        ),
    );
    let repo = runner.repo.open(&config.repo)?;
    let mut expected = Expected::read(config, &repo, env)?;
    expected.synced_at(canary_commit(runner.journal, release, &repo)?, &repo);
    if deployed.v2_code {
        expected.expect_v2_code(config);
    }
    let session = Session::connect(target)?;
    let warnings = cluster::wait_until_matching(shell, &session, &expected, checks.wait)?;
    for warning in &warnings {
        shell.detail(warning.styled());
    }
    // The journal says which Application, at which revision, the deploy was verified by.
    let argocd = warnings
        .iter()
        .find(|f| f.code == "argocd-application")
        .and_then(|f| serde_json::from_value::<AppReport>(f.detail.clone()?).ok());
    let verified = DeployConfirmed {
        verified: Some(true),
        context: Some(target.context.clone()),
        argocd,
        ..DeployConfirmed::default()
    };
    shell.status(
        "Verified",
        format!("{name} (context {}) shows the deploy", target.context),
    );
    Ok(runner.confirm(
        release,
        Action::Complete { changed: true },
        deployed.event(verified),
    )?)
}

/// The commit an environment's Argo CD Application must be synced at or past: canary's newest
/// commit of the release; for one whose files were committed by hand, the tip of the branch
/// Argo CD deploys (the upstream, or HEAD without a remote).
pub fn canary_commit(
    journal: &Journal,
    release: &Release,
    repo: &Repo,
) -> anyhow::Result<Option<String>> {
    let ours = journal
        .events(release.id)?
        .into_iter()
        .rev()
        .find_map(|e| match e.event {
            crate::journal::Event::Committed(committed) => Some(committed.commit),
            _ => None,
        });
    if ours.is_some() {
        return Ok(ours);
    }
    let tip = match release.config.remote {
        crate::settings::Remote::None => "HEAD",
        _ => "@{upstream}",
    };
    Ok(repo.commit_id(tip)?)
}

/// Production's Argo CD Application and what it reports, read for the cleanup's note on
/// pruning; `None` without one, without verification, or when the cluster lacks it (the deploy
/// then says so).
fn argocd_application(
    config: &crate::settings::Settings,
    env: usize,
    checks: &Checks,
) -> anyhow::Result<Option<(argocd::AppRef, argocd::AppStatus)>> {
    let (Some(app), Some(target), true) = (
        &config.environments[env].argocd,
        Target::of(config, env),
        checks.verify,
    ) else {
        return Ok(None);
    };
    let live = Session::connect(&target)?.application(app)?;
    Ok(live.map(|live| (app.clone(), argocd::AppStatus::read(&live))))
}

/// The operator watches v2 at production's weight, scheduled or set by hand, before it goes up.
pub(super) fn observe(release: &Release, weight: u8) -> Act {
    let config = &release.config;
    Act::Ask(Ask {
        question: Step::Observe { weight }
            .question(&config.shape(), &config.service)
            .expect("asked"),
        event: Event::StepDone(StepDone {
            step: "observed".into(),
            weight: Some(weight),
            ..StepDone::default()
        }),
        if_not: IfNot::Stay,
        answered: None,
    })
}

/// What a cleanup phase deleted, for the note at its production deploy: there, Argo CD removes
/// a deleted resource only when the sync prunes, which production's Application, when canary
/// reads it, says it does on its own or not. `None` outside the cleanup.
fn deleted_by(
    journal: &Journal,
    release: &Release,
    phase: Phase,
    application: Option<(&argocd::AppRef, &argocd::AppStatus)>,
) -> anyhow::Result<Option<String>> {
    let config = &release.config;
    let patches: Vec<String> = match phase {
        Phase::Cleanup1 => deleted_files(journal, release, phase)?
            .into_iter()
            .filter(|path| path != edits::SERVICE_PATCH)
            .collect(),
        _ => Vec::new(),
    };
    let routes: Vec<String> = config
        .environments
        .iter()
        .map(|env| edits::virtual_service_patch(&env.name))
        .collect();
    let deleted = Deleted {
        env: &config.environments[config.environments.len() - 1].name,
        namespace: &config.namespace,
        service: &config.service_name(),
        patches: &patches,
        routes: &routes,
        virtual_service: &config.virtual_service_name(),
        destination_rule: &config.destination_rule_name(),
    };
    Ok(phase.cleanup_note(&deleted, &|objects| {
        application.map(|(app, live)| argocd::prune_note(app, live, objects))
    }))
}

/// The files that the edits of `phase` deleted, as the journal recorded them.
fn deleted_files(
    journal: &Journal,
    release: &Release,
    phase: Phase,
) -> anyhow::Result<Vec<String>> {
    let events = journal.events(release.id)?;
    Ok(events
        .into_iter()
        .filter(|e| e.phase == phase.name())
        .flat_map(|e| match e.event {
            Event::FilesWritten { files } => files,
            _ => Vec::new(),
        })
        .filter(|file| file.after.is_none())
        .map(|file| file.path)
        .collect())
}
