//! A Prometheus that misbehaves on purpose: an HTTP server on loopback that answers the gate's
//! queries as the test sets it to (numbers Prometheus really writes, such as `NaN` and `+Inf`,
//! an error full of terminal escapes, a body that never ends, a byte every few seconds).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Every query answered: v1's numbers healthy, v2's as given, spelled as Prometheus spells
    /// them (`bucket` is the count of its le="100" latency bucket); a team check's query
    /// answers 1.
    Values {
        requests: &'static str,
        errors: &'static str,
        bucket: &'static str,
    },
    /// Every query answered with an empty vector: no such series.
    Empty,
    /// HTTP 400 with this as Prometheus' `error`.
    Error(String),
    /// HTTP 200 and a body that goes on for ever.
    Endless,
    /// HTTP 200, then one byte every two seconds.
    Trickle,
}

pub const HEALTHY: Mode = Mode::Values {
    requests: "40000",
    errors: "4",
    bucket: "40000",
};

pub struct Server {
    pub url: String,
    /// How it answers; `None` once stopped.
    mode: Arc<Mutex<Option<Mode>>>,
}

impl Server {
    pub fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let mode = Arc::new(Mutex::new(Some(mode)));
        let shared = Arc::clone(&mode);
        std::thread::spawn(move || {
            loop {
                let Some(mode) = shared.lock().unwrap().clone() else {
                    // Stopped: the listener goes with this thread, and the port refuses.
                    return;
                };
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        // The client gone is the end of that answer, not of the server.
                        std::thread::spawn(move || answer(stream, &mode).ok());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { url, mode }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = Some(mode);
    }

    /// Stop listening: from now on its port refuses connections.
    pub fn stop(&self) {
        *self.mode.lock().unwrap() = None;
        // The accepting thread notices within its next poll.
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn answer(mut stream: TcpStream, mode: &Mode) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        request.push(byte[0]);
    }
    let request = String::from_utf8_lossy(&request);
    let target = request.split(' ').nth(1).unwrap_or_default();
    let query = decode(target.split_once("query=").map_or("", |(_, q)| q));
    match mode {
        Mode::Values {
            requests,
            errors,
            bucket,
        } => {
            let v2 = query.contains("destination_version=\"v2\"");
            let sample = |labels: &str, value: &str| {
                format!("{{\"metric\":{{{labels}}},\"value\":[1700000000,\"{value}\"]}}")
            };
            let result = if !query.contains("istio_request") {
                sample("", "1")
            } else if query.contains("_bucket") {
                let (all, slow) = if v2 {
                    (*requests, *bucket)
                } else {
                    ("40000", "40000")
                };
                [("50", "39600"), ("100", slow), ("+Inf", all)]
                    .map(|(le, count)| sample(&format!("\"le\":\"{le}\""), count))
                    .join(",")
            } else if query.contains("5..") {
                sample("", if v2 { errors } else { "4" })
            } else {
                sample("", if v2 { requests } else { "40000" })
            };
            let body = format!(
                "{{\"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":[{result}]}}}}"
            );
            respond(&mut stream, "200 OK", &body)
        }
        Mode::Empty => respond(
            &mut stream,
            "200 OK",
            "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}",
        ),
        Mode::Error(text) => {
            let body =
                serde_json::json!({"status": "error", "errorType": "bad_data", "error": text});
            respond(&mut stream, "400 Bad Request", &body.to_string())
        }
        Mode::Endless => {
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")?;
            let chunk = [b'['; 64 * 1024];
            loop {
                stream.write_all(&chunk)?;
            }
        }
        Mode::Trickle => {
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")?;
            loop {
                stream.write_all(b" ")?;
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A percent-encoded query parameter, decoded.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
