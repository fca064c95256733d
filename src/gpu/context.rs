//! `GpuContext`: adapter choice, device, queue, limits, the pipeline cache and buffer helpers.
//!
//! Acquiring a device ([`GpuContext::new`], [`AdapterRequest`]) is separate from using one
//! ([`GpuContext::from_device`]), so tests and applications can hand in their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::error::{Error, GpuFault, Result};
use crate::gpu::autotune::{Autotuner, Policy, default_cache_dir};
use crate::gpu::kernels::{Access, Kernel, PipelineKey};

pub use crate::gpu::adapter::{
    AdapterRequest, NO_ADAPTER_HINT, choose_adapter, enumerate, instance, is_software,
};

/// A kernel's binding signature (the key of the bind-group layout cache).
type Signature = &'static [(u32, Access)];

/// The least the kernels need; adapters below this are rejected with a clear reason.
fn check_limits(info: &wgpu::AdapterInfo, l: &wgpu::Limits) -> Result<()> {
    let need = [
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage,
            8,
        ),
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup,
            256,
        ),
        (
            "max_compute_workgroup_size_x",
            l.max_compute_workgroup_size_x,
            256,
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size,
            16384,
        ),
    ];
    for (name, have, want) in need {
        if have < want {
            return Err(Error::AdapterUnsuitable {
                adapter: info.name.clone(),
                reason: format!("{name} is {have}, wgmlp needs at least {want}"),
            });
        }
    }
    Ok(())
}

/// A handle to a GPU device: cheap to clone, `Send + Sync`, shared by every model, trainer
/// and predictor made from it (each keeps a clone, so none of them borrows it).
///
/// Open one with [`GpuContext::new`] (the adapter the environment asks for, default
/// [`ContextOptions`]), [`GpuContext::open`], or wrap a device you already have with
/// [`GpuContext::from_device`]. Its device, queue, adapter facts and limits are readable
/// through [`Deref`](std::ops::Deref) to [`ContextShared`].
#[derive(Clone)]
pub struct GpuContext {
    shared: Arc<ContextShared>,
}

impl std::ops::Deref for GpuContext {
    type Target = ContextShared;
    fn deref(&self) -> &ContextShared {
        &self.shared
    }
}

/// How a [`GpuContext`] chooses matmul cores, where it may write its caches, and its limits.
///
/// The default writes nothing to disk: matmul cores are timed once per shape class
/// ([`Policy::Auto`]) and remembered in memory. The command-line tool uses
/// [`ContextOptions::from_env`], which also keeps the choices in a cache directory.
#[derive(Clone, Debug)]
pub struct ContextOptions {
    /// How each layer's matmul core is chosen.
    pub autotune: Policy,
    /// Where the autotune choices (`autotune.json`) and the fused-kernel choices
    /// (`kernels.json`) are kept between runs; `None` keeps them in memory only.
    pub cache_dir: Option<std::path::PathBuf>,
    /// How long [`GpuContext::wait`] waits for the GPU before it reports a
    /// [`GpuFault::Timeout`].
    pub wait_timeout: std::time::Duration,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            autotune: Policy::Auto,
            cache_dir: None,
            wait_timeout: WAIT_TIMEOUT,
        }
    }
}

impl ContextOptions {
    /// The command-line tool's options: the policy from `WGMLP_MATMUL` and the cache in
    /// `$WGMLP_CACHE_DIR`, else `$XDG_CACHE_HOME/wgmlp`, else `~/.cache/wgmlp`.
    pub fn from_env() -> Self {
        ContextOptions {
            autotune: Policy::from_env(),
            cache_dir: default_cache_dir(),
            ..Default::default()
        }
    }
}

/// What a [`GpuContext`] shares between its clones: the device, its queue, the adapter's
/// facts and limits, and the caches of compiled pipelines and matmul-core choices.
pub struct ContextShared {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Adapter name, backend, device type and driver.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was created with.
    pub limits: wgpu::Limits,
    /// The features the device was created with.
    pub features: wgpu::Features,
    /// Workgroups per grid dimension the kernels may use (normally the device limit; tests
    /// lower it to exercise the multi-row grid path on small inputs).
    pub max_workgroups_per_dim: u32,
    /// The longest reduction one dispatch of a layer, loss or reduction kernel sums; longer
    /// ones are split into several dispatches (see [`crate::gpu::matmul`] on llvmpipe's loop
    /// limit). Tests lower it to exercise the split on small inputs.
    pub max_loop_trip: u32,
    /// Loop iterations an invocation may run in total before the driver silently stops its
    /// loops (llvmpipe/lavapipe: 65,535), if the adapter has such a limit.
    pub loop_limit: Option<u32>,
    /// How long [`GpuContext::wait`] waits before it reports a [`GpuFault::Timeout`].
    pub wait_timeout: std::time::Duration,
    /// Which matmul core each layer shape uses on this adapter.
    pub autotune: Autotuner,
    /// Where caches are kept between runs (see [`ContextOptions::cache_dir`]).
    pub cache_dir: Option<std::path::PathBuf>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    layouts: Mutex<HashMap<Signature, Arc<wgpu::BindGroupLayout>>>,
    uncaptured: Arc<Mutex<Option<(GpuFault, String)>>>,
}

