// ovis: one binary for Ovis-U1 image understanding, text-to-image and image editing.
#include <cstdio>
#include <exception>
#include <fstream>
#include <new>
#include <random>
#include <string>

#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "hub/cache.hpp"
#include "hub/model_location.hpp"
#include "io/safetensors.hpp"
#include "ops/ops.hpp"

namespace ovis::cli {

LoadOptions load_options(const GlobalOptions& g) {
  LoadOptions o;
  o.device = g.device;
  o.precision = parse_precision(g.precision);
  o.threads = g.threads;
  return o;
}

HostTensor load_init_noise(const std::string& spec) {
  std::string file = spec, name;
  if (!std::ifstream(spec).good()) {
    size_t colon = spec.rfind(':');
    if (colon != std::string::npos) {
      file = spec.substr(0, colon);
      name = spec.substr(colon + 1);
    }
  }
  auto f = SafetensorsFile::open(file);
  if (name.empty()) {
    if (f->entries().size() != 1)
      fail(file, ": holds ", f->entries().size(), " tensors; name one as --init-noise FILE:TENSOR");
    name = f->entries().begin()->first;
  }
  Tensor t = f->tensor(name);
  if (t.dtype() != DType::F32 && t.dtype() != DType::BF16 && t.dtype() != DType::F16)
    fail(file, ": tensor '", name, "' has dtype ", dtype_name(t.dtype()),
         ", expected a float type");
  return HostTensor{t.shape(), t.to_vector()};
}

hub::PullOptions pull_options(const GlobalOptions& g) {
  hub::PullOptions o = hub::PullOptions::from_environment();
  if (!g.quiet)
    o.on_progress = [bar = std::make_shared<ProgressBar>()](const ProgressEvent& e) { (*bar)(e); };
  return o;
}

hub::PullResult pull_model(const hub::RepoRef& ref, const hub::PullOptions& o, bool quiet) {
  hub::PullResult r = hub::pull(ref, o);
  if (!quiet)
    std::fprintf(stderr, "pulled %s (commit %s): %d files, %d downloaded (%.1f MiB), %d cached\n",
                 ref.str().c_str(), r.commit.substr(0, 12).c_str(), r.files, r.downloaded,
                 double(r.bytes) / (1 << 20), r.files - r.downloaded);
  return r;
}

ResolvedModel resolve_model(const std::string& model, const GlobalOptions& g) {
  const std::string spec = model.empty() ? kDefaultModel : model;
  const std::filesystem::path cache = hub::cache_dir();
  hub::ModelLocation loc = hub::locate_model(spec, cache);
  if (!loc.found()) {
    if (!g.pull)
      fail(model.empty() ? "no -m given and the default model " : "-m ", spec,
           model.empty() ? "" : ": no such folder, and the model",
           " is not in the Hugging Face cache ", cache.string(), ": get it with 'ovis pull ",
           loc.repo->str(), "', or add --pull to download it on first use");
    loc.folder = pull_model(*loc.repo, pull_options(g), g.quiet).snapshot;
  }
  return {loc.folder.string(), loc.display_name()};
}

uint64_t resolve_seed(int64_t seed, bool quiet) {
  if (seed >= 0) return uint64_t(seed);
  std::random_device rd;
  uint64_t s = ((uint64_t(rd()) << 32) | rd()) & 0x7fffffffffffffffull;
  if (!quiet) std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(s));
  return s;
}

// An error message as one printable line: messages can quote text from untrusted files.
std::string one_line(const char* msg) {
  std::string out;
  for (const char* p = msg; *p; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out;
}

}  // namespace ovis::cli

int main(int argc, char** argv) {
  using namespace ovis::cli;
  CLI::App app{
      "ovis.cpp: Ovis-U1 inference on CPU or NVIDIA GPUs. Ask questions about images, generate\n"
      "images from text, edit images from instructions. Loads the official Hugging Face "
      "checkpoint\n"
      "folder unchanged, or one GGUF file written by 'ovis quantize'."};
  app.set_version_flag("--version", "ovis.cpp 0.1.0");
  GlobalOptions g;
  app.add_option("--precision", g.precision,
                 "f32: float32 activations and upcast weights (matches the reference goldens); "
                 "bf16: bf16 GEMM inputs with fp32 accumulation (fast); auto: bf16 on a GPU or a "
                 "CPU with AVX512_BF16, else f32")
      ->capture_default_str();
  app.add_option("-t,--threads", g.threads,
                 "CPU threads (0 = OMP_NUM_THREADS if set, else all cores)")
      ->capture_default_str();
  app.add_option("--device", g.device,
                 "cpu, cuda or cuda:N (auto: the first CUDA device if this build has the CUDA "
                 "backend and a GPU is present, else cpu); 'ovis devices' lists them")
      ->capture_default_str();
  app.add_flag("-q,--quiet", g.quiet, "No progress or timing output on stderr");
  app.add_flag("--pull", g.pull,
               "Download a model given as a Hugging Face repo id (or the default one) into the HF "
               "cache when it is not there yet");
  app.footer(
      "\nExamples:\n"
      "  ovis pull AIDC-AI/Ovis-U1-3B     (once; commands without -m then use it)\n"
      "  ovis ask --image cat.png -p \"What is it?\"\n"
      "  ovis generate -p \"a cute cat\" -W 1024 -H 1024 --steps 50 --cfg-scale 5 -o cat.png\n"
      "  ovis edit -m ./Ovis-U1-3B -i cat.png -p \"add a hat to this cat.\" --cfg-scale 6 "
      "--img-cfg-scale 1.5 -o hat.png\n"
      "  ovis serve --port 8080\n"
      "  ovis quantize -m Ovis-U1-3B -o ovis-u1-q8_0.gguf --type q8_0\n"
      "  ovis ask -m ovis-u1-q8_0.gguf --image cat.png -p \"What is it?\"\n"
      "  ovis bench dit --json --size 512\n"
      "  ovis devices\n"
      "Run 'ovis <command> --help' for the options of a command.");
  app.fallthrough();
  app.require_subcommand(1, 1);
  int exit_code = 0;
  add_ask_command(app, g, exit_code);
  add_image_commands(app, g, exit_code);
  add_bench_command(app, g, exit_code);
  add_serve_command(app, g, exit_code);
  add_quantize_command(app, g, exit_code);
  add_pull_command(app, g, exit_code);
  add_devices_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
    return 1;
  }
  return exit_code;
}
