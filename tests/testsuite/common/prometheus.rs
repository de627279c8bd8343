//! A real Prometheus (Debian's `prometheus` package) scraping a small exporter that the test
//! process serves on loopback: Istio's standard series, as the destination's sidecar reports
//! them, for the scenarios of `gate.rs`, each in a namespace of its own.
//!
//! The exporter's counters grow with time at each scenario's rates, so that any range the
//! gate reads holds the scenario's proportions; Prometheus scrapes it every second. Decoys
//! that a gate must not read are served beside them: the source sidecar's view
//! (`reporter="source"`) and another namespace, both failing half their requests.
//!
//! One server for the whole test binary, started on first use on a free loopback port with a
//! temporary storage directory; a watchdog shell ends it when the test process ends.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Istio's default request duration buckets, in milliseconds.
const BUCKETS: [f64; 14] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

/// How one version of the service behaves: requests a second, the share answered 5xx, and
/// where its slowest 2% of requests fall (the upper bound of their bucket). The other 98%
/// take at most 25 ms; histogram_quantile then puts the p99 half-way into the slow bucket:
/// 75 ms for 100, 175 ms for 250, 750 ms for 1000.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    pub rps: f64,
    pub error_share: f64,
    pub slow_le: f64,
}

// Enough requests in a 6 s window for the gate to show a healthy v2 within its margin of v1
// (28,000: 0.1% errors, at most 0.14% at 95%).
pub const HEALTHY: Behaviour = Behaviour {
    rps: 4000.0,
    error_share: 0.001,
    slow_le: 100.0,
};

/// A scenario: how v1 and v2 of `my-service` behave in `namespace`.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub namespace: &'static str,
    pub v1: Behaviour,
    pub v2: Behaviour,
}

struct Exporter {
    started: Instant,
    scenarios: Vec<Scenario>,
}

pub struct Server {
    pub url: String,
    /// Its config, data and log; held so that they outlive the server.
    _storage: tempfile::TempDir,
    /// The watchdog shell; it reaps Prometheus, and init reaps it.
    _watchdog: std::process::Child,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();
static SCENARIOS: Mutex<Vec<Scenario>> = Mutex::new(Vec::new());

/// Whether Prometheus is installed; without it a test skips with a note, unless
/// `CANARY_REQUIRE_PROMETHEUS=1` says it must run (CI), when it fails.
pub fn installed() -> bool {
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CANARY_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
            "CANARY_REQUIRE_PROMETHEUS=1 and no `prometheus` on PATH (apt-get install prometheus)"
        );
        eprintln!("note: skipped, `prometheus` is not installed (apt-get install prometheus)");
    }
    found
}

/// The shared server, serving every scenario ever added; `None` without Prometheus.
pub fn server(scenarios: &[Scenario]) -> Option<&'static Server> {
    SCENARIOS.lock().unwrap().extend_from_slice(scenarios);
    SERVER.get_or_init(|| installed().then(start)).as_ref()
}

fn start() -> Server {
    let exporter = TcpListener::bind("127.0.0.1:0").unwrap();
    let exporter_addr = exporter.local_addr().unwrap();
    let started = Instant::now();
    std::thread::spawn(move || {
        for stream in exporter.incoming().flatten() {
            let scenarios = SCENARIOS.lock().unwrap().clone();
            let _ = serve(stream, &Exporter { started, scenarios });
        }
    });
    let storage = tempfile::Builder::new()
        .prefix("canary-prometheus-")
        .tempdir()
        .unwrap();
    let config = storage.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: istio-mesh\n    static_configs:\n      - targets: ['{exporter_addr}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let data = storage.path().join("data");
    // The watchdog ends Prometheus once this process is gone, however it ends.
    let script = format!(
        "prometheus --config.file={} --storage.tsdb.path={} --web.listen-address=127.0.0.1:{port} \
         >{} 2>&1 & p=$!; while kill -0 {} 2>/dev/null && kill -0 $p 2>/dev/null; do sleep 1; \
         done; kill $p 2>/dev/null",
        config.display(),
        data.display(),
        storage.path().join("prometheus.log").display(),
        std::process::id()
    );
    let watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting prometheus");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Ready, and the exporter scraped at least twice: a rate has two samples to go on.
    while !get(
        port,
        "/api/v1/query?query=count_over_time(up%5B1m%5D)%20%3E%3D%202",
    )
    .is_some_and(|body| body.contains("\"value\""))
    {
        assert!(
            Instant::now() < deadline,
            "prometheus did not start; its log:\n{}",
            std::fs::read_to_string(storage.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    Server {
        url,
        _storage: storage,
        _watchdog: watchdog,
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET to the server on loopback; the body of a 200 answer.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

fn serve(mut stream: TcpStream, exporter: &Exporter) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let body = exporter.exposition();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

impl Exporter {
    /// Every series as of now, in Prometheus' text format.
    fn exposition(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let mut out = String::from(
            "# TYPE istio_requests_total counter\n# TYPE istio_request_duration_milliseconds histogram\n",
        );
        let decoy = Behaviour {
            rps: 400.0,
            error_share: 0.5,
            slow_le: 10000.0,
        };
        for scenario in &self.scenarios {
            for (version, workload, behaviour) in [
                ("v1", "my-service-web-v1", scenario.v1),
                ("v2", "my-service-web", scenario.v2),
            ] {
                let labels = |reporter: &str, namespace: &str| {
                    format!(
                        "reporter=\"{reporter}\",destination_service_namespace=\"{namespace}\",\
                         destination_service_name=\"my-service-web\",destination_workload=\"{workload}\",\
                         destination_version=\"{version}\""
                    )
                };
                series(
                    &mut out,
                    &labels("destination", scenario.namespace),
                    behaviour,
                    secs,
                );
                series(&mut out, &labels("source", scenario.namespace), decoy, secs);
                let elsewhere = format!("{}-elsewhere", scenario.namespace);
                series(&mut out, &labels("destination", &elsewhere), decoy, secs);
            }
        }
        out
    }
}

/// One version's counters after `secs` of behaving so.
fn series(out: &mut String, labels: &str, b: Behaviour, secs: f64) {
    let total = b.rps * secs;
    let errors = total * b.error_share;
    let _ = writeln!(
        out,
        "istio_requests_total{{{labels},response_code=\"200\"}} {}",
        total - errors
    );
    let _ = writeln!(
        out,
        "istio_requests_total{{{labels},response_code=\"503\"}} {errors}"
    );
    for le in BUCKETS {
        let below = if le >= b.slow_le {
            total
        } else if le >= 25.0 {
            total * 0.98
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "istio_request_duration_milliseconds_bucket{{{labels},le=\"{le}\"}} {below}"
        );
    }
    let _ = writeln!(
        out,
        "istio_request_duration_milliseconds_bucket{{{labels},le=\"+Inf\"}} {total}"
    );
    let _ = writeln!(
        out,
        "istio_request_duration_milliseconds_sum{{{labels}}} {}",
        total * 30.0
    );
    let _ = writeln!(
        out,
        "istio_request_duration_milliseconds_count{{{labels}}} {total}"
    );
}
