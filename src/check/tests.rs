//! Unit tests of the analysis on in-memory files; the end-to-end tests (tests/check.rs) run
//! the real binary over whole walks and hand-broken repositories.

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
