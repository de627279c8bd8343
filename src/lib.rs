//! canary: guides a weight-based Istio canary release of one service through its GitOps repo.

pub mod error;
pub mod journal;
pub mod release;
pub mod workflow;
