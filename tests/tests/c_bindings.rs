//! The committed C bindings (`guest-components/c/gen`) are what
//! `wit-bindgen c` 0.63.0 generates from `wit/` today (`just c-bindings`):
//! the same generator, as a library, run here, so a WIT change that was
//! not followed by regenerating the bindings fails CI. With
//! `UPDATE_C_BINDINGS=1` the test writes them instead (no wit-bindgen-cli
//! install needed).

use edgewasm_tests::repo_root;
use wit_bindgen_core::wit_parser::Resolve;

#[test]
fn c_bindings_match_the_wit() {
    let root = repo_root();
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve.push_path(root.join("wit")).expect("parse wit/");
    let world = resolve.select_world(&[pkg], Some("edgewasm:llm/command")).expect("world edgewasm:llm/command");
    // `wit-bindgen c wit --world edgewasm:llm/command --no-object-file`.
    let opts = wit_bindgen_c::Opts { no_object_file: true, ..Default::default() };
    let mut files = wit_bindgen_core::Files::default();
    opts.build().generate(&mut resolve, world, &mut files).expect("generate C bindings");
    let mut compared = 0;
    for (name, want) in files.iter() {
        let path = root.join("guest-components/c/gen").join(name);
        if std::env::var_os("UPDATE_C_BINDINGS").is_some_and(|v| v == "1") {
            std::fs::write(&path, want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let have = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `./just c-bindings`)", path.display()));
        assert!(have == want, "{} is stale: it differs from what wit-bindgen generates from wit/ (run `./just c-bindings`)", path.display());
        compared += 1;
    }
    assert_eq!(compared, 2, "expected command.c and command.h");
}
