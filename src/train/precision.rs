//! bf16 autocast on CUDA. tch 0.24 can switch libtorch's autocast on and off but not choose its
//! dtype, whose CUDA default is float16; the reference trains in bf16. libtorch exports
//! `at::autocast::set_autocast_dtype(DeviceType, ScalarType)` (both `int8_t` enums), so we call
//! it by its mangled name — hand-written because no crate wraps it — and read the setting back
//! through `get_autocast_dtype` to prove the call took. The mangled names and the enum codes were
//! checked against libtorch [`CHECKED_TORCH`]; another loaded libtorch is refused rather than
//! trusted with a C++ ABI nobody checked.

use crate::error::{Error, Result};

/// The libtorch release (major.minor) whose symbols and enum codes this file was checked against.
pub const CHECKED_TORCH: &str = "2.11";

/// `c10::DeviceType::CUDA`.
const DEVICE_CUDA: i8 = 1;
/// `c10::ScalarType::BFloat16`.
const SCALAR_BFLOAT16: i8 = 15;

unsafe extern "C" {
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn at_set_autocast_dtype(device: i8, dtype: i8);
    #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
    fn at_get_autocast_dtype(device: i8) -> i8;
}

/// The autocast dtype libtorch uses on CUDA (`c10::ScalarType` code: 5 float16, 15 bfloat16).
pub fn cuda_autocast_dtype() -> i8 {
    // SAFETY: a getter of a global setting, taking and returning int8_t enums.
    unsafe { at_get_autocast_dtype(DEVICE_CUDA) }
}

/// Makes CUDA autocast compute in bf16; an error when the setting does not read back.
pub fn use_bf16_autocast_on_cuda() -> Result<()> {
    check_torch_version(crate::device::loaded_libtorch_version().as_deref())?;
    // SAFETY: a setter of a global setting, taking two int8_t enums (libtorch's ABI).
    unsafe { at_set_autocast_dtype(DEVICE_CUDA, SCALAR_BFLOAT16) };
    match cuda_autocast_dtype() {
        SCALAR_BFLOAT16 => Ok(()),
        other => Err(Error::internal(format!(
            "libtorch kept autocast dtype {other} after asking for bfloat16"
        ))),
    }
}

/// Refuses a libtorch other than [`CHECKED_TORCH`]; an unknown version passes (the dtype read-back
/// still proves the call took).
fn check_torch_version(loaded: Option<&str>) -> Result<()> {
    match loaded {
        Some(v) if !v.starts_with(&format!("{CHECKED_TORCH}.")) => Err(Error::input_with_hint(
            format!(
                "bf16 autocast calls libtorch {CHECKED_TORCH}'s C++ symbols, but libtorch {v} is loaded"
            ),
            format!(
                "run with torch {CHECKED_TORCH}.x (scripts/setup.sh installs it), or set train.bf16: false"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn another_libtorch_is_refused_by_name() {
        assert!(super::check_torch_version(Some("2.11.0+cu130")).is_ok());
        assert!(super::check_torch_version(None).is_ok());
        let err = super::check_torch_version(Some("2.12.0")).unwrap_err();
        assert!(
            err.to_string().contains("libtorch 2.12.0 is loaded"),
            "{err}"
        );
        // 2.1 is not 2.11: the match is on whole version components.
        assert!(super::check_torch_version(Some("2.1.0")).is_err());
    }

    #[test]
    fn the_loaded_libtorch_is_the_checked_one() {
        // The test process links the libtorch of scripts/setup.sh (PyPI torch, with version.py).
        let v = crate::device::loaded_libtorch_version().expect("libtorch_cpu.so is mapped");
        assert!(v.starts_with("2.11."), "{v}");
    }

    #[test]
    fn bf16_autocast_setting_reads_back_and_float16_was_the_default() {
        // The setting is global; this is the only test touching it.
        let before = super::cuda_autocast_dtype();
        assert_eq!(before, 5, "libtorch's CUDA autocast default is float16");
        super::use_bf16_autocast_on_cuda().unwrap();
        assert_eq!(super::cuda_autocast_dtype(), 15);
    }
}
