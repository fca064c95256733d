//! A neural field: an MLP that maps a pixel's coordinates (x, y) to its colour, fitted to one
//! image by the fused kernel — the workload tiny-cuda-nn's fully fused MLP was built for.
//!
//! The coordinates go through a frequency (Fourier feature) encoding computed on the GPU
//! (`examples/image_field.wgsl` gathers each batch's pixels and encodes them in place), then
//! through 5 hidden ReLU layers of 64; the loss is MSE against the RGB values. Every epoch
//! prints the reconstruction's PSNR; the last line is `final psnr NN.NN dB`.
//!
//! ```sh
//! cargo run --release --example image_field                     # the built-in image
//! cargo run --release --example image_field -- photo.png out.png # any PNG (at most 256×256)
//! ```

use std::time::Instant;

use wgmlp::gpu::fused::FusedMlp;
use wgmlp::rng::Rng;
use wgmlp::{Activation, Error, GpuContext, Loss, MlpConfig, OptimizerConfig};

/// Frequencies of the encoding: 2^k·π for k < FREQS.
const FREQS: u32 = 8;
const EPOCHS: usize = 40;
const BATCH: usize = 1024;

/// The `EncodeDims` uniform of image_field.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct EncodeDims {
    batch: u32,
    offset: u32,
    width: u32,
    height: u32,
    freqs: u32,
    _pad: [u32; 3],
}

/// An RGB image with values in [0, 1], row-major.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<f32>,
}

/// The built-in picture: soft discs, a colour wave and a radial gradient (no download).
fn builtin_image() -> Image {
    let (width, height) = (128, 128);
    let mut rgb = Vec::with_capacity(width * height * 3);
    let smooth = |d: f32| 1.0 / (1.0 + (d * 40.0).exp());
    for py in 0..height {
        for px in 0..width {
            let u = (px as f32 + 0.5) / width as f32 * 2.0 - 1.0;
            let v = (py as f32 + 0.5) / height as f32 * 2.0 - 1.0;
            let r2 = u * u + v * v;
            let disc1 = smooth(((u - 0.35).powi(2) + (v + 0.3).powi(2)).sqrt() - 0.3);
            let disc2 = smooth(((u + 0.4).powi(2) + (v - 0.35).powi(2)).sqrt() - 0.25);
            let wave = 0.5 + 0.5 * (5.0 * u + 3.0 * v).sin();
            let r = 0.15 + 0.6 * disc1 + 0.25 * wave;
            let g = 0.2 + 0.5 * (1.0 - r2).max(0.0) + 0.3 * disc2;
            let b = 0.25 + 0.45 * wave * (1.0 - disc1) + 0.3 * (2.0 * v).cos().abs() * disc2;
            rgb.extend([r.clamp(0.0, 1.0), g.clamp(0.0, 1.0), b.clamp(0.0, 1.0)]);
        }
    }
    Image { width, height, rgb }
}

fn load_png(path: &str) -> Result<Image, Error> {
    let img = image::open(path)
        .map_err(|e| Error::data(path, "image", format!("{e}; give a PNG file")))?
        .to_rgb8();
    let (width, height) = (img.width() as usize, img.height() as usize);
    if width * height > 256 * 256 {
        return Err(Error::data(
            path,
            "size",
            format!("{width}×{height} is larger than 256×256 pixels; scale the image down"),
        ));
    }
    let rgb = img.into_raw().iter().map(|&b| b as f32 / 255.0).collect();
    Ok(Image { width, height, rgb })
}

fn save_png(path: &str, width: usize, height: usize, rgb: &[f32]) -> Result<(), Error> {
    let bytes: Vec<u8> = rgb
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let img = image::RgbImage::from_raw(width as u32, height as u32, bytes)
        .expect("the buffer holds width × height pixels");
    img.save(path)
        .map_err(|e| Error::data(path, "write", format!("{e}; check the output path")))
}

/// Peak signal-to-noise ratio of `got` against `want` (values in [0, 1]).
fn psnr(got: &[f32], want: &[f32]) -> f64 {
    let mse = got
        .iter()
        .zip(want)
        .map(|(g, w)| ((g.clamp(0.0, 1.0) - w) as f64).powi(2))
        .sum::<f64>()
        / want.len() as f64;
    10.0 * (1.0 / mse.max(1e-12)).log10()
}

