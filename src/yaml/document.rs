//! A YAML file read once into a tree that knows where every node is written.
//!
//! granit-parser's events carry byte spans; one pass over them builds both the span tree that
//! the edits find their place in and the value that everything else reads (`serde_json::Value`,
//! as Kubernetes tools see a manifest). Nothing here scans text: where a node is, what style it
//! is written in and which anchor it defines all come from the parser.

use std::borrow::Cow;
use std::collections::HashMap;

use granit_parser::{Event, Options, Parser, ScalarStyle, StructureStyle, Tag};
use serde_json::{Map, Number, Value};

use super::{Seg, YamlError};

/// Limits far above any deploy configuration and far below what hurts: an alias bomb (a few
/// lines that expand to billions of nodes) is refused after a bounded amount of work, and a
/// nesting that deep is no manifest.
const MAX_NODES: usize = 100_000;
const MAX_ALIASES: usize = 1_000;
const MAX_DEPTH: usize = 128;

/// A YAML file: its text, and each of its documents as written and as meant.
#[derive(Debug, Clone)]
pub struct Document {
    text: String,
    roots: Vec<Node>,
    values: Vec<Value>,
}

/// A document is what its text says: two equal texts read the same.
impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Document {}

/// A node as written: where it is (`start..end`, its content without anchor or tag, which
/// start at `props`) and what it holds.
#[derive(Debug, Clone)]
pub struct Node {
    pub start: usize,
    pub end: usize,
    pub props: Option<usize>,
    /// The anchor it defines (`&name`) and where that is written.
    pub anchor: Option<(String, usize)>,
    pub flow: bool,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    /// `block`: a literal or folded scalar (`|`, `>`), whose text starts on the next line.
    Scalar {
        block: bool,
        empty: bool,
    },
    Alias,
}

/// A mapping entry: its key (as text) where it is written, and its value.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_start: usize,
    pub value: Node,
}

impl Node {
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    /// Written with an anchor, a tag or as an alias: a node canary does not edit inside.
    pub fn has_props(&self) -> bool {
        self.props.is_some() || matches!(self.kind, Kind::Alias)
    }
}

impl Document {
    /// Reads a file holding any number of documents (an empty one holds none).
    pub fn parse(text: impl Into<String>) -> Result<Document, YamlError> {
        let text = text.into();
        let (roots, values) = Builder::new(&text).run()?;
        Ok(Document {
            text,
            roots,
            values,
        })
    }

    /// Reads a file that must hold one document at most (an empty one is `null`).
    pub fn parse_one(text: impl Into<String>) -> Result<Document, YamlError> {
        Document::parse(text)?.single()
    }

    /// This document, refused when it holds more than one.
    pub fn single(self) -> Result<Document, YamlError> {
        if let Some(second) = self.roots.get(1) {
            return Err(YamlError::Parse(format!(
                "line {}: a second YAML document starts here, but one was expected",
                self.line_number(second.start)
            )));
        }
        Ok(self)
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }

    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    pub fn into_value(self) -> Value {
        self.values.into_iter().next().unwrap_or(Value::Null)
    }

    /// Every document that is neither empty nor null, in file order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The first document's value (`null` for an empty file).
    pub fn value(&self) -> &Value {
        self.values.first().unwrap_or(&Value::Null)
    }

    pub fn roots(&self) -> &[Node] {
        &self.roots
    }

    pub fn root(&self) -> Option<&Node> {
        self.roots.first()
    }

    /// The 1-based line of byte `offset`.
    pub fn line_number(&self, offset: usize) -> usize {
        memchr::memchr_iter(b'\n', &self.text.as_bytes()[..offset]).count() + 1
    }

    /// An edit canary refuses to make at byte `at`, with its line.
    pub fn unsupported(&self, at: usize, message: impl Into<String>) -> YamlError {
        YamlError::Unsupported {
            line: self.line_number(at),
            message: message.into(),
        }
    }

