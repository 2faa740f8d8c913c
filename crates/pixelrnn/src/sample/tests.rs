use super::*;
use crate::models::{Architecture, ModelConfig, Preset};

const ARCHS: [Architecture; 4] = Architecture::ALL;

fn tiny(arch: Architecture, spec: ImageSpec, residual: bool, skip: bool) -> PixelRnn {
    let mut config = ModelConfig::preset(Preset::Tiny, arch, spec).unwrap();
    config.residual = residual;
    config.skip = skip;
    config.init(&Device::flex(), 11).unwrap()
}

fn random_images(spec: &ImageSpec, count: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    (0..count * spec.dims()).map(|_| (rng.next_u32() % spec.levels as u32) as u8).collect()
}

#[test]
fn fast_and_naive_samplers_give_identical_images() {
    let specs = [
        ImageSpec { channels: 1, height: 5, width: 6, levels: 2 },
        ImageSpec { channels: 3, height: 3, width: 4, levels: 256 },
    ];
    for arch in ARCHS {
        for spec in specs {
            let model = tiny(arch, spec, true, true);
            let request = Generation::samples(&spec, 3, 42, 1.0);
            let fast = generate(&model, &request, Sampler::Fast, &Device::flex(), &mut |_, _| {}).unwrap();
            let naive = generate(&model, &request, Sampler::Naive, &Device::flex(), &mut |_, _| {}).unwrap();
            assert_eq!(fast, naive, "{arch:?} {spec:?}");
            assert!(fast.iter().all(|&v| (v as usize) < spec.levels));
        }
    }
}

#[test]
fn fast_and_naive_samplers_agree_on_the_logistic_mixture() {
    let spec = ImageSpec { channels: 3, height: 3, width: 4, levels: 256 };
    for arch in ARCHS {
        let mut config = ModelConfig::preset(Preset::Tiny, arch, spec).unwrap();
        config.output = crate::models::OutputHead::Mixture { components: 3 };
        let model = config.init(&Device::flex(), 5).unwrap();
        let request = Generation::samples(&spec, 2, 42, 1.0);
        let fast = generate(&model, &request, Sampler::Fast, &Device::flex(), &mut |_, _| {}).unwrap();
        let naive = generate(&model, &request, Sampler::Naive, &Device::flex(), &mut |_, _| {}).unwrap();
        assert_eq!(fast, naive, "{arch:?}");
        let distinct: std::collections::BTreeSet<u8> = fast.iter().copied().collect();
        assert!(distinct.len() > 4, "a spread of values: {distinct:?}");
    }
}

#[test]
fn a_conditional_model_samples_under_its_classes_fast_as_naive() {
    let spec = ImageSpec { channels: 1, height: 4, width: 5, levels: 2 };
    let device = Device::flex();
    for arch in ARCHS {
        let mut config = ModelConfig::preset(Preset::Tiny, arch, spec).unwrap();
        config.classes = Some(4);
        let mut model = config.init(&device, 5).unwrap();
        // Class 3 pushes every logit far up (it starts at zero: give it a learned-looking value).
        let table = model.conditioning.as_mut().unwrap();
        let [places, classes, width] = table.table.val().dims();
        let values: Vec<f32> =
            (0..places * classes * width).map(|i| if i / width % classes == 3 { 3.0 } else { 0.0 }).collect();
        table.table = burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(values, [places, classes, width]),
            &device,
        ));
        let request = Generation::samples(&spec, 4, 7, 1.0).with_labels(vec![0, 3, 1, 3]);
        let fast = generate(&model, &request, Sampler::Fast, &device, &mut |_, _| {}).unwrap();
        let naive = generate(&model, &request, Sampler::Naive, &device, &mut |_, _| {}).unwrap();
        assert_eq!(fast, naive, "{arch:?}");
        // Labels are required, and only of a conditional model, one per image, in range.
        let err = |r: &Generation, m: &PixelRnn| {
            generate(m, r, Sampler::Fast, &device, &mut |_, _| {}).unwrap_err().to_string()
        };
        assert!(err(&Generation::samples(&spec, 4, 7, 1.0), &model).contains("needs each image's class label"));
        assert!(
            err(&Generation::samples(&spec, 2, 7, 1.0).with_labels(vec![0, 4]), &model).contains("class 4 is outside")
        );
        assert!(err(&Generation::samples(&spec, 2, 7, 1.0).with_labels(vec![0]), &model)
            .contains("1 class labels for 2 images"));
        let plain = tiny(arch, spec, true, true);
        assert!(
            err(&Generation::samples(&spec, 1, 7, 1.0).with_labels(vec![0]), &plain).contains("not class-conditional")
        );
    }
}

#[test]
fn same_seed_same_images_and_completion_keeps_observed_pixels() {
    let spec = ImageSpec { channels: 3, height: 4, width: 4, levels: 256 };
    let model = tiny(Architecture::DiagonalBilstm, spec, true, true);
    let device = Device::flex();
    let a = generate(&model, &Generation::samples(&spec, 2, 7, 1.0), Sampler::Fast, &device, &mut |_, _| {}).unwrap();
    let b = generate(&model, &Generation::samples(&spec, 2, 7, 1.0), Sampler::Fast, &device, &mut |_, _| {}).unwrap();
    let c = generate(&model, &Generation::samples(&spec, 2, 8, 1.0), Sampler::Fast, &device, &mut |_, _| {}).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let originals = random_images(&spec, 2);
    for sampler in [Sampler::Fast, Sampler::Naive] {
        let request = Generation::completions(&spec, originals.clone(), 2, 5, 1.0);
        let done = generate(&model, &request, sampler, &device, &mut |_, _| {}).unwrap();
        let plane = spec.height * spec.width;
        for n in 0..2 {
            for ch in 0..3 {
                for p in 0..2 * spec.width {
                    let i = n * spec.dims() + ch * plane + p;
                    assert_eq!(done[i], originals[i], "observed sub-pixel altered");
                }
            }
        }
        assert_ne!(done, originals, "nothing was sampled");
    }
}

#[test]
fn a_temperature_that_is_not_positive_is_refused() {
    // The draws themselves: `distribution::tests::draws_follow_the_inverse_cdf_and_the_temperature`.
    let spec = ImageSpec { channels: 1, height: 2, width: 2, levels: 2 };
    let model = tiny(Architecture::PixelCnn, spec, true, true);
    let err = generate(&model, &Generation::samples(&spec, 1, 0, 0.0), Sampler::Fast, &Device::flex(), &mut |_, _| {})
        .unwrap_err();
    assert!(err.to_string().contains("temperature"));
    let err = generate(&model, &Generation::samples(&spec, 0, 0, 1.0), Sampler::Fast, &Device::flex(), &mut |_, _| {})
        .unwrap_err();
    assert!(err.to_string().contains("at least 1"));
}
