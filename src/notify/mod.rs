//! Telling the team what a `canary run` does: one JSON POST per event to each webhook. Slack's
//! and Teams' incoming webhooks show its `text`; the fields beside it are for machines.
//!
//! A webhook's URL grants posting to a channel, so it is a secret: canary shows only its
//! scheme and host (never its path or a user in it), and so do the events that name it; an
//! error never repeats it. A release's own webhooks are kept whole in the journal's table of
//! webhooks, which no command prints. A message that no attempt delivered is handed back for the journal;
//! it never stops the release, and the attempts together take at most 18 s per webhook (three
//! of at most 5 s, 1 s and then 2 s apart).

#[cfg(feature = "cluster")]
mod post;
#[cfg(not(feature = "cluster"))]
mod without;

use std::time::Duration;

#[cfg(feature = "cluster")]
use post::post;
#[cfg(not(feature = "cluster"))]
use without::post;

use crate::error::{Error, bad_input};

/// Whether this canary can post at all (the HTTP client comes with the cluster feature).
pub const AVAILABLE: bool = cfg!(feature = "cluster");

const ATTEMPTS: u32 = 3;
/// Each attempt's bound, connecting and answering together.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause after the first failed attempt, doubled after each further one.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// A webhook to post to.
#[derive(Clone)]
pub struct Webhook {
    url: String,
    shown: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Webhook {
    /// An `http://` or `https://` URL with a host. The error names what is wrong without the
    /// text, which may be a secret typed in the wrong place.
    pub fn parse(text: &str) -> Result<Webhook, Error> {
        let refuse = |why: &str| {
            bad_input(format!(
                "a webhook URL (--webhook or CANARY_WEBHOOK_URL) {why}; it is not shown here, as \
                 a webhook's URL is a secret"
            ))
        };
        let (scheme, rest) = text
            .split_once("://")
            .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
            .ok_or_else(|| refuse("is not an http:// or https:// URL"))?;
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse("holds a space or a control character"));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // A user (and password) before the host is as secret as the path.
        let host = authority.rsplit('@').next().unwrap_or_default();
        if host.is_empty() || host.starts_with(':') {
            return Err(refuse("names no host"));
        }
        Ok(Webhook {
            url: text.to_string(),
            shown: format!("{scheme}://{host}/…"),
        })
    }

    /// The webhook as canary shows and journals it: its scheme and host.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The URL itself, for the journal's table of webhooks and nothing else.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `text` with the URL, should it appear there, in its shown form.
    fn hide(&self, text: &str) -> String {
        text.replace(&self.url, &self.shown)
    }
}

/// A message that no attempt delivered to a webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Undelivered {
    /// The webhook as shown.
    pub to: String,
    pub attempts: u32,
    /// The last attempt's error.
    pub error: String,
}

/// Post `body` to every webhook, each up to [`ATTEMPTS`] times, pausing between attempts; what
/// could not be delivered, one entry per webhook.
pub fn deliver(hooks: &[Webhook], body: &serde_json::Value) -> Vec<Undelivered> {
    let bytes = body.to_string().into_bytes();
    hooks
        .iter()
        .filter_map(|hook| {
            let mut pause = FIRST_PAUSE;
            let mut error = String::new();
            for attempt in 1..=ATTEMPTS {
                match post(&hook.url, &bytes, ATTEMPT_TIMEOUT) {
                    Ok(()) => return None,
                    Err(why) => error = crate::output::outside(&hook.hide(&why), 200),
                }
                if attempt < ATTEMPTS {
                    std::thread::sleep(pause);
                    pause *= 2;
                }
            }
            Some(Undelivered {
                to: hook.shown.clone(),
                attempts: ATTEMPTS,
                error,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_shown_by_its_scheme_and_host_only() {
        for (url, shown) in [
            (
                "https://hooks.slack.com/services/T000/B000/XXXX",
                "https://hooks.slack.com/…",
            ),
            (
                "http://127.0.0.1:8080/hook?token=abc",
                "http://127.0.0.1:8080/…",
            ),
            ("https://user:pass@example.com/x", "https://example.com/…"),
            ("https://example.com", "https://example.com/…"),
        ] {
            let hook = Webhook::parse(url).unwrap();
            assert_eq!(hook.shown(), shown);
            assert_eq!(format!("{hook:?}"), shown);
            assert_eq!(
                hook.hide(&format!("error sending to {url}")),
                format!("error sending to {shown}")
            );
        }
    }

    #[test]
    fn what_is_not_a_webhook_is_refused_without_repeating_it() {
        for text in [
            "hooks.slack.com/services/T000/B000/SECRET",
            "ftp://example.com/SECRET",
            "https:///SECRET",
            "https://user@/SECRET",
            "https://example.com/SECRET with space",
            "",
        ] {
            let err = Webhook::parse(text).unwrap_err().to_string();
            assert!(!err.contains("SECRET"), "{err}");
            assert!(err.contains("is not shown here"), "{err}");
        }
    }
}
