//! Line-based locator for block-style YAML.
//!
//! serde-saphyr yields values, not byte positions, so edits are placed by
//! reading lines and indentation. The locator only models block mappings,
//! block sequences and single-line scalars; anything else it meets on the
//! path of an edit (flow collections, anchors, tags, complex keys) is
//! reported as `Unsupported` with its line. Callers re-parse every result,
//! so the locator can stay small without risking a wrong file.
//!
//! Each query scans only the lines of the node it is asked about, so
//! descending a path costs O(lines x depth), never a rescan per line.

use std::borrow::Cow;

use super::YamlError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Blank,
    Comment,
    /// Part of a node, including block scalar text (even when it looks like `# x`).
    Content,
    /// `---`, `...` or a `%` directive at column 0.
    Marker,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    pub start: usize,
    /// End of the line's text, before `\r\n` or `\n`.
    pub end: usize,
    /// Start of the following line (`end` when the file ends without a newline).
    pub next: usize,
    pub indent: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// Nothing after `key:`; the value (if any) is on the following lines.
    Empty,
    /// A plain or quoted scalar that ends on its line.
    Scalar,
    /// A quoted scalar continuing on the next lines.
    Multiline,
    BlockScalar,
    Flow,
    /// Starts with an anchor, tag or alias.
    Props,
}

/// The value written after `key:` on the key's line (byte offsets in the file).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inline {
    pub start: usize,
    pub end: usize,
    pub kind: ValueKind,
}

/// A block node: it starts at column `col` of line `line` (past `- ` for the
/// mapping inside a sequence item) and ends on content line `last`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub line: usize,
    pub col: usize,
    pub last: usize,
}

/// A mapping entry: its key line through its last content line.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    /// Borrowed from the file unless unquoting changed it: a step lists the 500 deployments
    /// of a big file to find one.
    pub key: Cow<'a, str>,
    pub line: usize,
    pub col: usize,
    pub last: usize,
    pub value: Inline,
}

/// A sequence item: its `-` line through its last content line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub line: usize,
    pub last: usize,
    /// Column of the item's content when it starts on the `-` line.
    content: Option<usize>,
}

/// How the file writes nested blocks, so inserted text looks like the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    pub eol: &'static str,
    /// Indentation of a mapping's children relative to its key.
    pub step: usize,
    /// Indentation of a sequence's `-` relative to its key (0 when indentless).
    pub seq_offset: usize,
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

/// Replace `start..end` of the file with `text`.
#[derive(Debug)]
pub(crate) struct Edit {
    start: usize,
    end: usize,
    text: String,
}

pub(crate) struct Doc<'a> {
    text: &'a str,
    lines: Vec<Line>,
    /// Whether a line opens a block scalar, whose text is read differently.
    block_scalars: bool,
    pub style: Style,
}

/// A [`Doc`]'s lines without the text, kept for the text an edit returns (see [`Doc::edited`]).
pub(crate) struct Lines {
    lines: Vec<Line>,
    block_scalars: bool,
}

