//! Causal masks for masked convolutions (paper §3.4, Fig. 2), as pure data.
//!
//! Polarity: every array here is `allowed`, i.e. `true` (or `1.0`) means the tap is **visible**.
//!
//! A `kernel_height x kernel_width` kernel with centre `(kernel_height / 2, kernel_width / 2)`:
//! - rows above the centre row are visible;
//! - on the centre row, columns left of the centre are visible;
//! - the centre tap is decided per (output channel, input channel) by the colour groups:
//!   output group `j` sees input group `i` iff `i < j` (mask A) or `i <= j` (mask B);
//! - everything else (right of centre, rows below) is blocked.
//!
//! For 3-channel (RGB) data each feature map is split into three contiguous groups
//! (channel `c` of a `C`-channel map is in group `3c / C`), so R features see only earlier
//! pixels, G features also see R of the current pixel, and B features see R and G. With
//! 1-channel data every channel is in group 0 and the rule becomes: mask A hides the centre,
//! mask B shows it.
//!
//! Gated PixelCNN's vertical stack (van den Oord et al. 2016, "Conditional Image Generation
//! with PixelCNN Decoders", §2.2) has two more masks, without colour groups (whole rows above
//! the pixel are known, every channel of them):
//! - [`MaskType::Above`]: only the rows above the centre row are visible (its first
//!   convolution, which reads the image: the "down-shift");
//! - [`MaskType::Vertical`]: the rows above and the whole centre row are visible (its later
//!   convolutions, whose input at row r already describes rows < r only).

use serde::{Deserialize, Serialize};

/// Which centre-tap rule a masked convolution uses (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskType {
    /// First layer only: a colour does not see itself at the current pixel.
    A,
    /// All later layers: a colour sees its own group (already conditioned, not the input).
    B,
    /// Gated PixelCNN's vertical stack, first convolution: rows above the centre only.
    Above,
    /// Gated PixelCNN's vertical stack, later convolutions: rows above and the centre row.
    Vertical,
}

/// Colour group of each channel of a `channels`-wide feature map split into `num_groups`
/// contiguous groups: channel `c` is in group `num_groups * c / channels`.
///
/// `num_groups` is the number of colour channels of the data (1 or 3).
pub fn contiguous_groups(channels: usize, num_groups: usize) -> Vec<usize> {
    (0..channels).map(|c| num_groups * c / channels).collect()
}

/// Colour groups `start..end` of `of` (the data's colour channels): the groups of a feature map
/// that a step form computes when a colour image's sub-pixels are generated one channel at a
/// time ([`crate::models::Incremental::channel_logits_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Groups {
    /// First group computed.
    pub start: usize,
    /// One past the last group computed.
    pub end: usize,
    /// Groups in all.
    pub of: usize,
}

impl Groups {
    /// Every group of `of`.
    pub fn all(of: usize) -> Self {
        Self { start: 0, end: of, of }
    }

    /// The channels of these groups in a `channels`-wide map split as [`contiguous_groups`]
    /// splits it (group `k` starts at channel `ceil(k * channels / of)`).
    pub fn span(&self, channels: usize) -> std::ops::Range<usize> {
        let first = |k: usize| (k * channels).div_ceil(self.of);
        first(self.start)..first(self.end)
    }
}

/// Colour groups of an LSTM gate map laid out as `[o | f | i | g]`, each block `hidden` wide:
/// gate channel `q * hidden + k` belongs to the group of hidden channel `k`, so that each
/// gate is computed only from what its own hidden unit may see.
pub fn gate_groups(hidden: usize, num_gates: usize, num_groups: usize) -> Vec<usize> {
    let one = contiguous_groups(hidden, num_groups);
    (0..num_gates).flat_map(|_| one.iter().copied()).collect()
}

/// The visibility of every weight of a masked convolution, `[out, in, kh, kw]` row-major.
///
/// `mask_type == None` gives an all-visible (unmasked) kernel.
pub fn allowed(
    mask_type: Option<MaskType>,
    kernel: [usize; 2],
    in_groups: &[usize],
    out_groups: &[usize],
) -> Vec<bool> {
    let [kh, kw] = kernel;
    let (centre_row, centre_col) = (kh / 2, kw / 2);
    let mut out = Vec::with_capacity(out_groups.len() * in_groups.len() * kh * kw);
    for &gout in out_groups {
        for &gin in in_groups {
            for row in 0..kh {
                for col in 0..kw {
                    let visible = match mask_type {
                        None => true,
                        Some(MaskType::Above) => row < centre_row,
                        Some(MaskType::Vertical) => row <= centre_row,
                        Some(_) if row < centre_row => true,
                        Some(_) if row > centre_row => false,
                        Some(_) if col < centre_col => true,
                        Some(_) if col > centre_col => false,
                        Some(MaskType::A) => gin < gout,
                        Some(MaskType::B) => gin <= gout,
                    };
                    out.push(visible);
                }
            }
        }
    }
    out
}

