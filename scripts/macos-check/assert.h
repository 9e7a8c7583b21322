/* The macOS type check (scripts/test) compiles ring's C code without a macOS SDK, with clang's
   freestanding headers and this stand-in for <assert.h> (ring's debug checks; the build is
   -DNDEBUG). The object is never linked: only the Rust code is being checked. */
#ifndef ASSERT_H_STAND_IN
#define ASSERT_H_STAND_IN
#define assert(condition) ((void)0)
#endif
