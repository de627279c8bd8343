//! Edits of gap.yaml, the service's deploy config in the GitOps repo.
//!
//! The canary runs a second deployment (the "twin", e.g. `web-v1`) next to
//! the service's own (`web`); these functions add, adjust and remove it. Each `plan_*` returns
//! the splices of its edit and what they mean, or `None` when the file already says what the
//! edit would make it say; plans made on one reading join, and a step proves them together by
//! one re-read. The public functions plan one edit and prove it at once.
//!
//! Here: the reading of gap.yaml the edits share (`Gap`), the public functions and the
//! readers; beside it one file a concern: `labels` (podLabels), `twin` (the v1 deployment and
//! its image), `policy` (its authorizationPolicy), `switch` (the env value or command argument
//! that tells v1 from v2) and `removal`. They write through `yaml::cursor::Cursor`.

use serde_json::{Map, Value};

use crate::yaml::YamlError;
use crate::yaml::cursor::Cursor;
use crate::yaml::splice::{Plan, Splice, prove};
use crate::yaml::{Document, Entry, Kind, Node, Seg};

mod labels;
mod policy;
mod removal;
mod switch;
mod twin;

pub(crate) use labels::plan_pod_labels;
pub(crate) use policy::plan_ingress_authorization;
pub(crate) use removal::plan_removal;
pub use switch::check_switch;
pub(crate) use switch::{plan_command_arg, plan_env_value};
pub(crate) use twin::{plan_twin, plan_twin_image};

/// Add the twin deployment right after `dep`: canary's `podLabels`,
/// `ingress` and `image`, then a verbatim copy of dep's other keys.
///
/// An existing twin that already means this (ignoring the
/// `authorizationPolicy` that [`ensure_ingress_authorization`] adds) is
/// left alone; any other existing twin is a conflict.
pub fn ensure_twin_deployment(
    doc: &Document,
    dep: &str,
    twin: &str,
    twin_labels: &[(&str, &str)],
    image_repository: &str,
    image_tag: &str,
) -> Result<Option<Document>, YamlError> {
    ensure_twin(
        doc,
        dep,
        twin,
        twin_labels,
        Some((image_repository, image_tag)),
    )
}

/// Make `deployments.<dep>.podLabels` contain `labels` (see [`plan_pod_labels`]).
pub fn ensure_pod_labels(
    doc: &Document,
    dep: &str,
    labels: &[(&str, &str)],
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_pod_labels(doc, dep, labels))
}

/// See [`plan_twin`].
pub fn ensure_twin(
    doc: &Document,
    dep: &str,
    twin: &str,
    twin_labels: &[(&str, &str)],
    image: Option<(&str, &str)>,
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_twin(doc, dep, twin, twin_labels, image))
}

/// See [`plan_ingress_authorization`].
pub fn ensure_ingress_authorization(
    doc: &Document,
    dep: &str,
    twin: &str,
    ingress_namespace: &str,
    ingress_service_account: &str,
) -> Result<Option<Document>, YamlError> {
    let plan =
        plan_ingress_authorization(doc, dep, twin, ingress_namespace, ingress_service_account);
    proved(doc, plan)
}

/// See [`plan_twin_image`].
pub fn set_twin_image(
    doc: &Document,
    twin: &str,
    image_repository: &str,
    image_tag: &str,
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_twin_image(doc, twin, image_repository, image_tag))
}

/// See [`plan_removal`].
pub fn remove_deployment(doc: &Document, dep: &str) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_removal(doc, dep))
}

/// An edit planned alone, proved at once.
fn proved(
    doc: &Document,
    plan: Result<Option<Plan>, YamlError>,
) -> Result<Option<Document>, YamlError> {
    plan?.map(|plan| prove(doc, plan)).transpose()
}

/// See [`plan_env_value`].
pub fn set_env_value(
    doc: &Document,
    dep: &str,
    name: &str,
    value: &str,
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_env_value(doc, dep, name, value))
}

/// See [`plan_command_arg`].
pub fn set_command_arg(
    doc: &Document,
    dep: &str,
    other: &str,
    value: &str,
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_command_arg(doc, dep, other, value))
}

/// The parsed value of `deployments.<dep>`, if present.
pub fn deployment_value(doc: &Document, dep: &str) -> Option<Value> {
    doc.value().get("deployments")?.get(dep).cloned()
}

