//! Time per generated sub-pixel, fast (incremental) vs naive (one full forward pass per
//! sub-pixel), for each architecture at 28x28 binary and 32x32 RGB, batch 1.
//!
//! `cargo bench -p pixelrnn --bench sampling`. The naive figure is the time of one full forward
//! pass (what the naive sampler spends per sub-pixel); the fast figure is the time to generate
//! a whole image, to be divided by its H*W*C sub-pixels. Models follow the benchmark specs of
//! docs/bench-specs.md: PixelCNN 7 blocks (h = 32 binary, h = 64 RGB), Row LSTM 1 layer
//! h = 32, Diagonal BiLSTM 1 layer h = 16; output width d = 2h, no skip connections; Gated
//! PixelCNN as the PixelCNN, and on RGB also the PixelCNN with a 10-way logistic mixture head.

use burn::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use pixelrnn::image_spec::ImageSpec;
use pixelrnn::models::{Architecture, ModelConfig, OutputHead, PixelRnn, Preset};
use pixelrnn::sample::{generate, Generation, Sampler};

fn spec_model(arch: Architecture, image: ImageSpec, output: OutputHead) -> PixelRnn {
    let rgb = image.channels == 3;
    let (layers, h) = match arch {
        Architecture::PixelCnn | Architecture::GatedPixelCnn => (7, if rgb { 64 } else { 32 }),
        Architecture::RowLstm => (1, 32),
        Architecture::DiagonalBilstm => (1, 16),
    };
    let mut config = ModelConfig::preset(Preset::Tiny, arch, image).unwrap();
    config.num_layers = layers;
    config.hidden_channels = h;
    config.output_hidden_channels = 2 * h;
    config.skip = false;
    config.output = output;
    config.init(&Device::flex(), 0).unwrap()
}

fn sampling(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("sampling");
    group
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    for image in [
        ImageSpec { channels: 1, height: 28, width: 28, levels: 2 },
        ImageSpec { channels: 3, height: 32, width: 32, levels: 256 },
    ] {
        let mut models: Vec<(Architecture, OutputHead)> =
            Architecture::ALL.into_iter().map(|arch| (arch, OutputHead::Softmax)).collect();
        if !image.is_binary() {
            models.push((Architecture::PixelCnn, OutputHead::Mixture { components: 10 }));
        }
        for (arch, output) in models {
            let model = spec_model(arch, image, output);
            let head = if output == OutputHead::Softmax { "" } else { "+mixture" };
            let name = format!("{}{head}/{}x{}x{}", arch.name(), image.height, image.width, image.channels);
            group.bench_function(format!("fast_whole_image/{name}"), |b| {
                b.iter(|| {
                    generate(&model, &Generation::samples(&image, 1, 0, 1.0), Sampler::Fast, &device, &mut |_, _| {})
                        .unwrap()
                })
            });
            let canvas = Tensor::<4, Int>::zeros([1, image.channels, image.height, image.width], &device);
            group.bench_function(format!("naive_per_subpixel/{name}"), |b| {
                b.iter(|| {
                    let logits = model.logits(canvas.clone());
                    logits.slice([0..1, 0..1, 0..1, 0..1]).into_data()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, sampling);
criterion_main!(benches);
