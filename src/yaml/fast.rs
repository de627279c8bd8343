//! A quick reader for the plain block YAML that deploy configs are written in.
//!
//! serde-saphyr takes about 12 ms for a 5,000-line gap.yaml, and a step reads the file after
//! each of its edits. This reader takes a small fraction of that, but only for a deliberately
//! narrow subset: printable ASCII, block mappings and sequences, plain keys, one-line scalars
//! (plain, or quoted without escapes), comments. It gives the value serde-saphyr gives, or
//! declines, and then serde-saphyr reads the text and words any error: everything it is not
//! sure about (a tab, a flow collection, an anchor, a multi-line scalar, a number it would
//! have to convert, a document near a budget limit) is declined rather than interpreted.
//!
//! The rules of the subset mirror serde-saphyr's with the options [`super::options`] sets:
//! YAML 1.1 booleans in any case, null as `~`/`null`/`Null`/`NULL`, duplicate keys refused.
//! A property test checks it against serde-saphyr.

use serde_json::{Map, Value};

/// Declined: not in the subset, so serde-saphyr decides.
struct Decline;

type Read<T> = Result<T, Decline>;

/// Well inside serde-saphyr's limits: its nesting depth (64) and its simple-key lookahead
/// (1,024 characters).
const MAX_DEPTH: usize = 48;
const MAX_KEY: usize = 512;
/// serde-saphyr refuses more than 32 comments in a row while it looks for an entry's value
/// (a run can start with the comment at the end of a content line).
const MAX_COMMENT_RUN: usize = 16;

/// The value of `text`, or `None` when it is not in the subset. `max_nodes` is the parse
/// budget's: a document with more nodes is declined, so that serde-saphyr refuses it.
/// Also the number of nodes read, which [`reread`] needs to keep to the budget.
pub(super) fn parse(text: &str, max_nodes: usize) -> Option<(Value, usize)> {
    let lines = lines(text).ok()?;
    let first = lines.first()?;
    if first.indent != 0 {
        return None;
    }
    let mut reader = Reader {
        lines,
        at: 0,
        nodes: 0,
        max_nodes,
    };
    let value = reader.node(0).ok()?;
    Some((value, reader.nodes))
}

/// A line with content: its indentation and what follows it.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    content: &'a str,
}

/// The content lines (blank lines and comment lines carry no meaning in the subset).
fn lines(text: &str) -> Read<Vec<Line<'_>>> {
    // Block by block without stopping early, which the compiler turns into vector code.
    let printable = |block: &[u8]| {
        block.iter().fold(true, |ok, &b| {
            ok & ((b == b'\n') | (b' '..=b'~').contains(&b))
        })
    };
    if !text.as_bytes().chunks(64).all(printable) {
        return Err(Decline);
    }
    let mut out = Vec::with_capacity(text.len() / 16);
    let mut comments = 0;
    for raw in split_lines(text) {
        match see(raw) {
            Seen::Blank => {}
            Seen::Comment => {
                comments += 1;
                if comments >= MAX_COMMENT_RUN {
                    return Err(Decline);
                }
            }
            Seen::Content(line) => {
                comments = 0;
                out.push(line);
            }
        }
    }
    Ok(out)
}

/// `text.split('\n')`, a little quicker on thousands of short lines.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let breaks = memchr::memchr_iter(b'\n', text.as_bytes());
    breaks.map(Some).chain([None]).map(move |end| {
        let end = end.unwrap_or(text.len());
        let line = &text[start..end];
        start = end + 1;
        line
    })
}

/// One line as [`lines`] sees it.
enum Seen<'a> {
    Blank,
    Comment,
    Content(Line<'a>),
}

fn see(raw: &str) -> Seen<'_> {
    let indent = raw.bytes().take_while(|&b| b == b' ').count();
    let content = &raw[indent..];
    match content.as_bytes().first() {
        None => Seen::Blank,
        Some(b'#') => Seen::Comment,
        Some(_) => Seen::Content(Line { indent, content }),
    }
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    /// The next line to read.
    at: usize,
    nodes: usize,
    max_nodes: usize,
}

