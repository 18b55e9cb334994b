#include <gtest/gtest.h>

#include "io/safetensors.hpp"
#include "io/config.hpp"
#include "support/golden.hpp"

using namespace ovis;

TEST(Checkpoint, LoadsFixtureConfig) {
  ModelConfig c = load_model_config(test::fixture_dir());
  EXPECT_EQ(c.llm.hidden_size, 48);
  EXPECT_EQ(c.llm.head_dim, 16);
  EXPECT_EQ(c.dit.hidden_size, 128);
  EXPECT_EQ(c.vae.block_out_channels.size(), 4u);
}

TEST(Checkpoint, OpensShardedStore) {
  TensorStore s = TensorStore::open_dir(test::fixture_dir());
  EXPECT_EQ(s.names().size(), 427u);
  Tensor t = s.get("llm.model.embed_tokens.weight");
  EXPECT_EQ(t.dtype(), DType::BF16);
  EXPECT_EQ(t.dim(0), 151936);
}
