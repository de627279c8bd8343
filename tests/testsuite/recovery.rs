//! Crash recovery: a `canary` process aborted at each failpoint of each step that writes files
//! (and of `weight` and `abort`) leaves a release that plain `canary next` finishes, with the
//! repository ending byte for byte where an uninterrupted walk ends, and no edit applied twice.

use crate::common;

use std::ops::Deref;
use std::sync::OnceLock;

use crate::common::{EDIT_STEPS, Files, Output, SERVICE, Sandbox, changed_paths};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// A release in a scratch repository and journal.

/// A sandbox (a fresh repository holding the seed example) with a release started in it.
struct Release(Sandbox);

impl Deref for Release {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.0
    }
}

impl Release {
    /// A copy of the seed example, committed to a fresh git repository, and a release started.
    fn start() -> Release {
        let sandbox = Sandbox::new();
        sandbox.start();
        Release(sandbox)
    }

    /// Run canary with `CANARY_FAILPOINT` set to `failpoint`.
    fn run_to_failpoint(&self, args: &[&str], failpoint: &str) -> Output {
        let out = self
            .canary_command(args)
            .env("CANARY_FAILPOINT", failpoint)
            .output()
            .expect("running canary");
        Output::new(args, out)
    }

    /// Where the release stands, straight from the journal (cheaper than spawning `status`).
    fn point(&self) -> Point {
        self.journal_db()
            .query_row(
                "SELECT phase, position, step_in_progress IS NOT NULL, finished_at IS NOT NULL
                 FROM releases WHERE service = ?1 ORDER BY id DESC LIMIT 1",
                [SERVICE],
                |row| {
                    Ok(Point {
                        phase: row.get(0)?,
                        position: row.get(1)?,
                        in_progress: row.get(2)?,
                        finished: row.get(3)?,
                    })
                },
            )
            .unwrap()
    }

    fn event_count(&self) -> i64 {
        self.journal_db()
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .unwrap()
    }

    fn write_file(&self, rel: &str, content: Option<&[u8]>) {
        let path = self.repo.join(rel);
        match content {
            Some(bytes) => std::fs::write(path, bytes).unwrap(),
            None => std::fs::remove_file(path).unwrap(),
        }
    }
}

fn assert_same_files(actual: &Files, expected: &Files, context: &str) {
    let differ = changed_paths(actual, expected);
    assert!(
        differ.is_empty(),
        "{context}: the repository differs from the reference walk in {differ:?}"
    );
}

/// What the journal says about a walk.
#[derive(Debug, Default)]
struct Summary {
    /// `step-done` events as (phase, step).
    done: Vec<(String, String)>,
    /// How many `files-written` events.
    written: usize,
    /// How many `step-started` events.
    started: usize,
}

fn journal_summary(log: &[Value]) -> Summary {
    let count = |kind: &str| log.iter().filter(|e| e["kind"] == kind).count();
    let done = log
        .iter()
        .filter(|e| e["kind"] == "step-done")
        .map(|e| {
            (
                e["phase"].as_str().unwrap().to_string(),
                e["detail"]["step"].to_string(),
            )
        })
        .collect();
    Summary {
        done,
        written: count("files-written"),
        started: count("step-started"),
    }
}

// ---------------------------------------------------------------------------------------------
// Walks: a release driven by `next`, with at most one `weight` or `abort` put in.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Point {
    phase: String,
    position: String,
    in_progress: bool,
    finished: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Next,
    Weight,
    Abort,
}

impl Cmd {
    fn args(self) -> &'static [&'static str] {
        match self {
            Cmd::Next => &["next", SERVICE, "--yes"],
            Cmd::Weight => &["weight", SERVICE, "staging", "50", "--yes"],
            Cmd::Abort => &["abort", SERVICE, "--yes"],
        }
    }
}

/// Which command the i-th invocation of a walk runs: `next`, but for one put in at `at`.
#[derive(Debug, Clone, Copy)]
struct Script {
    extra: Option<(usize, Cmd)>,
}

