//! The seed's "ensure that the v1 version is running the correct image; if not, perform one
//! final update" before any traffic moves to v1. Environments with a context are read; the
//! operator answers for the others.

use super::{Act, Ask, Checks, IfNot, Plan};
use crate::cluster::{self, Expected, Session, Target};
use crate::edits::{FileEdit, Move};
use crate::error::Error;
use crate::journal::{Event, Release, StepDone};
use crate::runner::Runner;
use crate::settings::Image;
use crate::workflow::{Action, Shape, Step};

pub(super) fn check_v1_image(release: &Release, checks: &Checks) -> anyhow::Result<Plan> {
    let config = &release.config;
    let pinned = config.pinned()?;
    // With --no-verify the operator answers for every environment.
    let targets: Vec<(usize, Target)> = if checks.verify {
        (0..config.environments.len())
            .filter_map(|env| Some((env, Target::of(config, env)?)))
            .collect()
    } else {
        Vec::new()
    };
    if !targets.is_empty() {
        return Ok(Act::ReadV1Image { targets }.into());
    }
    let (note, ask) = asked(pinned, &config.shape(), &config.service);
    Ok(Plan {
        notes: vec![note],
        act: Act::Ask(ask),
    })
}

/// The operator's word on web-v1's image, and the note that comes before the question.
fn asked(pinned: &Image, shape: &Shape, service: &str) -> (String, Ask) {
    (
        format!("the pinned image is {pinned}; answering no pins web-v1 to another one"),
        Ask {
            question: Step::CheckV1Image.question(shape, service).expect("asked"),
            event: Event::StepDone(StepDone {
                step: "v1 image checked".into(),
                image: Some(pinned.to_string()),
                ..StepDone::default()
            }),
            if_not: IfNot::Repin,
            answered: None,
        },
    )
}

pub(super) fn read_v1_image(
    runner: &mut Runner,
    release: &Release,
    targets: &[(usize, Target)],
) -> anyhow::Result<Release> {
    let shell = runner.shell;
    let config = &release.config;
    let pinned = config.pinned()?;
    let repo = runner.repo.open(&config.repo)?;
    let mut findings = Vec::new();
    for (env, target) in targets {
        let expected = Expected::read(config, &repo, *env)?;
        let session = Session::connect(target)?;
        findings.extend(cluster::compare_v1(
            &expected,
            &session.snapshot(&expected)?,
        ));
    }
    if !findings.is_empty() {
        for finding in &findings {
            shell.detail(finding.styled());
        }
        let choices = [
            "stop here; the release stays where it is",
            "pin web-v1 to another image (one final image update)",
        ];
        if runner
            .prompt
            .select("web-v1 does not run the pinned image. What now?", &choices)?
            == 0
        {
            return Err(Error::Declined(format!(
                "web-v1 does not run {pinned}; deploy it, or run `canary next {}` on a \
                 terminal to pin another image",
                config.service
            ))
            .into());
        }
        return repin(runner, release);
    }
    let checked: Vec<&str> = targets.iter().map(|(_, t)| t.env.as_str()).collect();
    shell.status(
        "Verified",
        format!("web-v1 runs {pinned} in {}", checked.join(", ")),
    );
    if targets.len() == config.environments.len() {
        return Ok(runner.confirm(
            release,
            Action::Complete { changed: true },
            Event::StepDone(StepDone {
                step: "v1 image checked".into(),
                image: Some(pinned.to_string()),
                verified: Some(checked.iter().map(|env| env.to_string()).collect()),
                ..StepDone::default()
            }),
        )?);
    }
    let (note, ask) = asked(pinned, &config.shape(), &config.service);
    shell.note(note);
    super::ask(runner, release, ask)
}

/// The one final image update: web-v1 pinned to another image, then redeployed everywhere.
pub(super) fn repin(runner: &mut Runner, release: &Release) -> anyhow::Result<Release> {
    let image: Image = runner
        .prompt
        .input(
            "The image web-v1 should run (REPOSITORY@sha256:HEX)",
            "a terminal",
            &|s| s.parse::<Image>().map(drop),
        )?
        .parse()?;
    let repin = Move::Repin { image };
    let event = Event::of_move(&repin, &release.config)?;
    let what = repin.describe(&release.config);
    Ok(runner.write(release, FileEdit::Move(repin), &what, vec![event])?)
}
