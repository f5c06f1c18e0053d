//! Links libtorch so that binaries and tests run without LD_LIBRARY_PATH, keeps CUDA, and (feature
//! `dist`) compiles the C++ shim over libtorch's c10d collectives.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(mplug_nccl)");
    // torch-sys (links = "tch") exports its libtorch lib dir to direct dependents only.
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // rpath: binaries find libtorch_cpu.so without LD_LIBRARY_PATH on the build machine.
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        // rustc links with --as-needed and nothing references libtorch_cuda.so directly, so it would be
        // dropped and CUDA never registered. Force it in, but only for a full (CUDA) torch install:
        // the lean CPU install lacks cuDNN/cuSPARSE and the binary would then fail to start.
        let lib = std::path::Path::new(&dir);
        let has_cuda_libs =
            lib.join("libtorch_cuda.so").exists() && lib.join("../../nvidia/cudnn/lib").exists();
        if has_cuda_libs {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
        if std::env::var_os("CARGO_FEATURE_DIST").is_some() {
            compile_c10d_shim(lib);
        }
        compile_step_kernels(lib);
    }
}

/// `src/train/host_reads.cpp` (counts the host's reads of tensor values) and
/// `src/train/foreach.cpp` (libtorch's multi-tensor `_foreach_*` ops, which tch does not bind).
fn compile_step_kernels(lib: &std::path::Path) {
    let sources = ["src/train/host_reads.cpp", "src/train/foreach.cpp"];
    for src in sources {
        println!("cargo:rerun-if-changed={src}");
    }
    let include = lib.join("../include");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .files(sources)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .warnings(false)
        .flag("-w")
        .compile("mplug_host_reads");
}

/// `src/train/dist/c10d_shim.cpp` against the headers of the libtorch we link. libtorch carries
/// gloo compiled in but not gloo's headers, which `ProcessGroupGloo.hpp` includes: they come from
/// Debian's `libgloo-dev` (or `GLOO_INCLUDE`); only their declarations are used, no gloo symbol
/// is linked from Debian's library.
fn compile_c10d_shim(lib: &std::path::Path) {
    let shim = "src/train/dist/c10d_shim.cpp";
    println!("cargo:rerun-if-changed={shim}");
    println!("cargo:rerun-if-env-changed=GLOO_INCLUDE");
    let include = lib.join("../include");
    let gloo = std::env::var("GLOO_INCLUDE").unwrap_or_else(|_| "/usr/include".into());
    if !std::path::Path::new(&gloo).join("gloo/context.h").exists() {
        panic!(
            "feature `dist` needs gloo's headers (apt-get install libgloo-dev, or GLOO_INCLUDE=DIR); \
             scripts/setup.sh installs them. Build without distributed training: \
             --no-default-features --features video"
        );
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .file(shim)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(&gloo)
        .define("USE_C10D_GLOO", None)
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        // torch's headers are not ours to warn about
        .warnings(false)
        .flag("-w");
    if let Some(cuda_includes) = nccl_includes(lib) {
        build
            .file("src/train/dist/c10d_nccl.cpp")
            .includes(cuda_includes)
            .define("USE_C10D_NCCL", None)
            .define("USE_CUDA", None)
            .define("MPLUG_NCCL", None);
        println!("cargo:rustc-cfg=mplug_nccl");
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
    println!("cargo:rerun-if-changed=src/train/dist/c10d_nccl.cpp");
    build.compile("mplug_c10d");
}

/// The headers `ProcessGroupNCCL.hpp` needs, when this libtorch is a CUDA one installed from the
/// PyPI wheels: the CUDA runtime's and NCCL's (their `nvidia-*` wheels), CCCL's `nv/target`
/// (`nvidia-cuda-cccl`, which scripts/setup.sh adds) and `crt/host_config.h` (shipped by triton,
/// a dependency of the CUDA torch wheel). `None` (Gloo only) when any is missing.
fn nccl_includes(lib: &std::path::Path) -> Option<Vec<std::path::PathBuf>> {
    if !lib.join("libtorch_cuda.so").exists() {
        return None;
    }
    let site = lib.join("../..");
    let dirs = [
        site.join("nvidia/cu13/include"),
        site.join("nvidia/nccl/include"),
        site.join("triton/backends/nvidia/include"),
    ];
    let needed = [
        dirs[0].join("cuda_runtime.h"),
        dirs[0].join("nv/target"),
        dirs[1].join("nccl.h"),
        dirs[2].join("crt/host_config.h"),
    ];
    if let Some(missing) = needed.iter().find(|p| !p.exists()) {
        println!(
            "cargo:warning=NCCL backend not built (no {}): distributed training uses Gloo",
            missing.display()
        );
        return None;
    }
    Some(dirs.to_vec())
}
