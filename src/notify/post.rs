//! One POST, with the HTTP client kube already brings (hyper, rustls).

use std::time::Duration;

use kube::{Client, Config};

/// POST `body` as JSON to `url`; `Err` with why when it did not answer 2xx within `timeout`.
pub fn post(url: &str, body: &[u8], timeout: Duration) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err("not an absolute URL".into());
    };
    // kube's client puts its base URL's path before every request's: the base is the server,
    // the request the path.
    let base: http::Uri = format!("{scheme}://{authority}")
        .parse()
        .map_err(|e| format!("not a URL: {e}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut config = Config::new(base);
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    runtime.block_on(async {
        let client = Client::try_from(config).map_err(|e| format!("cannot make a client: {e}"))?;
        let response = tokio::time::timeout(timeout, client.send(request.map(Into::into)))
            .await
            .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
            .map_err(|e| crate::error::deepest_cause(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered HTTP {}", status.as_u16()))
        }
    })
}
