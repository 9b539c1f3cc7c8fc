//! The CCTV channel over the in-memory ports: archive and retention, batching into
//! `process-video` jobs and the workflow, stalls. (The channel with crow-vision's real pipeline,
//! ffmpeg and CenterFace is tested end to end in the crow-e2e crate.)

use std::collections::VecDeque;

use crow_core::model::FrameEventKind;
use crow_core::ports::{BlobStore, Frame, FrameProcessor, FrameSource, ImageEncoder, JobQueue, VideoStore, queues};
use crow_core::testing::{FakeTextAnalyzer, MemoryBlobStore, MemoryStore, VecFrameSource};
use crow_core::video::{EncodedImage, FrameEventQuery, FrameObservation, MaskedFrame, ProcessedFrame, Retention};
use crow_core::{Error, Result};
use crow_ingest::cctv::{CameraConfig, CameraPorts, run_camera};
use crow_ingest::workflows::{PortRefs, WithText, run_once};

/// Marks every frame a keyframe and reports one presence observation per frame.
struct Scripted;

#[async_trait::async_trait]
impl FrameProcessor for Scripted {
    async fn process(&mut self, f: Frame) -> Result<ProcessedFrame> {
        let n = (f.timestamp / 1000) as u32;
        Ok(ProcessedFrame {
            frame: MaskedFrame::mask(f, &[], &Default::default()),
            motion: vec![],
            motion_fraction: 0.0,
            analyzed: true,
            faces: vec![],
            people: vec![],
            observations: vec![FrameObservation {
                kind: FrameEventKind::Presence,
                zone: None,
                count: n,
                value: None,
            }],
            keyframe: true,
        })
    }
    async fn finish(&mut self, _at: i64) -> Result<Vec<FrameObservation>> {
        Ok(vec![FrameObservation {
            kind: FrameEventKind::Presence,
            zone: None,
            count: 0,
            value: None,
        }])
    }
    async fn take_heatmap(&mut self) -> Result<Option<EncodedImage>> {
        Ok(Some(EncodedImage {
            bytes: b"\x89PNG fake".to_vec(),
            content_type: "image/png".into(),
            extension: "png".into(),
        }))
    }
}

/// 100 bytes per image.
struct Fixed;

impl ImageEncoder for Fixed {
    fn encode(&self, f: &MaskedFrame) -> Result<EncodedImage> {
        Ok(EncodedImage {
            bytes: vec![f.timestamp() as u8; 100],
            content_type: "image/jpeg".into(),
            extension: "jpg".into(),
        })
    }
}

fn ports<'a>(store: &'a MemoryStore, blobs: &'a MemoryBlobStore) -> CameraPorts<'a> {
    CameraPorts {
        queue: store,
        blobs,
        video: store,
    }
}

fn frames(n: i64) -> Vec<Frame> {
    (0..n)
        .map(|i| Frame {
            width: 4,
            height: 4,
            timestamp: 1_700_000_000_000 + i * 1000,
            rgb: vec![9; 48],
        })
        .collect()
}

fn camera(max_bytes: u64, max_age_secs: u64) -> CameraConfig {
    let mut c = CameraConfig::new("door-1");
    c.archive.retention = Retention {
        max_bytes,
        max_age_secs,
    };
    c.batch_events = 4;
    c
}

#[tokio::test]
async fn the_archive_never_exceeds_its_byte_budget_and_drops_oldest_first() {
    let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
    let ports = ports(&store, &blobs);
    let mut src = VecFrameSource::new(frames(10));
    let r = run_camera(
        "org_a",
        &camera(350, 0),
        &mut src,
        &mut Scripted,
        &Fixed,
        &ports,
        &|| false,
    )
    .await
    .unwrap();
    assert_eq!((r.frames, r.archived, r.heatmaps), (10, 10, 1));
    let usage = store.archive_usage("org_a").await.unwrap();
    assert!(usage.bytes <= 350, "{usage:?}");
    let keys = blobs.list("cctv-frames/org_a/").await.unwrap();
    assert_eq!(keys.len() as u64, usage.objects);
    // The newest objects survive: the heatmap and the last keyframes.
    assert!(keys.iter().any(|k| k.ends_with("-heatmap.png")), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains("1700000009000")), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("1700000000000")), "{keys:?}");
    assert_eq!(r.evicted, 11 - usage.objects);
    // Every ledger entry has its object and vice versa.
    let ledger = store.oldest_archive("org_a", 100).await.unwrap();
    let mut ledger_keys: Vec<_> = ledger.iter().map(|e| e.key.clone()).collect();
    ledger_keys.sort();
    assert_eq!(ledger_keys, keys);
}