impl<'a> Doc<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        // Deploy configs run to about 30 bytes a line; a guess spares most regrowth.
        let mut lines = Vec::with_capacity(text.len() / 24);
        let block_scalars = read_lines(text, 0, &mut lines, |_| false);
        Doc::from_lines(
            text,
            Lines {
                lines,
                block_scalars,
            },
        )
    }

    /// The locator of `text`, whose lines are `lines`.
    pub(crate) fn from_lines(text: &'a str, lines: Lines) -> Self {
        let style = Style::detect(text, &lines.lines);
        Doc {
            text,
            lines: lines.lines,
            block_scalars: lines.block_scalars,
            style,
        }
    }

    /// The lines of `out`, this text with the bytes `changed` replaced, read from this text's:
    /// the lines before the change are the same, and so are the lines after it from the first
    /// one that starts after the change where no block scalar is open (none ever is in a text
    /// without block scalars; one with them is read again whole). A 5,000-line gap.yaml is read
    /// once per step rather than once per edit.
    pub(crate) fn edited(self, out: &str, changed: std::ops::Range<usize>) -> Lines {
        let Doc {
            text,
            mut lines,
            block_scalars,
            ..
        } = self;
        if block_scalars {
            let mut lines = Vec::with_capacity(out.len() / 24);
            let block_scalars = read_lines(out, 0, &mut lines, |_| false);
            return Lines {
                lines,
                block_scalars,
            };
        }
        // Lines that end with a newline before the change (a line without one would grow).
        let kept = lines.partition_point(|l| l.next <= changed.start && l.next > l.end);
        let from = lines.get(kept).map_or(text.len(), |l| l.start);
        // `out` from the end of the change on is `text` from there, `grown` bytes further on.
        let (grown, shrunk) = (
            out.len().saturating_sub(text.len()),
            text.len().saturating_sub(out.len()),
        );
        let changed_end = changed.end + grown - shrunk;
        let (mut same, mut resumed) = (kept, None);
        let mut read = Vec::new();
        let block_scalars = read_lines(out, from, &mut read, |start| {
            if start < changed_end {
                return false;
            }
            let old = start + shrunk - grown;
            same += lines[same..].partition_point(|l| l.start < old);
            let found = lines.get(same).is_some_and(|l| l.start == old);
            if found {
                resumed = Some(same);
            }
            found
        });
        let same = resumed.unwrap_or(lines.len());
        let moved = lines.len() - same;
        lines.splice(kept..same, read);
        let moved = lines.len() - moved;
        for l in &mut lines[moved..] {
            l.start = l.start + grown - shrunk;
            l.end = l.end + grown - shrunk;
            l.next = l.next + grown - shrunk;
        }
        Lines {
            lines,
            block_scalars,
        }
    }

    fn text_of(&self, i: usize) -> &'a str {
        &self.text[self.lines[i].start..self.lines[i].end]
    }

    fn is_content(&self, i: usize) -> bool {
        self.lines[i].kind == Kind::Content
    }

    /// The root node of every document that has content, in file order.
    pub(crate) fn documents(&self) -> Result<Vec<Node>, YamlError> {
        let mut docs = Vec::new();
        let mut current: Option<Node> = None;
        for (i, l) in self.lines.iter().enumerate() {
            match l.kind {
                Kind::Content => match &mut current {
                    Some(node) => node.last = i,
                    None => {
                        current = Some(Node {
                            line: i,
                            col: l.indent,
                            last: i,
                        })
                    }
                },
                Kind::Marker => {
                    let s = self.text_of(i);
                    let after = s.get(3..).unwrap_or_default().trim_start();
                    if s.starts_with("---") && !after.is_empty() && !after.starts_with('#') {
                        return Err(unsupported(
                            i,
                            "content on the `---` line is not supported; start it on the next line",
                        ));
                    }
                    docs.extend(current.take());
                }
                Kind::Blank | Kind::Comment => {}
            }
        }
        docs.extend(current);
        Ok(docs)
    }

    /// The root of a file that must hold a single document.
    pub(crate) fn single_root(&self) -> Result<Option<Node>, YamlError> {
        let docs = self.documents()?;
        match docs.get(1) {
            Some(second) => Err(unsupported(
                second.line,
                "a second YAML document starts here; canary edits single-document files",
            )),
            None => Ok(docs.first().copied()),
        }
    }

    /// The entries of the block mapping `node`.
    pub(crate) fn entries(&self, node: Node) -> Result<Vec<Entry<'a>>, YamlError> {
        let mut out: Vec<Entry> = Vec::new();
        // By reference and without an index check per line: most lines of a big mapping are
        // its entries' own, passed over.
        for (i, l) in (node.line..).zip(&self.lines[node.line..=node.last]) {
            if l.kind != Kind::Content {
                continue;
            }
            let first = i == node.line;
            if !first && l.indent > node.col {
                if let Some(e) = out.last_mut() {
                    e.last = i;
                }
                continue;
            }
            let col = if first { node.col } else { l.indent };
            if col < node.col {
                return Err(unsupported(i, "unexpected indentation"));
            }
            let s = self.text_of(i);
            if dash_at(s, col).is_some() {
                // `key:` followed by `- a` at the key's own column: the
                // indentless sequence is the previous key's value.
                match out.last_mut() {
                    Some(e) if e.value.kind == ValueKind::Empty => {
                        e.last = i;
                        continue;
                    }
                    _ => return Err(unsupported(i, "expected a `key:` line, found `- `")),
                }
            }
            let (key, after) = match parse_key(s, col) {
                Ok(Some(found)) => found,
                Ok(None) => return Err(unsupported(i, "expected a `key:` line")),
                Err(message) => return Err(unsupported(i, message)),
            };
            let (a, b, kind) = inline_value(s, after);
            out.push(Entry {
                key,
                line: i,
                col,
                last: i,
                value: Inline {
                    start: l.start + a,
                    end: l.start + b,
                    kind,
                },
            });
        }
        Ok(out)
    }

    /// The items of the block sequence `node`.
    pub(crate) fn items(&self, node: Node) -> Result<Vec<Item>, YamlError> {
        let mut out: Vec<Item> = Vec::new();
        for i in node.line..=node.last {
            let l = self.lines[i];
            if l.kind != Kind::Content {
                continue;
            }
            let first = i == node.line;
            if !first && l.indent > node.col {
                if let Some(item) = out.last_mut() {
                    item.last = i;
                }
                continue;
            }
            let col = if first { node.col } else { l.indent };
            let s = self.text_of(i);
            let after = match dash_at(s, col) {
                Some(after) if col == node.col => after,
                _ => return Err(unsupported(i, "expected a sequence item (`- `)")),
            };
            let content = (after < s.len() && !s[after..].starts_with('#')).then_some(after);
            out.push(Item {
                line: i,
                last: i,
                content,
            });
        }
        Ok(out)
    }

    /// The block node holding an entry's value; `None` for scalars and empty values.
    pub(crate) fn child(&self, e: &Entry, path: &str) -> Result<Option<Node>, YamlError> {
        match e.value.kind {
            ValueKind::Flow => Err(unsupported(
                e.line,
                format!(
                    "{path} is written in flow style ({{...}} or [...]); canary edits only block-style YAML"
                ),
            )),
            ValueKind::Props => Err(unsupported(
                e.line,
                format!("{path} uses an anchor, tag or alias, which canary does not edit"),
            )),
            ValueKind::Empty => Ok(self.node_from(e.line + 1, e.last)),
            ValueKind::Scalar | ValueKind::Multiline | ValueKind::BlockScalar => Ok(None),
        }
    }

    /// The node inside a sequence item (`- key: v` or `-` then lines below).
    pub(crate) fn item_node(&self, item: &Item) -> Option<Node> {
        match item.content {
            Some(col) => Some(Node {
                line: item.line,
                col,
                last: item.last,
            }),
            None => self.node_from(item.line + 1, item.last),
        }
    }

    fn node_from(&self, from: usize, last: usize) -> Option<Node> {
        (from..=last).find(|&j| self.is_content(j)).map(|j| Node {
            line: j,
            col: self.lines[j].indent,
            last,
        })
    }

    /// The 0-based line of the node at `path` in document `doc`, or of the deepest part of the
    /// path the locator can follow (a flow collection, say, points at its key's line); the
    /// document's first line when not even the first key is found.
    pub(crate) fn line_of(&self, doc: usize, path: &[Seg]) -> Option<usize> {
        let mut node = *self.documents().ok()?.get(doc)?;
        let mut line = node.line;
        for seg in path {
            let next = match seg {
                Seg::Key(key) => self.entries(node).ok().and_then(|entries| {
                    let e = find(&entries, key)?.clone();
                    line = e.line;
                    self.child(&e, key).ok().flatten()
                }),
                Seg::Index(i) => self.items(node).ok().and_then(|items| {
                    let item = items.get(*i)?;
                    line = item.line;
                    self.item_node(item)
                }),
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        Some(line)
    }

    /// First line of the comment block directly above `line` at column `col`
    /// (comments there describe the entry below them).
    pub(crate) fn leading_comments(&self, line: usize, col: usize) -> usize {
        let mut first = line;
        while first > 0
            && self.lines[first - 1].kind == Kind::Comment
            && self.lines[first - 1].indent == col
        {
            first -= 1;
        }
        first
    }

    /// Text of lines `first..=last`, without line endings.
    pub(crate) fn texts(&self, first: usize, last: usize) -> impl Iterator<Item = &'a str> + '_ {
        (first..=last).map(|i| self.text_of(i))
    }

    pub(crate) fn insert_after(&self, line: usize, new: &[String]) -> Edit {
        let l = self.lines[line];
        let eol = self.style.eol;
        if l.next > l.end {
            Edit {
                start: l.next,
                end: l.next,
                text: new.iter().map(|s| format!("{s}{eol}")).collect(),
            }
        } else {
            // The file ends without a newline: keep it that way.
            Edit {
                start: l.end,
                end: l.end,
                text: new.iter().map(|s| format!("{eol}{s}")).collect(),
            }
        }
    }

    /// Removes lines `first..=last`; the exact inverse of `insert_after(first - 1, ..)`.
    pub(crate) fn remove(&self, first: usize, last: usize) -> Edit {
        let l = self.lines[last];
        let start = if l.next > l.end {
            self.lines[first].start
        } else if first > 0 {
            self.lines[first - 1].end
        } else {
            0
        };
        Edit {
            start,
            end: l.next,
            text: String::new(),
        }
    }

    pub(crate) fn replace(&self, value: Inline, text: String) -> Edit {
        Edit {
            start: value.start,
            end: value.end,
            text,
        }
    }
}

/// Reads the lines of `text` from byte `from` (a line start, where no block scalar is open)
/// into `lines`, until the end or until `stop` says so for the start of a line where no block
/// scalar is open. Whether a line read opened a block scalar.
fn read_lines(
    text: &str,
    from: usize,
    lines: &mut Vec<Line>,
    mut stop: impl FnMut(usize) -> bool,
) -> bool {
    let mut scalar_owner = None;
    let mut block_scalars = false;
    let mut start = from;
    let mut breaks = memchr::memchr_iter(b'\n', &text.as_bytes()[from..]).map(|i| from + i);
    // Only a line with a `|` or `>` can start a block scalar: one scan of the file finds them,
    // rather than one search per line.
    let mut indicators = memchr::memchr2_iter(b'|', b'>', &text.as_bytes()[from..])
        .map(|i| from + i)
        .peekable();
    while start < text.len() && !(scalar_owner.is_none() && stop(start)) {
        let (mut end, next) = match breaks.next() {
            Some(i) => (i, i + 1),
            None => (text.len(), text.len()),
        };
        if text[start..end].ends_with('\r') {
            end -= 1;
        }
        let s = &text[start..end];
        let indent = s.bytes().take_while(|&b| b == b' ').count();
        let indicator = indicators.peek().is_some_and(|&i| i < end);
        while indicators.next_if(|&i| i < end).is_some() {}
        let kind = classify(s, indent, indicator, &mut scalar_owner);
        block_scalars |= scalar_owner.is_some();
        lines.push(Line {
            start,
            end,
            next,
            indent,
            kind,
        });
        start = next;
    }
    block_scalars
}

impl Edit {
    /// Insert `text` at byte `at`.
    pub(crate) fn insert(at: usize, text: String) -> Edit {
        Edit {
            start: at,
            end: at,
            text,
        }
    }
}

/// The bytes that `edits` replace, from the first to the last.
pub(crate) fn span(edits: &[Edit]) -> Option<std::ops::Range<usize>> {
    let start = edits.iter().map(|e| e.start).min()?;
    let end = edits.iter().map(|e| e.end).max()?;
    Some(start..end)
}

/// Applies non-overlapping edits.
pub(crate) fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out =
        String::with_capacity(text.len() + edits.iter().map(|e| e.text.len()).sum::<usize>());
    let mut pos = 0;
    for e in edits {
        debug_assert!(e.start >= pos, "overlapping edits");
        out.push_str(&text[pos..e.start]);
        out.push_str(&e.text);
        pos = e.end;
    }
    out.push_str(&text[pos..]);
    out
}

