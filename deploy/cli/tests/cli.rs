//! The `crow` binary's help text, as a newcomer sees it. (This test also makes
//! `cargo test --workspace` build the binary that the end-to-end tests in tests/ drive.)

use std::process::Command;

fn crow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_crow")).args(args).output().unwrap()
}

#[test]
fn help_lists_every_command() {
    let out = crow(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["org", "serve", "ingest", "products", "demo", "--data"] {
        assert!(text.contains(cmd), "--help lacks {cmd}:\n{text}");
    }
    for sub in [
        &["org", "create", "--help"][..],
        &["serve", "--help"],
        &["ingest", "--help"],
        &["products", "import", "--help"],
        &["demo", "--help"],
    ] {
        let out = crow(sub);
        assert!(out.status.success(), "{sub:?}");
    }
}

#[test]
fn unknown_org_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.csv");
    std::fs::write(&f, "sku,name\nA,Alpha\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_crow"))
        .arg("--data")
        .arg(dir.path())
        .args(["products", "import"])
        .arg(&f)
        .args(["--org", "org_nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no org \"org_nope\""), "{err}");
}
