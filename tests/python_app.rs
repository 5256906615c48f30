//! An application unchanged: redis-py (tests/python/app.py) runs its everyday operations
//! against ringcache (three nodes, so keys of one operation live on different nodes): strings,
//! the default MULTI/EXEC pipeline, a WATCH transaction, `Lock` and `register_script` (Lua),
//! pub/sub, bitmaps, and a blocking pop fed by another client. (rq is not in it yet: its
//! workers keep job results in streams.)
//!
//! The Python environment is `target/pyenv` (`.ci/run` creates it from
//! tests/python/requirements.txt); without it the test fails under CI and is skipped loudly
//! otherwise.

mod common;

use std::path::Path;
use std::process::Command;

use common::{THREE_NODES, TestServer};

#[test]
fn redis_py_works_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/pyenv/bin/python");
    if !python.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing; .ci/run creates it",
            python.display()
        );
        eprintln!(
            "\n*** SKIPPED: no {} (python3 -m venv target/pyenv && target/pyenv/bin/pip install -r \
             tests/python/requirements.txt); this test checked nothing ***\n",
            python.display()
        );
        return;
    }
    let server = TestServer::start(THREE_NODES);
    let out = Command::new(&python)
        .arg("app.py")
        .arg(server.resp.port().to_string())
        .current_dir(root.join("tests/python"))
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "app.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "strings",
        "pipeline (MULTI/EXEC)",
        "transaction (WATCH)",
        "Lock (Lua scripts)",
        "register_script (EVALSHA)",
        "pubsub",
        "bitmaps",
        "blocking pop",
    ] {
        assert!(
            stdout.contains(&format!("ok {step}\n")),
            "{step} missing:\n{stdout}"
        );
    }
}