/// The service's name (gap.yaml's top-level `name:`).
pub fn service_name(doc: &Document) -> Result<String, YamlError> {
    doc.value()
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| YamlError::Missing("no top-level name in gap.yaml".into()))
}

/// An anchor definition: its name, and the 1-based line of its `&name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub name: String,
    pub line: usize,
}

/// The anchors defined in `deployments.<dep>`, the deployment's own node included. canary
/// copies web into web-v1 as it is written: an anchor there would be defined twice, and the
/// aliases after web-v1 would then point at web-v1's copy.
pub fn anchors_in_deployment(doc: &Document, dep: &str) -> Vec<Anchor> {
    let deployment = doc
        .root()
        .and_then(|root| root.get("deployments"))
        .and_then(|deployments| deployments.value.get(dep));
    let mut found = Vec::new();
    let mut todo: Vec<&Node> = deployment.map(|e| &e.value).into_iter().collect();
    while let Some(node) = todo.pop() {
        if let Some((name, at)) = &node.anchor {
            found.push(Anchor {
                name: name.clone(),
                line: doc.line_number(*at),
            });
        }
        match &node.kind {
            Kind::Map(entries) => todo.extend(entries.iter().rev().map(|e| &e.value)),
            Kind::Seq(items) => todo.extend(items.iter().rev()),
            Kind::Scalar { .. } | Kind::Alias => {}
        }
    }
    found
}

/// gap.yaml as parsed, with the cursor its edits are written through.
struct Gap<'a>(Cursor<'a>);

impl<'a> std::ops::Deref for Gap<'a> {
    type Target = Cursor<'a>;

    fn deref(&self) -> &Cursor<'a> {
        &self.0
    }
}

/// A deployment as written: a block mapping, or a flow mapping (`web: {...}`).
enum Found<'a> {
    Block(&'a Entry),
    Flow(&'a Node),
}

impl<'a> Gap<'a> {
    fn open(doc: &'a Document) -> Result<Self, YamlError> {
        if let Some(second) = doc.roots().get(1) {
            return Err(doc.unsupported(
                second.start,
                "a second YAML document starts here; canary edits single-document files",
            ));
        }
        Ok(Gap(Cursor::new(doc)))
    }

    fn value(&self) -> &'a Value {
        self.doc.value()
    }

    /// `splices`, meaning this file with `deployments.<name>` set to `value` (removed when
    /// `None`).
    fn plan(&self, splices: Vec<Splice>, name: &str, value: Option<Value>) -> Plan {
        Plan::new(splices).and_set(&["deployments", name], value)
    }

    fn deployments(&self) -> Result<&'a Map<String, Value>, YamlError> {
        self.value()
            .get("deployments")
            .and_then(Value::as_object)
            .ok_or_else(|| YamlError::Missing("no deployments mapping".into()))
    }

    fn deployment(&self, dep: &str) -> Result<&'a Map<String, Value>, YamlError> {
        self.deployments()?
            .get(dep)
            .and_then(Value::as_object)
            .ok_or_else(|| YamlError::Missing(format!("no deployments.{dep} mapping")))
    }

    /// The entries of `deployments`, as written.
    fn deployment_entries(&self) -> Result<&'a [Entry], YamlError> {
        let root = self
            .doc
            .root()
            .ok_or_else(|| YamlError::Missing("no deployments mapping".into()))?;
        let deployments = root
            .get("deployments")
            .filter(|_| !root.flow)
            .ok_or_else(|| {
                self.doc
                    .unsupported(root.start, "`deployments` is not a plain top-level key")
            })?;
        self.child(deployments, "deployments")?
            .and_then(Node::entries)
            .ok_or_else(|| {
                self.doc
                    .unsupported(deployments.key_start, "deployments is not a block mapping")
            })
    }

    /// The entry `deployments.<dep>`, as written.
    fn entry(&self, dep: &str) -> Result<&'a Entry, YamlError> {
        let entries = self.deployment_entries()?;
        entries.iter().find(|e| e.key == dep).ok_or_else(|| {
            let at = entries.first().map_or(0, |e| e.key_start);
            self.doc.unsupported(
                at,
                format!("deployments.{dep} is not a plain block key here"),
            )
        })
    }

    /// `deployments.<dep>` as written, block or flow; call after checking it is a mapping.
    fn locate_any(&self, dep: &str) -> Result<Found<'a>, YamlError> {
        let entry = self.entry(dep)?;
        if entry.value.flow && !entry.value.has_props() {
            return self
                .flow_at(entry, &format!("deployments.{dep}"))
                .map(Found::Flow);
        }
        self.block(entry, dep).map(Found::Block)
    }

    /// `deployments.<dep>` as written; call after checking it is a mapping.
    fn locate(&self, dep: &str) -> Result<&'a Entry, YamlError> {
        self.block(self.entry(dep)?, dep)
    }

    /// The entry of `deployments.<dep>`, which must hold a block mapping.
    fn block(&self, entry: &'a Entry, dep: &str) -> Result<&'a Entry, YamlError> {
        match self.child(entry, &format!("deployments.{dep}"))? {
            Some(node) if node.entries().is_some() => Ok(entry),
            _ => Err(self.doc.unsupported(
                entry.key_start,
                format!("deployments.{dep} is not a block mapping"),
            )),
        }
    }

    /// " (line N)" of the deepest key of `keys` written in the file, for messages; nothing when
    /// not even the first is (a key only a merge gives).
    fn at_keys(&self, keys: &[&str]) -> String {
        let path: Vec<Seg> = keys.iter().map(|k| Seg::Key((*k).into())).collect();
        let written = self.find(&path[..1]).is_some();
        at(written.then(|| self.doc.line_of(0, &path)).flatten())
    }

    fn not_a_mapping(&self, path: &str) -> YamlError {
        let keys: Vec<&str> = path.split('.').collect();
        YamlError::Conflict(format!("{path} is not a mapping{}", self.at_keys(&keys)))
    }
}

