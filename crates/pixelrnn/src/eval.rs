//! Exact test log-likelihood (§5.1): the NLL of every image of a split, nothing dropped.

use burn::module::Module;
use burn::prelude::*;
use serde::Serialize;

use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::likelihood::bits_per_dim;
use crate::models::PixelRnn;

/// The result of an evaluation; serialized as the `eval --json` line.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Dataset name.
    pub dataset: String,
    /// Split evaluated.
    pub split: String,
    /// Images evaluated.
    pub images: usize,
    /// Mean NLL per image, nats.
    pub nll_nats: f64,
    /// Mean NLL in bits per sub-pixel.
    pub bits_per_dim: f64,
    /// Standard error of `bits_per_dim` over images.
    pub stderr_bits_per_dim: f64,
    /// Each image's NLL in nats, in order (`eval --json` prints it with `--per-image` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_image_nats: Option<Vec<f64>>,
}

/// Per-image NLL (nats) of the first `limit` images of `set`, in batches; the last, short
/// batch is evaluated too. `progress(done, total)` is called after each batch.
pub fn per_image_nll(
    model: &PixelRnn,
    set: &ImageSet,
    limit: Option<usize>,
    batch_size: usize,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<f64>> {
    if set.spec() != model.image() {
        return Err(Error::Shape {
            op: "eval",
            expected: format!("{:?}", model.image()),
            got: format!("{:?}", set.spec()),
        });
    }
    let total = limit.map_or(set.len(), |l| l.min(set.len()));
    // A conditional model's NLL is -log p(x | y), given each image's own label.
    let labels = model.classes().map(|_| set.labels.as_deref().map(|l| &l[..total]));
    model.check_labels(labels.flatten(), total).map_err(|e| Error::Config(format!("eval: {e}")))?;
    let mut out = Vec::with_capacity(total);
    let indices: Vec<usize> = (0..total).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let labels = model.classes().and_then(|_| set.label_batch(chunk, device));
        let nll: Vec<f32> =
            model.nll_given(set.batch(chunk, device), labels).into_data().try_to_vec::<f32>().expect("f32 NLL");
        out.extend(nll.into_iter().map(f64::from));
        progress(out.len(), total);
    }
    Ok(out)
}

/// Mean and standard error, in bits/dim, of per-image NLLs in nats.
pub fn summarize(nats: &[f64], dims: usize) -> (f64, f64, f64) {
    let n = nats.len().max(1) as f64;
    let mean = nats.iter().sum::<f64>() / n;
    let var = if nats.len() > 1 { nats.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, bits_per_dim(mean, dims), bits_per_dim(var.sqrt() / n.sqrt(), dims))
}

/// Evaluates `model` on `set` and summarizes.
pub fn evaluate(
    model: &PixelRnn,
    set: &ImageSet,
    (dataset, split): (&str, &str),
    limit: Option<usize>,
    batch_size: usize,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalReport> {
    let nats = per_image_nll(&model.valid(), set, limit, batch_size, device, progress)?;
    let (nll_nats, bpd, stderr) = summarize(&nats, model.image().dims());
    Ok(EvalReport {
        dataset: dataset.to_string(),
        split: split.to_string(),
        images: nats.len(),
        nll_nats,
        bits_per_dim: bpd,
        stderr_bits_per_dim: stderr,
        per_image_nats: Some(nats),
    })
}
