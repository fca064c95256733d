//! `wgmlp plot`: each activation and its gradient over [-8, 8), computed on the GPU.

use std::io::Write;
use std::path::{Path, PathBuf};

use wgmlp::gpu::elementwise;
use wgmlp::plot::{Series, line_chart};
use wgmlp::{Activation, Error, Result};

/// Options of `wgmlp plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// Activation name (relu, prelu:0.1, swish:2, ...) or `all`.
    #[arg(long, default_value = "all")]
    pub activation: String,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write NAME.csv with columns x,y,grad.
    #[arg(long)]
    pub csv: bool,
}

/// The x grid of the textbook's figures: -8.0, -7.9, ..., 7.9.
pub fn grid() -> Vec<f32> {
    (0..160).map(|i| (-8.0 + 0.1 * i as f64) as f32).collect()
}

/// Runs the subcommand.
pub fn run(args: &PlotArgs) -> Result<()> {
    let chosen: Vec<(String, Activation)> = if args.activation.eq_ignore_ascii_case("all") {
        Activation::all()
            .into_iter()
            .map(|(n, a)| (n.to_string(), a))
            .collect()
    } else {
        let act: Activation = args.activation.parse()?;
        let file = args
            .activation
            .trim()
            .to_ascii_lowercase()
            .replace([':', '.'], "_");
        vec![(file, act)]
    };
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, "create", e))?;
    let ctx = super::common::open_context()?;
    eprintln!("computing on {}", ctx.adapter_summary());
    let x = grid();
    let ones = vec![1.0f32; x.len()];
    for (name, act) in &chosen {
        let y = elementwise::forward(&ctx, *act, &x)?;
        let g = elementwise::backward(&ctx, *act, &x, &ones)?;
        let pts = |v: &[f32]| -> Vec<(f64, f64)> {
            x.iter()
                .zip(v)
                .map(|(&a, &b)| (a as f64, b as f64))
                .collect()
        };
        let f_path = args.out.join(format!("{name}.png"));
        let g_path = args.out.join(format!("{name}_grad.png"));
        let label = act.name();
        line_chart(
            &f_path,
            "x",
            &format!("{label}(x)"),
            &[Series {
                label: "",
                points: pts(&y),
            }],
        )?;
        line_chart(
            &g_path,
            "x",
            &format!("grad of {label}"),
            &[Series {
                label: "",
                points: pts(&g),
            }],
        )?;
        let mut written = vec![f_path.display().to_string(), g_path.display().to_string()];
        if args.csv {
            let csv_path = args.out.join(format!("{name}.csv"));
            write_csv(&csv_path, &x, &y, &g)?;
            written.push(csv_path.display().to_string());
        }
        println!("{:<16} {}", act.to_string(), written.join("  "));
    }
    Ok(())
}

fn write_csv(path: &Path, x: &[f32], y: &[f32], g: &[f32]) -> Result<()> {
    let mut text = String::from("x,y,grad\n");
    for i in 0..x.len() {
        text += &format!("{},{},{}\n", x[i], y[i], g[i]);
    }
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, "create", e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(path, "write", e))
}
