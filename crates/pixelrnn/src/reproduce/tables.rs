//! The paper's comparisons as data: which models each table compares, on what, with the
//! paper's numbers beside them (§5, Tables 2-5), at three scales.

use serde::Serialize;

use crate::data::{DatasetName, Split};
use crate::error::Result;
use crate::models::{Architecture, ModelConfig, Preset};

/// A table of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum TableName {
    /// Table 2: residual and skip connections in a Row LSTM (CIFAR-10).
    Table2,
    /// Table 3: Row LSTM depth 1-12 (CIFAR-10).
    Table3,
    /// Table 4: binarized MNIST, nats.
    Table4,
    /// Table 5: CIFAR-10, bits/dim.
    Table5,
}

impl TableName {
    /// All tables, in the order `experiment all` runs them (the MNIST table first).
    pub const ALL: [TableName; 4] = [TableName::Table4, TableName::Table5, TableName::Table2, TableName::Table3];

    /// Lower-case name (`table4`).
    pub fn name(self) -> &'static str {
        match self {
            TableName::Table2 => "table2",
            TableName::Table3 => "table3",
            TableName::Table4 => "table4",
            TableName::Table5 => "table5",
        }
    }

    /// The dataset the table is on.
    pub fn dataset(self) -> DatasetName {
        match self {
            TableName::Table4 => DatasetName::BinarizedMnist,
            _ => DatasetName::Cifar10,
        }
    }
}

/// How big the runs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Two steps of tiny models: checks that the pipeline runs (the tests use it).
    Smoke,
    /// What a 2-core CPU runs in about two hours for all four tables: the paper's MNIST
    /// models, reduced widths and depths on CIFAR-10, a few thousand images per run.
    Small,
    /// The paper's widths and depths (§5; Table 5's 12 layers of h=128, d=1024); the step
    /// count is for the user to choose (`--steps`), the default is a start.
    Paper,
}

/// One model of a table.
#[derive(Debug, Clone, Serialize)]
pub struct RunSpec {
    /// Directory name of the run (`row-lstm`, `depth-06`).
    pub name: String,
    /// The row's label as the paper words it.
    pub label: String,
    /// The model.
    pub model: ModelConfig,
    /// The paper's number for this row (nats for Table 4, bits/dim for the others).
    pub paper: Option<f64>,
}

/// A table's runs and how they are trained and scored.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Which table.
    pub table: TableName,
    /// Its scale.
    pub scale: Scale,
    /// What the table compares.
    pub title: String,
    /// The dataset.
    pub dataset: DatasetName,
    /// The split the final NLL is measured on.
    pub split: Split,
    /// Images per step.
    pub batch_size: usize,
    /// Steps per run.
    pub steps: u64,
    /// Validate (on at most `valid_limit` images) every this many steps: the training curves.
    pub valid_every: u64,
    /// Images per validation pass.
    pub valid_limit: usize,
    /// The models.
    pub runs: Vec<RunSpec>,
    /// What differs from the paper's setting, said in the results.
    pub note: String,
}

/// The paper's numbers: Table 4 (nats), Tables 5, 2, 3 (bits/dim).
const TABLE4: [f64; 4] = [81.30, 80.54, 80.75, 79.20];
// 3.14 is the paper's PixelCNN figure, not an approximation of pi.
#[allow(clippy::approx_constant)]
const TABLE5: [f64; 3] = [3.14, 3.07, 3.00];
/// No skip / no residual, skip only, residual only, both.
const TABLE2: [f64; 4] = [3.22, 3.09, 3.07, 3.06];
const TABLE3_DEPTHS: [usize; 6] = [1, 2, 3, 6, 9, 12];
const TABLE3: [f64; 6] = [3.30, 3.20, 3.17, 3.09, 3.08, 3.06];

