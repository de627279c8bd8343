//! "Don't forget to apply already existing patches to the v1 deployment as well": every patch
//! file that targets the web Deployment gets a twin beside it that targets web-v1. Twins are
//! named `<patch>_canary_v1.yaml`. Cleanup-1 ("don't forget about potential patches for the
//! canary deployment") finds them again by name, and any other patch of web-v1 by its target.

use serde_json::Value;

use crate::error::{Error, bad_input};
use crate::settings::{Settings, Switch};
use crate::source::Source;
use crate::yaml::{self, Seg};

use super::{GAP_YAML, patch_dirs};

const TWIN_SUFFIX: &str = "_canary_v1.yaml";

/// Refuse a release whose patch directories hold a YAML file that is a symbolic link, at its
/// start rather than at the step that would read it (listing a directory refuses one).
pub fn refuse_links(src: &dyn Source, config: &Settings) -> Result<(), Error> {
    for dir in patch_dirs(config.environments.iter().map(|e| e.name.as_str())) {
        src.yaml_files(&dir)?;
    }
    Ok(())
}

fn is_canary_file(path: &str) -> bool {
    path == GAP_YAML || path.contains("_canary_") || path.ends_with(TWIN_SUFFIX)
}

/// The twin of every patch that targets the web Deployment: (path, content).
pub fn twins(src: &dyn Source, config: &Settings) -> Result<Vec<(String, String)>, Error> {
    let web = config.service_name();
    let web_v1 = format!("{web}-v1");
    let mut twins = Vec::new();
    for (path, text, doc) in web_patches(src, config)? {
        let twin = rename_metadata(&text, &doc, &web, &web_v1).ok_or_else(|| {
            bad_input(format!(
                "{path} patches {web}, but canary cannot find its metadata.name line to \
                     make the twin for {web_v1}; copy the patch for {web_v1} by hand"
            ))
        })?;
        let stem = path.trim_end_matches(".yaml").trim_end_matches(".yml");
        twins.push((format!("{stem}{TWIN_SUFFIX}"), twin));
    }
    Ok(twins)
}

/// Every patch file of the web Deployment (not canary's): its path, its text and its one
/// document. A file that patches web among other documents is refused: canary twins patches
/// that stand in a file of their own.
fn web_patches(src: &dyn Source, config: &Settings) -> Result<Vec<(String, String, Value)>, Error> {
    let web = config.service_name();
    let mut found = Vec::new();
    for dir in patch_dirs(config.environments.iter().map(|e| e.name.as_str())) {
        for path in src.yaml_files(&dir)? {
            if is_canary_file(&path) {
                continue;
            }
            let Some(text) = src.read(&path)? else {
                continue;
            };
            let Ok(mut docs) = yaml::parse_all(&text) else {
                // Not ours to judge: a file gap cannot read fails in gap, not here.
                continue;
            };
            let targets_web = |doc: &Value| {
                doc["kind"] == "Deployment" && doc["metadata"]["name"] == web.as_str()
            };
            match docs.iter().filter(|d| targets_web(d)).count() {
                0 => continue,
                1 if docs.len() == 1 => {}
                _ => {
                    return Err(bad_input(format!(
                        "{path} patches {web} among other documents; canary twins patches that \
                         stand in a file of their own: move that patch to its own file"
                    )));
                }
            }
            let doc = docs.remove(0);
            found.push((path, text, doc));
        }
    }
    Ok(found)
}

/// Refuse a coexistence switch whose variable a patch of web sets: gap applies the patch over
/// gap.yaml's value in that patch's environments, and web-v1's twin of the patch would set it
/// too, so that neither deployment would run what the switch says there.
pub fn refuse_patched_switch(src: &dyn Source, config: &Settings) -> Result<(), Error> {
    let Some(Switch::Env { name, .. }) = &config.switch else {
        return Ok(());
    };
    for (path, text, doc) in web_patches(src, config)? {
        if let Some(at) = env_item_path(&doc, name) {
            let line = yaml::line_of(&text, 0, &at).unwrap_or(1);
            return Err(bad_input(format!(
                "{path}:{line}: this patch of {} sets {name}, the switch's variable: it \
                 overrides gap.yaml's value, and web-v1's twin of the patch would set it too, so \
                 neither deployment would follow the switch; take {name} out of the patch, or \
                 switch with another variable",
                config.service_name()
            )));
        }
    }
    Ok(())
}

/// Where in `value` an `env` list holds an item named `name`.
fn env_item_path(value: &Value, name: &str) -> Option<Vec<Seg>> {
    let within = |seg: Seg, child: &Value| {
        env_item_path(child, name).map(|mut rest| {
            rest.insert(0, seg);
            rest
        })
    };
    match value {
        Value::Object(map) => map.iter().find_map(|(key, child)| {
            let item = (key == "env")
                .then(|| child.as_array()?.iter().position(|i| i["name"] == name))
                .flatten();
            match item {
                Some(i) => Some(vec![Seg::Key(key.clone()), Seg::Index(i)]),
                None => within(Seg::Key(key.clone()), child),
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, child)| within(Seg::Index(i), child)),
        _ => None,
    }
}

/// Every patch of the web-v1 Deployment in the repository, sorted: canary's twins, and any file
/// under `gap/` that patches web-v1 and nothing else (one a person made during the release).
/// A file that patches web-v1 among other documents is refused: taking the file away would
/// take the others with it.
pub fn web_v1_patches(src: &dyn Source, config: &Settings) -> Result<Vec<String>, Error> {
    let web_v1 = format!("{}-v1", config.service_name());
    let mut found = Vec::new();
    for path in src.gap_files()? {
        if path == GAP_YAML {
            continue;
        }
        let docs = match src.read(&path)? {
            Some(text) => yaml::parse_all(&text).unwrap_or_default(),
            None => continue,
        };
        let patches = docs
            .iter()
            .filter(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == web_v1.as_str())
            .count();
        if patches > 0 && patches < docs.len() {
            return Err(bad_input(format!(
                "{path} patches {web_v1} among other documents; cleanup-1 removes {web_v1} and \
                 every patch of it, so move that patch to a file of its own (or take it out), \
                 then run this again"
            )));
        }
        // A twin is canary's even when it no longer parses.
        if patches > 0 || path.ends_with(TWIN_SUFFIX) {
            found.push(path);
        }
    }
    Ok(found)
}

/// The patch with its `metadata.name` changed, and nothing else: the first `name:` line
/// indented under a `metadata:` line is rewritten in place, and the result must parse to the
/// same document with only the name changed.
fn rename_metadata(text: &str, doc: &serde_json::Value, from: &str, to: &str) -> Option<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut metadata_indent = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        match metadata_indent {
            Some(at) if !trimmed.is_empty() && !trimmed.starts_with('#') && indent(line) <= at => {
                metadata_indent = None;
            }
            _ => {}
        }
        if trimmed.starts_with("metadata:") {
            metadata_indent = Some(indent(line));
        } else if metadata_indent.is_some() && trimmed.starts_with("name:") {
            let at = offset + line.find(from)?;
            let twin = format!("{}{to}{}", &text[..at], &text[at + from.len()..]);
            let mut expected = doc.clone();
            expected["metadata"]["name"] = serde_json::Value::String(to.to_string());
            return (yaml::parse_all(&twin).ok()? == [expected]).then_some(twin);
        }
        offset += line.len();
    }
    None
}
