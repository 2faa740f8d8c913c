//! Lossless compression of images with a trained model: the paper's argument (§2, the
//! negative log-likelihood in bits is the length of the code the model gives the data) made
//! literal. Every sub-pixel is coded in the model's order (raster, R -> G -> B) by a range
//! coder (the `constriction` crate) with the distribution the model predicts for it, so a file
//! costs the model's NLL plus a few bytes.
//!
//! Both sides compute each distribution with the same code: the model's incremental form
//! ([`crate::models::Incremental`]), one image at a time, then [`quantize`]. Nothing in that
//! path depends on the batch a position was computed in, on the thread count, or on the
//! instruction set chosen at run time (the incremental form's dot products are plain
//! sequential f32 sums; its LSTM cell runs the same arithmetic on every instruction set;
//! the quantization uses an `exp` of its own; both run with subnormals kept, although the CPU
//! device flushes them for training: [`crate::fpenv::KeepSubnormals`]), so a file made on one machine decodes on
//! another that computes IEEE-754 f32/f64 arithmetic (every machine Rust targets here).
//!
//! Images are coded in chunks (up to [`DEFAULT_CHUNK`] images, see [`auto_chunk`]): one range-coder stream per chunk, the
//! chunk's images interleaved position by position, so that decoding runs the model for all
//! of a chunk's images at once (one per thread) and a stream's final flush (a few bytes) is
//! shared by the chunk.

pub mod compact;
pub mod format;
pub mod quantize;

use constriction::stream::model::DefaultContiguousCategoricalEntropyModel;
use constriction::stream::queue::{DefaultRangeDecoder, DefaultRangeEncoder};
use constriction::stream::{Decode, Encode};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::distribution::OutputDistribution;
use crate::error::{Error, Result};
use crate::image_spec::ImageSpec;
use crate::models::{Incremental, IncrementalState, ModelConfig, PixelRnn};
use format::{config_digest, names_from_bytes, names_to_bytes, weights_digest, Header, HEADER_LEN};

/// The most images per range-coder stream chosen by [`auto_chunk`].
pub const DEFAULT_CHUNK: u32 = 256;

/// Memory the caches of one chunk's images may take when [`auto_chunk`] chooses its size.
const CHUNK_MEMORY: usize = 1 << 30;

/// Images per chunk for `model`: [`DEFAULT_CHUNK`], or fewer so that a chunk's caches stay
/// within 1 GiB (large models). Each chunk's stream ends with a flush of a few bytes, so
/// larger chunks cost less.
pub fn auto_chunk(model: &PixelRnn) -> u32 {
    let per_image = model.incremental().state().bytes().max(1);
    (CHUNK_MEMORY / per_image).clamp(1, DEFAULT_CHUNK as usize) as u32
}

/// What one image costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageCost {
    /// The model's NLL of the image in bits: -log2 p(x), with the unquantized probabilities.
    pub nll_bits: f64,
    /// What the range coder spends on it: -log2 of the quantized probabilities (the stream's
    /// flush, shared by its chunk, comes on top: see the file's size).
    pub coded_bits: f64,
}

/// A compressed file and what each image cost.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The `.prnn` file.
    pub bytes: Vec<u8>,
    /// Per image, in order.
    pub costs: Vec<ImageCost>,
    /// Per chunk, in order: the bytes of its range-coder stream (its length field excluded).
    /// With one image per chunk, image `i`'s stream is exactly what a file of that image
    /// alone would hold.
    pub chunk_bytes: Vec<usize>,
}

/// A decoded file.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Its header.
    pub header: Header,
    /// The images, `[count][channels][height][width]` raw values.
    pub images: Vec<u8>,
    /// Their names, in order.
    pub names: Vec<String>,
    /// Their class labels (a class-conditional model's files).
    pub labels: Option<Vec<u8>>,
}

impl Header {
    /// Reads and checks the header of `bytes` (a whole file) of either version: magic, version,
    /// the header's own checksum, sizes that fit the file, and the body's checksum (version 1:
    /// [`format`], the compact version 2: [`compact`]).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if compact::is_compact(bytes) {
            compact::parse(bytes)
        } else {
            Header::parse_full(bytes)
        }
    }
}