#[tokio::test]
async fn objects_past_the_age_limit_are_deleted() {
    let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
    let ports = ports(&store, &blobs);
    let mut src = VecFrameSource::new(frames(10));
    run_camera(
        "org_a",
        &camera(1 << 30, 3),
        &mut src,
        &mut Scripted,
        &Fixed,
        &ports,
        &|| false,
    )
    .await
    .unwrap();
    let oldest = store.oldest_archive("org_a", 100).await.unwrap();
    // Frames 0..=9 s; at 9 s everything older than 6 s went.
    assert!(oldest.iter().all(|e| e.timestamp >= 1_700_000_006_000), "{oldest:?}");
}

#[tokio::test]
async fn events_go_through_process_video_once_even_when_redelivered() {
    let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
    let ports = ports(&store, &blobs);
    let mut src = VecFrameSource::new(frames(10));
    let r = run_camera(
        "org_a",
        &camera(1 << 30, 0),
        &mut src,
        &mut Scripted,
        &Fixed,
        &ports,
        &|| false,
    )
    .await
    .unwrap();
    // 10 frame observations + 1 at the end, in jobs of 4.
    assert_eq!((r.events, r.jobs), (11, 3));
    let analyzer = FakeTextAnalyzer::new();
    let wf = WithText {
        ports: PortRefs::shared(&store, &blobs),
        analyzer: &analyzer,
        embedder: None,
        indexes: None,
        social: None,
        video: Some(&store),
    };
    // Deliver, "crash" before the ack by re-leasing, deliver again.
    let jobs = store.reserve(queues::INTERACTION, 10, 60_000, 0).await.unwrap();
    assert_eq!(jobs.len(), 3);
    for j in &jobs {
        crow_ingest::workflows::handle_job(&wf, j, 0, &Default::default())
            .await
            .unwrap();
    }
    store.release_leases(queues::INTERACTION).await.unwrap();
    let tick = run_once(&wf, queues::INTERACTION, 10, 1, 0.5).await.unwrap();
    assert_eq!(tick.processed, 3);
    let page = store
        .list_frame_events(
            "org_a",
            &FrameEventQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.data.len(), 11);
    // Keyframe events point at archived objects.
    let key = page.data[0].frame_key.clone().unwrap();
    assert!(blobs.get(&key).await.unwrap().is_some());
    assert_eq!(page.data.last().unwrap().count, 0);
}

#[tokio::test]
async fn a_worker_without_the_video_store_fails_the_job_clearly() {
    let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
    let ports = ports(&store, &blobs);
    let mut src = VecFrameSource::new(frames(1));
    run_camera(
        "org_a",
        &camera(1 << 30, 0),
        &mut src,
        &mut Scripted,
        &Fixed,
        &ports,
        &|| false,
    )
    .await
    .unwrap();
    let jobs = store.reserve(queues::INTERACTION, 10, 60_000, 0).await.unwrap();
    let err = crow_ingest::workflows::handle_job(&PortRefs::shared(&store, &blobs), &jobs[0], 0, &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("video store"), "{err}");
}

/// Stalls twice, then delivers, then ends.
struct Flaky(VecDeque<Result<Option<Frame>>>);

#[async_trait::async_trait]
impl FrameSource for Flaky {
    async fn next_frame(&mut self) -> Result<Option<Frame>> {
        self.0.pop_front().unwrap_or(Ok(None))
    }
}

#[tokio::test]
async fn a_stalled_source_is_waited_on_and_resumes() {
    let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
    let ports = ports(&store, &blobs);
    let stall = || Err(Error::Unavailable("rtsp://cam: no frames for 5 s".into()));
    let f = frames(2);
    let mut src = Flaky(VecDeque::from([
        Ok(Some(f[0].clone())),
        stall(),
        stall(),
        Ok(Some(f[1].clone())),
    ]));
    let r = run_camera(
        "org_a",
        &camera(1 << 30, 0),
        &mut src,
        &mut Scripted,
        &Fixed,
        &ports,
        &|| false,
    )
    .await
    .unwrap();
    assert_eq!((r.frames, r.stalls), (2, 2));
    // With a limit, the run gives up with the source's message.
    let mut src = Flaky(VecDeque::from([stall(), stall(), stall()]));
    let mut cfg = camera(1 << 30, 0);
    cfg.max_stalls = Some(2);
    let err = run_camera("org_a", &cfg, &mut src, &mut Scripted, &Fixed, &ports, &|| false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no frames for 5 s"), "{err}");
    // Other source errors end the run.
    let mut src = Flaky(VecDeque::from([Err(Error::invalid("image", "corrupt"))]));
    assert!(
        run_camera("org_a", &cfg, &mut src, &mut Scripted, &Fixed, &ports, &|| false)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn bad_camera_settings_are_refused_before_anything_runs() {
    let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
    let ports = ports(&store, &blobs);
    let mut src = VecFrameSource::new(frames(3));
    let cfg = CameraConfig::new("front door");
    let err = run_camera("org_a", &cfg, &mut src, &mut Scripted, &Fixed, &ports, &|| false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("camera.id"), "{err}");
    assert_eq!(src.remaining(), 3);
    assert!(blobs.list("").await.unwrap().is_empty());
}
