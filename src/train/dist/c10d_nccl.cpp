// ProcessGroupNCCL for c10d_shim.cpp: a separate file because its header needs the CUDA (and CCCL)
// headers, present only beside a CUDA libtorch (build.rs compiles it then, with MPLUG_NCCL).
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <chrono>

c10::intrusive_ptr<c10d::Backend> mplug_make_nccl(const c10::intrusive_ptr<c10d::Store>& store,
                                                  int rank, int world,
                                                  std::chrono::milliseconds timeout) {
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
}
