//! Every question canary asks goes through [`Prompt`], so that a person at a terminal, a `--yes`
//! pipeline and the tests drive the same code.

#[cfg(test)]
use std::collections::VecDeque;
use std::io::IsTerminal;

use crate::error::{Error, bad_input};

pub trait Prompt {
    /// A yes/no question; `Ok(false)` is a "no". It has no default: a person types the answer.
    fn confirm(&mut self, question: &str) -> Result<bool, Error>;
    /// Pick one of `choices` (the first is the default); returns its index.
    fn select(&mut self, question: &str, choices: &[&str]) -> Result<usize, Error>;
    /// A value typed in; `check` says why an answer is not acceptable. `flag` names the
    /// command-line option that gives the value without asking.
    fn input(
        &mut self,
        question: &str,
        flag: &str,
        check: &dyn Fn(&str) -> Result<(), Error>,
    ) -> Result<String, Error>;
    /// How a yes of this prompt is given, for the journal to record beside what it confirms:
    /// typed at a `"terminal"`, or `"--yes"`. `None` where no one answers for real.
    fn answered_by(&self) -> Option<&'static str> {
        None
    }
}

/// The prompt for this process: `--yes` answers for the operator; otherwise a terminal is needed.
pub fn for_process(yes: bool) -> Box<dyn Prompt> {
    if yes {
        Box::new(AssumeYes)
    } else if terminal_available() {
        Box::new(Terminal)
    } else {
        Box::new(NoTerminal)
    }
}

/// Whether a person can be asked: dialoguer reads the terminal on stdin and draws on stderr.
pub fn terminal_available() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A person at a terminal, asked with dialoguer.
pub struct Terminal;

impl Prompt for Terminal {
    /// The whole line is read after Enter: one key answers nothing, so that a key meant for
    /// another prompt (or an Enter typed ahead) never answers this one, and nothing is assumed
    /// for a bare Enter.
    fn confirm(&mut self, question: &str) -> Result<bool, Error> {
        let answer = dialoguer::Input::<String>::with_theme(&YesNo::for_terminal())
            .with_prompt(question)
            // A bare Enter reaches the check, which says what to type, instead of being
            // silently asked again.
            .allow_empty(true)
            .validate_with(|s: &String| yes_or_no(s).map(drop).ok_or(YES_OR_NO_HINT))
            .interact_text()
            .map_err(interrupted)?;
        Ok(yes_or_no(&answer).expect("the answer was checked"))
    }

    fn answered_by(&self) -> Option<&'static str> {
        Some("terminal")
    }

    fn select(&mut self, question: &str, choices: &[&str]) -> Result<usize, Error> {
        dialoguer::Select::new()
            .with_prompt(question)
            .items(choices)
            .default(0)
            .interact()
            .map_err(interrupted)
    }

    fn input(
        &mut self,
        question: &str,
        _flag: &str,
        check: &dyn Fn(&str) -> Result<(), Error>,
    ) -> Result<String, Error> {
        dialoguer::Input::<String>::new()
            .with_prompt(question)
            .validate_with(|s: &String| check(s.trim()).map_err(|e| e.to_string()))
            .interact_text()
            .map(|s| s.trim().to_string())
            .map_err(interrupted)
    }
}

/// What a yes/no question accepts: y, yes, n or no, in any case, spaces around ignored.
fn yes_or_no(answer: &str) -> Option<bool> {
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Some(true),
        "n" | "no" => Some(false),
        _ => None,
    }
}

/// What a yes/no question says to anything else, and asks again.
const YES_OR_NO_HINT: &str = "type y or n (yes or no), then Enter";

/// A yes/no question drawn as dialoguer draws a confirmation (`QUESTION [y/n] `, then
/// `QUESTION yes`), though it is read as a line of text.
///
/// A question wider than the terminal is broken into lines here: dialoguer clears as many
/// lines as the question has line breaks when it asks again, and a line the terminal wrapped
/// by itself would stay behind, a first line orphaned above each new drawing.
struct YesNo {
    /// The terminal's width in columns; `None` when it cannot be told (nothing is broken).
    columns: Option<usize>,
}

impl YesNo {
    fn for_terminal() -> YesNo {
        YesNo {
            columns: console::Term::stderr()
                .size_checked()
                .map(|(_, columns)| usize::from(columns)),
        }
    }
}

/// `text` broken at spaces into lines of at most `columns` characters (a longer word stands on
/// a line of its own).
fn wrap(text: &str, columns: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut line = 0;
    for word in text.split(' ') {
        let width = console::measure_text_width(word);
        if line > 0 && line + 1 + width > columns {
            out.push('\n');
            line = 0;
        } else if !out.is_empty() {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += width;
    }
    out
}

impl dialoguer::theme::Theme for YesNo {
    fn format_input_prompt(
        &self,
        f: &mut dyn std::fmt::Write,
        prompt: &str,
        _default: Option<&str>,
    ) -> std::fmt::Result {
        let question = format!("{prompt} [y/n]");
        match self.columns {
            // One column stays free for the cursor, so that the terminal never wraps a line
            // that is exactly as wide as it is.
            Some(columns) if columns > 1 => write!(f, "{} ", wrap(&question, columns - 1)),
            _ => write!(f, "{question} "),
        }
    }

    fn format_input_prompt_selection(
        &self,
        f: &mut dyn std::fmt::Write,
        prompt: &str,
        answer: &str,
    ) -> std::fmt::Result {
        self.format_confirm_prompt_selection(f, prompt, yes_or_no(answer))
    }
}

fn interrupted(e: dialoguer::Error) -> Error {
    let dialoguer::Error::IO(io) = &e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        // Ctrl-C typed while the prompt reads a key arrives as a byte, not as the signal it is
        // between keys: raise it, so that Ctrl-C ends canary the same way whenever it is typed.
        // SAFETY: raise(3) only sends this process a signal; nothing is half written at a
        // prompt.
        unsafe {
            libc::raise(libc::SIGINT);
        }
    }
    Error::Declined(format!("no answer ({e}); nothing was changed"))
}

