//! `pixelrnn serve` in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! spoken to with a few lines of HTTP): the page loads, an image is uploaded, a completion
//! streams in, and the kept rows are the upload's while the others were sampled; scoring shows
//! the NLL, the heatmap and the compressed size. Skipped, saying so, where Chromium or
//! chromedriver is not installed (Debian: `apt-get install chromium chromium-driver`).
//! `PIXELRNN_SCREENSHOT=FILE` keeps a screenshot of the page (the README's).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::serve::{tiny_run, Server};

/// The WebDriver element reference key (W3C).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().flat_map(|n| std::env::split_paths(&path).map(move |dir| dir.join(n))).find(|p| p.is_file())
}

struct Driver {
    child: Child,
    addr: String,
    session: String,
}

impl Driver {
    fn start(chromedriver: &PathBuf, chromium: &PathBuf) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let mut driver = Driver { child, addr, session: String::new() };
        let started = Instant::now();
        while driver.try_call("GET", "/status", None).is_none() {
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]
            }
        }}});
        let session = driver.call("POST", "/session", Some(capabilities));
        driver.session = session["sessionId"].as_str().expect("a session").to_string();
        driver
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let mut stream = TcpStream::connect(&self.addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body.as_bytes()).ok()?;
        // chromedriver keeps the connection open: read the head, then the body it announces.
        let mut response = Vec::new();
        let mut buf = [0u8; 65536];
        let end = loop {
            if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = stream.read(&mut buf).ok().filter(|&n| n > 0)?;
            response.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
        let length =
            head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
        let chunked = head.contains("transfer-encoding: chunked");
        loop {
            let have = response.len() - (end + 4);
            let complete = match length {
                Some(length) => have >= length,
                None if chunked => response.ends_with(b"0\r\n\r\n"),
                None => false,
            };
            if complete {
                break;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
        let mut body = response[end + 4..].to_vec();
        if chunked {
            body = dechunk(&body);
        }
        serde_json::from_slice::<Value>(&body).ok().map(|v| v["value"].clone())
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let value = self.try_call(method, path, body).unwrap_or_else(|| panic!("WebDriver {method} {path}: no answer"));
        assert!(value.get("error").is_none(), "WebDriver {method} {path}: {value}");
        value
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn script(&self, code: &str) -> Value {
        self.session_call("POST", "/execute/sync", Some(json!({ "script": code, "args": [] })))
    }

    fn element(&self, css: &str) -> String {
        let found = self.session_call("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
        found[ELEMENT].as_str().expect("an element").to_string()
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.session_call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Waits until the page's status line satisfies `done` (failing on "failed").
    fn wait_status(&self, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let status =
                self.script("return document.getElementById('status').textContent").as_str().unwrap().to_string();
            if done(&status) {
                return status;
            }
            if status == "failed" {
                let error = self.script("return document.getElementById('error').textContent");
                panic!("the page failed: {error}");
            }
            assert!(started.elapsed() < Duration::from_secs(120), "the page is stuck at {status:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let Ok(size) = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16) else { break };
        if size == 0 || data.len() < line_end + 2 + size {
            break;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[(line_end + 4 + size).min(data.len())..];
    }
    out
}

#[test]
fn the_page_completes_and_scores_an_upload_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) =
        (find_program(&["chromium", "chromium-browser", "google-chrome"]), find_program(&["chromedriver"]))
    else {
        eprintln!("skipped: no chromium and chromedriver (Debian: apt-get install chromium chromium-driver)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (run, png) = tiny_run(tmp.path());
    let upload = tmp.path().join("bar.png");
    std::fs::write(&upload, &png).unwrap();
    let server = Server::start(&run, &[]);
    let driver = Driver::start(&chromedriver, &chromium);
    // Drawing: two pixels set with the mouse, then scored; the server reads what was drawn.
    driver.session_call("POST", "/url", Some(json!({ "url": format!("http://{}/", server.addr) })));
    driver.wait_status(|s| s == "ready");
    driver.script(
        "const c = document.getElementById('canvas'); const r = c.getBoundingClientRect();\
         const at = (x, y, type) => c.dispatchEvent(new MouseEvent(type, { clientX: r.left + x * 10 + 5, clientY: r.top + y * 10 + 5, bubbles: true }));\
         at(5, 7, 'mousedown'); at(6, 7, 'mousemove'); window.dispatchEvent(new MouseEvent('mouseup'));",
    );
    let drawn: Vec<u64> = driver
        .script("return window.pixelrnn.image()")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..28 * 28).map(|i| (i == 7 * 28 + 5 || i == 7 * 28 + 6) as u64).collect();
    assert_eq!(drawn, expected, "the mouse drew two pixels");
    driver.click("#score");
    driver.wait_status(|s| s == "done");
    let seen: Vec<u64> = driver
        .script("return window.pixelrnn.score.image")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(seen, expected, "the server scored the drawing");
    driver.click("#clear");
    assert!(driver.script("return window.pixelrnn.image().every(v => v === 0)").as_bool().unwrap());

    complete_upload(&driver, &server, &upload, 10, 3);
    let result = driver.script("return window.pixelrnn");
    let original: Vec<u64> = result["original"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let expected: Vec<u64> = (0..28 * 28).map(|i| is_bar(i / 28, i % 28) as u64).collect();
    assert_eq!(original, expected, "the page read the upload as the server does");
    let completions = result["completions"].as_array().unwrap();
    assert_eq!(completions.len(), 3);
    let kept = 10 * 28;
    let mut changed = false;
    for completion in completions {
        let values: Vec<u64> = completion.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(values.len(), 28 * 28);
        assert_eq!(values[..kept], original[..kept], "the kept rows are unchanged");
        changed |= values[kept..] != original[kept..];
    }
    assert!(changed, "the free rows were sampled");
    let canvases = driver.script("return document.querySelectorAll('#completions canvas').length");
    assert_eq!(canvases, 3);

    // Score: the NLL, the heatmap and the sizes appear.
    driver.click("#score");
    driver.wait_status(|s| s == "done");
    let nll = driver.script("return document.getElementById('nll').textContent");
    assert!(nll.as_str().unwrap().starts_with("NLL ") && nll.as_str().unwrap().contains("nats"), "{nll}");
    let sizes = driver.script("return document.getElementById('sizes').textContent");
    assert!(
        sizes.as_str().unwrap().contains("compressed with the model:") && sizes.as_str().unwrap().contains("PNG:"),
        "{sizes}"
    );
    let lit = driver.script(
        "const c = document.getElementById('heatmap'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] > 0; return [c.width, n];",
    );
    assert_eq!(lit[0], 280);
    assert!(lit[1].as_u64().unwrap() > 0, "the heatmap is drawn");

    // Samples from scratch.
    driver.click("#sample");
    driver.wait_status(|s| s == "done");
    assert_eq!(driver.script("return window.pixelrnn.samples.length"), 3);

    let shot = driver.session_call("GET", "/screenshot", None);
    let bytes = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap()).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    drop(server);
    // The README's screenshot: PIXELRNN_SCREENSHOT=FILE with PIXELRNN_SCREENSHOT_RUN=RUN_DIR and
    // PIXELRNN_SCREENSHOT_IMAGE=PNG (a trained model and a real image).
    if let (Some(path), Some(run), Some(image)) = (
        std::env::var_os("PIXELRNN_SCREENSHOT"),
        std::env::var_os("PIXELRNN_SCREENSHOT_RUN"),
        std::env::var_os("PIXELRNN_SCREENSHOT_IMAGE"),
    ) {
        let server = Server::start(std::path::Path::new(&run), &[]);
        complete_upload(&driver, &server, &PathBuf::from(image), 14, 4);
        driver.click("#score");
        driver.wait_status(|s| s == "done");
        driver.click("#sample");
        driver.wait_status(|s| s == "done");
        let shot = driver.session_call("GET", "/screenshot", None);
        std::fs::write(path, base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap()).unwrap())
            .unwrap();
    }
}

/// Loads the page of `server`, uploads `image`, keeps `rows` rows and waits for `samples`
/// completions.
fn complete_upload(driver: &Driver, server: &Server, image: &std::path::Path, rows: usize, samples: usize) {
    driver.session_call("POST", "/url", Some(json!({ "url": format!("http://{}/", server.addr) })));
    driver.wait_status(|s| s == "ready");
    let input = driver.element("#upload");
    driver.session_call("POST", &format!("/element/{input}/value"), Some(json!({ "text": image.to_str().unwrap() })));
    driver.wait_status(|s| s.ends_with("loaded"));
    driver.script(&format!(
        "document.getElementById('rows').value = {rows}; document.getElementById('samples').value = {samples}; document.getElementById('rows').dispatchEvent(new Event('input'));"
    ));
    driver.click("#complete");
    driver.wait_status(|s| s == "done");
}

fn is_bar(r: usize, c: usize) -> bool {
    c / 3 == 4 && r > 3
}
