//! The server's endpoints:
//! - `GET /api/models`: the models offered ([`ModelInfo`] each);
//! - `POST /api/score?model=ID[&class=K]`, body a PNG: its exact NLL, the NLL of each pixel,
//!   and its size compressed with the model beside PNG's;
//! - `POST /api/complete?model=ID[&rows=R][&samples=K][&seed=S][&temperature=T][&class=C]`,
//!   body a PNG: server-sent events, `start`, then one `row` per image row as it is sampled
//!   (the values of that row of every completion), then `done` (or `error`);
//! - `POST /api/sample?model=ID[&count=N][&seed=S][&temperature=T][&class=C]`: the same
//!   events for new images.
//!
//! Every failure is JSON `{"error": "..."}` with a 4xx status (the request) or 503 (busy).

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::Stream;
use pixelrnn::codec::encode_labelled;
use pixelrnn::images::{display_values, png_for};
use pixelrnn::png::encode_png_smallest;
use pixelrnn::sample::{generate_streamed, Generation, Sampler};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::models::ModelInfo;
use super::{App, Served};

/// Completions per request at most.
pub const MAX_COMPLETIONS: usize = 8;
/// New images per request at most.
pub const MAX_SAMPLES: usize = 16;

/// A failed request: its status and what to tell the user.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(reason: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, reason.into())
}

fn busy(reason: String) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, reason)
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| bad(e.body_text()))
}

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such page or endpoint".into())
}

/// `GET /api/models`.
pub async fn models(State(app): State<Arc<App>>) -> Json<Vec<ModelInfo>> {
    Json(app.models.iter().map(|m| m.info.clone()).collect())
}

/// The index of model `id`.
fn find(app: &App, id: &str) -> Result<usize, ApiError> {
    app.models.iter().position(|m| m.id == id).ok_or_else(|| {
        let ids: Vec<&str> = app.models.iter().map(|m| m.id.as_str()).collect();
        ApiError(StatusCode::NOT_FOUND, format!("no model {id:?}; this server has {}", ids.join(", ")))
    })
}

/// The class a request gives a model: needed by a class-conditional model, refused by the
/// others (the library's check of labels, for the one image of a request).
fn label_for(served: &Served, class: Option<u8>) -> Result<Option<u8>, ApiError> {
    served.model.check_labels(class.as_ref().map(std::slice::from_ref), 1).map_err(|e| bad(e.to_string()))?;
    Ok(class)
}

/// An uploaded PNG as the model's raw values (size checked before decoding).
fn upload(served: &Served, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    if body.is_empty() {
        return Err(bad("no image: send a PNG as the request body"));
    }
    png_for(body, Path::new("the uploaded image"), &served.model.image()).map_err(|e| bad(e.to_string()))
}

fn temperature(t: Option<f64>) -> Result<f64, ApiError> {
    match t.unwrap_or(1.0) {
        t if t > 0.0 && t.is_finite() && t <= 10.0 => Ok(t),
        t => Err(bad(format!("temperature must be in (0, 10], got {t}"))),
    }
}

#[derive(Deserialize)]
pub struct ScoreQuery {
    model: String,
    class: Option<u8>,
}

/// What `/api/score` answers.
#[derive(Serialize)]
pub struct ScoreReply {
    nll_nats: f64,
    bits_per_dim: f64,
    unit: &'static str,
    height: usize,
    width: usize,
    channels: usize,
    /// NLL of each pixel in nats (channels summed), raster order.
    per_pixel: Vec<f64>,
    /// The image as the model read it (raw values, planar).
    image: Vec<u8>,
    /// The `.prnn` file of this one image: its whole size, and the coded image alone (the rest
    /// is the file's fixed header, shared by every image of a larger file).
    compressed_bytes: usize,
    coded_image_bytes: f64,
    /// The uploaded file's size, and the image re-encoded as the smallest PNG this server makes.
    upload_bytes: usize,
    png_bytes: usize,
}

/// `POST /api/score`.
pub async fn score(
    State(app): State<Arc<App>>,
    q: Result<Query<ScoreQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Json<ScoreReply>, ApiError> {
    let q = query(q)?;
    let i = find(&app, &q.model)?;
    let image = upload(&app.models[i], &body)?;
    let label = label_for(&app.models[i], q.class)?;
    let ticket = app.jobs.start().map_err(busy)?;
    let upload_bytes = body.len();
    let job = tokio::task::spawn_blocking(move || -> Result<ScoreReply, pixelrnn::Error> {
        let _ticket = ticket;
        let served = &app.models[i];
        let spec = served.model.image();
        let s = pixelrnn::score::score(&served.model, &image, label, &served.device)?;
        let labels = label.map(|l| vec![l]);
        let names = [pixelrnn::codec::format::default_name(0)];
        let encoded =
            encode_labelled(&served.model, &served.config, &image, labels.as_deref(), &names, 1, &mut |_, _| {})?;
        let png = encode_png_smallest(spec.channels, spec.height, spec.width, &display_values(&spec, &image));
        Ok(ScoreReply {
            nll_nats: s.nll_nats,
            bits_per_dim: s.bits_per_dim,
            unit: served.info.unit,
            height: spec.height,
            width: spec.width,
            channels: spec.channels,
            per_pixel: s.per_pixel(),
            image,
            compressed_bytes: encoded.bytes.len(),
            coded_image_bytes: encoded.costs[0].coded_bits / 8.0,
            upload_bytes,
            png_bytes: png.len(),
        })
    });
    let reply = job.await.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("the job failed: {e}")))?;
    reply.map(Json).map_err(|e| bad(e.to_string()))
}

