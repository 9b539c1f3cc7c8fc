//! Near-duplicate lookup: `NearDupIndex` (permuted-block tables) against a linear scan of the
//! same hashes, at 10k, 100k and 1M stored mentions, plus the cost of hashing a post.
//! `cargo bench -p crow-ingest --bench simhash` (BENCHMARKS.md).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crow_ingest::social::simhash::{NearDupIndex, hamming, simhash};

/// xorshift64*: deterministic, well spread.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("near_duplicate_lookup");
    for n in [10_000usize, 100_000, 1_000_000] {
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        let hashes: Vec<u64> = (0..n).map(|_| rng(&mut seed)).collect();
        let mut index = NearDupIndex::new(3);
        for (i, h) in hashes.iter().enumerate() {
            index.insert(format!("m{i}"), *h);
        }
        // Half the queries are stored hashes with 0-3 bits flipped, half are new.
        let queries: Vec<u64> = (0..1_000)
            .map(|i| {
                if i % 2 == 0 {
                    let mut h = hashes[(rng(&mut seed) as usize) % n];
                    for _ in 0..(i % 4) {
                        h ^= 1 << (rng(&mut seed) % 64);
                    }
                    h
                } else {
                    rng(&mut seed)
                }
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("index", n), &queries, |b, qs| {
            b.iter(|| qs.iter().filter(|q| index.nearest(**q).is_some()).count())
        });
        g.bench_with_input(BenchmarkId::new("linear_scan", n), &queries, |b, qs| {
            b.iter(|| {
                qs.iter()
                    .filter(|q| hashes.iter().any(|h| hamming(*h, **q) <= 3))
                    .count()
            })
        });
    }
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let post = "RT @trailfan: Just did 20 km in the Trail Runner 42 and my feet feel great! Best trail shoe I have owned 🏃 #trailrunner https://t.co/x";
    c.bench_function("simhash_one_post", |b| b.iter(|| simhash(black_box(post))));
}

criterion_group!(benches, lookups, hashing);
criterion_main!(benches);
