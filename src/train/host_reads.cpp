// Counts the ops that make the host wait for the device: reads of a tensor's value
// (`aten::_local_scalar_dense`: what `.item()`, tch's `double_value`/`int64_value` run) and the
// ops whose output size depends on the data (`nonzero`, `masked_select`, boolean indexing through
// `nonzero`, `unique`), which must copy a count back before they can allocate, and copies from a
// device to the host. A global
// RecordFunction callback, as libtorch's profiler observes ops; used by the tests of a sync-free
// step and by `train.profile`'s `host_reads_per_step` (issue 20).
#include <ATen/record_function.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace {
std::atomic<int64_t> reads{0};

constexpr const char* kSynchronising[] = {
    "aten::_local_scalar_dense", "aten::nonzero",     "aten::masked_select",
    "aten::_unique2",            "aten::unique_dim", "aten::unique_consecutive",
    "aten::is_nonzero",          "aten::equal",
};

// A device → host copy (`copy_(dst on the CPU, src on an accelerator)`) waits for the device
// too: what `.to(cpu)` and tch's `Vec::try_from` of a CUDA tensor run.
bool device_to_host(const at::RecordFunction& fn) {
  if (std::strcmp(fn.name(), "aten::copy_") != 0) return false;
  auto inputs = fn.inputs();
  if (inputs.size() < 2 || !inputs[0].isTensor() || !inputs[1].isTensor()) return false;
  return inputs[0].toTensor().is_cpu() && !inputs[1].toTensor().is_cpu();
}

bool synchronising(const at::RecordFunction& fn) {
  for (const char* s : kSynchronising) {
    if (std::strcmp(fn.name(), s) == 0) return true;
  }
  return device_to_host(fn);
}
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
              if (synchronising(fn)) {
                reads.fetch_add(1, std::memory_order_relaxed);
                // MPLUG_HOST_READS_TRACE=1 names each one (to find the code that waits)
                static const bool trace = std::getenv("MPLUG_HOST_READS_TRACE") != nullptr;
                if (trace) std::fprintf(stderr, "host read: %s\n", fn.name());
              }
              return nullptr;
            })
            .needsInputs(true)
            .scopes({at::RecordScope::FUNCTION}));
  }
  reads.store(0);
}

int64_t mplug_host_reads() { return reads.load(); }

}  // extern "C"
