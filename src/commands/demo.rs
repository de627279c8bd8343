//! `canary demo`: a whole release on a copy of the seed's example repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::Globals;
use crate::commands::start;
use crate::engine;
use crate::output::Shell;
use crate::prompt;
use crate::runner::{Commit, Runner};
use crate::workflow::NextStep;

const EXAMPLE: &[(&str, &str)] = &[
    (
        "gap/gap.yaml",
        include_str!("../../examples/seed-repo/gap/gap.yaml"),
    ),
    ("gap/staging/.gitkeep", ""),
    ("gap/production/.gitkeep", ""),
];
const V1_IMAGE: &str = "sap-ems-base-infra-package-p/gap-images/my-service@sha256:\
                        be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";

/// The demo's coexistence switch: an environment variable web's image reads.
const SWITCH: &str = "env:IMPLEMENTATION=v1,v2";

/// Walk a whole release on a copy of the seed's example repository.
///
/// With --method coexistence, web and web-v1 run one image and the environment variable
/// IMPLEMENTATION (v1 or v2) selects the code path; deploy-v2 flips web's to v2.
///
/// The copy goes into a new temporary directory, with a journal of its own unless --journal
/// (or CANARY_JOURNAL) names one. Interactive on a terminal, or unattended with --yes.
///
/// Example:
///   canary demo --yes
///   canary demo --yes --method coexistence
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Answer yes to every question
    #[arg(long)]
    pub yes: bool,
    /// The method to walk: succession pins v1's image, coexistence flips a switch
    #[arg(long, value_enum, default_value_t = start::MethodArg::Succession)]
    pub method: start::MethodArg,
}

/// `journal`: the journal `--journal` names, if it does.
pub fn run(journal: Option<PathBuf>, quiet: bool, args: Args) -> anyhow::Result<()> {
    if !args.yes && !prompt::terminal_available() {
        return Err(crate::error::bad_input(
            "the demo asks questions and there is no terminal; run `canary demo --yes`",
        )
        .into());
    }
    let dir = tempfile::Builder::new()
        .prefix("canary-demo-")
        .tempdir()
        .context("creating the demo directory")?
        .keep();
    let repo = dir.join("repo");
    make_repo(&repo, &dir.join("remote.git"))?;
    let globals = Globals {
        journal: journal.unwrap_or_else(|| dir.join("journal.db")),
        operator: "demo".into(),
        shell: Shell::new(quiet),
    };
    let shell = &globals.shell;
    crate::report::set_journal(&globals.journal, crate::journal::default_path().as_deref());
    shell.status(
        "Demo",
        format!("a copy of the seed example in {}", repo.display()),
    );
    let args_for_start = start::Args {
        service: Some("my-service".into()),
        repo: Some(repo.clone()),
        v1_image: (args.method == start::MethodArg::Succession).then(|| V1_IMAGE.into()),
        method: args.method,
        switch: (args.method == start::MethodArg::Coexistence).then(|| SWITCH.into()),
        namespace: Some("relational-data".into()),
        envs: Vec::new(),
        hosts: vec![
            "staging=my-service-staging.gservice.emarsys.com".into(),
            "production=my-service.gservice.emarsys.net".into(),
        ],
        contexts: Vec::new(),
        shared_context: false,
        argocd: Vec::new(),
        steps: crate::settings::schedule_text(&crate::settings::DEFAULT_SCHEDULE),
        yes: args.yes,
        // The demo's repository has a bare remote standing for the one Argo CD deploys from,
        // so that the demo shows the real flow: commit, push, then deploy.
        push: true,
        no_remote: false,
        adopt: false,
        webhooks: Vec::new(),
        gate: Default::default(),
    };
    let mut prompt = prompt::for_process(args.yes);
    let config = start::settle(args_for_start, prompt.as_mut())?;
    let mut release = start::open(&globals, &config, &Default::default(), &[])?;
    let mut journal = crate::journal::Journal::open(&globals.journal, &globals.operator)?;
    let plan = crate::workflow::plan(&config.shape());
    let go_on = format!(
        "the demo's release stays where it stopped, in {}; `canary next my-service` goes on \
         from there",
        repo.display()
    );
    say_at_ctrl_c(&go_on);
    let mut runner = Runner {
        journal: &mut journal,
        prompt: prompt.as_mut(),
        shell,
        commit: Commit::Always,
        repo: Default::default(),
        locks: None,
    };
    while release.position.next(&plan) != NextStep::Done {
        engine::announce(shell, &release);
        // A "no" or a refusal ends the demo, not its release: say how to go on.
        release = engine::take_step(&mut runner, &release, &engine::Checks::default())
            .inspect_err(|_| shell.note(&go_on))?;
    }
    shell.status("Done", "the demo release walked every phase");
    println!("\nThe repository is in {}; its history:", repo.display());
    let log = git(&repo, &["log", "--oneline"])?;
    print!("{log}");
    println!(
        "\nInspect the journal with: {}",
        crate::report::command("canary log my-service")
    );
    Ok(())
}

/// What Ctrl-C prints before it ends the demo, written by [`on_ctrl_c`].
static CTRL_C_NOTE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Have Ctrl-C print `note` (as [`crate::output::note`] would) before it ends the demo as it
/// ends any process: a demo stopped at a prompt, or while it waits, says how its release goes on.
fn say_at_ctrl_c(note: &str) {
    let note = format!(
        "\n{:>12} {}\n",
        console::style("Note").cyan().bold(),
        crate::report::commands(note)
    );
    if CTRL_C_NOTE.set(note.into_bytes()).is_ok() {
        // SAFETY: the handler calls only async-signal-safe functions (write, signal, raise).
        unsafe {
            libc::signal(libc::SIGINT, on_ctrl_c as *const () as libc::sighandler_t);
        }
    }
}

extern "C" fn on_ctrl_c(_: libc::c_int) {
    // SAFETY: write(2), signal(2) and raise(3) are async-signal-safe; the note was set before
    // the handler was installed and is never changed.
    unsafe {
        if let Some(note) = CTRL_C_NOTE.get() {
            libc::write(libc::STDERR_FILENO, note.as_ptr().cast(), note.len());
        }
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::raise(libc::SIGINT);
    }
}

/// The seed example committed on `main`, which tracks `main` of a bare repository beside it.
fn make_repo(repo: &Path, remote: &Path) -> anyhow::Result<()> {
    for (path, text) in EXAMPLE {
        let file = repo.join(path);
        std::fs::create_dir_all(file.parent().expect("in a directory"))?;
        std::fs::write(&file, text)?;
    }
    git(repo, &["init", "--quiet", "--initial-branch=main"])?;
    git(repo, &["config", "user.name", "canary demo"])?;
    git(repo, &["config", "user.email", "demo@canary.invalid"])?;
    git(repo, &["add", "--all"])?;
    git(
        repo,
        &["commit", "--quiet", "-m", "The seed's example service"],
    )?;
    let remote = remote
        .to_str()
        .context("the demo directory's path is not UTF-8")?;
    git(
        repo,
        &["init", "--quiet", "--bare", "--initial-branch=main", remote],
    )?;
    git(repo, &["remote", "add", "origin", remote])?;
    git(
        repo,
        &["push", "--quiet", "--set-upstream", "origin", "main"],
    )?;
    Ok(())
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
