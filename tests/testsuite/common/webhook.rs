//! A webhook that records what it is sent: an HTTP server on loopback that takes POSTs, keeps
//! each one's path and JSON body, and answers with the status the test sets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub struct Receiver {
    /// The URL to post to, with a path that stands for the secret part of a real webhook.
    pub url: String,
    received: Arc<Mutex<Vec<(String, Value)>>>,
}

/// The path every test's webhook URL ends with: it must never be shown.
pub const SECRET: &str = "/services/T0001/B0001/SECRETSECRET";

impl Receiver {
    /// A receiver that takes every connection and never answers.
    pub fn hanging() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{SECRET}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&received);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                shared.lock().unwrap().push((String::new(), Value::Null));
                held.push(stream);
            }
        });
        Receiver { url, received }
    }

    /// A receiver that answers every POST with `status` (such as "200 OK").
    pub fn start(status: &'static str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{SECRET}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or_default().to_string();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                shared.lock().unwrap().push((path, json));
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                )
                .ok();
            }
        });
        Receiver { url, received }
    }

    /// Every POST so far: its path and its body.
    pub fn received(&self) -> Vec<(String, Value)> {
        self.received.lock().unwrap().clone()
    }
}
