//! Command-line arguments (clap derive; doc comments are the help text).

use std::path::PathBuf;

use std::ffi::OsString;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use pixelrnn::bench::{Mode, Spec};
use pixelrnn::data::DatasetName;
use pixelrnn::models::{Architecture, Preset};

/// PixelRNN / PixelCNN: autoregressive image models with exact log-likelihood
/// (van den Oord et al., ICML 2016).
#[derive(Debug, Parser)]
#[command(name = "pixelrnn", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Parses a command line (`args[0]` is the program's name). For `train`, also records which
/// flags were given rather than defaulted ([`TrainArgs::given`]), which `--resume` without
/// `--model` needs.
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Command::Train(args), Some(("train", given))) = (&mut cli.command, matches.subcommand()) {
        // Arguments only: a flattened struct's group (e.g. `DataArgs`) counts as given with any
        // of its flags.
        let command = Cli::command();
        let train = command.find_subcommand("train").expect("the train command");
        let is_argument = |id: &clap::Id| train.get_arguments().any(|a| a.get_id() == id);
        args.given = given
            .ids()
            .filter(|id| is_argument(id))
            .filter(|id| given.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
            .map(|id| id.to_string())
            .collect();
    }
    Ok(cli)
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model; writes RUN_DIR/config.json, checkpoints, metrics.jsonl and loss.svg.
    Train(TrainArgs),
    /// Exact NLL of a trained run on a split (nats per image and bits/dim).
    Eval(EvalArgs),
    /// Draw new images from a trained run; writes a PNG grid.
    Sample(SampleArgs),
    /// Complete occluded images (the paper's Fig. 1): occluded, completions, original per row.
    Complete(CompleteArgs),
    /// Exact NLL of one PNG image and of each of its sub-pixels.
    Score(ScoreArgs),
    /// Compress images losslessly with a trained run's model into a .prnn file.
    Compress(CompressArgs),
    /// Decompress a .prnn file into PNGs, with the run whose model coded it.
    Decompress(DecompressArgs),
    /// Export a run's weights as safetensors (this crate's layout, or the PyTorch twin's).
    Export(ExportArgs),
    /// Make a run directory from safetensors weights (an export, or the PyTorch twin's state_dict).
    Import(ImportArgs),
    /// Draw where a model looks when it predicts one pixel (the paper's Figure 4): the gradient
    /// of that pixel's logits with respect to every input pixel.
    ReceptiveField(ReceptiveFieldArgs),
    /// Reproduce a table of the paper (2-5, or all): train each of its models in its own run
    /// directory, score it, and write summary.json and curves.svg; resumes where it stopped.
    Experiment(ExperimentArgs),
    /// Serve a page to complete, score, compress and sample images with trained runs in the
    /// browser (localhost by default).
    Serve(ServeArgs),
    /// Time the benchmark models M1-M6 (docs/bench-specs.md) or a run's model (--run); one JSON line per run.
    Bench(BenchArgs),
    /// Fetch datasets and inspect what is on disk.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

/// Parses a count that must be at least 1 (clap reports anything else as a usage error).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

/// Parses `ROW,COL`.
fn parse_pixel(text: &str) -> Result<(usize, usize), String> {
    let parsed = text.split_once(',').and_then(|(r, c)| Some((r.trim().parse().ok()?, c.trim().parse().ok()?)));
    parsed.ok_or_else(|| format!("expected ROW,COL (two numbers), got '{text}'"))
}

/// Parses a count in `1..=max`: a value beyond what memory or the output format can hold is a
/// usage error naming the bound, not an allocation failure later.
fn one_to(max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=max)
}

/// The output distribution of each sub-pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    /// The paper's 256-way softmax (a sigmoid on binary images).
    Softmax,
    /// PixelCNN++'s discretized logistic mixture (images of more than 2 levels).
    Mixture,
}

/// The optimizer.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    /// RMSProp, as in the paper (§5.2).
    Rmsprop,
    /// Adam (the default).
    Adam,
}

