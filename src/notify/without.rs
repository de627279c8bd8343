//! A canary built without the cluster feature has no HTTP client: `canary run` refuses a
//! webhook before it starts (see [`super::AVAILABLE`]), so this is never reached there.

use std::time::Duration;

pub fn post(_url: &str, _body: &[u8], _timeout: Duration) -> Result<(), String> {
    Err("this canary was built without the cluster feature, which posts webhooks".into())
}
