//! Test guest: reads each path given and reports success or failure.
//! Exit code 0 only if every read succeeded.
fn main() {
    let mut ok = true;
    for p in std::env::args().skip(1) {
        match std::fs::read_to_string(&p) {
            Ok(s) => println!("read {p}: {} bytes", s.len()),
            Err(e) => {
                println!("cannot read {p}: {e}");
                ok = false;
            }
        }
    }
    std::process::exit(if ok { 0 } else { 1 })
}
