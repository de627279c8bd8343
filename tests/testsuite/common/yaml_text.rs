//! canary's YAML edits on text, for the tests that generate and mutate files: read the text,
//! edit the document, give the text back (the input itself when the edit changes nothing).

use canary::edits::{gap_yaml, virtual_service};
use canary::yaml::{Document, YamlError};

fn on_text(
    text: &str,
    edit: impl FnOnce(&Document) -> Result<Option<Document>, YamlError>,
) -> Result<String, YamlError> {
    let doc = Document::parse(text)?;
    Ok(edit(&doc)?.map_or_else(|| text.to_string(), Document::into_text))
}

pub fn ensure_pod_labels(
    text: &str,
    dep: &str,
    labels: &[(&str, &str)],
) -> Result<String, YamlError> {
    on_text(text, |d| gap_yaml::ensure_pod_labels(d, dep, labels))
}

pub fn ensure_twin_deployment(
    text: &str,
    dep: &str,
    twin: &str,
    labels: &[(&str, &str)],
    repository: &str,
    tag: &str,
) -> Result<String, YamlError> {
    on_text(text, |d| {
        gap_yaml::ensure_twin_deployment(d, dep, twin, labels, repository, tag)
    })
}

pub fn ensure_ingress_authorization(
    text: &str,
    dep: &str,
    twin: &str,
    namespace: &str,
    account: &str,
) -> Result<String, YamlError> {
    on_text(text, |d| {
        gap_yaml::ensure_ingress_authorization(d, dep, twin, namespace, account)
    })
}

pub fn set_twin_image(
    text: &str,
    twin: &str,
    repository: &str,
    tag: &str,
) -> Result<String, YamlError> {
    on_text(text, |d| gap_yaml::set_twin_image(d, twin, repository, tag))
}

pub fn remove_deployment(text: &str, dep: &str) -> Result<String, YamlError> {
    on_text(text, |d| gap_yaml::remove_deployment(d, dep))
}

pub fn set_route_weights(text: &str, weights: &[(&str, u8)]) -> Result<String, YamlError> {
    on_text(text, |d| virtual_service::set_route_weights(d, weights))
}

pub fn remove_subset_destination(text: &str, subset: &str) -> Result<String, YamlError> {
    on_text(text, |d| {
        virtual_service::remove_subset_destination(d, subset)
    })
}

pub fn route_weights(text: &str) -> Result<Vec<(String, i64)>, YamlError> {
    virtual_service::route_weights(&Document::parse(text)?)
}