/// The runs of `table` at `scale`.
pub fn plan(table: TableName, scale: Scale) -> Result<Plan> {
    let dataset = table.dataset();
    let image = dataset.image_spec().expect("the tables' datasets have a fixed image size");
    let preset = if dataset == DatasetName::BinarizedMnist { Preset::Mnist } else { Preset::Cifar10 };
    // (layers, hidden, output hidden) of the reduced CIFAR-10 models.
    let sized = |architecture, layers: usize, hidden: usize, residual: bool, skip: bool| -> Result<ModelConfig> {
        let mut m = ModelConfig::preset(preset, architecture, image)?;
        let (layers, hidden, d) = match scale {
            Scale::Smoke => (layers.min(2), 6, 12),
            Scale::Small if dataset == DatasetName::BinarizedMnist => (layers, hidden, m.output_hidden_channels),
            Scale::Small => (layers, hidden, 4 * hidden),
            Scale::Paper => (layers, hidden, m.output_hidden_channels),
        };
        (m.num_layers, m.hidden_channels, m.output_hidden_channels) = (layers, hidden, d);
        (m.residual, m.skip) = (residual, skip);
        m.validate()?;
        Ok(m)
    };
    let run = |name: &str, label: &str, model: ModelConfig, paper: f64| RunSpec {
        name: name.into(),
        label: label.into(),
        model,
        paper: Some(paper),
    };
    let small = scale != Scale::Paper;
    // CIFAR widths: the paper's h=128 (d=1024), or h=16/32 here.
    let h_cifar = |small_h: usize| if small { small_h } else { 128 };
    let (title, split, runs) = match table {
        TableName::Table4 => (
            "Binarized MNIST test NLL (nats): PixelCNN, Row LSTM and Diagonal BiLSTM (paper Table 4)",
            Split::Test,
            vec![
                run(
                    "pixel-cnn",
                    "PixelCNN (7 layers, h=16)",
                    sized(Architecture::PixelCnn, 7, 16, true, true)?,
                    TABLE4[0],
                ),
                run(
                    "row-lstm",
                    "Row LSTM (7 layers, h=16)",
                    sized(Architecture::RowLstm, 7, 16, true, true)?,
                    TABLE4[1],
                ),
                run(
                    "diagonal-bilstm-1x32",
                    "Diagonal BiLSTM (1 layer, h=32)",
                    sized(Architecture::DiagonalBilstm, 1, 32, true, true)?,
                    TABLE4[2],
                ),
                run(
                    "diagonal-bilstm-7x16",
                    "Diagonal BiLSTM (7 layers, h=16)",
                    sized(Architecture::DiagonalBilstm, 7, 16, true, true)?,
                    TABLE4[3],
                ),
            ],
        ),
        TableName::Table5 => {
            let layers = |paper: usize| if small { 4 } else { paper };
            (
                "CIFAR-10 NLL (bits/dim): PixelCNN, Row LSTM and Diagonal BiLSTM (paper Table 5)",
                Split::Valid,
                vec![
                    run(
                        "pixel-cnn",
                        "PixelCNN",
                        sized(Architecture::PixelCnn, layers(15), h_cifar(32), true, true)?,
                        TABLE5[0],
                    ),
                    run(
                        "row-lstm",
                        "Row LSTM",
                        sized(Architecture::RowLstm, layers(12), h_cifar(32), true, true)?,
                        TABLE5[1],
                    ),
                    run(
                        "diagonal-bilstm",
                        "Diagonal BiLSTM",
                        sized(Architecture::DiagonalBilstm, layers(12), h_cifar(32), true, true)?,
                        TABLE5[2],
                    ),
                ],
            )
        }
        TableName::Table2 => {
            let layers = if small { 6 } else { 12 };
            let row = |name: &str, label: &str, residual, skip, paper| -> Result<RunSpec> {
                Ok(run(name, label, sized(Architecture::RowLstm, layers, h_cifar(16), residual, skip)?, paper))
            };
            (
                "Row LSTM on CIFAR-10 with and without residual and skip connections (paper Table 2)",
                Split::Valid,
                vec![
                    row("plain", "No skip, no residual", false, false, TABLE2[0])?,
                    row("skip", "Skip only", false, true, TABLE2[1])?,
                    row("residual", "Residual only", true, false, TABLE2[2])?,
                    row("both", "Residual and skip", true, true, TABLE2[3])?,
                ],
            )
        }
        TableName::Table3 => (
            "Row LSTM on CIFAR-10 at depths 1 to 12 (paper Table 3)",
            Split::Valid,
            TABLE3_DEPTHS
                .iter()
                .zip(TABLE3)
                .map(|(&depth, paper)| {
                    let model = sized(Architecture::RowLstm, depth, h_cifar(16), true, true)?;
                    let label = if depth == 1 { "1 layer".to_string() } else { format!("{depth} layers") };
                    Ok(run(&format!("depth-{depth:02}"), &label, model, paper))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let (batch_size, steps) = match (scale, table) {
        (Scale::Smoke, _) => (4, 2),
        (Scale::Small, TableName::Table4) => (32, 1500),
        (Scale::Small, _) => (16, 1000),
        (Scale::Paper, TableName::Table4) => (16, 100_000),
        (Scale::Paper, _) => (16, 200_000),
    };
    let valid_limit = match scale {
        Scale::Smoke => 8,
        Scale::Small => 256,
        Scale::Paper => 2000,
    };
    let mut note = match scale {
        Scale::Smoke => "smoke scale: tiny models, two steps; checks the pipeline, not the paper".to_string(),
        Scale::Small => "small scale: sized for a 2-core CPU (each row gives its steps and images seen)".to_string(),
        Scale::Paper => "paper scale: the paper's widths and depths".to_string(),
    };
    if scale == Scale::Small && dataset == DatasetName::Cifar10 {
        let m = &runs[0].model;
        let depths =
            match (runs.iter().map(|r| r.model.num_layers).min(), runs.iter().map(|r| r.model.num_layers).max()) {
                (Some(lo), Some(hi)) if lo != hi => format!("{lo}-{hi}"),
                _ => m.num_layers.to_string(),
            };
        note.push_str(&format!(
            "; reduced CIFAR-10 models ({depths} layers, h={}, d={}; the paper: 12-15 layers, h=128, d=1024)",
            m.hidden_channels, m.output_hidden_channels
        ));
    }
    if split == Split::Valid {
        note.push_str(
            "; scored on the held-out last 5,000 training images (the official test batch is not among the data here)",
        );
    }
    note.push_str("; Adam 1e-3 (the paper: RMSProp)");
    Ok(Plan {
        table,
        scale,
        title: title.into(),
        dataset,
        split,
        batch_size,
        steps,
        valid_every: (steps / 10).max(1),
        valid_limit,
        runs,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_the_papers_rows_and_numbers() {
        let t4 = plan(TableName::Table4, Scale::Small).unwrap();
        assert_eq!(t4.split, Split::Test);
        let diag = &t4.runs[2].model;
        assert_eq!((diag.architecture, diag.num_layers, diag.hidden_channels), (Architecture::DiagonalBilstm, 1, 32));
        let diag7 = &t4.runs[3].model;
        assert_eq!((diag7.num_layers, diag7.hidden_channels, diag7.output_hidden_channels), (7, 16, 32));
        assert_eq!(t4.runs.iter().map(|r| r.paper.unwrap()).collect::<Vec<_>>(), TABLE4);

        let t2 = plan(TableName::Table2, Scale::Paper).unwrap();
        let flags: Vec<_> = t2.runs.iter().map(|r| (r.model.residual, r.model.skip)).collect();
        assert_eq!(flags, [(false, false), (false, true), (true, false), (true, true)]);
        assert!(t2.runs.iter().all(|r| r.model.num_layers == 12 && r.model.hidden_channels == 128));
        assert!(t2.runs.iter().all(|r| r.model.output_hidden_channels == 1024));

        let t3 = plan(TableName::Table3, Scale::Small).unwrap();
        assert_eq!((t3.runs[0].label.as_str(), t3.runs[1].label.as_str()), ("1 layer", "2 layers"));
        assert!(t3.note.contains("(1-12 layers, h=16, d=64;"), "{}", t3.note);
        assert_eq!(t3.runs.iter().map(|r| r.model.num_layers).collect::<Vec<_>>(), TABLE3_DEPTHS);
        assert_eq!(t3.runs[3].name, "depth-06");

        let t5 = plan(TableName::Table5, Scale::Small).unwrap();
        assert_eq!(t5.split, Split::Valid);
        assert!(t5.note.contains("held-out") && t5.note.contains("reduced"));
        assert!(t5.runs.iter().all(|r| r.model.image.levels == 256 && r.model.image.channels == 3));
    }

    #[test]
    fn run_names_are_unique_per_table() {
        for table in TableName::ALL {
            for scale in [Scale::Smoke, Scale::Small, Scale::Paper] {
                let p = plan(table, scale).unwrap();
                let mut names: Vec<_> = p.runs.iter().map(|r| r.name.clone()).collect();
                names.sort();
                names.dedup();
                assert_eq!(names.len(), p.runs.len(), "{table:?} {scale:?}");
            }
        }
    }
}
