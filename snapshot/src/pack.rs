//! `trawl snapshot pack` and `unpack`: a snapshot as one `.tar.zst` file.
//!
//! The archive starts with `SHA256SUMS` (one line per file: hash, two
//! spaces, path), then the files in name order with fixed owners and
//! times, so packing the same snapshot twice gives the same bytes. Unpack
//! accepts only plain files and folders below the target, checks every
//! hash and that no listed file is missing, writes into a temporary
//! folder, and renames it into place when all is well.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Error;

const SUMS: &str = "SHA256SUMS";

fn sha256_file(p: &Path) -> Result<String, Error> {
    let mut f = File::open(p).map_err(|e| Error::io(p, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(p, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(trawl_analyze::input::hex(&h.finalize()))
}

fn header(path: &str, size: u64, mode: u32) -> Result<tar::Header, Error> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).map_err(|e| Error::Usage(format!("{path}: cannot be packed: {e}")))?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

/// Packs a snapshot folder into `out` (`.tar.zst`); returns the files packed.
pub fn pack(snap: &Path, out: &Path, level: i32) -> Result<usize, Error> {
    if !snap.join(trawl_analyze::MANIFEST).is_file() && !snap.join(crate::SNAPSHOT_FILE).is_file() {
        return Err(Error::invalid(snap, "not a trawl snapshot (no manifest.json or snapshot.json)"));
    }
    let list = crate::snapshot_files(snap)?;
    let mut sums = String::new();
    for f in &list {
        sums.push_str(&format!("{}  {}\n", sha256_file(&snap.join(f))?, f.display()));
    }
    let tmp = trawl_analyze::output::Snapshot::claim_tmp_path(out);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut z =
            zstd::Encoder::new(BufWriter::with_capacity(1 << 20, file), level).map_err(|e| Error::io(&tmp, e))?;
        z.include_checksum(true).map_err(|e| Error::io(&tmp, e))?;
        let mut t = tar::Builder::new(z);
        t.append(&header(SUMS, sums.len() as u64, 0o644)?, sums.as_bytes()).map_err(|e| Error::io(&tmp, e))?;
        for f in &list {
            let p = snap.join(f);
            let meta = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?;
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            let src = File::open(&p).map_err(|e| Error::io(&p, e))?;
            t.append(&header(&f.to_string_lossy(), meta.len(), mode)?, src).map_err(|e| Error::io(&p, e))?;
        }
        let z = t.into_inner().map_err(|e| Error::io(&tmp, e))?;
        let w = z.finish().map_err(|e| Error::io(&tmp, e))?;
        let f = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
        Ok(list.len())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A relative path with only normal components.
fn safe_path(name: &Path) -> bool {
    !name.as_os_str().is_empty() && name.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Unpacks `file` into a new snapshot folder `out`; returns the files
/// unpacked. Every file's sha256 is checked against `SHA256SUMS`.
pub fn unpack(file: &Path, out: &Path) -> Result<usize, Error> {
    if out.exists() {
        return Err(Error::Usage(format!("{}: already exists", out.display())));
    }
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let bad = |d: String| Error::invalid(file, d);
    let z = zstd::Decoder::new(f).map_err(|e| bad(format!("not a zstd file: {e}")))?;
    let mut t = tar::Archive::new(z);
    let tmp = trawl_analyze::output::Snapshot::claim_tmp_path(out);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let result = (|| {
        let mut sums: Option<BTreeMap<PathBuf, String>> = None;
        let mut seen = 0usize;
        for e in t.entries().map_err(|e| bad(format!("not a snapshot pack: {e}")))? {
            let mut e = e.map_err(|e| bad(format!("damaged pack: {e}")))?;
            let name = e.path().map_err(|e| bad(format!("bad entry name: {e}")))?.to_path_buf();
            if !safe_path(&name) {
                return Err(bad(format!("entry `{}` would land outside the snapshot", name.display())));
            }
            if e.header().entry_type() != tar::EntryType::Regular {
                return Err(bad(format!("entry `{}` is not a plain file", name.display())));
            }
            if sums.is_none() {
                if name != Path::new(SUMS) {
                    return Err(bad(format!("the pack must start with {SUMS}, found `{}`", name.display())));
                }
                let mut text = String::new();
                e.read_to_string(&mut text).map_err(|e| bad(format!("{SUMS}: {e}")))?;
                let mut m = BTreeMap::new();
                for line in text.lines() {
                    let (h, p) = line.split_once("  ").ok_or_else(|| bad(format!("{SUMS}: bad line `{line}`")))?;
                    m.insert(PathBuf::from(p), h.to_string());
                }
                sums = Some(m);
                continue;
            }
            let expected = sums
                .as_ref()
                .and_then(|m| m.get(&name))
                .ok_or_else(|| bad(format!("`{}` is not listed in {SUMS}", name.display())))?;
            let mode = e.header().mode().unwrap_or(0o644) & 0o777;
            let dest = tmp.join(&name);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let mut w = File::create(&dest).map_err(|e| Error::io(&dest, e))?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = e.read(&mut buf).map_err(|e| bad(format!("damaged pack at `{}`: {e}", name.display())))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                w.write_all(&buf[..n]).map_err(|e| Error::io(&dest, e))?;
            }
            let got = trawl_analyze::input::hex(&h.finalize());
            if &got != expected {
                return Err(bad(format!("checksum mismatch for `{}`: expected {expected}, got {got}", name.display())));
            }
            drop(w);
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io(&dest, e))?;
            seen += 1;
        }
        let sums = sums.ok_or_else(|| bad("empty pack".into()))?;
        if seen != sums.len() {
            return Err(bad(format!("{SUMS} lists {} files but the pack holds {seen}", sums.len())));
        }
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
        Ok(seen)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}
