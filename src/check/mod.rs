//! `canary check`: offline analysis of what canary owns in a repository, in the spirit of
//! `istioctl analyze`. Every object validates against its schema, the objects agree with each
//! other (subsets, hosts, selectors, weights, the v1 AuthorizationPolicy, the pinned image),
//! nothing in the repository stands in the way of the release (`conflicts`), and, where the
//! journal knows the release, the files agree with its position.
//!
//! The same analysis runs inside `canary next` on the state a step is about to produce, so a
//! step never writes a broken state; `canary start` runs it on every state of the whole
//! release, planned in memory ([`walk`]); and `canary start --adopt` uses [`state`] to read a
//! release's position off the files.

mod conflicts;
mod patches;
mod plain;
mod rules;
pub mod schema;
pub mod state;
pub mod walk;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::edits;
use crate::error::Error;
use crate::finding::{Finding, Severity};
use crate::repo::Repo;
use crate::settings::{Settings, Switch, WEB_V1};
use crate::workflow::Method;
use crate::yaml::{self, Document, Seg};

/// Where the analysis reads files: the repository, or the repository as a step would leave it.
pub use crate::source::{Overlay, Source};

/// The finding codes. They are stable: scripts match on them, and docs/check.md lists each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Parse,
    Schema,
    ServiceType,
    Identity,
    UndefinedSubset,
    DestinationRuleHost,
    RouteHost,
    HostOfTwo,
    SubsetSelection,
    ServiceSelector,
    Weights,
    AuthorizationPolicy,
    V1Image,
    TwinDiverges,
    SwitchValue,
    Missing,
    Unexpected,
    WeightMoved,
    ImageDiffers,
    NoIngress,
    PatchedTwice,
    WebLabels,
    LabelsTaken,
    AnchorInWeb,
    PatchTargetGone,
    AmbiguousScalar,
}

impl Code {
    /// Every code, for the unit tests that check each is documented and unique.
    #[cfg(test)]
    pub const ALL: [Code; 26] = [
        Code::Parse,
        Code::Schema,
        Code::ServiceType,
        Code::Identity,
        Code::UndefinedSubset,
        Code::DestinationRuleHost,
        Code::RouteHost,
        Code::HostOfTwo,
        Code::SubsetSelection,
        Code::ServiceSelector,
        Code::Weights,
        Code::AuthorizationPolicy,
        Code::V1Image,
        Code::TwinDiverges,
        Code::SwitchValue,
        Code::Missing,
        Code::Unexpected,
        Code::WeightMoved,
        Code::ImageDiffers,
        Code::NoIngress,
        Code::PatchedTwice,
        Code::WebLabels,
        Code::LabelsTaken,
        Code::AnchorInWeb,
        Code::PatchTargetGone,
        Code::AmbiguousScalar,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Code::Parse => "CANARY-E001",
            Code::Schema => "CANARY-E002",
            Code::ServiceType => "CANARY-E003",
            Code::Identity => "CANARY-E004",
            Code::UndefinedSubset => "CANARY-E010",
            Code::DestinationRuleHost => "CANARY-E011",
            Code::RouteHost => "CANARY-E012",
            Code::SubsetSelection => "CANARY-E013",
            Code::ServiceSelector => "CANARY-E014",
            Code::Weights => "CANARY-E015",
            Code::AuthorizationPolicy => "CANARY-E016",
            Code::V1Image => "CANARY-E017",
            Code::TwinDiverges => "CANARY-E018",
            Code::SwitchValue => "CANARY-E019",
            Code::Missing => "CANARY-E020",
            Code::Unexpected => "CANARY-E021",
            Code::WeightMoved => "CANARY-E022",
            Code::ImageDiffers => "CANARY-W030",
            Code::NoIngress => "CANARY-E040",
            Code::PatchedTwice => "CANARY-E041",
            Code::WebLabels => "CANARY-E042",
            Code::LabelsTaken => "CANARY-E043",
            Code::AnchorInWeb => "CANARY-E044",
            Code::PatchTargetGone => "CANARY-E045",
            Code::AmbiguousScalar => "CANARY-E047",
            Code::HostOfTwo => "CANARY-E046",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Code::ImageDiffers => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// What the analysis is about: the service, where it runs, and its environments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub service: String,
    /// `None` when neither the journal nor the files tell it.
    pub namespace: Option<String>,
    pub environments: Vec<String>,
    pub method: Method,
    /// The coexistence switch, when the journal tells it.
    pub switch: Option<Switch>,
}

impl Scope {
    pub fn of(config: &Settings) -> Scope {
        Scope {
            service: config.service.clone(),
            namespace: Some(config.namespace.clone()),
            environments: config.environments.iter().map(|e| e.name.clone()).collect(),
            method: config.method,
            switch: config.switch.clone(),
        }
    }

