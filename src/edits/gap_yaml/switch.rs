//! The coexistence switch: the env value or command argument that tells v1 and v2 apart.

use serde_json::{Value, json};

use super::{Found, Gap, at};
use crate::yaml::cursor::{is_empty, last};
use crate::yaml::emit::{self, Quote, line, scalar};
use crate::yaml::splice::Plan;
use crate::yaml::{Document, Seg, YamlError};

/// Make `deployments.<dep>.env` set `name` to `value` (a coexistence switch): the value is
/// replaced in place, or a `- name:`/`value:` item is appended to the list, or the list is
/// added to the deployment. A list the deployment only inherits (through a merge key) is
/// written out whole, its items kept, since a key of its own replaces what `<<:` gave. A
/// variable set through `valueFrom` is a conflict.
pub(crate) fn plan_env_value(
    doc: &Document,
    dep: &str,
    name: &str,
    value: &str,
) -> Result<Option<Plan>, YamlError> {
    let gap = Gap::open(doc)?;
    let path = format!("deployments.{dep}.env");
    let at_item = env_item(&gap, dep, name)?;
    if let Some((_, item)) = at_item
        && item.get("value").and_then(Value::as_str) == Some(value)
    {
        return Ok(None);
    }
    let mut want = gap.value()["deployments"][dep].clone();
    let item = json!({"name": name, "value": value});
    match at_item {
        Some((i, _)) => want["env"][i]["value"] = Value::from(value),
        None if want["env"].is_array() => want["env"].as_array_mut().expect("a list").push(item),
        None => want["env"] = json!([item]),
    }
    let found = gap.locate_any(dep)?;
    let own = match found {
        Found::Flow(flow) => flow.get("env"),
        Found::Block(deployment) => deployment.value.get("env"),
    };
    let splice = match (own, at_item) {
        (Some(env), Some((i, _))) if !env.value.has_props() => {
            let entry = env.value.items().and_then(|items| items[i].get("value"));
            let splice = entry.and_then(|e| gap.set_scalar(&e.value, &Value::from(value)));
            splice.ok_or_else(|| {
                gap.doc.unsupported(
                    env.key_start,
                    format!(
                        "{path}[{i}].value is not a one-line scalar, so canary cannot replace it"
                    ),
                )
            })?
        }
        // A flow deployment's `env:` with nothing after it has no line to go under.
        (Some(env), None) if !is_empty(env) || matches!(found, Found::Block(_)) => {
            gap.add_item(env, &path, |dash| {
                env_item_lines(dash, name, value, gap.style.quote)
            })?
        }
        (Some(env), _) => {
            return Err(gap.doc.unsupported(
                env.key_start,
                format!("{path} uses an anchor, tag or alias, which canary does not edit"),
            ));
        }
        // No list of its own: the whole list, inherited items first.
        (None, _) => {
            let items = want["env"].as_array().expect("a list, set above");
            match found {
                Found::Flow(flow) => {
                    let items: Vec<String> = items
                        .iter()
                        .map(|item| emit::flow(item, gap.style.quote))
                        .collect();
                    gap.add_flow_entries(flow, vec![format!("env: [{}]", items.join(", "))])
                }
                Found::Block(deployment) => {
                    let col = gap.col(deployment.value.start);
                    let dash = col + gap.style.seq_offset;
                    let mut new = vec![line(col, "env:")];
                    for item in items {
                        if item["name"] == name {
                            new.extend(env_item_lines(dash, name, value, gap.style.quote));
                        } else {
                            new.push(line(
                                dash,
                                format!("- {}", emit::flow(item, gap.style.quote)),
                            ));
                        }
                    }
                    gap.insert_after(last(deployment), &new)
                }
            }
        }
    };
    // Only the list is meant, so that the labels planned on the same reading join this.
    let env = Some(want["env"].take());
    Ok(Some(
        Plan::new(vec![splice]).and_set(&["deployments", dep, "env"], env),
    ))
}

