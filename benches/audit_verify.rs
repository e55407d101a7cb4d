//! `audit verify` throughput (issue 18: at hashing speed, ≥ 100 MB/s here). A 64 MiB trail of
//! realistic decision lines is written by the chain's writer side, in 4 MiB rotated files with
//! a signed checkpoint closing each; the floor is SHA-256 over the same lines with nothing else
//! (read from memory), measured in the same run.
//!
//! Run: `cargo bench --bench audit_verify`.

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use hessra_console::audit_chain::{self, Chain, Signer};
use hessra_console::wire::AuditEvent;

mod common;
use common::{Op, paired_ratio};

const TOTAL: usize = 64 << 20;
const FILE: usize = 4 << 20;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new(Signer::ephemeral(), 1, 0, audit_chain::ZERO);
    let mut files: Vec<PathBuf> = Vec::new();
    let mut all_lines: Vec<String> = Vec::new();
    let (mut written, mut segment) = (0usize, 0u64);
    while written < TOTAL {
        segment += 1;
        let file = dir.path().join(format!("audit.jsonl.{segment}"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut lines = vec![chain.genesis(segment, 1_700_000_000, chain.prev)];
        let mut size = 0usize;
        let mut i = 0usize;
        while size < FILE {
            let event = AuditEvent {
                seq: (written + size) as u64,
                time: 1_700_000_000 + i as i64,
                caller: Some(format!("uri:urn:org{}:l1:l2", i % 10_000)),
                auth: "mtls".into(),
                endpoint: "/request_token".into(),
                resource: Some("production_api".into()),
                operation: Some("read".into()),
                result: "allow".into(),
                reason: "granted by the client's own grant".into(),
                revocation_id: Some(format!("{:0128x}", i)),
                expires_at: None,
            };
            let line = chain.seal(&serde_json::to_string(&event).unwrap());
            size += line.len() + 1;
            lines.push(line);
            i += 1;
        }
        lines.push(chain.checkpoint(1_700_000_000).0);
        for line in &lines {
            writeln!(out, "{line}").unwrap();
        }
        out.flush().unwrap();
        written += size;
        files.push(file);
        all_lines.extend(lines);
    }
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let check = audit_chain::verify(&files, None, None);
    assert!(check.ok(), "{:?}", check.problems.first());
    println!(
        "trail: {} files, {} lines, {:.1} MiB",
        files.len(),
        check.lines,
        bytes as f64 / (1 << 20) as f64
    );

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut group = criterion.benchmark_group("audit_verify");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("verify", |b| {
        b.iter(|| black_box(audit_chain::verify(black_box(&files), None, None)))
    });
    group.bench_function("sha256_floor", |b| {
        b.iter(|| {
            for line in &all_lines {
                black_box(audit_chain::hash_line(line.as_bytes()));
            }
        })
    });
    group.finish();
    criterion.final_summary();

    let ours: Op = {
        let files = files.clone();
        Box::new(move || {
            black_box(audit_chain::verify(&files, None, None));
        })
    };
    let floor: Op = Box::new(move || {
        for line in &all_lines {
            black_box(audit_chain::hash_line(line.as_bytes()));
        }
    });
    let (ratio, ours_mean, floor_mean) = paired_ratio(&ours, &floor, 1);
    let mb = bytes as f64 / 1e6;
    println!("\npaired (alternating rounds, median of per-round ratios):");
    println!("| op | ours | SHA-256 of the lines alone | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| audit verify, {mb:.0} MB | {ours_mean:.1?} ({:.0} MB/s) | {floor_mean:.1?} ({:.0} MB/s) | {ratio:.2}× |",
        mb / ours_mean.as_secs_f64(),
        mb / floor_mean.as_secs_f64()
    );
}
