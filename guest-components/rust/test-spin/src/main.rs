//! Test guest: spins forever (for --timeout).
fn main() {
    println!("spinning");
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}
