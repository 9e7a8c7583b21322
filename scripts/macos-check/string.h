/* The macOS type check (scripts/test) compiles ring's C code without a macOS SDK, with clang's
   freestanding headers and this stand-in for what ring takes from <string.h>. The object is
   never linked: only the Rust code is being checked. */
#ifndef STRING_H_STAND_IN
#define STRING_H_STAND_IN
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
#endif
