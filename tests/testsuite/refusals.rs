//! Out-of-order commands at every phase of a release: where the workflow forbids them, canary
//! exits 3, names the step that must come first and the command that takes it, and changes
//! neither the repository nor the journal. One walk, stopped at the start of each phase; then
//! one stopped at every position, where each command that a refusal names is run and must be
//! accepted.

use crate::common;

use crate::common::{PHASES, SERVICE, Sandbox, assert_unchanged};

/// The out-of-order commands tried at every phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    WeightProduction,
    WeightStaging,
    Abort,
    Start,
}

const CMDS: [Cmd; 4] = [
    Cmd::WeightProduction,
    Cmd::WeightStaging,
    Cmd::Abort,
    Cmd::Start,
];

/// What the workflow says of `cmd` at the start of `phase`.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    /// Allowed here: not tried (it would move the release).
    Allowed,
    /// Refused: exit 3, with `first:` and `run:` lines.
    Refused,
    /// After done nothing is in flight: exit 2, "no release ... in flight".
    NotInFlight,
}

fn expect(phase: &str, cmd: Cmd) -> Expect {
    let in_flight = phase != "done";
    match cmd {
        // A new release may start once the last one is done.
        Cmd::Start if !in_flight => Expect::Allowed,
        Cmd::Start => Expect::Refused,
        _ if !in_flight => Expect::NotInFlight,
        Cmd::WeightStaging | Cmd::Abort if matches!(phase, "deploy-v2" | "ramp") => Expect::Allowed,
        Cmd::WeightProduction if phase == "ramp" => Expect::Allowed,
        _ => Expect::Refused,
    }
}

fn args(sandbox: &Sandbox, cmd: Cmd) -> Vec<String> {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    match cmd {
        Cmd::WeightProduction => owned(&["weight", SERVICE, "production", "50", "--yes"]),
        Cmd::WeightStaging => owned(&["weight", SERVICE, "staging", "50", "--yes"]),
        Cmd::Abort => owned(&["abort", SERVICE, "--yes"]),
        Cmd::Start => sandbox.start_args(),
    }
}

#[test]
fn out_of_order_commands_are_refused_at_every_phase_and_change_nothing() {
    let sandbox = Sandbox::new();
    sandbox.start();
    refused_at_every_phase(&sandbox);
}

/// Coexistence refuses the same commands at the same phases: its deploy-v2 starts with
/// canary's own edit of web's switch, and production's weight still waits for the ramp.
#[test]
fn out_of_order_commands_are_refused_at_every_phase_in_coexistence_too() {
    let sandbox = Sandbox::new();
    sandbox.start_coexistence();
    refused_at_every_phase(&sandbox);
}

fn refused_at_every_phase(sandbox: &Sandbox) {
    let mut refused = 0;
    let mut not_in_flight = 0;
    let mut allowed = Vec::new();
    for phase in PHASES {
        sandbox.walk_to(phase);
        let status = sandbox.status();
        let step = status["step"].as_str().unwrap().to_string();
        for cmd in CMDS {
            let case = format!("{cmd:?} at the start of {phase}");
            let expected = expect(phase, cmd);
            if expected == Expect::Allowed {
                allowed.push(case);
                continue;
            }
            let args = args(sandbox, cmd);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let before = sandbox.snapshot();
            let out = sandbox.canary(&args);
            assert_unchanged(&before, &sandbox.snapshot(), &case);
            let lines: Vec<&str> = out.stderr.lines().collect();
            match expected {
                Expect::Refused => {
                    refused += 1;
                    assert_eq!(out.code, 3, "{case}: not refused:\n{out}");
                    assert!(
                        lines
                            .first()
                            .is_some_and(|l| l.starts_with("error: refused: ")),
                        "{case}: no refusal line:\n{out}"
                    );
                    let first = lines.iter().find_map(|l| l.strip_prefix("  first: "));
                    assert!(first.is_some(), "{case}: names no first step:\n{out}");
                    if cmd != Cmd::Start {
                        // The step that comes first is the one `status` names.
                        assert_eq!(first, Some(step.as_str()), "{case}: wrong first step");
                    }
                    assert!(
                        lines.contains(
                            &format!("  run:   {}", sandbox.hint("next my-service")).as_str()
                        ),
                        "{case}: names no command to run:\n{out}"
                    );
                    assert_eq!(lines.len(), 3, "{case}: stderr is not three lines:\n{out}");
                    let reason = lines[0];
                    let words = match cmd {
                        Cmd::WeightProduction => "production's weights may change only during ramp",
                        Cmd::WeightStaging => "staging's weights may change only during deploy-v2",
                        // Its routes are not written yet at the start of route-to-v1.
                        Cmd::Abort if phase == "route-to-v1" => "abort has nothing to undo",
                        Cmd::Abort => "abort routes traffic back to where it was known good",
                        Cmd::Start => "a release of my-service is already in flight",
                    };
                    assert!(reason.contains(words), "{case}: unexpected reason:\n{out}");
                    if cmd != Cmd::Start {
                        assert!(
                            reason.contains(&format!("the release is in {phase}")),
                            "{case}: does not say where the release is:\n{out}"
                        );
                    }
                }
                Expect::NotInFlight => {
                    not_in_flight += 1;
                    assert_eq!(out.code, 2, "{case}:\n{out}");
                    assert!(
                        out.stderr
                            .starts_with("error: no release of my-service is in flight"),
                        "{case}:\n{out}"
                    );
                }
                Expect::Allowed => unreachable!(),
            }
            assert_eq!(sandbox.phase(), phase, "{case}: the release moved");
        }
    }
    // 6 phases refuse all four; deploy-v2 refuses production's weight and start; ramp, start.
    assert_eq!(refused, 6 * 4 + 2 + 1);
    assert_eq!(not_in_flight, 3);
    assert_eq!(
        allowed,
        [
            "WeightStaging at the start of deploy-v2",
            "Abort at the start of deploy-v2",
            "WeightProduction at the start of ramp",
            "WeightStaging at the start of ramp",
            "Abort at the start of ramp",
            "Start at the start of done",
        ]
    );
}

