//! `hometrip backup` and `hometrip restore`: the embedded profile's data in
//! one folder. The database is a consistent snapshot (`VACUUM INTO`, taken
//! while the server runs: it reads one transaction's view, writers go on),
//! then the keys (tokens, TOTP secrets and sealed events are unreadable
//! without them) and the uploaded files. The search index is derived: a
//! restore rebuilds it. On PostgreSQL each service's database is backed up
//! with `pg_dump` (docs/operations.md).

use std::path::{Path, PathBuf};

use hometrip_kernel::diesel::{self, Connection as _, RunQueryDsl as _};
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "hometrip.db";
/// Folders of the data dir a backup carries, besides the database.
const FOLDERS: &[&str] = &["keys", "files"];

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: u32,
    hometrip_version: String,
    created_at: String,
    database: String,
}

/// The SQLite file the settings name, or why this is not the embedded profile.
fn sqlite_path(settings: &Settings) -> Result<PathBuf, String> {
    let url = settings.database_url();
    match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        Some(path) => Ok(PathBuf::from(path)),
        None => Err("backup and restore are for the embedded profile (SQLite); on PostgreSQL back up each \
                     service's database with pg_dump and restore it with pg_restore (docs/operations.md)"
            .to_owned()),
    }
}

pub fn backup(settings: &Settings, out: &Path) -> Result<(), String> {
    let db = sqlite_path(settings)?;
    if !db.exists() {
        return Err(format!("no database at {}", db.display()));
    }
    if out.exists() && std::fs::read_dir(out).map_err(|e| format!("{}: {e}", out.display()))?.next().is_some() {
        return Err(format!("{} is not empty: back up into a new folder", out.display()));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    // It holds the keys: for its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    }
    let started = std::time::Instant::now();
    let snapshot = out.join(DATABASE);
    let mut conn = diesel::sqlite::SqliteConnection::establish(&db.to_string_lossy())
        .map_err(|e| format!("opening {}: {e}", db.display()))?;
    diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn).map_err(|e| e.to_string())?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(snapshot.to_string_lossy().as_ref())
        .execute(&mut conn)
        .map_err(|e| format!("snapshot of {}: {e}", db.display()))?;
    let created_at = hometrip_kernel::time::Instant::now().0.to_rfc3339();
    let mut copied = 0;
    for folder in FOLDERS {
        copied += copy_tree(&settings.data_dir.join(folder), &out.join(folder))?;
    }
    let manifest = Manifest {
        format: 1,
        hometrip_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at,
        database: DATABASE.to_owned(),
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    // Written last: a folder without it is an unfinished backup.
    std::fs::write(out.join(MANIFEST), text).map_err(|e| e.to_string())?;
    println!(
        "backed up {} and {copied} files into {} in {:.1} s",
        db.display(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Puts a backup in place of the data dir's database, keys and files; the
/// server must be stopped. Each part is copied beside its target, then
/// swapped in, so a failed copy leaves the old data as it was.
pub fn restore(settings: &Settings, from: &Path, force: bool) -> Result<(), String> {
    let db = sqlite_path(settings)?;
    let manifest: Manifest = std::fs::read_to_string(from.join(MANIFEST))
        .map_err(|e| format!("{}: not a finished backup ({e})", from.display()))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("{MANIFEST}: {e}")))?;
    if manifest.format != 1 {
        return Err(format!("backup format {} is not known to this version", manifest.format));
    }
    let snapshot = from.join(&manifest.database);
    check_database(&snapshot)?;
    if db.exists() && !force {
        return Err(format!(
            "{} already holds a database: stop the server and pass --force to replace it with the backup",
            db.display()
        ));
    }
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| format!("{}: {e}", settings.data_dir.display()))?;
    for folder in FOLDERS {
        let target = settings.data_dir.join(folder);
        let staged = settings.data_dir.join(format!(".{folder}.restoring"));
        let _ = std::fs::remove_dir_all(&staged);
        copy_tree(&from.join(folder), &staged)?;
        swap_in(&staged, &target)?;
    }
    let staged = db.with_extension("db.restoring");
    std::fs::copy(&snapshot, &staged).map_err(|e| format!("copying the database: {e}"))?;
    // A write-ahead log left by the old database would be replayed into the new one.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::rename(&staged, &db).map_err(|e| format!("{}: {e}", db.display()))?;
    // Derived from the listings: rebuilt from the restored database.
    let _ = std::fs::remove_dir_all(settings.data_dir.join("search"));
    println!("restored the backup of {} into {}", manifest.created_at, settings.data_dir.display());
    Ok(())
}

/// The snapshot opens and passes SQLite's integrity check.
fn check_database(path: &Path) -> Result<(), String> {
    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    if !path.is_file() {
        return Err(format!("{}: missing from the backup", path.display()));
    }
    let mut conn = diesel::sqlite::SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let rows: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .map_err(|e| format!("{}: not a database ({e})", path.display()))?;
    match rows.first() {
        Some(c) if c.integrity_check == "ok" => Ok(()),
        _ => Err(format!("{}: fails SQLite's integrity check", path.display())),
    }
}

/// Replaces `target` with `staged` (both folders).
fn swap_in(staged: &Path, target: &Path) -> Result<(), String> {
    let old = target.with_extension("replaced");
    let _ = std::fs::remove_dir_all(&old);
    if target.exists() {
        std::fs::rename(target, &old).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    std::fs::rename(staged, target).map_err(|e| format!("{}: {e}", target.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Copies the files under `from` (absent: nothing) to `to`; how many.
fn copy_tree(from: &Path, to: &Path) -> Result<usize, String> {
    if !from.exists() {
        return Ok(0);
    }
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut count = 0;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            count += copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(|e| format!("{}: {e}", entry.path().display()))?;
            count += 1;
        }
    }
    Ok(count)
}
