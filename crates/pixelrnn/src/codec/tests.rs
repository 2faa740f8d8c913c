use burn::prelude::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::models::{Architecture, Preset};

const ARCHITECTURES: [Architecture; 4] = Architecture::ALL;

fn model(architecture: Architecture, image: ImageSpec, seed: u64) -> (PixelRnn, ModelConfig) {
    let config = ModelConfig::preset(Preset::Tiny, architecture, image).unwrap();
    (config.init(&Device::flex(), seed).unwrap(), config)
}

/// Images with structure a model can be surprised by: runs of one value with random breaks.
fn images(image: &ImageSpec, count: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut value = 0u32;
    (0..count * image.dims())
        .map(|_| {
            if rng.next_u32() % 5 == 0 {
                value = rng.next_u32() % image.levels as u32;
            }
            value as u8
        })
        .collect()
}

fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("image-{i:03}.png")).collect()
}

fn quiet() -> impl FnMut(usize, usize) {
    |_, _| {}
}

#[test]
fn round_trips_every_model_binary_and_rgb_bit_exactly() {
    let specs = [
        ImageSpec { channels: 1, height: 6, width: 5, levels: 2 },
        ImageSpec { channels: 3, height: 4, width: 5, levels: 256 },
    ];
    for architecture in ARCHITECTURES {
        for image in specs {
            let (model, config) = model(architecture, image, 3);
            // 7 images in chunks of 3: two full chunks and a short one.
            let data = images(&image, 7, 1);
            let encoded = encode(&model, &config, &data, &names(7), 3, &mut quiet()).unwrap();
            let decoded = decode(&model, &config, &encoded.bytes, &mut quiet()).unwrap();
            assert_eq!(decoded.images, data, "{architecture:?} {image:?}");
            assert_eq!(decoded.names, names(7));
            assert_eq!((decoded.header.count, decoded.header.image), (7, image));
        }
    }
}

#[test]
fn a_conditional_model_codes_each_image_under_its_label_and_gives_it_back() {
    let image = ImageSpec { channels: 1, height: 4, width: 5, levels: 2 };
    for architecture in ARCHITECTURES {
        let mut config = ModelConfig::preset(Preset::Tiny, architecture, image).unwrap();
        config.classes = Some(10);
        let mut model = config.init(&Device::flex(), 2).unwrap();
        let table = model.conditioning.as_mut().unwrap();
        let dims = table.table.val().dims();
        let values: Vec<f32> = (0..dims.iter().product::<usize>()).map(|i| (i % 7) as f32 * 0.3 - 0.9).collect();
        table.table =
            burn::module::Param::from_tensor(Tensor::from_data(TensorData::new(values, dims), &Device::flex()));
        let data = images(&image, 5, 8);
        let labels = [3u8, 0, 9, 3, 7];
        let encoded = encode_labelled(&model, &config, &data, Some(&labels), &names(5), 2, &mut quiet()).unwrap();
        let decoded = decode(&model, &config, &encoded.bytes, &mut quiet()).unwrap();
        assert_eq!(
            (decoded.images.clone(), decoded.labels.clone()),
            (data.clone(), Some(labels.to_vec())),
            "{architecture:?}"
        );
        // Each image costs its NLL given its label, plus log2(10) bits for the label.
        let batch = Tensor::<4, Int>::from_data(
            TensorData::new(data.iter().map(|&v| v as i32).collect::<Vec<_>>(), [5, 1, 4, 5]),
            &Device::flex(),
        );
        let y = Tensor::<1, Int>::from_data(
            TensorData::new(labels.iter().map(|&l| l as i32).collect::<Vec<_>>(), [5]),
            &Device::flex(),
        );
        let nats: Vec<f32> = model.nll_given(batch, Some(y)).into_data().try_to_vec().unwrap();
        for (cost, nats) in encoded.costs.iter().zip(nats) {
            let bits = nats as f64 / std::f64::consts::LN_2;
            assert!((cost.nll_bits - bits).abs() < 1e-3 * bits, "{} vs {bits}", cost.nll_bits);
            assert!((cost.coded_bits - cost.nll_bits - 10f64.log2()).abs() < 0.05, "{cost:?}");
        }
        // Labels are required, in range, and only for a conditional model.
        let refused = |labels: Option<&[u8]>, model: &PixelRnn, config: &ModelConfig| {
            encode_labelled(model, config, &data, labels, &names(5), 2, &mut quiet()).unwrap_err().to_string()
        };
        assert!(refused(None, &model, &config).contains("needs each image's class label"));
        assert!(refused(Some(&[0, 1, 2, 3, 10]), &model, &config).contains("class 10 is outside"));
        let (plain, plain_config) = super::tests::model(architecture, image, 2);
        assert!(refused(Some(&labels), &plain, &plain_config).contains("not class-conditional"));
    }
}

