//! Choosing an adapter: wgpu's environment variables, hardware before software, and the
//! explanation when there is none.

use crate::error::{Error, Result};

/// The hint printed when no adapter exists.
pub const NO_ADAPTER_HINT: &str = "install a Vulkan driver (on Debian/Ubuntu: apt-get install -y mesa-vulkan-drivers, which provides the lavapipe software adapter), or set WGPU_BACKEND=gl to use Mesa's llvmpipe through OpenGL";

/// How to choose an adapter. [`AdapterRequest::from_env`] follows wgpu's conventions.
#[derive(Clone, Debug)]
pub struct AdapterRequest {
    /// Backends to consider (`WGPU_BACKEND`, e.g. `vulkan`, `gl`, `metal`, `dx12`).
    pub backends: wgpu::Backends,
    /// Case-insensitive substring the adapter name must contain (`WGPU_ADAPTER_NAME`).
    pub name_contains: Option<String>,
    /// `WGPU_POWER_PREF` (`low` prefers integrated GPUs, `high` or unset prefers discrete).
    pub power: wgpu::PowerPreference,
    /// Accept software adapters (lavapipe, llvmpipe, WARP) when no hardware GPU is found.
    pub allow_software: bool,
}

impl Default for AdapterRequest {
    fn default() -> Self {
        AdapterRequest {
            backends: wgpu::Backends::all(),
            name_contains: None,
            power: wgpu::PowerPreference::HighPerformance,
            allow_software: true,
        }
    }
}

impl AdapterRequest {
    /// Reads `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and `WGPU_POWER_PREF`.
    pub fn from_env() -> Self {
        let mut r = AdapterRequest::default();
        if let Some(b) = wgpu::Backends::from_env() {
            r.backends = b;
        }
        r.name_contains = std::env::var("WGPU_ADAPTER_NAME")
            .ok()
            .filter(|s| !s.trim().is_empty());
        if let Some(p) = wgpu::PowerPreference::from_env() {
            r.power = p;
        }
        r
    }
}

/// A wgpu instance for the requested backends (GL needs no display: headless EGL).
pub fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

/// Every adapter visible on the requested backends.
pub fn enumerate(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance(backends).enumerate_adapters(backends))
}

/// Ranks an adapter: higher is preferred. Hardware before software; among software
/// adapters Vulkan (lavapipe) before GL (llvmpipe), which has fewer features.
fn rank(info: &wgpu::AdapterInfo, power: wgpu::PowerPreference) -> i32 {
    use wgpu::DeviceType as T;
    let kind = match (info.device_type, power) {
        (T::DiscreteGpu, wgpu::PowerPreference::LowPower) => 80,
        (T::IntegratedGpu, wgpu::PowerPreference::LowPower) => 90,
        (T::DiscreteGpu, _) => 90,
        (T::IntegratedGpu, _) => 80,
        (T::VirtualGpu, _) => 70,
        (T::Other, _) => 40,
        (T::Cpu, _) => 20,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    kind * 10 + backend
}

/// True for adapters that run on the CPU (lavapipe, llvmpipe, WARP).
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu
        || info.name.to_ascii_lowercase().contains("llvmpipe")
        || info.name.to_ascii_lowercase().contains("lavapipe")
}

/// Picks the best adapter for `req`, or says why there is none.
pub fn choose_adapter(req: &AdapterRequest) -> Result<wgpu::Adapter> {
    let mut adapters = enumerate(req.backends);
    let seen: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?})", i.name, i.backend)
        })
        .collect();
    if let Some(name) = &req.name_contains {
        let needle = name.to_ascii_lowercase();
        adapters.retain(|a| a.get_info().name.to_ascii_lowercase().contains(&needle));
    }
    if !req.allow_software {
        adapters.retain(|a| !is_software(&a.get_info()));
    }
    adapters.sort_by_key(|a| -rank(&a.get_info(), req.power));
    match adapters.into_iter().next() {
        Some(a) => Ok(a),
        None => {
            let mut detail = String::new();
            if req.backends != wgpu::Backends::all() {
                detail += &format!(" for backends {:?}", req.backends);
            }
            if let Some(n) = &req.name_contains {
                detail += &format!(" whose name contains {n:?} (WGPU_ADAPTER_NAME)");
            }
            if !req.allow_software {
                detail += " that is a hardware GPU";
            }
            if !seen.is_empty() {
                detail += &format!(" (adapters present: {})", seen.join(", "));
            }
            let hint = if seen.is_empty() {
                NO_ADAPTER_HINT.to_string()
            } else {
                "relax WGPU_ADAPTER_NAME / WGPU_BACKEND / --device, or run `wgmlp info` to list adapters".to_string()
            };
            Err(Error::NoAdapter { detail, hint })
        }
    }
}
