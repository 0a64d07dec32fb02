//! Test guest: allocates until the host's --max-memory stops it.
fn main() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut v = vec![0u8; 16 << 20];
        v[0] = 1;
        hoard.push(v);
        println!("allocated {} MiB", hoard.len() * 16);
    }
}