impl From<OptimizerArg> for pixelrnn::experiment::OptimizerKind {
    fn from(arg: OptimizerArg) -> Self {
        match arg {
            OptimizerArg::Adam => Self::Adam,
            OptimizerArg::Rmsprop => Self::Rmsprop,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DeviceArg {
    /// The CPU (Burn's flex backend).
    Cpu,
    /// A GPU through Vulkan (build with `--features vulkan`).
    Vulkan,
    /// A GPU through wgpu's choice of API: Metal, Vulkan, DX12 (build with `--features wgpu`).
    Wgpu,
    /// An NVIDIA GPU through CUDA (build with `--features cuda`).
    Cuda,
}

impl From<DeviceArg> for pixelrnn::device::Backend {
    fn from(arg: DeviceArg) -> Self {
        match arg {
            DeviceArg::Cpu => Self::Cpu,
            DeviceArg::Vulkan => Self::Vulkan,
            DeviceArg::Wgpu => Self::Wgpu,
            DeviceArg::Cuda => Self::Cuda,
        }
    }
}

/// Where the data is.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The dataset.
    #[arg(long, value_enum, default_value = "binarized-mnist")]
    pub dataset: DatasetName,
    /// Folder with the dataset's files as distributed (default: the user cache, fetched on
    /// first use; Fashion-MNIST: /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Training images held out for validation (default per dataset).
    #[arg(long)]
    pub valid_size: Option<usize>,
    /// Download from MIRROR/FILE instead of the canonical addresses.
    #[arg(long)]
    pub mirror: Option<String>,
    /// Use the dataset's files even if they differ from the published SHA-256 (checked on first
    /// use otherwise, and remembered per file in the folder's .pixelrnn-verified).
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Architecture. With --resume it may be left out, and then the run's config.json gives
    /// every setting: only --steps/--epochs, --valid-every, --valid-limit, --checkpoint-every,
    /// --ema (to start averaging), --data-dir and how to run (--device, --quiet, ...) may be
    /// given.
    #[arg(long, value_enum, required_unless_present = "resume")]
    pub model: Option<Architecture>,
    /// Model size (default: the dataset's paper setting).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Number of layers L after the 7x7 mask-A convolution: residual blocks (PixelCNN) or LSTM
    /// layers (overrides the preset); 0 keeps only that convolution and the output stack, a
    /// baseline that sees the 7x7 neighbourhood above and left of each pixel.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Hidden width h (overrides the preset).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Width d of the output stack (overrides the preset).
    #[arg(long)]
    pub output_hidden: Option<usize>,
    /// Disable residual connections.
    #[arg(long)]
    pub no_residual: bool,
    /// Disable the learnable skip connections.
    #[arg(long)]
    pub no_skip: bool,
    /// Row LSTM: start every scan from a zero state instead of a learned h_0, c_0 (as the
    /// PyTorch twin does).
    #[arg(long)]
    pub zero_initial_state: bool,
    /// Diagonal BiLSTM: what the skewed map's padding holds: the states the bias drives there
    /// (as the PyTorch twin computes; learns better per step), or zero (pixelrnn's former
    /// default).
    #[arg(long, value_enum, default_value = "bias")]
    pub diagonal_padding: pixelrnn::models::DiagonalPadding,
    /// The output distribution of each sub-pixel: the paper's softmax (a sigmoid on binary
    /// images) or PixelCNN++'s discretized logistic mixture (`--components` of them), which has
    /// far fewer output parameters and learns faster per step on natural images. Default: the
    /// preset's (the mixture of 5 for `cifar10-cpu` on natural images, the softmax otherwise).
    #[arg(long, value_enum)]
    pub output: Option<OutputArg>,
    /// Mixture components K of `--output mixture` (default 10, as PixelCNN++; 1 to 64).
    #[arg(long)]
    pub components: Option<usize>,
    /// A class-conditional model p(x | y) (labelled datasets: MNIST, Fashion-MNIST,
    /// CIFAR-10): a learned class embedding added before every layer and the output stack.
    #[arg(long)]
    pub conditional: bool,
    /// Number of epochs (default 1 when --steps is not given).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<u64>,
    /// Number of optimizer steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Images per step (default per preset; at most 65,536).
    #[arg(long, value_parser = one_to(65_536))]
    pub batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Multiplicative learning-rate decay per step (1 = constant).
    #[arg(long, default_value_t = 1.0)]
    pub lr_decay: f64,
    /// Linear learning-rate warm-up over the first N steps (from lr / N up to lr).
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// The learning-rate schedule after the warm-up: `exponential` (lr x lr-decay^step; with
    /// the default decay 1, constant) or `cosine` (annealed to 0 at --cosine-steps, default
    /// the run's --steps, times the decay if given).
    #[arg(long, value_enum, default_value = "exponential")]
    pub lr_schedule: LrScheduleArg,
    /// With --lr-schedule cosine: the step at which the rate reaches 0 (default: --steps).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub cosine_steps: Option<u64>,
    /// Optimizer.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerArg,
    /// Clip gradients to this global L2 norm.
    #[arg(long)]
    pub grad_clip: Option<f32>,
    /// The optimizer's epsilon (default: Burn's, 1e-5 for Adam, 1e-8 for RMSProp; PyTorch's
    /// Adam uses 1e-8).
    #[arg(long)]
    pub epsilon: Option<f64>,
    /// Start from the weights in this safetensors file (`export`'s native layout, or the PyTorch
    /// twin's `state_dict`), or of this run directory (its best checkpoint, averaged where it
    /// keeps an average: fine-tune a pretrained model, `--init-weights pretrained/NAME`), instead
    /// of the seeded initialisation. The model flags must build the same model.
    #[arg(long, conflicts_with = "resume")]
    pub init_weights: Option<PathBuf>,
    /// Take each step's batch from this text file: one line per step, each line --batch-size
    /// indices into the training split (the parity harness feeds both sides the same batches).
    #[arg(long)]
    pub batch_order: Option<PathBuf>,
    /// Write the first step's gradients to this safetensors file (see --gradients-layout).
    #[arg(long)]
    pub gradients_out: Option<PathBuf>,
    /// Layout of --gradients-out.
    #[arg(long, value_enum, default_value = "native", requires = "gradients_out")]
    pub gradients_layout: pixelrnn::interop::Layout,
    /// Keep a Polyak average of the weights with this decay per step (PixelCNN++: 0.9995),
    /// bias-corrected (the weights of the steps since it began, normalised; the starting weights
    /// count for nothing); it is what validation scores and what eval, sample, complete, score,
    /// compress and export use (unless --raw-weights). May be added when resuming a run (it
    /// starts from the resumed weights); once started, every --resume must give the same decay.
    #[arg(long, value_name = "DECAY")]
    pub ema: Option<f64>,
    /// Dropout probability on every layer's output during training (PixelCNN++ uses 0.5 on
    /// CIFAR-10); off at evaluation and sampling. The masks follow from --seed and the step, so a
    /// run is reproduced and resumed exactly.
    #[arg(long, value_name = "P")]
    pub dropout: Option<f64>,
    /// Seed of the weights and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// With --resume, read a checkpoint written before checkpoints carried a checksum (format 1): refused
    /// otherwise, since a damaged copy of one cannot be told from a good one.
    #[arg(long)]
    pub allow_unchecked: bool,

    /// Start afresh in an --out that holds a run: its config, checkpoints, metrics and plot are
    /// deleted first.
    #[arg(long)]
    pub overwrite: bool,
    /// Validate every N steps (0: only at the end).
    #[arg(long, default_value_t = 500)]
    pub valid_every: u64,
    /// Validate on at most N images.
    #[arg(long, value_parser = at_least_one())]
    pub valid_limit: Option<usize>,
    /// Checkpoint every N steps (0: only at the end; always on Ctrl-C).
    #[arg(long, default_value_t = 200)]
    pub checkpoint_every: u64,
    /// Write a step line to metrics.jsonl every N steps, with the mean loss and throughput of
    /// those N steps (validations, checkpoints and the last step always): for long runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: u64,
    /// Compute device. With --distributed mpi and a GPU backend, each rank takes the GPU of
    /// its rank on the node (local rank 0 the first discrete GPU, ...).
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// Data-parallel training over the processes of an MPI job, launched as `mpirun -np N
    /// [--hostfile H] pixelrnn train ... --distributed mpi` (or `srun --mpi=pmix`). Every rank
    /// takes 1/N of each batch; only rank 0 validates, checkpoints and logs. Needs a build with
    /// `--features mpi`.
    #[arg(long, value_enum, conflicts_with = "devices")]
    pub distributed: Option<DistributedArg>,
    /// Train on several GPUs of this machine in one process, one worker thread per device,
    /// each on its slice of the batch: e.g. `vulkan:0,vulkan:1`. The CPU is one device.
    #[arg(long, conflicts_with = "device")]
    pub devices: Option<String>,
    /// Fault injection for the tests of the distributed failure path: `RANK:STEP` makes that
    /// rank fail when it reaches that step.
    #[arg(long, hide = true)]
    pub test_fail_at: Option<String>,
    /// Stop after this many seconds of wall-clock time, at a checkpoint (as Ctrl-C does, but
    /// exiting 0): a run trained for a fixed time, continued later with --resume. Counts from
    /// the start of training (after the data are loaded).
    #[arg(long, value_name = "SECONDS", value_parser = parse_time_limit)]
    pub time_limit: Option<f64>,
    /// No progress bar (log lines only).
    #[arg(long)]
    pub quiet: bool,
    /// The flags given on the command line (clap's ids), not defaults: filled in by [`parse`].
    #[arg(skip)]
    pub given: Vec<String>,
}

/// `pixelrnn experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The table: table4 (binarized MNIST), table5 (CIFAR-10), table2 (residual / skip),
    /// table3 (depth), or all (in that order).
    #[arg(value_enum)]
    pub name: ExperimentName,
    /// How big: smoke (a pipeline check), small (this machine: ~2 h for all), paper (the
    /// paper's widths and depths).
    #[arg(long, value_enum, default_value = "small")]
    pub scale: pixelrnn::reproduce::Scale,
    /// Output folder: TABLE/RUN/ run directories, TABLE/summary.json, TABLE/curves.svg.
    #[arg(long, default_value = "experiments")]
    pub out: PathBuf,
    /// Steps per run (overrides the scale's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Images per step (overrides the scale's).
    #[arg(long, value_parser = one_to(65_536))]
    pub batch_size: Option<usize>,
    /// Folder of the MNIST files (table4).
    #[arg(long)]
    pub mnist_dir: Option<PathBuf>,
    /// Folder of the CIFAR-10 batches (tables 5, 2, 3).
    #[arg(long)]
    pub cifar_dir: Option<PathBuf>,
    /// Use dataset files that differ from their published checksums.
    #[arg(long)]
    pub no_verify: bool,
    /// Compute device.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// Print each table's summary.json as one JSON line on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The experiments of `pixelrnn experiment`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExperimentName {
    /// Paper Table 4: binarized MNIST, nats.
    Table4,
    /// Paper Table 5: CIFAR-10, bits/dim.
    Table5,
    /// Paper Table 2: Row LSTM with / without residual and skip connections.
    Table2,
    /// Paper Table 3: Row LSTM depth 1-12.
    Table3,
    /// Tables 4, 5, 2, 3 in turn.
    All,
}

/// The engines `train --distributed` can run on.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DistributedArg {
    /// MPI (Open MPI, MPICH, Intel MPI; Slurm through PMI / PMIx).
    Mpi,
}

