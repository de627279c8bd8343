//! The integration tests, as one test binary (the layout of cargo's own `tests/testsuite`):
//! `common/` is compiled once, and not once per file, and a helper that no test uses is
//! a warning rather than hidden under `#![allow(dead_code)]`.
//!
//! One module per subject, as the separate test files were. Run one with a filter, e.g.
//! `cargo test --test testsuite walk::`. `without_cluster` exists only in a build without the
//! `cluster` feature, where `.ci/run` runs it:
//! `cargo test --no-default-features --test testsuite without_cluster::`.

mod common;

mod argocd;
mod bad_input;
mod cancel;
mod check;
mod cleanup;
mod cluster;
mod commits;
mod compare_and_swap;
mod conflicts;
mod corpus;
mod executable;
mod fuzz_yaml;
mod gate;
mod gate_hostile;
mod git_as_it_is;
mod guide;
mod journal;
mod messages;
mod publish;
mod race;
mod ramp_by_hand;
mod real_cluster;
mod recovery;
mod refusals;
mod run;
mod settings;
mod snapshots;
mod terminal;
mod walk;
mod ways_back;
mod without_cluster;
mod yaml_props;
