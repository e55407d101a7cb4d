//! `policy unused` and `policy tighten` at scale (issue 18: ≤ 2 s each): one million audit
//! events (rotated 16 MiB files, as the server writes them) against the generated
//! 10,000-client policy. Each event is an allowed request by a client for one of its grants,
//! with one refusal in ten; a third of the clients are seen. The baseline is one `policy::load`
//! of the same policy, measured in the same run.
//!
//! Run: `cargo bench --bench unused_access`.

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hessra_console::audit_chain::{self, Chain, Signer};
use hessra_console::audit_trail;
use hessra_console::policy::{self, generate};
use hessra_console::wire::AuditEvent;

const EVENTS: usize = 1_000_000;
const FILE: usize = 16 << 20;

fn median(runs: usize, op: &dyn Fn()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            op();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let text = generate::policy(generate::Shape::LARGE);
    let loaded = policy::load(&text, 0).expect("generated policy parses");
    let grants: Vec<(String, String, String)> = loaded
        .policy
        .clients
        .iter()
        .step_by(3)
        .flat_map(|c| {
            c.resources.iter().take(1).flat_map(move |r| {
                r.operations
                    .iter()
                    .take(1)
                    .map(move |o| (c.identity.clone(), r.name.clone(), o.clone()))
            })
        })
        .collect();
    assert!(!grants.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new(Signer::ephemeral(), 1, 0, audit_chain::ZERO);
    let now = 1_800_000_000i64;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut written = 0usize;
    let mut segment = 0u64;
    while written < EVENTS {
        segment += 1;
        let file = dir.path().join(format!("audit.jsonl.{segment}"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let follows = chain.prev;
        writeln!(out, "{}", chain.genesis(segment, now, follows)).unwrap();
        let mut size = 0usize;
        while size < FILE && written < EVENTS {
            let (identity, resource, operation) = &grants[written % grants.len()];
            let allowed = !written.is_multiple_of(10);
            let event = AuditEvent {
                seq: written as u64,
                time: now - 86_400 * 20 + (written as i64 % 86_400),
                caller: Some(identity.clone()),
                auth: "mtls".into(),
                endpoint: "/request_token".into(),
                resource: Some(resource.clone()),
                operation: Some(if allowed {
                    operation.clone()
                } else {
                    "delete".into()
                }),
                result: if allowed { "allow" } else { "deny" }.into(),
                reason: "decided by the policy".into(),
                revocation_id: Some(format!("{written:064x}")),
                expires_at: None,
            };
            let line = chain.seal(&serde_json::to_string(&event).unwrap());
            size += line.len() + 1;
            writeln!(out, "{line}").unwrap();
            written += 1;
        }
        writeln!(out, "{}", chain.checkpoint(now).0).unwrap();
        out.flush().unwrap();
        files.push(file);
    }
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    println!(
        "trail: {EVENTS} events in {} files, {:.0} MiB; policy: {} clients",
        files.len(),
        bytes as f64 / (1 << 20) as f64,
        loaded.policy.clients.len()
    );
    let since = now - 30 * 86_400;

    let load = median(5, &|| {
        black_box(policy::load(&text, 0).unwrap());
    });
    let read = median(5, &|| {
        black_box(audit_trail::read_usage(&files));
    });
    let usage = audit_trail::read_usage(&files);
    let unused_only = median(5, &|| {
        black_box(policy::unused(&loaded.policy, &usage, since));
    });
    let unused = median(5, &|| {
        let usage = audit_trail::read_usage(&files);
        black_box(policy::unused(&loaded.policy, &usage, since));
    });
    let (entries, _) = policy::unused(&loaded.policy, &usage, since);
    let tighten = median(3, &|| {
        let usage = audit_trail::read_usage(&files);
        let proposal = policy::tighten(&loaded.policy, &usage, since, now);
        assert_eq!(proposal.proof.changed, 0);
        assert!(
            proposal.findings.is_empty(),
            "{:?}",
            proposal.findings.first()
        );
        black_box(proposal);
    });
    let proposal = policy::tighten(&loaded.policy, &usage, since, now);
    let start = Instant::now();
    let written = proposal.write(&loaded.document, now).unwrap();
    let write = start.elapsed();
    black_box(written);
    println!(
        "unused entries: {}; proposal: {} edits, {} requests replayed, {} unused grants kept for a child",
        entries.len(),
        proposal.items.len(),
        proposal.proof.replayed,
        proposal.kept.len()
    );
    println!("\n| op | median | ratio to one policy::load ({load:.1?}) | target |");
    println!("|---|---|---|---|");
    let ratio = |d: Duration| d.as_secs_f64() / load.as_secs_f64();
    println!(
        "| read the trail (1M events) | {read:.1?} | {:.2}× | |",
        ratio(read)
    );
    println!(
        "| unused access from the usage read | {unused_only:.1?} | {:.2}× | |",
        ratio(unused_only)
    );
    println!(
        "| `policy unused` (read + analyse) | {unused:.1?} | {:.2}× | ≤ 2 s |",
        ratio(unused)
    );
    println!(
        "| `policy tighten` (read + propose + replay) | {tighten:.1?} | {:.2}× | ≤ 2 s |",
        ratio(tighten)
    );
    println!(
        "| `--apply`: the proposal written losslessly and proved again (one run) | {write:.1?} | {:.2}× | |",
        ratio(write)
    );
}