pub(crate) fn unsupported(line: usize, message: impl Into<String>) -> YamlError {
    YamlError::Unsupported {
        line: line + 1,
        message: message.into(),
    }
}

pub(crate) fn find<'e, 'a>(entries: &'e [Entry<'a>], key: &str) -> Option<&'e Entry<'a>> {
    entries.iter().find(|e| e.key == key)
}

impl Style {
    /// The first `key:` whose value is on the following lines shows the
    /// mapping step; the first such key followed by `- ` shows the sequence style.
    fn detect(text: &str, lines: &[Line]) -> Style {
        // `str::contains` looks for two bytes slowly; a carriage return is rare enough to find
        // by itself first.
        let bytes = text.as_bytes();
        let crlf = memchr::memchr_iter(b'\r', bytes).any(|i| bytes.get(i + 1) == Some(&b'\n'));
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut step = None;
        let mut seq_offset = None;
        let mut open: Option<usize> = None;
        for l in lines.iter().filter(|l| l.kind == Kind::Content) {
            let s = &text[l.start..l.end];
            if let Some(col) = open {
                if dash_at(s, l.indent).is_some() {
                    seq_offset = seq_offset.or(l.indent.checked_sub(col));
                } else if l.indent > col {
                    step = step.or(Some(l.indent - col));
                }
            }
            if step.is_some() && seq_offset.is_some() {
                break;
            }
            open = open_key_col(s, l.indent);
        }
        let step = step.unwrap_or(2);
        Style {
            eol,
            step,
            seq_offset: seq_offset.unwrap_or(step),
        }
    }
}

