//! Comment-preserving edits of the YAML files canary touches in a GitOps repo.
//!
//! A file is read once into a [`Document`]: granit-parser's events give every node's byte span
//! and the value it means. An edit finds its place in the spans, splices text there (the bytes
//! it does not mean to change stay as they were: comments, key order, quoting, blank lines,
//! line endings) and reads the result again, once for all of a step's edits of the file, which
//! is both the proof that the new text means exactly "the old meaning plus the intended changes"
//! ([`YamlError::Verify`] otherwise) and the document the next edit or check starts from.

pub(crate) mod cursor;
mod document;
pub(crate) mod emit;
pub(crate) mod readers;
pub(crate) mod splice;

pub use document::{Document, Entry, Kind, Node};

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

/// One step of a path into a document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl std::fmt::Display for Seg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seg::Key(k) => write!(f, ".{k}"),
            Seg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// The value of a file holding one YAML document (an empty file is `null`).
pub fn parse(text: &str) -> Result<Value, YamlError> {
    Document::parse_one(text).map(Document::into_value)
}

/// Every document of a file that is neither empty nor null.
pub fn parse_all(text: &str) -> Result<Vec<Value>, YamlError> {
    Document::parse(text).map(Document::into_values)
}

/// The 1-based line of `path` in document `doc` of `text` (see [`Document::line_of`]).
pub fn line_of(text: &str, doc: usize, path: &[Seg]) -> Option<usize> {
    Document::parse(text).ok()?.line_of(doc, path)
}

/// A path as people read it: `spec.http[0].route[1].weight`.
pub fn path_text(path: &[Seg]) -> String {
    let text: String = path.iter().map(Seg::to_string).collect();
    text.strip_prefix('.').unwrap_or(&text).to_string()
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
}
