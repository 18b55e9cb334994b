// The published Ovis-U1-3B configuration (spec §2), used by `ovis bench` to build models of the
// real shapes with synthetic weights. Only the fields the loader reads are kept.
#pragma once

namespace ovis::cli {

inline constexpr const char* kOvisU1_3B_Config = R"json({
  "hidden_size": 2048,
  "multimodal_max_length": 4496,
  "llm_config": {
    "vocab_size": 151936, "hidden_size": 2048, "num_hidden_layers": 28,
    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
    "intermediate_size": 6144, "rms_norm_eps": 1e-6, "rope_theta": 1000000,
    "tie_word_embeddings": true, "bos_token_id": 151643, "eos_token_id": 151645,
    "max_position_embeddings": 40960
  },
  "visual_tokenizer_config": {
    "vocab_size": 65536, "hidden_stride": 2, "tokenize_function": "softmax",
    "backbone_config": {
      "hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 24,
      "num_attention_heads": 8, "num_channels": 3, "patch_size": 14, "image_size": 448,
      "rms_norm_eps": 1e-5, "qkv_bias": false, "use_bias": false, "hidden_stride": 2,
      "temporal_patch_size": 1, "disable_rope": false
    }
  },
  "visual_generator_config": {
    "in_channels": 16, "out_channels": 16, "hidden_size": 1536, "num_heads": 12,
    "axes_dim": [16, 56, 56], "theta": 10000, "mlp_ratio": 4.0, "qkv_bias": true,
    "depth": 6, "depth_single_blocks": 12, "vec_in_dim": 1536, "context_in_dim": 4096,
    "guidance_embed": false, "timestep_shift": true, "base_shift": 0.5, "max_shift": 1.15,
    "vae_config": {
      "in_channels": 3, "out_channels": 3, "latent_channels": 4,
      "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
      "norm_num_groups": 32, "scaling_factor": 0.13025
    }
  }
})json";

}  // namespace ovis::cli
