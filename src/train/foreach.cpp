// libtorch's multi-tensor ops (`torch._foreach_*`), which tch does not bind: on a GPU one
// `_foreach_` call updates hundreds of tensors in a few fused launches instead of one kernel per
// tensor (issue 20). On the CPU they loop over the tensors with the per-tensor kernels, so the
// numbers are the per-tensor ones.
#include <ATen/ATen.h>

#include <cstddef>
#include <vector>

namespace {
std::vector<at::Tensor> gather(at::Tensor** ts, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(*ts[i]);
  return out;
}
}  // namespace

extern "C" {

// ALBEF's momentum update of every pair, as its two products and a sum:
// ema[i] = ema[i] * m + src[i] * (1 - m). No autograd (the caller holds no_grad).
void mplug_foreach_ema(at::Tensor** ema, at::Tensor** src, size_t n, double m) {
  auto e = gather(ema, n);
  auto s = gather(src, n);
  at::_foreach_mul_(e, m);
  auto scaled = at::_foreach_mul(s, 1.0 - m);
  at::_foreach_add_(e, scaled);
}

}  // extern "C"
