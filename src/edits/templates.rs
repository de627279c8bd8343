//! The files canary creates, laid out as the seed shows them. Every value put into them was
//! validated (DNS labels and names, digests), so none can inject YAML.

use crate::release::{Environment, ReleaseConfig};

/// `gap/gap_canary_destination_rule.yaml`: subsets v1 and v2, selected by the version label.
pub fn destination_rule(path: &str, config: &ReleaseConfig) -> String {
    let subset = |name: &str| {
        format!(
            "    - name: {name}\n      labels:\n        version: {name} # this matches the labels \
             we added as podLabels in gap.yaml\n"
        )
    };
    format!(
        "# {path}\n---\napiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n\
         metadata:\n  name: {name}\nspec:\n  host: {host}\n  subsets:\n{v1}{v2}",
        name = config.destination_rule_name(),
        host = config.cluster_host(),
        v1 = subset("v1"),
        v2 = subset("v2"),
    )
}

/// `gap/ENV/gap_patch_canary_virtual_service.yaml`: the route split between the two subsets.
pub fn virtual_service_patch(
    path: &str,
    config: &ReleaseConfig,
    env: &Environment,
    v2_weight: u8,
) -> String {
    let host = config.cluster_host();
    let hosts: String = env
        .hosts
        .iter()
        .chain(std::iter::once(&host))
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
        name = config.virtual_service_name(),
        v1 = destination("v1", 100 - v2_weight),
        v2 = destination("v2", v2_weight),
    )
}

/// `gap/gap_patch_canary_service.yaml`: the Service selects every canary pod of the service,
/// whatever its deployment (`app: null` removes gap's per-deployment label from the selector).
pub fn service_patch(path: &str, config: &ReleaseConfig) -> String {
    format!(
        "# {path}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  \
         selector:\n    app: # this removes the app label\n    canary: enabled\n    \
         applicationName: {service}\n",
        name = config.service_name(),
        service = config.service,
    )
}
