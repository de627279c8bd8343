//! Comment-preserving edits of the YAML files canary touches in a GitOps repo.
//!
//! Every edit is text in, text out: the bytes it does not mean to change stay
//! as they were (comments, key order, quoting, blank lines, line endings).
//! Because the edits are placed by a small line-based locator rather than a
//! full YAML model, each one re-parses its own output and compares it with
//! "input + intended change"; a mismatch is reported as [`YamlError::Verify`]
//! instead of producing a wrong file. (A gap.yaml edit that changes one deployment
//! re-reads only that deployment's lines when `fast::reread` can show that a full
//! re-parse would give the same.)

mod anchors;
mod emit;
mod fast;
mod flow;
pub mod gap;
mod locate;
pub mod virtual_service;

pub use anchors::{Anchor, anchors_in_deployment};
pub use gap::{
    deployment_value, ensure_ingress_authorization, ensure_pod_labels, ensure_twin_deployment,
    remove_deployment, service_name, set_twin_image,
};
pub use locate::Seg;
pub use virtual_service::{remove_subset_destination, route_weights, set_route_weights};

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;

use locate::{Doc, Edit, Lines, apply};

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
    // The value an edit chain left for this text is handed over rather than copied: its last
    // reader (the check of the step's files) takes it, and nothing else holds it by then.
    if let Some(value) = LAST.with_borrow_mut(|last| {
        last.take_if(|last| last.text == text)
            .map(|last| last.value)
    }) {
        return Ok(Rc::try_unwrap(value).unwrap_or_else(|shared| (*shared).clone()));
    }
    read(text).map(|(value, _)| value)
}

/// The last text read or written by an edit, with its value.
struct Last {
    text: String,
    value: Rc<Value>,
    /// The nodes the quick reader counted, when the text is in its subset.
    nodes: Option<usize>,
    /// The text's lines as the locator reads them, when an edit returned it: the next edit's
    /// locator takes them.
    lines: Option<Lines>,
}

thread_local! {
    static LAST: RefCell<Option<Last>> = const { RefCell::new(None) };
}

/// Like [`parse`], for the edits: a step's edits come in chains, where the text one edit
/// returns (and [`verify`] just parsed) is the next edit's input, and the first edit reads the
/// file its caller already parsed. The last value is shared so that the chain parses each
/// text once and copies no value.
fn parse_shared(text: &str) -> Result<Rc<Value>, YamlError> {
    parse_counted(text).map(|(value, _)| value)
}

/// [`parse_shared`], with the quick reader's node count (see [`Last::nodes`]).
fn parse_counted(text: &str) -> Result<(Rc<Value>, Option<usize>), YamlError> {
    if let Some(found) = last_of(text, |last| (Rc::clone(&last.value), last.nodes)) {
        return Ok(found);
    }
    let (value, nodes) = read(text)?;
    let value = Rc::new(value);
    remember(text.to_string(), Rc::clone(&value), nodes, None);
    Ok((value, nodes))
}

/// The locator of `text`, from the lines the edit that returned it left (see [`Last::lines`]).
fn locator(text: &str) -> Doc<'_> {
    match last_of(text, |last| last.lines.take()).flatten() {
        Some(lines) => Doc::from_lines(text, lines),
        None => Doc::new(text),
    }
}

/// `f` of what is kept of the last text, when that text is `text`.
fn last_of<R>(text: &str, f: impl FnOnce(&mut Last) -> R) -> Option<R> {
    LAST.with_borrow_mut(|last| last.as_mut().filter(|last| last.text == text).map(f))
}

/// Lets go of the value kept for the next read without freeing it, for the end of the process:
/// freeing a 5,000-line file's tree, thousands of small allocations, costs about as much as the
/// step that read it, and the memory goes back to the system with the process anyway. Only the
/// one value the process ends with is left behind; reads before it free theirs as usual.
pub fn forget_cache() {
    std::mem::forget(LAST.take());
}

fn remember(text: String, value: Rc<Value>, nodes: Option<usize>, lines: Option<Lines>) {
    LAST.set(Some(Last {
        text,
        value,
        nodes,
        lines,
    }));
}

