// Capture once, replay many: a fixed sequence of ops recorded for cheap re-execution (a CUDA
// Graph on a GPU: one launch instead of hundreds). Used for one LLM decode step, whose inputs
// (token id, position) live in device tensors that the caller updates between replays.
#pragma once
#include <functional>
#include <memory>

namespace ovis::ops {

struct Context;

class OpGraph {
 public:
  virtual ~OpGraph() = default;
  // Runs the recorded ops again (asynchronously on a GPU; read results at a sync point).
  virtual void replay() = 0;
};

// Records `body`: ops on c's device only, with no host synchronisation inside (no copies to
// or from the host, no host reads of device data). On a GPU the body runs once now, recording
// kernels without executing them; the tensors it allocates come from a pool private to the
// graph, so their addresses stay reserved for every replay, and tensors it assigns to outside
// variables (its outputs) are updated in place by each replay. On the CPU the body simply runs
// at every replay. So: read outputs only after replay(), and keep host-side state changes out
// of the body.
std::unique_ptr<OpGraph> capture(const Context& c, std::function<void()> body);

}  // namespace ovis::ops
