/* See TargetConditionals.h: a stand-in for the SDK's assert.h. */
#define assert(e) ((void)0)
#define static_assert _Static_assert