#[derive(Deserialize)]
pub struct CompleteQuery {
    model: String,
    rows: Option<usize>,
    samples: Option<usize>,
    seed: Option<u64>,
    temperature: Option<f64>,
    class: Option<u8>,
}

/// `POST /api/complete`: server-sent events.
pub async fn complete(
    State(app): State<Arc<App>>,
    q: Result<Query<CompleteQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let i = find(&app, &q.model)?;
    let served = &app.models[i];
    let spec = served.model.image();
    let image = upload(served, &body)?;
    let rows = q.rows.unwrap_or(spec.height / 2);
    if rows >= spec.height {
        return Err(bad(format!("rows must be below the image height {} (got {rows})", spec.height)));
    }
    let samples = q.samples.unwrap_or(4);
    if samples == 0 || samples > MAX_COMPLETIONS {
        return Err(bad(format!("samples must be 1 to {MAX_COMPLETIONS}, got {samples}")));
    }
    let label = label_for(served, q.class)?;
    let temperature = temperature(q.temperature)?;
    let labels = label.as_ref().map(std::slice::from_ref);
    let request = Generation::completions_of(&spec, &image, samples, labels, rows, q.seed.unwrap_or(0), temperature);
    let ticket = app.jobs.start().map_err(busy)?;
    let start = json!({ "count": samples, "rows": rows, "height": spec.height, "width": spec.width, "channels": spec.channels, "levels": spec.levels });
    Ok(stream(app.clone(), i, request, ticket, start).into_response())
}

#[derive(Deserialize)]
pub struct SampleQuery {
    model: String,
    count: Option<usize>,
    seed: Option<u64>,
    temperature: Option<f64>,
    class: Option<u8>,
}

/// `POST /api/sample`: server-sent events.
pub async fn sample(
    State(app): State<Arc<App>>,
    q: Result<Query<SampleQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let i = find(&app, &q.model)?;
    let served = &app.models[i];
    let spec = served.model.image();
    let count = q.count.unwrap_or(4);
    if count == 0 || count > MAX_SAMPLES {
        return Err(bad(format!("count must be 1 to {MAX_SAMPLES}, got {count}")));
    }
    let temperature = temperature(q.temperature)?;
    let mut request = Generation::samples(&spec, count, q.seed.unwrap_or(0), temperature);
    // A class-conditional model: every image of the class asked for, or the classes in turn.
    request = match (served.model.classes(), q.class) {
        (Some(classes), None) => request.with_labels((0..count).map(|k| (k % classes) as u8).collect()),
        _ => match label_for(served, q.class)? {
            Some(l) => request.with_labels(vec![l; count]),
            None => request,
        },
    };
    let ticket = app.jobs.start().map_err(busy)?;
    let start = json!({ "count": count, "rows": 0, "height": spec.height, "width": spec.width, "channels": spec.channels, "levels": spec.levels });
    Ok(stream(app.clone(), i, request, ticket, start).into_response())
}

/// Runs `request` on a blocking thread and streams it: `start`, a `row` event after each image
/// row (`{"row": r, "values": [[channel-major values of row r] per image]}`), then `done` or
/// `error`. The job stops when its client goes away (the events can no longer be sent), at its
/// time limit, or when the server stops.
fn stream(
    app: Arc<App>,
    i: usize,
    request: Generation,
    ticket: super::jobs::Ticket,
    start: serde_json::Value,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(8);
    tokio::task::spawn_blocking(move || {
        let served = &app.models[i];
        let spec = served.model.image();
        let (dims, plane, width) = (spec.dims(), spec.height * spec.width, spec.width);
        let event = |name: &str, data: serde_json::Value| Event::default().event(name).data(data.to_string());
        if tx.blocking_send(event("start", start)).is_err() {
            return;
        }
        let mut stopped: Option<String> = None;
        let mut row_done = |r: usize, images: &[u8]| -> bool {
            if let Err(reason) = ticket.keep_going() {
                stopped = Some(reason);
                return false;
            }
            let values: Vec<Vec<u8>> = images
                .chunks(dims)
                .map(|image| {
                    (0..spec.channels)
                        .flat_map(|c| &image[c * plane + r * width..c * plane + (r + 1) * width])
                        .copied()
                        .collect()
                })
                .collect();
            tx.blocking_send(event("row", json!({ "row": r, "values": values }))).is_ok()
        };
        let result =
            generate_streamed(&served.model, &request, Sampler::Fast, &served.device, &mut |_, _| {}, &mut row_done);
        let last = match (result, stopped) {
            (Ok(_), _) => event("done", json!({})),
            (Err(_), Some(reason)) => {
                eprintln!("a job of {} stopped: {reason}", served.id);
                event("error", json!({ "error": reason }))
            }
            (Err(e), None) => event("error", json!({ "error": e.to_string() })),
        };
        let _ = tx.blocking_send(last);
    });
    let events = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Sse::new(events).keep_alive(KeepAlive::default())
}