    /// The 1-based line of `path` in document `doc`, or of the deepest part of the path that
    /// is written there (an alias points at itself); for pointing a person at a finding.
    pub fn line_of(&self, doc: usize, path: &[Seg]) -> Option<usize> {
        let mut node = self.roots.get(doc)?;
        let mut at = node.start;
        for seg in path {
            let next = match seg {
                Seg::Key(key) => node.get(key).map(|e| {
                    at = e.key_start;
                    &e.value
                }),
                Seg::Index(i) => node.items().and_then(|items| items.get(*i)),
            };
            match next {
                Some(next) => {
                    node = next;
                    if matches!(seg, Seg::Index(_)) {
                        at = node.props.unwrap_or(node.start);
                    }
                }
                None => break,
            }
        }
        Some(self.line_number(at))
    }
}

/// A collection being read: its node so far and its value so far.
struct Open {
    node: Node,
    value: Value,
    /// In a mapping, the key read whose value comes next.
    key: Option<(String, usize)>,
    /// In a mapping, the values of its `<<` keys, merged in at its end.
    merges: Vec<Value>,
    anchor: usize,
    /// Node count when it opened, for the size of an anchored collection.
    nodes_before: usize,
}

/// The node an anchor event names: granit reports it after the node's own event.
#[derive(Clone, Copy, PartialEq)]
enum Recent {
    Opened,
    Added,
    Key,
}

struct Builder<'t> {
    text: &'t str,
    stack: Vec<Open>,
    roots: Vec<Node>,
    values: Vec<Value>,
    /// Anchor id → its value and how many nodes it stands for.
    anchors: HashMap<usize, (Value, usize)>,
    recent: Recent,
    nodes: usize,
    aliases: usize,
}

impl<'t> Builder<'t> {
    fn new(text: &'t str) -> Self {
        Builder {
            text,
            stack: Vec::new(),
            roots: Vec::new(),
            values: Vec::new(),
            anchors: HashMap::new(),
            recent: Recent::Key,
            nodes: 0,
            aliases: 0,
        }
    }

