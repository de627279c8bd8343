//! An editing cursor over a [`Document`], in the spirit of `toml_edit`: it finds a node by
//! path and writes the splices that set a scalar, add mapping entries or a list item, or remove
//! an entry, each in the file's own [`Style`] (indentation step, dash offset, quotes, line
//! endings, block or flow). What the splices mean is the caller's to say in a [`Plan`], proved
//! by the re-read ([`super::splice::prove`]).
//!
//! [`Plan`]: super::splice::Plan

use serde_json::Value;

use super::emit::scalar;
use super::splice::{
    Splice, Style, col, entry_end, first_dash, insert_after, leading_comments, lines, remove_lines,
};
use super::{Document, Entry, Kind, Node, Seg, YamlError};

/// A document being edited, with the style that new text is written in.
pub(crate) struct Cursor<'a> {
    pub doc: &'a Document,
    pub text: &'a str,
    pub style: Style,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(doc: &'a Document) -> Self {
        Cursor {
            doc,
            text: doc.text(),
            style: Style::of(doc),
        }
    }

    /// The node written at `path` in the first document; `None` where the path leaves what is
    /// written (a key only a merge gives, an index past the end).
    pub(crate) fn find(&self, path: &[Seg]) -> Option<&'a Node> {
        path.iter()
            .try_fold(self.doc.root()?, |node, seg| match seg {
                Seg::Key(key) => node.get(key).map(|e| &e.value),
                Seg::Index(i) => node.items()?.get(*i),
            })
    }

    /// The block collection an entry holds; `None` for scalars and empty values.
    pub(crate) fn child(&self, e: &'a Entry, path: &str) -> Result<Option<&'a Node>, YamlError> {
        let value = &e.value;
        if value.has_props() {
            return Err(self.doc.unsupported(
                e.key_start,
                format!("{path} uses an anchor, tag or alias, which canary does not edit"),
            ));
        }
        if value.flow {
            return Err(self.doc.unsupported(
                e.key_start,
                format!(
                    "{path} is written in flow style ({{...}} or [...]); canary edits only block-style YAML"
                ),
            ));
        }
        Ok(matches!(value.kind, Kind::Map(_) | Kind::Seq(_)).then_some(value))
    }

    /// The flow mapping an entry holds (the value of `path`).
    pub(crate) fn flow_at(&self, e: &'a Entry, path: &str) -> Result<&'a Node, YamlError> {
        match &e.value {
            node @ Node {
                flow: true,
                kind: Kind::Map(_),
                ..
            } if !node.has_props() => Ok(node),
            _ => Err(self.doc.unsupported(
                e.key_start,
                format!("{path} is not a mapping canary can edit"),
            )),
        }
    }

    /// The splice that writes `value` over a scalar in place, keeping what is around it (a
    /// comment after it); `None` unless it is one plain or quoted line canary can replace.
    pub(crate) fn set_scalar(&self, node: &Node, value: &Value) -> Option<Splice> {
        let one_line = matches!(
            node.kind,
            Kind::Scalar {
                block: false,
                empty: false
            }
        ) && !node.has_props()
            && !self.text[node.start..node.end].contains('\n');
        let text = match value {
            Value::String(s) => scalar(s, self.style.quote),
            other => other.to_string(),
        };
        one_line.then(|| Splice::replace(node.start, node.end, text))
    }

    /// The splice that adds entries at the end of the block mapping `e` holds, or under its key
    /// when it holds nothing yet; `new` writes them at the column of the mapping's keys.
    pub(crate) fn add_entries(
        &self,
        e: &'a Entry,
        path: &str,
        new: impl FnOnce(usize) -> Vec<String>,
    ) -> Result<Splice, YamlError> {
        let under = |node: &Node| self.col(node.start);
        self.add_under(e, path, (under, self.style.step, "mapping"), new)
    }

    /// The splice that adds an item at the end of the block list `e` holds, or under its key
    /// when it holds nothing yet; `new` writes it with its `-` at the given column.
    pub(crate) fn add_item(
        &self,
        e: &'a Entry,
        path: &str,
        new: impl FnOnce(usize) -> Vec<String>,
    ) -> Result<Splice, YamlError> {
        let dash = |seq: &Node| self.col(first_dash(self.text, seq));
        self.add_under(e, path, (dash, self.style.seq_offset, "list"), new)
    }

    /// New lines at the end of the block collection `e` holds, at the column `at` finds in
    /// it, or under an empty key, `offset` to the right of it.
    fn add_under(
        &self,
        e: &'a Entry,
        path: &str,
        (at, offset, what): (impl Fn(&Node) -> usize, usize, &str),
        new: impl FnOnce(usize) -> Vec<String>,
    ) -> Result<Splice, YamlError> {
        match self.child(e, path)? {
            Some(node) => Ok(self.insert_after(last(e), &new(at(node)))),
            None if is_empty(e) => {
                let col = self.col(e.key_start) + offset;
                Ok(self.insert_after(e.key_start, &new(col)))
            }
            None => Err(self
                .doc
                .unsupported(e.key_start, format!("{path} is not a block {what}"))),
        }
    }

    /// The splice that appends `items` at the end of a flow mapping, in its own spacing:
    /// `{a: 1}` + `b: 2` → `{a: 1, b: 2}`; `{ }` → `{ b: 2 }`.
    pub(crate) fn add_flow_entries(&self, flow: &Node, items: Vec<String>) -> Splice {
        let joined = items.join(", ");
        match flow.entries().and_then(<[Entry]>::last) {
            Some(last) => Splice::insert(entry_end(last), format!(", {joined}")),
            None => {
                let inner = &self.text[flow.start + 1..flow.end - 1];
                if inner.trim().is_empty() && !inner.is_empty() {
                    Splice::insert(flow.start + 1, format!(" {joined}"))
                } else {
                    Splice::insert(flow.start + 1, joined)
                }
            }
        }
    }

    /// The splice that removes a block entry: its key line through its last content line.
    pub(crate) fn remove_entry(&self, e: &Entry) -> Splice {
        remove_lines(self.text, e.key_start, last(e))
    }

    /// The same flow mapping written with its entries' text verbatim, minus the keys in
    /// `drop`, plus `extra` at the end: how a copy of a flow mapping is made.
    pub(crate) fn rewrite(&self, flow: &Node, drop: &[&str], extra: &[String]) -> String {
        let items: Vec<String> = flow
            .entries()
            .into_iter()
            .flatten()
            .filter(|e| !drop.contains(&e.key.as_str()))
            .map(|e| self.written(e).to_string())
            .chain(extra.iter().cloned())
            .collect();
        format!("{{{}}}", items.join(", "))
    }

    /// An entry of a flow mapping as written, `key: value`.
    pub(crate) fn written(&self, e: &Entry) -> &'a str {
        &self.text[e.key_start..entry_end(e)]
    }

    /// An entry's lines (with the comments directly above it), verbatim.
    pub(crate) fn copy_entry(&self, e: &Entry) -> Vec<String> {
        lines(self.text, leading_comments(self.text, e.key_start), last(e))
    }

    pub(crate) fn col(&self, at: usize) -> usize {
        col(self.text, at)
    }

    /// The lines inserted after the line holding byte `at`, with the file's line endings.
    pub(crate) fn insert_after(&self, at: usize, new: &[String]) -> Splice {
        insert_after(self.text, at, self.style.eol, new)
    }
}

