//! `Model`: a trained run loaded once, and what can be done with it: exact NLL, per-sub-pixel
//! scores, samples, completions, compression, export. Each method releases the GIL while it
//! works; the model sits behind a mutex, so two threads may share one `Model` (their calls
//! take turns).

use std::sync::Mutex;

use burn::prelude::Device;
use pixelrnn::codec::{decode, encode_labelled, format::default_name};
use pixelrnn::data::{ImageSet, LoadOptions, Split};
use pixelrnn::device::Backend;
use pixelrnn::eval::per_image_nll;
use pixelrnn::experiment::ExperimentConfig;
use pixelrnn::interop::{export, Layout, TrainingInfo};
use pixelrnn::models::PixelRnn;
use pixelrnn::run::{RunDir, Which};
use pixelrnn::sample::{generate, Generation, Sampler};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error;

/// `mi_option_purge_delay`: its place in `mi_option_e` (mimalloc.h, v2.1 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// As the `pixelrnn` binary does (its `main.rs` says why): mimalloc keeps freed pages, unless
/// `MIMALLOC_PURGE_DELAY` says otherwise. Called when the module is imported.
pub fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: an option index and value of mimalloc's own; mimalloc reads its options
        // atomically, so a late set is only a late effect.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// What a loaded run holds.
struct Loaded {
    config: ExperimentConfig,
    model: PixelRnn,
    device: Device,
}

/// A trained run's model (`pixelrnn.load`).
#[pyclass(module = "pixelrnn._native", frozen)]
pub struct Model {
    /// Boxed: some of the model's parts are aligned to 64 bytes, more than the memory Python
    /// allocates its objects in is (16), so they cannot live inside the Python object itself.
    inner: Mutex<Box<Loaded>>,
    #[pyo3(get)]
    run_dir: String,
    #[pyo3(get)]
    checkpoint_path: String,
    #[pyo3(get)]
    step: u64,
    /// `(decay, since_step)` when the weights are the run's weight average.
    #[pyo3(get)]
    average: Option<(f64, u64)>,
    #[pyo3(get)]
    channels: usize,
    #[pyo3(get)]
    height: usize,
    #[pyo3(get)]
    width: usize,
    #[pyo3(get)]
    levels: usize,
    #[pyo3(get)]
    classes: Option<usize>,
    #[pyo3(get)]
    architecture: String,
    #[pyo3(get)]
    dataset_name: String,
}

// Python allocates objects 16-byte aligned: the Rust object inside must not ask for more.
const _: () = assert!(std::mem::align_of::<Model>() <= 16);

fn backend(name: &str) -> PyResult<Backend> {
    [Backend::Cpu, Backend::Vulkan, Backend::Wgpu, Backend::Cuda]
        .into_iter()
        .find(|b| b.name() == name)
        .ok_or_else(|| error(format!("device {name:?}: expected cpu, vulkan, wgpu or cuda")))
}