impl Script {
    fn cmd_at(self, i: usize) -> Cmd {
        match self.extra {
            Some((at, cmd)) if at == i => cmd,
            _ => Cmd::Next,
        }
    }
}

/// An uninterrupted walk: the journal's state before each invocation (the last one finished),
/// the files before each invocation and at the end, and what the journal recorded.
struct Walk {
    script: Script,
    points: Vec<Point>,
    /// `snaps[i]` before invocation `i`; `snaps[points.len() - 1]` the final files.
    snaps: Vec<Files>,
    /// `canary status`'s step before each invocation.
    steps: Vec<String>,
    summary: Summary,
}

impl Walk {
    fn phases(&self) -> Vec<String> {
        self.points.iter().map(|p| p.phase.clone()).collect()
    }

    fn index_of(&self, step: &str) -> usize {
        self.steps
            .iter()
            .position(|s| s == step)
            .unwrap_or_else(|| panic!("no step {step:?} in {:#?}", self.steps))
    }
}

const MAX_INVOCATIONS: usize = 200;

fn reference_walk(script: Script) -> Walk {
    let release = Release::start();
    let mut walk = Walk {
        script,
        points: Vec::new(),
        snaps: Vec::new(),
        steps: Vec::new(),
        summary: Summary::default(),
    };
    for i in 0.. {
        assert!(i < MAX_INVOCATIONS, "the release never finished");
        let point = release.point();
        assert!(
            !point.in_progress,
            "uninterrupted walk left a step half done"
        );
        walk.snaps.push(release.files());
        let finished = point.finished;
        walk.points.push(point);
        if finished {
            break;
        }
        walk.steps
            .push(release.status()["step"].as_str().unwrap().to_string());
        release.canary(script.cmd_at(i).args()).ok();
    }
    release.assert_no_temporary_files("reference walk");
    release.assert_journal_intact();
    walk.summary = journal_summary(&release.log());
    walk
}

struct References {
    plain: Walk,
    weight: Walk,
    abort: Walk,
}

/// The uninterrupted walks, computed once per test binary.
fn references() -> &'static References {
    static REFS: OnceLock<References> = OnceLock::new();
    REFS.get_or_init(|| {
        let plain = reference_walk(Script { extra: None });
        // `weight` on staging while v2 is tested there; `abort` with production at 10%.
        let weight_at = plain.index_of("deploy-v2: confirm that v2 was tested on staging");
        let abort_at = plain.index_of("ramp: observe v2 at 10% in production");
        let weight = reference_walk(Script {
            extra: Some((weight_at, Cmd::Weight)),
        });
        let abort = reference_walk(Script {
            extra: Some((abort_at, Cmd::Abort)),
        });
        References {
            plain,
            weight,
            abort,
        }
    })
}

/// What each crash scenario aborts: (walk, invocation index, name).
fn targets(refs: &References) -> Vec<(&Walk, usize, String)> {
    let plain = &refs.plain;
    let mut targets: Vec<(&Walk, usize, String)> = (0..plain.steps.len())
        .filter(|&i| plain.snaps[i] != plain.snaps[i + 1])
        .map(|i| (plain, i, plain.steps[i].clone()))
        .collect();
    let names: Vec<&str> = targets.iter().map(|t| t.2.as_str()).collect();
    assert_eq!(names, EDIT_STEPS, "the steps that write files");
    for (walk, name) in [(&refs.weight, "weight staging 50"), (&refs.abort, "abort")] {
        let at = walk.script.extra.unwrap().0;
        assert_ne!(walk.snaps[at], walk.snaps[at + 1], "{name} writes files");
        targets.push((walk, at, name.to_string()));
    }
    targets
}

/// Run invocation `i` of the walk as the reference did, and check it ends where it did.
fn step_like_reference(release: &Release, walk: &Walk, i: usize, context: &str) {
    release.canary(walk.script.cmd_at(i).args()).ok();
    assert_same_files(
        &release.files(),
        &walk.snaps[i + 1],
        &format!("{context}, after invocation {i}"),
    );
}

