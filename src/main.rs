//! `hometrip`: the whole platform in one binary.

mod app;
mod settings;

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
    /// Run the platform (the default).
    Serve,
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
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hometrip: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    hometrip_kernel::telemetry::init(&settings.log.filter, settings.log.json);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(app::serve(settings)),
        Command::Config => {
            serde_json::to_string_pretty(&settings.redacted()).map(|s| println!("{s}")).map_err(|e| e.to_string())
        }
        Command::Openapi => {
            app::openapi_document().to_pretty_json().map(|s| println!("{s}")).map_err(|e| e.to_string())
        }
        Command::Migrate => run_async(async move {
            let db = app::connect_db(&settings).await?;
            let applied = app::migrate(&settings, &db).await?;
            println!("{applied} migrations applied");
            Ok(())
        }),
        Command::Reindex => run_async(async move {
            let platform = app::Platform::build(&settings).await?;
            let search = app::search_service(&settings, &platform).await?;
            let started = std::time::Instant::now();
            let n = search.reindex().await.map_err(|p| p.to_string())?;
            println!("indexed {n} listings in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }),
        Command::SeedDemo { listings, seed } => run_async(async move {
            if listings == 0 || listings > 5_000_000 {
                return Err("--listings: between 1 and 5000000".to_owned());
            }
            let platform = app::Platform::build(&settings).await?;
            let started = std::time::Instant::now();
            let first = platform.listings.seed_demo(listings, seed).await.map_err(|p| p.to_string())?;
            let first = first.map(|id| id.to_string()).unwrap_or_default();
            println!("seeded {listings} listings in {:.1} s (first: {first})", started.elapsed().as_secs_f64());
            Ok(())
        }),
        Command::Admin { command: AdminCommand::Create { email, .. } } => {
            let mut password = String::new();
            match std::io::stdin().read_to_string(&mut password) {
                Err(e) => Err(format!("reading the password from stdin: {e}")),
                Ok(_) => run_async(async move {
                    let platform = app::Platform::build(&settings).await?;
                    let password = password.trim_end_matches(['\r', '\n']);
                    let account = platform.auth.create_admin(&email, password).await.map_err(|p| p.to_string())?;
                    // The registration event stays in the outbox for the server's relay: a
                    // CLI process has only some subscribers, so it must not deliver events.
                    println!("admin {} ({})", account.email, account.id);
                    Ok(())
                }),
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

fn run_async(fut: impl std::future::Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?.block_on(fut)
}
