// What tch 0.24 does not expose: TF32 and cuDNN-benchmark flags, autocast with a chosen dtype, and the
// channels-last memory format. Tensors are tch's `C_tensor*`, which are `at::Tensor*`. Every function
// catches C++ exceptions and returns non-zero, so no exception crosses into Rust.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

namespace {
at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
at::ScalarType autocast_dtype(int fp16) { return fp16 ? at::kHalf : at::kBFloat16; }
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