/// The allowed cases, tried for real on a copy of the walk, so that the table above is not
/// merely skipping commands that would be refused too.
#[test]
fn what_the_table_allows_is_allowed() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    for cmd in [Cmd::WeightStaging, Cmd::Abort] {
        let args = args(&sandbox, cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sandbox.canary(&args);
        assert_eq!(out.code, 0, "{cmd:?} at deploy-v2:\n{out}");
    }
    sandbox.walk_to("ramp");
    for cmd in [Cmd::WeightProduction, Cmd::WeightStaging, Cmd::Abort] {
        assert_eq!(sandbox.phase(), "ramp");
        let args = args(&sandbox, cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sandbox.canary(&args);
        assert_eq!(out.code, 0, "{cmd:?} at ramp:\n{out}");
    }
    sandbox.walk_to("done");
    sandbox.start();
    assert_eq!(sandbox.phase(), "deploy-v1", "a new release after done");
}

/// What `canary status` says of the release: its phase, its next step, production's v2 weight.
struct At {
    phase: String,
    step: String,
    production: Option<u64>,
}

fn at(sandbox: &Sandbox) -> At {
    let status = sandbox.status();
    At {
        phase: status["phase"].as_str().unwrap().to_string(),
        step: status["step"].as_str().unwrap().to_string(),
        production: status["environments"][1]["v2_weight"].as_u64(),
    }
}

/// Whether the workflow allows `cmd` here (then it is not tried: it would move the release off
/// the plain walk). Production is asked for 100%, which the ramp allows only where no lower
/// weight is still to deploy or observe.
fn allowed_here(at: &At, cmd: Cmd) -> bool {
    let ramp = at.phase == "ramp";
    match cmd {
        Cmd::Start => false,
        Cmd::WeightStaging => ramp || at.phase == "deploy-v2",
        Cmd::Abort => {
            ramp || at.phase == "deploy-v2" || at.step.starts_with("route-to-v1: deploy to ")
        }
        Cmd::WeightProduction => {
            let owes = at.step == "ramp: deploy to production"
                || at.step.starts_with("ramp: deploy to production (")
                || at.step.starts_with("ramp: observe v2 at ");
            ramp && !(owes && at.production != Some(100))
        }
    }
}

fn args_of(sandbox: &Sandbox, cmd: Cmd) -> Vec<String> {
    match cmd {
        Cmd::WeightProduction => ["weight", SERVICE, "production", "100", "--yes"]
            .map(String::from)
            .to_vec(),
        _ => args(sandbox, cmd),
    }
}

/// The `first:` and `run:` lines of a refusal.
fn hints(out: &common::Output) -> (Option<String>, Option<String>) {
    let line = |prefix: &str| {
        out.stderr
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
    };
    (line("  first: "), line("  run:   "))
}

/// Every refusal at every position of a walk (and beside an interrupted step) names a command
/// that the tool then accepts: run as printed (with `--yes`, as nobody is at a terminal), it
/// exits 0 and takes the step the refusal named first.
#[test]
fn every_hint_of_every_refusal_is_accepted_where_it_is_given() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let (mut positions, mut hints_run) = (0, 0);
    let mut interrupted = false;
    for _ in 0..common::MAX_STEPS {
        let here = at(&sandbox);
        if sandbox.status()["done"] == true {
            break;
        }
        positions += 1;
        // Once, a step cut short after its first file: refusals beside it name `next` too.
        let cut_short = !interrupted && here.step == "ramp: send 5% of production traffic to v2";
        if cut_short {
            interrupted = true;
            let mut cmd = sandbox.canary_command(&["next", SERVICE, "--yes"]);
            cmd.env("CANARY_FAILPOINT", "after-first-file-written")
                .stdin(std::process::Stdio::null());
            let out = cmd.output().unwrap();
            assert!(!out.status.success(), "the failpoint did not fire");
            assert_eq!(sandbox.status()["interrupted"], true);
            // The first process to open the journal after the kill folds the write-ahead log
            // the killed one left into it: its bytes change, not its rows.
            sandbox.canary(&["abort", SERVICE, "--yes"]);
        }
        let mut runs = Vec::new();
        for cmd in CMDS {
            if !cut_short && allowed_here(&here, cmd) {
                continue;
            }
            let case = format!("{cmd:?} at {:?}", here.step);
            let args = args_of(&sandbox, cmd);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let before = sandbox.snapshot();
            let out = sandbox.canary(&args);
            assert_eq!(out.code, 3, "{case}: not refused:\n{out}");
            assert_unchanged(&before, &sandbox.snapshot(), &case);
            let (first, run) = hints(&out);
            let first = first.unwrap_or_else(|| panic!("{case}: no first step:\n{out}"));
            if cmd != Cmd::Start && !cut_short {
                assert_eq!(first, here.step, "{case}: first is not the next step");
            }
            runs.push(run.unwrap_or_else(|| panic!("{case}: no command to run:\n{out}")));
        }
        runs.sort();
        runs.dedup();
        // Every hint here is the same command, which is the step the walk takes.
        let run = match runs.as_slice() {
            [] => sandbox.hint(&format!("next {SERVICE}")),
            [run] => run.clone(),
            more => panic!("at {:?}, several commands named: {more:?}", here.step),
        };
        let words: Vec<&str> = run.split_whitespace().collect();
        assert_eq!(words[0], "canary", "{run}");
        // As printed: the hint names the journal, which is not the default one.
        let mut hinted = words[1..].to_vec();
        hinted.push("--yes");
        let events = sandbox.log().len();
        let out = sandbox.canary_raw(&hinted);
        assert_eq!(
            out.code, 0,
            "`{run}` at {:?} is not accepted:\n{out}",
            here.step
        );
        assert!(
            sandbox.log().len() > events,
            "`{run}` took no step at {:?}",
            here.step
        );
        assert!(
            cut_short || at(&sandbox).step != here.step,
            "`{run}` did not take {:?}",
            here.step
        );
        hints_run += usize::from(!runs.is_empty());
    }
    assert_eq!(sandbox.status()["done"], true, "the walk never ended");
    assert!(interrupted, "no step was cut short");
    // The plan's 46 steps (staging sent to 100% v2 in deploy-v2 is one more), one of them cut
    // short and finished by the hint.
    assert_eq!(positions, 46);
    assert_eq!(hints_run, positions);
}

