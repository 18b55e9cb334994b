// `ovis devices`: every device this binary can run on, with its memory. The CPU is always there.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ops/context.hpp"

namespace ovis::cli {

namespace {

double gib(int64_t b) {
  return double(b) / double(int64_t(1) << 30);
}

int run_devices(bool json) {
  const std::vector<ops::DeviceInfo> devs = ops::list_devices();
  const std::string why = ops::cuda_unavailable_reason();
  const std::string dflt = ops::default_device().str();
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& d : devs)
      j.push_back({{"device", d.device.str()},
                   {"name", d.name},
                   {"total_memory_bytes", d.total_memory},
                   {"free_memory_bytes", d.free_memory},
                   {"default", d.device.str() == dflt}});
    nlohmann::json r = {{"devices", j}};
    if (!why.empty()) r["cuda_unavailable"] = why;
    std::printf("%s\n", r.dump().c_str());
    return 0;
  }
  for (const auto& d : devs)
    std::printf("%-8s %s, %.1f GiB total, %.1f GiB free%s\n", d.device.str().c_str(),
                d.name.c_str(), gib(d.total_memory), gib(d.free_memory),
                d.device.str() == dflt ? " (default)" : "");
  if (!why.empty()) std::printf("cuda     not available: %s\n", why.c_str());
  return 0;
}

}  // namespace

void add_devices_command(CLI::App& app, int& exit_code) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd =
      app.add_subcommand("devices", "List the devices (CPU, CUDA GPUs) and their memory");
  cmd->add_flag("--json", *json, "Print one JSON object on stdout");
  cmd->callback([json, &exit_code] { exit_code = run_devices(*json); });
}

}  // namespace ovis::cli