/// [`allowed`] as `0.0 / 1.0` weights, ready to multiply into a kernel.
pub fn allowed_f32(
    mask_type: Option<MaskType>,
    kernel: [usize; 2],
    in_groups: &[usize],
    out_groups: &[usize],
) -> Vec<f32> {
    allowed(mask_type, kernel, in_groups, out_groups).into_iter().map(|v| if v { 1.0 } else { 0.0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spatial pattern of the (0, 0) kernel as a string grid: `1` visible, `.` blocked.
    fn grid(v: &[bool], kh: usize, kw: usize, o: usize, i: usize, cin: usize) -> String {
        let base = (o * cin + i) * kh * kw;
        (0..kh)
            .map(|r| (0..kw).map(|c| if v[base + r * kw + c] { '1' } else { '.' }).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn mask_3x3_single_channel_literal() {
        let g = [0];
        let a = allowed(Some(MaskType::A), [3, 3], &g, &g);
        let b = allowed(Some(MaskType::B), [3, 3], &g, &g);
        assert_eq!(grid(&a, 3, 3, 0, 0, 1), "111\n1..\n...");
        assert_eq!(grid(&b, 3, 3, 0, 0, 1), "111\n11.\n...");
    }

    #[test]
    fn the_vertical_stack_masks_literal_and_blind_to_colour_groups() {
        let (one, three) = ([0], [0, 1, 2]);
        let above = allowed(Some(MaskType::Above), [3, 3], &one, &one);
        assert_eq!(grid(&above, 3, 3, 0, 0, 1), "111\n...\n...");
        let vertical = allowed(Some(MaskType::Vertical), [3, 3], &one, &one);
        assert_eq!(grid(&vertical, 3, 3, 0, 0, 1), "111\n111\n...");
        // Every (out, in) pair of colour groups has the same pattern: red sees blue above.
        let rgb = allowed(Some(MaskType::Vertical), [3, 3], &three, &three);
        for o in 0..3 {
            for i in 0..3 {
                assert_eq!(grid(&rgb, 3, 3, o, i, 3), "111\n111\n...");
            }
        }
    }

    #[test]
    fn mask_7x7_single_channel_literal() {
        let g = [0];
        let a = allowed(Some(MaskType::A), [7, 7], &g, &g);
        let expected_a = "1111111\n1111111\n1111111\n111....\n.......\n.......\n.......";
        assert_eq!(grid(&a, 7, 7, 0, 0, 1), expected_a);
        // Mask A on a 7x7 kernel keeps 24 of 49 taps (docs/bench-specs.md).
        assert_eq!(a.iter().filter(|&&v| v).count(), 24);
        let b = allowed(Some(MaskType::B), [7, 7], &g, &g);
        assert_eq!(b.iter().filter(|&&v| v).count(), 25);
    }

    #[test]
    fn rgb_centre_tap_blocks_for_3_to_6_channels() {
        // Input: R, G, B (one channel each). Output: 6 channels, groups [0,0,1,1,2,2].
        let gin = contiguous_groups(3, 3);
        let gout = contiguous_groups(6, 3);
        assert_eq!(gout, vec![0, 0, 1, 1, 2, 2]);
        let centre = |v: &[bool]| -> Vec<Vec<u8>> {
            (0..6).map(|o| (0..3).map(|i| v[(o * 3 + i) * 9 + 4] as u8).collect()).collect()
        };
        let a = allowed(Some(MaskType::A), [3, 3], &gin, &gout);
        assert_eq!(
            centre(&a),
            vec![vec![0, 0, 0], vec![0, 0, 0], vec![1, 0, 0], vec![1, 0, 0], vec![1, 1, 0], vec![1, 1, 0]]
        );
        let b = allowed(Some(MaskType::B), [3, 3], &gin, &gout);
        assert_eq!(
            centre(&b),
            vec![vec![1, 0, 0], vec![1, 0, 0], vec![1, 1, 0], vec![1, 1, 0], vec![1, 1, 1], vec![1, 1, 1]]
        );
        // Off-centre taps do not depend on the groups: rows above visible, left of centre
        // visible, right of centre and the row below blocked.
        for o in 0..6 {
            for i in 0..3 {
                for v in [&a, &b] {
                    let g = grid(v, 3, 3, o, i, 3);
                    let g: Vec<char> = g.chars().collect();
                    assert_eq!(&g[..5], &['1', '1', '1', '\n', '1'], "{o},{i}");
                    assert_eq!(&g[6..], &['.', '\n', '.', '.', '.'], "{o},{i}");
                }
            }
        }
    }

    #[test]
    fn row_kernel_1x3_mask_b() {
        let g = [0];
        let b = allowed(Some(MaskType::B), [1, 3], &g, &g);
        assert_eq!(b, vec![true, true, false]);
        let a = allowed(Some(MaskType::A), [1, 3], &g, &g);
        assert_eq!(a, vec![true, false, false]);
    }

    #[test]
    fn unmasked_is_all_visible() {
        assert!(allowed(None, [2, 1], &[0, 1, 2], &[0, 1]).iter().all(|&v| v));
    }

    #[test]
    fn a_span_holds_exactly_the_channels_of_its_groups() {
        for (channels, of) in [(1, 1), (6, 3), (7, 3), (32, 3), (20, 3), (256 * 3, 3), (2, 3)] {
            let groups = contiguous_groups(channels, of);
            for start in 0..of {
                for end in start..=of {
                    let span = Groups { start, end, of }.span(channels);
                    let want: Vec<usize> = (0..channels).filter(|&c| (start..end).contains(&groups[c])).collect();
                    assert_eq!(
                        span.clone().collect::<Vec<_>>(),
                        want,
                        "{channels} channels, groups {start}..{end} of {of}"
                    );
                }
            }
            assert_eq!(Groups::all(of).span(channels), 0..channels);
        }
    }

    #[test]
    fn groups_are_contiguous_and_gates_follow_hidden_units() {
        assert_eq!(contiguous_groups(4, 3), vec![0, 0, 1, 2]);
        assert_eq!(contiguous_groups(768, 3)[255], 0);
        assert_eq!(contiguous_groups(768, 3)[256], 1);
        assert_eq!(contiguous_groups(768, 3)[512], 2);
        assert_eq!(contiguous_groups(5, 1), vec![0; 5]);
        assert_eq!(gate_groups(3, 4, 3), vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    }
}
