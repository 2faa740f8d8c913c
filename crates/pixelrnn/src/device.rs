//! Compute devices chosen at run time: the CPU (Burn's `flex` backend) or a GPU through
//! Burn's wgpu runtime (`vulkan` feature: Vulkan / SPIR-V; `wgpu` feature: whichever API wgpu
//! settles on — Metal, Vulkan, DX12) or its CUDA runtime (`cuda` feature: NVIDIA GPUs; the
//! driver and NVRTC are loaded at run time, so the build needs no CUDA toolkit). GPU devices
//! come with kernel fusion and autotuning.
//!
//! Opening a GPU device is checked: a build without the feature, a machine without a Vulkan
//! loader, without an adapter or without a CUDA driver gives an [`Error::Device`] naming what
//! was found, never a panic on first use. A runtime can be initialised once per process, so opened devices are
//! kept and handed out again.

use std::fmt;

use burn::prelude::Device;

use crate::error::{Error, Result};

/// Where tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The CPU, Burn's `flex` backend.
    Cpu,
    /// A GPU through Vulkan (feature `vulkan`).
    Vulkan,
    /// A GPU through wgpu's automatic choice of graphics API (feature `wgpu`).
    Wgpu,
    /// An NVIDIA GPU through CUDA (feature `cuda`).
    Cuda,
}

impl Backend {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Vulkan => "vulkan",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether this build can open the backend at all.
    pub fn compiled(self) -> bool {
        match self {
            Backend::Cpu => true,
            Backend::Vulkan => cfg!(feature = "vulkan"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Opens `backend`'s default device (for GPUs the high-power adapter wgpu prefers; set
/// `CUBECL_WGPU_DEFAULT_DEVICE`, e.g. `DiscreteGpu(1)`, to pick another).
pub fn open(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Cpu => Ok(cpu()),
        #[cfg(any(feature = "vulkan", feature = "wgpu"))]
        Backend::Vulkan | Backend::Wgpu if backend.compiled() => gpu::open_kind(backend, None),
        #[cfg(feature = "cuda")]
        Backend::Cuda => cuda::open(0),
        _ => Err(Error::Device {
            device: backend.name().into(),
            reason: format!(
                "this build of pixelrnn has no {0} support; rebuild with `cargo build --release --features {0}`",
                backend.name()
            ),
        }),
    }
}

/// The CPU device, its threads flushing subnormal floats to zero
/// ([`crate::fpenv`]).
fn cpu() -> Device {
    crate::fpenv::flush_to_zero();
    Device::flex()
}

/// Opens the `index`-th device of `backend` (for GPUs the `index`-th discrete GPU: how the ranks
/// of one machine and `train --devices` spread over its GPUs). The CPU is one device, index 0.
pub fn open_nth(backend: Backend, index: usize) -> Result<Device> {
    match backend {
        Backend::Cpu if index == 0 => Ok(cpu()),
        Backend::Cpu => Err(Error::Device {
            device: format!("cpu:{index}"),
            reason: "the CPU is one device (cpu:0), whose cores the flex backend already uses; to train with several CPU processes, launch them with `mpirun -np N pixelrnn train ... --distributed mpi`".into(),
        }),
        #[cfg(any(feature = "vulkan", feature = "wgpu"))]
        Backend::Vulkan | Backend::Wgpu if backend.compiled() => gpu::open_kind(backend, Some(index)),
        #[cfg(feature = "cuda")]
        Backend::Cuda => cuda::open(index),
        _ => open(backend),
    }
}

/// One device of a list such as `vulkan:0,vulkan:1` (`train --devices`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Its backend.
    pub backend: Backend,
    /// Which device of the backend (see [`open_nth`]).
    pub index: usize,
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.backend, self.index)
    }
}

/// Parses a comma-separated device list (`BACKEND[:INDEX]`, index 0 when left out). Refused:
/// an unknown backend or index, a repeated device, two backends in one list, and more than
/// one CPU device (the CPU is one device).
pub fn parse_device_list(list: &str) -> Result<Vec<DeviceSpec>> {
    let bad = |reason: String| Error::Config(format!("device list {list:?}: {reason}"));
    let mut out: Vec<DeviceSpec> = Vec::new();
    for item in list.split(',').map(str::trim) {
        let (name, index) = item.split_once(':').unwrap_or((item, "0"));
        let backend = [Backend::Cpu, Backend::Vulkan, Backend::Wgpu, Backend::Cuda]
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| bad(format!("unknown device {item:?}; expected cpu, vulkan:N, wgpu:N or cuda:N")))?;
        let index: usize = index.parse().map_err(|_| bad(format!("{item:?}: the index must be a number")))?;
        let spec = DeviceSpec { backend, index };
        if out.contains(&spec) {
            return Err(bad(format!("{spec} is listed twice")));
        }
        if let Some(first) = out.first().filter(|f| f.backend != backend) {
            return Err(bad(format!(
                "it mixes backends ({} and {}); use devices of one backend",
                first.backend, backend
            )));
        }
        out.push(spec);
    }
    if out.len() > 1 && out[0].backend == Backend::Cpu {
        return Err(bad(
            "the CPU is one device, whose cores the flex backend already uses; to train with several CPU processes, launch them with `mpirun -np N pixelrnn train ... --distributed mpi`".into(),
        ));
    }
    Ok(out)
}

/// A one-line description of the adapter behind `backend` (name, type, driver), or of the CPU.
pub fn describe(backend: Backend) -> String {
    match backend {
        Backend::Cpu => match rayon::current_num_threads() {
            1 => "cpu (flex, 1 thread)".to_string(),
            n => format!("cpu (flex, {n} threads)"),
        },
        #[cfg(feature = "cuda")]
        Backend::Cuda => "cuda:0 (CUDA driver, NVRTC kernels)".into(),
        #[cfg(any(feature = "vulkan", feature = "wgpu"))]
        _ if backend.compiled() => gpu::adapters(backend).first().cloned().unwrap_or_else(|| "no adapter".into()),
        _ => "not compiled in".into(),
    }
}

