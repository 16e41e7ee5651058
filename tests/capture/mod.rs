//! `trawl capture` against tcpdump on the same interface: real HTTP
//! traffic (python3's http.server and curl) across a veth pair between
//! two private network namespaces (testdata/scenarios/capture_veth.sh).
//! trawl's archive must hold the same packets as tcpdump's file.

use std::path::Path;
use std::process::Command;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use sha2::Digest;

use super::{can_record, scratch, stderr, testdata};

/// The packets of a capture: each one's length on the wire and the
/// sha256 of its bytes.
fn packets(path: &Path) -> Vec<(u32, [u8; 32])> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    if path.extension().is_some_and(|x| x == "pcapng") {
        let mut r = PcapNgReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        while let Some(b) = r.next_block() {
            if let Block::EnhancedPacket(p) = b.unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
                out.push((p.original_len, sha2::Sha256::digest(&p.data).into()));
            }
        }
    } else {
        let mut r = PcapReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        while let Some(p) = r.next_packet() {
            let p = p.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((p.orig_len, sha2::Sha256::digest(&p.data).into()));
        }
    }
    out
}

/// Runs capture_veth.sh into a scratch folder (with `trawl capture`
/// arguments); the folder and trawl's console output, or None (said why)
/// where this machine cannot capture.
fn capture_veth(name: &str, args: &[&str]) -> Option<(std::path::PathBuf, String)> {
    if !can_record(&["tcpdump", "ip", "curl", "python3", "sysctl"]) {
        eprintln!("skipping {name}: needs root, network namespaces, tcpdump, ip, curl, python3");
        return None;
    }
    let dir = scratch(name);
    let o =
        Command::new(testdata("scenarios/capture_veth.sh")).arg(env!("CARGO_BIN_EXE_trawl")).arg(&dir).args(args).output().unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::read_to_string(dir.join("trawl.log")).unwrap_or_default();
    if log.contains("BPF_PROG_LOAD") && (log.contains("Operation not permitted") || log.contains("Permission denied (os error 1)")) {
        eprintln!("skipping {name}: this kernel forbids loading BPF programs here: {log}");
        return None;
    }
    assert!(o.status.success(), "capture_veth.sh: {}\n{log}", stderr(&o));
    Some((dir, log))
}

#[test]
fn capture_holds_the_packets_tcpdump_sees() {
    let Some((dir, log)) = capture_veth("capture-veth", &[]) else { return };
    let files: Vec<_> = std::fs::read_dir(dir.join("archive/veth")).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert_eq!(files.len(), 1, "one complete file and no temporary one left: {files:?}");
    assert!(files[0].extension().is_some_and(|x| x == "pcapng"), "{files:?}");
    let (mut ours, mut theirs) = (packets(&files[0]), packets(&dir.join("tcpdump.pcap")));
    assert!(theirs.len() > 100, "five 300 kB downloads: {} packets", theirs.len());
    let bytes = |p: &[(u32, [u8; 32])]| p.iter().map(|x| u64::from(x.0)).sum::<u64>();
    assert_eq!((ours.len(), bytes(&ours)), (theirs.len(), bytes(&theirs)), "same packet count and bytes as tcpdump\n{log}");
    // The same packets, byte for byte (the two taps may order the
    // directions differently within an instant).
    ours.sort();
    theirs.sort();
    assert!(ours == theirs, "the same packets as tcpdump, byte for byte");
    assert!(log.contains("dropped 0"), "{log}");
    // The archive is one trawl reads: its node, and the five downloads.
    let archive = dir.join("archive").display().to_string();
    let o = super::trawl(&["archive", "boundaries", &archive]);
    let out = super::stdout(&o);
    assert!(out.lines().any(|l| l.starts_with("veth ") && l.split_whitespace().nth(3) == Some("1")), "{out}");
    let snap = dir.join("veth.snap").display().to_string();
    let o = super::trawl(&["analyze", &files[0].display().to_string(), "-o", &snap, "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = super::trawl(&["query", &snap, "--kfl", "http && path == \"/blob.bin\" && status_code == 200", "--count"]);
    assert_eq!(super::stdout(&o).trim(), "5");
}

#[test]
fn rotation_and_retention_leave_only_complete_files() {
    let Some((dir, _)) = capture_veth("capture-rotation", &["--rotate-size", "200KB", "--keep", "700KB"]) else { return };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("archive/veth")).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    assert!(files.len() >= 2 && files.iter().all(|f| f.extension().is_some_and(|x| x == "pcapng")), "rotated, no temporary file left: {files:?}");
    let total: u64 = files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum();
    assert!(total <= 700_000, "retention keeps {total} bytes, at most 700 kB");
    // Every file reads to its end (a rotated-away file was completed before
    // it was renamed), and every packet kept is one tcpdump saw.
    let theirs: std::collections::HashSet<(u32, [u8; 32])> = packets(&dir.join("tcpdump.pcap")).into_iter().collect();
    let mut kept = 0;
    for f in &files {
        let p = packets(f);
        assert!(!p.is_empty(), "{}", f.display());
        assert!(p.iter().all(|x| theirs.contains(x)), "{}", f.display());
        kept += p.len();
    }
    assert!(kept < theirs.len(), "the oldest files were deleted: {kept} of {} packets kept", theirs.len());
    let o = super::trawl(&["capture", "--iface", "lo", "--out", dir.to_str().unwrap_or_default(), "--rotate-size", "lots"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("expected a size such as 256MB or 1GiB, got `lots`"), "{}", stderr(&o));
}
