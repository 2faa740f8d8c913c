//! A feature map on the host, `[height][width][channels]` with the channels of a position
//! contiguous: what the layers' per-position step forms (the incremental engine,
//! [`crate::models::Incremental`]) cache between positions.

/// A `[height][width][channels]` map of f32, zero where nothing was written.
#[derive(Debug, Clone)]
pub(crate) struct PositionMap {
    height: usize,
    width: usize,
    channels: usize,
    data: Vec<f32>,
}

impl PositionMap {
    /// A zero map.
    pub(crate) fn new(height: usize, width: usize, channels: usize) -> Self {
        Self { height, width, channels, data: vec![0.0; height * width * channels] }
    }

    /// Bytes of its values.
    pub(crate) fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    /// Width in positions.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// The channels at (r, c), `[channels]`.
    pub(crate) fn at(&self, r: usize, c: usize) -> &[f32] {
        let i = (r * self.width + c) * self.channels;
        &self.data[i..i + self.channels]
    }

    /// The channels at (r, c), to write.
    pub(crate) fn at_mut(&mut self, r: usize, c: usize) -> &mut [f32] {
        let i = (r * self.width + c) * self.channels;
        &mut self.data[i..i + self.channels]
    }

    /// The channels at (r + dy, c + dx), or `None` outside the map (zero padding).
    pub(crate) fn offset(&self, r: usize, c: usize, dy: isize, dx: isize) -> Option<&[f32]> {
        let (y, x) = (r as isize + dy, c as isize + dx);
        (y >= 0 && x >= 0 && (y as usize) < self.height && (x as usize) < self.width)
            .then(|| self.at(y as usize, x as usize))
    }
}

/// `x` with every negative value set to zero.
pub(crate) fn relu(x: &[f32]) -> Vec<f32> {
    x.iter().map(|v| v.max(0.0)).collect()
}

/// `x + y` when the layer has a residual connection (§3.3), else `y`: the step form of
/// [`crate::models`]' residual.
pub(crate) fn residual_at(x: &[f32], y: Vec<f32>, on: bool) -> Vec<f32> {
    if on {
        x.iter().zip(y).map(|(a, b)| a + b).collect()
    } else {
        y
    }
}

/// [`residual_at`] for the channels `span` only, written into `out` (its other channels left
/// as they are): a colour group's outputs ([`crate::models::step::StepForm::step_groups`]).
pub(crate) fn residual_into(out: &mut [f32], x: &[f32], y: &[f32], on: bool, span: std::ops::Range<usize>) {
    for k in span {
        out[k] = if on { x[k] + y[k] } else { y[k] };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_outside_the_map_read_as_padding() {
        let mut map = PositionMap::new(2, 3, 2);
        map.at_mut(1, 2).copy_from_slice(&[5.0, 6.0]);
        assert_eq!(map.offset(0, 1, 1, 1), Some(&[5.0, 6.0][..]));
        assert_eq!(map.offset(0, 0, -1, 0), None);
        assert_eq!(map.offset(1, 2, 0, 1), None);
        assert_eq!(map.offset(1, 2, 1, 0), None);
        assert_eq!(map.at(0, 0), &[0.0, 0.0]);
    }
}
