//! Flow collections (`{a: 1, b: [x, y]}`), found by byte position so that an edit can go
//! inside one instead of rewriting it: a new label joins `podLabels: {team: x}` as
//! `{team: x, version: v2, canary: enabled}`, and the rest of the line stays as written.
//!
//! Like the block locator, the scanner only needs to be right where it claims to be: every
//! edit re-parses its result, so a flow it misreads ends in a refusal, not a wrong file.

use super::YamlError;

/// A flow collection: `open` is the offset of its `{` or `[`, `close` that of its bracket.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub open: usize,
    pub close: usize,
    pub items: Vec<FlowItem>,
}

/// One item, trimmed: `key: value` in a mapping (with the value's offset), a value in a list.
#[derive(Debug, Clone)]
pub(crate) struct FlowItem {
    pub start: usize,
    pub end: usize,
    pub key: Option<String>,
    pub value: usize,
}

impl Flow {
    pub fn get(&self, key: &str) -> Option<&FlowItem> {
        self.items.iter().find(|i| i.key.as_deref() == Some(key))
    }
}

/// Reads the flow collection whose bracket is at `open`.
pub(crate) fn parse(text: &str, open: usize) -> Result<Flow, YamlError> {
    let b = text.as_bytes();
    let is_map = match b.get(open) {
        Some(b'{') => true,
        Some(b'[') => false,
        _ => return Err(YamlError::Verify("no flow collection here".into())),
    };
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut item_start = open + 1;
    let mut colon: Option<usize> = None;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_quoted(b, i, b'"'),
            b'\'' => i = skip_quoted(b, i, b'\''),
            b'#' if i > 0 && b[i - 1].is_ascii_whitespace() => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    push_item(text, item_start, i, colon, is_map, &mut items);
                    return Ok(Flow {
                        open,
                        close: i,
                        items,
                    });
                }
            }
            b',' if depth == 1 => {
                push_item(text, item_start, i, colon.take(), is_map, &mut items);
                item_start = i + 1;
            }
            b':' if depth == 1
                && colon.is_none()
                && matches!(
                    b.get(i + 1),
                    Some(b' ' | b'\t' | b'\r' | b'\n' | b',' | b'}')
                ) =>
            {
                colon = Some(i);
            }
            _ => {}
        }
        i += 1;
    }
    Err(YamlError::Parse("a flow collection is not closed".into()))
}

/// Index of the closing quote (the caller steps past it).
fn skip_quoted(b: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < b.len() {
        if quote == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if quote == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i;
        }
        i += 1;
    }
    b.len()
}

fn push_item(
    text: &str,
    from: usize,
    to: usize,
    colon: Option<usize>,
    is_map: bool,
    items: &mut Vec<FlowItem>,
) {
    // Comment lines before an item belong to no item.
    let mut from = from;
    loop {
        let raw = &text[from..to];
        let rest = raw.trim_start();
        if !rest.starts_with('#') {
            break;
        }
        let skipped = raw.len() - rest.len();
        from += skipped + rest.find('\n').map_or(rest.len(), |n| n + 1);
    }
    let raw = &text[from..to];
    let lead = raw.len() - raw.trim_start().len();
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return;
    }
    let start = from + lead;
    let end = start + trimmed.len();
    let (key, value) = match colon.filter(|_| is_map) {
        Some(c) => {
            let k = text[start..c].trim();
            let k = k
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .or_else(|| k.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
                .unwrap_or(k);
            let after = &text[c + 1..end];
            (
                Some(k.to_string()),
                c + 1 + (after.len() - after.trim_start().len()),
            )
        }
        None => (None, start),
    };
    items.push(FlowItem {
        start,
        end,
        key,
        value,
    });
}

/// The text that adds `new` items at the end of a flow collection, in its own spacing:
/// `{a: 1}` + `b: 2` → `{a: 1, b: 2}`; `{ }` → `{ b: 2 }`.
pub(crate) fn append(text: &str, flow: &Flow, new: &[String]) -> (usize, String) {
    let joined = new.join(", ");
    match flow.items.last() {
        Some(last) => (last.end, format!(", {joined}")),
        None => {
            let inner = &text[flow.open + 1..flow.close];
            if inner.trim().is_empty() && !inner.is_empty() {
                (flow.open + 1, format!(" {joined}"))
            } else {
                (flow.open + 1, joined)
            }
        }
    }
}

/// The same collection written with its items' text verbatim, minus the keys in `drop`, plus
/// `extra` at the end: how a twin's flow mapping is made from its source's.
pub(crate) fn rewrite(text: &str, flow: &Flow, drop: &[&str], extra: &[String]) -> String {
    let (open, close) = (&text[flow.open..=flow.open], &text[flow.close..=flow.close]);
    let items: Vec<String> = flow
        .items
        .iter()
        .filter(|i| i.key.as_deref().is_none_or(|k| !drop.contains(&k)))
        .map(|i| text[i.start..i.end].to_string())
        .chain(extra.iter().cloned())
        .collect();
    format!("{open}{}{close}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_keys_and_values() {
        let text = "web: {a: 1, 'b': [x, {y: 2}], c: \"q, }\" } # c, d\n";
        let flow = parse(text, 5).unwrap();
        let keys: Vec<_> = flow.items.iter().map(|i| i.key.clone().unwrap()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        let c = flow.get("c").unwrap();
        assert_eq!(&text[c.value..c.end], "\"q, }\"");
        assert_eq!(&text[flow.close..=flow.close], "}");
        let b = flow.get("b").unwrap();
        let inner = parse(text, b.value).unwrap();
        assert_eq!(inner.items.len(), 2);
        assert!(inner.items[0].key.is_none());
    }

    #[test]
    fn append_keeps_the_spacing() {
        for (text, want) in [
            ("{a: 1}", "{a: 1, b: 2}"),
            ("{ a: 1 }", "{ a: 1, b: 2 }"),
            ("{}", "{b: 2}"),
            ("{ }", "{ b: 2 }"),
        ] {
            let flow = parse(text, 0).unwrap();
            let (at, add) = append(text, &flow, &["b: 2".into()]);
            assert_eq!(format!("{}{add}{}", &text[..at], &text[at..]), want);
        }
    }

    #[test]
    fn multi_line_flows_and_comments() {
        let text = "{a: 1, # one, two\n  b: [1,\n 2]}\n";
        let flow = parse(text, 0).unwrap();
        assert_eq!(flow.items.len(), 2);
        assert_eq!(flow.items[1].key.as_deref(), Some("b"));
        assert_eq!(
            rewrite(text, &flow, &["a"], &["c: 3".into()]),
            "{b: [1,\n 2], c: 3}"
        );
        assert!(parse("{a: [1}", 0).is_err());
    }
}