/// Make `deployments.<dep>.command` hold `value` where it holds `other` (the switch's other
/// value), or append it; the command must exist, since an argument needs a program.
pub(crate) fn plan_command_arg(
    doc: &Document,
    dep: &str,
    other: &str,
    value: &str,
) -> Result<Option<Plan>, YamlError> {
    let gap = Gap::open(doc)?;
    let path = format!("deployments.{dep}.command");
    let args = command_args(&gap, dep)?;
    if args.iter().any(|a| a == value) {
        return Ok(None);
    }
    let mut want = gap.value()["deployments"][dep].clone();
    let deployment = gap.locate(dep)?;
    let entry = deployment
        .value
        .get("command")
        .expect("command_args found it");
    let splice = match args.iter().position(|a| a == other) {
        Some(i) => {
            want["command"][i] = Value::from(value);
            let seq = gap.child(entry, &path)?.ok_or_else(|| {
                gap.doc
                    .unsupported(entry.key_start, format!("{path} is not a block list"))
            })?;
            let node = &seq.items().expect("a list, as its value says")[i];
            gap.set_scalar(node, &want["command"][i]).ok_or_else(|| {
                gap.doc.unsupported(
                    entry.key_start,
                    format!("{path}[{i}] is not a one-line scalar, so canary cannot replace it"),
                )
            })?
        }
        None => {
            want["command"]
                .as_array_mut()
                .expect("a list")
                .push(Value::from(value));
            gap.add_item(entry, &path, |dash| {
                vec![line(dash, format!("- {}", scalar(value, gap.style.quote)))]
            })?
        }
    };
    let command = Some(want["command"].take());
    Ok(Some(
        Plan::new(vec![splice]).and_set(&["deployments", dep, "command"], command),
    ))
}

/// Whether `deployments.<dep>` can carry a coexistence switch as canary writes it: an env var
/// set at most once, by `value:` (a `valueFrom` is the cluster's, not the file's) and, when
/// set, to one of the two values (canary would overwrite a third), or an argument that a
/// command holds at most once, in one of its two values.
pub fn check_switch(
    doc: &Document,
    dep: &str,
    env: Option<&str>,
    values: [&str; 2],
) -> Result<(), YamlError> {
    let gap = Gap::open(doc)?;
    match env {
        Some(name) => match env_item(&gap, dep, name)? {
            Some((i, item)) if !values.iter().any(|v| item["value"] == *v) => {
                let line = gap.doc.line_of(
                    0,
                    &["deployments", dep, "env"]
                        .map(|k| Seg::Key(k.into()))
                        .into_iter()
                        .chain([Seg::Index(i), Seg::Key("value".into())])
                        .collect::<Vec<_>>(),
                );
                Err(YamlError::Conflict(format!(
                    "deployments.{dep}.env{} sets {name} to {}, neither {} nor {}; canary \
                     would overwrite it with {} at deploy-v1: set it to one of the two by \
                     hand first, or name the values it means in --switch",
                    at(line),
                    item["value"],
                    values[0],
                    values[1],
                    values[0]
                )))
            }
            _ => Ok(()),
        },
        None => {
            let args = command_args(&gap, dep)?;
            let count = args.iter().filter(|a| values.contains(&a.as_str())).count();
            if count > 1 {
                return Err(YamlError::Conflict(format!(
                    "deployments.{dep}.command{} holds the switch {count} times ({} or {}); \
                     canary flips exactly one argument, so leave one",
                    gap.at_keys(&["deployments", dep, "command"]),
                    values[0],
                    values[1]
                )));
            }
            Ok(())
        }
    }
}

/// The index and value of the item of `deployments.<dep>.env` that sets `name`, refusing a
/// variable set twice or through `valueFrom`.
fn env_item<'v>(
    gap: &Gap<'v>,
    dep: &str,
    name: &str,
) -> Result<Option<(usize, &'v Value)>, YamlError> {
    let path = format!("deployments.{dep}.env");
    let items = match gap.deployment(dep)?.get("env") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(YamlError::Conflict(format!(
                "{path}{} is not a list of name/value items",
                gap.at_keys(&["deployments", dep, "env"])
            )));
        }
    };
    let mut found = items.iter().enumerate().filter(|(_, i)| i["name"] == name);
    let first = found.next();
    let line = || gap.at_keys(&["deployments", dep, "env"]);
    if found.next().is_some() {
        return Err(YamlError::Conflict(format!(
            "{path}{} sets {name} more than once; leave one, so that the switch means one value",
            line()
        )));
    }
    if let Some((_, item)) = first
        && (item.get("valueFrom").is_some() || !item.get("value").is_none_or(Value::is_string))
    {
        return Err(YamlError::Conflict(format!(
            "{path}{} sets {name} through valueFrom or as a non-string; canary needs a plain \
             `value:` there to switch v1 and v2, or choose another variable",
            line()
        )));
    }
    Ok(first)
}

/// The strings of `deployments.<dep>.command`.
fn command_args(gap: &Gap, dep: &str) -> Result<Vec<String>, YamlError> {
    let path = format!("deployments.{dep}.command");
    match gap.deployment(dep)?.get("command") {
        Some(Value::Array(args)) => Ok(args
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect()),
        _ => Err(YamlError::Conflict(format!(
            "{path} is not a list, so it has no argument to switch; give web a command or \
             switch with an environment variable (--switch env:NAME=V1,V2)"
        ))),
    }
}

