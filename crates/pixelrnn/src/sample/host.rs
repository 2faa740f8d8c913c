//! The trained network copied to plain host arrays, evaluated one position at a time with
//! per-layer caches: the incremental ("fast") sampler's engine.
//!
//! Generating sub-pixel (r, c, ch) needs every layer's output at (r, c) only. Each layer's
//! output there depends on earlier positions that are already cached, so one position costs
//! work proportional to the layers' kernels, not to the image:
//! - PixelCNN: the k x k masked convolutions read cached maps of earlier positions (the
//!   row caches of Fast PixelCNN++, kept whole here);
//! - Row LSTM: the state of row r at column c reads the finished row r-1 (Eq. 3);
//! - Diagonal BiLSTM: the left-to-right state at (r, c) reads (r, c-1) and (r-1, c); the
//!   right-to-left state of row r-1 is computed, right to left, when row r starts — possible
//!   because the shift down (§3.2) only ever uses the previous row.
//!
//! Layouts: maps are `[height][width][channels]` (channels contiguous); kernels
//! `[tap][out][in]`.

use burn::prelude::*;

use crate::models::{ImageSpec, Layer, PixelRnn};
use crate::nn::masked_conv::MaskedConv2d;

/// A convolution as a list of visible taps with their weights.
#[derive(Debug, Clone)]
pub struct HostConv {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Offsets `(dy, dx)` of the input read by each tap, relative to the output position.
    pub taps: Vec<(isize, isize)>,
    /// `[tap][out][in]`.
    pub weight: Vec<f32>,
    /// `[out]`.
    pub bias: Vec<f32>,
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 data")
}

impl HostConv {
    /// Copies a (masked) convolution; taps that are masked for every channel pair are dropped.
    pub fn from_layer(conv: &MaskedConv2d) -> Self {
        let [cout, cin, kh, kw] = conv.weight.val().dims();
        let w = floats(conv.effective_weight());
        let allowed = floats(conv.allowed.clone());
        let [top, _, left, _] = conv.padding;
        let mut taps = Vec::new();
        let mut weight = Vec::new();
        for ky in 0..kh {
            for kx in 0..kw {
                let at = |o: usize, i: usize| ((o * cin + i) * kh + ky) * kw + kx;
                if !(0..cout).any(|o| (0..cin).any(|i| allowed[at(o, i)] != 0.0)) {
                    continue;
                }
                taps.push((ky as isize - top as isize, kx as isize - left as isize));
                for o in 0..cout {
                    for i in 0..cin {
                        weight.push(w[at(o, i)]);
                    }
                }
            }
        }
        Self { cin, cout, taps, weight, bias: floats(conv.bias.val()) }
    }

    /// `out = bias + sum over taps of W_tap . read(tap)`; `read` returns `None` outside the map
    /// (zero padding).
    pub fn apply<'a>(&self, out: &mut [f32], read: impl Fn(isize, isize) -> Option<&'a [f32]>) {
        out.fill(0.0);
        self.accumulate(out, read);
    }

    /// `out += bias + sum over taps of W_tap . read(tap)`.
    pub fn accumulate<'a>(&self, out: &mut [f32], read: impl Fn(isize, isize) -> Option<&'a [f32]>) {
        out.iter_mut().zip(&self.bias).for_each(|(o, b)| *o += b);
        for (t, &(dy, dx)) in self.taps.iter().enumerate() {
            if let Some(x) = read(dy, dx) {
                self.add_tap(t, x, out);
            }
        }
    }

    /// `out += W_tap . x`.
    pub fn add_tap(&self, tap: usize, x: &[f32], out: &mut [f32]) {
        let w = &self.weight[tap * self.cout * self.cin..(tap + 1) * self.cout * self.cin];
        for (o, row) in w.chunks_exact(self.cin).enumerate() {
            out[o] += row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
        }
    }

    /// A 1x1 convolution at one position.
    pub fn pointwise(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; self.cout];
        self.apply(&mut out, |_, _| Some(x));
        out
    }
}

/// One recurrent direction: input-to-state and state-to-state convolutions.
#[derive(Debug, Clone)]
pub struct HostLstm {
    /// K^is.
    pub input_to_state: HostConv,
    /// K^ss.
    pub state_to_state: HostConv,
}

