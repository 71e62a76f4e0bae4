//go:build lockcheck

#include "textflag.h"

// func getg() uintptr
TEXT ·getg(SB), NOSPLIT, $0-8
	MOVQ (TLS), AX // the runtime keeps g in thread-local storage
	MOVQ AX, ret+0(FP)
	RET