/// `--yes`: every confirmation is a yes and every choice the first; a value still has to be
/// given on the command line.
pub struct AssumeYes;

/// What was answered for the operator shows in the log of a pipeline, as it would on screen.
pub fn echo(question: &str, answer: &str) {
    eprintln!(
        "{} {question} {}",
        console::style("?").yellow(),
        console::style(answer).cyan()
    );
}

impl Prompt for AssumeYes {
    fn confirm(&mut self, question: &str) -> Result<bool, Error> {
        echo(question, "yes (--yes)");
        Ok(true)
    }

    fn select(&mut self, question: &str, choices: &[&str]) -> Result<usize, Error> {
        echo(question, &format!("{} (--yes)", choices[0]));
        Ok(0)
    }

    fn input(
        &mut self,
        question: &str,
        flag: &str,
        _check: &dyn Fn(&str) -> Result<(), Error>,
    ) -> Result<String, Error> {
        Err(bad_input(format!("{question}: give it with {flag}")))
    }

    fn answered_by(&self) -> Option<&'static str> {
        Some("--yes")
    }
}

/// No terminal and no `--yes`: nobody can answer, so say how to run unattended.
pub struct NoTerminal;

impl NoTerminal {
    fn refuse(question: &str) -> Error {
        bad_input(format!(
            "canary needs an answer (\"{question}\") but there is no terminal to ask on; run it \
             in a terminal, or pass --yes to answer yes to every confirmation"
        ))
    }
}

impl Prompt for NoTerminal {
    fn confirm(&mut self, question: &str) -> Result<bool, Error> {
        Err(NoTerminal::refuse(question))
    }

    fn select(&mut self, question: &str, _choices: &[&str]) -> Result<usize, Error> {
        Err(NoTerminal::refuse(question))
    }

    fn input(
        &mut self,
        question: &str,
        flag: &str,
        _check: &dyn Fn(&str) -> Result<(), Error>,
    ) -> Result<String, Error> {
        Err(bad_input(format!(
            "{question}: there is no terminal to ask on; give it with {flag}"
        )))
    }
}

/// Answers given in advance, for tests. Panics on a question it has no answer for, and on
/// answers left over when dropped, so a test notices a prompt that appeared or went missing.
/// Built for unit tests only: the integration tests drive the binary through a terminal.
#[cfg(test)]
pub struct Scripted {
    answers: VecDeque<String>,
}

#[cfg(test)]
impl Scripted {
    pub fn new(answers: &[&str]) -> Scripted {
        Scripted {
            answers: answers.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn next(&mut self, question: &str) -> String {
        self.answers
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected prompt: {question}"))
    }
}

#[cfg(test)]
impl Drop for Scripted {
    fn drop(&mut self) {
        if !std::thread::panicking() && !self.answers.is_empty() {
            panic!("answers never asked for: {:?}", self.answers);
        }
    }
}

#[cfg(test)]
impl Prompt for Scripted {
    fn confirm(&mut self, question: &str) -> Result<bool, Error> {
        let answer = self.next(question);
        Ok(yes_or_no(&answer)
            .unwrap_or_else(|| panic!("{answer:?} is no answer to {question:?}: {YES_OR_NO_HINT}")))
    }

    fn select(&mut self, question: &str, choices: &[&str]) -> Result<usize, Error> {
        let answer = self.next(question);
        Ok(choices
            .iter()
            .position(|c| *c == answer)
            .unwrap_or_else(|| panic!("{answer:?} is not one of {choices:?}")))
    }

    fn input(
        &mut self,
        question: &str,
        _flag: &str,
        check: &dyn Fn(&str) -> Result<(), Error>,
    ) -> Result<String, Error> {
        let answer = self.next(question);
        check(&answer)?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yes_or_no_is_the_whole_answer_in_any_case_and_nothing_else_is() {
        for yes in ["y", "Y", "yes", "YES", " Yes ", "y\t"] {
            assert_eq!(yes_or_no(yes), Some(true), "{yes:?}");
        }
        for no in ["n", "N", "no", "NO", "  nO"] {
            assert_eq!(yes_or_no(no), Some(false), "{no:?}");
        }
        for neither in [
            "", " ", "ye", "yess", "nope", "y n", "yn", "1", "true", "\n",
        ] {
            assert_eq!(yes_or_no(neither), None, "{neither:?}");
        }
    }

    #[test]
    fn a_question_is_broken_at_spaces_into_lines_that_fit() {
        assert_eq!(wrap("Go on? [y/n]", 79), "Go on? [y/n]");
        assert_eq!(wrap("aa bb cc dd", 5), "aa bb\ncc dd");
        assert_eq!(wrap("aa bb cc", 4), "aa\nbb\ncc");
        assert_eq!(wrap("a verylongword b", 4), "a\nverylongword\nb");
        let question = "Write add the DestinationRule subsets and web-v1's AuthorizationPolicy \
                        (2 files)? [y/n]";
        let wrapped = wrap(question, 79);
        assert!(wrapped.lines().all(|l| l.len() <= 79), "{wrapped}");
        assert_eq!(wrapped.replace('\n', " "), question);
    }

    #[test]
    #[should_panic(expected = "is no answer")]
    fn a_scripted_confirmation_that_is_neither_yes_nor_no_fails_the_test() {
        let _ = Scripted::new(&["maybe"]).confirm("Go on?");
    }
}
