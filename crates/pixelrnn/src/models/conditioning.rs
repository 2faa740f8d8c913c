//! Class-conditional models (van den Oord et al. 2016, "Conditional Image Generation with
//! PixelCNN Decoders", §2.3): p(x | y) with a learned embedding of the class label y added to
//! the trunk before every layer and before the output stack (the paper adds V^T y inside each
//! gate; a per-layer bias of the trunk is the form common to the four architectures here).
//!
//! The embedding is one vector per (layer, class), constant over the image, so it changes no
//! dependency between positions: causality holds as for the unconditional model. It starts at
//! zero, so a conditional model starts as the unconditional one from the same seed.

use burn::module::Param;
use burn::prelude::*;

/// The most classes a conditional model may have.
pub const MAX_CLASSES: usize = 1000;

/// One learned vector per (place, class): `places` = L + 1 (before each layer and the output).
#[derive(Module, Debug)]
pub struct ClassEmbedding {
    /// `[places, classes, width]`.
    pub(crate) table: Param<Tensor<3>>,
}

impl ClassEmbedding {
    /// A zero embedding of `classes` classes for `places` places of `width` channels.
    pub fn new(places: usize, classes: usize, width: usize, device: &Device) -> Self {
        Self { table: Param::from_tensor(Tensor::zeros([places, classes, width], device)) }
    }

    /// The vectors of `labels` at `place`, ready to add to a trunk map.
    ///
    /// # Shapes
    /// - `labels`: `[batch]` (each `< classes`) -> `[batch, width, 1, 1]`
    pub fn at(&self, place: usize, labels: Tensor<1, Int>) -> Tensor<4> {
        let [places, classes, width] = self.table.val().dims();
        debug_assert!(place < places);
        let [batch] = labels.dims();
        let rows = self.table.val().slice([place..place + 1, 0..classes, 0..width]).reshape([classes, width]);
        rows.select(0, labels).reshape([batch, width, 1, 1])
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.table.val().dims()[1]
    }

    /// The table on the host, `[places][classes * width]`, for the step form.
    pub(crate) fn host(&self) -> HostEmbedding {
        let [places, classes, width] = self.table.val().dims();
        let values = crate::nn::masked_conv::host_values(self.table.val());
        HostEmbedding { places, classes, width, values }
    }
}

/// A [`ClassEmbedding`] on the host.
#[derive(Debug, Clone)]
pub(crate) struct HostEmbedding {
    places: usize,
    classes: usize,
    width: usize,
    values: Vec<f32>,
}

impl HostEmbedding {
    /// Adds the vector of `label` at `place` to `x` (`[width]`).
    pub(crate) fn add(&self, place: usize, label: usize, x: &mut [f32]) {
        debug_assert!(place < self.places && label < self.classes && x.len() == self.width);
        let at = (place * self.classes + label) * self.width;
        for (v, e) in x.iter_mut().zip(&self.values[at..at + self.width]) {
            *v += e;
        }
    }
}
