//! Causality, proven for every model and both data kinds, three ways:
//! - perturbation: changing one input sub-pixel leaves every earlier output distribution
//!   bit-identical, and changes at least one later one;
//! - gradient: every output's gradient with respect to its own and every future input
//!   sub-pixel is exactly zero, and some earlier one is non-zero;
//! - receptive fields: PixelCNN's blind spot, Row LSTM's triangle, Diagonal BiLSTM's full view.
//!
//! Sub-pixel order: raster over pixels, R -> G -> B within a pixel:
//! index = (row * width + col) * channels + channel.

// Loops over (row, col) read as coordinates; iterator chains would hide them.
#![allow(clippy::needless_range_loop)]

use burn::prelude::*;
use pixelrnn::field::dependency_fields;
use pixelrnn::image_spec::ImageSpec;
use pixelrnn::models::{Architecture, ModelConfig, PixelRnn, Preset};

const ARCHITECTURES: [Architecture; 4] = Architecture::ALL;

/// (channels, height, width, levels): binary 1-channel and 256-level RGB, square and not.
const SPECS: [(usize, usize, usize, usize); 5] =
    [(1, 5, 7, 2), (1, 6, 4, 2), (1, 4, 4, 256), (3, 5, 7, 256), (3, 3, 4, 256)];

/// The device under test: the CPU, or `PIXELRNN_TEST_DEVICE` (`vulkan`, `wgpu`) when set —
/// `scripts/gpu-check.sh` runs this file on the GPU that way.
fn device() -> Device {
    use pixelrnn::device::{open, Backend};
    let backend = match std::env::var("PIXELRNN_TEST_DEVICE").as_deref() {
        Err(_) | Ok("cpu") => Backend::Cpu,
        Ok("vulkan") => Backend::Vulkan,
        Ok("wgpu") => Backend::Wgpu,
        Ok(other) => panic!("PIXELRNN_TEST_DEVICE={other}: expected cpu, vulkan or wgpu"),
    };
    open(backend).unwrap()
}

fn spec((channels, height, width, levels): (usize, usize, usize, usize)) -> ImageSpec {
    ImageSpec { channels, height, width, levels }
}

fn model(arch: Architecture, image: ImageSpec, device: &Device, residual: bool, skip: bool) -> PixelRnn {
    let mut config = ModelConfig::preset(Preset::Tiny, arch, image).unwrap();
    config.residual = residual;
    config.skip = skip;
    if !residual {
        // Without the identity path a tiny ReLU stack can lose a pixel's influence through dead
        // units, which would make the "something later changes" check fail for the wrong reason.
        config.hidden_channels = 24;
        config.output_hidden_channels = 30;
    }
    config.init(device, 7).unwrap()
}

/// A fixed pseudo-random image, raw values in 0..levels, `[channels * height * width]`.
fn base_image(image: &ImageSpec) -> Vec<i64> {
    xorshift_values(image.dims(), image.levels, 0x2545_f491_4f6c_dd1d)
}

/// `count` pseudo-random raw values in `0..levels` from a xorshift generator seeded with `seed`
/// (also used by `tests/gpu.rs`, which includes this file).
pub(crate) fn xorshift_values(count: usize, levels: usize, seed: u64) -> Vec<i64> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % levels as u64) as i64
        })
        .collect()
}

/// Logits as a flat vector `[batch, out, height, width]`.
fn logits_of(model: &PixelRnn, images: Vec<i64>, batch: usize, device: &Device) -> Vec<f32> {
    let image = model.image();
    let t = Tensor::<4, Int>::from_data(
        TensorData::new(images, [batch, image.channels, image.height, image.width]),
        device,
    );
    model.logits(t).into_data().try_to_vec::<f32>().unwrap()
}

