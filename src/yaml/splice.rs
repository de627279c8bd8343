//! Text edits placed by a [`Document`]'s spans, and their proof: the edited text is read
//! again, and what it means must be the old meaning with exactly the intended change.

use serde_json::{Map, Value};

use super::emit::Quote;
use super::{Document, Entry, Kind, Node, YamlError};

/// Replace `start..end` of the text with `text`.
#[derive(Debug)]
pub(crate) struct Splice {
    start: usize,
    end: usize,
    text: String,
}

impl Splice {
    pub(crate) fn insert(at: usize, text: String) -> Splice {
        Splice::replace(at, at, text)
    }

    pub(crate) fn replace(start: usize, end: usize, text: String) -> Splice {
        Splice { start, end, text }
    }
}

/// How the file writes nested blocks and ends its lines, so that inserted text looks like the
/// rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    pub eol: &'static str,
    /// Indentation of a mapping's children relative to its key.
    pub step: usize,
    /// Indentation of a sequence's `-` relative to its key (0 when indentless).
    pub seq_offset: usize,
    /// The quotes of the file's first quoted scalar (double when it quotes none).
    pub quote: Quote,
}

impl Style {
    /// The first key holding a block mapping shows the step; the first holding a block
    /// sequence shows where its dashes go.
    pub(crate) fn of(doc: &Document) -> Style {
        let text = doc.text();
        let bytes = text.as_bytes();
        let crlf = memchr::memchr_iter(b'\r', bytes).any(|i| bytes.get(i + 1) == Some(&b'\n'));
        let (mut step, mut seq_offset) = (None, None);
        let mut todo: Vec<&Node> = doc.roots().iter().rev().collect();
        while let Some(node) = todo.pop() {
            if step.is_some() && seq_offset.is_some() {
                break;
            }
            let Some(entries) = node.entries().filter(|_| !node.flow) else {
                todo.extend(node.items().into_iter().flatten().rev());
                continue;
            };
            for e in entries {
                let (key, value) = (col(text, e.key_start), col(text, e.value.start));
                match &e.value.kind {
                    Kind::Map(_) if !e.value.flow && value > key => {
                        step = step.or(Some(value - key))
                    }
                    Kind::Seq(_) if !e.value.flow => {
                        let dash = col(text, first_dash(text, &e.value));
                        seq_offset = seq_offset.or(dash.checked_sub(key));
                    }
                    _ => {}
                }
            }
            todo.extend(entries.iter().rev().map(|e| &e.value));
        }
        let step = step.unwrap_or(2);
        Style {
            eol: if crlf { "\r\n" } else { "\n" },
            step,
            seq_offset: seq_offset.unwrap_or(step),
            quote: first_quote(doc),
        }
    }
}

/// The quotes of the first quoted scalar (a key or a value) in file order.
fn first_quote(doc: &Document) -> Quote {
    let bytes = doc.text().as_bytes();
    let quoted = |at: usize| matches!(bytes.get(at), Some(b'\'' | b'"')).then_some(at);
    let mut first: Option<usize> = None;
    let mut todo: Vec<&Node> = doc.roots().iter().collect();
    while let Some(node) = todo.pop() {
        let found = match &node.kind {
            Kind::Scalar { block: false, .. } => quoted(node.start),
            Kind::Map(entries) => {
                todo.extend(entries.iter().map(|e| &e.value));
                entries.iter().find_map(|e| quoted(e.key_start))
            }
            Kind::Seq(items) => {
                todo.extend(items);
                None
            }
            _ => None,
        };
        if let Some(at) = found {
            first = Some(first.map_or(at, |f| f.min(at)));
        }
    }
    match first.map(|at| bytes[at]) {
        Some(b'\'') => Quote::Single,
        _ => Quote::Double,
    }
}

/// Where the line holding byte `at` starts.
pub(crate) fn line_start(text: &str, at: usize) -> usize {
    memchr::memrchr(b'\n', &text.as_bytes()[..at]).map_or(0, |i| i + 1)
}