fn env_item_lines(dash: usize, name: &str, value: &str, quote: Quote) -> Vec<String> {
    vec![
        line(dash, format!("- name: {}", scalar(name, quote))),
        line(dash + 2, format!("value: {}", scalar(value, quote))),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::{on_text, set_env};
    use super::*;

    fn set_arg(text: &str, other: &str, value: &str) -> Result<String, YamlError> {
        on_text(text, |d| {
            super::super::set_command_arg(d, "web", other, value)
        })
    }

    #[test]
    fn an_env_switch_is_added_replaced_in_place_or_left_as_it_is() {
        let added = set_env("deployments:\n  web:\n    command: [a] # run\n", "v1").unwrap();
        assert_eq!(
            added,
            "deployments:\n  web:\n    command: [a] # run\n    env:\n      - name: IMPL\n        value: v1\n"
        );
        let appended = set_env(
            "deployments:\n  web:\n    env:\n    - name: A\n      value: x # keep\n",
            "v1",
        )
        .unwrap();
        assert_eq!(
            appended,
            "deployments:\n  web:\n    env:\n    - name: A\n      value: x # keep\n    - name: IMPL\n      value: v1\n"
        );
        let flipped = set_env(&appended, "v2").unwrap();
        assert_eq!(flipped, appended.replace("value: v1", "value: v2"));
        assert_eq!(set_env(&flipped, "v2").unwrap(), flipped);
    }

    #[test]
    fn an_env_switch_in_flow_style_or_under_a_merge_key_keeps_every_other_variable() {
        let flow = "deployments:\n  web: {command: [a], env: [{name: IMPL, value: v1}]}\n";
        assert_eq!(set_env(flow, "v2").unwrap(), flow.replace("v1", "v2"));
        assert_eq!(
            set_env("deployments:\n  web: {command: [a]}\n", "v1").unwrap(),
            "deployments:\n  web: {command: [a], env: [{name: IMPL, value: v1}]}\n"
        );
        // A list of its own replaces the one `<<:` gave: it is written out whole.
        let merged = "x: &d\n  env:\n    - {name: A, value: x}\ndeployments:\n  web:\n    <<: *d\n    command: [a]\n";
        let written = set_env(merged, "v1").unwrap();
        let read = Document::parse_one(written.as_str()).unwrap();
        assert_eq!(
            read.value()["deployments"]["web"]["env"],
            json!([{"name": "A", "value": "x"}, {"name": "IMPL", "value": "v1"}]),
            "{written}"
        );
        assert!(written.starts_with(merged), "{written}");
        // Inherited with the switch in it: the list of its own holds the new value.
        let inherited = merged.replace("{name: A, value: x}", "{name: IMPL, value: v1}");
        let flipped = set_env(&inherited, "v2").unwrap();
        let read = Document::parse_one(flipped.as_str()).unwrap();
        assert_eq!(
            read.value()["deployments"]["web"]["env"],
            json!([{"name": "IMPL", "value": "v2"}]),
            "{flipped}"
        );
        assert_eq!(read.value()["x"]["env"][0]["value"], "v1", "{flipped}");
    }

    #[test]
    fn an_env_switch_set_through_value_from_is_a_conflict() {
        let err = set_env(
            "deployments:\n  web:\n    env:\n      - name: IMPL\n        valueFrom: {configMapKeyRef: {name: c, key: k}}\n",
            "v1",
        )
        .unwrap_err();
        assert!(err.to_string().contains("valueFrom"), "{err}");
    }

    #[test]
    fn an_argument_switch_replaces_the_other_value_or_is_appended() {
        let text =
            "deployments:\n  web:\n    command:\n      - start # the program\n      - --impl=v1\n";
        let flipped = set_arg(text, "--impl=v1", "--impl=v2").unwrap();
        // A plain scalar that starts with `-` is quoted, as canary writes every such value.
        assert_eq!(flipped, text.replace("--impl=v1", "\"--impl=v2\""));
        assert_eq!(
            set_arg(&flipped, "--impl=v1", "--impl=v2").unwrap(),
            flipped
        );
        let appended = set_arg(
            "deployments:\n  web:\n    command:\n      - start\n",
            "--impl=v2",
            "--impl=v1",
        )
        .unwrap();
        assert_eq!(
            appended,
            "deployments:\n  web:\n    command:\n      - start\n      - \"--impl=v1\"\n"
        );
        assert!(set_arg("deployments:\n  web:\n    ingress: {}\n", "a", "b").is_err());
    }
}