impl<'a> Reader<'a> {
    fn count(&mut self) -> Read<()> {
        self.nodes += 1;
        if self.nodes > self.max_nodes {
            return Err(Decline);
        }
        Ok(())
    }

    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.at).copied()
    }

    /// The block node that starts on the current line.
    fn node(&mut self, depth: usize) -> Read<Value> {
        if depth > MAX_DEPTH {
            return Err(Decline);
        }
        let line = self.peek().ok_or(Decline)?;
        if dash(line.content).is_some() {
            self.sequence(line.indent, depth)
        } else {
            self.mapping(line.indent, line.content, depth)
        }
    }

    /// A block mapping at column `col`, whose first entry is `first` (the rest of the current
    /// line: all of it, or what follows a sequence item's `- `).
    fn mapping(&mut self, col: usize, first: &'a str, depth: usize) -> Read<Value> {
        let mut map = Map::new();
        let mut content = first;
        loop {
            let (key, rest) = entry(content).ok_or(Decline)?;
            self.count()?;
            let value = self.value(col, rest, depth)?;
            if map.insert(key.to_string(), value).is_some() {
                return Err(Decline);
            }
            match self.peek() {
                Some(line) if line.indent == col => content = line.content,
                Some(line) if line.indent > col => return Err(Decline),
                _ => break,
            }
        }
        self.count()?;
        Ok(Value::Object(map))
    }

    /// A block sequence whose `-` are at column `col`.
    fn sequence(&mut self, col: usize, depth: usize) -> Read<Value> {
        let mut items = Vec::new();
        while let Some(line) = self.peek().filter(|l| l.indent == col) {
            let rest = dash(line.content).ok_or(Decline)?;
            let item = rest.trim_start_matches(' ');
            let value = if dash(item).is_some() {
                return Err(Decline);
            } else if entry(item).is_some() {
                let item_col = col + line.content.len() - item.len();
                self.mapping(item_col, item, depth + 1)?
            } else {
                self.value(col, item, depth)?
            };
            items.push(value);
        }
        if self.peek().is_some_and(|l| l.indent > col) {
            return Err(Decline);
        }
        self.count()?;
        Ok(Value::Array(items))
    }

    /// The value that follows a key or a `-` (at column `col`) on the current line: a scalar,
    /// or nothing and then the more indented block node below, or null.
    fn value(&mut self, col: usize, rest: &str, depth: usize) -> Read<Value> {
        self.at += 1;
        let rest = rest.trim_start_matches(' ');
        let deeper = self.peek().is_some_and(|l| l.indent > col);
        if rest.is_empty() || rest.starts_with('#') {
            if deeper {
                return self.node(depth + 1);
            }
            self.count()?;
            return Ok(Value::Null);
        }
        // A more indented line would continue a plain scalar (or be an error).
        if deeper {
            return Err(Decline);
        }
        self.count()?;
        scalar(rest)
    }
}

/// What follows the `-` of a sequence item (`None`: the line is not one).
fn dash(content: &str) -> Option<&str> {
    let rest = content.strip_prefix('-')?;
    (rest.is_empty() || rest.starts_with(' ')).then_some(rest)
}

/// A `key:` line: the key and what follows the colon. Only keys that serde-saphyr takes
/// verbatim and that no other reading could make something else are in the subset.
fn entry(content: &str) -> Option<(&str, &str)> {
    let bytes = content.as_bytes();
    if !bytes
        .first()
        .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_')
    {
        return None;
    }
    let colon = bytes.iter().position(|&b| !KEY_BYTES[usize::from(b)])?;
    let (key, rest) = (&content[..colon], &content[colon + 1..]);
    let plain_key = bytes[colon] == b':' && colon <= MAX_KEY && !special_word(key);
    (plain_key && (rest.is_empty() || rest.starts_with(' '))).then_some((key, rest))
}

/// The bytes of a key in the subset, looked up rather than tested one class after another:
/// a 5,000-line file has thousands of keys.
const KEY_BYTES: [bool; 256] =
    table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./");

