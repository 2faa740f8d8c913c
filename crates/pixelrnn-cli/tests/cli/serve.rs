//! `pixelrnn serve`: every endpoint over HTTP on 127.0.0.1 (a few lines of HTTP/1.1 by hand),
//! bad uploads and requests (4xx, never a crash, the server keeps serving), the job bounds
//! (busy, time limit, a client that goes away), and a graceful stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{bin, small_mnist, train_args};

/// A server started on a free port of 127.0.0.1; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub log: std::sync::mpsc::Receiver<String>,
}

impl Server {
    pub fn start(run: &Path, extra: &[&str]) -> Server {
        let mut child = bin()
            .args(["serve", "--run", run.to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = log.recv_timeout(Duration::from_secs(60)).expect("the server says where it listens");
        let addr = first.split("http://").nth(1).expect(&first).trim_end_matches('/').to_string();
        Server { child, addr, log }
    }

    /// A request; returns the status, the head and the body.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        let mut stream = self.send(method, path, body);
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        split_response(&response)
    }

    /// Sends a request and returns the connection, for reading a stream.
    pub fn send(&self, method: &str, path: &str, body: &[u8]) -> TcpStream {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        stream
    }

    pub fn json(&self, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let (status, _, body) = self.request(method, path, body);
        (status, serde_json::from_slice(&body).unwrap_or_else(|_| panic!("JSON: {}", String::from_utf8_lossy(&body))))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn split_response(response: &[u8]) -> (u16, String, Vec<u8>) {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP head");
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = response[end + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = unchunk(&body);
    }
    (status, head, body)
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

/// The server-sent events of a response body: (event, data) pairs.
pub fn events(body: &[u8]) -> Vec<(String, serde_json::Value)> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event:"))?.trim().to_string();
            let data: String = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).collect();
            Some((name, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

/// A trained tiny run and a 28x28 PNG of a test-like image (a bar), in `dir`.
pub fn tiny_run(dir: &Path) -> (PathBuf, Vec<u8>) {
    let data = small_mnist(dir);
    let run = dir.join("run");
    let out = bin().args(train_args(&data, &run, "pixel-cnn", 4)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pixels: Vec<u8> = (0..28 * 28).map(|i| if (i % 28) / 3 == 4 && i / 28 > 3 { 255 } else { 0 }).collect();
    (run, pixelrnn::png::encode_png(1, 28, 28, &pixels))
}

#[test]
fn every_endpoint_answers_and_bad_requests_get_a_4xx() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, png) = tiny_run(tmp.path());
    let server = Server::start(&run, &["--max-upload", "20000"]);

    // The page and its parts.
    let (status, head, body) = server.request("GET", "/", b"");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"));
    assert!(String::from_utf8_lossy(&body).contains("<script src=\"/app.js\">"));
    for (path, kind) in [("/app.js", "text/javascript"), ("/style.css", "text/css")] {
        let (status, head, _) = server.request("GET", path, b"");
        assert_eq!(status, 200, "{path}");
        assert!(head.to_ascii_lowercase().contains(kind), "{path}: {head}");
    }

    // The models.
    let (status, models) = server.json("GET", "/api/models", b"");
    assert_eq!(status, 200);
    assert_eq!(models[0]["id"], "run");
    assert_eq!((models[0]["height"].as_u64(), models[0]["levels"].as_u64()), (Some(28), Some(2)));
    assert_eq!(models[0]["unit"], "nats");

    // Score: the NLL is the sum of the pixels', and the same as `score` gives.
    let (status, s) = server.json("POST", "/api/score?model=run", &png);
    assert_eq!(status, 200, "{s}");
    let per_pixel: f64 = s["per_pixel"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
    let nll = s["nll_nats"].as_f64().unwrap();
    assert!((per_pixel - nll).abs() < 1e-6 * nll, "{per_pixel} vs {nll}");
    let png_path = tmp.path().join("bar.png");
    std::fs::write(&png_path, &png).unwrap();
    let cli = bin()
        .args(["score", "--run", run.to_str().unwrap(), "--image", png_path.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(cli["nll_nats"].as_f64().unwrap(), nll);
    assert!(s["compressed_bytes"].as_u64().unwrap() > 0 && s["png_bytes"].as_u64().unwrap() > 0);
    assert_eq!(s["upload_bytes"].as_u64().unwrap(), png.len() as u64);

    // Complete: a start event, every row in order, done; the kept rows are the upload's.
    let (status, _, body) = server.request("POST", "/api/complete?model=run&rows=10&samples=3&seed=5", &png);
    assert_eq!(status, 200);
    let evs = events(&body);
    assert_eq!(evs[0].0, "start");
    assert_eq!(evs[0].1["count"], 3);
    assert_eq!(evs.last().unwrap().0, "done", "{:?}", evs.last());
    let rows: Vec<&serde_json::Value> = evs.iter().filter(|(n, _)| n == "row").map(|(_, d)| d).collect();
    assert_eq!(rows.len(), 28);
    for (r, row) in rows.iter().enumerate() {
        assert_eq!(row["row"], r);
        let values = row["values"].as_array().unwrap();
        assert_eq!(values.len(), 3);
        if r < 10 {
            for v in values {
                let expected: Vec<u64> = (0..28).map(|c| (png_pixel(r, c) >= 128) as u64).collect();
                let got: Vec<u64> = v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
                assert_eq!(got, expected, "kept row {r}");
            }
        }
    }
    // The same seed, the same completions.
    let (_, _, again) = server.request("POST", "/api/complete?model=run&rows=10&samples=3&seed=5", &png);
    assert_eq!(events(&again), evs);

    // Sample.
    let (status, _, body) = server.request("POST", "/api/sample?model=run&count=2&seed=1", b"");
    assert_eq!(status, 200);
    let evs = events(&body);
    assert_eq!((evs[0].0.as_str(), evs.last().unwrap().0.as_str()), ("start", "done"));

    // Bad requests: a clear message and a 4xx, and the server goes on.
    let mut wrong_size = png.clone();
    wrong_size[16..24].copy_from_slice(&[0, 0, 0, 29, 0, 0, 0, 28]);
    let mut huge = png.clone();
    huge[16..24].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]);
    let colour: Vec<u8> = (0..3 * 28 * 28).map(|i| (i / (28 * 28)) as u8 * 100).collect();
    let colour = pixelrnn::png::encode_png(3, 28, 28, &colour);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("POST", "/api/score?model=run", b"not a png".to_vec(), 400, "unreadable PNG"),
        ("POST", "/api/score?model=run", Vec::new(), 400, "no image"),
        ("POST", "/api/score?model=run", png[..png.len() / 2].to_vec(), 400, "unreadable PNG"),
        ("POST", "/api/score?model=run", wrong_size, 400, "the model expects a 28x28 greyscale PNG"),
        ("POST", "/api/score?model=run", huge, 400, "the model expects a 28x28 greyscale PNG"),
        ("POST", "/api/score?model=run", colour, 400, "channel"),
        ("POST", "/api/score?model=run", vec![0; 30000], 413, ""),
        ("POST", "/api/score?model=nothing", png.clone(), 404, "this server has run"),
        ("POST", "/api/score", png.clone(), 400, "model"),
        ("POST", "/api/score?model=run&class=3", png.clone(), 400, "not class-conditional"),
        ("POST", "/api/complete?model=run&rows=28", png.clone(), 400, "rows must be below the image height 28"),
        ("POST", "/api/complete?model=run&rows=x", png.clone(), 400, "rows"),
        ("POST", "/api/complete?model=run&samples=0", png.clone(), 400, "samples must be 1 to 8"),
        ("POST", "/api/complete?model=run&samples=9", png.clone(), 400, "samples must be 1 to 8"),
        ("POST", "/api/complete?model=run&temperature=-1", png.clone(), 400, "temperature"),
        ("POST", "/api/sample?model=run&count=17", Vec::new(), 400, "count must be 1 to 16"),
        ("GET", "/api/nothing", Vec::new(), 404, "no such page"),
        ("GET", "/api/score?model=run", Vec::new(), 405, ""),
    ];
    let cases_len = cases.len();
    for (method, path, body, expected, message) in cases {
        let (status, _, answer) = server.request(method, path, &body);
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert!(answer.contains(message), "{method} {path}: {answer}");
    }
    let (status, _) = server.json("GET", "/api/models", b"");
    assert_eq!(status, 200, "still serving");
    // One log line per request (the server writes them as it answers: waited for, since a
    // loaded machine may print them a little after the answers arrive).
    let mut log: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !log.iter().any(|l| l.starts_with("GET /api/models 200 ") && log.len() > cases_len) {
        match server.log.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(line) => log.push(line),
            Err(_) => break,
        }
    }
    assert!(log.iter().any(|l| l.starts_with("POST /api/score 400 ")), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("GET /api/models 200 ")), "{log:?}");
}

/// The test image: a vertical bar (columns 12-14) from row 4 down.
fn png_pixel(r: usize, c: usize) -> u8 {
    if c / 3 == 4 && r > 3 {
        255
    } else {
        0
    }
}

#[test]
fn jobs_are_bounded_timed_and_stopped_when_their_client_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, png) = tiny_run(tmp.path());
    // Each job lasts 28 rows x 100 ms; one at a time; at most 1 s each.
    let server = Server::start(&run, &["--max-jobs", "1", "--job-timeout", "1", "--test-row-delay-ms", "100"]);

