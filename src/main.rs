//! The `wgmlp` command line: info, train, eval, predict, plot, bench.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train small multilayer perceptrons on any GPU through wgpu compute shaders.
#[derive(Parser, Debug)]
#[command(name = "wgmlp", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every adapter, and the features and limits of the one wgmlp would choose.
    Info(cli::info::InfoArgs),
    /// Train an MLP (default: a built-in dataset, in seconds).
    Train(Box<cli::train::TrainArgs>),
    /// Loss, accuracy and confusion matrix of a saved model on labelled data.
    Eval(cli::eval::EvalArgs),
    /// Class predictions and probabilities of a saved model for a CSV of features.
    Predict(cli::eval::PredictArgs),
    /// Plot each activation and its gradient (computed on the GPU) like the textbook's figures.
    Plot(cli::plot::PlotArgs),
    /// Measure kernels, layers, training and fixed costs on the chosen adapter.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => cli::info::run(&args),
        Command::Train(args) => cli::train::run(&args),
        Command::Eval(args) => cli::eval::run_eval(&args),
        Command::Predict(args) => cli::eval::run_predict(&args),
        Command::Plot(args) => cli::plot::run(&args),
        Command::Bench(args) => cli::bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            eprintln!("error: {}", with_flag_names(e));
            ExitCode::from(code)
        }
    }
}

/// The library names settings as a program would (`lr`, `batch_size`); the command line
/// names the flag that sets each, and says which flags help after a divergence.
fn with_flag_names(e: wgmlp::Error) -> String {
    const FLAGS: [(&str, &str); 12] = [
        ("optimizer", "--optimizer"),
        ("lr", "--lr"),
        ("momentum", "--momentum"),
        ("clip_norm", "--clip-grad-norm"),
        ("weight_decay", "--weight-decay"),
        ("batch_size", "--batch-size"),
        ("task", "--task"),
        ("loss", "--loss"),
        ("dropout", "--dropout"),
        ("hidden", "--hidden"),
        ("activations", "--activation"),
        ("init", "--init"),
    ];
    match e {
        wgmlp::Error::Config { field, message } => {
            let field = FLAGS
                .iter()
                .find(|(name, _)| *name == field)
                .map_or(field, |(_, flag)| flag.to_string());
            wgmlp::Error::Config { field, message }.to_string()
        }
        e @ wgmlp::Error::Diverged { .. } => {
            format!("{e} (--lr, --normalize standard, or --clip-grad-norm)")
        }
        e @ (wgmlp::Error::Gpu { .. } | wgmlp::Error::AdapterUnsuitable { .. }) => {
            format!(
                "{e} (smaller: --batch-size, --hidden; the CPU reference path: --device cpu; adapters: wgmlp info)"
            )
        }
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::with_flag_names;
    use wgmlp::Error;

    #[test]
    fn library_field_names_become_flags() {
        let e = Error::config("lr", "learning rate 0 must be a positive number");
        assert_eq!(
            with_flag_names(e),
            "invalid --lr: learning rate 0 must be a positive number"
        );
        let e = Error::config("batch_size", "must be at least 1 (got 0)");
        assert!(with_flag_names(e).starts_with("invalid --batch-size:"));
        // A field the command line has no flag for is left as it is.
        let e = Error::config("target scale", "x");
        assert_eq!(with_flag_names(e), "invalid target scale: x");
        let e = Error::Diverged {
            epoch: 1,
            step: 3,
            loss: f32::NAN,
        };
        let text = with_flag_names(e);
        assert!(
            text.contains("learning rate") && text.contains("--lr"),
            "{text}"
        );
    }
}
