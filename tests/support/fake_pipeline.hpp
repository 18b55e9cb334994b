// A Pipeline stand-in for server tests that need no model: answers and images appear after
// configurable delays, honour should_cancel at every token/step, and every call is logged so that
// tests can see how jobs interleave.
#pragma once
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ovis/ovis.hpp"

namespace ovis::test {

class FakePipeline : public Pipeline {
 public:
  std::chrono::milliseconds token_delay{0}, step_delay{0};

  AskResult ask(const AskRequest& r) override {
    ChatRequest c;
    c.messages = {{ChatRole::User, {ChatPart{r.prompt, {}}}}};
    c.max_new_tokens = r.max_new_tokens;
    c.on_text = r.on_text;
    c.should_cancel = r.should_cancel;
    return chat(c);
  }
  AskResult chat(const ChatRequest& r) override {
    record("chat start");
    AskResult res;
    res.prompt_tokens = 3;
    res.finish_reason = FinishReason::Length;
    for (int i = 0; i < r.max_new_tokens; ++i) {
      if (r.should_cancel && r.should_cancel()) throw Cancelled();
      std::this_thread::sleep_for(token_delay);
      res.tokens.push_back(i);
      res.text += "t";
      if (r.on_text && !r.on_text("t")) break;
    }
    record("chat end");
    return res;
  }
  ImageResult generate(const GenerateRequest& r) override {
    return image(r.steps, r.width, r.height, r.on_progress, r.should_cancel);
  }
  ImageResult edit(const EditRequest& r) override {
    return image(r.steps, r.input.width, r.input.height, r.on_progress, r.should_cancel);
  }
  const std::string& model_dir() const override { return dir_; }
  std::string device_name() const override { return "cpu"; }
  Precision precision() const override { return Precision::F32; }
  int threads() const override { return 1; }
  MemoryStats memory() const override { return {}; }

  std::vector<std::string> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::atomic<int> running{0};  // tasks in progress (nested ones counted)

 private:
  ImageResult image(int steps, int w, int h, const ProgressFn& progress, const CancelFn& cancel) {
    ++running;
    struct Done {
      std::atomic<int>& n;
      ~Done() { --n; }
    } done{running};
    record("image start");
    for (int s = 1; s <= steps; ++s) {
      std::this_thread::sleep_for(step_delay);
      record("image step " + std::to_string(s));
      if (progress) progress(ProgressEvent{"denoise", s, steps, 0.01 * s});
      if (cancel && cancel()) throw Cancelled();
    }
    record("image end");
    ImageResult res;
    res.image = Image::filled(w, h, 40, 80, 120);
    res.width = w;
    res.height = h;
    return res;
  }
  void record(std::string e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  std::string dir_ = "/models/fake-ovis";
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

}  // namespace ovis::test
