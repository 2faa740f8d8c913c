//! `pixelrnn serve`: an HTTP server (axum on tokio) with one page to complete, score, compress
//! and sample images with trained runs in the browser.
//!
//! - `models.rs`: the runs offered, loaded once;
//! - `jobs.rs`: the bound on concurrent jobs, their time limit and their cancellation;
//! - `api.rs`: the JSON and server-sent-event endpoints;
//! - `page/`: the page (plain HTML, CSS and JavaScript, built into the binary).
//!
//! Operational behaviour: localhost unless `--addr` says otherwise (said at start), request
//! bodies bounded (`--max-upload`), a PNG's header checked against the model's image size
//! before anything is decoded, at most `--max-jobs` jobs (HTTP 503 "busy" beyond), each stopped
//! after `--job-timeout` seconds or as soon as its client goes away, one log line per request on
//! stderr, and a graceful stop on SIGINT/SIGTERM (running jobs are stopped, open responses end).

mod api;
mod jobs;
mod models;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::cli::ServeArgs;

pub use jobs::Jobs;
pub use models::Served;

/// What every request shares.
pub struct App {
    /// The models offered, in order.
    pub models: Vec<Served>,
    /// The job bound and the stop flag.
    pub jobs: Jobs,
}

/// Serves until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let models = models::load_all(&args.run, !args.no_pretrained)?;
    let jobs = Jobs::new(args.max_jobs, Duration::from_secs(args.job_timeout))
        .with_row_delay(Duration::from_millis(args.test_row_delay_ms));
    let app = Arc::new(App { models, jobs });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(serve(app, args))
}

async fn serve(app: Arc<App>, args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("--addr {}", args.addr))?;
    let addr = listener.local_addr().context("the listening address")?;
    let names: Vec<&str> = app.models.iter().map(|m| m.id.as_str()).collect();
    eprintln!("serving {} model(s) ({}) on http://{addr}/", names.len(), names.join(", "));
    if !addr.ip().is_loopback() {
        eprintln!("note: listening on {} serves every machine that can reach this one, not only this one", addr.ip());
    }
    let stopping = app.jobs.clone();
    let router = router(app, args.max_upload);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            eprintln!("stopping: running jobs are stopped, open requests finish");
            stopping.stop_all();
        })
        .await
        .context("serving")?;
    eprintln!("stopped");
    Ok(())
}

/// The routes: the page, its script and style, and the API.
pub fn router(app: Arc<App>, max_upload: usize) -> Router {
    Router::new()
        .route("/", get(|| async { page(PAGE_HTML, "text/html; charset=utf-8") }))
        .route("/app.js", get(|| async { page(PAGE_JS, "text/javascript; charset=utf-8") }))
        .route("/style.css", get(|| async { page(PAGE_CSS, "text/css; charset=utf-8") }))
        .route("/api/models", get(api::models))
        .route("/api/score", post(api::score))
        .route("/api/complete", post(api::complete))
        .route("/api/sample", post(api::sample))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(max_upload))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(app)
}

const PAGE_HTML: &str = include_str!("page/index.html");
const PAGE_JS: &str = include_str!("page/app.js");
const PAGE_CSS: &str = include_str!("page/style.css");

fn page(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// One line per request on stderr: method, path, status, milliseconds to the response's head.
async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    eprintln!("{method} {path} {} {:.1} ms", response.status().as_u16(), started.elapsed().as_secs_f64() * 1e3);
    response
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
