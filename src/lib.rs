//! canary: guides a weight-based Istio canary release of one service through its GitOps repo.
//!
//! The workflow (`workflow`) is pure logic; the journal, the repository edits, the prompts and
//! the commands sit around it.

pub mod argocd;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod edits;
pub mod engine;
pub mod error;
mod failpoint;
pub mod finding;
pub mod gate;
pub mod journal;
pub mod lock;
pub mod names;
pub mod notify;
pub mod operator;
pub mod output;
pub mod prompt;
pub mod repo;
pub mod report;
pub mod runner;
pub mod settings;
pub mod source;
pub mod workflow;
pub mod yaml;
