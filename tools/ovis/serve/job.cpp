#include "serve/job.hpp"

#include "serve/api_error.hpp"

namespace ovis::serve {

void Job::cancel(CancelReason why) {
  CancelReason none = CancelReason::None;
  reason_.compare_exchange_strong(none, why);
}

void Job::emit(JobEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (terminal_) return;  // one terminal event, nothing after it
    terminal_ = e.terminal();
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

void Job::fail(int status, std::string body) {
  JobEvent e;
  e.type = JobEvent::Type::Failed;
  e.status = status;
  e.error_body = std::move(body);
  emit(std::move(e));
}

void Job::run(JobContext& ctx) {
  try {
    if (cancelled()) throw Cancelled();
    work_(ctx, *this);
    if (!finished()) {
      JobEvent done;
      done.type = JobEvent::Type::Finished;
      emit(std::move(done));
    }
  } catch (const Cancelled&) {
    if (cancel_reason() == CancelReason::Shutdown)
      fail(503, error_body(503, "the server is shutting down; the job was cancelled"));
    else
      fail(499, error_body(499, "the client closed the connection; the job was cancelled"));
  } catch (const ApiError& e) {
    fail(e.status(), e.body());
  } catch (const Error& e) {
    fail(400, invalid_request("", e.what()).body());
  } catch (const std::bad_alloc&) {
    fail(503, error_body(503, "out of memory while running the job"));
  } catch (const std::exception& e) {
    fail(500, error_body(500, std::string("internal error: ") + e.what()));
  }
}

std::optional<JobEvent> Job::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
  JobEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

bool Job::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return terminal_;
}

}  // namespace ovis::serve
