/* The macOS type check (scripts/test) compiles wasmtime's small C helper without a macOS SDK,
   with clang's freestanding headers and this stand-in for the one thing it takes from
   <stdlib.h>. The object is never linked: only the Rust code is being checked. */
#include <stddef.h>
