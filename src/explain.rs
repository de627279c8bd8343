//! What each phase does, which files it touches, why it comes where it does, and the words of the
//! seed process it implements: the text behind `canary explain`.

use crate::workflow::Phase;

pub struct Explanation {
    pub phase: Phase,
    pub summary: &'static str,
    pub does: &'static str,
    pub files: &'static [&'static str],
    pub why_here: &'static str,
    /// The seed's own words for this phase.
    pub seed: &'static str,
}

pub const PHASES: [Explanation; 9] = [
    Explanation {
        phase: Phase::DeployV1,
        summary: "pin a v1 twin of the old image; label v1 and v2",
        does: "web gets the pod labels version: v2 and canary: enabled. A new deployment web-v1 \
               gets version: v1 and canary: enabled, ingress disabled, the image pinned to the \
               last v1 build by digest, and a copy of web's other settings. Patches that target \
               web get a twin for web-v1. Then deploy to every environment.",
        files: &[
            "gap/gap.yaml",
            "gap/**/<patch>_canary_v1.yaml (twins of web's patches)",
        ],
        why_here: "The existing deployment becomes v2 and keeps the ingress, so no traffic moves \
                   while v1 appears beside it: v1 and v2 are identical releases at this point.",
        seed: "The initial step involves creating a new v1 deployment. The existing deployment \
               will be transitioned to v2. [...] The image version for v1 should point to the \
               last v1 commit. Additionally, please note that we only enable ingress for v2. [...] \
               Don't forget to apply already existing patches to the v1 deployment as well.",
    },
    Explanation {
        phase: Phase::AddRouting,
        summary: "subsets and v1's AuthorizationPolicy; then the routes and the Service patch",
        does: "Round one: the DestinationRule with subsets v1 and v2 (selected by the version \
               label), and web-v1's authorizationPolicy (web's rules plus the ingress \
               controller's); deploy everywhere. Round two: a VirtualService patch per \
               environment (v1 weight 0, v2 weight 100) and the Service selector patch that \
               matches both deployments; deploy everywhere.",
        files: &[
            "gap/gap_canary_destination_rule.yaml",
            "gap/gap.yaml (authorizationPolicy of web-v1)",
            "gap/ENV/gap_patch_canary_virtual_service.yaml",
            "gap/gap_patch_canary_service.yaml",
        ],
        why_here: "A VirtualService that names a subset no DestinationRule defines answers 503, \
                   so the subsets are deployed everywhere before any route names them (the seed \
                   does both at once; canary keeps them apart). An ALLOW AuthorizationPolicy \
                   denies what it does not name, so v1 is allowed before it can get traffic.",
        seed: "Add a new the DestinationRule and patch the VirtualService [...] Initially, 100% \
               of the traffic is routed to v2 [...] Subsequently, patch the existing service to \
               match both of the deployments. [...] In addition, the authorization policy for v1 \
               also needs to be patched to allow traffic from ingress to the pods.",
    },
    Explanation {
        phase: Phase::RouteToV1,
        summary: "100% of traffic to v1",
        does: "First the operator confirms that the deployed web-v1 runs the pinned image, or \
               pins another one, which is deployed before the check is asked again. Then every \
               VirtualService patch routes v1 100, v2 0; deploy everywhere. If the pinned v1 \
               misbehaves, `canary abort` routes everything back to v2 100, as add-routing left \
               it; once that is deployed, the release is back at the image check.",
        files: &["gap/ENV/gap_patch_canary_virtual_service.yaml"],
        why_here: "v1 can take the traffic only once it is deployed, routed and allowed \
                   everywhere; v2 must carry none before the new code lands in it.",
        seed: "Ensure that the v1 version is running the correct image. If not, perform one \
               final update. Configure the weights to route 100% of the traffic to v1 by editing \
               the weights in the VirtualService patch files.",
    },
    Explanation {
        phase: Phase::DeployV2,
        summary: "land the v2 code; test it on staging",
        does: "The operator deploys the v2 code to every environment (no production traffic \
               reaches it) and confirms that v2 was tested on staging; `canary weight SERVICE \
               staging PERCENT` moves staging's traffic for the test.",
        files: &["none (staging's VirtualService patch when `canary weight` is used)"],
        why_here: "Production traffic may reach v2 only after v2 runs in production and was \
                   tested on staging.",
        seed: "Implement the necessary changes to the codebase and deploy it to production. \
               Since no production traffic is currently directed to the v2 routes, this is safe \
               to do. You can test the v2 (by changing the weights) on staging.",
    },
    Explanation {
        phase: Phase::Ramp,
        summary: "production's v2 weight up the schedule to 100%",
        does: "For each weight of the schedule (1, 5, 10, 25, 50, 100 by default): edit \
               production's VirtualService patch, deploy, observe, confirm. Then every other \
               environment goes to v2 100. `canary abort` sends everything back to v1 at any \
               point; `canary weight` sets a weight by hand, which is deployed and observed \
               before production's weight goes up again.",
        files: &["gap/ENV/gap_patch_canary_virtual_service.yaml"],
        why_here: "Only now is v2 deployed everywhere and tested; small steps first limit what a \
                   bad v2 can hurt.",
        seed: "Upon completion of testing, start increasing the traffic to production v2. [...] \
               Progressively increase the weight until 100% traffic is directed to the v2 routes.",
    },
    Explanation {
        phase: Phase::Cleanup1,
        summary: "remove v1: its route, the Service patch, web-v1 and its patches",
        does: "The v1 destination leaves every VirtualService patch, the Service patch goes, \
               web-v1 and every patch of it go (its twins, and any patch of web-v1 made by \
               hand). Deploy everywhere; on production, deleted resources must be pruned \
               (Argo CD's Prune) or deleted by hand.",
        files: &[
            "gap/ENV/gap_patch_canary_virtual_service.yaml",
            "gap/gap_patch_canary_service.yaml",
            "gap/gap.yaml",
        ],
        why_here: "v1 goes only when no environment sends it traffic, in the files and deployed.",
        seed: "Remove the destination to the v1 subset of the service from the \
               gap/(staging|production)/gap_patch_canary_virtual_service.yaml files. [...] Then, \
               remove the canary patch for the Service (gap/gap_patch_canary_service.yaml) and \
               remove the canary deployment from the gap.yaml files.",
    },
    Explanation {
        phase: Phase::Cleanup2,
        summary: "remove the VirtualService patches",
        does: "The VirtualService patch files go; deploy everywhere.",
        files: &["gap/ENV/gap_patch_canary_virtual_service.yaml"],
        why_here: "Once deployed, nothing refers to the DestinationRule's subsets any more.",
        seed: "Remove the VirtualService patch [...] Deploy to staging and production to make \
               sure nothing else refers to the subsets defined in the DestinationRule.",
    },
    Explanation {
        phase: Phase::Cleanup3,
        summary: "remove the DestinationRule",
        does: "The DestinationRule goes (whichever of the seed's two spellings exists); deploy \
               everywhere.",
        files: &["gap/gap_canary_destination_rule.yaml"],
        why_here: "Last, because a route that names a missing subset answers 503: the routes \
                   that named its subsets went in cleanup-2.",
        seed: "Remove the DestinationRule: gap/gap_canary_destinationrule.yaml. Deploy to \
               staging and production.",
    },
    Explanation {
        phase: Phase::Done,
        summary: "the release is complete",
        does: "Nothing is left: gap.yaml is the original plus the two labels on web.",
        files: &[],
        why_here: "Every cleanup phase is deployed everywhere.",
        seed: "Congrats, you are done with the cleanup and the canary release!",
    },
];

pub fn of(phase: Phase) -> &'static Explanation {
    PHASES
        .iter()
        .find(|e| e.phase == phase)
        .expect("every phase is explained")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_is_explained_once_in_order() {
        let phases: Vec<Phase> = PHASES.iter().map(|e| e.phase).collect();
        assert_eq!(phases, Phase::ALL.to_vec());
    }
}
