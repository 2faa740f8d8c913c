//! Picks the compute device at run time.

use burn::prelude::Device;

use crate::cli::DeviceArg;

pub fn select(arg: DeviceArg) -> anyhow::Result<Device> {
    match arg {
        DeviceArg::Cpu => Ok(Device::flex()),
    }
}
