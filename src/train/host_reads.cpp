// Counts reads of a tensor's value by the host (`aten::_local_scalar_dense`: what `.item()`,
// tch's `double_value`/`int64_value` run; on a GPU each one waits for the device). A global
// RecordFunction callback, as libtorch's profiler observes ops; used by the tests of a sync-free
// optimiser step (issue 20).
#include <ATen/record_function.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

namespace {
std::atomic<int64_t> reads{0};
std::atomic<bool> installed{false};
}  // namespace

extern "C" {

// Installs the callback (once) and resets the count.
void mplug_host_reads_reset() {
  bool expected = false;
  if (installed.compare_exchange_strong(expected, true)) {
    at::addGlobalCallback(
        at::RecordFunctionCallback(
            [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
              if (std::strcmp(fn.name(), "aten::_local_scalar_dense") == 0) {
                reads.fetch_add(1, std::memory_order_relaxed);
              }
              return nullptr;
            })
            .scopes({at::RecordScope::FUNCTION}));
  }
  reads.store(0);
}

int64_t mplug_host_reads() { return reads.load(); }

}  // extern "C"