#[test]
fn the_logistic_mixture_round_trips_and_costs_its_nll() {
    let image = ImageSpec { channels: 3, height: 4, width: 5, levels: 256 };
    for architecture in ARCHITECTURES {
        let mut config = ModelConfig::preset(Preset::Tiny, architecture, image).unwrap();
        config.output = crate::models::OutputHead::Mixture { components: 4 };
        let model = config.init(&Device::flex(), 9).unwrap();
        let data = images(&image, 5, 4);
        let encoded = encode(&model, &config, &data, &names(5), 2, &mut quiet()).unwrap();
        let decoded = decode(&model, &config, &encoded.bytes, &mut quiet()).unwrap();
        assert_eq!(decoded.images, data, "{architecture:?}");
        let batch = Tensor::<4, Int>::from_data(
            TensorData::new(data.iter().map(|&v| v as i32).collect::<Vec<_>>(), [5, 3, 4, 5]),
            &Device::flex(),
        );
        let nats: Vec<f32> = model.nll(batch).into_data().try_to_vec().unwrap();
        for (cost, nats) in encoded.costs.iter().zip(nats) {
            let bits = nats as f64 / std::f64::consts::LN_2;
            assert!((cost.nll_bits - bits).abs() < 1e-3 * bits, "{architecture:?}: {} vs {bits}", cost.nll_bits);
            assert!((cost.coded_bits - cost.nll_bits).abs() < 1e-3 * image.dims() as f64);
        }
    }
}

#[test]
fn the_file_costs_the_model_nll_plus_the_coder_overhead() {
    let image = ImageSpec { channels: 3, height: 8, width: 8, levels: 256 };
    let (model, config) = model(Architecture::PixelCnn, image, 5);
    let data = images(&image, 12, 2);
    let encoded = encode(&model, &config, &data, &names(12), 64, &mut quiet()).unwrap();
    let nll: f64 = encoded.costs.iter().map(|c| c.nll_bits).sum();
    let coded: f64 = encoded.costs.iter().map(|c| c.coded_bits).sum();
    // The quantization costs a few thousandths of a bit per sub-pixel at most.
    assert!((coded - nll).abs() < 1e-3 * (12 * image.dims()) as f64, "{nll} vs {coded}");
    // The payload: the coded bits rounded up to whole 32-bit words, plus the flush.
    let names_len = names_to_bytes(&names(12)).unwrap().len();
    let payload_bits = ((encoded.bytes.len() - HEADER_LEN - names_len - 8) * 8) as f64;
    assert!(payload_bits >= coded && payload_bits <= coded + 96.0, "{coded} bits coded, payload {payload_bits}");
    // The per-image NLL is the model's own (the batched network's NLL, up to float rounding).
    let batch = Tensor::<4, Int>::from_data(
        TensorData::new(data.iter().map(|&v| v as i32).collect::<Vec<_>>(), [12, 3, 8, 8]),
        &Device::flex(),
    );
    let nats: Vec<f32> = model.nll(batch).into_data().try_to_vec().unwrap();
    for (cost, nats) in encoded.costs.iter().zip(nats) {
        let bits = nats as f64 / std::f64::consts::LN_2;
        assert!((cost.nll_bits - bits).abs() < 1e-3 * bits, "{} vs {bits}", cost.nll_bits);
    }
}