/// `bytes` as a table, to look a byte up in one step (`<[u8]>::contains` calls `memchr`, once
/// for each of a file's thousands of scalars).
const fn table(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// Besides letters and digits, the bytes a plain scalar in the subset may start with.
const PLAIN_START: [bool; 256] = table(b"/._~$(+=^");

/// Besides hex digits, the bytes of a text that a number could be written with.
const NUMERIC: [bool; 256] = table(b" +-._:xXoOiInNtTyY");

/// Words serde-saphyr may read as null or a boolean.
fn special_word(s: &str) -> bool {
    s.len() <= 5
        && ["null", "true", "false", "yes", "no", "on", "off", "y", "n"]
            .iter()
            .any(|w| s.eq_ignore_ascii_case(w))
}

/// A one-line scalar (with any comment after it).
fn scalar(s: &str) -> Read<Value> {
    match s.as_bytes()[0] {
        b'"' => {
            let end = s[1..].find('"').ok_or(Decline)? + 1;
            let body = &s[1..end];
            if body.contains('\\') {
                return Err(Decline);
            }
            line_end(&s[end + 1..])?;
            Ok(Value::String(body.to_string()))
        }
        b'\'' => {
            let mut body = String::new();
            let mut rest = &s[1..];
            loop {
                let quote = rest.find('\'').ok_or(Decline)?;
                body.push_str(&rest[..quote]);
                rest = &rest[quote + 1..];
                match rest.strip_prefix('\'') {
                    Some(after) => {
                        body.push('\'');
                        rest = after;
                    }
                    None => break,
                }
            }
            line_end(rest)?;
            Ok(Value::String(body))
        }
        _ => plain(s),
    }
}

/// Nothing but spaces and perhaps a comment after a quoted scalar.
fn line_end(after: &str) -> Read<()> {
    let rest = after.trim_start_matches(' ');
    if rest.is_empty() || (rest.starts_with('#') && rest.len() < after.len()) {
        Ok(())
    } else {
        Err(Decline)
    }
}

fn plain(s: &str) -> Read<Value> {
    let bytes = s.as_bytes();
    let starts_plain = match bytes[0] {
        b'-' => bytes.get(1).is_some_and(|&b| b != b' '),
        b => b.is_ascii_alphanumeric() || PLAIN_START[usize::from(b)],
    };
    if !starts_plain {
        return Err(Decline);
    }
    // The scalar ends where a comment starts; a `:` before a space or the end would make it
    // a key.
    let mut end = bytes.len();
    for i in memchr::memchr2_iter(b'#', b':', bytes) {
        match bytes[i] {
            b'#' if i > 0 && bytes[i - 1] == b' ' => {
                end = i;
                break;
            }
            b':' if bytes.get(i + 1).is_none_or(|&b| b == b' ') => return Err(Decline),
            _ => {}
        }
    }
    resolve(s[..end].trim_end_matches(' '))
}

/// A plain scalar's value, as serde-saphyr resolves it: null, a YAML 1.1 boolean, an integer
/// written the plain decimal way, or a string. Any text a number could be written with (hex,
/// octal, floats, `.inf`, underscores, leading zeros) is declined rather than converted.
fn resolve(text: &str) -> Read<Value> {
    match text {
        "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        _ => {}
    }
    for (word, value) in [
        ("true", true),
        ("yes", true),
        ("y", true),
        ("on", true),
        ("false", false),
        ("no", false),
        ("n", false),
        ("off", false),
    ] {
        if text.eq_ignore_ascii_case(word) {
            return Ok(Value::Bool(value));
        }
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    let decimal = (1..=18).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if decimal {
        let n: i64 = digits.parse().map_err(|_| Decline)?;
        return match (negative, n) {
            (false, n) => Ok(Value::from(n)),
            (true, 0) => Err(Decline),
            (true, n) => Ok(Value::from(-n)),
        };
    }
    let numeric_char = |b: u8| b.is_ascii_hexdigit() || NUMERIC[usize::from(b)];
    if text.bytes().all(numeric_char) {
        return Err(Decline);
    }
    Ok(Value::String(text.to_string()))
}

/// One entry of a top-level block mapping as [`reread`] found it after an edit.
pub(super) struct Reread {
    pub key: String,
    pub value: Value,
    /// The nodes [`parse`] would count in the whole edited text.
    pub nodes: usize,
}

/// What [`parse`] would read from `after` without reading all of it, when `after` is `before`
/// with the bytes `changed` replaced and the change stays within one entry of the top-level
/// mapping `parent` (a deployment of gap.yaml): `before`'s value `base` (read by [`parse`],
/// `nodes` nodes) with `<parent>.<key>` set to the returned value. `None` when that cannot be
/// shown this way; then the whole text has to be read.
///
/// The reader builds a mapping's value entry by entry from the lines under each key, so only
/// the changed entry's lines need reading, given what the rest of the text already showed:
/// - every byte outside the changed lines is compared, not assumed, to be `before`'s;
/// - the entry's lines are those under one key line at the column of `parent`'s entries, and
///   the line after them is a content line at that column or less (or the end), in both texts,
///   so the entries around it end where they ended;
/// - it is read at the depth a full read reaches it, with its key checked like any other: a new
///   key must be new to `parent`;
/// - runs of comment lines and the node budget are counted across the edges of the change.
pub(super) fn reread(
    before: &str,
    base: &Value,
    nodes: usize,
    after: &str,
    changed: std::ops::Range<usize>,
    parent: &str,
    max_nodes: usize,
) -> Option<Reread> {
    let (b, a) = (before.as_bytes(), after.as_bytes());
    let (start, end) = (changed.start, changed.end);
    if start > end || end > b.len() {
        return None;
    }
    // Whole lines: `before` is [..from][from..to_before][to_before..], `after` the same with
    // [from..to_after] in the middle.
    let from = before[..start].rfind('\n').map_or(0, |i| i + 1);
    let to_before = if end == 0 || b[end - 1] == b'\n' {
        end
    } else {
        before[end..].find('\n').map_or(b.len(), |i| end + i + 1)
    };
    let to_after = (to_before + a.len()).checked_sub(b.len())?;
    let line_ends = (to_before == b.len() && to_after == a.len())
        || (to_after > 0 && to_before > 0 && a[to_after - 1] == b'\n' && b[to_before - 1] == b'\n');
    if to_after < from || !line_ends || a[..from] != b[..from] || a[to_after..] != b[to_before..] {
        return None;
    }
    let deps = base.get(parent)?.as_object()?;

    // Back from the change to `parent`'s key line at column 0: the content lines on the way
    // belong to its mapping, whose column is that of the first of them.
    let mut last_before = None;
    let mut nearest_least = None;
    let mut first_entry = None;
    let mut parent_line = None;
    for (at, raw) in lines_back(after, from) {
        let Seen::Content(line) = see(raw) else {
            continue;
        };
        last_before.get_or_insert(at + raw.len() + 1);
        if line.indent == 0 {
            parent_line = Some(line);
            break;
        }
        if nearest_least.is_none_or(|(_, least): (usize, Line)| line.indent < least.indent) {
            nearest_least = Some((at, line));
        }
        first_entry = Some(line);
    }
    let (entry_key, rest) = entry(parent_line?.content)?;
    let rest = rest.trim_start_matches(' ');
    if entry_key != parent || !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    let col = first_entry?.indent;
    // No line between is indented less than the first (or `before` would not have been read),
    // so the nearest of the least indented is the entry that holds the change, if any does.
    let (enclosing_at, _) = nearest_least?;

    // The edited lines either add a key line at `col` with its lines, or stay under
    // `enclosing`.
    let mut added_lines = content(after, from, to_after);
    let first_added = added_lines.next();
    if added_lines.any(|(_, l)| l.indent <= col) {
        return None;
    }
    let mut removed = content(before, from, to_before);
    let (read_from, added) = match first_added {
        Some((_, line)) if line.indent <= col => {
            if line.indent != col || removed.next().is_some() {
                return None;
            }
            (last_before?, true)
        }
        _ => {
            if removed.any(|(_, l)| l.indent <= col) {
                return None;
            }
            (enclosing_at, false)
        }
    };
    let mut read_to = a.len();
    for (at, line) in content(after, to_after, a.len()) {
        if line.indent <= col {
            read_to = at;
            break;
        }
        // Lines under the previous entry would become the new one's.
        if added {
            return None;
        }
    }

    let lines = lines(&after[read_from..read_to]).ok()?;
    let head = *lines.first()?;
    let (key, rest) = entry(head.content)?;
    let mut reader = Reader {
        lines,
        at: 0,
        nodes: 0,
        max_nodes,
    };
    reader.count().ok()?;
    // Depth 1: the root mapping is 0, and `parent`'s value is read one deeper.
    let value = reader.value(col, rest, 1).ok()?;
    if reader.at != reader.lines.len() {
        return None;
    }
    let replaced = if added {
        if deps.contains_key(key) {
            return None;
        }
        0
    } else {
        1 + node_count(deps.get(key)?)
    };
    let nodes = nodes.checked_sub(replaced)? + reader.nodes;
    (nodes <= max_nodes).then(|| Reread {
        key: key.to_string(),
        value,
        nodes,
    })
}

/// The nodes [`Reader`] counts for a value it read.
fn node_count(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(|v| 1 + node_count(v)).sum::<usize>(),
        Value::Array(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        _ => 1,
    }
}

/// The lines that end before byte `at` (a line start), nearest first, with where each starts.
fn lines_back(text: &str, at: usize) -> impl Iterator<Item = (usize, &str)> {
    // Where the line being read ends: at the `\n` before `at`.
    let mut end = at.checked_sub(1);
    let mut breaks = memchr::memrchr_iter(b'\n', &text.as_bytes()[..at.saturating_sub(1)]);
    std::iter::from_fn(move || {
        let stop = end?;
        let start = breaks.next().map_or(0, |i| i + 1);
        end = start.checked_sub(1);
        Some((start, &text[start..stop]))
    })
}

/// The content lines in `from..to` (whole lines), with where each starts.
fn content(text: &str, from: usize, to: usize) -> impl Iterator<Item = (usize, Line<'_>)> {
    lines_from(text, from, to).filter_map(|(at, raw)| match see(raw) {
        Seen::Content(line) => Some((at, line)),
        _ => None,
    })
}

/// The lines in `from..to` (whole lines), with where each starts.
fn lines_from(text: &str, from: usize, to: usize) -> impl Iterator<Item = (usize, &str)> {
    let mut start = from;
    text[from..to].split_inclusive('\n').map(move |raw| {
        let at = start;
        start += raw.len();
        (at, raw.strip_suffix('\n').unwrap_or(raw))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn key_bytes_are_letters_digits_and_four_marks() {
        for b in 0..=u8::MAX {
            let key = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/');
            assert_eq!(KEY_BYTES[usize::from(b)], key, "byte {b}");
        }
    }

    fn saphyr(text: &str) -> Option<Value> {
        serde_saphyr::from_str_with_options(text, crate::yaml::options()).ok()
    }

    fn fast(text: &str) -> Option<Value> {
        parse(text, crate::yaml::MAX_NODES).map(|(value, _)| value)
    }

    #[test]
    fn reads_the_block_subset() {
        let text = "# gap/gap.yaml\nname: gap\ndeployments:\n  web:\n    # the web\n    \
                    command:\n      - /opt/docker/bin/start   # start\n      - --port=8080\n    \
                    env:\n      CONCURRENCY: \"4\"\n      NAME: 'it''s'\n    resources: {}\n    \
                    enabled: yes\n    cpu: 100m\n    count: -12\n    none:\n  jobs:\n    - name: api\n      \
                    args:\n        - run\n    -\n      b: ~\n";
        let want = json!({"name": "gap", "deployments": {
            "web": {"command": ["/opt/docker/bin/start", "--port=8080"],
                    "env": {"CONCURRENCY": "4", "NAME": "it's"}, "resources": {},
                    "enabled": true, "cpu": "100m", "count": -12, "none": null},
            "jobs": [{"name": "api", "args": ["run"]}, {"b": null}]}});
        // `resources: {}` is a flow mapping: declined, and so is the document.
        assert_eq!(fast(text), None);
        let text = text.replace("    resources: {}\n", "");
        let mut want = want;
        want["deployments"]["web"]
            .as_object_mut()
            .unwrap()
            .remove("resources");
        assert_eq!(fast(&text), Some(want.clone()));
        assert_eq!(saphyr(&text), Some(want));
    }

    #[test]
    fn declines_what_it_does_not_model() {
        for text in [
            "",
            "# only a comment\n",
            "  a: 1\n",
            "a: 1\n---\nb: 2\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: \u{e9}\n",
            "a: 1\na: 2\n",
            "a: [1, 2]\n",
            "a: &x 1\nb: *x\n",
            "a: !t 1\n",
            "a: |\n  text\n",
            "a: one\n  two\n",
            "a: \"x\\ty\"\n",
            "a: \"x\" y\n",
            "a: x: y\n",
            "a:\n- x\n",
            "- - x\n",
            "? a\n: b\n",
            "\"a\": 1\n",
            "null: 1\n",
            "a: 0x1F\n",
            "a: 012\n",
            "a: 1.5\n",
            "a: 1e3\n",
            "a: .inf\n",
            "a: 1_000\n",
            "a: -0\n",
            "a: 1234567890123456789\n",
            "a: deadbeef\n",
        ] {
            assert_eq!(fast(text), None, "{text:?}");
        }
        let long_run = format!("a:\n{}  b: 1\n", "  # c\n".repeat(MAX_COMMENT_RUN + 1));
        assert_eq!(fast(&long_run), None);
        assert_eq!(parse("a: 1\nb: 2\n", 5), Some((json!({"a": 1, "b": 2}), 5)));
        assert_eq!(parse("a: 1\nb: 2\n", 4), None);
    }

    #[test]
    fn a_wrong_reading_would_fail_this_comparison() {
        // The property below compares with serde-saphyr; this shows it can tell them apart.
        let text = "a: on\n";
        assert_eq!(saphyr(text), Some(json!({"a": true})));
        assert_ne!(fast(text), Some(json!({"a": "on"})));
    }

    const GAP: &str = "# the service\nname: gap\ndeployments:\n  api:\n    replicas: 1\n  web:\n    \
                       image:\n      tag: v1\n    args:\n      - run\n  # the worker\n\n  worker:\n    \
                       replicas: 2\nother:\n  x: 1\n";

    const UNENDED: &str =
        "name: gap\ndeployments:\n  api:\n    replicas: 1\n  worker:\n    replicas: 2";

    /// [`reread`] after replacing `range` of `before` with `insert`. Whenever it answers, the
    /// answer is checked against reading the whole edited text.
    fn reread_edit(before: &str, range: std::ops::Range<usize>, insert: &str) -> Option<Reread> {
        reread_within(before, range, insert, crate::yaml::MAX_NODES)
    }

    fn reread_within(
        before: &str,
        range: std::ops::Range<usize>,
        insert: &str,
        max_nodes: usize,
    ) -> Option<Reread> {
        let (base, nodes) = parse(before, max_nodes).unwrap();
        let after = format!("{}{insert}{}", &before[..range.start], &before[range.end..]);
        let got = reread(
            before,
            &base,
            nodes,
            &after,
            range,
            "deployments",
            max_nodes,
        )?;
        let mut want = base;
        want["deployments"][got.key.as_str()] = got.value.clone();
        assert_eq!(parse(&after, max_nodes), Some((want, got.nodes)), "{after}");
        Some(got)
    }

    /// The range that inserts `insert` right after `line` of `text` (its first line is 1).
    fn after_line(text: &str, line: usize) -> std::ops::Range<usize> {
        let at = text.split_inclusive('\n').take(line).map(str::len).sum();
        at..at
    }

    #[test]
    fn reread_reads_only_the_changed_deployment() {
        // A new deployment after `web`, before the comments that lead `worker`.
        let twin = "  web-v1:\n    image:\n      tag: v2\n    args:\n      - run\n";
        let got = reread_edit(GAP, after_line(GAP, 10), twin).unwrap();
        assert_eq!(got.key, "web-v1");
        assert_eq!(got.value, json!({"image": {"tag": "v2"}, "args": ["run"]}));
        // Keys added under `web`'s own key line.
        let labels = "    podLabels:\n      version: v2\n";
        let got = reread_edit(GAP, after_line(GAP, 6), labels).unwrap();
        assert_eq!(
            (got.key.as_str(), &got.value["podLabels"]),
            ("web", &json!({"version": "v2"}))
        );
        // One scalar replaced in place.
        let at = GAP.find("v1\n").unwrap();
        let got = reread_edit(GAP, at..at + 2, "main").unwrap();
        assert_eq!(got.value["image"]["tag"], "main");
        // The last deployment, and the file ends without a newline.
        let end = UNENDED.len();
        let got = reread_edit(UNENDED, end..end, "\n    jobs:\n      - run").unwrap();
        assert_eq!(got.value, json!({"replicas": 2, "jobs": ["run"]}));
        // A deployment that becomes a scalar is still read as a full read would.
        let got = reread_edit(GAP, after_line(GAP, 14), "  tiny: 3\n").unwrap();
        assert_eq!(got.value, json!(3));
    }

    #[test]
    fn reread_declines_what_it_cannot_show() {
        let web = after_line(GAP, 10);
        for (range, insert) in [
            // A deployment that is already there: a duplicate key.
            (web.clone(), "  worker:\n    replicas: 3\n"),
            // A new key above `web`'s lines, which would become its own.
            (after_line(GAP, 6), "  new:\n    a: 1\n"),
            // A line at neither the deployments' column nor under one of them.
            (web.clone(), " half: 1\n"),
            (web.clone(), "  web-v1:\n    a: 1\n top: 1\n"),
            (web.clone(), "top: 1\n"),
            // Not in the subset.
            (web.clone(), "  web-v1:\n    a: [1]\n"),
            (web.clone(), "  web-v1:\n    a:\t1\n"),
            (web.clone(), "  web-v1:\n    a: \u{e9}\n"),
            (web.clone(), "  web-v1: &a\n    a: 1\n"),
            // A new deployment where `web`'s last line was.
            (
                after_line(GAP, 9).start..GAP.find("  # the").unwrap(),
                "  web-v1:\n    a: 1\n",
            ),
            // Two deployments at once, or a deployment removed.
            (web.clone(), "  a:\n    x: 1\n  b:\n    x: 2\n"),
            (
                GAP.find("  worker").unwrap()..GAP.find("other").unwrap(),
                "",
            ),
            // Outside `deployments`.
            (
                GAP.find("gap").unwrap()..GAP.find("gap").unwrap() + 3,
                "pag",
            ),
            (after_line(GAP, 15), "  y: 2\n"),
            (after_line(GAP, 3), "  first:\n    a: 1\n"),
        ] {
            assert!(
                reread_edit(GAP, range.clone(), insert).is_none(),
                "{range:?} {insert:?}"
            );
        }
        // A new deployment whose lines join the last line of a file without a newline.
        let end = UNENDED.len();
        assert!(reread_edit(UNENDED, end..end, "\n  jobs:\n    - run").is_none());
    }

    #[test]
    fn reread_counts_across_the_edges_of_the_change() {
        let web = after_line(GAP, 10);
        let twin = "  web-v1:\n    a: 1\n";
        // Comment runs: `worker`'s two lines (one blank) follow the new lines.
        let comments = |n: usize| format!("{twin}{}", "  # c\n".repeat(n));
        assert!(reread_edit(GAP, web.clone(), &comments(MAX_COMMENT_RUN - 2)).is_some());
        assert!(reread_edit(GAP, web.clone(), &comments(MAX_COMMENT_RUN - 1)).is_none());
        let before = GAP.replace(
            "    - run\n",
            &format!("    - run\n{}", "  # c\n".repeat(10)),
        );
        let web = after_line(&before, 20);
        let led = format!("{}{twin}", "  # c\n".repeat(MAX_COMMENT_RUN - 10));
        assert!(reread_edit(&before, web.clone(), &led).is_none());
        let led = format!("{}{twin}", "  # c\n".repeat(MAX_COMMENT_RUN - 11));
        assert!(reread_edit(&before, web, &led).is_some());
        // The nesting limit, counted from the root.
        let nested = |levels: usize| {
            let mut text = String::from("  web-v1:\n");
            for i in 0..levels {
                let value = if i + 1 == levels { " 1" } else { "" };
                text.push_str(&format!("{}k{i}:{value}\n", " ".repeat(4 + 2 * i)));
            }
            text
        };
        assert!(reread_edit(GAP, after_line(GAP, 10), &nested(MAX_DEPTH - 1)).is_some());
        assert!(reread_edit(GAP, after_line(GAP, 10), &nested(MAX_DEPTH)).is_none());
        // The node budget: the new deployment's key and its mapping's three nodes.
        let (_, nodes) = parse(GAP, crate::yaml::MAX_NODES).unwrap();
        let web = after_line(GAP, 10);
        assert!(reread_within(GAP, web.clone(), twin, nodes + 4).is_some());
        assert!(reread_within(GAP, web.clone(), twin, nodes + 3).is_none());
        // Replacing a deployment counts what it had.
        let at = GAP.find("    replicas: 1").unwrap();
        let less = at..at + "    replicas: 1\n".len();
        assert!(reread_within(GAP, less, "    a: 1\n    b: 2\n", nodes + 2).is_some());
        let less = at..at + "    replicas: 1\n".len();
        assert!(reread_within(GAP, less, "    a: 1\n    b: 2\n", nodes + 1).is_none());
    }

    #[test]
    fn reread_compares_the_bytes_it_does_not_read() {
        let (base, nodes) = parse(GAP, crate::yaml::MAX_NODES).unwrap();
        let twin = "  web-v1:\n    a: 1\n";
        let web = after_line(GAP, 10);
        let after = format!("{}{twin}{}", &GAP[..web.start], &GAP[web.start..]);
        let read = |after: &str, range| {
            reread(
                GAP,
                &base,
                nodes,
                after,
                range,
                "deployments",
                crate::yaml::MAX_NODES,
            )
        };
        assert!(read(&after, web.clone()).is_some());
        assert!(read(&after.replace("gap", "pag"), web.clone()).is_none());
        assert!(read(&after.replace("x: 1", "x: 2"), web.clone()).is_none());
        // A range that does not say where the change is.
        assert!(read(&after, 0..0).is_none());
        assert!(read(&after, GAP.len()..GAP.len()).is_none());
    }

    /// Scalars in the subset.
    const READ: [&str; 30] = [
        "web",
        "100m",
        "v2",
        "--queue=q-0000",
        "/opt/bin",
        "x#y",
        "a b",
        "a #c",
        "x:y",
        "\"4\"",
        "\"a #b\"",
        "'it''s'",
        "''",
        "\"\"",
        "true",
        "tRUE",
        "No",
        "off",
        "Y",
        "~",
        "null",
        "nULL",
        "0",
        "7",
        "-3",
        "42",
        "~x",
        "=",
        "((",
        "sha256:be6b",
    ];
    /// Scalars it declines (or that are not YAML at all).
    const DECLINED: [&str; 30] = [
        "007",
        "0x1F",
        "1.5",
        "1e3",
        ".inf",
        "-inf",
        "nan",
        "1_000",
        "-",
        "-a b",
        "a:",
        "a: b",
        "{}",
        "[x]",
        "&a x",
        "*a",
        "!t x",
        "|",
        "@x",
        "%x",
        "?x",
        ":x",
        "deadbeef",
        "1 2",
        "2001-12-14",
        "'a' b",
        "\"a\"b",
        "\"a\\tb\"",
        "- x",
        "-0",
    ];
    const KEYS: [&str; 8] = ["a", "b", "web", "x.y", "a-b", "_k", "env", "K9"];
    const ODD_KEYS: [&str; 8] = ["on", "null", "1", "\"q\"", "a b", "<<", "-a", "? k"];

    fn pick(
        read: &'static [&'static str],
        declined: &'static [&'static str],
    ) -> BoxedStrategy<String> {
        prop_oneof![
            12 => prop::sample::select(read),
            1 => prop::sample::select(declined),
        ]
        .prop_map(str::to_string)
        .boxed()
    }

    fn scalar_text() -> BoxedStrategy<String> {
        pick(&READ, &DECLINED)
    }

    fn key_text() -> BoxedStrategy<String> {
        pick(&KEYS, &ODD_KEYS)
    }

    /// Lines of a document: indentation, then a key or a dash, then perhaps a scalar, then
    /// perhaps a comment; near-misses as much as valid YAML.
    fn lines_document() -> impl Strategy<Value = String> {
        let line = (
            0usize..4,
            prop::option::of(key_text()),
            prop::option::of(scalar_text()),
            prop::sample::select(vec!["", " # c", "#c", "  "]),
            prop::sample::select(vec!["", "\n# note\n", "\n\n"]),
        )
            .prop_map(|(depth, key, value, comment, after)| {
                let head = match key {
                    Some(k) => format!("{k}:"),
                    None => "-".to_string(),
                };
                let value = value.map(|v| format!(" {v}")).unwrap_or_default();
                format!("{}{head}{value}{comment}\n{after}", "  ".repeat(depth))
            });
        prop::collection::vec(line, 1..12).prop_map(|lines| lines.concat())
    }

    #[derive(Debug, Clone)]
    enum Tree {
        Scalar(String),
        Map(Vec<(String, Tree)>),
        Seq(Vec<Tree>),
    }

    /// A block document written from a tree: mostly in the subset, so that the comparison
    /// below is about values rather than about declining.
    fn tree_document() -> impl Strategy<Value = String> {
        let tree = scalar_text()
            .prop_map(Tree::Scalar)
            .prop_recursive(4, 40, 4, |inner| {
                prop_oneof![
                    prop::collection::vec((key_text(), inner.clone()), 1..4).prop_map(Tree::Map),
                    prop::collection::vec(inner, 1..4).prop_map(Tree::Seq),
                ]
            });
        (tree, prop::sample::select(vec![2usize, 4]), 0usize..4).prop_map(
            |(tree, step, comments)| {
                let mut out = String::new();
                render(&tree, 0, step, comments, &mut out);
                out
            },
        )
    }

    /// `comments`: 0 none, 1 a comment line after each entry, 2 trailing comments, 3 both.
    fn render(tree: &Tree, col: usize, step: usize, comments: usize, out: &mut String) {
        let pad = " ".repeat(col);
        let trailing = if comments >= 2 { " # t" } else { "" };
        let note = |out: &mut String| {
            if comments % 2 == 1 {
                out.push_str(&format!("{pad}# note\n"));
            }
        };
        match tree {
            Tree::Scalar(s) => out.push_str(&format!("{pad}{s}\n")),
            Tree::Map(entries) => {
                for (key, value) in entries {
                    match value {
                        Tree::Scalar(s) => out.push_str(&format!("{pad}{key}: {s}{trailing}\n")),
                        _ => {
                            out.push_str(&format!("{pad}{key}:{trailing}\n"));
                            render(value, col + step, step, comments, out);
                        }
                    }
                    note(out);
                }
            }
            Tree::Seq(items) => {
                for item in items {
                    match item {
                        Tree::Scalar(s) => out.push_str(&format!("{pad}- {s}{trailing}\n")),
                        Tree::Map(_) => {
                            // The first entry on the dash's line, the others below it.
                            let mut inner = String::new();
                            render(item, col + 2, step, comments, &mut inner);
                            out.push_str(&format!("{pad}- {}", &inner[col + 2..]));
                        }
                        Tree::Seq(_) => {
                            out.push_str(&format!("{pad}-\n"));
                            render(item, col + step, step, comments, out);
                        }
                    }
                    note(out);
                }
            }
        }
    }

    /// Documents in the subset with a few characters that matter to YAML inserted: the
    /// near-misses a reader of a subset is most likely to get wrong.
    fn mutated_document() -> impl Strategy<Value = String> {
        let base = prop::sample::select(vec![
            "# gap/gap.yaml\nname: gap-2\ndeployments:\n  worker-0001:\n    # consumes q-0001\n    \
             command:\n      - /opt/docker/bin/worker\n      - --queue=q-0001\n    env:\n      \
             CONCURRENCY: \"4\"\n      QUEUE: q-0001\n    resources:\n      cpu: 100m\n",
            "name: seed\ndeployments:\n    web:\n        podLabels:\n            version: v2 # x\n        \
             ingress:\n            enabled: true\n        items:\n            - name: A\n              \
             value: 'it''s'\n            -\n                - nested\n",
        ]);
        let insert = (
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                ":", "-", " ", "\n", "#", "'", "\"", "- ", ": ", " #", "0", "x", "~", "{", "&",
            ]),
        );
        (base, prop::collection::vec(insert, 1..4)).prop_map(|(base, inserts)| {
            let mut text = base.to_string();
            for (at, what) in inserts {
                let at = at.index(text.len() + 1);
                text.insert_str(at, what);
            }
            text
        })
    }

    fn tree() -> impl Strategy<Value = Tree> {
        scalar_text()
            .prop_map(Tree::Scalar)
            .prop_recursive(3, 20, 3, |inner| {
                prop_oneof![
                    prop::collection::vec((key_text(), inner.clone()), 1..3).prop_map(Tree::Map),
                    prop::collection::vec(inner, 1..3).prop_map(Tree::Seq),
                ]
            })
    }

    /// A gap.yaml with a few deployments, and an edit of it: some lines (or bytes) replaced by
    /// a new deployment, by lines at any indentation, or by a character that matters to YAML.
    fn edited_gap() -> impl Strategy<Value = (String, std::ops::Range<usize>, String)> {
        let deployments = prop::collection::vec((key_text(), tree()), 1..5);
        let insert = prop_oneof![
            (key_text(), tree()).prop_map(|(k, t)| (k, Some(t), String::new())),
            lines_document().prop_map(|lines| (String::new(), None, lines)),
            prop::sample::select(vec!["", ":", "- ", " ", "\n", "#", "  # c\n", "'", "x"])
                .prop_map(|s| (String::new(), None, s.to_string())),
        ];
        let at = (any::<prop::sample::Index>(), 0usize..3, any::<bool>());
        (
            deployments,
            prop::sample::select(vec![2usize, 4]),
            0usize..4,
            insert,
            at,
        )
            .prop_map(
                |(deployments, step, comments, (key, tree, lines), (at, span, whole_lines))| {
                    let mut before = String::from("name: gap\ndeployments:\n");
                    render(&Tree::Map(deployments), step, step, comments, &mut before);
                    before.push_str("other:\n  x: 1\n");
                    let insert = match tree {
                        Some(tree) => {
                            let mut text = String::new();
                            render(
                                &Tree::Map(vec![(key, tree)]),
                                step,
                                step,
                                comments,
                                &mut text,
                            );
                            text
                        }
                        None => lines
                            .lines()
                            .map(|l| format!("{}{l}\n", " ".repeat(step * (l.len() % 3))))
                            .collect(),
                    };
                    let range = if whole_lines {
                        let starts: Vec<usize> = std::iter::once(0)
                            .chain(before.match_indices('\n').map(|(i, _)| i + 1))
                            .collect();
                        let first = at.index(starts.len());
                        starts[first]..starts[(first + span).min(starts.len() - 1)]
                    } else {
                        let start = at.index(before.len() + 1);
                        start..(start + span).min(before.len())
                    };
                    (before, range, insert)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Whenever the re-read of one deployment answers, a full read agrees with it.
        #[test]
        fn reread_agrees_with_a_full_read((before, range, insert) in edited_gap()) {
            if parse(&before, crate::yaml::MAX_NODES).is_some() {
                reread_edit(&before, range, &insert);
            }
        }

        #[test]
        fn agrees_with_serde_saphyr(text in prop_oneof![lines_document(), tree_document(), mutated_document()]) {
            if let Some(value) = fast(&text) {
                prop_assert_eq!(Some(value), saphyr(&text), "{:?}", text);
            }
        }
    }
}
