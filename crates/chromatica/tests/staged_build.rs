//! Staged segments (the distributed build underneath `chromatica.ray.build`):
//! segments encoded by read-only handles and committed by one writer give
//! the codes, ids and answers of one `add` of the same rows with the same
//! quantizers; every refused commit changes nothing; a power cut at any
//! sync point of a staged build leaves the old state or the new one, and
//! the next writer removes what the interrupted build left.

use chromatica::testing::data::{clustered, config};
use chromatica::testing::storage::Storage;
use chromatica::testing::{IndexInternals, MemStorage, SnapshotInternals};
use chromatica::{Error, Index, Record, SearchParams, StagedSegment, TrainOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const D: usize = 16;

fn cfg() -> chromatica::Config {
    chromatica::Config { refine: true, ..config(D, 8, 4, 8, 3) }
}

/// A trained, empty index in `dir`.
fn trained(dir: &Path) -> Index {
    let index = Index::create(dir, cfg()).unwrap();
    index.train(&clustered(2000, D, 1), &TrainOptions::default(), &mut |_| ()).unwrap();
    index
}

/// Copies a directory's regular files (same quantizers in both indexes).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// id → (list, code bytes) over every segment of the current state.
fn codes(index: &Index) -> BTreeMap<u64, (usize, Vec<u8>)> {
    let snap = index.snapshot();
    let cs = snap.manifest().config.code_size();
    let mut out = BTreeMap::new();
    for seg in snap.segments() {
        for l in 0..snap.manifest().config.nlist {
            let (codes, ids) = seg.list(l).unwrap();
            for (i, id) in ids.iter().enumerate() {
                assert!(out.insert(id, (l, codes[i * cs..(i + 1) * cs].to_vec())).is_none());
            }
        }
    }
    out
}

fn search(index: &Index, queries: &[f32]) -> Vec<Vec<(u64, f32)>> {
    let params = SearchParams::new(10).candidates(40);
    index
        .search(queries, &params)
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().map(|n| (n.id, n.distance)).collect())
        .collect()
}

#[test]
fn staged_segments_commit_to_what_one_add_makes() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("added"), tmp.path().join("staged"));
    drop(trained(&a));
    copy_dir(&a, &b);
    let data = clustered(3000, D, 7);
    let ids: Vec<u64> = (0..3000u64).map(|i| i * 3 + 5).collect();
    let records: Vec<Record> = (0..3000)
        .map(|i| Record { path: PathBuf::from(format!("/p/{i}.jpg")), size: i as u64, mtime_ns: -(i as i64) })
        .collect();

    let added = Index::open(&a).unwrap();
    added.add_records(&data, Some(&ids), &records).unwrap();

    // The writer is open (as the driver keeps it) while read-only handles
    // (the workers) stage three uneven parts from numbers handed out in turn.
    let writer = Index::open(&b).unwrap();
    let base = writer.snapshot().next_file();
    let mut staged = Vec::new();
    for (i, (lo, hi)) in [(0, 1000), (1000, 1100), (1100, 3000)].into_iter().enumerate() {
        let worker = Index::open_read_only(&b).unwrap();
        let s =
            worker.stage_segment(base + i as u64, &data[lo * D..hi * D], &ids[lo..hi], Some(&records[lo..hi])).unwrap();
        assert_eq!((s.file, s.vectors), (base + i as u64, (hi - lo) as u64));
        staged.push(s);
    }
    // Staged files are invisible until the commit.
    assert_eq!(writer.len(), 0);
    assert_eq!(Index::open_read_only(&b).unwrap().len(), 0);
    let report = writer.commit_staged(&staged).unwrap();
    assert_eq!(report.ids, 5..3000 * 3 + 3);
    assert_eq!(report.segments, vec![base, base + 1, base + 2]);
    assert_eq!(writer.len(), 3000);

    assert_eq!(codes(&writer), codes(&added));
    let queries = clustered(50, D, 99);
    assert_eq!(search(&writer, &queries), search(&added, &queries));
    // Records came along; the next add continues after the largest id.
    assert_eq!(writer.snapshot().next_id(), 3000 * 3 + 3);
    let hit = writer.search(&data[1050 * D..1051 * D], &SearchParams::new(1)).unwrap()[0][0];
    assert_eq!(hit.id, ids[1050]);
    assert_eq!(writer.snapshot().record(hit.location).unwrap().unwrap(), records[1050]);
    assert_eq!(writer.add(&clustered(1, D, 3), None).unwrap().ids, 3000 * 3 + 3..3000 * 3 + 4);
    // A reader that reopens sees the same, and the index verifies.
    drop(writer);
    Index::verify(&b).unwrap();
    assert_eq!(Index::open_read_only(&b).unwrap().len(), 3001);
}

