// A C ABI over libtorch's c10d (TCPStore rendezvous + ProcessGroupGloo, or ProcessGroupNCCL from
// c10d_nccl.cpp when built with MPLUG_NCCL), for `train::dist::c10d`.
//
// Why C++: c10d is a C++ API (no C entry points), and tch exposes tensors as `at::Tensor*`. This
// file only forwards: every collective is libtorch's own implementation. Errors (c10::Error,
// gloo's exceptions) never cross the boundary: they come back as a malloc'd message.
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {
char* copy_message(const char* what) {
  size_t n = std::strlen(what);
  char* out = static_cast<char*>(std::malloc(n + 1));
  if (out != nullptr) std::memcpy(out, what, n + 1);
  return out;
}

template <typename F>
int guarded(char** err, F&& f) {
  try {
    f();
    return 0;
  } catch (const c10::Error& e) {
    *err = copy_message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *err = copy_message(e.what());
  } catch (...) {
    *err = copy_message("unknown C++ exception");
  }
  return 1;
}
}  // namespace

#ifdef MPLUG_NCCL
// c10d_nccl.cpp (needs the CUDA headers; compiled only against a CUDA libtorch)
c10::intrusive_ptr<c10d::Backend> mplug_make_nccl(const c10::intrusive_ptr<c10d::Store>& store,
                                                  int rank, int world,
                                                  std::chrono::milliseconds timeout);
#endif

struct mplug_group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

extern "C" {

// Rendezvous at host:port (rank 0 serves the store unless `store_is_external`, as under torchrun's
// agent store), then a Gloo (`nccl` 0) or NCCL group. `prefix` namespaces the keys (restarts).
mplug_group* mplug_group_new(const char* host, uint16_t port, int rank, int world,
                             int store_is_external, const char* prefix, int64_t timeout_ms,
                             const char* iface_host, int nccl, char** err) {
  mplug_group* out = nullptr;
  guarded(err, [&] {
    c10d::TCPStoreOptions o;
    o.port = port;
    o.isServer = rank == 0 && store_is_external == 0;
    o.numWorkers = world;
    o.waitWorkers = store_is_external == 0;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    if (nccl != 0) {
#ifdef MPLUG_NCCL
      out = new mplug_group{store,
                            mplug_make_nccl(store, rank, world, std::chrono::milliseconds(timeout_ms))};
      return;
#else
      throw std::runtime_error("this mplug was built without NCCL (against a CPU-only libtorch)");
#endif
    }
    auto opts = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
    // Gloo's transport binds to: GLOO_SOCKET_IFNAME's interface (as torch), else `iface_host`
    // (loopback jobs), else torch's default (this host's name as it resolves).
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr && ifname[0] != '\0') {
      opts->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForInterface(std::string(ifname)));
    } else if (iface_host[0] != '\0') {
      opts->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForHostname(std::string(iface_host)));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
    out = new mplug_group{store, pg};
  });
  return out;
}

void mplug_group_free(mplug_group* g) { delete g; }

void mplug_free_message(char* m) { std::free(m); }

// Sum over ranks, in place.
int mplug_all_reduce_sum(mplug_group* g, at::Tensor* t, char** err) {
  return guarded(err, [&] {
    std::vector<at::Tensor> ts{*t};
    g->backend->allreduce(ts)->wait();
  });
}

// Every rank's `input` concatenated along dim 0 in rank order, into a new tensor.
int mplug_all_gather(mplug_group* g, at::Tensor* input, at::Tensor** out, char** err) {
  return guarded(err, [&] {
    int world = g->backend->getSize();
    at::Tensor in = input->contiguous();
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < world; ++r) outs[0].push_back(at::empty_like(in));
    std::vector<at::Tensor> ins{in};
    g->backend->allgather(outs, ins)->wait();
    *out = new at::Tensor(at::cat(outs[0], 0));
  });
}

// `root`'s tensor to every rank, in place.
int mplug_broadcast(mplug_group* g, at::Tensor* t, int root, char** err) {
  return guarded(err, [&] {
    std::vector<at::Tensor> ts{*t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    g->backend->broadcast(ts, o)->wait();
  });
}

int mplug_barrier(mplug_group* g, char** err) {
  return guarded(err, [&] { g->backend->barrier()->wait(); });
}

}  // extern "C"