/// A split of the dataset.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SplitArg {
    /// The test set.
    Test,
    /// The validation set (held out of the training set where the data has none).
    Valid,
    /// The training set.
    Train,
}

/// A checkpoint of a run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CheckpointArg {
    /// The best validation NLL (the last checkpoint if the run never validated).
    Best,
    /// The most recent.
    Last,
}

impl From<SplitArg> for pixelrnn::data::Split {
    fn from(arg: SplitArg) -> Self {
        match arg {
            SplitArg::Test => Self::Test,
            SplitArg::Valid => Self::Valid,
            SplitArg::Train => Self::Train,
        }
    }
}

impl From<CheckpointArg> for pixelrnn::run::Which {
    fn from(arg: CheckpointArg) -> Self {
        match arg {
            CheckpointArg::Best => Self::Best,
            CheckpointArg::Last => Self::Last,
        }
    }
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Split to evaluate.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// Evaluate only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64, value_parser = at_least_one())]
    pub batch_size: usize,
    /// Also give each image's NLL (`per_image_nats` in the JSON).
    #[arg(long)]
    pub per_image: bool,
    /// Also write the evaluated images here, as raw bytes `[images][channels][height][width]`
    /// (what another implementation needs to score the very same images).
    #[arg(long)]
    pub save_images: Option<std::path::PathBuf>,
    /// Read the data from here instead of the folder recorded in the run.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// A run and its checkpoint.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run directory written by `train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Which checkpoint.
    #[arg(long, value_enum, default_value = "best")]
    pub checkpoint: CheckpointArg,
    /// Use the checkpoint's raw weights even where the run keeps a weight average (`train
    /// --ema`), which is used by default.
    #[arg(long)]
    pub raw_weights: bool,
    /// Read a checkpoint written before checkpoints carried a checksum (format 1): refused
    /// otherwise, since a damaged copy of one cannot be told from a good one.
    #[arg(long)]
    pub allow_unchecked: bool,
    /// Compute device.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

#[derive(Debug, Args)]
pub struct ReceptiveFieldArgs {
    /// A trained run (else give --model for an untrained one).
    #[arg(long, conflicts_with_all = ["model", "preset"])]
    pub run: Option<PathBuf>,
    /// Which checkpoint of --run.
    #[arg(long, value_enum, default_value = "best")]
    pub checkpoint: CheckpointArg,
    /// Use the checkpoint's raw weights even where the run keeps a weight average (`train
    /// --ema`), which is used by default.
    #[arg(long)]
    pub raw_weights: bool,
    /// Read a checkpoint written before checkpoints carried a checksum (format 1): refused
    /// otherwise, since a damaged copy of one cannot be told from a good one.
    #[arg(long)]
    pub allow_unchecked: bool,
    /// An untrained model of this architecture (seeded initialisation).
    #[arg(long, value_enum, required_unless_present = "run")]
    pub model: Option<Architecture>,
    /// Its size (default: the dataset's paper setting).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// The dataset whose images the untrained model is built for.
    #[arg(long, value_enum, default_value = "binarized-mnist")]
    pub dataset: DatasetName,
    /// Seed of the untrained model's weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The predicted pixel, ROW,COL (0-based).
    #[arg(long, value_parser = parse_pixel)]
    pub pixel: (usize, usize),
    /// Its colour channel (0 = R, 1 = G, 2 = B; 0 for grey images).
    #[arg(long, default_value_t = 0)]
    pub channel: usize,
    /// Output PNG (target red, dependencies grey to white by gradient size, none dark blue).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Pixel upscaling of the PNG (at most 64).
    #[arg(long, default_value_t = 12, value_parser = one_to(64))]
    pub scale: usize,
    /// Print JSON: the target and every input sub-pixel with a non-zero gradient.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Number of images (at most 100,000).
    #[arg(long, default_value_t = 16, value_parser = one_to(100_000))]
    pub count: usize,
    /// Seed of the draws: the same seed gives the same images.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Temperature of every conditional (1 = the model).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Output PNG grid.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write one PNG per sample into this folder.
    #[arg(long)]
    pub each: Option<PathBuf>,
    /// Images per grid row (at most 1,000).
    #[arg(long, default_value_t = 8, value_parser = one_to(1_000))]
    pub columns: usize,
    /// Pixel upscaling of the grid (at most 64).
    #[arg(long, default_value_t = 4, value_parser = one_to(64))]
    pub scale: usize,
    /// Use the naive sampler (one full forward pass per sub-pixel) instead of the fast one.
    #[arg(long)]
    pub naive: bool,
    /// A class-conditional model: every sample of class K (default: the classes in turn, so
    /// that `--columns` set to the number of classes gives one column per class).
    #[arg(long)]
    pub class: Option<u8>,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Split the images come from.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// Indices of the images in the split, e.g. 0,5,9 (`--images` is the older spelling;
    /// `--image` is always a PNG file).
    #[arg(long, alias = "images", value_delimiter = ',', conflicts_with_all = ["count", "image"])]
    pub indices: Option<Vec<usize>>,
    /// Number of images (the first N of the split; at most 10,000).
    #[arg(long, conflicts_with = "image", value_parser = one_to(10_000))]
    pub count: Option<usize>,
    /// Complete this PNG instead of dataset images.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Rows kept from the top (default: half the image).
    #[arg(long)]
    pub observed_rows: Option<usize>,
    /// Completions per image (at most 100).
    #[arg(long, default_value_t = 3, value_parser = one_to(100))]
    pub samples_per_image: usize,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Temperature.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Output PNG grid.
    #[arg(long)]
    pub out: PathBuf,
    /// Pixel upscaling of the grid (at most 64).
    #[arg(long, default_value_t = 4, value_parser = one_to(64))]
    pub scale: usize,
    /// Use the naive sampler.
    #[arg(long)]
    pub naive: bool,
    /// Read the data from here instead of the folder recorded in the run.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A class-conditional model: complete under class K (default: each dataset image's own
    /// label; needed with --image).
    #[arg(long)]
    pub class: Option<u8>,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The PNG to score (its size and channels must match the model; binary models threshold
    /// grey values at 128).
    #[arg(long, required_unless_present = "index", conflicts_with = "index")]
    pub image: Option<PathBuf>,
    /// Score image N of the run's dataset instead (see --split).
    #[arg(long)]
    pub index: Option<usize>,
    /// The split --index counts in.
    #[arg(long, value_enum, default_value = "test", requires = "index")]
    pub split: SplitArg,
    /// The dataset folder for --index (default: the run's).
    #[arg(long, requires = "index")]
    pub data_dir: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write a heatmap of the per-pixel NLL here.
    #[arg(long)]
    pub heatmap: Option<PathBuf>,
    /// The model's predictive distribution at this pixel (ROW,COL from 0), every channel given
    /// the image before it: the paper's softmax figure. Printed as a summary, in the JSON as
    /// `distribution`, and drawn with --softmax-out.
    #[arg(long, value_parser = parse_pixel)]
    pub softmax: Option<(usize, usize)>,
    /// Draw the --softmax distribution (probability of each value, one line per channel) as SVG.
    #[arg(long, requires = "softmax")]
    pub softmax_out: Option<PathBuf>,
    /// A class-conditional model: score -log p(x | K) (default: the dataset image's own
    /// label; needed with --image).
    #[arg(long)]
    pub class: Option<u8>,
}

/// `train --lr-schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LrScheduleArg {
    /// lr x lr-decay^step (constant with the default decay 1).
    Exponential,
    /// Cosine annealing to 0 at --cosine-steps.
    Cosine,
}

#[derive(Debug, Args)]
pub struct CompressArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// PNG files, or folders of PNGs (their `.png` files, by name), to compress.
    pub inputs: Vec<PathBuf>,
    /// Compress a split of the run's dataset instead of files.
    #[arg(long, value_enum, conflicts_with = "inputs")]
    pub split: Option<SplitArg>,
    /// With --split: only the first N images.
    #[arg(long, requires = "split", value_parser = at_least_one())]
    pub limit: Option<usize>,
    /// Read the data from here instead of the folder recorded in the run.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The compressed file to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Images per range-coder stream, decoded together (default: 256, fewer for large models so
    /// that a chunk's caches take at most 1 GiB).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub chunk: Option<u32>,
    /// Print, per image and in total, the model's NLL, the coded size and the sizes as PNG,
    /// WebP lossless and JPEG XL lossless (where `cwebp` / `cjxl` are installed).
    #[arg(long)]
    pub report: bool,
    /// Print the report as one JSON object (implies --report).
    #[arg(long)]
    pub json: bool,
    /// Write the compact container (format version 2: a header of about 20 bytes instead of
    /// 160, the model named by 96 bits of its digests): for files of one or a few small images.
    #[arg(long)]
    pub compact: bool,
    /// A class-conditional model: code every image under class K (default: the dataset's
    /// labels with --split; needed with PNG inputs). The file stores each image's class.
    #[arg(long)]
    pub class: Option<u8>,
}

