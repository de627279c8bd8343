//! `canary run --staging-test CMD`: the team's own test of v2 on staging answers the question
//! that no check can, "was v2 tested and found good?", instead of a person or --yes.

use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use crate::error::Error;
use crate::prompt::{self, Prompt};
use crate::settings::Settings;
use crate::workflow::Step;

/// A prompt that answers the staging test's question by running the test (exit 0: yes; any
/// other exit refuses, naming the command and its code), and hands every other question to
/// the prompt it wraps.
pub struct StagingTest {
    inner: Box<dyn Prompt>,
    command: String,
    question: String,
    env: Vec<(&'static str, String)>,
    /// Whether the last yes was the test's, for the journal's `answered`.
    answered_by_test: bool,
    service: String,
    tested_env: String,
}

impl StagingTest {
    pub fn new(inner: Box<dyn Prompt>, command: &str, config: &Settings) -> StagingTest {
        let staging = &config.environments[0];
        StagingTest {
            inner,
            command: command.to_string(),
            question: Step::ConfirmV2Tested
                .question(&config.shape(), &config.service)
                .expect("the staging test is a question"),
            env: vec![
                ("CANARY_SERVICE", config.service.clone()),
                ("CANARY_ENV", staging.name.clone()),
                (
                    "CANARY_HOST",
                    staging.hosts.first().cloned().unwrap_or_default(),
                ),
                ("CANARY_HOSTS", staging.hosts.join(" ")),
            ],
            answered_by_test: false,
            service: config.service.clone(),
            tested_env: staging.name.clone(),
        }
    }

    /// Run the test: its output goes to stderr, where a person reads, so that stdout stays
    /// what the command prints (`run --json`'s lines).
    fn test(&self) -> Result<(), Error> {
        let stdout = std::io::stderr().as_fd().try_clone_to_owned()?;
        let status = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .status()
            .map_err(|e| Error::Failed(format!("cannot run the staging test: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let how = match status.code() {
            Some(code) => format!("exited {code}"),
            None => "was killed".to_string(),
        };
        Err(Error::Refused {
            reason: format!(
                "the staging test `{}` {how}: v2 does not count as tested on {}",
                self.command, self.tested_env
            ),
            first: Some(format!(
                "fix v2 and run again, or send all traffic back to v1 with `canary abort {}`",
                self.service
            )),
            run: Some(format!("canary run {}", self.service)),
        })
    }
}

impl Prompt for StagingTest {
    fn confirm(&mut self, question: &str) -> Result<bool, Error> {
        self.answered_by_test = question == self.question;
        if !self.answered_by_test {
            return self.inner.confirm(question);
        }
        self.test()?;
        prompt::echo(
            question,
            &format!("yes (--staging-test `{}` passed)", self.command),
        );
        Ok(true)
    }

    fn select(&mut self, question: &str, choices: &[&str]) -> Result<usize, Error> {
        self.inner.select(question, choices)
    }

    fn input(
        &mut self,
        question: &str,
        flag: &str,
        check: &dyn Fn(&str) -> Result<(), Error>,
    ) -> Result<String, Error> {
        self.inner.input(question, flag, check)
    }

    fn answered_by(&self) -> Option<&'static str> {
        if self.answered_by_test {
            Some("--staging-test")
        } else {
            self.inner.answered_by()
        }
    }
}
