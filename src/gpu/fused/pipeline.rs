//! The fused kernel's pipelines: validated with naga, compiled once per device and shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::{FusedShape, codegen};
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Kernel;

/// Compiled fused pipelines, per device and shape (each shape compiles once per process).
type PipelineCache = Mutex<HashMap<(wgpu::Device, FusedShape), Arc<wgpu::ComputePipeline>>>;

fn pipeline_cache() -> &'static PipelineCache {
    static CACHE: OnceLock<PipelineCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Validates the generated source with naga (subgroup operations allowed).
pub fn validate(name: &str, source: &str) -> Result<naga::Module> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| Error::Shader {
        shader: name.to_string(),
        stage: "parse",
        message: e.emit_to_string_with_path(source, name),
    })?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default() | naga::valid::Capabilities::SUBGROUP,
    )
    .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
    .subgroup_operations(naga::valid::SubgroupOperationSet::all())
    .validate(&module)
    .map_err(|e| Error::Shader {
        shader: name.to_string(),
        stage: "validate",
        message: e.emit_to_string_with_path(source, name),
    })?;
    Ok(module)
}

/// The compiled fused kernel for `shape` on `ctx` (validated, compiled once, cached).
pub fn pipeline(ctx: &GpuContext, shape: &FusedShape) -> Result<Arc<wgpu::ComputePipeline>> {
    let key = (ctx.device.clone(), *shape);
    if let Some(p) = pipeline_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(p.clone());
    }
    let name = format!("fused_mlp {}", shape.describe());
    let source = codegen::source(shape);
    validate(&name, &source)?;
    let layout = ctx.layout(Kernel::FusedMlp);
    let validation = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let internal = ctx.device.push_error_scope(wgpu::ErrorFilter::Internal);
    let module = ctx
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
    let pipeline_layout = ctx
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
    let pipeline = ctx
        .device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&name),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                // Workgroup memory is written before it is read (see kernels.rs).
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
    let errors = [
        pollster::block_on(internal.pop()),
        pollster::block_on(validation.pop()),
    ];
    if let Some(e) = errors.into_iter().flatten().next() {
        return Err(Error::Shader {
            shader: name,
            stage: "compile",
            message: e.to_string(),
        });
    }
    let pipeline = Arc::new(pipeline);
    pipeline_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, pipeline.clone());
    Ok(pipeline)
}