    /// Without a release in the journal: the service from gap.yaml, the environments from the
    /// directories under gap/ that hold a VirtualService patch (all of them when none does: the
    /// release has not begun, and any of them may become one), the namespace from the
    /// DestinationRule's host.
    pub fn infer(repo: &Repo) -> Result<Scope, Error> {
        let gap = repo.read(edits::GAP_YAML)?.unwrap_or_default();
        let service = Document::parse_one(gap)
            .and_then(|gap| edits::gap_yaml::service_name(&gap))
            .map_err(|e| crate::error::bad_input(format!("{}: {e}", edits::GAP_YAML)))?;
        let mut directories = Vec::new();
        let gap_dir = repo.resolve("gap")?;
        if let Ok(entries) = std::fs::read_dir(&gap_dir) {
            for entry in entries.filter_map(Result::ok) {
                if let Ok(name) = entry.file_name().into_string()
                    && entry.file_type().is_ok_and(|t| t.is_dir())
                {
                    directories.push(name);
                }
            }
        }
        directories.sort();
        let routed = |env: &String| {
            repo.read(&edits::virtual_service_patch(env))
                .ok()
                .flatten()
                .is_some()
        };
        let mut environments: Vec<String> =
            directories.iter().filter(|d| routed(d)).cloned().collect();
        if environments.is_empty() {
            environments = directories;
        }
        let host_prefix = format!("{service}-web.");
        let namespace = dr_path(repo)?
            .and_then(|path| repo.read(path).ok().flatten())
            .and_then(|text| yaml::parse_all(&text).ok())
            .and_then(|docs| docs.first()?["spec"]["host"].as_str().map(str::to_string))
            .and_then(|host| {
                let ns = host
                    .strip_prefix(&host_prefix)?
                    .strip_suffix(".svc.cluster.local")?;
                (!ns.is_empty() && !ns.contains('.')).then(|| ns.to_string())
            });
        // A web-v1 without an image of its own runs web's: a coexistence, whose switch only
        // the journal knows.
        let method = match repo
            .read(edits::GAP_YAML)?
            .and_then(|gap| yaml::parse(&gap).ok())
        {
            Some(gap)
                if gap["deployments"][WEB_V1].is_object()
                    && gap["deployments"][WEB_V1].get("image").is_none() =>
            {
                Method::Coexistence
            }
            _ => Method::Succession,
        };
        Ok(Scope {
            service,
            namespace,
            environments,
            method,
            switch: None,
        })
    }

    pub fn service_name(&self) -> String {
        format!("{}-web", self.service)
    }

    /// The Service's in-cluster name, when the namespace is known.
    pub fn cluster_host(&self) -> Option<String> {
        let ns = self.namespace.as_ref()?;
        Some(format!("{}.{ns}.svc.cluster.local", self.service_name()))
    }
}

/// The DestinationRule's file: the seed's name, or the other spelling when only it exists.
fn dr_path(src: &dyn Source) -> Result<Option<&'static str>, Error> {
    if src.read(edits::DESTINATION_RULE)?.is_some() {
        Ok(Some(edits::DESTINATION_RULE))
    } else if src.read(edits::DESTINATION_RULE_ALT)?.is_some() {
        Ok(Some(edits::DESTINATION_RULE_ALT))
    } else {
        Ok(None)
    }
}

/// A canary file, read and parsed into its one object.
pub(crate) struct Object {
    pub path: String,
    pub doc: Document,
}

impl Object {
    fn line(&self, path: &[Seg]) -> Option<usize> {
        self.doc.line_of(0, path)
    }

    pub fn value(&self) -> &Value {
        self.doc.value()
    }

    pub fn text(&self) -> &str {
        self.doc.text()
    }
}

