//! Patches whose target is gone. gap names deployment `D` of service `S` `S-D`; a Deployment
//! patch under `gap/` for a name that gap.yaml does not define (web-v1's, made by hand during
//! the release and left after cleanup-1) has nothing left to patch, and a render that applies
//! patches by their target refuses it.

use super::{Code, Findings, Loaded, Scope, Source};
use crate::edits::GAP_YAML;
use crate::error::Error;
use crate::yaml::{self, Seg};

pub(super) fn targets(
    src: &dyn Source,
    l: &Loaded,
    scope: &Scope,
    out: &mut Findings,
) -> Result<(), Error> {
    // Without a readable gap.yaml there is nothing to hold the patches against.
    let Some(deployments) = l
        .gap
        .as_ref()
        .and_then(|g| g.value()["deployments"].as_object())
    else {
        return Ok(());
    };
    let prefix = format!("{}-", scope.service);
    for path in &l.gap_files {
        // canary's own files, read as the one object of their kind, patch no Deployment.
        if path == GAP_YAML || l.is_canary_object(path) {
            continue;
        }
        // The patch directories' files were read and parsed by the load; the rest are read here.
        let read;
        let (text, docs) = match l.patches.iter().find(|p| p.path == *path) {
            Some(patch) => (&patch.text, &patch.docs),
            None => {
                let Some(text) = src.read(path)? else {
                    continue;
                };
                // A file that does not parse is not canary's to judge here.
                let Ok(docs) = yaml::parse_all(&text) else {
                    continue;
                };
                read = (text, docs);
                (&read.0, &read.1)
            }
        };
        for (i, doc) in docs.iter().enumerate() {
            let Some(name) = doc["metadata"]["name"].as_str() else {
                continue;
            };
            let Some(deployment) = name.strip_prefix(&prefix) else {
                continue;
            };
            if doc["kind"] != "Deployment" || deployments.contains_key(deployment) {
                continue;
            }
            let line = yaml::line_of(
                text,
                i,
                &[Seg::Key("metadata".into()), Seg::Key("name".into())],
            );
            out.add(
                Code::PatchTargetGone,
                path,
                line,
                format!(
                    "patches the Deployment {name}, but {GAP_YAML} defines no deployment \
                     {deployment}: the patch has no target; remove it"
                ),
            );
        }
    }
    Ok(())
}
