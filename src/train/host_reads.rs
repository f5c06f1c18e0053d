//! How often the host read a tensor's value (`.item()`, `double_value`, …) or ran an op whose
//! output size depends on the data (`nonzero`, `masked_select`, `unique`): on a GPU each waits for
//! the device, so a step that does none can run ahead of it. Counted by a libtorch
//! RecordFunction callback (`host_reads.cpp`), process-wide: measure with nothing else running.

unsafe extern "C" {
    fn mplug_host_reads_reset();
    fn mplug_host_reads() -> i64;
}

/// Starts counting from zero.
pub fn reset() {
    // SAFETY: installs a callback once and stores into an atomic.
    unsafe { mplug_host_reads_reset() }
}

/// Reads since [`reset`].
pub fn count() -> i64 {
    // SAFETY: loads an atomic.
    unsafe { mplug_host_reads() }
}
