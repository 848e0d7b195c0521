// FlashMLA built for sm_90a only (scripts/build_flashmla.sh, FLASHMLA_SM100=stub): these stand in
// for the ten sm100 kernel entry points that FlashMLA's api.cpp links against, so that the sm100
// sources (host code and empty kernels for sm_90a; the dense fmha ones are the slowest objects of
// the build) need not be compiled. Each throws if called: FlashMLA's dispatch calls them only on
// an sm100 device. Copied to FlashMLA/csrc/sm100_stubs.cu by the build.
#include <stdexcept>

#include "sm100/decode/head64/kernel.h"
#include "sm100/prefill/dense/interface.h"
#include "sm100/prefill/sparse/fwd/head128/phase1.h"
#include "sm100/prefill/sparse/fwd/head64/phase1.h"
#include "sm100/prefill/sparse/fwd_for_small_topk/head128/phase1.h"

[[noreturn]] static void no_sm100() {
    throw std::runtime_error("this FlashMLA build has no sm100 kernels (built for sm_90a only)");
}

namespace sm100::decode::head64 {
template <> void run_flash_splitkv_mla_fp8_sparse_kernel<ModelType::V32>(const SparseAttnDecodeParams &) { no_sm100(); }
template <> void run_flash_splitkv_mla_fp8_sparse_kernel<ModelType::MODEL1>(const SparseAttnDecodeParams &) { no_sm100(); }
}  // namespace sm100::decode::head64

namespace sm100::fwd::head64 {
template <> void run_fwd_phase1_kernel<512>(const SparseAttnFwdParams &) { no_sm100(); }
template <> void run_fwd_phase1_kernel<576>(const SparseAttnFwdParams &) { no_sm100(); }
}  // namespace sm100::fwd::head64

namespace sm100::fwd::head128 {
template <> void run_fwd_phase1_kernel<512>(const SparseAttnFwdParams &) { no_sm100(); }
template <> void run_fwd_phase1_kernel<576>(const SparseAttnFwdParams &) { no_sm100(); }
}  // namespace sm100::fwd::head128

namespace sm100::fwd_for_small_topk::head128 {
template <> void run_fwd_for_small_topk_phase1_kernel<SparseAttnFwdMode::DecodeWithSplitKV, 512>(
    const SparseFwdArgT<SparseAttnFwdMode::DecodeWithSplitKV> &) { no_sm100(); }
template <> void run_fwd_for_small_topk_phase1_kernel<SparseAttnFwdMode::Prefill, 512>(
    const SparseFwdArgT<SparseAttnFwdMode::Prefill> &) { no_sm100(); }
}  // namespace sm100::fwd_for_small_topk::head128

void FMHACutlassSM100FwdRun(at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                            at::Tensor, int, float, int, int, bool) {
    no_sm100();
}

void FMHACutlassSM100BwdRun(at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                            at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, int, float, int, int, bool) {
    no_sm100();
}
