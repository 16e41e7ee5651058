//! The workspace: a folder of named snapshots.
//!
//! A name is one path component of letters, digits, `.`, `_` and `-`,
//! starting with a letter or digit, so it can never leave the workspace.
//! The workspace is `--workspace`, else `$TRAWL_WORKSPACE`, else
//! `$XDG_DATA_HOME/trawl/snapshots` (`~/.local/share/trawl/snapshots`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Error;

/// The workspace folder to use.
pub fn workspace_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("TRAWL_WORKSPACE").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("trawl/snapshots")
}

/// Checks a snapshot name.
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "snapshot name `{name}`: expected letters, digits, `.`, `_` or `-` (starting with a letter or digit, no `..`, at most 128), so that it stays inside the workspace"
        )))
    }
}

/// The path of a named snapshot.
pub fn path_of(workspace: &Path, name: &str) -> Result<PathBuf, Error> {
    check_name(name)?;
    Ok(workspace.join(name))
}

/// A snapshot argument: an existing path, else a name in the workspace.
pub fn resolve(arg: &Path, workspace: &Path) -> PathBuf {
    if arg.exists() {
        return arg.to_path_buf();
    }
    match arg.to_str() {
        Some(name) if check_name(name).is_ok() && workspace.join(name).exists() => workspace.join(name),
        _ => arg.to_path_buf(),
    }
}

/// One row of `trawl snapshot list`.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    /// `indexed`, `raw` (cut, not indexed), or `analysed` (made by `trawl analyze`).
    pub state: &'static str,
    pub start: Option<String>,
    pub end: Option<String>,
    pub nodes: Vec<String>,
    pub bytes: u64,
}

/// Bytes of a snapshot's files.
fn dir_size(p: &Path) -> u64 {
    crate::snapshot_files(p)
        .map(|fs| fs.iter().filter_map(|f| std::fs::metadata(p.join(f)).ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// The complete snapshots of a workspace, by name. Folders being written
/// (hidden temporaries) and folders that are not snapshots are skipped.
pub fn list(workspace: &Path) -> Result<Vec<Entry>, Error> {
    if !workspace.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(workspace).map_err(|e| Error::io(workspace, e))? {
        let e = e.map_err(|e| Error::io(workspace, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        let p = e.path();
        if check_name(&name).is_err() || !p.is_dir() {
            continue;
        }
        let indexed = p.join(trawl_analyze::MANIFEST).is_file();
        let entry = match crate::create::read_meta(&p) {
            Ok(m) => Entry {
                name,
                state: if indexed { "indexed" } else { "raw" },
                start: Some(m.window.start),
                end: Some(m.window.end),
                nodes: m.nodes.iter().map(|n| n.name.clone()).collect(),
                bytes: dir_size(&p),
            },
            Err(_) if indexed => {
                let v: serde_json::Value = std::fs::read(p.join(trawl_analyze::MANIFEST))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
                Entry {
                    name,
                    state: "analysed",
                    start: s("first_timestamp"),
                    end: s("last_timestamp"),
                    nodes: Vec::new(),
                    bytes: dir_size(&p),
                }
            }
            Err(_) => continue,
        };
        out.push(entry);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Everything known about one snapshot (`trawl snapshot show`, MCP
/// `get_snapshot`): its state, the cut (`snapshot.json`) if any, and once
/// indexed the manifest's time range, table rows and counters.
pub fn show(snap: &Path) -> Result<serde_json::Value, Error> {
    let indexed = snap.join(trawl_analyze::MANIFEST).is_file();
    let cut = crate::create::read_meta(snap).ok();
    if !indexed && cut.is_none() {
        return Err(Error::invalid(snap, "not a trawl snapshot (no manifest.json or snapshot.json)"));
    }
    let manifest: Option<serde_json::Value> = if indexed {
        let p = snap.join(trawl_analyze::MANIFEST);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        Some(serde_json::from_slice(&bytes).map_err(|e| Error::invalid(&p, format!("not valid JSON: {e}")))?)
    } else {
        None
    };
    let state = match (indexed, cut.is_some()) {
        (true, true) => "indexed",
        (false, _) => "raw",
        (true, false) => "analysed",
    };
    let name = snap
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_default();
    Ok(serde_json::json!({
        "name": name,
        "path": snap,
        "state": state,
        "bytes": dir_size(snap),
        "cut": cut,
        "first_timestamp": manifest.as_ref().and_then(|m| m.get("first_timestamp").cloned()),
        "last_timestamp": manifest.as_ref().and_then(|m| m.get("last_timestamp").cloned()),
        "tables": manifest.as_ref().and_then(|m| m.get("tables").cloned()),
        "counters": manifest.as_ref().and_then(|m| m.get("counters").cloned()),
        "inputs": manifest.as_ref().and_then(|m| m.get("inputs").cloned()),
    }))
}

/// Deletes a named snapshot.
pub fn delete(workspace: &Path, name: &str) -> Result<PathBuf, Error> {
    let p = path_of(workspace, name)?;
    if !p.join(crate::SNAPSHOT_FILE).is_file() && !p.join(trawl_analyze::MANIFEST).is_file() {
        return Err(Error::Usage(format!("no snapshot `{name}` in {}", workspace.display())));
    }
    std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape() {
        for bad in ["", "..", "../x", "a/b", "/etc", ".hidden", "a..b", "x y", "-rf"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["incident-1", "ci_2026.11.22", "A"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }
}