/// CUDA devices: Burn's CUDA runtime loads the driver (`libcuda.so`) and NVRTC when a device
/// is first used, and panics where they are missing; opening runs one tiny computation on the
/// device and turns such a panic into an [`Error::Device`].
#[cfg(feature = "cuda")]
mod cuda {
    use burn::prelude::*;

    use crate::error::{Error, Result};

    pub(super) fn open(index: usize) -> Result<Device> {
        let device = Device::cuda(index);
        let probe = device.clone();
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let tried = std::panic::catch_unwind(move || {
            let t = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &probe);
            (t.clone() * t).sum().into_scalar::<f32>()
        });
        std::panic::set_hook(quiet);
        match tried {
            Ok(v) if v == 5.0 => Ok(device),
            Ok(v) => Err(Error::Device {
                device: format!("cuda:{index}"),
                reason: format!("a test computation gave {v}, not 5"),
            }),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "the CUDA runtime failed".into());
                let line = why.lines().next().unwrap_or_default().to_string();
                Err(Error::Device {
                    device: format!("cuda:{index}"),
                    reason: format!(
                        "cannot use it: {line} (is the NVIDIA driver installed, libcuda.so.1 and libnvrtc on the library path, and the GPU index right?)"
                    ),
                })
            }
        }
    }
}

#[cfg(any(feature = "vulkan", feature = "wgpu"))]
mod gpu {
    use std::collections::HashMap;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::{Mutex, OnceLock};
    use std::task::{Context, Poll, Waker};

    use burn::prelude::Device;
    use burn::tensor::wgpu::{wgpu, WgpuBackend};

    use super::Backend;
    use crate::error::{Error, Result};

    /// Opened devices, per backend and index (`None`: the default adapter); errors are kept
    /// too, so a failure is reported the same way every time.
    #[allow(clippy::type_complexity)]
    static OPENED: OnceLock<Mutex<HashMap<(Backend, Option<usize>), std::result::Result<Device, String>>>> =
        OnceLock::new();

    fn api(backend: Backend) -> (WgpuBackend, wgpu::Backends) {
        match backend {
            Backend::Vulkan => (WgpuBackend::Vulkan, wgpu::Backends::VULKAN),
            _ => (WgpuBackend::Auto, wgpu::Backends::all()),
        }
    }

    /// The default adapter (`index` None) or the `index`-th discrete GPU.
    pub fn open_kind(backend: Backend, index: Option<usize>) -> Result<Device> {
        let opened = OPENED.get_or_init(|| Mutex::new(HashMap::new()));
        let mut opened = opened.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = opened.entry((backend, index)).or_insert_with(|| {
            let options = Device::wgpu_options().graphics_api(api(backend).0);
            let options = match index {
                Some(i) => options.device_kind(burn::tensor::DeviceKind::DiscreteGpu(i)),
                None => options,
            };
            options.init().map_err(|e| {
                let found = adapters(backend);
                let found = if found.is_empty() { "none".to_string() } else { found.join("; ") };
                let hint = if backend == Backend::Vulkan && found == "none" {
                    " (is the Vulkan loader libvulkan.so.1 installed, and VK_DRIVER_FILES / VK_ICD_FILENAMES pointing at the driver's ICD json?)"
                } else {
                    ""
                };
                format!("{e}; adapters found: {found}{hint}")
            })
        });
        let device = match index {
            Some(i) => format!("{backend}:{i}"),
            None => backend.name().into(),
        };
        entry.clone().map_err(|reason| Error::Device { device, reason })
    }

    /// "name (type, backend, driver info)" for every adapter wgpu sees for `backend`.
    pub fn adapters(backend: Backend) -> Vec<String> {
        let backends = api(backend).1;
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        block_on(instance.enumerate_adapters(backends))
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?}, {:?}, {} {})", i.name, i.device_type, i.backend, i.driver, i.driver_info)
            })
            .collect()
    }

    /// Runs a future that is ready without an executor (wgpu's native futures are).
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{open_nth, parse_device_list, Backend, DeviceSpec};

    #[test]
    fn device_lists_are_parsed_and_checked() {
        let v = parse_device_list("vulkan:0, vulkan:1").unwrap();
        assert_eq!(
            v,
            [DeviceSpec { backend: Backend::Vulkan, index: 0 }, DeviceSpec { backend: Backend::Vulkan, index: 1 }]
        );
        assert_eq!(parse_device_list("cpu").unwrap(), [DeviceSpec { backend: Backend::Cpu, index: 0 }]);
        for (list, expected) in [
            ("cpu,cpu:1", "the CPU is one device"),
            ("vulkan:0,wgpu:1", "mixes backends"),
            ("vulkan:0,vulkan:0", "listed twice"),
            ("tpu:0", "unknown device"),
            ("vulkan:x", "must be a number"),
        ] {
            let e = parse_device_list(list).unwrap_err().to_string();
            assert!(e.contains(expected) && e.contains(list), "{list}: {e}");
        }
        let e = open_nth(Backend::Cpu, 1).unwrap_err().to_string();
        assert!(e.contains("cpu:1") && e.contains("mpirun"), "{e}");
        assert_eq!(parse_device_list("cuda:1").unwrap(), [DeviceSpec { backend: Backend::Cuda, index: 1 }]);
        if !Backend::Cuda.compiled() {
            let e = super::open(Backend::Cuda).unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
