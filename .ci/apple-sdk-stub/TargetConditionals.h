/* The three headers here stand in for the macOS SDK, which Debian does not
 * ship, so that clang can compile ring's C for an Apple target when CI
 * type-checks rpcplugin for macOS (.ci/cross-check). The objects are
 * never linked or run. This one: the platform macros ring's base.h reads. */
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
