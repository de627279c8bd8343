//! `canary completions` and `canary man`: generated from the same clap model as `--help`.

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

/// `command` is canary's whole command line, handed down by `cli`, which sits above this module.
pub fn run(args: Args, mut command: clap::Command) -> anyhow::Result<()> {
    clap_complete::generate(args.shell, &mut command, "canary", &mut std::io::stdout());
    Ok(())
}

/// Print the manual page (roff).
///
/// It is the one page canary has: it lists the subcommands by name, and `canary SUBCOMMAND
/// --help` describes each.
///
/// Example:
///   canary man > ~/.local/share/man/man1/canary.1
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {}

pub fn man(_args: ManArgs, command: clap::Command) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    let page = String::from_utf8(page).expect("clap_mangen writes UTF-8");
    print!("{}", subcommands_by_name(&page));
    Ok(())
}

/// The page with each subcommand named as it is typed (`canary start`), where clap_mangen names
/// a page of its own (`canary-start(1)`) that is neither generated nor installed.
fn subcommands_by_name(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for line in page.split_inclusive('\n') {
        let name = line
            .trim_end()
            .strip_prefix("canary\\-")
            .and_then(|l| l.strip_suffix("(1)"));
        match name {
            Some(sub) => out.push_str(&format!("\\fBcanary {sub}\\fR\n")),
            None => out.push_str(line),
        }
        if line.starts_with(".SH SUBCOMMANDS") {
            out.push_str(
                "Each is described by \\fBcanary\\fR \\fISUBCOMMAND\\fR \\fB\\-\\-help\\fR.\n",
            );
        }
    }
    out
}