/// A byte on an entry's last line.
pub(crate) fn last(e: &Entry) -> usize {
    entry_end(e).saturating_sub(1).max(e.key_start)
}

/// Written as a key with nothing after it (`env:`).
pub(crate) fn is_empty(e: &Entry) -> bool {
    matches!(e.value.kind, Kind::Scalar { empty: true, .. }) && !e.value.has_props()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::splice::apply;
    use serde_json::json;

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    #[test]
    fn edits_are_written_in_the_files_style() {
        let text = "a:\n    b: 'x' # keep\n    l:\n    - 1\n    e:\n    f: {k: 1}\nz: 1\n";
        let doc = Document::parse(text).unwrap();
        let cur = Cursor::new(&doc);
        let a = cur.doc.root().unwrap().get("a").unwrap();
        let b = cur.find(&[key("a"), key("b")]).unwrap();
        let node = |k: &str| a.value.get(k).unwrap();
        let edit = |s: Splice| apply(text, vec![s]);
        assert_eq!(
            edit(cur.set_scalar(b, &json!("017")).unwrap()),
            text.replace("'x'", "'017'")
        );
        assert_eq!(
            edit(
                cur.add_entries(a, "a", |c| vec![format!("{:c$}c: 1", "")])
                    .unwrap()
            ),
            text.replace("z: 1", "    c: 1\nz: 1")
        );
        assert_eq!(
            edit(
                cur.add_item(node("l"), "a.l", |d| vec![format!("{:d$}- 2", "")])
                    .unwrap()
            ),
            text.replace("- 1\n", "- 1\n    - 2\n")
        );
        assert_eq!(
            edit(
                cur.add_item(node("e"), "a.e", |d| vec![format!("{:d$}- 2", "")])
                    .unwrap()
            ),
            text.replace("e:\n", "e:\n    - 2\n")
        );
        let f = cur.flow_at(node("f"), "a.f").unwrap();
        assert_eq!(
            edit(cur.add_flow_entries(f, vec!["m: 2".into()])),
            text.replace("{k: 1}", "{k: 1, m: 2}")
        );
        assert_eq!(
            edit(cur.remove_entry(node("l"))),
            text.replace("    l:\n    - 1\n", "")
        );
        assert!(cur.find(&[key("a"), key("l"), Seg::Index(1)]).is_none());
        assert!(cur.set_scalar(&a.value, &json!(1)).is_none());
        assert!(cur.add_item(node("b"), "a.b", |_| Vec::new()).is_err());
    }
}