#[test]
fn one_image_per_chunk_gives_each_image_its_own_file_size() {
    let image = ImageSpec { channels: 3, height: 5, width: 4, levels: 256 };
    let (model, config) = model(Architecture::PixelCnn, image, 3);
    let data = images(&image, 3, 9);
    let together = encode(&model, &config, &data, &names(3), 1, &mut quiet()).unwrap();
    assert_eq!(together.chunk_bytes.len(), 3);
    for (i, pixels) in data.chunks(image.dims()).enumerate() {
        let alone = encode(&model, &config, pixels, &[format::default_name(0)], 1, &mut quiet()).unwrap();
        let own = |compact| super::single_image_file_len(image, together.chunk_bytes[i], compact);
        assert_eq!(alone.bytes.len(), own(false), "image {i}");
        assert_eq!(compact::compact(&alone.bytes).unwrap().len(), own(true), "image {i}, compact");
    }
    // Chunks of several images: one stream each.
    let chunked = encode(&model, &config, &data, &names(3), 2, &mut quiet()).unwrap();
    assert_eq!(chunked.chunk_bytes.len(), 2);
}

#[test]
fn the_compact_container_holds_the_same_streams_and_refuses_any_damage() {
    let image = ImageSpec { channels: 3, height: 4, width: 3, levels: 256 };
    let (model, config) = model(Architecture::PixelCnn, image, 4);
    let data = images(&image, 5, 6);
    let encoded = encode(&model, &config, &data, &names(5), 2, &mut quiet()).unwrap();
    let small = compact::compact(&encoded.bytes).unwrap();
    assert!(small.len() + 130 < encoded.bytes.len(), "{} vs {}", small.len(), encoded.bytes.len());
    let names_len = names_to_bytes(&names(5)).unwrap().len();
    assert_eq!(small.len(), compact::compact_len(image, 5, 2, names_len, &encoded.chunk_bytes));
    let decoded = decode(&model, &config, &small, &mut quiet()).unwrap();
    assert_eq!((decoded.images, decoded.names, decoded.header.version), (data, names(5), 2));
    assert!(compact::compact(&small).unwrap_err().to_string().contains("already compact"));
    // Every truncation and every flipped byte is refused, never a panic or wrong images.
    for cut in 0..small.len() {
        assert!(decode(&model, &config, &small[..cut], &mut quiet()).is_err(), "cut at {cut}");
    }
    for at in 0..small.len() {
        let mut bad = small.clone();
        bad[at] ^= 0x10;
        assert!(decode(&model, &config, &bad, &mut quiet()).is_err(), "byte {at} flipped");
    }
    // Another model: refused, naming the 8 bytes of the weights' digest the file keeps.
    let (other, other_config) = model_pair_other(image);
    let err = decode(&other, &other_config, &small, &mut quiet()).unwrap_err().to_string();
    assert!(err.contains("other weights") && err.contains(&decoded.header.weights_hex()), "{err}");
    assert_eq!(decoded.header.weights_hex().len(), 16);
}

fn model_pair_other(image: ImageSpec) -> (PixelRnn, ModelConfig) {
    model(Architecture::PixelCnn, image, 99)
}

#[test]
fn the_bytes_do_not_depend_on_threads_or_instruction_set() {
    let image = ImageSpec { channels: 1, height: 5, width: 6, levels: 2 };
    for architecture in ARCHITECTURES {
        let (model, config) = model(architecture, image, 9);
        let data = images(&image, 5, 4);
        let run = |threads: usize, level: u8| {
            crate::kernels::fast_math::limit_instruction_set(level);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let bytes = pool.install(|| encode(&model, &config, &data, &names(5), 64, &mut quiet()).unwrap().bytes);
            crate::kernels::fast_math::limit_instruction_set(2);
            bytes
        };
        let reference = run(1, 0);
        for (threads, level) in [(1, 1), (1, 2), (3, 0), (3, 2)] {
            assert_eq!(run(threads, level), reference, "{architecture:?}: {threads} threads, instruction set {level}");
        }
    }
}

