//! Compute devices chosen at run time: the CPU (Burn's `flex` backend) or a GPU through
//! Burn's wgpu runtime (`vulkan` feature: Vulkan / SPIR-V; `wgpu` feature: whichever API wgpu
//! settles on — Metal, Vulkan, DX12). GPU devices come with kernel fusion and autotuning.
//!
//! Opening a GPU device is checked: a build without the feature, a machine without a Vulkan
//! loader or without an adapter gives an [`Error::Device`] naming what was found, never a
//! panic on first use. A runtime can be initialised once per process, so opened devices are
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
}

impl Backend {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Vulkan => "vulkan",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Whether this build can open the backend at all.
    pub fn compiled(self) -> bool {
        match self {
            Backend::Cpu => true,
            Backend::Vulkan => cfg!(feature = "vulkan"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
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
        Backend::Cpu => Ok(Device::flex()),
        #[cfg(any(feature = "vulkan", feature = "wgpu"))]
        Backend::Vulkan | Backend::Wgpu if backend.compiled() => gpu::open(backend),
        _ => Err(Error::Device {
            device: backend.name().into(),
            reason: format!(
                "this build of pixelrnn has no {0} support; rebuild with `cargo build --release --features {0}`",
                backend.name()
            ),
        }),
    }
}

/// A one-line description of the adapter behind `backend` (name, type, driver), or of the CPU.
pub fn describe(backend: Backend) -> String {
    match backend {
        Backend::Cpu => format!("cpu (flex, {} threads)", rayon::current_num_threads()),
        #[cfg(any(feature = "vulkan", feature = "wgpu"))]
        _ if backend.compiled() => gpu::adapters(backend).first().cloned().unwrap_or_else(|| "no adapter".into()),
        _ => "not compiled in".into(),
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

    /// Opened devices, one per backend; errors are kept too, so a failure is reported the
    /// same way every time.
    static OPENED: OnceLock<Mutex<HashMap<Backend, std::result::Result<Device, String>>>> = OnceLock::new();

    fn api(backend: Backend) -> (WgpuBackend, wgpu::Backends) {
        match backend {
            Backend::Vulkan => (WgpuBackend::Vulkan, wgpu::Backends::VULKAN),
            _ => (WgpuBackend::Auto, wgpu::Backends::all()),
        }
    }

    pub fn open(backend: Backend) -> Result<Device> {
        let opened = OPENED.get_or_init(|| Mutex::new(HashMap::new()));
        let mut opened = opened.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = opened.entry(backend).or_insert_with(|| {
            Device::wgpu_options().graphics_api(api(backend).0).init().map_err(|e| {
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
        entry.clone().map_err(|reason| Error::Device { device: backend.name().into(), reason })
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
