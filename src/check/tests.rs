//! Unit tests of the analysis on in-memory files; the end-to-end tests
//! (tests/testsuite/check.rs) run the real binary over whole walks and hand-broken repositories.

use std::collections::BTreeMap;

use super::*;

struct Files(BTreeMap<String, String>);

impl Source for Files {
    fn read(&self, path: &str) -> Result<Option<String>, Error> {
        Ok(self.0.get(path).cloned())
    }

    fn yaml_files(&self, dir: &str) -> Result<Vec<String>, Error> {
        let prefix = format!("{dir}/");
        Ok(self
            .0
            .keys()
            .filter(|p| {
                p.strip_prefix(&prefix)
                    .is_some_and(|name| !name.contains('/'))
            })
            .cloned()
            .collect())
    }

    fn gap_files(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .0
            .keys()
            .filter(|p| p.starts_with("gap/"))
            .cloned()
            .collect())
    }
}

#[test]
fn every_code_is_documented() {
    let doc = include_str!("../../docs/check.md");
    for code in Code::ALL {
        assert!(
            doc.contains(code.id()),
            "docs/check.md does not list {}",
            code.id()
        );
    }
    let mut ids: Vec<&str> = Code::ALL.iter().map(|c| c.id()).collect();
    ids.dedup();
    assert_eq!(ids.len(), Code::ALL.len(), "codes are unique");
}

#[test]
fn a_file_that_does_not_parse_is_e001_with_its_line() {
    let files = Files(BTreeMap::from([(
        edits::GAP_YAML.to_string(),
        "name: x\ndeployments: [oops\n".to_string(),
    )]));
    let scope = Scope {
        service: "x".into(),
        namespace: None,
        environments: vec![],
        method: Method::Succession,
        switch: None,
    };
    let findings = analyze(&files, &scope, None).unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].code, "CANARY-E001");
    assert!(findings[0].line.is_some(), "{findings:?}");
}

const SEED_GAP: &str = "name: s\ndeployments:\n  web:\n    ingress:\n      enabled: true\n    command:\n      - start\n";

fn scope() -> Scope {
    Scope {
        service: "s".into(),
        namespace: Some("ns".into()),
        environments: vec!["staging".into(), "production".into()],
        method: Method::Succession,
        switch: None,
    }
}