/// A layer's weights.
#[derive(Debug, Clone)]
pub enum HostLayer {
    /// PixelCNN residual block.
    Cnn {
        /// 1x1, 2h -> h.
        reduce: HostConv,
        /// k x k mask B.
        spatial: HostConv,
        /// 1x1, h -> 2h.
        expand: HostConv,
        /// Identity added.
        residual: bool,
    },
    /// Row LSTM layer.
    Row {
        /// The LSTM.
        lstm: HostLstm,
        /// 1x1 h -> 2h.
        projection: HostConv,
        /// Learned h_0 and c_0, `[h]` each.
        initial_hidden: Vec<f32>,
        /// c_0.
        initial_cell: Vec<f32>,
        /// Identity added.
        residual: bool,
    },
    /// Diagonal BiLSTM layer.
    Diagonal {
        /// Left-to-right direction.
        left_to_right: HostLstm,
        /// Right-to-left direction.
        right_to_left: HostLstm,
        /// 1x1 h -> 2h.
        projection: HostConv,
        /// Identity added.
        residual: bool,
    },
}

/// The whole network on the host.
#[derive(Debug, Clone)]
pub struct HostModel {
    /// Image spec.
    pub image: ImageSpec,
    /// First 7x7 mask A convolution.
    pub input: HostConv,
    /// Layers.
    pub layers: Vec<HostLayer>,
    /// Skip convolutions (empty when disabled).
    pub skips: Vec<HostConv>,
    /// Output stack: 2h -> d.
    pub output_hidden: HostConv,
    /// d -> logits.
    pub output_logits: HostConv,
    /// 2h.
    pub width: usize,
    /// h.
    pub hidden: usize,
}

fn lstm(i2s: &MaskedConv2d, s2s: &MaskedConv2d) -> HostLstm {
    HostLstm { input_to_state: HostConv::from_layer(i2s), state_to_state: HostConv::from_layer(s2s) }
}

impl HostModel {
    /// Copies a model's effective (masked) weights to the host.
    pub fn from_model(model: &PixelRnn) -> Self {
        let input = HostConv::from_layer(&model.input);
        let width = input.cout;
        let layers = model
            .layers
            .iter()
            .map(|layer| match layer {
                Layer::PixelCnn(b) => HostLayer::Cnn {
                    reduce: HostConv::from_layer(&b.reduce),
                    spatial: HostConv::from_layer(&b.spatial),
                    expand: HostConv::from_layer(&b.expand),
                    residual: b.residual,
                },
                Layer::RowLstm(l) => HostLayer::Row {
                    lstm: lstm(&l.lstm.input_to_state, &l.lstm.state_to_state),
                    projection: HostConv::from_layer(&l.projection),
                    initial_hidden: floats(l.lstm.initial_hidden.val()),
                    initial_cell: floats(l.lstm.initial_cell.val()),
                    residual: l.residual,
                },
                Layer::DiagonalBilstm(l) => HostLayer::Diagonal {
                    left_to_right: lstm(&l.left_to_right.input_to_state, &l.left_to_right.state_to_state),
                    right_to_left: lstm(&l.right_to_left.input_to_state, &l.right_to_left.state_to_state),
                    projection: HostConv::from_layer(&l.projection),
                    residual: l.residual,
                },
            })
            .collect();
        Self {
            image: model.image,
            input,
            layers,
            skips: model.skips.iter().map(HostConv::from_layer).collect(),
            output_hidden: HostConv::from_layer(&model.output.hidden),
            output_logits: HostConv::from_layer(&model.output.logits),
            width,
            hidden: width / 2,
        }
    }
}

/// A `[height][width][channels]` map of f32.
#[derive(Debug, Clone)]
struct Map {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<f32>,
}

impl Map {
    fn new(height: usize, width: usize, channels: usize) -> Self {
        Self { width, height, channels, data: vec![0.0; height * width * channels] }
    }
    fn at(&self, r: usize, c: usize) -> &[f32] {
        let i = (r * self.width + c) * self.channels;
        &self.data[i..i + self.channels]
    }
    fn at_mut(&mut self, r: usize, c: usize) -> &mut [f32] {
        let i = (r * self.width + c) * self.channels;
        &mut self.data[i..i + self.channels]
    }
    /// The vector at (r + dy, c + dx), or `None` outside the map.
    fn offset(&self, r: usize, c: usize, dy: isize, dx: isize) -> Option<&[f32]> {
        let (y, x) = (r as isize + dy, c as isize + dx);
        (y >= 0 && x >= 0 && (y as usize) < self.height && (x as usize) < self.width)
            .then(|| self.at(y as usize, x as usize))
    }
}

