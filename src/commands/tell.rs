//! What `canary run` tells: the team, each event worth hearing of (a step done, a deploy
//! confirmed, a gate verdict, an abort, the end) and the run's stop, as one message to each
//! webhook; a pipeline reading `--json`, every event as a JSON line on stdout. Both are read
//! off the journal after each step, so that what is told is what was recorded.

use serde_json::{Value, json};

use super::log;
use crate::journal::{Event, Journal, Record, Release, Update};
use crate::notify::{self, Webhook};

pub struct Teller {
    hooks: Vec<Webhook>,
    /// Every event as a JSON line on stdout.
    json: bool,
    /// The last event already told.
    seen: i64,
}

impl Teller {
    /// A teller that tells what happens after the journal's events so far.
    pub fn new(
        hooks: Vec<Webhook>,
        json: bool,
        journal: &Journal,
        release: &Release,
    ) -> anyhow::Result<Teller> {
        let mut teller = Teller {
            hooks,
            json,
            seen: 0,
        };
        if teller.tells() {
            teller.seen = journal.events(release.id)?.last().map_or(0, |r| r.id);
        }
        Ok(teller)
    }

    fn tells(&self) -> bool {
        self.json || !self.hooks.is_empty()
    }

    /// The events journaled since the last call, now counted as told; each printed as a JSON
    /// line with `--json`.
    fn new_records(&mut self, journal: &Journal, release: &Release) -> anyhow::Result<Vec<Record>> {
        let records: Vec<Record> = journal
            .events(release.id)?
            .into_iter()
            .filter(|r| r.id > self.seen)
            .collect();
        if let Some(last) = records.last() {
            self.seen = last.id;
        }
        if self.json {
            for record in &records {
                println!("{}", serde_json::to_string(record)?);
            }
        }
        Ok(records)
    }

    /// Tell every event journaled since the last call; journal what could not be delivered.
    pub fn tell_new(&mut self, journal: &mut Journal, release: &Release) -> anyhow::Result<()> {
        if !self.tells() {
            return Ok(());
        }
        let mut undelivered = Vec::new();
        for record in self.new_records(journal, release)? {
            let (Some(text), false) = (words(&record.event), self.hooks.is_empty()) else {
                continue;
            };
            let body = json!({
                "text": format!("canary: {} {}: {text}", release.config.service, record.phase),
                "service": release.config.service,
                "release": release.config.id,
                "phase": record.phase,
                "event": record.event.kind(),
                "at": record.at,
                "detail": record.event.detail(),
            });
            undelivered.extend(failures(&self.hooks, &body, record.event.kind()));
        }
        self.journal_failures(journal, release, undelivered)
    }

    /// Tell that the run stopped, in the words of its error's first line.
    pub fn tell_stopped(
        &mut self,
        journal: &mut Journal,
        release: &Release,
        why: &str,
    ) -> anyhow::Result<()> {
        if self.json {
            println!(
                "{}",
                json!({"kind": "run-stopped", "phase": release.phase, "error": why})
            );
        }
        if self.hooks.is_empty() {
            return Ok(());
        }
        let body = json!({
            "text": format!("canary: {} {}: {why}", release.config.service, release.phase),
            "service": release.config.service,
            "release": release.config.id,
            "phase": release.phase.name(),
            "event": "run-stopped",
            "detail": {"error": why},
        });
        let undelivered = failures(&self.hooks, &body, "run-stopped");
        self.journal_failures(journal, release, undelivered)
    }

    /// Journal what no attempt delivered; those records are told on the JSON lines too, and
    /// are not news to the webhooks that failed them.
    fn journal_failures(
        &mut self,
        journal: &mut Journal,
        release: &Release,
        undelivered: Vec<Event>,
    ) -> anyhow::Result<()> {
        if undelivered.is_empty() {
            return Ok(());
        }
        let recorded = journal.record(
            release,
            Update {
                events: undelivered,
                ..Update::default()
            },
        )?;
        self.new_records(journal, &recorded)?;
        Ok(())
    }
}

fn failures(hooks: &[Webhook], body: &Value, about: &str) -> Vec<Event> {
    notify::deliver(hooks, body)
        .into_iter()
        .map(|u| Event::NotifyFailed {
            to: u.to,
            about: about.to_string(),
            attempts: u.attempts,
            error: u.error,
        })
        .collect()
}

/// An event in the words a channel reads; `None` for what only the journal needs (a step
/// started, files written, a commit and its push: the step's end says it).
fn words(event: &Event) -> Option<String> {
    Some(match event {
        Event::StepDone(_) => format!("done: {}", log::what(event)),
        Event::DeployConfirmed(confirmed) => format!(
            "deployed to {}, {}",
            confirmed.env,
            log::how_confirmed(confirmed)
        ),
        Event::GateEvaluated {
            env,
            v2_weight,
            verdict,
            ..
        } => {
            let at = v2_weight.map(|w| format!(" v2 {w}%")).unwrap_or_default();
            format!("gate at {env}{at}: {}", log::gate_numbers(verdict))
        }
        Event::Aborted { .. } => format!("aborted, traffic sent back {}", log::what(event)),
        Event::Finished {} => "the release is done".into(),
        _ => return None,
    })
}