/// `(code, line)` of findings.
type Found = Vec<(&'static str, Option<usize>)>;

/// Every finding the analysis makes of these files, without a journal.
fn analyzed(files: &[(&str, &str)]) -> Vec<Finding> {
    let files = Files(
        files
            .iter()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect(),
    );
    analyze(&files, &scope(), None).unwrap()
}

/// `(code, line)` of every finding the analysis makes of these files, without a journal.
fn findings_of(files: &[(&str, &str)]) -> Found {
    analyzed(files)
        .into_iter()
        .map(|f| (f.code, f.line))
        .collect()
}

#[test]
fn a_web_without_its_ingress_is_e040() {
    assert_eq!(findings_of(&[(edits::GAP_YAML, SEED_GAP)]), []);
    let off = SEED_GAP.replace("enabled: true", "enabled: false");
    assert_eq!(
        findings_of(&[(edits::GAP_YAML, &off)]),
        [("CANARY-E040", Some(5))]
    );
    let quoted = SEED_GAP.replace("enabled: true", "enabled: \"true\"");
    assert_eq!(
        findings_of(&[(edits::GAP_YAML, &quoted)]),
        [("CANARY-E040", Some(5))]
    );
    let absent = "name: s\ndeployments:\n  web:\n    command:\n      - start\n";
    assert_eq!(
        findings_of(&[(edits::GAP_YAML, absent)]),
        [("CANARY-E040", Some(3))]
    );
}

#[test]
fn labels_canary_sets_or_selects_by_are_e042_on_web_and_e043_elsewhere() {
    let labelled = |web: &str, worker: &str| {
        format!(
            "name: s\ndeployments:\n  web:\n    podLabels: {web}\n    ingress:\n      enabled: \
             true\n  worker:\n    podLabels: {worker}\n  web-v1:\n    podLabels: {{version: \
             v1, canary: enabled}}\n    image: {{repository: r, tag: \"sha256:{digest}\"}}\n",
            digest = "a".repeat(64)
        )
    };
    let cases = [
        // canary's own values, and labels of no concern to it
        (
            "{version: v2, canary: enabled}",
            "{team: x, version: v3}",
            vec![],
        ),
        ("{version: v1}", "{}", vec!["CANARY-E042"]),
        ("{canary: \"true\"}", "{}", vec!["CANARY-E042"]),
        (
            "{version: 2, canary: on}",
            "{}",
            vec!["CANARY-E042", "CANARY-E042"],
        ),
        ("{}", "{canary: enabled}", vec!["CANARY-E043"]),
        ("{}", "{version: v2}", vec!["CANARY-E043"]),
        (
            "{}",
            "{version: v1, canary: enabled}",
            vec!["CANARY-E043", "CANARY-E043"],
        ),
    ];
    for (web, worker, want) in cases {
        let text = labelled(web, worker);
        let got: Vec<&str> = findings_of(&[(edits::GAP_YAML, &text)])
            .into_iter()
            .map(|(code, _)| code)
            .collect();
        assert_eq!(got, want, "web {web}, worker {worker}");
    }
}

#[test]
fn an_anchor_in_web_is_e044_and_an_alias_to_one_outside_is_not() {
    let outside = "name: s\nx: &env [A]\ndeployments:\n  web:\n    ingress:\n      enabled: true\n    env: *env\n";
    assert_eq!(findings_of(&[(edits::GAP_YAML, outside)]), []);
    let inside = "name: s\ndeployments:\n  web:\n    ingress:\n      enabled: true\n    env: &env [A]\n  worker:\n    env: *env\n";
    assert_eq!(
        findings_of(&[(edits::GAP_YAML, inside)]),
        [("CANARY-E044", Some(6))]
    );
}

#[test]
fn another_patch_of_canary_s_routes_or_selector_is_e041() {
    let vs = |spec: &str| {
        format!(
            "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: \
             s--web\nspec:\n{spec}"
        )
    };
    let timeouts = vs("  http:\n    - timeout: 5s\n");
    let gateways = vs("  gateways: [mesh]\n");
    let selector = "kind: Service\nmetadata:\n  name: s-web\nspec:\n  selector:\n    app: s-web\n";
    let ports = "kind: Service\nmetadata:\n  name: s-web\nspec:\n  ports: []\n";
    let many = format!("kind: ConfigMap\nmetadata:\n  name: s\n---\n{selector}");
    let other = selector.replace("name: s-web", "name: s-worker");
    let cases: [(&str, &str, Found); 7] = [
        (
            "gap/production/timeouts.yaml",
            &timeouts,
            vec![("CANARY-E041", Some(6))],
        ),
        (
            "gap/timeouts.yml",
            &timeouts,
            vec![("CANARY-E041", Some(6))],
        ),
        // What canary's patches do not set merges with them.
        ("gap/production/gateways.yaml", &gateways, vec![]),
        (
            "gap/selector.yaml",
            selector,
            vec![("CANARY-E041", Some(5))],
        ),
        ("gap/ports.yaml", ports, vec![]),
        (
            "gap/staging/many.yaml",
            &many,
            vec![("CANARY-E041", Some(9))],
        ),
        ("gap/worker.yaml", &other, vec![]),
    ];
    for (path, text, want) in cases {
        assert_eq!(
            findings_of(&[(edits::GAP_YAML, SEED_GAP), (path, text)]),
            want,
            "{path}"
        );
    }
    // Where gap does not read patches for this release, and canary's own files, are not others'.
    let ours = vs(
        "  hosts: [a]\n  http:\n    - route:\n        - destination:\n            host: s-web.ns.svc.cluster.local\n",
    );
    assert_eq!(
        findings_of(&[
            (edits::GAP_YAML, SEED_GAP),
            ("gap/qa/timeouts.yaml", &timeouts),
            ("gap/staging/gap_patch_canary_virtual_service.yaml", &ours),
        ]),
        []
    );
}

#[test]
fn a_deployment_patch_is_e045_exactly_when_gap_yaml_lacks_its_deployment() {
    let patch = |name: &str| {
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec: {{}}\n")
    };
    let scope = Scope {
        service: "x".into(),
        namespace: None,
        environments: vec![],
        method: Method::Succession,
        switch: None,
    };
    let findings = |gap: &str| {
        let files = Files(BTreeMap::from([
            (edits::GAP_YAML.to_string(), gap.to_string()),
            ("gap/a.yaml".to_string(), patch("x-web-v1")),
            ("gap/prod/deep/b.yaml".to_string(), patch("x-web")),
            ("gap/c.yaml".to_string(), patch("y-web-v1")),
            // canary's file, holding a second object: not read as canary's, so looked through.
            (
                edits::SERVICE_PATCH.to_string(),
                format!("kind: Service\n---\n{}", patch("x-web-v1")),
            ),
        ]));
        let mut found = analyze(&files, &scope, None).unwrap();
        found.retain(|f| f.code == "CANARY-E045");
        found
    };
    let gone = findings("name: x\ndeployments:\n  web: {}\n");
    let gone: Vec<_> = gone
        .iter()
        .map(|f| (f.code, f.file.as_deref(), f.line))
        .collect();
    assert_eq!(
        gone,
        [
            ("CANARY-E045", Some("gap/a.yaml"), Some(4)),
            ("CANARY-E045", Some(edits::SERVICE_PATCH), Some(6)),
        ]
    );
    assert!(findings("name: x\ndeployments:\n  web: {}\n  web-v1: {}\n").is_empty());
}

/// A coexistence repository after deploy-v1: web and its twin, one image, the switch at v1.
const COEXISTING_GAP: &str = "name: s
deployments:
  web:
    podLabels:
      version: v2
      canary: enabled
    ingress:
      enabled: true
    command:
      - start
    env:
      - name: IMPLEMENTATION
        value: v1
  web-v1:
    podLabels:
      version: v1
      canary: enabled
    ingress:
      enabled: false
    command:
      - start
    env:
      - name: IMPLEMENTATION
        value: v1
";

fn coexisting(gap: &str, switch: Option<&str>) -> Found {
    let files = Files(BTreeMap::from([(
        edits::GAP_YAML.to_string(),
        gap.to_string(),
    )]));
    let scope = Scope {
        method: Method::Coexistence,
        switch: switch.map(|s| s.parse().unwrap()),
        ..scope()
    };
    analyze(&files, &scope, None)
        .unwrap()
        .into_iter()
        .map(|f| (f.code, f.line))
        .collect()
}

#[test]
fn in_coexistence_a_twin_that_diverges_from_web_is_e018_and_needs_no_pinned_image() {
    let switch = Some("env:IMPLEMENTATION=v1,v2");
    assert_eq!(coexisting(COEXISTING_GAP, switch), []);
    // The same files read as a succession: web-v1 has no pinned image.
    assert_eq!(findings_of(&[(edits::GAP_YAML, COEXISTING_GAP)]).len(), 1);
    // web moves on to v2: still one image, only the switch differs.
    let flipped = COEXISTING_GAP.replacen("value: v1", "value: v2", 1);
    assert_eq!(coexisting(&flipped, switch), []);
    // A change made to v1 only (the seed's warning): its command, or an image of its own.
    let diverged =
        COEXISTING_GAP.replacen("      - start\n    env", "      - start-v1\n    env", 2);
    let diverged = diverged.replacen("      - start-v1\n", "      - start\n", 1);
    assert_eq!(coexisting(&diverged, switch), [("CANARY-E018", Some(20))]);
    let own_image = format!(
        "{COEXISTING_GAP}    image:\n      repository: r\n      tag: sha256:{}\n",
        "b".repeat(64)
    );
    assert_eq!(coexisting(&own_image, switch), [("CANARY-E018", Some(25))]);
    // Without the journal the switch is unknown, but the image still is one.
    assert_eq!(coexisting(&diverged, None), []);
    assert_eq!(coexisting(&own_image, None), [("CANARY-E018", Some(25))]);
}

#[test]
fn in_coexistence_a_switch_at_the_wrong_value_is_e019() {
    let switch = Some("env:IMPLEMENTATION=v1,v2");
    // web-v1 switched to v2 serves v2 under subset v1.
    let twin_v2 = {
        let at = COEXISTING_GAP.rfind("value: v1").unwrap();
        format!("{}value: v2\n", &COEXISTING_GAP[..at])
    };
    assert_eq!(coexisting(&twin_v2, switch), [("CANARY-E019", Some(22))]);
    // web at a third value selects neither implementation.
    let web_other = COEXISTING_GAP.replacen("value: v1", "value: v3", 1);
    assert_eq!(coexisting(&web_other, switch), [("CANARY-E019", Some(11))]);
    // An argument switch missing from web-v1's command: the commands are otherwise one, so
    // only the switch is wrong.
    let arg = Some("arg:--v1,--v2");
    let with_arg = COEXISTING_GAP.replacen("      - start\n", "      - start\n      - --v1\n", 1);
    assert_eq!(coexisting(&with_arg, arg), [("CANARY-E019", Some(21))]);
    let both = with_arg.replacen(
        "      - start\n    env",
        "      - start\n      - --v1\n    env",
        2,
    );
    assert_eq!(coexisting(&both, arg), []);
}

#[test]
fn a_string_that_other_yaml_readers_type_is_e047_unless_quoted() {
    let switch = Some("env:IMPLEMENTATION=017,1:20");
    let at = |v1: &str, twin: &str| {
        let web = COEXISTING_GAP.replacen("value: v1", &format!("value: {v1}"), 1);
        let at = web.rfind("value: v1").unwrap();
        format!("{}value: {twin}\n", &web[..at])
    };
    // What canary writes: quoted, in either quotes.
    assert_eq!(coexisting(&at("\"017\"", "'017'"), switch), []);
    // Plain, each is the string canary means, and a number or a date to YAML 1.1.
    for plain in ["017", "0777", "1_000", "0b101", "1:20", "2001-12-14"] {
        let found = coexisting(&at(plain, &format!("\"{plain}\"")), None);
        assert_eq!(found, [("CANARY-E047", Some(13))], "{plain}");
        let found = coexisting(&at(&format!("'{plain}'"), plain), None);
        assert_eq!(found, [("CANARY-E047", Some(24))], "{plain}");
    }
    // A label, the image tag and a command argument are strings too.
    let labelled =
        COEXISTING_GAP.replacen("canary: enabled", "canary: enabled\n      build: 0X1F", 1);
    assert_eq!(coexisting(&labelled, None), [("CANARY-E047", Some(7))]);
    let argued = COEXISTING_GAP.replacen("      - start\n", "      - start\n      - 1:20\n", 2);
    assert_eq!(
        coexisting(&argued, None),
        [("CANARY-E047", Some(11)), ("CANARY-E047", Some(23))]
    );
    // A number that every reader reads as one is not canary's to flag (nor a string).
    let numbered = COEXISTING_GAP.replacen("value: v1", "value: 8080", 2);
    assert!(
        !coexisting(&numbered, None)
            .iter()
            .any(|(code, _)| *code == "CANARY-E047")
    );
}

#[test]
fn the_destination_rule_is_read_under_either_spelling_and_two_of_them_are_e004() {
    let rule = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata:\n  \
                name: s-web\nspec:\n  host: s-web.ns.svc.cluster.local\n";
    let not_a_rule = rule.replace("kind: DestinationRule", "kind: Gateway");
    let identity = |files: &[(&str, &str)]| -> Vec<(String, Option<usize>)> {
        analyzed(files)
            .into_iter()
            .filter(|f| f.code == "CANARY-E004")
            .map(|f| (f.file.unwrap(), f.line))
            .collect()
    };
    let gap = (edits::GAP_YAML, SEED_GAP);
    // The other spelling alone is the rule, checked as the seed's would be.
    assert_eq!(identity(&[gap, (edits::DESTINATION_RULE_ALT, rule)]), []);
    assert_eq!(
        identity(&[gap, (edits::DESTINATION_RULE_ALT, &not_a_rule)]),
        [(edits::DESTINATION_RULE_ALT.to_string(), Some(2))]
    );
    // Both: the seed's is the rule, and the other is named as a second one.
    assert_eq!(
        identity(&[
            gap,
            (edits::DESTINATION_RULE, rule),
            (edits::DESTINATION_RULE_ALT, &not_a_rule)
        ]),
        [(edits::DESTINATION_RULE_ALT.to_string(), Some(1))]
    );
    assert_eq!(
        identity(&[
            gap,
            (edits::DESTINATION_RULE, &not_a_rule),
            (edits::DESTINATION_RULE_ALT, rule)
        ]),
        [
            (edits::DESTINATION_RULE.to_string(), Some(2)),
            (edits::DESTINATION_RULE_ALT.to_string(), Some(1))
        ]
    );
}
