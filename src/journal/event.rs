//! What the journal records of a release, each kind of event a variant: written and read only
//! through [`Event`]. In the `events` table a row's `kind` column holds the tag and its `detail`
//! column the variant's fields as JSON, with sorted keys, as `json!` wrote them before the
//! events were typed. Fields added to a kind after its first schema are optional, so that every
//! journal any canary wrote still reads.

use serde::{Deserialize, Deserializer, Serialize};

use crate::edits::{FileEdit, Move};
use crate::gate::verdict::Verdict;
use crate::settings::Settings;
use crate::workflow::{Action, AnyEdit, Phase};

/// One event of a release. Each variant says the schema version (`migrations/`) from which the
/// `events` table takes its kind; a journal newer than this canary is refused whole, so no kind
/// it does not know ever reaches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum Event {
    /// Schema 1: the release's configuration as it was opened.
    Opened(Box<Settings>),
    /// Schema 1: a step's files are about to be written.
    StepStarted {
        step: String,
        files: Vec<PlannedFile>,
    },
    /// Schema 1: a step's files are written; `written_files` takes them.
    FilesWritten { files: Vec<PlannedFile> },
    /// Schema 1.
    StepDone(StepDone),
    /// Schema 1.
    DeployConfirmed(DeployConfirmed),
    /// Schema 1: `canary weight` in the files.
    WeightChanged { env: String, v2_weight: u8 },
    /// Schema 1: `canary abort`, or the gate's auto-abort (`by`: `gate`).
    Aborted {
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Schema 1: web-v1 pinned to another image.
    Repinned { from: String, to: String },
    /// Schema 1: a commit of canary's, made or recognised.
    Committed(Committed),
    /// Schema 1.
    Finished {},
    /// Schema 2: `canary weight --live`.
    LiveWeightChanged {
        env: String,
        context: String,
        virtual_service: String,
        v2_weight: u8,
        /// The live weights before, `(subset, weight)`.
        before: Vec<(String, i64)>,
    },
    /// Schema 2: `canary context`.
    ContextSet(ContextSet),
    /// Schema 5.
    Pushed {
        commit: String,
        branch: String,
        to: String,
    },
    /// Schema 6: a gate evaluation that read metrics.
    GateEvaluated {
        env: String,
        v2_weight: Option<u8>,
        verdict: Verdict,
        /// The sha256 of the team's checks file as git held it, where the release has one: a
        /// change between evaluations shows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checks_sha256: Option<String>,
    },
    /// Schema 7: `canary cancel`.
    Cancelled {
        step: String,
        /// Files left as they are.
        left: Vec<String>,
        answered: Option<String>,
    },
    /// Schema 7: `canary settings`.
    SettingsChanged(SettingsChanged),
    /// Schema 8: a message of `canary run` that no attempt delivered to a webhook.
    NotifyFailed {
        /// The webhook as canary shows it, without the path that is its secret.
        to: String,
        /// The kind of event the message told.
        about: String,
        attempts: u32,
        error: String,
    },
}

/// A step done. Which fields it has depends on the step: an edit says whether it changed
/// anything; a confirmation, which environment, weight or image it confirmed, and how the yes
/// was given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepDone {
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The environments whose cluster showed the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<String>,
}

/// A deploy confirmed: by the operator's word (`answered`), or verified on the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployConfirmed {
    pub env: String,
    /// The edit whose files were deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<AnyEdit>,
    /// What else was deployed (`v2 code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    /// Absent where the environment has no context; `false` with `--no-verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The Argo CD Application the deploy was verified by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<AppReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<String>,
}

/// An Argo CD Application as a verified deploy found it: its name, and what it reported, kept
/// as it was read (the report has grown fields over time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppReport {
    pub application: String,
    #[serde(flatten)]
    pub reported: serde_json::Map<String, serde_json::Value>,
}

impl AppReport {
    /// A text field of the report (`sync`, `health`, `revision`).
    pub fn text(&self, field: &str) -> Option<&str> {
        self.reported.get(field).and_then(|v| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    pub commit: String,
    pub message: String,
    pub paths: Vec<String>,
    /// A commit canary recognised as its own instead of making it.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub recognised: Option<Recognition>,
}

/// How a commit of canary's that the journal did not know was recognised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recognition {
    /// Always `true`: it tells a recognised commit's record from a made one's.
    pub recognised: bool,
    /// The id the journal knew it by before it was rewritten; `None`: not recorded at all.
    pub was: Option<String>,
}

/// An environment's settings changed. The context is recorded before and after (also when it
/// did not change); every other setting only when it changed (`Some`), before and after.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextSet {
    pub env: String,
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_from: Option<Option<crate::gate::Endpoint>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_to: Option<Option<crate::gate::Endpoint>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub argocd_from: Option<Option<crate::argocd::AppRef>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub argocd_to: Option<Option<crate::argocd::AppRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts_from: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts_to: Option<Vec<String>>,
}

/// The release's namespace or gate limits changed, each recorded only when it changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsChanged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_to: Option<String>,
    /// Each gate limit that changed, by its name in the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<std::collections::BTreeMap<String, Change>>,
    /// Schema 9: the release's webhooks before and after, each by its scheme and host only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks_from: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks_to: Option<Vec<String>>,
}

