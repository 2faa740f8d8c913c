//! Picks the compute device at run time.

use anyhow::Context;
use burn::prelude::Device;

use crate::cli::DeviceArg;

pub fn select(arg: DeviceArg) -> anyhow::Result<Device> {
    let backend = pixelrnn::device::Backend::from(arg);
    pixelrnn::device::open(backend).with_context(|| format!("cannot use --device {backend}"))
}
