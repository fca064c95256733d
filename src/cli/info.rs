//! `wgmlp info`: adapters, features and limits.

use wgmlp::gpu::context::{self, AdapterRequest};
use wgmlp::gpu::fused::{LaneSetup, MAX_HIDDEN, choice};
use wgmlp::{GpuContext, Result};

/// Options of `wgmlp info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {}

/// Prints every adapter, then the chosen one's features and limits.
pub fn run(_args: &InfoArgs) -> Result<()> {
    let req = AdapterRequest::from_env();
    let adapters = context::enumerate(req.backends);
    println!("adapters ({}):", adapters.len());
    for a in &adapters {
        let i = a.get_info();
        println!(
            "  {:<40} backend {:<7} type {:<13} driver {} {}",
            i.name,
            format!("{:?}", i.backend),
            format!("{:?}", i.device_type),
            i.driver,
            i.driver_info
        );
    }
    let ctx = GpuContext::open(&req, wgmlp::ContextOptions::from_env())?;
    let f = ctx.features;
    let l = &ctx.limits;
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("\nchosen: {}", ctx.adapter_summary());
    println!("  software adapter        {}", yes(ctx.is_software()));
    println!(
        "  SHADER_F16              {}",
        yes(f.contains(wgpu::Features::SHADER_F16))
    );
    let sub = f.contains(wgpu::Features::SUBGROUP);
    if sub {
        println!(
            "  SUBGROUP                yes (size {}..{})",
            ctx.info.subgroup_min_size, ctx.info.subgroup_max_size
        );
    } else {
        println!("  SUBGROUP                no");
    }
    println!(
        "  TIMESTAMP_QUERY         {} (inside encoders {}, inside passes {})",
        yes(f.contains(wgpu::Features::TIMESTAMP_QUERY)),
        yes(f.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)),
        yes(f.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)),
    );
    println!(
        "  workgroup storage       {} bytes",
        l.max_compute_workgroup_storage_size
    );
    println!(
        "  invocations/workgroup   {}",
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  workgroups/dimension    {}",
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "  storage binding size    {} MiB",
        l.max_storage_buffer_binding_size >> 20
    );
    println!("  max buffer size         {} MiB", l.max_buffer_size >> 20);
    println!(
        "  storage buffers/stage   {}",
        l.max_storage_buffers_per_shader_stage
    );
    let tuner = &ctx.autotune;
    println!(
        "\nmatmul cores (WGMLP_MATMUL): policy {:?}, cache {}",
        tuner.policy(),
        tuner
            .cache_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none".into())
    );
    let choices = tuner.choices();
    if choices.is_empty() {
        println!("  no shape class tuned yet on this adapter (tuned at first use)");
    }
    for (class, variant) in choices {
        println!("  {class:<22} {variant:?}");
    }
    let lanes = LaneSetup::for_adapter(ctx.features, &ctx.info);
    println!(
        "
fused kernel (--kernel): {} lanes per row group ({} exchange), hidden widths up to {MAX_HIDDEN}, cache {}",
        lanes.lanes,
        lanes.exchange.name(),
        choice::cache_path(&ctx)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none".into())
    );
    let known = choice::known_choices(&ctx);
    if known.is_empty() {
        println!("  no model measured yet on this adapter (auto measures at first use)");
    }
    for (model, fused) in known {
        println!("  {model:<40} {}", if fused { "fused" } else { "layered" });
    }
    Ok(())
}