    // Busy: a second job while one runs.
    let mut first = server.send("POST", "/api/complete?model=run&samples=1", &png);
    let mut line = String::new();
    BufReader::new(first.try_clone().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("200"), "{line}");
    let (status, busy) = server.json("POST", "/api/score?model=run", &png);
    assert_eq!(status, 503);
    assert!(busy["error"].as_str().unwrap().starts_with("busy: 1 job(s)"), "{busy}");
    // The time limit: the first job ends with an error event after about a second.
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).unwrap();
    let evs = events(&rest);
    assert_eq!(evs.last().unwrap().0, "error", "{evs:?}");
    assert!(evs.last().unwrap().1["error"].as_str().unwrap().contains("limit of 1 s"));

    // A client that goes away: its job stops, and the next request gets the place.
    let gone = server.send("POST", "/api/complete?model=run&samples=1", &png);
    std::thread::sleep(Duration::from_millis(250));
    drop(gone);
    let started = Instant::now();
    loop {
        let (status, _) = server.json("GET", "/api/models", b"");
        assert_eq!(status, 200);
        let (status, _, _) = server.request("POST", "/api/sample?model=run&count=1", b"");
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        // The job would run 2.8 s without its client (1 s with the limit): it must stop sooner.
        assert!(started.elapsed() < Duration::from_millis(900), "the job went on without its client");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_stops_the_server_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, png) = tiny_run(tmp.path());
    let mut server = Server::start(&run, &["--test-row-delay-ms", "200"]);
    let mut open = server.send("POST", "/api/complete?model=run&samples=1", &png);
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("kill").args(["-INT", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    // The running job is stopped: its stream ends with an error event, well before its 5.6 s.
    let started = Instant::now();
    let mut rest = Vec::new();
    open.read_to_end(&mut rest).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    let evs = events(&split_response(&rest).2);
    assert_eq!(evs.last().unwrap().1["error"], "the server is stopping", "{evs:?}");
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let log: Vec<String> = server.log.try_iter().collect();
    assert!(log.iter().any(|l| l.starts_with("stopping")), "{log:?}");
}

#[test]
fn serve_refuses_what_it_cannot_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin().current_dir(tmp.path()).args(["serve", "--addr", "127.0.0.1:0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --run RUN_DIR"));
    let out = bin().args(["serve", "--run", tmp.path().join("missing").to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loading the run in --run"));
    // The address in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (run, _) = tiny_run(tmp.path());
    let addr = taken.local_addr().unwrap().to_string();
    let out = bin().args(["serve", "--run", run.to_str().unwrap(), "--addr", &addr]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("--addr {addr}")));
}

#[test]
fn a_conditional_model_takes_a_class() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("conditional");
    let out = bin().args(train_args(&data, &run, "pixel-cnn", 2)).arg("--conditional").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, png) = tiny_run(&tmp.path().join("other"));
    let server = Server::start(&run, &[]);
    let (_, models) = server.json("GET", "/api/models", b"");
    assert_eq!(models[0]["classes"], 10);
    let (status, answer) = server.json("POST", "/api/score?model=conditional", &png);
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("class-conditional (10 classes)"), "{answer}");
    let (status, answer) = server.json("POST", "/api/score?model=conditional&class=10", &png);
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = server.json("POST", "/api/score?model=conditional&class=3", &png);
    assert_eq!(status, 200, "{answer}");
    let other = server.json("POST", "/api/score?model=conditional&class=4", &png).1;
    assert_ne!(answer["nll_nats"], other["nll_nats"], "the class matters");
    for path in ["/api/sample?model=conditional&count=3", "/api/sample?model=conditional&count=2&class=7"] {
        let (status, _, body) = server.request("POST", path, b"");
        assert_eq!(status, 200);
        assert_eq!(events(&body).last().unwrap().0, "done", "{path}");
    }
    let (status, _, body) = server.request("POST", "/api/complete?model=conditional&class=2&samples=2", &png);
    assert_eq!(status, 200);
    assert_eq!(events(&body).last().unwrap().0, "done");
}
