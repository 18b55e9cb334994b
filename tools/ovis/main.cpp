// ovis: one binary for Ovis-U1 image understanding, text-to-image and image editing.
#include <cstdio>
#include <exception>
#include <fstream>
#include <random>

#include "cli_common.hpp"
#include "core/error.hpp"
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

uint64_t resolve_seed(int64_t seed, bool quiet) {
  if (seed >= 0) return uint64_t(seed);
  std::random_device rd;
  uint64_t s = ((uint64_t(rd()) << 32) | rd()) & 0x7fffffffffffffffull;
  if (!quiet) std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(s));
  return s;
}

}  // namespace ovis::cli

int main(int argc, char** argv) {
  using namespace ovis::cli;
  CLI::App app{
      "ovis.cpp: Ovis-U1 inference on CPU. Ask questions about images, generate images from text,\n"
      "edit images from instructions. Loads the official Hugging Face checkpoint folder "
      "unchanged,\n"
      "or one GGUF file written by 'ovis quantize'."};
  app.set_version_flag("--version", "ovis.cpp 0.1.0");
  GlobalOptions g;
  app.add_option("--precision", g.precision,
                 "f32: float32 activations and upcast weights (matches the reference goldens); "
                 "bf16: bf16 GEMM inputs with fp32 accumulation (fast); auto: bf16 if the CPU has "
                 "AVX512_BF16, else f32")
      ->capture_default_str();
  app.add_option("-t,--threads", g.threads,
                 "CPU threads (0 = OMP_NUM_THREADS if set, else all cores)")
      ->capture_default_str();
  app.add_option("--device", g.device,
                 "cpu, cuda or cuda:N (auto: the first CUDA device if this build has the CUDA "
                 "backend and a GPU is present, else cpu)")
      ->capture_default_str();
  app.add_flag("-q,--quiet", g.quiet, "No progress or timing output on stderr");
  app.footer(
      "\nExamples:\n"
      "  ovis ask -m Ovis-U1-3B --image cat.png -p \"What is it?\"\n"
      "  ovis generate -m Ovis-U1-3B -p \"a cute cat\" -W 1024 -H 1024 --steps 50 --cfg-scale 5 -o "
      "cat.png\n"
      "  ovis edit -m Ovis-U1-3B -i cat.png -p \"add a hat to this cat.\" --cfg-scale 6 "
      "--img-cfg-scale 1.5 -o hat.png\n"
      "  ovis quantize -m Ovis-U1-3B -o ovis-u1-q8_0.gguf --type q8_0\n"
      "  ovis ask -m ovis-u1-q8_0.gguf --image cat.png -p \"What is it?\"\n"
      "  ovis bench dit --json --size 512\n"
      "Run 'ovis <command> --help' for the options of a command.");
  app.fallthrough();
  app.require_subcommand(1, 1);
  int exit_code = 0;
  add_ask_command(app, g, exit_code);
  add_image_commands(app, g, exit_code);
  add_bench_command(app, g, exit_code);
  add_quantize_command(app, g, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ovis::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
