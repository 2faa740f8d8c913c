//! Data-parallel training without MPI: the gradient of a full batch against the sum of its
//! slices' through flatten -> in-process sum -> unflatten, and whole training runs on two
//! in-process ranks against one process (same losses, same parameters, resumable, a failing
//! rank stops the group).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use pixelrnn::data::{ImageSet, Splits};
use pixelrnn::distributed::{flat, Collective, FailingAt, InProcess};
use pixelrnn::experiment::{DataConfig, ExperimentConfig, OptimizerConfig, OptimizerKind, TrainingConfig};
use pixelrnn::image_spec::ImageSpec;
use pixelrnn::models::{Architecture, ModelConfig, PixelRnn, Preset};
use pixelrnn::train::{train, train_on, TrainEvent, TrainOptions, TrainOutcome};
use pixelrnn::Result;
use rand::{Rng, SeedableRng};

const IMAGE: ImageSpec = ImageSpec { channels: 1, height: 8, width: 8, levels: 2 };

fn model_config(architecture: Architecture) -> ModelConfig {
    ModelConfig::preset(Preset::Tiny, architecture, IMAGE).unwrap()
}

fn binary_images(count: usize, seed: u64) -> ImageSet {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let pixels = (0..count * IMAGE.dims()).map(|_| u8::from(rng.random_bool(0.3))).collect();
    ImageSet { channels: 1, height: 8, width: 8, levels: 2, pixels, labels: None }
}

/// Largest difference relative to the largest magnitude of `a`.
fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Runs `f` on each rank of an in-process group of `size`, each on its own thread.
fn on_ranks<T: Send + 'static>(size: usize, f: impl Fn(InProcess) -> T + Send + Sync + Copy + 'static) -> Vec<T> {
    let threads: Vec<_> = InProcess::group(size).into_iter().map(|c| std::thread::spawn(move || f(c))).collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn batch(images: &ImageSet, range: std::ops::Range<usize>, device: &Device) -> Tensor<4, Int> {
    images.batch(&range.collect::<Vec<_>>(), device)
}

#[test]
fn a_full_batch_gradient_is_the_sum_of_its_slices_through_the_collective() {
    for architecture in [Architecture::PixelCnn, Architecture::RowLstm, Architecture::DiagonalBilstm] {
        let images = binary_images(8, 3);
        let device = Device::flex().autodiff();
        let model = model_config(architecture).init(&device, 7).unwrap();
        let loss = model.nll(batch(&images, 0..8, &device)).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let full = flat::flatten_gradients(&model, &grads);
        let mut optim = AdamConfig::new().init();
        let stepped = flat::flatten_parameters(&optim.step(1e-3, model, grads));

        let ranks = on_ranks(2, move |mut c| {
            let images = binary_images(8, 3);
            let device = Device::flex().autodiff();
            // The same seed in another "process": the same weights under other parameter ids.
            let model = model_config(architecture).init(&device, 7).unwrap();
            let r = c.rank();
            let loss = model.nll(batch(&images, r * 4..r * 4 + 4, &device)).sum().div_scalar(8.0);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let mut v = flat::flatten_gradients(&model, &grads);
            c.sum_f32(&mut v).unwrap();
            let grads = flat::unflatten_gradients(&model, grads, &v).unwrap();
            let mut optim = AdamConfig::new().init();
            (v, flat::flatten_parameters(&optim.step(1e-3, model, grads)))
        });
        let d = relative_difference(&full, &ranks[0].0);
        assert!(d <= 1e-5, "{architecture:?}: summed slice gradients differ from the full batch's by {d:e}");
        assert_eq!(ranks[0], ranks[1], "{architecture:?}: the ranks must end bitwise identical");
        let d = relative_difference(&stepped, &ranks[0].1);
        assert!(d <= 1e-5, "{architecture:?}: parameters after one step differ by {d:e}");
    }
}

#[test]
fn flatten_and_unflatten_round_trip_exactly_and_models_of_one_seed_flatten_alike() {
    let device = Device::flex().autodiff();
    let config = model_config(Architecture::DiagonalBilstm);
    let a = config.init(&device, 11).unwrap();
    let b = config.init(&device, 11).unwrap();
    assert_eq!(flat::flatten_parameters(&a), flat::flatten_parameters(&b));
    assert_eq!(flat::parameter_digest(&a), flat::parameter_digest(&b));
    assert_ne!(flat::parameter_digest(&a), flat::parameter_digest(&config.init(&device, 12).unwrap()));

    let images = binary_images(4, 5);
    let grads_of =
        |m: &PixelRnn| GradientsParams::from_grads(m.nll(batch(&images, 0..4, &device)).mean().backward(), m);
    let (ga, gb) = (grads_of(&a), grads_of(&b));
    let va = flat::flatten_gradients(&a, &ga);
    assert_eq!(va, flat::flatten_gradients(&b, &gb), "same weights, same data, same gradients in the same order");
    // a's gradients onto b's (other ids), then back out: bit for bit.
    let moved = flat::unflatten_gradients(&b, gb, &va).unwrap();
    assert_eq!(flat::flatten_gradients(&b, &moved), va);
    // A vector of the wrong length is refused.
    let e = flat::unflatten_gradients(&a, ga, &va[1..]).unwrap_err().to_string();
    assert!(e.contains("does not fit"), "{e}");
}

fn experiment(dir: &Path, batch_size: usize, steps: u64) -> ExperimentConfig {
    ExperimentConfig {
        model: model_config(Architecture::RowLstm),
        data: DataConfig {
            dataset: pixelrnn::data::DatasetName::BinarizedMnist,
            data_dir: Some(dir.to_path_buf()),
            valid_size: None,
            no_verify: false,
        },
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 1e-2,
            lr_decay: 1.0,
            grad_clip_norm: None,
            epsilon: None,
            warmup_steps: 0,
            cosine_steps: None,
        },
        training: TrainingConfig {
            batch_size,
            steps,
            seed: 4,
            valid_every: 0,
            valid_limit: None,
            checkpoint_every: 2,
            batch_order: None,
            init_weights: None,
            ema_decay: None,
            dropout: None,
            log_every: 1,
        },
    }
}