/// Per-layer state of one image.
#[derive(Debug, Clone)]
enum LayerState {
    /// relu(reduce(relu(x))) of every position so far (what the spatial conv reads).
    Cnn { reduced: Map },
    /// Layer inputs; hidden and cell states of the previous and current rows, `[1][width][h]`.
    Row { inputs: Map, prev_hidden: Map, prev_cell: Map, hidden: Map, cell: Map },
    /// Layer inputs; left-to-right and right-to-left states, whole maps.
    Diagonal { inputs: Map, lr_hidden: Map, lr_cell: Map, rl_hidden: Map, rl_cell: Map },
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Eq. (3) at one position: gates `[o | f | i | g]` and the previous cell -> (cell, hidden).
fn lstm_cell(gates: &[f32], prev_cell: Option<&[f32]>, cell: &mut [f32], hidden: &mut [f32]) {
    let h = cell.len();
    for k in 0..h {
        let (o, f, i, g) =
            (sigmoid(gates[k]), sigmoid(gates[h + k]), sigmoid(gates[2 * h + k]), gates[3 * h + k].tanh());
        cell[k] = f * prev_cell.map_or(0.0, |c| c[k]) + i * g;
        hidden[k] = o * cell[k].tanh();
    }
}

fn relu(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.max(0.0)).collect()
}

/// The incremental evaluation state of one image.
#[derive(Debug, Clone)]
pub struct Engine {
    canvas: Map,
    layers: Vec<LayerState>,
    row: Option<usize>,
}

impl Engine {
    /// Fresh state for `model`'s image size.
    pub fn new(model: &HostModel) -> Self {
        let ImageSpec { channels, height, width, .. } = model.image;
        let h = model.hidden;
        let layers = model
            .layers
            .iter()
            .map(|l| match l {
                HostLayer::Cnn { reduce, .. } => LayerState::Cnn { reduced: Map::new(height, width, reduce.cout) },
                HostLayer::Row { .. } => LayerState::Row {
                    inputs: Map::new(height, width, model.width),
                    prev_hidden: Map::new(1, width, h),
                    prev_cell: Map::new(1, width, h),
                    hidden: Map::new(1, width, h),
                    cell: Map::new(1, width, h),
                },
                HostLayer::Diagonal { .. } => LayerState::Diagonal {
                    inputs: Map::new(height, width, model.width),
                    lr_hidden: Map::new(height, width, h),
                    lr_cell: Map::new(height, width, h),
                    rl_hidden: Map::new(height, width, h),
                    rl_cell: Map::new(height, width, h),
                },
            })
            .collect();
        Self { canvas: Map::new(height, width, channels), layers, row: None }
    }

    /// Sets the network input (already scaled) of sub-pixel (r, c, ch).
    pub fn set_input(&mut self, r: usize, c: usize, ch: usize, value: f32) {
        self.canvas.at_mut(r, c)[ch] = value;
    }

    /// Work done once per row, before its first position: roll the Row LSTM states and run
    /// the right-to-left scans over the finished previous row.
    fn start_row(&mut self, model: &HostModel, r: usize) {
        for (layer, state) in model.layers.iter().zip(&mut self.layers) {
            match (layer, state) {
                (
                    HostLayer::Row { initial_hidden, initial_cell, .. },
                    LayerState::Row { prev_hidden, prev_cell, hidden, cell, .. },
                ) => {
                    if r == 0 {
                        for c in 0..prev_hidden.width {
                            prev_hidden.at_mut(0, c).copy_from_slice(initial_hidden);
                            prev_cell.at_mut(0, c).copy_from_slice(initial_cell);
                        }
                    } else {
                        std::mem::swap(prev_hidden, hidden);
                        std::mem::swap(prev_cell, cell);
                    }
                }
                (
                    HostLayer::Diagonal { right_to_left, .. },
                    LayerState::Diagonal { inputs, rl_hidden, rl_cell, .. },
                ) if r > 0 => {
                    let row = r - 1;
                    let h = rl_hidden.channels;
                    let mut gates = vec![0.0; right_to_left.input_to_state.cout];
                    let (mut cell, mut hidden) = (vec![0.0; h], vec![0.0; h]);
                    for c in (0..inputs.width).rev() {
                        right_to_left.input_to_state.apply(&mut gates, |_, _| Some(inputs.at(row, c)));
                        // K^ss: tap dy = -1 reads the row above, dy = 0 the previous column of
                        // the scan, which for the mirrored direction is the pixel to the right.
                        let rl = &*rl_hidden;
                        right_to_left.state_to_state.accumulate(&mut gates, |dy, _| {
                            if dy < 0 {
                                rl.offset(row, c, -1, 0)
                            } else {
                                rl.offset(row, c, 0, 1)
                            }
                        });
                        lstm_cell(&gates, rl_cell.offset(row, c, 0, 1), &mut cell, &mut hidden);
                        rl_cell.at_mut(row, c).copy_from_slice(&cell);
                        rl_hidden.at_mut(row, c).copy_from_slice(&hidden);
                    }
                }
                _ => {}
            }
        }
    }

