#include "serve/model_jobs.hpp"

namespace ovis::serve {

std::shared_ptr<Job> make_chat_job(ChatRequest request) {
  auto shared = std::make_shared<ChatRequest>(std::move(request));
  return std::make_shared<Job>(Job::Kind::Chat, [shared](JobContext& ctx, Job& job) {
    ChatRequest req = *shared;
    req.on_text = [&job](std::string_view piece) {
      JobEvent e;
      e.type = JobEvent::Type::Text;
      e.text = std::string(piece);
      job.emit(std::move(e));
      return true;
    };
    req.should_cancel = [&job] { return job.cancelled(); };
    JobEvent done;
    done.type = JobEvent::Type::Finished;
    done.answer = ctx.pipeline.chat(req);
    job.emit(std::move(done));
  });
}

std::shared_ptr<Job> make_image_job(ImageJobRequest request, std::string model_name) {
  auto shared = std::make_shared<ImageJobRequest>(std::move(request));
  return std::make_shared<Job>(Job::Kind::Image, [shared, model_name](JobContext& ctx, Job& job) {
    const ImageJobRequest& r = *shared;
    const uint64_t seed0 = r.seed.value_or(0);
    for (int i = 0; i < r.n; ++i) {
      const uint64_t seed = seed0 + uint64_t(i);
      ProgressFn progress = [&job, &ctx, i](const ProgressEvent& p) {
        JobEvent e;
        e.type = JobEvent::Type::Progress;
        e.progress = p;
        e.index = i;
        job.emit(std::move(e));
        if (ctx.yield) ctx.yield();
      };
      CancelFn cancel = [&job] { return job.cancelled(); };
      ImageResult res;
      ImageParameters params;
      if (r.edit) {
        EditRequest req;
        req.input = r.input;
        req.instruction = r.prompt;
        req.steps = r.steps;
        req.cfg_scale = r.cfg_scale;
        req.img_cfg_scale = r.img_cfg_scale;
        req.seed = seed;
        req.on_progress = progress;
        req.should_cancel = cancel;
        res = ctx.pipeline.edit(req);
        params = image_parameters(req, res, model_name);
      } else {
        GenerateRequest req;
        req.prompt = r.prompt;
        req.width = r.width;
        req.height = r.height;
        req.steps = r.steps;
        req.cfg_scale = r.cfg_scale;
        req.seed = seed;
        req.on_progress = progress;
        req.should_cancel = cancel;
        res = ctx.pipeline.generate(req);
        params = image_parameters(req, res, model_name);
      }
      JobEvent e;
      e.type = JobEvent::Type::Image;
      e.index = i;
      e.image.parameters = parameters_text(params);
      e.image.width = res.width;
      e.image.height = res.height;
      e.image.seed = seed;
      TextChunks text;
      if (r.format == ImageFormat::Png) text.emplace_back("parameters", e.image.parameters);
      e.image.bytes = encode_image(res.image, r.format, text, r.jpeg_quality);
      job.emit(std::move(e));
    }
  });
}

}  // namespace ovis::serve
