//! `canary completions` and `canary man`: generated from the same clap model as `--help`.

use clap::CommandFactory;

use crate::cli::Cli;

/// Print a shell completion script.
///
/// Examples:
///   canary completions bash > ~/.local/share/bash-completion/completions/canary
///   canary completions zsh > ~/.zfunc/_canary
///   canary completions fish > ~/.config/fish/completions/canary.fish
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    pub shell: clap_complete::Shell,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "canary", &mut std::io::stdout());
    Ok(())
}

/// Print the manual page (roff).
///
/// Example:
///   canary man > ~/.local/share/man/man1/canary.1
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {}

pub fn man(_args: ManArgs) -> anyhow::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(())
}
