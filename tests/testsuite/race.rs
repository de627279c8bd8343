//! Races: several `canary` processes on the same release at once. The per-release lock lets
//! one work and turns the others away with exit 75; no step is taken twice, the journal stays
//! intact, and the repository ends as a serial walk leaves it.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::process::Stdio;

use crate::common::{Files, Output, SERVICE, Sandbox, changed_paths};

const MAX_ROUNDS: usize = 300;
const BUSY: i32 = 75;
const REFUSED: i32 = 3;

/// A sandbox (a fresh repository holding the seed example) with a release started in it.
struct Release(Sandbox);

impl Deref for Release {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.0
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

impl Release {
    /// A copy of the seed example, committed to a fresh git repository, and a release started.
    fn start() -> Release {
        let sandbox = Sandbox::new();
        sandbox.start();
        Release(sandbox)
    }

    /// Start every command at once, then wait for all of them.
    fn race(&self, commands: &[Vec<String>]) -> Vec<(Vec<String>, Output)> {
        let children: Vec<_> = commands
            .iter()
            .map(|args| {
                self.canary_command(&strs(args))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        commands
            .iter()
            .cloned()
            .zip(children)
            .map(|(args, child)| {
                let out = Output::new(&strs(&args), child.wait_with_output().unwrap());
                (args, out)
            })
            .collect()
    }

    fn done(&self) -> bool {
        self.status()["done"] == true
    }

    fn count(&self, kind: &str) -> usize {
        self.log().iter().filter(|e| e["kind"] == kind).count()
    }

    /// The subjects of canary's commits, oldest first.
    fn commits(&self) -> Vec<String> {
        self.git(&["log", "--reverse", "--format=%s"])
            .lines()
            .filter(|s| s.starts_with("canary("))
            .map(str::to_string)
            .collect()
    }

    /// The journal passes SQLite's checks and holds the one release.
    fn assert_journal_holds_one_intact_release(&self) {
        self.assert_journal_intact();
        let releases: i64 = self
            .journal_db()
            .query_row("SELECT count(*) FROM releases", [], |row| row.get(0))
            .unwrap();
        assert_eq!(releases, 1, "one release in the journal");
    }

    fn assert_like(&self, serial: &Files, context: &str) {
        self.assert_no_temporary_files(context);
        let differ = changed_paths(&self.files(), serial);
        assert!(
            differ.is_empty(),
            "{context}: the repository differs from the serial walk in {differ:?}"
        );
    }

    /// `next` one at a time until done; how many it took.
    fn finish(&self) -> usize {
        for taken in 0..MAX_ROUNDS {
            if self.done() {
                return taken;
            }
            self.next();
        }
        panic!("the release never finished");
    }
}

/// The serial walk everything is compared with, and how many `next`s it took.
fn serial_walk() -> (Release, usize) {
    let release = Release::start();
    let steps = release.finish();
    release.assert_journal_holds_one_intact_release();
    (release, steps)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn eight_nexts_at_once_take_every_step_exactly_once() {
    let (serial, serial_steps) = serial_walk();
    for race in 1..=3 {
        eight_nexts_at_once(&serial, serial_steps, race);
    }
}

fn eight_nexts_at_once(serial: &Release, serial_steps: usize, race: usize) {
    let release = Release::start();
    let next = args(&["next", SERVICE, "--yes"]);
    let (mut rounds, mut busy, mut ok) = (0, 0, 0);
    while !release.done() {
        rounds += 1;
        assert!(rounds <= MAX_ROUNDS, "the release never finished");
        for (_, out) in release.race(&vec![next.clone(); 8]) {
            match out.code {
                0 => ok += 1,
                BUSY => {
                    busy += 1;
                    assert!(
                        out.stderr.contains("another canary process"),
                        "round {rounds}: {out}"
                    );
                }
                _ => panic!("round {rounds}: a racing next failed: {out}"),
            }
        }
    }
    eprintln!("race {race}: {rounds} rounds of 8 racing nexts: {ok} exited 0, {busy} were busy");
    // The processes did race: most found the release locked.
    assert!(busy > 0, "no process ever found the release busy");
    // Each step was taken once: a `next` that got the lock after the last step says done.
    assert!(
        ok >= serial_steps,
        "{ok} successful nexts, {serial_steps} steps"
    );
    for kind in [
        "step-done",
        "step-started",
        "files-written",
        "deploy-confirmed",
        "committed",
        "finished",
    ] {
        assert_eq!(release.count(kind), serial.count(kind), "{kind} events");
    }
    assert_eq!(release.commits(), serial.commits(), "canary's commits");
    release.assert_like(&serial.files(), "after the race");
    release.assert_journal_holds_one_intact_release();
}

#[test]
fn weight_abort_and_start_race_next_during_deploy_v2_and_ramp() {
    let (serial, _) = serial_walk();
    let release = Release::start();
    release.walk_to("deploy-v2");
    let mut exits: BTreeMap<(String, i32), usize> = BTreeMap::new();
    let count = |exits: &BTreeMap<(String, i32), usize>, cmd: &str, code: i32| {
        exits.get(&(cmd.to_string(), code)).copied().unwrap_or(0)
    };
    let mut rounds = 0;
    let mut last_round = Vec::new();
    while matches!(release.phase().as_str(), "deploy-v2" | "ramp") {
        rounds += 1;
        assert!(
            rounds <= MAX_ROUNDS,
            "the release never left the ramp; {exits:?}; its status: {}; the last round:\n{}",
            release.status(),
            last_round.join("\n")
        );
        if rounds == 25 {
            // A staging weight below 100% that won a round of deploy-v2 holds the release
            // there (v2 counts as tested on staging only at 100%) until someone puts it back,
            // as the refusal says; the operator who tested does so once the window is over.
            let back = release.canary(&["weight", SERVICE, "staging", "100", "--yes"]);
            assert!(matches!(back.code, 0 | REFUSED), "{back}");
            *exits.entry(("weight".into(), back.code)).or_default() += 1;
        }
        let next = args(&["next", SERVICE, "--yes"]);
        let mut commands = vec![next.clone(), next.clone(), next];
        commands.push(release.start_args());
        // The out-of-band commands only early on, so that the release still gets through.
        if rounds <= 24 {
            let percent = ["25", "50", "75"][rounds % 3];
            commands.push(args(&["weight", SERVICE, "staging", percent, "--yes"]));
            if rounds % 4 == 0 {
                // Refused during deploy-v2 and, in the ramp, while a lower weight is still to
                // observe; otherwise it moves the ramp to the next weight, after its observation.
                commands.push(args(&["weight", SERVICE, "production", "30", "--yes"]));
            }
            // Two aborts at most, each sending the release back to deploy-v2.
            if rounds % 3 == 0 && count(&exits, "abort", 0) < 2 {
                commands.push(args(&["abort", SERVICE, "--yes"]));
            }
        }
        last_round.clear();
        for (args, out) in release.race(&commands) {
            assert!(
                matches!(out.code, 0 | REFUSED | BUSY),
                "round {rounds}: {args:?}: {out}"
            );
            *exits.entry((args[0].clone(), out.code)).or_default() += 1;
            last_round.push(format!("{args:?}: {out}"));
        }
    }
    eprintln!("{rounds} racing rounds, exits by command: {exits:?}");
    release.finish();
    let exit = |cmd: &str, code: i32| count(&exits, cmd, code);
    assert!(
        exits.keys().any(|(_, code)| *code == BUSY),
        "nothing ever found the release busy"
    );
    assert_eq!(exit("start", 0), 0, "a second release was opened");
    assert!(exit("start", REFUSED) > 0, "start was never refused");
    // What the journal recorded agrees with the exit codes.
    assert_eq!(release.count("weight-changed"), exit("weight", 0));
    assert_eq!(release.count("aborted"), exit("abort", 0));
    assert_eq!(release.count("opened"), 1);
    assert_eq!(release.count("finished"), 1);
    let status = release.status();
    assert_eq!(status["done"], true, "{status}");
    release.assert_like(&serial.files(), "after the race");
    release.assert_journal_holds_one_intact_release();
}