/// A gate limit before and after, as the configuration holds it (a number, or none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// A field that may be absent (`None`) or present and null (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A file a step writes, with the sha256 of its content before and after (`None`: no file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFile {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// A VirtualService patch's weights, so that `canary check` can tell a weight moved by
    /// hand from any other edit. Absent from journals written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<(String, i64)>>,
}

/// A step whose files are being written, as the journal keeps it (`step_in_progress`) until
/// the step is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InProgress {
    #[serde(rename = "job")]
    pub edit: FileEdit,
    /// The phase the step belongs to, for the commit message.
    pub phase: Phase,
    /// What completes the step in the workflow once its files are on disk.
    pub action: Action,
    pub what: String,
    pub files: Vec<PlannedFile>,
}

impl Event {
    /// The event that records an out-of-band move, made on the release's settings before it.
    /// Here rather than on [`Move`]: the journal sits above the edits, which know no events.
    pub fn of_move(m: &Move, config: &Settings) -> Result<Event, crate::error::Error> {
        Ok(match m {
            Move::Weight { env, percent } => Event::WeightChanged {
                env: config.environments[*env].name.clone(),
                v2_weight: *percent,
            },
            Move::Abort => Event::Aborted {
                to: "v1".into(),
                by: None,
            },
            Move::AbortToV2 => Event::Aborted {
                to: "v2".into(),
                by: None,
            },
            Move::Repin { image } => Event::Repinned {
                from: config.pinned()?.to_string(),
                to: image.to_string(),
            },
        })
    }

    /// The `kind` column's value.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Opened(_) => "opened",
            Event::StepStarted { .. } => "step-started",
            Event::FilesWritten { .. } => "files-written",
            Event::StepDone(_) => "step-done",
            Event::DeployConfirmed(_) => "deploy-confirmed",
            Event::WeightChanged { .. } => "weight-changed",
            Event::Aborted { .. } => "aborted",
            Event::Repinned { .. } => "repinned",
            Event::Committed(_) => "committed",
            Event::Finished {} => "finished",
            Event::LiveWeightChanged { .. } => "live-weight-changed",
            Event::ContextSet(_) => "context-set",
            Event::Pushed { .. } => "pushed",
            Event::GateEvaluated { .. } => "gate-evaluated",
            Event::Cancelled { .. } => "cancelled",
            Event::SettingsChanged(_) => "settings-changed",
            Event::NotifyFailed { .. } => "notify-failed",
        }
    }

    /// The `detail` column's value: the variant's fields.
    pub fn detail(&self) -> serde_json::Value {
        // Through a `Value`, whose maps sort their keys: the text stays as `json!` wrote it.
        match serde_json::to_value(self).expect("journal events serialise") {
            serde_json::Value::Object(mut tagged) => tagged.remove("detail").unwrap_or_default(),
            _ => unreachable!("an adjacently tagged enum serialises as an object"),
        }
    }

    /// The event a row holds, or what is wrong with it. The detail is read once, straight
    /// into the variant the kind names: never first into a `Value`.
    pub fn from_columns(kind: &str, detail: &str) -> Result<Event, serde_json::Error> {
        Event::deserialize(serde::de::value::MapAccessDeserializer::new(Columns {
            kind: Some(kind),
            detail: Some(detail),
        }))
    }

    /// A confirmation, with how the yes was given (`--yes`, a terminal): an audit tells a
    /// person's word from a pipeline's. Other kinds take no answer.
    pub fn answered(mut self, how: Option<&str>) -> Event {
        if let Some(how) = how {
            match &mut self {
                Event::StepDone(StepDone { answered, .. })
                | Event::DeployConfirmed(DeployConfirmed { answered, .. }) => {
                    *answered = Some(how.to_string());
                }
                _ => {}
            }
        }
        self
    }
}

/// A row's two columns as the map `{"kind": KIND, "detail": DETAIL}`, the tag first, which
/// lets serde read the detail without buffering it.
struct Columns<'a> {
    kind: Option<&'a str>,
    detail: Option<&'a str>,
}

impl<'de> serde::de::MapAccess<'de> for Columns<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let key = match (self.kind, self.detail) {
            (Some(_), _) => "kind",
            (None, Some(_)) => "detail",
            (None, None) => return Ok(None),
        };
        seed.deserialize(serde::de::IntoDeserializer::<Self::Error>::into_deserializer(key))
            .map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        if let Some(kind) = self.kind.take() {
            return seed.deserialize(serde::de::IntoDeserializer::into_deserializer(kind));
        }
        let detail = self.detail.take().unwrap_or_default();
        let mut reader = serde_json::Deserializer::from_str(detail);
        let value = seed.deserialize(&mut reader)?;
        // Nothing may follow the detail's one value.
        reader.end()?;
        Ok(value)
    }
}

/// An event as the journal holds it: when, by whom, in which phase.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: i64,
    pub at: String,
    pub operator: String,
    /// The name of the phase the release was in.
    pub phase: String,
    pub event: Event,
}

/// As `canary log --json` and the export show it: `kind` and `detail` as the columns hold them.
impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut entry = s.serialize_struct("Record", 6)?;
        entry.serialize_field("id", &self.id)?;
        entry.serialize_field("at", &self.at)?;
        entry.serialize_field("operator", &self.operator)?;
        entry.serialize_field("kind", self.event.kind())?;
        entry.serialize_field("phase", &self.phase)?;
        entry.serialize_field("detail", &self.event.detail())?;
        entry.end()
    }
}