/// Column of a `key:` whose value starts on the next line, past any `- `.
fn open_key_col(s: &str, indent: usize) -> Option<usize> {
    let col = past_dashes(s, indent).1;
    let (_, after) = parse_key(s, col).ok().flatten()?;
    (inline_value(s, after).2 == ValueKind::Empty).then_some(col)
}

/// `indicator`: whether the line holds a `|` or `>`.
fn classify(s: &str, indent: usize, indicator: bool, scalar_owner: &mut Option<usize>) -> Kind {
    let first = s.as_bytes()[indent..]
        .iter()
        .find(|&&b| b != b' ' && b != b'\t');
    if let Some(owner) = *scalar_owner {
        if first.is_none() {
            return Kind::Blank;
        }
        if indent > owner {
            return Kind::Content;
        }
        *scalar_owner = None;
    }
    match first {
        None => Kind::Blank,
        Some(b'#') => Kind::Comment,
        Some(_) if indent == 0 && is_marker(s) => Kind::Marker,
        Some(_) => {
            *scalar_owner = indicator.then(|| block_scalar_owner(s, indent)).flatten();
            Kind::Content
        }
    }
}

fn is_marker(s: &str) -> bool {
    let bounded = |m: &str| {
        s.strip_prefix(m)
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
    };
    bounded("---") || bounded("...") || s.starts_with('%')
}

