//! Run-time CPU dispatch for the hand-vectorised pixel loops.

/// `cpu_dispatch! { fn name(args) -> T { body } }` defines `name`, which runs `body` compiled for
/// AVX2 when the CPU has it and as built otherwise, so one release binary runs on any x86-64 yet
/// the hot loops use 8-wide integer/float instructions. The body becomes an `#[inline(always)]`
/// inner function so each copy is compiled for its own target features.
macro_rules! cpu_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}