/// The logits that parameterise sub-pixel `s`'s distribution in batch element `b`.
fn distribution(logits: &[f32], image: &ImageSpec, b: usize, s: usize) -> Vec<u32> {
    let (c, h, w) = (image.channels, image.height, image.width);
    let per = pixelrnn::distribution::OutputDistribution::of(image).params_per_subpixel();
    let (pixel, channel) = (s / c, s % c);
    let (row, col) = (pixel / w, pixel % w);
    (0..per)
        .map(|k| {
            let o = channel * per + k;
            logits[((b * c * per + o) * h + row) * w + col].to_bits()
        })
        .collect()
}

fn perturbation_test(arch: Architecture, image: ImageSpec, residual: bool, skip: bool) {
    let device = device();
    let model = model(arch, image, &device, residual, skip);
    let n = image.dims();
    let base = base_image(&image);
    let mut perturbed = Vec::with_capacity(n * n);
    for p in 0..n {
        let mut x = base.clone();
        // A large change of sub-pixel p (channel-major layout: [channel, row, col]).
        let (c, hw) = (image.channels, image.height * image.width);
        let index = (p % c) * hw + p / c;
        x[index] = (x[index] + image.levels as i64 / 2) % image.levels as i64;
        perturbed.extend(x);
    }
    let replicated: Vec<i64> = (0..n).flat_map(|_| base.iter().copied()).collect();
    // Same batch element index in both runs, so the arithmetic is identical where nothing moved.
    let before = logits_of(&model, replicated, n, &device);
    let after = logits_of(&model, perturbed, n, &device);
    for p in 0..n {
        for s in 0..=p {
            assert_eq!(
                distribution(&before, &image, p, s),
                distribution(&after, &image, p, s),
                "{arch:?} {image:?}: changing sub-pixel {p} changed the distribution of earlier sub-pixel {s}"
            );
        }
        if p + 1 < n {
            let changed = (p + 1..n).any(|s| distribution(&before, &image, p, s) != distribution(&after, &image, p, s));
            assert!(changed, "{arch:?} {image:?}: changing sub-pixel {p} changed nothing later (vacuous)");
        }
    }
}

/// `grad[b][q]`: gradient of target `b`'s output logit(s) with respect to input sub-pixel `q`,
/// for one target per batch element (`targets[b]` is a sub-pixel index).
/// |d logits(target) / d input| for each target sub-pixel index, in sub-pixel order (the
/// library's dependency fields, measured at the base image).
fn input_gradients(model: &PixelRnn, targets: &[usize], device: &Device) -> Vec<Vec<f32>> {
    let image = model.image();
    let (c, h, w) = (image.channels, image.height, image.width);
    let at: Vec<(usize, usize, usize)> = targets.iter().map(|&s| ((s / c) / w, (s / c) % w, s % c)).collect();
    let fields = dependency_fields(model, &base_image(&image), &at, device).unwrap();
    fields.iter().map(|f| (0..c * h * w).map(|q| f.magnitude[(q % c) * h * w + q / c]).collect()).collect()
}

fn gradient_test(arch: Architecture, image: ImageSpec) {
    let device = device().autodiff();
    let model = model(arch, image, &device, true, true);
    let n = image.dims();
    let targets: Vec<usize> = (0..n).collect();
    let grads = input_gradients(&model, &targets, &device);
    for (s, g) in grads.iter().enumerate() {
        for (q, &v) in g.iter().enumerate().skip(s) {
            assert!(v == 0.0, "{arch:?} {image:?}: output {s} has gradient {v} from input {q} (not before it)");
        }
        if s > 0 {
            assert!(g[..s].iter().any(|&v| v != 0.0), "{arch:?} {image:?}: output {s} depends on nothing");
        }
    }
}

#[test]
fn perturbation_every_model_every_spec() {
    for arch in ARCHITECTURES {
        for s in SPECS {
            perturbation_test(arch, spec(s), true, true);
        }
    }
}

