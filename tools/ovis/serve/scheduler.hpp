// One resident model, one model thread, one FIFO queue of bounded length. Chat jobs that wait
// while an image job runs are served between two of its denoising steps (on the model thread,
// from the image job's progress callback), so a short answer never waits for a whole image.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "ovis/ovis.hpp"
#include "serve/job.hpp"

namespace ovis::serve {

class Scheduler {
 public:
  Scheduler(Pipeline& pipeline, size_t max_queue);
  ~Scheduler();  // shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Admission { Accepted, QueueFull, ShuttingDown };
  // Queues the job unless max_queue jobs are already waiting or the server is stopping.
  Admission submit(const std::shared_ptr<Job>& job);

  // Stops admitting, fails every waiting job with 503, cancels the running ones and joins the
  // model thread. Idempotent.
  void shutdown();

  // Seconds a refused client should wait: recent job durations times the queue length.
  int retry_after_s() const;

  struct Stats {
    size_t queued = 0;
    bool busy = false;
    uint64_t completed = 0;
  };
  Stats stats() const;

 private:
  void model_thread();
  void run_job(const std::shared_ptr<Job>& job);
  // Runs the chat jobs waiting right now (FIFO among themselves), from inside an image job.
  void serve_waiting_chats();
  void drop_cancelled_locked();

  Pipeline& pipeline_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::shared_ptr<Job>> running_;  // outermost first; a chat may run inside an image
  bool stopping_ = false;
  uint64_t completed_ = 0;
  double mean_job_s_ = 0;  // exponential moving average
  std::thread thread_;
};

}  // namespace ovis::serve