#[derive(Debug, Args)]
pub struct DecompressArgs {
    /// The .prnn file.
    pub input: PathBuf,
    /// The run whose model coded it (without it, the file's header says which weights it needs).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Which checkpoint of the run.
    #[arg(long, value_enum, default_value = "best")]
    pub checkpoint: CheckpointArg,
    /// Use the checkpoint's raw weights even where the run keeps a weight average (`train
    /// --ema`), which is used by default.
    #[arg(long)]
    pub raw_weights: bool,
    /// Read a checkpoint written before checkpoints carried a checksum (format 1): refused
    /// otherwise, since a damaged copy of one cannot be told from a good one.
    #[arg(long)]
    pub allow_unchecked: bool,
    /// Folder to write the PNGs into (created; must not hold files already).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// `pixelrnn serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A run directory to offer (repeatable). The models of ./pretrained/ are offered too, when
    /// that folder exists.
    #[arg(long)]
    pub run: Vec<PathBuf>,
    /// Offer only the runs given with --run, not those of ./pretrained/.
    #[arg(long)]
    pub no_pretrained: bool,
    /// The address to listen on. Anything but a loopback address serves other machines too
    /// (said at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Sampling and scoring jobs at once; a request beyond them gets "busy" (HTTP 503).
    #[arg(long, default_value_t = 2, value_parser = at_least_one())]
    pub max_jobs: usize,
    /// Seconds a job may take before it is stopped.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub job_timeout: u64,
    /// Largest upload accepted, in bytes.
    #[arg(long, default_value_t = 1 << 20, value_parser = at_least_one())]
    pub max_upload: usize,
    /// For the tests of the job bounds: every job waits this long per image row, so that a
    /// job of a tiny model lasts long enough to be busy, time out or lose its client.
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_row_delay_ms: u64,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run directory written by `train` (or `import`).
    #[arg(long)]
    pub run: PathBuf,
    /// Which checkpoint.
    #[arg(long, value_enum, default_value = "best")]
    pub checkpoint: CheckpointArg,
    /// Use the checkpoint's raw weights even where the run keeps a weight average (`train
    /// --ema`), which is used by default.
    #[arg(long)]
    pub raw_weights: bool,
    /// Read a checkpoint written before checkpoints carried a checksum (format 1): refused
    /// otherwise, since a damaged copy of one cannot be told from a good one.
    #[arg(long)]
    pub allow_unchecked: bool,
    /// The safetensors file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Tensor names and shapes: this crate's, or the PyTorch twin's `state_dict()` (M1-M4).
    #[arg(long, value_enum, default_value = "native")]
    pub layout: pixelrnn::interop::Layout,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The safetensors file.
    pub input: PathBuf,
    /// The run directory to create (must not hold a run).
    #[arg(long)]
    pub out: PathBuf,
    /// The dataset the model is for (default: what the file's metadata says).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetName>,
    /// Folder with the dataset's files (default: the user cache).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The run uses the dataset's files even if they differ from the published SHA-256.
    #[arg(long)]
    pub no_verify: bool,
    /// Validation images held out of the training set (default: the dataset's own; needed
    /// where the data folder holds fewer images than that).
    #[arg(long)]
    pub valid_size: Option<usize>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The benchmark model.
    #[arg(long, value_enum, required_unless_present = "run", conflicts_with = "run")]
    pub spec: Option<Spec>,
    /// Time a run's model instead (its config.json: architecture, sizes, batch size; e.g. a
    /// pretrained model, `--run pretrained/NAME`), at random weights as the specs are.
    #[arg(long, value_name = "RUN_DIR")]
    pub run: Option<std::path::PathBuf>,
    /// What is timed.
    #[arg(long, value_enum, default_value = "train")]
    pub mode: Mode,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Worker threads (default: all cores; at most 1,024).
    #[arg(long, value_parser = one_to(1024))]
    pub threads: Option<usize>,
    /// Override the spec's batch size (`--batch` is the older spelling).
    #[arg(long, alias = "batch", value_parser = at_least_one())]
    pub batch_size: Option<usize>,
    /// Print the JSON line only.
    #[arg(long)]
    pub json: bool,
    /// Compute device.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a dataset (verified with SHA-256, resumable).
    Fetch {
        /// The dataset.
        #[arg(value_enum)]
        name: DatasetName,
        /// Destination folder (default: the user cache).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Download from MIRROR/FILE instead of the canonical addresses.
        #[arg(long)]
        mirror: Option<String>,
    },
    /// Show the files, counts, image shape, classes and checksums of a dataset on disk.
    Info {
        /// The dataset.
        #[arg(value_enum)]
        name: DatasetName,
        /// Folder with the files (default: where `fetch` puts them).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Training images held out for validation.
        #[arg(long)]
        valid_size: Option<usize>,
    },
}

