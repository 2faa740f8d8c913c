//! `pixelrnn receptive-field`: the paper's Figure 4 from gradients, for untrained and trained
//! models.

use assert_cmd::prelude::*;

use crate::common::{bin, small_mnist, stderr_of, train_args};

fn dependencies(args: &[&str]) -> Vec<(usize, usize)> {
    let out = bin().arg("receptive-field").args(args).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d[0].as_u64().unwrap() as usize, d[1].as_u64().unwrap() as usize))
        .collect()
}

#[test]
fn each_architecture_looks_where_the_paper_says() {
    let (r, c) = (14, 14);
    let before = |(y, x): (usize, usize)| y * 28 + x < r * 28 + c;
    for model in ["pixel-cnn", "row-lstm", "diagonal-bilstm", "gated-pixel-cnn"] {
        let deps = dependencies(&["--model", model, "--preset", "tiny", "--pixel", "14,14"]);
        assert!(deps.iter().all(|&p| before(p)), "{model}: a dependency on the future: {deps:?}");
        let context = r * 28 + c;
        match model {
            // A bounded field with a blind spot: far pixels of the row above, on the right.
            "pixel-cnn" => {
                assert!(deps.len() < context / 4, "{model}: {}", deps.len());
                assert!(deps.contains(&(r, c - 1)) && deps.contains(&(r - 1, c + 1)));
                assert!(!deps.contains(&(r - 1, 27)) && !deps.contains(&(0, 0)));
            }
            // The triangle: every row above, wider the further up; of its own row only the
            // nearest pixels on the left; nothing far to the right nearby.
            "row-lstm" => {
                assert!(deps.contains(&(0, 0)) && deps.contains(&(r, c - 1)), "{model}");
                assert!(!deps.contains(&(r, 0)) && !deps.contains(&(r - 1, 27)), "{model}");
                assert!(deps.len() > context / 2 && deps.len() < context, "{model}: {}", deps.len());
            }
            // No blind spot: the vertical stack of 2 layers reaches (r-1, c+3+2), and 3 + 2
            // rows up; bounded like the PixelCNN.
            "gated-pixel-cnn" => {
                assert!(deps.contains(&(r - 1, c + 4)) && deps.contains(&(r - 1, c + 5)), "{model}");
                assert!(deps.contains(&(r - 5, c)) && deps.contains(&(r, c - 1)), "{model}");
                assert!(!deps.contains(&(r - 1, c + 6)) && !deps.contains(&(0, 0)), "{model}");
            }
            // The whole context but one pixel: the last one of the row above, which the mask-A
            // input convolution hides from the right-to-left scan (see README).
            _ => {
                let missing: Vec<_> = (0..context).map(|i| (i / 28, i % 28)).filter(|p| !deps.contains(p)).collect();
                assert_eq!(missing, vec![(r - 1, 27)], "{model}");
            }
        }
    }
}

#[test]
fn a_trained_run_draws_a_png_and_bad_requests_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_mnist(tmp.path());
    let run = tmp.path().join("run");
    bin().args(train_args(&data, &run, "row-lstm", 2)).assert().success();
    let png = tmp.path().join("field.png");
    let r = run.to_str().unwrap();
    bin().args(["receptive-field", "--run", r, "--pixel", "3,5", "--out", png.to_str().unwrap()]).assert().success();
    let (channels, _, _, _) = pixelrnn::png::decode_png(&std::fs::read(&png).unwrap(), &png).unwrap();
    assert_eq!(channels, 3);
    // A run directory without a checkpoint, and one without anything: one line each, the OS's
    // words once.
    let bare = tmp.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    let b = bare.to_str().unwrap();
    let err = stderr_of(bin().args(["receptive-field", "--run", b, "--pixel", "1,1", "--json"]));
    assert!(err.contains("config.json") && err.matches("No such file").count() == 1, "{err}");
    std::fs::copy(run.join("config.json"), bare.join("config.json")).unwrap();
    let err = stderr_of(bin().args(["receptive-field", "--run", b, "--pixel", "1,1", "--json"]));
    assert!(err.contains("checkpoint-last.bin: missing"), "{err}");
    let err = stderr_of(bin().args(["receptive-field", "--run", r, "--pixel", "28,0", "--json"]));
    assert!(err.contains("outside the model's 28x28 images"), "{err}");
    let err = stderr_of(bin().args(["receptive-field", "--run", r, "--pixel", "3", "--json"]));
    assert!(err.contains("expected ROW,COL"), "{err}");
    let err = stderr_of(bin().args(["receptive-field", "--run", r, "--pixel", "3,3"]));
    assert!(err.contains("--out") && err.contains("--json"), "{err}");
    let err = stderr_of(bin().args([
        "receptive-field",
        "--model",
        "pixel-cnn",
        "--dataset",
        "folder",
        "--pixel",
        "1,1",
        "--json",
    ]));
    assert!(err.contains("--dataset folder"), "{err}");
}
