//! OpenAI's own Python client (PyPI `openai`, installed by `./just
//! test-tools`) against `edgewasm serve` with the openai-server guest:
//! models, chat (whole and streamed, equal at temperature 0), a second
//! turn, completions, base64 embeddings, structured output, and the errors
//! the client maps to its exception types (tests/python/openai_client.py).

use std::process::Command;

use edgewasm_tests::server::Server;
use edgewasm_tests::*;

#[test]
fn the_openai_python_client_works() {
    let have = Command::new("python3").args(["-c", "import openai"]).status().is_ok_and(|s| s.success());
    require(have, "python3 with the openai package: run `./just test-tools`");
    let g = guest("openai-server");
    let server = Server::start(&["--max-ctx", "512", "--env", "API_KEY=sesame", g.to_str().unwrap()]);
    let script = repo_root().join("tests/python/openai_client.py");
    let out = Command::new("python3").arg(&script).arg(server.url()).output().expect("run python3");
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && o.starts_with("ok "), "openai_client.py failed:\n{o}\n{e}\nserver:\n{}", server.log());
    eprintln!("{o}");
}
