// The server's job scheduler over a fake model: FIFO order, the bounded queue, chats served
// between denoising steps, cancellation of waiting and running jobs, and shutdown.
#include <gtest/gtest.h>

#include <future>

#include "serve/model_jobs.hpp"
#include "serve/scheduler.hpp"
#include "support/fake_pipeline.hpp"

using namespace ovis;
using namespace ovis::serve;
using namespace std::chrono_literals;

namespace {

// Waits for the job's terminal event (fails the test after `limit`).
JobEvent wait_terminal(Job& job, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (auto e = job.next(20ms); e && e->terminal()) return *e;
  }
  ADD_FAILURE() << "job did not finish";
  return {};
}

std::shared_ptr<Job> chat_job(int tokens) {
  ChatRequest r;
  r.messages = {{ChatRole::User, {ChatPart{"hi", {}}}}};
  r.max_new_tokens = tokens;
  return make_chat_job(r);
}

std::shared_ptr<Job> image_job(int steps) {
  ImageJobRequest r;
  r.prompt = "p";
  r.width = r.height = 16;
  r.steps = steps;
  r.seed = 1;
  return make_image_job(r, "/m/fake");
}

// A job that holds the model thread until released.
struct Gate {
  std::promise<void> release;
  std::shared_future<void> opened = release.get_future().share();
  std::promise<void> entered;
  std::shared_ptr<Job> job() {
    auto f = opened;
    auto in = std::make_shared<std::promise<void>>(std::move(entered));
    return std::make_shared<Job>(Job::Kind::Image, [f, in](JobContext&, Job&) {
      in->set_value();
      f.wait();
    });
  }
};

TEST(Scheduler, RunsJobsInOrderAndRefusesBeyondTheQueueLength) {
  test::FakePipeline pipe;
  Scheduler s(pipe, 3);
  Gate gate;
  auto entered = gate.entered.get_future();
  auto blocker = gate.job();
  ASSERT_EQ(s.submit(blocker), Scheduler::Admission::Accepted);
  entered.wait();  // the model thread is busy; everything else waits in the queue
  std::vector<std::shared_ptr<Job>> jobs = {image_job(1), image_job(1), image_job(1)};
  for (auto& j : jobs) EXPECT_EQ(s.submit(j), Scheduler::Admission::Accepted);
  EXPECT_EQ(s.submit(image_job(1)), Scheduler::Admission::QueueFull);
  EXPECT_EQ(s.stats().queued, 3u);
  EXPECT_GE(s.retry_after_s(), 1);
  gate.release.set_value();
  for (auto& j : jobs) EXPECT_EQ(wait_terminal(*j).type, JobEvent::Type::Finished);
  const std::vector<std::string> ev = pipe.events();
  EXPECT_EQ(std::count(ev.begin(), ev.end(), "image start"), 3);
  EXPECT_EQ(s.submit(image_job(1)), Scheduler::Admission::Accepted);  // room again
}

TEST(Scheduler, ChatIsServedBetweenTheStepsOfARunningImage) {
  test::FakePipeline pipe;
  pipe.step_delay = 30ms;
  Scheduler s(pipe, 4);
  auto img = image_job(40);
  ASSERT_EQ(s.submit(img), Scheduler::Admission::Accepted);
  // Wait until the image is denoising, then ask.
  while (true) {
    auto e = img->next(5s);
    ASSERT_TRUE(e);
    if (e->type == JobEvent::Type::Progress) break;
  }
  auto chat = chat_job(3);
  ASSERT_EQ(s.submit(chat), Scheduler::Admission::Accepted);
  const JobEvent done = wait_terminal(*chat, 5s);
  EXPECT_EQ(done.type, JobEvent::Type::Finished);
  EXPECT_EQ(done.answer.text, "ttt");
  EXPECT_FALSE(img->finished());  // answered long before the image's 40 steps
  EXPECT_EQ(wait_terminal(*img).type, JobEvent::Type::Finished);
  const std::vector<std::string> ev = pipe.events();
  const auto chat_at = std::find(ev.begin(), ev.end(), "chat start");
  ASSERT_NE(chat_at, ev.end());
  EXPECT_EQ(chat_at[-1].rfind("image step ", 0), 0u);  // right after a step
  EXPECT_EQ(chat_at[2].rfind("image step ", 0), 0u);   // and the image went on
}

