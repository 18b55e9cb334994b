#include "serve/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "serve/api_error.hpp"

namespace ovis::serve {

Scheduler::Scheduler(Pipeline& pipeline, size_t max_queue)
    : pipeline_(pipeline), max_queue_(max_queue), thread_([this] { model_thread(); }) {}

Scheduler::~Scheduler() {
  shutdown();
}

void Scheduler::drop_cancelled_locked() {
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->cancelled()) {
      (*it)->fail(499, error_body(499, "the client closed the connection while the job waited"));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

Scheduler::Admission Scheduler::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Admission::ShuttingDown;
    drop_cancelled_locked();
    if (queue_.size() >= max_queue_) return Admission::QueueFull;
    queue_.push_back(job);
  }
  cv_.notify_all();
  return Admission::Accepted;
}

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      for (auto& job : queue_) {
        job->cancel(CancelReason::Shutdown);
        job->fail(503, error_body(503, "the server is shutting down"));
      }
      queue_.clear();
      for (auto& job : running_) job->cancel(CancelReason::Shutdown);
    }
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

int Scheduler::retry_after_s() const {
  std::lock_guard<std::mutex> lock(mu_);
  const double wait = std::max(1.0, mean_job_s_) * double(queue_.size() + 1);
  return int(std::clamp(std::ceil(wait), 1.0, 3600.0));
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {queue_.size(), !running_.empty(), completed_};
}

void Scheduler::model_thread() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = queue_.front();
      queue_.pop_front();
    }
    run_job(job);
  }
}

void Scheduler::run_job(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.push_back(job);
    if (stopping_) job->cancel(CancelReason::Shutdown);
  }
  const auto start = std::chrono::steady_clock::now();
  JobContext ctx{pipeline_, nullptr};
  if (job->kind() == Job::Kind::Image) ctx.yield = [this] { serve_waiting_chats(); };
  job->run(ctx);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(std::find(running_.begin(), running_.end(), job));
  ++completed_;
  mean_job_s_ = completed_ == 1 ? seconds : 0.8 * mean_job_s_ + 0.2 * seconds;
}

void Scheduler::serve_waiting_chats() {
  std::vector<std::shared_ptr<Job>> chats;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if ((*it)->kind() == Job::Kind::Chat) {
        chats.push_back(*it);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& chat : chats) run_job(chat);
}

}  // namespace ovis::serve
