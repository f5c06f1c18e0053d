//! libtorch's c10d process group (TCPStore rendezvous + ProcessGroupGloo or ProcessGroupNCCL)
//! through the C ABI of `c10d_shim.cpp`. Gloo runs on CPU tensors and stages CUDA ones through the
//! host; NCCL runs on CUDA tensors.

use std::ffi::{CStr, CString, c_char};
use std::time::Duration;

use tch::Tensor;
use torch_sys::C_tensor;

use super::{Backend, Collective, Launch};
use crate::error::{Error, Result};

#[repr(C)]
struct RawGroup {
    _private: [u8; 0],
}

unsafe extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn mplug_group_new(
        host: *const c_char,
        port: u16,
        rank: i32,
        world: i32,
        store_is_external: i32,
        prefix: *const c_char,
        timeout_ms: i64,
        iface_host: *const c_char,
        nccl: i32,
        err: *mut *mut c_char,
    ) -> *mut RawGroup;
    fn mplug_group_free(g: *mut RawGroup);
    fn mplug_free_message(m: *mut c_char);
    fn mplug_all_reduce_sum(g: *mut RawGroup, t: *mut C_tensor, err: *mut *mut c_char) -> i32;
    fn mplug_all_gather(
        g: *mut RawGroup,
        input: *mut C_tensor,
        out: *mut *mut C_tensor,
        err: *mut *mut c_char,
    ) -> i32;
    fn mplug_broadcast(g: *mut RawGroup, t: *mut C_tensor, root: i32, err: *mut *mut c_char)
    -> i32;
    fn mplug_barrier(g: *mut RawGroup, err: *mut *mut c_char) -> i32;
}

/// A c10d process group.
#[derive(Debug)]
pub struct ProcessGroup {
    raw: *mut RawGroup,
    rank: usize,
    world: usize,
    backend: Backend,
    device: tch::Device,
}

// SAFETY: c10d's ProcessGroupGloo is thread-safe (its work queue is locked); the trainer calls it
// from one thread at a time anyway.
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

/// Takes the shim's error message (if any) and frees it.
fn take_message(err: *mut c_char) -> String {
    if err.is_null() {
        return "unknown error".into();
    }
    // SAFETY: the shim returns a NUL-terminated malloc'd copy, freed here once.
    let text = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { mplug_free_message(err) };
    // c10d messages start with a source location (`[/pytorch/...cc:538] Read error ...`): keep
    // the part a user can act on first.
    text.trim().to_string()
}

impl ProcessGroup {
    /// Rendezvous at `launch.master_addr:master_port` and build the group.
    pub fn join(
        launch: &Launch,
        timeout: Duration,
        backend: Backend,
        device: tch::Device,
    ) -> Result<Self> {
        let fail = |message: String| Error::Collective {
            op: "rendezvous",
            rank: launch.rank,
            world: launch.world,
            message,
        };
        let cstr = |s: &str| CString::new(s).map_err(|_| fail(format!("`{s}` holds a NUL byte")));
        let host = cstr(&launch.master_addr)?;
        let prefix = cstr(&format!("mplug/attempt_{}", launch.attempt))?;
        // Gloo's device binds to the address this host reaches the master by.
        let iface = cstr(&launch.local_host())?;
        let (rank, world) = (
            i32::try_from(launch.rank).map_err(|_| fail("rank too large".into()))?,
            i32::try_from(launch.world).map_err(|_| fail("world too large".into()))?,
        );
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: every pointer is a live CString; the shim catches every C++ exception.
        let raw = unsafe {
            mplug_group_new(
                host.as_ptr(),
                launch.master_port,
                rank,
                world,
                i32::from(launch.external_store),
                prefix.as_ptr(),
                i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
                iface.as_ptr(),
                i32::from(backend == Backend::Nccl),
                &mut err,
            )
        };
        if raw.is_null() {
            return Err(fail(format!(
                "{} (master {}:{}, timeout {:.0} s)",
                take_message(err),
                launch.master_addr,
                launch.master_port,
                timeout.as_secs_f64()
            )));
        }
        Ok(ProcessGroup {
            raw,
            rank: launch.rank,
            world: launch.world,
            backend,
            device: match backend {
                Backend::Nccl => device,
                Backend::Gloo => tch::Device::Cpu,
            },
        })
    }

    fn check(&self, op: &'static str, rc: i32, err: *mut c_char) -> Result<()> {
        if rc == 0 {
            return Ok(());
        }
        Err(Error::Collective {
            op,
            rank: self.rank,
            world: self.world,
            message: take_message(err),
        })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: `raw` came from mplug_group_new and is freed once.
        unsafe { mplug_group_free(self.raw) };
    }
}

impl Collective for ProcessGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world(&self) -> usize {
        self.world
    }
    fn device(&self) -> tch::Device {
        self.device
    }
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Gloo => "gloo",
            Backend::Nccl => "nccl",
        }
    }
    fn all_reduce_sum(&self, t: &mut Tensor) -> Result<()> {
        let mut err = std::ptr::null_mut();
        // SAFETY: `t` is a live tensor; the shim only reads the pointer during the call.
        let rc = unsafe { mplug_all_reduce_sum(self.raw, t.as_mut_ptr(), &mut err) };
        self.check("all_reduce", rc, err)
    }
    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let mut err = std::ptr::null_mut();
        let mut out: *mut C_tensor = std::ptr::null_mut();
        let mut input = t.shallow_clone();
        // SAFETY: as above; on success `out` is a new `at::Tensor*` we own.
        let rc = unsafe { mplug_all_gather(self.raw, input.as_mut_ptr(), &mut out, &mut err) };
        self.check("all_gather", rc, err)?;
        // SAFETY: a fresh heap tensor from the shim, freed by Tensor's Drop (at_free).
        Ok(unsafe { Tensor::from_ptr(out) })
    }
    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        let mut err = std::ptr::null_mut();
        let root = i32::try_from(root).unwrap_or(i32::MAX);
        // SAFETY: as above.
        let rc = unsafe { mplug_broadcast(self.raw, t.as_mut_ptr(), root, &mut err) };
        self.check("broadcast", rc, err)
    }
    fn barrier(&self) -> Result<()> {
        let mut err = std::ptr::null_mut();
        // SAFETY: as above.
        let rc = unsafe { mplug_barrier(self.raw, &mut err) };
        self.check("barrier", rc, err)
    }
}