/// When a line opens a block scalar (`key: |`, `- >-`), the column its text
/// must be indented beyond.
fn block_scalar_owner(s: &str, indent: usize) -> Option<usize> {
    let (dash, col) = past_dashes(s, indent);
    let (owner, from) = match parse_key(s, col) {
        Ok(Some((_, after))) => (col, after),
        _ => (dash.unwrap_or(col), col),
    };
    (inline_value(s, from).2 == ValueKind::BlockScalar).then_some(owner)
}

/// Skips `- ` prefixes; returns the column of the last dash and where content starts.
fn past_dashes(s: &str, indent: usize) -> (Option<usize>, usize) {
    let (mut dash, mut col) = (None, indent);
    while let Some(after) = dash_at(s, col) {
        dash = Some(col);
        col = after;
    }
    (dash, col)
}

/// If a sequence `-` is at `col`, the column after it and its spaces.
fn dash_at(s: &str, col: usize) -> Option<usize> {
    let b = s.as_bytes();
    if b.get(col) != Some(&b'-') || !matches!(b.get(col + 1), None | Some(b' ' | b'\t')) {
        return None;
    }
    Some(col + 1 + skip_blanks(&s[col + 1..]))
}

fn skip_blanks(s: &str) -> usize {
    s.len() - s.trim_start_matches([' ', '\t']).len()
}