/// Walk a fresh release to invocation `target`, checking every state against the reference.
fn walk_to(walk: &Walk, target: usize, phases: &mut Vec<String>, context: &str) -> Release {
    let release = Release::start();
    for i in 0..target {
        let point = release.point();
        assert_eq!(point, walk.points[i], "{context}: before invocation {i}");
        phases.push(point.phase);
        step_like_reference(&release, walk, i, context);
    }
    let point = release.point();
    assert_eq!(point, walk.points[target], "{context}: at the target");
    phases.push(point.phase);
    release
}

/// Run the target invocation with the failpoint set; it must die of SIGABRT.
fn crash(release: &Release, args: &[&str], failpoint: &str, context: &str) {
    let out = release.run_to_failpoint(args, failpoint);
    assert_eq!(
        out.signal,
        Some(libc::SIGABRT),
        "{context}: expected an abort at the failpoint, got {out}"
    );
    assert!(
        out.stderr.contains(&format!("failpoint {failpoint}")),
        "{context}: {out}"
    );
}

/// `next` until done, checking each state and the files after each step against the reference.
fn finish_like_reference(
    release: &Release,
    walk: &Walk,
    from: usize,
    phases: &mut Vec<String>,
    context: &str,
) {
    for i in from.. {
        assert!(i < MAX_INVOCATIONS, "{context}: the release never finished");
        let point = release.point();
        assert_eq!(point, walk.points[i], "{context}: before invocation {i}");
        phases.push(point.phase);
        if walk.points[i].finished {
            break;
        }
        step_like_reference(release, walk, i, context);
    }
}

/// The checks every walk ends with.
fn assert_ends_like_reference(release: &Release, walk: &Walk, phases: &[String], context: &str) {
    assert_same_files(&release.files(), walk.snaps.last().unwrap(), context);
    assert_eq!(phases, walk.phases(), "{context}: the phases");
    let status = release.status();
    assert_eq!(status["done"], true, "{context}: {status}");
    assert_eq!(status["phase"], "done", "{context}: {status}");
    let summary = journal_summary(&release.log());
    assert_eq!(
        summary.done, walk.summary.done,
        "{context}: the journal's step-done events"
    );
    assert_eq!(
        summary.written, walk.summary.written,
        "{context}: the journal's files-written events (one per step that writes)"
    );
    assert_eq!(
        summary.started, walk.summary.started,
        "{context}: the journal's step-started events (no step started twice)"
    );
    release.assert_no_temporary_files(context);
    release.assert_journal_intact();
}

/// Abort the target invocation at `failpoint`, resume with `next` until done, and compare with
/// the reference at every step.
fn crash_and_resume(walk: &Walk, target: usize, failpoint: &str, name: &str) {
    let context = format!("{name} aborted at {failpoint}");
    let context = context.as_str();
    let mut phases = Vec::new();
    let release = walk_to(walk, target, &mut phases, context);
    let before = release.files();
    let point = release.point();
    let events = release.event_count();
    crash(
        &release,
        walk.script.cmd_at(target).args(),
        failpoint,
        context,
    );
    release.assert_no_temporary_files(context);
    let after = release.files();
    let written = &walk.snaps[target + 1];
    let crashed = release.point();
    if matches!(failpoint, "after-step-done" | "after-commit") {
        // The step is recorded; only the commit did not happen, or happened and the journal
        // does not know it (the next push recognises it by its trailers and bytes).
        assert!(!crashed.in_progress, "{context}: {crashed:?}");
        assert_eq!(crashed, walk.points[target + 1], "{context}");
        assert_same_files(&after, written, context);
        finish_like_reference(&release, walk, target + 1, &mut phases, context);
    } else {
        assert!(crashed.in_progress, "{context}: no step in progress");
        assert_eq!(
            crashed.position, point.position,
            "{context}: the position moved"
        );
        match failpoint {
            "after-step-started" => assert_same_files(&after, &before, context),
            "after-first-file-written" => {
                // Exactly one planned file is on disk, as the finished step has it.
                let differ = changed_paths(&before, &after);
                assert_eq!(differ.len(), 1, "{context}: files written {differ:?}");
                assert_eq!(after.get(&differ[0]), written.get(&differ[0]), "{context}");
                // Nothing may act beside the half-done step.
                for cmd in [Cmd::Weight, Cmd::Abort] {
                    let out = release.canary(cmd.args());
                    assert_eq!(out.code, 3, "{context}: {cmd:?}: {out}");
                    assert!(out.stderr.contains("interrupted"), "{context}: {out}");
                }
                assert_eq!(
                    release.point(),
                    crashed,
                    "{context}: refused commands moved it"
                );
                assert_same_files(&release.files(), &after, context);
            }
            _ => assert_same_files(&after, written, context),
        }
        assert!(
            release.event_count() > events,
            "{context}: step-started recorded"
        );
        // Plain `next` finishes the interrupted step (whichever command began it).
        release.canary(Cmd::Next.args()).ok();
        assert_same_files(&release.files(), written, context);
        finish_like_reference(&release, walk, target + 1, &mut phases, context);
    }
    assert_ends_like_reference(&release, walk, &phases, context);
}

