//! CLI commands that work on a module's local service; each needs that
//! module compiled in and run by this process.

#[allow(unused_imports)]
use crate::app::Platform;
use crate::settings::Settings;

/// The settings of a command that works on `wanted` only: it starts those of
/// the process's modules and no other (the server may hold the rest, such as
/// the search index's writer lock).
#[allow(dead_code)]
fn narrowed(settings: &Settings, wanted: &[&str]) -> Result<Settings, String> {
    let chosen = crate::modules::select(&settings.modules)?;
    let kept: Vec<String> = chosen.iter().filter(|m| wanted.contains(&m.name)).map(|m| m.name.to_owned()).collect();
    if kept.is_empty() {
        return Err(format!(
            "this command needs the {} module in this process (--modules / HOMETRIP_MODULES)",
            wanted.join(" or ")
        ));
    }
    let mut narrowed = settings.clone();
    narrowed.modules = kept;
    Ok(narrowed)
}

#[allow(dead_code)]
fn not_built(module: &str) -> String {
    format!("this binary was built without the {module} module (cargo feature {module})")
}

#[cfg(feature = "search")]
pub async fn reindex(settings: Settings) -> Result<(), String> {
    let platform = Platform::build(&narrowed(&settings, &["listing", "search"])?).await?;
    let search = platform.local::<hometrip_search::service::SearchService>("search")?;
    let started = std::time::Instant::now();
    let n = search.reindex().await.map_err(|p| p.to_string())?;
    println!("indexed {n} listings in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(not(feature = "search"))]
pub async fn reindex(_: Settings) -> Result<(), String> {
    Err(not_built("search"))
}

#[cfg(feature = "listing")]
pub async fn seed_demo(settings: Settings, listings: usize, seed: u64) -> Result<(), String> {
    if listings == 0 || listings > 5_000_000 {
        return Err("--listings: between 1 and 5000000".to_owned());
    }
    let platform = Platform::build(&narrowed(&settings, &["listing"])?).await?;
    let started = std::time::Instant::now();
    let service = platform.local::<hometrip_listing::service::ListingService>("listing")?;
    let first = service.seed_demo(listings, seed).await.map_err(|p| p.to_string())?;
    let first = first.map(|id| id.to_string()).unwrap_or_default();
    println!("seeded {listings} listings in {:.1} s (first: {first})", started.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(not(feature = "listing"))]
pub async fn seed_demo(_: Settings, _: usize, _: u64) -> Result<(), String> {
    Err(not_built("listing"))
}

#[cfg(feature = "auth")]
pub async fn create_admin(settings: Settings, email: String, password: String) -> Result<(), String> {
    let platform = Platform::build(&narrowed(&settings, &["auth"])?).await?;
    let password = password.trim_end_matches(['\r', '\n']);
    let auth = platform.local::<hometrip_auth::service::AuthService>("auth")?;
    let account = auth.create_admin(&email, password).await.map_err(|p| p.to_string())?;
    // The registration event stays in the outbox for the server's relay: a
    // CLI process has only some subscribers, so it must not deliver events.
    println!("admin {} ({})", account.email, account.id);
    Ok(())
}

#[cfg(not(feature = "auth"))]
pub async fn create_admin(_: Settings, _: String, _: String) -> Result<(), String> {
    Err(not_built("auth"))
}
