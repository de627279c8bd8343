//! Writing new YAML lines in the file's own style.

use serde_json::Value;

use super::readers::read_as_non_string;

/// How a file quotes its strings: new quoted text is written the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Quote {
    #[default]
    Double,
    Single,
}

/// One output line (without line ending) indented by `indent` spaces.
pub(crate) fn line(indent: usize, content: impl std::fmt::Display) -> String {
    format!("{:indent$}{content}", "")
}

/// A string as YAML text: plain when every YAML reader reads it back as the same string,
/// quoted in the file's style otherwise (`true`, `1`, `017`, `1:20`, `null`, `yes`, `a: b`,
/// `#x`, ...).
pub(crate) fn scalar(s: &str, quote: Quote) -> String {
    if plain_is_safe(s) {
        s.to_string()
    } else {
        quoted_in(s, quote)
    }
}

/// A value as one flow collection, `{rules: [{from: [...]}]}`, for a node that the file
/// writes in flow style. Strings with a `:` are quoted, which flow context needs.
pub(crate) fn flow(value: &Value, quote: Quote) -> String {
    match value {
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", flow_scalar(k, quote), flow(v, quote)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|v| flow(v, quote))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::String(s) => flow_scalar(s, quote),
        other => other.to_string(),
    }
}

fn flow_scalar(s: &str, quote: Quote) -> String {
    if s.contains(':') {
        quoted_in(s, quote)
    } else {
        scalar(s, quote)
    }
}

/// Quoted in `quote`'s style; double-quoted where single quotes cannot say it (a line break
/// or another control character).
fn quoted_in(s: &str, quote: Quote) -> String {
    if quote == Quote::Single && !s.chars().any(char::is_control) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        quoted(s)
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

/// A conservative character set rules out indicators and comments; what other readers
/// would type ([`read_as_non_string`]) and the round trip through canary's own reader rule out
/// every typed reading (booleans, numbers in any base, null, dates...).
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
        && !read_as_non_string(s)
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
            "v1.2.3",
        ] {
            assert_eq!(scalar(s, Quote::Double), s);
            assert_eq!(scalar(s, Quote::Single), s);
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
            // What canary reads as text and YAML 1.1 readers as numbers or a date.
            ("017", "\"017\""),
            ("0777", "\"0777\""),
            ("1_000", "\"1_000\""),
            ("0b101", "\"0b101\""),
            ("1:20", "\"1:20\""),
            ("2001-12-14", "\"2001-12-14\""),
            ("1.2.3", "\"1.2.3\""),
        ] {
            assert_eq!(scalar(s, Quote::Double), want, "{s}");
        }
    }

    #[test]
    fn quoted_in_the_files_style() {
        assert_eq!(scalar("017", Quote::Single), "'017'");
        assert_eq!(scalar("it's: 1", Quote::Single), "'it''s: 1'");
        assert_eq!(scalar("a\nb", Quote::Single), "\"a\\nb\"");
        assert_eq!(
            flow(
                &serde_json::json!({"name": "X", "value": "1:20"}),
                Quote::Single
            ),
            "{name: X, value: '1:20'}"
        );
        for (s, quote) in [("017", Quote::Single), ("yes", Quote::Double)] {
            let text = format!("k: {}\n", scalar(s, quote));
            assert_eq!(super::super::parse(&text).unwrap()["k"], s, "{text}");
        }
    }

    #[test]
    fn line_indents() {
        assert_eq!(line(4, "a: b"), "    a: b");
        assert_eq!(line(0, "a"), "a");
    }
}