/// " (line N)" when the line is known.
fn at(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // The edits on text, as the tests below were written: read, edit, give the text back.
    pub(super) fn on_text(
        text: &str,
        edit: impl FnOnce(&Document) -> Result<Option<Document>, YamlError>,
    ) -> Result<String, YamlError> {
        let doc = Document::parse_one(text)?;
        Ok(edit(&doc)?.map_or_else(|| text.to_string(), Document::into_text))
    }

    fn set_twin_image(
        text: &str,
        twin: &str,
        repository: &str,
        tag: &str,
    ) -> Result<String, YamlError> {
        on_text(text, |d| super::set_twin_image(d, twin, repository, tag))
    }

    fn remove_deployment(text: &str, dep: &str) -> Result<String, YamlError> {
        on_text(text, |d| super::remove_deployment(d, dep))
    }

    fn deployment_value(text: &str, dep: &str) -> Result<Option<Value>, YamlError> {
        Ok(super::deployment_value(&Document::parse_one(text)?, dep))
    }

    fn service_name(text: &str) -> Result<String, YamlError> {
        super::service_name(&Document::parse_one(text)?)
    }

    pub(super) fn set_env(text: &str, value: &str) -> Result<String, YamlError> {
        on_text(text, |d| super::set_env_value(d, "web", "IMPL", value))
    }

    const LABELS: [(&str, &str); 2] = [("version", "v2"), ("canary", "enabled")];
    const TWIN_LABELS: [(&str, &str); 2] = [("version", "v1"), ("canary", "enabled")];
    const REPO: &str = "sap-ems-base-infra-package-p/gap-images/my-service";
    const TAG: &str = "sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";

    const SEED: &str = "\
# gap/gap.yaml
name: my-service
deployments:
  web:
    ingress:
      enabled: true
    command:
      - /opt/docker/bin/start
";

    const SEED_LABELLED: &str = "\
# gap/gap.yaml
name: my-service
deployments:
  web:
    podLabels:
      version: v2
      canary: enabled
    ingress:
      enabled: true
    command:
      - /opt/docker/bin/start
";

    const SEED_TWIN: &str = "\
# gap/gap.yaml
name: my-service
deployments:
  web:
    podLabels:
      version: v2
      canary: enabled
    ingress:
      enabled: true
    command:
      - /opt/docker/bin/start
  web-v1:
    podLabels:
      version: v1
      canary: enabled
    ingress:
      enabled: false
    image:
      repository: sap-ems-base-infra-package-p/gap-images/my-service
      tag: sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f
    command:
      - /opt/docker/bin/start
";

    const SEED_POLICY: &str = "    authorizationPolicy:
      rules:
        - from:
            - source:
                principals:
                  - namespace: ingress-nginx
                    serviceAccountName:
                      - \"ingress-nginx\"
";

    fn labels(text: &str) -> Result<String, YamlError> {
        on_text(text, |d| ensure_pod_labels(d, "web", &LABELS))
    }

    fn twin(text: &str) -> Result<String, YamlError> {
        on_text(text, |d| {
            ensure_twin_deployment(d, "web", "web-v1", &TWIN_LABELS, REPO, TAG)
        })
    }

    fn policy(text: &str) -> Result<String, YamlError> {
        on_text(text, |d| {
            ensure_ingress_authorization(d, "web", "web-v1", "ingress-nginx", "ingress-nginx")
        })
    }

    /// Runs an edit twice: the second run must not change anything.
    fn idempotent(edit: fn(&str) -> Result<String, YamlError>, text: &str) -> String {
        let once = edit(text).unwrap();
        assert_eq!(edit(&once).unwrap(), once, "second run changed the text");
        once
    }

    /// twin + policy, then removing the twin gives back the input exactly.
    fn assert_round_trip(text: &str) {
        let with_twin = policy(&twin(text).unwrap()).unwrap();
        assert_ne!(with_twin, text);
        assert_eq!(remove_deployment(&with_twin, "web-v1").unwrap(), text);
    }

    /// Plans made on one reading of `text`, proved together by one re-read.
    fn planned_together(
        text: &str,
        plans: impl FnOnce(&Document) -> Result<Vec<Option<Plan>>, YamlError>,
    ) -> Result<String, YamlError> {
        let doc = Document::parse_one(text)?;
        let plan = plans(&doc)?.into_iter().flatten().reduce(Plan::join);
        Ok(proved(&doc, Ok(plan))?.map_or_else(|| text.to_string(), Document::into_text))
    }

    #[test]
    fn labels_and_twin_planned_on_one_reading_write_what_they_write_one_after_the_other() {
        let both = |text: &str| {
            planned_together(text, |doc| {
                let labels = plan_pod_labels(doc, "web", &LABELS)?;
                let twin = plan_twin(doc, "web", "web-v1", &TWIN_LABELS, Some((REPO, TAG)))?;
                Ok(vec![labels, twin])
            })
        };
        assert_eq!(both(SEED).unwrap(), SEED_TWIN);
        // Labels appended to the deployment's last key, where the twin goes too.
        let last = "deployments:\n  web:\n    replicas: 1\n    podLabels:\n      app: x\n";
        assert_eq!(both(last).unwrap(), twin(&labels(last).unwrap()).unwrap());
        let flow = "deployments:\n  web: {replicas: 1}\n";
        assert_eq!(both(flow).unwrap(), twin(&labels(flow).unwrap()).unwrap());
    }

    #[test]
    fn a_switch_and_labels_of_one_deployment_join() {
        let text = "deployments:\n  web:\n    command: [a]\n    env:\n      - name: IMPL\n        value: v2\n";
        let out = planned_together(text, |doc| {
            let labels = plan_pod_labels(doc, "web", &LABELS)?;
            let switch = plan_env_value(doc, "web", "IMPL", "v1")?;
            Ok(vec![labels, switch])
        })
        .unwrap();
        assert_eq!(out, set_env(&labels(text).unwrap(), "v1").unwrap());
    }

    #[test]
    fn a_joined_plan_that_misses_its_meaning_is_refused() {
        let doc = Document::parse_one(SEED).unwrap();
        let labels = plan_pod_labels(&doc, "web", &LABELS).unwrap().unwrap();
        // The labels' splices, said to mean a label they do not write.
        let wrong = labels.and_set(
            &["deployments", "web", "podLabels", "extra"],
            Some("x".into()),
        );
        let err = prove(&doc, wrong).unwrap_err().to_string();
        assert!(err.contains("deployments.web.podLabels.extra"), "{err}");
    }

    #[test]
    fn seed_gets_labels_twin_and_policy() {
        assert_eq!(idempotent(labels, SEED), SEED_LABELLED);
        assert_eq!(idempotent(twin, SEED_LABELLED), SEED_TWIN);
        assert_eq!(
            idempotent(policy, SEED_TWIN),
            format!("{SEED_TWIN}{SEED_POLICY}")
        );
        assert_round_trip(SEED_LABELLED);
        assert_round_trip(SEED);
    }

    #[test]
    fn twin_check_ignores_the_policy_it_does_not_write() {
        let full = policy(&twin(SEED_LABELLED).unwrap()).unwrap();
        assert_eq!(twin(&full).unwrap(), full);
    }

    #[test]
    fn crlf_is_kept() {
        let crlf = |s: &str| s.replace('\n', "\r\n");
        assert_eq!(labels(&crlf(SEED)).unwrap(), crlf(SEED_LABELLED));
        assert_eq!(idempotent(twin, &crlf(SEED_LABELLED)), crlf(SEED_TWIN));
        let full = idempotent(policy, &crlf(SEED_TWIN));
        assert_eq!(full, crlf(&format!("{SEED_TWIN}{SEED_POLICY}")));
        assert_round_trip(&crlf(SEED_LABELLED));
    }

    #[test]
    fn file_without_final_newline() {
        let text = SEED_LABELLED.trim_end();
        let with_twin = twin(text).unwrap();
        assert_eq!(with_twin, SEED_TWIN.trim_end());
        assert_round_trip(text);
    }

    const FOUR: &str = "\
name: svc
deployments:
    web:
        ingress:
            enabled: true
        command:
            - start
    worker:
        replicas: 1
";

    #[test]
    fn four_space_indentation() {
        let labelled = idempotent(labels, FOUR);
        assert_eq!(
            labelled,
            "\
name: svc
deployments:
    web:
        podLabels:
            version: v2
            canary: enabled
        ingress:
            enabled: true
        command:
            - start
    worker:
        replicas: 1
"
        );
        let full = idempotent(policy, &idempotent(twin, &labelled));
        assert_eq!(
            full,
            "\
name: svc
deployments:
    web:
        podLabels:
            version: v2
            canary: enabled
        ingress:
            enabled: true
        command:
            - start
    web-v1:
        podLabels:
            version: v1
            canary: enabled
        ingress:
            enabled: false
        image:
            repository: sap-ems-base-infra-package-p/gap-images/my-service
            tag: sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f
        command:
            - start
        authorizationPolicy:
            rules:
                - from:
                      - source:
                            principals:
                                - namespace: ingress-nginx
                                  serviceAccountName:
                                      - \"ingress-nginx\"
    worker:
        replicas: 1
"
        );
        assert_round_trip(&labelled);
        assert_round_trip(&labelled.replace('\n', "\r\n"));
    }

    const INDENTLESS: &str = "\
name: svc
deployments:
  web:
    command:
    - start
    env:
    - name: A
      value: b
";

    #[test]
    fn indentless_sequences() {
        let full = idempotent(policy, &idempotent(twin, &idempotent(labels, INDENTLESS)));
        assert_eq!(
            full,
            "\
name: svc
deployments:
  web:
    podLabels:
      version: v2
      canary: enabled
    command:
    - start
    env:
    - name: A
      value: b
  web-v1:
    podLabels:
      version: v1
      canary: enabled
    ingress:
      enabled: false
    image:
      repository: sap-ems-base-infra-package-p/gap-images/my-service
      tag: sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f
    command:
    - start
    env:
    - name: A
      value: b
    authorizationPolicy:
      rules:
      - from:
        - source:
            principals:
            - namespace: ingress-nginx
              serviceAccountName:
              - \"ingress-nginx\"
"
        );
        assert_round_trip(INDENTLESS);
    }

    const RICH: &str = "\
# gap/gap.yaml -- edited by hand
---
# the service
name: my-service   # service name
deployments:
  # the web frontend
  web:
    podLabels:
      team: x  # owning team
    ingress:
      enabled: true
    image:
      repository: old/repo
      tag: \"1.0\"
    # how to start
    command:
      - /opt/docker/bin/start
    env:
      - name: MODE
        value: \"web\"   # quoted
      # - name: DEBUG
    resources:
      limits:
        memory: 512Mi

    replicas: 2
    authorizationPolicy:
      rules:
        - from:
            - source:
                principals:
                  - namespace: other
                    serviceAccountName:
                      - \"caller\"
  # background jobs
  worker:
    command:
      - worker
  cron:
    schedule: \"*/5 * * * *\"
# end of file
";

    const RICH_TWIN: &str = "  web-v1:
    podLabels:
      team: x  # owning team
      version: v1
      canary: enabled
    ingress:
      enabled: false
    image:
      repository: sap-ems-base-infra-package-p/gap-images/my-service
      tag: sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f
    # how to start
    command:
      - /opt/docker/bin/start
    env:
      - name: MODE
        value: \"web\"   # quoted
    resources:
      limits:
        memory: 512Mi
    replicas: 2
";

    const RICH_POLICY: &str = "    authorizationPolicy:
      rules:
        - from:
            - source:
                principals:
                  - namespace: other
                    serviceAccountName:
                      - \"caller\"
        - from:
            - source:
                principals:
                  - namespace: ingress-nginx
                    serviceAccountName:
                      - \"ingress-nginx\"
";

    #[test]
    fn rich_file_keeps_comments_and_other_deployments() {
        let labelled = idempotent(labels, RICH);
        let expected_labels = RICH.replace(
            "      team: x  # owning team\n",
            "      team: x  # owning team\n      version: v2\n      canary: enabled\n",
        );
        assert_eq!(labelled, expected_labels);

        let with_twin = idempotent(twin, &labelled);
        let (head, tail) = labelled.split_once("  # background jobs\n").unwrap();
        assert_eq!(
            with_twin,
            format!("{head}{RICH_TWIN}  # background jobs\n{tail}")
        );

        let full = idempotent(policy, &with_twin);
        assert_eq!(
            full,
            format!("{head}{RICH_TWIN}{RICH_POLICY}  # background jobs\n{tail}")
        );
        assert_round_trip(&labelled);
        assert_round_trip(RICH);
    }

    #[test]
    fn policy_is_reindented_for_a_twin_at_another_column() {
        let text = "\
deployments:
  web:
    authorizationPolicy:
      action: ALLOW
      rules:
        - to: [{operation: {methods: [GET]}}]
  web-v1:
      replicas: 1
";
        let out = idempotent(policy, text);
        assert_eq!(
            out,
            "\
deployments:
  web:
    authorizationPolicy:
      action: ALLOW
      rules:
        - to: [{operation: {methods: [GET]}}]
  web-v1:
      replicas: 1
      authorizationPolicy:
        action: ALLOW
        rules:
          - to: [{operation: {methods: [GET]}}]
          - from:
              - source:
                  principals:
                    - namespace: ingress-nginx
                      serviceAccountName:
                        - \"ingress-nginx\"
"
        );
    }

    #[test]
    fn existing_ingress_rule_is_not_repeated() {
        // web already admits the ingress controller: the twin gets the same policy.
        let text = format!("{SEED}{SEED_POLICY}  web-v1:\n    replicas: 1\n");
        assert_eq!(idempotent(policy, &text), format!("{text}{SEED_POLICY}"));
    }

    #[test]
    fn block_scalars_are_copied_verbatim() {
        let text = "\
deployments:
  web:
    config: |
      # not a comment

      key: value
    replicas: 1
  cron:
    replicas: 0
";
        let out = idempotent(twin, text);
        let copy = "    config: |\n      # not a comment\n\n      key: value\n    replicas: 1\n";
        assert!(
            out.contains(&format!("      tag: {TAG}\n{copy}  cron:\n")),
            "{out}"
        );
        assert_eq!(remove_deployment(&out, "web-v1").unwrap(), text);
    }

    #[test]
    fn twin_without_any_labels() {
        let out = on_text(SEED, |d| {
            ensure_twin_deployment(d, "web", "web-v1", &[], REPO, TAG)
        })
        .unwrap();
        let tail = format!(
            "  web-v1:\n    ingress:\n      enabled: false\n    image:\n      repository: {REPO}\n      tag: {TAG}\n    command:\n      - /opt/docker/bin/start\n"
        );
        assert_eq!(out, format!("{SEED}{tail}"));
    }

    #[test]
    fn labels_merge_into_existing_pod_labels() {
        let text = "deployments:\n  web:\n    podLabels:\n      version: v2\n    replicas: 1\n";
        assert_eq!(
            idempotent(labels, text),
            "deployments:\n  web:\n    podLabels:\n      version: v2\n      canary: enabled\n    replicas: 1\n"
        );
        let empty = "deployments:\n  web:\n    podLabels:\n    replicas: 1\n";
        assert_eq!(
            idempotent(labels, empty),
            "deployments:\n  web:\n    podLabels:\n      version: v2\n      canary: enabled\n    replicas: 1\n"
        );
    }

    #[test]
    fn set_twin_image_keeps_line_comments() {
        let text = SEED_TWIN
            .replace("      tag: sha256:be6b", "      tag: \"sha256:be6b")
            .replace("7f65f\n    command", "7f65f\" # pinned\n    command");
        let out = set_twin_image(&text, "web-v1", "other/repo", "1.2.3").unwrap();
        assert_eq!(
            out,
            text.replace(REPO, "other/repo")
                .replace(&format!("\"{TAG}\" # pinned"), "\"1.2.3\" # pinned")
        );
        assert_eq!(
            set_twin_image(&out, "web-v1", "other/repo", "1.2.3").unwrap(),
            out
        );
        // Unchanged values keep their quoting.
        assert_eq!(set_twin_image(&text, "web-v1", REPO, TAG).unwrap(), text);
        let err = set_twin_image(SEED, "web-v1", "r", "t").unwrap_err();
        assert!(
            matches!(err, YamlError::Missing(ref m) if m == "no deployments.web-v1 mapping"),
            "{err}"
        );
    }

    #[test]
    fn remove_deployment_removes_comments_inside_and_is_idempotent() {
        let out = remove_deployment(RICH, "web").unwrap();
        let (head, rest) = RICH.split_once("  web:\n").unwrap();
        let (_, tail) = rest.split_once("  # background jobs\n").unwrap();
        assert_eq!(out, format!("{head}  # background jobs\n{tail}"));
        assert_eq!(remove_deployment(&out, "web").unwrap(), out);
        assert_eq!(remove_deployment(SEED, "web-v1").unwrap(), SEED);
        let err = remove_deployment(SEED, "web").unwrap_err();
        assert!(
            matches!(err, YamlError::Unsupported { line: 4, .. }),
            "{err}"
        );
    }

    #[test]
    fn readers() {
        assert_eq!(service_name(RICH).unwrap(), "my-service");
        assert_eq!(
            deployment_value(RICH, "worker").unwrap(),
            Some(json!({"command": ["worker"]}))
        );
        assert_eq!(deployment_value(RICH, "nope").unwrap(), None);
        assert!(matches!(service_name("a: 1\n"), Err(YamlError::Missing(_))));
    }

    #[test]
    fn missing_deployment() {
        let text = "name: x\ndeployments:\n  worker:\n    replicas: 1\n";
        for err in [
            labels(text).unwrap_err(),
            twin(text).unwrap_err(),
            policy(text).unwrap_err(),
        ] {
            assert_eq!(err.to_string(), "no deployments.web mapping");
            assert!(matches!(err, YamlError::Missing(_)));
        }
        let err = labels("name: x\n").unwrap_err();
        assert_eq!(err.to_string(), "no deployments mapping");
    }

    #[test]
    fn conflicting_label() {
        let text = "name: x\ndeployments:\n  web:\n    podLabels:\n      version: v3\n";
        let err = labels(text).unwrap_err();
        assert!(matches!(err, YamlError::Conflict(_)));
        assert_eq!(
            err.to_string(),
            "deployments.web.podLabels.version is \"v3\" (line 5); canary needs \"v2\""
        );
        let flow = "name: x\ndeployments:\n  web:\n    podLabels: {version: v3}\n";
        assert_eq!(
            labels(flow).unwrap_err().to_string(),
            "deployments.web.podLabels.version is \"v3\" (line 4); canary needs \"v2\""
        );
        let flow_ok = "name: x\ndeployments:\n  web: {podLabels: {version: v2, canary: enabled}}\n";
        assert_eq!(labels(flow_ok).unwrap(), flow_ok);
    }

    #[test]
    fn different_existing_twin() {
        let text = SEED_TWIN
            .replace("replicas", "x")
            .replace("enabled: false", "enabled: true");
        let err = twin(&text).unwrap_err();
        assert!(matches!(err, YamlError::Conflict(_)));
        assert_eq!(
            err.to_string(),
            "deployments.web-v1 already exists (line 12) and differs from what canary writes"
        );
        let other_policy = format!(
            "{SEED_TWIN}{}",
            SEED_POLICY.replace("ingress-nginx\"", "someone\"")
        );
        let err = policy(&other_policy).unwrap_err();
        assert_eq!(
            err.to_string(),
            "deployments.web-v1.authorizationPolicy already exists (line 23) and differs from what canary writes"
        );
    }

    #[test]
    fn flow_style_is_edited_inside_the_flow() {
        let text = "name: x\ndeployments:\n  web: {ingress: {enabled: true}, command: [a, \"b\"]}\n  worker:\n    replicas: 1\n";
        let labelled = idempotent(labels, text);
        assert_eq!(
            labelled,
            text.replace(
                "web: {",
                "web: {podLabels: {version: v2, canary: enabled}, "
            )
        );
        let full = idempotent(policy, &idempotent(twin, &labelled));
        let twin_line = format!(
            "  web-v1: {{podLabels: {{version: v1, canary: enabled}}, ingress: {{enabled: false}}, image: {{repository: {REPO}, tag: {TAG}}}, command: [a, \"b\"], authorizationPolicy: {{rules: [{{from: [{{source: {{principals: [{{namespace: ingress-nginx, serviceAccountName: [ingress-nginx]}}]}}}}]}}]}}}}\n"
        );
        assert_eq!(
            full,
            labelled.replace("  worker:", &format!("{twin_line}  worker:"))
        );
        assert_eq!(remove_deployment(&full, "web-v1").unwrap(), labelled);
    }

    #[test]
    fn flow_pod_labels_and_policy_in_a_block_deployment() {
        let text = "deployments:\n  web:\n    podLabels: { team: x }  # owners\n    authorizationPolicy: {rules: [{from: [{source: {principals: [{namespace: o, serviceAccountName: [c]}]}}]}]}\n";
        let labelled = idempotent(labels, text);
        assert!(
            labelled.contains("podLabels: { team: x, version: v2, canary: enabled }  # owners\n"),
            "{labelled}"
        );
        let full = idempotent(policy, &idempotent(twin, &labelled));
        assert!(
            full.contains("  web-v1:\n    podLabels: {team: x, version: v1, canary: enabled}\n"),
            "{full}"
        );
        assert!(
            full.ends_with("    authorizationPolicy: {rules: [{from: [{source: {principals: [{namespace: o, serviceAccountName: [c]}]}}]}, {from: [{source: {principals: [{namespace: ingress-nginx, serviceAccountName: [ingress-nginx]}]}}]}]}\n"),
            "{full}"
        );
        assert_eq!(remove_deployment(&full, "web-v1").unwrap(), labelled);
    }

    #[test]
    fn invalid_yaml_is_a_parse_error() {
        let err = labels("name: [oops\ndeployments:\n").unwrap_err();
        assert!(matches!(err, YamlError::Parse(_)), "{err}");
        assert!(err.to_string().contains("line "), "{err}");
    }

    #[test]
    /// How fast this is belongs to the benchmarks; here, only that a big file edits right.
    fn a_five_thousand_line_file_round_trips() {
        let mut text = String::from("name: big\ndeployments:\n");
        for i in 0..1000 {
            text.push_str(&format!(
                "  dep{i}:\n    # comment\n    command:\n      - run\n    replicas: {i}\n"
            ));
        }
        text.push_str(SEED.split_once("deployments:\n").unwrap().1);
        assert!(text.lines().count() > 5000);
        let out = policy(&twin(&labels(&text).unwrap()).unwrap()).unwrap();
        let back = remove_deployment(&out, "web-v1").unwrap();
        assert_eq!(back, labels(&text).unwrap());
    }
}