/// The encoding kernel, its buffers and one uniform per batch offset.
struct Encoder {
    pipeline: wgpu::ComputePipeline,
    order: wgpu::Buffer,
    image: wgpu::Buffer,
}

impl Encoder {
    fn new(ctx: &GpuContext, img: &Image) -> Self {
        let module = ctx
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("image_field.wgsl"),
                source: wgpu::ShaderSource::Wgsl(include_str!("image_field.wgsl").into()),
            });
        let pipeline = ctx
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("encode"),
                layout: None,
                module: &module,
                entry_point: Some("encode"),
                compilation_options: Default::default(),
                cache: None,
            });
        let pixels: Vec<u32> = (0..(img.width * img.height) as u32).collect();
        Encoder {
            pipeline,
            order: ctx.storage_from("order", &pixels),
            image: ctx.storage_from("image", &img.rgb),
        }
    }

    /// Writes pixels order[offset..offset + batch] into the model's input and targets.
    fn encode(&self, ctx: &GpuContext, model: &FusedMlp, img: &Image, offset: usize, batch: usize) {
        let dims = ctx.uniform(
            "encode",
            &EncodeDims {
                batch: batch as u32,
                offset: offset as u32,
                width: img.width as u32,
                height: img.height as u32,
                freqs: FREQS,
                _pad: [0; 3],
            },
        );
        let group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("encode"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[
                (0, &self.order),
                (1, &self.image),
                (2, model.input_buffer()),
                (3, model.target_buffer()),
                (4, &dims),
            ]
            .map(|(binding, buffer)| wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            }),
        });
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &group, &[]);
            let (x, y) = ctx.grid_1d((batch as u32).div_ceil(64));
            pass.dispatch_workgroups(x, y, 1);
        }
        ctx.queue.submit([enc.finish()]);
    }
}

fn main() -> Result<(), Error> {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let img = match args.first() {
        Some(path) => load_png(path)?,
        None => builtin_image(),
    };
    let out = args.get(1).map_or("image_field.png", String::as_str);
    let pixels = img.width * img.height;

    let ctx = GpuContext::new()?;
    let config = MlpConfig::new(2 + 4 * FREQS as usize, &[64; 5], 3)
        .with_activation(Activation::Relu)
        .with_loss(Loss::Mse)
        .with_seed(7);
    let mut model = FusedMlp::new(&ctx, &config, OptimizerConfig::adam(5e-3), pixels)?;
    let encoder = Encoder::new(&ctx, &img);
    println!(
        "fitting a {}×{} image: {} on {} with the fused kernel ({})",
        img.width,
        img.height,
        config.describe(),
        ctx.adapter_summary(),
        model.shape().describe()
    );

    let mut rng = Rng::new(1);
    let mut last = 0.0;
    for epoch in 1..=EPOCHS {
        let start = Instant::now();
        let perm = rng.permutation(pixels);
        ctx.queue
            .write_buffer(&encoder.order, 0, bytemuck::cast_slice(&perm));
        model.reset_metrics();
        for offset in (0..pixels).step_by(BATCH) {
            let batch = BATCH.min(pixels - offset);
            encoder.encode(&ctx, &model, &img, offset, batch);
            model.train_step_resident_targets(batch)?;
        }
        let train = model.train_state()?;
        if train.diverged != 0 {
            return Err(Error::Diverged {
                epoch,
                step: train.bad_step as u64,
                loss: train.bad_loss,
            });
        }
        // The whole image in pixel order, for the PSNR.
        let identity: Vec<u32> = (0..pixels as u32).collect();
        ctx.queue
            .write_buffer(&encoder.order, 0, bytemuck::cast_slice(&identity));
        encoder.encode(&ctx, &model, &img, 0, pixels);
        let rgb = model.forward_resident(pixels)?;
        last = psnr(&rgb, &img.rgb);
        println!(
            "epoch {epoch:3}/{EPOCHS}  train mse {:.5}  psnr {last:5.2} dB  {:.2} s",
            train.mean_loss(),
            start.elapsed().as_secs_f64()
        );
        if epoch == EPOCHS {
            save_png(out, img.width, img.height, &rgb)?;
            println!("wrote {out}");
        }
    }
    println!("final psnr {last:.2} dB");
    Ok(())
}
