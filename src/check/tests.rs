//! Unit tests of the analysis on in-memory files; the end-to-end tests (tests/check.rs) run
//! the real binary over whole walks and hand-broken repositories.

use std::collections::BTreeMap;

use super::*;

struct Files(BTreeMap<String, String>);

impl Source for Files {
    fn read(&self, path: &str) -> Result<Option<String>, Error> {
        Ok(self.0.get(path).cloned())
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
    };
    let findings = analyze(&files, &scope, None).unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].code, "CANARY-E001");
    assert!(findings[0].line.is_some(), "{findings:?}");
}

#[test]
fn a_deployment_patch_is_e040_exactly_when_gap_yaml_lacks_its_deployment() {
    let patch = |name: &str| {
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec: {{}}\n")
    };
    let scope = Scope {
        service: "x".into(),
        namespace: None,
        environments: vec![],
    };
    let findings = |gap: &str| {
        let files = Files(BTreeMap::from([
            (edits::GAP_YAML.to_string(), gap.to_string()),
            ("gap/a.yaml".to_string(), patch("x-web-v1")),
            ("gap/prod/deep/b.yaml".to_string(), patch("x-web")),
            ("gap/c.yaml".to_string(), patch("y-web-v1")),
        ]));
        let mut found = analyze(&files, &scope, None).unwrap();
        found.retain(|f| f.code == "CANARY-E040");
        found
    };
    let gone = findings("name: x\ndeployments:\n  web: {}\n");
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(
        (gone[0].code, gone[0].file.as_str(), gone[0].line),
        ("CANARY-E040", "gap/a.yaml", Some(4))
    );
    assert!(findings("name: x\ndeployments:\n  web: {}\n  web-v1: {}\n").is_empty());
}
