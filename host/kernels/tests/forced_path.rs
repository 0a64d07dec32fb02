//! `EDGEWASM_KERNEL_PATH` forces the path (this file is its own test
//! process, so the variable is set before the path is first resolved).

use edgewasm_kernels::{active_path, kernels_for, GgmlType, KernelPath};

#[test]
fn env_var_forces_scalar() {
    // The only test in this binary: nothing has resolved the path yet.
    std::env::set_var("EDGEWASM_KERNEL_PATH", "scalar");
    assert_eq!(active_path(), KernelPath::Scalar);
    for ty in [
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::F32,
    ] {
        assert_eq!(kernels_for(ty).path, KernelPath::Scalar);
    }
}