/// Parses a mapping key starting at byte `at`; returns it and the index just
/// past its `:`. `Ok(None)` when the text there is not a key. Borrowed unless unquoting
/// changed it: every content line's key is read to classify the lines, and few are kept.
fn parse_key(s: &str, at: usize) -> Result<Option<(Cow<'_, str>, usize)>, &'static str> {
    let v = &s[at..];
    let b = v.as_bytes();
    match b.first() {
        None => Ok(None),
        Some(b'"') => match closing_double(v) {
            Some(n) if v[1..n - 1].contains('\\') => {
                Err("escape sequences in double-quoted keys are not supported")
            }
            Some(n) => Ok(colon_after(s, at + n).map(|after| (Cow::from(&v[1..n - 1]), after))),
            None => Ok(None),
        },
        Some(b'\'') => Ok(closing_single(v).and_then(|n| {
            let key = &v[1..n - 1];
            let key = if key.contains("''") {
                Cow::from(key.replace("''", "'"))
            } else {
                Cow::from(key)
            };
            colon_after(s, at + n).map(|after| (key, after))
        })),
        Some(b'[' | b'{') => Err("flow-style collections are not supported here"),
        Some(b'&' | b'!' | b'*') => Err("anchors, tags and aliases are not supported here"),
        Some(b'?') if matches!(b.get(1), None | Some(b' ' | b'\t')) => {
            Err("complex mapping keys (`? key`) are not supported")
        }
        Some(_) => {
            for i in memchr::memchr2_iter(b'#', b':', b) {
                let blank_before = i > 0 && matches!(b[i - 1], b' ' | b'\t');
                if b[i] == b'#' && blank_before {
                    return Ok(None);
                }
                if b[i] == b':' && matches!(b.get(i + 1), None | Some(b' ' | b'\t')) {
                    return Ok(Some((Cow::from(v[..i].trim_end()), at + i + 1)));
                }
            }
            Ok(None)
        }
    }
}

fn colon_after(s: &str, p: usize) -> Option<usize> {
    let p = p + skip_blanks(&s[p..]);
    let b = s.as_bytes();
    (b.get(p) == Some(&b':') && matches!(b.get(p + 1), None | Some(b' ' | b'\t'))).then_some(p + 1)
}

/// Length through the closing quote of a double-quoted scalar at the start of `v`.
fn closing_double(v: &str) -> Option<usize> {
    let b = v.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn closing_single(v: &str) -> Option<usize> {
    let b = v.as_bytes();
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// The value after a key's `:` (from byte `from` of line `s`), as a
/// line-relative range without surrounding blanks or trailing comment.
fn inline_value(s: &str, from: usize) -> (usize, usize, ValueKind) {
    let p = from + skip_blanks(&s[from..]);
    let v = &s[p..];
    let kind = match v.as_bytes().first() {
        None | Some(b'#') => return (p, p, ValueKind::Empty),
        Some(b'{' | b'[') => ValueKind::Flow,
        Some(b'|' | b'>') => ValueKind::BlockScalar,
        Some(b'&' | b'!' | b'*') => ValueKind::Props,
        Some(b'"') => {
            return match closing_double(v) {
                Some(n) => (p, p + n, ValueKind::Scalar),
                None => (p, s.len(), ValueKind::Multiline),
            };
        }
        Some(b'\'') => {
            return match closing_single(v) {
                Some(n) => (p, p + n, ValueKind::Scalar),
                None => (p, s.len(), ValueKind::Multiline),
            };
        }
        Some(_) => ValueKind::Scalar,
    };
    (p, p + plain_len(v), kind)
}

/// Length of unquoted text up to a ` #` comment, without trailing blanks.
fn plain_len(v: &str) -> usize {
    let b = v.as_bytes();
    let cut = (1..b.len())
        .find(|&i| b[i] == b'#' && matches!(b[i - 1], b' ' | b'\t'))
        .unwrap_or(b.len());
    v[..cut].trim_end_matches([' ', '\t']).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Up to `most` lines of a text, with block scalars among them only when `scalars`.
    fn text(scalars: bool, most: usize) -> impl Strategy<Value = String> {
        let mut lines = vec![
            "a:\n",
            "  b: 1\n",
            "  - x\n",
            "\n",
            "# c\n",
            "  # c\n",
            "    text # x\n",
            "---\n",
            "d: 2\r\n",
            "e",
            "  f: \"x\n",
        ];
        if scalars {
            lines.extend(["c: |\n", "  - >-\n", "  | y\n"]);
        }
        prop::collection::vec(prop::sample::select(lines), 0..most).prop_map(|l| l.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn edited_lines_are_the_lines_of_the_edited_text(
            (before, insert) in any::<bool>().prop_flat_map(|scalars| (text(scalars, 30), text(true, 4))),
            at in any::<prop::sample::Index>(),
            len in 0usize..20,
            whole_lines in any::<bool>(),
        ) {
            let (start, end) = if whole_lines {
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(before.match_indices('\n').map(|(i, _)| i + 1))
                    .collect();
                let first = at.index(starts.len());
                (starts[first], starts[(first + len % 3).min(starts.len() - 1)])
            } else {
                let start = at.index(before.len() + 1);
                (start, (start + len).min(before.len()))
            };
            let out = format!("{}{insert}{}", &before[..start], &before[end..]);
            let edited = Doc::new(&before).edited(&out, start..end);
            let read = Doc::new(&out);
            let fields = |lines: &[Line]| {
                lines.iter().map(|l| (l.start, l.end, l.next, l.indent, l.kind)).collect::<Vec<_>>()
            };
            prop_assert_eq!(fields(&edited.lines), fields(&read.lines));
            prop_assert_eq!(edited.block_scalars, read.block_scalars);
        }
    }

    fn keys(doc: &Doc, node: Node) -> Vec<(String, usize, usize)> {
        doc.entries(node)
            .unwrap()
            .into_iter()
            .map(|e| (e.key.into_owned(), e.line, e.last))
            .collect()
    }

    #[test]
    fn lines_are_classified() {
        let text = "# c\n---\na: |\n  # text\n\n  more\nb: 1 # c\n  # inner\n...\n%YAML 1.2\n";
        let kinds: Vec<Kind> = Doc::new(text).lines.iter().map(|l| l.kind).collect();
        use Kind::*;
        assert_eq!(
            kinds,
            [
                Comment, Marker, Content, Content, Blank, Content, Content, Comment, Marker, Marker
            ]
        );
    }

    #[test]
    fn line_ends_are_those_of_the_file() {
        let eol = |text: &str| Doc::new(text).style.eol;
        assert_eq!(eol("a: 1\r\nb: 2\r\n"), "\r\n");
        assert_eq!(eol("a: 1\nb: 2\r\n"), "\r\n");
        assert_eq!(eol("a: 1\rb\nc: 2\r"), "\n");
    }

    #[test]
    fn block_scalars_are_found_among_other_indicators() {
        // `|` and `>` in plain text, several on a line, and block scalars after them.
        let text =
            "a: x|y > z\nb: >\n  | x >\n  # text\nc:\n  - |-\n    # text\n# c\nd: a>b\n  # c\n";
        let kinds: Vec<Kind> = Doc::new(text).lines.iter().map(|l| l.kind).collect();
        use Kind::*;
        assert_eq!(
            kinds,
            [
                Content, Content, Content, Content, Content, Content, Content, Comment, Content,
                Comment
            ]
        );
    }

    #[test]
    fn entries_span_to_last_content_line() {
        let text = "a:\n  x: 1\n  # trailing\n\nb:\n- 1\n- 2\n# before c\nc: 3\n";
        let doc = Doc::new(text);
        let root = doc.single_root().unwrap().unwrap();
        assert_eq!(
            keys(&doc, root),
            [("a".into(), 0, 1), ("b".into(), 4, 6), ("c".into(), 8, 8)]
        );
    }

    #[test]
    fn quoted_keys_and_inline_values() {
        let text = "'it''s': 'v' # c\n\"q\": \"a # b\"\nplain: x #c\nempty: # c\n";
        let doc = Doc::new(text);
        let entries = doc.entries(doc.single_root().unwrap().unwrap()).unwrap();
        let got: Vec<(&str, &str, ValueKind)> = entries
            .iter()
            .map(|e| (&*e.key, &text[e.value.start..e.value.end], e.value.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("it's", "'v'", ValueKind::Scalar),
                ("q", "\"a # b\"", ValueKind::Scalar),
                ("plain", "x", ValueKind::Scalar),
                ("empty", "", ValueKind::Empty),
            ]
        );
    }

    #[test]
    fn sequence_items_hold_mappings() {
        let text = "r:\n  - d: 1\n    w: 2\n  # about next\n  -\n    d: 3\n";
        let doc = Doc::new(text);
        let root = doc.single_root().unwrap().unwrap();
        let r = &doc.entries(root).unwrap()[0];
        let items = doc.items(doc.child(r, "r").unwrap().unwrap()).unwrap();
        assert_eq!(
            items.iter().map(|i| (i.line, i.last)).collect::<Vec<_>>(),
            [(1, 2), (4, 5)]
        );
        let first = doc.item_node(&items[0]).unwrap();
        assert_eq!(keys(&doc, first), [("d".into(), 1, 1), ("w".into(), 2, 2)]);
        let second = doc.item_node(&items[1]).unwrap();
        assert_eq!(keys(&doc, second), [("d".into(), 5, 5)]);
    }

    #[test]
    fn flow_and_complex_keys_are_unsupported() {
        let doc = Doc::new("a: {b: 1}\n");
        let a = &doc.entries(doc.single_root().unwrap().unwrap()).unwrap()[0];
        let err = doc.child(a, "a").unwrap_err().to_string();
        assert!(
            err.starts_with("line 1: a is written in flow style"),
            "{err}"
        );
        let doc = Doc::new("x: 1\n? [a]\n: 1\n");
        let err = doc
            .entries(doc.single_root().unwrap().unwrap())
            .unwrap_err();
        assert!(err.to_string().starts_with("line 2: complex"), "{err}");
    }

    #[test]
    fn documents_split_on_markers() {
        let doc = Doc::new("# c\n---\na: 1\n---\nb: 2\n...\n");
        let docs = doc.documents().unwrap();
        assert_eq!(
            docs.iter().map(|n| (n.line, n.last)).collect::<Vec<_>>(),
            [(2, 2), (4, 4)]
        );
        assert!(doc.single_root().is_err());
        assert!(Doc::new("--- {a: 1}\n").documents().is_err());
    }

    #[test]
    fn style_is_detected() {
        let s = Doc::new("a:\n    b:\n    - 1\n").style;
        assert_eq!(
            s,
            Style {
                eol: "\n",
                step: 4,
                seq_offset: 0
            }
        );
        let s = Doc::new("a:\r\n  b:\r\n    - 1\r\n").style;
        assert_eq!(
            s,
            Style {
                eol: "\r\n",
                step: 2,
                seq_offset: 2
            }
        );
        let s = Doc::new("a: 1\n").style;
        assert_eq!(
            s,
            Style {
                eol: "\n",
                step: 2,
                seq_offset: 2
            }
        );
    }

    #[test]
    fn insert_and_remove_are_inverse_without_final_newline() {
        let text = "a:\n  b: 1";
        let doc = Doc::new(text);
        let out = apply(text, vec![doc.insert_after(1, &["  c: 2".into()])]);
        assert_eq!(out, "a:\n  b: 1\n  c: 2");
        let doc = Doc::new(&out);
        assert_eq!(apply(&out, vec![doc.remove(2, 2)]), text);
    }
}
