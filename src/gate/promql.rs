//! The gate's PromQL: Istio's standard metrics as the destination's sidecar reports them,
//! for one version of the service, over a range. Every label value goes in through
//! [`quote`]: nothing is pasted into a query unescaped.

/// One version of the service, as Istio's metrics label it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub namespace: String,
    /// The Deployment (`SERVICE-web` for v2, `SERVICE-web-v1` for v1).
    pub workload: String,
    /// The pods' `version` label: `v1` or `v2`.
    pub version: String,
}

/// A PromQL double-quoted string literal holding exactly `value`. PromQL reads string
/// literals as Go does: a backslash, a double quote and control characters are escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    out.push_str(&escape(value));
    out.push('"');
    out
}

/// [`quote`] without the quotes: what a `$placeholder` inside a team check's `"..."` becomes.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl Selector {
    fn matchers(&self) -> String {
        format!(
            "{},destination_version={}",
            self.workload_matchers(),
            quote(&self.version)
        )
    }

    fn workload_matchers(&self) -> String {
        format!(
            "reporter=\"destination\",destination_service_namespace={},destination_workload={}",
            quote(&self.namespace),
            quote(&self.workload)
        )
    }

    /// How many of Istio's request series the workload has had over the last `range_secs`,
    /// whatever its pods' version label (before a release they have none).
    pub fn seen(&self, range_secs: u64) -> String {
        format!(
            "count(last_over_time(istio_requests_total{{{}}}[{range_secs}s]))",
            self.workload_matchers()
        )
    }

    /// The requests it answered over the last `range_secs`.
    pub fn requests(&self, range_secs: u64) -> String {
        format!(
            "sum(increase(istio_requests_total{{{}}}[{range_secs}s]))",
            self.matchers()
        )
    }

    /// The 5xx answers among them.
    pub fn errors(&self, range_secs: u64) -> String {
        format!(
            "sum(increase(istio_requests_total{{{},response_code=~\"5..\"}}[{range_secs}s]))",
            self.matchers()
        )
    }

    /// Its request durations: for each bucket's upper bound `le` (milliseconds), the requests
    /// that took at most that long.
    pub fn latency(&self, range_secs: u64) -> String {
        format!(
            "sum by (le) (increase(istio_request_duration_milliseconds_bucket{{{}}}[{range_secs}s]))",
            self.matchers()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_as_promql_reads_them() {
        assert_eq!(quote("v2"), r#""v2""#);
        assert_eq!(quote(r#"a"b"#), r#""a\"b""#);
        assert_eq!(quote(r"a\b"), r#""a\\b""#);
        assert_eq!(quote("a\nb"), r#""a\nb""#);
        assert_eq!(quote("a\u{7}b\tc"), r#""a\u0007b\tc""#);
        // A value that tries to close the matcher and add its own stays one string.
        let hostile = r#"x"} or vector(1) or {a=""#;
        let quoted = quote(hostile);
        assert_eq!(quoted, r#""x\"} or vector(1) or {a=\"""#);
        assert_eq!(unquote(&quoted), hostile);
    }

    /// Go's reading of a double-quoted literal, reduced to the escapes [`escape`] writes: the
    /// round trip must give the value back.
    fn unquote(literal: &str) -> String {
        let inner = &literal[1..literal.len() - 1];
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '"' {
                panic!("unescaped quote in {literal}");
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next().unwrap() {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                c => out.push(c),
            }
        }
        out
    }

    #[test]
    fn the_queries_select_the_destination_reporter_of_one_version() {
        let v1 = Selector {
            namespace: "relational-data".into(),
            workload: "my-service-web-v1".into(),
            version: "v1".into(),
        };
        assert_eq!(
            v1.requests(420),
            "sum(increase(istio_requests_total{reporter=\"destination\",\
             destination_service_namespace=\"relational-data\",\
             destination_workload=\"my-service-web-v1\",destination_version=\"v1\"}[420s]))"
        );
        assert!(v1.errors(300).contains(",response_code=~\"5..\"}[300s]"));
        assert_eq!(
            v1.seen(3600),
            "count(last_over_time(istio_requests_total{reporter=\"destination\",\
             destination_service_namespace=\"relational-data\",\
             destination_workload=\"my-service-web-v1\"}[3600s]))"
        );
        assert!(v1.latency(300).starts_with(
            "sum by (le) (increase(istio_request_duration_milliseconds_bucket{reporter="
        ));
    }
}
