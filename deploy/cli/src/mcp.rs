//! `crow mcp`: the MCP server on standard input and output, for an AI assistant that starts
//! `crow` itself (Claude Desktop, an IDE, the MCP Python client). The server is
//! `crow_server::mcp`; this opens the data directory, authenticates the key once and serves.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};

/// Arguments of `crow mcp`.
#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// A secret API key of the org to serve (`sk_...`: `crow org create` prints one, `POST
    /// /api/v1/api-keys` makes more). Its role decides the tools offered: a viewer reads, an
    /// analyst also analyzes texts and exports.
    #[arg(long, env = "CROW_API_KEY", hide_env_values = true)]
    api_key: String,
}

/// Serves until the client closes standard input.
pub async fn run(data: &Path, models: Option<&Path>, args: &McpArgs) -> Result<()> {
    let backends = Arc::new(super::backends(data, models)?);
    let header = format!("Bearer {}", args.api_key.trim());
    let principal = match backends.authenticate(Some(&header), None).await {
        Ok(p) => p,
        Err(resp) => {
            let detail = resp
                .json_body()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("the key was refused ({})", resp.status));
            bail!("--api-key / CROW_API_KEY: {detail}");
        }
    };
    // Standard output is the protocol's: everything for people goes to stderr.
    eprintln!(
        "crow: serving MCP on stdio for org {} as {} (data: {})",
        principal.org_id,
        principal.role,
        data.display()
    );
    crow_server::mcp::serve_stdio(backends, principal).await?;
    Ok(())
}
