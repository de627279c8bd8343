//! Comment-preserving edits of the YAML files canary touches in a GitOps repo.
//!
//! Every edit is text in, text out: the bytes it does not mean to change stay
//! as they were (comments, key order, quoting, blank lines, line endings).
//! Because the edits are placed by a small line-based locator rather than a
//! full YAML model, each one re-parses its own output and compares it with
//! "input + intended change"; a mismatch is reported as [`YamlError::Verify`]
//! instead of producing a wrong file.

mod emit;
mod fast;
mod flow;
pub mod gap;
mod locate;
pub mod virtual_service;

pub use gap::{
    deployment_value, ensure_ingress_authorization, ensure_pod_labels, ensure_twin_deployment,
    remove_deployment, service_name, set_twin_image,
};
pub use locate::Seg;
pub use virtual_service::{remove_subset_destination, route_weights, set_route_weights};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("not valid YAML: {0}")]
    Parse(String),
    #[error("line {line}: {message}")]
    Unsupported { line: usize, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Missing(String),
    #[error("edit check failed: {0}")]
    Verify(String),
}

const MAX_NODES: usize = 100_000;

/// Limits far above any deploy configuration and far below what hurts: an alias bomb (a few
/// lines that expand to billions of nodes) is refused after a bounded amount of work.
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_NODES;
    budget.max_aliases = 1_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Parses a file holding one YAML document (an empty file is `null`).
pub fn parse(text: &str) -> Result<Value, YamlError> {
    // A step's edits come in chains: the text one edit returns (and `verify` just parsed) is
    // the next edit's input, and the first edit reads the file its caller already parsed. The
    // last successful parse is kept so that the chain parses each text once: on a 5,000-line
    // gap.yaml, deploy-v1 parsed it five times, three are needed.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, Value)>> =
            const { std::cell::RefCell::new(None) };
    }
    if let Some(value) = LAST.with_borrow(|last| {
        last.as_ref()
            .filter(|(seen, _)| seen == text)
            .map(|(_, value)| value.clone())
    }) {
        return Ok(value);
    }
    let value = parse_uncached(text)?;
    LAST.set(Some((text.to_string(), value.clone())));
    Ok(value)
}

fn parse_uncached(text: &str) -> Result<Value, YamlError> {
    if let Some(value) = fast::parse(text, MAX_NODES) {
        return Ok(value);
    }
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| match &e {
        serde_saphyr::Error::MultipleDocuments { location, .. } => YamlError::Parse(format!(
            "line {}: a second YAML document starts here, but one was expected",
            location.line()
        )),
        _ => parse_error(&e),
    })
}

/// Parses every document of a file (documents that are empty or null are skipped).
pub fn parse_all(text: &str) -> Result<Vec<Value>, YamlError> {
    serde_saphyr::from_multiple_with_options(text, options()).map_err(|e| parse_error(&e))
}

/// serde-saphyr renders a multi-line snippet; callers want one line, which
/// already starts with "line N column M" when the position is known.
fn parse_error(e: &serde_saphyr::Error) -> YamlError {
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": budget breached") {
        Some((place, _)) => YamlError::Parse(format!(
            "{place}: more nodes or aliases than a deploy configuration has (an alias bomb?)"
        )),
        None => YamlError::Parse(first.to_string()),
    }
}

/// The 1-based line of `path` in document `doc` of `text`, as near as the locator can tell
/// (see [`locate::Doc::line_of`]); for pointing a person at a finding.
pub fn line_of(text: &str, doc: usize, path: &[Seg]) -> Option<usize> {
    locate::Doc::new(text).line_of(doc, path).map(|l| l + 1)
}

/// A path as people read it: `spec.http[0].route[1].weight`.
pub fn path_text(path: &[Seg]) -> String {
    let text: String = path.iter().map(Seg::to_string).collect();
    text.strip_prefix('.').unwrap_or(&text).to_string()
}

/// Re-parses an edited single-document file and checks it means `expected`.
fn verify(out: String, expected: &Value) -> Result<String, YamlError> {
    let got = parse(&out).map_err(|e| YamlError::Verify(format!("edited file: {e}")))?;
    // Equal trees are the rule; only a mismatch pays for naming where it is.
    if got == *expected {
        return Ok(out);
    }
    match first_difference(&got, expected, String::new()) {
        None => Ok(out),
        Some(path) => Err(mismatch(&path)),
    }
}

/// Like [`verify`] for files with several documents.
fn verify_all(out: String, expected: &[Value]) -> Result<String, YamlError> {
    let got = parse_all(&out).map_err(|e| YamlError::Verify(format!("edited file: {e}")))?;
    if got.len() != expected.len() {
        return Err(mismatch("the number of documents"));
    }
    if got == expected {
        return Ok(out);
    }
    let diff = got
        .iter()
        .zip(expected)
        .enumerate()
        .find_map(|(i, (g, x))| first_difference(g, x, format!("document {}", i + 1)));
    match diff {
        None => Ok(out),
        Some(path) => Err(mismatch(&path)),
    }
}

fn mismatch(path: &str) -> YamlError {
    let at = if path.is_empty() {
        "the document"
    } else {
        path
    };
    YamlError::Verify(format!(
        "the edited text differs from the intended result at {at}; refusing to use it"
    ))
}

/// Path of the first place where two values differ, for the Verify message.
fn first_difference(got: &Value, want: &Value, path: String) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let key = g
                .keys()
                .chain(w.keys())
                .find(|k| g.get(*k).is_none() || w.get(*k).is_none())
                .map(|k| join(&path, k));
            key.or_else(|| {
                g.iter()
                    .find_map(|(k, gv)| first_difference(gv, &w[k], join(&path, k)))
            })
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (gv, wv))| first_difference(gv, wv, format!("{path}[{i}]"))),
        _ => (got != want).then_some(path),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_reads_one_document() {
        assert_eq!(parse("a: 1\n").unwrap(), json!({"a": 1}));
        assert_eq!(
            parse("---\n# only a comment\na: x\n").unwrap(),
            json!({"a": "x"})
        );
    }

    #[test]
    fn parse_rejects_several_documents_with_line() {
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(matches!(err, YamlError::Parse(_)));
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn parse_error_is_one_line_with_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err().to_string();
        assert!(err.starts_with("not valid YAML: line 2"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn parse_all_reads_every_document() {
        let docs = parse_all("---\na: 1\n---\nb: 2\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": 2})]);
    }

    #[test]
    fn verify_names_the_first_difference() {
        let err = verify("a:\n  b: 1\n".into(), &json!({"a": {"b": 2}})).unwrap_err();
        assert!(err.to_string().contains("a.b"), "{err}");
        let err = verify_all("a: [1]\n".into(), &[json!({"a": [2]})]).unwrap_err();
        assert!(err.to_string().contains("document 1.a[0]"), "{err}");
    }
}