fn splits() -> Splits {
    Splits { train: binary_images(48, 1), valid: Some(binary_images(8, 2)), test: None, files: vec![], notes: vec![] }
}

/// Training on `size` in-process ranks (all given `run`, as mpirun gives every rank the same
/// `--out`); a rank whose call fails aborts the group, as the CLI does.
fn train_ranks(
    size: usize,
    run: &Path,
    steps: u64,
    options: TrainOptions,
    fail: Option<(usize, u64)>,
) -> Vec<Result<TrainOutcome>> {
    let run = run.to_path_buf();
    let threads: Vec<_> = InProcess::group(size)
        .into_iter()
        .map(|mut c| {
            let (run, options) = (run.clone(), options.clone());
            std::thread::spawn(move || {
                let config = experiment(&run, 8, steps);
                let failing_step = fail.filter(|(r, _)| *r == c.rank()).map(|(_, s)| s);
                let mut failing;
                let collective: &mut dyn Collective = match failing_step {
                    Some(step) => {
                        failing = FailingAt::new(&mut c, step);
                        &mut failing
                    }
                    None => &mut c,
                };
                let result = train_on(
                    &config,
                    &splits(),
                    &run,
                    &options,
                    &Device::flex(),
                    &AtomicBool::new(false),
                    &mut |_| {},
                    collective,
                );
                if result.is_err() {
                    c.abort(1);
                }
                result
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn losses(run: &Path) -> Vec<f32> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .map(|v| v["loss_nats"].as_f64().unwrap() as f32)
        .collect()
}

fn events(run: &Path, name: &str) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!("\"{name}\"")))
        .count()
}

fn final_parameters(run: &Path) -> Vec<f32> {
    let path = run.join("checkpoint-last.bin");
    let ckpt = pixelrnn::checkpoint::load(&path).unwrap();
    let config = model_config(Architecture::RowLstm);
    let model = config.init(&Device::flex(), 0).unwrap();
    flat::flatten_parameters(&ckpt.apply(&path, &config, ckpt.header.dataset, model).unwrap())
}

#[test]
fn two_ranks_train_as_one_process_with_the_same_global_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let config = experiment(&one, 8, 4);
    train(&config, &splits(), &one, &TrainOptions::default(), &Device::flex(), &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    for r in train_ranks(2, &two, 4, TrainOptions::default(), None) {
        assert_eq!(r.unwrap().step, 4);
    }
    let (a, b) = (losses(&one), losses(&two));
    assert_eq!(a.len(), 4);
    let d = relative_difference(&a, &b);
    assert!(d <= 1e-5, "per-step losses {a:?} vs {b:?}");
    let d = relative_difference(&final_parameters(&one), &final_parameters(&two));
    assert!(d <= 1e-5, "final parameters differ by {d:e}");
    // The replicas were compared (bitwise) at both checkpoints; only rank 0 wrote.
    assert_eq!(events(&two, "replicas_checked"), 2);
    assert_eq!(events(&two, "started"), 1);
}

#[test]
fn a_resumed_distributed_run_continues_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, parts) = (dir.path().join("whole"), dir.path().join("parts"));
    train_ranks(2, &whole, 4, TrainOptions::default(), None).into_iter().for_each(|r| assert!(r.is_ok()));
    train_ranks(2, &parts, 2, TrainOptions::default(), None).into_iter().for_each(|r| assert!(r.is_ok()));
    let resume = TrainOptions { resume: true, ..TrainOptions::default() };
    for r in train_ranks(2, &parts, 4, resume, None) {
        assert_eq!(r.unwrap().step, 4);
    }
    assert_eq!(final_parameters(&whole), final_parameters(&parts));
    assert_eq!(losses(&whole), losses(&parts));
}

#[test]
fn a_failing_rank_stops_the_group_and_an_unsplittable_batch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let results = train_ranks(2, &dir.path().join("fail"), 4, TrainOptions::default(), Some((1, 2)));
    let e1 = results[1].as_ref().unwrap_err().to_string();
    assert!(e1.contains("rank 1 failed at step 2"), "{e1}");
    let e0 = results[0].as_ref().unwrap_err();
    assert!(matches!(e0, pixelrnn::Error::PeerFailed { .. }), "{e0}");

    let results = train_ranks(3, &dir.path().join("uneven"), 4, TrainOptions::default(), None);
    for r in results {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("cannot be split evenly over 3 ranks"), "{e}");
    }
    assert!(!dir.path().join("uneven").exists(), "nothing is written before the checks");
}

#[test]
fn ranks_only_report_from_rank_zero() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    let threads: Vec<_> = InProcess::group(2)
        .into_iter()
        .map(|mut c| {
            let run = run.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let config = experiment(&run, 8, 2);
                train_on(
                    &config,
                    &splits(),
                    &run,
                    &TrainOptions::default(),
                    &Device::flex(),
                    &AtomicBool::new(false),
                    &mut |e: &TrainEvent| seen.push(e.clone()),
                    &mut c,
                )
                .unwrap();
                (c.rank(), seen.len())
            })
        })
        .collect();
    for t in threads {
        let (rank, seen) = t.join().unwrap();
        assert_eq!(seen > 0, rank == 0, "rank {rank} saw {seen} events");
    }
}
