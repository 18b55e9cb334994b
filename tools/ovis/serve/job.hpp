// A unit of model work and the events it produces, handed from the HTTP thread that accepted
// the request to the model thread and back.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "ovis/ovis.hpp"
#include "serve/image_wire.hpp"

namespace ovis::serve {

struct JobEvent {
  enum class Type {
    Text,      // chat: the next piece of the answer
    Progress,  // image: a stage/step of image `index`
    Image,     // image: image `index` is done
    Finished,  // the job is done (chat: `answer` holds the result)
    Failed,    // the job ended with `status`/`error_body` (cancelled jobs included)
  };
  Type type = Type::Text;
  std::string text;
  ProgressEvent progress;
  int index = 0;
  ProducedImage image;
  AskResult answer;
  int status = 0;
  std::string error_body;

  bool terminal() const { return type == Type::Finished || type == Type::Failed; }
};

// Why a job was cancelled: its client went away, or the server is stopping (503).
enum class CancelReason { None, ClientGone, Shutdown };

class Job;

// What a running job may use: the model, and (for image jobs) a way to let waiting chat jobs
// run between two denoising steps.
struct JobContext {
  Pipeline& pipeline;
  std::function<void()> yield;
};

class Job {
 public:
  enum class Kind { Chat, Image };
  using Work = std::function<void(JobContext&, Job&)>;

  Job(Kind kind, Work work) : kind_(kind), work_(std::move(work)) {}
  Kind kind() const { return kind_; }

  // Any thread. The running task stops at its next step or token.
  void cancel(CancelReason why);
  bool cancelled() const { return reason_.load() != CancelReason::None; }
  CancelReason cancel_reason() const { return reason_.load(); }

  // Model thread: runs the work; every outcome ends in exactly one terminal event.
  void run(JobContext& ctx);
  void emit(JobEvent e);
  void fail(int status, std::string body);

  // Consumer (HTTP thread): the next event, or nullopt after `timeout` without one.
  std::optional<JobEvent> next(std::chrono::milliseconds timeout);
  bool finished() const;

 private:
  Kind kind_;
  Work work_;
  std::atomic<CancelReason> reason_{CancelReason::None};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobEvent> events_;
  bool terminal_ = false;
};

}  // namespace ovis::serve
