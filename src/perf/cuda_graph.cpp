// CUDA graphs (at::cuda::CUDAGraph) without linking libtorch_cuda.so: the binary must start on machines
// where that library cannot load (no GPU, a minimal torch install), so its symbols are looked up with dlsym
// once torch_runtime has opened it (RTLD_GLOBAL). The headers still give the types and their layout; they
// need the CUDA runtime's headers, which pip's torch ships (nvidia-cuda-runtime: nvidia/cu13/include) and
// build.rs finds. Built without them (MEDXFER_CUDA_GRAPH undefined), every call reports that.
#include <cstring>
#include <string>

namespace {
thread_local std::string graph_error;

int graph_failed(const std::string& what) {
  graph_error = what;
  return 1;
}

void copy_reason(const std::string& reason, char* out, size_t len) {
  if (len == 0) return;
  std::strncpy(out, reason.c_str(), len - 1);
  out[len - 1] = '\0';
}
}  // namespace

#ifdef MEDXFER_CUDA_GRAPH
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>
#include <dlfcn.h>

#include <optional>

namespace {
using at::cuda::CUDAGraph;
using c10::cuda::CUDAStream;

// Non-virtual member functions take `this` first (Itanium C++ ABI); names checked against libtorch 2.11.
struct Api {
  void (*construct)(CUDAGraph*, bool);
  void (*destroy)(CUDAGraph*);
  void (*capture_begin)(CUDAGraph*, at::cuda::MempoolId_t, cudaStreamCaptureMode);
  void (*capture_end)(CUDAGraph*);
  void (*replay)(CUDAGraph*);
  CUDAStream (*stream_from_pool)(bool, c10::DeviceIndex);
  CUDAStream (*current_stream)(c10::DeviceIndex);
  void (*set_current_stream)(CUDAStream);
  void (*device_synchronize)();
};

template <typename F>
bool find(F& slot, const char* name, std::string& missing) {
  slot = reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
  if (slot == nullptr) missing = name;
  return slot != nullptr;
}

// The API, or null with `missing` naming the first symbol not found.
const Api* api(std::string& missing) {
  static Api a;
  static bool ok = false;
  if (ok) return &a;
  ok = find(a.construct, "_ZN2at4cuda9CUDAGraphC1Eb", missing) && find(a.destroy, "_ZN2at4cuda9CUDAGraphD1Ev", missing) &&
       find(a.capture_begin, "_ZN2at4cuda9CUDAGraph13capture_beginESt4pairIyyE21cudaStreamCaptureMode", missing) &&
       find(a.capture_end, "_ZN2at4cuda9CUDAGraph11capture_endEv", missing) &&
       find(a.replay, "_ZN2at4cuda9CUDAGraph6replayEv", missing) &&
       find(a.stream_from_pool, "_ZN3c104cuda17getStreamFromPoolEba", missing) &&
       find(a.current_stream, "_ZN3c104cuda20getCurrentCUDAStreamEa", missing) &&
       find(a.set_current_stream, "_ZN3c104cuda20setCurrentCUDAStreamENS0_10CUDAStreamE", missing) &&
       find(a.device_synchronize, "_ZN3c104cuda18device_synchronizeEv", missing);
  return ok ? &a : nullptr;
}

struct Graph {
  alignas(CUDAGraph) unsigned char storage[sizeof(CUDAGraph)];
  CUDAGraph* graph = nullptr;
  c10::DeviceIndex device = 0;
  std::optional<CUDAStream> side;
  std::optional<CUDAStream> previous;
};
}  // namespace

extern "C" {

int medxfer_graph_supported(char* reason, size_t len) {
  std::string missing;
  if (api(missing) == nullptr) {
    copy_reason("libtorch_cuda.so is not loaded or lacks " + missing + " (CUDA graphs need CUDA)", reason, len);
    return 0;
  }
  return 1;
}

void* medxfer_graph_new(int device) {
  std::string missing;
  const Api* a = api(missing);
  if (a == nullptr) {
    graph_failed("libtorch_cuda.so lacks " + missing);
    return nullptr;
  }
  auto* g = new Graph();
  try {
    g->device = static_cast<c10::DeviceIndex>(device);
    a->construct(reinterpret_cast<CUDAGraph*>(g->storage), false);
    g->graph = reinterpret_cast<CUDAGraph*>(g->storage);
    g->side = a->stream_from_pool(false, g->device);
    return g;
  } catch (const std::exception& e) {
    graph_failed(e.what());
    if (g->graph != nullptr) a->destroy(g->graph);
    delete g;
    return nullptr;
  }
}

// Everything queued on this thread's CUDA stream from here to medxfer_graph_end is recorded, not run
// (on a side stream, as libtorch requires; work already queued is waited for first).
int medxfer_graph_begin(void* handle) {
  std::string missing;
  const Api* a = api(missing);
  auto* g = static_cast<Graph*>(handle);
  try {
    a->device_synchronize();
    g->previous = a->current_stream(g->device);
    a->set_current_stream(*g->side);
    a->capture_begin(g->graph, at::cuda::MempoolId_t{0, 0}, cudaStreamCaptureModeGlobal);
    return 0;
  } catch (const std::exception& e) {
    if (g->previous) a->set_current_stream(*g->previous);
    return graph_failed(e.what());
  }
}

int medxfer_graph_end(void* handle) {
  std::string missing;
  const Api* a = api(missing);
  auto* g = static_cast<Graph*>(handle);
  int code = 0;
  try {
    a->capture_end(g->graph);
  } catch (const std::exception& e) {
    code = graph_failed(e.what());
  }
  try {
    if (g->previous) a->set_current_stream(*g->previous);
    a->device_synchronize();
  } catch (const std::exception& e) {
    code = graph_failed(e.what());
  }
  return code;
}

int medxfer_graph_replay(void* handle) {
  std::string missing;
  const Api* a = api(missing);
  try {
    a->replay(static_cast<Graph*>(handle)->graph);
    return 0;
  } catch (const std::exception& e) {
    return graph_failed(e.what());
  }
}

void medxfer_graph_free(void* handle) {
  std::string missing;
  const Api* a = api(missing);
  auto* g = static_cast<Graph*>(handle);
  try {
    a->destroy(g->graph);
  } catch (...) {
  }
  delete g;
}
}

#else

extern "C" {
int medxfer_graph_supported(char* reason, size_t len) {
  copy_reason("medxfer was built without the CUDA runtime headers (cuda_runtime_api.h), so CUDA graphs are off",
              reason, len);
  return 0;
}
void* medxfer_graph_new(int) {
  graph_failed("medxfer was built without CUDA graph support");
  return nullptr;
}
int medxfer_graph_begin(void*) { return graph_failed("medxfer was built without CUDA graph support"); }
int medxfer_graph_end(void*) { return graph_failed("medxfer was built without CUDA graph support"); }
int medxfer_graph_replay(void*) { return graph_failed("medxfer was built without CUDA graph support"); }
void medxfer_graph_free(void*) {}
}

#endif

extern "C" const char* medxfer_graph_last_error() { return graph_error.c_str(); }