/// Everything the rules look at, read once.
pub(crate) struct Loaded {
    pub gap: Option<Object>,
    pub destination_rule: Option<Object>,
    /// Per environment, in scope order.
    pub routes: Vec<(String, Option<Object>)>,
    pub service_patch: Option<Object>,
    /// The other YAML files where gap reads patches, for what they patch.
    pub patches: Vec<PatchFile>,
    /// Every YAML file under `gap/`, listed once for every rule that looks beyond canary's own.
    pub gap_files: Vec<String>,
}

impl Loaded {
    /// Whether `path` is one of canary's files, read as the one object of the kind canary
    /// expects there.
    pub fn is_canary_object(&self, path: &str) -> bool {
        self.destination_rule
            .iter()
            .chain(self.routes.iter().filter_map(|(_, route)| route.as_ref()))
            .chain(&self.service_patch)
            .any(|object| object.path == path)
    }
}

/// A file of someone else's where gap reads patches, read and parsed into its documents.
pub(crate) struct PatchFile {
    pub path: String,
    pub text: String,
    pub docs: Vec<Value>,
}

/// Collects findings, each with its code's severity.
pub(crate) struct Findings(Vec<Finding>);

impl Findings {
    pub fn add(&mut self, code: Code, file: &str, line: Option<usize>, message: impl Into<String>) {
        self.0.push(Finding {
            code: code.id(),
            severity: code.severity(),
            env: None,
            file: Some(file.to_string()),
            line,
            message: message.into(),
            detail: None,
        });
    }

    pub fn at(&mut self, code: Code, object: &Object, path: &[Seg], message: impl Into<String>) {
        let line = object.line(path);
        self.add(code, &object.path, line, message);
    }
}

/// What the journal knows about the release, for the agreement rules.
pub struct Journaled {
    pub config: Settings,
    pub position: crate::workflow::Position,
    /// The last thing canary wrote to each path: its hash (`None`: deleted) and, for a
    /// VirtualService patch, its weights.
    pub written: BTreeMap<String, state::Written>,
}

/// Analyse the files `src` shows. Errors in the result are findings; `Err` is only for files
/// that cannot be read at all.
pub fn analyze(
    src: &dyn Source,
    scope: &Scope,
    journal: Option<&Journaled>,
) -> Result<Vec<Finding>, Error> {
    let mut findings = Findings(Vec::new());
    let loaded = load(src, scope, &mut findings)?;
    schemas(&loaded, &mut findings);
    rules::cross_references(&loaded, scope, &mut findings);
    conflicts::conflicts(&loaded, scope, &mut findings);
    patches::targets(src, &loaded, scope, &mut findings)?;
    plain::ambiguous_scalars(&loaded, &mut findings);
    if let Some(journal) = journal {
        state::agreement(&loaded, scope, journal, &mut findings);
    }
    let mut out = findings.0;
    out.sort_by(|a, b| (&a.file, a.line, a.code).cmp(&(&b.file, b.line, b.code)));
    out.dedup();
    Ok(out)
}

fn load(src: &dyn Source, scope: &Scope, findings: &mut Findings) -> Result<Loaded, Error> {
    let gap = match src.document(edits::GAP_YAML)? {
        None => None,
        Some(doc) => match doc.and_then(Document::single) {
            Ok(doc) => Some(Object {
                path: edits::GAP_YAML.into(),
                doc,
            }),
            Err(e) => {
                findings.add(Code::Parse, edits::GAP_YAML, parse_line(&e), e.to_string());
                None
            }
        },
    };
    // Each spelling of the DestinationRule's file is read once: the seed's, and the other
    // beside it (a second rule) or instead of it.
    let destination_rule = match src.document(edits::DESTINATION_RULE)? {
        Some(read) => {
            if src.read(edits::DESTINATION_RULE_ALT)?.is_some() {
                findings.add(
                    Code::Identity,
                    edits::DESTINATION_RULE_ALT,
                    Some(1),
                    format!(
                        "a second DestinationRule file beside {}; keep one of the two",
                        edits::DESTINATION_RULE
                    ),
                );
            }
            object(edits::DESTINATION_RULE, read, "DestinationRule", findings)
        }
        None => match src.document(edits::DESTINATION_RULE_ALT)? {
            Some(read) => object(
                edits::DESTINATION_RULE_ALT,
                read,
                "DestinationRule",
                findings,
            ),
            None => None,
        },
    };
    let mut routes = Vec::new();
    for env in &scope.environments {
        let path = edits::virtual_service_patch(env);
        let route = src
            .document(&path)?
            .and_then(|read| object(&path, read, "VirtualService", findings));
        routes.push((env.clone(), route));
    }
    let service_patch = src
        .document(edits::SERVICE_PATCH)?
        .and_then(|read| object(edits::SERVICE_PATCH, read, "Service", findings));
    let gap_files = src.gap_files()?;
    Ok(Loaded {
        gap,
        destination_rule,
        routes,
        service_patch,
        patches: patches(src, scope, &gap_files)?,
        gap_files,
    })
}