#[test]
fn damaged_files_are_refused_with_a_reason() {
    let image = ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
    let (model, config) = model(Architecture::RowLstm, image, 1);
    let data = images(&image, 3, 7);
    let bytes = encode(&model, &config, &data, &names(3), 2, &mut quiet()).unwrap().bytes;
    let refused = |bytes: &[u8]| decode(&model, &config, bytes, &mut quiet()).unwrap_err().to_string();
    // Every truncation, and every single flipped byte.
    for len in 0..bytes.len() {
        let err = refused(&bytes[..len]);
        assert!(err.contains("truncated") || err.contains("magic"), "length {len}: {err}");
    }
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        let err = refused(&damaged);
        assert!(err.contains("corrupt") || err.contains("magic") || err.contains("version"), "byte {at}: {err}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(refused(&longer).contains("after the end"));
    // Another model: the error names the weights the file needs.
    let (other, _) = super::tests::model(Architecture::RowLstm, image, 2);
    let err = decode(&other, &config, &bytes, &mut quiet()).unwrap_err().to_string();
    assert!(err.contains(&format::hex(&format::weights_digest(&model))), "{err}");
    // Another format version.
    let mut future = bytes.clone();
    future[8] = 2;
    assert!(refused(&future).contains("format version 2"));
}

#[test]
fn inputs_the_model_cannot_code_are_refused() {
    let image = ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
    let (model, config) = model(Architecture::PixelCnn, image, 1);
    let err = encode(&model, &config, &[], &[], 64, &mut quiet()).unwrap_err().to_string();
    assert!(err.contains("no images"), "{err}");
    let mut data = images(&image, 2, 1);
    data[20] = 7;
    let err = encode(&model, &config, &data, &names(2), 64, &mut quiet()).unwrap_err().to_string();
    assert!(err.contains("image 1") && err.contains("value 7"), "{err}");
    let err = encode(&model, &config, &data[..10], &names(2), 64, &mut quiet()).unwrap_err().to_string();
    assert!(err.contains("expected shape"), "{err}");
}

#[test]
fn headers_that_promise_more_than_the_file_holds_are_refused_before_any_allocation() {
    let image = ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
    let (model, config) = model(Architecture::PixelCnn, image, 1);
    let bytes = encode(&model, &config, &images(&image, 2, 3), &names(2), 64, &mut quiet()).unwrap().bytes;
    let mut header = Header::parse(&bytes).unwrap();
    let body = &bytes[HEADER_LEN..];
    // A header with valid checksums (anyone can compute them) but absurd sizes.
    for (count, chunk) in [(1u64 << 40, 64u32), (2, 1 << 20), (2, 0), (0, 64)] {
        (header.count, header.chunk) = (count, chunk);
        let mut forged = header.to_bytes();
        forged.extend_from_slice(body);
        let err = decode(&model, &config, &forged, &mut quiet()).unwrap_err().to_string();
        assert!(err.contains("header says"), "{count} x {chunk}: {err}");
    }
}

#[test]
fn default_names_are_not_stored_and_chunks_fit_in_memory() {
    let image = ImageSpec { channels: 1, height: 4, width: 4, levels: 2 };
    let (model, config) = model(Architecture::DiagonalBilstm, image, 1);
    let data = images(&image, 3, 5);
    let defaults: Vec<String> = (0..3).map(format::default_name).collect();
    let bytes = encode(&model, &config, &data, &defaults, 2, &mut quiet()).unwrap().bytes;
    let decoded = decode(&model, &config, &bytes, &mut quiet()).unwrap();
    assert_eq!((decoded.header.names_len, decoded.names, decoded.images), (0, defaults, data));
    assert_eq!(auto_chunk(&model), DEFAULT_CHUNK, "a tiny model's caches are small");
    let big = ModelConfig::preset(
        Preset::Cifar10,
        Architecture::PixelCnn,
        ImageSpec { channels: 3, height: 32, width: 32, levels: 256 },
    )
    .unwrap()
    .init(&Device::flex(), 0)
    .unwrap();
    let chunk = auto_chunk(&big);
    let per_image = big.incremental().state().bytes();
    assert!(chunk < DEFAULT_CHUNK && chunk as usize * per_image <= 1 << 30, "{chunk} x {per_image} bytes");
}
