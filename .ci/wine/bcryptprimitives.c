/* Wine 8.0 (Debian 12) has no bcryptprimitives.dll, whose ProcessPrng
 * Rust's standard library calls for randomness on Windows since 1.78.
 * This stand-in, built with Debian's mingw-w64 by .ci/wine-tests and put
 * in the Wine prefix only, answers from RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. Never shipped, never on Windows. */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