impl Model {
    fn lock(&self) -> std::sync::MutexGuard<'_, Box<Loaded>> {
        // A panic inside a call poisons the mutex; the model itself is still whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sub-pixels of one image.
    fn dims(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// `count` images in `pixels`, checked to be whole images of the model's size.
    fn count(&self, pixels: &[u8]) -> PyResult<usize> {
        let dims = self.dims();
        if pixels.is_empty() || !pixels.len().is_multiple_of(dims) {
            return Err(error(format!(
                "expected whole images of {}x{}x{} = {dims} sub-pixels, got {} values",
                self.channels,
                self.height,
                self.width,
                pixels.len()
            )));
        }
        Ok(pixels.len() / dims)
    }
}

#[pymethods]
impl Model {
    /// Loads a run directory's checkpoint (`checkpoint`: "best" or "last"), with its weight
    /// average when it keeps one unless `raw_weights`, on `device`.
    #[staticmethod]
    #[pyo3(signature = (run_dir, checkpoint = "best", raw_weights = false, allow_unchecked = false, device = "cpu"))]
    fn load(
        py: Python<'_>,
        run_dir: std::path::PathBuf,
        checkpoint: &str,
        raw_weights: bool,
        allow_unchecked: bool,
        device: &str,
    ) -> PyResult<Model> {
        let which = match checkpoint {
            "best" => Which::Best,
            "last" => Which::Last,
            other => return Err(error(format!("checkpoint {other:?}: expected \"best\" or \"last\""))),
        };
        let backend = backend(device)?;
        let loaded = py.detach(|| {
            let device = pixelrnn::device::open(backend).map_err(|e| error(format!("device {backend}: {e}")))?;
            RunDir::new(&run_dir)
                .allowing_unchecked(allow_unchecked)
                .load_weights(which, !raw_weights, &device)
                .map(|l| (l, device))
                .map_err(|e| error(format!("loading the run in {}: {e}", run_dir.display())))
        });
        let (loaded, device) = loaded?;
        let spec = loaded.model.image();
        Ok(Model {
            run_dir: run_dir.display().to_string(),
            checkpoint_path: loaded.path.display().to_string(),
            step: loaded.step,
            average: loaded.average.map(|a| (a.decay, a.since_step)),
            channels: spec.channels,
            height: spec.height,
            width: spec.width,
            levels: spec.levels,
            classes: loaded.model.classes(),
            architecture: loaded.config.model.architecture.name().to_string(),
            dataset_name: loaded.config.data.dataset.name().to_string(),
            inner: Mutex::new(Box::new(Loaded { config: loaded.config, model: loaded.model, device })),
        })
    }

