//! The anchors a deployment of gap.yaml defines, read off the parser's events (which tell an
//! anchor from a `&` inside a string or a comment). canary copies web into web-v1 as it is
//! written: an anchor there would be defined twice, and the aliases after web-v1 would then
//! point at web-v1's copy.

use serde_saphyr::granit_parser::{Event, Options, Parser};

use super::YamlError;

/// An anchor definition: its name, and the 1-based line of its `&name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub name: String,
    pub line: usize,
}

/// Where a node sits, as far as finding `deployments.<dep>` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Deployments,
    /// The deployment, or anything inside it.
    Inside,
    Other,
}

struct Frame {
    map: bool,
    /// In a mapping: the next node is a key.
    expecting_key: bool,
    /// In a mapping: the key whose value comes next.
    key: Option<String>,
    role: Role,
    /// The collection is itself a mapping key (`? [a, b]: c`).
    is_key: bool,
}

/// The anchors defined in `deployments.<dep>` of the file's first document, the deployment's
/// own node included.
pub fn anchors_in_deployment(text: &str, dep: &str) -> Result<Vec<Anchor>, YamlError> {
    // Most files have no `&` at all: no anchor, and no second reading.
    if memchr::memchr(b'&', text.as_bytes()).is_none() {
        return Ok(Vec::new());
    }
    let mut options = Options::default();
    options.emit_anchor_events = true;
    let mut stack: Vec<Frame> = Vec::new();
    let mut documents = 0;
    let mut last_inside = false;
    let mut found = Vec::new();
    for event in Parser::new_from_str_with_options(text, options) {
        let (event, span) = event.map_err(|e| YamlError::Parse(e.to_string()))?;
        let (map, is_collection) = match &event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    break;
                }
                continue;
            }
            Event::Anchor(_, name) => {
                if last_inside {
                    found.push(Anchor {
                        name: name.to_string(),
                        line: span.start.line(),
                    });
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = stack.pop() {
                    node_done(&mut stack, frame.is_key);
                }
                continue;
            }
            Event::MappingStart(..) => (true, true),
            Event::SequenceStart(..) => (false, true),
            Event::Scalar(..) | Event::Alias(..) => (false, false),
            _ => continue,
        };
        let (role, is_key) = match stack.last_mut() {
            None => (Role::Root, false),
            Some(parent) if parent.map && parent.expecting_key => {
                parent.key = match &event {
                    Event::Scalar(key, ..) => Some(key.to_string()),
                    _ => None,
                };
                let role = if parent.role == Role::Inside {
                    Role::Inside
                } else {
                    Role::Other
                };
                (role, true)
            }
            Some(parent) => {
                let role = match (parent.role, parent.key.as_deref()) {
                    (Role::Inside, _) => Role::Inside,
                    (Role::Root, Some("deployments")) if parent.map => Role::Deployments,
                    (Role::Deployments, Some(key)) if parent.map && key == dep => Role::Inside,
                    _ => Role::Other,
                };
                (role, false)
            }
        };
        last_inside = role == Role::Inside;
        if is_collection {
            stack.push(Frame {
                map,
                expecting_key: true,
                key: None,
                role,
                is_key,
            });
        } else {
            node_done(&mut stack, is_key);
        }
    }
    Ok(found)
}

/// A node is complete: in a mapping, a key is followed by its value, a value by the next key.
fn node_done(stack: &mut [Frame], was_key: bool) {
    if let Some(parent) = stack.last_mut().filter(|p| p.map) {
        parent.expecting_key = !was_key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, usize)> {
        anchors_in_deployment(text, "web")
            .unwrap()
            .into_iter()
            .map(|a| (a.name, a.line))
            .collect()
    }

    #[test]
    fn anchors_inside_the_deployment_are_found_with_their_lines() {
        let text = "\
name: s
x-base: &base {a: 1}
deployments:
  web: &web
    <<: *base
    env: &env
      - {name: A, value: \"a&b\"}   # not &an anchor
    command: [&cmd start]
  worker:
    env: *env
    other: &other 1
";
        assert_eq!(
            names(text),
            [("web".into(), 4), ("env".into(), 6), ("cmd".into(), 8)]
        );
    }

    #[test]
    fn aliases_in_the_deployment_and_anchors_elsewhere_are_not_its_anchors() {
        let text = "\
x: &x {deployments: {web: &no 1}}
deployments:
  worker: &w {web: &no2 1}
  web:
    <<: *x
    note: \"&quoted\"
    block: |
      &literal
---
deployments:
  web: &second-document 1
";
        assert_eq!(names(text), Vec::<(String, usize)>::new());
        assert_eq!(names("deployments:\n  web:\n    a: b\n"), Vec::new());
        assert_eq!(names("deployments: [&a web]\n"), Vec::new());
        assert!(anchors_in_deployment("deployments: [&a\n", "web").is_err());
    }

    #[test]
    fn keys_that_are_collections_do_not_lose_the_place() {
        let text = "\
deployments:
  ? [a, b]
  : 1
  web:
    k: &inside v
";
        assert_eq!(names(text), [("inside".into(), 5)]);
    }
}
