//! `hometrip`: the whole platform in one binary.

mod app;
mod backup;
mod commands;
mod modules;
mod mtls;
mod settings;
mod wiring;

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::settings::Settings;

/// mimalloc instead of the system allocator: a request allocates a lot of
/// small, short-lived buffers (JSON, SQL, events), and glibc's malloc and
/// free were about a tenth of the server's CPU under the booking load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "hometrip", version, about = "HomeTrip vacation-rental marketplace")]
struct Cli {
    /// An extra TOML file layered over the profile (before the environment).
    #[arg(long, global = true, env = "HOMETRIP_CONFIG_FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform (the default), or some of its modules.
    Serve {
        /// Only these modules (comma-separated); the others are reached
        /// through `services.<module>.urls`. Default: every module built in.
        #[arg(long, value_delimiter = ',')]
        modules: Vec<String>,
    },
    /// Apply every module's pending database migrations, then exit.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Rebuild the search index from the listings (with the server stopped).
    Reindex,
    /// Back up the embedded profile (SQLite snapshot, keys, files) into a new folder, while serving.
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into the data dir (server stopped), then rebuild the search index.
    Restore {
        #[arg(long)]
        from: PathBuf,
        /// Replace the database the data dir already holds.
        #[arg(long)]
        force: bool,
    },
    /// Write a development CA and a certificate per module for mutual TLS between services.
    Certs {
        #[arg(long)]
        out: PathBuf,
        /// The modules to certify (default: every module of this version).
        #[arg(long, value_delimiter = ',')]
        modules: Vec<String>,
        /// Other names or addresses the services are reached at (`127.0.0.1`).
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
    },
    /// Fill the store with realistic published demo listings across Europe.
    SeedDemo {
        #[arg(long, default_value_t = 100)]
        listings: usize,
        /// Same seed, same listings.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the first admin account (or grant admin to an existing one).
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let modules = match &cli.command {
        Some(Command::Serve { modules }) => modules.clone(),
        _ => Vec::new(),
    };
    let settings = match Settings::load(cli.config.as_deref(), &modules) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hometrip: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let traces = (!settings.telemetry.otlp_endpoint.is_empty()).then(|| hometrip_kernel::telemetry::TraceExport {
        endpoint: settings.telemetry.otlp_endpoint.clone(),
        sample_ratio: settings.telemetry.sample_ratio,
        service_name: service_name(&settings.modules),
    });
    // Held to the end of main: dropping it exports the spans still queued.
    let _telemetry = match hometrip_kernel::telemetry::init(&settings.log.filter, settings.log.json, traces.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("hometrip: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve { modules: Vec::new() }) {
        Command::Serve { .. } => actix_web::rt::System::new().block_on(app::serve(settings)),
        Command::Config => {
            serde_json::to_string_pretty(&settings.redacted()).map(|s| println!("{s}")).map_err(|e| e.to_string())
        }
        Command::Openapi => modules::select(&settings.modules).and_then(|local| {
            app::openapi_document(&local).to_pretty_json().map(|s| println!("{s}")).map_err(|e| e.to_string())
        }),
        Command::Migrate => run_async(async move {
            let db = app::connect_db(&settings).await?;
            let applied = app::migrate(&settings, &db).await?;
            println!("{applied} migrations applied");
            Ok(())
        }),
        Command::Reindex => run_async(commands::reindex(settings)),
        Command::Certs { out, modules, hosts } => {
            let modules = if modules.is_empty() {
                modules::MODULES.iter().filter(|m| m.exists).map(|m| m.name.to_owned()).collect()
            } else {
                modules
            };
            mtls::write_certificates(&out, &modules, &hosts)
        }
        Command::Backup { out } => backup::backup(&settings, &out),
        Command::Restore { from, force } => backup::restore(&settings, &from, force).map(|()| {
            // The index is derived from the listings; without search here it
            // is rebuilt by the process that runs it (`hometrip reindex`).
            if let Err(e) = run_async(commands::reindex(settings)) {
                eprintln!("hometrip: the search index was not rebuilt: {e}");
            }
        }),
        Command::SeedDemo { listings, seed } => run_async(commands::seed_demo(settings, listings, seed)),
        Command::Admin { command: AdminCommand::Create { email, .. } } => {
            let mut password = String::new();
            match std::io::stdin().read_to_string(&mut password) {
                Err(e) => Err(format!("reading the password from stdin: {e}")),
                Ok(_) => run_async(commands::create_admin(settings, email, password)),
            }
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "hometrip stopped");
            eprintln!("hometrip: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `hometrip-<modules>` (`hometrip-booking`), or `hometrip` for the whole platform.
fn service_name(modules: &[String]) -> String {
    if modules.is_empty() {
        "hometrip".to_owned()
    } else {
        format!("hometrip-{}", modules.join("-"))
    }
}

fn run_async(fut: impl std::future::Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?.block_on(fut)
}
