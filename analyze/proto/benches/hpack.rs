//! HPACK decoding speed: trawl's decoder (loona-hpack's table, trawl's
//! Huffman decoding) against loona-hpack decoding whole blocks with its
//! own Huffman decoder, on RFC 7541 C.4's three Huffman-coded requests
//! decoded in sequence by a fresh decoder (the dynamic table in use).
//!
//!     benches/hpack.sh        (cargo bench -p trawl-proto --bench hpack)

use std::hint::black_box;
use std::time::Instant;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

fn main() {
    let blocks = [
        hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
        hex("8286 84be 5886 a8eb 1064 9cbf"),
        hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
    ];
    let rounds = 20_000;
    let mut results = Vec::new();
    for run in 0..3 {
        let t = Instant::now();
        for _ in 0..rounds {
            let mut d = trawl_proto::hpack::Decoder::new(4096, false);
            for b in &blocks {
                black_box(d.decode(b));
            }
        }
        let ours = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..rounds {
            let mut d = loona_hpack::Decoder::new();
            for b in &blocks {
                let _ = black_box(d.decode(b));
            }
        }
        let loona = t.elapsed().as_secs_f64();
        results.push((ours, loona));
        eprintln!("run {run}: trawl {ours:.3} s, loona-hpack {loona:.3} s");
    }
    results.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ours, loona) = results[1];
    let n = (rounds * blocks.len()) as f64;
    println!("| decoder | µs per header block (median of 3 runs, {} blocks each) |", rounds * blocks.len());
    println!("|---|---|");
    println!("| trawl (loona-hpack table, own Huffman) | {:.2} |", ours / n * 1e6);
    println!("| loona-hpack alone | {:.2} |", loona / n * 1e6);
    println!("\nspeed-up: {:.0}x", loona / ours);
}
