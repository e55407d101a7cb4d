//! clients.toml at scale: the generated 10,000-client policy (hierarchies six deep, 100 realms ×
//! 100 assignments). The floor is a bare `toml_edit` parse of the same text, measured in the
//! same run. The semantic rebase (two local edits replayed onto a teammate's one) is paired
//! with one `policy::load` of the same text, since reading the versions is most of its work.
//!
//! Run: `cargo bench --bench policy`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use hessra_console::policy::{self, DelegationTree, Edit, generate};

mod common;
use common::{Op, paired_ratio};

fn main() {
    let text = generate::policy(generate::Shape::LARGE);
    let loaded = policy::load(&text, 0).expect("generated policy parses");
    assert_eq!(loaded.policy.clients.len(), 10_000);
    let grant = Edit::Grant {
        identity: "uri:urn:org500:l1:l2".into(),
        resource: "data".into(),
        operation: "write".into(),
    };
    let mut edited = loaded.document.clone();
    for org in [10, 200, 700] {
        edited
            .apply(&Edit::Grant {
                identity: format!("uri:urn:org{org}"),
                resource: "billing".into(),
                operation: "read".into(),
            })
            .unwrap();
    }
    let newer = policy::load(edited.text(), 0).unwrap().policy;
    // A rebase: ours grants and sets a lifetime on two clients, theirs grants on a third.
    let mut mine = loaded.document.clone();
    mine.apply(&grant).unwrap();
    mine.apply(&Edit::SetSetting {
        identity: "uri:urn:org42".into(),
        setting: policy::Setting::AuthorizationTokenDuration,
        value: Some(600),
    })
    .unwrap();
    let mine = mine.text().to_string();
    let mut theirs = loaded.document.clone();
    theirs
        .apply(&Edit::Grant {
            identity: "uri:urn:org900".into(),
            resource: "billing".into(),
            operation: "read".into(),
        })
        .unwrap();
    let theirs = theirs.text().to_string();

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();

    let mut group = criterion.benchmark_group("policy/load_validate_tree");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let loaded = policy::load(black_box(&text), 0).unwrap();
            black_box(DelegationTree::build(&loaded.policy, &loaded.findings));
        })
    });
    group.bench_function("toml_edit_parse", |b| {
        b.iter(|| black_box(text.parse::<toml_edit::DocumentMut>().unwrap()))
    });
    group.finish();

    criterion.bench_function("policy/edit_serialize", |b| {
        // By reference, so that dropping the 10,000-client tree is not timed with the edit.
        b.iter_batched_ref(
            || loaded.document.clone(),
            |document| {
                document.apply(&grant).unwrap();
                black_box(document.to_string())
            },
            BatchSize::LargeInput,
        )
    });

    criterion.bench_function("policy/semantic_diff", |b| {
        b.iter(|| black_box(policy::diff(&loaded.policy, &newer)))
    });
    criterion.final_summary();

    let ours: Op = {
        let text = text.clone();
        Box::new(move || {
            let loaded = policy::load(&text, 0).unwrap();
            black_box(DelegationTree::build(&loaded.policy, &loaded.findings));
        })
    };
    let floor: Op = {
        let text = text.clone();
        Box::new(move || {
            black_box(text.parse::<toml_edit::DocumentMut>().unwrap());
        })
    };
    let (ratio, ours_mean, floor_mean) = paired_ratio(&ours, &floor, 1);
    println!("\npaired (alternating rounds, median of per-round ratios):");
    println!("| op | ours | bare toml_edit parse | ratio |");
    println!("|---|---|---|---|");
    println!("| load + validate + tree | {ours_mean:.1?} | {floor_mean:.1?} | {ratio:.2}× |");

    let rebase: Op = {
        let (base, mine, theirs) = (text.clone(), mine.clone(), theirs.clone());
        Box::new(move || {
            let out = policy::rebase::rebase(&base, &mine, &theirs, &Default::default()).unwrap();
            assert!(out.is_clean());
            black_box(out);
        })
    };
    let load: Op = Box::new(move || {
        black_box(policy::load(&text, 0).unwrap());
    });
    let (ratio, rebase_mean, load_mean) = paired_ratio(&rebase, &load, 1);
    println!(
        "| semantic rebase (2 local edits onto 1 of theirs) | {rebase_mean:.1?} | one policy::load {load_mean:.1?} | {ratio:.2}× |"
    );
}
