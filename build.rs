//! Links libtorch so that binaries and tests run without LD_LIBRARY_PATH, and keeps CUDA.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
    }
}