/// The YAML files in gap's patch directories (of `gap_files`) that canary does not write. One
/// that does not parse is left out: it is not canary's to judge, and gap reports it.
fn patches(src: &dyn Source, scope: &Scope, gap_files: &[String]) -> Result<Vec<PatchFile>, Error> {
    let routes: Vec<String> = scope
        .environments
        .iter()
        .map(|env| edits::virtual_service_patch(env))
        .collect();
    let canary = |path: &str| {
        [
            edits::GAP_YAML,
            edits::DESTINATION_RULE,
            edits::DESTINATION_RULE_ALT,
            edits::SERVICE_PATCH,
        ]
        .contains(&path)
            || routes.iter().any(|r| r == path)
    };
    let mut out = Vec::new();
    for dir in edits::patch_dirs(scope.environments.iter().map(String::as_str)) {
        let in_dir = |path: &&String| {
            path.strip_prefix(dir.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.contains('/'))
        };
        for path in gap_files.iter().filter(in_dir) {
            if canary(path) {
                continue;
            }
            let Some(text) = src.read(path)? else {
                continue;
            };
            if let Ok(docs) = yaml::parse_all(&text) {
                out.push(PatchFile {
                    path: path.clone(),
                    text,
                    docs,
                });
            }
        }
    }
    Ok(out)
}

/// A canary-owned file holding exactly one object of `kind`, from its read (or its parse error).
fn object(
    path: &str,
    read: Result<Document, yaml::YamlError>,
    kind: &str,
    findings: &mut Findings,
) -> Option<Object> {
    let doc = match read {
        Ok(doc) => doc,
        Err(e) => {
            findings.add(Code::Parse, path, parse_line(&e), e.to_string());
            return None;
        }
    };
    if doc.values().len() != 1 {
        findings.add(
            Code::Identity,
            path,
            Some(1),
            format!(
                "holds {} YAML documents; canary expects exactly one {kind}",
                doc.values().len()
            ),
        );
        return None;
    }
    let object = Object {
        path: path.to_string(),
        doc,
    };
    if object.value()["kind"] != kind {
        findings.at(
            Code::Identity,
            &object,
            &[Seg::Key("kind".into())],
            format!(
                "holds a {}, where canary expects a {kind}",
                object.value()["kind"]
            ),
        );
        return None;
    }
    Some(object)
}

/// The line a parse error names ("line N ..."), if any.
fn parse_line(e: &yaml::YamlError) -> Option<usize> {
    let text = e.to_string();
    let rest = &text[text.find("line ")? + 5..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Every object against its schema, and each object's name.
fn schemas(l: &Loaded, findings: &mut Findings) {
    use schema::IstioKind;
    let istio = l
        .destination_rule
        .iter()
        .map(|o| (o, IstioKind::DestinationRule))
        .chain(
            l.routes
                .iter()
                .filter_map(|(_, o)| o.as_ref())
                .map(|o| (o, IstioKind::VirtualService)),
        );
    for (object, kind) in istio {
        for v in schema::validate_istio(kind, object.value()) {
            findings.at(
                Code::Schema,
                object,
                &v.path,
                format!("{}: {}", at_path(&v.path), v.message),
            );
        }
    }
    if let Some(object) = &l.service_patch {
        for v in schema::validate_service(object.value()) {
            findings.at(
                Code::ServiceType,
                object,
                &v.path,
                format!("{}: {}", at_path(&v.path), v.message),
            );
        }
    }
}

/// A violation's path for a message; the object itself when empty.
fn at_path(path: &[Seg]) -> String {
    if path.is_empty() {
        "the object".into()
    } else {
        yaml::path_text(path)
    }
}

#[cfg(test)]
mod tests;
