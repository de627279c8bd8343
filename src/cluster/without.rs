//! A build without the `cluster` feature: a session never connects, and says why.

use std::convert::Infallible;

use serde_json::Value;

use super::argocd::AppRef;
use super::{ClusterError, Expected, Problem, Snapshot, Target};

pub struct Session {
    never: Infallible,
}

impl Session {
    pub fn connect(target: &Target) -> Result<Session, ClusterError> {
        Err(target.error(Problem::NotCompiled))
    }

    pub fn target(&self) -> &Target {
        match self.never {}
    }

    pub fn check_namespace(&self) -> Result<(), ClusterError> {
        match self.never {}
    }

    pub fn snapshot(&self, _: &Expected) -> Result<Snapshot, ClusterError> {
        match self.never {}
    }

    pub fn wait(
        &self,
        _: &Expected,
        _: std::time::Duration,
        _: impl FnMut(&Snapshot) -> bool,
    ) -> Result<bool, ClusterError> {
        match self.never {}
    }

    pub fn virtual_service(&self, _: &str) -> Result<Value, ClusterError> {
        match self.never {}
    }

    pub fn patch_weights(
        &self,
        _: &str,
        _: &[(&str, u8)],
    ) -> Result<Vec<(String, i64)>, ClusterError> {
        match self.never {}
    }

    pub fn application(&self, _: &AppRef) -> Result<Option<Value>, ClusterError> {
        match self.never {}
    }

    pub fn lease(&self, _: &str) -> Result<Option<super::lease::Lease>, ClusterError> {
        match self.never {}
    }

    pub fn create_lease(&self, _: &super::lease::Lease) -> Result<bool, ClusterError> {
        match self.never {}
    }

    pub fn replace_lease(&self, _: &super::lease::Lease) -> Result<bool, ClusterError> {
        match self.never {}
    }
}
