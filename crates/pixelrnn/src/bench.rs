//! The benchmark models M1-M6 (`docs/bench-specs.md`), or any run's model, built with this
//! crate's own model code, and timed the way the PyTorch side (`python/bench/twin_bench.py`)
//! times the twin, so the two can be compared line by line; with the fraction of the machine's
//! FMA peak the model's convolutions reach ([`crate::models::PixelRnn::forward_macs_per_image`],
//! [`crate::kernels::fma_peak`]).

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::codec;
use crate::device::{describe, open, Backend};
use crate::error::{Error, Result};
use crate::image_spec::ImageSpec;
use crate::models::ModelConfig;
use crate::sample::{generate, Generation, Sampler};

pub use crate::models::specs::Spec;

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Mode {
    /// Forward + loss + backward + Adam(lr 1e-3) update.
    Train,
    /// Forward + loss without gradients.
    Infer,
    /// Generating a whole batch with the fast sampler.
    Sample,
    /// Coding a batch of images losslessly with the model (`pixelrnn compress`, one chunk).
    Compress,
    /// Decoding them (`pixelrnn decompress`): beside `sample`, what decoding costs.
    Decompress,
}

impl Mode {
    /// `train`, `infer` or `sample`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Train => "train",
            Mode::Infer => "infer",
            Mode::Sample => "sample",
            Mode::Compress => "compress",
            Mode::Decompress => "decompress",
        }
    }
}

/// One measurement, with the keys of `python/bench/twin_bench.py`'s JSON lines.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// "pixelrnn".
    pub framework: &'static str,
    /// Crate version.
    pub version: &'static str,
    /// m1..m6, or the run's folder name.
    pub model: String,
    /// train, infer or sample.
    pub mode: String,
    /// Backend: `cpu`, `vulkan` or `wgpu`.
    pub device: String,
    /// The adapter (GPU name, type, driver) or the CPU's thread count.
    pub adapter: String,
    /// Worker threads.
    pub threads: usize,
    /// Images per step.
    pub batch: usize,
    /// Trainable parameters.
    pub params: usize,
    /// Untimed steps.
    pub warmup: usize,
    /// Timed steps.
    pub steps: usize,
    /// Median step time, seconds.
    pub median_step_s: f64,
    /// Fastest step, seconds.
    pub min_step_s: f64,
    /// batch / median step time.
    pub images_per_sec: f64,
    /// Loss of the last step (nats/image, or bits/dim for m2).
    pub loss: f64,
    /// Unit of `loss`.
    pub loss_unit: &'static str,
    /// Multiply-accumulates of the model's convolutions per image, forward, visible weights only.
    pub forward_macs_per_image: u64,
    /// The rate of those convolutions' flops (2 per MAC; a training step counts 3 passes:
    /// forward, input gradient, weight gradient), GFLOP/s; train and infer only.
    pub conv_gflops: Option<f64>,
    /// The machine's measured FMA peak with the same threads, GFLOP/s (CPU; train and infer).
    pub fma_peak_gflops: Option<f64>,
    /// `conv_gflops / fma_peak_gflops`.
    pub fraction_of_fma_peak: Option<f64>,
}

/// A model to time: a benchmark spec's, or a run's (`pixelrnn bench --run`).
#[derive(Debug, Clone)]
pub struct Workload {
    /// What the measurement is called (`model` in the JSON).
    pub name: String,
    /// The model.
    pub config: ModelConfig,
    /// Images per step unless the caller says otherwise.
    pub batch: usize,
}

impl From<Spec> for Workload {
    fn from(spec: Spec) -> Self {
        Workload { name: spec.name().into(), config: spec.model_config(), batch: spec.batch() }
    }
}

fn inputs(image: &ImageSpec, batch: usize, device: &Device) -> Tensor<4, Int> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let data: Vec<i32> = (0..batch * image.dims()).map(|_| (rng.next_u32() % image.levels as u32) as i32).collect();
    Tensor::from_data(TensorData::new(data, [batch, image.channels, image.height, image.width]), device)
}

fn round5(v: f64) -> f64 {
    (v * 1e5).round() / 1e5
}

/// Times `steps` steps of `mode` on `spec`'s model after `warmup` untimed ones.
pub fn run(
    spec: Spec,
    mode: Mode,
    batch: Option<usize>,
    warmup: usize,
    steps: usize,
    threads: usize,
    backend: Backend,
) -> Result<Measurement> {
    run_workload(&spec.into(), mode, batch, warmup, steps, threads, backend)
}