impl std::fmt::Debug for ContextShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextShared")
            .field("adapter", &self.info.name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter_summary())
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Opens the adapter chosen by `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and `WGPU_POWER_PREF`
    /// (a hardware GPU first, then a software adapter), with default [`ContextOptions`].
    pub fn new() -> Result<GpuContext> {
        Self::open(&AdapterRequest::from_env(), ContextOptions::default())
    }

    /// Opens the best adapter matching `req`.
    pub fn open(req: &AdapterRequest, options: ContextOptions) -> Result<GpuContext> {
        let adapter = choose_adapter(req)?;
        Self::from_adapter(&adapter, options)
    }

    /// Opens a device on `adapter`, requesting the features wgmlp can use and the adapter's
    /// own limits (larger than WebGPU's defaults: storage bindings, workgroup memory).
    pub fn from_adapter(adapter: &wgpu::Adapter, options: ContextOptions) -> Result<GpuContext> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        check_limits(&info, &limits)?;
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::SUBGROUP
            | wgpu::Features::SHADER_F16;
        let features = adapter.features() & wanted;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgmlp"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Device {
            adapter: info.name.clone(),
            message: e.to_string(),
        })?;
        Ok(Self::from_device(info, device, queue, options))
    }

    /// Wraps a device the caller already opened (its limits and features are read from it).
    /// The device's uncaptured-error and device-lost callbacks are replaced by ones that
    /// turn those events into [`Error::Gpu`] at the next [`GpuContext::check`].
    pub fn from_device(
        info: wgpu::AdapterInfo,
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: ContextOptions,
    ) -> GpuContext {
        let uncaptured: Arc<Mutex<Option<(GpuFault, String)>>> = Arc::default();
        let sink = uncaptured.clone();
        // Errors outside an error scope are recorded (and logged) instead of wgpu's default
        // panic; `GpuContext::check` turns the first one into an `Error::Gpu` of its kind.
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("wgpu: {e}");
            let kind = match e {
                wgpu::Error::OutOfMemory { .. } => GpuFault::OutOfMemory,
                wgpu::Error::Validation { .. } => GpuFault::Validation,
                wgpu::Error::Internal { .. } => GpuFault::Internal,
            };
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| (kind, e.to_string()));
            }
        }));
        let lost = uncaptured.clone();
        device.set_device_lost_callback(move |reason, message| {
            log::error!("wgpu: device lost ({reason:?}): {message}");
            if let Ok(mut slot) = lost.lock() {
                *slot = Some((GpuFault::DeviceLost, format!("{reason:?}: {message}")));
            }
        });
        let limits = device.limits();
        let loop_limit = loop_limit_of(&info);
        let autotune = Autotuner::with(
            &info,
            options.autotune,
            options.cache_dir.as_ref().map(|d| d.join("autotune.json")),
        );
        let shared = ContextShared {
            autotune,
            cache_dir: options.cache_dir,
            max_loop_trip: DEFAULT_MAX_LOOP_TRIP,
            wait_timeout: options.wait_timeout,
            loop_limit,
            features: device.features(),
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
            limits,
            device,
            queue,
            info,
            pipelines: Mutex::default(),
            layouts: Mutex::default(),
            uncaptured,
        };
        GpuContext {
            shared: Arc::new(shared),
        }
    }

    /// The shared state, to change settings before the context is shared: `None` once a
    /// clone exists (every model holds one). Tests lower the limits this way to reach
    /// multi-dispatch paths on small inputs.
    pub fn get_mut(&mut self) -> Option<&mut ContextShared> {
        Arc::get_mut(&mut self.shared)
    }

    /// `name (backend, device type, driver)`: what every GPU test prints.
    pub fn adapter_summary(&self) -> String {
        let i = &self.info;
        format!(
            "{} ({:?}, {:?}, {} {})",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        )
    }

    /// True when the adapter runs on the CPU (lavapipe, llvmpipe, WARP).
    pub fn is_software(&self) -> bool {
        is_software(&self.info)
    }

    /// Returns the first GPU error recorded outside an error scope, if any.
    pub fn check(&self, op: &str) -> Result<()> {
        let slot = self.uncaptured.lock().ok().and_then(|mut s| s.take());
        match slot {
            Some((kind, message)) => Err(self.fault(op, kind, message)),
            None => Ok(()),
        }
    }

    /// An [`Error::Gpu`] naming this adapter.
    pub fn fault(&self, op: &str, kind: GpuFault, message: impl ToString) -> Error {
        Error::Gpu {
            op: op.to_string(),
            kind,
            adapter: self.info.name.clone(),
            message: message.to_string(),
        }
    }

    /// The explicit bind-group layout of `kernel`, created once per binding signature (so
    /// kernels with the same signature, like the matmul cores, share it and their bind groups).
    pub fn layout(&self, kernel: Kernel) -> Arc<wgpu::BindGroupLayout> {
        let mut map = self.layouts.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(kernel.bindings())
            .or_insert_with(|| Arc::new(kernel.create_layout(&self.device)))
            .clone()
    }

    /// Checks that an invocation running `iterations` loop iterations in total stays within
    /// the adapter's loop limit (see [`ContextShared::loop_limit`]).
    pub fn check_loop_trip(&self, op: &str, iterations: u64, cause: &str) -> Result<()> {
        match self.loop_limit {
            Some(limit) if iterations > limit as u64 => Err(Error::AdapterUnsuitable {
                adapter: self.info.name.clone(),
                reason: format!(
                    "{op} would run {iterations} loop iterations in one invocation, and this driver silently stops every loop after {limit}; {cause}, use a hardware GPU, or the CPU reference path"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The compute pipeline for `key`, compiled on first use and cached.
    pub fn pipeline(&self, key: &PipelineKey) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(p.clone());
        }
        let layout = self.layout(key.kernel);
        let pipeline = Arc::new(key.create_pipeline(&self.device, &layout)?);
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), pipeline.clone());
        Ok(pipeline)
    }

    /// Number of pipelines compiled so far (each is built once).
    pub fn pipeline_count(&self) -> usize {
        self.pipelines.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// A bind group for `kernel` with `(binding, buffer)` entries.
    pub fn bind_group(&self, kernel: Kernel, entries: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
        let layout = self.layout(kernel);
        let entries: Vec<wgpu::BindGroupEntry> = entries
            .iter()
            .map(|(binding, buf)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: buf.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.name()),
            layout: &layout,
            entries: &entries,
        })
    }

    /// A storage buffer holding `data`, padded with zeros to a multiple of 4 floats (16 bytes)
    /// so vec4 kernels may read whole vectors. Usable as copy source and destination.
    pub fn storage_from<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let mut bytes = bytemuck::cast_slice::<T, u8>(data).to_vec();
        let padded = padded_bytes(bytes.len() as u64) as usize;
        bytes.resize(padded, 0);
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &bytes,
                usage: storage_usage(),
            })
    }

    /// A zero-filled storage buffer of `bytes` (rounded up to 16 bytes, at least 16).
    pub fn storage_zeroed(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: padded_bytes(bytes),
            usage: storage_usage(),
            mapped_at_creation: false,
        })
    }

    /// A uniform buffer holding `value`.
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// Copies the first `len` elements of `buffer` back to the host (one submit + wait).
    pub fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<T>> {
        let bytes = (len * std::mem::size_of::<T>()) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        // The copy size must be a multiple of 4; every buffer here is padded to 16 bytes.
        let copy = bytes.div_ceil(4) * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: copy,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, copy);
        self.queue.submit([enc.finish()]);
        // map_async only registers the request; poll(wait) drives the queue until the copy has
        // finished and the callback has run; then the mapped range can be read; unmap releases it.
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait("readback")?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.check("readback")?;
                return Err(self.fault("readback", GpuFault::Other, e));
            }
            Err(_) => {
                self.check("readback")?;
                return Err(self.fault("readback", GpuFault::Other, "map callback never ran"));
            }
        }
        let out = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| self.fault("readback", GpuFault::Other, e))?;
            bytemuck::cast_slice::<u8, T>(&view[..bytes as usize]).to_vec()
        };
        staging.unmap();
        self.check("readback")?;
        Ok(out)
    }

    /// Blocks until all submitted work has finished, or fails after the context's
    /// [`wait_timeout`](ContextOptions::wait_timeout) (default [`WAIT_TIMEOUT`]): a hung or
    /// lost device is an error, not a hang.
    pub fn wait(&self, op: &str) -> Result<()> {
        let polled = self.device.poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(self.wait_timeout),
        });
        // A recorded error (a lost device, an out-of-memory) says more than the poll's.
        self.check(op)?;
        self.poll_outcome(op, polled.map(|_| ()))
    }

    /// The error (if any) a wait's poll result means.
    fn poll_outcome(
        &self,
        op: &str,
        polled: std::result::Result<(), wgpu::PollError>,
    ) -> Result<()> {
        match polled {
            Ok(()) => Ok(()),
            Err(wgpu::PollError::Timeout) => Err(self.fault(
                op,
                GpuFault::Timeout,
                format!(
                    "the GPU did not finish within {} s",
                    self.wait_timeout.as_secs_f64()
                ),
            )),
            Err(e) => Err(self.fault(op, GpuFault::DeviceLost, e)),
        }
    }

    /// [`Self::poll_outcome`] for tests: a timed-out poll becomes a typed timeout error.
    #[doc(hidden)]
    pub fn timed_out_wait_error(&self, op: &str) -> Error {
        match self.poll_outcome(op, Err(wgpu::PollError::Timeout)) {
            Err(e) => e,
            Ok(()) => unreachable!("a timeout is an error"),
        }
    }

    /// Splits `workgroups` into a 2-D grid whose x extent stays within the per-dimension limit.
    /// Kernels recover the linear index as `wid.y * num_workgroups.x + wid.x` and bounds-check it.
    pub fn grid_1d(&self, workgroups: u32) -> (u32, u32) {
        grid_1d(workgroups, self.max_workgroups_per_dim)
    }
}

/// The total loop iterations an invocation may run on this adapter before its loops stop
/// silently, if it has such a limit. Mesa's gallivm (llvmpipe, lavapipe) counted every loop
/// iteration of an invocation against one limit of 65,535 in Mesa 22.3 (a 70,000-term sum came
/// out as 65,535); Mesa 25.0 sums all 70,000. Versions in between are treated as limited, as is
/// an llvmpipe whose version cannot be read.
pub fn loop_limit_of(info: &wgpu::AdapterInfo) -> Option<u32> {
    if !info.name.to_ascii_lowercase().contains("llvmpipe") {
        return None;
    }
    let text = format!("{} {}", info.driver, info.driver_info);
    let major = text
        .split("Mesa ")
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.trim().parse::<u32>().ok());
    match major {
        Some(m) if m >= 25 => None,
        _ => Some(65_535),
    }
}

/// The default of [`ContextShared::max_loop_trip`]: well inside llvmpipe's 65,535 iterations per
/// invocation, and long enough that GPUs split only reductions far beyond the usual shapes.
pub const DEFAULT_MAX_LOOP_TRIP: u32 = 16_384;

/// The default of [`ContextOptions::wait_timeout`]: how long [`GpuContext::wait`] waits for
/// the GPU before it reports an error.
pub const WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Splits `workgroups` into (x, y) with x ≤ `max_dim`, x·y ≥ workgroups and little waste.
pub fn grid_1d(workgroups: u32, max_dim: u32) -> (u32, u32) {
    if workgroups <= max_dim {
        return (workgroups.max(1), 1);
    }
    let y = workgroups.div_ceil(max_dim);
    let x = workgroups.div_ceil(y);
    (x, y)
}

/// Bytes rounded up to a multiple of 16, at least 16.
pub fn padded_bytes(bytes: u64) -> u64 {
    bytes.div_ceil(16).max(1) * 16
}

fn storage_usage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, driver_info: &str) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            name: name.into(),
            vendor: 0,
            device: 0,
            device_type: wgpu::DeviceType::Cpu,
            device_pci_bus_id: String::new(),
            driver: "llvmpipe".into(),
            driver_info: driver_info.into(),
            backend: wgpu::Backend::Vulkan,
            subgroup_min_size: 8,
            subgroup_max_size: 8,
            transient_saves_memory: None,
            limit_bucket: None,
        }
    }

    #[test]
    fn the_loop_limit_is_assumed_for_old_or_unknown_llvmpipe_only() {
        let llvmpipe = "llvmpipe (LLVM 15.0.6, 256 bits)";
        assert_eq!(
            loop_limit_of(&adapter(llvmpipe, "Mesa 22.3.6 (LLVM 15.0.6)")),
            Some(65_535)
        );
        assert_eq!(
            loop_limit_of(&adapter(llvmpipe, "Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)")),
            None
        );
        assert_eq!(loop_limit_of(&adapter(llvmpipe, "")), Some(65_535));
        assert_eq!(loop_limit_of(&adapter("NVIDIA H200", "580.0")), None);
    }

    #[test]
    fn grid_covers_every_workgroup_within_the_limit() {
        for (n, max) in [
            (1, 65535),
            (65535, 65535),
            (65536, 65535),
            (200_001, 65535),
            (17, 4),
            (0, 8),
        ] {
            let (x, y) = grid_1d(n, max);
            assert!(x <= max && x >= 1 && y >= 1, "{n} {max}: {x}x{y}");
            assert!(x as u64 * y as u64 >= n as u64, "{n} {max}: {x}x{y}");
        }
        assert_eq!(grid_1d(65536, 65535), (32768, 2));
    }
}
