//! Writing new YAML lines in the file's own style.

use serde_json::Value;

/// One output line (without line ending) indented by `indent` spaces.
pub(crate) fn line(indent: usize, content: impl std::fmt::Display) -> String {
    format!("{:indent$}{content}", "")
}

/// A scalar as YAML text: plain when YAML reads it back as the same string,
/// double-quoted otherwise (`true`, `1`, `null`, `yes`, `a: b`, `#x`, ...).
pub(crate) fn scalar(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// A value as one flow collection, `{rules: [{from: [...]}]}`, for a node that the file
/// writes in flow style. Strings with a `:` are quoted, which flow context needs.
pub(crate) fn flow(value: &Value) -> String {
    match value {
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", flow_scalar(k), flow(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::String(s) => flow_scalar(s),
        other => other.to_string(),
    }
}

fn flow_scalar(s: &str) -> String {
    if s.contains(':') {
        quoted(s)
    } else {
        scalar(s)
    }
}

/// Always double-quoted, for places where the seed file quotes.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A conservative character set rules out indicators and comments; the
/// round trip through the parser rules out every typed reading
/// (booleans, numbers in any base, null, dates...).
fn plain_is_safe(s: &str) -> bool {
    let starts_well = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/');
    let chars_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._/:@+-".contains(c));
    starts_well
        && chars_ok
        && !s.ends_with(':')
        && super::parse(&format!("k: {s}"))
            .is_ok_and(|v| v.get("k").and_then(Value::as_str) == Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_when_safe() {
        for s in [
            "web-v1",
            "my-service",
            "sap-ems-base-infra-package-p/gap-images/my-service",
            "sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f",
            "ingress-nginx",
            "1.2.3",
        ] {
            assert_eq!(scalar(s), s);
        }
    }

    #[test]
    fn quoted_when_yaml_would_read_something_else() {
        for (s, want) in [
            ("true", "\"true\""),
            ("yes", "\"yes\""),
            ("1", "\"1\""),
            ("0x10", "\"0x10\""),
            ("1e3", "\"1e3\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            ("", "\"\""),
            ("a: b", "\"a: b\""),
            ("a #b", "\"a #b\""),
            ("-x", "\"-x\""),
            ("key:", "\"key:\""),
            ("say \"hi\"\\", "\"say \\\"hi\\\"\\\\\""),
        ] {
            assert_eq!(scalar(s), want, "{s}");
        }
    }

    #[test]
    fn line_indents() {
        assert_eq!(line(4, "a: b"), "    a: b");
        assert_eq!(line(0, "a"), "a");
    }
}
