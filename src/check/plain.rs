//! Strings that other YAML readers read as something else: a plain `017`, `1:20` or
//! `2001-12-14` where web or web-v1 means a string (an env value such as the coexistence
//! switch, a label, the image, a command argument). canary reads the text; Helm's reader and
//! other YAML 1.1 readers read a number or a date, and deploy another value (`017` is 15).

use serde_json::Value;

use super::{Code, Findings, Loaded, Object};
use crate::settings::{WEB, WEB_V1};
use crate::yaml::readers::read_as_non_string;
use crate::yaml::{Kind, Node, Seg};

pub(super) fn ambiguous_scalars(l: &Loaded, out: &mut Findings) {
    let Some(gap) = &l.gap else { return };
    let Some(deployments) = gap.doc.root().and_then(|r| r.get("deployments")) else {
        return;
    };
    for dep in [WEB, WEB_V1] {
        let Some(deployment) = deployments.value.get(dep) else {
            continue;
        };
        let at = |keys: &[Seg]| {
            let mut path = vec![Seg::Key("deployments".into()), Seg::Key(dep.into())];
            path.extend_from_slice(keys);
            path
        };
        let d = &deployment.value;
        let mut strings: Vec<(Vec<Seg>, &Node)> = Vec::new();
        let items = |key: &str| d.get(key).and_then(|e| e.value.items()).unwrap_or_default();
        for (i, item) in items("env").iter().enumerate() {
            if let Some(value) = item.get("value") {
                let path = at(&[
                    Seg::Key("env".into()),
                    Seg::Index(i),
                    Seg::Key("value".into()),
                ]);
                strings.push((path, &value.value));
            }
        }
        for (i, arg) in items("command").iter().enumerate() {
            strings.push((at(&[Seg::Key("command".into()), Seg::Index(i)]), arg));
        }
        for map in ["podLabels", "image"] {
            let entries = d
                .get(map)
                .and_then(|e| e.value.entries())
                .unwrap_or_default();
            for e in entries {
                let path = at(&[Seg::Key(map.into()), Seg::Key(e.key.clone())]);
                strings.push((path, &e.value));
            }
        }
        for (path, node) in strings {
            check(gap, &path, node, out);
        }
    }
}

/// A plain scalar that canary reads as a string and another reader would not.
fn check(gap: &Object, path: &[Seg], node: &Node, out: &mut Findings) {
    let text = &gap.text()[node.start..node.end];
    let plain = matches!(node.kind, Kind::Scalar { block: false, .. })
        && !node.has_props()
        && !text.starts_with(['\'', '"']);
    if !plain || !read_as_non_string(text) || !is_string(gap.value(), path) {
        return;
    }
    out.at(
        Code::AmbiguousScalar,
        gap,
        path,
        format!(
            "{} is {text} unquoted: canary reads the string {text:?}, but a YAML 1.1 reader \
             (Helm's, PyYAML) or a YAML 1.2 one reads a number, a boolean, null or a date and \
             deploys another value; quote it ({text:?})",
            crate::yaml::path_text(path)
        ),
    );
}

fn is_string(value: &Value, path: &[Seg]) -> bool {
    path.iter()
        .try_fold(value, |v, seg| match seg {
            Seg::Key(k) => v.get(k),
            Seg::Index(i) => v.get(i),
        })
        .is_some_and(Value::is_string)
}