/// A text's value, and the nodes the quick reader counted when it could read it.
fn read(text: &str) -> Result<(Value, Option<usize>), YamlError> {
    if let Some((value, nodes)) = fast::parse(text, MAX_NODES) {
        return Ok((value, Some(nodes)));
    }
    let value = serde_saphyr::from_str_with_options(text, options()).map_err(|e| match &e {
        serde_saphyr::Error::MultipleDocuments { location, .. } => YamlError::Parse(format!(
            "line {}: a second YAML document starts here, but one was expected",
            location.line()
        )),
        _ => parse_error(&e),
    })?;
    Ok((value, None))
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

/// What an edit of gap.yaml means: the file's value `base` with `deployments.<name>` set to
/// `value`, or removed when it is `None`.
struct Intended<'a> {
    base: Rc<Value>,
    /// `base`'s node count from the quick reader, when it read the file.
    nodes: Option<usize>,
    name: &'a str,
    value: Option<Value>,
}

impl Intended<'_> {
    /// Whether `got` is the intended value, compared in place: the other deployments and keys
    /// against `base`, the one deployment against `value`. A 5,000-line file is not copied to
    /// build the value it should have.
    fn is(&self, got: &Value) -> bool {
        let (Some(got), Some(base)) = (got.as_object(), self.base.as_object()) else {
            return false;
        };
        let (Some(got_deps), Some(base_deps)) = (
            got.get("deployments").and_then(Value::as_object),
            base.get("deployments").and_then(Value::as_object),
        ) else {
            return false;
        };
        let kept = base_deps.len() - usize::from(base_deps.contains_key(self.name));
        got.len() == base.len()
            && got
                .iter()
                .all(|(k, v)| k == "deployments" || base.get(k) == Some(v))
            && got_deps.get(self.name) == self.value.as_ref()
            && got_deps.len() == kept + usize::from(self.value.is_some())
            && got_deps
                .iter()
                .all(|(k, v)| k == self.name || base_deps.get(k) == Some(v))
    }

    /// The intended value itself, built only to name a difference.
    fn value(&self) -> Value {
        let mut expected = (*self.base).clone();
        match &self.value {
            Some(value) => expected["deployments"][self.name] = value.clone(),
            None => {
                if let Some(deployments) = expected["deployments"].as_object_mut() {
                    deployments.remove(self.name);
                }
            }
        }
        expected
    }
}

/// Applies `edits` to gap.yaml's `text`, whose locator is `doc`, and checks that the result
/// means what they intend.
fn verify(text: &str, doc: Doc, edits: Vec<Edit>, intended: Intended) -> Result<String, YamlError> {
    let changed = locate::span(&edits);
    let out = apply(text, edits);
    let lines = changed.clone().map(|changed| doc.edited(&out, changed));
    if let (Some(changed), Some(nodes), Some(want)) = (changed, intended.nodes, &intended.value)
        && let Some(reread) = fast::reread(
            text,
            &intended.base,
            nodes,
            &out,
            changed,
            "deployments",
            MAX_NODES,
        )
        && reread.key == intended.name
        && reread.value == *want
    {
        // What a full read would give is the file's value with this one deployment changed:
        // built in place, once the last edit's share of the value is let go.
        LAST.take();
        let mut value = intended.base;
        Rc::make_mut(&mut value)["deployments"][intended.name] = reread.value;
        remember(out.clone(), value, Some(reread.nodes), lines);
        return Ok(out);
    }
    verify_text(out, &intended, lines)
}