fn crash_every_step_at(failpoint: &str) {
    let refs = references();
    let started = std::time::Instant::now();
    let targets = targets(refs);
    for (walk, at, name) in &targets {
        crash_and_resume(walk, *at, failpoint, name);
    }
    eprintln!(
        "{failpoint}: {} steps aborted and resumed in {:.1?}",
        targets.len(),
        started.elapsed()
    );
}

#[test]
fn reference_walks_write_each_edit_once() {
    let refs = references();
    let plain = &refs.plain;
    assert!(plain.points.last().unwrap().finished);
    // deploy-v1 adds exactly one web-v1 block, which stays single until cleanup-1 removes it.
    let gap = |snap: &Files| String::from_utf8(snap["gap/gap.yaml"].clone()).unwrap();
    let max_blocks = plain
        .snaps
        .iter()
        .map(|s| gap(s).matches("\n  web-v1:\n").count())
        .max()
        .unwrap();
    assert_eq!(max_blocks, 1);
    assert_eq!(
        gap(plain.snaps.last().unwrap()).matches("web-v1").count(),
        0
    );
    // Every step that writes files is recorded once; the other walks differ only by theirs.
    assert_eq!(plain.summary.written, EDIT_STEPS.len());
    assert_eq!(plain.summary.started, EDIT_STEPS.len());
    // The weight, and the ramp of the other environments that takes staging back to 100% (it
    // writes nothing in the plain walk, where staging serves 100% v2 since its test).
    assert_eq!(refs.weight.summary.written, EDIT_STEPS.len() + 2);
    // The abort, then deploy-v2 over (staging to 100% v2 again) and the ramp from 1% again:
    // 1%, 5% and 10% a second time.
    assert_eq!(refs.abort.summary.written, EDIT_STEPS.len() + 1 + 1 + 3);
    for walk in [&refs.weight, &refs.abort] {
        assert_same_files(
            walk.snaps.last().unwrap(),
            plain.snaps.last().unwrap(),
            "final",
        );
    }
}

#[test]
fn crash_after_step_started() {
    crash_every_step_at("after-step-started");
}

#[test]
fn crash_after_first_file_written() {
    crash_every_step_at("after-first-file-written");
}

#[test]
fn crash_after_files_written() {
    crash_every_step_at("after-files-written");
}

#[test]
fn crash_before_step_done() {
    crash_every_step_at("before-step-done");
}

#[test]
fn crash_after_commit() {
    crash_every_step_at("after-commit");
}

#[test]
fn crash_after_step_done() {
    crash_every_step_at("after-step-done");
}