#[test]
fn perturbation_without_residual_or_skip() {
    for arch in ARCHITECTURES {
        for (residual, skip) in [(false, true), (true, false), (false, false)] {
            perturbation_test(arch, spec((3, 4, 5, 256)), residual, skip);
            perturbation_test(arch, spec((1, 4, 5, 2)), residual, skip);
        }
    }
}

#[test]
fn gradient_every_model_every_spec() {
    for arch in ARCHITECTURES {
        for s in SPECS {
            gradient_test(arch, spec(s));
        }
    }
}

/// Which earlier pixels influence the output at (row, col) of a binary model.
fn seen_pixels(
    arch: Architecture,
    num_layers: usize,
    height: usize,
    width: usize,
    row: usize,
    col: usize,
) -> Vec<Vec<bool>> {
    let device = device().autodiff();
    let image = ImageSpec { channels: 1, height, width, levels: 2 };
    let mut config = ModelConfig::preset(Preset::Tiny, arch, image).unwrap();
    config.num_layers = num_layers;
    let model = config.init(&device, 3).unwrap();
    let g = &input_gradients(&model, &[row * width + col], &device)[0];
    (0..height).map(|r| (0..width).map(|c| g[r * width + c] != 0.0).collect()).collect()
}

#[test]
fn pixel_cnn_has_a_blind_spot() {
    // Target (6, 3): the first 7x7 mask A layer reaches (5, 6) in the row above, and no stack
    // of 3x3 mask B layers reaches further right in that row; two rows up it does.
    let seen = seen_pixels(Architecture::PixelCnn, 3, 8, 10, 6, 3);
    assert!(seen[5][6], "PixelCNN must see (r-1, c+3)");
    assert!(!seen[5][7], "PixelCNN must have a blind spot at (r-1, c+4)");
    assert!(seen[4][7], "PixelCNN sees (r-2, c+4) around the blind spot");
}

#[test]
fn gated_pixel_cnn_has_no_blind_spot() {
    // The target of `pixel_cnn_has_a_blind_spot`: the vertical stack reaches one column
    // further right per layer, (r-1, c+3+3) with 3 layers.
    let seen = seen_pixels(Architecture::GatedPixelCnn, 3, 8, 10, 6, 3);
    assert!(seen[5][7] && seen[5][9], "Gated PixelCNN must see the PixelCNN's blind spot");
    assert!(!seen[6][4] && !seen[7][0], "nothing right of or below the target");
}

#[test]
fn gated_pixel_cnn_sees_every_earlier_pixel_when_deep_enough() {
    // 4 layers on 6x6: the vertical stack reaches 3 + 4 columns sideways and 3 + 4 rows up,
    // the 7x7 first convolution 3 pixels to the left: every earlier pixel, and nothing else.
    for (row, col) in [(5, 2), (5, 0), (3, 5), (1, 1)] {
        let seen = seen_pixels(Architecture::GatedPixelCnn, 4, 6, 6, row, col);
        for r in 0..6 {
            for c in 0..6 {
                let earlier = r * 6 + c < row * 6 + col;
                assert_eq!(seen[r][c], earlier, "({r}, {c}) for target ({row}, {col})");
            }
        }
    }
}

#[test]
fn row_lstm_receptive_field_is_triangular() {
    // One layer, target (9, 5) of a 10x12 image.
    let seen = seen_pixels(Architecture::RowLstm, 1, 10, 12, 9, 5);
    assert!(seen[0][5], "the recurrence carries row 0 down to row 9");
    assert!(seen[0][11], "the triangle widens upwards");
    assert!(!seen[8][10], "the row above is cut off at (r-1, c+4)");
    assert!(!seen[9][0], "far left in the same row is outside the triangle");
}

/// Whether input pixel (r, c) lies in the 7x7 mask A window of position (pr, pc).
fn in_mask_a_window(r: usize, c: usize, pr: usize, pc: usize) -> bool {
    let (r, c, pr, pc) = (r as i64, c as i64, pr as i64, pc as i64);
    (pr - 3 <= r && r < pr && (c - pc).abs() <= 3) || (r == pr && pc - 3 <= c && c < pc)
}