/// A hand edit that moved a weight (CANARY-E022) names the `canary weight` that puts it back
/// only where the workflow accepts it: run, it exits 0 and the finding is gone.
#[test]
fn the_weight_a_finding_names_to_put_back_is_accepted() {
    let sandbox = Sandbox::new();
    sandbox.start();
    for (phase, env, named) in [
        ("deploy-v2", "staging", true),
        // Production's weight moves only in the ramp: only `git checkout` is named.
        ("deploy-v2", "production", false),
        ("ramp", "staging", true),
        ("ramp", "production", true),
    ] {
        sandbox.walk_to(phase);
        let case = format!("{env} moved by hand in {phase}");
        let path = format!("gap/{env}/gap_patch_canary_virtual_service.yaml");
        let text = std::fs::read_to_string(sandbox.repo.join(&path)).unwrap();
        let moved = text
            .replace("weight: 100\n", "weight: 60\n")
            .replace("weight: 0\n", "weight: 40\n");
        assert_ne!(moved, text, "{case}");
        // A colleague's commit, say.
        sandbox.write(&path, &moved);
        sandbox.git(&["commit", "-qam", "by hand"]);
        let out = sandbox.canary(&["check", SERVICE]);
        let finding = out
            .stdout
            .lines()
            .find(|l| l.starts_with("error[CANARY-E022]"))
            .unwrap_or_else(|| panic!("{case}: no CANARY-E022:\n{out}"))
            .to_string();
        let hint = finding
            .split_once(" or `")
            .map(|(_, rest)| rest.trim_end_matches('`').to_string());
        assert_eq!(hint.is_some(), named, "{case}: {finding}");
        match hint {
            Some(hint) => {
                // The colleague's commit reaches the remote, as theirs would; canary pushes
                // only its own.
                sandbox.git(&["push", "-q"]);
                let mut args: Vec<&str> = hint.split_whitespace().skip(1).collect();
                args.push("--yes");
                let run = sandbox.canary(&args);
                assert_eq!(run.code, 0, "{case}: `{hint}` is not accepted:\n{run}");
                sandbox.canary(&["check", SERVICE]).ok();
            }
            None => {
                sandbox.git(&["reset", "-q", "--hard", "HEAD~1"]);
            }
        }
    }
}
