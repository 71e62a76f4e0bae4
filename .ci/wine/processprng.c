/*
 * bcryptprimitives.dll shim for Wine 8.0.
 *
 * Go >= 1.22 on Windows gets its random bytes from ProcessPrng, exported by
 * bcryptprimitives.dll (loaded from system32 only). Wine 8.0 has no such DLL,
 * so every Go binary aborts at start-up. This DLL exports ProcessPrng and
 * forwards it to RtlGenRandom (SystemFunction036 in advapi32), which Wine
 * implements on top of the host's random source.
 *
 * Exported through bcryptprimitives.def; built without the C runtime (see
 * setup.sh), so it needs nothing but kernel32 and advapi32.
 */
#include <windows.h>

/* RtlGenRandom: the documented name of advapi32's SystemFunction036. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/*
 * BOOL WINAPI ProcessPrng(PBYTE pbData, SIZE_T cbData)
 * Fills pbData with cbData random bytes. Windows documents it as always
 * returning TRUE; we return FALSE if Wine's generator ever fails, which Go
 * treats as fatal, the safe outcome. RtlGenRandom takes a 32-bit length, so
 * larger requests are served in chunks.
 */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}

/* Entry point used instead of the CRT's (linked with -nostdlib). */
BOOL WINAPI DllEntry(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)reserved;
    if (reason == DLL_PROCESS_ATTACH)
        DisableThreadLibraryCalls(inst);
    return TRUE;
}