    /// Logits of every channel at (r, c), `[channels * logits_per_subpixel]`, given the inputs
    /// before (r, c) in raster order (and the lower channels of (r, c)). Positions must be
    /// visited in raster order; a position may be visited again (once per channel).
    pub fn logits_at(&mut self, model: &HostModel, r: usize, c: usize) -> Vec<f32> {
        if self.row != Some(r) {
            assert!(c == 0 && self.row.map_or(r == 0, |p| p + 1 == r), "positions must be visited in raster order");
            self.start_row(model, r);
            self.row = Some(r);
        }
        let mut x = vec![0.0; model.width];
        model.input.apply(&mut x, |dy, dx| self.canvas.offset(r, c, dy, dx));
        let mut skip_sum: Option<Vec<f32>> = None;
        for (index, (layer, state)) in model.layers.iter().zip(&mut self.layers).enumerate() {
            x = match (layer, state) {
                (HostLayer::Cnn { reduce, spatial, expand, residual }, LayerState::Cnn { reduced }) => {
                    let a = relu(&reduce.pointwise(&relu(&x)));
                    reduced.at_mut(r, c).copy_from_slice(&a);
                    let mut b = vec![0.0; spatial.cout];
                    spatial.apply(&mut b, |dy, dx| reduced.offset(r, c, dy, dx));
                    let y = expand.pointwise(&relu(&b));
                    if *residual {
                        x.iter().zip(y).map(|(a, b)| a + b).collect()
                    } else {
                        y
                    }
                }
                (
                    HostLayer::Row { lstm, projection, residual, .. },
                    LayerState::Row { inputs, prev_hidden, prev_cell, hidden, cell },
                ) => {
                    inputs.at_mut(r, c).copy_from_slice(&x);
                    let mut gates = vec![0.0; lstm.input_to_state.cout];
                    // K^is (1 x k, mask B) on this row's inputs; K^ss (1 x k) on the row above.
                    lstm.input_to_state.apply(&mut gates, |dy, dx| inputs.offset(r, c, dy, dx));
                    lstm.state_to_state.accumulate(&mut gates, |_, dx| prev_hidden.offset(0, c, 0, dx));
                    let (mut new_cell, mut new_hidden) = (vec![0.0; cell.channels], vec![0.0; cell.channels]);
                    lstm_cell(&gates, Some(prev_cell.at(0, c)), &mut new_cell, &mut new_hidden);
                    cell.at_mut(0, c).copy_from_slice(&new_cell);
                    hidden.at_mut(0, c).copy_from_slice(&new_hidden);
                    let y = projection.pointwise(&new_hidden);
                    if *residual {
                        x.iter().zip(y).map(|(a, b)| a + b).collect()
                    } else {
                        y
                    }
                }
                (
                    HostLayer::Diagonal { left_to_right, projection, residual, .. },
                    LayerState::Diagonal { inputs, lr_hidden, lr_cell, rl_hidden, .. },
                ) => {
                    inputs.at_mut(r, c).copy_from_slice(&x);
                    let mut gates = vec![0.0; left_to_right.input_to_state.cout];
                    left_to_right.input_to_state.apply(&mut gates, |_, _| Some(&x[..]));
                    // K^ss: tap dy = -1 reads the pixel above, dy = 0 the pixel to the left.
                    let lr = &*lr_hidden;
                    left_to_right.state_to_state.accumulate(&mut gates, |dy, _| {
                        if dy < 0 {
                            lr.offset(r, c, -1, 0)
                        } else {
                            lr.offset(r, c, 0, -1)
                        }
                    });
                    let (mut new_cell, mut new_hidden) = (vec![0.0; lr_cell.channels], vec![0.0; lr_cell.channels]);
                    lstm_cell(&gates, lr_cell.offset(r, c, 0, -1), &mut new_cell, &mut new_hidden);
                    lr_cell.at_mut(r, c).copy_from_slice(&new_cell);
                    lr_hidden.at_mut(r, c).copy_from_slice(&new_hidden);
                    // §3.2: add the right-to-left map shifted down one row.
                    if r > 0 {
                        new_hidden.iter_mut().zip(rl_hidden.at(r - 1, c)).for_each(|(a, b)| *a += b);
                    }
                    let y = projection.pointwise(&new_hidden);
                    if *residual {
                        x.iter().zip(y).map(|(a, b)| a + b).collect()
                    } else {
                        y
                    }
                }
                _ => unreachable!("layer states are built from the same model"),
            };
            if let Some(skip) = model.skips.get(index) {
                let s = skip.pointwise(&x);
                skip_sum = Some(match skip_sum {
                    Some(sum) => sum.iter().zip(s).map(|(a, b)| a + b).collect(),
                    None => s,
                });
            }
        }
        let top = skip_sum.unwrap_or(x);
        let d = relu(&model.output_hidden.pointwise(&relu(&top)));
        model.output_logits.pointwise(&d)
    }
}