/// Times `steps` steps of `mode` on `workload`'s model after `warmup` untimed ones.
pub fn run_workload(
    workload: &Workload,
    mode: Mode,
    batch: Option<usize>,
    warmup: usize,
    steps: usize,
    threads: usize,
    backend: Backend,
) -> Result<Measurement> {
    let device = &open(backend)?;
    if steps == 0 {
        return Err(Error::Config("the number of timed steps must be at least 1".into()));
    }
    let batch = batch.unwrap_or(workload.batch);
    let config = workload.config.clone();
    let needed = if mode == Mode::Train { config.training_bytes(batch) } else { config.inference_bytes(batch) };
    crate::resources::check_fits(
        &format!("{} of {} at batch {batch}", mode.name(), workload.name),
        needed,
        crate::resources::available_memory(),
    )?;
    let dims = config.image.dims() as f64;
    // Bits/dim for images of more levels than 2 (M2, M5, M6), nats/image for binary ones.
    let bits = config.image.levels > 2;
    let to_loss = |nats_per_image: f64| {
        if bits {
            nats_per_image / dims / std::f64::consts::LN_2
        } else {
            nats_per_image
        }
    };
    let mut times = Vec::with_capacity(steps);
    let mut loss = 0.0;
    let params;
    match mode {
        Mode::Train => {
            let ad = device.clone().autodiff();
            let mut model = config.init(&ad, 0)?;
            params = model.num_params();
            let x = inputs(&config.image, batch, &ad);
            let mut optim = AdamConfig::new().init();
            for i in 0..warmup + steps {
                let start = Instant::now();
                let l = model.nll(x.clone()).mean();
                let grads = GradientsParams::from_grads(l.backward(), &model);
                model = optim.step(1e-3, model, grads);
                loss = l.into_scalar::<f32>() as f64; // synchronises the device
                if i >= warmup {
                    times.push(start.elapsed().as_secs_f64());
                }
            }
        }
        Mode::Infer => {
            let model = config.init(device, 0)?;
            params = model.num_params();
            let x = inputs(&config.image, batch, device);
            for i in 0..warmup + steps {
                let start = Instant::now();
                loss = model.nll(x.clone()).mean().into_scalar::<f32>() as f64;
                if i >= warmup {
                    times.push(start.elapsed().as_secs_f64());
                }
            }
        }
        Mode::Sample => {
            let model = config.init(device, 0)?;
            params = model.num_params();
            for i in 0..warmup + steps {
                let start = Instant::now();
                let request = Generation::samples(&config.image, batch, i as u64, 1.0);
                generate(&model, &request, Sampler::Fast, device, &mut |_, _| {})?;
                if i >= warmup {
                    times.push(start.elapsed().as_secs_f64());
                }
            }
        }
        Mode::Compress | Mode::Decompress => {
            let model = config.init(device, 0)?;
            params = model.num_params();
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let images: Vec<u8> =
                (0..batch * config.image.dims()).map(|_| (rng.next_u32() % config.image.levels as u32) as u8).collect();
            let names: Vec<String> = (0..batch).map(|i| i.to_string()).collect();
            let chunk = batch as u32;
            let coded = codec::encode(&model, &config, &images, &names, chunk, &mut |_, _| {})?;
            loss = coded.costs.iter().map(|c| c.coded_bits).sum::<f64>() * std::f64::consts::LN_2 / batch as f64;
            for i in 0..warmup + steps {
                let start = Instant::now();
                if mode == Mode::Compress {
                    codec::encode(&model, &config, &images, &names, chunk, &mut |_, _| {})?;
                } else {
                    let decoded = codec::decode(&model, &config, &coded.bytes, &mut |_, _| {})?;
                    debug_assert_eq!(decoded.images, images);
                }
                if i >= warmup {
                    times.push(start.elapsed().as_secs_f64());
                }
            }
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let median = if steps % 2 == 1 { sorted[steps / 2] } else { (sorted[steps / 2 - 1] + sorted[steps / 2]) / 2.0 };
    let images_per_sec = batch as f64 / median;
    let macs = config.init(device, 0)?.forward_macs_per_image();
    let passes = match mode {
        Mode::Train => Some(3.0),
        Mode::Infer => Some(1.0),
        Mode::Sample | Mode::Compress | Mode::Decompress => None,
    };
    let conv_gflops = passes.map(|p| p * 2.0 * macs as f64 * images_per_sec / 1e9);
    let peak =
        if backend == Backend::Cpu { conv_gflops.and(crate::kernels::fma_peak::fma_peak_gflops()) } else { None };
    let fraction = conv_gflops.zip(peak).map(|(achieved, peak)| round5(achieved / peak));
    Ok(Measurement {
        framework: "pixelrnn",
        version: env!("CARGO_PKG_VERSION"),
        model: workload.name.clone(),
        mode: mode.name().into(),
        device: backend.name().into(),
        adapter: describe(backend),
        threads,
        batch,
        params,
        warmup,
        steps,
        median_step_s: round5(median),
        min_step_s: round5(sorted[0]),
        images_per_sec: (images_per_sec * 1e4).round() / 1e4,
        loss: (to_loss(loss) * 1e4).round() / 1e4,
        loss_unit: if bits { "bits/dim" } else { "nats/image" },
        forward_macs_per_image: macs,
        conv_gflops: conv_gflops.map(|g| (g * 1e3).round() / 1e3),
        fma_peak_gflops: peak.map(|g| (g * 1e3).round() / 1e3),
        fraction_of_fma_peak: fraction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_build_and_time_one_step() {
        for spec in [Spec::M1, Spec::M3, Spec::M4, Spec::M5, Spec::M6] {
            let m = run(spec, Mode::Infer, Some(2), 0, 1, 1, Backend::Cpu).unwrap();
            assert_eq!((m.batch, m.steps, m.model.as_str()), (2, 1, spec.name()));
            if spec == Spec::M4 {
                for mode in [Mode::Compress, Mode::Decompress] {
                    let m = run(spec, mode, Some(2), 0, 1, 1, Backend::Cpu).unwrap();
                    assert_eq!(m.mode, mode.name());
                    // Random images under an untrained binary model: about 1 bit per pixel.
                    assert!((m.loss / std::f64::consts::LN_2 / 784.0 - 1.0).abs() < 0.2, "{}", m.loss);
                }
            }
            assert!(m.median_step_s > 0.0 && m.loss > 0.0 && m.params > 0);
        }
        // M1's parameter count equals the PyTorch twin's (python/pixelrnn/twin.py: PixelCNN(32, rgb=False)).
        let p = Spec::M1.model_config().init(&Device::flex(), 0).unwrap().num_params();
        let h = 32;
        let expected = (2 * h * 49 + 2 * h)
            + 7 * ((2 * h * h + h) + (h * h * 9 + h) + (h * 2 * h + 2 * h))
            + (2 * h * 2 * h + 2 * h)
            + (2 * h + 1);
        assert_eq!(p, expected);
    }
}
