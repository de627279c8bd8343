//! A build without the `cluster` feature: the gate's HTTP client is kube's, so there is no
//! Prometheus to ask, and the gate says so rather than let a ramp go on unmeasured.

use std::convert::Infallible;

use super::{Endpoint, Metrics};
use crate::error::Error;

pub struct Prometheus {
    never: Infallible,
}

impl Prometheus {
    pub fn connect(
        _service: &str,
        env: &str,
        _source: Option<&Endpoint>,
        _context: Option<&str>,
    ) -> Result<Prometheus, Error> {
        Err(Error::Failed(format!(
            "{env}'s metric gate reads Prometheus, and this canary was built without the `cluster` \
             feature that it needs; rebuild with default features"
        )))
    }
}

impl Metrics for Prometheus {
    fn scalar(&self, _: &str) -> Result<Option<f64>, Error> {
        match self.never {}
    }

    fn series(&self, _: &str, _: &str) -> Result<Vec<(String, f64)>, Error> {
        match self.never {}
    }

    fn describe(&self) -> String {
        match self.never {}
    }
}
