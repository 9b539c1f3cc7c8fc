//! WorkflowStore: finished steps survive until the run finishes.

use crow_core::ports::WorkflowStore;
use serde_json::json;

use crate::common::store;

#[tokio::test]
async fn steps_are_saved_loaded_and_dropped() {
    let (_dir, s) = store();
    assert!(s.load_steps("run-1").await.unwrap().is_empty());
    s.save_step("run-1", "fetch", &json!({"n": 1}), 10).await.unwrap();
    s.save_step("run-1", "analyze", &json!(["a", "b"]), 11).await.unwrap();
    s.save_step("run-1", "fetch", &json!({"n": 2}), 12).await.unwrap(); // replayed step
    s.save_step("run-2", "fetch", &json!(null), 13).await.unwrap();
    let steps = s.load_steps("run-1").await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps["fetch"], json!({"n": 2}));
    assert_eq!(steps["analyze"], json!(["a", "b"]));
    s.finish_run("run-1", 20).await.unwrap();
    assert!(s.load_steps("run-1").await.unwrap().is_empty());
    assert_eq!(s.load_steps("run-2").await.unwrap().len(), 1);
}