#[test]
fn refused_staging_and_commits_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    let untrained = Index::create(tmp.path().join("u"), cfg()).unwrap();
    assert!(matches!(untrained.stage_segment(1, &clustered(4, D, 1), &[0, 1, 2, 3], None), Err(Error::NotTrained)));

    let writer = trained(&dir);
    writer.add(&clustered(300, D, 2), Some(&(100..400).collect::<Vec<_>>())).unwrap();
    let next = writer.snapshot().manifest().next_file;
    let data = clustered(20, D, 3);
    let ids: Vec<u64> = (0..20).collect();
    let err = |r: Result<StagedSegment, Error>| r.unwrap_err().to_string();

    // Staging: a number a leftover could have, bad rows, ids, records.
    assert!(err(writer.stage_segment(next - 1, &data, &ids, None)).contains("below the index's next file number"));
    let mut nan = data.clone();
    nan[5] = f32::NAN;
    assert!(err(writer.stage_segment(next, &nan, &ids, None)).contains("row 0"));
    assert!(err(writer.stage_segment(next, &data, &ids[..19], None)).contains("19 ids for 20 vectors"));
    assert!(err(writer.stage_segment(next, &data, &[3; 20], None)).contains("id 3"));
    let live: Vec<u64> = (95..115).collect();
    assert!(err(writer.stage_segment(next, &data, &live, None)).contains("already in the index"));
    assert!(err(writer.stage_segment(next, &data[..D - 1], &ids[..1], None)).contains("dimension"));

    let a = writer.stage_segment(next, &data[..10 * D], &ids[..10], None).unwrap();
    let b = writer.stage_segment(next, &data[10 * D..], &ids[10..], None).unwrap();
    assert_eq!(b.file, a.file + 1, "a taken number is skipped");
    let c = writer.stage_segment(next + 5, &data[10 * D..], &ids[5..15], None).unwrap();
    let generation = writer.snapshot().generation();
    let refused = |staged: &[StagedSegment], says: &str| {
        let e = writer.commit_staged(staged).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
        assert_eq!(writer.snapshot().generation(), generation);
        assert_eq!(Index::open_read_only(&dir).unwrap().len(), 300);
    };
    refused(&[], "no staged segments");
    refused(&[a, a], "given twice");
    refused(&[a, c], "id 5 is in more than one staged segment");
    let named = writer.snapshot().manifest().segments[0].file;
    refused(&[StagedSegment { file: named, ..a }], "already part of the index");
    refused(&[StagedSegment { vectors: 11, ..a }], "11");
    refused(&[StagedSegment { quantizer_file: 99, ..a }], "quantizer file 99");
    // A read-only handle stages but cannot commit.
    let reader = Index::open_read_only(&dir).unwrap();
    assert!(matches!(reader.commit_staged(&[a]), Err(Error::ReadOnly(_))));

    // Committed once, then neither again.
    writer.commit_staged(&[a, b]).unwrap();
    assert_eq!(writer.len(), 320);
    let generation = writer.snapshot().generation();
    assert!(writer.commit_staged(&[a]).unwrap_err().to_string().contains("already part of the index"));
    assert_eq!(writer.snapshot().generation(), generation);

    // Segments staged with the old quantizers after a retrain are refused.
    let d = writer.stage_segment(writer.snapshot().manifest().next_file, &data[..D], &[5000], None).unwrap();
    writer.retrain(&TrainOptions::default()).unwrap();
    assert!(writer.commit_staged(&[d]).unwrap_err().to_string().contains("trained again"));

    // The uncommitted files (c, d) are leftovers: the next writer removes them.
    drop(writer);
    drop(reader);
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
    };
    let seg = |s: &StagedSegment| format!("{:016x}.seg", s.file);
    assert!(names(&dir).contains(&seg(&c)) && names(&dir).contains(&seg(&d)));
    let reopened = Index::open(&dir).unwrap();
    assert!(!names(&dir).contains(&seg(&c)) && !names(&dir).contains(&seg(&d)));
    assert_eq!(reopened.len(), 320);
}

/// A power cut at every sync point of "stage two segments, commit them":
/// after it, the index opens with either none or all of the 200 vectors,
/// and a writer's open leaves exactly the files its manifest names.
#[test]
fn a_crash_anywhere_in_a_staged_build_leaves_old_or_new() {
    let path = PathBuf::from("mem-staged");
    let template = MemStorage::new();
    {
        let index = Index::create_in(path.clone(), Arc::new(template.clone()), cfg()).unwrap();
        index.train(&clustered(2000, D, 1), &TrainOptions::default(), &mut |_| ()).unwrap();
        index.add(&clustered(50, D, 2), None).unwrap();
    }
    template.crash(); // only what is durable
    let data = clustered(200, D, 4);
    let ids: Vec<u64> = (1000..1200).collect();
    let build = |storage: &MemStorage| -> chromatica::Result<()> {
        let writer = Index::open_in(path.clone(), Arc::new(storage.clone()), true)?;
        let worker = Index::open_in(path.clone(), Arc::new(storage.clone()), false)?;
        let next = writer.snapshot().manifest().next_file;
        let a = worker.stage_segment(next, &data[..100 * D], &ids[..100], None)?;
        let b = worker.stage_segment(next + 1, &data[100 * D..], &ids[100..], None)?;
        writer.commit_staged(&[a, b]).map(|_| ())
    };
    let copy = |t: &MemStorage| {
        let m = MemStorage::new();
        for name in t.list().unwrap() {
            chromatica::testing::storage::write_file(&m, &name, &t.contents(&name).unwrap()).unwrap();
        }
        m.sync_dir().unwrap();
        m
    };
    let probe = copy(&template);
    let before = probe.syncs();
    build(&probe).unwrap();
    let points = probe.syncs() - before;
    assert!(points >= 4, "staging and committing sync several times ({points})");
    let mut outcomes = [0; 2];
    for n in 0..=points {
        let m = copy(&template);
        m.crash_at_sync(Some(n));
        let done = build(&m);
        m.crash();
        m.revive();
        let index = Index::open_in(path.clone(), Arc::new(m.clone()), true).unwrap();
        let len = index.len();
        assert!(len == 50 || len == 250, "crash at sync {n}: {len} vectors");
        if done.is_ok() {
            assert_eq!(len, 250, "an acknowledged commit survives (sync {n})");
        }
        outcomes[(len == 250) as usize] += 1;
        let named = index.snapshot().manifest().file_numbers();
        for name in m.list().unwrap() {
            if let Some((number, _)) = chromatica::testing::format::parse_numbered_name(&name) {
                assert!(named.contains(&number), "crash at sync {n}: {name} left behind");
            }
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}
