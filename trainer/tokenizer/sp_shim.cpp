// libneftune_sentencepiece.so: see sp_shim.h.
#include "trainer/tokenizer/sp_shim.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {
sentencepiece::SentencePieceProcessor* sp(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h); }
}  // namespace

extern "C" {

void* nsp_load(const char* path, char* err, size_t errlen) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  const auto status = p->Load(path);
  if (!status.ok()) {
    std::snprintf(err, errlen, "%s", status.ToString().c_str());
    delete p;
    return nullptr;
  }
  return p;
}

void nsp_free(void* handle) { delete sp(handle); }

long nsp_encode(void* handle, const char* text, size_t len, int* out, size_t cap) {
  std::vector<int> ids;
  if (!sp(handle)->Encode(std::string(text, len), &ids).ok()) return -1;
  std::copy_n(ids.begin(), std::min(cap, ids.size()), out);
  return static_cast<long>(ids.size());
}

long nsp_decode(void* handle, const int* ids, size_t n, char* out, size_t cap) {
  std::string text;
  if (!sp(handle)->Decode(std::vector<int>(ids, ids + n), &text).ok()) return -1;
  // A byte buffer whose length is returned, never a C string.
  std::memcpy(out, text.data(), std::min(cap, text.size()));  // NOLINT(bugprone-not-null-terminated-result)
  return static_cast<long>(text.size());
}

void nsp_info(void* handle, int* vocab, int* bos, int* eos, int* pad, int* unk) {
  *vocab = sp(handle)->GetPieceSize();
  *bos = sp(handle)->bos_id();
  *eos = sp(handle)->eos_id();
  *pad = sp(handle)->pad_id();
  *unk = sp(handle)->unk_id();
}

long nsp_piece(void* handle, int id, char* out, size_t cap) {
  if (id < 0 || id >= sp(handle)->GetPieceSize()) return -1;
  const std::string& piece = sp(handle)->IdToPiece(id);
  std::memcpy(out, piece.data(), std::min(cap, piece.size()));  // NOLINT(bugprone-not-null-terminated-result)
  return static_cast<long>(piece.size());
}

}  // extern "C"