    /// The run's `config.json`, as JSON text.
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.lock().config).map_err(error)
    }

    /// Each image's exact NLL in nats, `-log p(x)` (`-log p(x | y)` given `labels` for a
    /// class-conditional model), computed as `pixelrnn eval` does, `batch_size` images at a time.
    #[pyo3(signature = (pixels, labels = None, batch_size = 64))]
    fn nll(&self, py: Python<'_>, pixels: Vec<u8>, labels: Option<Vec<u8>>, batch_size: usize) -> PyResult<Vec<f64>> {
        let count = self.count(&pixels)?;
        if batch_size == 0 {
            return Err(error("batch_size must be at least 1"));
        }
        let set = ImageSet {
            channels: self.channels,
            height: self.height,
            width: self.width,
            levels: self.levels,
            pixels,
            labels,
        };
        check_levels(&set.pixels, self.levels, self.dims())?;
        let loaded = self.lock();
        loaded.model.check_labels(set.labels.as_deref(), count).map_err(error)?;
        py.detach(|| {
            let model = burn::module::Module::valid(&loaded.model);
            per_image_nll(&model, &set, Some(count), batch_size, &loaded.device, &mut |_, _| {})
        })
        .map_err(error)
    }

    /// Each sub-pixel's NLL in nats, `[count][height][width][channels]` flattened, as `pixelrnn
    /// score` computes them (one image at a time).
    #[pyo3(signature = (pixels, labels = None))]
    fn score(&self, py: Python<'_>, pixels: Vec<u8>, labels: Option<Vec<u8>>) -> PyResult<Vec<f64>> {
        let count = self.count(&pixels)?;
        check_levels(&pixels, self.levels, self.dims())?;
        let loaded = self.lock();
        loaded.model.check_labels(labels.as_deref(), count).map_err(error)?;
        py.detach(|| {
            let mut out = Vec::with_capacity(pixels.len());
            for (i, image) in pixels.chunks(self.dims()).enumerate() {
                let label = labels.as_ref().map(|l| l[i]);
                let s = pixelrnn::score::score(&loaded.model, image, label, &loaded.device).map_err(error)?;
                out.extend(s.per_subpixel_nats);
            }
            Ok(out)
        })
    }

    /// `count` new images, as `pixelrnn sample --seed SEED --temperature T` draws them (the fast
    /// incremental sampler, or the naive one that reruns the model per sub-pixel).
    #[pyo3(signature = (count, seed = 0, temperature = 1.0, labels = None, naive = false))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        count: usize,
        seed: u64,
        temperature: f64,
        labels: Option<Vec<u8>>,
        naive: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if count == 0 {
            return Err(error("count must be at least 1"));
        }
        let loaded = self.lock();
        let mut request = Generation::samples(&loaded.model.image(), count, seed, temperature);
        if let Some(labels) = labels {
            request = request.with_labels(labels);
        }
        let images = py.detach(|| run(&loaded, &request, naive))?;
        Ok(PyBytes::new(py, &images))
    }

    /// Completions of `pixels`: its top `observed_rows` rows kept, the rest sampled, as
    /// `pixelrnn complete` does; each image is completed `samples` times in a row.
    #[pyo3(signature = (pixels, observed_rows, samples = 1, seed = 0, temperature = 1.0, labels = None, naive = false))]
    #[allow(clippy::too_many_arguments)]
    fn complete<'py>(
        &self,
        py: Python<'py>,
        pixels: Vec<u8>,
        observed_rows: usize,
        samples: usize,
        seed: u64,
        temperature: f64,
        labels: Option<Vec<u8>>,
        naive: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let count = self.count(&pixels)?;
        if observed_rows >= self.height {
            return Err(error(format!(
                "observed_rows must be below the image height {} (got {observed_rows})",
                self.height
            )));
        }
        if samples == 0 {
            return Err(error("samples must be at least 1"));
        }
        check_label_count(labels.as_deref(), count)?;
        check_levels(&pixels, self.levels, self.dims())?;
        let loaded = self.lock();
        let request = Generation::completions_of(
            &loaded.model.image(),
            &pixels,
            samples,
            labels.as_deref(),
            observed_rows,
            seed,
            temperature,
        );
        let images = py.detach(|| run(&loaded, &request, naive))?;
        Ok(PyBytes::new(py, &images))
    }

    /// A `.prnn` file of `pixels` (byte for byte what `pixelrnn compress` writes for the same
    /// images, names and chunk), and each image's `(nll_bits, coded_bits)`.
    #[pyo3(signature = (pixels, names = None, labels = None, chunk = None))]
    #[allow(clippy::type_complexity)]
    fn compress<'py>(
        &self,
        py: Python<'py>,
        pixels: Vec<u8>,
        names: Option<Vec<String>>,
        labels: Option<Vec<u8>>,
        chunk: Option<u32>,
    ) -> PyResult<(Bound<'py, PyBytes>, Vec<(f64, f64)>)> {
        let count = self.count(&pixels)?;
        let names = names.unwrap_or_else(|| (0..count as u64).map(default_name).collect());
        if names.len() != count {
            return Err(error(format!("{} names for {count} images", names.len())));
        }
        let loaded = self.lock();
        let encoded = py.detach(|| {
            let chunk = chunk.unwrap_or_else(|| pixelrnn::codec::auto_chunk(&loaded.model));
            encode_labelled(
                &loaded.model,
                &loaded.config.model,
                &pixels,
                labels.as_deref(),
                &names,
                chunk,
                &mut |_, _| {},
            )
        });
        let encoded = encoded.map_err(error)?;
        let costs = encoded.costs.iter().map(|c| (c.nll_bits, c.coded_bits)).collect();
        Ok((PyBytes::new(py, &encoded.bytes), costs))
    }

    /// The images of a `.prnn` file coded with this model: `(pixels, count, names, labels)`.
    #[allow(clippy::type_complexity)]
    fn decompress<'py>(
        &self,
        py: Python<'py>,
        data: Vec<u8>,
    ) -> PyResult<(Bound<'py, PyBytes>, usize, Vec<String>, Option<Vec<u8>>)> {
        let loaded = self.lock();
        let decoded =
            py.detach(|| decode(&loaded.model, &loaded.config.model, &data, &mut |_, _| {})).map_err(error)?;
        let count = decoded.names.len();
        Ok((PyBytes::new(py, &decoded.images), count, decoded.names, decoded.labels))
    }

    /// The first `limit` images of a split ("train", "valid", "test") of the run's dataset, as
    /// the CLI finds them (`data_dir`, else the folder the run recorded, else the user cache,
    /// fetched on first use): `(pixels, count, labels)`.
    #[pyo3(signature = (split = "test", limit = None, data_dir = None))]
    #[allow(clippy::type_complexity)]
    fn dataset<'py>(
        &self,
        py: Python<'py>,
        split: &str,
        limit: Option<usize>,
        data_dir: Option<std::path::PathBuf>,
    ) -> PyResult<(Bound<'py, PyBytes>, usize, Option<Vec<u8>>)> {
        let split = match split {
            "train" => Split::Train,
            "valid" => Split::Valid,
            "test" => Split::Test,
            other => return Err(error(format!("split {other:?}: expected \"train\", \"valid\" or \"test\""))),
        };
        let config = self.lock().config.clone();
        let found = py.detach(|| -> anyhow::Result<(Vec<u8>, usize, Option<Vec<u8>>)> {
            let dir = pixelrnn_cli::run_args::run_data_dir(&config, data_dir.as_deref())?;
            let options =
                LoadOptions { valid_size: config.data.valid_size, mirror: None, no_verify: config.data.no_verify };
            let splits = pixelrnn_cli::data_cmd::fetch_and_load(config.data.dataset, &dir, &options)?;
            let set = splits.get(split)?;
            let count = limit.map_or(set.len(), |l| l.min(set.len()));
            let labels = set.labels.as_ref().map(|l| l[..count].to_vec());
            Ok((set.pixels[..count * set.image_size()].to_vec(), count, labels))
        });
        let (pixels, count, labels) = found.map_err(crate::anyhow_error)?;
        Ok((PyBytes::new(py, &pixels), count, labels))
    }

    /// The weights as safetensors bytes, in this crate's layout (`layout="pixelrnn"`) or the
    /// PyTorch twin's (`layout="pytorch"`), as `pixelrnn export` writes them.
    #[pyo3(signature = (layout = "pytorch"))]
    fn export<'py>(&self, py: Python<'py>, layout: &str) -> PyResult<Bound<'py, PyBytes>> {
        let layout = match layout {
            "pytorch" => Layout::Pytorch,
            "pixelrnn" => Layout::Native,
            other => return Err(error(format!("layout {other:?}: expected \"pytorch\" or \"pixelrnn\""))),
        };
        let loaded = self.lock();
        let config = &loaded.config;
        let info = TrainingInfo {
            dataset: Some(config.data.dataset.name().to_string()),
            step: Some(self.step),
            seed: Some(config.training.seed),
            best_valid_bits_per_dim: None,
            batch_size: Some(config.training.batch_size),
            optimizer: Some(serde_json::to_string(&config.optimizer).map_err(error)?),
        };
        let bytes = py.detach(|| export(&loaded.model, &config.model, &info, layout)).map_err(error)?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn __repr__(&self) -> String {
        let weights = match self.average {
            Some((decay, _)) => format!("averaged weights (decay {decay})"),
            None => "raw weights".into(),
        };
        format!(
            "<pixelrnn.Model {} on {} {}x{}x{} ({} levels), step {}, {weights}, from {}>",
            self.architecture,
            self.dataset_name,
            self.channels,
            self.height,
            self.width,
            self.levels,
            self.step,
            self.run_dir
        )
    }
}

/// Runs a generation request with the fast or the naive sampler.
fn run(loaded: &Loaded, request: &Generation, naive: bool) -> PyResult<Vec<u8>> {
    let sampler = if naive { Sampler::Naive } else { Sampler::Fast };
    generate(&loaded.model, request, sampler, &loaded.device, &mut |_, _| {}).map_err(error)
}

fn check_label_count(labels: Option<&[u8]>, count: usize) -> PyResult<()> {
    match labels {
        Some(l) if l.len() != count => Err(error(format!("{} labels for {count} images", l.len()))),
        _ => Ok(()),
    }
}

/// Every value below `levels`.
fn check_levels(pixels: &[u8], levels: usize, dims: usize) -> PyResult<()> {
    match pixels.iter().position(|&v| v as usize >= levels) {
        Some(at) => Err(error(format!(
            "image {} has the value {} where the model takes 0..{}",
            at / dims,
            pixels[at],
            levels - 1
        ))),
        None => Ok(()),
    }
}