/// `--time-limit`: seconds, finite, positive, at most a year.
fn parse_time_limit(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 365.0 * 86_400.0 => Ok(s),
        _ => Err(format!("{text:?}: expected a number of seconds greater than 0 and at most a year (31536000)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn grid_and_batch_sizes_must_be_positive() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        for flag in ["--columns", "--scale"] {
            assert!(parse(&["pixelrnn", "sample", "--run", "r", "--out", "s.png", flag, "0"]).is_err(), "{flag} 0");
            assert!(parse(&["pixelrnn", "sample", "--run", "r", "--out", "s.png", flag, "2"]).is_ok(), "{flag} 2");
        }
        assert!(parse(&["pixelrnn", "complete", "--run", "r", "--out", "c.png", "--scale", "0"]).is_err());
        assert!(parse(&["pixelrnn", "eval", "--run", "r", "--batch-size", "0"]).is_err());
        assert!(parse(&["pixelrnn", "eval", "--run", "r", "--batch-size", "3"]).is_ok());
        assert!(parse(&["pixelrnn", "bench", "--spec", "m1", "--batch-size", "0"]).is_err());
    }

    #[test]
    fn closed_sets_are_checked_by_the_parser_and_old_spellings_still_work() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let usage = |args: &[&str]| parse(args).unwrap_err().kind();
        use clap::error::ErrorKind::InvalidValue;
        assert_eq!(usage(&["pixelrnn", "bench", "--spec", "m7"]), InvalidValue);
        assert_eq!(usage(&["pixelrnn", "bench", "--spec", "m1", "--mode", "fly"]), InvalidValue);
        assert_eq!(usage(&["pixelrnn", "data", "info", "svhn"]), InvalidValue);
        let train = ["pixelrnn", "train", "--model", "row-lstm", "--out", "r"];
        assert_eq!(usage(&[&train[..], &["--preset", "huge"]].concat()), InvalidValue);
        assert_eq!(usage(&[&train[..], &["--dataset", "svhn"]].concat()), InvalidValue);
        let Command::Bench(bench) = parse(&["pixelrnn", "bench", "--spec", "m4", "--batch", "4"]).unwrap().command
        else {
            panic!("bench")
        };
        assert_eq!((bench.spec, bench.mode, bench.batch_size), (Some(Spec::M4), Mode::Train, Some(4)));
        let Command::Train(args) =
            parse(&[&train[..], &["--preset", "tiny", "--dataset", "cifar10"]].concat()).unwrap().command
        else {
            panic!("train")
        };
        assert_eq!(
            (args.model, args.preset, args.data.dataset),
            (Some(Architecture::RowLstm), Some(Preset::Tiny), DatasetName::Cifar10)
        );
    }
}
