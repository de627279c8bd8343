//! A build without the `cluster` feature: the gate's HTTP client is kube's, so there is no
//! Prometheus to ask, and the gate says so rather than let a ramp go on unmeasured.

use std::convert::Infallible;

use super::Metrics;
use crate::error::Error;
use crate::release::Settings;

pub struct Prometheus {
    never: Infallible,
}

impl Prometheus {
    pub fn connect(config: &Settings, env: usize) -> Result<Prometheus, Error> {
        Err(Error::Failed(format!(
            "{}'s metric gate reads Prometheus, and this canary was built without the `cluster` \
             feature that it needs; rebuild with default features",
            config.environments[env].name
        )))
    }
}

impl Metrics for Prometheus {
    fn scalar(&self, _: &str) -> Result<Option<f64>, Error> {
        match self.never {}
    }

    fn describe(&self) -> String {
        match self.never {}
    }
}