/// Where the text of the line holding byte `at` ends, before `\r\n` or `\n`.
fn line_end(text: &str, at: usize) -> usize {
    let end = memchr::memchr(b'\n', &text.as_bytes()[at..]).map_or(text.len(), |i| at + i);
    if text[..end].ends_with('\r') {
        end - 1
    } else {
        end
    }
}

/// Where the line after the one holding byte `at` starts (the end, for the last line).
fn next_line(text: &str, at: usize) -> usize {
    memchr::memchr(b'\n', &text.as_bytes()[at..]).map_or(text.len(), |i| at + i + 1)
}

/// Where the `-` of a block sequence's first item is. The parser puts an indented
/// sequence's start there, and an indentless one's at its first item's content.
pub(crate) fn first_dash(text: &str, seq: &Node) -> usize {
    let b = text.as_bytes();
    let is_dash = |at: usize| {
        b.get(at) == Some(&b'-')
            && matches!(b.get(at + 1), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
    };
    if is_dash(seq.start) {
        return seq.start;
    }
    seq.items()
        .and_then(<[Node]>::first)
        .map_or(seq.start, |item| dash_before(text, item.start))
}

/// Where the `-` of the block sequence item whose content starts at `at` is: before it on its
/// line, or alone on a line above it (with only comments or blank lines between).
pub(crate) fn dash_before(text: &str, at: usize) -> usize {
    let own = line_start(text, at);
    if let Some(i) = text[own..at].rfind('-') {
        return own + i;
    }
    let mut line = own;
    while line > 0 {
        let above = line_start(text, line - 1);
        let written = &text[above..line];
        let content = written.trim();
        if content.starts_with('-') {
            return above + (written.len() - written.trim_start().len());
        }
        if !(content.is_empty() || content.starts_with('#')) {
            break;
        }
        line = above;
    }
    at
}

/// The column of byte `at`.
pub(crate) fn col(text: &str, at: usize) -> usize {
    at - line_start(text, at)
}

/// Where an entry's last content is: its value's end, or the key's line when it has none.
pub(crate) fn entry_end(e: &Entry) -> usize {
    match e.value.kind {
        Kind::Scalar { empty: true, .. } => e.key_start,
        _ => e.value.end.max(e.key_start),
    }
}

/// The lines inserted after the line holding byte `at`.
pub(crate) fn insert_after(text: &str, at: usize, eol: &str, new: &[String]) -> Splice {
    let next = next_line(text, at);
    let end = line_end(text, at);
    if next > end {
        Splice::insert(next, new.iter().map(|s| format!("{s}{eol}")).collect())
    } else {
        // The file ends without a newline: keep it that way.
        Splice::insert(end, new.iter().map(|s| format!("{eol}{s}")).collect())
    }
}

/// Removes the lines from the one holding `first` through the one holding `last`; the exact
/// inverse of [`insert_after`] the line before them.
pub(crate) fn remove_lines(text: &str, first: usize, last: usize) -> Splice {
    let start = line_start(text, first);
    let (end, next) = (line_end(text, last), next_line(text, last));
    if next > end {
        Splice::replace(start, next, String::new())
    } else {
        // The last line has no newline: take the one before it instead.
        let before = text[..start].trim_end_matches(['\n', '\r']).len();
        Splice::replace(before, next, String::new())
    }
}

/// Where the comment lines directly above the line holding `at`, at its column, start
/// (comments there describe the entry below them); the line's own start when there are none.
pub(crate) fn leading_comments(text: &str, at: usize) -> usize {
    let column = col(text, at);
    let mut first = line_start(text, at);
    while first > 0 {
        let above = line_start(text, first - 1);
        let line = &text[above..line_end(text, above)];
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent != column || !line[indent..].starts_with('#') {
            break;
        }
        first = above;
    }
    first
}

/// The lines from the one holding `first` through the one holding `last`, without endings.
pub(crate) fn lines(text: &str, first: usize, last: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = line_start(text, first);
    loop {
        out.push(text[at..line_end(text, at)].to_string());
        at = next_line(text, at);
        if at > last || at >= text.len() {
            return out;
        }
    }
}

/// Applies non-overlapping splices.
pub(crate) fn apply(text: &str, mut splices: Vec<Splice>) -> String {
    splices.sort_by_key(|s| (s.start, s.end));
    let mut out =
        String::with_capacity(text.len() + splices.iter().map(|s| s.text.len()).sum::<usize>());
    let mut pos = 0;
    for s in splices {
        debug_assert!(s.start >= pos, "overlapping splices");
        out.push_str(&text[pos..s.start]);
        out.push_str(&s.text);
        pos = s.end;
    }
    out.push_str(&text[pos..]);
    out
}

/// Edits planned on one reading of a file and not applied yet: where they write, and what they
/// mean, each a value set at a path of the file's value (removed when `None`). Plans made on
/// the same reading join, so that a step's edits are proved together by one re-read.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    splices: Vec<Splice>,
    sets: Vec<(Vec<String>, Option<Value>)>,
}

