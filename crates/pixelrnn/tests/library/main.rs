//! The library's integration tests, one test binary: causality of every model on every data
//! kind (always), data-parallel training on in-process ranks (always), and CPU/GPU agreement (with the `vulkan` or `wgpu` feature; the causality tests
//! then also run on the device `PIXELRNN_TEST_DEVICE` names, see `scripts/gpu-check.sh`).

mod causality;
mod distributed;
mod fuzz_regressions;
#[cfg(any(feature = "vulkan", feature = "wgpu"))]
mod gpu;
mod twin;