    fn run(mut self) -> Result<(Vec<Node>, Vec<Value>), YamlError> {
        let mut options = Options::default();
        options.emit_anchor_events = true;
        // Comments are kept by the spans, not by the tree: no need to capture their text.
        options.emit_comments = false;
        let at = |m: granit_parser::Marker| m.byte_offset().unwrap_or(0);
        for event in Parser::new_from_str_with_options(self.text, options) {
            let (event, span) = event.map_err(|e| {
                let m = e.marker();
                YamlError::Parse(format!(
                    "line {} column {}: {}",
                    m.line(),
                    m.col() + 1,
                    e.info()
                ))
            })?;
            let (start, end) = (at(span.start), at(span.end));
            let props = span.tag_start.map(at);
            match event {
                Event::Scalar(text, style, anchor, tag) => {
                    self.count(start, 1)?;
                    if let Some(open) = self.stack.last_mut().filter(|o| key_next(o)) {
                        open.key = Some((text.into_owned(), start));
                        self.recent = Recent::Key;
                        continue;
                    }
                    let value = resolve(text, style, tag.as_deref())
                        .map_err(|e| YamlError::Parse(format!("line {}: {e}", self.line(start))))?;
                    if anchor != 0 {
                        self.anchors.insert(anchor, (value.clone(), 1));
                    }
                    let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
                    // A block scalar's span runs on to the next line's indentation.
                    let end = if block {
                        start + self.text[start..end].trim_end().len()
                    } else {
                        end
                    };
                    let kind = Kind::Scalar {
                        block,
                        empty: style == ScalarStyle::Plain && start == end,
                    };
                    self.add(node(start, end, props, false, kind), value)?;
                }
                Event::Alias(id) => {
                    self.aliases += 1;
                    if self.aliases > MAX_ALIASES {
                        return Err(self.bomb(start));
                    }
                    let (value, nodes) = self.anchors.get(&id).cloned().unwrap_or_default();
                    self.count(start, nodes)?;
                    self.add(node(start, end, None, false, Kind::Alias), value)?;
                }
                Event::Anchor(_, name) => {
                    let target = match self.recent {
                        Recent::Opened => self.stack.last_mut().map(|o| &mut o.node),
                        Recent::Added => self.last_added(),
                        Recent::Key => None,
                    };
                    if let Some(node) = target {
                        node.anchor = Some((name.into_owned(), start));
                        node.props = Some(node.props.map_or(start, |p| p.min(start)));
                    }
                }
                Event::MappingStart(style, anchor, _) | Event::SequenceStart(style, anchor, _) => {
                    let map = matches!(event, Event::MappingStart(..));
                    self.count(start, 1)?;
                    if self.stack.last().is_some_and(key_next) {
                        return Err(YamlError::Parse(format!(
                            "line {}: a collection as a mapping key is not supported",
                            self.line(start)
                        )));
                    }
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(YamlError::Parse(format!(
                            "line {}: nested more than {MAX_DEPTH} levels deep",
                            self.line(start)
                        )));
                    }
                    let (kind, value) = if map {
                        (Kind::Map(Vec::new()), Value::Object(Map::new()))
                    } else {
                        (Kind::Seq(Vec::new()), Value::Array(Vec::new()))
                    };
                    let flow = style == StructureStyle::Flow;
                    self.stack.push(Open {
                        node: node(start, end, props, flow, kind),
                        value,
                        key: None,
                        merges: Vec::new(),
                        anchor,
                        nodes_before: self.nodes - 1,
                    });
                    self.recent = Recent::Opened;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let mut open = self.stack.pop().expect("the parser balances collections");
                    open.node.end = if open.node.flow {
                        end
                    } else {
                        last_end(&open.node).unwrap_or(open.node.start)
                    };
                    merge(&mut open.value, open.merges);
                    if open.anchor != 0 {
                        let nodes = self.nodes - open.nodes_before;
                        self.anchors
                            .insert(open.anchor, (open.value.clone(), nodes));
                    }
                    self.add(open.node, open.value)?;
                }
                _ => {}
            }
        }
        Ok((self.roots, self.values))
    }

    /// Puts a finished node in its collection, or makes it a document's root.
    fn add(&mut self, node: Node, value: Value) -> Result<(), YamlError> {
        self.recent = Recent::Added;
        let Some(open) = self.stack.last_mut() else {
            // As Kubernetes tools do, a document that is empty or null holds no object.
            if !value.is_null() {
                self.roots.push(node);
                self.values.push(value);
            }
            return Ok(());
        };
        match (&mut open.node.kind, &mut open.value) {
            (Kind::Seq(items), Value::Array(values)) => {
                items.push(node);
                values.push(value);
            }
            (Kind::Map(entries), Value::Object(values)) => {
                let (key, key_start) = match open.key.take() {
                    Some(key) => key,
                    None if matches!(node.kind, Kind::Alias) => {
                        return Err(YamlError::Parse(format!(
                            "line {}: an alias as a mapping key is not supported",
                            line(self.text, node.start)
                        )));
                    }
                    None => unreachable!("a mapping's scalar key is taken before its value"),
                };
                if key == "<<" && is_plain_at(self.text, key_start) {
                    open.merges.push(value);
                } else if values.insert(key.clone(), value).is_some() {
                    return Err(YamlError::Parse(format!(
                        "line {}: duplicate key {:?} in a mapping",
                        line(self.text, key_start),
                        key
                    )));
                }
                entries.push(Entry {
                    key,
                    key_start,
                    value: node,
                });
            }
            _ => unreachable!("a node's kind and value are made together"),
        }
        Ok(())
    }

    fn last_added(&mut self) -> Option<&mut Node> {
        match self.stack.last_mut() {
            None => self.roots.last_mut(),
            Some(open) => match &mut open.node.kind {
                Kind::Map(entries) => entries.last_mut().map(|e| &mut e.value),
                Kind::Seq(items) => items.last_mut(),
                _ => None,
            },
        }
    }

    fn count(&mut self, at: usize, nodes: usize) -> Result<(), YamlError> {
        self.nodes += nodes;
        if self.nodes > MAX_NODES {
            return Err(self.bomb(at));
        }
        Ok(())
    }

    fn bomb(&self, at: usize) -> YamlError {
        YamlError::Parse(format!(
            "line {}: more nodes or aliases than a deploy configuration has (an alias bomb?)",
            self.line(at)
        ))
    }

    fn line(&self, at: usize) -> usize {
        line(self.text, at)
    }
}

fn line(text: &str, at: usize) -> usize {
    memchr::memchr_iter(b'\n', &text.as_bytes()[..at]).count() + 1
}

fn node(start: usize, end: usize, props: Option<usize>, flow: bool, kind: Kind) -> Node {
    Node {
        start,
        end,
        props,
        anchor: None,
        flow,
        kind,
    }
}

