//! What other YAML readers make of a plain scalar.
//!
//! canary reads `017` or `2001-12-14` as text, but the readers that deploy its files do not all
//! agree: Helm's (go-yaml), PyYAML and most tools read YAML 1.1, where `017` is the octal 15,
//! `1:20` the sexagesimal 80, `yes` a boolean and `2001-12-14` a date; YAML 1.2 readers take
//! `1e3` for a number. A string that any of them could take for something else is only safe
//! quoted.

use std::sync::OnceLock;

use regex::RegexSet;

/// The plain scalars a reader resolves to another type than a string, as published: the YAML
/// 1.1 types at yaml.org/type, the YAML 1.2 core schema (which holds the JSON schema), and what
/// go-yaml, Helm's reader, also takes for a number or a date (a radix prefix in either case,
/// `_` anywhere in a number, a month or day of one digit).
const NON_STRINGS: [&str; 16] = [
    // YAML 1.1 bool
    r"y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
    // YAML 1.1 null (and 1.2 core null)
    r"~|null|Null|NULL|",
    // YAML 1.1 int: base 2, 8, 10, 16 and 60
    r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+",
    // YAML 1.1 float: base 10, base 60, infinity, not a number
    r"[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)",
    // YAML 1.1 timestamp: a date, or a date and a time
    r"[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]",
    r"[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?([Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](\.[0-9]*)?(([ \t]*)Z|[-+][0-9][0-9]?(:[0-9][0-9])?)?",
    // YAML 1.1 merge and value keys
    r"<<",
    r"=",
    // YAML 1.2 core bool
    r"true|True|TRUE|false|False|FALSE",
    // YAML 1.2 core int: base 10, 8, 16
    r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+",
    // YAML 1.2 core float, infinity, not a number
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?",
    r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)",
    // go-yaml: strconv's integers once `_` is dropped (a radix prefix in either case)
    r"[-+]?[0-9][0-9_]*|[-+]?0[xX][0-9a-fA-F_]+|[-+]?0[oO][0-7_]+|[-+]?0[bB][01_]+",
    // go-yaml: its float pattern once `_` is dropped
    r"[-+]?(\.[0-9_]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?",
    // go-yaml: timestamps with months and days of one digit
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}",
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]*)?(([ \t]*)Z|[ \t]*[-+][0-9]{1,2}(:[0-9]{2})?)?",
];

/// Whether a non-empty match of [`NON_STRINGS`] may begin with `c`: a digit, or the first
/// character of a bool, a null, a sign, a fraction, an infinity or a merge or value key.
fn may_begin_a_non_string(c: char) -> bool {
    c.is_ascii_digit() || "yYnNtTfFoO~+-.<=".contains(c)
}

/// Whether a YAML 1.1 or 1.2 reader could resolve `plain`, written as a plain scalar, to
/// something else than the string it spells: a bool, null, an int, a float, a timestamp, or a
/// merge or value key. Such a string must be written quoted.
pub(crate) fn read_as_non_string(plain: &str) -> bool {
    // Compiling the set costs more than the rest of a seed-sized step, and most scalars canary
    // writes (`v1`, `enabled`, an image, a host) begin with a letter no pattern begins with.
    if !plain.is_empty() && !plain.starts_with(may_begin_a_non_string) {
        return false;
    }
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(non_strings).is_match(plain)
}

/// [`NON_STRINGS`], each matched whole.
fn non_strings() -> RegexSet {
    RegexSet::new(NON_STRINGS.iter().map(|p| format!("^(?:{p})$")))
        .expect("the published patterns compile")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples that yaml.org/type gives for each YAML 1.1 type, and those of the YAML 1.2
    /// spec's core schema (example 10.9 and its tag resolution table).
    #[test]
    fn the_published_examples_are_not_strings() {
        let yaml_1_1 = [
            // int
            "685230",
            "+685_230",
            "02472256",
            "0x_0A_74_AE",
            "0b1010_0111_0100_1010_1110",
            "190:20:30",
            // float
            "6.8523015e+5",
            "685.230_15e+03",
            "685_230.15",
            "190:20:30.15",
            "-.inf",
            ".NaN",
            // bool
            "y",
            "Y",
            "yes",
            "Yes",
            "NO",
            "n",
            "true",
            "False",
            "on",
            "Off",
            // null
            "~",
            "null",
            "Null",
            "",
            // timestamp
            "2001-12-15T02:59:43.1Z",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10 -5",
            "2001-12-15 2:59:43.10",
            "2002-12-14",
            // merge, value
            "<<",
            "=",
        ];
        let yaml_1_2_core = [
            "null",
            "NULL",
            "~",
            "",
            "true",
            "True",
            "false",
            "FALSE",
            "0",
            "0o7",
            "0x3A",
            "-19",
            "0.",
            "-0.0",
            ".5",
            "+12e03",
            "-2E+05",
            ".inf",
            "-.Inf",
            "+.INF",
            ".NAN",
            "1e3",
            "0o14",
            "0xC",
            "1.23015e+3",
            "12.3015e+02",
        ];
        for s in yaml_1_1.iter().chain(&yaml_1_2_core) {
            assert!(read_as_non_string(s), "{s:?}");
        }
    }

    /// The values the issue names, which canary reads as text and another reader would not.
    #[test]
    fn what_canary_reads_as_text_and_others_do_not() {
        for s in [
            "017",
            "0777",
            "1_000",
            "0b101",
            "1:20",
            "2001-12-14",
            "0X1F",
            "0O17",
            "0B11",
            "2001-1-2",
            "+1",
            "0x1F",
            ".5",
            "1.",
            "1.2.3",
        ] {
            assert!(read_as_non_string(s), "{s:?}");
        }
    }

    /// What the first-character filter lets through is what the patterns could match: every
    /// string of up to three characters from an alphabet that holds every character the
    /// patterns name and some they do not is judged alike with and without the filter.
    #[test]
    fn the_first_character_filter_drops_only_strings() {
        let set = non_strings();
        let alphabet: Vec<char> = "yYnNtTfFoOeEsSrRuUlLaAiIxXbB~+-.<=:_ \t0123456789vwz/é"
            .chars()
            .collect();
        let mut checked = 0;
        for a in &alphabet {
            for b in std::iter::once(None).chain(alphabet.iter().map(Some)) {
                for c in std::iter::once(None).chain(alphabet.iter().map(Some)) {
                    let s: String = [Some(a), b, c].into_iter().flatten().collect();
                    assert_eq!(read_as_non_string(&s), set.is_match(&s), "{s:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
        for s in ["yes", "0x1F", "2001-12-14", ".inf", "<<", "=", "~", ""] {
            assert!(read_as_non_string(s), "{s:?}");
        }
    }

    #[test]
    fn strings_stay_strings() {
        for s in [
            "v1",
            "v2",
            "web-v1",
            "enabled",
            "yes-please",
            "True1",
            "nulls",
            "sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f",
            "ingress-nginx",
            "1a",
            "0x",
            "0xG",
            "1:2:3:a",
            "12-14",
            "2001-12-14x",
            "v1.2.3",
            "inf",
            "NaN",
            "--flag",
            "<",
            "==",
            "e3",
        ] {
            assert!(!read_as_non_string(s), "{s:?}");
        }
    }
}