/// Bytes of the `.prnn` file holding one image alone under the default name (no names
/// section) whose range-coder stream is `stream_bytes` long: the header, the chunk's length
/// field and the stream, in version 1 or (`compact`) version 2. With one image per chunk,
/// [`Encoded::chunk_bytes`] gives each image's stream, so this is each image's own file size,
/// as `compress` (`--compact`) would write it.
pub fn single_image_file_len(image: ImageSpec, stream_bytes: usize, compact: bool) -> usize {
    if compact {
        compact::compact_len(image, 1, 1, 0, &[stream_bytes])
    } else {
        HEADER_LEN + 8 + stream_bytes
    }
}

/// A codec error (`Error::Codec`) with `reason`: the one constructor of the module's errors.
fn codec_error(reason: impl Into<String>) -> Error {
    Error::Codec(reason.into())
}

/// Compresses `images` (`[count][channels][height][width]` raw values in `0..levels`) named
/// `names` with `model` (built from `config`). `progress(done, total)` counts coded
/// sub-pixels of the current chunk's images.
pub fn encode(
    model: &PixelRnn,
    config: &ModelConfig,
    images: &[u8],
    names: &[String],
    chunk: u32,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Encoded> {
    encode_labelled(model, config, images, None, names, chunk, progress)
}

/// [`encode`] with each image's class `labels`, which a class-conditional model needs: each
/// label is coded in the image's stream (uniformly: log2(classes) bits) before its sub-pixels,
/// which are then coded under it, and [`decode`] gives the labels back.
pub fn encode_labelled(
    model: &PixelRnn,
    config: &ModelConfig,
    images: &[u8],
    labels: Option<&[u8]>,
    names: &[String],
    chunk: u32,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Encoded> {
    // The same bits on every machine: IEEE-754 default arithmetic, whatever the CPU device set.
    let _ieee = crate::fpenv::KeepSubnormals::new();
    let image = model.image();
    let dims = image.dims();
    let count = names.len();
    if count == 0 {
        return Err(codec_error("nothing to compress: no images"));
    }
    if count as u64 > format::MAX_IMAGES {
        return Err(codec_error(format!("{count} images: one file holds at most {}", format::MAX_IMAGES)));
    }
    if images.len() != count * dims {
        return Err(Error::Shape {
            op: "compress",
            expected: format!("{count} x {dims} sub-pixels"),
            got: images.len().to_string(),
        });
    }
    if let Some(at) = images.iter().position(|&v| v as usize >= image.levels) {
        return Err(codec_error(format!(
            "image {} ({}) has the value {} where the model codes 0..{}",
            at / dims,
            names[at / dims],
            images[at],
            image.levels - 1
        )));
    }
    if chunk == 0 || chunk > format::MAX_CHUNK {
        return Err(codec_error(format!("images per chunk must be 1 to {}, got {chunk}", format::MAX_CHUNK)));
    }
    model.check_labels(labels, count).map_err(|e| codec_error(e.to_string()))?;
    let names_section = names_to_bytes(names)?;
    let incremental = model.incremental();
    let mut payload = Vec::new();
    let mut costs = Vec::with_capacity(count);
    let mut chunk_bytes = Vec::new();
    for (k, chunk_images) in images.chunks(chunk as usize * dims).enumerate() {
        let first = k * chunk as usize;
        let chunk_labels = labels.map(|l| (&l[first..first + chunk_images.len() / dims], model.classes().unwrap_or(0)));
        let (words, chunk_costs) = encode_chunk(&incremental, chunk_images, chunk_labels, progress)?;
        payload.extend((words.len() as u64 * 4).to_le_bytes());
        words.iter().for_each(|w| payload.extend(w.to_le_bytes()));
        chunk_bytes.push(words.len() * 4);
        costs.extend(chunk_costs);
    }
    let mut body = names_section.clone();
    body.extend_from_slice(&payload);
    let header = Header {
        version: format::VERSION,
        weights_sha256: weights_digest(model),
        config_sha256: config_digest(config),
        image,
        count: count as u64,
        chunk,
        names_len: names_section.len() as u64,
        payload_len: payload.len() as u64,
        body_sha256: Sha256::digest(&body).into(),
        body_start: HEADER_LEN,
    };
    let mut bytes = header.to_bytes();
    bytes.extend(body);
    Ok(Encoded { bytes, costs, chunk_bytes })
}

/// Decompresses a `.prnn` file with `model` (built from `config`), which must be the model it
/// was coded with (its weights' SHA-256 is in the header).
pub fn decode(
    model: &PixelRnn,
    config: &ModelConfig,
    bytes: &[u8],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Decoded> {
    let _ieee = crate::fpenv::KeepSubnormals::new();
    let header = Header::parse(bytes)?;
    header.check_model(model, config)?;
    let names_end = header.body_start + header.names_len as usize;
    let names = names_from_bytes(&bytes[header.body_start..names_end], header.count)?;
    let dims = header.image.dims();
    let count = usize::try_from(header.count).map_err(|_| codec_error("too many images"))?;
    let incremental = model.incremental();
    // Version 2 ends with its 4-byte check (verified by the parser).
    let payload_end = names_end + header.payload_len as usize;
    let mut payload = &bytes[names_end..payload_end];
    let mut images = Vec::with_capacity(count.saturating_mul(dims).min(1 << 30));
    let mut labels = model.classes().map(|_| Vec::with_capacity(count.min(1 << 20)));
    let mut left = count;
    while left > 0 {
        let n = left.min(header.chunk as usize);
        let words = compact::take_chunk_len(&mut payload, header.version)?;
        let stream: Vec<u32> =
            payload[..words].chunks_exact(4).map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes"))).collect();
        let (chunk_images, chunk_labels) = decode_chunk(&incremental, stream, n, model.classes(), progress)?;
        images.extend(chunk_images);
        if let (Some(all), Some(these)) = (&mut labels, chunk_labels) {
            all.extend(these);
        }
        payload = &payload[words..];
        left -= n;
    }
    if !payload.is_empty() {
        return Err(codec_error("payload continues after its last chunk"));
    }
    Ok(Decoded { header, images, names, labels })
}

/// The entropy model of one sub-pixel from its parameters and the values `previous` of the
/// channels before it at its pixel; also its probabilities.
fn entropy_model(
    distribution: OutputDistribution,
    logits: &[f32],
    previous: &[u8],
    probabilities: &mut Vec<f64>,
    frequencies: &mut Vec<u32>,
) -> DefaultContiguousCategoricalEntropyModel {
    distribution.probabilities(logits, previous, 1.0, probabilities);
    quantize::frequencies(probabilities, frequencies);
    DefaultContiguousCategoricalEntropyModel::from_nonzero_fixed_point_probabilities(&*frequencies, false)
        .expect("frequencies are non-zero and sum to 2^24")
}

/// The logits of channel `ch` at (r, c) for every image of a chunk, one image per task.
fn chunk_logits(
    incremental: &Incremental,
    states: &mut [IncrementalState],
    (r, c, ch): (usize, usize, usize),
) -> Vec<Vec<f32>> {
    states.par_iter_mut().map(|state| incremental.channel_logits_at(state, r, c, ch).to_vec()).collect()
}

/// The sub-pixels of a chunk in coding order: raster over pixels, channels within a pixel.
fn positions(image: ImageSpec) -> impl Iterator<Item = (usize, usize, usize)> {
    let ImageSpec { channels, height, width, .. } = image;
    (0..height).flat_map(move |r| (0..width).flat_map(move |c| (0..channels).map(move |ch| (r, c, ch))))
}

/// The entropy model of a class label: uniform over `classes`.
fn label_model(classes: usize, frequencies: &mut Vec<u32>) -> DefaultContiguousCategoricalEntropyModel {
    quantize::frequencies(&vec![1.0 / classes as f64; classes], frequencies);
    DefaultContiguousCategoricalEntropyModel::from_nonzero_fixed_point_probabilities(&*frequencies, false)
        .expect("frequencies are non-zero and sum to 2^24")
}

/// `labels`: the chunk's class labels and the model's number of classes (conditional models).
fn encode_chunk(
    incremental: &Incremental,
    images: &[u8],
    labels: Option<(&[u8], usize)>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<u32>, Vec<ImageCost>)> {
    let image = incremental.image();
    let dims = image.dims();
    let plane = image.height * image.width;
    let n = images.len() / dims;
    let mut states: Vec<IncrementalState> = (0..n).map(|_| incremental.state()).collect();
    let mut costs = vec![ImageCost { nll_bits: 0.0, coded_bits: 0.0 }; n];
    let mut encoder = DefaultRangeEncoder::new();
    let (mut probabilities, mut frequencies) = (Vec::new(), Vec::new());
    let distribution = incremental.distribution();
    if let Some((labels, classes)) = labels {
        let model = label_model(classes, &mut frequencies);
        for ((&label, state), cost) in labels.iter().zip(&mut states).zip(&mut costs) {
            encoder.encode_symbol(label as usize, &model).map_err(|e| codec_error(format!("range coder: {e:?}")))?;
            cost.coded_bits -= (frequencies[label as usize] as f64 / (1u64 << quantize::PRECISION) as f64).log2();
            state.set_label(label as usize);
        }
    }
    for (done, (r, c, ch)) in positions(image).enumerate() {
        let logits = chunk_logits(incremental, &mut states, (r, c, ch));
        for (i, (logits, state)) in logits.iter().zip(&mut states).enumerate() {
            let value = images[i * dims + ch * plane + r * image.width + c];
            let previous: Vec<u8> = (0..ch).map(|j| images[i * dims + j * plane + r * image.width + c]).collect();
            let model = entropy_model(distribution, logits, &previous, &mut probabilities, &mut frequencies);
            encoder.encode_symbol(value as usize, &model).map_err(|e| codec_error(format!("range coder: {e:?}")))?;
            costs[i].nll_bits -= probabilities[value as usize].log2();
            costs[i].coded_bits -= (frequencies[value as usize] as f64 / (1u64 << quantize::PRECISION) as f64).log2();
            state.set_value(r, c, ch, value);
        }
        progress(done + 1, dims);
    }
    let words = encoder.into_compressed().map_err(|e| codec_error(format!("range coder: {e:?}")))?;
    Ok((words, costs))
}

/// `classes`: a conditional model's, whose labels come first in the stream.
fn decode_chunk(
    incremental: &Incremental,
    stream: Vec<u32>,
    n: usize,
    classes: Option<usize>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let image = incremental.image();
    let dims = image.dims();
    let plane = image.height * image.width;
    let mut states: Vec<IncrementalState> = (0..n).map(|_| incremental.state()).collect();
    let mut images = vec![0u8; n * dims];
    let mut decoder =
        DefaultRangeDecoder::from_compressed(stream).map_err(|e| codec_error(format!("range decoder: {e:?}")))?;
    let (mut probabilities, mut frequencies) = (Vec::new(), Vec::new());
    let distribution = incremental.distribution();
    let labels = match classes {
        Some(classes) => {
            let model = label_model(classes, &mut frequencies);
            let mut labels = Vec::with_capacity(n);
            for state in &mut states {
                let label =
                    decoder.decode_symbol(&model).map_err(|e| codec_error(format!("corrupt payload: {e:?}")))?;
                state.set_label(label);
                labels.push(label as u8);
            }
            Some(labels)
        }
        None => None,
    };
    for (done, (r, c, ch)) in positions(image).enumerate() {
        let logits = chunk_logits(incremental, &mut states, (r, c, ch));
        for (i, (logits, state)) in logits.iter().zip(&mut states).enumerate() {
            let previous: Vec<u8> = (0..ch).map(|j| images[i * dims + j * plane + r * image.width + c]).collect();
            let model = entropy_model(distribution, logits, &previous, &mut probabilities, &mut frequencies);
            let value = decoder.decode_symbol(&model).map_err(|e| codec_error(format!("corrupt payload: {e:?}")))?;
            images[i * dims + ch * plane + r * image.width + c] = value as u8;
            state.set_value(r, c, ch, value as u8);
        }
        progress(done + 1, dims);
    }
    Ok((images, labels))
}

#[cfg(test)]
mod tests;
