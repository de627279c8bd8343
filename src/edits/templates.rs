//! The files canary creates, laid out as the seed shows them. Every value put into them was
//! validated (DNS labels and names, digests), so none can inject YAML; one that a YAML reader
//! would type (a service named `yes`, a host `1.5`) is quoted.

use crate::settings::{Environment, Settings};
use crate::yaml::emit::{Quote, scalar};

/// A name or host as the files write it: plain, unless a YAML reader would read another type.
fn text(s: &str) -> String {
    scalar(s, Quote::Double)
}

/// `gap/gap_canary_destination_rule.yaml`: subsets v1 and v2, selected by the version label.
pub fn destination_rule(path: &str, config: &Settings) -> String {
    let subset = |name: &str| {
        format!(
            "    - name: {name}\n      labels:\n        version: {name} # this matches the labels \
             we added as podLabels in gap.yaml\n"
        )
    };
    format!(
        "# {path}\n---\napiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n\
         metadata:\n  name: {name}\nspec:\n  host: {host}\n  subsets:\n{v1}{v2}",
        name = text(&config.destination_rule_name()),
        host = text(&config.cluster_host()),
        v1 = subset("v1"),
        v2 = subset("v2"),
    )
}

/// `gap/ENV/gap_patch_canary_virtual_service.yaml`: the route split between the two subsets.
pub fn virtual_service_patch(
    path: &str,
    config: &Settings,
    env: &Environment,
    v2_weight: u8,
) -> String {
    let host = text(&config.cluster_host());
    let hosts: String = env
        .hosts
        .iter()
        .map(|h| text(h))
        .chain(std::iter::once(host.clone()))
        .map(|h| format!("    - {h}\n"))
        .collect();
    let destination = |subset: &str, weight: u8| {
        format!(
            "        - destination:\n            host: {host}\n            subset: {subset} # \
             this refers to the names in the destination rule\n          weight: {weight}\n"
        )
    };
    format!(
        "# {path}\n---\napiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n\
         metadata:\n  name: {name}\nspec:\n  hosts:\n{hosts}  http:\n    - route:\n{v1}{v2}",
        name = text(&config.virtual_service_name()),
        v1 = destination("v1", 100 - v2_weight),
        v2 = destination("v2", v2_weight),
    )
}

/// The v2 weight of a VirtualService patch that is byte for byte as canary writes it, without
/// parsing YAML: `status` and every step read two of them, and most are as canary wrote them. `None` for a file a person edited or
/// reformatted, which the caller parses instead.
pub fn v2_weight_if_as_written(
    text: &str,
    path: &str,
    config: &Settings,
    env: &Environment,
) -> Option<u8> {
    let (_, last) = text.strip_suffix('\n')?.rsplit_once("weight: ")?;
    let v2 = last.parse().ok().filter(|w| *w <= 100)?;
    (virtual_service_patch(path, config, env, v2) == text).then_some(v2)
}

/// `gap/gap_patch_canary_service.yaml`: the Service selects every canary pod of the service,
/// whatever its deployment (`app: null` removes gap's per-deployment label from the selector).
pub fn service_patch(path: &str, config: &Settings) -> String {
    format!(
        "# {path}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  \
         selector:\n    app: # this removes the app label\n    canary: enabled\n    \
         applicationName: {service}\n",
        name = text(&config.service_name()),
        service = text(&config.service),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn config() -> Settings {
        Settings::example("my-service", "staging")
    }

    #[test]
    fn the_weight_read_without_parsing_is_the_parsed_one() {
        let config = config();
        let env = &config.environments[0];
        let path = "gap/staging/gap_patch_canary_virtual_service.yaml";
        for v2 in 0..=100 {
            let text = virtual_service_patch(path, &config, env, v2);
            let parsed = crate::edits::virtual_service::route_weights(
                &yaml::Document::parse(text.as_str()).unwrap(),
            )
            .unwrap();
            assert_eq!(
                parsed,
                [
                    ("v1".to_string(), i64::from(100 - v2)),
                    ("v2".to_string(), i64::from(v2))
                ]
            );
            assert_eq!(v2_weight_if_as_written(&text, path, &config, env), Some(v2));
        }
    }

    #[test]
    fn a_file_a_person_touched_is_left_to_the_parser() {
        let config = config();
        let env = &config.environments[0];
        let path = "gap/staging/gap_patch_canary_virtual_service.yaml";
        let text = virtual_service_patch(path, &config, env, 30);
        let edited = [
            text.replace("weight: 70", "weight: 60"),
            text.replace("weight: 30\n", "weight: 30 # by hand\n"),
            format!("{text}# a note\n"),
            text.replace("\n", "\r\n"),
            text.trim_end().to_string(),
        ];
        for other in edited {
            assert_eq!(
                v2_weight_if_as_written(&other, path, &config, env),
                None,
                "{other}"
            );
        }
    }
}
