// The C interface of libneftune_sentencepiece.so, a small module that wraps libsentencepiece.
//
// Why a module: Debian's libsentencepiece carries its own static copy of protobuf-lite and exports it,
// while LibTorch loads the full libprotobuf. Linked into one program the two copies interpose each
// other's symbols and crash (at static initialisation or at exit). The module is loaded with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND), so sentencepiece binds to its own protobuf and nothing else sees it.
// Only plain C types cross the boundary.
#pragma once

#include <stddef.h>

extern "C" {
// Returns a handle, or null with the reason in err.
void* nsp_load(const char* path, char* err, size_t errlen);
void nsp_free(void* handle);
// Writes up to cap ids; returns how many the text has (call again with a bigger buffer if > cap), or -1.
long nsp_encode(void* handle, const char* text, size_t len, int* out, size_t cap);
// Writes up to cap bytes (not NUL-terminated); returns the decoded length, or -1.
long nsp_decode(void* handle, const int* ids, size_t n, char* out, size_t cap);
// vocab size, bos, eos, pad, unk ids (-1 when absent).
void nsp_info(void* handle, int* vocab, int* bos, int* eos, int* pad, int* unk);
// The piece of `id`; returns its length (written up to cap), or -1.
long nsp_piece(void* handle, int id, char* out, size_t cap);
}
