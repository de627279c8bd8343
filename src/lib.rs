//! canary: guides a weight-based Istio canary release of one service through its GitOps repo.

pub mod workflow;