#[test]
fn diagonal_bilstm_sees_every_earlier_pixel() {
    // The full receptive field of §3.2: every input pixel that reaches *any* first-layer feature
    // at or before the target. (An input pixel reaches the network only through the 7x7 mask A
    // layer, so e.g. the last pixel of the row above is out of reach of a target at column 0:
    // only features to its right or below see it.)
    for (height, width, row, col) in [(6, 6, 5, 2), (5, 8, 4, 0), (7, 4, 6, 3), (8, 9, 7, 5)] {
        let seen = seen_pixels(Architecture::DiagonalBilstm, 1, height, width, row, col);
        let mut count = 0;
        for r in 0..height {
            for c in 0..width {
                let reachable = (0..=row * width + col).any(|p| in_mask_a_window(r, c, p / width, p % width));
                assert_eq!(seen[r][c], reachable, "({r}, {c}) for target ({row}, {col}) in {height}x{width}");
                count += reachable as usize;
            }
        }
        // Everything earlier except at most the right end of the row above is seen.
        assert!(count + 4 >= row * width + col, "{count} of {} earlier pixels seen", row * width + col);
    }
}

#[test]
fn pixel_cnn_and_row_lstm_see_less_than_the_full_field() {
    // Contrast with the Diagonal BiLSTM: the same reachability rule, but pixels are missed.
    for arch in [Architecture::PixelCnn, Architecture::RowLstm] {
        let (height, width, row, col) = (8, 10, 7, 3);
        let seen = seen_pixels(arch, 2, height, width, row, col);
        let missed = (0..height * width)
            .filter(|&q| {
                let reachable =
                    (0..=row * width + col).any(|p| in_mask_a_window(q / width, q % width, p / width, p % width));
                reachable && !seen[q / width][q % width]
            })
            .count();
        assert!(missed > 0, "{arch:?} should not have a full receptive field");
    }
}

#[test]
fn diagonal_bilstm_right_to_left_is_shifted_down() {
    // Without the shift down, the right-to-left scan at (i, j) would see (i, j+1): the pixel
    // right of the target. Its gradient must be zero, while the pixel above-right is seen.
    let seen = seen_pixels(Architecture::DiagonalBilstm, 1, 5, 6, 3, 2);
    assert!(!seen[3][3] && !seen[3][5], "the right-to-left map leaks the current row");
    assert!(seen[2][5], "the right-to-left map must carry the row above from the right");
}

/// L = 0 (`train --layers 0`): no residual block or LSTM layer, only the 7x7 mask-A convolution
/// and the output stack; every architecture sees exactly the mask's half of the 7x7 window:
/// the three rows above (columns c-3..=c+3) and the three pixels to the left.
#[test]
fn zero_layers_see_exactly_the_first_convolutions_window() {
    let device = device().autodiff();
    let image = spec((1, 10, 10, 2));
    let (row, col) = (5usize, 5usize);
    let mut expected = Vec::new();
    for r in 0..10usize {
        for c in 0..10usize {
            let above = r + 3 >= row && r < row && c + 3 >= col && c <= col + 3;
            let left = r == row && c + 3 >= col && c < col;
            if above || left {
                expected.push((r, c, 0));
            }
        }
    }
    assert_eq!(expected.len(), 24);
    for arch in ARCHITECTURES {
        for (residual, skip) in [(true, true), (false, false)] {
            let mut config = ModelConfig::preset(Preset::Tiny, arch, image).unwrap();
            (config.num_layers, config.residual, config.skip) = (0, residual, skip);
            let model = config.init(&device, 7).unwrap();
            let raw = pixelrnn::field::probe_image(&image);
            let field = dependency_fields(&model, &raw, &[(row, col, 0)], &device).unwrap().remove(0);
            assert_eq!(field.dependencies(), expected, "{arch:?} residual={residual} skip={skip}");
        }
    }
}
