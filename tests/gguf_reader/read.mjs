// Third-party reader check: @huggingface/gguf (npm) opens a file written by `ovis quantize` and
// sees the metadata, every tensor's shape (ne[0] = row length), ggml type and an aligned offset
// whose data lies inside the file.
// Usage: node read.mjs FILE.gguf   (exit status 0 = every check passed)
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";
import { statSync } from "node:fs";
import { resolve } from "node:path";

const file = resolve(process.argv[2]);
const { metadata, tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
let failures = 0;
const check = (ok, what) => {
  if (!ok) {
    console.error(`FAIL: ${what}`);
    failures++;
  }
};

check(metadata.version === 3, `version ${metadata.version}`);
check(metadata["general.architecture"] === "ovis-u1", "general.architecture");
check(metadata["general.alignment"] === 32, "general.alignment");
const config = JSON.parse(metadata["ovis-u1.config_json"]);
check(config.llm_config.hidden_size > 0, "config JSON");
JSON.parse(metadata["ovis-u1.preprocessor_config_json"]);
// tokenizer.json in parts (see src/pipeline/model_source.hpp).
let tokText = "";
for (let i = 0; i < metadata["ovis-u1.tokenizer_json.parts"]; i++)
  tokText += metadata[`ovis-u1.tokenizer_json.${i}`];
const tok = JSON.parse(tokText);
check(tok.model && tok.model.type === "BPE", "tokenizer JSON");
check(BigInt(metadata.tensor_count) === BigInt(tensorInfos.length), "tensor count");

// Bytes per block and elements per block of the types ovis writes.
const blocks = {
  [GGMLQuantizationType.F32]: [1, 4],
  [GGMLQuantizationType.F16]: [1, 2],
  [GGMLQuantizationType.BF16]: [1, 2],
  [GGMLQuantizationType.Q8_0]: [32, 34],
  [GGMLQuantizationType.Q4_K]: [256, 144],
};
const size = BigInt(statSync(file).size);
check(tensorDataOffset % 32n === 0n, "tensor data offset alignment");
const byName = new Map(tensorInfos.map((t) => [t.name, t]));
for (const t of tensorInfos) {
  const b = blocks[t.dtype];
  if (!b) {
    check(false, `${t.name}: unexpected type ${t.dtype}`);
    continue;
  }
  const numel = t.shape.reduce((a, d) => a * BigInt(d), 1n);
  check(BigInt(t.shape[0]) % BigInt(b[0]) === 0n, `${t.name}: rows are whole blocks`);
  const bytes = (numel / BigInt(b[0])) * BigInt(b[1]);
  check(BigInt(t.offset) % 32n === 0n, `${t.name}: offset alignment`);
  check(tensorDataOffset + BigInt(t.offset) + bytes <= size, `${t.name}: data inside the file`);
}
// Shapes as ggml sees them: [in, out] for a Linear weight [out, in].
const hidden = BigInt(config.llm_config.hidden_size);
const vocab = BigInt(config.llm_config.vocab_size);
const emb = byName.get("llm.model.embed_tokens.weight");
check(emb && emb.shape.map(BigInt).join() === [hidden, vocab].join(), "embedding shape");
const head = byName.get("visual_tokenizer.head.0.weight");
check(head && head.dtype === Number(process.argv[3] ?? head.dtype), `head type ${head && head.dtype}`);
const conv = byName.get("visual_generator.vae.decoder.conv_in.weight");
check(conv && conv.n_dims === 4, "4-D convolution weight");

console.log(`${file}: ${tensorInfos.length} tensors checked, ${failures} failures`);
process.exit(failures ? 1 : 0);
