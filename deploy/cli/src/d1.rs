//! `crow org create --d1`: an org created in the Worker's D1 database with `wrangler d1 execute`.
//!
//! The statements are crow-store's own (`sql::accounts::insert_org_stmts`, the ones the embedded
//! store runs), written out with their values as SQL literals into a temporary `.sql` file, which
//! wrangler runs as one batch. The keys come from the operating system's CSPRNG here; only the
//! secret key's hash goes to D1.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use crow_core::keys;
use crow_core::model::OrgCredentials;

/// Where the org goes.
pub struct Target {
    /// The database's name in wrangler.toml.
    pub database: String,
    /// The Worker's wrangler.toml.
    pub config: PathBuf,
    /// `--env` for wrangler.
    pub env: Option<String>,
    /// The account's database rather than the local one.
    pub remote: bool,
    /// The local state directory.
    pub persist_to: Option<PathBuf>,
}

/// The literal SQL creating an org, one statement per line.
pub fn org_sql(org: &crow_core::model::Organization, new_keys: &keys::NewOrgKeys) -> Result<String> {
    let mut sql = String::new();
    for stmt in crow_store::sql::accounts::insert_org_stmts(org, new_keys)? {
        sql.push_str(&stmt.to_literal_sql()?);
        sql.push_str(";\n");
    }
    Ok(sql)
}

/// The wrangler to run from `dir`: its local install when there is one (`make worker` puts
/// one in deploy/worker), else `npx wrangler`.
fn wrangler(dir: &Path) -> Command {
    let local = dir.join("node_modules/.bin/wrangler");
    let mut cmd = if local.exists() {
        Command::new(local)
    } else {
        let mut c = Command::new("npx");
        c.arg("wrangler");
        c
    };
    cmd.current_dir(dir).env("WRANGLER_SEND_METRICS", "false");
    cmd
}

/// Creates the org through `wrangler d1 execute` and returns its credentials.
pub fn create_org(target: &Target, name: &str, now: i64) -> Result<OrgCredentials> {
    let config = std::fs::canonicalize(&target.config).with_context(|| {
        format!(
            "no wrangler config at {} (pass --wrangler-config)",
            target.config.display()
        )
    })?;
    let dir = config.parent().context("the wrangler config has no directory")?;
    let mut random = [0u8; keys::RANDOM_BYTES];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("the operating system's random source failed: {e}"))?;
    let (org, creds, new_keys) = keys::generate(name, now, &random);
    let file = tempfile::Builder::new().suffix(".sql").tempfile()?;
    std::fs::write(file.path(), org_sql(&org, &new_keys)?)?;
    let mut cmd = wrangler(dir);
    cmd.args(["d1", "execute", &target.database, "--yes", "--file"])
        .arg(file.path())
        .arg("--config")
        .arg(&config);
    if target.remote {
        cmd.arg("--remote");
    } else {
        cmd.arg("--local");
        if let Some(p) = &target.persist_to {
            cmd.arg("--persist-to").arg(std::path::absolute(p)?);
        }
    }
    if let Some(env) = &target.env {
        cmd.args(["--env", env]);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running wrangler in {} (is Node installed?)", dir.display()))?;
    if !out.status.success() {
        bail!(
            "wrangler d1 execute failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_holds_the_hash_and_never_the_secret_key() {
        let (org, creds, new_keys) = keys::generate("O'Hara & Co", 5, &[9u8; keys::RANDOM_BYTES]);
        let sql = org_sql(&org, &new_keys).unwrap();
        assert!(sql.contains("'O''Hara & Co'"), "{sql}");
        assert!(sql.contains(&creds.write_key));
        assert!(
            !sql.contains(&creds.api_key),
            "the secret key must not be written: {sql}"
        );
        assert!(sql.contains(&new_keys.api_key_hash));
        assert!(!sql.contains('?'), "every parameter is written in: {sql}");
    }
}