fn planned_files(release: &Release) -> Vec<String> {
    let log = release.log();
    let started = log
        .iter()
        .rev()
        .find(|e| e["kind"] == "step-started")
        .expect("a step-started event");
    started["detail"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

fn weights(status: &Value) -> Vec<Value> {
    status["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["v2_weight"].clone())
        .collect()
}

fn assert_refused_while_interrupted(release: &Release, args: &[&str], context: &str) {
    let out = release.canary(args);
    assert_eq!(out.code, 3, "{context}: {args:?}: {out}");
    assert!(
        out.stderr.contains("interrupted")
            && out
                .stderr
                .contains(&format!("run:   {}", release.hint("next my-service"))),
        "{context}: {args:?}: {out}"
    );
}

#[test]
fn weight_and_abort_are_refused_until_next_finishes_the_interrupted_step() {
    let refs = references();
    let plain = &refs.plain;
    let at = plain.index_of("ramp: send 5% of production traffic to v2");
    let context = "ramp 5% aborted at after-first-file-written";
    let release = walk_to(plain, at, &mut Vec::new(), context);
    crash(
        &release,
        Cmd::Next.args(),
        "after-first-file-written",
        context,
    );
    let status = release.status();
    assert_eq!(status["interrupted"], true, "{status}");
    assert_eq!(status["next"], "canary next my-service", "{status}");
    let files = release.files();
    let point = release.point();
    let events = release.event_count();
    for args in [
        &["weight", SERVICE, "staging", "50", "--yes"][..],
        &["weight", SERVICE, "production", "50", "--yes"],
        &["abort", SERVICE, "--yes"],
    ] {
        assert_refused_while_interrupted(&release, args, context);
    }
    assert_same_files(&release.files(), &files, context);
    assert_eq!(release.point(), point, "{context}");
    assert_eq!(
        release.event_count(),
        events,
        "{context}: refusals are not journaled"
    );

    // `next` finishes the step; then both are allowed again.
    release.canary(Cmd::Next.args()).ok();
    let status = release.status();
    assert_eq!(status["interrupted"], false, "{status}");
    // Staging serves 100% v2 since its test, before production's first raise.
    assert_eq!(weights(&status), [100, 5], "{status}");
    release
        .canary(&["weight", SERVICE, "staging", "50", "--yes"])
        .ok();
    assert_eq!(weights(&release.status()), [50, 5]);

    // An interrupted `weight` blocks `abort` and itself the same way, and `next` finishes it.
    let context = "weight staging 75 aborted at after-first-file-written";
    crash(
        &release,
        &["weight", SERVICE, "staging", "75", "--yes"],
        "after-first-file-written",
        context,
    );
    assert_refused_while_interrupted(&release, &["abort", SERVICE, "--yes"], context);
    assert_refused_while_interrupted(
        &release,
        &["weight", SERVICE, "staging", "75", "--yes"],
        context,
    );
    release.canary(Cmd::Next.args()).ok();
    let status = release.status();
    assert_eq!(status["interrupted"], false, "{status}");
    assert_eq!(weights(&status), [75, 5], "{status}");
    release.canary(&["abort", SERVICE, "--yes"]).ok();
    assert_eq!(weights(&release.status()), [0, 0]);

    for i in 0.. {
        assert!(i < MAX_INVOCATIONS, "{context}: the release never finished");
        if release.point().finished {
            break;
        }
        release.canary(Cmd::Next.args()).ok();
    }
    assert_same_files(&release.files(), plain.snaps.last().unwrap(), context);
    release.assert_no_temporary_files(context);
    release.assert_journal_intact();
}

/// A person changes one of the interrupted step's planned files before `next` resumes it:
/// `next` refuses, naming the file, and writes nothing; once the file is restored as the
/// message says, `next` finishes the release as the reference walk does.
fn hand_edit_before_resume(step: &str, failpoint: &str, pick: fn(&[String]) -> usize) {
    let refs = references();
    let plain = &refs.plain;
    let at = plain.index_of(step);
    let mut phases = Vec::new();
    let release = walk_to(plain, at, &mut phases, step);
    crash(&release, Cmd::Next.args(), failpoint, step);
    let planned = planned_files(&release);
    let victim = &planned[pick(&planned)];
    let context = format!("{step} aborted at {failpoint}, then {victim} edited by hand");
    let context = context.as_str();

    let mut edited = release.files().get(victim).cloned().unwrap_or_default();
    edited.extend_from_slice(b"# changed by hand\n");
    release.write_file(victim, Some(&edited));
    let files = release.files();
    let point = release.point();
    let events = release.event_count();
    let out = release.canary(Cmd::Next.args());
    assert_eq!(out.code, 2, "{context}: {out}");
    assert!(
        out.stderr.contains(&format!(
            "{victim} changed since the interrupted step began"
        )),
        "{context}: {out}"
    );
    assert_same_files(&release.files(), &files, context);
    assert_eq!(release.point(), point, "{context}: the journal moved");
    assert_eq!(release.event_count(), events, "{context}: events recorded");
    release.assert_no_temporary_files(context);

    // Restore it as the message says (git checkout; a file new to the step is removed).
    if plain.snaps[at].contains_key(victim) {
        release.git(&["checkout", "--", victim]);
    } else {
        release.write_file(victim, None);
    }
    release.canary(Cmd::Next.args()).ok();
    assert_same_files(&release.files(), &plain.snaps[at + 1], context);
    finish_like_reference(&release, plain, at + 1, &mut phases, context);
    assert_ends_like_reference(&release, plain, &phases, context);
}

#[test]
fn a_hand_edit_of_a_file_already_written_stops_the_resume() {
    hand_edit_before_resume(
        "add-routing: add the VirtualService patches and the Service patch",
        "after-first-file-written",
        |_| 0,
    );
}

#[test]
fn a_hand_edit_of_a_file_not_yet_written_stops_the_resume() {
    // Round two creates its files: the person creates one first.
    hand_edit_before_resume(
        "add-routing: add the VirtualService patches and the Service patch",
        "after-first-file-written",
        |planned| planned.len() - 1,
    );
    // cleanup-1 changes gap.yaml and deletes the others; nothing written yet.
    hand_edit_before_resume(
        "cleanup-1: remove the v1 route, the Service patch and web-v1",
        "after-step-started",
        |planned| planned.iter().position(|p| p == "gap/gap.yaml").unwrap(),
    );
    hand_edit_before_resume(
        "cleanup-1: remove the v1 route, the Service patch and web-v1",
        "after-first-file-written",
        |planned| planned.len() - 1,
    );
}

/// Coexistence's own edit, deploy-v2 setting web's switch, killed at each failpoint of a
/// step: the next `canary next` finishes it, with one commit and web, and only web, at v2.
#[test]
fn a_killed_switch_to_v2_is_finished_once_by_the_next_next() {
    for failpoint in [
        "after-step-started",
        "after-first-file-written",
        "after-files-written",
        "before-step-done",
        "after-step-done",
    ] {
        let sandbox = Sandbox::new();
        sandbox.start_coexistence();
        let step = "deploy-v2: set web's switch to v2";
        while sandbox.status()["step"] != step {
            sandbox.next();
        }
        let gap = || std::fs::read_to_string(sandbox.repo.join("gap/gap.yaml")).unwrap();
        let before = gap();
        let killed = Output::new(
            &["next"],
            sandbox
                .canary_command(&["next", common::SERVICE, "--yes"])
                .env("CANARY_FAILPOINT", failpoint)
                .output()
                .unwrap(),
        );
        assert_ne!(killed.code, 0, "{failpoint}: {killed}");
        assert_eq!(
            gap() == before,
            failpoint == "after-step-started",
            "{failpoint}: written or not as the failpoint says"
        );
        sandbox.next();
        let after = gap();
        assert_eq!(
            after,
            before.replacen("value: v1", "value: v2", 1),
            "{failpoint}: web, and only web, flipped"
        );
        let subject = format!("canary(my-service): {step}");
        let commits = sandbox.commit_subjects();
        assert_eq!(
            commits.iter().filter(|s| **s == subject).count(),
            1,
            "{failpoint}: {commits:?}"
        );
        assert_ne!(sandbox.status()["step"], step, "{failpoint}");
        // And the release goes on to its end from there.
        sandbox.walk_to("done");
    }
}
