// What tch 0.24 does not expose: TF32 and cuDNN-benchmark flags, autocast with a chosen dtype, the
// channels-last memory format, libtorch's fused Adam/AdamW kernels and CUDA graphs. Tensors are tch's
// `C_tensor*`, which are `at::Tensor*`. Every function catches C++ exceptions and returns non-zero, so no
// exception crosses into Rust; the newer ones keep the exception's text for medxfer_last_error.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

#include <string>
#include <vector>

namespace {
at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
at::ScalarType autocast_dtype(int fp16) { return fp16 ? at::kHalf : at::kBFloat16; }

thread_local std::string last_error;

int failed(const char* what) {
  last_error = what;
  return 1;
}

std::vector<at::Tensor> tensor_list(at::Tensor** ts, int n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; i++) out.push_back(*ts[i]);
  return out;
}
}  // namespace

extern "C" {

int medxfer_set_tf32(int on) {
  try {
    at::globalContext().setAllowTF32CuBLAS(on != 0);
    at::globalContext().setAllowTF32CuDNN(on != 0);
    return 0;
  } catch (...) {
    return 1;
  }
}

int medxfer_tf32() {
  try {
    return at::globalContext().allowTF32CuBLAS() && at::globalContext().allowTF32CuDNN() ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

int medxfer_set_cudnn_benchmark(int on) {
  try {
    at::globalContext().setBenchmarkCuDNN(on != 0);
    return 0;
  } catch (...) {
    return 1;
  }
}

int medxfer_cudnn_benchmark() { return at::globalContext().benchmarkCuDNN() ? 1 : 0; }

int medxfer_autocast_enter(int cuda, int fp16) {
  try {
    at::autocast::set_autocast_dtype(device_type(cuda), autocast_dtype(fp16));
    at::autocast::set_autocast_enabled(device_type(cuda), true);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return 1;
  }
}

int medxfer_autocast_exit(int cuda) {
  try {
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(device_type(cuda), false);
    return 0;
  } catch (...) {
    return 1;
  }
}

int medxfer_autocast_enabled(int cuda) { return at::autocast::is_autocast_enabled(device_type(cuda)) ? 1 : 0; }

// Re-lays a tensor's storage out channels-last in place (parameters keep their identity for the optimizer).
int medxfer_make_channels_last(at::Tensor* t) {
  try {
    if (t->dim() == 4) {
      t->set_data(t->contiguous(at::MemoryFormat::ChannelsLast));
    }
    return 0;
  } catch (...) {
    return 1;
  }
}

// A new channels-last tensor with t's values (for inputs), or null on error.
at::Tensor* medxfer_channels_last(at::Tensor* t) {
  try {
    return new at::Tensor(t->contiguous(at::MemoryFormat::ChannelsLast));
  } catch (...) {
    return nullptr;
  }
}

int medxfer_is_channels_last(at::Tensor* t) {
  try {
    return t->is_contiguous(at::MemoryFormat::ChannelsLast) ? 1 : 0;
  } catch (...) {
    return -1;
  }
}
}

extern "C" {

// The text of the last failure of a function below on this thread.
const char* medxfer_last_error() { return last_error.c_str(); }

// One Adam (decoupled = 0) or AdamW (decoupled = 1) update of n parameters by libtorch's fused kernel
// (torch.optim's fused=True; CPU and CUDA). `step` is the step count after this update (one float32
// tensor shared by every parameter, on their device); with `lr_tensor` (on their device) the learning
// rate is read from it at run time, which a CUDA graph needs, else `lr` is used.
int medxfer_fused_adam(at::Tensor** params, at::Tensor** grads, at::Tensor** exp_avgs, at::Tensor** exp_avg_sqs,
                       int n, at::Tensor* step, at::Tensor* lr_tensor, double lr, double beta1, double beta2,
                       double weight_decay, double eps, int decoupled) {
  try {
    auto p = tensor_list(params, n), g = tensor_list(grads, n), m = tensor_list(exp_avgs, n),
         v = tensor_list(exp_avg_sqs, n);
    std::vector<at::Tensor> steps(n, *step), none;
    if (lr_tensor != nullptr && decoupled) {
      at::_fused_adamw_(p, g, m, v, none, steps, *lr_tensor, beta1, beta2, weight_decay, eps, false, false);
    } else if (lr_tensor != nullptr) {
      at::_fused_adam_(p, g, m, v, none, steps, *lr_tensor, beta1, beta2, weight_decay, eps, false, false);
    } else if (decoupled) {
      at::_fused_adamw_(p, g, m, v, none, steps, lr, beta1, beta2, weight_decay, eps, false, false);
    } else {
      at::_fused_adam_(p, g, m, v, none, steps, lr, beta1, beta2, weight_decay, eps, false, false);
    }
    return 0;
  } catch (const std::exception& e) {
    return failed(e.what());
  }
}
}