impl Plan {
    /// Splices that mean nothing yet: say what they set with [`Plan::and_set`].
    pub(crate) fn new(splices: Vec<Splice>) -> Plan {
        Plan {
            splices,
            sets: Vec::new(),
        }
    }

    /// A value this plan's splices set.
    pub(crate) fn and_set(mut self, path: &[&str], value: Option<Value>) -> Plan {
        self.sets
            .push((path.iter().map(|s| s.to_string()).collect(), value));
        self
    }

    /// This plan, then `other`: splices at the same place keep that order.
    pub(crate) fn join(mut self, other: Plan) -> Plan {
        self.splices.extend(other.splices);
        self.sets.extend(other.sets);
        self
    }

    /// Whether `got` is `base` with the sets applied, compared in place: a 5,000-line file is
    /// not copied to build the value it should have.
    fn is(&self, got: &Value, base: &Value) -> bool {
        let sets: Vec<(&[String], Option<&Value>)> = self
            .sets
            .iter()
            .map(|(p, v)| (p.as_slice(), v.as_ref()))
            .collect();
        means(Some(got), Some(base), &sets)
    }

    /// The intended value itself, built only to name a difference.
    fn value(&self, base: &Value) -> Value {
        let mut expected = base.clone();
        for (path, value) in &self.sets {
            let Some((last, parents)) = path.split_last() else {
                expected = value.clone().unwrap_or(Value::Null);
                continue;
            };
            let mut at = &mut expected;
            for key in parents {
                if !at.is_object() {
                    *at = Value::Object(Map::new());
                }
                at = &mut at[key.as_str()];
            }
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            let map = at.as_object_mut().expect("made a mapping above");
            match value {
                Some(v) => map.insert(last.clone(), v.clone()),
                None => map.remove(last),
            };
        }
        expected
    }
}

/// Whether `got` is `base` with `sets` applied in order (`None`: absent).
fn means(got: Option<&Value>, base: Option<&Value>, sets: &[(&[String], Option<&Value>)]) -> bool {
    // A set of this very node replaces what it was; only the sets after it refine it.
    if let Some(i) = sets.iter().rposition(|(path, _)| path.is_empty()) {
        return means(got, sets[i].1, &sets[i + 1..]);
    }
    if sets.is_empty() {
        return got == base;
    }
    let Some(Value::Object(got)) = got else {
        return false;
    };
    // Setting below a node that is not there makes it a mapping.
    let empty = Map::new();
    let base = match base {
        Some(Value::Object(base)) => base,
        Some(Value::Null) | None => &empty,
        Some(_) => return false,
    };
    let touched = |key: &str| sets.iter().any(|(path, _)| path[0] == key);
    let untouched_kept = got
        .iter()
        .all(|(k, v)| touched(k) || base.get(k) == Some(v))
        && base.keys().all(|k| touched(k) || got.contains_key(k));
    untouched_kept
        && sets.iter().enumerate().all(|(i, (path, _))| {
            let key = &path[0];
            // Each key once, at its first set.
            sets[..i].iter().any(|(p, _)| p[0] == *key) || {
                let below: Vec<(&[String], Option<&Value>)> = sets
                    .iter()
                    .filter(|(p, _)| p[0] == *key)
                    .map(|(p, v)| (&p[1..], *v))
                    .collect();
                means(got.get(key), base.get(key), &below)
            }
        })
}