TEST(Scheduler, CancellingFreesTheQueueAndStopsTheRunningJobAtTheNextStep) {
  test::FakePipeline pipe;
  pipe.step_delay = 20ms;
  Scheduler s(pipe, 1);
  auto running = image_job(500);
  ASSERT_EQ(s.submit(running), Scheduler::Admission::Accepted);
  while (s.stats().queued != 0 || !s.stats().busy) std::this_thread::sleep_for(5ms);
  auto waiting = chat_job(1);
  ASSERT_EQ(s.submit(waiting), Scheduler::Admission::Accepted);
  EXPECT_EQ(s.submit(chat_job(1)), Scheduler::Admission::QueueFull);
  waiting->cancel(CancelReason::ClientGone);
  EXPECT_EQ(s.submit(chat_job(1)), Scheduler::Admission::Accepted);  // the slot was freed
  EXPECT_EQ(wait_terminal(*waiting).status, 499);

  const auto t0 = std::chrono::steady_clock::now();
  running->cancel(CancelReason::ClientGone);
  const JobEvent e = wait_terminal(*running);
  EXPECT_EQ(e.type, JobEvent::Type::Failed);
  EXPECT_EQ(e.status, 499);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST(Scheduler, ShutdownFailsWaitingJobsAndCancelsTheRunningOne) {
  test::FakePipeline pipe;
  pipe.step_delay = 20ms;
  auto s = std::make_unique<Scheduler>(pipe, 4);
  auto running = image_job(1000);
  ASSERT_EQ(s->submit(running), Scheduler::Admission::Accepted);
  while (!s->stats().busy) std::this_thread::sleep_for(5ms);
  auto waiting = image_job(1);
  ASSERT_EQ(s->submit(waiting), Scheduler::Admission::Accepted);
  s->shutdown();
  EXPECT_EQ(wait_terminal(*waiting).status, 503);
  EXPECT_EQ(wait_terminal(*running).status, 503);
  EXPECT_EQ(s->submit(chat_job(1)), Scheduler::Admission::ShuttingDown);
  s.reset();  // idempotent
}

TEST(Scheduler, JobErrorsBecomeFailedEvents) {
  test::FakePipeline pipe;
  Scheduler s(pipe, 2);
  auto bad = std::make_shared<Job>(Job::Kind::Chat,
                                   [](JobContext&, Job&) { throw Error("prompt: too long"); });
  auto worse = std::make_shared<Job>(Job::Kind::Chat,
                                     [](JobContext&, Job&) { throw std::runtime_error("boom"); });
  s.submit(bad);
  s.submit(worse);
  EXPECT_EQ(wait_terminal(*bad).status, 400);
  const JobEvent e = wait_terminal(*worse);
  EXPECT_EQ(e.status, 500);
  EXPECT_NE(e.error_body.find("boom"), std::string::npos);
}

TEST(ModelJobs, ImagesCarryTheirParametersAndSeeds) {
  test::FakePipeline pipe;
  Scheduler s(pipe, 2);
  ImageJobRequest r;
  r.prompt = "a cat";
  r.width = 32;
  r.height = 16;
  r.steps = 2;
  r.n = 2;
  r.seed = 41;
  auto job = make_image_job(r, "Ovis-U1-3B");
  s.submit(job);
  std::vector<ProducedImage> images;
  int progress = 0;
  while (true) {
    auto e = job->next(5s);
    ASSERT_TRUE(e);
    if (e->type == JobEvent::Type::Progress) ++progress;
    if (e->type == JobEvent::Type::Image) images.push_back(e->image);
    if (e->terminal()) break;
  }
  EXPECT_EQ(progress, 4);
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].seed, 41u);
  EXPECT_EQ(images[1].seed, 42u);
  EXPECT_EQ(images[1].parameters,
            "a cat\nSteps: 2, Sampler: Euler (flow matching), CFG scale: 5, Seed: 42, Size: 32x16, "
            "Model: Ovis-U1-3B, Version: ovis.cpp 0.1.0");
  const Image decoded = decode_image(images[0].bytes.data(), images[0].bytes.size(), "png");
  EXPECT_EQ(decoded.width, 32);
}

}  // namespace