fn key_next(open: &Open) -> bool {
    matches!(open.node.kind, Kind::Map(_)) && open.key.is_none()
}

/// `<<` is a merge key only when written plain (`"<<"` is an ordinary key).
fn is_plain_at(text: &str, at: usize) -> bool {
    text.as_bytes().get(at) == Some(&b'<')
}

/// The end of a block collection: that of its last node, the last key when its value is empty.
fn last_end(node: &Node) -> Option<usize> {
    match &node.kind {
        Kind::Map(entries) => entries.last().map(|e| match e.value.kind {
            Kind::Scalar { empty: true, .. } => e.value.start,
            _ => e.value.end,
        }),
        Kind::Seq(items) => items.last().map(|n| n.end),
        _ => None,
    }
}

/// The `<<` merge keys of YAML 1.1, which Kubernetes manifests use: the keys of each merged
/// mapping that the mapping itself does not set.
fn merge(value: &mut Value, merges: Vec<Value>) {
    let Value::Object(map) = value else { return };
    for merged in merges {
        let sources = match merged {
            Value::Array(list) => list,
            other => vec![other],
        };
        for source in sources {
            if let Value::Object(source) = source {
                for (k, v) in source {
                    map.entry(k).or_insert(v);
                }
            }
        }
    }
}

/// A scalar's value: as tagged, as written in quotes or a block, or resolved from its plain
/// text the way Kubernetes tools read manifests: null (`~`, `null` and the empty text), the
/// YAML 1.1 booleans in any case (`yes`, `off`, `Y`...), integers (decimal, `0x`, `0o`) and
/// decimal floats; anything else is a string. A decimal with a leading zero stays a string:
/// YAML 1.1 reads it as octal and YAML 1.2 as decimal, so no reading of it is safe.
/// The text is taken, not borrowed: a string the parser already owns (unescaped, folded)
/// becomes the value without another copy.
fn resolve(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let core = tag.and_then(|t| t.is_yaml_core_schema().then(|| t.suffix()));
    let typed =
        |v: Option<Value>, what: &str| v.ok_or_else(|| format!("{text:?} is not a valid {what}"));
    match core {
        Some("str") => return Ok(Value::String(text.into_owned())),
        Some("null") => return Ok(Value::Null),
        Some("bool") => return typed(boolean(&text).map(Value::Bool), "boolean"),
        Some("int") => return typed(integer(&text), "integer"),
        Some("float") => return typed(integer(&text).or_else(|| float(&text)), "float"),
        _ => {}
    }
    if style != ScalarStyle::Plain || tag.is_some() {
        return Ok(Value::String(text.into_owned()));
    }
    if matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Value::Null);
    }
    if let Some(b) = boolean(&text) {
        return Ok(Value::Bool(b));
    }
    Ok(integer(&text)
        .or_else(|| float(&text))
        .unwrap_or_else(|| Value::String(text.into_owned())))
}

fn boolean(text: &str) -> Option<bool> {
    let is = |words: [&str; 4]| words.iter().any(|w| text.eq_ignore_ascii_case(w));
    if is(["true", "yes", "y", "on"]) {
        Some(true)
    } else if is(["false", "no", "n", "off"]) {
        Some(false)
    } else {
        None
    }
}

fn integer(text: &str) -> Option<Value> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = body.strip_prefix("0x") {
        (16, hex)
    } else if let Some(octal) = body.strip_prefix("0o") {
        (8, octal)
    } else if body.len() > 1 && body.starts_with('0') {
        return None;
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let n = 0i64.checked_sub_unsigned(magnitude)?;
        Some(Value::from(n))
    } else {
        Some(Value::from(magnitude))
    }
}

