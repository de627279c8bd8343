//! Snapshots of what people read: every `--help`, `status` (plain, narrow, coloured or not),
//! `list` and `explain`. `INSTA_UPDATE=always cargo test --test testsuite snapshots::` records
//! changes for review in `tests/testsuite/snapshots/`.

use crate::common::{SERVICE, Sandbox};

/// A sandbox whose release is in the middle of the ramp: production at 10%, staging at 50%.
fn mid_ramp() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    sandbox.next();
    sandbox.next();
    sandbox
        .canary(&["weight", SERVICE, "staging", "50", "--yes"])
        .ok();
    while sandbox.weights()[1].1 != Some(10) {
        sandbox.next();
    }
    sandbox
}

fn run(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = sandbox.command(env!("CARGO_BIN_EXE_canary"));
    cmd.arg("--journal").arg(&sandbox.journal).args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // The sandbox's journal, which hints name (it is not the default one), whole or cut.
    settings.add_filter(r"--journal /\S*", "--journal [journal]");
    settings.add_filter(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?Z?)?", "[time]");
    settings.add_filter(r"\b[0-9a-f]{7,12}\b", "[commit]");
    settings
}

#[test]
fn help_of_every_command() {
    let sandbox = Sandbox::new();
    for command in [
        "",
        "start",
        "next",
        "run",
        "status",
        "list",
        "weight",
        "abort",
        "cancel",
        "settings",
        "gate",
        "log",
        "demo",
        "explain",
        "completions",
        "man",
    ] {
        let args: Vec<&str> = [command, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let help = run(&sandbox, &args, &[("COLUMNS", "100")]);
        if !command.is_empty() {
            assert!(
                help.contains("Example"),
                "`canary {command} --help` has no example"
            );
        }
        let name = if command.is_empty() { "help" } else { command };
        settings().bind(|| insta::assert_snapshot!(format!("help-{name}"), help));
    }
}

/// The command lists of `canary --help` and `canary journal --help`, at 80 and 100 columns:
/// one line per subcommand, holding its whole summary (a summary that wraps leaves the rest of
/// its sentence on a line of its own).
#[test]
fn every_summary_of_a_command_list_fits_on_its_line() {
    use clap::CommandFactory;
    let sandbox = Sandbox::new();
    let cli = canary::cli::Cli::command();
    for (args, command) in [
        (&[][..], &cli),
        (&["journal"][..], cli.find_subcommand("journal").unwrap()),
    ] {
        let mut expected: Vec<(String, String)> = command
            .get_subcommands()
            .map(|c| (c.get_name().to_string(), c.get_about().unwrap().to_string()))
            .collect();
        expected.push((
            "help".into(),
            "Print this message or the help of the given subcommand(s)".into(),
        ));
        for width in ["80", "100"] {
            let help = run(
                &sandbox,
                &[args, &["--help"]].concat(),
                &[("COLUMNS", width)],
            );
            let list = help
                .split_once("Commands:\n")
                .and_then(|(_, rest)| rest.split("\n\n").next())
                .unwrap_or_else(|| panic!("no command list:\n{help}"));
            let listed: Vec<(String, String)> = list
                .lines()
                .map(|line| {
                    let (name, summary) = line.trim_start().split_once(' ').unwrap_or((line, ""));
                    (name.to_string(), summary.trim().to_string())
                })
                .collect();
            assert_eq!(
                listed,
                expected,
                "`canary {}--help` at {width} columns:\n{list}",
                args.iter().map(|a| format!("{a} ")).collect::<String>()
            );
        }
    }
}

#[test]
fn status_list_and_explain_in_the_middle_of_a_ramp() {
    let sandbox = mid_ramp();
    settings().bind(|| {
        insta::assert_snapshot!("status", run(&sandbox, &["status"], &[]));
        insta::assert_snapshot!(
            "status-narrow",
            run(&sandbox, &["status"], &[("COLUMNS", "40")])
        );
        insta::assert_snapshot!("list", run(&sandbox, &["list"], &[]));
        insta::assert_snapshot!(
            "list-narrow",
            run(&sandbox, &["list"], &[("COLUMNS", "50")])
        );
        insta::assert_snapshot!("explain", run(&sandbox, &["explain"], &[]));
        insta::assert_snapshot!("explain-ramp", run(&sandbox, &["explain", "ramp"], &[]));
    });
}

/// A coexistence release at production's 5%: the method and switch in `status`, the method in
/// `list`, and the phase map in coexistence's words.
#[test]
fn status_list_and_explain_of_a_coexistence_release_in_its_ramp() {
    let sandbox = Sandbox::new();
    sandbox.start_coexistence();
    sandbox.walk_to("ramp");
    while sandbox.weights()[1].1 != Some(5) {
        sandbox.next();
    }
    settings().bind(|| {
        insta::assert_snapshot!("status-coexistence", run(&sandbox, &["status"], &[]));
        insta::assert_snapshot!("list-coexistence", run(&sandbox, &["list"], &[]));
        insta::assert_snapshot!("explain-coexistence", run(&sandbox, &["explain"], &[]));
        insta::assert_snapshot!(
            "explain-deploy-v2-coexistence",
            run(&sandbox, &["explain", "deploy-v2"], &[])
        );
    });
}

#[test]
fn colour_only_when_wanted_and_never_with_no_color() {
    let sandbox = mid_ramp();
    let ansi = "\x1b[";
    let forced = run(
        &sandbox,
        &["status"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")],
    );
    assert!(forced.contains(ansi), "no colour when forced:\n{forced}");
    let piped = run(&sandbox, &["status"], &[("NO_COLOR", "")]);
    assert!(!piped.contains(ansi), "colour on a pipe:\n{piped}");
    let no_color = run(
        &sandbox,
        &["status"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert!(
        !no_color.contains(ansi),
        "colour despite NO_COLOR:\n{no_color}"
    );
    // Colour changes nothing else.
    let strip = regex::Regex::new(r"\x1b\[[0-9;]*m").unwrap();
    assert_eq!(strip.replace_all(&forced, ""), no_color);
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_model() {
    let sandbox = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = run(&sandbox, &["completions", shell], &[]);
        for command in ["start", "next", "weight", "abort", "explain"] {
            assert!(
                script.contains(command),
                "{shell} completion lacks {command}"
            );
        }
    }
    let man = run(&sandbox, &["man"], &[]);
    assert!(
        man.starts_with(".ie"),
        "not roff: {}",
        &man[..40.min(man.len())]
    );
    assert!(man.contains(".TH canary 1"), "{man}");
}

#[test]
fn help_and_the_man_page_say_what_exit_75_covers() {
    let sandbox = Sandbox::new();
    let help = run(&sandbox, &["--help"], &[]);
    // roff escapes the apostrophe and may break lines anywhere a space is.
    let man = run(&sandbox, &["man"], &[]).replace("\\*(Aq", "'");
    let man = man.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for page in [&help, &man] {
        for cause in [
            "75 busy",
            "another canary holds the release",
            "a file changed under canary's plan",
            "holds the repository's index (index.lock)",
            "`canary check` finds an error where the step would write, deploy or start",
        ] {
            assert!(page.contains(cause), "{cause:?} not in:\n{page}");
        }
    }
}
