//! The chat page of the openai-server guest in headless Chromium (Debian's
//! `chromium`, driven by playwright-core; both installed by `./just
//! test-tools`): the page lists the models, sends a prompt, and the answer
//! arrives in several steps (tests/browser/chat_page.cjs). The screenshot
//! is kept as target/test-artifacts/chat-page.png.

use std::path::PathBuf;
use std::process::Command;

use edgewasm_tests::server::Server;
use edgewasm_tests::*;

#[test]
fn chat_page_streams_an_answer_in_chromium() {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
    let modules = home.join(".cache/edgewasm/browser/node_modules");
    require(
        std::path::Path::new("/usr/bin/chromium").is_file() && modules.join("playwright-core").is_dir(),
        "Chromium and playwright-core: run `./just test-tools`",
    );
    let g = guest("openai-server");
    let server = Server::start(&[g.to_str().unwrap()]);
    let artifacts = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("chat-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = Command::new("node")
        .arg(repo_root().join("tests/browser/chat_page.cjs"))
        .arg(server.url())
        .arg(&shot)
        .env("NODE_PATH", &modules)
        .output()
        .expect("run node");
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "chat_page.cjs failed:\n{o}\n{e}\nserver:\n{}", server.log());
    let v: serde_json::Value = serde_json::from_str(o.trim()).expect("the script's JSON line");
    assert_eq!(v["ok"], true, "{v}");
    assert!(shot.is_file(), "no screenshot");
    assert!(server.log().contains("\"POST /v1/chat/completions\" 200"), "{}", server.log());
    eprintln!("{o}");
}
