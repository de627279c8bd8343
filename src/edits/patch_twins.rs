//! "Don't forget to apply already existing patches to the v1 deployment as well": every patch
//! file that targets the web Deployment gets a twin beside it that targets web-v1. Twins are
//! named `<patch>_canary_v1.yaml`, which is how cleanup-1 finds them again.

use crate::error::{Error, bad_input};
use crate::release::ReleaseConfig;
use crate::repo::{Repo, symbolic_link};
use crate::yaml;

use super::GAP_YAML;

const TWIN_SUFFIX: &str = "_canary_v1.yaml";

/// The directories gap reads patches from: `gap/` and each environment's.
fn patch_dirs(config: &ReleaseConfig) -> Vec<String> {
    std::iter::once("gap".to_string())
        .chain(
            config
                .environments
                .iter()
                .map(|e| format!("gap/{}", e.name)),
        )
        .collect()
}

/// Repo-relative YAML files directly in `dir`, sorted. One that is a symbolic link is
/// refused, not skipped: skipped, a patch would go without its twin, or a twin survive cleanup.
fn yaml_files(repo: &Repo, dir: &str) -> Result<Vec<String>, Error> {
    let path = repo.resolve(dir)?;
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(bad_input(format!("{dir}: {e}"))),
    };
    let mut files = Vec::new();
    for entry in entries.filter_map(|entry| entry.ok()) {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let rel = format!("{dir}/{name}");
        match entry.file_type() {
            Ok(kind) if kind.is_symlink() => return Err(symbolic_link(&rel)),
            Ok(kind) if kind.is_file() => files.push(rel),
            _ => {}
        }
    }
    files.sort();
    Ok(files)
}

/// Refuse a release whose patch directories hold a YAML file that is a symbolic link, at its
/// start rather than at the step that would read it.
pub fn refuse_links(repo: &Repo, config: &ReleaseConfig) -> Result<(), Error> {
    for dir in patch_dirs(config) {
        yaml_files(repo, &dir)?;
    }
    Ok(())
}

fn is_canary_file(path: &str) -> bool {
    path == GAP_YAML || path.contains("_canary_") || path.ends_with(TWIN_SUFFIX)
}

/// The twin of every patch that targets the web Deployment: (path, content).
pub fn twins(repo: &Repo, config: &ReleaseConfig) -> anyhow::Result<Vec<(String, String)>> {
    let web = config.service_name();
    let web_v1 = format!("{web}-v1");
    let mut twins = Vec::new();
    for dir in patch_dirs(config) {
        for path in yaml_files(repo, &dir)? {
            if is_canary_file(&path) {
                continue;
            }
            let Some(text) = repo.read(&path)? else {
                continue;
            };
            let Ok(docs) = yaml::parse_all(&text) else {
                // Not ours to judge: a file gap cannot read fails in gap, not here.
                continue;
            };
            let targets_web = |doc: &serde_json::Value| {
                doc["kind"] == "Deployment" && doc["metadata"]["name"] == web.as_str()
            };
            match docs.iter().filter(|d| targets_web(d)).count() {
                0 => continue,
                1 if docs.len() == 1 => {}
                _ => {
                    return Err(bad_input(format!(
                        "{path} patches {web} among other documents; canary twins patches that \
                         stand in a file of their own: move that patch to its own file"
                    ))
                    .into());
                }
            }
            let twin = rename_metadata(&text, &docs[0], &web, &web_v1).ok_or_else(|| {
                bad_input(format!(
                    "{path} patches {web}, but canary cannot find its metadata.name line to \
                         make the twin for {web_v1}; copy the patch for {web_v1} by hand"
                ))
            })?;
            let stem = path.trim_end_matches(".yaml").trim_end_matches(".yml");
            twins.push((format!("{stem}{TWIN_SUFFIX}"), twin));
        }
    }
    Ok(twins)
}

/// The twins present in the repository.
pub fn existing_twins(repo: &Repo, config: &ReleaseConfig) -> Result<Vec<String>, Error> {
    let mut found = Vec::new();
    for dir in patch_dirs(config) {
        found.extend(
            yaml_files(repo, &dir)?
                .into_iter()
                .filter(|p| p.ends_with(TWIN_SUFFIX)),
        );
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
