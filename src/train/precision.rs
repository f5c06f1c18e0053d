//! bf16 autocast on CUDA. tch 0.24 can switch libtorch's autocast on and off but not choose its
//! dtype, whose CUDA default is float16; the reference trains in bf16. libtorch exports
//! `at::autocast::set_autocast_dtype(DeviceType, ScalarType)` (both `int8_t` enums), so we call
//! it by its mangled name — hand-written because no crate wraps it — and read the setting back
//! through `get_autocast_dtype` to prove the call took.

use crate::error::{Error, Result};

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
    // SAFETY: a setter of a global setting, taking two int8_t enums (libtorch's ABI).
    unsafe { at_set_autocast_dtype(DEVICE_CUDA, SCALAR_BFLOAT16) };
    match cuda_autocast_dtype() {
        SCALAR_BFLOAT16 => Ok(()),
        other => Err(Error::Internal(format!(
            "libtorch kept autocast dtype {other} after asking for bfloat16"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bf16_autocast_setting_reads_back_and_float16_was_the_default() {
        // The setting is global; this is the only test touching it.
        let before = super::cuda_autocast_dtype();
        assert_eq!(before, 5, "libtorch's CUDA autocast default is float16");
        super::use_bf16_autocast_on_cuda().unwrap();
        assert_eq!(super::cuda_autocast_dtype(), 15);
    }
}
