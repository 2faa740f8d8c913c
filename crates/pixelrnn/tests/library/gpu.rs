//! GPU correctness: the same model and weights give the same NLL on the CPU and on
//! the GPU (within 1e-4 relative), for every architecture, binary and RGB; gradients agree
//! too. Causality on the GPU: this binary also holds the causality tests, which run on the
//! device `PIXELRNN_TEST_DEVICE` names (`scripts/gpu-check.sh` sets it), so one carried test
//! executable checks both.
//!
//! Built only with the `vulkan` or `wgpu` feature. Without an adapter the tests print why and
//! pass, unless `PIXELRNN_REQUIRE_GPU=1` (set by `scripts/gpu-check.sh`) makes that a failure.
use crate::causality;
use burn::module::Module;
use burn::prelude::*;
use pixelrnn::device::{describe, open, Backend};
use pixelrnn::image_spec::ImageSpec;
use pixelrnn::models::{Architecture, ModelConfig, Preset};

const RELATIVE: f64 = 1e-4;

fn gpu() -> Option<Device> {
    let backend = if cfg!(feature = "vulkan") { Backend::Vulkan } else { Backend::Wgpu };
    match open(backend) {
        Ok(device) => {
            eprintln!("GPU under test: {}", describe(backend));
            Some(device)
        }
        Err(e) if std::env::var_os("PIXELRNN_REQUIRE_GPU").is_none() => {
            eprintln!("skipped: no GPU ({e})");
            None
        }
        Err(e) => panic!("PIXELRNN_REQUIRE_GPU is set but {e}"),
    }
}

fn images(image: &ImageSpec, batch: usize, device: &Device) -> Tensor<4, Int> {
    let values = causality::xorshift_values(batch * image.dims(), image.levels, 0x9e37_79b9_7f4a_7c15);
    Tensor::from_data(TensorData::new(values, [batch, image.channels, image.height, image.width]), device)
}

fn close(what: &str, cpu: &[f32], gpu: &[f32]) {
    assert_eq!(cpu.len(), gpu.len());
    for (i, (&a, &b)) in cpu.iter().zip(gpu).enumerate() {
        let scale = (a.abs() as f64).max(1.0);
        assert!(
            ((a - b) as f64).abs() <= RELATIVE * scale,
            "{what}[{i}]: cpu {a} vs gpu {b} (relative tolerance {RELATIVE})"
        );
    }
}

const IMAGES: [ImageSpec; 2] = [
    ImageSpec { channels: 1, height: 7, width: 9, levels: 2 },
    ImageSpec { channels: 3, height: 6, width: 5, levels: 256 },
];

#[test]
fn nll_is_the_same_on_cpu_and_gpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    for arch in [Architecture::PixelCnn, Architecture::RowLstm, Architecture::DiagonalBilstm] {
        for image in IMAGES {
            let model = ModelConfig::preset(Preset::Tiny, arch, image).unwrap().init(&cpu, 11).unwrap();
            let on_gpu = model.clone().to_device(&gpu);
            let nll_cpu = model.nll(images(&image, 4, &cpu)).into_data().try_to_vec::<f32>().unwrap();
            let nll_gpu = on_gpu.nll(images(&image, 4, &gpu)).into_data().try_to_vec::<f32>().unwrap();
            close(&format!("{arch:?} {image:?} nll"), &nll_cpu, &nll_gpu);
        }
    }
}

#[test]
fn gradients_are_the_same_on_cpu_and_gpu() {
    let Some(gpu) = gpu() else { return };
    let (cpu, gpu) = (Device::flex().autodiff(), gpu.autodiff());
    for arch in [Architecture::PixelCnn, Architecture::RowLstm, Architecture::DiagonalBilstm] {
        let image = IMAGES[1];
        let model = ModelConfig::preset(Preset::Tiny, arch, image).unwrap().init(&cpu, 5).unwrap();
        let on_gpu = model.clone().to_device(&gpu);
        let gradient_of = |m: &pixelrnn::models::PixelRnn, device: &Device| {
            let loss = m.nll(images(&image, 2, device)).sum();
            let grads = loss.backward();
            let first = m.input.weight.val();
            first.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap()
        };
        close(&format!("{arch:?} first-layer gradient"), &gradient_of(&model, &cpu), &gradient_of(&on_gpu, &gpu));
    }
}