/// Applies `plan`'s splices to the text of `doc` and reads the result, which must mean what
/// the plan intends.
pub(crate) fn prove(doc: &Document, plan: Plan) -> Result<Document, YamlError> {
    let Plan { splices, sets } = plan;
    let out = reread(doc, splices)?;
    let intended = Plan {
        splices: Vec::new(),
        sets,
    };
    // Equal trees are the rule; only a mismatch pays for naming where it is.
    if !intended.is(out.value(), doc.value())
        && let Some(path) =
            first_difference(out.value(), &intended.value(doc.value()), String::new())
    {
        return Err(mismatch(&path));
    }
    Ok(out)
}

/// Like [`prove`] for files with several documents, whose intended values are `expected`.
pub(crate) fn verify_all(
    doc: &Document,
    splices: Vec<Splice>,
    expected: &[Value],
) -> Result<Document, YamlError> {
    let out = reread(doc, splices)?;
    let got = out.values();
    if got.len() != expected.len() {
        return Err(mismatch("the number of documents"));
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

fn reread(doc: &Document, splices: Vec<Splice>) -> Result<Document, YamlError> {
    Document::parse(apply(doc.text(), splices))
        .map_err(|e| YamlError::Verify(format!("edited file: {e}")))
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

    const BASE: &str = "name: svc\ndeployments:\n  web:\n    a: 1\n  worker:\n    b: 2\n";

    /// What an edit of gap.yaml means: the file's value `base` with `deployments.<name>` set
    /// to `value`, or removed when it is `None`.
    struct Intended<'a> {
        base: &'a Value,
        name: &'a str,
        value: Option<Value>,
    }

    /// The one-deployment intent of the tests below, proved as a plan of it.
    fn verify(
        doc: &Document,
        splices: Vec<Splice>,
        intended: Intended,
    ) -> Result<Document, YamlError> {
        assert_eq!(intended.base, doc.value());
        let plan = Plan::new(splices).and_set(&["deployments", intended.name], intended.value);
        prove(doc, plan)
    }

    /// `out` checked as the result of an edit of BASE that means `name` = `value`.
    fn verify_text(out: &str, name: &str, value: Option<Value>) -> Result<Document, YamlError> {
        let base = Document::parse_one(BASE).unwrap();
        let whole = Splice::replace(0, BASE.len(), out.to_string());
        let intended = Intended {
            base: base.value(),
            name,
            value,
        };
        verify(&base, vec![whole], intended)
    }

    #[test]
    fn verify_accepts_exactly_the_intended_deployment_change() {
        let added = format!("{BASE}  web-v1:\n    a: 2\n");
        let out = verify_text(&added, "web-v1", Some(json!({"a": 2}))).unwrap();
        assert_eq!(out.text(), added);
        let changed = BASE.replace("a: 1", "a: 3");
        assert!(verify_text(&changed, "web", Some(json!({"a": 3}))).is_ok());
        let removed = BASE.replace("  worker:\n    b: 2\n", "");
        assert!(verify_text(&removed, "worker", None).is_ok());
        // Nothing to remove, and nothing removed.
        assert!(verify_text(BASE, "web-v1", None).is_ok());
    }

    #[test]
    fn verify_names_the_first_difference() {
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
            let err = verify_text(&out, "web", web.clone()).unwrap_err();
            assert!(err.to_string().contains(at), "{at}: {err}");
        }
        let err = verify_text(BASE, "worker", None).unwrap_err();
        assert!(err.to_string().contains("deployments.worker"), "{err}");
        let doc = Document::parse("a: [1]\n").unwrap();
        let err = verify_all(&doc, Vec::new(), &[json!({"a": [2]})]).unwrap_err();
        assert!(err.to_string().contains("document 1.a[0]"), "{err}");
    }

    #[test]
    fn an_edit_that_breaks_the_yaml_says_so() {
        let err = verify_text(
            &format!("{BASE}  web-v1: [\n"),
            "web-v1",
            Some(json!({"a": 2})),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("edit check failed: edited file: not valid YAML"),
            "{err}"
        );
    }

    /// Each entry's key line and last content line (0-based), as the edits place them.
    fn lines_of(text: &str) -> Vec<(String, usize, usize)> {
        let doc = Document::parse(text).unwrap();
        let line = |at: usize| doc.line_number(at) - 1;
        doc.root()
            .and_then(Node::entries)
            .unwrap()
            .iter()
            .map(|e| (e.key.clone(), line(e.key_start), line(entry_end(e) - 1)))
            .collect()
    }

    #[test]
    fn entries_span_to_last_content_line() {
        let text = "a:\n  x: 1\n  # trailing\n\nb:\n- 1\n- 2\n# before c\nc: 3\n";
        assert_eq!(
            lines_of(text),
            [("a".into(), 0, 1), ("b".into(), 4, 6), ("c".into(), 8, 8)]
        );
        let block = "a: |\n  one\n  two\n\nb: >-\n  three\nc: 1\n";
        assert_eq!(
            lines_of(block),
            [("a".into(), 0, 2), ("b".into(), 4, 5), ("c".into(), 6, 6)]
        );
    }

    #[test]
    fn quoted_keys_and_values_are_spanned_as_written() {
        let text = "'it''s': 'v' # c\n\"q\": \"a # b\"\nplain: x #c\nempty: # c\n";
        let doc = Document::parse(text).unwrap();
        let got: Vec<(&str, &str)> = doc
            .root()
            .and_then(Node::entries)
            .unwrap()
            .iter()
            .map(|e| (e.key.as_str(), &text[e.value.start..e.value.end]))
            .collect();
        assert_eq!(
            got,
            [
                ("it's", "'v'"),
                ("q", "\"a # b\""),
                ("plain", "x"),
                ("empty", "")
            ]
        );
    }

    #[test]
    fn style_is_detected() {
        let style = |text: &str| Style::of(&Document::parse(text).unwrap());
        let want = |eol, step, seq_offset| Style {
            eol,
            step,
            seq_offset,
            quote: Quote::Double,
        };
        assert_eq!(style("a:\n    b:\n    - 1\n"), want("\n", 4, 0));
        assert_eq!(style("a:\r\n  b:\r\n    - 1\r\n"), want("\r\n", 2, 2));
        assert_eq!(style("a: 1\n"), want("\n", 2, 2));
        let quote = |text: &str| style(text).quote;
        assert_eq!(quote("a: 'x'\nb: \"y\"\n"), Quote::Single);
        assert_eq!(quote("a: [x, \"y\"]\nb: 'z'\n"), Quote::Double);
        assert_eq!(quote("'a': x\n"), Quote::Single);
        assert_eq!(quote("a: |\n  'x'\nb: x\n"), Quote::Double);
    }

    #[test]
    fn insert_and_remove_are_inverse_without_final_newline() {
        let text = "a:\n  b: 1";
        let out = apply(text, vec![insert_after(text, 5, "\n", &["  c: 2".into()])]);
        assert_eq!(out, "a:\n  b: 1\n  c: 2");
        assert_eq!(apply(&out, vec![remove_lines(&out, 12, 15)]), text);
    }

    #[test]
    fn the_dash_of_an_item_is_found_where_it_is_written() {
        let text = "r:\n  - d: 1\n    w: 2\n  # about next\n  -\n    d: 3\ni:\n- x\n";
        let doc = Document::parse(text).unwrap();
        let root = doc.root().unwrap();
        let r = &root.get("r").unwrap().value;
        let items = r.items().unwrap();
        assert_eq!(first_dash(text, r), text.find("- d").unwrap());
        assert_eq!(dash_before(text, items[1].start), text.find("-\n").unwrap());
        let indentless = &root.get("i").unwrap().value;
        assert_eq!(first_dash(text, indentless), text.find("- x").unwrap());
    }
}