#[cfg(test)]
mod anchor_tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, usize)> {
        anchors_in_deployment(&Document::parse(text).unwrap(), "web")
            .into_iter()
            .map(|a| (a.name, a.line))
            .collect()
    }

    #[test]
    fn anchors_inside_the_deployment_are_found_with_their_lines() {
        let text = "\
name: s
x-base: &base {a: 1}
deployments:
  web: &web
    <<: *base
    env: &env
      - {name: A, value: \"a&b\"}   # not &an anchor
    command: [&cmd start]
  worker:
    env: *env
    other: &other 1
";
        assert_eq!(
            names(text),
            [("web".into(), 4), ("env".into(), 6), ("cmd".into(), 8)]
        );
    }

    #[test]
    fn aliases_in_the_deployment_and_anchors_elsewhere_are_not_its_anchors() {
        let text = "\
x: &x {deployments: {web: &no 1}}
deployments:
  worker: &w {web: &no2 1}
  web:
    <<: *x
    note: \"&quoted\"
    block: |
      &literal
---
deployments:
  web: &second-document 1
";
        assert_eq!(names(text), Vec::<(String, usize)>::new());
        assert_eq!(names("deployments:\n  web:\n    a: b\n"), Vec::new());
        assert_eq!(names("deployments: [&a web]\n"), Vec::new());
        assert!(Document::parse("deployments: [&a\n").is_err());
    }
}
