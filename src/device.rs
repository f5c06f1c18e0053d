//! libtorch checks: which device is available and whether a tensor op runs.

use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// What `mplug doctor` reports about libtorch.
#[derive(Debug, Clone)]
pub struct TorchReport {
    /// CUDA usable.
    pub cuda: bool,
    /// Number of CUDA devices.
    pub cuda_devices: i64,
    /// Intra-op threads.
    pub threads: i32,
    /// Max abs difference between libtorch's matmul and a naive triple loop on a 64x48 · 48x32 product.
    pub matmul_max_abs_err: f64,
}

/// Runs a small matmul on CPU and compares it with a hand-written product.
pub fn torch_smoke_test() -> Result<TorchReport> {
    let (m, k, n) = (64i64, 48i64, 32i64);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 4.0)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
        .collect();
    let ta = Tensor::f_from_slice(&a)?.f_reshape([m, k])?;
    let tb = Tensor::f_from_slice(&b)?.f_reshape([k, n])?;
    let tc = ta.f_matmul(&tb)?.f_to_kind(Kind::Double)?;
    let got: Vec<f64> = Vec::<f64>::try_from(tc.f_reshape([m * n])?)?;
    let mut max_err = 0f64;
    for i in 0..m as usize {
        for j in 0..n as usize {
            let mut acc = 0f64;
            for p in 0..k as usize {
                acc += a[i * k as usize + p] as f64 * b[p * n as usize + j] as f64;
            }
            max_err = max_err.max((acc - got[i * n as usize + j]).abs());
        }
    }
    Ok(TorchReport {
        cuda: tch::Cuda::is_available(),
        cuda_devices: tch::Cuda::device_count(),
        threads: tch::get_num_threads(),
        matmul_max_abs_err: max_err,
    })
}

/// The version of the libtorch this process loaded (`2.11.0+cu130`), read from the `version.py`
/// (PyPI torch) or `build-version` (libtorch zip) beside the `libtorch_cpu.so` in
/// `/proc/self/maps`; `None` where it cannot be told.
pub fn loaded_libtorch_version() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))?;
    let root = std::path::Path::new(lib).parent()?.parent()?;
    if let Ok(py) = std::fs::read_to_string(root.join("version.py")) {
        let line = py.lines().find(|l| l.starts_with("__version__"))?;
        return Some(line.split(['\'', '"']).nth(1)?.to_string());
    }
    let text = std::fs::read_to_string(root.join("build-version")).ok()?;
    Some(text.trim().to_string())
}

/// The best available device.
pub fn best_device() -> Device {
    Device::cuda_if_available()
}

#[cfg(test)]
mod tests {
    /// libtorch links and computes: matmul equals the naive product (f32 rounding only).
    #[test]
    fn libtorch_matmul_matches_naive_product() {
        let r = super::torch_smoke_test().unwrap();
        assert!(
            r.matmul_max_abs_err < 1e-3,
            "max abs err {}",
            r.matmul_max_abs_err
        );
    }
}