/// Re-parses an edited gap.yaml and checks it means what the edit intended.
fn verify_text(
    out: String,
    intended: &Intended,
    lines: Option<Lines>,
) -> Result<String, YamlError> {
    let (got, nodes) = read(&out).map_err(|e| YamlError::Verify(format!("edited file: {e}")))?;
    // Equal trees are the rule; only a mismatch pays for naming where it is.
    if !intended.is(&got)
        && let Some(path) = first_difference(&got, &intended.value(), String::new())
    {
        return Err(mismatch(&path));
    }
    remember(out.clone(), Rc::new(got), nodes, lines);
    Ok(out)
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
    fn forget_cache_lets_go_of_the_last_value_without_freeing_it() {
        let (value, _) = parse_counted("a: 1\n").unwrap();
        let kept = Rc::downgrade(&value);
        drop(value);
        forget_cache();
        assert!(LAST.with_borrow(Option::is_none));
        assert_eq!(kept.upgrade().as_deref(), Some(&json!({"a": 1})));
    }

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

    const BASE: &str = "name: svc\ndeployments:\n  web:\n    a: 1\n  worker:\n    b: 2\n";

    fn intended<'a>(base: &Value, name: &'a str, value: Option<Value>) -> Intended<'a> {
        Intended {
            base: Rc::new(base.clone()),
            nodes: None,
            name,
            value,
        }
    }

    #[test]
    fn verify_accepts_exactly_the_intended_deployment_change() {
        let base = parse(BASE).unwrap();
        let added = format!("{BASE}  web-v1:\n    a: 2\n");
        let add = intended(&base, "web-v1", Some(json!({"a": 2})));
        assert_eq!(verify_text(added.clone(), &add, None).unwrap(), added);
        let changed = BASE.replace("a: 1", "a: 3");
        assert!(
            verify_text(
                changed,
                &intended(&base, "web", Some(json!({"a": 3}))),
                None
            )
            .is_ok()
        );
        let removed = BASE.replace("  worker:\n    b: 2\n", "");
        assert!(verify_text(removed, &intended(&base, "worker", None), None).is_ok());
        // Nothing to remove, and nothing removed.
        assert!(verify_text(BASE.into(), &intended(&base, "web-v1", None), None).is_ok());
    }

    #[test]
    fn verify_names_the_first_difference() {
        let base = parse(BASE).unwrap();
        let web = Some(json!({"a": 1, "c": 3}));
        for (out, at) in [
            // The intended change, and another deployment changed too.
            (
                BASE.replace("a: 1", "a: 1\n    c: 3")
                    .replace("b: 2", "b: 4"),
                "deployments.worker.b",
            ),
            // Another key of the file changed.
            (
                BASE.replace("a: 1", "a: 1\n    c: 3")
                    .replace("svc", "other"),
                "name",
            ),
            // The deployment itself is not what was intended.
            (BASE.replace("a: 1", "a: 1\n    c: 4"), "deployments.web.c"),
            // A deployment more.
            (
                format!("{}  extra: 1\n", BASE.replace("a: 1", "a: 1\n    c: 3")),
                "deployments.extra",
            ),
        ] {
            let err = verify_text(out, &intended(&base, "web", web.clone()), None).unwrap_err();
            assert!(err.to_string().contains(at), "{at}: {err}");
        }
        let err = verify_text(BASE.into(), &intended(&base, "worker", None), None).unwrap_err();
        assert!(err.to_string().contains("deployments.worker"), "{err}");
        let err = verify_all("a: [1]\n".into(), &[json!({"a": [2]})]).unwrap_err();
        assert!(err.to_string().contains("document 1.a[0]"), "{err}");
    }

    /// An edit verified the way the gap.yaml edits are, from the file's read value.
    fn verify_insert(at: usize, new: &str, name: &str, value: Value) -> Result<String, YamlError> {
        let (base, nodes) = parse_counted(BASE)?;
        let intended = Intended {
            base,
            nodes,
            name,
            value: Some(value),
        };
        verify(
            BASE,
            Doc::new(BASE),
            vec![Edit::insert(at, new.into())],
            intended,
        )
    }

    #[test]
    fn an_edit_leaves_its_lines_to_the_next_locator() {
        let twin = "  web-v1:\n    a: 2\n";
        let out = verify_insert(BASE.len(), twin, "web-v1", json!({"a": 2})).unwrap();
        let kept = || LAST.with_borrow(|last| last.as_ref().map(|last| last.lines.is_some()));
        assert_eq!(kept(), Some(true));
        let path = [Seg::Key("deployments".into()), Seg::Key("web-v1".into())];
        assert_eq!(locator(&out).line_of(0, &path), Some(6));
        assert_eq!(kept(), Some(false));
        assert_eq!(locator(&out).line_of(0, &path), Some(6));
    }

    #[test]
    fn verify_reads_one_changed_deployment_as_a_full_read_would() {
        let end = BASE.len();
        let out = verify_insert(end, "  web-v1:\n    a: 2\n", "web-v1", json!({"a": 2})).unwrap();
        // The value kept for the next reader is the one a full read gives.
        let (read, nodes) = read(&out).unwrap();
        LAST.with_borrow(|last| {
            let last = last.as_ref().unwrap();
            assert_eq!(
                (last.text.as_str(), &*last.value, last.nodes),
                (out.as_str(), &read, nodes)
            );
        });
        assert_eq!(parse(&out).unwrap(), read);
        // A deployment that is not what was intended is refused, and named.
        let err =
            verify_insert(end, "  web-v1:\n    a: 3\n", "web-v1", json!({"a": 2})).unwrap_err();
        assert!(err.to_string().contains("deployments.web-v1.a"), "{err}");
        let err =
            verify_insert(end, "  web-v2:\n    a: 2\n", "web-v1", json!({"a": 2})).unwrap_err();
        assert!(err.to_string().contains("deployments.web-v"), "{err}");
        // A change the quick reader declines is read in full, and its message kept.
        let err = verify_insert(end, "  web-v1: [\n", "web-v1", json!({"a": 2})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("edit check failed: edited file: not valid YAML"),
            "{err}"
        );
    }
}