/// A decimal float (`1.5`, `-.5`, `1e3`); `.inf` and `.nan` have no JSON value and stay text.
fn float(text: &str) -> Option<Value> {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    // Most plain scalars are words, hosts or paths: turned away by their first character, before
    // the scans below, as the mantissa's rule would turn them away after.
    if !matches!(body.as_bytes().first(), Some(b'0'..=b'9' | b'.')) {
        return None;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = (!int.is_empty() || !frac.is_empty()) && digits(int) && digits(frac);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok && (exponent.is_some() || mantissa.contains('.'))) {
        return None;
    }
    Number::from_f64(text.parse().ok()?).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(text: &str) -> Value {
        Document::parse_one(text).unwrap().into_value()
    }

    #[test]
    fn plain_scalars_read_as_serde_saphyr_reads_them() {
        for s in [
            "yes",
            "No",
            "y",
            "OFF",
            "True",
            "~",
            "null",
            "NULL",
            "",
            "0x1f",
            "0o17",
            "1e3",
            "-5",
            "+5",
            "1.0",
            ".5",
            "-.5",
            "1.",
            "0",
            "-0",
            "12:30",
            "2024-01-01",
            "1e",
            "e3",
            "E3",
            "-e3",
            "+.5",
            "x1.5",
            "web-v1",
            "sha256:abc",
            "\"1\"",
            "'yes'",
            "-9223372036854775808",
            "18446744073709551615",
        ] {
            let text = format!("k: {s}\n");
            let theirs: Value = serde_saphyr::from_str(&text).unwrap();
            assert_eq!(value(&text), theirs, "{s}");
        }
    }

    #[test]
    fn numbers_without_one_safe_reading_stay_text() {
        // YAML 1.1 reads these as octal, binary or with digit separators, YAML 1.2 otherwise
        // or as text: a manifest that means one of them has to say so.
        for s in ["017", "0127", "00", "0b101", "1_000", ".inf", ".nan"] {
            assert_eq!(value(&format!("k: {s}\n")), json!({"k": s}), "{s}");
        }
    }

    #[test]
    fn tags_anchors_aliases_and_merges() {
        let text = "\
base: &base {a: 1, b: [x]}
tagged: !!str 1
int: !!int \"2\"
copy: *base
merged:
  <<: *base
  a: 3
quoted-merge:
  \"<<\": 1
";
        assert_eq!(
            value(text),
            json!({
                "base": {"a": 1, "b": ["x"]},
                "tagged": "1",
                "int": 2,
                "copy": {"a": 1, "b": ["x"]},
                "merged": {"a": 3, "b": ["x"]},
                "quoted-merge": {"<<": 1},
            })
        );
        let doc = Document::parse(text).unwrap();
        let root = doc.root().unwrap();
        let base = &root.get("base").unwrap().value;
        assert_eq!(base.anchor.as_ref().map(|(n, _)| n.as_str()), Some("base"));
        assert!(base.has_props() && base.flow);
        assert!(matches!(root.get("copy").unwrap().value.kind, Kind::Alias));
        assert!(root.get("tagged").unwrap().value.has_props());
    }

    #[test]
    fn what_canary_cannot_read_is_refused_with_its_line() {
        for (text, says) in [
            ("a: 1\na: 2\n", "line 2: duplicate key \"a\""),
            ("? [a, b]\n: 1\n", "a collection as a mapping key"),
            ("a: !!int x\n", "\"x\" is not a valid integer"),
            ("a: [1\n", "line 1 column 4: unclosed bracket"),
        ] {
            let err = Document::parse(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let row = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{row}]\n"));
        }
        let err = Document::parse(bomb).unwrap_err().to_string();
        assert!(err.contains("alias bomb"), "{err}");
    }

    #[test]
    fn empty_and_null_documents_hold_nothing() {
        let doc = Document::parse("---\n---\n~\n---\na: 1\n").unwrap();
        assert_eq!(doc.values(), [json!({"a": 1})]);
        assert_eq!(doc.roots().len(), 1);
        assert_eq!(Document::parse_one("").unwrap().value(), &Value::Null);
    }

    #[test]
    fn line_of_points_at_the_deepest_part_written() {
        let doc = Document::parse("a:\n  b:\n    - x\n    - {c: 1}\nd: 1\n").unwrap();
        let key = |k: &str| Seg::Key(k.into());
        assert_eq!(
            doc.line_of(0, &[key("a"), key("b"), Seg::Index(1)]),
            Some(4)
        );
        assert_eq!(
            doc.line_of(0, &[key("a"), key("b"), Seg::Index(1), key("c")]),
            Some(4)
        );
        assert_eq!(doc.line_of(0, &[key("a"), key("nope"), key("c")]), Some(1));
        assert_eq!(doc.line_of(0, &[key("d")]), Some(5));
        assert_eq!(doc.line_of(1, &[]), None);
    }
}
