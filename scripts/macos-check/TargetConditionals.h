/* The macOS type check (scripts/test) compiles ring's C code (rustls's crypto, for models from
   object storage) without a macOS SDK: this stands in for the SDK's <TargetConditionals.h>,
   which ring reads to tell macOS from Apple's other systems. The object is never linked. */
#ifndef TARGET_CONDITIONALS_STAND_IN
#define TARGET_CONDITIONALS_STAND_IN
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
#endif
